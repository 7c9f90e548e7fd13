#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-csvfs.sh - csvfs as the primary site: a real mount (dir
# backend, lockd=none) replicates a group of two "VM disks" to
# csvfs-replicad on loopback (TLS 1.3, certificates made here) while
# repw writes verifiable blocks into them with O_DIRECT.
#   - every recovery point the replica holds, materialised, is one
#     instant of the writer's history across both disks (no torn mix);
#   - csvfs is killed with SIGKILL while a point is being shipped, the
#     volume mounted again, the writer goes on: once it stops and a last
#     point is shipped, the replica equals the primary byte for byte
#     (the activity log gave the new mount every change not shipped).
# As t-replica-csvfs-lockd.sh (CSVFS_REP_MODE=lockd) with a standalone
# csvfs-lockd: ownership then changes epochs at the crash, and the
# writer's last close releases the disks, handing their changes not
# shipped to the volume; the replication thread takes the disks nobody
# owns to ship them, so the replica still ends equal to the primary.
# As t-replica-csvfs-uring.sh (CSVFS_REP_URING=1) over FUSE over io_uring
# (the fuse module's enable_uring set for the mounts, put back after):
# the direct writes are then tracked on the queue threads' fast path.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
CSVFS=$top_builddir/csvfs/csvfs
LOCKD=$top_builddir/lockmgr/csvfs-lockd
MODE=${CSVFS_REP_MODE:-local}
URING=${CSVFS_REP_URING:-0}
PARAM=/sys/module/fuse/parameters/enable_uring
ADMIN=$top_builddir/tools/csvfs-admin
REPW=$top_builddir/tests/replica/repw
[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v setfattr >/dev/null || _notrun "setfattr missing (Debian package attr)"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
[ -x "$REPW" ] || _notrun "repw not built"
rep_setup t-replica-csvfs
BE=$WORK/be MNT=$WORK/mnt TOP=$WORK/mnt BLOCKS=2048 W_PID= CV_PID=
LOCKD_PID= LOCKOPT=lockd=none
mkdir -p "$BE" "$MNT"

csvfs_cleanup() {
	[ -n "$W_PID" ] && kill "$W_PID" 2>/dev/null
	mountpoint -q "$TOP" && { fusermount3 -u "$TOP" 2>/dev/null || umount -l "$TOP"; }
	[ -n "$CV_PID" ] && kill "$CV_PID" 2>/dev/null && wait "$CV_PID" 2>/dev/null
	[ -n "$LOCKD_PID" ] && kill "$LOCKD_PID" 2>/dev/null && \
		wait "$LOCKD_PID" 2>/dev/null
	MNT=$TOP
	rep_cleanup
}
trap csvfs_cleanup EXIT

mount_csvfs() { # in the foreground, so that CV_PID is csvfs itself
	local opts="$LOCKOPT,label=rep,allow_other" old rc=1
	if [ "$URING" = 1 ]; then
		old=$(cat "$PARAM")
		echo 1 >"$PARAM"
		opts="$opts,uring=on"
	fi
	"$CSVFS" -f "dir:$BE" "$TOP" -o "$opts" >>"$WORK/csvfs.log" 2>&1 &
	CV_PID=$!
	for _ in $(seq 100); do
		mountpoint -q "$TOP" && { rc=0; break; }
		kill -0 "$CV_PID" 2>/dev/null || break
		sleep 0.1
	done
	# the kernel took the parameter at INIT, which the mount waited for
	[ "$URING" = 1 ] && { sleep 0.5; echo "$old" >"$PARAM"; }
	return $rc
}

status() { # the replication state of disk0, as key=value words
	getfattr -n user.csvfs.replica --only-values "$MNT/disk0" 2>/dev/null
}

field() { # field KEY: from status
	status | tr ' ' '\n' | sed -n "s/^$1=//p"
}

wait_point() { # wait_point N SECONDS: until last_point >= N
	local n=$1 i
	for i in $(seq $(($2 * 5))); do
		[ "$(field last_point)" -ge "$n" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

if [ "$URING" = 1 ]; then
	[ -w "$PARAM" ] || _notrun "no fuse enable_uring parameter (Linux 6.14+)"
fi
rd_start || exit 99
if [ "$MODE" = lockd ]; then
	[ -x "$LOCKD" ] || _notrun "csvfs-lockd not built"
	"$LOCKD" -f --standalone --socket "$WORK/lockd.sock" \
		--state-dir "$WORK/lockd" >"$WORK/lockd.log" 2>&1 &
	LOCKD_PID=$!
	for _ in $(seq 50); do [ -S "$WORK/lockd.sock" ] && break; sleep 0.1; done
	[ -S "$WORK/lockd.sock" ] || _notrun "csvfs-lockd did not start"
	LOCKOPT="lockd=$WORK/lockd.sock"
fi
mount_csvfs || _notrun "csvfs did not mount"
mkdir "$MNT/vm1"
for d in 0 1; do
	truncate -s $((BLOCKS * 4096)) "$MNT/vm1/disk$d"
done
t "csvfs-admin replica enable (a directory: its disks)" \
	"$ADMIN" replica enable "$MNT/vm1" --target "127.0.0.1:$PORT" \
	--ca "$WORK/certs/ca.pem" --cert "$WORK/certs/primary-a.pem" \
	--key "$WORK/certs/primary-a.key" --interval 5s
MNT=$MNT/vm1 # the disks' directory from here on
t "both disks replicated, group named after the directory" \
	[ "$(field group)" = vm1 ]
GID=$(field group_id)
chmod o+x "$WORK" # let nobody reach the mount
touch "$MNT/nobodys" && chown 65534:65534 "$MNT/nobodys"
if command -v setpriv >/dev/null; then
	t "the owner may set its own attributes" setpriv --reuid=65534 \
		--regid=65534 --clear-groups setfattr -n user.test -v 1 \
		"$MNT/nobodys"
	if setpriv --reuid=65534 --regid=65534 --clear-groups \
		setfattr -n user.csvfs.replica -v "group=x hook=id" \
		"$MNT/nobodys" 2>/dev/null; then
		bad "only root may enable replication (and set a hook)"
	else
		ok "only root may enable replication (and set a hook)"
	fi
fi
rm -f "$MNT/nobodys"
if "$ADMIN" replica enable "$MNT" --target 127.0.0.1:1 --ca x --cert x \
	--key x --interval 2s >/dev/null 2>&1; then
	bad "an interval under 5 s is refused"
else
	ok "an interval under 5 s is refused"
fi

echo 0 >"$WORK/state"
"$REPW" write "$MNT" 2 $BLOCKS 1 40 "$WORK/state" >"$WORK/w1.log" 2>&1 &
W_PID=$!
t "initial copy and a delta shipped" wait_point 3 60
# kill -9 while a point is being shipped (frozen granules not all sent)
caught=0
for _ in $(seq 400); do
	fr=$(field frozen)
	if [ "${fr:-0}" -gt 0 ]; then caught=1; break; fi
	sleep 0.05
done
before=$(field last_point)
kill -KILL "$CV_PID"
wait "$CV_PID" 2>/dev/null
CV_PID=
wait "$W_PID" 2>/dev/null
W_PID=
echo "# killed csvfs after point $before (a point frozen: $caught)"
t "the writer stopped with the mount" [ "$(cat "$WORK/state")" -gt 0 ]
umount -l "$TOP" 2>/dev/null || fusermount3 -u "$TOP" 2>/dev/null
t "mounted again" mount_csvfs
last=$(cat "$WORK/state")
"$REPW" write "$MNT" 2 $BLOCKS $((last + 1)) 8 "$WORK/state" \
	>"$WORK/w2.log" 2>&1
t "the writer went on after the crash" [ "$(cat "$WORK/state")" -gt "$last" ]
# a last point after the writes: the replica must equal the primary
now=$(field last_point)
caught_up() { # until a point after the writer and nothing left to ship
	local i
	for i in $(seq 300); do
		[ "$(field last_point)" -gt "$now" ] 2>/dev/null &&
			[ "$(field lag)" = 0 ] && return 0
		sleep 0.2
	done
	return 1
}
t "a point after the writer stopped, nothing left to ship" caught_up
status; echo
"$ADMIN" replica status "$MNT"
"$ADMIN" --json replica status "$MNT" >"$WORK/st.json"
t "replica status --json: two files, no alarm" \
	[ "$(grep -o '"rpo_alarm": false' "$WORK/st.json" | wc -l)" = 2 ]
"$ADMIN" replica metrics "$MNT" >"$WORK/metrics"
t "replica metrics" grep -q '^csvfs_replica_points_total{path=".*disk0",group="vm1"}' "$WORK/metrics"
P=$(field last_point)
rm -rf "$WORK/final"
t "last point materialised" rd_cmd materialise "$GID" "$P" "$WORK/final"
for d in 0 1; do
	t "disk$d: replica equals the primary (nothing missed)" \
		cmp "$WORK/final/disk$d" "$BE/vm1/disk$d"
done

# every point still held is one instant of the writer's history
n=0
for p in $(rd_cmd points "$GID" | awk '$1 == "point" || $1 ~ /^[0-9]+$/ { print ($1 == "point") ? $2 : $1 }'); do
	rm -rf "$WORK/m"
	if ! rd_cmd materialise "$GID" "$p" "$WORK/m" >/dev/null 2>&1; then
		bad "point $p materialises"
		continue
	fi
	n=$((n + 1))
	t "point $p is one instant: $("$REPW" check 2 $BLOCKS "$WORK/m/disk0" "$WORK/m/disk1" | tail -1)" \
		"$REPW" check 2 $BLOCKS "$WORK/m/disk0" "$WORK/m/disk1"
done
t "points checked: $n" [ "$n" -ge 3 ]
grep -i 'replica' "$WORK/csvfs.log" | tail -5
if [ "$URING" = 1 ]; then
	t "requests came over io_uring" grep -q 'io_uring' "$WORK/csvfs.log"
	grep 'io_uring' "$WORK/csvfs.log" | tail -2
fi
if [ "$MODE" = lockd ]; then
	t "the writer's last close handed changes off" \
		grep -q 'handed off (epoch' "$WORK/csvfs.log"
	t "disks nobody owned were taken to ship them" \
		grep -q 'taken to ship its changes' "$WORK/csvfs.log"
fi

echo "# pass $PASS fail $FAIL"
[ "$FAIL" = 0 ]
