#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-posix-nfs.sh - POSIX behaviour of a csvfs mount on the nfs backend:
# a private nfs-ganesha (tests/nfs/ganesha.sh) exports a temporary
# directory on loopback, csvfs mounts nfs://127.0.0.1/DIR?version=N with a
# standalone csvfs-lockd, and posix_check runs with its "nfs" profile
# (the documented NFS differences; everything else as for dir).  N is
# CV_NFS_VERSION, 3 by default (t-posix-nfs4.sh runs this with 4).  Also:
# the volume record lands on the export, st_ino is the server's file id,
# archives and qemu images round-trip, an unreachable server fails the
# mount cleanly.  Needs root and /dev/fuse; exits 77 with the reason
# otherwise (also when ganesha cannot start here).

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
srcdir=$(cd "$(dirname "$0")" && pwd)
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
CHECK=$top_builddir/tests/posix/posix_check

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
[ -x "$CSVFS" ] && [ -x "$CHECK" ] && [ -x "$LOCKD" ] || _notrun "not built"
GANESHA_NFS_VERSION=${CV_NFS_VERSION:-3}
case $GANESHA_NFS_VERSION in 3 | 4) ;; *) echo "Bail out! CV_NFS_VERSION must be 3 or 4"; exit 99 ;; esac
. "$srcdir/ganesha.sh"
echo "# NFSv$GANESHA_NFS_VERSION"

W=$(mktemp -d /tmp/csvfs-nfsposix.XXXXXX)
EXP=$W/export MNT=$W/mnt SOCK=$W/lockd.sock
mkdir -p "$EXP" "$MNT"
LOCKD_PID=

cleanup() {
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null && wait "$LOCKD_PID" 2>/dev/null
	ganesha_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

ganesha_start "$W" "$EXP"
URL=$(ganesha_url "timeout=5")
"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
	>"$W/lockd.log" 2>&1 &
LOCKD_PID=$!
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || _notrun "csvfs-lockd did not start"

# ---- start-up failures ----------------------------------------------------
"$CSVFS" "nfs://127.0.0.1:1/nowhere?version=$GANESHA_NFS_VERSION&timeout=2" "$MNT" \
	-o "lockd=$SOCK" >"$W/err" 2>&1; rc=$?
t "unreachable server: exit 1, no mount ($(head -1 "$W/err"))" \
	test $rc = 1 -a -s "$W/err" -a ! -e "$MNT/.x" && ! mountpoint -q "$MNT"
"$CSVFS" "$(ganesha_url "conns=0")" "$MNT" -o "lockd=$SOCK" >"$W/err" 2>&1; rc=$?
t "bad conns= value: refused ($(head -1 "$W/err"))" test $rc != 0 -a -s "$W/err"
"$CSVFS" "nfs://127.0.0.1/no/such/export?version=$GANESHA_NFS_VERSION" "$MNT" -o "lockd=$SOCK" \
	>"$W/err" 2>&1; rc=$?
t "unknown export: exit 1 ($(head -1 "$W/err"))" test $rc = 1

# ---- mount ------------------------------------------------------------------
"$CSVFS" "$URL" "$MNT" -o "lockd=$SOCK,allow_other,label=nfsposix" ||
	{ echo "Bail out! mount failed"; exit 99; }
t "mounted" mountpoint -q "$MNT"
t "volume record on the export" grep -q '^label=nfsposix$' "$EXP/.csvfs/volume"
t ".csvfs not listed" bash -c "! ls -a '$MNT' | grep -qx .csvfs"
echo data >"$MNT/idf"
t "st_ino is the server's file id" \
	test "$(stat -c %i "$MNT/idf")" = "$(stat -c %i "$EXP/idf")"

PROFILE=nfs
[ "$GANESHA_NFS_VERSION" = 4 ] && PROFILE=nfs4
"$CHECK" "$MNT" posix $PROFILE >"$W/check.out" 2>&1; rc=$?
grep -v '^ok' "$W/check.out"
n=$(grep -c '^ok' "$W/check.out"); nf=$(grep -c '^not ok' "$W/check.out")
PASS=$((PASS + n)); FAIL=$((FAIL + nf))
[ $rc = 0 ] || [ "$nf" -gt 0 ] || bad "posix_check exit $rc"
echo "# posix_check ($PROFILE profile): $n passed, $nf failed"

# ---- archives, large files, qemu ----------------------------------------------
SRC=$W/src
mkdir -p "$SRC/sub/deeper"
head -c 3000000 /dev/urandom >"$SRC/sub/data"
echo text >"$SRC/t"; ln "$SRC/t" "$SRC/t2"; ln -s t "$SRC/sl"
chmod 0751 "$SRC/sub"; touch -d '2001-02-03 04:05:06' "$SRC/t"
t "cp -a into the mount" cp -a "$SRC" "$MNT/cpa"
t "cp -a content identical" diff -r "$SRC" "$MNT/cpa"
t "cp -a keeps hard links" test "$(stat -c %i "$MNT/cpa/t")" = "$(stat -c %i "$MNT/cpa/t2")"
t "cp -a keeps mtime" test "$(stat -c %Y "$MNT/cpa/t")" = "$(stat -c %Y "$SRC/t")"
t "same bytes on the export" cmp "$SRC/sub/data" "$EXP/cpa/sub/data"
mkdir -p "$MNT/tar" "$W/back"
t "tar round trip" bash -c "tar -C '$SRC' -cf - . | tar -C '$MNT/tar' -xf - && tar -C '$MNT/tar' -cf - . | tar -C '$W/back' -xf - && diff -r '$SRC' '$W/back'"
t "mv a directory, then use files below it" bash -c "mv '$MNT/tar' '$MNT/tar2' && cmp '$SRC/sub/data' '$MNT/tar2/sub/data'"
t "4 MiB direct write, read back" bash -c "dd if='$SRC/sub/data' of='$MNT/dio' bs=1M oflag=direct status=none && cmp -n 3000000 '$SRC/sub/data' '$MNT/dio'"
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
	t "qemu-img create qcow2" qemu-img create -q -f qcow2 "$MNT/vm.qcow2" 64M
	t "qemu-io write 1M, read back" bash -c "qemu-io -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' '$MNT/vm.qcow2' | grep -q 'read 1048576'"
	t "qemu-img check" qemu-img check -q "$MNT/vm.qcow2"
	t "raw preallocation=falloc falls back" qemu-img create -q -f raw -o preallocation=falloc "$MNT/vm.raw" 8M
	t "raw with cache=none" bash -c "qemu-io -t none -f raw -c 'write 0 1M' -c 'flush' '$MNT/vm.raw' >/dev/null"
else
	echo "# qemu-img/qemu-io not installed: skipped"
fi

t "unmount" fusermount3 -u "$MNT"
t "remount: same volume" bash -c "'$CSVFS' '$URL' '$MNT' -o 'lockd=$SOCK' && test \"\$(getfattr --only-values -n user.csvfs.volume '$MNT' 2>/dev/null)\" = \"\$(sed -n 's/^uuid=//p' '$EXP/.csvfs/volume')\""
fusermount3 -u "$MNT" 2>/dev/null

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
