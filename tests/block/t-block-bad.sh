#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-bad.sh - the block backend on bad input, standalone (lockd=none):
# a LUN without a file system, a directory, ext4 with a feature csvfs
# cannot write (each refused by name, the LUN untouched: inline_data,
# bigalloc, quota, project, orphan_file, mmp, meta_bg, casefold,
# encrypt, ea_inode, large_dir, no journal, no extents), names too long, and a full volume
# (ENOSPC, then space again after a removal), each a clear message or
# errno, no mount left behind, and `e2fsck -fn` of the image clean.
# Needs root and /dev/fuse; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
ADMIN=$top_builddir/tools/csvfs-admin
PATH=$PATH:/sbin:/usr/sbin

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v mke2fs >/dev/null || _notrun "mke2fs missing (e2fsprogs)"
for b in "$CSVFS" "$ADMIN"; do [ -x "$b" ] || _notrun "$b not built"; done

W=$(mktemp -d /tmp/csvfs-blkbad.XXXXXX)
MNT=$W/mnt
mkdir -p "$MNT"
CSVFS_PID=

cleanup() {
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$CSVFS_PID" ] && wait "$CSVFS_PID" 2>/dev/null
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

# refused WHAT PATTERN SOURCE: the mount fails (exit 1) saying PATTERN.
refused() {
	local what=$1 pat=$2 rc
	"$CSVFS" "$3" "$MNT" -o lockd=none >"$W/err" 2>&1; rc=$?
	if [ $rc = 1 ] && ! mountpoint -q "$MNT" && grep -q "$pat" "$W/err"; then
		ok "$what: $(head -1 "$W/err")"
	else
		bad "$what: exit $rc, '$(head -1 "$W/err")'"
		mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	fi
}
fsck_clean() { # IMG WHAT
	if e2fsck -fn "$1" >"$W/fsck.out" 2>&1; then
		ok "e2fsck -fn clean $2"
	else
		sed 's/^/# /' "$W/fsck.out" | head -30
		bad "e2fsck -fn $2"
	fi
}

# ---- LUNs csvfs must not use ----------------------------------------------------
truncate -s 256M "$W/zero.img"
refused "a LUN without a file system" "no ext4 file system" "block:$W/zero.img"
t "the zero LUN is untouched" cmp -n $((256 << 20)) /dev/zero "$W/zero.img"
refused "a directory as LUN" "neither a block device" "block:$W"
refused "a missing LUN" "No such file" "block:$W/none.img"
"$CSVFS" "block:relative.img" "$MNT" -o lockd=none >"$W/err" 2>&1; rc=$?
t "a relative LUN path: usage error ($(head -1 "$W/err"))" test $rc = 2

truncate -s 256M "$W/inline.img"
mke2fs -q -F -t ext4 -O inline_data "$W/inline.img"
refused "ext4 with inline_data (not supported)" "inline_data" "block:$W/inline.img"
fsck_clean "$W/inline.img" "of the refused inline_data volume"
t "format refuses it without --force" \
	bash -c "! '$ADMIN' format 'block:$W/inline.img' 2>'$W/err' && grep -q 'already holds an ext2/3/4' '$W/err'"
t "format --force makes it a csvfs volume" \
	"$ADMIN" format "block:$W/inline.img" --label forced --force
fsck_clean "$W/inline.img" "after format --force"

# ext4 made by mke2fs with features the engine refuses, each named, the
# LUN left as it was.  Why: bigalloc allocates clusters, not the blocks
# the engine's extents and bitmaps count in; quota and project need the
# quota files updated with every allocation and chown; orphan_file keeps
# orphans in a file, the engine in the superblock's list; mmp needs its
# block rewritten every few seconds by the one writer; meta_bg places
# group descriptors where the engine does not write them; casefold,
# encrypt, ea_inode and large_dir change the directory and xattr
# formats libext2fs writes for the engine; without a journal (ext2) or
# without extents (ext3) there is nothing to journal into or no extent
# tree to map.
feat() { # NAME PATTERN MKE2FS-ARGS...
	local name=$1 pat=$2 sum
	shift 2
	truncate -s 128M "$W/feat.img"
	if ! mke2fs -q -F "$@" "$W/feat.img" >"$W/mkfs.err" 2>&1; then
		echo "# $name: mke2fs refused here: $(head -1 "$W/mkfs.err")"
		return
	fi
	sum=$(md5sum <"$W/feat.img")
	refused "ext4 with $name" "$pat" "block:$W/feat.img"
	t "ext4 with $name: the LUN untouched" \
		test "$(md5sum <"$W/feat.img")" = "$sum"
	rm -f "$W/feat.img"
}
feat bigalloc "feature bigalloc is not supported" -t ext4 -O bigalloc -C 65536
feat quota "feature quota is not supported" -t ext4 -O quota
feat project "feature quota is not supported" -t ext4 -O quota,project
feat orphan_file "feature orphan_file is not supported" -t ext4 -O orphan_file
feat mmp "feature mmp is not supported" -t ext4 -O mmp
feat meta_bg "feature meta_bg is not supported" -t ext4 -O meta_bg,^resize_inode
feat casefold "feature casefold is not supported" -t ext4 -O casefold
feat encrypt "feature encrypt is not supported" -t ext4 -O encrypt
feat ea_inode "feature ea_inode is not supported" -t ext4 -O ea_inode
feat large_dir "feature large_dir is not supported" -t ext4 -O large_dir
feat "no journal (ext2)" "no internal journal" -t ext2
feat "no extents (ext3)" "feature extent missing" -t ext3

# ---- a small volume: names, then filling it ---------------------------------------
IMG=$W/small.img
truncate -s 128M "$IMG"
t "format a 128 MiB volume" "$ADMIN" format "block:$IMG" --label small
"$CSVFS" "block:$IMG" "$MNT" -f -o lockd=none >"$W/csvfs.log" 2>&1 &
CSVFS_PID=$!
for _ in $(seq 200); do mountpoint -q "$MNT" && break; sleep 0.05; done
mountpoint -q "$MNT" || { echo "Bail out! no mount: $(tail -2 "$W/csvfs.log")"; exit 99; }
long=$(printf 'n%.0s' $(seq 256))
max=$(printf 'm%.0s' $(seq 255))
t "a 256-byte name: ENAMETOOLONG" bash -c "! touch '$MNT/$long' 2>'$W/err' && grep -q 'too long' '$W/err'"
t "a 255-byte name works" touch "$MNT/$max"
t "and is listed" bash -c "ls '$MNT' | grep -qx '$max'"
t "mkdir with a 256-byte name: ENAMETOOLONG" bash -c "! mkdir '$MNT/$long' 2>/dev/null"
t "rename to a 256-byte name: ENAMETOOLONG" bash -c "! mv '$MNT/$max' '$MNT/$long' 2>/dev/null"

dd if=/dev/zero of="$MNT/fill" bs=1M count=400 oflag=direct status=none 2>"$W/dd.err"; rc=$?
t "filling the volume ends in ENOSPC ($(tail -1 "$W/dd.err"))" \
	bash -c "[ $rc != 0 ] && grep -q 'No space left' '$W/dd.err'"
sz=$(stat -c %s "$MNT/fill")
t "the full file's size is what was written ($sz bytes)" test "$sz" -gt $((64 << 20))
free=$(stat -f -c %f "$MNT")
t "statfs: less than a granule free in all ($free blocks of 4 KiB)" test "$free" -lt 256
t "a small write on the full volume: ENOSPC" \
	bash -c "! dd if=/dev/zero of='$MNT/more' bs=1M count=2 oflag=direct status=none 2>/dev/null"
t "the full file reads back as zeros" cmp -n "$sz" /dev/zero "$MNT/fill"
t "remove it" rm -f "$MNT/fill" "$MNT/more"
t "space again: 16 MiB written" dd if=/dev/zero of="$MNT/again" bs=1M count=16 oflag=direct status=none
fusermount3 -u "$MNT" && wait "$CSVFS_PID"
t "unmount, csvfs exits 0" test $? = 0
CSVFS_PID=
fsck_clean "$IMG" "after ENOSPC"

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
