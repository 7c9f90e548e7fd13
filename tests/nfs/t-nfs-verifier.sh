#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-verifier.sh - fsync after a server restart keeps UNSTABLE writes.
#
# NFS WRITEs are UNSTABLE: the server may keep them in memory until a
# COMMIT, and a server that restarts in between loses them; it says so by
# a new write verifier (RFC 1813 3.3.7, RFC 7530 16.36).  The mount uses
# version=CV_NFS_VERSION (3 by default; t-nfs-verifier4.sh: 4).  Here a
# file held open on the
# csvfs mount gets 4 MiB of O_DIRECT writes (so they reach the server
# before the restart, not at fsync), then nfs-ganesha is stopped and,
# while it is down, the loss a crash may cause is made real: the written
# range is zeroed on the export (ganesha's VFS backend keeps acknowledged
# data in the host page cache, so a plain restart loses nothing and could
# not show the bug).  The server starts again with a new verifier and the
# writer calls fsync:
#
#  1. fsync succeeds and the export holds all 4 MiB as written: the
#     backend saw the verifier change and rewrote its kept copies.  Without
#     the verifier check COMMIT succeeds and the export keeps the zeroes,
#     so this step fails.
#  2. csvfs logged the verifier change once (the counter in the line).
#  3. Control: more writes and fsync with no restart rewrite nothing.
#
# Needs root, /dev/fuse, python3; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
srcdir=$(cd "$(dirname "$0")" && pwd)
CSVFS=$top_builddir/csvfs/csvfs

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
command -v python3 >/dev/null || _notrun "python3 missing"
GANESHA_NFS_VERSION=${CV_NFS_VERSION:-3}
. "$srcdir/ganesha.sh"
echo "# NFSv$GANESHA_NFS_VERSION"

W=$(mktemp -d /tmp/csvfs-nfsverf.XXXXXX)
EXP=$W/export MNT=$W/mnt
mkdir -p "$EXP" "$MNT"
WPID=

cleanup() {
	[ -n "$WPID" ] && kill "$WPID" 2>/dev/null
	grep -q " $MNT fuse" /proc/mounts && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	ganesha_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
wait_file() { for _ in $(seq 300); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }
resends() { grep -c "returned a new write verifier" "$W/csvfs.log"; }

ganesha_start "$W" "$EXP"
"$CSVFS" -f "$(ganesha_url "timeout=3")" "$MNT" -o lockd=none \
	>"$W/csvfs.log" 2>&1 &
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "Bail out! mount failed"; cat "$W/csvfs.log"; exit 99; }

# writer: round R writes 64 chunks of 64 KiB at R*4 MiB, O_DIRECT, then
# waits for W/go.R, fsyncs (retrying, as an application would) and says
# how it went in W/done.R
cat >"$W/writer.py" <<'PY'
import mmap, os, sys, time
path, w = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
buf = mmap.mmap(-1, 65536)
for r in (0, 1):
    for i in range(64):
        buf.seek(0); buf.write((b"r%di%05d" % (r, i)) * 8192)
        os.pwritev(fd, [buf], (r * 64 + i) * 65536)
    open("%s/written.%d" % (w, r), "w").close()
    while not os.path.exists("%s/go.%d" % (w, r)):
        time.sleep(0.1)
    res = "fsync failed"
    for attempt in range(1, 6):
        try:
            os.fsync(fd); res = "fsync ok (attempt %d)" % attempt; break
        except OSError as e:
            res = "fsync failed: %s" % e; time.sleep(1)
    open("%s/done.%d" % (w, r), "w").write(res)
os.close(fd)
PY
check_py='import sys
d = open(sys.argv[1], "rb").read(); r = int(sys.argv[2])
bad = [i for i in range(64) if d[(r*64+i)*65536:(r*64+i+1)*65536] != (b"r%di%05d" % (r, i)) * 8192]
print("%d of 64 chunks wrong" % len(bad)); sys.exit(1 if bad else 0)'

python3 "$W/writer.py" "$MNT/disk.img" "$W" >"$W/writer.out" 2>&1 &
WPID=$!

# ---- 1, 2: restart between the writes and fsync ------------------------------
t "4 MiB written unstable" wait_file "$W/written.0"
ganesha_down
# what a crash may lose: everything acknowledged but not committed
dd if=/dev/zero of="$EXP/disk.img" bs=64k count=64 conv=notrunc 2>/dev/null
sync "$EXP/disk.img"
t "server restarted (new write verifier)" ganesha_up
touch "$W/go.0"
t "writer fsynced" wait_file "$W/done.0"
t "  ... successfully ($(cat "$W/done.0" 2>/dev/null))" grep -q "fsync ok" "$W/done.0"
out=$(python3 -c "$check_py" "$EXP/disk.img" 0); rc=$?
t "data written before the restart is intact after fsync ($out)" test $rc = 0
t "the verifier change was logged once ($(resends))" test "$(resends)" = 1

# ---- 3: control: no restart, no rewrite -------------------------------------------
t "4 more MiB written" wait_file "$W/written.1"
touch "$W/go.1"
t "second fsync" wait_file "$W/done.1"
t "  ... successfully" grep -q "fsync ok" "$W/done.1"
out=$(python3 -c "$check_py" "$EXP/disk.img" 1); rc=$?
t "second round intact ($out)" test $rc = 0
t "no rewrite without a restart ($(resends))" test "$(resends)" = 1
wait "$WPID"; WPID=
echo "# csvfs log:"; grep "nfs:" "$W/csvfs.log" | sed 's/^/#   /' | tail -6

t "unmount" fusermount3 -u "$MNT"
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
