#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Smoke test: one csvfs-lockd --standalone (no corosync, no namespaces):
# status is ready and quorate with one member, a client acquires and
# releases a file, epochs grow, owners follow.
. "$(dirname "$0")/common.sh"

require_cmd jq timeout
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"
cv_setup

# Everything runs on the host, with the socket in the work dir.
sock=$CV_WORK/lockd.sock
cat >"$CV_WORK/csvfs.conf" <<CONF
[cluster]
transport = standalone
node = solo
socket = $sock
state_dir = $CV_WORK/state
lease_timeout_ms = $CV_LEASE_MS

[log]
level = $CV_LOG_LEVEL
CONF
"$CV_LOCKD" -f --standalone -c "$CV_WORK/csvfs.conf" --socket "$sock" \
	>"$CV_WORK/lockd.log" 2>&1 </dev/null &
CV_EXTRA_PIDS+=($!)

sadmin() { timeout 10 "$CV_ADMIN" --socket "$sock" "$@"; }
ready() { sadmin --json status 2>/dev/null | jq -e '.ready == true and .quorate == true' >/dev/null; }

t=$(now_ms)
wait_for 10 ready || _fail "lockd not ready: $(sadmin --json status 2>&1)"
log "lockd ready after $(( $(now_ms) - t )) ms"
st=$(sadmin --json status) || _fail "status failed"
echo "$st" | jq -e '(.members | length) == 1' >/dev/null ||
	_fail "standalone status should list one member: $st"
sadmin status >/dev/null || _fail "plain (non-JSON) status failed"

# The probe, on the host: a fifo for its commands.
mkfifo "$CV_WORK/probe.in"
"$CV_PROBE" --socket "$sock" --volume "$CV_VOLUME" <"$CV_WORK/probe.in" \
	>"$CV_WORK/probe.log" 2>&1 &
CV_PROBEPID[p]=$!
exec {fd}>"$CV_WORK/probe.in"
CV_PROBEFD[p]=$fd
CV_PROBEMARK[p]=0
probe_log() { echo "$CV_WORK/probe.log"; }

probe_cmd p "acquire 7 5000"
probe_expect p '^(ok|err) acquire' 10 || _fail "no reply to acquire"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "acquire refused: $r" ;; esac
e1=$(field epoch "$r")
log "acquire 7: epoch $e1 ($(field ms "$r") ms)"
[ "${e1:-0}" -gt 0 ] || _fail "grant without an epoch: $r"

o=$(sadmin --json owners | jq -r '.[] | select(.fileid == 7) | .owner')
[ "$o" = solo ] || _fail "owners: file 7 owned by '$o', expected solo"

probe_cmd p "release 7"
probe_expect p '^(ok|err) release' 10 || _fail "no reply to release"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "release refused: $r" ;; esac
o=$(sadmin --json owners | jq -r '[.[] | select(.fileid == 7 and .owner != null)] | length')
[ "$o" = 0 ] || _fail "file 7 still owned after release"

probe_cmd p "acquire 7 5000"
probe_expect p '^(ok|err) acquire' 10 || _fail "no reply to 2nd acquire"
r=$PROBE_LINE
e2=$(field epoch "$r")
[ "${e2:-0}" -gt "$e1" ] || _fail "epoch did not grow: $e1 then $e2"
log "re-acquire 7: epoch $e2"

sadmin --json nodes | jq -e 'length == 1 and .[0].state == "up"' >/dev/null ||
	_fail "nodes: $(sadmin --json nodes)"
_pass
