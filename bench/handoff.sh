#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hand-off ping-pong benchmark: two namespace nodes (corosync + lockd
# each, see tests/cluster/common.sh) both run `lm_bench pingpong` on the
# same file, so ownership bounces between them; every acquire is one
# revoke, release and grant through the cluster.  Prints what each side's
# lm_bench measured (hand-off latency median / p99 / max: acquire request
# to grant) and the combined rate over the wall clock.  Not a pass/fail
# test.  Build without sanitizers for figures worth quoting.
#
#   sudo top_builddir=$PWD/build bench/handoff.sh [-n COUNT]
#
# COUNT (default 1000, at most 100000) acquires per node; the run is
# bounded by CV_BENCH_TIMEOUT seconds (default 300).
set -u
count=1000
while getopts n:h opt; do
	case $opt in
	n) count=$OPTARG ;;
	*) sed -n '3,15p' "$0"; exit 2 ;;
	esac
done
case $count in ''|*[!0-9]*) echo "handoff.sh: -n needs a number" >&2; exit 2 ;; esac
[ "$count" -ge 1 ] && [ "$count" -le 100000 ] ||
	{ echo "handoff.sh: -n must be within 1..100000" >&2; exit 2; }

. "$(dirname "$0")/../tests/cluster/common.sh"
LM_BENCH=${LM_BENCH:-$top_builddir/bench/lm_bench}
limit=${CV_BENCH_TIMEOUT:-300}

require_netns
require_corosync
require_bin "$CV_LOCKD" "$CV_ADMIN" "$LM_BENCH"

cluster_start 2

t0=$(now_ms)
pids=()
for i in 1 2; do
	nsenter -t "${CV_HOLDER[$i]}" -m -n -- timeout "$limit" "$LM_BENCH" \
		pingpong --socket "$CV_SOCK" --volume "$CV_VOLUME" --fileid 1 \
		--count "$count" >"$(ndir "$i")/bench.out" 2>"$(ndir "$i")/bench.log" &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=$?; done
t1=$(now_ms)
[ "$rc" = 0 ] || _fail "lm_bench failed (exit $rc; 124 = over ${limit}s)"
assert_tables_identical 1 2

echo "hand-off ping-pong: 2 nodes, $count acquires each, $(( t1 - t0 )) ms wall"
for i in 1 2; do
	echo "--- n$i: lm_bench"
	cat "$(ndir "$i")/bench.out"
done

awk -v n="$(( 2 * count ))" -v ms="$(( t1 - t0 ))" \
	'BEGIN { if (ms > 0) printf "rate: %.0f hand-offs/s (wall clock, both nodes)\n", n * 1000 / ms }'
exit 0
