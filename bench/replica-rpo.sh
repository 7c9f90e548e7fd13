#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Replication under load, against csvfs-replicad on loopback (TLS 1.3,
# certificates made as in tests/replica), one csvfs mount (dir backend,
# lockd=none):
#   1. shipping throughput: a SIZE file (default 1 GiB, written with fio,
#      incompressible) is replicated; the initial copy is timed from the
#      freeze (frozen granules first seen) to the point shipped, and the
#      bytes the status counts give MB/s.  The loopback's own TCP rate
#      (python3, one stream of 1 MiB writes) is measured next to it.
#   2. the barrier and the achieved RPO: fio writes 4 KiB blocks at
#      random, O_DIRECT, one at a time (psync), capped at RATE IOPS, for
#      SECONDS into the replicated file with a 5 s interval; the status is
#      sampled every 0.5 s: the newest point's age (the RPO achieved) and,
#      at each new point, the barrier's hold (hold_us: writes held while
#      the point is frozen).  The same fio run on an unreplicated file of
#      the same mount follows (the pair): its write latency percentiles
#      against the replicated run's show what the barrier costs a writer.
#
#   sudo top_builddir=$PWD/build [BACKING=DIR] bench/replica-rpo.sh \
#        [SIZE] [SECONDS] [RATE]
set -u
SIZE=${1:-1G} SECS=${2:-60} RATE=${3:-1000}
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)/build}
export top_builddir TMPDIR=${BACKING:-/tmp}
. "$(dirname "$0")/../tests/tap.sh"
. "$(dirname "$0")/../tests/replica/common.sh"
CSVFS=$top_builddir/csvfs/csvfs
ADMIN=$top_builddir/tools/csvfs-admin
rep_setup replica-rpo
MNT=$WORK/mnt
mkdir -p "$WORK/be" "$MNT"
bench_cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	rep_cleanup
}
trap bench_cleanup EXIT
rd_start || exit 1
"$CSVFS" "dir:$WORK/be" "$MNT" -o lockd=none,label=bench || exit 1
mkdir "$MNT/vm" "$MNT/plain"
for f in vm/disk0 plain/disk0; do
	fio --name=fill --filename="$MNT/$f" --rw=write --bs=1M --direct=1 \
		--size="$SIZE" --refill_buffers >/dev/null || exit 1
done
field() { # field KEY
	getfattr -n user.csvfs.replica --only-values "$MNT/vm/disk0" \
		2>/dev/null | tr ' ' '\n' | sed -n "s/^$1=//p"
}
now() { date +%s.%N; }

# 1. the initial copy
t0=$(now)
"$ADMIN" replica enable "$MNT/vm" --target "127.0.0.1:$PORT" \
	--ca "$WORK/certs/ca.pem" --cert "$WORK/certs/primary-a.pem" \
	--key "$WORK/certs/primary-a.key" --interval 5s || exit 1
tf=
for _ in $(seq 6000); do
	[ -z "$tf" ] && [ "$(field frozen)" -gt 0 ] 2>/dev/null && tf=$(now)
	[ "$(field last_point)" -ge 1 ] 2>/dev/null && break
	sleep 0.1
done
te=$(now)
bytes=$(field bytes)
[ "$(field last_point)" -ge 1 ] || { echo "no initial copy" >&2; exit 1; }
awk -v b="$bytes" -v t0="$t0" -v tf="${tf:-$t0}" -v te="$te" 'BEGIN {
	printf "initial copy: %d bytes, %.1f s from the freeze (%.1f s from enable): %.1f MB/s\n",
		b, te - tf, te - t0, b / (te - tf) / 1e6 }'
python3 - <<'EOF'
import socket, threading, time
N = 1 << 30
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
def sink():
    c, _ = s.accept(); n = 0
    while n < N:
        d = c.recv(1 << 20)
        if not d: break
        n += len(d)
    c.close()
th = threading.Thread(target=sink); th.start()
c = socket.create_connection(s.getsockname()); buf = b"x" * (1 << 20)
t = time.monotonic()
for _ in range(N >> 20): c.sendall(buf)
c.close(); th.join()
print("loopback TCP, one stream: %.0f MB/s" % (N / (time.monotonic() - t) / 1e6))
EOF

# 2. the steady load: replicated, then the same on the plain file
sleep 6 # let the point after the fill's tail go by
run_fio() { # FILE OUT
	fio --name=steady --filename="$1" --rw=randwrite --bs=4k \
		--direct=1 --ioengine=psync --rate_iops="$RATE" \
		--runtime="$SECS" --time_based --size="$SIZE" \
		--output-format=json >"$2"
}
run_fio "$MNT/vm/disk0" "$WORK/fio-repl.json" &
fp=$!
: >"$WORK/ages"
: >"$WORK/holds"
lp=$(field last_point)
while kill -0 "$fp" 2>/dev/null; do
	st=$(getfattr -n user.csvfs.replica --only-values "$MNT/vm/disk0" 2>/dev/null)
	get() { echo "$st" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	echo "$(get age)" >>"$WORK/ages"
	p=$(get last_point)
	if [ "$p" != "$lp" ]; then
		echo "$(get hold_us)" >>"$WORK/holds"
		lp=$p
	fi
	sleep 0.5
done
wait "$fp" || exit 1
run_fio "$MNT/plain/disk0" "$WORK/fio-plain.json" || exit 1
pct() { # FILE: p50 p99 max of the numbers in FILE
	sort -n "$1" | awk '{ v[NR] = $1 } END {
		i50 = int(NR * 0.5 + 0.5); i99 = int(NR * 0.99 + 0.5)
		if (i50 < 1) i50 = 1; if (i99 < 1) i99 = 1
		printf "n %d p50 %s p99 %s max %s", NR, v[i50], v[i99], v[NR] }'
}
echo "RPO achieved (newest point's age, s, every 0.5 s): $(pct "$WORK/ages")"
echo "barrier hold per point (us): $(pct "$WORK/holds")"
echo "status at the end: $(getfattr --absolute-names -n user.csvfs.replica --only-values "$MNT/vm/disk0")"
python3 - "$WORK/fio-repl.json" "$WORK/fio-plain.json" <<'EOF'
import json, sys
for name, path in zip(("replicated", "plain"), sys.argv[1:]):
    j = json.load(open(path))["jobs"][0]["write"]
    c = j["clat_ns"]["percentile"]
    print("%-10s IOPS %.0f clat us p50 %.0f p99 %.0f p99.9 %.0f p99.99 %.0f max %.0f" % (
        name, j["iops"], c["50.000000"] / 1e3, c["99.000000"] / 1e3,
        c["99.900000"] / 1e3, c["99.990000"] / 1e3, j["clat_ns"]["max"] / 1e3))
EOF
