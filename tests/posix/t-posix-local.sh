#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# The POSIX suite without a lock manager (lockd=none, kernel-local locks).
CSVFS_POSIX_MODE=local exec "$(dirname "$0")/t-posix.sh" "$@"
