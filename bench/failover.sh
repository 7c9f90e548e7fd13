#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Failover benchmark: three namespace nodes with csvfs mounted (see
# tests/cluster/common.sh, csvfs.sh, fault.sh).  Each run: a dvw writer
# on n1 writes a file; n1 is killed (-9: writer, csvfs, lockd, corosync);
# a writer on n2 starts at once and blocks until it may write.  The
# figure is from the kill to the end of n2's first successful write (the
# writer's "A" line: write done and epoch read), then n1 is restarted.
# Prints each run, median and max.  Not a pass/fail test.
#
#   sudo top_builddir=$PWD/build bench/failover.sh [-n RUNS] [-d]
#
# -n RUNS (default 10, at most 100); -d: corosync's default totem timeouts
# instead of the recommended ones of conf/corosync.conf.sample (token 500,
# token_coefficient 0, consensus 600); -t TOKEN,CONSENSUS: other timeouts
# in ms (token_coefficient 0), e.g. -t 1000,1200 for congested networks.  lease_timeout_ms is derived by
# csvfs-lockd from token + consensus in every case.
set -u
runs=10 defaults=0 totem=500,600
while getopts n:dt:h opt; do
	case $opt in
	n) runs=$OPTARG ;;
	d) defaults=1 ;;
	t) totem=$OPTARG ;;
	*) sed -n '3,18p' "$0"; exit 2 ;;
	esac
done
case $runs in ''|*[!0-9]*) echo "failover.sh: -n needs a number" >&2; exit 2 ;; esac
[ "$runs" -ge 1 ] && [ "$runs" -le 100 ] ||
	{ echo "failover.sh: -n must be within 1..100" >&2; exit 2; }

if [ "$defaults" = 1 ]; then
	export CV_TOTEM=defaults
else
	case $totem in
	[0-9]*,[0-9]*) ;;
	*) echo "failover.sh: -t needs TOKEN,CONSENSUS in ms" >&2; exit 2 ;;
	esac
	export CV_TOKEN=${totem%,*} CV_TOKEN_COEFF=0 CV_CONSENSUS=${totem#*,}
fi
export CV_LEASE_MS=0 CV_LOG_LEVEL=${CV_LOG_LEVEL:-info}
. "$(dirname "$0")/../tests/cluster/common.sh"
. "$(dirname "$0")/../tests/cluster/csvfs.sh"
. "$(dirname "$0")/../tests/cluster/fault.sh"

require_netns
require_corosync
require_csvfs
require_dvw
require_bin "$CV_LOCKD"

csvfs_setup
cluster_start 3
csvfs_mount_all 3
lease=$(grep -o 'lease_timeout_ms = [0-9]*' "$(ndir 1)/lockd.log" | head -1)
log "totem: ${CV_TOTEM:-token $CV_TOKEN coefficient $CV_TOKEN_COEFF consensus $CV_CONSENSUS}; $lease"
W="--blocks 16 --pause 2 --fsync-every 8"
res=()
for r in $(seq 1 "$runs"); do
	f=bench$r.img
	dvw_start a$r 1 "$f" $W --duration 120000
	wait_for 20 dvw_wrote a$r "$f" 50 || _fail "run $r: n1 does not write"
	sleep 0.$(( RANDOM % 10 ))   # a random point of the heartbeat period
	t=$(date +%s%3N)
	node_crash 1
	dvw_start b$r 2 "$f" $W --count 1
	dvw_wait b$r 120
	[ "$DVW_RC" = 0 ] || _fail "run $r: n2's write failed ($DVW_RC)"
	ms=$(( $(dvw_first_write_ms b$r "$f") - t ))
	res+=("$ms")
	log "run $r: failover $ms ms"
	dvw_check "$f"
	node_restart 1
done
sorted=$(printf '%s\n' "${res[@]}" | sort -n)
n=${#res[@]}
med=$(echo "$sorted" | awk -v n="$n" 'NR == int((n + 1) / 2) { a = $1 } NR == int(n / 2) + 1 { b = $1 } END { print int((a + b) / 2) }')
max=$(echo "$sorted" | tail -n1)
min=$(echo "$sorted" | head -n1)
if [ "$defaults" = 1 ]; then
	how="corosync's default timeouts"
else
	how="token $CV_TOKEN, token_coefficient 0, consensus $CV_CONSENSUS"
fi
echo "failover (kill -9 of the owner node -> survivor's first write), $n runs: median $med ms, min $min ms, max $max ms; $how; $lease"
exit 0
