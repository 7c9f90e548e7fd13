#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-replica-seed.sh - an initial replication seeded from a copy: the
# disks are copied to the replica site beforehand (a stale copy: a few
# chunks changed since), put into a new group with csvfs-replicad seed;
# the primary asks for the replica images' chunk hashes (HASHES) and
# ships only the chunks that differ; the point's whole-file hashes prove
# the result equal to the primary's disks.  Seeding a group that has
# points is refused.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
rep_setup t-replica-seed
rd_start || exit 99

# The primary's disks, as the first point of group 1 makes them.
t "group 1: initial copy" rsend --size $((8 << 20)) point 1
# A copy of them from "some time ago": three 1 MiB chunks differ.
mkdir seedcopy
cp primary/vm0/disk.img seedcopy/d0 && cp primary/vm1/disk.img seedcopy/d1
printf 'stale' | dd of=seedcopy/d0 bs=1 seek=$((3 << 20)) conv=notrunc 2>/dev/null
printf 'stale' | dd of=seedcopy/d0 bs=1 seek=$((5 << 20)) conv=notrunc 2>/dev/null
truncate -s 5M seedcopy/d1 # shorter: its last chunks are missing
t "seed file 1 of group 2" rd_cmd seed 2 1 seedcopy/d0
t "seed file 2 of group 2" rd_cmd seed 2 2 seedcopy/d1

rsend --group 2 --size $((8 << 20)) --seeded point 1 >seed.out 2>&1
t "group 2: seeded initial point" [ $? = 0 ]
cat seed.out
# 8 + 9 chunks of 1 MiB; d0 differs in 2, d1 lacks chunks 5..8: 4.
t "only the differing chunks were sent (6 of 17)" \
	grep -q "seeded: 6 of 17 chunks differ" seed.out
t "the seeded point materialises with the primary's sums" mat_check 2 1
t "seeding a group with points is refused" \
	bash -c "! timeout 60 '$REPLICAD' --store '$WORK/store' seed 2 1 seedcopy/d0 2>seed.err"
t "  saying why" grep -q "initial copy only" seed.err
t "group 2 goes on with deltas" rsend --group 2 --base 1 --writes 20 point 2
t "group 2 point 2 materialises" mat_check 2 2
rd_stop
echo "# passed $PASS failed $FAIL"
[ "$FAIL" = 0 ]
