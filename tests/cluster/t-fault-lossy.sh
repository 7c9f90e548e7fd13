#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-fault-handoffs with 20% packet loss on every node (tc netem, or
# iptables random drop where the kernel has no sch_netem) during the
# hand-offs, on 10 files.
#
# knet is tuned as for a lossy network: a ping every 200 ms and a link
# declared dead after 2 s without a pong (instead of 412 / 825 ms here).
# With corosync's defaults two pings lost in a row (a 1 in 8 chance at 20%
# loss each way) take a link down, and now and then every link at once:
# every node a singleton for seconds, quorum and leases gone.  The totem
# token (1650 ms) still decides membership, so a dead node is detected as
# fast as before.
CV_NETEM_LOSS=${CV_NETEM_LOSS:-20} CV_FILES=${CV_FILES:-10} \
	CV_KNET_PING=${CV_KNET_PING:-200,2000} \
	exec bash "$(dirname "$0")/t-fault-handoffs.sh" "$@"
