#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Two nodes and a quorum witness (corosync-qnetd in a third namespace,
# corosync-qdevice on both nodes, TLS certificates made by Debian's
# certutil scripts), under the data-verification workload:
#   A. kill -9 of the owner n2 (corosync, qdevice, lockd, csvfs, writer):
#      corosync keeps n1 quorate (its vote + the device's: 2 of 3), and so
#      does the lock table: n1's lease never ends, n1 fences n2 and a
#      writer on n1 takes the file within lease + a few seconds;
#   B. n2 comes back;
#   C. a cut between n1 and n2 while both still reach the witness: qnetd
#      (ffsplit) gives its vote to one side only.  Exactly one side keeps
#      writing: its writer never fails and it takes the other side's file
#      after the fence; the other side's writes fail;
#   then both ready again, tables identical (I5), the checker clean on
#   every file (no block lost or stale).
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"
. "$(dirname "$0")/qdevice.sh"

require_netns
require_corosync
require_qdevice
require_cmd iptables
require_csvfs
require_dvw
require_bin "$CV_LOCKD" "$CV_ADMIN"

F=vm.img
W="--blocks 64 --pause 2 --fsync-every 8"
csvfs_setup
qdevice_cluster_start 2
csvfs_mount_all 2

# What lockd shows of the quorum source.
st=$(admin 1 --json status) || _fail "status failed"
echo "$st" | jq -e '.quorum.qdevice.registered == true and
	.quorum.expected_votes == 3 and .quorum.total_votes == 3' >/dev/null ||
	_fail "status does not show the quorum device: $(echo "$st" | jq -c .quorum)"
admin 1 metrics | grep -q '^csvfs_quorum_setting{node="n1",setting="qdevice_cast_vote"} 1$' ||
	_fail "metrics do not show the device casting its vote"

# A. kill -9 of the owner n2.
dvw_start w1 2 $F $W --duration 60000
wait_for 10 dvw_wrote w1 $F 100 || _fail "n2's writer does not write"
t_kill=$(date +%s%3N)
node_kill_qdevice 2
node_crash 2
wait_for 20 node_qdevice_votes 1 2 ||
	_fail "corosync on n1 is not quorate with the device's vote: $(node_exec 1 corosync-quorumtool -s 2>&1)"
dvw_start w2 1 $F $W --duration 3000
dvw_wait w2 $(( CV_LEASE_MS / 1000 + 30 ))
[ "$DVW_RC" = 0 ] || _fail "n1's writer failed ($DVW_RC): $(cat "$(ndir 1)/dvw-w2.out")"
fo=$(( $(dvw_first_write_ms w2 $F) - t_kill ))
log "failover: n1's first write $fo ms after the kill (epoch $(dvw_epoch w1 $F) -> $(dvw_epoch w2 $F))"
[ "$(dvw_epoch w2 $F)" -gt "$(dvw_epoch w1 $F)" ] || _fail "I1: epoch did not grow"
[ "$fo" -ge $(( CV_LEASE_MS - CV_HB_MS )) ] || _fail "I3: n1 wrote $fo ms after the kill, before n2's lease could end"
[ "$fo" -le $(( CV_LEASE_MS + 8000 )) ] || _fail "failover took $fo ms"
! grep -q 'lease ended' "$(ndir 1)/lockd.log" ||
	_fail "the survivor's lease ended: $(grep -E 'lease ended|not quorate' "$(ndir 1)/lockd.log" | head -3)"
status_field 1 '.quorate' | grep -qx true || _fail "n1's table is not quorate"
dvw_check $F

# B. n2 comes back.
node_exec 2 umount -l "$CV_MNT" 2>/dev/null
wait "${CV_CSVFSPID[2]:-0}" 2>/dev/null
CV_CSVFSPID[2]=""
node_start_corosync 2
corosync_wait_quorate 2 1 2
node_start_qdevice 2
for i in 1 2; do
	wait_for 30 node_qdevice_votes "$i" 3 || _fail "node $i: not 3 votes again"
done
node_start_lockd 2
cluster_wait_ready 2
node_mount_csvfs 2
assert_tables_identical

# C. a cut between the nodes; both reach the witness.
dvw_start a1 1 a.img $W --duration 60000
dvw_start b2 2 b.img $W --duration 60000
wait_for 10 dvw_wrote a1 a.img 50 || _fail "n1's writer does not write"
wait_for 10 dvw_wrote b2 b.img 50 || _fail "n2's writer does not write"
t_cut=$(date +%s%3N)
partition "1" "2"
# ffsplit: one side keeps the device's vote, the other loses quorum.
win=""
for k in $(seq 1 300); do
	dvw_failed a1 a.img && { win=2; break; }
	dvw_failed b2 b.img && { win=1; break; }
	sleep 0.1
done
[ -n "$win" ] || _fail "neither side's writes failed 30 s after the cut"
lose=$(( 3 - win ))
log "cut: n$win kept quorum, n$lose's writes failed $(( $(date +%s%3N) - t_cut )) ms after the cut"
[ "$win" = 1 ] && { wl=a1; wf=a.img; lf=b.img; } || { wl=b2; wf=b.img; lf=a.img; }
# the winner takes the loser's file once the loser is fenced
dvw_start t$win "$win" "$lf" $W --duration 2000
dvw_wait "t$win" $(( CV_LEASE_MS / 1000 + 30 ))
[ "$DVW_RC" = 0 ] || _fail "n$win could not take $lf ($DVW_RC): $(cat "$(ndir "$win")/dvw-t$win.out")"
log "n$win took $lf $(( $(dvw_first_write_ms "t$win" "$lf") - t_cut )) ms after the cut"
# and its own writer never failed
dvw_failed "$wl" "$wf" && _fail "the quorate side n$win had a failed write"
status_field "$lose" '.quorate' | grep -qx false || _fail "n$lose's table still quorate"
# a new writer on the losing side cannot write
dvw_start l$lose "$lose" "$lf" $W --duration 2000
dvw_wait "l$lose" 30
[ "$DVW_RC" != 0 ] || _fail "n$lose wrote without quorum"
dvw_kill "$wl"
heal
for i in 1 2; do
	wait_for 40 node_qdevice_votes "$i" 3 || _fail "node $i: not 3 votes after the heal"
done
cluster_wait_ready 2
node_umount_csvfs "$lose"; node_mount_csvfs "$lose"

fault_end $F a.img b.img
_pass
