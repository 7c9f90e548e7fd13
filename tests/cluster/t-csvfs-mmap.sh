#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Shared mappings (MAP_SHARED) of one file on several nodes, in the
# default cache=direct mode (t-csvfs-mmap-auto.sh: cache=auto), across a
# change of write ownership:
#   n1 maps the file and writes through the mapping; its msync takes
#     ownership (a mapped write is admitted like write(2));
#   n3 maps it too and reads n1's data through its mapping once n1 owns
#     the file (its cached pages were dropped on that owner change);
#   n1 writes again through the mapping and does NOT msync: the pages are
#     dirty in n1's page cache only;
#   n2 writes the first block with pwrite(2) through a descriptor it
#     keeps open: ownership moves to n2, and
#     n1's revoke first writes its dirty mapped pages back - when n2's
#     write returns, the backing file has both n1's unsynced mapped write
#     (beside the block) and n2's block;
#   n1 reads n2's block through its mapping at once (its pages were
#     dropped on the revoke: nothing stale), and so does n3 once n2's
#     owner change reached it;
#   n1 writes through its mapping and msyncs again: it takes the file
#     back with a higher epoch, and n2 reads n1's data.
# With a csvfs that cannot map direct-I/O files shared, cvmap's mmap
# fails (ENODEV) and so does this test.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

CVMAP=$top_builddir/tests/posix/cvmap

require_netns
require_corosync
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CVMAP"

csvfs_setup
cluster_start 3
csvfs_mount_all 3

F=mapped.db
LEN=65536
declare -A MAPN=()

# map_start NAME I: cvmap on node I keeps $F mapped, fed by shell NAME
# through its descriptor 4; answers go to $CV_WORK/NAME.out.
map_start() {
	node_shell_start "$1" "$2"
	node_shell "$1" "mkfifo \$W/$1.in && { '$CVMAP' \$CSV/$F $LEN <\$W/$1.in >\$W/$1.out 2>&1 & } && exec 4>\$W/$1.in" ||
		_fail "n$2: cannot start cvmap: $SH_OUT"
	MAPN[$1]=1
	wait_for 10 grep -qx mapped "$CV_WORK/$1.out" ||
		_fail "n$2: cvmap cannot map $F: $(cat "$CV_WORK/$1.out")"
}

_has_lines() { [ "$(wc -l <"$1")" -ge "$2" ]; }

# map_cmd NAME LINE: one cvmap command; its answer goes to MR.
map_cmd() {
	node_shell "$1" "echo '$2' >&4" || _fail "cvmap $1: $SH_OUT"
	MAPN[$1]=$(( MAPN[$1] + 1 ))
	wait_for 30 _has_lines "$CV_WORK/$1.out" "${MAPN[$1]}" ||
		_fail "cvmap $1 did not answer '$2'"
	MR=$(sed -n "${MAPN[$1]}p" "$CV_WORK/$1.out")
}

# map_reads NAME OFF TEXT: the mapping of NAME shows TEXT at OFF.
map_reads() {
	map_cmd "$1" "r $2 ${#3}"
	[ "$MR" = "$3" ]
}

node_sh 1 "dd if=/dev/zero of=\$CSV/$F bs=4096 count=$(( LEN / 4096 )) conv=fsync status=none" ||
	_fail "n1: creating $F failed"
wait_for 5 csv_owner_is 1 "$F" "" || _fail "n1 did not release $F on close"

map_start m1 1
map_start m3 3
map_reads m3 0 "........" || _fail "n3 maps $F: '$MR', expected zeros"
log "n1 and n3 map $F shared (${CV_CSVFS_OPTS:-cache=direct})"

# n1: a mapped write, msync'ed: n1 takes ownership.
map_cmd m1 "w 0 n1-synced-mapped-write"
map_cmd m1 s
[ "$MR" = ok ] || _fail "n1: msync: $MR"
wait_for 5 csv_owner_is 2 "$F" n1 || _fail "n1's mapped write did not take ownership: '$(csv_owner 2 "$F")'"
assert_csv_owner "$F" n1 1 2 3
e1=$CSV_EPOCH
grep -q n1-synced-mapped-write "$CV_BACKING/$F" ||
	_fail "backing file lacks n1's msync'ed write"
wait_for 5 map_reads m3 0 n1-synced-mapped-write ||
	_fail "n3's mapping shows '$MR', not n1's write"
log "n1's msync'ed mapped write took ownership (epoch $e1); n3's mapping shows it"

# n1: mapped writes left dirty in its page cache (no msync).
map_cmd m1 "w 0 n1-unsynced-block0"
map_cmd m1 "w 8192 n1-unsynced-block2"
grep -q n1-unsynced "$CV_BACKING/$F" && log "(the kernel wrote n1's pages back early)"

# n2 writes block 0: the revoke writes n1's dirty pages back first.
# (through a descriptor it keeps open, so that it stays the owner)
node_shell_start w2 2
t=$(now_ms)
node_shell w2 "exec 3<>\$CSV/$F && wblk n2 0 fsync" ||
	_fail "n2: writing block 0 of $F failed: $SH_OUT"
log "n2 wrote block 0 in $(( $(now_ms) - t )) ms (revoke of n1 with dirty mapped pages)"
grep -q n1-unsynced-block2 "$CV_BACKING/$F" ||
	_fail "n1's dirty mapped page (block 2) did not reach the backing file before n2's write"
[ "$(block_tag "$CV_BACKING/$F" 0)" = n2blk=0 ] ||
	_fail "backing block 0: '$(block_tag "$CV_BACKING/$F" 0)', expected n2's"
assert_csv_owner "$F" n2 1 2 3
e2=$CSV_EPOCH
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow ($e1 -> $e2)"
grep -q "ownership lost" "$(ndir 1)/csvfs.log" &&
	_fail "n1 reports a loss on a cooperative revoke"

# n1's pages went with the revoke: its mapping shows n2's block now.
map_reads m1 0 "n2 blk=0" || _fail "n1's mapping shows stale '$MR' after n2's write"
map_reads m1 8192 n1-unsynced-block2 || _fail "n1's mapping lost its block 2: '$MR'"
wait_for 10 map_reads m3 0 "n2 blk=0" ||
	_fail "n3's mapping still shows '$MR' after n2's write and owner change"
map_reads m3 8192 n1-unsynced-block2 || _fail "n3's mapping shows '$MR' at block 2"
log "n1 (at once) and n3 see n2's block and n1's written-back page through their mappings"

# n1 takes the file back through its mapping.
map_cmd m1 "w 4096 n1-again"
map_cmd m1 s
[ "$MR" = ok ] || _fail "n1: msync after the hand-off: $MR"
wait_for 5 csv_owner_is 2 "$F" n1 || _fail "n1 did not take $F back: '$(csv_owner 2 "$F")'"
assert_csv_owner "$F" n1 1 2 3
[ "$CSV_EPOCH" -gt "$e2" ] || _fail "I1: epoch did not grow ($e2 -> $CSV_EPOCH)"
[ "$(node_sh 2 "dd if=\$CSV/$F bs=1 skip=4096 count=8 status=none")" = n1-again ] ||
	_fail "n2 does not read n1's new mapped write"
log "n1 took $F back by a mapped write (epoch $e2 -> $CSV_EPOCH); n2 reads it"

map_cmd m1 q
map_cmd m3 q
node_shell w2 "exec 3>&-" || _fail "n2: close failed"
assert_csv_tables_identical
_pass
