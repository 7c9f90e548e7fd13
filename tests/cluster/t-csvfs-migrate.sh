#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Live-migration style hand-offs of one VM disk (doc/design.md §2.3):
#   1. n1 writes blocks 0-7 with fsync and closes; n2 at once writes its
#      own blocks 0-7: owner n2, epoch grew, every node and the backing
#      file read n2's blocks only;
#   2. the source keeps its handle open, as QEMU does until a migration
#      completes: n1 writes blocks 0-7 without fsync and stops; n2's
#      write revokes n1 (n1 flushes, releases, is not poisoned): again
#      n2's blocks only, no byte of n1 after n2's first write;
#   3. csvfs-admin handoff PATH n3 (run on n1) moves ownership to n3
#      ahead of its first write: owner n3 on every node before n3 writes,
#      and n3's first write needs no new grant (same epoch);
#   4. n1 then writes: n3 (handle open) is asked to give the file up and
#      does, and n3's next write takes it back with a higher epoch.
# Owners agree on every node (xattrs and csvfs-admin), epochs grow,
# tables are identical (I1, I4, I5).  Hand-off times are printed.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN"

csvfs_setup
cluster_start 3
csvfs_mount_all 3

F=vm2.img
N=8
ALL="0 1 2 3 4 5 6 7"

# check_only TAG: every node and the backing file read TAG's blocks 0-7
# and nothing else (no byte of another writer anywhere in the file).
check_only() {
	local tag=$1 i b other
	for i in 1 2 3; do
		expect_tags "$i" "$F" 0 "$N" $(for b in $ALL; do echo "$tag"; done)
	done
	for b in $ALL; do
		[ "$(block_tag "$CV_BACKING/$F" "$b")" = "${tag}blk=$b" ] ||
			_fail "backing block $b: '$(block_tag "$CV_BACKING/$F" "$b")', expected ${tag}blk=$b"
	done
	[ "$(stat -c %s "$CV_BACKING/$F")" = $(( N * 4096 )) ] ||
		_fail "backing file is $(stat -c %s "$CV_BACKING/$F") bytes"
	other=$(tr -d '\0' <"$CV_BACKING/$F" | grep -a 'blk=' |
		sed 's/ *$//' | sort -u | grep -av "^$tag blk=" | head -n 3)
	[ -z "$other" ] || _fail "I4: other writers' blocks in the file: $other"
	log "every node and the backing file read ${tag}'s blocks 0-7 only"
}

wall="for b in $ALL; do wblk"

# 1. n1 writes, fsyncs, closes; n2 writes at once.
node_shell_start w1 1
node_shell_start w2 2
node_shell w1 "exec 3<>\$CSV/$F && $wall n1 \$b || exit 1; done && sync \$CSV/$F" ||
	_fail "n1: writing $F failed: $SH_OUT"
wait_for 5 csv_owner_is 3 "$F" n1 || _fail "n3 does not see n1 own $F"
assert_csv_owner "$F" n1 1 2 3
e1=$CSV_EPOCH
node_shell w1 "exec 3>&-" || _fail "n1: close failed: $SH_OUT"
t=$(now_ms)
node_shell w2 "exec 3<>\$CSV/$F && $wall n2 \$b fsync || exit 1; done" ||
	_fail "n2: writing $F failed: $SH_OUT"
log "1. close then write: n2 wrote 8 blocks (each with fsync) $(( $(now_ms) - t )) ms after n1 closed"
wait_for 5 csv_owner_is 1 "$F" n2 || _fail "n1 does not see n2 own $F"
assert_csv_owner "$F" n2 1 2 3
e2=$CSV_EPOCH
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
check_only n2
node_shell w2 "exec 3>&-" || _fail "n2: close failed: $SH_OUT"
wait_for 5 csv_owner_is 3 "$F" "" || _fail "n2 did not release $F on close"

# 2. The source keeps its handle open: n2's write revokes n1.
node_shell w1 "exec 3<>\$CSV/$F && for s in 1 2 3; do $wall n1s\$s \$b || exit 1; done; done" ||
	_fail "n1: writing $F failed: $SH_OUT"
wait_for 5 csv_owner_is 2 "$F" n1 || _fail "n2 does not see n1 own $F"
assert_csv_owner "$F" n1 1 2 3
e3=$CSV_EPOCH
[ "$e3" -gt "$e2" ] || _fail "I1: epoch did not grow ($e2 -> $e3)"
t=$(now_ms)
node_shell w2 "exec 3<>\$CSV/$F && wblk n2 0" || _fail "n2: first write failed: $SH_OUT"
log "2. revoke of an open handle: n2's first write took $(( $(now_ms) - t )) ms (revoke, flush on n1, release, grant)"
node_shell w2 "for b in 1 2 3 4 5 6 7; do wblk n2 \$b || exit 1; done; wblk n2 7 fsync" ||
	_fail "n2: writing $F failed: $SH_OUT"
grep -q 'ownership lost' "$(ndir 1)/csvfs.log" &&
	_fail "n1 reports its file lost on a cooperative revoke"
wait_for 5 csv_owner_is 1 "$F" n2 || _fail "n1 does not see n2 own $F"
assert_csv_owner "$F" n2 1 2 3
e4=$CSV_EPOCH
[ "$e4" -gt "$e3" ] || _fail "I1: epoch did not grow ($e3 -> $e4)"
check_only n2
node_shell w1 "exec 3>&-" || _fail "n1: close failed: $SH_OUT"
check_only n2

# 3. Planned hand-off to n3 ahead of its first write (n2 keeps its
#    handle open, as a paused source would).
t=$(now_ms)
out=$(node_exec 1 timeout 20 "$CV_ADMIN" --socket "$CV_SOCK" --json \
	--timeout 15 handoff "$CV_MNT/$F" n3 2>&1) ||
	_fail "n1: csvfs-admin handoff $F n3 failed: $out"
dt=$(( $(now_ms) - t ))
wait_for 5 csv_owner_is 1 "$F" n3 || _fail "handoff: n1 does not see n3 own $F: '$(csv_owner 1 "$F")'"
log "3. csvfs-admin handoff $F n3: ${dt} ms ($(echo "$out" | jq -c . 2>/dev/null || echo "$out"))"
assert_csv_owner "$F" n3 1 2 3
e5=$CSV_EPOCH
[ "$e5" -gt "$e4" ] || _fail "I1: epoch did not grow ($e4 -> $e5)"
node_shell_start w3 3
t=$(now_ms)
node_shell w3 "exec 3<>\$CSV/$F && $wall n3 \$b || exit 1; done && wblk n3 7 fsync" ||
	_fail "n3: writing $F failed: $SH_OUT"
log "n3 wrote 8 blocks in $(( $(now_ms) - t )) ms after the handoff"
assert_csv_owner "$F" n3 1 2 3
[ "$CSV_EPOCH" = "$e5" ] ||
	_fail "n3's first write took a new grant (epoch $e5 -> $CSV_EPOCH): the handoff was not used"
grep -q 'ownership lost' "$(ndir 2)/csvfs.log" &&
	_fail "n2 reports its file lost on a planned handoff"
check_only n3
node_shell w2 "exec 3>&-" || _fail "n2: close failed: $SH_OUT"

# 4. n3 (still open) gives the handed-off file up cooperatively when n1
#    writes, and takes it back through its handle with a new grant: a
#    write on n3 lands only while n3 owns the file.
t=$(now_ms)
node_sh 1 "printf 'n1 after handoff' | dd of=\$CSV/$F bs=4096 seek=8 conv=notrunc,fsync status=none" ||
	_fail "n1: write after the handoff failed"
log "4. n1's write after the handoff (revoke of n3) took $(( $(now_ms) - t )) ms"
grep -q 'file.*revoke asked' "$(ndir 3)/lockd.log" ||
	_fail "n3's lockd released the handed-off file without asking csvfs (not claimed)"
node_shell w3 "wblk n3 0 fsync" || _fail "n3: write through its handle failed: $SH_OUT"
wait_for 5 csv_owner_is 1 "$F" n3 ||
	_fail "I4: n3 wrote through its handle but does not own $F: '$(csv_owner 1 "$F")'"
assert_csv_owner "$F" n3 1 2 3
e6=$CSV_EPOCH
[ "$e6" -gt "$e5" ] || _fail "I1: epoch did not grow ($e5 -> $e6)"
node_shell w3 "exec 3>&-" || _fail "n3: close failed: $SH_OUT"
wait_for 5 csv_owner_is 1 "$F" "" || _fail "n3 did not release $F on close: '$(csv_owner 1 "$F")'"
log "epochs: $e1 (n1) -> $e2 (n2) -> $e3 (n1) -> $e4 (n2) -> $e5 (n3, handoff) -> $e6 (n3 again)"
assert_csv_tables_identical
_pass
