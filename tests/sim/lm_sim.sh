#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# lm_sim.sh - make-check wrapper of the lock-table simulator: fixed runs
# on 5 nodes (the second with a short lease, which found the late-grant
# lease race) and on 4 nodes (2|2 splits), and one fresh seed on 5 nodes
# (printed, so that a failure can be replayed with the `reproduce:` line
# lm_sim prints).  LM_SIM_STEPS overrides the
# number of steps per run.
set -e
sim="${top_builddir:-.}/tests/sim/lm_sim"
[ -x "$sim" ] || sim="$(dirname "$0")/lm_sim"
[ -x "$sim" ] || { echo "lm_sim.sh: lm_sim not built" >&2; exit 99; }
steps="${LM_SIM_STEPS:-100000}"
random_seed="$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
"$sim" --seed 20261121 --steps "$steps" --nodes 5
"$sim" --seed 5 --steps "$steps" --nodes 5 --lease 100
# an even cluster: 2|2 splits, neither half quorate
"$sim" --seed 20261207 --steps "$steps" --nodes 4
"$sim" --seed "$random_seed" --steps "$steps" --nodes 5
