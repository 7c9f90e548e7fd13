#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Several live migrations at once: three guests, each writing to its own
# qcow2 on csvfs (cache=none, image locking on), a on n1, b on n2, c on
# n3, migrate at the same time around the ring a: n1 -> n2, b: n2 -> n3,
# c: n3 -> n1, so that every node is a source and a destination at once:
#   1. all three destinations wait (-incoming), then the three QMP
#      migrate commands go out back to back; all complete;
#   2. each guest keeps writing on its destination, which becomes the
#      owner of its image (the sources are revoked, never poisoned);
#      downtimes printed;
#   3. the guests stop and boot again, all three at once, on the node
#      they came from: every verify finds every write acknowledged.
. "$(dirname "$0")/../cluster/common.sh"
. "$(dirname "$0")/../cluster/csvfs.sh"
. "$(dirname "$0")/vm.sh"

vm_cluster 3

W="vmio.pace=20 vmio.flush=8"
VMS="a b c"
declare -A HOME_NODE=([a]=1 [b]=2 [c]=3) DEST=([a]=2 [b]=3 [c]=1)
declare -A SRC=() DST=() EPOCH=() S0=()

# 1. Three guests, one per node.
for v in $VMS; do
	node_sh 1 "qemu-img create -q -f qcow2 \$CSV/vm-$v.qcow2 8M" ||
		_fail "qemu-img create vm-$v.qcow2 failed"
	vm_boot_start "$v" "${HOME_NODE[$v]}" "vm-$v.qcow2" "$W"
	SRC[$v]=$VM_LAST
done
for v in $VMS; do
	vm_boot_wait "${SRC[$v]}"
	vm_wait_acks "${SRC[$v]}" 1 31 120
	wait_for 5 csv_owner_is 1 "vm-$v.qcow2" "n${HOME_NODE[$v]}" ||
		_fail "n1 does not see n${HOME_NODE[$v]} own vm-$v.qcow2"
	assert_csv_owner "vm-$v.qcow2" "n${HOME_NODE[$v]}" 1 2 3
	EPOCH[$v]=$CSV_EPOCH
done

# 2. Destinations wait; the three QMP migrate commands go out at once.
declare -A URI=() TGO=() TOTAL=() DOWN=()
for v in $VMS; do
	vm_incoming "${SRC[$v]}" "${DEST[$v]}" 4410
	DST[$v]=$VM_LAST
	URI[$v]=$VM_URI
done
pids=""
for v in $VMS; do
	S0[$v]=$(vm_last_seq "${SRC[$v]}" 1)
	TGO[$v]=$(now_ms)
	vm_migrate_go "${SRC[$v]}" "${URI[$v]}" &
	pids="$pids $!"
done
for p in $pids; do
	wait "$p" || _fail "a QMP migrate command failed"
done
for v in $VMS; do
	vm_migrate_wait "${SRC[$v]}" "${DST[$v]}" 180
	TOTAL[$v]=$MIG_TOTAL
	DOWN[$v]=$MIG_DOWNTIME
done
# They ran side by side: the last one started before the first ended.
last_go=0 first_end=""
for v in $VMS; do
	[ "${TGO[$v]}" -gt "$last_go" ] && last_go=${TGO[$v]}
	end=$(( TGO[$v] + TOTAL[$v] ))
	[ -z "$first_end" ] || [ "$end" -lt "$first_end" ] && first_end=$end
done
[ "$last_go" -lt "$first_end" ] ||
	_fail "the migrations did not overlap (last started at $last_go, first ended at $first_end)"
for v in $VMS; do
	log "migration $v: n${HOME_NODE[$v]} -> n${DEST[$v]}: downtime ${DOWN[$v]} ms, total ${TOTAL[$v]} ms"
	echo "MIGRATION vm=$v downtime_ms=${DOWN[$v]} total_ms=${TOTAL[$v]}"
done

# Each guest writes on, and its destination owns its image.
for v in $VMS; do
	s1=$(vm_last_seq "${SRC[$v]}" 1)
	[ "$s1" -gt "${S0[$v]}" ] ||
		_fail "$v: no write acknowledged during the migration"
	vm_wait_acks "${DST[$v]}" 1 $(( s1 + 32 )) 60
	wait_for 5 csv_owner_is 1 "vm-$v.qcow2" "n${DEST[$v]}" ||
		_fail "n1 does not see n${DEST[$v]} own vm-$v.qcow2: '$(csv_owner 1 "vm-$v.qcow2")'"
	assert_csv_owner "vm-$v.qcow2" "n${DEST[$v]}" 1 2 3
	[ "$CSV_EPOCH" -gt "${EPOCH[$v]}" ] ||
		_fail "I1: vm-$v.qcow2: epoch did not grow (${EPOCH[$v]} -> $CSV_EPOCH)"
done
for i in 1 2 3; do
	grep -q 'ownership lost' "$(ndir "$i")/csvfs.log" &&
		_fail "n$i: csvfs reports an image lost during a live migration"
done

# 3. Stop, boot again on the home nodes (all at once), verify.
for v in $VMS; do
	vm_stop "${DST[$v]}"
done
for v in $VMS; do
	vm_boot_start "$v" "${HOME_NODE[$v]}" "vm-$v.qcow2" "vmio.verify=only"
	SRC[$v]=$VM_LAST
done
for v in $VMS; do
	vm_boot_wait "${SRC[$v]}"
	vm_wait_exit "${SRC[$v]}" 30 || vm_fail "${SRC[$v]}" "QEMU did not exit after the verify"
	node_sh "${DEST[$v]}" "qemu-img check -q \$CSV/vm-$v.qcow2" ||
		_fail "qemu-img check vm-$v.qcow2 failed"
done
assert_csv_tables_identical
_pass
