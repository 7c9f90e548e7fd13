# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tap.sh - the check verbs of the single-mount scenarios (tests/posix,
# tests/nfs), sourced right after `set -u`:
#   t WHAT CMD...   run CMD: "ok - WHAT" if it succeeds, else "not ok"
#   ok WHAT / bad WHAT  count and print a result decided by the caller
#   _notrun WHY     exit 77 (skipped) with the reason
# PASS and FAIL hold the counts; the script prints them at its end and
# exits 1 if FAIL is not 0.
PASS=0 FAIL=0
_notrun() { echo "SKIP: $*"; exit 77; }
ok() { PASS=$((PASS + 1)); echo "ok - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "not ok - $*"; }
t() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
