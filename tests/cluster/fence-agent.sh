#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fence-agent.sh - a stand-in STONITH agent for the cluster scenarios.
#
# csvfs-lockd runs fence_command with the node's name appended; the
# scenarios configure "fence_command = fence-agent.sh WORKDIR", so this
# runs as: fence-agent.sh WORKDIR NODE (e.g. n1).  It appends a line to
# WORKDIR/fence.log, then:
#   - if WORKDIR/fence.fail holds a number N > 0, writes N-1 back and
#     exits 1 (the fence failed: lockd must retry and not fence yet);
#   - if WORKDIR/fence.kill exists, kills the node's corosync and
#     csvfs-lockd (SIGKILL, pids from WORKDIR/NODE/*.pid, written by
#     common.sh), as a power switch would;
#   - exits 0 (fence confirmed).
w=$1 node=$2
[ -n "$w" ] && [ -n "$node" ] || { echo "usage: $0 WORKDIR NODE" >&2; exit 2; }
ms=$(( $(date +%s%N) / 1000000 ))
n=0
[ -f "$w/fence.fail" ] && n=$(cat "$w/fence.fail")
if [ "${n:-0}" -gt 0 ]; then
	echo $(( n - 1 )) >"$w/fence.fail"
	echo "$ms fence $node fail" >>"$w/fence.log"
	exit 1
fi
if [ -f "$w/fence.kill" ]; then
	for f in "$w/$node/corosync.pid" "$w/$node/lockd.pid"; do
		[ -s "$f" ] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
fi
echo "$ms fence $node ok" >>"$w/fence.log"
exit 0
