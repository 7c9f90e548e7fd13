#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-posix.sh - a csvfs mount on the block backend over an image
# file (this node the volume's coordinator), with a standalone
# csvfs-lockd: csvfs-admin format, the volume record inside the ext4
# volume, posix_check, archives, a preallocated raw image written with
# O_DIRECT (dd + cmp), a growing qcow2 (qemu-io, qemu-img check), shared
# mmap, user.csvfs.coordinator, a second mount of the same LUN refused,
# remount, and `e2fsck -fn` of the image clean after every unmount.
# Needs root and /dev/fuse; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
ADMIN=$top_builddir/tools/csvfs-admin
CHECK=$top_builddir/tests/posix/posix_check
CVMAP=$top_builddir/tests/posix/cvmap
PATH=$PATH:/sbin:/usr/sbin

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v e2fsck >/dev/null || _notrun "e2fsck missing (e2fsprogs)"
for b in "$CSVFS" "$LOCKD" "$ADMIN" "$CHECK"; do
	[ -x "$b" ] || _notrun "$b not built"
done

W=$(mktemp -d /tmp/csvfs-blkposix.XXXXXX)
IMG=${CV_BLOCK_IMG:-$W/lun.img} MNT=$W/mnt MNT2=$W/mnt2 SOCK=$W/lockd.sock
mkdir -p "$MNT" "$MNT2"
LOCKD_PID= CSVFS_PID=
# t-iscsi-posix.sh runs this over an iSCSI LUN: CV_BLOCK_SOURCE is its
# iscsi:// URL, CV_BLOCK_IMG the target's backing file (1 GiB).
LUNSRC=${CV_BLOCK_SOURCE:-block:$IMG}

cleanup() {
	for m in "$MNT" "$MNT2"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" || umount -l "$m"; }
	done
	[ -n "$CSVFS_PID" ] && wait "$CSVFS_PID" 2>/dev/null
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null &&
		wait "$LOCKD_PID" 2>/dev/null
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
	>"$W/lockd.log" 2>&1 &
LOCKD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || _notrun "csvfs-lockd did not start"

mount_blk() { # [OPTS]
	"$CSVFS" "$LUNSRC" "$MNT" -f -o "lockd=$SOCK,allow_other${1:+,$1}" \
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
umount_blk() {
	fusermount3 -u "$MNT" && wait "$CSVFS_PID"
	local rc=$?
	CSVFS_PID=
	return $rc
}
fsck_clean() { # WHAT
	if e2fsck -fn "$IMG" >"$W/fsck.out" 2>&1; then
		ok "e2fsck -fn clean $1"
	else
		sed 's/^/# /' "$W/fsck.out" | head -30
		bad "e2fsck -fn $1"
	fi
}

# ---- format -------------------------------------------------------------------
[ -n "${CV_BLOCK_IMG:-}" ] || truncate -s 1G "$IMG"
t "csvfs-admin format $LUNSRC" "$ADMIN" format "$LUNSRC" --label blkposix
t "format refuses a LUN with a file system" \
	bash -c "! '$ADMIN' format '$LUNSRC' --label again 2>'$W/err' && grep -q 'already holds' '$W/err'"
fsck_clean "after format"

# ---- mount ----------------------------------------------------------------------
mount_blk
t "mounted" mountpoint -q "$MNT"
uuid=$(getfattr --only-values -n user.csvfs.volume "$MNT" 2>/dev/null)
t "user.csvfs.volume is the formatted volume's" test -n "$uuid"
t "user.csvfs.coordinator names this node" \
	test "$(getfattr --only-values -n user.csvfs.coordinator "$MNT" 2>/dev/null)" = "$(hostname)"
t ".csvfs not listed" bash -c "! ls -a '$MNT' | grep -qx .csvfs"
"$CSVFS" "$LUNSRC" "$MNT2" -o "lockd=none" >"$W/err2" 2>&1; rc=$?
t "a second csvfs on the same LUN is refused ($(head -1 "$W/err2"))" \
	bash -c "[ $rc = 1 ] && ! mountpoint -q '$MNT2' && grep -q 'in use' '$W/err2'"

"$CHECK" "$MNT" posix block >"$W/check.out" 2>&1; rc=$?
grep -v '^ok' "$W/check.out"
n=$(grep -c '^ok' "$W/check.out"); nf=$(grep -c '^not ok' "$W/check.out")
PASS=$((PASS + n)); FAIL=$((FAIL + nf))
[ $rc = 0 ] || [ "$nf" -gt 0 ] || bad "posix_check exit $rc"
echo "# posix_check: $n passed, $nf failed"

# ---- csvfs-admin volumes: space and journal -------------------------------------
if command -v jq >/dev/null; then
	"$ADMIN" --socket "$SOCK" --json volumes >"$W/vol.json" 2>"$W/vol.err"
	vq() { jq -r ".[] | select(.source == \"$LUNSRC\") | $1" "$W/vol.json"; }
	t "admin volumes: the coordinator is this node" \
		test "$(vq .coordinator)" = "$(hostname)"
	t "admin volumes: free space as the mount gives it" \
		test "$(vq .space_from) $(vq .free_bytes) $(vq .size_bytes)" = \
		"mount $(($(stat -f -c '%a * %S' "$MNT"))) $(($(stat -f -c '%b * %S' "$MNT")))"
	case $LUNSRC in
	block:*)
		t "admin volumes: journal in use, 32 MiB (mke2fs for 1 GiB), used within it" \
			test "$(vq .journal.state) $(vq .journal.needs_recovery) $(vq .journal.size_bytes)" = \
			"in_use true $((32 << 20))" -a "$(vq .journal.used_bytes)" -le $((32 << 20))
		t "admin volumes (table): FREE and JOURNAL" bash -c \
			"'$ADMIN' --socket '$SOCK' volumes | grep -E '$LUNSRC .* [0-9.]+[MG]/1\.0G +in use, [0-9.]+[BKM]*/32M\$'" ;;
	*) # the journal of an iSCSI LUN is not read by csvfs-admin
		t "admin volumes (table): FREE" bash -c \
			"'$ADMIN' --socket '$SOCK' volumes | grep -E '$LUNSRC .* [0-9.]+[MG]/1\.0G +unknown'" ;;
	esac
else
	echo "# jq missing (Debian package jq): csvfs-admin volumes not checked"
fi

# ---- archives ---------------------------------------------------------------------
SRC=$W/src
mkdir -p "$SRC/sub/deeper"
head -c 3000000 /dev/urandom >"$SRC/sub/data"
echo text >"$SRC/t"; ln "$SRC/t" "$SRC/t2"; ln -s t "$SRC/sl"
touch -d '2001-02-03 04:05:06' "$SRC/t"
t "cp -a into the mount" cp -a "$SRC" "$MNT/cpa"
t "cp -a content identical" diff -r "$SRC" "$MNT/cpa"
t "cp -a keeps hard links" test "$(stat -c %i "$MNT/cpa/t")" = "$(stat -c %i "$MNT/cpa/t2")"
t "cp -a keeps mtime" test "$(stat -c %Y "$MNT/cpa/t")" = "$(stat -c %Y "$SRC/t")"
mkdir -p "$MNT/tar" "$W/back"
t "tar round trip" bash -c "tar -C '$SRC' -cf - . | tar -C '$MNT/tar' -xf - && tar -C '$MNT/tar' -cf - . | tar -C '$W/back' -xf - && diff -r '$SRC' '$W/back'"

# ---- VM images ------------------------------------------------------------------------
head -c 64M /dev/urandom >"$W/pattern"
t "preallocated raw image (fallocate 64 MiB)" fallocate -l 64M "$MNT/vm.raw"
t "O_DIRECT dd into it, cmp" bash -c "dd if='$W/pattern' of='$MNT/vm.raw' bs=1M oflag=direct conv=notrunc status=none && cmp '$W/pattern' '$MNT/vm.raw'"
t "4 KiB O_DIRECT rewrites at random offsets, cmp" bash -c "
	for o in 3 77 1025 16383 9000 12; do
		dd if=/dev/urandom of='$W/blk' bs=4096 count=1 status=none &&
		dd if='$W/blk' of='$W/pattern' bs=4096 seek=\$o conv=notrunc status=none &&
		dd if='$W/blk' of='$MNT/vm.raw' bs=4096 seek=\$o oflag=direct conv=notrunc status=none || exit 1
	done; cmp '$W/pattern' '$MNT/vm.raw'"
t "unaligned writes (read-modify-write), cmp" bash -c "
	printf 'hello' | dd of='$W/pattern' bs=1 seek=4093 conv=notrunc status=none &&
	printf 'hello' | dd of='$MNT/vm.raw' bs=1 seek=4093 conv=notrunc status=none &&
	cmp '$W/pattern' '$MNT/vm.raw'"
t "sparse file: holes read as zeros" bash -c "
	dd if=/dev/urandom of='$MNT/sparse' bs=4096 count=1 seek=1000 status=none &&
	test \$(stat -c %s '$MNT/sparse') = $((1001 * 4096)) &&
	cmp -n 4096000 /dev/zero '$MNT/sparse'"
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
	t "qemu-img create qcow2 (growing)" qemu-img create -q -f qcow2 "$MNT/vm.qcow2" 1G
	t "qemu-io writes 8 MiB in 3 places, reads them back" bash -c "
		qemu-io -t none -c 'write -P 0xab 0 4M' -c 'write -P 0xcd 512M 2M' \
			-c 'write -P 0xef 1020M 2M' -c 'read -P 0xab 0 4M' \
			-c 'read -P 0xcd 512M 2M' -c 'read -P 0xef 1020M 2M' \
			'$MNT/vm.qcow2' | grep -c '^read' | grep -qx 3"
	t "qemu-img check" qemu-img check -q "$MNT/vm.qcow2"
else
	echo "# qemu-img/qemu-io not installed: skipped"
fi
if [ -x "$CVMAP" ]; then
	t "shared mmap write, read back" bash -c "
		head -c 65536 /dev/zero >'$MNT/mapped' &&
		python3 -c \"
import mmap, os
fd = os.open('$MNT/mapped', os.O_RDWR)
m = mmap.mmap(fd, 65536)
m[100:105] = b'mmap!'
m.flush(); m.close(); os.close(fd)
\" && dd if='$MNT/mapped' bs=1 skip=100 count=5 status=none | grep -qx 'mmap!'"
fi
t "fsync of everything" sync -f "$MNT"
t "unmount" umount_blk
fsck_clean "after the POSIX run"

# ---- remount: the data and the record are still there -----------------------------------
mount_blk
t "remount: same volume" test "$(getfattr --only-values -n user.csvfs.volume "$MNT" 2>/dev/null)" = "$uuid"
t "remount: raw image intact" cmp "$W/pattern" "$MNT/vm.raw"
t "remount: archive intact" diff -r "$SRC" "$MNT/cpa"
t "rm -rf everything" rm -rf "$MNT/cpa" "$MNT/tar" "$MNT/vm.raw" "$MNT/vm.qcow2" "$MNT/sparse"
t "unmount" umount_blk
fsck_clean "after removing everything"

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
