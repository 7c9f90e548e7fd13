#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Rolling upgrade of csvfs-lockd, with test builds that speak other
# cluster protocol versions (tests/Makefile.am): csvfs-lockd-next speaks
# 2..3 (version 3 heartbeats carry the sender's lease, so the wire shows
# which version a node encodes at), csvfs-lockd-v3 speaks 3 only.
#
#  1. n1 runs the next build, n2 and n3 the release: the cluster runs
#     version 2, n1 encodes at 2 (its heartbeats arrive at 2 without the
#     lease field, nobody drops anything), and hand-offs and a failover
#     (kill -9 of n1 while it owns a file) work across the mix.
#  2. n2 then n3 are restarted with the next build, one at a time: the
#     version stays 2 while n3 runs the release, moves to 3 once all
#     speak it (heartbeats at 3, with the lease), hand-offs still work.
#  3. n1 is restarted with the 3-only build, then n2 with the release
#     (2 only): too old for the cluster, it is kept out - state
#     "incompatible" in csvfs-admin nodes, a clear line in its log and
#     in the others', its client requests refused - while n1 and n3 go on
#     granting and handing off.
. "$(dirname "$0")/common.sh"

NEXT=${CV_LOCKD_NEXT:-$top_builddir/tests/cluster/csvfs-lockd-next}
V3=${CV_LOCKD_V3:-$top_builddir/tests/cluster/csvfs-lockd-v3}

require_netns
require_corosync
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE" "$NEXT" "$V3"

# cluster_proto_is V NODES...: those lockds run cluster protocol V.
cluster_proto_is() {
	local v=$1 i
	shift
	for i in "$@"; do
		[ "$(status_field "$i" '.cluster_protocol')" = "$v" ] || return 1
	done
}

# node_field I NAME JQ: a field of node NAME's row in node I's nodes list.
node_field() {
	admin "$1" --json nodes 2>/dev/null |
		jq -r --arg n "$2" ".[] | select(.name == \$n) | $3"
}

# wire_is V LEASE NODES...: every listed node got the last heartbeat of
# every listed node (itself included) at version V, with lease field LEASE
# ("null" below version 3).
wire_is() {
	local v=$1 lease=$2 i j
	shift 2
	for i in "$@"; do
		for j in "$@"; do
			[ "$(node_field "$i" "n$j" .heartbeat_protocol)" = "$v" ] ||
				return 1
			[ "$(node_field "$i" "n$j" .lease_timeout_ms)" = "$lease" ] ||
				return 1
		done
	done
}

# acquire_ok PROBE FILE: the probe acquires FILE; its epoch goes to EPOCH.
acquire_ok() {
	probe_cmd "$1" "acquire $2 15000"
	probe_expect "$1" "^(ok|err) acquire $2 " 20 ||
		_fail "probe $1: no reply to acquire $2"
	case $PROBE_LINE in
	ok*) ;;
	*) _fail "probe $1: acquire $2 refused: $PROBE_LINE" ;;
	esac
	EPOCH=$(field epoch "$PROBE_LINE")
}

# handoffs FILE PROBES...: each probe in turn takes FILE from the one
# before (revoke, release, grant); the epoch grows each time.
handoffs() {
	local f=$1 p last=0
	shift
	for p in "$@"; do
		acquire_ok "$p" "$f"
		[ "$EPOCH" -gt "$last" ] || _fail "I1: file $f epoch $last -> $EPOCH"
		last=$EPOCH
	done
	log "file $f handed over along $* (epoch $last)"
}

# restart_lockd I BIN: a rolling upgrade step on node I.
restart_lockd() {
	local i=$1
	node_stop_lockd "$i"
	CV_LOCKD_BIN[$i]=$2
	node_start_lockd "$i"
	log "node $i: lockd restarted as $(basename "$2")"
}

# undecodable I: how many kinds of message node I could not read so far
# (said once per sender and version).  A lockd alone at start runs its
# own highest version until the others join, so the count starts once
# the cluster has formed.
undecodable() { grep -c 'which this node .* does not speak' "$(ndir "$1")/lockd.log"; }
declare -a BASE=()
undecodable_same() {
	local i
	for i in 1 2 3; do
		[ "$(undecodable "$i")" = "${BASE[$i]}" ] ||
			_fail "node $i dropped messages it could not read ($1)"
	done
}

# ---- 1. a mixed cluster runs version 2 ----
CV_LOCKD_BIN[1]=$NEXT
cluster_start 3
wait_for 10 cluster_proto_is 2 1 2 3 ||
	_fail "mixed cluster not at version 2: $(admin 1 --json status)"
[ "$(node_field 2 n1 '"\(.protocol_min)..\(.protocol_max)"')" = "2..3" ] ||
	_fail "n2 does not show n1 speaking 2..3: $(admin 2 --json nodes)"
[ "$(node_field 1 n3 '"\(.protocol_min)..\(.protocol_max)"')" = "2..2" ] ||
	_fail "n1 does not show n3 speaking 2..2: $(admin 1 --json nodes)"
wait_for 10 wire_is 2 null 1 2 3 ||
	_fail "heartbeats not all at version 2: $(admin 1 --json nodes)"
log "mixed cluster (n1 2..3, n2 n3 2..2) runs version 2; n1 encodes at 2"
for i in 1 2 3; do BASE[$i]=$(undecodable "$i"); done

probe_start a 1 --auto-release
probe_start b 2 --auto-release
probe_start c 3 --auto-release
handoffs 1 a b c a
assert_same_owner 1 1 2 3
assert_tables_identical 1 2 3

# Failover across the mix: n1 (the next build) owns file 2 and dies; n3
# is granted it once n1 is fenced, not before its lease can have ended.
acquire_ok a 2
e1=$EPOCH
t_kill=$(now_ms)
node_kill 1
acquire_ok c 2
dt=$(( $(now_ms) - t_kill ))
log "n3 granted file 2 $dt ms after n1 was killed (epoch $e1 -> $EPOCH)"
[ "$EPOCH" -gt "$e1" ] || _fail "I1: epoch did not grow on failover"
[ "$dt" -ge $(( CV_LEASE_MS - CV_HB_MS )) ] ||
	_fail "I3: file 2 granted $dt ms after the kill, within n1's lease"
probe_stop a
assert_same_owner 2 2 3
assert_tables_identical 2 3
node_start_corosync 1
corosync_wait_quorate 3 1 2 3
node_start_lockd 1
cluster_wait_ready 3
wait_for 10 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
cluster_proto_is 2 1 2 3 || _fail "not at version 2 after n1 rejoined"
undecodable_same "in the mixed cluster"

# ---- 2. upgrade n2, then n3 ----
probe_stop b
restart_lockd 2 "$NEXT"
cluster_wait_ready 3
cluster_proto_is 2 1 2 3 || _fail "version moved while n3 speaks 2 only"
probe_start a 1 --auto-release
probe_start b 2 --auto-release
handoffs 3 b c a

probe_stop c
restart_lockd 3 "$NEXT"
cluster_wait_ready 3
wait_for 10 cluster_proto_is 3 1 2 3 ||
	_fail "all speak 3 but the cluster does not run it: $(admin 1 --json status)"
wait_for 10 wire_is 3 "$CV_LEASE_MS" 1 2 3 ||
	_fail "heartbeats not all at version 3: $(admin 3 --json nodes)"
log "all nodes speak 2..3: the cluster runs version 3 (heartbeats carry the lease)"
probe_start c 3 --auto-release
handoffs 4 c a b c
assert_same_owner 4 1 2 3
assert_tables_identical 1 2 3
undecodable_same "during the upgrade"

# ---- 3. a node too old is kept out ----
probe_stop a
restart_lockd 1 "$V3"
cluster_wait_ready 3
cluster_proto_is 3 1 2 3 || _fail "not at version 3 with n1 at 3..3"
probe_stop b
restart_lockd 2 "$CV_LOCKD"
wait_for 20 node_state_is 1 n2 incompatible ||
	_fail "n1 does not show n2 incompatible: $(admin 1 --json nodes)"
wait_for 10 node_state_is 3 n2 incompatible ||
	_fail "n3 does not show n2 incompatible: $(admin 3 --json nodes)"
wait_for 10 node_state_is 2 n2 incompatible ||
	_fail "n2 does not show itself incompatible: $(admin 2 --json nodes)"
grep -q 'this node speaks cluster protocol 2..2, but the cluster runs version 3: it is kept out' \
	"$(ndir 2)/lockd.log" || _fail "n2's log does not say it is kept out"
for i in 1 3; do
	grep -q 'node n2 (id 2) speaks cluster protocol 2..2, the cluster runs version 3: it is kept out; upgrade csvfs-lockd on it' \
		"$(ndir "$i")/lockd.log" || _fail "n$i's log does not say n2 is kept out"
done
[ "$(status_field 2 .ready)" = false ] || _fail "n2 says it is ready"
[ "$(status_field 2 .kept_out)" = true ] || _fail "n2's status does not say it is kept out"
[ "$(status_field 1 .kept_out)" = false ] || _fail "n1's status says it is kept out"
probe_start b 2
probe_cmd b "acquire 5 5000"
probe_expect b '^(ok|err) acquire 5 ' 10 || _fail "n2: no reply to acquire"
case $PROBE_LINE in
err*) log "n2 refuses its client: $PROBE_LINE" ;;
*) _fail "n2, kept out, granted file 5: $PROBE_LINE" ;;
esac
probe_stop b

# The others keep working, ready with n2 in the membership but not counted.
node_ready 1 3 || _fail "n1 not ready: $(admin 1 --json status)"
node_ready 3 3 || _fail "n3 not ready: $(admin 3 --json status)"
probe_start a 1 --auto-release
handoffs 6 a c a
assert_same_owner 6 1 3
assert_tables_identical 1 3
log "n1 and n3 go on at version 3 with n2 kept out"
_pass
