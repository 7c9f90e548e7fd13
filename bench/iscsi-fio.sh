#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fio on a preallocated raw VM image in a block volume, the same LUN
# reached two ways side by side: by path (block:FILE, O_DIRECT on the
# file, io_uring fast path) and through libiscsi (iscsi://, a private
# tgtd on loopback exporting that same file: tests/block/tgt.sh).  Not a
# pass/fail test: it prints MB/s and IOPS and the ratio iscsi / path.
#
# The LUN is a file in a work directory (-d, default /var/tmp), formatted
# once; the image (SIZE) is written once with dd.  Only one csvfs may
# serve the LUN at a time, so each pair mounts by path, runs the job,
# unmounts, mounts by iSCSI, runs it, unmounts.  Jobs, all O_DIRECT
# through libaio at iodepth 16: 4 KiB random read and write, 1 MiB
# sequential read and write.  REPEAT pairs per job; the median ratio is
# printed.  Run under flock /tmp/csvfs-heavy.lock on a shared machine.
#
#   sudo top_builddir=$PWD/build bench/iscsi-fio.sh [-d DIR] [-s SIZE]
#                                  [-t SECONDS] [-r REPEAT]
set -u
dir=/var/tmp size=512M secs=8 repeat=2
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
srcdir=$(cd "$(dirname "$0")/.." && pwd)
CSVFS=$top_builddir/csvfs/csvfs
ADMIN=$top_builddir/tools/csvfs-admin
[ "$(id -u)" = 0 ] || { echo "iscsi-fio.sh: needs root" >&2; exit 2; }
command -v fio >/dev/null || { echo "iscsi-fio.sh: fio missing" >&2; exit 2; }
_notrun() { echo "iscsi-fio.sh: $*" >&2; exit 2; }
. "$srcdir/tests/block/tgt.sh"

W=$(mktemp -d "$dir/csvfs-iscsifio.XXXXXX") || exit 1
MNT=$W/mnt PID=
mkdir -p "$MNT"
cleanup() {
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$PID" ] && wait "$PID" 2>/dev/null
	tgt_stop
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

tgt_start "$W"
bytes=$(numfmt --from=iec "$size")
truncate -s $((bytes + bytes / 4 + (256 << 20))) "$W/lun.img"
"$ADMIN" format "block:$W/lun.img" --label bench >/dev/null || exit 1
tgt_lun 1 iqn.2026-01.org.csvfs.bench:fio "$W/lun.img" || exit 1
declare -A SRC=([path]="block:$W/lun.img" [iscsi]="$(tgt_url 1)")

mnt() { # WAY
	"$CSVFS" "${SRC[$1]}" "$MNT" -f -o lockd=none >>"$W/csvfs.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && return 0; sleep 0.1; done
	echo "mount $1 failed: $(tail -2 "$W/csvfs.log")" >&2
	exit 1
}
umnt() { fusermount3 -u "$MNT"; wait "$PID"; PID=; }

mnt path
dd if=/dev/zero of="$MNT/vm.raw" bs=1M count=$((bytes >> 20)) oflag=direct \
	status=none || exit 1
umnt

# run WAY JOB RW BS: prints "MB/s IOPS"
run() {
	mnt "$1"
	fio --name="$2" --filename="$MNT/vm.raw" --rw="$3" --bs="$4" \
		--iodepth=16 --ioengine=libaio --direct=1 --size="$size" \
		--runtime="$secs" --time_based --group_reporting \
		--output-format=json 2>/dev/null |
		python3 -c '
import json, sys
j = json.load(sys.stdin)["jobs"][0]
r, w = j["read"], j["write"]
print("%.1f %.0f" % ((r["bw_bytes"] + w["bw_bytes"]) / 1e6, r["iops"] + w["iops"]))'
	umnt
}

median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

printf '%-12s %12s %12s %12s %12s %8s\n' job path-MB/s path-IOPS iscsi-MB/s iscsi-IOPS ratio
for spec in rand-read:randread:4k rand-write:randwrite:4k \
	seq-read:read:1M seq-write:write:1M; do
	IFS=: read -r name rw bs <<<"$spec"
	: >"$W/ratios"
	for _ in $(seq "$repeat"); do
		read -r pmb pio <<<"$(run path "$name" "$rw" "$bs")"
		read -r imb iio <<<"$(run iscsi "$name" "$rw" "$bs")"
		awk -v a="$imb" -v b="$pmb" 'BEGIN { printf "%.3f\n", (b > 0 ? a / b : 0) }' >>"$W/ratios"
		printf '%-12s %12s %12s %12s %12s %8s\n' "$name" "$pmb" "$pio" "$imb" "$iio" "$(tail -1 "$W/ratios")"
	done
	printf '%-12s %64s %8s\n' "$name" "median iscsi/path:" "$(median <"$W/ratios")"
done
e2fsck -fn "$W/lun.img" >/dev/null 2>&1 && echo "e2fsck -fn: clean" || echo "e2fsck -fn: NOT clean"
