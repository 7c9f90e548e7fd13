#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fence-cvpower.sh - a stand-in power switch for Pacemaker in the cluster
# scenarios (pcmk.sh installs it as fence_cvpower in every node's
# /usr/sbin overlay, with CV_WORK set).  It speaks the fence-agents
# protocol (argv -o/-n, or name=value lines on stdin).  "off"/"reboot"
# of node nK SIGKILLs every process in nK's network namespace except its
# holders, as a power cut would: the namespace is recognised by its inode
# ($CV_WORK/nK/netns.ino) in /proc/PID/ns/net, the holders' pids are in
# $CV_WORK/nK/holders.  Each off is logged as "ms action node rc=0" to
# $CV_WORK/power.log.
W=${CV_WORK:?CV_WORK not set}
action=off node=
if [ $# -gt 0 ]; then
	while [ $# -gt 0 ]; do
		case $1 in -o) action=$2; shift ;; -n) node=$2; shift ;; esac
		shift
	done
else
	while IFS='=' read -r k v; do
		case $k in
		action) action=$v ;;
		port | plug) node=$v ;;
		nodename) [ -n "$node" ] || node=$v ;;
		esac
	done
fi

# node_procs: pids in the node's namespace, holders excluded.
node_procs() {
	local ino p
	ino=$(cat "$W/$node/netns.ino") || return 1
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/net" 2>/dev/null)" = "net:[$ino]" ] || continue
		grep -qw "${p#/proc/}" "$W/$node/holders" || echo "${p#/proc/}"
	done
}

case $action in
metadata)
	cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_cvpower" shortdesc="test stand-in for a power switch">
<parameters>
<parameter name="port" unique="0" required="0"><content type="string"/><shortdesc lang="en">node</shortdesc></parameter>
</parameters>
<actions><action name="off"/><action name="reboot"/><action name="on"/><action name="status"/><action name="monitor"/><action name="metadata"/></actions>
</resource-agent>
XML
	;;
monitor | on) ;;
status)
	[ -n "$(node_procs)" ] || exit 2 ;;
off | reboot)
	[ -f "$W/$node/netns.ino" ] || exit 1
	for _ in $(seq 1 50); do
		ps=$(node_procs)
		[ -n "$ps" ] || break
		# shellcheck disable=SC2086
		kill -KILL $ps 2>/dev/null
		sleep 0.05
	done
	echo "$(date +%s%3N) $action $node rc=0" >>"$W/power.log" ;;
*) exit 1 ;;
esac
exit 0
