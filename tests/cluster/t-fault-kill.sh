#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Crashes and daemon restarts under a data-verification workload (dvw):
#   1. n1 writes vm.img; n1 crashes (kill -9 of its writer, csvfs, lockd
#      and corosync).  A writer on n2 blocks in acquire until n1 is
#      fenced, then writes; failover time is printed and bounded;
#   2. n1 comes back (empty table, state transfer);
#   3. n2 writes while n3's lockd (a non-owner) is killed and restarted:
#      n2's writes never fail;
#   4. n2 writes while its own lockd is killed and restarted: n2's writes
#      fail from then on (lease ended with the connection, file poisoned)
#      and a writer on n3 takes over only after the fence;
#   5. every node ready, tables identical (I5), the checker clean (no
#      torn block, no stale epoch after a newer one, no lost write).
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"

require_netns
require_corosync
require_csvfs
require_dvw
require_bin "$CV_LOCKD" "$CV_ADMIN"

F=vm.img
W="--blocks 64 --pause 2 --fsync-every 8"
csvfs_setup
cluster_start 3
csvfs_mount_all 3

# 1. kill -9 of the owner node.
dvw_start w1 1 $F $W --duration 60000
wait_for 10 dvw_wrote w1 $F 100 || _fail "n1's writer does not write"
t_kill=$(date +%s%3N)
node_crash 1
dvw_start w2 2 $F $W --duration 3000
dvw_wait w2 $(( CV_LEASE_MS / 1000 + 30 ))
[ "$DVW_RC" = 0 ] || _fail "n2's writer failed ($DVW_RC): $(cat "$(ndir 2)/dvw-w2.out")"
fo=$(( $(dvw_first_write_ms w2 $F) - t_kill ))
log "failover: n2's first write $fo ms after the kill (epoch $(dvw_epoch w1 $F) -> $(dvw_epoch w2 $F))"
[ "$(dvw_epoch w2 $F)" -gt "$(dvw_epoch w1 $F)" ] || _fail "I1: epoch did not grow"
[ "$fo" -ge $(( CV_LEASE_MS - CV_HB_MS )) ] || _fail "I3: n2 wrote $fo ms after the kill, before n1's lease could end"
[ "$fo" -le $(( CV_LEASE_MS * 2 + 5000 )) ] || _fail "failover took $fo ms"
dvw_check $F

# 2. n1 comes back.
node_restart 1
assert_tables_identical

# 3. lockd restart on a non-owner while n2 writes.
dvw_start w3 2 $F $W --duration 12000
wait_for 10 dvw_acquired w3 $F || _fail "n2's writer did not start"
node_restart_lockd 3
dvw_wait w3 30
[ "$DVW_RC" = 0 ] || _fail "n2's writes failed while n3's lockd restarted: $(cat "$(ndir 2)/dvw-w3.out")"
node_umount_csvfs 3; node_mount_csvfs 3   # its csvfs lost its lockd
dvw_check $F

# 4. lockd restart on the owner while it writes.
dvw_start w4 2 $F $W --duration 30000
wait_for 10 dvw_acquired w4 $F || _fail "n2's writer did not start"
sleep 0.5
t_kill=$(date +%s%3N)
node_restart_lockd 2
dvw_wait w4 10
[ "$DVW_RC" = 3 ] || _fail "n2's writer did not fail when its lockd died (rc $DVW_RC)"
dvw_start w5 3 $F $W --duration 2000
dvw_wait w5 $(( CV_LEASE_MS / 1000 + 30 ))
[ "$DVW_RC" = 0 ] || _fail "n3's writer failed ($DVW_RC): $(cat "$(ndir 3)/dvw-w5.out")"
log "n3 took over $(( $(dvw_first_write_ms w5 $F) - t_kill )) ms after n2's lockd was killed"
node_umount_csvfs 2; node_mount_csvfs 2

fault_end $F
_pass
