#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lm_sim.sh - make-check wrapper of the lock-table simulator: one fixed
# seed and one fresh seed on 5 nodes, one fixed seed on 4 (printed, so
# that a failure can be replayed with
# `lm_sim --seed S --steps N --nodes K`).  LM_SIM_STEPS overrides the
# number of steps per run.
set -e
sim="${top_builddir:-.}/tests/sim/lm_sim"
[ -x "$sim" ] || sim="$(dirname "$0")/lm_sim"
[ -x "$sim" ] || { echo "lm_sim.sh: lm_sim not built" >&2; exit 99; }
steps="${LM_SIM_STEPS:-100000}"
random_seed="$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
for seed in 20261121 "$random_seed"; do
	"$sim" --seed "$seed" --steps "$steps" --nodes 5
done
# an even cluster: 2|2 splits, neither half quorate
"$sim" --seed 20261207 --steps "$steps" --nodes 4
