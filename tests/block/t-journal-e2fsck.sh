#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-journal-e2fsck.sh - the journal csvfs writes (csvfs/backends/block)
# is ext4's: e2fsprogs and the kernel read and replay it.  On 64 MiB
# images made by mke2fs -t ext4 with its defaults (1 KiB blocks at this
# size) and with 4 KiB blocks, jtool makes 60 metadata operations
# through libext2fs, each one journal transaction, and "crashes" before
# writing anything home.  Then:
#   - the superblock says needs_recovery, the journal csum v3 / 64bit;
#   - debugfs logdump walks every transaction we wrote;
#   - e2fsck -fy replays it, the tree is the expected one, e2fsck -fn is
#     clean afterwards;
#   - our replay gives the same image as e2fsck -E journal_only byte for
#     byte, but for the superblock's write time, lifetime writes and
#     checksum; its tree is the expected one and e2fsck -fn is clean;
#   - with a loop device (root), a read-only kernel mount replays it and
#     shows the same tree;
#   - the other way round: the kernel journals some work on a fresh
#     image (mount, write, delete, unmount), and our codec decodes every
#     block of its log, each tag checksum matching its block.
# Needs e2fsprogs and jtool (libext2fs-dev at build time); exits 77
# with the reason otherwise.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-journal-e2fsck
N=60

fsck_n() { e2fsck -fn "$1" >/dev/null 2>&1; }

kernel_mount() {	# IMG EXPECT: kernel replay and tree
	local img=$1
	[ "$(id -u)" = 0 ] || { echo "# no kernel mount: not root"; return 0; }
	loop_attach "$img" || { echo "# no kernel mount: no loop device"; return 0; }
	mkdir -p mnt
	if ! mount -t ext4 -o ro "$LOOP" mnt 2>mount.err; then
		echo "# no kernel mount: $(cat mount.err)"
		loop_detach "$LOOP"
		return 0
	fi
	mount_reg "$PWD/mnt"
	(cd mnt && find . -mindepth 1 ! -path './lost+found*' | sed 's/^\.//' |
		sort) >kernel.paths
	umount_reg "$PWD/mnt" && loop_detach "$LOOP"
	t "kernel mount: the expected names" \
		cmp -s kernel.paths <(awk '{print $1}' "$2" | sort)
	"$JTOOL" tree "$img" >kernel.tree
	t "kernel replay: the expected tree" cmp -s kernel.tree "$2"
	t "kernel replay: e2fsck -fn clean" fsck_n "$img"
}

one_size() {	# LABEL MKE2FS-ARGS...
	local label=$1 n rc
	shift
	mkimg a.img "$@" || { bad "$label: mke2fs"; return; }
	"$JTOOL" populate a.img 7 $N expect >populate.out 2>&1 ||
		{ bad "$label: populate: $(cat populate.out)"; return; }
	ok "$label: $(cat populate.out)"
	dumpe2fs -h a.img 2>/dev/null >dumpe2fs.out
	t "$label: needs_recovery set" grep -q '^Filesystem features:.*needs_recovery' dumpe2fs.out
	t "$label: journal csum v3, 64bit, revoke" grep -q \
		'^Journal features:.*journal_incompat_revoke journal_64bit journal_checksum_v3' dumpe2fs.out

	debugfs -R logdump a.img >logdump.out 2>&1
	n=$(grep -c 'type 2 (commit block)' logdump.out)
	t "$label: logdump shows $N commit blocks (saw $n)" [ "$n" = $N ]
	t "$label: logdump shows revoke blocks" grep -q 'type 5 (revoke table)' logdump.out

	cp a.img b.img
	e2fsck -fy b.img >fsck-y.out 2>&1
	rc=$?
	t "$label: e2fsck -fy recovers the journal" \
		grep -q 'recovering journal' fsck-y.out
	t "$label: e2fsck -fy finds nothing to fix (exit status $rc)" [ $rc = 0 ]
	t "$label: e2fsck -fn clean after e2fsck's replay" fsck_n b.img
	"$JTOOL" tree b.img >b.tree
	t "$label: e2fsck's replay has the expected tree" cmp -s b.tree expect

	cp a.img c.img
	cp a.img e.img
	"$JTOOL" replay c.img >replay.out 2>&1
	t "$label: our replay: $(cat replay.out)" grep -q "replayed $N transactions" replay.out
	t "$label: our replay: e2fsck -fn clean" fsck_n c.img
	"$JTOOL" tree c.img >c.tree
	t "$label: our replay has the expected tree" cmp -s c.tree expect
	e2fsck -fy -E journal_only e.img >/dev/null 2>&1
	t "$label: our replay = e2fsck -E journal_only, byte for byte (superblock times aside)" \
		cmp_but_super c.img e.img

	cp a.img k.img
	kernel_mount k.img expect
}

# The kernel writes, our codec reads.
kernel_write() {
	local d i
	[ "$(id -u)" = 0 ] || { echo "# no kernel journal: not root"; return 0; }
	mkimg kw.img -b 4096 || { bad "kernel journal: mke2fs"; return; }
	loop_attach kw.img || { echo "# no kernel journal: no loop device"; return 0; }
	mkdir -p mnt
	if ! mount -t ext4 "$LOOP" mnt 2>mount.err; then
		echo "# no kernel journal: $(cat mount.err)"
		loop_detach "$LOOP"
		return 0
	fi
	mount_reg "$PWD/mnt"
	for d in 1 2 3 4; do
		mkdir mnt/d$d
		for i in $(seq 1 200); do echo $i >mnt/d$d/file-with-a-long-name-$i; done
		sync mnt/d$d
	done
	rm -rf mnt/d2 mnt/d3
	umount_reg "$PWD/mnt" && loop_detach "$LOOP"
	"$JTOOL" scan kw.img >scan.out 2>&1
	t "kernel journal, our codec: $(cat scan.out)" \
		grep -q ' [1-9][0-9]* descriptors, .* [1-9][0-9]* commit blocks, 0 bad' scan.out
}

one_size "default (1 KiB blocks)"
one_size "4 KiB blocks" -b 4096
kernel_write
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
