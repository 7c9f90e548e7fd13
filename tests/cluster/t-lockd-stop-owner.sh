#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A frozen owner (SIGSTOP of n1's corosync and lockd, as a long pause or
# a hung host would do): the others fence n1 and grant file 1 to n2, but
# never before n1's last announced lease deadline (I3).  When n1 thaws
# (SIGCONT) its client learns at once that the lease is gone and file 1
# is lost; n1 rejoins and takes the cluster's table (I5).
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
sleep 0.5

t_stop=$(now_ms)
node_stop 1
probe_expect b '^(ok|err) acquire 1' $(( CV_LEASE_MS / 1000 + 20 )) ||
	_fail "n2 not granted file 1 while n1 is frozen"
r=$PROBE_LINE
t_grant=$(now_ms)
case $r in ok*) ;; *) _fail "n2: acquire refused: $r" ;; esac
e2=$(field epoch "$r")
log "n2 granted file 1 (epoch $e1 -> $e2) $(( t_grant - t_stop )) ms after the freeze"
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
# n1's lease came from a heartbeat sent at most a heartbeat period before
# the freeze and may run until that send time + lease: a grant seen
# earlier than lease - period after the freeze was certainly too early (I3).
[ $(( t_grant - t_stop )) -ge $(( CV_LEASE_MS - CV_HB_MS )) ] ||
	_fail "I3: grant $(( t_grant - t_stop )) ms after the freeze, n1's lease ($CV_LEASE_MS ms) may still run"
assert_same_owner 1 2 3
[ "$SAME_OWNER" = "n2 $e2" ] || _fail "owners: '$SAME_OWNER', expected 'n2 $e2'"
assert_tables_identical 2 3

t_cont=$(now_ms)
node_cont 1
probe_expect a '^event lost 1( |$)' 5 || _fail "n1 thawed: file 1 not reported lost"
log "n1 thawed: file 1 lost after $(( $(now_ms) - t_cont )) ms"
probe_seen a '^event lease valid=0' || _fail "n1 thawed: no 'lease valid=0' event"
cluster_wait_ready 3
log "n1 back in the ring, all ready $(( $(now_ms) - t_cont )) ms after the thaw"
wait_for 10 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
assert_same_owner 1 1 2 3
[ "$SAME_OWNER" = "n2 $e2" ] || _fail "after the thaw: '$SAME_OWNER', expected 'n2 $e2'"
_pass
