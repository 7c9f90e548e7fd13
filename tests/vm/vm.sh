# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vm.sh - verbs for the scenarios that run a real guest on csvfs.
#
# Sourced by tests/vm/t-*.sh after tests/cluster/common.sh and csvfs.sh.
# A guest is qemu-system-x86_64 under TCG booting the kernel and
# initramfs of build-guest.sh, whose init (vmio.c) writes verifiable
# blocks to its virtio disk, a qcow2 on the csvfs mount, opened with
# cache=none and QEMU's image locking on, and reports on its serial
# console which writes are durable ("VMIO ACK gen=G seq=S").
#
# A guest has a NAME ("a", "b" ...) and runs as one QEMU process at a time
# on some node (two during a live migration); each such process is an
# instance NAME.K (K = 1, 2 ...) with its files in the node's directory:
#   vm-NAME.K.console   the serial console (QEMU's chardev logfile)
#   vm-NAME.K.serial    the serial console's socket (input: vmctl send)
#   vm-NAME.K.qmp       the QMP socket (vmctl qmp)
#   vm-NAME.K.log       QEMU's own stdout and stderr
# Unix sockets live in the file system, so the host reaches the sockets
# of a QEMU that runs in a node's network namespace.
#
# QEMU runs with -no-reboot: the guest's power-off is a reset, which ends
# QEMU, and so does a guest kernel panic (panic=-1).  The disk has
# werror=stop,rerror=stop, as recommended for VMs on csvfs: an EIO pauses
# the guest (QMP status io-error, shown when a wait fails) instead of
# failing its writes.
#
# Cleanup: vm_setup wraps cluster_destroy (after csvfs.sh's wrapper) so
# that every QEMU is killed before the csvfs mounts go.
#
# Environment:
#   VM_MEM       guest memory in MiB (default 128)
#   VM_APPEND    extra kernel arguments for every boot

VM_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
VM_CTL=$VM_DIR/vmctl
VM_GUEST=""
VM_QEMU=${VM_QEMU:-qemu-system-x86_64}
declare -A VM_INST=() VM_NODE=() VM_PID=() VM_CONSOLES=() VM_IMG=() VM_ACKED=()

# require_qemu: the only reason a VM scenario skips.
require_qemu() {
	command -v "$VM_QEMU" >/dev/null 2>&1 ||
		_notrun "$VM_QEMU not installed (Debian: apt-get install qemu-system-x86; scripts/setup-deps installs it)"
	require_cmd qemu-img perl
}

# vm_setup: the guest (built once, cached in the build tree) and the
# teardown hook.  Call after csvfs_setup.
vm_setup() {
	local out
	out=$("$VM_DIR/build-guest.sh" 2>&1) ||
		_fail "cannot build the guest: $out"
	VM_GUEST=$(echo "$out" | tail -n 1)
	[ -f "$VM_GUEST/kernel" ] || _fail "build-guest.sh: $out"
	if ! declare -F _vm_prev_destroy >/dev/null; then
		eval "$(declare -f cluster_destroy |
			sed '1s/^cluster_destroy/_vm_prev_destroy/')"
		cluster_destroy() {
			local rc=$?
			if [ "$BASHPID" = "$CV_MAINPID" ] &&
				[ "$CV_DESTROYED" = 0 ]; then
				vm_teardown
			fi
			(exit "$rc")
			_vm_prev_destroy
		}
	fi
}

vm_teardown() {
	local k
	for k in "${!VM_PID[@]}"; do
		_kill_pid "${VM_PID[$k]}"
	done
	return 0
}

# vm_base NAME.K: path prefix of an instance's files.
vm_base() {
	local n=${VM_NODE[$1]}
	echo "$(ndir "$n")/vm-$1"
}

vm_qmp() { # INST JSON [TIMEOUT_S]
	perl "$VM_CTL" qmp "$(vm_base "$1").qmp" "$2" "${3:-10}"
}

# vm_status INST: QEMU's run state (running, inmigrate, postmigrate,
# io-error, paused ...).
vm_status() {
	vm_qmp "$1" '{"execute":"query-status"}' 2>/dev/null |
		jq -r '.return.status // empty'
}

vm_status_is() { [ "$(vm_status "$1")" = "$2" ]; }

# vm_cur NAME: the newest instance of NAME.
vm_cur() { echo "$1.${VM_INST[$1]}"; }

# vm_qemu NAME NODE IMG [QEMU ARGS...]: start a new instance of NAME on
# NODE with the disk $CV_MNT/IMG; VM_BOOT_ARGS are the vmio.* kernel
# arguments of this boot.  The instance name goes to VM_LAST.
vm_qemu() {
	local name=$1 node=$2 img=$3 k inst base
	shift 3
	k=$(( ${VM_INST[$name]:-0} + 1 ))
	inst=$name.$k
	VM_INST[$name]=$k
	VM_NODE[$inst]=$node
	VM_IMG[$name]=$img
	base=$(vm_base "$inst")
	: >"$base.console"
	VM_CONSOLES[$name]="${VM_CONSOLES[$name]:-} $base.console"
	node_spawn "$node" "$base.log" "$VM_QEMU" -name "$inst" \
		-nodefaults -no-user-config -machine pc,accel=tcg -cpu qemu64 \
		-m "${VM_MEM:-128}" -smp 1 -display none -no-reboot \
		-kernel "$VM_GUEST/kernel" -initrd "$VM_GUEST/initramfs.gz" \
		-append "console=ttyS0 panic=-1 quiet ${VM_APPEND:-} ${VM_BOOT_ARGS:-}" \
		-drive "file=$CV_MNT/$img,format=qcow2,cache=none,if=virtio,werror=stop,rerror=stop" \
		-chardev "socket,id=con,path=$base.serial,server=on,wait=off,logfile=$base.console" \
		-serial chardev:con \
		-qmp "unix:$base.qmp,server=on,wait=off" "$@"
	VM_PID[$inst]=$CV_SPAWNED
	CV_EXTRA_PIDS+=("$CV_SPAWNED")
	VM_LAST=$inst
	wait_for 20 _vm_qmp_up "$inst" ||
		_fail "$inst on n$node: QEMU did not start: $(tail -n 5 "$base.log")"
	vlog "$inst on n$node: pid ${VM_PID[$inst]}"
}

_vm_qmp_up() {
	kill -0 "${VM_PID[$1]}" 2>/dev/null || return 2
	[ -S "$(vm_base "$1").qmp" ] && vm_status "$1" | grep -q .
}

# vm_alive INST: its QEMU still runs.
vm_alive() { kill -0 "${VM_PID[$1]}" 2>/dev/null; }

# vm_wait_exit INST TIMEOUT_S: QEMU exits (guest power-off); reaped.
vm_wait_exit() {
	wait_for "$2" _pid_gone "${VM_PID[$1]}" || return 1
	wait "${VM_PID[$1]}" 2>/dev/null
	unset "VM_PID[$1]"
	return 0
}

# vm_kill INST: SIGKILL its QEMU (a crash), reaped.
vm_kill() {
	[ -n "${VM_PID[$1]:-}" ] || return 0
	_kill_pid "${VM_PID[$1]}"
	unset "VM_PID[$1]"
}

# vm_quit INST: QMP quit, bounded; SIGKILL past 10 s.
vm_quit() {
	vm_qmp "$1" '{"execute":"quit"}' >/dev/null 2>&1
	vm_wait_exit "$1" 10 || vm_kill "$1"
}

# vm_lines INST REGEX: complete console lines of INST matching REGEX (no
# CR).  QEMU logs the console as the guest's UART sends it, a character at
# a time: a line without its newline yet is left out.
vm_lines() {
	local f n
	f=$(vm_base "$1").console
	n=$(wc -l <"$f")
	head -n "$n" "$f" | tr -d '\r' | grep -a -E -- "$2"
}

# vm_wait_line INST REGEX TIMEOUT_S: wait until the console shows REGEX;
# the last matching line goes to VM_LINE.  Fails at once if QEMU exits.
vm_wait_line() {
	local inst=$1 re=$2 t=$3 deadline
	deadline=$(( $(now_ms) + t * 1000 ))
	while :; do
		VM_LINE=$(vm_lines "$inst" "$re" | tail -n 1)
		[ -n "$VM_LINE" ] && return 0
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		if ! vm_alive "$inst"; then
			VM_LINE=$(vm_lines "$inst" "$re" | tail -n 1)
			[ -n "$VM_LINE" ]
			return
		fi
		sleep 0.05
	done
}

# vm_acked NAME: "G:S,..." the last acknowledged write of every
# generation of NAME, over the consoles of all its instances.
vm_acked() {
	cat ${VM_CONSOLES[$1]:-/dev/null} | tr -d '\r' |
		sed -n 's/.*VMIO ACK gen=\([0-9]*\) seq=\([0-9]*\) t=.*/\1 \2/p' |
		awk '{ if (!($1 in m) || $2 > m[$1]) m[$1] = $2 }
		     END { for (g in m) printf "%s:%s\n", g, m[g] }' |
		sort -n | paste -sd, -
}

# vm_last_seq INST GEN: the last acknowledged seq of GEN on INST's
# console (-1 if none).
vm_last_seq() {
	local s
	s=$(vm_lines "$1" "VMIO ACK gen=$2 " |
		sed -n 's/.*seq=\([0-9]*\).*/\1/p' | tail -n 1)
	echo "${s:--1}"
}

# vm_gen INST: the generation INST's guest runs.
vm_gen() {
	vm_lines "$1" 'VMIO GEN gen=' | sed -n 's/.*gen=\([0-9]*\).*/\1/p' |
		tail -n 1
}

# vm_fail INST MSG: fail with the end of INST's console and log.
vm_fail() {
	local inst=$1
	shift
	_fail "$* ($inst, status '$(vm_status "$inst" 2>/dev/null)')
----- console of $inst:
$(tr -d '\r' <"$(vm_base "$inst").console" | tail -n 25)
----- log of $inst:
$(tail -n 10 "$(vm_base "$inst").log")"
}

# vm_boot_start NAME NODE IMG [ARGS]: a new boot of NAME on NODE; ARGS
# are vmio.* kernel arguments; vmio.acked is added from what NAME's
# earlier boots acknowledged.  The instance goes to VM_LAST.
vm_boot_start() {
	local name=$1 node=$2 img=$3 args=${4:-} acked
	acked=$(vm_acked "$name")
	VM_BOOT_ARGS="$args${acked:+ vmio.acked=$acked}"
	vm_qemu "$name" "$node" "$img"
	VM_BOOT_ARGS=""
	VM_ACKED[$VM_LAST]=$acked
}

# vm_boot_wait INST: the verify at boot of INST is clean; its line goes
# to VM_VERIFY.  A verify that checked no acknowledged block while some
# were acknowledged fails too.
vm_boot_wait() {
	local inst=$1 acked=${VM_ACKED[$1]:-}
	vm_wait_line "$inst" 'VMIO VERIFY ' 120 ||
		vm_fail "$inst" "no verify verdict on the console"
	VM_VERIFY=${VM_LINE#*VMIO }
	case $VM_VERIFY in
	*"result=ok"*) ;;
	*) vm_fail "$inst" "verify at boot on n${VM_NODE[$inst]} failed (acked $acked): $VM_VERIFY" ;;
	esac
	if [ -n "$acked" ]; then
		case $VM_VERIFY in
		*" acked=0 "*) vm_fail "$inst" "the verify checked no acknowledged block: $VM_VERIFY" ;;
		esac
	fi
	log "$inst on n${VM_NODE[$inst]}: boot verify ok with acked '${acked:-none}': ${VM_VERIFY#VERIFY result=ok }"
}

# vm_boot NAME NODE IMG [ARGS]: vm_boot_start and vm_boot_wait.
vm_boot() {
	vm_boot_start "$@"
	vm_boot_wait "$VM_LAST"
}

# vm_wait_acks INST GEN N TIMEOUT_S: INST acknowledges write N of GEN.
vm_wait_acks() {
	local inst=$1 g=$2 n=$3 deadline
	deadline=$(( $(now_ms) + $4 * 1000 ))
	while [ "$(vm_last_seq "$inst" "$g")" -lt "$n" ]; do
		[ "$(now_ms)" -ge "$deadline" ] &&
			vm_fail "$inst" "gen $g: no ack of write $n after $4 s (last $(vm_last_seq "$inst" "$g"))"
		vm_alive "$inst" || vm_fail "$inst" "QEMU exited"
		sleep 0.05
	done
}

# vm_stop INST: "stop" on the serial console; the guest flushes, prints
# its last ack and powers off; QEMU exits.
vm_stop() {
	local inst=$1
	perl "$VM_CTL" send "$(vm_base "$inst").serial" stop ||
		vm_fail "$inst" "cannot write to the serial console"
	vm_wait_line "$inst" 'VMIO (STOPPED|DONE) ' 60 ||
		vm_fail "$inst" "guest did not stop"
	vm_wait_exit "$inst" 30 || vm_fail "$inst" "QEMU did not exit at power-off"
	log "$inst: stopped: ${VM_LINE#*VMIO }"
}

# vm_incoming INST DEST PORT: a new instance of INST's guest on node DEST
# waiting with -incoming on DEST's address (instance in VM_LAST, its URI
# in VM_URI).
vm_incoming() {
	local src=$1 dest=$2 port=$3 name=${1%.*}
	VM_URI="tcp:$(addr_of "$dest"):$port"
	vm_qemu "$name" "$dest" "${VM_IMG[$name]}" -incoming "$VM_URI"
	wait_for 20 vm_status_is "$VM_LAST" inmigrate ||
		vm_fail "$VM_LAST" "destination not waiting for the migration"
}

# vm_migrate_go SRC URI: QMP migrate on SRC.
vm_migrate_go() {
	vm_qmp "$1" "{\"execute\":\"migrate\",\"arguments\":{\"uri\":\"$2\"}}" \
		>/dev/null || vm_fail "$1" "QMP migrate to $2 refused"
}

# vm_migrate_start SRC DEST PORT: vm_incoming, then vm_migrate_go; the
# destination instance goes to VM_LAST.
vm_migrate_start() {
	vm_incoming "$1" "$2" "$3"
	vm_migrate_go "$1" "$VM_URI"
}

# vm_migrate_wait SRC DST TIMEOUT_S: the migration SRC -> DST completed;
# DST runs, SRC (postmigrate) quits.  Downtime and total time (ms, as
# QEMU measured them) go to MIG_DOWNTIME and MIG_TOTAL.
vm_migrate_wait() {
	local src=$1 dst=$2 t=$3 deadline q st
	deadline=$(( $(now_ms) + t * 1000 ))
	while :; do
		q=$(vm_qmp "$src" '{"execute":"query-migrate"}') ||
			vm_fail "$src" "query-migrate failed: $q"
		st=$(echo "$q" | jq -r '.return.status')
		case $st in
		completed) break ;;
		failed | cancelled) vm_fail "$src" "migration $st: $q" ;;
		esac
		[ "$(now_ms)" -ge "$deadline" ] &&
			vm_fail "$src" "migration still $st after $t s: $q"
		sleep 0.1
	done
	MIG_DOWNTIME=$(echo "$q" | jq -r '.return.downtime')
	MIG_TOTAL=$(echo "$q" | jq -r '.return["total-time"]')
	wait_for 20 vm_status_is "$dst" running || {
		vm_lines "$dst" 'Kernel panic|BUG:' | grep -q . &&
			vm_fail "$dst" "the guest kernel crashed on the destination after the migration (QEMU TCG; no I/O error)"
		vm_fail "$dst" "destination not running after the migration"
	}
	vm_status_is "$src" postmigrate ||
		vm_fail "$src" "source not in postmigrate: $(vm_status "$src")"
	vm_quit "$src"
}

# vm_node_crash I: node I dies: its corosync and lockd, then every QEMU
# on it, then its csvfs, all SIGKILL (the cluster side first, as
# fault.sh's node_crash: the survivors see a node that held its files).
vm_node_crash() {
	local i=$1 k
	node_kill "$i"
	for k in "${!VM_PID[@]}"; do
		[ "${VM_NODE[$k]}" = "$i" ] && vm_kill "$k"
	done
	if [ -n "${CV_CSVFSPID[$i]:-}" ]; then
		kill -KILL "${CV_CSVFSPID[$i]}" 2>/dev/null
		wait "${CV_CSVFSPID[$i]}" 2>/dev/null
	fi
	log "node $i: crashed (corosync, lockd, QEMU and csvfs SIGKILL)"
}

# The start of a cluster scenario with guests: every requirement (a
# missing one skips), then N nodes with corosync, lockd and csvfs
# mounted.
vm_cluster() {
	require_qemu
	require_netns
	require_corosync
	require_csvfs
	require_bin "$CV_LOCKD" "$CV_ADMIN"
	csvfs_setup
	vm_setup
	cluster_start "$1"
	csvfs_mount_all "$1"
}
