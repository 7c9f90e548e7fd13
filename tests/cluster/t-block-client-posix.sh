#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The POSIX suite (tests/posix/posix_check, block profile, as t-block-posix
# runs it on a coordinator) on a node that is NOT the block volume's
# coordinator: n1 mounts and coordinates, n2 mounts as its client and runs
# the suite in a directory of its mount, every metadata call going over
# the coordinator channel and data straight to the LUN.  It runs at the
# root of the mount (it checks that .csvfs there is off limits).  Then n1
# reads a file n2 wrote, both unmount, and `e2fsck -fn` of the image is
# clean.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_bin "$CV_ADMIN"
CHECK=$top_builddir/tests/posix/posix_check
require_bin "$CHECK"
PATH=$PATH:/sbin:/usr/sbin
require_cmd e2fsck

CV_PRIVATE_ETC=1
csvfs_setup
IMG=$CV_WORK/lun.img
truncate -s 1G "$IMG"
"$CV_ADMIN" format "block:$IMG" --label clientposix >"$CV_WORK/format.log" 2>&1 ||
	_fail "format: $(tail -1 "$CV_WORK/format.log")"
CV_SOURCE=block:$IMG
cluster_start 2
block_authkey 2

node_mount_csvfs 1 allow_other
node_mount_csvfs 2 allow_other
coord=$(node_sh 2 "getfattr --only-values -n user.csvfs.coordinator \$CSV")
[ "$coord" = n1 ] || _fail "n2: coordinator is '$coord', not n1"

node_exec 2 timeout -k 5 600 "$CHECK" "$CV_MNT" posix block >"$CV_WORK/check.out" 2>&1
rc=$?
n=$(grep -c '^ok' "$CV_WORK/check.out")
nf=$(grep -c '^not ok' "$CV_WORK/check.out")
log "posix_check on n2 (a client): $n passed, $nf failed (exit $rc)"
[ "$nf" = 0 ] && [ "$rc" = 0 ] && [ "$n" -gt 0 ] ||
	_fail "posix_check on n2: $(grep -v '^ok' "$CV_WORK/check.out" | head -30)"

node_sh 2 "head -c 2000000 /dev/urandom >\$CSV/last && sync \$CSV/last && md5sum <\$CSV/last" >"$CV_WORK/sum" ||
	_fail "n2: write"
node_sh 1 "md5sum <\$CSV/last" | cmp -s - "$CV_WORK/sum" ||
	_fail "n1 does not read what n2 wrote"
node_umount_csvfs 2 || _fail "n2: unmount needed SIGKILL"
node_umount_csvfs 1 || _fail "n1: unmount needed SIGKILL"
e2fsck -fn "$IMG" >"$CV_WORK/fsck.out" 2>&1 ||
	_fail "e2fsck -fn: $(head -20 "$CV_WORK/fsck.out")"
log "e2fsck -fn clean"
_pass
