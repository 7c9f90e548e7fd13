#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-readdir.sh - large directory listings through the nfs backend,
# on NFSv3 and NFSv4, while another mount of the same export adds and
# removes other entries in the listed directory (a private nfs-ganesha,
# lockd=none).
#
# Two exports of one server: the usual one, and one whose READDIR
# replies carry a cookie verifier (UseCookieVerifier: the directory's
# change attribute) so that a listing continued after the directory
# changed is refused with BAD_COOKIE.  In each, a directory of $NFILES
# files is listed many times through one mount, with getdents buffers
# of several sizes (the kernel continues from csvfs's offsets), while a
# second mount creates and removes other files there.  Every listing
# must hold each of the $NFILES files, which exist throughout, exactly
# once with its file id as d_ino (readdir(3) skips an entry whose d_ino
# is 0), and no name twice; getdents must not fail (on the verifier
# export csvfs may give up with EBUSY when every pass met a change, but
# never list short).  The same directory, quiet, must list exactly what
# the export holds.  Needs root, /dev/fuse and python3; exits 77 with
# the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
srcdir=$(cd "$(dirname "$0")" && pwd)
CSVFS=$top_builddir/csvfs/csvfs
NFILES=${NFILES:-3000} LISTINGS=${LISTINGS:-8}

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v python3 >/dev/null || _notrun "python3 missing"
W=$(mktemp -d /tmp/csvfs-readdir.XXXXXX)
EXP=$W/export VEXP=$W/vexport
mkdir -p "$EXP" "$VEXP"
GANESHA_VERF_EXPORT=$VEXP
. "$srcdir/ganesha.sh"
MOUNTS=() CHURN_PID=

cleanup() {
	local m
	[ -n "$CHURN_PID" ] && kill "$CHURN_PID" 2>/dev/null && wait "$CHURN_PID" 2>/dev/null
	for m in "${MOUNTS[@]}"; do
		grep -q " $m fuse" /proc/mounts &&
			{ fusermount3 -u "$m" || umount -l "$m"; }
	done
	ganesha_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

# mount_at URL MNT LOG
mount_at() {
	mkdir -p "$2"
	"$CSVFS" -f "$1" "$2" -o lockd=none >"$3" 2>&1 &
	MOUNTS+=("$2")
	for _ in $(seq 50); do mountpoint -q "$2" && return 0; sleep 0.1; done
	echo "Bail out! mount of $1 failed"
	cat "$3"
	exit 99
}

# lister.py DIR NFILES LISTINGS EXPORTDIR [exact]: list DIR LISTINGS times
# with getdents64 (buffers of 32 KiB, 4 KiB, 1 KiB in turn) and check the
# f-files there: each once, d_ino its st_ino in EXPORTDIR; exact: the
# whole listing must equal the export's.
# BUSY_OK=1: a listing may fail with EBUSY (csvfs gave up), not be short.
cat >"$W/lister.py" <<'PY'
import collections, ctypes, errno, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
SYS_getdents64 = 217 if os.uname().machine == "x86_64" else 61

def listing(path, size):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    buf = ctypes.create_string_buffer(size)
    out = []
    try:
        while True:
            n = libc.syscall(SYS_getdents64, fd, buf, size)
            if n < 0:
                e = ctypes.get_errno()
                raise OSError(e, os.strerror(e))
            if n == 0:
                return out
            raw, pos = buf.raw[:n], 0
            while pos < n:
                ino, _, reclen, _ = struct.unpack_from("QqHB", raw, pos)
                name = raw[pos + 19:pos + reclen].split(b"\0", 1)[0]
                out.append((name.decode(), ino))
                pos += reclen
    finally:
        os.close(fd)

path, export = sys.argv[1], sys.argv[4]
nfiles, loops = int(sys.argv[2]), int(sys.argv[3])
exact = len(sys.argv) > 5 and sys.argv[5] == "exact"
busy_ok = os.environ.get("BUSY_OK") == "1"
stable = {"f%05d" % i: os.lstat(os.path.join(export, "f%05d" % i)).st_ino
          for i in range(nfiles)}
bad = 0
for i in range(loops):
    size = (32768, 4096, 1024)[i % 3]
    try:
        ents = listing(path, size)
    except OSError as e:
        print("listing %d (%d-byte buffers): %s" % (i, size, e))
        if not (busy_ok and e.errno == errno.EBUSY):
            bad += 1
        continue
    names = [n for n, _ in ents if n not in (".", "..")]
    count = collections.Counter(names)
    lost = sorted(set(stable) - set(names))
    twice = sorted(n for n, k in count.items() if k > 1)
    wrong = sorted(n for n, ino in ents if n in stable and ino != stable[n])
    msg = "listing %d (%d-byte buffers): %d names, %d lost, %d twice, " \
        "%d with another d_ino" % (i, size, len(names), len(lost),
                                   len(twice), len(wrong))
    lost += wrong
    if exact:
        want = {n: os.lstat(os.path.join(export, n)).st_ino
                for n in os.listdir(export)}
        got = {n: ino for n, ino in ents if n not in (".", "..")}
        extra = sorted(set(got) - set(want))
        wrong = sorted(n for n in got if n in want and got[n] != want[n])
        lost = sorted(set(want) - set(got))
        msg += "; against the export: %d not there, %d another d_ino" % (
            len(extra), len(wrong))
        lost += extra + wrong
    if lost or twice:
        msg += " e.g. %s %s" % (lost[:3], twice[:3])
        bad += 1
    print(msg)
sys.exit(1 if bad else 0)
PY

# churn.py DIR STOPFILE COUNTFILE: create and remove x-files in DIR (20
# at a time) until STOPFILE exists; COUNTFILE: how many were made.
cat >"$W/churn.py" <<'PY'
import os, sys
d, stop, countfile = sys.argv[1:4]
i = 0
while not os.path.exists(stop):
    i += 1
    with open(os.path.join(d, "x%07d" % i), "w"):
        pass
    if i > 20:
        os.unlink(os.path.join(d, "x%07d" % (i - 20)))
    if i % 10 == 0:
        with open(countfile, "w") as f:
            f.write("%d\n" % i)
with open(countfile, "w") as f:
    f.write("%d\n" % i)
PY

made() { cat "$1" 2>/dev/null || echo 0; }

# run_case NAME EXPORTDIR URL [busy_ok]: the quiet and the busy listings
# of one export on one NFS version; busy_ok: a busy listing may fail with
# EBUSY.
run_case() {
	local name=$1 exp=$2 url=$3 dir=$1 l=$W/$1.l c=$W/$1.c before out rc
	mkdir "$exp/$dir"
	python3 -c 'import sys
for i in range(int(sys.argv[2])):
    open("%s/f%05d" % (sys.argv[1], i), "w").close()' "$exp/$dir" "$NFILES"
	mount_at "$url" "$l" "$W/$name-list.log"
	mount_at "$url" "$c" "$W/$name-churn.log"

	out=$(timeout 120 python3 "$W/lister.py" "$l/$dir" "$NFILES" 3 "$exp/$dir" exact 2>&1); rc=$?
	echo "$out" | sed 's/^/#   /'
	t "$name: a quiet directory of $NFILES lists completely, d_ino right (rc $rc)" test $rc = 0

	rm -f "$W/stop" "$W/count"
	python3 "$W/churn.py" "$c/$dir" "$W/stop" "$W/count" &
	CHURN_PID=$!
	for _ in $(seq 100); do [ "$(made "$W/count")" -ge 20 ] && break; sleep 0.1; done
	before=$(made "$W/count")
	out=$(BUSY_OK=$([ "${4:-}" = busy_ok ] && echo 1) timeout 300 \
		python3 "$W/lister.py" "$l/$dir" "$NFILES" "$LISTINGS" "$exp/$dir" 2>&1); rc=$?
	echo "$out" | sed 's/^/#   /'
	touch "$W/stop"
	wait "$CHURN_PID"
	CHURN_PID=
	if [ "${4:-}" = busy_ok ]; then
		t "$name: $LISTINGS listings while another mount adds and removes files: each of the $NFILES once with its d_ino, or EBUSY ($(echo "$out" | grep -c 'busy') refused, rc $rc)" \
			test $rc = 0
	else
		t "$name: $LISTINGS listings while another mount adds and removes files: each of the $NFILES once with its d_ino (rc $rc)" \
			test $rc = 0
	fi
	t "$name:   ... and files were added and removed during them ($before, then $(made "$W/count"))" \
		test "$(made "$W/count")" -gt "$((before + LISTINGS))"
}

ganesha_start "$W" "$EXP"
for v in 3 4; do
	GANESHA_NFS_VERSION=$v
	run_case "v$v" "$EXP" "$(ganesha_url)"
done
# With cookie verifiers, every change of the directory voids a listing
# under way: csvfs begins it again, and after a few passes that all met
# a change it fails opendir with EBUSY rather than give a short listing.
for v in 3 4; do
	GANESHA_NFS_VERSION=$v
	run_case "v$v-verifier" "$VEXP" "$(ganesha_verf_url)" busy_ok
done
grep -h "readdir" "$W"/*-list.log | sort | uniq -c | sort -rn | head -5 | sed 's/^/# log: /'

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
