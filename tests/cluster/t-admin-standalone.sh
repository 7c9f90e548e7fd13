#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-admin-standalone.sh - csvfs-admin against one standalone csvfs-lockd.
#
# No corosync and no namespaces: one lockd (--standalone) on a socket in a
# private work dir, lkm-probe clients standing in for csvfs mounts, and
# files in the work dir carrying the virtual xattrs csvfs serves
# (user.csvfs.volume, user.csvfs.fileid) standing in for paths on a mount.
# Checks every command in human and --json form (JSON validated with jq),
# the exit codes (0 ok, 1 failure with a one-line reason, 2 usage) and the
# messages an operator sees when lockd is not there.
#
# Environment: top_builddir (build tree), CV_KEEP=1 keeps the work dir.

set -u
name=t-admin-standalone
here=$(cd "$(dirname "$0")" && pwd)
: "${top_builddir:=$here/../../build}"
LOCKD=$top_builddir/lockmgr/csvfs-lockd
ADMIN=$top_builddir/tools/csvfs-admin
PROBE=$top_builddir/tests/cluster/lkm-probe
VOLUME=5c3f0a9e-7d41-4b2a-9c11-2f6e8d0b4a17

work=""
lockd_pid=""
declare -A probe_pid=() probe_fd=()

notrun() { echo "$name: not run: $*"; exit 77; }

# jq -e: jq 1.6 exits 0 when its input is empty, so a check piped from a
# command that failed and printed nothing would pass.  With -e, empty
# input is a failure here (exit 4, as jq documents for "no result").
jq() {
	local in

	case " $* " in
	*" -e "* | *" -en "* | *" -ne "*) ;;
	*) command jq "$@"; return ;;
	esac
	in=$(cat)
	[ -n "${in//[[:space:]]/}" ] || return 4
	printf '%s\n' "$in" | command jq "$@"
}

fail() {
	echo "$name: FAIL: $*" >&2
	if [ -n "$work" ]; then
		for f in "$work"/*.log; do
			[ -f "$f" ] || continue
			echo "----- $(basename "$f")" >&2
			tail -n 30 "$f" >&2
		done
	fi
	exit 1
}

log() { echo "$name: $*"; }

cleanup() {
	local p
	for p in "${!probe_fd[@]}"; do
		eval "exec ${probe_fd[$p]}>&-" 2>/dev/null
	done
	for p in "${probe_pid[@]}" $lockd_pid; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ -n "$work" ] && [ "${CV_KEEP:-0}" != 1 ]; then
		rm -rf "$work"
	fi
}

for b in "$LOCKD" "$ADMIN" "$PROBE"; do
	[ -x "$b" ] || notrun "$b is not built"
done
command -v jq >/dev/null || notrun "jq is not installed"
command -v timeout >/dev/null || notrun "timeout is not installed"

work=$(mktemp -d "${TMPDIR:-/tmp}/t-admin.XXXXXX") || notrun "no work dir"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
sock=$work/lockd.sock

adm() { timeout 30 "$ADMIN" --socket "$sock" "$@"; }

# expect_rc RC DESCRIPTION CMD...: run, check the exit code; output in $out.
expect_rc() {
	local want=$1 what=$2 rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	[ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want: $out"
}

# jcheck DESCRIPTION JSON JQ-EXPR: the expression must be true.
jcheck() {
	echo "$2" | jq -e "$3" >/dev/null ||
		fail "$1: '$3' is not true of: $2"
}

probe_start() { # NAME ARGS...
	local p=$1 fifo fd
	shift
	fifo=$work/probe-$p.in
	mkfifo "$fifo"
	# the probe opens its log only once the fifo has a writer: make it
	# now, or probe_do may look for it first
	: >"$work/probe-$p.log"
	"$PROBE" --socket "$sock" --volume "$VOLUME" --label "$p" "$@" \
		<"$fifo" >>"$work/probe-$p.log" 2>&1 &
	probe_pid[$p]=$!
	exec {fd}>"$fifo"
	probe_fd[$p]=$fd
}

# probe_do NAME LINE REGEX: send a command, wait (10 s) for a new line
# matching REGEX; it is left in $reply.
probe_do() {
	local p=$1 i n0
	n0=$(grep -c -E -- "$3" "$work/probe-$p.log")
	echo "$2" >&"${probe_fd[$p]}" || fail "probe $p is gone"
	for i in $(seq 200); do
		if [ "$(grep -c -E -- "$3" "$work/probe-$p.log")" -gt "$n0" ]; then
			reply=$(grep -E -- "$3" "$work/probe-$p.log" | tail -n 1)
			return 0
		fi
		sleep 0.05
	done
	fail "probe $p: no '$3' after '$2'"
}

# ------------------------------------------------------------------
log "usage errors exit 2"
expect_rc 2 "no command" "$ADMIN"
echo "$out" | grep -q "Usage:" || fail "no usage text: $out"
expect_rc 2 "unknown command" "$ADMIN" --socket "$sock" frobnicate
echo "$out" | grep -q "unknown command 'frobnicate'" || fail "message: $out"
expect_rc 2 "handoff without NODE" "$ADMIN" handoff /tmp
expect_rc 2 "bad --timeout" "$ADMIN" --timeout soon drain
expect_rc 2 "unknown option" "$ADMIN" --bogus status
expect_rc 0 "--help" "$ADMIN" --help

log "no lockd: exit 1 with a reason"
expect_rc 1 "status without lockd" "$ADMIN" --socket "$sock" status
echo "$out" | grep -q "cannot reach csvfs-lockd at $sock: .*is csvfs-lockd running" ||
	fail "unhelpful message: $out"
[ "$(echo "$out" | wc -l)" = 1 ] || fail "not one line: $out"
expect_rc 1 "nodes without lockd" env CSVFS_LOCKD_SOCKET="$sock" "$ADMIN" nodes

# ------------------------------------------------------------------
cat >"$work/csvfs.conf" <<EOF
[cluster]
transport = standalone
node = s1
cluster_name = admintest
socket = $sock
state_dir = $work/state
lease_timeout_ms = 2000
[log]
level = debug
EOF
"$LOCKD" -f --standalone -c "$work/csvfs.conf" --socket "$sock" \
	>"$work/lockd.log" 2>&1 &
lockd_pid=$!
for i in $(seq 200); do
	adm --json status 2>/dev/null | jq -e '.ready == true' >/dev/null && break
	kill -0 "$lockd_pid" 2>/dev/null || fail "lockd exited at start"
	sleep 0.05
done
adm --json status 2>/dev/null | jq -e '.ready == true' >/dev/null ||
	fail "lockd not ready"

log "status"
expect_rc 0 "status" adm status
for w in "cluster: *admintest" "node: *s1" "transport: *standalone" "quorate" \
	"members: *s1" "lease:" "table:"; do
	echo "$out" | grep -q -E "$w" || fail "status lacks '$w': $out"
done
expect_rc 0 "status --json" adm --json status
jcheck status "$out" '.cluster == "admintest" and .node == "s1" and
	(.node_id | type) == "number" and .transport == "standalone" and
	.quorate == true and .ready == true and .syncing == false and
	.members == ["s1"] and (.expected_votes | type) == "number" and
	.quorum.source == "standalone" and .quorum.quorate == true and
	.quorum.decided_by == "s1" and .quorum.qdevice == null and
	(.total_votes | type) == "number" and
	.lease_timeout_ms == 2000 and (.table_version | type) == "number" and
	(.epoch | type) == "number" and
	(.table_digest | test("^[0-9a-f]{16}$")) and
	(.resources | type) == "number" and (.locks | type) == "number" and
	(.clients | type) == "number"'
sleep 1
lease=$(adm --json status | jq '.lease_remaining_ms')
[ "$lease" != null ] && [ "$lease" -gt 0 ] && [ "$lease" -le 2000 ] ||
	fail "lease_remaining_ms $lease outside (0, 2000]"

log "nodes"
expect_rc 0 "nodes" adm nodes
echo "$out" | head -n 1 | grep -q -E "^NAME +ID +STATE +MEMBER +VOTES +QUORUM +OWNED +LOCKS +HEARTBEAT" ||
	fail "nodes header: $out"
echo "$out" | grep -q -E "^s1 \* +[0-9]+ +up +yes" || fail "nodes row: $out"
expect_rc 0 "nodes --json" adm --json nodes
jcheck nodes "$out" 'length == 1 and .[0].name == "s1" and
	(.[0].id | type) == "number" and .[0].state == "up" and
	.[0].quorum_decision == "quorate" and
	.[0].member == true and (.[0].votes | type) == "number" and
	.[0].owned == 0 and (.[0].locks | type) == "number" and
	(.[0] | has("heartbeat_age_ms"))'

log "owners and locks"
probe_start p1 --auto-release
probe_do p1 "acquire 7 5000" "^(ok|err) acquire 7"
echo "$reply" | grep -q "^ok" || fail "acquire 7: $reply"
epoch=$(echo "$reply" | sed -n 's/.* epoch=\([0-9]*\).*/\1/p')
probe_do p1 "plock 7 set write 0 99 1" "^(ok|err) plock 7"
probe_do p1 "plock 7 set read 200 eof 2" "^(ok|err) plock 7"
expect_rc 0 "owners" adm owners
echo "$out" | head -n 1 | grep -q -E "^VOLUME +FILEID +OWNER +EPOCH" || fail "owners header: $out"
echo "$out" | grep -q -E "^$VOLUME +7 +s1 +$epoch " || fail "owners row: $out"
expect_rc 0 "owners --json" adm --json owners
jcheck owners "$out" "map(select(.fileid == 7)) | length == 1 and
	(.[0] | .volume == \"$VOLUME\" and .owner == \"s1\" and
	 (.owner_id | type) == \"number\" and .epoch == $epoch and
	 .waiters == 0 and .handoff_target == null and .revoking == false and
	 has(\"age_ms\") and (has(\"path\") | not))"
expect_rc 0 "locks --json" adm --json locks
jcheck locks "$out" "map(select(.fileid == 7)) | length == 2"
jcheck locks "$out" "map(select(.fileid == 7 and .start == 0))[0] |
	.kind == \"posix\" and .type == \"write\" and .end == 99 and
	.node == \"s1\" and .owner == 1 and (.pid | type) == \"number\" and
	.waiting == false and .volume == \"$VOLUME\""
jcheck locks "$out" 'map(select(.fileid == 7 and .start == 200))[0] |
	.type == "read" and .end == null'
expect_rc 0 "locks" adm locks
echo "$out" | grep -q -E "posix +write +s1 .* 0-99 +held" || fail "locks row: $out"
echo "$out" | grep -q -E "200-EOF" || fail "locks EOF range: $out"

log "PATH arguments"
expect_rc 1 "owners on a plain file" adm owners "$work/csvfs.conf"
echo "$out" | grep -q "$work/csvfs.conf is not on a csvfs mount" || fail "message: $out"
expect_rc 1 "owners on a missing file" adm owners "$work/nope"
f7=$work/file7
: >"$f7"
if setfattr -n user.csvfs.volume -v "$VOLUME" "$f7" 2>/dev/null &&
	setfattr -n user.csvfs.fileid -v 7 "$f7" 2>/dev/null; then
	expect_rc 0 "owners PATH" adm --json owners "$f7"
	jcheck "owners PATH" "$out" "length == 1 and .[0].path == \"$f7\" and
		.[0].fileid == 7 and .[0].owner == \"s1\""
	expect_rc 0 "owners PATH human" adm owners "$f7"
	echo "$out" | grep -q -E "^PATH +VOLUME" || fail "owners PATH header: $out"
	expect_rc 0 "locks PATH" adm --json locks "$f7"
	jcheck "locks PATH" "$out" "length == 2 and all(.path == \"$f7\")"
	f9=$work/file9
	: >"$f9"
	setfattr -n user.csvfs.volume -v "$VOLUME" "$f9"
	setfattr -n user.csvfs.fileid -v 9 "$f9"
	expect_rc 0 "owners of a free file" adm --json owners "$f9"
	jcheck "free file" "$out" '.[0].owner == null and .[0].fileid == 9'
	expect_rc 1 "handoff to an unknown node" adm handoff "$f7" nosuch
	echo "$out" | grep -q "no node named nosuch; nodes: s1" || fail "message: $out"
	expect_rc 0 "handoff of a free file to s1" adm --json --timeout 5 handoff "$f9" s1
	jcheck handoff "$out" '.op == "handoff" and .node == "s1"'
else
	log "no user xattrs in $work: PATH arguments not tested"
fi

log "drain and resume"
expect_rc 1 "drain unknown node" adm drain nosuch
echo "$out" | grep -q "no node named nosuch" || fail "message: $out"
expect_rc 0 "drain" adm --timeout 10 drain
echo "$out" | grep -q "s1 drained" || fail "drain output: $out"
grep -q "^event revoke 7" "$work/probe-p1.log" || fail "p1 got no revoke for 7"
expect_rc 0 "nodes while draining" adm --json nodes
jcheck draining "$out" '.[0].state == "draining" and .[0].owned == 0'
probe_do p1 "acquire 8 2000" "^(ok|err) acquire 8"
echo "$reply" | grep -q "^err acquire 8 DRAINING" || fail "acquire while draining: $reply"
expect_rc 0 "resume" adm resume s1
echo "$out" | grep -q "s1 resumed" || fail "resume output: $out"
expect_rc 0 "nodes after resume" adm --json nodes
jcheck resumed "$out" '.[0].state == "up"'

log "drain that cannot finish times out"
probe_start p2
probe_do p2 "acquire 10 5000" "^(ok|err) acquire 10"
echo "$reply" | grep -q "^ok" || fail "acquire 10: $reply"
expect_rc 1 "drain with a holder that never releases" adm --timeout 1 drain s1
echo "$out" | grep -q "drain of s1 timed out after 1s: still owns 1 file (file ids 10)" ||
	fail "timeout message: $out"
expect_rc 0 "resume" adm --json resume
jcheck resume "$out" '.op == "resume" and .node == "s1"'

log "log: lockd's debug ring"
expect_rc 0 "log" adm log
echo "$out" | grep -q "csvfs-lockd debug: " || fail "log has no debug lines: $out"
echo "$out" | grep -q "drain" || fail "log lacks the drain above: $out"
# Every ring line is a line lockd also printed (level debug here).
echo "$out" | tail -n 5 | while IFS= read -r l; do
	grep -qxF -- "$l" "$work/lockd.log" || fail "ring line not in lockd.log: $l"
done || exit 1
expect_rc 0 "log --json" adm --json log
jcheck log "$out" '.node == "s1" and (.lines | length) > 10 and (.lines | all(type == "string"))'
expect_rc 2 "log with an argument" adm log extra

log "lockd gone"
kill -KILL "$lockd_pid"
wait "$lockd_pid" 2>/dev/null
lockd_pid=""
expect_rc 1 "status after lockd died" adm status
echo "$out" | grep -q "cannot reach csvfs-lockd" || fail "message: $out"

log "PASS"
exit 0
