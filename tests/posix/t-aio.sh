#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-aio.sh - direct I/O through the io_uring path (csvfs/aio.c) of a real
# mount: what a VM does to its disk (O_DIRECT, libaio, a queue depth of
# 16-32, 4 KiB to 1 MiB requests) must land byte for byte, read back,
# report errors, and survive the connection going away with requests in
# flight.  The same data checks on an aio=off mount, so both paths are
# held to the same result.  Needs root, /dev/fuse and fio; exits 77 with
# the reason otherwise.
#
# The mounts are uring=off: with FUSE over io_uring the queue threads do
# the direct I/O themselves (t-uring.sh), and this ring sees none.
#
# Checks (fio's verify writes a checksum into every block and reads it
# back; cmp compares the mount with the backing file):
#   - random 4 KiB writes at iodepth 16, verified, then re-read and
#     verified by a second fio (reads through the ring), equal to the
#     backing file;
#   - random writes of mixed sizes (4 KiB, 64 KiB, 1 MiB), verified;
#   - the requests went through io_uring (csvfs's log at unmount), and
#     with aio=off they did not; one request at a time (dd, queue depth 1)
#     stays on the workers; synchronous writes from 8 threads to one
#     file reach csvfs side by side (FOPEN_PARALLEL_DIRECT_WRITES);
#   - with io_uring forbidden (kernel.io_uring_disabled=2) the mount
#     works, says so, and takes the worker path;
#   - ENOSPC from the backing file system reaches the writer, and the
#     mount works on afterwards;
#   - FUSE connection aborted under load: csvfs exits (status 0), every
#     request in flight answered, nothing leaked (sanitizer builds);
#   - aio=bogus is refused at mount time.
set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fio >/dev/null || _notrun "fio not installed"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
[ -x "$CSVFS" ] && [ -x "$LOCKD" ] || _notrun "csvfs not built"

# /var/tmp: a disk file system (O_DIRECT); /tmp may be tmpfs
W=$(mktemp -d /var/tmp/csvfs-aio.XXXXXX)
BE=$W/backend MNT=$W/mnt SOCK=$W/lockd.sock SMALL=$W/small
mkdir -p "$BE" "$MNT" "$SMALL"
cd "$W" || exit 99 # fio leaves its verify state files in the working directory
LOCKD_PID="" CSVFS_PID="" FIO_PID="" FUSECTL="" URING_WAS="" NO_URING=""

cleanup() {
	[ -n "$URING_WAS" ] && echo "$URING_WAS" >/proc/sys/kernel/io_uring_disabled
	[ -n "$FIO_PID" ] && kill -KILL "$FIO_PID" 2>/dev/null
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	mountpoint -q "$SMALL" && umount -l "$SMALL"
	if [ -n "$CSVFS_PID" ]; then
		timeout 10 tail --pid="$CSVFS_PID" -f /dev/null
		kill -KILL "$CSVFS_PID" 2>/dev/null
	fi
	[ -n "$FUSECTL" ] && umount /sys/fs/fuse/connections 2>/dev/null
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null &&
		wait "$LOCKD_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
	-c /dev/null >"$W/lockd.log" 2>&1 </dev/null &
LOCKD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "Bail out! csvfs-lockd did not start"; exit 99; }

# mount BACKEND LOG [OPTS]: csvfs in the foreground, its log in LOG
mount_csvfs() {
	"$CSVFS" "dir:$1" "$MNT" -f -o "lockd=$SOCK,uring=off${3:+,$3}" \
		>"$2" 2>&1 </dev/null &
	CSVFS_PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
	echo "# csvfs did not mount: $(tail -2 "$2")"
	return 1
}

# unmount and wait for csvfs: its exit status
unmount_csvfs() {
	local rc
	fusermount3 -u "$MNT" || umount -l "$MNT"
	timeout 20 tail --pid="$CSVFS_PID" -f /dev/null
	wait "$CSVFS_PID"; rc=$?
	CSVFS_PID=""
	return $rc
}

# fio JOB-NAME FILE SIZE ARGS...: direct I/O, libaio, checksum verify
fio_verify() {
	local name=$1 file=$2 size=$3; shift 3
	fio --name="$name" --filename="$file" --size="$size" --direct=1 \
		--ioengine=libaio --verify=crc32c --verify_fatal=1 \
		--randseed=4242 --output="$W/$name.out" "$@" >/dev/null 2>&1
}

# requests LOG: how many requests csvfs sent through io_uring (or none)
ring_requests() {
	sed -n 's/.*direct I\/O through io_uring: \([0-9]*\) requests.*/\1/p' "$1"
}

# ---- the two paths: same data checks ------------------------------------
for mode in on off; do
	log=$W/csvfs-$mode.log
	if ! mount_csvfs "$BE" "$log" "aio=$mode"; then
		bad "aio=$mode: mount"
		continue
	fi
	t "aio=$mode: random 4 KiB writes, iodepth 16, verified" \
		fio_verify rw4k-$mode "$MNT/img-$mode" 32M --rw=randwrite \
		--bs=4k --iodepth=16
	t "aio=$mode: re-read at iodepth 16 and verified" \
		fio_verify rw4k-$mode "$MNT/img-$mode" 32M --rw=randwrite \
		--bs=4k --iodepth=16 --verify_only
	t "aio=$mode: mount and backing file identical" \
		cmp "$MNT/img-$mode" "$BE/img-$mode"
	t "aio=$mode: mixed 4k/64k/1M random writes, iodepth 32, verified" \
		fio_verify mixed-$mode "$MNT/mixed-$mode" 64M --rw=randwrite \
		--bssplit=4k/40:64k/40:1m/20 --iodepth=32
	t "aio=$mode: unmount, csvfs exits 0" unmount_csvfs
	n=$(ring_requests "$log")
	if [ "$mode" = on ] && grep -q "io_uring not available" "$log"; then
		NO_URING=1
		echo "# io_uring not available on this host: the ring checks are skipped"
	elif [ "$mode" = on ]; then
		t "aio=on: requests went through io_uring (${n:-none})" \
			test "${n:-0}" -gt 10000
	else
		t "aio=off: no request went through io_uring" test -z "$n"
	fi
done

# ---- one request at a time: the worker does it ----------------------------
# A request alone is done on the worker that received it (no wake-up of
# the ring thread in its latency); only concurrent ones go to the ring.
if [ -z "$NO_URING" ]; then
	log=$W/csvfs-qd1.log
	if mount_csvfs "$BE" "$log" aio=on; then
		t "queue depth 1: 2000 direct 4 KiB writes" \
			dd if=/dev/urandom of="$MNT/qd1" bs=4k count=2000 \
			oflag=direct status=none
		t "queue depth 1: read back direct, equal to the backing file" \
			cmp <(dd if="$MNT/qd1" bs=4k iflag=direct status=none) \
			"$BE/qd1"
		t "queue depth 1: unmount, csvfs exits 0" unmount_csvfs
		n=$(ring_requests "$log")
		t "queue depth 1: the workers did the I/O (${n:-none} of 4000 through io_uring)" \
			test -n "$n" -a "${n:-0}" -lt 40
	else
		bad "queue depth 1: mount"
	fi
fi

# ---- synchronous writes from several threads run side by side ----------
# QEMU's aio=threads: a pool of threads, each in a blocking pwrite of the
# disk image.  Unless csvfs's open reply says FOPEN_PARALLEL_DIRECT_WRITES
# the kernel holds the file's inode lock across each such write, so they
# reach csvfs one at a time and every one is a lone request done by its
# worker (0 through the ring).  Side by side, most find another under way
# and go through the ring.  Each thread writes its own 4 MiB of a file
# laid out before (writes past the end stay serialized by the kernel);
# the data is verified in the backing file.  Needs Linux 6.2.
kver=$(uname -r)
kmaj=${kver%%.*} kmin=${kver#*.}; kmin=${kmin%%[!0-9]*}
if [ -z "$NO_URING" ] && [ "$kmaj" -gt 6 -o \( "$kmaj" = 6 -a "$kmin" -ge 2 \) ]; then
	log=$W/csvfs-par.log
	fallocate -l 32M "$BE/par" 2>/dev/null || truncate -s 32M "$BE/par"
	if mount_csvfs "$BE" "$log" aio=on; then
		t "8 threads of synchronous direct 4 KiB writes into one file" \
			fio --name=par --filename="$MNT/par" --size=4M \
			--offset_increment=4M --numjobs=8 --ioengine=psync \
			--rw=randwrite --bs=4k --direct=1 --verify=crc32c \
			--do_verify=0 --randseed=777 --output="$W/par.out"
		t "parallel writes: unmount, csvfs exits 0" unmount_csvfs
		t "parallel writes: every thread's data in the backing file" \
			fio --name=par --filename="$BE/par" --size=4M \
			--offset_increment=4M --numjobs=8 --ioengine=psync \
			--rw=randwrite --bs=4k --direct=1 --verify=crc32c \
			--verify_only --verify_fatal=1 --randseed=777 \
			--output="$W/par-verify.out"
		n=$(ring_requests "$log")
		t "parallel writes reached csvfs together (${n:-none} of 8192 through io_uring)" \
			test "${n:-0}" -ge 1000
	else
		bad "parallel writes: mount"
	fi
else
	echo "# no io_uring or Linux < 6.2: parallel write check skipped"
fi

# ---- no io_uring: the mount goes on without it ----------------------------
# kernel.io_uring_disabled=2 makes io_uring_setup fail for everyone, as on
# hosts that forbid it; restored at once (and by cleanup).
URING_SYSCTL=/proc/sys/kernel/io_uring_disabled
if [ -w "$URING_SYSCTL" ]; then
	URING_WAS=$(cat "$URING_SYSCTL")
	echo 2 >"$URING_SYSCTL"
	log=$W/csvfs-nouring.log
	mount_csvfs "$BE" "$log"; rc=$?
	echo "$URING_WAS" >"$URING_SYSCTL"; URING_WAS=""
	if [ $rc = 0 ]; then
		t "io_uring forbidden: mounted, with a warning" \
			grep -q "io_uring not available" "$log"
		t "io_uring forbidden: random 4 KiB writes verified" \
			fio_verify nouring "$MNT/img-nouring" 16M \
			--rw=randwrite --bs=4k --iodepth=16
		t "io_uring forbidden: unmount, csvfs exits 0" unmount_csvfs
		t "io_uring forbidden: no request went through io_uring" \
			test -z "$(ring_requests "$log")"
	else
		bad "io_uring forbidden: mount failed: $(tail -1 "$log")"
	fi
else
	echo "# no kernel.io_uring_disabled: fallback check skipped"
fi

# ---- ENOSPC from the backing file system --------------------------------
if mount -t tmpfs -o size=4m tmpfs "$SMALL" 2>/dev/null; then
	if mount_csvfs "$SMALL" "$W/csvfs-small.log"; then
		dd if=/dev/zero of="$MNT/fill" bs=64k count=128 oflag=direct \
			>"$W/dd.out" 2>&1
		t "O_DIRECT writes past the backing's space fail with ENOSPC" \
			grep -q "No space left on device" "$W/dd.out"
		rm -f "$MNT/fill"
		t "after ENOSPC and a delete the mount writes again" \
			dd if=/dev/zero of="$MNT/again" bs=64k count=8 \
			oflag=direct status=none
		t "unmount after ENOSPC, csvfs exits 0" unmount_csvfs
		echo "# over tmpfs: $(ring_requests "$W/csvfs-small.log") requests through io_uring"
	else
		bad "mount over a small tmpfs"
	fi
	umount "$SMALL"
else
	echo "# cannot mount a tmpfs: ENOSPC check skipped"
fi

# ---- the connection aborted under load ----------------------------------
log=$W/csvfs-abort.log
if mount_csvfs "$BE" "$log"; then
	dev=$(stat -c %d "$MNT")
	# a file laid out before: the load is direct I/O from the start
	fio --name=load --filename="$MNT/img-on" --size=32M --direct=1 \
		--ioengine=libaio --iodepth=32 --rw=randrw --bs=4k \
		--time_based --runtime=30 --output=/dev/null >/dev/null 2>&1 &
	FIO_PID=$!
	sleep 2
	if [ ! -d "/sys/fs/fuse/connections/$dev" ] &&
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null; then
		FUSECTL=1
	fi
	# requests in flight at the abort are answered into a dead
	# connection: csvfs must still wait for each before tearing down
	if [ -w "/sys/fs/fuse/connections/$dev/abort" ]; then
		echo 1 >"/sys/fs/fuse/connections/$dev/abort"
		t "csvfs ends after the abort" \
			timeout 20 tail --pid="$CSVFS_PID" -f /dev/null
		wait "$CSVFS_PID"; rc=$?
		CSVFS_PID=""
		t "csvfs exit status after the abort is 0 ($rc)" test "$rc" = 0
		t "no sanitizer report" bash -c "! grep -q -e 'ERROR: .*Sanitizer' -e 'runtime error' '$log'"
		[ -n "$NO_URING" ] || t "the ring was busy at the abort" \
			test "$(ring_requests "$log")" -gt 0
		[ "$rc" = 0 ] && { [ -n "$NO_URING" ] ||
			[ "$(ring_requests "$log")" -gt 0 ]; } ||
			sed 's/^/# csvfs: /' "$log" | tail -40
	else
		bad "no abort file for the mount (dev $dev)"
	fi
	kill -KILL "$FIO_PID" 2>/dev/null
	wait "$FIO_PID" 2>/dev/null
	FIO_PID=""
	umount -l "$MNT" 2>/dev/null
else
	bad "mount for the abort check"
fi

# ---- bad option -------------------------------------------------------------
"$CSVFS" "dir:$BE" "$MNT" -o "lockd=$SOCK,aio=bogus" >"$W/bad.err" 2>&1
rc=$?
t "aio=bogus refused with status 2 ($rc), not mounted" \
	bash -c "[ $rc = 2 ] && ! mountpoint -q '$MNT' && grep -q aio=bogus '$W/bad.err'"

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
