#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Partition 1 | 2 3 with n1 owning file 1 and n2 waiting for it.
#   minority (n1): loses quorum; its client gets "lease valid=0" and
#     "lost 1" within lease_timeout + corosync's detection time; it
#     grants nothing;
#   majority (n2, n3): fences n1, then grants file 1 to n2 with a higher
#     epoch, never before n1's last announced lease deadline (I2, I3);
#   heal: n1 rejoins, takes the majority's table (never merges its own):
#     all three tables identical and n1 is no longer the owner (I5).
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_cmd iptables
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

cluster_start 3

probe_start a 1
probe_start b 2
probe_start c 3
# A survivor's own file: the majority keeps quorum, so n3 keeps it.
probe_cmd c "acquire 3 5000"
probe_expect c '^(ok|err) acquire 3' 10 || _fail "n3: no reply to acquire 3"
case $PROBE_LINE in ok*) ;; *) _fail "n3: acquire 3 refused: $PROBE_LINE" ;; esac
e3=$(field epoch "$PROBE_LINE")
probe_cmd a "acquire 1 5000"
probe_expect a '^(ok|err) acquire 1' 10 || _fail "n1: no reply to acquire"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n1: acquire refused: $r" ;; esac
e1=$(field epoch "$r")
log "n1 owns file 1, epoch $e1"
wait_for 5 probe_seen a '^event lease valid=1' || _fail "n1's client never got a valid lease"
probe_cmd b "acquire 1 60000"
sleep 0.5
probe_seen b '^(ok|err) acquire 1' && _fail "n2 answered while n1 holds file 1"

t_cut=$(now_ms)
partition "1" "2 3"

# Minority: the lease ends and file 1 is lost, in bounded time.
limit=$(( (CV_LEASE_MS + 5000) / 1000 ))
probe_expect a '^event lease valid=0' "$limit" ||
	_fail "n1: no 'lease valid=0' within ${limit}s of the cut"
log "n1 lease invalid $(( $(now_ms) - t_cut )) ms after the cut"
probe_expect a '^event lost 1( |$)' "$limit" ||
	_fail "n1: file 1 not reported lost within ${limit}s of the cut"
log "n1 lost file 1 $(( $(now_ms) - t_cut )) ms after the cut"
# The lease may end (no heartbeat delivered) before corosync even
# reports the new membership; quorum loss follows.
n1_minority() {
	admin 1 --json status 2>/dev/null |
		jq -e '.quorate == false and .ready == false' >/dev/null
}
wait_for 10 n1_minority ||
	_fail "I2: minority n1 still claims quorum/readiness: $(admin 1 --json status)"
log "n1 not quorate $(( $(now_ms) - t_cut )) ms after the cut"

# Majority: fence n1, grant file 1 to n2.
probe_expect b '^(ok|err) acquire 1' $(( limit + 10 )) ||
	_fail "majority: n2 not granted file 1 within $(( limit + 10 ))s of the cut"
r=$PROBE_LINE
t_grant=$(now_ms)
case $r in ok*) ;; *) _fail "n2: acquire refused: $r" ;; esac
e2=$(field epoch "$r")
log "majority granted file 1 to n2 (epoch $e1 -> $e2) $(( t_grant - t_cut )) ms after the cut"
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
# n1's lease came from a heartbeat sent at most a heartbeat period before
# the cut and may run until that send time + lease: a grant seen earlier
# than lease - period after the cut was certainly too early (I3).
[ $(( t_grant - t_cut )) -ge $(( CV_LEASE_MS - CV_HB_MS )) ] ||
	_fail "I3: grant $(( t_grant - t_cut )) ms after the cut, n1's lease ($CV_LEASE_MS ms) may still run"
assert_same_owner 1 2 3
o=$SAME_OWNER
[ "$o" = "n2 $e2" ] || _fail "majority owners: '$o', expected 'n2 $e2'"
assert_tables_identical 2 3
probe_seen c '^event lost 3( |$)' &&
	_fail "survivor n3 lost file 3 across the membership change (lease_timeout_ms $CV_LEASE_MS)"
assert_same_owner 3 2 3
[ "$SAME_OWNER" = "n3 $e3" ] || _fail "file 3 moved on the majority: '$SAME_OWNER'"

# The minority grants nothing meanwhile.
probe_cmd a "acquire 2 1000"
probe_expect a '^(ok|err) acquire 2' 10 || _fail "n1: no reply to acquire 2"
r=$PROBE_LINE
case $r in ok*) _fail "I2: minority n1 granted file 2: $r" ;; esac
log "minority refuses: $r"

# Heal: n1 merges back and takes the majority's table.
t_heal=$(now_ms)
heal
cluster_wait_ready 3
log "all 3 ready $(( $(now_ms) - t_heal )) ms after the heal"
wait_for 10 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
assert_same_owner 1 1 2 3
o=$SAME_OWNER
[ "$o" = "n2 $e2" ] || _fail "after the merge: '$o', expected 'n2 $e2'"
probe_expect a '^event lease valid=1' 10 || _fail "n1's lease not renewed after the merge"
_pass
