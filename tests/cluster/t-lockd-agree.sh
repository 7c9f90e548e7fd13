#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Three nodes agree on every owner: n1 acquires file 1, n2 file 2; every
# node's owners list shows the same owners and epochs, a third node's
# acquire of a held file waits, and all tables are identical (I1, I5).
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

cluster_start 3

probe_start a 1
probe_start b 2
probe_cmd a "acquire 1 5000"
probe_expect a '^(ok|err) acquire 1' 10 || _fail "n1: no reply to acquire 1"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n1: acquire 1 refused: $r" ;; esac
e1=$(field epoch "$r")
log "n1 acquired file 1: epoch $e1 in $(field ms "$r") ms"
probe_cmd b "acquire 2 5000"
probe_expect b '^(ok|err) acquire 2' 10 || _fail "n2: no reply to acquire 2"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n2: acquire 2 refused: $r" ;; esac
e2=$(field epoch "$r")
log "n2 acquired file 2: epoch $e2 in $(field ms "$r") ms"
[ "$e2" -gt "$e1" ] || _fail "I1: epoch of the later grant $e2 <= $e1"

# Every node has applied both grants: same owner and epoch everywhere.
wait_for 5 owner_is 3 2 n2 || _fail "n3 never saw n2 own file 2"
assert_same_owner 1 1 2 3
o1=$SAME_OWNER
assert_same_owner 2 1 2 3
o2=$SAME_OWNER
[ "$o1" = "n1 $e1" ] || _fail "file 1: '$o1', expected 'n1 $e1'"
[ "$o2" = "n2 $e2" ] || _fail "file 2: '$o2', expected 'n2 $e2'"
log "owners agree on all nodes: file 1 -> $o1, file 2 -> $o2"
assert_tables_identical 1 2 3

# A third node asking for a held file waits (the holder does not answer
# revokes here); its request times out in lockd and changes nothing.
probe_start c 3
probe_cmd c "acquire 1 1000"
probe_expect c '^(ok|err) acquire 1' 10 || _fail "n3: no reply to acquire 1"
r=$PROBE_LINE
case $r in ok*) _fail "I1: n3 was granted file 1 while n1 holds it: $r" ;; esac
log "n3: acquire of a held file refused as expected: $r"
assert_same_owner 1 1 2 3
o1=$SAME_OWNER
[ "$o1" = "n1 $e1" ] || _fail "file 1 changed hands: '$o1'"

# Release: free everywhere, tables still identical.
probe_cmd a "release 1"
probe_expect a '^(ok|err) release 1' 10 || _fail "n1: no reply to release"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n1: release refused: $r" ;; esac
wait_for 5 owner_is 3 1 null || _fail "n3 still sees file 1 owned: $(owner_of 3 1)"
assert_same_owner 1 1 2 3
wait_for 5 tables_identical 1 2 3 || true
assert_tables_identical 1 2 3
_pass
