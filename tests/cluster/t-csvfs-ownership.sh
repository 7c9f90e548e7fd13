#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Write ownership through real csvfs mounts on three nodes sharing one
# backing directory:
#   n1 writes blocks 0-3 of a file and fsyncs: n1 owns it; it closes;
#   n2 reads n1's flushed blocks, then writes blocks 2-5: ownership moves
#     to n2 with a higher epoch, as user.csvfs.owner/epoch on all three
#     nodes and csvfs-admin --json owners on all three agree (I1);
#   n3 reads both writes (0-1 from n1, 2-5 from n2), as does the backing
#     file itself; the lock tables are identical everywhere (I5).
# The same with n1 still holding the file open for write (a revoke, not
# a release): n2's write waits for n1's flush, n1's handle is not
# poisoned by a cooperative revoke.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN"

csvfs_setup
cluster_start 3
csvfs_mount_all 3

F=disk1.img

# n1 writes and fsyncs through a handle it keeps open (so that it stays
# the owner while the owners are compared), then closes it.
node_shell_start w1 1
t=$(now_ms)
node_shell w1 "exec 3<>\$CSV/$F && wblk n1 0 && wblk n1 1 && wblk n1 2 && wblk n1 3 fsync" ||
	_fail "n1: writing $F failed: $SH_OUT"
log "n1 wrote blocks 0-3 of $F in $(( $(now_ms) - t )) ms (acquire, write, fsync)"
fid=$(csv_fileid 1 "$F") || _fail "n1: no user.csvfs.fileid"
[ "$fid" = "$(stat -c %i "$CV_BACKING/$F")" ] ||
	_fail "user.csvfs.fileid $fid is not the backing inode $(stat -c %i "$CV_BACKING/$F")"
[ "$(node_sh 2 "stat -c %i \$CSV/$F")" = "$fid" ] ||
	_fail "n2: st_ino of $F is not the file id $fid"
wait_for 5 csv_owner_is 3 "$F" n1 || _fail "n3 does not see n1 own $F: '$(csv_owner 3 "$F")'"
assert_csv_owner "$F" n1 1 2 3
e1=$CSV_EPOCH
node_shell w1 "exec 3>&-" || _fail "n1: close failed"
wait_for 5 csv_owner_is 2 "$F" "" || _fail "n1 did not release $F on close: '$(csv_owner 2 "$F")'"
log "n1 released $F on its last close"

# n2 reads n1's flushed data, then writes its own through an open handle.
expect_tags 2 "$F" 0 4 n1 n1 n1 n1
node_shell_start w2 2
t=$(now_ms)
node_shell w2 "exec 3<>\$CSV/$F && wblk n2 2 && wblk n2 3 && wblk n2 4 && wblk n2 5 fsync" ||
	_fail "n2: writing $F failed: $SH_OUT"
log "n2 wrote blocks 2-5 of $F in $(( $(now_ms) - t )) ms (acquire, write, fsync)"
wait_for 5 csv_owner_is 3 "$F" n2 || _fail "n3 does not see n2 own $F: '$(csv_owner 3 "$F")'"
assert_csv_owner "$F" n2 1 2 3
e2=$CSV_EPOCH
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
log "ownership n1 -> n2: epoch $e1 -> $e2"
expect_tags 3 "$F" 0 6 n1 n1 n2 n2 n2 n2
expect_tags 1 "$F" 0 6 n1 n1 n2 n2 n2 n2
for b in 0 1 2 3 4 5; do
	want=n1blk=$b
	[ "$b" -ge 2 ] && want=n2blk=$b
	[ "$(block_tag "$CV_BACKING/$F" "$b")" = "$want" ] ||
		_fail "backing file block $b: '$(block_tag "$CV_BACKING/$F" "$b")', expected $want"
done
log "n1, n3 and the backing file read n1's blocks 0-1 and n2's blocks 2-5"
assert_csv_tables_identical

# Revoke while the owner keeps the file open: n3 writes block 6.
mkpattern n3 6 1 "$CV_WORK/p3"
t=$(now_ms)
node_sh 3 "dd if=$CV_WORK/p3 of=\$CSV/$F bs=4096 seek=6 conv=notrunc,fsync status=none" ||
	_fail "n3: dd to $F failed while n2 holds it open"
log "hand-off n2 (open) -> n3: n3's write took $(( $(now_ms) - t )) ms"
grep -q "ownership lost" "$(ndir 2)/csvfs.log" &&
	_fail "n2 reports a loss on a cooperative revoke"
# n2's handle still works: it acquires again (revoking n3 or its
# release), and the epoch grows once more.
node_shell w2 "wblk n2again 3 fsync" ||
	_fail "n2: write through its handle after a cooperative revoke failed: $SH_OUT"
wait_for 5 csv_owner_is 1 "$F" n2 || _fail "n1 does not see n2 own $F again"
assert_csv_owner "$F" n2 1 2 3
[ "$CSV_EPOCH" -gt "$e2" ] || _fail "I1: epoch did not grow ($e2 -> $CSV_EPOCH)"
log "n2 re-acquired through its open handle: epoch $e2 -> $CSV_EPOCH"
expect_tags 1 "$F" 0 7 n1 n1 n2 n2again n2 n2 n3
[ "$(stat -c %s "$CV_BACKING/$F")" = $(( 7 * 4096 )) ] ||
	_fail "backing file is $(stat -c %s "$CV_BACKING/$F") bytes, not 7 blocks"
node_shell w2 "exec 3>&-" || _fail "n2: close failed"
wait_for 5 csv_owner_is 1 "$F" "" || _fail "n2 did not release $F on close: '$(csv_owner 1 "$F")'"
log "n2 released $F on its last close"

# A node that does not own a file sees its owner's growth at once: n3
# opens the file and writes (taking ownership, which n1 is told of), n1
# looks (its kernel would cache the size for attr_timeout), n3 grows the
# file through the same handle (no hand-off, nothing told), n1 looks
# again at once.  A stale size there made QEMU, which takes an image's
# length at open, read a VM's last clusters as zeros.
node_shell_start w3 3
node_shell w3 "exec 3<>\$CSV/$F && wblk n3 8 fsync" ||
	_fail "n3: write to $F failed: $SH_OUT"
wait_for 5 csv_owner_is 1 "$F" n3 || _fail "n1 does not see n3 own $F"
node_sh 1 "stat -c %s \$CSV/$F" >/dev/null || _fail "n1: stat $F failed"
node_shell w3 "wblk n3 9 fsync" || _fail "n3: growing $F failed: $SH_OUT"
sz=$(node_sh 1 "stat -c %s \$CSV/$F") || _fail "n1: stat $F failed"
[ "$sz" = $(( 10 * 4096 )) ] ||
	_fail "n1 sees $F at $sz bytes right after n3 grew it to 10 blocks"
node_shell w3 "exec 3>&-" || _fail "n3: close failed"
log "n1 sees n3's growth of $F at once"
assert_csv_tables_identical
_pass
