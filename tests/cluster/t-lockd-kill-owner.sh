#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Unplanned failure of the owner: n1 owns file 1, n2 waits for it; n1's
# corosync and lockd are killed (SIGKILL).  The survivors show n1 as
# "fencing" until its lease must have run out, then fence it and grant
# file 1 to n2 with a higher epoch (I1, I3).  Then n1 comes back with an
# empty table and takes the cluster's table (I5).
#
# The lease (5000 ms by default) is longer than corosync's failure
# detection (~3 s here), so the fencing state is visible for a while.
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

cluster_start 3

probe_start a 1
probe_start b 2
probe_cmd a "acquire 1 5000"
probe_expect a '^(ok|err) acquire 1' 10 || _fail "n1: no reply to acquire"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n1: acquire refused: $r" ;; esac
e1=$(field epoch "$r")
log "n1 owns file 1, epoch $e1"

probe_cmd b "acquire 1 60000"
sleep 1
probe_seen b '^(ok|err) acquire 1' && _fail "n2's acquire answered while n1 holds file 1: $(tail -n1 "$(probe_log b)")"
assert_tables_identical 1 2 3

t_kill=$(now_ms)
node_kill 1

# Watch from n2: n1 down -> fencing -> down, and the grant.
t_fencing="" t_grant="" t_down=""
deadline=$(( t_kill + 3 * CV_LEASE_MS + 20000 ))
while [ "$(now_ms)" -lt "$deadline" ]; do
	st=$(admin 2 --json nodes 2>/dev/null | jq -r '.[] | select(.name == "n1") | .state')
	now=$(now_ms)
	if [ "$st" = fencing ] && [ -z "$t_fencing" ]; then
		t_fencing=$now
		log "n2 sees n1 fencing ($(( now - t_kill )) ms after the kill)"
	fi
	if probe_seen b '^(ok|err) acquire 1'; then
		t_grant=$now
		break
	fi
	sleep 0.1
done
[ -n "$t_grant" ] || _fail "n2 not granted file 1 within $(( deadline - t_kill )) ms of the kill"
probe_expect b '^(ok|err) acquire 1' 1 || _fail "n2: reply vanished"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n2: acquire refused after the kill: $r" ;; esac
e2=$(field epoch "$r")
log "n2 granted file 1 (epoch $e1 -> $e2) $(( t_grant - t_kill )) ms after the kill"
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow after fencing ($e1 -> $e2)"
[ -n "$t_fencing" ] || _fail "I3: n1 never showed 'fencing' on n2 before the grant"
# n1's last heartbeat was delivered at most a heartbeat period before the
# kill, so its lease ran out no earlier than kill + lease - period: no
# grant before.
min=$(( CV_LEASE_MS - CV_HB_MS ))
[ $(( t_grant - t_kill )) -ge "$min" ] ||
	_fail "I3: grant $(( t_grant - t_kill )) ms after the kill, before n1's lease ($CV_LEASE_MS ms) could end"

wait_for 5 node_state_is 3 n1 down || _fail "n3 does not see n1 down: $(admin 3 --json nodes)"
wait_for 5 owner_is 3 1 n2 || _fail "n3 does not see n2 own file 1: $(owner_of 3 1)"
assert_same_owner 1 2 3
o=$SAME_OWNER
[ "$o" = "n2 $e2" ] || _fail "owners: '$o', expected 'n2 $e2'"
node_ready 2 2 || _fail "n2 not ready with 2 members after the failover"
assert_tables_identical 2 3

# n1 restarts: empty table, takes the cluster's by state transfer.
t=$(now_ms)
node_start_corosync 1
corosync_wait_quorate 3 1 2 3
node_start_lockd 1
cluster_wait_ready 3
log "n1 back and ready in $(( $(now_ms) - t )) ms"
wait_for 10 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
assert_same_owner 1 1 2 3
o=$SAME_OWNER
[ "$o" = "n2 $e2" ] || _fail "after n1's return: '$o', expected 'n2 $e2'"
node_state_is 2 n1 up || _fail "n2 does not see n1 up: $(admin 2 --json nodes)"
_pass
