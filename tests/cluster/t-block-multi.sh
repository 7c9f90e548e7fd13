#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A block volume mounted read-write on three nodes at once: n1 the
# coordinator, n2 and n3 its clients.
#
# VM disk hand-off: a raw, preallocated 32 MiB image made on n2
#   (fallocate), written by an O_DIRECT writer of verifiable blocks
#   (dvw --direct) on n2, then on n3 (write ownership handed over by
#   lockd), then on n2 again; `dvw check` of every writer's log, run on
#   n1 and on n3, finds no torn, stale or lost block.
#
# Map recall: n3 keeps file A open and reads it over and over (dvw scan,
#   its map and size cached) while, round after round, n1 truncates A,
#   n2 fills a new file of another pattern on a nearly full volume (so
#   A's freed blocks go to it) and removes an old one, and n1 writes A
#   again: every byte n3 reads from A is A's or zero, never another
#   file's.  (Without the coordinator's recall to n3 this fails within a
#   few rounds.)  Each file's bytes are checked at the end on every node.
#
# Every mount goes away cleanly and `e2fsck -fn` of the image is clean.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/fault.sh"

require_netns
require_corosync
require_csvfs
require_dvw
require_bin "$CV_ADMIN"
PATH=$PATH:/sbin:/usr/sbin
require_cmd e2fsck fallocate

CV_PRIVATE_ETC=1
csvfs_setup
IMG=$CV_WORK/lun.img
truncate -s 176M "$IMG"
"$CV_ADMIN" format "block:$IMG" --label multi >"$CV_WORK/format.log" 2>&1 ||
	_fail "format: $(tail -1 "$CV_WORK/format.log")"
CV_SOURCE=block:$IMG
cluster_start 3
block_authkey 3
for i in 1 2 3; do node_mount_csvfs "$i"; done
for i in 2 3; do
	c=$(node_sh "$i" "getfattr --only-values -n user.csvfs.coordinator \$CSV")
	[ "$c" = n1 ] || _fail "n$i: coordinator is '$c', not n1"
done

# ---- VM disk hand-off between two clients ----------------------------------
node_sh 2 "fallocate -l 32M \$CSV/vm.raw" || _fail "n2: fallocate"
handoff() { # NAME NODE
	dvw_start "$1" "$2" vm.raw --direct 1 --blocks 8192 --count 3000 \
		--fsync-every 64
	dvw_wait "$1" 120
	[ "$DVW_RC" = 0 ] ||
		_fail "n$2: writer $1 failed ($DVW_RC): $(cat "$(ndir "$2")/dvw-$1.out")"
}
handoff a 2
handoff b 3
handoff c 2
for i in 1 3; do
	out=$(node_exec "$i" "$CV_DVW" check "$CV_MNT/vm.raw" "$CV_WORK"/dvw-vm.raw-*.log 2>&1) ||
		_fail "dvw check on n$i: $out"
	log "vm.raw on n$i: ${out##*$'\n'}"
done
[ "$(node_sh 3 "stat -c %s \$CSV/vm.raw")" = $((32 << 20)) ] ||
	_fail "vm.raw changed size"

# ---- map recall -------------------------------------------------------------
# fill F BYTE MIB: a file of MIB MiB of BYTE (given in octal).
fill_cmd() { echo "head -c $(($3 << 20)) /dev/zero | tr '\\000' '\\$2' >\$CSV/$1"; }
node_sh 1 "$(fill_cmd A 101 16) && sync" || _fail "n1: A"
node_sh 3 "tr -d 'A' <\$CSV/A | wc -c" | grep -qx 0 || _fail "n3: A is not all A"
ROUNDS=${CV_RECALL_ROUNDS:-10}
# n3 keeps A open and reads its first 16 MiB over and over (dvw scan).
node_spawn 3 "$CV_WORK/reader.out" "$CV_DVW" scan "$CV_MNT/A" 0x41 $((16 << 20)) \
	"$CV_WORK/stop" 900
reader=$CV_SPAWNED
CV_EXTRA_PIDS+=("$reader")
sleep 1
pats=(102 103 104 105 106 107) # B C D E F G
CV_SH_TIMEOUT=120
for r in $(seq 1 "$ROUNDS"); do
	p=${pats[$((r % 6))]}
	# A's blocks freed, then (likely) given to n2's new file, then A
	# written again elsewhere.
	node_sh 1 "truncate -s $((r % 3 * 4))M \$CSV/A" || _fail "n1: round $r: truncate A"
	node_sh 2 "rm -f \$CSV/n$((r - 4)) && $(fill_cmd n$r $p 16) && sync" ||
		_fail "n2: round $r: n$r: $(node_sh 2 "df \$CSV")"
	node_sh 1 "$(fill_cmd A 101 16) && sync" || _fail "n1: round $r: refill A"
	kill -0 "$reader" 2>/dev/null || break
done
touch "$CV_WORK/stop"
wait_for 60 _pid_gone "$reader" || _fail "n3: reader does not stop"
wait "$reader"
rc=$?
[ $rc = 0 ] || _fail "n3 read another file's bytes in A: $(cat "$CV_WORK/reader.out")"
grep -q "until the writers were done" "$CV_WORK/reader.out" ||
	_fail "n3's reader stopped before the writers: $(cat "$CV_WORK/reader.out")"
log "map recall: $ROUNDS rounds, n3 $(tail -1 "$CV_WORK/reader.out"), never a foreign byte"
for i in 1 2 3; do
	node_sh "$i" "tr -d 'A' <\$CSV/A | wc -c" | grep -qx 0 ||
		_fail "n$i: A holds other bytes at the end"
	for r in $(seq $((ROUNDS - 3)) "$ROUNDS"); do
		[ "$r" -ge 1 ] || continue
		p=${pats[$((r % 6))]}
		node_sh "$i" "tr -d '\\$p' <\$CSV/n$r | wc -c" | grep -qx 0 ||
			_fail "n$i: n$r holds bytes not its own"
	done
done

for i in 3 2 1; do node_umount_csvfs "$i" || _fail "n$i: unmount needed SIGKILL"; done
e2fsck -fn "$IMG" >"$CV_WORK/fsck.out" 2>&1 ||
	_fail "e2fsck -fn: $(head -20 "$CV_WORK/fsck.out")"
log "e2fsck -fn clean"
_pass
