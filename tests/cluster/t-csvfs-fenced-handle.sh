#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A node cut off while it has a VM disk open for write (doc/design.md §2.4):
#   n1 opens the file, writes and keeps writing block 2 through the same
#     handle in a loop (a VM that keeps running);
#   partition n1 | n2 n3: n1's lease ends, its writes fail with EIO; the
#     majority fences n1 and only then n2's write (blocked in acquire)
#     goes through, with a higher epoch;
#   n1's next write through the old handle fails with EIO (poisoned), and
#     none of n1's bytes reach the backing file after n2's first write;
#   after the heal n1 takes the majority's table (owner n2 everywhere,
#     tables identical), the old handle stays poisoned, and a NEW open on
#     n1 writes normally.
#
# The lease (CV_LEASE_MS) must outlast corosync's membership change
# (token 1000 + consensus 1200 ms in common.sh): no heartbeat is
# delivered anywhere while the ring re-forms, so a shorter lease also
# ends on the majority, which would lose its own files.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_cmd iptables
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN"

csvfs_setup
cluster_start 3
csvfs_mount_all 3

F=vm1.img
# n1 opens the disk and writes blocks 0-3.
node_shell_start w1 1
node_shell w1 "exec 3<>\$CSV/$F && for b in 0 1 2 3; do wblk n1 \$b; done && sync \$CSV/$F" ||
	_fail "n1: writing $F failed: $SH_OUT"
wait_for 5 csv_owner_is 3 "$F" n1 || _fail "n3 does not see n1 own $F"
assert_csv_owner "$F" n1 1 2 3
e1=$CSV_EPOCH
# n2 opens it too (reads only, no ownership yet).
node_shell_start w2 2
node_shell w2 "exec 3<>\$CSV/$F" || _fail "n2: open failed: $SH_OUT"

# n1 keeps writing block 2 through its handle, each write tagged with
# its sequence number, and stops at the first error.
node_shell_send w1 'for s in $(seq 1 2000); do
	if wblk "n1s$s" 2; then echo "@@ok $s $(date +%s%N)";
	else echo "@@eio $s $(date +%s%N)"; break; fi; sleep 0.01; done'
loop=$SH_SEQ
sleep 0.5
grep -q '^@@ok ' "$(ndir 1)/sh-w1.log" || _fail "n1's write loop does not write"

t_cut=$(now_ms)
partition "1" "2 3"

# n2 writes blocks 0-3: blocked in acquire until n1 is fenced.
node_shell_send w2 'for b in 0 1 2 3; do wblk n2 $b fsync || exit 1; done'
w2seq=$SH_SEQ
node_shell_wait w1 "$loop" 20 ||
	true # the loop ends with EIO: its status is that of the echo
grep -q '^@@eio ' "$(ndir 1)/sh-w1.log" ||
	_fail "n1's writes did not fail within 20 s of the cut: $(tail -n 3 "$(ndir 1)/sh-w1.log")"
eio=$(grep '^@@eio ' "$(ndir 1)/sh-w1.log" | tail -n1)
last_ok=$(grep '^@@ok ' "$(ndir 1)/sh-w1.log" | tail -n1)
t_eio=$(( $(echo "$eio" | cut -d' ' -f3) / 1000000 ))
t_lastok=$(( $(echo "$last_ok" | cut -d' ' -f3) / 1000000 ))
log "n1: last good write s=$(echo "$last_ok" | cut -d' ' -f2) $(( t_lastok - t_cut )) ms after the cut, EIO on s=$(echo "$eio" | cut -d' ' -f2) $(( t_eio - t_cut )) ms after the cut"

node_shell_wait w2 "$w2seq" 40 || _fail "n2: write after the cut failed: $SH_OUT"
t_n2=$(now_ms)
log "n2's first write done $(( t_n2 - t_cut )) ms after the cut (fencing + acquire)"
[ "$t_lastok" -lt "$t_n2" ] || _fail "n1 wrote at $t_lastok, after n2's write at $t_n2"
wait_for 5 csv_owner_is 3 "$F" n2 || _fail "n3 does not see n2 own $F: '$(csv_owner 3 "$F")'"
assert_csv_owner "$F" n2 2 3
e2=$CSV_EPOCH
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
log "majority: owner n2, epoch $e1 -> $e2"
grep -q 'ownership lost' "$(ndir 1)/csvfs.log" ||
	_fail "n1's csvfs did not report the loss of $F"

# n1's next write through the old handle: EIO, nothing reaches the disk.
node_shell w1 'wblk n1late 1 && wblk n1late 5' &&
	_fail "I4: n1 wrote through its old handle after being fenced"
echo "$SH_OUT" | grep -q 'Input/output error' ||
	_fail "n1's late write failed, but not with EIO: $SH_OUT"
log "n1's write through the old handle after n2's: $SH_OUT"
expect_tags 2 "$F" 0 4 n2 n2 n2 n2
expect_tags 3 "$F" 0 4 n2 n2 n2 n2
for b in 0 1 2 3; do
	[ "$(block_tag "$CV_BACKING/$F" "$b")" = "n2blk=$b" ] ||
		_fail "backing block $b is '$(block_tag "$CV_BACKING/$F" "$b")', not n2's"
done
grep -aq 'n1' "$CV_BACKING/$F" && _fail "I4: bytes of n1 in the backing file after n2's write"
[ "$(stat -c %s "$CV_BACKING/$F")" = 16384 ] ||
	_fail "backing file is $(stat -c %s "$CV_BACKING/$F") bytes, not 16384"
log "backing file: n2's blocks 0-3 only, no byte of n1"

# Heal: n1 takes the majority's table; the old handle stays poisoned.
t=$(now_ms)
heal
cluster_wait_ready 3
log "all 3 ready $(( $(now_ms) - t )) ms after the heal"
assert_csv_tables_identical
assert_csv_owner "$F" n2 1 2 3
[ "$CSV_EPOCH" = "$e2" ] || _fail "owner epoch changed over the heal: $e2 -> $CSV_EPOCH"
node_shell w1 'wblk n1late 1' &&
	_fail "n1's poisoned handle wrote again after the heal"
echo "$SH_OUT" | grep -q 'Input/output error' ||
	_fail "n1's poisoned handle: not EIO after the heal: $SH_OUT"
log "n1's old handle still fails after the heal: $SH_OUT"
grep -aq 'n1' "$CV_BACKING/$F" && _fail "bytes of n1's old handle in the backing file"

# n2 closes (releases); a new open on n1 works and takes ownership.
node_shell w2 "exec 3>&-" || _fail "n2: close failed"
wait_for 5 csv_owner_is 1 "$F" "" || _fail "n2 did not release $F: '$(csv_owner 1 "$F")'"
node_shell_start w1b 1
t=$(now_ms)
node_shell w1b "exec 3<>\$CSV/$F && wblk n1new 4 fsync" ||
	_fail "n1: write through a new handle after the heal failed: $SH_OUT"
log "n1's new handle wrote block 4 in $(( $(now_ms) - t )) ms"
wait_for 5 csv_owner_is 3 "$F" n1 || _fail "n3 does not see n1 own $F again"
assert_csv_owner "$F" n1 1 2 3
[ "$CSV_EPOCH" -gt "$e2" ] || _fail "I1: epoch did not grow ($e2 -> $CSV_EPOCH)"
expect_tags 3 "$F" 0 5 n2 n2 n2 n2 n1new
node_shell w1b "exec 3>&-" || _fail "n1: close of the new handle failed"
# Closing the poisoned handle must not hurt anything either.
node_shell w1 "exec 3>&-" || log "n1: close of the poisoned handle: $SH_OUT"
wait_for 5 csv_owner_is 2 "$F" "" || _fail "n1 did not release $F on close"
expect_tags 2 "$F" 0 5 n2 n2 n2 n2 n1new
assert_csv_tables_identical
_pass
