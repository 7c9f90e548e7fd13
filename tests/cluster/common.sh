# SPDX-License-Identifier: LGPL-2.1-or-later
#
# common.sh - verbs for the multi-node scenarios of tests/cluster.
#
# Sourced by every t-*.sh.  A scenario makes a cluster of N nodes on this
# one machine, starts corosync and csvfs-lockd on them, injects faults and
# checks the invariants of doc/design.md §2.6.
#
# Each node is a network namespace <prefix>-nI with one veth to a bridge
# that lives in its own hub namespace <prefix>-hub, so the host's own
# networking is never touched; addresses come from CV_NET (a /24 used
# only inside these namespaces).  Each node also has its own mount
# namespace, held by one long-lived "holder" process, with private tmpfs
# on /run, /var/lib/corosync and /dev/shm: corosync's IPC (abstract unix
# sockets, per network namespace, plus libqb's /dev/shm rings) and the
# lockd socket /run/csvfs/lockd.sock are then private to the node.
# Every command for node I enters the holder's namespaces (nsenter -m -n).
#
# Everything this run creates carries the prefix "cv<pid>-", so parallel
# runs cannot collide and cleanup only ever touches what this run made.
# cluster_destroy runs from the EXIT/INT/TERM trap, pass or fail.
#
# Environment:
#   top_builddir   build tree holding lockmgr/csvfs-lockd, tools/csvfs-admin,
#                  tests/cluster/lkm-probe (default: ../../build from here)
#   TMPDIR         where the per-run work dir goes (default /tmp)
#   CV_KEEP=1      keep the work dir (logs) after the run
#   CV_VERBOSE=1   echo every step
#   CV_LEASE_MS    lease_timeout_ms of every lockd (default 5000; 0: none
#                  given, lockd derives it from corosync's timeouts)
#   CV_LOG_LEVEL   lockd [log] level (default debug: the logs are what a
#                  failed scenario prints)
#   CV_LOCKD_CONF  extra lines for the [cluster] section of every lockd's
#                  csvfs.conf (e.g. a fence_command; @NODE@ becomes the
#                  node's name); see also fence_agent
#   CV_TOTEM, CV_TOKEN, CV_CONSENSUS, CV_TOKEN_COEFF, CV_KNET_PING
#                  corosync's timeouts (_corosync_totem, _corosync_knet)
#   CV_QUORUM_CONF lines for corosync.conf's quorum { } section (two_node,
#                  last_man_standing, a device { } ...)
#   CV_RING_NODES  how many of the nodes are corosync nodes (default all;
#                  the others, e.g. a quorum witness, only share the net)
#   CV_PRIVATE_ETC=1  a private tmpfs on /etc/corosync in every node, for
#                  the qdevice/qnetd certificate databases

set -u

CV_SRCDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$CV_SRCDIR/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"

CV_LOCKD=${CV_LOCKD:-$top_builddir/lockmgr/csvfs-lockd}
CV_ADMIN=${CV_ADMIN:-$top_builddir/tools/csvfs-admin}
CV_PROBE=${CV_PROBE:-$top_builddir/tests/cluster/lkm-probe}

CV_PREFIX="cv$$"
CV_NET=${CV_NET:-10.213.77}
CV_SOCK=/run/csvfs/lockd.sock   # inside each node's mount namespace
# The lease must outlast corosync's failure detection and ring re-forming
# (token 1000 + knet's token_coefficient 650 per node beyond two, plus
# consensus 1200: about 2.9 s with 3 nodes; a merge that fails half-way,
# as when a node flaps, pauses deliveries about as long) by a heartbeat
# period (lease/8, CV_HB_MS) and some slack; otherwise every survivor's
# lease runs out on each membership change and it loses all its files.
# 5000 leaves 4.4 s.
CV_LEASE_MS=${CV_LEASE_MS:-5000}
CV_HB_MS=$(( CV_LEASE_MS / 8 ))  # lockd's heartbeat period (conf.h)
CV_LOCKD_CONF=${CV_LOCKD_CONF:-}
CV_LOG_LEVEL=${CV_LOG_LEVEL:-debug}
CV_VOLUME=${CV_VOLUME:-5c3f0a9e-7d41-4b2a-9c11-2f6e8d0b4a17}
CV_NAME=$(basename "$0" .sh)

CV_WORK=""
CV_MAINPID=$BASHPID
CV_NODES=0
CV_DESTROYED=0
declare -a CV_HOLDER=() CV_COROSYNC=() CV_LOCKDPID=()
# CV_LOCKD_BIN[I]: another csvfs-lockd binary for node I (a test build
# speaking other protocol versions, for the rolling upgrade scenario)
declare -a CV_LOCKD_BIN=()
declare -A CV_PROBEPID=() CV_PROBEFD=() CV_PROBEMARK=() CV_PROBENODE=()
declare -a CV_EXTRA_PIDS=()

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

# ------------------------------------------------------------------------
# Messages, time, results.

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
CV_T0=$(now_ms)

log() { echo "[$(( $(now_ms) - CV_T0 ))ms] $*"; }
vlog() { [ "${CV_VERBOSE:-0}" = 1 ] && log "$@"; return 0; }

# _notrun REASON: the scenario cannot run here (exit 77, says why).
_notrun() {
	echo "$CV_NAME: not run: $*"
	exit 77
}

# _dump_logs: every log of this run, last lines of each.
_dump_logs() {
	local f
	[ -n "$CV_WORK" ] && [ -d "$CV_WORK" ] || return 0
	for f in "$CV_WORK"/*/*.log "$CV_WORK"/*.log; do
		[ -f "$f" ] || continue
		echo "----- ${f#"$CV_WORK"/} (last 60 lines)"
		tail -n 60 "$f"
	done
}

# _fail MSG: print, dump the logs of every node, exit 1.
_fail() {
	echo "$CV_NAME: FAIL: $*" >&2
	_dump_logs >&2
	exit 1
}

_pass() {
	log "$CV_NAME: PASS"
	exit 0
}

# ------------------------------------------------------------------------
# Preconditions.

require_root() { [ "$(id -u)" = 0 ] || _notrun "needs root (network namespaces)"; }

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || _notrun "command '$c' not installed"
	done
}

require_bin() {
	local b
	for b in "$@"; do
		[ -x "$b" ] || _notrun "binary $b not built"
	done
}

require_netns() {
	require_root
	require_cmd ip nsenter unshare jq timeout
	ip netns add "$CV_PREFIX-probe" 2>/dev/null ||
		_notrun "ip netns add does not work here"
	ip netns del "$CV_PREFIX-probe"
}

require_corosync() {
	require_cmd corosync corosync-quorumtool corosync-cmapctl
}

# ------------------------------------------------------------------------
# Work dir and cleanup.

cv_setup() {
	CV_WORK=$(mktemp -d "${TMPDIR:-/tmp}/$CV_PREFIX-$CV_NAME.XXXXXX") ||
		_notrun "cannot make a work dir under ${TMPDIR:-/tmp}"
	trap 'cluster_destroy' EXIT
	trap 'echo "$CV_NAME: interrupted" >&2; exit 130' INT
	trap 'echo "$CV_NAME: terminated" >&2; exit 143' TERM
	vlog "work dir $CV_WORK"
}

_kill_pid() { # PID: SIGCONT (it may be stopped), SIGKILL, reap
	local p=$1
	[ -n "$p" ] || return 0
	kill -CONT "$p" 2>/dev/null
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	return 0
}

cluster_destroy() {
	local rc=$? i ns p k
	# Only the scenario's own shell cleans up, never a subshell.
	[ "$BASHPID" = "$CV_MAINPID" ] || return "$rc"
	[ "$CV_DESTROYED" = 1 ] && return 0
	CV_DESTROYED=1
	trap - EXIT INT TERM
	for k in "${!CV_PROBEFD[@]}"; do
		eval "exec ${CV_PROBEFD[$k]}>&-" 2>/dev/null
	done
	for p in "${CV_PROBEPID[@]}" "${CV_LOCKDPID[@]}" "${CV_COROSYNC[@]}" \
		"${CV_EXTRA_PIDS[@]}"; do
		_kill_pid "$p"
	done
	for p in "${CV_HOLDER[@]}"; do
		_kill_pid "$p"
	done
	# Our namespaces only (exact prefix with its dash): anything left
	# inside them was started by this run.
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' |
		grep "^$CV_PREFIX-"); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$p" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [ -n "$CV_WORK" ] && [ -d "$CV_WORK" ]; then
		if [ "${CV_KEEP:-0}" = 1 ] || { [ "$rc" != 0 ] && [ "$rc" != 77 ] && [ "${CV_KEEP_ON_FAIL:-0}" = 1 ]; }; then
			echo "$CV_NAME: logs kept in $CV_WORK"
		else
			rm -rf "$CV_WORK"
		fi
	fi
	exit "$rc"
}

# ------------------------------------------------------------------------
# Waiting.

# wait_for TIMEOUT_S CMD...: run CMD every 100 ms until it succeeds
# (return 0) or TIMEOUT_S seconds pass (return 1).
wait_for() {
	local t=$1 deadline
	shift
	deadline=$(( $(now_ms) + t * 1000 ))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.1
	done
}

# ------------------------------------------------------------------------
# One standalone lockd (no corosync, no namespaces), node "solo", with its
# socket ($SA_SOCK) and state dir ($SA_STATE) in the work dir.

SA_SOCK="" SA_STATE="" SA_PID=""

standalone_setup() {
	SA_SOCK=$CV_WORK/lockd.sock
	SA_STATE=$CV_WORK/state
	cat >"$CV_WORK/csvfs.conf" <<CONF
[cluster]
transport = standalone
node = solo
socket = $SA_SOCK
lease_timeout_ms = $CV_LEASE_MS

[log]
level = info
CONF
}

sadmin() { timeout 10 "$CV_ADMIN" --socket "$SA_SOCK" "$@"; }
standalone_ready() { sadmin --json status 2>/dev/null | jq -e '.ready == true' >/dev/null; }

# standalone_start N: lockd run N (log lockd-N.log), ready; pid in SA_PID.
standalone_start() {
	"$CV_LOCKD" -f --standalone -c "$CV_WORK/csvfs.conf" --socket "$SA_SOCK" \
		--state-dir "$SA_STATE" >"$CV_WORK/lockd-$1.log" 2>&1 </dev/null &
	SA_PID=$!
	CV_EXTRA_PIDS+=("$SA_PID")
	wait_for 10 standalone_ready ||
		_fail "lockd run $1 not ready: $(tail -n 3 "$CV_WORK/lockd-$1.log")"
}

# ------------------------------------------------------------------------
# Nodes.

ns_of() { echo "$CV_PREFIX-n$1"; }
addr_of() { echo "$CV_NET.$(( 10 + $1 ))"; }
ndir() { echo "$CV_WORK/n$1"; }

# node_exec I CMD...: run CMD inside node I's network and mount namespaces.
node_exec() {
	local i=$1
	shift
	nsenter -t "${CV_HOLDER[$i]}" -m -n -- "$@"
}

# node_spawn I LOGFILE CMD...: start CMD in the background inside node I;
# sets CV_SPAWNED to its pid (nsenter without -p execs, no extra fork).
node_spawn() {
	local i=$1 logf=$2
	shift 2
	nsenter -t "${CV_HOLDER[$i]}" -m -n -- "$@" >>"$logf" 2>&1 </dev/null &
	CV_SPAWNED=$!
}

_hub() { echo "$CV_PREFIX-hub"; }

_link_has_carrier() {
	ip -n "$(ns_of "$1")" link show eth0 | grep -q 'LOWER_UP'
}

# cluster_create N: N node namespaces on one bridge, holders with
# private tmpfs mounts, nothing started yet.
cluster_create() {
	local n=$1 i ns hub d
	[ -n "$CV_WORK" ] || cv_setup
	hub=$(_hub)
	ip netns add "$hub" || _fail "ip netns add $hub"
	ip -n "$hub" link set lo up
	ip -n "$hub" link add br0 type bridge || _fail "bridge in $hub"
	ip -n "$hub" link set br0 up
	for i in $(seq 1 "$n"); do
		ns=$(ns_of "$i")
		d=$(ndir "$i")
		mkdir -p "$d"
		ip netns add "$ns" || _fail "ip netns add $ns"
		ip -n "$ns" link set lo up
		# Both ends are made inside our namespaces, never on the host.
		ip -n "$hub" link add "h$i" type veth peer name eth0 netns "$ns" ||
			_fail "veth for node $i"
		ip -n "$hub" link set "h$i" master br0
		ip -n "$hub" link set "h$i" up
		ip -n "$ns" addr add "$(addr_of "$i")/24" dev eth0
		ip -n "$ns" link set eth0 up
		# The holder keeps node i's mount namespace alive.
		ip netns exec "$ns" unshare -m --propagation private sh -c '
			mount -t tmpfs -o mode=755 cv-run /run &&
			mkdir -p /run/csvfs /run/corosync /run/lock &&
			mount -t tmpfs -o mode=755 cv-varlib /var/lib/corosync &&
			mount -t tmpfs -o mode=1777 cv-shm /dev/shm &&
			{ [ "$2" != 1 ] ||
			  mount -t tmpfs -o mode=755 cv-etc /etc/corosync; } &&
			touch "$1/holder.ready" && exec sleep 100000' \
			holder "$d" "${CV_PRIVATE_ETC:-0}" >"$d/holder.log" 2>&1 &
		CV_HOLDER[$i]=$!
	done
	CV_NODES=$n
	for i in $(seq 1 "$n"); do
		wait_for 10 test -e "$(ndir "$i")/holder.ready" ||
			_fail "node $i: namespace holder did not come up"
	done
	# Carrier on every node's link before corosync starts.
	for i in $(seq 1 "$n"); do
		wait_for 5 _link_has_carrier "$i" ||
			_fail "node $i: eth0 has no carrier"
	done
	log "cluster: $n nodes ($CV_PREFIX-n1..n$n on $CV_NET.0/24)"
}

# ------------------------------------------------------------------------
# corosync.

# The totem timeouts: CV_TOTEM=defaults leaves corosync's own defaults;
# else token CV_TOKEN (1000), consensus CV_CONSENSUS (1200), join 50, and
# token_coefficient CV_TOKEN_COEFF when set.
_corosync_totem() {
	[ "${CV_TOTEM:-}" = defaults ] && return 0
	printf '\ttoken: %s\n\tconsensus: %s\n\tjoin: 50\n' \
		"${CV_TOKEN:-1000}" "${CV_CONSENSUS:-1200}"
	[ -n "${CV_TOKEN_COEFF:-}" ] &&
		printf '\ttoken_coefficient: %s\n' "$CV_TOKEN_COEFF"
	return 0
}

# knet's link monitoring: CV_KNET_PING=INTERVAL,TIMEOUT (ms) sets
# knet_ping_interval and knet_ping_timeout; unset leaves corosync's
# (token / 4 and token / 2: on a lossy link two lost pings in a row take
# the link down, and every node becomes a singleton until pongs return).
_corosync_knet() {
	[ -n "${CV_KNET_PING:-}" ] || return 0
	printf '\tinterface {\n\t\tlinknumber: 0\n'
	printf '\t\tknet_ping_interval: %s\n\t\tknet_ping_timeout: %s\n' \
		"${CV_KNET_PING%,*}" "${CV_KNET_PING#*,}"
	printf '\t}\n'
}

_corosync_conf() {
	local i=$1 j
	cat <<EOF
# corosync.conf of node n$i, generated by tests/cluster/common.sh
totem {
	version: 2
	cluster_name: $CV_PREFIX
	transport: knet
	crypto_cipher: none
	crypto_hash: none
$(_corosync_totem)
$(_corosync_knet)
}
nodelist {
EOF
	for j in $(seq 1 "${CV_RING_NODES:-$CV_NODES}"); do
		cat <<EOF
	node {
		nodeid: $j
		name: n$j
		ring0_addr: $(addr_of "$j")
	}
EOF
	done
	cat <<EOF
}
quorum {
	provider: corosync_votequorum
${CV_QUORUM_CONF:-}
}
logging {
	to_stderr: no
	to_syslog: no
	to_logfile: yes
	logfile: $(ndir "$i")/corosync.log
	timestamp: hires
	fileline: off
	debug: off
}
EOF
}

node_start_corosync() {
	local i=$1 d
	d=$(ndir "$i")
	_corosync_conf "$i" >"$d/corosync.conf"
	node_spawn "$i" "$d/corosync.out" corosync -f -c "$d/corosync.conf"
	CV_COROSYNC[$i]=$CV_SPAWNED
	echo "$CV_SPAWNED" >"$d/corosync.pid"
	vlog "node $i: corosync pid ${CV_COROSYNC[$i]}"
}

# node_quorum_ok I MEMBERS: node I's votequorum is quorate with MEMBERS.
node_quorum_ok() {
	local i=$1 m=$2 out
	out=$(node_exec "$i" timeout 5 corosync-quorumtool -s 2>/dev/null) || true
	echo "$out" | grep -Eq '^Quorate: +Yes' || return 1
	echo "$out" | grep -Eq "^Nodes: +$m\$" || return 1
}

# corosync_wait_quorate N NODES...: each listed node quorate with N members.
corosync_wait_quorate() {
	local m=$1 i
	shift
	for i in "$@"; do
		wait_for 30 node_quorum_ok "$i" "$m" ||
			_fail "node $i: corosync not quorate with $m members"
	done
}

# ------------------------------------------------------------------------
# csvfs-lockd.

_lockd_conf() {
	local i=$1
	cat <<EOF
# csvfs.conf of node n$i, generated by tests/cluster/common.sh
[cluster]
transport = corosync
node = n$i
socket = $CV_SOCK
state_dir = $(ndir "$i")/state
$( [ "$CV_LEASE_MS" != 0 ] && echo "lease_timeout_ms = $CV_LEASE_MS")
${CV_LOCKD_CONF//@NODE@/n$i}

[log]
level = $CV_LOG_LEVEL
EOF
}

# node_start_lockd I [ARGS...]: csvfs-lockd -f on node I (the binary
# CV_LOCKD_BIN[I] if set, else CV_LOCKD).
node_start_lockd() {
	local i=$1 d
	shift
	d=$(ndir "$i")
	_lockd_conf "$i" >"$d/csvfs.conf"
	node_spawn "$i" "$d/lockd.log" "${CV_LOCKD_BIN[$i]:-$CV_LOCKD}" -f \
		-c "$d/csvfs.conf" --socket "$CV_SOCK" "$@"
	CV_LOCKDPID[$i]=$CV_SPAWNED
	echo "$CV_SPAWNED" >"$d/lockd.pid"
	vlog "node $i: lockd pid ${CV_LOCKDPID[$i]}"
}

# fence_agent [kill] [FAILS]: configure tests/cluster/fence-agent.sh as
# every lockd's fence_command (call before the lockds start).  "kill":
# the agent kills the fenced node's corosync and lockd, as a power switch
# would; FAILS: it fails that many times first.  Its log: fence.log.
fence_agent() {
	local mode=${1:-} fails=${2:-0}
	[ -n "$CV_WORK" ] || cv_setup
	: >"$CV_WORK/fence.log"
	rm -f "$CV_WORK/fence.kill"
	[ "$mode" = kill ] && : >"$CV_WORK/fence.kill"
	echo "$fails" >"$CV_WORK/fence.fail"
	CV_LOCKD_CONF="${CV_LOCKD_CONF:-}
fence_command = $CV_SRCDIR/fence-agent.sh $CV_WORK
fence_command_timeout_ms = 10000"
}

# admin I ARGS...: csvfs-admin on node I (bounded).
admin() {
	local i=$1
	shift
	node_exec "$i" timeout 10 "$CV_ADMIN" --socket "$CV_SOCK" "$@"
}

# status_field I JQ: a field of node I's `csvfs-admin --json status`.
status_field() {
	admin "$1" --json status 2>/dev/null | jq -r "$2"
}

# node_ready I N: lockd of node I ready (quorate, no transfer) with N members.
node_ready() {
	local out
	out=$(admin "$1" --json status 2>/dev/null) || return 1
	echo "$out" | jq -e --argjson n "$2" \
		'.ready == true and .quorate == true and (.members | length) == $n' \
		>/dev/null
}

# cluster_wait_ready N [NODES...]: those nodes (default 1..N) ready with N.
cluster_wait_ready() {
	local n=$1 i nodes
	shift
	nodes=${*:-$(seq 1 "$n")}
	for i in $nodes; do
		wait_for 30 node_ready "$i" "$n" ||
			_fail "node $i: lockd not ready with $n members: $(admin "$i" --json status 2>&1)"
	done
}

# cluster_start N: cluster_create, corosync and lockd everywhere, ready.
cluster_start() {
	local n=$1 i t
	cluster_create "$n"
	t=$(now_ms)
	for i in $(seq 1 "$n"); do node_start_corosync "$i"; done
	corosync_wait_quorate "$n" $(seq 1 "$n")
	log "corosync: $n members quorate after $(( $(now_ms) - t )) ms"
	t=$(now_ms)
	for i in $(seq 1 "$n"); do node_start_lockd "$i"; done
	cluster_wait_ready "$n"
	log "lockd: $n nodes ready after $(( $(now_ms) - t )) ms"
}

# ------------------------------------------------------------------------
# Faults.

node_kill() { # I: kill -9 corosync and lockd of node I
	local i=$1
	[ -n "${CV_LOCKDPID[$i]:-}" ] && kill -KILL "${CV_LOCKDPID[$i]}" 2>/dev/null
	[ -n "${CV_COROSYNC[$i]:-}" ] && kill -KILL "${CV_COROSYNC[$i]}" 2>/dev/null
	wait "${CV_LOCKDPID[$i]:-0}" "${CV_COROSYNC[$i]:-0}" 2>/dev/null
	CV_LOCKDPID[$i]=""
	CV_COROSYNC[$i]=""
	log "node $i: killed (corosync + lockd, SIGKILL)"
}

# node_stop_lockd I: SIGTERM to node I's lockd (it gives up what it owns
# and leaves), wait for it to exit.
node_stop_lockd() {
	local i=$1 p=${CV_LOCKDPID[$1]:-} guard rc
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	# lockd is our child: wait reaps it; the guard ends a hung one
	(sleep 15; kill -KILL "$p" 2>/dev/null) &
	guard=$!
	wait "$p" 2>/dev/null
	rc=$?
	kill "$guard" 2>/dev/null
	wait "$guard" 2>/dev/null
	CV_LOCKDPID[$i]=""
	[ "$rc" = 137 ] && _fail "node $i: lockd did not stop within 15 s of SIGTERM"
	log "node $i: lockd stopped (SIGTERM, exit $rc)"
}

node_kill_lockd() {
	local i=$1
	[ -n "${CV_LOCKDPID[$i]:-}" ] && kill -KILL "${CV_LOCKDPID[$i]}" 2>/dev/null
	wait "${CV_LOCKDPID[$i]:-0}" 2>/dev/null
	CV_LOCKDPID[$i]=""
	log "node $i: lockd killed (SIGKILL)"
}

node_stop() { # I: SIGSTOP corosync and lockd
	local i=$1 p
	for p in "${CV_COROSYNC[$i]:-}" "${CV_LOCKDPID[$i]:-}"; do
		[ -n "$p" ] && kill -STOP "$p"
	done
	log "node $i: stopped (SIGSTOP)"
}

node_cont() {
	local i=$1 p
	for p in "${CV_COROSYNC[$i]:-}" "${CV_LOCKDPID[$i]:-}"; do
		[ -n "$p" ] && kill -CONT "$p"
	done
	log "node $i: continued (SIGCONT)"
}

link_down() { ip -n "$(_hub)" link set "h$1" down; log "node $1: link down"; }
link_up() { ip -n "$(_hub)" link set "h$1" up; log "node $1: link up"; }

# _cut I J: node I drops everything coming from node J (one way: J -> I).
_cut() {
	node_exec "$1" iptables -w 5 -A INPUT -s "$(addr_of "$2")" -j DROP
}

# cut_oneway FROM TO: packets from FROM no longer reach TO.
cut_oneway() {
	_cut "$2" "$1" || _fail "iptables in node $2"
	log "cut: n$1 -> n$2 dropped"
}

# partition "A..." "B..." [...]: no traffic between nodes of different
# groups, both ways; traffic inside a group is untouched.
partition() {
	local g h i j groups=("$@") desc=""
	for g in $(seq 0 $(( ${#groups[@]} - 1 ))); do
		desc="$desc${desc:+ | }${groups[$g]}"
		for h in $(seq 0 $(( ${#groups[@]} - 1 ))); do
			[ "$g" = "$h" ] && continue
			for i in ${groups[$g]}; do
				for j in ${groups[$h]}; do
					_cut "$i" "$j" || _fail "iptables in node $i"
				done
			done
		done
	done
	log "partition: $desc"
}

# heal: drop every cut (flush INPUT in every node).
heal() {
	local i
	for i in $(seq 1 "$CV_NODES"); do
		node_exec "$i" iptables -w 5 -F INPUT
	done
	log "partition healed"
}

# ------------------------------------------------------------------------
# Invariants.

# table_digests NODES...: "node digest" lines.
assert_tables_identical() {
	local nodes=${*:-$(seq 1 "$CV_NODES")} i d first="" out=""
	for i in $nodes; do
		d=$(status_field "$i" '.table_digest') ||
			_fail "node $i: no status"
		[ -n "$d" ] && [ "$d" != null ] ||
			_fail "node $i: status without table_digest"
		out="$out n$i=$d"
		[ -z "$first" ] && first=$d
		[ "$d" = "$first" ] || _fail "I5: tables differ:$out"
	done
	log "I5: tables identical on nodes $(echo $nodes):$out"
}

# tables_identical NODES...: the same, as a predicate for wait_for.
tables_identical() {
	local i d first=""
	for i in "$@"; do
		d=$(status_field "$i" '.table_digest') || return 1
		[ -n "$d" ] && [ "$d" != null ] || return 1
		[ -z "$first" ] && first=$d
		[ "$d" = "$first" ] || return 1
	done
}

# owner_of I FILEID: "owner epoch" of FILEID as node I sees it.
owner_of() {
	admin "$1" --json owners 2>/dev/null | jq -r --argjson f "$2" \
		'[.[] | select(.fileid == $f)] | if length == 0 then "null 0"
		 else (.[0].owner // "null" | tostring) + " " + (.[0].epoch | tostring) end'
}

# owner_is I FILEID NAME: predicate.
owner_is() {
	local o
	o=$(owner_of "$1" "$2") || return 1
	[ "${o%% *}" = "$3" ]
}

# node_state_is I NAME STATE: node I sees node NAME in STATE.
node_state_is() {
	admin "$1" --json nodes 2>/dev/null | jq -e --arg n "$2" --arg s "$3" \
		'any(.[]; .name == $n and .state == $s)' >/dev/null
}

# assert_same_owner FILEID NODES...: every listed node sees one and the
# same owner and epoch for FILEID (I1 as seen from outside); the
# "owner epoch" seen goes to SAME_OWNER.
assert_same_owner() {
	local f=$1 i o first=""
	shift
	for i in "$@"; do
		o=$(owner_of "$i" "$f") || _fail "node $i: owners query failed"
		[ -z "$first" ] && first=$o
		[ "$o" = "$first" ] ||
			_fail "I1: file $f: node $i sees '$o', node ${1} sees '$first'"
	done
	SAME_OWNER=$first
}

# ------------------------------------------------------------------------
# lkm-probe: a scriptable csvfs client.  Commands go through a fifo, its
# output (replies and events, one per line) to NAME.log.

# probe_start NAME I [ARGS...]: start a probe on node I.
probe_start() {
	local name=$1 i=$2 fifo logf fd
	shift 2
	fifo="$CV_WORK/probe-$name.in"
	logf="$(ndir "$i")/probe-$name.log"
	mkfifo "$fifo"
	: >"$logf"
	nsenter -t "${CV_HOLDER[$i]}" -m -n -- "$CV_PROBE" --socket "$CV_SOCK" \
		--volume "$CV_VOLUME" "$@" <"$fifo" >>"$logf" 2>&1 &
	CV_PROBEPID[$name]=$!
	exec {fd}>"$fifo"
	CV_PROBEFD[$name]=$fd
	CV_PROBEMARK[$name]=0
	CV_PROBENODE[$name]=$i
	vlog "probe $name on node $i: pid ${CV_PROBEPID[$name]}"
}

probe_log() { echo "$(ndir "${CV_PROBENODE[$1]}")/probe-$1.log"; }

# probe_cmd NAME LINE: send one command.
probe_cmd() {
	vlog "probe $1 <- $2"
	echo "$2" >&"${CV_PROBEFD[$1]}" || _fail "probe $1 is gone"
}

# probe_expect NAME REGEX TIMEOUT_S: wait for the next output line
# (after the last one matched) matching REGEX; the line goes to
# PROBE_LINE.  Not in a $(...) subshell: it keeps the probe's mark.
probe_expect() {
	local name=$1 re=$2 t=$3 logf deadline ln
	logf=$(probe_log "$name")
	deadline=$(( $(now_ms) + t * 1000 ))
	PROBE_LINE=""
	while :; do
		ln=$(tail -n +"$(( CV_PROBEMARK[$name] + 1 ))" "$logf" |
			grep -n -E -m1 -- "$re") && break
		if [ "$(now_ms)" -ge "$deadline" ]; then
			return 1
		fi
		sleep 0.05
	done
	CV_PROBEMARK[$name]=$(( CV_PROBEMARK[$name] + ${ln%%:*} ))
	PROBE_LINE=${ln#*:}
	vlog "probe $name -> $PROBE_LINE"
}

# probe_seen NAME REGEX: REGEX appears anywhere in the probe's output.
probe_seen() { grep -q -E -- "$2" "$(probe_log "$1")"; }

# field KEY LINE: value of key=value in a reply line.
field() { echo "$2" | sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p"; }

probe_stop() {
	local name=$1
	eval "exec ${CV_PROBEFD[$name]}>&-"
	unset "CV_PROBEFD[$name]"
	_kill_pid "${CV_PROBEPID[$name]}"
	unset "CV_PROBEPID[$name]"
}

# probe_skip NAME: forget the output so far (next expect sees new lines).
probe_skip() {
	CV_PROBEMARK[$1]=$(wc -l <"$(probe_log "$1")")
}
