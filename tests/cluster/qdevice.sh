# SPDX-License-Identifier: LGPL-2.1-or-later
#
# qdevice.sh - a quorum witness for the cluster scenarios.
#
# Sourced after common.sh.  qdevice_cluster_start N makes N corosync nodes
# plus one more namespace, the witness (node N+1, on the same bridge but
# not in corosync's nodelist), where corosync-qnetd runs; every corosync
# node runs corosync-qdevice (model net, algorithm ffsplit, TLS on), so
# votequorum counts N + 1 votes.  The certificates are made as an
# administrator makes them, by Debian's corosync-qnetd-certutil and
# corosync-qdevice-net-certutil; their paths under /etc/corosync are
# fixed, so every namespace gets a private tmpfs there (CV_PRIVATE_ETC).
#
# Environment: QD_TIMEOUT, QD_SYNC_TIMEOUT (ms, the device's timeout and
# sync_timeout in corosync.conf; default 3000 and 5000).

declare -a CV_QDEVICE=()
CV_QNETD=""
QD_W=""

require_qdevice() {
	require_cmd corosync-qnetd corosync-qdevice corosync-qnetd-certutil \
		corosync-qdevice-net-certutil certutil pk12util
}

# _qdevice_conf W: the quorum device section for witness node W.
_qdevice_conf() {
	CV_QUORUM_CONF="${CV_QUORUM_CONF:-}
	device {
		model: net
		votes: 1
		timeout: ${QD_TIMEOUT:-3000}
		sync_timeout: ${QD_SYNC_TIMEOUT:-5000}
		net {
			host: $(addr_of "$1")
			algorithm: ffsplit
			tls: on
		}
	}"
}

# _qdevice_certs N W: qnetd's CA and server certificate on W; node 1
# asks for the cluster certificate, W signs it, node 1 exports it with
# its key, every other node imports that.  Files travel through the
# work dir, as an administrator would copy them.
_qdevice_certs() {
	local n=$1 w=$2 i db=/etc/corosync/qdevice/net/nssdb
	local c=$CV_WORK/certs
	mkdir -p "$c"
	node_exec "$w" corosync-qnetd-certutil -i >"$c/qnetd-init.log" 2>&1 ||
		_fail "corosync-qnetd-certutil -i: $(tail -n 3 "$c/qnetd-init.log")"
	node_exec "$w" cat /etc/corosync/qnetd/nssdb/qnetd-cacert.crt \
		>"$c/qnetd-cacert.crt" || _fail "no qnetd CA certificate"
	for i in $(seq 1 "$n"); do
		node_exec "$i" corosync-qdevice-net-certutil -i \
			-c "$c/qnetd-cacert.crt" >>"$c/node$i.log" 2>&1 ||
			_fail "node $i: qdevice CA import: $(tail -n 3 "$c/node$i.log")"
	done
	node_exec 1 corosync-qdevice-net-certutil -r -n "$CV_PREFIX" \
		>>"$c/node1.log" 2>&1 || _fail "node 1: certificate request"
	node_exec 1 cat "$db/qdevice-net-node.crq" >"$c/qdevice-net-node.crq"
	node_exec "$w" corosync-qnetd-certutil -s -c "$c/qdevice-net-node.crq" \
		-n "$CV_PREFIX" >>"$c/qnetd-init.log" 2>&1 ||
		_fail "qnetd: signing: $(tail -n 3 "$c/qnetd-init.log")"
	node_exec "$w" cat "/etc/corosync/qnetd/nssdb/cluster-$CV_PREFIX.crt" \
		>"$c/cluster.crt"
	node_exec 1 corosync-qdevice-net-certutil -M -c "$c/cluster.crt" \
		>>"$c/node1.log" 2>&1 || _fail "node 1: cluster certificate import"
	node_exec 1 cat "$db/qdevice-net-node.p12" >"$c/qdevice-net-node.p12"
	for i in $(seq 2 "$n"); do
		node_exec "$i" corosync-qdevice-net-certutil -m \
			-c "$c/qdevice-net-node.p12" >>"$c/node$i.log" 2>&1 ||
			_fail "node $i: p12 import: $(tail -n 3 "$c/node$i.log")"
	done
	log "qdevice: certificates made (CA on the witness, cluster $CV_PREFIX)"
}

qnetd_start() {
	local w=$1 d
	d=$(ndir "$w")
	node_exec "$w" mkdir -p /run/corosync-qnetd
	node_spawn "$w" "$d/qnetd.log" corosync-qnetd -f -d -s on \
		-l "$(addr_of "$w")"
	CV_QNETD=$CV_SPAWNED
	CV_EXTRA_PIDS+=("$CV_SPAWNED")
	wait_for 10 node_exec "$w" corosync-qnetd-tool -s ||
		_fail "corosync-qnetd did not start: $(tail -n 5 "$d/qnetd.log")"
}

node_start_qdevice() {
	local i=$1 d
	d=$(ndir "$i")
	node_exec "$i" mkdir -p /run/corosync-qdevice
	node_spawn "$i" "$d/qdevice.log" corosync-qdevice -f -d
	CV_QDEVICE[$i]=$CV_SPAWNED
	CV_EXTRA_PIDS+=("$CV_SPAWNED")
	echo "$CV_SPAWNED" >"$d/qdevice.pid"
}

# node_qdevice_votes I V: node I's votequorum counts V votes, the
# device's included, and is quorate.
node_qdevice_votes() {
	local out
	out=$(node_exec "$1" timeout 5 corosync-quorumtool -s 2>/dev/null) || true
	echo "$out" | grep -Eq '^Quorate: +Yes' || return 1
	echo "$out" | grep -Eq "^Total votes: +$2\$" || return 1
	echo "$out" | grep -q 'Qdevice'
}

# qdevice_cluster_start N: N nodes and a witness, corosync, qnetd,
# qdevice and lockd everywhere; every lockd ready with N members.
qdevice_cluster_start() {
	local n=$1 w=$(( $1 + 1 )) i t
	CV_PRIVATE_ETC=1
	CV_RING_NODES=$n
	QD_W=$w
	_qdevice_conf "$w"
	cluster_create "$w"
	CV_NODES=$n
	_qdevice_certs "$n" "$w"
	qnetd_start "$w"
	t=$(now_ms)
	for i in $(seq 1 "$n"); do node_start_corosync "$i"; done
	corosync_wait_quorate "$n" $(seq 1 "$n")
	for i in $(seq 1 "$n"); do node_start_qdevice "$i"; done
	for i in $(seq 1 "$n"); do
		wait_for 30 node_qdevice_votes "$i" $(( n + 1 )) ||
			_fail "node $i: the quorum device's vote is not counted: $(node_exec "$i" corosync-quorumtool -s 2>&1)"
	done
	log "corosync: $n nodes + quorum device ($(( n + 1 )) votes) after $(( $(now_ms) - t )) ms"
	for i in $(seq 1 "$n"); do node_start_lockd "$i"; done
	cluster_wait_ready "$n"
	log "lockd: $n nodes ready"
}

# node_kill_qdevice I: the node's qdevice dies with it (a crash).
node_kill_qdevice() {
	[ -n "${CV_QDEVICE[$1]:-}" ] && kill -KILL "${CV_QDEVICE[$1]}" 2>/dev/null
	CV_QDEVICE[$1]=""
}
