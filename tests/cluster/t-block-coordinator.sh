#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A block volume (an image file every node sees) in a two-node cluster:
#   n1 mounts it and becomes its coordinator: user.csvfs.coordinator is
#     n1, csvfs-admin owners shows n1 holding file id 1 of the volume
#     (ext4's bad-blocks inode, the coordinator resource) and
#     csvfs-admin volumes names n1 the coordinator, and on n2 (no mount)
#     gives the space and the journal (in use) read from the LUN;
#   n2's mount of the same LUN is refused (exit 1), naming n1, and leaves
#     nothing behind; n1's files are untouched by the attempt;
#   once n1 unmounts, n2 mounts it, becomes the coordinator and reads
#     what n1 wrote; `e2fsck -fn` of the image is clean at the end.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN"
PATH=$PATH:/sbin:/usr/sbin
require_cmd e2fsck

csvfs_setup
IMG=$CV_WORK/lun.img
truncate -s 512M "$IMG"
"$CV_ADMIN" format "block:$IMG" --label clusterblk >"$CV_WORK/format.log" 2>&1 ||
	_fail "format: $(tail -1 "$CV_WORK/format.log")"
CV_SOURCE=block:$IMG
cluster_start 2

node_mount_csvfs 1
coord=$(node_sh 1 "getfattr --only-values -n user.csvfs.coordinator \$CSV") ||
	_fail "n1: no user.csvfs.coordinator"
[ "$coord" = n1 ] || _fail "n1: coordinator is '$coord', not n1"
node_sh 1 "head -c 3000000 /dev/urandom >\$CSV/data && sync \$CSV/data && md5sum <\$CSV/data" >"$CV_WORK/sum1" ||
	_fail "n1: writing failed: $SH_OUT"
owners_has_coordinator() { # I: node I's lockd shows n1 holding file id 1
	node_exec "$1" timeout 10 "$CV_ADMIN" --socket "$CV_SOCK" --json owners 2>/dev/null |
		jq -e '[.. | objects | select(.fileid? == 1 and .owner? == "n1")] | length > 0' >/dev/null
}
wait_for 5 owners_has_coordinator 2 ||
	_fail "n2's lockd does not show n1 owning file id 1: $(node_exec 2 timeout 10 "$CV_ADMIN" --socket "$CV_SOCK" owners 2>&1 | head -5)"

vol_coord() { # I: the coordinator csvfs-admin volumes shows on node I
	node_exec "$1" timeout 10 "$CV_ADMIN" --socket "$CV_SOCK" --json volumes 2>/dev/null |
		jq -r '.[] | select(.source | startswith("block:")) | .coordinator'
}
c=$(vol_coord 2)
[ "$c" = n1 ] || _fail "csvfs-admin volumes on n2: coordinator '$c', not n1"
# n2 does not mount it: space and journal read from the LUN
j=$(node_exec 2 timeout 10 "$CV_ADMIN" --socket "$CV_SOCK" --json volumes 2>/dev/null |
	jq -r '.[] | select(.source | startswith("block:")) |
		"\(.space_from) \(.journal.state) \(.free_bytes > 0) \(.journal.size_bytes > 0)"')
[ "$j" = "lun in_use true true" ] ||
	_fail "csvfs-admin volumes on n2: space and journal '$j', want 'lun in_use true true'"
log "n2: volumes reads the LUN: $j"

# n2: refused, with the coordinator's name.
d2=$(ndir 2)
node_exec 2 timeout 20 "$CV_CSVFS" "$CV_SOURCE" "$CV_MNT" -f \
	-o "lockd=$CV_SOCK,node=n2" >"$d2/refused.log" 2>&1
rc=$?
[ $rc = 1 ] || _fail "n2: csvfs exit $rc, want 1: $(tail -2 "$d2/refused.log")"
grep -q "coordinator, node n1" "$d2/refused.log" ||
	_fail "n2: the refusal does not name n1: $(tail -2 "$d2/refused.log")"
node_mounted 2 && _fail "n2: mounted although refused"
log "n2 refused: $(grep coordinator "$d2/refused.log" | head -1)"
node_sh 1 "md5sum <\$CSV/data" | cmp -s - "$CV_WORK/sum1" ||
	_fail "n1: data changed after n2's attempt"

# n1 leaves, n2 takes over.
node_umount_csvfs 1 || _fail "n1: unmount needed SIGKILL"
node_mount_csvfs 2
coord=$(node_sh 2 "getfattr --only-values -n user.csvfs.coordinator \$CSV")
[ "$coord" = n2 ] || _fail "n2: coordinator is '$coord', not n2"
node_sh 2 "md5sum <\$CSV/data" | cmp -s - "$CV_WORK/sum1" ||
	_fail "n2 does not read what n1 wrote"
node_umount_csvfs 2 || _fail "n2: unmount needed SIGKILL"
e2fsck -fn "$IMG" >"$CV_WORK/fsck.out" 2>&1 ||
	_fail "e2fsck -fn: $(head -20 "$CV_WORK/fsck.out")"
log "e2fsck -fn clean"
_pass
