#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fio through csvfs against the backing directory itself, in one run.
# Not a pass/fail test: it prints a table of MB/s and IOPS and the ratio
# csvfs / backing, which the targets in BENCHMARKS.md are checked against.
#
# A standalone csvfs-lockd and a csvfs mount (dir backend, default
# options: cache=direct) over a local directory; four fio jobs with
# direct I/O (O_DIRECT, libaio): sequential 1 MiB read and write, random
# 4 KiB read and write, each at iodepth 16, on
#   backing-direct    a file in the backing directory, O_DIRECT
#   backing-buffered  the same file without O_DIRECT, for reference (the
#                     host page cache), once per job.  csvfs opens the
#                     backing file with O_DIRECT when the file on the
#                     mount is opened with it, so backing-direct is the
#                     fair baseline
#   csvfs             a file on the csvfs mount, O_DIRECT
# The speed of the backing disk drifts between runs (a virtio disk swings
# 2-4x), so each job runs in pairs, backing-direct then csvfs, REPEAT
# times in a row; the ratio is taken within each pair, where both sides
# saw the disk in about the same state, and the median of the pairs'
# ratios is what counts.  Each run starts with a cold page cache
# (drop_caches).  While the csvfs runs go, csvfs's CPU time and thread
# count are sampled, and with -p a system-wide profile (perf record -a)
# of the first csvfs run of each job is printed.
#
#   sudo top_builddir=$PWD/build-rel bench/fio.sh [-s SIZE] [-t SECONDS]
#                                     [-r REPEAT] [-j JOBS] [-o OPTS] [-p]
#
#   -s SIZE     file size (default 1G; fio syntax, at most 16G)
#   -t SECONDS  runtime of each run (default 10, 1..120)
#   -r REPEAT   pairs per job (default 3, 1..20)
#   -j JOBS     jobs to run, comma separated (default the four of the
#               targets: seq-read,seq-write,rand-read,rand-write); also
#               rand-write-sync: random 4 KiB writes by 16 threads of
#               blocking pwrite (psync), as QEMU's aio=threads does
#   -o OPTS     more csvfs mount options, e.g. max_threads=16 or aio=off
#   -p          perf profile (system-wide) during the first csvfs run
#               of each job
#   -x MODE     add a third side to every round: the same job through
#               nullfuse (bench/nullfuse.c), a FUSE server with no logic
#               (direct opens as csvfs makes them): what FUSE itself costs
#               on this machine.  MODE: mt (libfuse workers, blocking
#               backing I/O), ring (one thread, one io_uring over
#               /dev/fuse) or uring (FUSE over io_uring; fuse.enable_uring
#               is switched on for the run and restored after); or
#               pthp: libfuse's passthrough_hp example (not built here:
#               PASSTHROUGH_HP=path/to/passthrough_hp), with --nocache
#               so that every request reaches it, as with csvfs
#   -B          buffered: fio without O_DIRECT on csvfs and on the -x
#               side (passthrough_hp cannot open its backing files with
#               O_DIRECT); backing-direct stays the baseline
#
# Besides IOPS and latency, every run reports the backing disk's own
# view over it (/proc/diskstats: the average number of requests in
# flight at the disk and their average latency there), and the tail
# gives the CPU per request of fio (the issuer, with the kernel work
# done in its context) and of the server, and the CPUs both would need
# to carry 90 % of the disk's IOPS: what tells a CPU limit from a
# concurrency or latency one.  With -o uring=on (or -x uring) the fuse
# module parameter enable_uring is switched on for the run, before the
# mounts, and restored after; the run stops if csvfs's requests do not
# then come over io_uring.
#
# Jobs: seq-read, seq-write (1 MiB), rand-read, rand-write (4 KiB), all
# libaio at iodepth 16; rand-read-32, rand-write-32 (iodepth 32);
# rand-write-sync (16 threads of psync); lat-read, lat-write (4 KiB at
# iodepth 1: the median completion latency is what counts there);
# sync-write-1m (one O_SYNC 1 MiB write at a time).
#
# Build without sanitizers (../configure CFLAGS='-O2 -g'): ASan distorts
# the figures.  Everything runs in a private work dir under TMPDIR
# (default /var/tmp, which should be a disk file system: tmpfs has no
# O_DIRECT); mounts and daemons are removed on exit, pass or fail.
set -u

size=1G
runtime=10
reps=3
profile=0
jobs="seq-read seq-write rand-read rand-write"
mntopts=""
refside=0 refmode=mt
buffered=0
while getopts s:t:r:j:o:px:Bh opt; do
	case $opt in
	s) size=$OPTARG ;;
	t) runtime=$OPTARG ;;
	r) reps=$OPTARG ;;
	j) jobs=${OPTARG//,/ } ;;
	o) mntopts=,$OPTARG ;;
	p) profile=1 ;;
	x) refside=1 refmode=$OPTARG ;;
	B) buffered=1 ;;
	*) sed -n '3,66p' "$0"; exit 2 ;;
	esac
done
for j in $jobs; do
	case $j in
	seq-read|seq-write|rand-read|rand-write|rand-write-sync) ;;
	rand-read-32|rand-write-32|lat-read|lat-write|sync-write-1m) ;;
	*) echo "fio.sh: -j: unknown job $j" >&2; exit 2 ;;
	esac
done
case $refmode in mt|ring|uring) REFNAME=nullfuse ;;
pthp) REFNAME=passthrough_hp ;;
*) echo "fio.sh: -x: mt, ring, uring or pthp" >&2; exit 2 ;;
esac
case $mntopts in *[!A-Za-z0-9_=,.]*)
	echo "fio.sh: -o: letters, digits, _ = , . only" >&2; exit 2 ;;
esac
case $runtime in ''|*[!0-9]*) echo "fio.sh: -t needs a number" >&2; exit 2 ;; esac
[ "$runtime" -ge 1 ] && [ "$runtime" -le 120 ] ||
	{ echo "fio.sh: -t must be within 1..120" >&2; exit 2; }
case $reps in ''|*[!0-9]*) echo "fio.sh: -r needs a number" >&2; exit 2 ;; esac
[ "$reps" -ge 1 ] && [ "$reps" -le 20 ] ||
	{ echo "fio.sh: -r must be within 1..20" >&2; exit 2; }
case $size in
[0-9]*[KkMmGg]|[0-9]*) ;;
*) echo "fio.sh: -s: a size such as 512M or 1G" >&2; exit 2 ;;
esac
size_b=$(numfmt --from=iec "${size^^}" 2>/dev/null) ||
	{ echo "fio.sh: -s: bad size $size" >&2; exit 2; }
[ "$size_b" -ge $(( 16 * 1024 * 1024 )) ] &&
	[ "$size_b" -le $(( 16 * 1024 * 1024 * 1024 )) ] ||
	{ echo "fio.sh: -s must be within 16M..16G" >&2; exit 2; }

src=$(cd "$(dirname "$0")/.." && pwd)
: "${top_builddir:=$src/build-rel}"
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
NULLFUSE=$top_builddir/bench/nullfuse

skip() { echo "fio.sh: not run: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (FUSE mount)"
[ -c /dev/fuse ] || skip "no /dev/fuse"
for c in fio jq mountpoint numfmt; do
	command -v "$c" >/dev/null || skip "$c not installed"
done
[ -x "$CSVFS" ] && [ -x "$LOCKD" ] || skip "csvfs not built in $top_builddir"
if [ "$refside" = 1 ] && [ "$refmode" = pthp ]; then
	[ -x "${PASSTHROUGH_HP:-}" ] ||
		skip "-x pthp: set PASSTHROUGH_HP to a built passthrough_hp"
elif [ "$refside" = 1 ] && [ ! -x "$NULLFUSE" ]; then
	skip "-x: $NULLFUSE not built (make -C bench nullfuse)"
fi
if [ "$profile" = 1 ] && ! command -v perf >/dev/null; then
	echo "fio.sh: perf not installed: no profile" >&2
	profile=0
fi

W=$(mktemp -d "${TMPDIR:-/var/tmp}/csvfs-fio.XXXXXX") || exit 1
BE=$W/backing MNT=$W/mnt REF=$W/ref SOCK=$W/lockd.sock
mkdir -p "$BE" "$MNT" "$REF"
LOCKD_PID="" CSVFS_PID="" FIO_PID="" PERF_PID="" REF_PID="" URING_WAS=""
URING_PARAM=/sys/module/fuse/parameters/enable_uring

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in $FIO_PID $PERF_PID; do
		kill -KILL "$p" 2>/dev/null && wait "$p" 2>/dev/null
	done
	for m in "$MNT" "$REF"; do
		mountpoint -q "$m" || continue
		timeout 20 umount "$m" 2>/dev/null || umount -l "$m"
	done
	if [ -n "$REF_PID" ]; then
		kill -KILL "$REF_PID" 2>/dev/null
		wait "$REF_PID" 2>/dev/null
	fi
	[ -n "$URING_WAS" ] && echo "$URING_WAS" >"$URING_PARAM"
	if [ -n "$CSVFS_PID" ]; then
		timeout 10 tail --pid="$CSVFS_PID" -f /dev/null 2>/dev/null
		kill -KILL "$CSVFS_PID" 2>/dev/null
		wait "$CSVFS_PID" 2>/dev/null
	fi
	if [ -n "$LOCKD_PID" ]; then
		kill -TERM "$LOCKD_PID" 2>/dev/null
		timeout 10 tail --pid="$LOCKD_PID" -f /dev/null 2>/dev/null
		kill -KILL "$LOCKD_PID" 2>/dev/null
		wait "$LOCKD_PID" 2>/dev/null
	fi
	rm -rf "$W"
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "fio.sh: interrupted" >&2; exit 130' INT
trap 'echo "fio.sh: terminated" >&2; exit 143' TERM

die() { echo "fio.sh: $*" >&2; exit 1; }

# ---- lockd and mount ---------------------------------------------------
"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" -c /dev/null \
	>"$W/lockd.log" 2>&1 </dev/null &
LOCKD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "csvfs-lockd did not start: $(tail -n 2 "$W/lockd.log")"
# FUSE over io_uring is offered at INIT: the module parameter goes on
# before either mount when nullfuse is to use it or csvfs is told uring=on.
want_uring=0
[ "$refside" = 1 ] && [ "$refmode" = uring ] && want_uring=1
case ,$mntopts, in *,uring=on,*) want_uring=1 ;; esac
if [ "$want_uring" = 1 ]; then
	[ -w "$URING_PARAM" ] || die "FUSE over io_uring: this kernel has no $URING_PARAM"
	URING_WAS=$(cat "$URING_PARAM")
	echo 1 >"$URING_PARAM"
fi
"$CSVFS" "dir:$BE" "$MNT" -f -o "lockd=$SOCK,label=fio$mntopts" \
	>"$W/csvfs.log" 2>&1 </dev/null &
CSVFS_PID=$!
for _ in $(seq 100); do mountpoint -q "$MNT" && break; sleep 0.05; done
mountpoint -q "$MNT" || die "csvfs did not mount: $(tail -n 2 "$W/csvfs.log")"
if [ "$refside" = 1 ]; then
	if [ "$refmode" = pthp ]; then
		"$PASSTHROUGH_HP" --foreground --nocache "$BE" "$REF" \
			>"$W/$REFNAME.log" 2>&1 </dev/null &
	else
		"$NULLFUSE" -m "$refmode" "$BE" "$REF" \
			>"$W/$REFNAME.log" 2>&1 </dev/null &
	fi
	REF_PID=$!
	for _ in $(seq 100); do mountpoint -q "$REF" && break; sleep 0.05; done
	mountpoint -q "$REF" ||
		die "$REFNAME did not mount: $(tail -n 2 "$W/$REFNAME.log")"
fi

# Two files of SIZE in the backing directory, laid out there (not
# through the mount): csvfs reads the same kind of extents as the
# baseline.  The csvfs file is reached through the mount.
for f in base.dat csvfs.dat ref.dat; do
	fio --name=layout --filename="$BE/$f" --size="$size" --bs=1M \
		--rw=write --direct=1 --ioengine=libaio --iodepth=8 \
		--end_fsync=1 --output=/dev/null >/dev/null 2>&1 ||
		die "layout of $BE/$f failed"
done

dd if="$MNT/csvfs.dat" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null
csvfs_transport=$(grep -o "FUSE requests: over [a-z_/]*" "$W/csvfs.log" | tail -n 1)
case ,$mntopts, in *,uring=on,*)
	case $csvfs_transport in *io_uring*) ;;
	*) die "uring=on: csvfs's requests do not come over io_uring" ;;
	esac ;;
esac
if [ "$refmode" = uring ] && [ "$refside" = 1 ]; then
	dd if="$REF/ref.dat" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null
	grep -q "over io_uring" "$W/nullfuse.log" ||
		die "-x uring: nullfuse's requests do not come over io_uring"
fi

# ---- jobs ----------------------------------------------------------------
JOBS=$jobs
job_args() {
	local aio="--ioengine=libaio --iodepth=16"
	case $1 in
	seq-read) echo "--rw=read --bs=1M $aio" ;;
	seq-write) echo "--rw=write --bs=1M $aio" ;;
	rand-read) echo "--rw=randread --bs=4k $aio" ;;
	rand-write) echo "--rw=randwrite --bs=4k $aio" ;;
	rand-read-32) echo "--rw=randread --bs=4k --ioengine=libaio --iodepth=32" ;;
	rand-write-32) echo "--rw=randwrite --bs=4k --ioengine=libaio --iodepth=32" ;;
	rand-write-sync) echo "--rw=randwrite --bs=4k --ioengine=psync --numjobs=16" ;;
	lat-read) echo "--rw=randread --bs=4k --ioengine=libaio --iodepth=1" ;;
	lat-write) echo "--rw=randwrite --bs=4k --ioengine=libaio --iodepth=1" ;;
	sync-write-1m) echo "--rw=write --bs=1M --ioengine=psync --sync=1" ;;
	esac
}
job_dir() { # JOB: fio's data direction in its JSON
	case $1 in *read*) echo read ;; *) echo write ;; esac
}

# The backing disk's counters (/proc/diskstats): "ios ticks_ms
# queue_ms" - completed reads + writes, the time they took, and the
# time-weighted number in flight.  Sampled around every run: the disk's
# average queue depth and latency show whether a server keeps fio's
# requests in flight at the disk, or where the time goes.
disk_counters() {
	local d
	d=$(basename "$(df --output=source "$BE" 2>/dev/null | tail -n 1)")
	awk -v d="$d" '$3 == d { print $4 + $8, $7 + $11, $14; f = 1 }
		END { if (!f) print 0, 0, 0 }' /proc/diskstats
}

# cpu_ticks PID: utime + stime of PID (clock ticks).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# run TARGET JOB REP: one fio run; "MB/s IOPS clat_p99_us" to RES.
run() {
	local target=$1 job=$2 rep=$3 file direct=1 out t0 t1 c0 c1 thr=0 d
	case $target in
	backing-direct) file=$BE/base.dat ;;
	backing-buffered) file=$BE/base.dat direct=0 ;;
	csvfs) file=$MNT/csvfs.dat ;;
	nullfuse|passthrough_hp) file=$REF/ref.dat ;;
	esac
	case $target in csvfs|nullfuse|passthrough_hp)
		[ "$buffered" = 1 ] && direct=0 ;;
	esac
	out=$W/$target-$job-$rep.json
	# Every job starts with a cold page cache (the buffered targets
	# would otherwise read what the previous job left in memory).
	sync
	echo 3 >/proc/sys/vm/drop_caches
	# shellcheck disable=SC2046
	timeout $(( runtime + 120 )) fio --name="$job" --filename="$file" \
		--size="$size" $(job_args "$job") --direct="$direct" \
		--time_based \
		--runtime="$runtime" --ramp_time=1 --group_reporting \
		--output-format=json --output="$out" >/dev/null 2>&1 &
	FIO_PID=$!
	sleep 1 # fio's ramp
	dk0=$(disk_counters) dt0=$(date +%s%N)
	spid=""
	case $target in
	csvfs) spid=$CSVFS_PID ;;
	nullfuse|passthrough_hp) spid=$REF_PID ;;
	esac
	if [ -n "$spid" ]; then
		c0=$(cpu_ticks "$spid")
		t0=$(date +%s%N)
		if [ "$profile" = 1 ] && [ "$rep" = 1 ]; then
			# system-wide: the FUSE pool starts and ends threads
			# all the time, which perf -p would not follow
			sleep 2
			timeout $(( runtime + 10 )) perf record -q -a \
				-o "$W/perf-$job.data" \
				-- sleep $(( runtime > 4 ? runtime - 3 : 1 )) \
				>/dev/null 2>&1 &
			PERF_PID=$!
		fi
		# the pool's largest size during the job
		while kill -0 "$FIO_PID" 2>/dev/null; do
			d=$(ls "/proc/$spid/task" 2>/dev/null | wc -l)
			[ "$d" -gt "$thr" ] && thr=$d
			sleep 0.5
		done
		c1=$(cpu_ticks "$spid")
		t1=$(date +%s%N)
		if [ -n "$PERF_PID" ]; then
			wait "$PERF_PID" 2>/dev/null
			PERF_PID=""
		fi
		awk -v c="$(( c1 - c0 ))" -v hz="$(getconf CLK_TCK)" \
			-v ns="$(( t1 - t0 ))" -v thr="$thr" -v j="$job" -v r="$rep" \
			'BEGIN { printf "%s %s %.0f %d\n", j, r, 100 * c / hz / (ns / 1e9), thr }' \
			>>"$W/$target-cpu"
	fi
	wait "$FIO_PID" || die "fio $target $job failed: $(head -c 300 "$out")"
	FIO_PID=""
	DSK=$(awk -v a="$dk0" -v b="$(disk_counters)" \
		-v ms="$(( ($(date +%s%N) - dt0) / 1000000 ))" 'BEGIN {
		split(a, x, " "); split(b, y, " "); n = y[1] - x[1]
		printf "%.1f %.0f", (ms > 0 ? (y[3] - x[3]) / ms : 0),
			(n > 0 ? 1000 * (y[2] - x[2]) / n : 0) }')
	d=$(job_dir "$job")
	RES=$(jq -r --arg d "$d" '.jobs[0] as $j | $j[$d] |
		"\(.bw_bytes / 1e6) \(.iops) \((.clat_ns.percentile["50.000000"] // 0) / 1000) \((.clat_ns.percentile["99.000000"] // 0) / 1000) \(if .iops > 0 then ($j.usr_cpu + $j.sys_cpu) * 1e4 / .iops else 0 end)"' \
		"$out") || die "fio $target $job: no JSON result"
	RES="$RES $DSK"
}

# median of the numbers on stdin (mean of the middle two if even)
median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print 0; exit }
		m = int((NR + 1) / 2)
		print (NR % 2 ? v[m] : (v[m] + v[m + 1]) / 2) }'
}

SIDES="backing-direct csvfs"
[ "$refside" = 1 ] && SIDES="$SIDES $REFNAME"
echo "fio: $size file, ${runtime}s per run (+1 s ramp), libaio, iodepth 16"
echo "     (-32: iodepth 32; lat-: iodepth 1; rand-write-sync: 16 threads of psync);"
echo "     $reps rounds ($SIDES) per job, ratios within each round;"
echo "csvfs: ${csvfs_transport:-FUSE requests: transport not logged}"
[ "$refside" = 1 ] && [ "$REFNAME" = nullfuse ] && echo "     nullfuse -m $refmode"
[ "$refside" = 1 ] && [ "$REFNAME" = passthrough_hp ] && echo "     passthrough_hp --nocache"
[ "$buffered" = 1 ] && echo "     buffered (no O_DIRECT) through the FUSE mounts"
[ -n "$mntopts" ] && echo "     csvfs mounted with -o ${mntopts#,}"
echo "     $(nproc) CPUs, $(uname -r), backing: $(df -T "$BE" | awk 'NR == 2 { print $2 " on " $1 }')"
declare -A MBS IOPS P50 P99 FCPU DQD DLAT
for job in $JOBS; do
	runs="backing-buffered,0"
	for rep in $(seq "$reps"); do
		for side in $SIDES; do
			runs="$runs $side,$rep"
		done
	done
	for tr in $runs; do
		target=${tr%,*} rep=${tr#*,}
		run "$target" "$job" "$rep"
		read -r MBS[$target,$job,$rep] IOPS[$target,$job,$rep] \
			P50[$target,$job,$rep] P99[$target,$job,$rep] \
			FCPU[$target,$job,$rep] DQD[$target,$job,$rep] \
			DLAT[$target,$job,$rep] <<<"$RES"
		[ -n "${IOPS[$target,$job,$rep]}" ] ||
			die "no result for $target $job $rep"
	done
done

# ---- tables --------------------------------------------------------------
# ratio SIDE JOB REP: SIDE / backing-direct of round REP, in percent; for
# the queue-depth-1 jobs the median latency SIDE minus backing-direct, us
ratio() {
	case $2 in
	lat-*) awk -v c="${P50[$1,$2,$3]}" -v d="${P50[backing-direct,$2,$3]}" \
		'BEGIN { printf "%+.0f\n", c - d }' ;;
	*) awk -v c="${IOPS[$1,$2,$3]}" -v d="${IOPS[backing-direct,$2,$3]}" \
		'BEGIN { printf "%.0f\n", (d > 0 ? 100 * c / d : 0) }' ;;
	esac
}
unit() { case $1 in lat-*) echo us ;; *) echo % ;; esac; }
echo
printf '%-15s %-17s %4s %10s %10s %8s %8s %7s %6s %7s\n' job target round MB/s IOPS \
	"p50 us" "p99 us" vs-disk disk-qd disk-us
for job in $JOBS; do
	printf '%-15s %-17s %4s %10.1f %10.0f %8.0f %8.0f\n' "$job" \
		backing-buffered - "${MBS[backing-buffered,$job,0]}" \
		"${IOPS[backing-buffered,$job,0]}" \
		"${P50[backing-buffered,$job,0]}" \
		"${P99[backing-buffered,$job,0]}"
	for rep in $(seq "$reps"); do
		for target in $SIDES; do
			r=""
			[ "$target" != backing-direct ] &&
				r="$(ratio "$target" "$job" "$rep")$(unit "$job")"
			printf '%-15s %-17s %4s %10.1f %10.0f %8.0f %8.0f %7s %6s %7s\n' \
				"$job" "$target" "$rep" \
				"${MBS[$target,$job,$rep]}" \
				"${IOPS[$target,$job,$rep]}" \
				"${P50[$target,$job,$rep]}" \
				"${P99[$target,$job,$rep]}" "$r" \
				"${DQD[$target,$job,$rep]}" \
				"${DLAT[$target,$job,$rep]}"
		done
	done
done
echo
echo "against backing-direct per round (IOPS ratio; lat- jobs: p50 latency"
echo "added, us), the median of the rounds, and the target:"
printf '%-15s %-14s %-30s %7s %7s %5s\n' job side rounds median target met
for job in $JOBS; do
	for side in $SIDES; do
		[ "$side" = backing-direct ] && continue
		list=""
		for rep in $(seq "$reps"); do
			list="$list $(ratio "$side" "$job" "$rep")"
		done
		med=$(printf '%s\n' $list | median)
		u=$(unit "$job")
		case $job in
		lat-*) want="<=+40" met=$(awk -v m="$med" 'BEGIN { print (m <= 40 ? "yes" : "no") }') ;;
		*) want=">=90" met=$(awk -v m="$med" 'BEGIN { print (m >= 90 ? "yes" : "no") }') ;;
		esac
		[ "$side" = "${REFNAME:-}" ] && met=-
		printf '%-15s %-14s %-30s %6.0f%s %6s%s %5s\n' "$job" "$side" \
			"$(for v in $list; do printf '%s%s ' "$v" "$u"; done)" \
			"$med" "$u" "$want" "$u" "$met"
	done
done
echo
# CPU per request does not depend on the disk's speed of the moment.
# fio's own CPU (usr + sys: the system calls, and the kernel's FUSE and
# block work done in fio's context) and the server's (sampled from
# /proc) per request; "at 90 %": the CPUs the two would need together
# to carry 90 % of that round's backing IOPS - past nproc no FUSE server
# design can reach the target on this machine.  Interrupt, softirq and
# io-wq work is in neither figure (the backing side has its share too).
echo "CPU per request, us (fio = the I/O issuer incl. its kernel work;"
echo "server = csvfs or the -x side), and the CPUs both need at 90 % of the disk:"
printf '  %-15s %-15s %5s %8s %8s %8s %8s %s\n' job side round fio server \
	total "at 90%" "(cpu%, threads)"
for side in $SIDES; do
	[ "$side" = backing-direct ] || [ -f "$W/$side-cpu" ] || continue
	if [ "$side" = backing-direct ]; then
		for job in $JOBS; do
			for rep in $(seq "$reps"); do
				echo "$job $rep 0 0"
			done
		done
	else
		cat "$W/$side-cpu"
	fi | while read -r job rep cpu thr; do
		awk -v j="$job" -v r="$rep" -v s="$side" -v c="$cpu" -v t="$thr" \
			-v i="${IOPS[$side,$job,$rep]}" \
			-v f="${FCPU[$side,$job,$rep]}" \
			-v d="${IOPS[backing-direct,$job,$rep]}" \
			'BEGIN { sv = (i > 0 ? c * 1e4 / i : 0); tot = f + sv
			printf "  %-15s %-15s %5s %8.1f %8.1f %8.1f %8.2f", j, s, r, f, sv, tot, 0.9 * d * tot / 1e6
			if (s != "backing-direct") printf " (%d%%, %d)", c, t
			printf "\n" }'
	done
done
echo "  FUSE: max_write $(( 1024 )) KiB requested by csvfs;" \
	"kernel max_pages limit $(cat /proc/sys/fs/fuse/max_pages_limit 2>/dev/null || echo '?')"

if [ "$profile" = 1 ]; then
	for job in $JOBS; do
		[ -f "$W/perf-$job.data" ] || continue
		echo
		echo "perf, csvfs $job: CPU samples by command (both CPUs):"
		perf report -q -i "$W/perf-$job.data" --sort comm 2>/dev/null |
			grep -v '^$' | head -n 6
		echo "  top symbols in csvfs:"
		perf report -q -i "$W/perf-$job.data" --comms csvfs \
			--sort dso,symbol 2>/dev/null | grep -v '^$' |
			head -n 10 | cut -c1-90
	done
fi
exit 0
