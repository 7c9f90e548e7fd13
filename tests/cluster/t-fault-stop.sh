#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Hung daemons on the owner, under the data-verification workload:
#   A. n1 writes vm.img; its csvfs-lockd is stopped (SIGSTOP) for longer
#      than the lease while corosync stays up: n1's writes must fail once
#      the lease pushed to csvfs runs out, never land later; a writer on
#      n2 must not be granted while n1 cannot answer (n1 is still a
#      member: only a watchdog would reset it); after SIGCONT n1's lockd
#      finds its lease over, gives the file up and n2 writes;
#   B. n2 writes with no pause; its csvfs is stopped (SIGSTOP) with a
#      write in flight and the writer killed; a writer on n3 waits (the
#      revoke cannot be answered); after SIGCONT the in-flight write lands
#      or not but never after n3's first write;
#   then every node ready, tables identical (I5), the checker clean.
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

# A. SIGSTOP of the owner's lockd beyond the lease.
dvw_start w1 1 $F $W --duration 60000
wait_for 10 dvw_wrote w1 $F 100 || _fail "n1's writer does not write"
kill -STOP "${CV_LOCKDPID[1]}"
log "n1: lockd stopped (SIGSTOP)"
dvw_start w2 2 $F $W --duration 2000
sleep $(( CV_LEASE_MS / 1000 + 2 ))
dvw_failed w1 $F || { kill -CONT "${CV_LOCKDPID[1]}"; _fail "n1 still writes $CV_LEASE_MS ms after its lockd stopped"; }
dvw_acquired w2 $F && { kill -CONT "${CV_LOCKDPID[1]}"; _fail "I1: n2 granted while n1's lockd is stopped"; }
log "n1's writes failed: $(grep '^E ' "$(dvw_log w1 $F)")"
kill -CONT "${CV_LOCKDPID[1]}"
log "n1: lockd continued (SIGCONT)"
dvw_wait w2 30
[ "$DVW_RC" = 0 ] || _fail "n2's writer failed ($DVW_RC): $(cat "$(ndir 2)/dvw-w2.out")"
dvw_wait w1 5
[ "$DVW_RC" = 3 ] || _fail "n1's writer: rc $DVW_RC, expected a write error"
dvw_check $F

# B. SIGSTOP of the owner's csvfs with a write in flight.
dvw_start w3 2 $F --blocks 64 --pause 0 --fsync-every 8 --duration 60000
wait_for 10 dvw_wrote w3 $F 100 || _fail "n2's writer does not write"
kill -STOP "${CV_CSVFSPID[2]}"
log "n2: csvfs stopped (SIGSTOP) under a writer with no pause"
kill -KILL "${CV_DVWPID[w3]}"
dvw_start w4 3 $F $W --duration 2000
sleep 3
dvw_acquired w4 $F && { kill -CONT "${CV_CSVFSPID[2]}"; _fail "I1: n3 granted while n2's csvfs holds the file"; }
kill -CONT "${CV_CSVFSPID[2]}"
log "n2: csvfs continued (SIGCONT)"
dvw_wait w4 30
[ "$DVW_RC" = 0 ] || _fail "n3's writer failed ($DVW_RC): $(cat "$(ndir 3)/dvw-w4.out")"
dvw_wait w3 10

fault_end $F
_pass
