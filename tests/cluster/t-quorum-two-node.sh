#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# corosync's two_node: 1 (no quorum device): both halves of a split stay
# quorate, so a departed node's files may only be taken after a fence
# command confirmed it (STONITH):
#   A. without a fence command csvfs-lockd refuses to start, and says why;
#   B. with one (tests/cluster/fence-agent.sh, which records and kills the
#      node as a power switch would), kill -9 of the owner n2: n1 stays
#      quorate (corosync's two_node), its lease never ends, it runs the
#      fence command for n2 and a writer on n1 takes the file after the
#      confirmation; the checker finds no block lost or stale.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"

require_netns
require_corosync
require_csvfs
require_dvw
require_bin "$CV_LOCKD" "$CV_ADMIN"

F=vm.img
W="--blocks 64 --pause 2 --fsync-every 8"
CV_QUORUM_CONF="	two_node: 1"
csvfs_setup
cluster_create 2
for i in 1 2; do node_start_corosync "$i"; done
corosync_wait_quorate 2 1 2

# A. refused without a fence command.
node_start_lockd 1
p=${CV_LOCKDPID[1]}
wait_for 10 _pid_gone "$p" || _fail "A: lockd runs with two_node and no fence command"
wait "$p"; rc=$?
CV_LOCKDPID[1]=""
[ "$rc" != 0 ] || _fail "A: lockd exited 0"
grep -q 'two_node: 1 and no quorum device' "$(ndir 1)/lockd.log" ||
	_fail "A: no clear message: $(tail -n 3 "$(ndir 1)/lockd.log")"
log "A: lockd refused to start (rc $rc): $(grep -o 'corosync has two_node.*' "$(ndir 1)/lockd.log" | cut -c1-110)..."

# B. with a fence command.
fence_agent kill
for i in 1 2; do node_start_lockd "$i"; done
cluster_wait_ready 2
status_field 1 '.quorum.two_node' | grep -qx true ||
	_fail "status does not show two_node: $(admin 1 --json status | jq -c .quorum)"
csvfs_mount_all 2
dvw_start w1 2 $F $W --duration 60000
wait_for 10 dvw_wrote w1 $F 100 || _fail "n2's writer does not write"
t_kill=$(date +%s%3N)
node_crash 2
dvw_start w2 1 $F $W --duration 3000
dvw_wait w2 $(( CV_LEASE_MS / 1000 + 30 ))
[ "$DVW_RC" = 0 ] || _fail "n1's writer failed ($DVW_RC): $(cat "$(ndir 1)/dvw-w2.out")"
fo=$(( $(dvw_first_write_ms w2 $F) - t_kill ))
log "B: n1's first write $fo ms after the kill (epoch $(dvw_epoch w1 $F) -> $(dvw_epoch w2 $F)); fence log: $(tr '\n' ';' <"$CV_WORK/fence.log")"
grep -q ' fence n2 ok' "$CV_WORK/fence.log" || _fail "B: n2 was not fenced by the fence command"
fenced=$(awk '$3 == "n2" && $4 == "ok" { print $1; exit }' "$CV_WORK/fence.log")
[ "$(dvw_first_write_ms w2 $F)" -ge "$fenced" ] ||
	_fail "I3: n1 wrote before the fence command confirmed n2's fence"
[ "$(dvw_epoch w2 $F)" -gt "$(dvw_epoch w1 $F)" ] || _fail "I1: epoch did not grow"
[ "$fo" -le $(( CV_LEASE_MS + 8000 )) ] || _fail "failover took $fo ms"
! grep -q 'lease ended' "$(ndir 1)/lockd.log" ||
	_fail "the survivor's lease ended: $(grep -E 'lease ended|not quorate' "$(ndir 1)/lockd.log" | head -3)"
dvw_check $F
_pass
