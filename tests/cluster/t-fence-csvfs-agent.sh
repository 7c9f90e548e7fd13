#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# The agents' protocol, against one standalone csvfs-lockd (no corosync,
# no namespaces, no Pacemaker):
#   fence_csvfs: metadata (valid XML naming the actions Pacemaker needs),
#     monitor, list, status (exit 0 on, 2 off), off of an unknown node
#     (nothing to wait for: off at once), off of the node it runs on
#     (refused), options on the command line and as name=value lines on
#     stdin (port, plug, nodename), a dead lockd (monitor fails; off
#     times out after power_timeout), bad arguments;
#   ocf:csvfs:csvfs: meta-data (valid XML), validate-all without source
#     (not configured), a probe with csvfs-admin missing (not running).
# The cluster behaviour (fencing a real departed node) is t-pcmk-vm.sh's.
. "$(dirname "$0")/common.sh"

require_cmd jq xmllint
require_bin "$CV_LOCKD" "$CV_ADMIN"
FENCE=$top_srcdir/tools/fence_csvfs
OCF=$top_srcdir/tools/ocf/csvfs

cv_setup
standalone_setup
standalone_start 1
export CSVFS_ADMIN=$CV_ADMIN

# fa ARGS...: fence_csvfs on the standalone lockd's socket; status in RC,
# output in OUT.
fa() {
	OUT=$("$FENCE" -s "$SA_SOCK" "$@" 2>&1)
	RC=$?
}
# fa_in LINES: the same with name=value lines on stdin.
fa_in() {
	OUT=$(printf '%s\n' "$1" "socket=$SA_SOCK" | "$FENCE" 2>&1)
	RC=$?
}
expect_rc() { # WANT WHAT
	[ "$RC" = "$1" ] || _fail "$2: exit $RC, expected $1: $OUT"
	log "ok: $2 (exit $RC)"
}

fa -o metadata
expect_rc 0 "metadata"
echo "$OUT" | xmllint --noout - || _fail "metadata is not XML"
for a in on off reboot status list monitor metadata; do
	echo "$OUT" | xmllint --xpath "//actions/action[@name='$a']" - >/dev/null 2>&1 ||
		_fail "metadata lacks action $a"
done
for p in action plug port nodename socket csvfs_admin power_timeout; do
	echo "$OUT" | xmllint --xpath "//parameters/parameter[@name='$p']" - >/dev/null 2>&1 ||
		_fail "metadata lacks parameter $p"
done
fa -o monitor
expect_rc 0 "monitor with lockd up"
fa -o list
expect_rc 0 "list"
[ "$OUT" = "solo," ] || _fail "list: '$OUT'"
fa -o status -n solo
expect_rc 0 "status of a live node"
[ "$OUT" = "Status: ON" ] || _fail "status: '$OUT'"
fa -o status -n ghost
expect_rc 2 "status of a node the cluster never saw"
[ "$OUT" = "Status: OFF" ] || _fail "status: '$OUT'"
fa -o off -n ghost
expect_rc 0 "off of a node the cluster never saw"
fa -o off -n solo
expect_rc 1 "off of the node it runs on"
echo "$OUT" | grep -q 'refusing to fence this node' || _fail "off self: $OUT"
fa_in "action=status
port=ghost"
expect_rc 2 "stdin: action=status port=ghost"
fa_in "action=status
plug=solo
nodename=ghost"
expect_rc 0 "stdin: plug wins over nodename"
fa_in "action=status
nodename=ghost
pcmk_host_list=solo"
expect_rc 2 "stdin: nodename alone; unknown parameters ignored"
fa -o dance -n solo
expect_rc 1 "unknown action"
fa -o off
expect_rc 1 "off without a node"
fa --bogus
expect_rc 1 "unknown option"

kill -TERM "$SA_PID"
wait_for 10 sh -c "! kill -0 $SA_PID" || _fail "lockd did not stop"
fa -o monitor
expect_rc 1 "monitor with lockd gone"
t=$(now_ms)
fa -o off -n ghost --power-timeout 1
expect_rc 1 "off with lockd gone, power_timeout 1"
[ $(( $(now_ms) - t )) -lt 5000 ] || _fail "off did not give up after power_timeout"

OUT=$("$OCF" meta-data 2>&1)
RC=$?
expect_rc 0 "ocf meta-data"
echo "$OUT" | xmllint --noout - || _fail "ocf meta-data is not XML"
OUT=$(OCF_RESKEY_directory=/mnt/x "$OCF" validate-all 2>&1)
RC=$?
expect_rc 6 "ocf validate-all without source"
OUT=$(OCF_RESKEY_source=/srv OCF_RESKEY_directory=/mnt/x \
	OCF_RESKEY_csvfs_admin=/nonexistent "$OCF" monitor 2>&1)
RC=$?
expect_rc 7 "ocf probe without csvfs-admin installed"
_pass
