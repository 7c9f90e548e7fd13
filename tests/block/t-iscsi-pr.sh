#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-iscsi-pr.sh - SCSI-3 persistent reservations on an iSCSI LUN served by
# a private tgtd (tgt.sh).  Node A's csvfs mounts the volume: its key is
# registered on both its I_T nexuses (data path and metadata engine) and
# the LUN reserved write exclusive, registrants only; an unregistered
# initiator's write is refused.  Node B (another initiator name)
# registers and preempts A's key (tgt has no PREEMPT AND ABORT: the
# fallback to PREEMPT is reported); A's next data write meets
# RESERVATION CONFLICT, A's csvfs logs lost ownership and its writes
# fail with EIO, and A never registers again.  B then clears the
# reservation; a new mount replays the journal, the data written before
# the preempt is intact, and `e2fsck -fn` of the backing file is clean.
# Needs root, /dev/fuse and tgt; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/tgt.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
ADMIN=$top_builddir/tools/csvfs-admin
CSVFS=$top_builddir/csvfs/csvfs
PRTOOL=$top_builddir/tests/block/prtool
PATH=$PATH:/sbin:/usr/sbin
[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
for b in "$ADMIN" "$CSVFS" "$PRTOOL"; do
	[ -x "$b" ] || _notrun "$b not built"
done
"$ADMIN" format iscsi://127.0.0.1/x/1 2>&1 | grep -q 'built without' &&
	_notrun "csvfs built without iSCSI (libiscsi-dev)"

D=$(mktemp -d /tmp/csvfs-iscsipr.XXXXXX)
MNT=$D/mnt CSVFS_PID= LOCKD_PID=
LOCKD=$top_builddir/lockmgr/csvfs-lockd
mkdir -p "$MNT"
cleanup() {
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$CSVFS_PID" ] && { kill "$CSVFS_PID" 2>/dev/null; wait "$CSVFS_PID" 2>/dev/null; }
	[ -n "$LOCKD_PID" ] && { kill "$LOCKD_PID" 2>/dev/null; wait "$LOCKD_PID" 2>/dev/null; }
	tgt_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $D" || rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
tgt_start "$D"
truncate -s 256M "$D/lun.img"
tgt_lun 1 iqn.2026-01.org.csvfs.test:pr "$D/lun.img" ||
	{ echo "Bail out! tgtadm could not make the target"; exit 99; }
URL=$(tgt_url 1)
IQN=iqn.2026-01.org.csvfs.test
as() { # NODE PRTOOL-STEPS...
	local n=$1
	shift
	CSVFS_ISCSI_INITIATOR=$IQN:$n "$PRTOOL" "$URL" "$@"
}

t "format" "$ADMIN" format "$URL" --label pr

mount_a() {
	CSVFS_ISCSI_INITIATOR=$IQN:nodea "$CSVFS" "$URL" "$MNT" -f \
		-o lockd=none >>"$D/csvfs.log" 2>&1 &
	CSVFS_PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$CSVFS_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "Bail out! csvfs did not mount: $(tail -3 "$D/csvfs.log")"
	exit 99
}
mount_a
KA=$(printf '%016x' "$CSVFS_PID") # no lockd: node 0, the pid
as nodec show >"$D/show1" 2>&1
sed 's/^/# /' "$D/show1"
t "A's key is registered on its two nexuses" \
	test "$(grep -c "^key $KA" "$D/show1")" = 2
t "the LUN is reserved by A, write exclusive registrants only" \
	grep -q "^holder $KA type 5" "$D/show1"
as nodec write $((256 * 1024 * 1024 - 4096)) >"$D/w" 2>&1
t "an unregistered initiator's write is refused ($(tail -1 "$D/w"))" \
	grep -q 'write: Device or resource busy' "$D/w"

t "A writes before the preempt" \
	dd if=/dev/urandom of="$D/before" bs=64k count=16 status=none
t "A copies it in" cp "$D/before" "$MNT/before"
t "A's fsync" sync -f "$MNT"

KB=00000000000000bb
as nodeb register $KB preempt $KB "$KA" show >"$D/pre" 2>&1
sed 's/^/# /' "$D/pre"
t "B preempts A ($(grep preempted "$D/pre"))" \
	grep -q "preempted $KA with PREEMPT$" "$D/pre"
t "B's key alone registered, B holds the reservation" \
	bash -c "grep -q '^holder $KB type 5' '$D/pre' && [ \$(grep -c '^key' '$D/pre') = 1 ]"

dd if=/dev/urandom of="$MNT/after" bs=64k count=16 oflag=direct \
	conv=fsync status=none 2>"$D/dd.err"
rc=$?
t "A's write after the preempt fails ($(head -1 "$D/dd.err"))" \
	bash -c "[ $rc != 0 ] && grep -q 'Input/output error' '$D/dd.err'"
t "A's csvfs reports lost ownership ($(grep -m1 -o "lost the LUN's.*" "$D/csvfs.log"))" \
	grep -Eq "lost the LUN's ownership: (RESERVATION CONFLICT|unit attention 2A/0[345])" "$D/csvfs.log"
t "A's csvfs poisons its files" grep -q 'lost ownership of the volume' \
	"$D/csvfs.log"
dd if=/dev/zero of="$MNT/before" bs=4k count=1 conv=notrunc,fsync \
	status=none 2>/dev/null
t "A's later writes fail too" test $? != 0
as nodec show >"$D/show2" 2>&1
t "A did not register again" bash -c "! grep -q '^key $KA' '$D/show2'"
fusermount3 -u "$MNT"
wait "$CSVFS_PID"
CSVFS_PID=

t "B clears the reservation" as nodeb register $KB clear $KB
# as a daemon this time: csvfs forks after opening the LUN, and the
# child's first request starts the sessions' I/O threads again
CSVFS_ISCSI_INITIATOR=$IQN:nodea "$CSVFS" "$URL" "$MNT" -o lockd=none \
	>>"$D/csvfs.log" 2>&1
t "remount as a daemon" mountpoint -q "$MNT"
DPID=$(pgrep -f "csvfs $URL $MNT" | head -1)
t "remount: the data written before the preempt is intact" \
	timeout 60 cmp "$D/before" "$MNT/before"
t "remount: a new file written and synced" \
	timeout 60 dd if="$D/before" of="$MNT/new" bs=64k oflag=direct conv=fsync status=none

# the fencer's way: csvfs-admin preempt, as node F (no lockd here: node
# id 0 for both, the fencer's incarnation ffffffff)
KF=00000000ffffffff
CSVFS_ISCSI_INITIATOR=$IQN:nodef "$ADMIN" -s "$D/no-lockd.sock" preempt "$URL" 0 >"$D/fence" 2>&1
t "csvfs-admin preempt removes A's key ($(cat "$D/fence"))" \
	grep -q '^node 0: 1 key preempted' "$D/fence"
as nodec show >"$D/show3" 2>&1
t "the fencer holds the reservation" grep -q "^holder $KF type 5" "$D/show3"
timeout 60 dd if="$D/before" of="$MNT/new2" bs=64k oflag=direct conv=fsync \
	status=none 2>/dev/null
t "A's write after the fence fails" test $? != 0
t "unmount" fusermount3 -u "$MNT"
for _ in $(seq 100); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
t "csvfs exited" bash -c "! kill -0 '$DPID' 2>/dev/null"
t "the fencer clears the reservation" as nodef register $KF clear $KF
mount_a
t "last mount: files intact" cmp "$D/before" "$MNT/new"
t "last unmount" fusermount3 -u "$MNT"
wait "$CSVFS_PID"
CSVFS_PID=

# with a (standalone) csvfs-lockd: the key carries lockd's node id, and
# csvfs-admin volumes shows the reservation
SOCK=$D/lockd.sock
"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$D/state" \
	>"$D/lockd.log" 2>&1 &
LOCKD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
CSVFS_ISCSI_INITIATOR=$IQN:nodea "$CSVFS" "$URL" "$MNT" -f -o "lockd=$SOCK" \
	>>"$D/csvfs.log" 2>&1 &
CSVFS_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
"$ADMIN" -s "$SOCK" volumes >"$D/volumes" 2>&1
sed 's/^/# /' "$D/volumes"
NODE=$("$ADMIN" -s "$SOCK" --json status 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_id"])' 2>/dev/null)
t "csvfs-admin volumes: reserved by node $NODE's key, type 5" \
	grep -Eq "reserved by [0-9a-f]{16} \(node ${NODE:-x}\), type 5" "$D/volumes"
t "csvfs-admin volumes: its key registered twice" \
	test "$(grep -c "registered .*(node ${NODE:-x})" "$D/volumes")" = 2
t "unmount (lockd)" fusermount3 -u "$MNT"
wait "$CSVFS_PID"
CSVFS_PID=
as nodec show >"$D/show4" 2>&1
t "a clean unmount withdraws the keys and the reservation" \
	bash -c "grep -q 'no reservation' '$D/show4' && ! grep -q '^key' '$D/show4'"
if e2fsck -fn "$D/lun.img" >"$D/fsck.out" 2>&1; then
	ok "e2fsck -fn of the backing file clean"
else
	sed 's/^/# /' "$D/fsck.out" | head -20
	bad "e2fsck -fn of the backing file"
fi
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || { sed 's/^/# csvfs: /' "$D/csvfs.log" | tail -20; exit 1; }
exit 0
