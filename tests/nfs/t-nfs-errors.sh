#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-errors.sh - the errno an application sees, and the log line csvfs
# writes, when the NFS server answers "no" rather than not at all
# (NFSv3, lockd=none, a private nfs-ganesha):
#
#  1. A file open on the mount is removed on the export behind csvfs's
#     back and a new file takes its name: writes and fstat through the
#     old descriptor fail with ESTALE, reads give ESTALE or the old data
#     (ganesha still holds the removed file), none sees or touches the
#     new file, and the log names the lost file id; a new open by name
#     reads the new file.
#  2. A directory csvfs has looked up is removed on the export: stat, ls
#     and create in it fail with ENOENT or ESTALE; made again on the
#     export, it works again through the mount.
#  3. Permissions: a mode 000 file of another owner gives a non-root user
#     EACCES, as on ext4.  A read-only export (the server refuses every
#     change): create and mkdir fail with EROFS, an open for writing
#     with EACCES (libnfs asks ACCESS first), the log names the refused
#     operation and path, and reads still work.
#
# Every step runs under timeout: a hang fails the step.  Needs root,
# /dev/fuse, python3, setpriv and uid 1000; exits 77 with the reason
# otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
srcdir=$(cd "$(dirname "$0")" && pwd)
CSVFS=$top_builddir/csvfs/csvfs
USER_ID=1000

[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v python3 >/dev/null || _notrun "python3 missing"
command -v setpriv >/dev/null || _notrun "setpriv missing"
# a python3 the non-root user may run (not one under /root)
USER_PY=/usr/bin/python3
[ -x $USER_PY ] || USER_PY=$(command -v python3)
W=$(mktemp -d /tmp/csvfs-nfserr.XXXXXX)
EXP=$W/export RO=$W/roexport MNT=$W/mnt RMNT=$W/romnt
mkdir -p "$EXP" "$RO" "$MNT" "$RMNT"
chmod 755 "$W" # the non-root user of part 3 walks down to the mount
GANESHA_RO_EXPORT=$RO GANESHA_NO_CACHE=1 # part 2 changes the export directly
# the read-only export needs its volume record before csvfs can mount it
echo original >"$RO/base.img"
"$CSVFS" -f "$RO" "$RMNT" -o lockd=none >"$W/csvfs-mkvol.log" 2>&1 &
for _ in $(seq 50); do mountpoint -q "$RMNT" && break; sleep 0.1; done
fusermount3 -u "$RMNT" 2>/dev/null
wait
[ -d "$RO/.csvfs" ] || { echo "Bail out! no volume record in $RO"; exit 99; }
. "$srcdir/ganesha.sh"

cleanup() {
	local m
	for m in "$MNT" "$RMNT"; do
		grep -q " $m fuse" /proc/mounts &&
			{ fusermount3 -u "$m" || umount -l "$m"; }
	done
	ganesha_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $W" || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 99' INT TERM

# mount_at URL MNT LOG
mount_at() {
	"$CSVFS" -f "$1" "$2" -o lockd=none,allow_other >"$3" 2>&1 &
	for _ in $(seq 50); do mountpoint -q "$2" && return 0; sleep 0.1; done
	echo "Bail out! mount of $1 failed"
	cat "$3"
	exit 99
}

# One file system call, bounded: prints "ok" or the errno name (TIMEOUT
# for a hang).  fsop [--as-user] OP PATH [DATA]
cat >"$W/fsop.py" <<'PY'
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
data = sys.argv[3].encode() if len(sys.argv) > 3 else b""
try:
    if op == "stat":
        os.stat(path)
    elif op == "ls":
        os.listdir(path)
    elif op == "create":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    elif op == "mkdir":
        os.mkdir(path)
    elif op == "read":
        with open(path, "rb") as f:
            sys.stdout.write("ok %s\n" % f.read().decode(errors="replace"))
            sys.exit(0)
    elif op == "write":
        fd = os.open(path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
        finally:
            os.close(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
PY
fsop() {
	local as=()
	[ "$1" = --as-user ] && { as=(setpriv --reuid $USER_ID --regid $USER_ID --clear-groups); shift; }
	timeout 20 "${as[@]}" $USER_PY "$W/fsop.py" "$@" 2>&1 || echo TIMEOUT
}
# expect WHAT RESULT ACCEPTED... : RESULT (first word) is one of ACCEPTED
expect() {
	local what=$1 res=$2 a
	shift 2
	for a in "$@"; do
		[ "$res" = "$a" ] || [ "${res%% *}" = "$a" ] && { ok "$what: $res"; return; }
	done
	bad "$what: $res (want $*)"
}
# logged FILE REGEX: the log has a line matching REGEX within 5 s
logged() {
	for _ in $(seq 50); do grep -Eq "$2" "$1" && return 0; sleep 0.1; done
	return 1
}

ganesha_start "$W" "$EXP"
echo "# ganesha at $(ganesha_url), read-only export $(ganesha_ro_url)"
mount_at "$(ganesha_url "timeout=5")" "$MNT" "$W/csvfs.log"

# ---- 1: an open file replaced behind the mount -------------------------------
printf 'old-content' >"$EXP/vm.img"
cat >"$W/replaced.py" <<'PY'
import errno, os, sys
mnt, exp = sys.argv[1], sys.argv[2]
def res(f, *a):
    try:
        r = f(*a)
        return "ok %r" % (r,)
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
fd = os.open(mnt + "/vm.img", os.O_RDWR)
print("before", res(os.pread, fd, 64, 0))
print("fileid", os.fstat(fd).st_ino)
os.unlink(exp + "/vm.img")
with open(exp + "/vm.img", "wb") as f:
    f.write(b"NEW-CONTENT")
print("read", res(os.pread, fd, 64, 0))
print("write", res(os.pwrite, fd, b"through-old-fd", 0))
print("write2", res(os.pwrite, fd, b"again", 4096))
print("fstat", res(lambda: os.fstat(fd).st_ino))
print("close", res(os.close, fd))
print("export", open(exp + "/vm.img", "rb").read().decode())
with open(mnt + "/vm.img", "rb") as f:
    print("reopen", f.read().decode())
PY
timeout 30 python3 "$W/replaced.py" "$MNT" "$EXP" >"$W/replaced.out" 2>&1; rc=$?
t "open, replace, read, write and reopen finish in bounded time (rc $rc)" test $rc != 124
sed 's/^/#   /' "$W/replaced.out"
r() { sed -n "s/^$1 //p" "$W/replaced.out"; }
t "the old descriptor read the old file first" test "$(r before)" = "ok b'old-content'"
# ganesha still holds the removed file open and may serve READs of the
# old handle from it (as it would to the kernel's NFS client): the old
# data or ESTALE, never the new file's
expect "read through the old descriptor" "$(r read)" ESTALE "ok b'old-content'"
expect "write through the old descriptor" "$(r write)" ESTALE
expect "  ... and again" "$(r write2)" ESTALE
t "the write did not reach the new file" test "$(r export)" = NEW-CONTENT
t "a new open by name reads the new file" test "$(r reopen)" = NEW-CONTENT
t "the log names the lost file id" \
	logged "$W/csvfs.log" "nfs: .*fileid $(r fileid).*(stale|gone)"
n=$(grep -c "fileid $(r fileid) is gone" "$W/csvfs.log")
t "  ... once, not once per call ($n)" test "$n" = 1

# ---- 2: a directory removed behind the mount ---------------------------------
mkdir -p "$EXP/vms/a"
echo data >"$EXP/vms/a/disk"
t "the directory is looked up through the mount" \
	test "$(fsop stat "$MNT/vms/a")" = ok
t "  ... and its file" test "$(fsop stat "$MNT/vms/a/disk")" = ok
rm -r "$EXP/vms"
sleep 1.5 # past the kernel's attribute and entry cache (1 s by default)
expect "stat of the removed directory" "$(fsop stat "$MNT/vms/a")" ENOENT ESTALE
expect "stat of a file in it" "$(fsop stat "$MNT/vms/a/disk")" ENOENT ESTALE
expect "ls of it" "$(fsop ls "$MNT/vms/a")" ENOENT ESTALE
expect "create in it" "$(fsop create "$MNT/vms/a/new")" ENOENT ESTALE
t "  ... and nothing was made on the export" test ! -e "$EXP/vms"
mkdir -p "$EXP/vms/a"
echo again >"$EXP/vms/a/disk"
back=
for _ in $(seq 10); do
	[ "$(fsop read "$MNT/vms/a/disk")" = "ok again" ] && { back=yes; break; }
	sleep 0.5
done
t "made again on the export, it is found through the mount" test -n "$back"
expect "create in it works again" "$(fsop create "$MNT/vms/a/new")" ok
t "  ... on the export" test -e "$EXP/vms/a/new"
expect "ls of it" "$(fsop ls "$MNT/vms/a")" ok

# ---- 3: permissions -------------------------------------------------------------
id -u $USER_ID >/dev/null 2>&1 || _notrun "no user with uid $USER_ID for part 3"
echo secret >"$EXP/locked"
chown 2000:2000 "$EXP/locked"
chmod 000 "$EXP/locked"
expect "non-root read of a mode 000 file of uid 2000" \
	"$(fsop --as-user read "$MNT/locked")" EACCES
expect "non-root write of it" "$(fsop --as-user write "$MNT/locked" x)" EACCES
t "  ... the file is unchanged" test "$(cat "$EXP/locked")" = secret
expect "non-root create in a root-owned directory" \
	"$(fsop --as-user create "$MNT/vms/mine")" EACCES
expect "root still reads it" "$(fsop read "$MNT/locked")" ok

mount_at "$(ganesha_ro_url "timeout=5")" "$RMNT" "$W/csvfs-ro.log"
expect "read on the read-only export" "$(fsop read "$RMNT/base.img")" ok
expect "create on the read-only export" "$(fsop create "$RMNT/new.img")" EROFS
t "  ... logged with the operation and path" \
	logged "$W/csvfs-ro.log" "nfs: create /new.img: the server refused"
# libnfs asks ACCESS when it opens for writing: the server's answer is
# "no write access", which is EACCES, before any WRITE could meet EROFS
expect "open for writing on the read-only export" \
	"$(fsop write "$RMNT/base.img" x)" EACCES
t "  ... logged with the operation and path" \
	logged "$W/csvfs-ro.log" "nfs: open /base.img: the server refused"
expect "mkdir on the read-only export" "$(fsop mkdir "$RMNT/d")" EROFS
t "  ... the export is unchanged" \
	test "$(cat "$RO/base.img")" = original -a ! -e "$RO/new.img"
expect "reads still work after the refusals" "$(fsop read "$RMNT/base.img")" ok
expect "so does ls" "$(fsop ls "$RMNT")" ok
echo "# csvfs logs:"
grep -h "nfs:" "$W/csvfs.log" "$W/csvfs-ro.log" | sort | uniq -c | sort -rn |
	head -12 | sed 's/^/#   /'

t "unmount" fusermount3 -u "$MNT"
t "unmount the read-only export" fusermount3 -u "$RMNT"
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
