#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-eio.sh - a LUN that returns I/O errors in the middle of use.
# The LUN is lun.img on failfuse (a FUSE file system passing one file
# through to a backing image, failing every call with EIO between
# SIGUSR1 and SIGUSR2); csvfs mounts it as a block volume, this node
# the coordinator.
#   - before: a directory and a file with data, synced;
#   - the LUN fails: on an open file a direct read and a write with
#     fsync get EIO; an open, a fallocate, a mkdir and an fsync of new
#     metadata fail within the time limit (no hang); the daemon's log
#     says what failed;
#   - the LUN comes back: reads work again, and so do changes (each
#     failed call was undone; a failed journal commit would instead stop
#     changes until the next mount, as ext4 does); the unmount ends
#     within the limit;
#   - the next mount replays the journal: the synced file is intact, new
#     work is taken; e2fsck -fn of the backing image clean.
# Needs root, /dev/fuse; exits 77 otherwise.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-block-eio
csvfs_need
FAILFUSE=$top_builddir/tests/block/failfuse
[ -x "$FAILFUSE" ] || _notrun "failfuse not built"
LIMIT=30

BACK=$WORK/back.img LUNFS=$WORK/lunfs MNT=$WORK/mnt
truncate -s 256M "$BACK"
"$ADMIN" format "block:$BACK" --label eio >format.log 2>&1 ||
	{ echo "Bail out! format: $(tail -1 format.log)"; exit 99; }
mkdir -p "$LUNFS"
"$FAILFUSE" "$BACK" "$LUNFS" >failfuse.log 2>&1 &
FFPID=$!
PIDS="$PIDS $FFPID" FMOUNTS="$LUNFS $FMOUNTS"
for _ in $(seq 100); do mountpoint -q "$LUNFS" && break; sleep 0.05; done
mountpoint -q "$LUNFS" ||
	{ echo "Bail out! failfuse: $(tail -2 failfuse.log)"; exit 99; }
LUN=$LUNFS/lun.img

lockd_start
bmount "$LUN" "$MNT" ||
	{ echo "Bail out! mount: $(tail -3 "$MNT.log")"; exit 99; }

# quick RC CMD...: CMD's exit status, 124 when it ran past LIMIT
quick() { timeout -s KILL $LIMIT "$@" >/dev/null 2>"$WORK/err"; }
# fails_in_time WHAT CMD...: CMD fails, not by the time limit
fails_in_time() {
	local what=$1 rc
	shift
	quick "$@"
	rc=$?
	if [ $rc = 0 ]; then
		bad "$what: failed (it succeeded)"
	elif [ $rc = 137 ] || [ $rc = 124 ]; then
		bad "$what: failed within ${LIMIT}s (it hung)"
	else
		ok "$what: failed ($(head -c 120 "$WORK/err" | tr '\n' ' '))"
	fi
}

# ---- before ----------------------------------------------------------
mkdir "$MNT/dir"
head -c 4M /dev/urandom >"$WORK/data"
t "a file written and synced" dd if="$WORK/data" of="$MNT/dir/keep" bs=1M \
	oflag=direct conv=fsync status=none
sum=$(md5sum <"$WORK/data")
t "fsync of the directory" python3 -c "
import os; fd = os.open('$MNT/dir', os.O_RDONLY); os.fsync(fd)"

# ---- the LUN fails ---------------------------------------------------
# open files: their data path meets the error (held_fd prints the
# errno of a direct pread and of a pwrite + fsync, the LUN failing)
held_py='
import errno, mmap, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
b = mmap.mmap(-1, 1 << 20)
os.preadv(fd, [b], 0)          # map cached, LUN fine
os.kill(int(sys.argv[2]), signal.SIGUSR1)
res = []
for what, f in (("read", lambda: os.preadv(fd, [b], 1 << 20)),
                ("write", lambda: (os.pwritev(fd, [b], 2 << 20), os.fsync(fd)))):
    try:
        f()
        res.append(what + ":ok")
    except OSError as e:
        res.append(what + ":" + errno.errorcode[e.errno])
print(" ".join(res))
'
r=$(timeout -s KILL $LIMIT python3 -c "$held_py" "$MNT/dir/keep" $FFPID 2>&1)
echo "# open file while the LUN fails: $r"
t "an open file: direct read and write+fsync get EIO" \
	test "$r" = "read:EIO write:EIO"
fails_in_time "a new open and direct read" \
	dd if="$MNT/dir/keep" of=/dev/null bs=1M iflag=direct
fails_in_time "write with fsync" \
	dd if="$WORK/data" of="$MNT/dir/new" bs=1M oflag=direct conv=fsync
fails_in_time "fallocate 8 MiB" fallocate -l 8M "$MNT/fa"
fails_in_time "a new name made durable (fsync of its directory)" \
	python3 -c "
import os; os.mkdir('$MNT/made'); fd = os.open('$MNT', os.O_RDONLY); os.fsync(fd)"
fails_in_time "mkdir" mkdir "$MNT/refused"
t "the log says what failed" grep -q 'I/O error on the LUN' "$MNT.log"
grep -E 'error|failed' "$MNT.log" | head -5 | sed 's/^/# log: /'

# ---- the LUN comes back ----------------------------------------------
kill -USR2 $FFPID
t "the LUN back: the file reads again" bash -c \
	"dd if='$MNT/dir/keep' bs=1M iflag=direct status=none | md5sum | grep -q '${sum%% *}'"
# each failed call was undone, no commit failed: work goes on at once
t "the LUN back: mkdir works, without a remount" mkdir "$MNT/back"
# unmount: fusermount3, then csvfs ends (engine closed), within LIMIT
unmount_ends() {
	timeout -s KILL $LIMIT fusermount3 -u "$MNT" || return 1
	for _ in $(seq $((LIMIT * 10))); do
		kill -0 "$CSVFS_PID" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
t "unmount, csvfs ends within ${LIMIT}s" unmount_ends
bkill "$MNT"

# ---- the next mount --------------------------------------------------
if bmount "$LUN" "$MNT"; then
	ok "mounted again (journal replayed)"
	t "the directory made after the LUN came back is there" \
		test -d "$MNT/back"
	t "the synced file intact" bash -c \
		"md5sum <'$MNT/dir/keep' | grep -q '${sum%% *}'"
	t "new work taken" bash -c "mkdir '$MNT/after' &&
		dd if='$WORK/data' of='$MNT/after/f' bs=1M oflag=direct conv=fsync status=none &&
		cmp '$WORK/data' '$MNT/after/f'"
	t "unmount" bumount "$MNT"
else
	bad "mounted again: $(tail -2 "$MNT.log")"
fi
if e2fsck -fn "$BACK" >fsck.out 2>&1; then
	ok "e2fsck -fn clean"
else
	sed 's/^/# /' fsck.out | head -20
	bad "e2fsck -fn"
fi

echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
