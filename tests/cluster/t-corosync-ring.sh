#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The test bed itself, with corosync alone: 3 nodes form one quorate
# ring; after one is killed the other two stay quorate with 2 members.
# If this fails, every other cluster scenario would fail for the same
# reason: look here first.
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
cv_setup

cluster_create 3
t=$(now_ms)
for i in 1 2 3; do node_start_corosync "$i"; done
corosync_wait_quorate 3 1 2 3
log "3 members quorate after $(( $(now_ms) - t )) ms"

node_kill 3
t=$(now_ms)
corosync_wait_quorate 2 1 2
log "n1, n2 quorate with 2 members $(( $(now_ms) - t )) ms after the kill"

_pass
