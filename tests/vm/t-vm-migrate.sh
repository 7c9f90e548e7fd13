#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Live migration of a real guest between nodes while it writes to its disk,
# a qcow2 on csvfs opened with cache=none and QEMU's image locking on:
#   1. the guest boots on n1 (verify of a blank disk), writes and
#      acknowledges flushed blocks; n1 owns the image; a second QEMU
#      (qemu-io) on n3 is refused by the image lock;
#   2. QEMU's own migration n1 -> n2 (QMP migrate to -incoming tcp: on
#      n2's address) while the guest writes: completed, n2's QEMU runs, the
#      guest keeps writing there and n2 becomes the owner (the source is
#      revoked cooperatively, never poisoned); downtime printed;
#   3. the same n2 -> n3;
#   4. the guest stops (flush, last ack, power-off), boots again on n1 and
#      its verify finds every write it acknowledged on n1, n2 and n3;
#      qemu-img check is clean, lock tables identical.
. "$(dirname "$0")/../cluster/common.sh"
. "$(dirname "$0")/../cluster/csvfs.sh"
. "$(dirname "$0")/vm.sh"

vm_cluster 3

IMG=vm-a.qcow2
W="vmio.pace=20 vmio.flush=8"
node_sh 1 "qemu-img create -q -f qcow2 \$CSV/$IMG 8M" ||
	_fail "n1: qemu-img create failed"

# 1. Boot on n1 and write.
t=$(now_ms)
vm_boot a 1 "$IMG" "$W"
vm_wait_acks a.1 1 63 60
log "a.1: 64 writes acknowledged $(( $(now_ms) - t )) ms after QEMU started"
wait_for 5 csv_owner_is 3 "$IMG" n1 || _fail "n3 does not see n1 own $IMG"
assert_csv_owner "$IMG" n1 1 2 3
e=$CSV_EPOCH
out=$(node_sh 3 "qemu-io -c 'write 0 4k' \$CSV/$IMG" 2>&1) &&
	_fail "n3: qemu-io wrote to the image of a running guest: $out"
echo "$out" | grep -q 'Failed to get "write" lock' ||
	_fail "n3: qemu-io failed, but not on the image lock: $out"
log "n3: a second QEMU is refused by the image lock"

# migrate SRC_INST DEST_NODE PORT: migrate while the guest writes; the
# guest keeps writing on DEST, which becomes the owner.
migrate() {
	local src=$1 dest=$2 port=$3 dst s0 s1 tdone
	s0=$(vm_last_seq "$src" 1)
	vm_migrate_start "$src" "$dest" "$port"
	dst=$VM_LAST
	vm_migrate_wait "$src" "$dst" 120
	tdone=$(now_ms)
	s1=$(vm_last_seq "$src" 1)
	[ "$s1" -gt "$s0" ] ||
		_fail "$src: no write acknowledged during the migration"
	vm_wait_acks "$dst" 1 $(( s1 + 32 )) 60
	log "migration $src (n${VM_NODE[$src]}) -> $dst (n$dest): downtime ${MIG_DOWNTIME} ms, total ${MIG_TOTAL} ms; writes acked on the source up to $s1 (from $s0 at the start), on $dst up to $(vm_last_seq "$dst" 1) $(( $(now_ms) - tdone )) ms later"
	echo "MIGRATION downtime_ms=$MIG_DOWNTIME total_ms=$MIG_TOTAL"
	wait_for 5 csv_owner_is 1 "$IMG" "n$dest" ||
		_fail "n1 does not see n$dest own $IMG: '$(csv_owner 1 "$IMG")'"
	assert_csv_owner "$IMG" "n$dest" 1 2 3
	[ "$CSV_EPOCH" -gt "$e" ] || _fail "I1: epoch did not grow ($e -> $CSV_EPOCH)"
	e=$CSV_EPOCH
	[ "$(vm_gen "$dst")" = "" ] || _fail "$dst booted instead of resuming"
}

# 2., 3. n1 -> n2 -> n3.
migrate a.1 2 4401
migrate a.2 3 4402
for i in 1 2 3; do
	grep -q 'ownership lost' "$(ndir "$i")/csvfs.log" &&
		_fail "n$i: csvfs reports the image lost during a live migration"
done

# 4. Stop, boot again (on n1), verify everything acknowledged.
vm_stop a.3
vm_boot a 1 "$IMG" "$W vmio.blocks=16"
vm_wait_line a.4 'VMIO DONE ' 60 || vm_fail a.4 "second boot did not finish"
vm_wait_exit a.4 30 || vm_fail a.4 "QEMU did not exit at power-off"
node_sh 2 "qemu-img check -q \$CSV/$IMG" || _fail "qemu-img check failed"
wait_for 5 csv_owner_is 1 "$IMG" "" ||
	_fail "$IMG still owned after every QEMU quit: '$(csv_owner 1 "$IMG")'"
assert_csv_tables_identical
_pass
