#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/nfs.sh - csvfs over NFS (libnfs backend) against libnfs alone
# (nfs-cp) and against csvfs over dir on the same export directory.
# A private nfs-ganesha (tests/nfs/ganesha.sh) exports a temp directory on
# loopback.  fio: sequential write and read (1 MiB, direct), random 4 KiB
# read and write (direct, iodepth 1, 4 jobs); nfs-cp: one sequential
# copy to and from the export.  Prints MiB/s, IOPS and ratios.
#
#   sudo top_builddir=$PWD/build bench/nfs.sh [SIZE_MB] [RUNTIME_S]
set -u
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
SIZE=${1:-256} RT=${2:-10}
CSVFS=$top_builddir/csvfs/csvfs
_notrun() { echo "SKIP: $*"; exit 77; }
. "$(dirname "$0")/../tests/nfs/ganesha.sh"
W=$(mktemp -d /tmp/csvfs-nfsbench.XXXXXX)
EXP=$W/export M=$W/mnt
mkdir -p "$EXP" "$M"
cleanup() { grep -q " $M fuse" /proc/mounts && fusermount3 -u "$M"; ganesha_stop; rm -rf "$W"; }
trap cleanup EXIT
ganesha_start "$W" "$EXP"

fio_run() { # NAME DIR RW BS JOBS -> MiB/s and IOPS
	fio --name="$1" --directory="$2" --rw="$3" --bs="$4" --numjobs="$5" \
		--size="${SIZE}M" --runtime="$RT" --time_based --direct=1 \
		--ioengine=psync --group_reporting --output-format=json \
		--filename_format='$jobname.$jobnum' 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]
r=j["read"] if j["read"]["io_bytes"] else j["write"]
print("%.1f %.0f" % (r["bw"]/1024, r["iops"]))'
}

suite() { # LABEL DIR
	for spec in "seqwrite write 1M 1" "seqread read 1M 1" \
		    "randread randread 4k 4" "randwrite randwrite 4k 4"; do
		set -- $spec
		echo "$LABEL $1 $(fio_run "$1" "$DIR" "$2" "$3" "$4")"
	done
}

res=$W/results
LABEL=nfs DIR=$M
"$CSVFS" "$(ganesha_url "conns=${CONNS:-4}")" "$M" -o lockd=none,max_threads=16 || exit 1
suite >>"$res"; fusermount3 -u "$M"
LABEL=dir DIR=$M
"$CSVFS" "$EXP" "$M" -o lockd=none,max_threads=16 || exit 1
suite >>"$res"; fusermount3 -u "$M"
# libnfs alone: nfs-cp of SIZE MiB each way
head -c "${SIZE}M" /dev/urandom >"$W/src"
t0=$(date +%s%N); nfs-cp "$W/src" "$(ganesha_url | sed 's|?|/lib.bin?|')" >/dev/null; t1=$(date +%s%N)
nfs-cp "$(ganesha_url | sed 's|?|/lib.bin?|')" "$W/back" >/dev/null; t2=$(date +%s%N)
echo "libnfs seqwrite $(echo "$SIZE $t0 $t1" | awk '{printf "%.1f 0", $1/(($3-$2)/1e9)}')" >>"$res"
echo "libnfs seqread $(echo "$SIZE $t1 $t2" | awk '{printf "%.1f 0", $1/(($3-$2)/1e9)}')" >>"$res"
cat "$res"
echo "# ratios (csvfs-nfs / other), MiB/s for seq, IOPS for rand:"
python3 - "$res" <<'PY'
import sys
r = {}
for l in open(sys.argv[1]):
    b, t, bw, iops = l.split(); r[(b, t)] = (float(bw), float(iops))
for t in ("seqwrite", "seqread", "randread", "randwrite"):
    k = 0 if t.startswith("seq") else 1
    n = r[("nfs", t)][k]
    s = "%-9s nfs %8.1f  vs dir %.2f" % (t, n, n / r[("dir", t)][k])
    if ("libnfs", t) in r:
        s += "  vs libnfs(nfs-cp) %.2f" % (n / r[("libnfs", t)][0])
    print(s)
PY
