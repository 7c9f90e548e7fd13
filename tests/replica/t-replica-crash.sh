#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-crash.sh - csvfs-replicad killed (SIGKILL) while it applies a
# point leaves the previous point intact: the next locker (here the
# points command, before the daemon restarts) rolls the images back from
# the undo record; the primary then resumes the same point, which the
# replica still holds staged, and it applies.
#   - deterministic: CSVFS_REPLICAD_FAULT=apply:N kills the daemon after
#     writing N operations into the images, for a few N;
#   - at a random time: kill -9 during POINT_END of a larger point,
#     a bounded number of rounds; either the point is in or it is not,
#     and whichever is last materialises with the primary's sums.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-crash
rd_start || exit 99
t "initial copy" rsend point 1
t "point 2" rsend --base 1 --writes 30 point 2
rd_stop

last=2
for n in 1 5 17; do
	p=$((last + 1))
	# the fault is the daemon's, not rsend's
	CSVFS_REPLICAD_FAULT=apply:$n rd_start || exit 99
	rsend --base $last --writes 30 point $p >send.out 2>&1
	t "apply:$n: the send of point $p fails" [ $? != 0 ]
	sleep 0.2
	kill -0 "$RD_PID" 2>/dev/null && bad "apply:$n: the daemon died" ||
		ok "apply:$n: the daemon died (SIGKILL mid-apply)"
	wait "$RD_PID" 2>/dev/null
	RD_PID=""
	t "apply:$n: killed by the fault hook" \
		grep -q "killed mid-apply" replicad.log
	rd_cmd points 1 >points.out 2>roll.out
	t "apply:$n: the next locker rolled the images back" \
		grep -q "rolling its images back to point $last" roll.out
	t "apply:$n: the last point is still $last" \
		[ "$(tail -1 points.out | cut -f1)" = "$last" ]
	t "apply:$n: point $last materialises intact" mat_check 1 $last
	rd_start || exit 99
	rsend --base $last --writes 30 point $p >send.out 2>&1
	t "apply:$n: point $p resumed with every op staged" \
		grep -q "30 ops, resumed at op 30," send.out
	t "apply:$n: point $p materialises" mat_check 1 $p
	t "apply:$n: point $last still materialises" mat_check 1 $last
	rd_stop
	last=$p
done

# Random kills during POINT_END of ~24 MiB points.
rd_start || exit 99
for round in 1 2 3; do
	p=$((last + 1))
	rsend --base $last --writes 120 point $p >send.out 2>&1 &
	spid=$!
	sleep "0.$((RANDOM % 9 + 1))"
	rd_kill
	wait "$spid"
	rd_cmd points 1 >points.out 2>&1
	now=$(tail -1 points.out | cut -f1)
	if [ "$now" = "$p" ] || [ "$now" = "$last" ]; then
		ok "round $round: last point is $now ($last or $p)"
	else
		bad "round $round: last point is $now"
	fi
	t "round $round: point $now materialises intact" mat_check 1 "$now"
	rd_start || exit 99
	if [ "$now" = "$last" ]; then
		t "round $round: point $p sent again" \
			rsend --base $last --writes 120 point $p
		t "round $round: point $p materialises" mat_check 1 $p
	fi
	last=$p
done
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
