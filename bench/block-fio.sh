#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fio on a preallocated raw VM image: the block backend against the dir
# backend over the same disk, side by side in one run.  Not a pass/fail
# test: it prints a table of MB/s and IOPS and the ratio block / dir.
#
# In a work directory on the disk under test (-d, default /var/tmp): an
# image file LUN.img formatted with csvfs-admin format block: and mounted
# (this node its coordinator), and a plain directory mounted with the
# dir backend; both with a standalone csvfs-lockd and default options.
# On each mount a file of SIZE is written once with dd (O_DIRECT, 1 MiB
# blocks: allocated and written everywhere, as a VM image that has been
# in use, rather than fallocated).
# Jobs, all O_DIRECT through libaio: 4 KiB random read and write at
# iodepth 16, 1 MiB sequential read and write at iodepth 16.  Each job
# runs in pairs, dir then block, REPEAT times; the ratio of each pair is
# taken and the median printed (the disk's speed drifts between runs).
#
#   sudo top_builddir=$PWD/build bench/block-fio.sh [-d DIR] [-s SIZE]
#                                  [-t SECONDS] [-r REPEAT]
set -u
dir=/var/tmp size=1G secs=10 repeat=3
while getopts d:s:t:r:h opt; do
	case $opt in
	d) dir=$OPTARG ;;
	s) size=$OPTARG ;;
	t) secs=$OPTARG ;;
	r) repeat=$OPTARG ;;
	*) sed -n '3,20p' "$0"; exit 2 ;;
	esac
done
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
ADMIN=$top_builddir/tools/csvfs-admin
[ "$(id -u)" = 0 ] || { echo "block-fio.sh: needs root" >&2; exit 2; }
command -v fio >/dev/null || { echo "block-fio.sh: fio missing" >&2; exit 2; }

W=$(mktemp -d "$dir/csvfs-blkfio.XXXXXX") || exit 1
SOCK=$W/lockd.sock LOCKD_PID=
mkdir -p "$W/dirbe" "$W/m-dir" "$W/m-block"
cleanup() {
	for m in "$W/m-dir" "$W/m-block"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }
	done
	sleep 0.5
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null && wait "$LOCKD_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" >"$W/lockd.log" 2>&1 &
LOCKD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
bytes=$(numfmt --from=iec "$size")
truncate -s $((bytes + bytes / 4 + (256 << 20))) "$W/lun.img"
"$ADMIN" format "block:$W/lun.img" --label bench >/dev/null || exit 1
"$CSVFS" "dir:$W/dirbe" "$W/m-dir" -o "lockd=$SOCK" || exit 1
"$CSVFS" "block:$W/lun.img" "$W/m-block" -o "lockd=$SOCK" || exit 1
for b in dir block; do
	dd if=/dev/zero of="$W/m-$b/vm.raw" bs=1M count=$((bytes >> 20)) \
		oflag=direct conv=notrunc status=none || exit 1
done

# run BACKEND JOB RW BS: prints "MB/s IOPS"
run() {
	sync; echo 3 >/proc/sys/vm/drop_caches
	fio --name="$2" --filename="$W/m-$1/vm.raw" --rw="$3" --bs="$4" \
		--iodepth=16 --ioengine=libaio --direct=1 --size="$size" \
		--runtime="$secs" --time_based --group_reporting \
		--output-format=json 2>/dev/null |
		python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
r, w = j["read"], j["write"]
print("%.1f %.0f" % ((r["bw_bytes"] + w["bw_bytes"]) / 1e6, r["iops"] + w["iops"]))'
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-12s %12s %12s %12s %12s %8s\n' job dir-MB/s dir-IOPS block-MB/s block-IOPS ratio
for spec in rand-read:randread:4k rand-write:randwrite:4k \
	seq-read:read:1M seq-write:write:1M; do
	IFS=: read -r name rw bs <<<"$spec"
	: >"$W/ratios"
	for _ in $(seq "$repeat"); do
		read -r dmb dio <<<"$(run dir "$name" "$rw" "$bs")"
		read -r bmb bio <<<"$(run block "$name" "$rw" "$bs")"
		awk -v a="$bmb" -v b="$dmb" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }' >>"$W/ratios"
		printf '%-12s %12s %12s %12s %12s %8s\n' "$name" "$dmb" "$dio" "$bmb" "$bio" "$(tail -1 "$W/ratios")"
	done
	printf '%-12s %64s %8s\n' "$name" "median block/dir:" "$(median <"$W/ratios")"
done
