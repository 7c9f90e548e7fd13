#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# One-way cut: packets from n1 no longer reach n2 (n2 still reaches n1,
# n3 reaches both).  What membership corosync settles on is its own
# business; what must hold whatever it does:
#   - an epoch is granted once: two nodes that report the same epoch for
#     file 1 report the same owner (I1), sampled every second of the cut;
#   - if file 1 moved away from n1, n1's client was told it lost it;
#   - after the heal all three are ready, tables identical (I5), one owner.
#
# Liveness.  Under this cut corosync never settles: n1 keeps sending join
# messages that reach n3 but not n2, so the {n2, n3} ring is thrown back
# into gather every consensus timeout (~1.2 s) before its service
# synchronization completes, and CPG delivers nothing there - no
# heartbeat (the majority's own leases end too) and no FENCE message, so
# n1 stays "fencing" for as long as the cut lasts.  No ordered message can
# end that; only removing n1 can.  So this scenario configures a fence
# agent (fence_command) that kills n1's corosync, as a power switch would:
# the fencer (n2) runs it without needing the ring once n1's lease must be
# over, the ring then settles, the FENCE is delivered and n2's pending
# acquire is granted - asserted within a bound below.
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_cmd iptables
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

fence_agent kill
cluster_start 3

probe_start a 1
probe_start b 2
probe_cmd a "acquire 1 5000"
probe_expect a '^(ok|err) acquire 1' 10 || _fail "n1: no reply to acquire"
case $PROBE_LINE in ok*) ;; *) _fail "n1: acquire refused: $PROBE_LINE" ;; esac
e1=$(field epoch "$PROBE_LINE")
log "n1 owns file 1, epoch $e1"
probe_cmd b "acquire 1 60000"

t_cut=$(now_ms)
cut_oneway 1 2
declare -A seen=()
samples=0
t_grant=""
# n1's lease must be over (lease * 1.01 + 500 ms) before the agent runs,
# then corosync re-forms (~3 s) and the FENCE is ordered.
limit=$(( CV_LEASE_MS * 2 + 15000 ))
while [ $(( $(now_ms) - t_cut )) -lt "$limit" ]; do
	if probe_seen b '^(ok|err) acquire 1'; then
		t_grant=$(now_ms)
		break
	fi
	for i in 1 2 3; do
		node_ready "$i" 3 || node_ready "$i" 2 || continue
		o=$(owner_of "$i" 1) || continue
		own=${o%% *} ep=${o#* }
		[ "$own" = null ] && continue
		if [ -n "${seen[$ep]:-}" ] && [ "${seen[$ep]}" != "$own" ]; then
			_fail "I1: epoch $ep granted to ${seen[$ep]} and to $own"
		fi
		seen[$ep]=$own
		samples=$(( samples + 1 ))
	done
	sleep 1
done
[ -n "$t_grant" ] ||
	_fail "liveness: n2 not granted file 1 within $limit ms of the cut (fence log: $(cat "$CV_WORK/fence.log"))"
probe_expect b '^(ok|err) acquire 1' 1 || _fail "n2: reply vanished"
case $PROBE_LINE in ok*) ;; *) _fail "n2: acquire refused: $PROBE_LINE" ;; esac
e2=$(field epoch "$PROBE_LINE")
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
grep -q ' fence n1 ok' "$CV_WORK/fence.log" ||
	_fail "n2 granted file 1 without a confirmed fence of n1"
log "liveness: n2 granted file 1 (epoch $e2) $(( t_grant - t_cut )) ms after the cut"
log "cut: $samples owner samples, grants seen: $(for e in "${!seen[@]}"; do printf '%s@%s ' "${seen[$e]}" "$e"; done)"

for i in 1 2 3; do
	log "n$i during the cut: $(admin "$i" --json status 2>/dev/null |
		jq -c '{quorate, ready, members}')"
	log "n$i nodes: $(admin "$i" --json nodes 2>/dev/null | jq -c 'map({name, state})')"
done

t_heal=$(now_ms)
heal
probe_stop a
node_start_corosync 1
corosync_wait_quorate 3 1 2 3
node_start_lockd 1
cluster_wait_ready 3
log "all 3 ready $(( $(now_ms) - t_heal )) ms after the heal"
wait_for 10 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
assert_same_owner 1 1 2 3
log "file 1 after the heal: $SAME_OWNER"
[ "$SAME_OWNER" = "n2 $e2" ] ||
	_fail "after the heal: file 1 '$SAME_OWNER', expected 'n2 $e2'"
_pass
