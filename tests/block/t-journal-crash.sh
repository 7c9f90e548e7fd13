#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-journal-crash.sh - a crash at any point of a journal commit or
# checkpoint leaves a volume that replays to the state of the last
# committed transaction (or of the one being committed), never to a
# part of one.  jtool crash runs rounds of up to 300 random metadata
# operations (mkdir, create with contents, unlink, rename; checkpoints
# now and then) in a child that is SIGKILLed at a random write to the
# journal's device; each round replays the image (ours, or e2fsck -fy
# one time in three, which must find nothing to fix), checks e2fsck -fn
# and compares the whole tree, contents included, with the model.
# Rounds go on over the same image, so the log wraps around (the 1 KiB
# image has the smallest journal, 1 MiB, to wrap often).
#   CV_SEED   seed (default: random, printed)
#   CV_ROUNDS rounds on the 4 KiB-block image (default 200; the 1 KiB
#             one gets half)
# Needs e2fsprogs and jtool; exits 77 with the reason otherwise.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-journal-crash
seed=${CV_SEED:-$RANDOM}
rounds=${CV_ROUNDS:-200}
echo "# seed $seed (CV_SEED=$seed to run it again)"

mkimg c4.img -b 4096 || _notrun "mke2fs failed"
if "$JTOOL" crash c4.img "$seed" "$rounds" >crash4.out 2>&1; then
	ok "4 KiB blocks: $(tail -1 crash4.out)"
else
	tail -40 crash4.out; bad "4 KiB blocks: crash rounds"
fi
mkimg c1.img -b 1024 -J size=1 || _notrun "mke2fs failed"
if "$JTOOL" crash c1.img "$((seed + 1))" "$((rounds / 2))" >crash1.out 2>&1; then
	ok "1 KiB blocks: $(tail -1 crash1.out)"
else
	tail -40 crash1.out; bad "1 KiB blocks: crash rounds"
fi
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
