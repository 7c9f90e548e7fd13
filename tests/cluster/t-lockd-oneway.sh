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
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_cmd iptables
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

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
while [ $(( $(now_ms) - t_cut )) -lt 12000 ]; do
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
log "cut: $samples owner samples, grants seen: $(for e in "${!seen[@]}"; do printf '%s@%s ' "${seen[$e]}" "$e"; done)"

for i in 1 2 3; do
	log "n$i during the cut: $(admin "$i" --json status 2>/dev/null |
		jq -c '{quorate, ready, members}')"
	log "n$i nodes: $(admin "$i" --json nodes 2>/dev/null | jq -c 'map({name, state})')"
done

t_heal=$(now_ms)
heal
cluster_wait_ready 3
log "all 3 ready $(( $(now_ms) - t_heal )) ms after the heal"
wait_for 10 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
assert_same_owner 1 1 2 3
log "file 1 after the heal: $SAME_OWNER"
own=${SAME_OWNER%% *}
if [ "$own" != n1 ]; then
	probe_seen a '^event lost 1( |$)' ||
		_fail "file 1 moved to $own but n1's client was never told it lost it"
fi
if probe_seen b '^ok acquire 1'; then
	[ "$own" = n2 ] || [ "$own" = null ] || _fail "n2 was granted file 1 but $own owns it after the heal"
fi
_pass
