#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-uring.sh - FUSE requests over io_uring (uring=, csvfs/fuse_uring.c) on
# a real mount: direct reads and writes served on the queue threads, every
# other request through libfuse on the slow path, and the fall-back to
# /dev/fuse.  Sets the fuse module parameter enable_uring to 1 for its
# mounts and puts the old value back on exit.  Needs root, /dev/fuse,
# fio and that parameter (Linux 6.14+, CONFIG_FUSE_IO_URING); exits 77
# with the reason otherwise.
#
# Checks:
#   - uring=on: the log says requests come over io_uring;
#   - random 4 KiB writes at iodepth 16, verified (crc32c), re-read and
#     verified at iodepth 16, equal to the backing file; mixed 4 KiB /
#     64 KiB / 1 MiB writes at iodepth 32, verified;
#   - one request at a time (dd, queue depth 1), written and read back;
#   - files, directories, renames, links, xattrs, a buffered file
#     (the slow path);
#   - unmount: csvfs exits 0, most I/O was done on the queue threads, no
#     sanitizer report;
#   - the connection aborted under load: csvfs ends, exit 0, no report;
#   - the default options (uring=auto) take it when offered;
#   - enable_uring=0: uring=auto falls back to /dev/fuse and says so;
#     uring=on says the kernel does not offer it and works over /dev/fuse;
#   - uring=bogus is refused at mount time.
set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
PARAM=/sys/module/fuse/parameters/enable_uring

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fio >/dev/null || _notrun "fio not installed"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
[ -x "$CSVFS" ] && [ -x "$LOCKD" ] || _notrun "csvfs not built"
[ -e "$PARAM" ] || _notrun "no $PARAM (kernel without FUSE over io_uring)"

# /var/tmp: a disk file system (O_DIRECT); /tmp may be tmpfs
W=$(mktemp -d /var/tmp/csvfs-uring.XXXXXX)
BE=$W/backend MNT=$W/mnt SOCK=$W/lockd.sock
mkdir -p "$BE" "$MNT"
cd "$W" || exit 99 # fio's verify state files
LOCKD_PID="" CSVFS_PID="" FIO_PID="" FUSECTL=""
PARAM_WAS=$(cat "$PARAM")

cleanup() {
	[ -n "$FIO_PID" ] && kill -KILL "$FIO_PID" 2>/dev/null
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	if [ -n "$CSVFS_PID" ]; then
		timeout 10 tail --pid="$CSVFS_PID" -f /dev/null
		kill -KILL "$CSVFS_PID" 2>/dev/null
	fi
	[ -n "$FUSECTL" ] && umount /sys/fs/fuse/connections 2>/dev/null
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null &&
		wait "$LOCKD_PID" 2>/dev/null
	echo "$PARAM_WAS" >"$PARAM"
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

echo 1 >"$PARAM" || _notrun "cannot set $PARAM"

"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
	-c /dev/null >"$W/lockd.log" 2>&1 </dev/null &
LOCKD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || { echo "Bail out! csvfs-lockd did not start"; exit 99; }

# mount LOG OPTS: csvfs in the foreground, its log in LOG
mount_csvfs() {
	"$CSVFS" "dir:$BE" "$MNT" -f -o "lockd=$SOCK,$2" >"$1" 2>&1 </dev/null &
	CSVFS_PID=$!
	for _ in $(seq 100); do mountpoint -q "$MNT" && return 0; sleep 0.05; done
	echo "# csvfs did not mount: $(tail -2 "$1")"
	return 1
}

unmount_csvfs() {
	local rc
	fusermount3 -u "$MNT" || umount -l "$MNT"
	timeout 20 tail --pid="$CSVFS_PID" -f /dev/null
	wait "$CSVFS_PID"; rc=$?
	CSVFS_PID=""
	return $rc
}

fio_verify() {
	local name=$1 file=$2 size=$3; shift 3
	timeout 120 fio --name="$name" --filename="$file" --size="$size" \
		--direct=1 --ioengine=libaio --verify=crc32c --verify_fatal=1 \
		--randseed=4242 --output="$W/$name.out" "$@" >/dev/null 2>&1
}

# fast LOG: reads and writes done on the queue threads (or none)
fast() {
	sed -n 's/.*FUSE over io_uring: \([0-9]*\) reads and writes.*/\1/p' "$1"
}
no_report() { ! grep -q -e 'ERROR: .*Sanitizer' -e 'runtime error' "$1"; }

# ---- uring=on ---------------------------------------------------------------
log=$W/csvfs-on.log
if mount_csvfs "$log" uring=on; then
	t "uring=on: the log says requests come over io_uring" \
		grep -q "FUSE requests: over io_uring" "$log"
	t "random 4 KiB writes, iodepth 16, verified" \
		fio_verify rw4k "$MNT/img" 32M --rw=randwrite --bs=4k \
		--iodepth=16
	t "re-read at iodepth 16 and verified" \
		fio_verify rw4k "$MNT/img" 32M --rw=randwrite --bs=4k \
		--iodepth=16 --verify_only
	t "mount and backing file identical" cmp "$MNT/img" "$BE/img"
	t "mixed 4k/64k/1M random writes, iodepth 32, verified" \
		fio_verify mixed "$MNT/mixed" 64M --rw=randwrite \
		--bssplit=4k/40:64k/40:1m/20 --iodepth=32
	t "queue depth 1: 2000 direct 4 KiB writes" \
		dd if=/dev/urandom of="$MNT/qd1" bs=4k count=2000 \
		oflag=direct status=none
	t "queue depth 1: read back direct, equal to the backing file" \
		cmp <(dd if="$MNT/qd1" bs=4k iflag=direct status=none) \
		"$BE/qd1"
	t "directories, files, rename, link, symlink" bash -c "
		mkdir -p '$MNT/d/e' && echo hi >'$MNT/d/f' &&
		mv '$MNT/d/f' '$MNT/d/e/g' && ln '$MNT/d/e/g' '$MNT/d/h' &&
		ln -s e/g '$MNT/d/s' && [ \"\$(cat '$MNT/d/s')\" = hi ] &&
		[ \$(stat -c %h '$MNT/d/h') = 2 ] &&
		[ \"\$(ls '$MNT/d' | tr '\n' ' ')\" = 'e h s ' ]"
	t "xattrs" bash -c "setfattr -n user.k -v v '$MNT/d/h' &&
		[ \"\$(getfattr --only-values -n user.k '$MNT/d/h')\" = v ]"
	t "buffered 3 MiB file round trip (1 MiB requests)" bash -c "
		head -c 3000000 /dev/urandom >'$W/rand' &&
		cp '$W/rand' '$MNT/buf' && cmp '$W/rand' '$MNT/buf' &&
		cmp '$W/rand' '$BE/buf'"
	t "rm -r" rm -r "$MNT/d"
	t "uring=on: unmount, csvfs exits 0" unmount_csvfs
	n=$(fast "$log")
	t "most reads and writes done on the queue threads (${n:-none})" \
		test "${n:-0}" -gt 20000
	t "uring=on: no sanitizer report" no_report "$log"
else
	bad "uring=on: mount"
fi

# ---- the connection aborted under load --------------------------------------
log=$W/csvfs-abort.log
if mount_csvfs "$log" uring=on; then
	dev=$(stat -c %d "$MNT")
	fio --name=load --filename="$MNT/img" --size=32M --direct=1 \
		--ioengine=libaio --iodepth=32 --rw=randrw --bs=4k \
		--time_based --runtime=30 --output=/dev/null >/dev/null 2>&1 &
	FIO_PID=$!
	sleep 2
	if [ ! -d "/sys/fs/fuse/connections/$dev" ] &&
		mount -t fusectl fusectl /sys/fs/fuse/connections 2>/dev/null; then
		FUSECTL=1
	fi
	if [ -w "/sys/fs/fuse/connections/$dev/abort" ]; then
		echo 1 >"/sys/fs/fuse/connections/$dev/abort"
		t "abort: csvfs ends" \
			timeout 20 tail --pid="$CSVFS_PID" -f /dev/null
		wait "$CSVFS_PID"; rc=$?
		CSVFS_PID=""
		t "abort: csvfs exit status is 0 ($rc)" test "$rc" = 0
		t "abort: no sanitizer report" no_report "$log"
		[ "$rc" = 0 ] || sed 's/^/# csvfs: /' "$log" | tail -20
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

# ---- the default (uring=auto) takes it when offered --------------------------
log=$W/csvfs-default.log
if mount_csvfs "$log" cache=direct; then
	t "default options, enable_uring=1: over io_uring" \
		grep -q "FUSE requests: over io_uring" "$log"
	t "default options: direct writes verified" \
		fio_verify default "$MNT/img-default" 8M --rw=randwrite \
		--bs=4k --iodepth=16
	t "default options: unmount, csvfs exits 0" unmount_csvfs
else
	bad "default options: mount"
fi

# ---- enable_uring=0: /dev/fuse ----------------------------------------------
echo 0 >"$PARAM"
for mode in auto on; do
	log=$W/csvfs-off-$mode.log
	if mount_csvfs "$log" uring=$mode; then
		t "enable_uring=0, uring=$mode: the log says /dev/fuse" \
			grep -q "FUSE requests: over /dev/fuse" "$log"
		[ $mode = on ] && t "uring=on: the log says the kernel does not offer it" \
			grep -q "kernel does not offer FUSE over io_uring" "$log"
		t "enable_uring=0, uring=$mode: random writes verified" \
			fio_verify off-$mode "$MNT/img-$mode" 8M --rw=randwrite \
			--bs=4k --iodepth=16
		t "enable_uring=0, uring=$mode: unmount, csvfs exits 0" unmount_csvfs
		t "enable_uring=0, uring=$mode: nothing on queue threads" \
			test -z "$(fast "$log")"
	else
		bad "enable_uring=0, uring=$mode: mount"
	fi
done
echo 1 >"$PARAM"

# ---- bad option -------------------------------------------------------------
"$CSVFS" "dir:$BE" "$MNT" -o "lockd=$SOCK,uring=bogus" >"$W/bad.err" 2>&1
rc=$?
t "uring=bogus refused with status 2 ($rc), not mounted" \
	bash -c "[ $rc = 2 ] && ! mountpoint -q '$MNT' && grep -q uring=bogus '$W/bad.err'"

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
