#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-falloc.sh - large fallocates on a block mount are quick and
# leave a clean volume.  Each fallocate runs under a time limit: the
# engine once searched for ever for a free run as long as an extent
# (libext2fs's ext2fs_new_range with EXT2_NEWRANGE_MIN_LENGTH, when no
# such run was left and the volume's last blocks were in use), which a
# second large fallocate on a volume filling up met at once.
#   - 4 GiB volume: 1 GiB, then 2 GiB (no run of an extent's length
#     left at the end), then 2 GiB more refused with ENOSPC at once and
#     nothing of it kept; the space counted, the files read as zeroes
#     where they were never written and give back a pattern written
#     into them;
#   - the same volume fragmented (1 MiB files, every other one removed):
#     fallocate of what is free in pieces, then KEEP_SIZE;
#   - 1 TiB sparse volume: 1 GiB and 16 GiB (twice), times printed.
# e2fsck -fn clean after each volume.  Needs root and /dev/fuse.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-block-falloc
csvfs_need
command -v python3 >/dev/null || _notrun "python3 missing"
LIMIT=60 # seconds: every fallocate here takes well under one

fsck_clean() { # WHAT IMG
	if e2fsck -fn "$2" >fsck.out 2>&1; then
		ok "$1: e2fsck -fn clean"
	else
		sed 's/^/# /' fsck.out | head -20
		bad "$1: e2fsck -fn"
	fi
}

# falloc WHAT FILE LEN [ARGS]: fallocate within LIMIT, its time printed
falloc() {
	local what=$1 f=$2 len=$3 t0 t1 rc
	shift 3
	t0=$(date +%s.%N)
	timeout -s KILL $LIMIT fallocate "$@" -l "$len" "$f" 2>falloc.err
	rc=$?
	t1=$(date +%s.%N)
	echo "# fallocate $len ($what): $(awk "BEGIN{printf \"%.2f\", $t1 - $t0}") s, rc $rc"
	[ $rc = 0 ]
}

# blocks_of FILE: st_blocks * 512
bytes_of() { echo $(($(stat -c %b "$1") * 512)); }

# pattern FILE OFF: write 1 MiB of a pattern at OFF (O_DIRECT), read back
pat_py='
import mmap, os, sys
path, off = sys.argv[1], int(sys.argv[2])
m = mmap.mmap(-1, 1 << 20)
m.write(bytes((i * 13 + 7) % 251 for i in range(1 << 20)))
fd = os.open(path, os.O_RDWR | os.O_DIRECT)
os.pwritev(fd, [m], off)
r = mmap.mmap(-1, 1 << 20)
os.preadv(fd, [r], off)
z = mmap.mmap(-1, 1 << 20)
os.preadv(fd, [z], off + (8 << 20))
os.close(fd)
if r[:] != m[:]:
    sys.exit("pattern not read back")
if z[:] != bytes(1 << 20):
    sys.exit("not zeroes past the pattern")
'

lockd_start

# ---- 4 GiB: a volume filling up ----------------------------------
IMG=$WORK/small.img MNT=$WORK/small
truncate -s 4G "$IMG"
"$ADMIN" format "block:$IMG" --label falloc >format.log 2>&1 ||
	{ echo "Bail out! format: $(tail -1 format.log)"; exit 99; }
bmount "$IMG" "$MNT" ||
	{ echo "Bail out! mount: $(tail -3 "$MNT.log")"; exit 99; }
t "4 GiB volume: fallocate 1 GiB" falloc 1G "$MNT/a" 1G
t "4 GiB volume: fallocate 2 GiB more" falloc 2G "$MNT/b" 2G
t "1 GiB and 2 GiB counted in st_blocks" \
	test "$(bytes_of "$MNT/a")" -ge $((1 << 30)) -a \
	"$(bytes_of "$MNT/b")" -ge $((2 << 30))
free0=$(stat -f -c %f "$MNT")
if falloc "ENOSPC" "$MNT/c" 2G; then
	bad "fallocate 2 GiB past the free space: refused"
else
	t "fallocate 2 GiB past the free space: ENOSPC at once" \
		grep -q "No space left" falloc.err
fi
t "the refused fallocate kept nothing" \
	test "$(stat -f -c %f "$MNT")" = "$free0" -a \
	"$(stat -c %b "$MNT/c")" = 0
t "pattern into the fallocated file, zeroes elsewhere" \
	python3 -c "$pat_py" "$MNT/b" $((1536 << 20))
rm -f "$MNT/a" "$MNT/b" "$MNT/c"

# fragmented: 1 MiB files, every other one removed
for i in $(seq 0 899); do
	fallocate -l 1M "$MNT/s$i" || break
done
for i in $(seq 0 2 899); do rm -f "$MNT/s$i"; done
avail=$(($(stat -f -c '%a * %S' "$MNT") - (64 << 20)))
avail=$((avail / 1048576))M
t "fragmented volume: fallocate $avail" falloc frag "$MNT/frag" $avail
t "fragmented volume: KEEP_SIZE 32M more" \
	falloc keep "$MNT/frag" 32M -n -o $((${avail%M} << 20))
t "fragmented volume: size kept" \
	test "$(stat -c %s "$MNT/frag")" = $((${avail%M} << 20))
t "fragmented volume: pattern, zeroes" \
	python3 -c "$pat_py" "$MNT/frag" $((64 << 20))
bumount "$MNT" || bad "unmount"
fsck_clean "4 GiB volume" "$IMG"
extents=$(debugfs -R "ex /frag" "$IMG" 2>/dev/null | grep -c '^ *[0-9]*/ *[0-9]')
echo "# the fragmented file has $extents extents"
t "fragmented volume: the file in many pieces" test "$extents" -gt 100
rm -f "$IMG"

# ---- 1 TiB sparse ----------------------------------------------------
IMG=$WORK/big.img MNT=$WORK/big
truncate -s 1T "$IMG"
"$ADMIN" format "block:$IMG" --label falloc >format.log 2>&1 ||
	{ echo "Bail out! format: $(tail -1 format.log)"; exit 99; }
bmount "$IMG" "$MNT" ||
	{ echo "Bail out! mount: $(tail -3 "$MNT.log")"; exit 99; }
t "1 TiB volume: fallocate 1 GiB" falloc 1G "$MNT/a" 1G
t "1 TiB volume: fallocate 16 GiB" falloc 16G "$MNT/b" 16G
t "1 TiB volume: fallocate 16 GiB again" falloc 16G "$MNT/c" 16G
t "1 TiB volume: 16 GiB counted" \
	test "$(bytes_of "$MNT/c")" -ge $((16 << 30))
t "1 TiB volume: pattern near the end, zeroes" \
	python3 -c "$pat_py" "$MNT/c" $(((16 << 30) - (16 << 20)))
bumount "$MNT" || bad "unmount"
fsck_clean "1 TiB volume" "$IMG"

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
