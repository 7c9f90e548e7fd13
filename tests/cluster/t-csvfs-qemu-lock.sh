#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# QEMU's image locking across nodes (doc/design.md §2.2): the OFD locks QEMU
# takes on its image are cluster-wide through csvfs and lockd, so a
# second QEMU on another node is refused exactly as on one host.
#   n1 creates a qcow2 on the shared volume and keeps it open writable
#     in an interactive qemu-io (fed from a fifo), writing 64 KiB;
#   n2's qemu-io -c 'write 0 4k' fails with 'Failed to get "write" lock',
#     and so does n3's; a shared read-only look (qemu-img info -U) works;
#   n1's qemu-io quits: n2's write now succeeds, and n3 reads n2's 4 KiB
#     followed by the rest of n1's 64 KiB.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_cmd qemu-img qemu-io
require_bin "$CV_LOCKD" "$CV_ADMIN"

csvfs_setup
cluster_start 3
csvfs_mount_all 3

IMG=vm.qcow2
node_sh 1 "qemu-img create -q -f qcow2 \$CSV/$IMG 16M" ||
	_fail "n1: qemu-img create on the shared volume failed"
node_sh 2 "qemu-img check -q \$CSV/$IMG" || _fail "n2: qemu-img check failed"
log "n1 created $IMG; n2 checks it"

# n1: an interactive qemu-io holding the image open writable.
qfifo=$CV_WORK/qemu-io-n1.in
qlog=$(ndir 1)/qemu-io-n1.log
mkfifo "$qfifo"
nsenter -t "${CV_HOLDER[1]}" -m -n -- qemu-io "$CV_MNT/$IMG" \
	<"$qfifo" >"$qlog" 2>&1 &
qpid=$!
CV_EXTRA_PIDS+=("$qpid")
exec {qfd}>"$qfifo"
echo "write -P 0x11 0 64k" >&"$qfd"
wait_for 10 grep -q 'wrote 65536/65536 bytes at offset 0' "$qlog" ||
	_fail "n1: qemu-io did not write: $(cat "$qlog")"
echo "flush" >&"$qfd"
log "n1: qemu-io holds $IMG open writable, wrote 64 KiB"
wait_for 5 csv_owner_is 2 "$IMG" n1 ||
	_fail "n2 does not see n1 own $IMG: '$(csv_owner 2 "$IMG")'"
assert_csv_owner "$IMG" n1 1 2 3
locks=$(admin 2 --json locks "$CV_MNT/$IMG" 2>&1) ||
	_fail "n2: csvfs-admin locks failed: $locks"
log "locks on $IMG seen from n2: $(echo "$locks" | jq -c '[.[] | {node, type, start, len}]' 2>/dev/null || echo "$locks")"

# A second QEMU on n2 and n3: refused by the image lock.
for i in 2 3; do
	t=$(now_ms)
	out=$(node_sh "$i" "qemu-io -c 'write -P 0x22 0 4k' \$CSV/$IMG" 2>&1) &&
		_fail "n$i: qemu-io wrote to $IMG while n1's qemu-io holds it: $out"
	echo "$out" | grep -q 'Failed to get "write" lock' ||
		_fail "n$i: qemu-io failed, but not on the image lock: $out"
	log "n$i: second qemu-io refused in $(( $(now_ms) - t )) ms: $(echo "$out" | head -n1)"
done
out=$(node_sh 3 "qemu-img info -U --output=json \$CSV/$IMG" 2>&1) ||
	_fail "n3: qemu-img info -U (shared, read-only) failed: $out"
echo "$out" | jq -e '.format == "qcow2"' >/dev/null ||
	_fail "n3: qemu-img info -U: $out"
out=$(node_sh 3 "qemu-img info \$CSV/$IMG" 2>&1) &&
	_fail "n3: qemu-img info without -U got a shared lock on an image in use"
log "n3: qemu-img info refused without -U, works with -U"
kill -0 "$qpid" 2>/dev/null || _fail "n1's qemu-io died"
assert_csv_owner "$IMG" n1 1 2 3

# n1's qemu-io quits: its locks and ownership go, n2 may write.
echo "quit" >&"$qfd"
exec {qfd}>&-
wait_for 10 _pid_gone "$qpid" || _fail "n1: qemu-io did not quit"
wait "$qpid" 2>/dev/null
log "n1: qemu-io quit"
t=$(now_ms)
out=$(node_sh 2 "qemu-io -c 'write -P 0x22 0 4k' \$CSV/$IMG" 2>&1) ||
	_fail "n2: qemu-io write failed after n1's qemu-io quit: $out"
log "n2: qemu-io write 0 4k: $(( $(now_ms) - t )) ms ($(echo "$out" | head -n1))"
out=$(node_sh 3 "qemu-io -r -c 'read -P 0x22 0 4k' -c 'read -P 0x11 4k 60k' \$CSV/$IMG" 2>&1) ||
	_fail "n3: qemu-io read failed: $out"
echo "$out" | grep -qi 'fail' && _fail "n3 reads wrong data: $out"
log "n3 reads n2's 4 KiB then n1's 60 KiB"
node_sh 1 "qemu-img check -q \$CSV/$IMG" || _fail "n1: qemu-img check failed at the end"
wait_for 5 csv_owner_is 1 "$IMG" "" || _fail "$IMG still owned: '$(csv_owner 1 "$IMG")'"
locks=$(admin 3 --json locks "$CV_MNT/$IMG" 2>&1)
[ "$(echo "$locks" | jq 'length' 2>/dev/null)" = 0 ] ||
	_fail "locks left on $IMG: $locks"
assert_csv_tables_identical
_pass
