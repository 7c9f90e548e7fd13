#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-cvfsx.sh - random file operations with an in-memory model (cvfsx:
# buffered, mapped MAP_SHARED, O_DIRECT, truncate, fallocate) on a csvfs
# mount over a dir backend, with a standalone csvfs-lockd, in the default
# cache=direct mode and in cache=auto; then mapped writes against the
# ownership rules: a mapped write takes write ownership like write(2), and
# after the lease is lost (lockd killed) its msync fails with EIO and
# nothing reaches the backing file.  With CV_BACKEND=nfs (t-cvfsx-nfs.sh)
# the backend is an nfs-ganesha export instead; with CV_BACKEND=block
# (t-block-cvfsx.sh) a block volume on an image file, checked with
# e2fsck -fn at the end.
#
# Seeds differ from run to run and are printed (replay: CVFSX_SEED=N);
# CVFSX_OPS sets the operation count (default 3000).  Needs root and
# /dev/fuse; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
srcdir=$(cd "$(dirname "$0")" && pwd)
CSVFS=${CV_CSVFS:-$top_builddir/csvfs/csvfs}
LOCKD=$top_builddir/lockmgr/csvfs-lockd
FSX=$top_builddir/tests/posix/cvfsx
CVMAP=$top_builddir/tests/posix/cvmap
OPS=${CVFSX_OPS:-3000}
BACKEND=${CV_BACKEND:-dir}

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
for b in "$CSVFS" "$LOCKD" "$FSX" "$CVMAP"; do
	[ -x "$b" ] || _notrun "$b not built"
done

W=$(mktemp -d /tmp/csvfs-cvfsx.XXXXXX)
BE=$W/backend MNT=$W/mnt SOCK=$W/lockd.sock
mkdir -p "$BE" "$MNT"
LOCKD_PID= MAP_PID=

cleanup() {
	[ -n "$MAP_PID" ] && kill "$MAP_PID" 2>/dev/null && wait "$MAP_PID" 2>/dev/null
	exec 5>&- 2>/dev/null
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null && \
		wait "$LOCKD_PID" 2>/dev/null
	[ "$BACKEND" = nfs ] && ganesha_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

if [ "$BACKEND" = nfs ]; then
	GANESHA_NFS_VERSION=${CV_NFS_VERSION:-3}
	. "$srcdir/../nfs/ganesha.sh"
	ganesha_start "$W" "$BE"
	SOURCE=$(ganesha_url "timeout=5")
elif [ "$BACKEND" = block ]; then
	PATH=$PATH:/sbin:/usr/sbin
	command -v debugfs >/dev/null || _notrun "debugfs missing (e2fsprogs)"
	# t-iscsi-cvfsx.sh: CV_BLOCK_SOURCE an iscsi:// LUN whose backing
	# file is CV_BLOCK_IMG (512 MiB)
	IMG=${CV_BLOCK_IMG:-$W/lun.img}
	[ -n "${CV_BLOCK_IMG:-}" ] || truncate -s 512M "$IMG"
	SOURCE=${CV_BLOCK_SOURCE:-block:$IMG}
	"$top_builddir/tools/csvfs-admin" format "$SOURCE" --label cvfsx \
		>"$W/format.log" 2>&1 ||
		{ echo "Bail out! format: $(tail -1 "$W/format.log")"; exit 99; }
else
	SOURCE=dir:$BE
fi

start_lockd() {
	rm -f "$SOCK"
	"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
		>>"$W/lockd.log" 2>&1 &
	LOCKD_PID=$!
	for _ in $(seq 100); do [ -S "$SOCK" ] && return 0; sleep 0.05; done
	_notrun "csvfs-lockd --standalone did not start: $(tail -1 "$W/lockd.log")"
}
start_lockd

# mount OPTS: csvfs on $MNT (in the foreground process group's back, so
# that its log stays in $W/csvfs.log).
mount_csvfs() {
	"$CSVFS" "$SOURCE" "$MNT" -f -o "lockd=$SOCK${1:+,$1}" \
		>>"$W/csvfs.log" 2>&1 &
	CSVFS_PID=$!
	for _ in $(seq 200); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$CSVFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "Bail out! csvfs did not mount: $(tail -3 "$W/csvfs.log")"
	exit 99
}

umount_csvfs() {
	fusermount3 -u "$MNT" && wait "$CSVFS_PID"
}

# backing_has TEXT: the file "mapped" as stored holds TEXT (read from the
# backing directory, or from the ext4 image with debugfs, in a copy whose
# journal e2fsck replayed: the coordinator checkpoints lazily).
backing_has() {
	if [ "$BACKEND" = block ]; then
		cp --sparse=always "$IMG" "$W/peek.img" &&
			e2fsck -fy -E journal_only "$W/peek.img" >/dev/null 2>&1
		debugfs -R "cat /mapped" "$W/peek.img" 2>/dev/null | grep -q "$1"
	else
		grep -q "$1" "$BE/mapped"
	fi
}

backing_lacks() { ! backing_has "$1"; }

seed() {
	if [ -n "${CVFSX_SEED:-}" ]; then echo "$CVFSX_SEED"
	else echo $(( (RANDOM << 15 | RANDOM) ^ $$ )); fi
}

# run_fsx WHAT OPTS [SEED [FLAGS]]: cvfsx (with FLAGS) on a fresh file of
# a fresh mount, with SEED or a random one.
run_fsx() {
	local what=$1 opts=$2 s=${3:-} flags=${4:-}
	[ -n "$s" ] || s=$(seed)
	mount_csvfs "$opts"
	echo "# $BACKEND backend, $what: cvfsx $flags -s $s -n $OPS"
	# shellcheck disable=SC2086 # FLAGS: words
	if timeout 900 "$FSX" -q $flags -s "$s" -n "$OPS" "$MNT/fsx-$what" \
		>"$W/fsx.out" 2>&1; then
		ok "cvfsx $OPS ops, $what ($(tail -1 "$W/fsx.out"))"
	else
		sed 's/^/# /' "$W/fsx.out"
		bad "cvfsx $OPS ops, $what, seed $s"
	fi
	umount_csvfs
}

# Fixed seeds first on block (buffered, truncate and fallocate only: -MD):
# each lost data written through a map cached before a truncate up (the
# blocks past the old end became holes without a recall; a later
# ZERO_RANGE|KEEP_SIZE zeroed them).
if [ "$BACKEND" = block ]; then
	run_fsx seed-1031292201 "" 1031292201 -MD
	run_fsx seed-750729897 "" 750729897 -MD
fi
run_fsx cache-direct ""
grep -q "shared mmap of files opened for direct I/O: on" "$W/csvfs.log" &&
	ok "csvfs negotiated shared mmap of direct-I/O files" ||
	bad "csvfs did not negotiate shared mmap: $(grep 'shared mmap' "$W/csvfs.log" | tail -1)"
run_fsx cache-auto "cache=auto"

# ---- mapped writes and ownership -------------------------------------------
mount_csvfs ""
F=$MNT/mapped
head -c 65536 /dev/zero >"$F"
# the file was just written: wait for that ownership to go (last close)
owner_of() { getfattr --only-values -n user.csvfs.owner "$F" 2>/dev/null; }
for _ in $(seq 100); do [ -z "$(owner_of)" ] && break; sleep 0.05; done
t "no owner once the writer closed" test -z "$(owner_of)"

mkfifo "$W/map.in"
"$CVMAP" "$F" 65536 <"$W/map.in" >"$W/map.out" 2>&1 &
MAP_PID=$!
exec 5>"$W/map.in"
# cmd LINE: send LINE to cvmap, wait for its answer (its Nth line of
# output) and put it in R.
NLINES=1
cmd() {
	echo "$1" >&5
	NLINES=$((NLINES + 1))
	for _ in $(seq 400); do
		[ "$(wc -l <"$W/map.out")" -ge "$NLINES" ] && break
		sleep 0.05
	done
	R=$(sed -n "${NLINES}p" "$W/map.out")
}
for _ in $(seq 100); do grep -q mapped "$W/map.out" && break; sleep 0.05; done
t "cvmap maps the file MAP_SHARED" grep -qx mapped "$W/map.out"
cmd 'w 100 written-through-the-mapping'
t "mapped write" test "$R" = ok
cmd s
t "msync ($R)" test "$R" = ok
me=$(getfattr --only-values -n user.csvfs.owner "$F" 2>/dev/null)
t "the mapped write took write ownership (owner '$me')" test -n "$me"
t "the backing file has the mapped write" \
	backing_has written-through-the-mapping

# The lease ends with lockd: the next mapped write must not reach the
# backend; msync reports the failure.
kill -KILL "$LOCKD_PID"; wait "$LOCKD_PID" 2>/dev/null; LOCKD_PID=
for _ in $(seq 100); do
	grep -q "connection to csvfs-lockd lost" "$W/csvfs.log" && break
	sleep 0.05
done
t "csvfs saw the lockd connection go" grep -q "connection to csvfs-lockd lost" "$W/csvfs.log"
cmd 'w 200 after-the-lease'
t "mapped write after the lease ended" test "$R" = ok
cmd s
t "msync after the lease ended fails with EIO ($R)" test "$R" = "error: Input/output error"
t "the backing file does not have it" backing_lacks after-the-lease
cmd q
exec 5>&-
wait "$MAP_PID"; MAP_PID=
umount_csvfs
if [ "$BACKEND" = block ]; then
	t "e2fsck -fn of the volume clean" bash -c "e2fsck -fn '$IMG' >'$W/fsck.out' 2>&1 || { sed 's/^/# /' '$W/fsck.out' | head -20; exit 1; }"
fi

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
