#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-send.sh - a primary (rsend, on libcvreplica) ships an initial
# copy and then deltas of two "VM disks" (writes, truncates, punched
# holes) to csvfs-replicad over TLS 1.3 on loopback; every point,
# materialised at the replica site while replication goes on, has the
# SHA-256 sums the primary had.  An interrupted transfer resumes where
# the replica's disk left it, across a restart of the daemon too; a
# point whose base is not the replica's last is refused, and so is one
# whose whole-file or extents' SHA-256 does not match (the previous point
# stays); after a promote (failover) the old primary is refused.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-send
rd_start || exit 99

t "initial copy (point 1)" rsend point 1
for p in 2 3 4; do
	t "delta point $p" rsend --writes 30 --base $((p - 1)) point $p
done
t "delta point 5, hashes of its extents" \
	rsend --writes 30 --base 4 --hash-extents point 5
# A wrong whole-file hash: found after the images were written, rolled
# back at once; the same point then goes through (its ops still staged).
if rsend --writes 30 --base 5 --bad-hash point 6 >bad6.out 2>&1; then
	bad "a point whose file hash does not match is refused"
else
	t "a point whose file hash does not match is refused" \
		grep -q "SHA-256 of the whole file does not match" bad6.out
fi
t "  point 5 is still the last and intact" mat_check 1 5
if rsend --writes 30 --base 5 --bad-hash --hash-extents point 6 \
	>bad6.out 2>&1; then
	bad "a point whose extents' hash does not match is refused"
else
	t "a point whose extents' hash does not match is refused" \
		grep -q "SHA-256 of the extents does not match" bad6.out
fi
rsend --writes 30 --base 5 point 6 >send6.out 2>&1
t "delta point 6 after the refusals, resumed" \
	grep -q "30 ops, resumed at op 30," send6.out
for p in 1 2 3 4 5 6; do
	t "materialised point $p has the primary's sums" mat_check 1 $p
done

# An interrupted point, resumed by the same primary.
rsend --base 6 --stop-after 8 point 7 >send7a.out 2>&1
t "transfer of point 7 interrupted" [ $? = 3 ]
rsend --base 6 point 7 >send7b.out 2>&1
t "point 7 resumed and applied" grep -q 'resumed at op [1-9]' send7b.out
cat send7b.out
t "materialised point 7" mat_check 1 7

# Interrupted, the replica restarted, resumed.
rsend --base 7 --stop-after 10 point 8 >/dev/null 2>&1
rd_stop
rd_start || exit 99
rsend --base 7 point 8 >send8.out 2>&1
t "point 8 resumed after a replica restart" grep -q 'resumed at op \(9\|10\)' send8.out
cat send8.out
t "materialised point 8" mat_check 1 8
t "point 7 still materialises" mat_check 1 7

# A test failover while replication goes on: materialise point 8 while
# point 9 (about 15 MB of writes, capped at 5 MB/s) streams in and is
# applied; a second session on the group meanwhile is refused.
rsend --base 8 --writes 100 --rate 5000000 point 9 >send9.out 2>&1 &
spid=$!
sleep 0.2
t "point 8 materialises while point 9 arrives" mat_check 1 8
if rsend status >busy.out 2>&1; then
	bad "a second session on the same group is refused"
else
	t "a second session on the same group is refused" \
		grep -q "in another session" busy.out
fi
wait "$spid"
t "point 9 applied meanwhile" grep -q "point 9 applied" send9.out
t "point 9 materialises" mat_check 1 9

rsend status >status.out 2>&1
t "status lists points 1..9" [ "$(grep -c '^point' status.out)" = 9 ]
rd_cmd --json points 1 >points.json
t "points --json" grep -q '"point": 9' points.json

# Wrong base: refused, nothing changes.
if rsend --base 3 point 10 >send10.out 2>&1; then
	bad "a point on a stale base is refused"
else
	t "a point on a stale base is refused" \
		grep -q "last point is 9" send10.out
fi
rm -f primary/.pending
t "last point still 9" mat_check 1 9

# Failover: promote the group, the old primary is refused.
if rd_cmd promote 1 42 2>promote.err; then
	bad "promote to a point that is not kept is refused"
else
	t "promote to a point that is not kept is refused" \
		grep -q "no point 42" promote.err
fi
t "promote group 1 to point 7" rd_cmd promote 1 7
rd_cmd --json points 1 >points.json
t "  the failover point is recorded" grep -q '"failover_point": 7' points.json
if rsend --base 9 point 10 >send10.out 2>&1; then
	bad "the old primary is refused after a failover"
else
	t "the old primary is refused after a failover" \
		grep -q "failed over" send10.out
fi
rm -f primary/.pending
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
