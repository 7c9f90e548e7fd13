#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Unplanned failover of a real guest: kill -9 of the node it runs on, and
# a restart on a survivor on the same disk (a qcow2 on csvfs, cache=none,
# QEMU's image locking on):
#   1. the guest boots on n1, writes and acknowledges flushed blocks;
#   2. n1 dies (corosync, lockd, QEMU, csvfs: SIGKILL);
#   3. until csvfs has fenced n1, the image stays locked: QEMU's lock
#      probe (qemu-img info without -U) on n2 is refused;
#   4. once n2 sees n1 fenced, the guest boots on n2: its verify finds
#      every write acknowledged on n1 (nothing lost, nothing stale, no
#      torn block), and it writes again; n2 owns the image with a higher
#      epoch.  Kill-to-fence and kill-to-first-write times are printed;
#   5. the guest stops and boots once more on n3 to verify n2's writes;
#      qemu-img check finds no corruption (clusters leaked by the killed
#      QEMU are allowed), the survivors' tables identical.
. "$(dirname "$0")/../cluster/common.sh"
. "$(dirname "$0")/../cluster/csvfs.sh"
. "$(dirname "$0")/vm.sh"

vm_cluster 3

IMG=vm-f.qcow2
W="vmio.pace=20 vmio.flush=8"
node_sh 1 "qemu-img create -q -f qcow2 \$CSV/$IMG 8M" ||
	_fail "n1: qemu-img create failed"

# 1. Boot on n1 and write.
vm_boot f 1 "$IMG" "$W"
vm_wait_acks f.1 1 63 120
wait_for 5 csv_owner_is 2 "$IMG" n1 || _fail "n2 does not see n1 own $IMG"
assert_csv_owner "$IMG" n1 1 2 3
e1=$CSV_EPOCH

# 2. n1 dies while the guest writes.
t_kill=$(now_ms)
vm_node_crash 1
log "acknowledged on n1 before the kill: $(vm_acked f)"

# 3. Locked until fenced.
wait_for 30 node_state_is 2 n1 fencing ||
	_fail "n2 does not see n1 fencing: $(admin 2 --json nodes)"
t_fencing=$(now_ms)
if node_state_is 2 n1 fencing; then
	out=$(node_sh 2 "qemu-img info \$CSV/$IMG" 2>&1) &&
		node_state_is 2 n1 fencing &&
		_fail "n2: QEMU's lock probe succeeded while n1 is not fenced yet: $out"
	log "n2: image still locked while n1 is fencing: $(echo "$out" | head -n 1)"
fi
wait_for 60 node_state_is 2 n1 down ||
	_fail "n2 does not see n1 fenced: $(admin 2 --json nodes)"
t_fenced=$(now_ms)
log "n2 sees n1 fencing $(( t_fencing - t_kill )) ms, fenced $(( t_fenced - t_kill )) ms after the kill"

# 4. Restart on n2: verify, then write.
vm_boot f 2 "$IMG" "$W"
t_verified=$(now_ms)
vm_wait_acks f.2 2 0 60
t_write=$(now_ms)
fo=$(( t_write - t_kill ))
log "failover: fenced +$(( t_fenced - t_kill )) ms, guest verified on n2 +$(( t_verified - t_kill )) ms, writing again (first ack) +$fo ms after the kill"
echo "FAILOVER kill_to_fenced_ms=$(( t_fenced - t_kill )) kill_to_verified_ms=$(( t_verified - t_kill )) kill_to_write_ms=$fo boot_ms=$(( t_write - t_fenced ))"
[ $(( t_fenced - t_kill )) -ge $(( CV_LEASE_MS - CV_HB_MS )) ] ||
	_fail "I3: n1 fenced $(( t_fenced - t_kill )) ms after the kill, before its lease could end"
wait_for 5 csv_owner_is 3 "$IMG" n2 || _fail "n3 does not see n2 own $IMG: '$(csv_owner 3 "$IMG")'"
assert_csv_owner "$IMG" n2 2 3
[ "$CSV_EPOCH" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $CSV_EPOCH)"

# 5. n2's writes survive a clean stop and one more boot.
vm_wait_acks f.2 2 63 60
vm_stop f.2
vm_boot f 3 "$IMG" "vmio.verify=only"
vm_wait_exit f.3 30 || vm_fail f.3 "QEMU did not exit after the verify"
# QEMU was SIGKILLed mid-write: clusters it had allocated but not yet
# referenced stay leaked (exit 3: space, no data); corruption is exit 2.
rc=0
node_sh 3 "qemu-img check -q \$CSV/$IMG" || rc=$?
case $rc in
0) ;;
3) log "qemu-img check: leaked clusters only (left by the killed QEMU)" ;;
*) _fail "qemu-img check failed (exit $rc)" ;;
esac
wait_for 10 tables_identical 2 3 || true
assert_tables_identical 2 3
_pass
