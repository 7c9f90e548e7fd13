#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-meta-ops.sh - the block volume's metadata engine (meta.h) operation
# by operation, on images made by cvb_format (mtool format):
#   - mtool ops: every call and its errors (ENOENT, EEXIST, ENOTEMPTY,
#     ENAMETOOLONG, EISDIR, ENOTDIR, EPERM, EINVAL ...), hard links,
#     symlinks, rename over files and dirs and RENAME_EXCHANGE, xattrs,
#     setattr, and data written through the LUN at the offsets map and
#     alloc give, with punch, truncate, fallocate and ZERO_RANGE at
#     granule edges; then e2fsck -fn, and debugfs reads every file's
#     bytes back (they must be what was written);
#   - an open file unlinked, then the engine SIGKILLed: the next open
#     replays the journal and frees the orphan;
#   - ENOSPC on a small volume allocates nothing; inode exhaustion;
#   - volumes csvfs cannot write are refused, the feature named.
# Every image ends with e2fsck -fn clean.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-meta-ops
MTOOL=$top_builddir/tests/block/mtool
[ -x "$MTOOL" ] || _notrun "mtool not built"

fsck_n() { e2fsck -fn "$1" >fsck.out 2>&1 || { cat fsck.out; return 1; }; }

truncate -s 256M a.img
t "format" "$MTOOL" format a.img
if "$MTOOL" ops a.img >ops.out 2>&1; then
	ok "ops: $(tail -1 ops.out)"
else
	grep -v '^ok' ops.out | head -40; bad "ops"
fi
t "ops: e2fsck -fn clean" fsck_n a.img
for f in expect-*; do
	n=${f#expect-}
	t "debugfs reads /$n as written through the LUN" \
		cmp -s <(debugfs -R "cat /$n" a.img 2>/dev/null) "$f"
done

truncate -s 64M o.img
"$MTOOL" format o.img
"$MTOOL" orphan o.img >orphan.out 2>&1 &
wait $! 2>/dev/null
ino=$(sed -n 's/^# orphan \([0-9]*\) left open.*/\1/p' orphan.out)
t "orphan: the engine died with a file open and unlinked" [ -n "$ino" ]
t "orphan: its checks before dying ($(grep -c '^ok' orphan.out))" \
	bash -c "! grep -q '^not ok' orphan.out"
t "orphan: needs_recovery left set" \
	grep -q needs_recovery <(dumpe2fs -h o.img 2>/dev/null)
cp o.img o-kernel.img
cp o.img o-mount.img
if "$MTOOL" check-orphan o.img "${ino:-0}" >corphan.out 2>&1; then
	ok "orphan: reopen replays and frees it"
else
	cat corphan.out; bad "orphan: reopen replays and frees it"
fi
t "orphan: e2fsck -fn clean" fsck_n o.img
e2fsck -fy o-kernel.img >/dev/null 2>&1
t "orphan: e2fsck's own replay and orphan processing agree (clean after)" \
	fsck_n o-kernel.img

# the kernel replays the engine's journal and frees the orphan too
kernel_replay() {
	[ "$(id -u)" = 0 ] || { echo "# no kernel mount: not root"; return 0; }
	loop_attach o-mount.img || { echo "# no kernel mount: no loop device"; return 0; }
	mkdir -p mnt
	if ! mount -t ext4 -o ro "$LOOP" mnt 2>mount.err; then
		echo "# no kernel mount: $(cat mount.err)"
		loop_detach "$LOOP"
		return 0
	fi
	mount_reg "$PWD/mnt"
	t "kernel replay of the engine's journal: the names our replay gives" \
		cmp -s <(cd mnt && find . -mindepth 1 ! -path './lost+found*' | sort) \
		<("$MTOOL" tree o.img | awk '{print "." $1}' | sort)
	umount_reg "$PWD/mnt" && loop_detach "$LOOP"
	t "kernel replay and orphan cleanup: e2fsck -fn clean" fsck_n o-mount.img
}
exec 9>>/tmp/csvfs-heavy.lock
if flock -w "${CV_LOCK_WAIT:-120}" 9; then
	kernel_replay
	flock -u 9
else
	echo "# no kernel mount: /tmp/csvfs-heavy.lock busy for ${CV_LOCK_WAIT:-120} s"
fi
exec 9>&-

truncate -s 64M e.img
"$MTOOL" format e.img
if "$MTOOL" enospc e.img >enospc.out 2>&1; then
	ok "enospc: $(grep -c '^ok' enospc.out) checks"
else
	grep -v '^ok' enospc.out; bad "enospc"
fi
t "enospc: e2fsck -fn clean" fsck_n e.img

refuse() {	# WHAT MKE2FS-ARGS: open must fail naming WHAT
	local what=$1
	shift
	rm -f r.img && truncate -s 64M r.img &&
		mke2fs -q -F -t ext4 -b 4096 "$@" r.img >/dev/null 2>&1 ||
		{ echo "# mke2fs $* failed: skipped"; return; }
	"$MTOOL" probe r.img >probe.out 2>&1
	t "refused: $what ($(cat probe.out))" grep -q "$what" probe.out
}
refuse inline_data -O inline_data
refuse bigalloc -O bigalloc
refuse quota -O quota
refuse orphan_file -O orphan_file
refuse "no internal journal" -O ^has_journal
truncate -s 16M z.img
"$MTOOL" probe z.img >probe.out 2>&1
t "refused: a volume with no file system ($(cat probe.out))" \
	grep -q "not a formatted block volume" probe.out
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
