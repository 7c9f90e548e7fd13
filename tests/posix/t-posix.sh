#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-posix.sh - POSIX behaviour of a real csvfs mount over a temporary
# backend directory, with a real standalone csvfs-lockd (or, as
# t-posix-local.sh, with lockd=none).  Runs posix_check (errno-precise
# checks), archive round trips, qemu-img/qemu-io, and the start-up
# failures (bad options, missing backend, lockd unreachable), which must
# exit cleanly and leave no mount behind.  Needs root and /dev/fuse;
# exits 77 with the reason otherwise.
#
# Environment: top_builddir (set by make check), CSVFS_POSIX_MODE
# (lockd | local), CSVFS_POSIX_OPTS (more -o options for the main mount).

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
MODE=${CSVFS_POSIX_MODE:-lockd}
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
CHECK=$top_builddir/tests/posix/posix_check
HELPER=${top_srcdir:-$top_builddir}/tools/mount.csvfs

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
[ -x "$CHECK" ] || _notrun "posix_check not built"

W=$(mktemp -d /tmp/csvfs-posix.XXXXXX)
BE=$W/backend MNT=$W/mnt SOCK=$W/lockd.sock
mkdir -p "$BE" "$MNT"
LOCKD_PID=

cleanup() {
	mountpoint -q "$MNT" && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null && \
		wait "$LOCKD_PID" 2>/dev/null
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

if [ "$MODE" = lockd ]; then
	[ -x "$LOCKD" ] || _notrun "csvfs-lockd not built ($LOCKD)"
	"$LOCKD" -f --standalone --socket "$SOCK" --state-dir "$W/state" \
		>"$W/lockd.log" 2>&1 &
	LOCKD_PID=$!
	for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
	[ -S "$SOCK" ] || _notrun "csvfs-lockd --standalone did not start: $(tail -1 "$W/lockd.log")"
	LOCKOPT="lockd=$SOCK"
else
	LOCKOPT="lockd=none"
fi

# ---- start-up failures: clean error, right status, no mount -------------
expect_fail() { # status what args...
	local want=$1 what=$2 rc; shift 2
	"$CSVFS" "$@" >"$W/err" 2>&1; rc=$?
	if [ $rc = "$want" ] && ! mountpoint -q "$MNT" && [ -s "$W/err" ]; then
		ok "$what: exit $rc: $(head -1 "$W/err")"
	else
		bad "$what: exit $rc (want $want), mounted=$(mountpoint -q "$MNT" && echo yes || echo no)"
		mountpoint -q "$MNT" && fusermount3 -u "$MNT"
	fi
}
expect_fail 2 "unknown option" "$BE" "$MNT" -o "$LOCKOPT,bogus_opt"
expect_fail 2 "malformed cache mode" "$BE" "$MNT" -o "$LOCKOPT,cache=sometimes"
expect_fail 2 "malformed attr_timeout" "$BE" "$MNT" -o "$LOCKOPT,attr_timeout=abc"
expect_fail 2 "relative source" relative/dir "$MNT" -o "$LOCKOPT"
expect_fail 2 "missing mount point argument" "$BE"
expect_fail 1 "missing backend" "$W/nonexistent" "$MNT" -o "$LOCKOPT"
expect_fail 1 "nfs server unreachable" "nfs://127.0.0.1:1/export?timeout=2" "$MNT" -o "$LOCKOPT"
expect_fail 1 "missing mount point" "$BE" "$W/nomnt" -o "$LOCKOPT"
expect_fail 1 "lockd unreachable" "$BE" "$MNT" -o "lockd=$W/no-such.sock"
[ "$MODE" = lockd ] && expect_fail 1 "wrong node name" "$BE" "$MNT" \
	-o "$LOCKOPT,node=not-this-node"

# ---- mount --------------------------------------------------------------
if ! "$CSVFS" "dir:$BE" "$MNT" -o "$LOCKOPT,allow_other,label=posix${CSVFS_POSIX_OPTS:+,$CSVFS_POSIX_OPTS}"; then
	echo "Bail out! mount failed"; exit 99
fi
t "mounted" mountpoint -q "$MNT"
case ",${CSVFS_POSIX_OPTS:-}," in
*,uring=on,*)
	# one ring per possible CPU besides aio's: requests over io_uring
	# (the rings come with the INIT reply: a request waits for it)
	pid=$(pgrep -f "dir:$BE $MNT" | head -1)
	for _ in $(seq 50); do
		stat "$MNT" >/dev/null
		rings=$(ls -l "/proc/${pid:-0}/fd" 2>/dev/null | grep -c 'io_uring')
		[ "$rings" -gt "$(getconf _NPROCESSORS_CONF)" ] && break
		sleep 0.1
	done
	t "uring=on: csvfs holds a ring per CPU and aio's ($rings)" \
		test "$rings" -gt "$(getconf _NPROCESSORS_CONF)" ;;
esac
t "volume record created" grep -q '^label=posix$' "$BE/.csvfs/volume"
t ".csvfs not listed at the root" bash -c "! ls -a '$MNT' | grep -qx .csvfs"
uuid=$(sed -n 's/^uuid=//p' "$BE/.csvfs/volume")
t "user.csvfs.volume matches the record" \
	test "$(getfattr --only-values -n user.csvfs.volume "$MNT" 2>/dev/null)" = "$uuid"

# ---- errno-precise checks ------------------------------------------------
"$CHECK" "$MNT" posix >"$W/check.out" 2>&1; rc=$?
grep -v '^ok' "$W/check.out"
n=$(grep -c '^ok' "$W/check.out"); nf=$(grep -c '^not ok' "$W/check.out")
PASS=$((PASS + n)); FAIL=$((FAIL + nf))
[ $rc = 0 ] || [ "$nf" -gt 0 ] || { bad "posix_check exit $rc"; }
echo "# posix_check: $n passed, $nf failed"

# ---- ownership is visible -----------------------------------------------
if [ "$MODE" = lockd ]; then
	exec 7>"$MNT/owned"; echo x >&7
	owner=$(getfattr --only-values -n user.csvfs.owner "$MNT/owned" 2>/dev/null)
	epoch=$(getfattr --only-values -n user.csvfs.epoch "$MNT/owned" 2>/dev/null)
	t "written file has an owner ($owner) and epoch ($epoch)" \
		test -n "$owner" -a "${epoch:-0}" != 0
	exec 7>&-
fi

# ---- archives -------------------------------------------------------------
SRC=$W/src
mkdir -p "$SRC/sub/deeper"
head -c 300000 /dev/urandom >"$SRC/sub/data"
echo text >"$SRC/t"; ln "$SRC/t" "$SRC/t2"; ln -s t "$SRC/sl"
chmod 0751 "$SRC/sub"; touch -d '2001-02-03 04:05:06' "$SRC/t"
setfattr -n user.k -v v "$SRC/t" 2>/dev/null
t "cp -a into the mount" cp -a "$SRC" "$MNT/cpa"
t "cp -a content identical" diff -r "$SRC" "$MNT/cpa"
t "cp -a keeps hard links" test "$(stat -c %i "$MNT/cpa/t")" = "$(stat -c %i "$MNT/cpa/t2")"
t "cp -a keeps mtime" test "$(stat -c %Y "$MNT/cpa/t")" = "$(stat -c %Y "$SRC/t")"
t "cp -a keeps mode" test "$(stat -c %a "$MNT/cpa/sub")" = 751
t "cp -a keeps xattrs" test "$(getfattr --only-values -n user.k "$MNT/cpa/t" 2>/dev/null)" = v
mkdir -p "$MNT/tar" "$W/back"
t "tar round trip" bash -c "tar -C '$SRC' --xattrs -cf - . | tar -C '$MNT/tar' --xattrs -xf - && tar -C '$MNT/tar' -cf - . | tar -C '$W/back' -xf - && diff -r '$SRC' '$W/back'"
if command -v rsync >/dev/null; then
	t "rsync -a round trip" bash -c "rsync -aHX '$SRC/' '$MNT/rs/' && diff -r '$SRC' '$MNT/rs'"
else
	echo "# rsync not installed: skipped"
fi

# ---- qemu ------------------------------------------------------------------
if command -v qemu-img >/dev/null && command -v qemu-io >/dev/null; then
	t "qemu-img create qcow2" qemu-img create -q -f qcow2 "$MNT/vm.qcow2" 64M
	t "qemu-img check" qemu-img check -q "$MNT/vm.qcow2"
	t "qemu-io write 1M, read back" bash -c "qemu-io -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' -c 'read -v 0 16' '$MNT/vm.qcow2' | grep -q 'ab ab ab'"
	t "qemu-img check after I/O" qemu-img check -q "$MNT/vm.qcow2"
	t "raw image with cache=none" bash -c "qemu-img create -q -f raw '$MNT/vm.raw' 16M && qemu-io -t none -f raw -c 'write 0 1M' -c 'flush' '$MNT/vm.raw' >/dev/null"
	# QEMU's image locking (OFD locks) refuses a second writer
	qemu-io -f qcow2 -c 'sleep 3000' "$MNT/vm.qcow2" >/dev/null 2>&1 &
	QPID=$!; sleep 1
	if qemu-io -f qcow2 -c 'write 0 4k' "$MNT/vm.qcow2" >"$W/q2" 2>&1; then
		bad "second qemu-io writer refused by image locking"
	else
		grep -q -i lock "$W/q2" && ok "second qemu-io writer refused by image locking" || bad "second writer failed without a lock message: $(head -1 "$W/q2")"
	fi
	wait $QPID
	t "lock free after the first qemu-io exits" bash -c "qemu-io -f qcow2 -c 'write 0 4k' '$MNT/vm.qcow2' >/dev/null"
else
	echo "# qemu-img/qemu-io not installed: skipped"
fi

# ---- a backend that disappears under a mount: errors, never a hang -------
BE2=$W/be2; MNT2=$W/mnt2
mkdir -p "$BE2" "$MNT2"
if "$CSVFS" "$BE2" "$MNT2" -o "$LOCKOPT"; then
	echo data >"$MNT2/f"
	exec 8<"$MNT2/f"
	rm -rf "$BE2"
	t "lookup after the backend vanished fails (ENOENT), no hang" \
		bash -c "! timeout 10 stat '$MNT2/g' 2>'$W/gone.err' && grep -q 'No such file' '$W/gone.err'"
	t "listing after the backend vanished is empty, no hang" \
		bash -c "test -z \"\$(timeout 10 ls -A '$MNT2')\""
	# the kernel may answer from its attribute cache, csvfs from the
	# unlinked file, or neither (ENOENT): any answer, but an answer
	t "stat of a file seen before answers, no hang" \
		bash -c "timeout 10 stat '$MNT2/f' >/dev/null 2>&1; [ \$? != 124 ]"
	t "create after the backend vanished fails, no hang" \
		bash -c "! timeout 10 bash -c 'echo x >\"$MNT2/new\"' 2>/dev/null"
	t "an open handle still reads its file" bash -c "timeout 10 cat <&8 | grep -qx data"
	exec 8<&-
	t "unmount after the backend vanished" timeout 10 fusermount3 -u "$MNT2"
else
	bad "mount of a second backend"
fi

# ---- mount helper and unmount ----------------------------------------------
t "unmount with fusermount3 -u" fusermount3 -u "$MNT"
t "no longer mounted" bash -c "! mountpoint -q '$MNT'"
if [ -x "$HELPER" ]; then
	t "mount.csvfs with mount(8) options" env CSVFS_BIN="$CSVFS" "$HELPER" "$BE" "$MNT" -o "_netdev,defaults,noauto,$LOCKOPT,nofail,x-systemd.requires=foo"
	t "mounted by the helper" mountpoint -q "$MNT"
	t "same volume after remount" test "$(getfattr --only-values -n user.csvfs.volume "$MNT" 2>/dev/null)" = "$uuid"
	t "umount" umount "$MNT"
	t "helper rejects unknown options" bash -c "! CSVFS_BIN='$CSVFS' '$HELPER' '$BE' '$MNT' -o '$LOCKOPT,bogus' 2>/dev/null && ! mountpoint -q '$MNT'"
fi

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
