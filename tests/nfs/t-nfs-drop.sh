#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-drop.sh - an NFS server that stops answering (packets dropped, not
# refused) under a csvfs nfs:// mount.
#
# nfs-ganesha runs in a private network namespace reached through a veth
# pair; csvfs mounts it with timeout=3.  During a writer that writes and
# fsyncs in a loop, an iptables DROP rule in the namespace swallows every
# packet to and from the server, so the client sees silence, as with a
# dead link or a hung server:
#  1. every operation (write, fsync, read, stat) fails with EIO within a
#     bound of a few timeouts (here 20 s for timeout=3), none hangs;
#  2. after the rule is removed the same mount works again, and the data
#     fsynced before the outage is intact.
#
# Needs root, /dev/fuse, ip, iptables, python3; exits 77 with the reason.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
srcdir=$(cd "$(dirname "$0")" && pwd)
CSVFS=$top_builddir/csvfs/csvfs

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
for c in ip iptables python3; do command -v $c >/dev/null || _notrun "$c missing"; done

NS=cvnfsdrop$$ VH=cvnd$$h VN=cvnd$$n
W=$(mktemp -d /tmp/csvfs-nfsdrop.XXXXXX)
EXP=$W/export MNT=$W/mnt
mkdir -p "$EXP" "$MNT"

cleanup() {
	grep -q " $MNT fuse" /proc/mounts && { fusermount3 -u "$MNT" || umount -l "$MNT"; }
	ganesha_stop
	ip link del "$VH" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
now() { date +%s; }

ip netns add "$NS" || _notrun "cannot create a network namespace"
ip link add "$VH" type veth peer name "$VN" || _notrun "no veth"
ip link set "$VN" netns "$NS"
ip addr add 10.231.77.1/30 dev "$VH"; ip link set "$VH" up
ip -n "$NS" addr add 10.231.77.2/30 dev "$VN"
ip -n "$NS" link set "$VN" up; ip -n "$NS" link set lo up
ip netns exec "$NS" iptables -L >/dev/null 2>&1 || _notrun "iptables unusable in a namespace"

export GANESHA_NS=$NS
. "$srcdir/ganesha.sh"
ganesha_start "$W" "$EXP" 10.231.77.2
"$CSVFS" -f "$(ganesha_url "timeout=3")" "$MNT" -o lockd=none \
	>"$W/csvfs.log" 2>&1 &
for _ in $(seq 50); do mountpoint -q "$MNT" && break; sleep 0.1; done
mountpoint -q "$MNT" || { echo "Bail out! mount failed"; cat "$W/csvfs.log"; exit 99; }

drop() { ip netns exec "$NS" iptables "$1" INPUT -i "$VN" -j DROP; }

t "1 MiB written and fsynced before the outage" \
	dd if=/dev/urandom of="$MNT/a.img" bs=64k count=16 conv=fsync status=none
cp "$MNT/a.img" "$W/a.ref"

# ---- 1: every operation fails with EIO within the bound -----------------------
t "DROP rule installed" drop -A
timed() { # WHAT CMD...: rc != 0, EIO, within 20 s
	local what=$1 t0 rc el; shift
	t0=$(now); timeout 60 "$@" >"$W/op.out" 2>&1; rc=$?; el=$(( $(now) - t0 ))
	t "$what fails (rc $rc) in ${el}s" test $rc != 0 -a $rc != 124 -a "$el" -le 20
	t "  ... with EIO ($(tail -1 "$W/op.out"))" grep -qi "Input/output error" "$W/op.out"
}
timed "write+fsync" python3 -c 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_DIRECT)
import mmap; b = mmap.mmap(-1, 65536); os.pwritev(fd, [b], 0); os.fsync(fd)' "$MNT/a.img"
timed "direct read" dd if="$MNT/a.img" of=/dev/null bs=64k count=1 iflag=direct
timed "stat of a new name" stat "$MNT/nothere"
t "mount still there" grep -q " $MNT fuse" /proc/mounts

# ---- 2: the server answers again ----------------------------------------------
t "DROP rule removed" drop -D
back=
for _ in $(seq 30); do
	dd if="$MNT/a.img" of=/dev/null bs=64k count=1 iflag=direct 2>/dev/null &&
		{ back=yes; break; }
	sleep 1
done
t "mount works again without remount" test -n "$back"
t "data fsynced before the outage intact" cmp "$W/a.ref" "$EXP/a.img"
# contexts still in their 1 s reconnect backoff may answer EIO once
wr=
for _ in $(seq 5); do
	dd if=/dev/zero of="$MNT/b.img" bs=64k count=4 conv=fsync status=none 2>/dev/null &&
		{ wr=yes; break; }
	sleep 1
done
t "new writes work (within 5 s)" test -n "$wr"
echo "# csvfs log:"; grep "nfs:" "$W/csvfs.log" | cut -c25- | sort | uniq -c | sort -rn | head -6 | sed 's/^/#   /'

t "unmount" fusermount3 -u "$MNT"
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
