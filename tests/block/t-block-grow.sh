#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-grow.sh - a size grow that is not the owner's writes (truncate
# up, fallocate) turns the unwritten blocks past the old end of file into
# holes of the map; the node's cached map must be recalled, or its next
# write there goes to the LUN without an allocation and is lost when a
# later allocation or ZERO_RANGE zeroes and converts those blocks.  On one
# open file of a block mount: fallocate block 0 (its granule allocated,
# the rest unwritten past the end), write it (the map fetched on that
# miss caches the rest as allocated), grow the size
# (ftruncate, or fallocate without KEEP_SIZE), write a pattern inside the
# new size, fallocate ZERO_RANGE|KEEP_SIZE elsewhere in the granule, and
# the pattern must read back through the mount and be in the image
# (debugfs, on a copy whose journal e2fsck replayed).  e2fsck -fn of the
# image clean at the end.  Needs root and /dev/fuse; exits 77 otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
ADMIN=$top_builddir/tools/csvfs-admin
PATH=$PATH:/sbin:/usr/sbin

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v python3 >/dev/null || _notrun "python3 missing"
for c in e2fsck debugfs; do
	command -v $c >/dev/null || _notrun "$c missing (e2fsprogs)"
done
for b in "$CSVFS" "$LOCKD" "$ADMIN"; do
	[ -x "$b" ] || _notrun "$b not built"
done

W=$(mktemp -d /tmp/csvfs-blkgrow.XXXXXX)
IMG=$W/lun.img MNT=$W/mnt SOCK=$W/lockd.sock
mkdir -p "$MNT"
LOCKD_PID= CSVFS_PID=

cleanup() {
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$CSVFS_PID" ] && wait "$CSVFS_PID" 2>/dev/null
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null &&
		wait "$LOCKD_PID" 2>/dev/null
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

truncate -s 256M "$IMG"
"$ADMIN" format "block:$IMG" --label grow >"$W/format.log" 2>&1 ||
	{ echo "Bail out! format: $(tail -1 "$W/format.log")"; exit 99; }
"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
	>"$W/lockd.log" 2>&1 &
LOCKD_PID=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || _notrun "csvfs-lockd did not start"
"$CSVFS" "block:$IMG" "$MNT" -f -o "lockd=$SOCK" >"$W/csvfs.log" 2>&1 &
CSVFS_PID=$!
for _ in $(seq 200); do
	mountpoint -q "$MNT" && break
	kill -0 "$CSVFS_PID" 2>/dev/null || break
	sleep 0.05
done
mountpoint -q "$MNT" ||
	{ echo "Bail out! csvfs did not mount: $(tail -3 "$W/csvfs.log")"; exit 99; }

# seq FILE GROW: the sequence on FILE, GROW "truncate" or "falloc"; prints
# what is wrong, exits 1 then.
seq_py='
import ctypes, os, sys
ZERO, KEEP = 0x10, 0x01
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long,
                           ctypes.c_long]
def falloc(fd, mode, off, n):
    if libc.fallocate(fd, mode, off, n):
        e = ctypes.get_errno()
        sys.exit("fallocate 0x%x: %s" % (mode, os.strerror(e)))
path, grow = sys.argv[1], sys.argv[2]
pat = bytes((i * 7 + 1) % 251 + 1 for i in range(8192))
fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
falloc(fd, 0, 0, 4096)
os.pwrite(fd, b"A" * 4096, 0)
if grow == "truncate":
    os.ftruncate(fd, 256 << 10)
else:
    falloc(fd, 0, 252 << 10, 4 << 10)
os.pwrite(fd, pat, 128 << 10)
falloc(fd, ZERO | KEEP, 16 << 10, 4 << 10)
bad = []
if os.pread(fd, 8192, 128 << 10) != pat:
    bad.append("the pattern at 128 KiB")
if os.pread(fd, 4096, 0) != b"A" * 4096:
    bad.append("block 0")
if os.pread(fd, 4096, 16 << 10) != bytes(4096):
    bad.append("the zeroed range")
if os.fstat(fd).st_size != 256 << 10:
    bad.append("the size %d" % os.fstat(fd).st_size)
os.close(fd)
if bad:
    sys.exit("wrong: " + ", ".join(bad))
open(path + ".want", "wb").write(pat)
'
for grow in truncate falloc; do
	F=$MNT/$grow
	t "grow by $grow, write inside, ZERO_RANGE|KEEP_SIZE: reads back" \
		python3 -c "$seq_py" "$F" "$grow"
done
fusermount3 -u "$MNT" && wait "$CSVFS_PID"
CSVFS_PID=

# the image itself, the journal replayed in a copy
cp --sparse=always "$IMG" "$W/peek.img" &&
	e2fsck -fy -E journal_only "$W/peek.img" >/dev/null 2>&1
for grow in truncate falloc; do
	debugfs -R "cat /$grow" "$W/peek.img" 2>/dev/null >"$W/$grow.out"
	debugfs -R "cat /$grow.want" "$W/peek.img" 2>/dev/null >"$W/$grow.want"
	t "grow by $grow: the pattern is on the LUN" bash -c \
		"cmp -s -i 131072:0 -n 8192 '$W/$grow.out' '$W/$grow.want'"
done
if e2fsck -fn "$IMG" >"$W/fsck.out" 2>&1; then
	ok "e2fsck -fn clean"
else
	sed 's/^/# /' "$W/fsck.out" | head -30
	bad "e2fsck -fn"
fi

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
