#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The cost of replication's change tracking on the write path: fio random
# 4 KiB direct writes (libaio, iodepth 32) into a replicated file against
# an unreplicated one on the same csvfs mount (dir backend, lockd=none),
# in pairs (plain then replicated, REPEAT times); the ratio is taken
# within each pair and the median counts (BENCHMARKS.md).  The replicated
# file's group points at a target that does not answer, so points are
# frozen and abandoned as on a link that is down, at the default 30 s
# interval; its activity log is warm (the initial copy makes every
# extent hot).
#
# The pairs alternate which file goes first.  BACKING=/dev/shm puts the
# backing directory on tmpfs: no disk noise, and the highest request rate
# csvfs reaches here, where a per-write cost shows most.
#
#   sudo top_builddir=$PWD/build-rel [BACKING=DIR] bench/replica-track.sh \
#        [SIZE] [SECONDS] [REPEAT]
set -u
SIZE=${1:-256M} SECS=${2:-8} REPEAT=${3:-3}
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)/build}
CSVFS=$top_builddir/csvfs/csvfs
W=$(mktemp -d "${BACKING:-/tmp}/csvfs-reptrack.XXXXXX")
mkdir -p "$W/be" "$W/mnt"
cleanup() {
	mountpoint -q "$W/mnt" && fusermount3 -u "$W/mnt"
	rm -rf "$W"
}
trap cleanup EXIT
"$CSVFS" "dir:$W/be" "$W/mnt" -o lockd=none,label=bench || exit 1
for f in plain repl; do
	fio --name=fill --filename="$W/mnt/$f" --rw=write --bs=1M \
		--direct=1 --size="$SIZE" >/dev/null || exit 1
done
setfattr -n user.csvfs.replica \
	-v "group=bench target=127.0.0.1:9 name=repl" "$W/mnt/repl" || exit 1
iops() { # FILE: write IOPS of one run
	fio --name=r --filename="$1" --rw=randwrite --bs=4k --direct=1 \
		--ioengine=libaio --iodepth=32 --runtime="$SECS" --time_based \
		--size="$SIZE" --output-format=terse --terse-version=3 |
		awk -F';' '{ print $49 }'
}
iops "$W/mnt/repl" >/dev/null # warm: loads the tracker, heats the log
ratios=()
for i in $(seq "$REPEAT"); do
	if [ $((i % 2)) = 1 ]; then
		a=$(iops "$W/mnt/plain")
		b=$(iops "$W/mnt/repl")
	else
		b=$(iops "$W/mnt/repl")
		a=$(iops "$W/mnt/plain")
	fi
	r=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", b / a }')
	ratios+=("$r")
	echo "pair $i: plain $a IOPS, replicated $b IOPS, ratio $r"
done
echo "median ratio: $(printf '%s\n' "${ratios[@]}" | sort -n |
	awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')"
getfattr -n user.csvfs.replica --only-values "$W/mnt/repl"; echo
