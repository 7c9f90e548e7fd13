#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-kill.sh - the journal the engine writes through a csvfs mount,
# replayed three ways, gives one tree.  A metadata storm (mkdir, create
# with data, rename, unlink, symlink, hard link, setattr, fallocate) runs
# on a block mount; csvfs is SIGKILLed in the middle (its journal holds
# committed transactions not yet written home).  Three copies of the LUN:
#   - ours: csvfs mounts it (cvb_meta_open replays, frees orphans), the
#     tree is read through the mount;
#   - e2fsck -fy replays it (nothing else to fix: its exit status 0 or
#     1), the tree read through a read-only kernel loop mount;
#   - a read-only kernel loop mount replays it itself;
# the three trees (type, mode, size, link count, contents' md5, symlink
# target of every name) are equal, and e2fsck -fn is clean on the
# copies.  Needs root, /dev/fuse and a loop device; exits 77 otherwise.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-block-kill
csvfs_need
losetup -f >/dev/null 2>&1 || _notrun "no loop device"

IMG=$WORK/lun.img MNT=$WORK/mnt
truncate -s 512M "$IMG"
"$ADMIN" format "block:$IMG" --label kill >format.log 2>&1 ||
	{ echo "Bail out! format: $(tail -1 format.log)"; exit 99; }
lockd_start
bmount "$IMG" "$MNT" ||
	{ echo "Bail out! mount: $(tail -3 "$MNT.log")"; exit 99; }

# the storm: bounded (N rounds), in the background
storm() {
	local i d
	for i in $(seq 1 2000); do
		d=$MNT/d$((i % 13))
		mkdir -p "$d" || return
		head -c $((i * 37 % 9000)) /dev/urandom >"$d/f$i" || return
		case $((i % 7)) in
		0) mv "$d/f$i" "$MNT/d$(((i + 5) % 13))/m$i" ;;
		1) rm -f "$d/f$((i - 8))" ;;
		2) ln -s "f$i" "$d/s$i" ;;
		3) ln "$d/f$i" "$d/h$i" ;;
		4) chmod 0600 "$d/f$i"; truncate -s $((i * 11)) "$d/f$i" ;;
		5) fallocate -l 1M "$d/a$i" ;;
		6) rm -rf "$MNT/d$(((i + 3) % 13))/"f$((i - 20)) ;;
		esac
	done
}
storm 2>/dev/null &
SPID=$!
PIDS="$PIDS $SPID"
sleep 3
bkill "$MNT"
kill "$SPID" 2>/dev/null
wait "$SPID" 2>/dev/null
t "the LUN needs recovery after the SIGKILL" bash -c \
	"dumpe2fs -h '$IMG' 2>/dev/null | grep -q 'needs_recovery'"

ntx=$(debugfs -R logdump "$IMG" 2>/dev/null | grep -c 'Found expected sequence .*, type 2 (commit block)')
echo "# $ntx committed transactions in the log"
t "the log holds committed transactions to replay" test "$ntx" -gt 0
cp --sparse=always "$IMG" "$WORK/e2fsck.img"
cp --sparse=always "$IMG" "$WORK/kernel.img"

# tree DIR: every name but lost+found, sorted
tree() {
	(cd "$1" && find . -mindepth 1 ! -path './lost+found*' ! -path './.csvfs*' -printf \
		'%y %m %s %n %p %l\n' | sort -k5) >"$2.names"
	(cd "$1" && find . -type f ! -path './lost+found*' ! -path './.csvfs*' -print0 |
		sort -z | xargs -0 -r md5sum) >"$2.sums"
	cat "$2.names" "$2.sums" >"$2"
}

kernel_tree() { # IMG OUT
	loop_attach "$1" || return 1
	mkdir -p "$WORK/k"
	mount -t ext4 -o ro "$LOOP" "$WORK/k" 2>"$WORK/mount.err" || {
		loop_detach "$LOOP"
		return 1
	}
	mount_reg "$WORK/k"
	tree "$WORK/k" "$2"
	umount_reg "$WORK/k"
	loop_detach "$LOOP"
}

# ours
if bmount "$IMG" "$MNT"; then
	tree "$MNT" ours.tree
	t "ours: unmount" bumount "$MNT"
else
	bad "ours: mount after the SIGKILL: $(tail -2 "$MNT.log")"
fi
# e2fsck
e2fsck -fy "$WORK/e2fsck.img" >e2fsck-y.out 2>&1
rc=$?
t "e2fsck -fy replays it (exit $rc)" test $rc -le 1
kernel_tree "$WORK/e2fsck.img" e2fsck.tree || bad "e2fsck copy: kernel mount: $(cat mount.err)"
# kernel
kernel_tree "$WORK/kernel.img" kernel.tree || bad "kernel mount: $(cat mount.err)"

echo "# $(wc -l <ours.tree) lines in our tree, $(grep -c '^d' ours.tree.names) directories"
t "the tree is not empty" test "$(grep -c '^f' ours.tree.names)" -gt 20
t "our replay and e2fsck's give the same tree" cmp -s ours.tree e2fsck.tree
t "our replay and the kernel's give the same tree" cmp -s ours.tree kernel.tree
if ! cmp -s ours.tree kernel.tree; then
	diff ours.tree kernel.tree | head -10 | sed 's/^/# /'
fi
for i in "$IMG" "$WORK/e2fsck.img" "$WORK/kernel.img"; do
	if e2fsck -fn "$i" >fsck.out 2>&1; then
		ok "e2fsck -fn clean: $(basename "$i")"
	else
		sed 's/^/# /' fsck.out | head -20
		bad "e2fsck -fn: $(basename "$i")"
	fi
done

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
