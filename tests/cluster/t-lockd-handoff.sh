#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Cooperative hand-off (the live-migration path): n1 holds file 1; n2
# asks for it; n1 (answering revokes) gets a revoke, releases, and n2 is
# granted with a higher epoch.  Then the planned form, csvfs-admin
# handoff, moves it on to n3 and back to n1.  Owners, epochs and tables
# agree everywhere (I1, I5).
. "$(dirname "$0")/common.sh"

require_netns
require_corosync
require_bin "$CV_LOCKD" "$CV_ADMIN" "$CV_PROBE"

cluster_start 3

probe_start a 1 --auto-release
probe_start b 2 --auto-release
probe_start c 3 --auto-release

probe_cmd a "acquire 1 5000"
probe_expect a '^(ok|err) acquire 1' 10 || _fail "n1: no reply to acquire"
r=$PROBE_LINE
case $r in ok*) ;; *) _fail "n1: acquire refused: $r" ;; esac
e1=$(field epoch "$r")
log "n1 owns file 1, epoch $e1"

# Acquire from n2: revoke on n1, release, grant on n2.
t=$(now_ms)
probe_cmd b "acquire 1 10000"
probe_expect b '^(ok|err) acquire 1' 15 || _fail "n2: no reply to acquire"
r=$PROBE_LINE
dt=$(( $(now_ms) - t ))
case $r in ok*) ;; *) _fail "n2: acquire refused: $r" ;; esac
e2=$(field epoch "$r")
log "hand-off n1 -> n2: epoch $e1 -> $e2, ${dt} ms seen from the shell, $(field ms "$r") ms in the client"
[ "$e2" -gt "$e1" ] || _fail "I1: epoch did not grow on hand-off ($e1 -> $e2)"
probe_expect a "^event revoke 1( |\$)" 5 || _fail "n1 got no revoke for file 1"
probe_seen a "^event lost 1( |\$)" && _fail "n1 reported file 1 lost on a cooperative revoke"
wait_for 5 owner_is 3 1 n2 || _fail "n3 never saw n2 own file 1"
assert_same_owner 1 1 2 3
o=$SAME_OWNER
[ "$o" = "n2 $e2" ] || _fail "owners: '$o', expected 'n2 $e2'"
assert_tables_identical 1 2 3

# Ping-pong a few times: every hand-off bumps the epoch, one owner.
last=$e2
for k in 1 2 3 4 5; do
	if [ $((k % 2)) = 1 ]; then p=a; want=n1; else p=b; want=n2; fi
	probe_cmd $p "acquire 1 10000"
	probe_expect $p '^(ok|err) acquire 1' 15 || _fail "$want: no reply (round $k)"
	r=$PROBE_LINE
	case $r in ok*) ;; *) _fail "$want: acquire refused (round $k): $r" ;; esac
	e=$(field epoch "$r")
	[ "$e" -gt "$last" ] || _fail "I1: epoch $last -> $e on round $k"
	last=$e
	printf '  round %d: %s epoch %s in %s ms\n' "$k" "$want" "$e" "$(field ms "$r")"
done
wait_for 5 owner_is 3 1 n1 || _fail "n3 does not see n1 own file 1 after the ping-pong"
assert_same_owner 1 1 2 3
assert_tables_identical 1 2 3

# The planned form, csvfs-admin handoff PATH NODE.  Without a csvfs
# mount the PATH is a stand-in file in the work dir carrying the virtual
# xattrs csvfs shows (user.csvfs.volume, user.csvfs.fileid), which is
# all the tool reads from it.
f1=$CV_WORK/file1
: >"$f1"
if setfattr -n user.csvfs.volume -v "$CV_VOLUME" "$f1" 2>/dev/null &&
	setfattr -n user.csvfs.fileid -v 1 "$f1" 2>/dev/null; then
	probe_skip a
	probe_skip c
	t=$(now_ms)
	out=$(admin 2 --json --timeout 15 handoff "$f1" n3 2>&1 | jq -c .) ||
		_fail "csvfs-admin handoff $f1 n3 failed: $out"
	dt=$(( $(now_ms) - t ))
	wait_for 10 owner_is 2 1 n3 || _fail "handoff: n3 does not own file 1: $(owner_of 2 1)"
	log "admin handoff n1 -> n3: ${dt} ms ($out)"
	probe_expect a "^event revoke 1( |\$)" 5 || _fail "handoff: n1 got no revoke"
	probe_expect c "^event granted 1( |\$)" 5 || _fail "handoff: n3 got no granted event"
	assert_same_owner 1 1 2 3
	o=$SAME_OWNER
	[ "${o#* }" -gt "$last" ] || _fail "I1: handoff epoch ${o#* } <= $last"
	# Back to n1 by path from n3, the other direction.  No client on n3
	# claimed the grant (a "granted" event is an offer ahead of the
	# first write), so lockd on n3 answers the revoke itself.
	probe_skip a
	out=$(admin 3 --json --timeout 15 handoff "$f1" n1 2>&1) ||
		_fail "csvfs-admin handoff $f1 n1 failed: $out"
	wait_for 10 owner_is 3 1 n1 || _fail "handoff back: n1 does not own file 1"
	probe_expect a "^event granted 1( |\$)" 5 || _fail "handoff back: n1 got no granted event"
	assert_same_owner 1 1 2 3
	o2=$SAME_OWNER
	[ "${o2#* }" -gt "${o#* }" ] || _fail "I1: handoff epoch ${o2#* } <= ${o#* }"
	log "admin handoff n3 -> n1: epoch ${o#* } -> ${o2#* }"
	assert_tables_identical 1 2 3
else
	log "no user xattrs in $CV_WORK: csvfs-admin handoff not tested"
fi
_pass
