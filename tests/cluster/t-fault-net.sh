#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Network faults under the data-verification workload:
#   A. link down on the owner n1 while it writes: n1's lease ends and its
#      writes fail; a writer on n2 is granted only after n1's fence; link
#      up: n1 rejoins and takes the majority's table;
#   B. partition n3 | n1 n2 and merge while n2 keeps writing: the
#      majority's writes never fail;
#   C. n3 flaps (link down 2.5 s / up 3 s, 3 times) while n2 writes: no
#      write of n2 fails;
#   then every node ready, tables identical (I5), the checker clean.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"

require_netns
require_corosync
require_cmd iptables
require_csvfs
require_dvw
require_bin "$CV_LOCKD" "$CV_ADMIN"

F=vm.img
W="--blocks 64 --pause 2 --fsync-every 8"
csvfs_setup
cluster_start 3
csvfs_mount_all 3

# A. link down on the owner.
dvw_start w1 1 $F $W --duration 60000
wait_for 10 dvw_wrote w1 $F 100 || _fail "n1's writer does not write"
t=$(date +%s%3N)
link_down 1
dvw_start w2 2 $F $W --duration 2000
dvw_wait w1 $(( CV_LEASE_MS / 1000 + 5 ))
[ "$DVW_RC" = 3 ] || _fail "n1's writes did not fail after its link went down (rc $DVW_RC)"
log "n1's writes failed $(( $(awk '$1 == "E" { print $NF }' "$(dvw_log w1 $F)") - t )) ms after link down"
dvw_wait w2 30
[ "$DVW_RC" = 0 ] || _fail "n2's writer failed ($DVW_RC): $(cat "$(ndir 2)/dvw-w2.out")"
log "n2 took over $(( $(dvw_first_write_ms w2 $F) - t )) ms after link down"
link_up 1
cluster_wait_ready 3
dvw_check $F

# B. partition and merge while the majority writes.
dvw_start w3 2 $F $W --duration 14000
wait_for 10 dvw_wrote w3 $F 100 || _fail "n2's writer does not write"
partition "3" "1 2"
sleep 5
heal
dvw_wait w3 30
[ "$DVW_RC" = 0 ] || _fail "n2's writes failed across a partition of n3: $(cat "$(ndir 2)/dvw-w3.out")"
cluster_wait_ready 3
dvw_check $F

# C. a node flapping in and out (bounded).
dvw_start w4 2 $F $W --duration 20000
wait_for 10 dvw_wrote w4 $F 100 || _fail "n2's writer does not write"
for k in 1 2 3; do
	link_down 3
	sleep 2.5
	link_up 3
	sleep 3
done
dvw_wait w4 30
[ "$DVW_RC" = 0 ] || _fail "n2's writes failed while n3 flapped: $(cat "$(ndir 2)/dvw-w4.out")"

fault_end $F
_pass
