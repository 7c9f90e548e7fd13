#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One fencing authority, csvfs asking Pacemaker (csvfs-lockd(8), FENCING):
# every lockd has
#	fence_command = stonith_admin --tolerance 60 --timeout 40 --fence
# and Pacemaker's only fence device is a power switch (fence-cvpower.sh,
# a stand-in that kills every process of a node).
#   - n1 owns file 1 (lkm-probe), n2 waits for it;
#   - n1 is cut off from n2 and n3 (iptables, both ways), alive;
#   - the fencer runs stonith_admin --fence n1; Pacemaker (n2 and n3,
#     quorate) powers n1 off (or already has: --tolerance folds lockd's
#     request into Pacemaker's own fencing of the lost node);
#   - n2 is granted file 1 only after the power switch confirmed, n1's
#     processes are gone, and Pacemaker's history shows n1 fenced.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/pcmk.sh"

require_netns
require_corosync
require_pcmk
require_cmd iptables
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

csvfs_setup
pcmk_setup
CV_LOCKD_CONF="fence_command = stonith_admin --tolerance 60 --timeout 40 --fence
fence_command_timeout_ms = 50000"
cluster_start 3
for i in 1 2 3; do node_pcmk_prepare "$i"; done
pcmk_power_agent
pcmk_start 3
cat >"$CV_WORK/cib.crm" <<CRM
property stonith-enabled=true no-quorum-policy=stop stonith-timeout=60s
primitive fence-power stonith:fence_cvpower \\
	params pcmk_host_list="n1 n2 n3" op monitor interval=60s
CRM
crm_on 1 crm -w configure load update "$CV_WORK/cib.crm" >"$CV_WORK/crm.log" 2>&1 ||
	_fail "crm configure load failed: $(cat "$CV_WORK/crm.log")"
wait_for 60 sh -c "[ -n \"\$(nsenter -t ${CV_UTS[1]} -m -n -u -- crm_resource --locate --resource fence-power 2>/dev/null | grep 'running on')\" ]" ||
	_fail "fence-power not started: $(crm_on 1 crm_mon -1 2>&1)"
log "pacemaker: fence device fence_cvpower registered"

probe_start a 1
probe_start b 2
probe_cmd a "acquire 1 5000"
probe_expect a '^ok acquire 1' 10 || _fail "n1: acquire failed: $PROBE_LINE"
e1=$(field epoch "$PROBE_LINE")
probe_cmd b "acquire 1 90000"
sleep 1

t_cut=$(now_ms)
partition "1" "2 3"
probe_expect b '^(ok|err) acquire 1' 90 ||
	_fail "n2 not granted file 1 (power log: $(cat "$CV_WORK/power.log"))"
t_grant=$(date +%s%3N)
case $PROBE_LINE in ok*) ;; *) _fail "n2: acquire refused: $PROBE_LINE" ;; esac
e2=$(field epoch "$PROBE_LINE")
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow"

t_off=$(awk '$3 == "n1" && ($2 == "off" || $2 == "reboot") { print $1; exit }' "$CV_WORK/power.log")
[ -n "$t_off" ] || _fail "n1 was never powered off by Pacemaker: $(cat "$CV_WORK/power.log")"
[ "$t_grant" -ge "$t_off" ] || _fail "I3: n2 granted file 1 before n1 was powered off"
[ -z "$(node_pids 1)" ] || _fail "n1 still has processes after the power-off"
ran=$(grep -h 'running fence command "stonith_admin' "$(ndir 2)/lockd.log" "$(ndir 3)/lockd.log" | head -n1)
[ -n "$ran" ] || _fail "no lockd ran stonith_admin"
hist=$(crm_on 2 stonith_admin --history n1 2>&1)
echo "$hist" | grep -qi 'success' || _fail "Pacemaker's history has no fencing of n1: $hist"
log "lockd: ${ran#* notice: }"
log "pacemaker: $(echo "$hist" | head -n1)"
log "BENCH pcmk-fence-command: cut -> n1 powered off $(( t_off - t_cut )) ms -> n2 granted file 1 $(( t_grant - t_cut )) ms"
wait_for 10 tables_identical 2 3 || true
assert_tables_identical 2 3
_pass
