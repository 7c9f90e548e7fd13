#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# t-replica-csvfs.sh over FUSE over io_uring: the fast path's tracking.
CSVFS_REP_URING=1 exec "$(dirname "$0")/t-replica-csvfs.sh" "$@"
