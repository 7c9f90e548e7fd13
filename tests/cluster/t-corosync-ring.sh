#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The test bed itself, with corosync alone (no csvfs): 3 nodes form one
# quorate ring; the fault verbs of common.sh do what they say
# (partition + heal, link down + up, kill).  If this fails, every other
# cluster scenario would fail for the same reason: look here first.
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_cmd iptables
cv_setup

node_not_quorate() {
	node_exec "$1" timeout 5 corosync-quorumtool -s 2>/dev/null |
		grep -Eq '^Quorate: +No'
}

cluster_create 3
t=$(now_ms)
for i in 1 2 3; do node_start_corosync "$i"; done
corosync_wait_quorate 3 1 2 3
log "3 members quorate after $(( $(now_ms) - t )) ms"

t=$(now_ms)
partition "1" "2 3"
corosync_wait_quorate 2 2 3
wait_for 10 node_not_quorate 1 || _fail "n1 still quorate alone"
log "partition 1 | 2 3 seen in $(( $(now_ms) - t )) ms"
t=$(now_ms)
heal
corosync_wait_quorate 3 1 2 3
log "merged back in $(( $(now_ms) - t )) ms"

t=$(now_ms)
link_down 2
corosync_wait_quorate 2 1 3
log "link down seen in $(( $(now_ms) - t )) ms"
t=$(now_ms)
link_up 2
corosync_wait_quorate 3 1 2 3
log "link up: merged back in $(( $(now_ms) - t )) ms"

node_kill 3
t=$(now_ms)
corosync_wait_quorate 2 1 2
log "n1, n2 quorate with 2 members $(( $(now_ms) - t )) ms after the kill"
_pass
