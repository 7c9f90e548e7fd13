# SPDX-License-Identifier: LGPL-2.1-or-later
#
# tgt.sh - an iSCSI target for the tests: tgtd (Debian package tgt) on
# loopback, with its own iSCSI port and its own management socket (a
# control port number nobody else uses), so it never meets a system
# tgtd or another test's.  Sourced after tap.sh; needs root.
#
#   tgt_start DIR        start `tgtd -f` (log in DIR/tgtd.log); sets
#                        TGT_PORT, TGT_CP, TGT_PID; exit 77 if tgt is
#                        missing
#   tgt_lun TID IQN FILE a target TID named IQN with FILE as LUN 1, open
#                        to every initiator
#   tgt_url TID          iscsi://127.0.0.1:PORT/IQN/1 of target TID
#   tgtadm_ ARGS         tgtadm on our management socket
#   tgt_stop             delete every target with --force (tgtd ignores
#                        SIGTERM while targets exist), then stop tgtd;
#                        SIGKILL if it does not go.  Safe to call twice
#                        and from an EXIT trap.
TGT_PID= TGT_CP= TGT_PORT= TGT_TIDS=

tgtadm_() {
	tgtadm -C "$TGT_CP" "$@"
}

tgt_start() { # DIR
	local d=$1 i
	command -v tgtd >/dev/null && command -v tgtadm >/dev/null ||
		_notrun "tgtd missing (Debian package tgt)"
	for i in $(seq 20); do
		TGT_CP=$((20000 + RANDOM % 10000))
		# below the ephemeral range (32768-), where a client socket could
		# hold the port
		TGT_PORT=$((21000 + RANDOM % 10000))
		[ -e "/var/run/tgtd/socket.$TGT_CP" ] && continue
		ss -Hltn "sport = :$TGT_PORT" 2>/dev/null | grep -q . && continue
		break
	done
	tgtd -f -C "$TGT_CP" --iscsi "portal=127.0.0.1:$TGT_PORT" \
		>"$d/tgtd.log" 2>&1 &
	TGT_PID=$!
	# up when it answers on its management socket and listens on its
	# iSCSI port (the two are not set up at the same moment)
	for i in $(seq 200); do
		tgtadm_ --mode target --op show >/dev/null 2>&1 &&
			ss -Hltn "sport = :$TGT_PORT" 2>/dev/null | grep -q . &&
			return 0
		kill -0 "$TGT_PID" 2>/dev/null || break
		sleep 0.05
	done
	sed 's/^/# tgtd: /' "$d/tgtd.log" | tail -5
	TGT_PID=
	_notrun "tgtd did not start"
}

tgt_lun() { # TID IQN FILE
	tgtadm_ --lld iscsi --mode target --op new --tid "$1" \
		--targetname "$2" || return 1
	TGT_TIDS="$TGT_TIDS $1"
	eval "TGT_IQN_$1=\$2"
	tgtadm_ --lld iscsi --mode logicalunit --op new --tid "$1" --lun 1 \
		--backing-store "$3" || return 1
	tgtadm_ --lld iscsi --mode target --op bind --tid "$1" \
		--initiator-address ALL
}

tgt_url() { # TID
	eval "echo iscsi://127.0.0.1:$TGT_PORT/\$TGT_IQN_$1/1"
}

tgt_stop() {
	local t i
	[ -n "$TGT_PID" ] || return 0
	for t in $TGT_TIDS; do
		tgtadm_ --lld iscsi --mode target --op delete --force \
			--tid "$t" >/dev/null 2>&1
	done
	TGT_TIDS=
	tgtadm_ --mode system --op delete >/dev/null 2>&1 ||
		kill "$TGT_PID" 2>/dev/null
	for i in $(seq 100); do
		kill -0 "$TGT_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$TGT_PID" 2>/dev/null
	wait "$TGT_PID" 2>/dev/null
	rm -f "/var/run/tgtd/socket.$TGT_CP" "/var/run/tgtd/socket.$TGT_CP.lock"
	TGT_PID=
}
