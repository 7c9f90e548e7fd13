#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-mount-helper.sh - mount(8) finds csvfs's helpers for both type names:
# `mount -t csvfs`, `mount -t fuse.csvfs` (the type findmnt shows, and
# the one Pacemaker's Filesystem agent mounts with), with the options
# mount(8) may pass on (-v, -n, -s, -o), and fstab lines of either type.
# Each mount is checked with findmnt (type fuse.csvfs, the source) and
# unmounted with umount(8).
#
# The helpers are installed by the build's own install rule into a
# temporary DESTDIR; mount(8) only looks in /sbin, so the test runs in a
# private mount namespace (unshare -m) where the installed helpers are
# laid over /usr/sbin (an overlay with /usr/sbin below): nothing is
# installed on the machine, and the namespace, with every mount in it,
# is gone when the test ends.  Needs root, /dev/fuse, unshare and
# overlayfs; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
CSVFS=$top_builddir/csvfs/csvfs

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
for c in unshare findmnt mount umount make; do
	command -v $c >/dev/null || _notrun "$c missing"
done
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null
grep -qw overlay /proc/filesystems || _notrun "no overlayfs"

sbin_helpers() { ls -l /sbin/mount.csvfs /sbin/mount.fuse.csvfs 2>&1; }
SBIN_BEFORE=$(sbin_helpers)
W=$(mktemp -d /tmp/csvfs-mnthelper.XXXXXX)
trap 'rm -rf "$W"' EXIT
trap 'exit 99' INT TERM
mkdir -p "$W/be" "$W/mnt" "$W/inst"

# The helpers as `make install` lays them out.
make -s -C "$top_builddir/tools" install-exec DESTDIR="$W/inst" \
	>"$W/install.log" 2>&1 || { cat "$W/install.log"; echo "Bail out! make install failed"; exit 99; }
H=$(dirname "$(find "$W/inst" -name mount.csvfs | head -1)")
t "mount.csvfs installed" test -x "$H/mount.csvfs"
t "mount.fuse.csvfs installed next to it" test -x "$H/mount.fuse.csvfs"

# The checks, inside the private namespace: one "ok"/"not ok" line each.
cat >"$W/inner.sh" <<'EOS'
set -u
H=$1 BE=$2 MNT=$3 W=$4
PASS=0 FAIL=0
t() { local what=$1; shift; if "$@"; then echo "ok - $what"; else echo "not ok - $what"; fi; }
cleanup() {
	mountpoint -q "$MNT" && { umount "$MNT" || umount -l "$MNT"; }
	umount /usr/sbin 2>/dev/null
}
trap cleanup EXIT
mount -t overlay csvfs-helpers -o "ro,lowerdir=$H:/usr/sbin" /usr/sbin ||
	{ echo "Bail out! cannot lay the helpers over /usr/sbin"; exit 99; }
fstype() { findmnt -n -o FSTYPE --mountpoint "$MNT"; }
src() { findmnt -n -o SOURCE --mountpoint "$MNT"; }

# check HOW: the mount is there with type fuse.csvfs, then umount(8).
NSTART=0
check() {
	NSTART=$((NSTART + 1))
	t "$1: mounted" mountpoint -q "$MNT"
	t "$1: by csvfs's helper" test "$(wc -l <"$W/starts" 2>/dev/null)" = "$NSTART"
	t "$1: findmnt shows type fuse.csvfs ($(fstype))" test "$(fstype)" = fuse.csvfs
	t "$1: findmnt shows the source" test "$(src)" = "$BE"
	t "$1: a file written through it lands in the backend" \
		bash -c "echo '$1' >'$MNT/f' && grep -qx '$1' '$BE/f'"
	t "$1: umount" umount "$MNT"
	t "$1: unmounted" bash -c "! mountpoint -q '$MNT'"
}

mount -t fuse.csvfs -o lockd=none "$BE" "$MNT" 2>"$W/err" ||
	echo "# mount -t fuse.csvfs: $(cat "$W/err")"
check "mount -t fuse.csvfs"
mount -v -n -s -t fuse.csvfs -o _netdev,lockd=none,noatime "$BE" "$MNT" \
	>"$W/out" 2>&1 || echo "# mount -vns: $(cat "$W/out")"
check "mount -v -n -s -t fuse.csvfs -o _netdev,..."
mount -t csvfs -o lockd=none "$BE" "$MNT" 2>"$W/err" ||
	echo "# mount -t csvfs: $(cat "$W/err")"
check "mount -t csvfs"

for type in fuse.csvfs csvfs; do
	echo "$BE $MNT $type _netdev,noauto,lockd=none,x-systemd.requires=csvfs-lockd.service 0 0" >"$W/fstab"
	mount -T "$W/fstab" "$MNT" 2>"$W/err" || echo "# fstab: $(cat "$W/err")"
	check "fstab line of type $type"
done

t "a foreign type is refused by the helper" bash -c \
	"! '$H/mount.fuse.csvfs' '$BE' '$MNT' -t ext4 -o lockd=none 2>/dev/null && ! mountpoint -q '$MNT'"
EOS

# CSVFS_BIN: a wrapper that notes each start, so that a mount made by
# another helper (fuse3's mount.fuse, which would run any csvfs on PATH)
# does not pass for ours.
printf '#!/bin/sh\necho "$*" >>"%s"\nexec "%s" "$@"\n' "$W/starts" "$CSVFS" >"$W/csvfs-bin"
chmod +x "$W/csvfs-bin"
CSVFS_BIN=$W/csvfs-bin unshare -m --propagation private \
	bash "$W/inner.sh" "$H" "$W/be" "$W/mnt" "$W" >"$W/inner.out" 2>&1
rc=$?
cat "$W/inner.out"
PASS=$((PASS + $(grep -c '^ok' "$W/inner.out")))
FAIL=$((FAIL + $(grep -c '^not ok' "$W/inner.out")))
[ $rc = 0 ] || bad "the namespace's script exited $rc"
t "nothing left mounted outside the namespace" bash -c "! mountpoint -q '$W/mnt'"
t "/sbin's helpers as before the test" test "$(sbin_helpers)" = "$SBIN_BEFORE"

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
