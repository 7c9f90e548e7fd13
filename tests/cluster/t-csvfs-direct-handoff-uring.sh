#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# t-csvfs-direct-handoff.sh with requests over io_uring (uring=on): the
# direct writes in flight at each revoke are those admitted on the queue
# threads (csvfs/fuse_uring.c).  The fuse module parameter enable_uring
# is set to 1 for the run and put back after.
PARAM=/sys/module/fuse/parameters/enable_uring
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -e "$PARAM" ] || {
	echo "SKIP: no $PARAM (kernel without FUSE over io_uring)"
	exit 77
}
was=$(cat "$PARAM")
trap 'echo "$was" >"$PARAM"' EXIT
trap 'exit 99' INT TERM
echo 1 >"$PARAM" || { echo "SKIP: cannot set $PARAM"; exit 77; }
CV_CSVFS_OPTS=${CV_CSVFS_OPTS:+$CV_CSVFS_OPTS,}uring=on \
	"$(dirname "$0")/t-csvfs-direct-handoff.sh" "$@"
