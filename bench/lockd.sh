#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Lock manager figures other than the hand-off (bench/handoff.sh):
#
#   1. lm_bench memory --resources N: the in-process lock table (heap per
#      resource, apply rate, snapshot size);
#   2. lm_bench acquire against a standalone csvfs-lockd: uncontended
#      acquire + release through liblockmgr, no corosync;
#   3. the same against n1 of a 2-node corosync cluster (namespaces, as
#      in tests/cluster): every acquire and every release is one totally
#      ordered CPG message, so 2 minus 3 is the cost of corosync.
#
#   sudo top_builddir=$PWD/build-rel bench/lockd.sh [-n COUNT] [-r RESOURCES]
#
# COUNT acquires per run (default 10000, at most 1000000), RESOURCES for
# the memory figure (default 100000).  Each run is bounded by
# CV_BENCH_TIMEOUT seconds (default 120).  Not a pass/fail test.
set -u
count=10000
resources=100000
while getopts n:r:h opt; do
	case $opt in
	n) count=$OPTARG ;;
	r) resources=$OPTARG ;;
	*) sed -n '3,19p' "$0"; exit 2 ;;
	esac
done
for v in "$count" "$resources"; do
	case $v in ''|*[!0-9]*) echo "lockd.sh: -n and -r take numbers" >&2; exit 2 ;; esac
done
[ "$count" -ge 1 ] && [ "$count" -le 1000000 ] &&
	[ "$resources" -ge 1 ] && [ "$resources" -le 10000000 ] ||
	{ echo "lockd.sh: -n within 1..1000000, -r within 1..10000000" >&2; exit 2; }

CV_LOG_LEVEL=${CV_LOG_LEVEL:-info}
. "$(dirname "$0")/../tests/cluster/common.sh"
LM_BENCH=${LM_BENCH:-$top_builddir/bench/lm_bench}
limit=${CV_BENCH_TIMEOUT:-120}

require_root
require_cmd timeout
require_bin "$CV_LOCKD" "$LM_BENCH"
cv_setup

echo "--- lm_bench memory --resources $resources"
timeout "$limit" "$LM_BENCH" memory --resources "$resources" ||
	_fail "lm_bench memory failed"

echo "--- lm_bench acquire --count $count (standalone lockd)"
sock=$CV_WORK/standalone.sock
"$CV_LOCKD" -f --standalone --socket "$sock" \
	--state-dir "$CV_WORK/standalone-state" -c /dev/null \
	>"$CV_WORK/standalone.log" 2>&1 </dev/null &
CV_EXTRA_PIDS+=($!)
wait_for 10 test -S "$sock" || _fail "standalone lockd did not start"
# A standalone lockd grants once its own first heartbeat is delivered.
sleep 1
timeout "$limit" "$LM_BENCH" acquire --socket "$sock" --count "$count" \
	--volume "$CV_VOLUME" || _fail "lm_bench acquire (standalone) failed"

if require_netns_ok=$(ip netns add "$CV_PREFIX-probe" 2>&1); then
	ip netns del "$CV_PREFIX-probe"
	require_corosync
	echo "--- lm_bench acquire --count $count (n1 of a 2-node corosync cluster)"
	cluster_start 2 >/dev/null
	node_exec 1 timeout "$limit" "$LM_BENCH" acquire --socket "$CV_SOCK" \
		--count "$count" --volume "$CV_VOLUME" ||
		_fail "lm_bench acquire (corosync) failed"
else
	echo "--- no network namespaces here ($require_netns_ok): corosync run skipped"
fi
exit 0
