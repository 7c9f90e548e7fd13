#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# bench/nfs-model.sh - the two ways of sharing libnfs between threads
# (bench/nfs_model.c): a pool of contexts with the synchronous calls, as
# the nfs backend does, against service threads driving the asynchronous
# calls.  A private nfs-ganesha (tests/nfs/ganesha.sh) exports a temp
# directory on loopback over NFSv3; a SIZE_MB file of random data is
# created there, and every run of the matrix reads or overwrites it:
#
#   randread, randwrite   4 KiB, THREADS in $RAND_THREADS (4 8 16)
#   seqread, seqwrite     1 MiB, THREADS in $SEQ_THREADS (1 4)
#   pool with CONNS in $POOL_CONNS (1 4 T, T: as many as threads),
#   service with CONNS in $SVC_CONNS (1 2); the models take turns within
#   each workload and thread count, so slow spells of a shared machine
#   hit all of them.
#
# Each run's key=value line is appended to $NFS_MODEL_RAW (default: a
# file in the work dir) and a table of medians over every line in it is
# printed at the end, so repetitions may be split over several calls.
#
#   top_builddir=$PWD/build bench/nfs-model.sh [SIZE_MB] [SECONDS] [REPS]
#   bench/nfs-model.sh --table RAWFILE      only print the table
set -u
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
NFS_MODEL=$top_builddir/bench/nfs_model
RAND_THREADS=${RAND_THREADS:-4 8 16} SEQ_THREADS=${SEQ_THREADS:-1 4}
POOL_CONNS=${POOL_CONNS:-1 4 T} SVC_CONNS=${SVC_CONNS:-1 2}
WORKLOADS=${WORKLOADS:-randread randwrite seqread seqwrite}

# Medians per (workload, threads, model, conns) of every key=value line.
table() { # RAWFILE
	python3 - "$1" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kv = dict(f.split("=", 1) for f in line.split())
    key = (kv["workload"], int(kv["threads"]), kv["model"], int(kv["conns"]))
    runs.setdefault(key, []).append(kv)
order = {"randread": 0, "randwrite": 1, "seqread": 2, "seqwrite": 3}
print("| workload  | T  | model     | C | ops/s  | MiB/s  | p50 us | p99 us "
      "| CPU us/op | csw/op | n |")
print("|-----------|----|-----------|---|--------|--------|--------|--------"
      "|-----------|--------|---|")
for key in sorted(runs, key=lambda k: (order.get(k[0], 9), k[1], k[2], k[3])):
    med = lambda f: statistics.median(float(r[f]) for r in runs[key])
    print("| %-9s | %2d | %-9s | %d | %6.0f | %6.1f | %6.0f | %6.0f "
          "| %9.1f | %6.2f | %d |" % (key + (med("ops_s"), med("mib_s"),
          med("p50_us"), med("p99_us"), med("cpu_us_op"), med("csw_op"),
          len(runs[key]))))
PY
}

if [ "${1:-}" = --table ]; then
	table "$2"
	exit
fi

SIZE=${1:-256} SECS=${2:-5} REPS=${3:-1}
_notrun() { echo "SKIP: $*"; exit 77; }
[ -x "$NFS_MODEL" ] || { echo "nfs-model.sh: $NFS_MODEL missing (make)" >&2; exit 99; }
. "$(dirname "$0")/../tests/nfs/ganesha.sh"
W=$(mktemp -d /tmp/csvfs-nfsmodel.XXXXXX)
EXP=$W/export RAW=${NFS_MODEL_RAW:-$W/raw}
cleanup() { ganesha_stop; rm -rf "$W"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$EXP"
ganesha_start "$W" "$EXP"
URL=$(ganesha_url)
head -c "${SIZE}M" /dev/urandom >"$EXP/nfs_model.dat" || exit 99

one() { # MODEL THREADS CONNS WORKLOAD
	local out
	out=$("$NFS_MODEL" -u "$URL" -m "$1" -t "$2" -c "$3" -w "$4" \
		-s "$SIZE" -d "$SECS") || {
		echo "nfs-model.sh: nfs_model -m $1 -t $2 -c $3 -w $4 failed" >&2
		exit 1
	}
	echo "$out" | tee -a "$RAW"
}

for rep in $(seq "$REPS"); do
	echo "# repetition $rep of $REPS"
	for w in $WORKLOADS; do
		case $w in rand*) threads=$RAND_THREADS ;; *) threads=$SEQ_THREADS ;; esac
		for t in $threads; do
			done_c=" "
			for c in $POOL_CONNS; do
				[ "$c" = T ] && c=$t
				case $done_c in *" $c "*) continue ;; esac
				done_c="$done_c$c "
				one pool "$t" "$c" "$w"
			done
			for c in $SVC_CONNS; do one service "$t" "$c" "$w"; done
		done
	done
done
table "$RAW"
