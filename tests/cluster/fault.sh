# SPDX-License-Identifier: LGPL-2.1-or-later
#
# fault.sh - verbs for the t-fault-*.sh scenarios: the data-verification
# workload (dvw) on csvfs mounts, crashing whole nodes, and the closing
# checks every fault scenario ends with.
#
# Sourced after common.sh and csvfs.sh.  Every dvw writer logs to
# $CV_WORK/dvw-<file>-<name>.log on the host (outside csvfs, so it
# survives its node); dvw_check reads the backing file with every log of
# that file.  Writers run in the background inside a node and are killed
# by the scenario's cleanup (CV_EXTRA_PIDS), pass or fail.

CV_DVW=${CV_DVW:-$top_builddir/tests/cluster/dvw}
declare -A CV_DVWPID=()

require_dvw() { require_bin "$CV_DVW"; }

# dvw_start NAME I FILE [DVW-ARGS...]: start writer NAME on node I
# writing $CV_MNT/FILE (node name nI in its stamps).
dvw_start() {
	local name=$1 i=$2 f=$3
	shift 3
	node_spawn "$i" "$(ndir "$i")/dvw-$name.out" "$CV_DVW" write \
		"$CV_MNT/$f" "n$i" "$CV_WORK/dvw-$f-$name.log" "$@"
	CV_DVWPID[$name]=$CV_SPAWNED
	CV_EXTRA_PIDS+=("$CV_SPAWNED")
}

dvw_log() { echo "$CV_WORK/dvw-$2-$1.log"; } # NAME FILE

# dvw_wait NAME TIMEOUT_S: wait for writer NAME to exit; its status goes
# to DVW_RC (124 if it had to be killed).
dvw_wait() {
	local p=${CV_DVWPID[$1]}
	if wait_for "$2" _pid_gone "$p"; then
		wait "$p" 2>/dev/null
		DVW_RC=$?
	else
		_kill_pid "$p"
		DVW_RC=124
	fi
}

dvw_kill() { _kill_pid "${CV_DVWPID[$1]}"; }

# dvw_acquired NAME FILE: writer NAME got ownership (its "A" line).
dvw_acquired() { grep -q '^A ' "$(dvw_log "$1" "$2")" 2>/dev/null; }
# dvw_writes NAME FILE: number of successful writes so far.
dvw_writes() { grep -c '^W ' "$(dvw_log "$1" "$2")" 2>/dev/null; }
# dvw_wrote NAME FILE N: at least N successful writes (for wait_for).
dvw_wrote() { [ "$(dvw_writes "$1" "$2")" -ge "$3" ]; }
dvw_failed() { grep -q '^E ' "$(dvw_log "$1" "$2")" 2>/dev/null; }
# dvw_epoch NAME FILE: the epoch writer NAME was granted.
dvw_epoch() { awk '$1 == "A" { print $3; exit }' "$(dvw_log "$1" "$2")"; }
# dvw_first_write_ms NAME FILE: wall time (ms) of its first write, from
# the "A" line: when ownership was confirmed.
dvw_first_write_ms() { awk '$1 == "A" { print $5; exit }' "$(dvw_log "$1" "$2")"; }

# dvw_check FILE: the checker on the backing file with every writer's
# log of FILE; fails the scenario on a torn, stale or lost block.
dvw_check() {
	local f=$1 out
	out=$("$CV_DVW" check "$CV_BACKING/$f" "$CV_WORK"/dvw-"$f"-*.log 2>&1)
	case $? in
	0) log "$f: ${out##*$'\n'}" ;;
	*) _fail "dvw check $f:
$out" ;;
	esac
}

# node_crash I: kill -9 everything of node I - its dvw writers, csvfs,
# csvfs-lockd and corosync - as a power loss would.
node_crash() {
	local i=$1 k
	# The cluster side dies first: killed in the other order, a writer's
	# death lets csvfs release its files in an orderly way (the kernel
	# closes the writer's handles) before lockd goes, and the survivors
	# see a node that held nothing - not a crash.
	node_kill "$i"
	for k in "${!CV_DVWPID[@]}"; do
		[ "$(_pid_node "${CV_DVWPID[$k]}")" = "$i" ] &&
			kill -KILL "${CV_DVWPID[$k]}" 2>/dev/null
	done
	[ -n "${CV_CSVFSPID[$i]:-}" ] && kill -KILL "${CV_CSVFSPID[$i]}" 2>/dev/null
	log "node $i: crashed (writers and csvfs SIGKILL too)"
}

# _pid_node PID: the node whose namespace PID runs in (by its netns).
_pid_node() {
	local j ino
	ino=$(stat -L -c %i "/proc/$1/ns/net" 2>/dev/null) || return 0
	for j in $(seq 1 "$CV_NODES"); do
		[ "$(stat -L -c %i "/proc/${CV_HOLDER[$j]}/ns/net")" = "$ino" ] &&
			echo "$j" && return 0
	done
}

# node_restart I: after node_crash: lazy-unmount the dead mount, start
# corosync, lockd and csvfs again, wait until all nodes are ready.
node_restart() {
	local i=$1 t
	t=$(now_ms)
	node_exec "$i" umount -l "$CV_MNT" 2>/dev/null
	wait "${CV_CSVFSPID[$i]:-0}" 2>/dev/null
	CV_CSVFSPID[$i]=""
	node_start_corosync "$i"
	corosync_wait_quorate "$CV_NODES" $(seq 1 "$CV_NODES")
	node_start_lockd "$i"
	cluster_wait_ready "$CV_NODES"
	node_mount_csvfs "$i"
	log "node $i: back after $(( $(now_ms) - t )) ms"
}

# node_restart_lockd I: kill -9 node I's lockd and start a new one.
node_restart_lockd() {
	node_kill_lockd "$1"
	node_start_lockd "$1"
	cluster_wait_ready "$CV_NODES"
	log "node $1: lockd restarted"
}

# fault_end FILES...: the closing checks: every node ready, tables
# identical (I5), and the checker clean on every FILE.
fault_end() {
	local f
	cluster_wait_ready "$CV_NODES"
	wait_for 10 tables_identical $(seq 1 "$CV_NODES") || true
	assert_tables_identical
	for f in "$@"; do dvw_check "$f"; done
}
