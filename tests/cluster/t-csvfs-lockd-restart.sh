#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A csvfs mount outlives a restart of its csvfs-lockd.  One standalone
# lockd (no corosync, no namespaces) and one csvfs mount on it; a writer
# process holds a file open for write through the whole scenario:
#
#  1. the writer writes (ownership acquired, epoch E1);
#  2. lockd is killed (-9): the writer's next write fails with EIO (the
#     lease ended with the connection), a new open for write fails too,
#     reads still work, and csvfs says once that lockd is unreachable
#     (not once a second);
#  3. lockd starts again: csvfs reconnects by itself; the descriptor
#     open across the outage stays poisoned (EIO: doc/design.md §2.4, the VM
#     may run elsewhere by now), a new descriptor writes, acquiring a
#     new epoch above E1; cluster-wide locks work through the new
#     connection, and csvfs-admin shows the mount and the owner again;
#  4. the same after a clean stop (SIGTERM) of lockd, which first hands
#     back what the node owns: a second descriptor, which wrote just
#     before the stop, is not poisoned and writes again after the
#     reconnect (writes in between fail with EIO);
#  5. unmount: csvfs exits 0.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_root
require_cmd jq timeout python3 fusermount3 getfattr
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_CSVFS"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
cv_setup

standalone_setup
be=$CV_WORK/backend
mnt=$CV_WORK/mnt
mkdir -p "$be" "$mnt"
csvfs_pid=
unmount_all() {
	mountpoint -q "$mnt" && { fusermount3 -u "$mnt" || umount -l "$mnt"; }
	[ -n "$csvfs_pid" ] && _kill_pid "$csvfs_pid"
	return 0
}
trap 'rc=$?; unmount_all; (exit $rc); cluster_destroy' EXIT

clog() { cat "$CV_WORK/csvfs.log"; }
nlines() { grep -c -- "$1" "$CV_WORK/csvfs.log"; }
nlines_is() { [ "$(nlines "$1")" = "$2" ]; }

# The writer: one descriptor held open for write for the whole run;
# commands on stdin ("write N", "read N", "newwrite N", "lock", "open2",
# "write2 N": through a second descriptor, kept open once opened; "quit"), one
# answer line each on stdout: "<cmd> ok" or "<cmd> err <errno name>".
cat >"$CV_WORK/writer.py" <<'PY'
import errno, fcntl, os, sys
path = sys.argv[1]
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
fd2 = None
def run(cmd, arg):
    global fd2
    n = int(arg) if arg else 0
    if cmd == "write":
        os.pwrite(fd, b"%08d" % n * 512, n * 4096)
    elif cmd == "open2":
        fd2 = os.open(path, os.O_RDWR)
    elif cmd == "write2":
        os.pwrite(fd2, b"%08d" % n * 512, n * 4096)
    elif cmd == "read":
        if os.pread(fd, 4096, n * 4096) != b"%08d" % n * 512:
            raise OSError(errno.EBADMSG, "wrong data")
    elif cmd == "newwrite":
        f = os.open(path, os.O_RDWR)
        try:
            os.pwrite(f, b"%08d" % n * 512, n * 4096)
            os.fsync(f)
        finally:
            os.close(f)
    elif cmd == "lock":
        f = os.open(path, os.O_RDWR)
        try:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB, 4096, 0)
            fcntl.lockf(f, fcntl.LOCK_UN, 4096, 0)
        finally:
            os.close(f)
for line in sys.stdin:
    cmd, _, arg = line.strip().partition(" ")
    if cmd == "quit":
        break
    try:
        run(cmd, arg)
        print(line.strip(), "ok", flush=True)
    except OSError as e:
        print(line.strip(), "err", errno.errorcode.get(e.errno, e.errno), flush=True)
PY

# wcmd CMD EXPECT: send CMD to the writer, wait for its answer, check it.
answers_above() { [ "$(grep -c . "$CV_WORK/writer.out")" -gt "$1" ]; }
wcmd() {
	local n
	n=$(grep -c . "$CV_WORK/writer.out" 2>/dev/null)
	echo "$1" >&"$wfd"
	wait_for 20 answers_above "$n" ||
		_fail "writer: no answer to '$1'"
	got=$(sed -n "$((n + 1))p" "$CV_WORK/writer.out")
	[ "$got" = "$1 $2" ] || _fail "writer: '$1' answered '$got', expected '$1 $2'"
	log "$got"
}
owner_epoch() { # epoch of the only owned file, or empty
	sadmin --json owners 2>/dev/null | jq -r '.[] | select(.owner != null) | .epoch' | head -1
}

standalone_start 1
"$CV_CSVFS" "$be" "$mnt" -f -o "lockd=$SA_SOCK" >"$CV_WORK/csvfs.log" 2>&1 </dev/null &
csvfs_pid=$!
wait_for 10 mountpoint -q "$mnt" || _fail "csvfs did not mount: $(clog)"
mkfifo "$CV_WORK/writer.in"
: >"$CV_WORK/writer.out"
python3 "$CV_WORK/writer.py" "$mnt/disk.img" <"$CV_WORK/writer.in" \
	>"$CV_WORK/writer.out" 2>&1 &
writer_pid=$!
CV_EXTRA_PIDS+=("$writer_pid")
exec {wfd}>"$CV_WORK/writer.in"

# 1. ownership acquired
wcmd "write 0" ok
e1=$(owner_epoch)
[ -n "$e1" ] || _fail "no owner after the first write"
log "owned at epoch $e1"

for round in 1 2; do
	if [ "$round" = 1 ]; then
		sig=KILL
	else
		sig=TERM
		wcmd "open2" ok
		wcmd "write2 5" ok
	fi
	# 2. lockd gone
	kill -"$sig" "$SA_PID"
	wait "$SA_PID" 2>/dev/null
	wait_for 10 grep -q "connection to csvfs-lockd lost" "$CV_WORK/csvfs.log" ||
		_fail "round $round: csvfs did not see lockd go"
	wcmd "write 1" "err EIO"
	wcmd "newwrite 2" "err EIO"
	wcmd "read 0" ok
	[ "$round" = 2 ] && wcmd "write2 6" "err EIO"
	sleep 2.5 # several reconnect attempts
	[ "$(nlines "unreachable")" = "$round" ] ||
		_fail "round $round: 'unreachable' logged $(nlines unreachable) times, not once per outage"
	# 3. lockd back
	standalone_start "$((round + 1))"
	wait_for 10 nlines_is "reconnected to csvfs-lockd" "$round" ||
		_fail "round $round: csvfs did not reconnect: $(clog | tail -n 5)"
	wcmd "write 3" "err EIO"
	wcmd "newwrite 4" ok
	wcmd "read 4" ok
	e2=$(owner_epoch)
	[ -n "$e2" ] && [ "$e2" -gt "$e1" ] ||
		_fail "round $round: epoch after the restart '$e2' not above $e1"
	log "round $round: owned again at epoch $e2"
	wcmd "lock" ok
	if [ "$round" = 2 ]; then
		wcmd "write2 7" ok
		wcmd "read 7" ok
	fi
	[ "$(getfattr --only-values -n user.csvfs.owner "$mnt/disk.img" 2>/dev/null)" = solo ] ||
		_fail "round $round: user.csvfs.owner is not 'solo'"
	sadmin --json volumes | jq -e --arg m "$mnt" '[.[] | tostring | select(contains($m))] | length > 0' >/dev/null ||
		_fail "round $round: csvfs-admin volumes does not show the mount: $(sadmin --json volumes)"
	e1=$e2
done

# 5. clean unmount (the fifo is open in daemons started since: no EOF)
echo quit >&"$wfd"
wait "$writer_pid"
exec {wfd}>&-
fusermount3 -u "$mnt" || _fail "unmount failed"
wait "$csvfs_pid"
rc=$?
csvfs_pid=
[ "$rc" = 0 ] || _fail "csvfs exited $rc after unmount: $(clog | tail -n 5)"
_pass
