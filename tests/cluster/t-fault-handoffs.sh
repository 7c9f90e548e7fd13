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
# With CV_NETEM_LOSS=PCT (t-fault-lossy.sh) every node drops PCT% of the
# packets it receives during the hand-offs: tc netem where the kernel has
# sch_netem, else iptables' statistic match (random drop on INPUT), which
# loses packets the same way as far as corosync can tell.
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
LOSS_HOW=netem
if [ -n "$LOSS" ]; then
	rc=1
	if command -v tc >/dev/null; then
		ip netns add "$CV_PREFIX-nt" && ip -n "$CV_PREFIX-nt" link set lo up
		tc -n "$CV_PREFIX-nt" qdisc add dev lo root netem loss 1% 2>/dev/null
		rc=$?
		ip netns del "$CV_PREFIX-nt"
	fi
	if [ "$rc" != 0 ]; then
		LOSS_HOW=iptables
		require_cmd iptables
		iptables -m statistic -h >/dev/null 2>&1 ||
			_notrun "neither tc netem (no sch_netem module) nor iptables' statistic match: packet loss cannot be simulated"
	fi
fi
cluster_start 3
csvfs_mount_all 3

LOSS_ON=0
netem() { # on|off
	local i
	[ -n "$LOSS" ] || return 0
	[ "$1" = on ] && [ "$LOSS_ON" = 1 ] && return 0
	[ "$1" = off ] && [ "$LOSS_ON" = 0 ] && return 0
	[ "$1" = on ] && LOSS_ON=1 || LOSS_ON=0
	for i in 1 2 3; do
		if [ "$LOSS_HOW" = iptables ]; then
			if [ "$1" = on ]; then
				node_exec "$i" iptables -w 5 -I INPUT -i eth0 \
					-m statistic --mode random \
					--probability "0.$(printf %02d "$LOSS")" -j DROP ||
					_fail "iptables loss rule in node $i"
			else
				node_exec "$i" iptables -w 5 -D INPUT -i eth0 \
					-m statistic --mode random \
					--probability "0.$(printf %02d "$LOSS")" -j DROP
			fi
		elif [ "$1" = on ]; then
			tc -n "$(ns_of "$i")" qdisc add dev eth0 root netem loss "$LOSS%"
		else
			tc -n "$(ns_of "$i")" qdisc del dev eth0 root 2>/dev/null
		fi
	done
	log "packet loss $LOSS% ($LOSS_HOW): $1"
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

# handoff_retry K TO: ask again for f$K, up to 5 times.  Under 20% loss
# corosync may not keep a quorate ring at all: after two more tries the
# network heals, and the hand-off must then complete (liveness after the
# fault; safety - one writer, growing epochs, a clean checker - holds
# throughout).
handoff_retry() {
	local k=$1 to=$2 n
	for n in 1 2 3 4 5; do
		if [ "$n" = 3 ] && [ "$LOSS_ON" = 1 ]; then
			log "hand-off of f$k to n$to: no quorate ring under loss; healing the network"
			netem off
		fi
		log "hand-off of f$k to n$to: asking again ($n): $(head -c 200 "$CV_WORK/handoff-$k.out")"
		admin 1 handoff "$CV_MNT/f$k" "n$to" >"$CV_WORK/handoff-$k.out" 2>&1 &&
			return 0
		sleep 1
	done
	return 1
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
		wait "${pids[$k]}" && continue
		# Under packet loss corosync re-forms its ring now and then; a
		# hand-off asked meanwhile is refused (no quorum) or outlives
		# admin's 10 s bound.  An operator asks again: so do we, a
		# bounded number of times (hand-off is idempotent).
		[ -n "$LOSS" ] && handoff_retry "$(( k + 1 ))" "$to" && continue
		_fail "handoff of f$(( k + 1 )) to n$to failed: $(cat "$CV_WORK/handoff-$(( k + 1 )).out")"
	done
	wait_for 60 all_owned_by "$to" || _fail "not all $N files owned by n$to: $(admin 1 --json owners | jq -c 'map(.owner)')"
	log "hand-off of $N files to n$to: all granted in $(( $(now_ms) - t )) ms"
}

# The loss is on during the hand-offs; writers run on a healed network
# (under loss a node may rightly lose its lease and fail writes with EIO).
write_all 1 a
netem on
handoff_all 2
netem off
write_all 2 b
netem on
handoff_all 3
netem off
write_all 3 c
for k in $(seq 1 "$N"); do
	e=$(dvw_epoch "a$k" "f$k") e2=$(dvw_epoch "b$k" "f$k") e3=$(dvw_epoch "c$k" "f$k")
	[ "$e" -lt "$e2" ] && [ "$e2" -lt "$e3" ] || _fail "I1: f$k epochs $e $e2 $e3 do not grow"
done
fault_end $(for k in $(seq 1 "$N"); do echo "f$k"; done)
_pass
