#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-restart.sh - NFS server faults under a csvfs nfs:// mount.
#
#  1. A writer appends 64 KiB chunks, each followed by fsync (COMMIT), and
#     records every chunk whose fsync succeeded; a failed write or fsync is
#     retried, as an application would.  The server is killed and
#     restarted in the middle.  Afterwards every recorded chunk must be
#     intact on the export, and the writer must have finished in bounded
#     time.
#  2. The server goes away for longer than the RPC timeout (timeout=3):
#     I/O on the mount fails with EIO within a bound, nothing hangs.
#  3. The server comes back: the same mount works again without remount.
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
. "$srcdir/ganesha.sh"

W=$(mktemp -d /tmp/csvfs-nfsrestart.XXXXXX)
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
now() { date +%s; }

ganesha_start "$W" "$EXP"
"$CSVFS" -f "$(ganesha_url "timeout=3")" "$MNT" -o lockd=none \
	>"$W/csvfs.log" 2>&1 &
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "Bail out! mount failed"; cat "$W/csvfs.log"; exit 99; }

# ---- 1: restart under an fsync-ing writer ------------------------------------
cat >"$W/writer.py" <<'PY'
import os, sys, time
path, log, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.time() + 60
def chunk(i): return (b"%08d" % i) * 8192
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
with open(log, "w") as lg:
    i = errors = 0
    while i < n and time.time() < deadline:
        try:
            os.pwrite(fd, chunk(i), i * 65536)
            os.fsync(fd)
        except OSError as e:
            errors += 1
            time.sleep(0.2)
            continue
        lg.write("%d\n" % i); lg.flush()
        i += 1
        time.sleep(0.01)
print("done %d chunks, %d errors" % (i, errors))
PY
python3 "$W/writer.py" "$MNT/disk.img" "$W/synced" 400 >"$W/writer.out" 2>&1 &
WPID=$!
sleep 2
t "server killed mid-workload" ganesha_kill
sleep 2
t "server restarted" ganesha_restart 0
t0=$(now)
wait "$WPID"; WPID=
echo "# writer: $(cat "$W/writer.out") in $(( $(now) - t0 ))s after restart"
t "writer finished all 400 chunks" grep -q "^done 400 " "$W/writer.out"
python3 - "$EXP/disk.img" "$W/synced" >"$W/verify.out" 2>&1 <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
bad = [i for i in map(int, open(sys.argv[2])) if data[i*65536:(i+1)*65536] != (b"%08d" % i) * 8192]
print("checked", sum(1 for _ in open(sys.argv[2])), "bad", len(bad))
sys.exit(1 if bad else 0)
PY
t "every fsynced chunk intact on the export ($(cat "$W/verify.out"))" test $? = 0

# ---- 2: server away longer than the timeout -----------------------------------
ganesha_kill
t0=$(now)
timeout 60 dd if="$MNT/disk.img" of=/dev/null bs=64k count=1 iflag=direct \
	2>"$W/dd.err"; rc=$?
el=$(( $(now) - t0 ))
t "read with the server down fails (rc $rc: $(tail -1 "$W/dd.err")) in ${el}s" \
	test $rc != 0 -a $rc != 124
t "  ... with EIO" grep -q "Input/output error" "$W/dd.err"
t "  ... within 20 s (timeout=3)" test "$el" -le 20
t "a clear log line says so" grep -q "nfs:" "$W/csvfs.log"
t "mount still there" grep -q " $MNT fuse" /proc/mounts

# ---- 3: the server returns ------------------------------------------------------
t "server started again" ganesha_restart 0
back=
for _ in $(seq 30); do
	if dd if="$MNT/disk.img" of=/dev/null bs=64k count=1 iflag=direct 2>/dev/null; then
		back=yes; break
	fi
	sleep 1
done
t "mount works again without remount" test -n "$back"
t "data readable after recovery" cmp "$EXP/disk.img" "$MNT/disk.img"
echo "# csvfs log:"; grep "nfs:" "$W/csvfs.log" | sort | uniq -c | sort -rn | head -8 | sed 's/^/#   /'

t "unmount" fusermount3 -u "$MNT"
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
