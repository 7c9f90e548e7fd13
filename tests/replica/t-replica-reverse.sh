#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-reverse.sh - a planned failover and reverse replication
# without a full resync, from the replica site's tools:
#   site A (primary-a) replicates to site B's csvfs-replicad; a final
#   point with A's writes stopped (RPO 0); B materialises it as its
#   disks and promotes the group at that point, so A's old primary is
#   refused; site A then runs csvfs-replicad on its own store, seeded
#   from its own disks, and B (primary-b) replicates back: the initial
#   point finds no chunk to send, and B's deltas then arrive at A;
#   a failback over diverged disks sends only the chunks that differ.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-reverse

RSEND_DIR=siteA
export RSEND_DIR
rd_start || exit 99
t "A -> B: initial copy" rsend point 1
t "A -> B: point 2" rsend --base 1 point 2
t "A -> B: final point 3 (A's writes stopped)" rsend --base 2 point 3
t "B: the final point materialises as B's disks" mat_check 1 3
mv mat-1-3 siteB
t "B: promote group 1 at point 3" rd_cmd promote 1 3
rsend status >old.out 2>&1
t "A's old primary is refused (split-brain guard)" grep -q "failed over" old.out
rd_stop

# Site A's replicad, its store seeded from A's own disks.
RD_STORE=storeA
t "A: seed file 1 from A's disk" rd_cmd seed 1 1 siteA/vm0/disk.img
t "A: seed file 2 from A's disk" rd_cmd seed 1 2 siteA/vm1/disk.img
rd_start || exit 99
RSEND_AS=primary-b RSEND_DIR=siteB rsend --seeded point 1 >rev1.out 2>&1
t "B -> A: initial point over the seeded disks" [ $? = 0 ]
cat rev1.out
t "  no chunk had to be sent" grep -q "seeded: 0 of [1-9][0-9]* chunks differ" rev1.out
RSEND_AS=primary-b RSEND_DIR=siteB rsend --seed 7 --writes 1 --base 1 point 2 \
	>rev2.out 2>&1
t "B -> A: a delta of B's writes" [ $? = 0 ]
mat_b() { RSEND_DIR=siteB mat_check 1 2; }
t "A: point 2 of B materialises with B's sums" mat_b

# Failback after an unplanned failover: A wrote after B took over (its
# disks diverged), so A's copy differs from B's in those chunks and in
# B's own writes; only those cross, and A ends equal to B.
mkdir -p siteA2/vm0 siteA2/vm1
cp siteA/vm0/disk.img siteA2/vm0/ && cp siteA/vm1/disk.img siteA2/vm1/
printf 'written at A after the failover' |
	dd of=siteA2/vm1/disk.img bs=1 seek=100000 conv=notrunc 2>/dev/null
t "A: seed group 2 from A's diverged disks (file 1)" \
	rd_cmd seed 2 1 siteA2/vm0/disk.img
t "A: seed group 2 from A's diverged disks (file 2)" \
	rd_cmd seed 2 2 siteA2/vm1/disk.img
RSEND_AS=primary-b RSEND_DIR=siteB rsend --group 2 --seeded point 1 >fb.out 2>&1
t "B -> A: failback resync" [ $? = 0 ]
cat fb.out
n=$(sed -n 's/seeded: \([0-9]*\) of \([0-9]*\) chunks differ/\1 \2/p' fb.out)
some() { [ "$1" -ge 1 ] && [ "$1" -lt "$2" ]; }
t "  only some chunks crossed ($n)" some $n
mat_fb() { RSEND_DIR=siteB mat_check 2 1; }
t "A: group 2 equals B's disks" mat_fb
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
