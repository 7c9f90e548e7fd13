#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The fencing options of doc/design.md §2.4, with stand-ins:
#   - fence_command: tests/cluster/fence-agent.sh, failing once then
#     confirming: the survivors must not grant n1's file before the
#     agent confirmed (fencing delayed until success), and retry it;
#   - watchdog_device: a regular file per node (CSVFS_LOCKD_WATCHDOG_STANDIN
#     lets lockd use it; keepalives are written bytes): keepalives flow
#     while the lease is valid, stop when n1 is cut off and its lease
#     ends, and a clean stop ends with the magic close 'V'.
# n1 owns file 1, n2 waits; partition n1 | n2 n3.
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_cmd iptables
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

export CSVFS_LOCKD_WATCHDOG_STANDIN=1
fence_agent "" 1
CV_LOCKD_CONF="$CV_LOCKD_CONF
watchdog_device = $CV_WORK/@NODE@/watchdog
watchdog_timeout_ms = 1000"
for i in 1 2 3; do mkdir -p "$CV_WORK/n$i" && : >"$CV_WORK/n$i/watchdog"; done
wdsize() { stat -c %s "$CV_WORK/n$1/watchdog"; }

cluster_start 3
probe_start a 1
probe_start b 2
probe_cmd a "acquire 1 5000"
probe_expect a '^ok acquire 1' 10 || _fail "n1: acquire failed: $PROBE_LINE"
e1=$(field epoch "$PROBE_LINE")
probe_cmd b "acquire 1 60000"
s0=$(wdsize 1)
sleep 1.5
[ "$(wdsize 1)" -gt "$s0" ] || _fail "n1: no watchdog keepalive while its lease is valid"

t_cut=$(now_ms)
partition "1" "2 3"
# n1's lease ends within lease_timeout; then its keepalives must stop.
sleep $(( CV_LEASE_MS / 1000 + 1 ))
s1=$(wdsize 1) s2=$(wdsize 2)
sleep 2
[ "$(wdsize 1)" = "$s1" ] || _fail "n1: watchdog still fed after its lease ended"
[ "$(wdsize 2)" -gt "$s2" ] || _fail "n2: watchdog not fed while quorate"
log "n1: keepalives stopped after its lease ended; n2 keeps feeding"

probe_expect b '^(ok|err) acquire 1' 40 || _fail "n2 not granted file 1 (fence log: $(cat "$CV_WORK/fence.log"))"
t_grant=$(date +%s%3N)
case $PROBE_LINE in ok*) ;; *) _fail "n2: acquire refused: $PROBE_LINE" ;; esac
e2=$(field epoch "$PROBE_LINE")
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow"
log "fence log: $(tr '\n' ';' <"$CV_WORK/fence.log")"
grep -q ' fence n1 fail' "$CV_WORK/fence.log" || _fail "the fence agent was not run (or did not fail first)"
t_ok=$(awk '$3 == "n1" && $4 == "ok" { print $1; exit }' "$CV_WORK/fence.log")
[ -n "$t_ok" ] || _fail "n2 granted file 1 without a confirmed fence"
[ "$t_grant" -ge "$t_ok" ] || _fail "I3: granted before the fence agent confirmed"
log "n2 granted file 1 $(( $(now_ms) - t_cut )) ms after the cut (fence: fail, retry, ok)"

heal
cluster_wait_ready 3
assert_tables_identical 1 2 3
# A clean stop disarms the watchdog with the magic close.
kill -TERM "${CV_LOCKDPID[3]}"
wait_for 10 sh -c "! kill -0 ${CV_LOCKDPID[3]}"
[ "$(tail -c 1 "$CV_WORK/n3/watchdog")" = V ] || _fail "n3: no magic close on a clean stop"
log "n3: clean stop ended with the magic close"
_pass
