#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-rate.sh - libcvreplica's bandwidth cap: an initial copy of
# about 6 MB with --rate 2000000 (bytes/s) takes about 3 s (the bucket
# starts full with 200 kB), not much less and not much more; the same
# copy uncapped, side by side, is much faster.  Bounded: two short sends.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-rate
rd_start || exit 99

RSEND_DIR=free rsend --group 2 point 1 >free.out 2>&1
t "uncapped copy" [ $? = 0 ]
cat free.out
rsend --group 1 --rate 2000000 point 1 >capped.out 2>&1
t "copy capped at 2 MB/s" [ $? = 0 ]
cat capped.out
bytes=$(sed -n 's/.*, \([0-9]*\) bytes in \([0-9]*\) ms/\1/p' capped.out)
ms=$(sed -n 's/.*, \([0-9]*\) bytes in \([0-9]*\) ms/\2/p' capped.out)
free_ms=$(sed -n 's/.*bytes in \([0-9]*\) ms/\1/p' free.out)
want=$(((bytes - 200000) / 2000))
echo "# capped: $bytes bytes in $ms ms (the cap allows no less than $want ms); uncapped: $free_ms ms"
t "capped send took at least the cap's time" [ "$ms" -ge $((want * 95 / 100)) ]
t "capped send took no more than twice that" [ "$ms" -le $((want * 2)) ]
t "the uncapped send was faster" [ "$free_ms" -lt "$ms" ]
t "the capped copy is intact" mat_check 1 1
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
