#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# corosync's last_man_standing with auto_tie_breaker on 4 nodes, under
# the data-verification workload:
#   A. n4, n3 and n2 are killed one by one, each after votequorum lowered
#      expected votes (last_man_standing_window): n1's writer never fails,
#      and n1 alone is still quorate (1 of 2 with the tie-breaker, then 1
#      of 1) and can take new files;
#   B. everything back, then a 2|2 split: auto_tie_breaker keeps the half
#      with the lowest node id (n1 n2); the other half's writes fail, the
#      kept half's never do, and it takes the other half's file after the
#      fence;
#   then all ready, tables identical (I5), the checker clean.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"

require_netns
require_corosync
require_cmd iptables
require_csvfs
require_dvw
require_bin "$CV_LOCKD" "$CV_ADMIN"

LMS_MS=3000
W="--blocks 64 --pause 2 --fsync-every 8"
CV_QUORUM_CONF="	last_man_standing: 1
	last_man_standing_window: $LMS_MS
	auto_tie_breaker: 1"
csvfs_setup
cluster_start 4
csvfs_mount_all 4
st=$(admin 1 --json status | jq -c .quorum)
echo "$st" | jq -e '.last_man_standing and .auto_tie_breaker' >/dev/null ||
	_fail "status does not show last_man_standing and auto_tie_breaker: $st"

# expected_is I N: node I's votequorum expects N votes.
expected_is() {
	node_exec "$1" timeout 5 corosync-quorumtool -s 2>/dev/null |
		grep -Eq "^Expected votes: +$2\$"
}

# A. down to the last node.
dvw_start w1 1 a.img $W --duration 90000
wait_for 10 dvw_wrote w1 a.img 100 || _fail "n1's writer does not write"
for k in 4 3 2; do
	node_crash "$k"
	wait_for $(( LMS_MS / 1000 + 20 )) expected_is 1 $(( k - 1 )) ||
		_fail "n1: expected votes did not drop to $(( k - 1 )): $(node_exec 1 corosync-quorumtool -s 2>&1)"
	n=$(dvw_writes w1 a.img)
	wait_for 10 dvw_wrote w1 a.img $(( n + 50 )) ||
		_fail "n1's writer stopped writing with $(( k - 1 )) node(s) left"
	dvw_failed w1 a.img && _fail "n1's writes failed with $(( k - 1 )) node(s) left"
	log "A: $(( k - 1 )) node(s) left: quorate, n1 writes ($(admin 1 status | grep -E '^q\. source' | cut -c1-120))"
done
status_field 1 '.quorate' | grep -qx true || _fail "n1's table is not quorate alone"
dvw_start n1b 1 b.img $W --duration 1500
dvw_wait n1b 30
[ "$DVW_RC" = 0 ] || _fail "n1 alone cannot take a new file ($DVW_RC)"
dvw_kill w1
! grep -q 'lease ended' "$(ndir 1)/lockd.log" ||
	_fail "n1's lease ended on the way down: $(grep -E 'lease ended|not quorate' "$(ndir 1)/lockd.log" | head -3)"
dvw_check a.img

# B. all back, then 2|2.
for k in 2 3 4; do
	node_exec "$k" umount -l "$CV_MNT" 2>/dev/null
	wait "${CV_CSVFSPID[$k]:-0}" 2>/dev/null
	CV_CSVFSPID[$k]=""
	node_start_corosync "$k"
done
corosync_wait_quorate 4 1 2 3 4
for k in 2 3 4; do node_start_lockd "$k"; done
cluster_wait_ready 4
for k in 2 3 4; do node_mount_csvfs "$k"; done
dvw_start a1 1 a.img $W --duration 60000
dvw_start c3 3 c.img $W --duration 60000
wait_for 10 dvw_wrote a1 a.img 50 || _fail "n1's writer does not write"
wait_for 10 dvw_wrote c3 c.img 50 || _fail "n3's writer does not write"
t=$(date +%s%3N)
partition "1 2" "3 4"
wait_for 20 dvw_failed c3 c.img || _fail "B: n3's writes did not fail in the half without the tie-breaker"
log "B: n3's writes failed $(( $(date +%s%3N) - t )) ms after the split"
dvw_start c1 1 c.img $W --duration 2000
dvw_wait c1 $(( CV_LEASE_MS / 1000 + 30 ))
[ "$DVW_RC" = 0 ] || _fail "B: n1 could not take c.img ($DVW_RC)"
log "B: n1 took c.img $(( $(dvw_first_write_ms c1 c.img) - t )) ms after the split"
dvw_failed a1 a.img && _fail "B: the kept half had a failed write"
for k in 3 4; do
	status_field "$k" '.quorate' | grep -qx false || _fail "B: n$k's table still quorate"
done
dvw_kill a1
heal
cluster_wait_ready 4
for k in 3 4; do node_umount_csvfs "$k"; node_mount_csvfs "$k"; done

fault_end a.img c.img
_pass
