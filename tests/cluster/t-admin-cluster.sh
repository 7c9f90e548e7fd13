#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-admin-cluster.sh - every csvfs-admin command against a 3-node cluster
# (corosync + csvfs-lockd + csvfs mounts of one shared directory):
#   format    makes the volume record the mounts then use; refused twice;
#   status, nodes, volumes, owners, locks, metrics
#             from every node, whole-cluster answers, --json checked with
#             jq (fields present, types right), Prometheus text well formed;
#   handoff, drain, resume
#             on a file held open on n1, issued from another node;
#   errors    unknown node, path not on csvfs, a node that is not a member,
#             usage errors (exit 2), and no quorum after two nodes die.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_cmd jq flock
require_bin "$CV_LOCKD" "$CV_ADMIN"

# run_rc WANT_RC REGEX I ARGS...: csvfs-admin ARGS on node I exits
# WANT_RC and its stderr matches REGEX (one line).
run_rc() {
	local want=$1 re=$2 i=$3 rc err
	shift 3
	err=$(admin "$i" "$@" 2>&1 >/dev/null)
	rc=$?
	[ "$rc" = "$want" ] ||
		_fail "csvfs-admin $* on n$i: exit $rc, expected $want ($err)"
	echo "$err" | grep -q -E -- "$re" ||
		_fail "csvfs-admin $* on n$i: message '$err' does not match '$re'"
	log "csvfs-admin $* on n$i: exit $rc: $err"
}

# jcheck I JQ ARGS...: csvfs-admin --json ARGS on node I satisfies JQ
# (jq sees $u = the volume UUID, $s = the backing dir, $m = the mount
# point, $p = the test file's path).
jcheck() {
	local i=$1 q=$2 out
	shift 2
	out=$(admin "$i" --json "$@") || _fail "csvfs-admin --json $* on n$i failed"
	echo "$out" | jq -e --arg u "${UUID:-}" --arg s "$CV_BACKING" \
		--arg m "$CV_MNT" --arg p "$CV_MNT/${F:-}" "$q" >/dev/null ||
		_fail "csvfs-admin --json $* on n$i: '$q' does not hold: $out"
}

volume_nodes() { # I: "n1 n2 n3" mounting the volume, as node I sees it
	admin "$1" --json volumes 2>/dev/null |
		jq -r '[.[0].nodes // [] | .[]] | sort | join(" ")'
}
volume_nodes_are() { [ "$(volume_nodes "$1")" = "$2" ]; }

csvfs_setup

# ---- format, before any mount: the mounts must adopt this record.
out=$("$CV_ADMIN" format "$CV_BACKING" --label vmstore) ||
	_fail "format $CV_BACKING failed"
UUID=$out
echo "$UUID" | grep -q -E '^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$' ||
	_fail "format printed '$UUID', not a UUID"
grep -q "^uuid=$UUID$" "$CV_BACKING/.csvfs/volume" ||
	_fail "no volume record with uuid $UUID in $CV_BACKING/.csvfs"
grep -q "^label=vmstore$" "$CV_BACKING/.csvfs/volume" || _fail "label not recorded"
err=$("$CV_ADMIN" format "$CV_BACKING" --label other 2>&1)
[ $? = 1 ] || _fail "a second format did not exit 1"
echo "$err" | grep -q "already holds a csvfs volume record" ||
	_fail "second format: '$err'"
grep -q "^uuid=$UUID$" "$CV_BACKING/.csvfs/volume" || _fail "second format changed the record"
"$CV_ADMIN" format relative/dir >/dev/null 2>&1
[ $? = 2 ] || _fail "format of a relative SOURCE is not a usage error"
mkdir -p "$CV_WORK/other"
"$CV_ADMIN" --json format "$CV_WORK/other" | jq -e \
	'(.uuid | type) == "string" and .label == "" and .format == 1' >/dev/null ||
	_fail "format --json"
log "format: $UUID (label vmstore); refused on an existing record"

cluster_start 3
csvfs_mount_all 3

# ---- status and nodes, from every node: the whole cluster.
for i in 1 2 3; do
	jcheck $i '(.cluster | type) == "string" and (.node_id | type) == "number"' status
	jcheck $i '.node == "n'$i'" and .quorate == true and
		(.members | sort) == ["n1","n2","n3"] and
		(.lease_remaining_ms | type) == "number" and
		(.expected_votes | type) == "number"' status
	jcheck $i 'length == 3 and all(.[]; (.name | type) == "string" and
		(.id | type) == "number" and .state == "up" and
		(.votes | type) == "number" and (.owned | type) == "number" and
		(.this_node | type) == "boolean") and
		([.[] | select(.this_node)] | length) == 1 and
		all(.[]; if .this_node then (.lease_remaining_ms | type) == "number"
			 else .lease_remaining_ms == null end)' nodes
done
admin 2 nodes | grep -q -E '^NAME +ID +STATE +MEMBER +VOTES +QUORUM +OWNED +LOCKS +HEARTBEAT +LEASE' ||
	_fail "nodes: no header"
admin 2 status | grep -q -E '^lease: +valid' || _fail "status: no valid lease on n2"
log "status and nodes agree on every node"

# ---- volumes: every node sees every node's mount of the formatted volume.
for i in 1 2 3; do
	wait_for 5 volume_nodes_are $i "n1 n2 n3" ||
		_fail "n$i: volume mounted on '$(volume_nodes $i)', not n1 n2 n3"
	jcheck $i 'length == 1 and .[0].uuid == $u and .[0].label == "vmstore" and
		 .[0].source == $s and (.[0].mounts | length) == 3 and
		 all(.[0].mounts[]; .mountpoint == $m and .source == $s and
		     (.node_id | type) == "number" and (.node | type) == "string")' \
		volumes
done
admin 1 volumes | grep -q -E "^$UUID +vmstore +$CV_BACKING +n[123] n[123] n[123]" ||
	_fail "volumes: $(admin 1 volumes)"
log "volumes: $UUID on n1 n2 n3, seen from every node"

# ---- owners and locks of a file n1 keeps open with a flock.
F=vm1.img
node_shell_start w1 1
node_shell w1 "exec 3<>\$CSV/$F && wblk n1 0 fsync && flock -x 3" ||
	_fail "n1: write + flock failed: $SH_OUT"
wait_for 5 csv_owner_is 3 "$F" n1 || _fail "n3 does not see n1 own $F"
jcheck 3 'length == 1 and .[0].path == $p and .[0].owner == "n1" and
	 .[0].volume == $u and (.[0].epoch | type) == "number" and
	 (.[0].waiters | type) == "number" and (.[0].fileid | type) == "number" and
	 (.[0].revoking | type) == "boolean"' owners "$CV_MNT/$F"
admin 2 owners | grep -q -E " n1 +[0-9]+ " || _fail "owners (all) on n2: $(admin 2 owners)"
jcheck 2 'length == 1 and .[0].node == "n1" and .[0].kind == "flock" and
	.[0].type == "write" and (.[0].pid | type) == "number" and
	.[0].start == 0 and .[0].end == null and .[0].waiting == false' \
	locks "$CV_MNT/$F"
admin 3 locks "$CV_MNT/$F" | grep -q -E "flock +write +n1 " || _fail "locks: $(admin 3 locks "$CV_MNT/$F")"
log "owners and locks: n1 owns and flocks $F, seen from n2 and n3"

# ---- errors that name what to do.
run_rc 1 "is not on a csvfs mount" 2 owners /etc/hostname
run_rc 1 "no such file|No such file" 2 owners "$CV_MNT/nonexistent"
run_rc 1 "no node named n9; nodes: n1 n2 n3" 3 handoff "$CV_MNT/$F" n9
run_rc 1 "no node named n9; nodes: n1 n2 n3" 3 drain n9
run_rc 2 "usage" 3 handoff "$CV_MNT/$F"
run_rc 2 "unknown command" 3 frobnicate
run_rc 2 "--timeout" 3 --timeout 0 drain n2

# ---- handoff from n3: n1 (holding it open) flushes and gives it to n2.
e1=$(csv_epoch 1 "$F")
out=$(admin 3 --json handoff "$CV_MNT/$F" n2) || _fail "handoff to n2 failed"
echo "$out" | jq -e '.op == "handoff" and .node == "n2" and
	(.epoch | type) == "number" and (.elapsed_ms | type) == "number"' >/dev/null ||
	_fail "handoff --json: $out"
wait_for 5 csv_owner_is 1 "$F" n2 || _fail "n1 does not see n2 own $F after handoff"
[ "$(csv_epoch 2 "$F")" -gt "$e1" ] || _fail "handoff: epoch did not grow"
log "handoff $F n1 -> n2 from n3: $out"

# ---- drain n2 from n1: its (unclaimed) ownership goes, state draining.
out=$(admin 1 drain n2) || _fail "drain n2 failed: $out"
echo "$out" | grep -q "n2 drained in" || _fail "drain: '$out'"
jcheck 3 'any(.[]; .name == "n2" and .state == "draining" and .draining == true)' nodes
jcheck 3 'all(.[]; .owner != "n2")' owners
admin 3 nodes | grep -q -E "^n2 .* draining " || _fail "nodes: n2 not shown draining"
run_rc 1 "draining; run 'csvfs-admin resume n2'" 3 handoff "$CV_MNT/$F" n2
out=$(admin 2 --json resume) || _fail "resume (this node) on n2 failed"
echo "$out" | jq -e '.op == "resume" and .node == "n2"' >/dev/null || _fail "resume --json: $out"
jcheck 1 'any(.[]; .name == "n2" and .state == "up")' nodes
log "drain n2 (from n1), resume (on n2): $out"

# ---- metrics: Prometheus text, counters that saw the grants above.
m=$(admin 1 metrics) || _fail "metrics failed"
echo "$m" | awk '
	/^# (HELP|TYPE) / { next }
	/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9]+(\.[0-9]+)?$/ { next }
	{ print "bad line: " $0; bad = 1 }
	END { exit bad }' || _fail "metrics: not Prometheus text"
for f in csvfs_grants_total csvfs_handoffs_total csvfs_fence_events_total \
	csvfs_lease_remaining_seconds csvfs_acquire_latency_seconds csvfs_node_owned_files; do
	echo "$m" | grep -q "^# TYPE $f " || _fail "metrics: no family $f"
done
g=$(echo "$m" | sed -n 's/^csvfs_grants_total{node="n1"} //p')
h=$(echo "$m" | sed -n 's/^csvfs_handoffs_total{node="n1"} //p')
[ "${g:-0}" -ge 2 ] && [ "${h:-0}" -ge 1 ] || _fail "metrics: grants '$g', hand-offs '$h'"
inf=$(echo "$m" | sed -n 's/^csvfs_acquire_latency_seconds_bucket{node="n1",le="+Inf"} //p')
cnt=$(echo "$m" | sed -n 's/^csvfs_acquire_latency_seconds_count{node="n1"} //p')
[ -n "$inf" ] && [ "$inf" = "$cnt" ] && [ "$cnt" -ge 1 ] ||
	_fail "metrics: histogram +Inf '$inf' vs count '$cnt'"
echo "$m" | grep -q '^csvfs_node_up{node="n3"} 1$' || _fail "metrics: n3 not up"
log "metrics: $g grants, $h hand-offs, $cnt timed acquires on n1"

# ---- a node unmounts, then dies: the others' views follow.
node_shell_stop w1
node_umount_csvfs 3 || _fail "n3: unmount needed SIGKILL"
wait_for 5 volume_nodes_are 1 "n1 n2" || _fail "after n3's unmount, n1 sees '$(volume_nodes 1)'"
node_kill 3
wait_for 20 node_state_is 1 n3 down || _fail "n1 does not see n3 down"
jcheck 2 '(.members | sort) == ["n1","n2"] and .quorate == true' status
run_rc 1 "node n3 is not a member; members: n1 n2" 1 handoff "$CV_MNT/$F" n3
log "n3 unmounted and killed: volumes and members follow"

# ---- no quorum: n1 alone answers queries, refuses changes.
node_kill 2
wait_for 20 eval '[ "$(status_field 1 .quorate)" = false ]' ||
	_fail "n1 still quorate alone"
jcheck 1 '.quorate == false and .lease_remaining_ms == null' status
admin 1 status | grep -q "NOT QUORATE" || _fail "status does not say NOT QUORATE"
run_rc 1 "not quorate" 1 drain n1
run_rc 1 "not quorate" 1 handoff "$CV_MNT/$F" n1
admin 1 metrics | grep -q '^csvfs_cluster_quorate{node="n1"} 0$' || _fail "metrics: still quorate"
log "without quorum: queries answer, handoff and drain refused with a reason"
_pass
