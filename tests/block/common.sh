# SPDX-License-Identifier: LGPL-2.1-or-later
#
# common.sh - what the block journal scenarios share, sourced after
# tap.sh:
#   block_setup NAME    check for e2fsprogs and jtool (else exit 77 with
#                       the reason), make a private work dir (in /dev/shm
#                       when it can, so that fdatasync is cheap) and set
#                       the EXIT trap that removes it, with any mount and
#                       loop device the scenario registered
#   mkimg IMG [ARGS]    a 64 MiB ext4 image with mke2fs's defaults + ARGS
#   cmp_but_super A B   A and B equal but for the superblock fields that
#                       every write of it changes (s_wtime,
#                       s_kbytes_written, s_checksum) and s_lastcheck,
#                       which e2fsck sets as it likes
#   loop_attach IMG     set LOOP to a new loop device for IMG (registered)
#   loop_detach DEV     detach it and forget it
#   mount_reg DIR / umount_reg DIR   a mount point for the trap
# Block volumes mounted by csvfs (this node their coordinator):
#   csvfs_need          exit 77 unless root, /dev/fuse, fusermount3 and
#                       csvfs, csvfs-lockd and csvfs-admin are there
#   lockd_start         a standalone csvfs-lockd on $WORK/lockd.sock
#   bmount IMG MNT [OPT]  csvfs on block:IMG at MNT (-o OPT added), its
#                       log in MNT.log, pid in CSVFS_PID; 1 if it did
#                       not mount
#   bumount MNT         unmount and wait for that csvfs
#   bkill MNT           SIGKILL that csvfs and drop its mount
# Environment: TMPDIR (work dir when /dev/shm is not usable), CV_KEEP=1
# keeps the work dir.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
JTOOL=$top_builddir/tests/block/jtool
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
ADMIN=$top_builddir/tools/csvfs-admin
LOOPS="" MOUNTS="" FMOUNTS="" PIDS="" CSVFS_PID=""

block_cleanup() {
	local m l p
	for m in $FMOUNTS; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null ||
			umount -l "$m"; }
	done
	for p in $PIDS; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	for m in $MOUNTS; do umount "$m" 2>/dev/null; done
	for l in $LOOPS; do losetup -d "$l" 2>/dev/null; done
	cd /
	if [ "${CV_KEEP:-0}" = 1 ]; then
		echo "work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}

block_setup() {
	local c base=${TMPDIR:-/tmp}
	for c in mke2fs e2fsck debugfs dumpe2fs; do
		command -v $c >/dev/null ||
			PATH=$PATH:/sbin:/usr/sbin command -v $c >/dev/null ||
			_notrun "$c missing (Debian package e2fsprogs)"
	done
	PATH=$PATH:/sbin:/usr/sbin
	[ -x "$JTOOL" ] || _notrun "jtool not built (configure found no libext2fs-dev)"
	[ -d /dev/shm ] && [ -w /dev/shm ] && base=/dev/shm
	WORK=$(mktemp -d "$base/csvfs-$1.XXXXXX") || _notrun "no work dir"
	trap block_cleanup EXIT
	trap 'echo "$1: interrupted" >&2; exit 130' INT
	trap 'echo "$1: terminated" >&2; exit 143' TERM
	cd "$WORK" || exit 99
}

mkimg() {
	local img=$1
	shift
	rm -f "$img"
	truncate -s 64M "$img" && mke2fs -q -F -t ext4 "$@" "$img"
}

# Superblock bytes (1-based, as cmp -l counts) that differ between two
# writes of the same superblock: s_wtime (0x30), s_lastcheck (0x40),
# s_kbytes_written (0x178), s_checksum (0x3fc), at offset 1024.
cmp_but_super() {
	cmp -l "$1" "$2" | awk '
		($1 >= 1073 && $1 <= 1076) || ($1 >= 1089 && $1 <= 1092) ||
		($1 >= 1401 && $1 <= 1408) ||
		($1 >= 2045 && $1 <= 2048) { next }
		{ n++; if (n <= 5) print "differ at byte " $1 }
		END { exit n > 0 }'
}

loop_attach() {
	LOOP=$(losetup -f --show "$1" 2>/dev/null) || return 1
	LOOPS="$LOOPS $LOOP"
}

# Forget a device as soon as it is detached: the number may go to
# someone else's loop device at once, which the trap must not touch.
loop_detach() {
	losetup -d "$1" && LOOPS=$(echo "$LOOPS" | sed "s|[[:space:]]$1\\b||")
}

mount_reg() {
	MOUNTS="$1 $MOUNTS"
}

umount_reg() {
	umount "$1" && MOUNTS=$(echo "$MOUNTS" | sed "s|$1[[:space:]]||")
}

csvfs_need() {
	local b
	[ "$(id -u)" = 0 ] || _notrun "needs root"
	[ -c /dev/fuse ] || _notrun "no /dev/fuse"
	command -v fusermount3 >/dev/null || _notrun "fusermount3 missing (fuse3)"
	for b in "$CSVFS" "$LOCKD" "$ADMIN"; do
		[ -x "$b" ] || _notrun "$b not built"
	done
}

lockd_start() {
	"$LOCKD" -f --standalone --socket "$WORK/lockd.sock" \
		--state-dir "$WORK/lockd.state" >"$WORK/lockd.log" 2>&1 &
	PIDS="$PIDS $!"
	for _ in $(seq 100); do
		[ -S "$WORK/lockd.sock" ] && return 0
		sleep 0.05
	done
	_notrun "csvfs-lockd did not start: $(tail -1 "$WORK/lockd.log")"
}

bmount() {
	local img=$1 mnt=$2 opt=lockd=$WORK/lockd.sock
	[ $# -gt 2 ] && opt=$opt,$3
	mkdir -p "$mnt"
	"$CSVFS" "block:$img" "$mnt" -f -o "$opt" >"$mnt.log" 2>&1 &
	CSVFS_PID=$!
	PIDS="$PIDS $CSVFS_PID" FMOUNTS="$mnt $FMOUNTS"
	for _ in $(seq 400); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$CSVFS_PID" 2>/dev/null || break
		sleep 0.05
	done
	mountpoint -q "$mnt"
}

bumount() {
	fusermount3 -u "$1" || return 1
	wait "$CSVFS_PID" 2>/dev/null
	CSVFS_PID=
}

bkill() {
	kill -9 "$CSVFS_PID" 2>/dev/null
	wait "$CSVFS_PID" 2>/dev/null
	fusermount3 -u "$1" 2>/dev/null || umount -l "$1" 2>/dev/null
	CSVFS_PID=
}
