# SPDX-License-Identifier: LGPL-2.1-or-later
#
# csvfs.sh - verbs for the scenarios that mount csvfs on every node.
#
# Sourced by the t-csvfs-*.sh scenarios after common.sh.  Every node runs
# a csvfs mount of ONE shared backing directory ($CV_BACKING, in the work
# dir on the host file system, which every node's mount namespace sees)
# on the same mount point ($CV_MNT), connected to that node's lockd; the
# mount lives only in the node's private mount namespace, so every access
# to it goes through node_sh / node_exec.
#
# Cleanup: csvfs_setup wraps common.sh's cluster_destroy (the EXIT trap)
# so that every mount is unmounted and every csvfs, node shell and
# qemu-io this file started is gone before the namespaces are torn down,
# pass or fail.
#
# Environment (besides common.sh's):
#   CV_CSVFS        the csvfs binary (default $top_builddir/csvfs/csvfs)
#   CV_CSVFS_OPTS   extra -o options for every mount
#   CV_SH_TIMEOUT   seconds a node_sh command may take (default 30)

CV_CSVFS=${CV_CSVFS:-$top_builddir/csvfs/csvfs}
CV_SH_TIMEOUT=${CV_SH_TIMEOUT:-30}
CV_BACKING=""
CV_MNT=""
declare -a CV_CSVFSPID=()
declare -A CV_SHPID=() CV_SHFD=() CV_SHNODE=() CV_SHSEQ=()

require_csvfs() {
	require_cmd getfattr dd cmp
	[ -c /dev/fuse ] || _notrun "no /dev/fuse"
	require_bin "$CV_CSVFS"
}

# ------------------------------------------------------------------------
# Set-up and teardown.

# csvfs_setup: work dir, the shared backing directory, the mount point,
# and the teardown hook.  Call before cluster_start.
csvfs_setup() {
	[ -n "$CV_WORK" ] || cv_setup
	CV_BACKING=$CV_WORK/backing
	CV_MNT=$CV_WORK/csv
	mkdir -p "$CV_BACKING" "$CV_MNT" || _fail "cannot make $CV_BACKING"
	# Keep common.sh's cleanup, run ours first.
	if ! declare -F _cv_cluster_destroy >/dev/null; then
		eval "$(declare -f cluster_destroy |
			sed '1s/^cluster_destroy/_cv_cluster_destroy/')"
		cluster_destroy() {
			local rc=$?
			if [ "$BASHPID" = "$CV_MAINPID" ] &&
				[ "$CV_DESTROYED" = 0 ]; then
				csvfs_teardown
			fi
			(exit "$rc")
			_cv_cluster_destroy
		}
	fi
}

# csvfs_teardown: node shells, then every csvfs mount (bounded).
csvfs_teardown() {
	local k i
	for k in "${!CV_SHPID[@]}"; do
		node_shell_stop "$k"
	done
	for i in "${!CV_CSVFSPID[@]}"; do
		[ -n "${CV_CSVFSPID[$i]}" ] && node_umount_csvfs "$i" 3
	done
	return 0
}

# ------------------------------------------------------------------------
# Block volumes.

# block_authkey N: one corosync authkey, the same bytes on nodes 1..N (in
# their private /etc/corosync: set CV_PRIVATE_ETC=1 before cluster_start):
# the coordinator channel's key is derived from it.
block_authkey() {
	local n=$1 i
	head -c 128 /dev/urandom >"$CV_WORK/authkey" || _fail "authkey"
	for i in $(seq 1 "$n"); do
		node_exec "$i" sh -c "cat '$CV_WORK/authkey' >/etc/corosync/authkey &&
			chmod 400 /etc/corosync/authkey" ||
			_fail "node $i: cannot write /etc/corosync/authkey"
	done
}

# ------------------------------------------------------------------------
# Mounts.

# node_mounted I: csvfs is mounted on $CV_MNT in node I's mount namespace.
node_mounted() {
	awk -v m="$CV_MNT" '$2 == m && $3 ~ /^fuse/ { f = 1 } END { exit !f }' \
		"/proc/${CV_HOLDER[$1]}/mounts" 2>/dev/null
}

# node_mount_csvfs I [OPTS]: csvfs BACKING MNT -f -o lockd=...,node=nI
# in node I, in the background; waits until mounted.
node_mount_csvfs() {
	local i=$1 extra=${2:-} d o
	d=$(ndir "$i")
	o="lockd=$CV_SOCK,node=n$i"
	[ -n "${CV_CSVFS_OPTS:-}" ] && o="$o,$CV_CSVFS_OPTS"
	[ -n "$extra" ] && o="$o,$extra"
	node_spawn "$i" "$d/csvfs.log" "$CV_CSVFS" "${CV_SOURCE:-$CV_BACKING}" "$CV_MNT" \
		-f -o "$o"
	CV_CSVFSPID[$i]=$CV_SPAWNED
	CV_EXTRA_PIDS+=("$CV_SPAWNED")
	if ! wait_for 10 node_mounted "$i"; then
		kill -0 "${CV_CSVFSPID[$i]}" 2>/dev/null ||
			_fail "node $i: csvfs exited: $(tail -n 3 "$d/csvfs.log")"
		_fail "node $i: csvfs not mounted on $CV_MNT after 10 s"
	fi
	vlog "node $i: csvfs pid ${CV_CSVFSPID[$i]} mounted ($o)"
}

# csvfs_mount_all N: mount on nodes 1..N (one after the other: the first
# creates the volume record, the others read it).
# With CV_BACKEND=nfs, $CV_BACKING is exported by nfs-ganesha in the hub
# namespace (address $CV_NET.1 on the bridge) and every node mounts it as
# nfs://; the checks that look at $CV_BACKING directly still hold, since
# the NFS fileid is the backing inode number.
_csvfs_nfs_server() {
	local hub=$CV_PREFIX-hub
	_notrun() { echo "SKIP: $*"; cluster_destroy; exit 77; }
	. "$(dirname "${BASH_SOURCE[0]}")/../nfs/ganesha.sh"
	ip -n "$hub" addr add "$CV_NET.1/24" dev br0 || _fail "hub address"
	ip -n "$hub" link set lo up
	GANESHA_NS=$hub ganesha_start "$CV_WORK" "$CV_BACKING" "$CV_NET.1"
	CV_EXTRA_PIDS+=("$GANESHA_PID" ${GANESHA_RPCBIND_PID:+"$GANESHA_RPCBIND_PID"})
	CV_SOURCE=$(ganesha_url "timeout=5")
	log "nfs: ganesha in $hub serves $CV_SOURCE"
}

csvfs_mount_all() {
	local i t
	t=$(now_ms)
	[ "${CV_BACKEND:-dir}" = nfs ] && [ -z "${CV_SOURCE:-}" ] && _csvfs_nfs_server
	for i in $(seq 1 "$1"); do node_mount_csvfs "$i"; done
	log "csvfs: mounted on $1 nodes after $(( $(now_ms) - t )) ms"
}

# node_umount_csvfs I [WAIT_S]: umount in node I, wait for csvfs to exit
# (it releases what it still owns); past WAIT_S (default 10), lazy
# unmount and SIGKILL.  Returns 1 if csvfs had to be killed.
node_umount_csvfs() {
	local i=$1 w=${2:-10} p=${CV_CSVFSPID[$1]:-} rc=0
	[ -n "$p" ] || return 0
	kill -CONT "$p" 2>/dev/null
	node_mounted "$i" && node_exec "$i" timeout 5 umount "$CV_MNT" 2>/dev/null
	if ! wait_for "$w" _pid_gone "$p"; then
		node_exec "$i" umount -l "$CV_MNT" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
		rc=1
	fi
	wait "$p" 2>/dev/null
	CV_CSVFSPID[$i]=""
	vlog "node $i: csvfs unmounted (rc $rc)"
	return $rc
}

_pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# ------------------------------------------------------------------------
# Commands inside a node.

# node_sh I 'CMD': run CMD with bash inside node I's namespaces, where its
# csvfs mount is visible; $CSV is the mount point, $W the work dir.
# Bounded by CV_SH_TIMEOUT.
node_sh() {
	local i=$1
	shift
	node_exec "$i" env CSV="$CV_MNT" W="$CV_WORK" \
		timeout -k 2 "$CV_SH_TIMEOUT" bash -c "$*"
}

# A long-lived shell inside a node, fed commands through a fifo: it keeps
# descriptors open across commands (exec 3<>"$CSV/f"), like a VM keeps its
# disk open.  Output goes to nI/sh-NAME.log.

# node_shell_start NAME I: start shell NAME on node I.
node_shell_start() {
	local name=$1 i=$2 fifo logf fd
	fifo="$CV_WORK/sh-$name.in"
	logf="$(ndir "$i")/sh-$name.log"
	mkfifo "$fifo"
	: >"$logf"
	nsenter -t "${CV_HOLDER[$i]}" -m -n -- env CSV="$CV_MNT" W="$CV_WORK" \
		bash --noprofile --norc -s <"$fifo" >>"$logf" 2>&1 &
	CV_SHPID[$name]=$!
	CV_EXTRA_PIDS+=("$!")
	exec {fd}>"$fifo"
	CV_SHFD[$name]=$fd
	CV_SHNODE[$name]=$i
	CV_SHSEQ[$name]=0
	# wblk TAG BLOCK [fsync]: pwrite the tagged 4 KiB block BLOCK through
	# descriptor 3 (the open handle; dd's seek= would be relative to its
	# offset), e.g. wblk n1 2 fsync.  Errors end with strerror's text.
	cat >&"$fd" <<'EOS'
wblk() { perl -e '($t, $b, $s) = @ARGV; $d = sprintf("%-31s\n", "$t blk=$b") x 128;
	sysseek(STDOUT, $b * 4096, 0) or die "seek: $!\n";
	$n = syswrite(STDOUT, $d); defined $n or die "write: $!\n";
	$n == 4096 or die "short write: $n\n";
	if ($s) { require IO::Handle; STDOUT->sync or die "fsync: $!\n" }' \
	"$1" "$2" "${3:-}" >&3; }
EOS
}

# node_shell_send NAME 'CMD': start CMD in shell NAME without waiting;
# its sequence number goes to SH_SEQ (for node_shell_wait).
node_shell_send() {
	local name=$1 cmd=$2 seq
	seq=$(( CV_SHSEQ[$name] + 1 ))
	CV_SHSEQ[$name]=$seq
	SH_SEQ=$seq
	vlog "shell $name <- $cmd"
	printf 'echo "@@begin %s"\n{ %s\n} 2>&1; echo "@@end %s $?"\n' \
		"$seq" "$cmd" "$seq" >&"${CV_SHFD[$name]}" ||
		_fail "shell $name is gone"
}

# node_shell_wait NAME SEQ [TIMEOUT_S]: wait for command SEQ of shell
# NAME; returns its status (124 on timeout); its output goes to SH_OUT.
node_shell_wait() {
	local name=$1 seq=$2 t=${3:-$CV_SH_TIMEOUT} logf deadline ln
	logf="$(ndir "${CV_SHNODE[$name]}")/sh-$name.log"
	deadline=$(( $(now_ms) + t * 1000 ))
	while ! ln=$(grep -m1 "^@@end $seq " "$logf"); do
		if [ "$(now_ms)" -ge "$deadline" ]; then
			SH_OUT=$(sed -n "/^@@begin $seq\$/,\$p" "$logf" | sed 1d)
			return 124
		fi
		sleep 0.05
	done
	SH_OUT=$(sed -n "/^@@begin $seq\$/,/^@@end $seq /p" "$logf" |
		sed '1d;$d')
	return "${ln##* }"
}

# node_shell NAME 'CMD' [TIMEOUT_S]: run CMD in shell NAME and wait for
# it; returns CMD's status (124 on timeout), its output in SH_OUT.
node_shell() {
	node_shell_send "$1" "$2"
	node_shell_wait "$1" "$SH_SEQ" "${3:-$CV_SH_TIMEOUT}"
}

node_shell_stop() {
	local name=$1
	[ -n "${CV_SHFD[$name]:-}" ] && eval "exec ${CV_SHFD[$name]}>&-"
	_kill_pid "${CV_SHPID[$name]}"
	unset "CV_SHFD[$name]" "CV_SHPID[$name]" "CV_SHNODE[$name]"
}

# ------------------------------------------------------------------------
# Virtual xattrs and owners.

# csv_xattr I FILE NAME: user.csvfs.NAME of $CV_MNT/FILE, read on node I.
csv_xattr() {
	node_exec "$1" timeout 10 getfattr --only-values --absolute-names \
		-n "user.csvfs.$3" "$CV_MNT/$2" 2>/dev/null
}
csv_owner() { csv_xattr "$1" "$2" owner; }
csv_epoch() { csv_xattr "$1" "$2" epoch; }
csv_fileid() { csv_xattr "$1" "$2" fileid; }

# csv_owner_is I FILE NAME: predicate (NAME "" for no owner).
csv_owner_is() {
	local o
	o=$(csv_owner "$1" "$2") || return 1
	[ "$o" = "$3" ]
}

# admin_owner I FILE: "owner epoch" of FILE from csvfs-admin --json
# owners PATH on node I ("null 0" when nobody owns it).
admin_owner() {
	admin "$1" --json owners "$CV_MNT/$2" 2>/dev/null | jq -r \
		'if length == 0 then "null 0" else
		 (.[0].owner // "null" | tostring) + " " +
		 ((.[0].epoch // 0) | tostring) end'
}

# assert_csv_owner FILE NAME NODES...: every listed node shows NAME as
# user.csvfs.owner of FILE, one and the same user.csvfs.epoch, and the
# same owner and epoch in csvfs-admin --json owners (I1 as seen through
# the mounts).  The epoch goes to CSV_EPOCH.
assert_csv_owner() {
	local f=$1 want=$2 i o e a first=""
	shift 2
	for i in "$@"; do
		o=$(csv_owner "$i" "$f") || _fail "n$i: getfattr owner $f failed"
		e=$(csv_epoch "$i" "$f") || _fail "n$i: getfattr epoch $f failed"
		[ "$o" = "$want" ] ||
			_fail "I1: n$i shows owner '$o' of $f, expected '$want'"
		[ -z "$first" ] && first=$e
		[ "$e" = "$first" ] ||
			_fail "I1: n$i shows epoch $e of $f, another node $first"
		a=$(admin_owner "$i" "$f") || _fail "n$i: csvfs-admin owners failed"
		[ "$a" = "${want:-null} $e" ] || [ -z "$want" ] ||
			_fail "I1: n$i: csvfs-admin owners says '$a', xattrs '$want $e'"
	done
	CSV_EPOCH=$first
	log "owner of $f: '${want}' epoch $first on nodes $*"
}

# ------------------------------------------------------------------------
# Data patterns: 4 KiB blocks, each made of one repeated tag line naming
# the writer and the block, so a reader tells whose block it sees.

# mkpattern TAG FIRST COUNT FILE: COUNT blocks for blocks FIRST.. of TAG.
mkpattern() {
	local tag=$1 first=$2 n=$3 out=$4 b line
	: >"$out"
	for b in $(seq "$first" $(( first + n - 1 ))); do
		line=$(printf '%-31s\n' "$tag blk=$b")
		yes "$line" | head -c 4096 >>"$out"
	done
}

# block_tag FILE BLOCK (on the host, e.g. the backing file): its tag line.
block_tag() {
	dd if="$1" bs=4096 skip="$2" count=1 status=none 2>/dev/null |
		head -n1 | tr -d ' \0'
}

# node_block_tags I FILE FIRST COUNT: tags of the blocks of $CV_MNT/FILE
# read on node I with O_DIRECT-free dd, one per line.
node_block_tags() {
	node_sh "$1" "for b in \$(seq $3 $(( $3 + $4 - 1 ))); do
		dd if=\"\$CSV/$2\" bs=4096 skip=\$b count=1 status=none |
		head -n1 | tr -d ' \\0\\n'; echo; done"
}

# expect_tags I FILE FIRST COUNT TAG...: the blocks read on node I carry
# the given tags ("TAG blk=B"), one TAG argument per block.
expect_tags() {
	local i=$1 f=$2 first=$3 n=$4 got want="" b k=0
	shift 4
	got=$(node_block_tags "$i" "$f" "$first" "$n") ||
		_fail "n$i: cannot read $f"
	for b in $(seq "$first" $(( first + n - 1 ))); do
		want="$want${want:+
}$1blk=$b"
		shift
	done
	[ "$got" = "$want" ] ||
		_fail "n$i reads $f blocks $first..$(( first + n - 1 )):
$(paste <(echo "$want") <(echo "$got") | sed 's/^/  want|got  /')"
}

# assert_csv_tables_identical: I5 on every node.
assert_csv_tables_identical() {
	wait_for 5 tables_identical $(seq 1 "$CV_NODES") || true
	assert_tables_identical
}
