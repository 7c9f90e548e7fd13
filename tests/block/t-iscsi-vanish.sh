#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-iscsi-vanish.sh - a target that stops answering: csvfs mounted on an
# iSCSI LUN of a private tgtd (tgt.sh) with ?fencing=lease (tgt keys a
# registration to the session, so a re-login is a nexus without our key
# and, with reservations, the node rightly counts itself fenced; see
# doc/design.md §4.5), tgtd SIGSTOPped, a direct write
# fails with EIO after the command time-out (15 s) instead of hanging,
# the log says the session was dropped; tgtd continued, the next write
# logs in again and succeeds; unmount, `e2fsck -fn` of the backing file.
# Needs root, /dev/fuse and tgt; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/tgt.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
ADMIN=$top_builddir/tools/csvfs-admin
CSVFS=$top_builddir/csvfs/csvfs
PATH=$PATH:/sbin:/usr/sbin
[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
"$ADMIN" format iscsi://127.0.0.1/x/1 2>&1 | grep -q 'built without' &&
	_notrun "csvfs built without iSCSI (libiscsi-dev)"

D=$(mktemp -d /tmp/csvfs-iscsivan.XXXXXX)
MNT=$D/mnt CSVFS_PID=
mkdir -p "$MNT"
cleanup() {
	[ -n "$TGT_PID" ] && kill -CONT "$TGT_PID" 2>/dev/null
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$CSVFS_PID" ] && { kill "$CSVFS_PID" 2>/dev/null; wait "$CSVFS_PID" 2>/dev/null; }
	tgt_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $D" || rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
tgt_start "$D"
truncate -s 256M "$D/lun.img"
tgt_lun 1 iqn.2026-01.org.csvfs.test:vanish "$D/lun.img" ||
	{ echo "Bail out! tgtadm could not make the target"; exit 99; }
URL=$(tgt_url 1)
t "format" "$ADMIN" format "$URL" --label vanish
"$CSVFS" "$URL?fencing=lease" "$MNT" -f -o lockd=none >"$D/csvfs.log" 2>&1 &
CSVFS_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.1; done
t "mounted" mountpoint -q "$MNT"
t "lease-only fencing is logged" grep -q 'fencing by lease only' "$D/csvfs.log"
t "a write before" dd if=/dev/urandom of="$MNT/f" bs=1M count=4 \
	oflag=direct conv=fsync status=none

kill -STOP "$TGT_PID"
start=$(date +%s)
timeout 120 dd if=/dev/zero of="$MNT/f" bs=1M count=1 oflag=direct \
	conv=notrunc,fsync status=none 2>"$D/dd.err"
rc=$? took=$(($(date +%s) - start))
t "a write to a stopped target fails ($(head -1 "$D/dd.err"), ${took}s)" \
	bash -c "[ $rc != 0 ] && [ $rc != 124 ] && grep -q 'Input/output error' '$D/dd.err'"
t "within the time-outs (${took}s <= 45s)" test "$took" -le 45
t "the log says the session was dropped" \
	grep -q 'iSCSI session dropped: a command timed out' "$D/csvfs.log"
kill -CONT "$TGT_PID"
t "tgtd back: the next write logs in again and succeeds" \
	timeout 60 dd if=/dev/urandom of="$MNT/g" bs=1M count=4 oflag=direct \
	conv=fsync status=none
t "unmount" fusermount3 -u "$MNT"
wait "$CSVFS_PID"
CSVFS_PID=
if e2fsck -fn "$D/lun.img" >"$D/fsck.out" 2>&1; then
	ok "e2fsck -fn of the backing file clean"
else
	sed 's/^/# /' "$D/fsck.out" | head -20
	bad "e2fsck -fn of the backing file"
fi
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || { sed 's/^/# csvfs: /' "$D/csvfs.log" | tail -20; exit 1; }
exit 0
