# SPDX-License-Identifier: LGPL-2.1-or-later
#
# common.sh - what the replica scenarios share, sourced after tap.sh:
#   rep_setup NAME      check for csvfs-replicad, rsend and the openssl
#                       CLI (else exit 77 with the reason), make a private
#                       work dir, a CA and certificates, the allow-list,
#                       and set the EXIT trap that stops our replicad and
#                       removes the work dir
#   rd_start [ARGS]     start csvfs-replicad -f on a free loopback port
#                       (PORT) with the store $WORK/${RD_STORE:-store}; RD_PID
#   rd_stop             SIGTERM it (SIGKILL after 10 s)
#   rd_kill             SIGKILL it
#   rsend [ARGS]        the test primary (cert primary-a) against it
#   mat_check G P       materialise point P of group G, check its sums
# Environment: CV_KEEP=1 keeps the work dir.
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
REPLICAD=$top_builddir/replica/csvfs-replicad
RSEND=$top_builddir/tests/replica/rsend
RD_PID=""

rep_cleanup() {
	[ -n "$RD_PID" ] && rd_kill
	cd /
	if [ "${CV_KEEP:-0}" = 1 ]; then
		echo "work dir kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}

# mkcert NAME CA-PREFIX [SAN]: a P-256 key and a certificate signed by CA.
mkcert() {
	local name=$1 ca=$2 san=${3:-}
	openssl ecparam -name prime256v1 -genkey -noout -out "$name.key" &&
		openssl req -new -key "$name.key" -subj "/CN=$name" \
			-out "$name.csr" 2>/dev/null &&
		if [ -n "$san" ]; then
			printf 'subjectAltName=%s\n' "$san" >"$name.ext"
		else
			: >"$name.ext"
		fi &&
		openssl x509 -req -in "$name.csr" -CA "$ca.pem" \
			-CAkey "$ca.key" -CAcreateserial -days 2 \
			-extfile "$name.ext" -out "$name.pem" 2>/dev/null
}

mkca() {
	openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" &&
		openssl req -new -x509 -key "$1.key" -subj "/CN=$1" -days 2 \
			-out "$1.pem" 2>/dev/null
}

fingerprint() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'
}

rep_setup() {
	[ -x "$REPLICAD" ] || _notrun "csvfs-replicad not built (configure found no libssl >= 3.0)"
	[ -x "$RSEND" ] || _notrun "rsend not built"
	command -v openssl >/dev/null || _notrun "openssl missing (Debian package openssl)"
	command -v sha256sum >/dev/null || _notrun "sha256sum missing (coreutils)"
	WORK=$(mktemp -d "${TMPDIR:-/tmp}/csvfs-$1.XXXXXX") || _notrun "no work dir"
	trap rep_cleanup EXIT
	trap 'echo "$1: interrupted" >&2; exit 130' INT
	trap 'echo "$1: terminated" >&2; exit 143' TERM
	cd "$WORK" || exit 99
	mkdir -p certs primary store && cd certs || exit 99
	{ mkca ca && mkcert replica ca "DNS:replica,IP:127.0.0.1" &&
		mkcert primary-a ca && mkcert primary-b ca &&
		mkcert stranger ca && mkca rogue-ca &&
		mkcert primary-a-rogue rogue-ca; } >/dev/null 2>&1 ||
		_notrun "openssl cannot make test certificates"
	{ echo "# test allow-list"
	  echo "cn primary-a"
	  echo "sha256 $(fingerprint primary-b.pem)"; } >allow
	cd "$WORK" || exit 99
}

rd_start() {
	local try port
	for try in 1 2 3 4 5; do
		port=$((20000 + RANDOM % 20000))
		"$REPLICAD" -f --store "$WORK/${RD_STORE:-store}" \
			--listen 127.0.0.1 \
			--port "$port" --cert certs/replica.pem \
			--key certs/replica.key --ca certs/ca.pem \
			--allow certs/allow --log-level debug "$@" \
			>>"$WORK/replicad.log" 2>&1 &
		RD_PID=$!
		for _ in $(seq 50); do
			if grep -q "on port $port" "$WORK/replicad.log" 2>/dev/null; then
				PORT=$port
				return 0
			fi
			kill -0 "$RD_PID" 2>/dev/null || break
			sleep 0.1
		done
		rd_kill
	done
	echo "csvfs-replicad did not start:" >&2
	tail -5 "$WORK/replicad.log" >&2
	return 1
}

rd_stop() {
	[ -n "$RD_PID" ] || return 0
	kill -TERM "$RD_PID" 2>/dev/null
	for _ in $(seq 100); do
		kill -0 "$RD_PID" 2>/dev/null || break
		sleep 0.1
	done
	rd_kill
}

rd_kill() {
	[ -n "$RD_PID" ] || return 0
	kill -KILL "$RD_PID" 2>/dev/null
	wait "$RD_PID" 2>/dev/null
	RD_PID=""
}

rsend() {
	local who=${RSEND_AS:-primary-a}
	timeout 120 "$RSEND" --port "$PORT" --cert "certs/$who.pem" \
		--key "certs/$who.key" --ca certs/ca.pem --server-name replica \
		--dir "${RSEND_DIR:-primary}" "$@"
}

rd_cmd() {
	timeout 120 "$REPLICAD" --store "$WORK/${RD_STORE:-store}" "$@"
}

mat_check() {
	local g=$1 p=$2 dir=${RSEND_DIR:-primary}
	rm -rf "mat-$g-$p"
	rd_cmd materialise "$g" "$p" "mat-$g-$p" &&
		(cd "mat-$g-$p" && sha256sum --quiet -c "$WORK/$dir/.sums-$p")
}
