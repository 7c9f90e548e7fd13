#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Simultaneous hand-offs of 50 files under the data-verification workload
# (a node drained of 50 VMs at once):
#   n1 writes 50 files (one dvw writer each, all at once); csvfs-admin
#   handoff moves all 50 to n2 at once (50 parallel admin calls); once n2
#   owns them all, 50 writers on n2 write them at once; then all 50 move
#   to n3 the same way while nothing writes, and 50 writers on n3 write.
#   Every hand-off grants a higher epoch; every node ready, tables
#   identical (I5), the checker clean on all 50 files.
# With CV_NETEM_LOSS=PCT (t-fault-lossy.sh) every node's link drops PCT%
# of its packets (tc netem) during the hand-offs.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"

require_netns
require_corosync
require_csvfs
require_dvw
require_bin "$CV_LOCKD" "$CV_ADMIN"

N=${CV_FILES:-50}
W="--blocks 8 --pause 1 --fsync-every 4"
LOSS=${CV_NETEM_LOSS:-}
csvfs_setup
if [ -n "$LOSS" ]; then
	require_cmd tc
	ip netns add "$CV_PREFIX-nt" && ip -n "$CV_PREFIX-nt" link set lo up
	tc -n "$CV_PREFIX-nt" qdisc add dev lo root netem loss 1% 2>/dev/null
	rc=$?
	ip netns del "$CV_PREFIX-nt"
	[ "$rc" = 0 ] || _notrun "tc netem does not work here (no sch_netem module in this kernel): packet loss cannot be simulated"
fi
cluster_start 3
csvfs_mount_all 3

netem() { # on|off
	local i
	[ -n "$LOSS" ] || return 0
	for i in 1 2 3; do
		if [ "$1" = on ]; then
			tc -n "$(ns_of "$i")" qdisc add dev eth0 root netem loss "$LOSS%"
		else
			tc -n "$(ns_of "$i")" qdisc del dev eth0 root 2>/dev/null
		fi
	done
	log "netem loss $LOSS%: $1"
}

# write_all I TAG: one writer per file on node I, all at once, all done.
write_all() {
	local i=$1 tag=$2 k t
	t=$(now_ms)
	for k in $(seq 1 "$N"); do dvw_start "$tag$k" "$i" "f$k" $W --count 32; done
	for k in $(seq 1 "$N"); do
		dvw_wait "$tag$k" 60
		[ "$DVW_RC" = 0 ] || _fail "n$i: writer of f$k failed ($DVW_RC): $(cat "$(ndir "$i")/dvw-$tag$k.out")"
	done
	log "n$i: $N files written at once in $(( $(now_ms) - t )) ms"
}

all_owned_by() { # NODE-I: every file owned by nI on node 1
	local k n
	n=$(admin 1 --json owners 2>/dev/null | jq --arg o "n$1" '[.[] | select(.owner == $o)] | length')
	[ "${n:-0}" -ge "$N" ]
}

# handoff_all TO: 50 parallel csvfs-admin handoff calls from node 1.
handoff_all() {
	local to=$1 k t pids=()
	t=$(now_ms)
	for k in $(seq 1 "$N"); do
		admin 1 handoff "$CV_MNT/f$k" "n$to" >"$CV_WORK/handoff-$k.out" 2>&1 &
		pids+=($!)
	done
	for k in "${!pids[@]}"; do
		wait "${pids[$k]}" || _fail "handoff of f$(( k + 1 )) to n$to failed: $(cat "$CV_WORK/handoff-$(( k + 1 )).out")"
	done
	wait_for 60 all_owned_by "$to" || _fail "not all $N files owned by n$to: $(admin 1 --json owners | jq -c 'map(.owner)')"
	log "hand-off of $N files to n$to: all granted in $(( $(now_ms) - t )) ms"
}

write_all 1 a
netem on
handoff_all 2
write_all 2 b
handoff_all 3
netem off
write_all 3 c
for k in $(seq 1 "$N"); do
	e=$(dvw_epoch "a$k" "f$k") e2=$(dvw_epoch "b$k" "f$k") e3=$(dvw_epoch "c$k" "f$k")
	[ "$e" -lt "$e2" ] && [ "$e2" -lt "$e3" ] || _fail "I1: f$k epochs $e $e2 $e3 do not grow"
done
fault_end $(for k in $(seq 1 "$N"); do echo "f$k"; done)
_pass
