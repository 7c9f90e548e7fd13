#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A block volume (an image file every node sees) in a two-node cluster:
#   n1 mounts it and becomes its coordinator: user.csvfs.coordinator is
#     n1, csvfs-admin owners shows n1 holding file id 1 of the volume
#     (ext4's bad-blocks inode, the coordinator resource) and
#     csvfs-admin volumes names n1 the coordinator, and on n2 (before it
#     mounts) gives the space and the journal (in use) read from the LUN;
#   n2 mounts the same LUN as a client of n1 (its metadata over the
#     coordinator channel, its data straight to the LUN): it names n1 the
#     coordinator, reads what n1 wrote, and n1 reads what n2 writes
#     (a new file, an append, a rename, a directory, a truncation);
#   a node of another cluster (another authkey) is refused by n1's
#     channel and its mount fails naming the key;
#   once both unmount, n2 mounts alone, becomes the coordinator and reads
#     everything; `e2fsck -fn` of the image is clean at the end.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN"
PATH=$PATH:/sbin:/usr/sbin
require_cmd e2fsck

CV_PRIVATE_ETC=1
csvfs_setup
IMG=$CV_WORK/lun.img
truncate -s 512M "$IMG"
"$CV_ADMIN" format "block:$IMG" --label clusterblk >"$CV_WORK/format.log" 2>&1 ||
	_fail "format: $(tail -1 "$CV_WORK/format.log")"
CV_SOURCE=block:$IMG
cluster_start 2
block_authkey 2

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
grep -q "coordinator channel on port" "$(ndir 1)/csvfs.log" ||
	_fail "n1: no coordinator channel: $(tail -3 "$(ndir 1)/csvfs.log")"

# A node with another cluster's key: refused, naming the key.
d2=$(ndir 2)
node_exec 2 sh -c "cp /etc/corosync/authkey /etc/corosync/authkey.good &&
	head -c 128 /dev/urandom >/etc/corosync/authkey" || _fail "n2: key swap"
node_exec 2 timeout 40 "$CV_CSVFS" "$CV_SOURCE" "$CV_MNT" -f \
	-o "lockd=$CV_SOCK,node=n2" >"$d2/refused.log" 2>&1
rc=$?
[ $rc = 1 ] || _fail "n2 with a wrong key: csvfs exit $rc, want 1: $(tail -2 "$d2/refused.log")"
grep -qi "key" "$d2/refused.log" ||
	_fail "n2 with a wrong key: the refusal does not name the key: $(tail -2 "$d2/refused.log")"
node_mounted 2 && _fail "n2: mounted with a wrong key"
log "n2 with another key refused: $(grep -i key "$d2/refused.log" | tail -1)"
node_exec 2 sh -c "mv /etc/corosync/authkey.good /etc/corosync/authkey" ||
	_fail "n2: key back"

# n2: a client of n1.
node_mount_csvfs 2
coord=$(node_sh 2 "getfattr --only-values -n user.csvfs.coordinator \$CSV") ||
	_fail "n2: no user.csvfs.coordinator"
[ "$coord" = n1 ] || _fail "n2: coordinator is '$coord', not n1"
grep -q "coordinator channel" "$d2/csvfs.log" && grep -q "on port" "$d2/csvfs.log" &&
	_fail "n2 started a coordinator channel of its own"
node_sh 2 "md5sum <\$CSV/data" | cmp -s - "$CV_WORK/sum1" ||
	_fail "n2 does not read what n1 wrote"
node_sh 2 "head -c 5000000 /dev/urandom >\$CSV/from2 && sync \$CSV/from2 && md5sum <\$CSV/from2" >"$CV_WORK/sum2" ||
	_fail "n2: writing failed"
node_sh 1 "md5sum <\$CSV/from2" | cmp -s - "$CV_WORK/sum2" ||
	_fail "n1 does not read what n2 wrote"
node_sh 2 "mkdir \$CSV/d2 && mv \$CSV/from2 \$CSV/d2/moved && printf tail >>\$CSV/d2/moved && sync \$CSV/d2/moved &&
	echo hello >\$CSV/d2/small && ln -s moved \$CSV/d2/link && truncate -s 1000 \$CSV/data && sync" ||
	_fail "n2: namespace operations failed"
node_sh 1 "test \$(stat -c %s \$CSV/d2/moved) = 5000004 && tail -c 4 \$CSV/d2/moved | grep -qx tail &&
	grep -qx hello \$CSV/d2/small && test \$(readlink \$CSV/d2/link) = moved &&
	test \$(stat -c %s \$CSV/data) = 1000" ||
	_fail "n1 does not see n2's changes: $(node_sh 1 "ls -la \$CSV \$CSV/d2" 2>&1)"
node_sh 1 "head -c 1000 \$CSV/data | md5sum" >"$CV_WORK/sum3"
node_sh 2 "head -c 1000 \$CSV/data | md5sum" | cmp -s - "$CV_WORK/sum3" ||
	_fail "n1 and n2 read the truncated file differently"
node_sh 2 "ls \$CSV/d2 | sort | tr '\n' ' '" | grep -qx "link moved small " ||
	_fail "n2: readdir: $(node_sh 2 "ls \$CSV/d2")"
log "n2 mounted as n1's client: reads, writes, renames, truncates"

node_umount_csvfs 2 || _fail "n2: unmount needed SIGKILL"
node_umount_csvfs 1 || _fail "n1: unmount needed SIGKILL"
e2fsck -fn "$IMG" >"$CV_WORK/fsck1.out" 2>&1 ||
	_fail "e2fsck -fn after both unmounted: $(head -20 "$CV_WORK/fsck1.out")"

# n2 alone: the coordinator now.
node_mount_csvfs 2
coord=$(node_sh 2 "getfattr --only-values -n user.csvfs.coordinator \$CSV")
[ "$coord" = n2 ] || _fail "n2: coordinator is '$coord', not n2"
node_sh 2 "head -c 1000 \$CSV/data | md5sum" | cmp -s - "$CV_WORK/sum3" ||
	_fail "n2 as coordinator does not read data"
node_sh 2 "head -c 5000000 \$CSV/d2/moved | md5sum" | cmp -s - "$CV_WORK/sum2" ||
	_fail "n2 as coordinator does not read d2/moved"
node_umount_csvfs 2 || _fail "n2: unmount needed SIGKILL"
e2fsck -fn "$IMG" >"$CV_WORK/fsck.out" 2>&1 ||
	_fail "e2fsck -fn: $(head -20 "$CV_WORK/fsck.out")"
log "e2fsck -fn clean"
_pass
