#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-retain.sh - csvfs-replicad's default retention (every point
# for an hour, the newest per hour for a day, per day for a week) on
# eight points whose times the primary sets:
#   1  nine days ago               dropped (older than a week)
#   2  three days ago, 10:00       dropped (not the newest of its day)
#   3  three days ago, 11:00       kept (newest of its day)
#   4  five hours ago, hh:01       dropped (not the newest of its hour)
#   5  five hours ago, hh:02       kept (newest of its hour)
#   6  30 minutes ago, 7 20 minutes ago, 8 now: kept
# Dropping 2 and 4 merges their undo records into their successors', so
# points 3 and 5 must still materialise with the primary's sums.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-retain
rd_start || exit 99

now=$(date +%s)
day=$((now / 86400 * 86400))
hour=$((now / 3600 * 3600))
times=(0
	$(((day - 9 * 86400 + 3600) * 1000000000))
	$(((day - 3 * 86400 + 36000) * 1000000000))
	$(((day - 3 * 86400 + 39600) * 1000000000))
	$(((hour - 5 * 3600 + 60) * 1000000000))
	$(((hour - 5 * 3600 + 120) * 1000000000))
	$(((now - 1800) * 1000000000))
	$(((now - 1200) * 1000000000))
	$((now * 1000000000)))

t "point 1" rsend --time-ns "${times[1]}" point 1
for p in 2 3 4 5 6 7 8; do
	t "point $p" rsend --time-ns "${times[$p]}" --base $((p - 1)) \
		--writes 25 point $p
done
rd_cmd points 1 >points.out
kept=$(cut -f1 points.out | tr '\n' ' ')
t "kept: 3 5 6 7 8 (got: $kept)" [ "$kept" = "3 5 6 7 8 " ]
for p in 3 5 6 7 8; do
	t "point $p materialises with the primary's sums" mat_check 1 $p
done
t "no undo record of a dropped point is left" \
	[ "$(ls store/groups/*/points | grep -c undo)" = 4 ]
if rd_cmd materialise 1 4 mat-4 2>mat4.err; then
	bad "a dropped point cannot be materialised"
else
	t "a dropped point cannot be materialised" grep -q "no point 4" mat4.err
fi

# A tighter policy on restart drops more at the next point.
rd_stop
rd_start --retain all=10m,hourly=0,daily=0 || exit 99
t "point 9" rsend --base 8 --writes 10 point 9
rd_cmd points 1 >points.out
kept=$(cut -f1 points.out | tr '\n' ' ')
t "--retain all=10m: kept 8 9 (got: $kept)" [ "$kept" = "8 9 " ]
t "point 8 materialises" mat_check 1 8
t "point 9 materialises" mat_check 1 9
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
