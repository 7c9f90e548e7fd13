#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The guest's verify can fail: on a local qcow2 (no cluster), the guest
# writes 64 blocks and powers off; one block is then overwritten in the
# middle (torn), and the next boot is told of acknowledged writes that
# the disk cannot hold: writes 0..5 of a generation 2 that never ran
# (stale: slots 0-5 hold generation 1) and writes 64..70 of generation 1
# (lost: those slots are blank).  The verdict must be exactly
#   result=fail stale=5 lost=7 torn=1
# (slot 3 counts as torn, not stale), with a BAD line for each.  A third
# boot told only what really was acknowledged finds the torn block alone.
. "$(dirname "$0")/../cluster/common.sh"
. "$(dirname "$0")/vm.sh"

require_qemu
cv_setup
vm_setup
IMG=$CV_WORK/disk.qcow2
qemu-img create -q -f qcow2 "$IMG" 4M || _fail "qemu-img create failed"

# boot N ARGS: boot the guest on IMG (QEMU in the foreground, bounded);
# its console goes to boot-N.console.
boot() {
	local n=$1 args=$2 rc=0
	timeout 300 "$VM_QEMU" -nodefaults -no-user-config \
		-machine pc,accel=tcg -cpu qemu64 -m 128 -display none \
		-no-reboot -kernel "$VM_GUEST/kernel" \
		-initrd "$VM_GUEST/initramfs.gz" \
		-append "console=ttyS0 panic=-1 quiet vmio.slots=128 $args" \
		-drive "file=$IMG,format=qcow2,cache=none,if=virtio" \
		-serial "file:$CV_WORK/boot-$n.console" \
		>"$CV_WORK/boot-$n.log" 2>&1 || rc=$?
	[ "$rc" = 0 ] || _fail "boot $n: QEMU exit $rc: $(tail -n 5 "$CV_WORK/boot-$n.log")"
	BOOT=$(tr -d '\r' <"$CV_WORK/boot-$n.console" | grep -a '^VMIO ')
	log "boot $n: $(echo "$BOOT" | grep -E 'VERIFY|DONE' | tr '\n' ' ')"
}

boot 1 "vmio.blocks=64 vmio.flush=8 vmio.pace=0"
echo "$BOOT" | grep -q '^VMIO DONE gen=1 seq=63$' ||
	_fail "boot 1 did not write 64 blocks: $BOOT"
# Slot 3 is block 4: overwrite 512 bytes in its middle.
qemu-io -c "write -P 0x5a $(( 4 * 4096 + 1024 )) 512" "$IMG" >/dev/null ||
	_fail "qemu-io write failed"

boot 2 "vmio.verify=only vmio.flush=8 vmio.acked=1:70,2:5"
v=$(echo "$BOOT" | grep '^VMIO VERIFY ')
case $v in
*"result=fail "*" stale=5 lost=7 torn=1 misplaced=0 future=0") ;;
*) _fail "boot 2: expected stale=5 lost=7 torn=1, got: $v" ;;
esac
[ "$(echo "$BOOT" | grep -c '^VMIO BAD ')" = 13 ] ||
	_fail "boot 2: expected 13 BAD lines: $BOOT"
echo "$BOOT" | grep -q '^VMIO BAD slot=3 reason=torn ' ||
	_fail "boot 2: slot 3 not reported torn: $BOOT"
echo "$BOOT" | grep -q '^VMIO GEN ' && _fail "boot 2 wrote after a failed verify"

boot 3 "vmio.verify=only vmio.flush=8 vmio.acked=1:63"
v=$(echo "$BOOT" | grep '^VMIO VERIFY ')
case $v in
*"result=fail "*" acked=63 "*" stale=0 lost=0 torn=1 "*) ;;
*) _fail "boot 3: expected the torn block alone, got: $v" ;;
esac
_pass
