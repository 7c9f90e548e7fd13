#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-linkcut.sh - the link to the replica cut while csvfs ships:
# a real mount (dir backend, lockd=none) replicates a group of two disks
# to csvfs-replicad on loopback every 5 s (RPO 10 s) while repw writes
# verifiable blocks into them.  The link is then cut with iptables
# (DROP both ways on the replicad's port on lo; the rules are always
# removed by the EXIT trap) for 25 s:
#   - the RPO alarm rises (xattr status alarm=1, `csvfs-admin replica
#     status` exits 1) and no point arrives while the link is down;
#   - once it is back, a new point arrives, the alarm clears and status
#     exits 0;
#   - every point the replica holds, materialised, is one instant of the
#     writer's history; after the writer stops and a last point is
#     shipped, the replica equals the primary byte for byte.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
CSVFS=$top_builddir/csvfs/csvfs
ADMIN=$top_builddir/tools/csvfs-admin
REPW=$top_builddir/tests/replica/repw
CUT_S=${CV_CUT_S:-25}
[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -c /dev/fuse ] || _notrun "no /dev/fuse"
command -v fusermount3 >/dev/null || _notrun "fusermount3 missing"
command -v getfattr >/dev/null || _notrun "getfattr missing (Debian package attr)"
command -v iptables >/dev/null || _notrun "iptables missing (Debian package iptables)"
[ -x "$CSVFS" ] || _notrun "csvfs not built"
[ -x "$REPW" ] || _notrun "repw not built"
iptables -S OUTPUT >/dev/null 2>&1 || _notrun "iptables does not work here"
rep_setup t-replica-linkcut
BE=$WORK/be TOP=$WORK/mnt MNT=$WORK/mnt BLOCKS=1024 W_PID= CV_PID= CUT=
mkdir -p "$BE" "$TOP"

cut_rules() { # cut_rules -I|-D: the DROP rules on the replicad's port
	local op=$1 dir
	for dir in --dport --sport; do
		iptables "$op" OUTPUT -o lo -p tcp "$dir" "$PORT" \
			-m comment --comment "csvfs-linkcut-$$" -j DROP || return 1
	done
}

link_up() {
	[ -n "$CUT" ] || return 0
	while cut_rules -D 2>/dev/null; do :; done
	CUT=
}

lc_cleanup() {
	link_up
	[ -n "$W_PID" ] && kill "$W_PID" 2>/dev/null && wait "$W_PID" 2>/dev/null
	mountpoint -q "$TOP" && { fusermount3 -u "$TOP" 2>/dev/null || umount -l "$TOP"; }
	[ -n "$CV_PID" ] && kill "$CV_PID" 2>/dev/null && wait "$CV_PID" 2>/dev/null
	rep_cleanup
}
trap lc_cleanup EXIT

status() { getfattr -n user.csvfs.replica --only-values "$MNT/disk0" 2>/dev/null; }
field() { status | tr ' ' '\n' | sed -n "s/^$1=//p"; }

wait_field() { # wait_field KEY OP VALUE SECONDS: until field KEY OP VALUE
	local i
	for i in $(seq $(($4 * 5))); do
		[ "$(field "$1")" "$2" "$3" ] 2>/dev/null && return 0
		sleep 0.2
	done
	return 1
}

"$CSVFS" -f "dir:$BE" "$TOP" -o lockd=none,label=rep >>"$WORK/csvfs.log" 2>&1 &
CV_PID=$!
rd_start || exit 99
for _ in $(seq 100); do
	mountpoint -q "$TOP" && break
	sleep 0.1
done
mountpoint -q "$TOP" || _notrun "csvfs did not mount"
mkdir "$MNT/vm1"
for d in 0 1; do truncate -s $((BLOCKS * 4096)) "$MNT/vm1/disk$d"; done
t "replica enable, 5 s interval" \
	"$ADMIN" replica enable "$MNT/vm1" --target "127.0.0.1:$PORT" \
	--ca "$WORK/certs/ca.pem" --cert "$WORK/certs/primary-a.pem" \
	--key "$WORK/certs/primary-a.key" --interval 5s
MNT=$MNT/vm1
GID=$(field group_id)
t "RPO is twice the interval" [ "$(field rpo)" = 10 ]

echo 0 >"$WORK/state"
"$REPW" write "$MNT" 2 $BLOCKS 1 $((CUT_S + 50)) "$WORK/state" \
	>"$WORK/w.log" 2>&1 &
W_PID=$!
t "initial copy and a delta shipped" wait_field last_point -ge 2 40
t "no alarm before the cut" [ "$(field alarm)" = 0 ]

# cut the link: nothing reaches the replicad, nothing comes back
CUT=1
t "link cut (iptables DROP on port $PORT)" cut_rules -I
before=$(field last_point)
echo "# link cut after point $before at $(date +%T)"
t "the RPO alarm rises while the link is down" wait_field alarm = 1 $((CUT_S - 2))
if "$ADMIN" replica status "$MNT" >"$WORK/st-cut" 2>&1; then
	bad "replica status exits 1 on the alarm"
else
	ok "replica status exits 1 on the alarm"
fi
grep -q ALARM "$WORK/st-cut" && ok "status shows ALARM" || bad "status shows ALARM"
cat "$WORK/st-cut"
sleep $((CUT_S - 12))
t "no point arrived while the link was down" [ "$(field last_point)" = "$before" ]
status; echo
link_up
echo "# link restored at $(date +%T)"
t "the writer kept writing during the cut" kill -0 "$W_PID"
t "a new point arrives once the link is back" \
	wait_field last_point -gt "$before" 60
t "the alarm clears" wait_field alarm = 0 20
t "replica status exits 0 again" "$ADMIN" replica status "$MNT"
t "failures were counted" [ "$(field failures)" -ge 1 ]
status; echo

wait "$W_PID"
wrc=$?
W_PID=
t "the writer ran to its end (exit $wrc)" [ "$wrc" = 0 ]
tail -3 "$WORK/w.log"
now=$(field last_point)
caught_up() {
	local i
	for i in $(seq 200); do
		[ "$(field last_point)" -gt "$now" ] 2>/dev/null &&
			[ "$(field lag)" = 0 ] && return 0
		sleep 0.2
	done
	return 1
}
t "a point after the writer stopped, nothing left to ship" caught_up
# the barrier: every point frozen (shipped or not) counted its hold
t "a barrier hold counted per freeze ($(field holds) holds, $(field points) points, $(field failures) failures)" \
	[ "$(field holds)" -ge $(($(field points) + $(field failures))) ]
t "the longest hold is under a second ($(field hold_us_max) us)" \
	[ "$(field hold_us_max)" -lt 1000000 ]
"$ADMIN" replica metrics "$MNT" >"$WORK/metrics"
t "replica metrics: the barrier's holds" \
	grep -q '^csvfs_replica_barrier_holds_total{path=".*disk0",group="vm1"} [1-9]' "$WORK/metrics"
"$ADMIN" --json replica status "$MNT" >"$WORK/st.json"
t "replica status --json: hold_us_max" grep -q '"hold_us_max": [0-9]' "$WORK/st.json"
P=$(field last_point)
rm -rf "$WORK/final"
t "last point materialised" rd_cmd materialise "$GID" "$P" "$WORK/final"
for d in 0 1; do
	t "disk$d: replica equals the primary" \
		cmp "$WORK/final/disk$d" "$BE/vm1/disk$d"
done

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
t "no DROP rule left" sh -c "! iptables -S OUTPUT | grep -q csvfs-linkcut-$$"

echo "# pass $PASS fail $FAIL"
[ "$FAIL" = 0 ]
