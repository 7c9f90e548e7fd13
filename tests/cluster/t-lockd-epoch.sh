#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Epochs survive a restart of every lockd (I1: a grant's epoch exceeds
# every earlier epoch).  One csvfs-lockd --standalone (no corosync, no
# namespaces) with a state dir in the work dir: acquire -> epoch E;
# kill -9; start again with the same state dir; acquire -> epoch > E
# (the table is in memory only: without the high-water mark in
# STATE_DIR/epoch it would start from 0 again).  Then the refusals: a
# corrupt epoch file, and a state dir that is not a directory.
. "$(dirname "$0")/common.sh"

require_cmd jq timeout
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"
cv_setup

standalone_setup
probe_log() { echo "$CV_WORK/probe-$1.log"; }

# acquire_epoch NAME FILEID: a fresh probe acquires FILEID; epoch in EPOCH.
acquire_epoch() {
	local name=$1 fd r
	mkfifo "$CV_WORK/probe-$name.in"
	"$CV_PROBE" --socket "$SA_SOCK" --volume "$CV_VOLUME" \
		<"$CV_WORK/probe-$name.in" >"$(probe_log "$name")" 2>&1 &
	CV_PROBEPID[$name]=$!
	exec {fd}>"$CV_WORK/probe-$name.in"
	CV_PROBEFD[$name]=$fd
	CV_PROBEMARK[$name]=0
	probe_cmd "$name" "acquire $2 5000"
	probe_expect "$name" '^(ok|err) acquire' 10 || _fail "$name: no reply to acquire"
	r=$PROBE_LINE
	case $r in ok*) ;; *) _fail "$name: acquire refused: $r" ;; esac
	EPOCH=$(field epoch "$r")
	[ "${EPOCH:-0}" -gt 0 ] || _fail "$name: grant without an epoch: $r"
}

# run 1: no epoch file yet
standalone_start 1
grep -q "no epoch high-water mark in $SA_STATE" "$CV_WORK/lockd-1.log" ||
	_fail "first start: no info line about the missing epoch file"
acquire_epoch a 7
e1=$EPOCH
probe_cmd a "release 7"
probe_expect a '^(ok|err) release' 10 || _fail "no reply to release"
acquire_epoch b 7
e1b=$EPOCH
[ "$e1b" -gt "$e1" ] || _fail "epoch did not grow: $e1 then $e1b"
[ -f "$SA_STATE/epoch" ] || _fail "no $SA_STATE/epoch after grants"
mark=$(cat "$SA_STATE/epoch")
log "run 1: epochs $e1, $e1b; high-water mark $mark"
[ "$mark" -gt "$e1b" ] || _fail "high-water mark $mark not above epoch $e1b"

# kill -9 (no clean shutdown), same state dir: the new table starts
# above everything granted before
kill -KILL "$SA_PID"
wait "$SA_PID" 2>/dev/null
probe_stop a
probe_stop b
standalone_start 2
grep -q "epoch high-water mark $mark read from $SA_STATE" "$CV_WORK/lockd-2.log" ||
	_fail "second start did not read the mark: $(head -n 5 "$CV_WORK/lockd-2.log")"
acquire_epoch c 7
e2=$EPOCH
log "run 2 (after kill -9): epoch $e2"
[ "$e2" -gt "$e1b" ] || _fail "I1: epoch went back after a restart: $e1b then $e2"
[ "$e2" -gt "$mark" ] || _fail "epoch $e2 not above the mark $mark read at start"
[ "$(cat "$SA_STATE/epoch")" -gt "$e2" ] || _fail "mark not renewed above $e2"
kill -KILL "$SA_PID"
wait "$SA_PID" 2>/dev/null
probe_stop c
rm -f "$SA_SOCK" # left by the kill

# a corrupt epoch file: refuse to start, and say what to do
echo "12x" >"$SA_STATE/epoch"
"$CV_LOCKD" -f --standalone -c "$CV_WORK/csvfs.conf" --socket "$SA_SOCK" \
	--state-dir "$SA_STATE" >"$CV_WORK/lockd-3.log" 2>&1 </dev/null
rc=$?
[ "$rc" = 1 ] || _fail "started (rc $rc) with a corrupt epoch file"
grep -q "cannot start: $SA_STATE/epoch is corrupt.*remove it" "$CV_WORK/lockd-3.log" ||
	_fail "corrupt epoch file: unclear message: $(cat "$CV_WORK/lockd-3.log")"
[ -S "$SA_SOCK" ] && _fail "socket left behind by a refused start"

# a state dir that cannot hold the file: refuse too (the environment
# variable names it as well as --state-dir)
: >"$CV_WORK/plain"
CSVFS_LOCKD_STATE_DIR=$CV_WORK/plain "$CV_LOCKD" -f --standalone \
	-c "$CV_WORK/csvfs.conf" --socket "$SA_SOCK" >"$CV_WORK/lockd-4.log" 2>&1 </dev/null
rc=$?
[ "$rc" = 1 ] || _fail "started (rc $rc) with a file as state dir"
grep -q "cannot start: state directory $CV_WORK/plain: Not a directory" "$CV_WORK/lockd-4.log" ||
	_fail "bad state dir: unclear message: $(cat "$CV_WORK/lockd-4.log")"
log "refusals: $(sed -n 's/.*cannot start: //p' "$CV_WORK/lockd-3.log" | cut -c1-60)...; $(sed -n 's/.*cannot start: //p' "$CV_WORK/lockd-4.log")"
_pass
