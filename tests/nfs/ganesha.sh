# SPDX-License-Identifier: LGPL-2.1-or-later
# shellcheck shell=bash
#
# ganesha.sh - sourced by the nfs scenarios: a private NFS server for one
# test.  nfs-ganesha (VFS FSAL) exports a directory of the test's work dir
# over NFSv3 and NFSv4, in the foreground under the test's control, with
# its pid file, log and NFSv4 recovery directory in the work dir, so it
# never touches a system instance's state.  NFSv3 needs rpcbind (mountd
# and nfs register there): if no rpcbind runs in this network namespace a
# private one is started (rpcbind -f) and stopped again; one that was
# already running is used and left alone.
#
#   ganesha_start WORKDIR EXPORTDIR [ADDR]   start, wait until it serves
#   ganesha_stop                             stop (also from the trap)
#   ganesha_restart [DOWN_SECONDS]           stop, wait, start again
#   ganesha_down / ganesha_up                the same in two steps
#   ganesha_url [EXTRA_ARGS]                 nfs://ADDR/EXPORTDIR?version=N...
#
# GANESHA_NFS_VERSION (3, the default, or 4) is the version= of
# ganesha_url.  GANESHA_RO_EXPORT=DIR, set before ganesha_start, exports
# DIR too, read-only (Export_Id 78): the server itself refuses every
# change there.  ganesha_ro_url names it.  GANESHA_NO_CACHE=1 makes
# ganesha look at the exported file system on every call (no attribute
# or directory cache), so that changes made there directly, behind the
# server's back, are seen at once.  GANESHA_VERF_EXPORT=DIR exports DIR
# too, read-write (Export_Id 79), with UseCookieVerifier: its READDIR
# replies carry the directory's change attribute as cookie verifier and
# a continuation under an older one fails with BAD_COOKIE, as RFC 1813
# and RFC 7530 allow any server to do.  ganesha_verf_url names it.
#
# Run in a network namespace with `GANESHA_NS=name ganesha_start ...`.
# Installs nothing: scripts/setup-deps brings nfs-ganesha,
# nfs-ganesha-vfs and rpcbind.  A failed start calls _notrun (exit 77)
# with the reason, as the caller defines it.

GANESHA_PID= GANESHA_RPCBIND_PID= GANESHA_NS=${GANESHA_NS:-} GANESHA_STARTED=
GANESHA_NFS_VERSION=${GANESHA_NFS_VERSION:-3}
GANESHA_RO_EXPORT=${GANESHA_RO_EXPORT:-} GANESHA_NO_CACHE=${GANESHA_NO_CACHE:-0}
GANESHA_VERF_EXPORT=${GANESHA_VERF_EXPORT:-}
GANESHA_WORK= GANESHA_EXPORT= GANESHA_ADDR=127.0.0.1

_g_exec() { if [ -n "$GANESHA_NS" ]; then ip netns exec "$GANESHA_NS" "$@"; else "$@"; fi; }

_g_export() { # ID PATH ACCESS_TYPE NOCACHE_LINE
	cat <<EOF
EXPORT {
	Export_Id = $1;
	Path = "$2";
	Pseudo = "$2";
	Access_Type = $3;
	Squash = No_Root_Squash;
	Protocols = 3, 4;
	Transports = TCP;
	SecType = sys;
	FSAL { Name = VFS; }
	$4
}
EOF
}

_g_conf() {
	local nocache=
	[ "$GANESHA_NO_CACHE" = 1 ] && nocache="Attr_Expiration_Time = 0;"
	[ -n "$nocache" ] && echo "MDCACHE { Dir_Chunk = 0; }"
	cat <<EOF
NFS_CORE_PARAM {
	Bind_addr = $GANESHA_ADDR;
	Protocols = 3, 4;
	Enable_NLM = false;
	Enable_RQUOTA = false;
}
NFSv4 {
	RecoveryBackend = fs;
	RecoveryRoot = "$GANESHA_WORK/recovery";
	Graceless = true;
	Lease_Lifetime = 10;
	# owners as numbers, as knfsd sends them for AUTH_SYS: libnfs maps
	# a user@domain name it cannot look up to 65534
	Only_Numeric_Owners = true;
}
EOF
	_g_export 77 "$GANESHA_EXPORT" RW "$nocache"
	[ -z "$GANESHA_RO_EXPORT" ] || _g_export 78 "$GANESHA_RO_EXPORT" RO "$nocache"
	[ -z "$GANESHA_VERF_EXPORT" ] ||
		_g_export 79 "$GANESHA_VERF_EXPORT" RW "$nocache UseCookieVerifier = true;"
}

_g_rpcbind() {
	_g_exec rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && return 0
	# a plain command, not a function: $! must be the daemon itself
	${GANESHA_NS:+ip netns exec "$GANESHA_NS"} rpcbind -f -w >>"$GANESHA_WORK/rpcbind.out" 2>&1 &
	GANESHA_RPCBIND_PID=$!
	for _ in $(seq 30); do
		_g_exec rpcinfo -p 127.0.0.1 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

_g_launch() {
	GANESHA_STARTED=$(date +%s)
	${GANESHA_NS:+ip netns exec "$GANESHA_NS"} ganesha.nfsd -F -L "$GANESHA_WORK/ganesha.log" \
		-f "$GANESHA_WORK/ganesha.conf" -p "$GANESHA_WORK/ganesha.pid" \
		>>"$GANESHA_WORK/ganesha.out" 2>&1 &
	GANESHA_PID=$!
	# serving once mountd answers and nfs is registered
	for _ in $(seq 100); do
		kill -0 "$GANESHA_PID" 2>/dev/null || return 1
		_g_exec rpcinfo -p "$GANESHA_ADDR" 2>/dev/null | grep -q mountd &&
			_g_exec rpcinfo -t "$GANESHA_ADDR" nfs 3 >/dev/null 2>&1 &&
			return 0
		sleep 0.1
	done
	return 1
}

ganesha_start() { # WORKDIR EXPORTDIR [ADDR]
	GANESHA_WORK=$1/ganesha GANESHA_EXPORT=$2 GANESHA_ADDR=${3:-127.0.0.1}
	command -v ganesha.nfsd >/dev/null ||
		_notrun "ganesha.nfsd missing (scripts/setup-deps)"
	command -v rpcbind >/dev/null || _notrun "rpcbind missing (scripts/setup-deps)"
	[ -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] ||
		ls /usr/lib/*/ganesha/libfsalvfs.so >/dev/null 2>&1 ||
		_notrun "nfs-ganesha-vfs missing (scripts/setup-deps)"
	if _g_exec ss -Hltn "sport = :2049" | grep -q .; then
		_notrun "port 2049 is taken (a system NFS server?)"
	fi
	mkdir -p "$GANESHA_WORK/recovery" "$GANESHA_EXPORT" ${GANESHA_RO_EXPORT:+"$GANESHA_RO_EXPORT"} \
		${GANESHA_VERF_EXPORT:+"$GANESHA_VERF_EXPORT"}
	_g_conf >"$GANESHA_WORK/ganesha.conf"
	_g_rpcbind || _notrun "cannot start rpcbind"
	_g_launch || { ganesha_stop; _notrun "ganesha.nfsd did not start: $(tail -2 "$GANESHA_WORK/ganesha.log" 2>/dev/null)"; }
}

ganesha_stop() {
	if [ -n "$GANESHA_PID" ]; then
		kill "$GANESHA_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$GANESHA_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$GANESHA_PID" 2>/dev/null
		wait "$GANESHA_PID" 2>/dev/null
		GANESHA_PID=
	fi
	if [ -n "$GANESHA_RPCBIND_PID" ]; then
		kill "$GANESHA_RPCBIND_PID" 2>/dev/null
		wait "$GANESHA_RPCBIND_PID" 2>/dev/null
		GANESHA_RPCBIND_PID=
	fi
}

# Stop only the NFS server (rpcbind stays); ganesha_up starts it again.
ganesha_down() {
	local rb=$GANESHA_RPCBIND_PID
	GANESHA_RPCBIND_PID=
	ganesha_stop
	GANESHA_RPCBIND_PID=$rb
}
# ganesha derives its NFSv3 write verifier from its start time in whole
# seconds: started again within the same second it would keep the old
# verifier, and a client could not tell that unstable writes may be gone.
# A real restart takes longer; wait for the next second so it looks real.
ganesha_up() {
	while [ "$(date +%s)" -le "${GANESHA_STARTED:-0}" ]; do sleep 0.1; done
	_g_launch
}

ganesha_restart() { # [DOWN_SECONDS]
	ganesha_down
	sleep "${1:-0}"
	ganesha_up
}

ganesha_kill() { # SIGKILL the server, as a crash
	[ -n "$GANESHA_PID" ] || return 0
	kill -9 "$GANESHA_PID" 2>/dev/null
	wait "$GANESHA_PID" 2>/dev/null
	GANESHA_PID=
}

ganesha_url() { # [EXTRA_ARGS]
	echo "nfs://$GANESHA_ADDR$GANESHA_EXPORT?version=$GANESHA_NFS_VERSION${1:+&$1}"
}

ganesha_ro_url() { # [EXTRA_ARGS]: the GANESHA_RO_EXPORT one
	echo "nfs://$GANESHA_ADDR$GANESHA_RO_EXPORT?version=$GANESHA_NFS_VERSION${1:+&$1}"
}

ganesha_verf_url() { # [EXTRA_ARGS]: the GANESHA_VERF_EXPORT one
	echo "nfs://$GANESHA_ADDR$GANESHA_VERF_EXPORT?version=$GANESHA_NFS_VERSION${1:+&$1}"
}
