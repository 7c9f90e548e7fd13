#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-meta-random.sh - the block metadata engine against a model:
#   - mtool random: thousands of random operations (create, mkdir,
#     symlink, unlink, rmdir, rename over names, hard links, writes
#     through the LUN at mapped places, truncate, punch, commits) on a
#     model of the tree with every file's bytes; at the end the tree read
#     by libext2fs alone must be the model's, e2fsck -fn clean, and, with
#     a loop device (root), a read-only kernel mount shows the same names,
#     sizes and bytes (under flock /tmp/csvfs-heavy.lock);
#   - mtool crash: rounds of a child running random operations SIGKILLed
#     after a random time; each round reopens the volume (journal replay,
#     orphans), checks e2fsck -fn, and the tree must be the model's after
#     the last committed operation or a later one that was started, never
#     a part of one.
#   CV_SEED seed (default random, printed); CV_OPS (3000); CV_ROUNDS (25)
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-meta-random
MTOOL=$top_builddir/tests/block/mtool
[ -x "$MTOOL" ] || _notrun "mtool not built"
seed=${CV_SEED:-$RANDOM}
echo "# seed $seed (CV_SEED=$seed to run it again)"

fsck_n() { e2fsck -fn "$1" >fsck.out 2>&1 || { cat fsck.out; return 1; }; }

kernel_tree() {	# IMG: names, types, sizes, md5 of files, as the kernel sees them
	(cd mnt && find . -mindepth 1 ! -path './lost+found*' -printf '%P %y %s\n' |
		sort) >kernel.list
	(cd mnt && find . -mindepth 1 -type f ! -path './lost+found*' -printf '%P\n' |
		sort | while read -r f; do echo "$f $(md5sum <"$f" | cut -c1-32)"; done) \
		>kernel.md5
}

kernel_check() {	# IMG
	[ "$(id -u)" = 0 ] || { echo "# no kernel mount: not root"; return 0; }
	loop_attach "$1" || { echo "# no kernel mount: no loop device"; return 0; }
	mkdir -p mnt
	if ! mount -t ext4 -o ro "$LOOP" mnt 2>mount.err; then
		echo "# no kernel mount: $(cat mount.err)"
		loop_detach "$LOOP"
		return 0
	fi
	mount_reg "$PWD/mnt"
	kernel_tree
	umount_reg "$PWD/mnt" && loop_detach "$LOOP"
	awk '{ t = $2 == "f" ? "f" : $2; if ($2 == "f") print substr($1, 2), "f", $3;
	       else if ($2 == "l") print substr($1, 2), "l", length($3);
	       else print substr($1, 2), "d" }' expect.tree | sort >expect.list
	sed -i 's/ d [0-9]*$/ d/' kernel.list
	t "kernel mount: the model's names, types and sizes" \
		cmp -s kernel.list expect.list
	t "kernel mount: every file's bytes as debugfs reads them" \
		cmp -s kernel.md5 <(while read -r f _; do
			echo "$f $(debugfs -R "cat /$f" r.img 2>/dev/null | md5sum | cut -c1-32)"
		done <kernel.md5)
}

truncate -s 512M r.img
t "format" "$MTOOL" format r.img
if "$MTOOL" random r.img "$seed" "${CV_OPS:-3000}" expect.tree >random.out 2>&1; then
	ok "random: $(tail -1 random.out)"
else
	tail -20 random.out; bad "random run"
fi
t "random: e2fsck -fn clean" fsck_n r.img
"$MTOOL" tree r.img >got.tree
t "random: libext2fs reads the model's tree" cmp -s got.tree expect.tree
# loop devices and kernel mounts only under the machine's heavy lock
exec 9>>/tmp/csvfs-heavy.lock
if flock -w "${CV_LOCK_WAIT:-120}" 9; then
	kernel_check r.img
	flock -u 9
else
	echo "# no kernel mount: /tmp/csvfs-heavy.lock busy for ${CV_LOCK_WAIT:-120} s"
fi
exec 9>&-

truncate -s 512M c.img
"$MTOOL" format c.img
if "$MTOOL" crash c.img "$seed" "${CV_ROUNDS:-25}" >crash.out 2>&1; then
	ok "crash rounds: $(grep -c 'tree is the model' crash.out) rounds replayed to a committed state, e2fsck clean"
else
	grep -v '^ok' crash.out | tail -20; bad "crash rounds"
fi
t "crash: e2fsck -fn clean at the end" fsck_n c.img
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
