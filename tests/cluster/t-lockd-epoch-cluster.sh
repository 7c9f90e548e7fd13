#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Epochs survive a restart of every lockd of a cluster (I1): three nodes,
# n1 and n2 are granted files; then all three lockds are killed with
# SIGKILL at once (corosync stays up) and started again, so that no
# process holds the old table.  The new table takes its epoch from the
# hellos, which carry each node's high-water mark (state_dir): the next
# grants exceed every earlier epoch.
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

cluster_start 3

probe_start a 1
probe_start b 2
probe_cmd a "acquire 1 5000"
probe_expect a '^(ok|err) acquire 1' 10 || _fail "n1: no reply to acquire"
case $PROBE_LINE in ok*) ;; *) _fail "n1: acquire refused: $PROBE_LINE" ;; esac
e1=$(field epoch "$PROBE_LINE")
probe_cmd b "acquire 2 5000"
probe_expect b '^(ok|err) acquire 2' 10 || _fail "n2: no reply to acquire"
case $PROBE_LINE in ok*) ;; *) _fail "n2: acquire refused: $PROBE_LINE" ;; esac
e2=$(field epoch "$PROBE_LINE")
max=$(( e1 > e2 ? e1 : e2 ))
log "before: n1 file 1 epoch $e1, n2 file 2 epoch $e2"
for i in 1 2 3; do
	m=$(cat "$(ndir "$i")/state/epoch") || _fail "node $i: no epoch file"
	[ "$m" -gt "$max" ] || _fail "node $i: mark $m not above epoch $max"
done

# every lockd at once: no process keeps the table
for i in 1 2 3; do node_kill_lockd "$i"; done
probe_stop a
probe_stop b
for i in 1 2 3; do node_start_lockd "$i"; done
cluster_wait_ready 3
assert_tables_identical 1 2 3
n=$(admin 1 --json owners | jq '[.[] | select(.owner != null)] | length')
[ "$n" = 0 ] || _fail "owners survived the restart of every lockd: $(admin 1 --json owners)"

probe_start c 3
probe_start d 1
probe_cmd c "acquire 1 5000"
probe_expect c '^(ok|err) acquire 1' 10 || _fail "n3: no reply to acquire"
case $PROBE_LINE in ok*) ;; *) _fail "n3: acquire refused: $PROBE_LINE" ;; esac
e3=$(field epoch "$PROBE_LINE")
probe_cmd d "acquire 2 5000"
probe_expect d '^(ok|err) acquire 2' 10 || _fail "n1: no reply to acquire"
case $PROBE_LINE in ok*) ;; *) _fail "n1: acquire refused: $PROBE_LINE" ;; esac
e4=$(field epoch "$PROBE_LINE")
log "after restarting every lockd: n3 file 1 epoch $e3, n1 file 2 epoch $e4"
[ "$e3" -gt "$max" ] || _fail "I1: epoch went back: $max then $e3"
[ "$e4" -gt "$max" ] || _fail "I1: epoch went back: $max then $e4"
assert_same_owner 1 2 3
_pass
