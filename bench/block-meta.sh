#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Metadata on a block volume's coordinator, against the dir backend, and
# the coordinator's restart time.  Not a pass/fail test: it prints
# figures for BENCHMARKS.md.
#
#   1. create + close + unlink of one file, N cycles through the mount,
#      each cycle timed: ops/s, p50 and p99 in microseconds.  The block
#      mount (an image file LUN formatted with csvfs-admin format, this
#      node its coordinator) and a dir mount over a directory of the same
#      file system, both with a standalone csvfs-lockd and default
#      options; in pairs, dir then block, REPEAT times.
#   2. restart: a sparse LUN of RSIZE holding NFILES files (made through
#      the mount), csvfs SIGKILLed right after a burst of creates (the
#      journal holds them), then the time from starting csvfs until a
#      create on the mount succeeds (journal replay, orphans, FUSE
#      mount); and the same after a clean unmount.
#
#   sudo top_builddir=$PWD/build bench/block-meta.sh [-d DIR] [-n N]
#        [-r REPEAT] [-s RSIZE] [-f NFILES]
set -u
dir=/var/tmp n=2000 repeat=3 rsize=1T nfiles=10000
while getopts d:n:r:s:f:h opt; do
	case $opt in
	d) dir=$OPTARG ;;
	n) n=$OPTARG ;;
	r) repeat=$OPTARG ;;
	s) rsize=$OPTARG ;;
	f) nfiles=$OPTARG ;;
	*) sed -n '3,21p' "$0"; exit 2 ;;
	esac
done
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
ADMIN=$top_builddir/tools/csvfs-admin

W=$(mktemp -d "$dir/csvfs-blkmeta.XXXXXX") || exit 1
SOCK=$W/lockd.sock
LPID= CPIDS=
cleanup() {
	for m in "$W"/m-*; do
		mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }
	done
	for p in $CPIDS; do wait "$p" 2>/dev/null; done
	[ -n "$LPID" ] && kill "$LPID" && wait "$LPID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
	>"$W/lockd.log" 2>&1 &
LPID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done

mount_fg() { # SOURCE MNT: csvfs in the background, wait for the mount
	mkdir -p "$2"
	"$CSVFS" "$1" "$2" -f -o "lockd=$SOCK" >"$2.log" 2>&1 &
	CPID=$!
	CPIDS="$CPIDS $CPID"
	for _ in $(seq 2000); do
		mountpoint -q "$2" && return 0
		kill -0 "$CPID" 2>/dev/null || break
		sleep 0.005
	done
	echo "mount of $1 failed: $(tail -2 "$2.log")" >&2
	exit 1
}

cycle_py='
import os, sys, time
d, n = sys.argv[1], int(sys.argv[2])
lat = []
t0 = time.perf_counter()
for i in range(n):
    p = "%s/c%d" % (d, i)
    s = time.perf_counter_ns()
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.unlink(p)
    lat.append(time.perf_counter_ns() - s)
t = time.perf_counter() - t0
lat.sort()
print("%.0f %.0f %.0f" % (n / t, lat[n // 2] / 1e3, lat[n * 99 // 100] / 1e3))
'

truncate -s 4G "$W/lun.img"
"$ADMIN" format "block:$W/lun.img" --label blkmeta >/dev/null || exit 1
mkdir -p "$W/dirbe"
mount_fg "block:$W/lun.img" "$W/m-block"
mount_fg "dir:$W/dirbe" "$W/m-dir"
echo "create+close+unlink, $n cycles, pairs dir then block:"
printf '%-6s %10s %10s %10s\n' backend "ops/s" "p50 us" "p99 us"
for r in $(seq "$repeat"); do
	for b in dir block; do
		printf '%-6s %10s %10s %10s\n' $b \
			$(python3 -c "$cycle_py" "$W/m-$b" "$n")
	done
done
for b in dir block; do fusermount3 -u "$W/m-$b"; done
for p in $CPIDS; do wait "$p"; done
CPIDS=
rm -f "$W/lun.img"

# ---- restart ---------------------------------------------------------
IMG=$W/big.img MNT=$W/m-big
truncate -s "$rsize" "$IMG"
"$ADMIN" format "block:$IMG" --label restart >/dev/null || exit 1
mount_fg "block:$IMG" "$MNT"
python3 -c "
import os, sys
m, n = sys.argv[1], int(sys.argv[2])
for d in range(100):
    os.mkdir('%s/d%d' % (m, d))
for i in range(n):
    os.close(os.open('%s/d%d/f%d' % (m, i % 100, i), os.O_CREAT | os.O_WRONLY, 0o644))
" "$MNT" "$nfiles"
sync -f "$MNT"
python3 -c "
import os, sys
for i in range(300):
    os.close(os.open('%s/burst%d' % (sys.argv[1], i), os.O_CREAT | os.O_WRONLY, 0o644))
" "$MNT"

restart() { # WHAT: mount, time until a create succeeds
	local t0 t1
	t0=$(date +%s.%N)
	mount_fg "block:$IMG" "$MNT"
	until : >"$MNT/probe-$1" 2>/dev/null; do sleep 0.001; done
	t1=$(date +%s.%N)
	echo "restart after $1: $(awk "BEGIN{printf \"%.3f\", $t1 - $t0}") s" \
		"($(ls "$MNT" | wc -l) names in the root)"
}
kill -9 "$CPID"
wait "$CPID" 2>/dev/null
fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT"
echo "$rsize sparse LUN, $nfiles files + 300 just created:"
restart "SIGKILL"
fusermount3 -u "$MNT"
wait "$CPID"
restart "a clean unmount"
fusermount3 -u "$MNT"
wait "$CPID"
