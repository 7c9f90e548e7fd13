#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-csvfs-mmap.sh with every mount in cache=auto (page cache for all file
# data): dirty mapped pages of the old owner must reach the backing file
# before the next owner writes, and never after it.
CV_CSVFS_OPTS=cache=auto${CV_CSVFS_OPTS:+,$CV_CSVFS_OPTS} exec "$(dirname "$0")/t-csvfs-mmap.sh" "$@"
