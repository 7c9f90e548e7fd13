/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * tls.h - the replication link's transport (private to libcvreplica and
 * csvfs-replicad): TLS 1.3 contexts with mutual certificates, a socket
 * BIO that never raises SIGPIPE, and whole-message I/O with deadlines.
 *
 * Every call that waits takes an absolute deadline on the monotonic
 * clock in ms (cv_now_ms()) and returns -ETIMEDOUT when it passes.
 * Buffers: cvr_tls_read_msg() allocates *buf, the caller frees it.
 */
#ifndef CSVFS_REPLICA_TLS_H
#define CSVFS_REPLICA_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "proto.h"

/*
 * A context for TLS 1.3 only, loaded with this side's certificate and
 * key (PEM) and the CA (PEM file) that certifies the peer; the peer must
 * present a certificate (both directions).  NULL with err set on failure.
 */
SSL_CTX *cvr_tls_ctx(bool server, const char *cert, const char *key,
		     const char *ca, char *err, size_t errlen);
/* Attach fd (which stays the caller's) to ssl through the no-SIGPIPE BIO. */
int cvr_tls_set_sock(SSL *ssl, int fd);
/* TCP connect to host:port, non-blocking socket; fd or -errno. */
int cvr_tcp_connect(const char *host, uint16_t port, uint64_t deadline_ms,
		    char *err, size_t errlen);
/* Handshake; on failure err says why (a refused certificate, a time out). */
int cvr_tls_handshake(SSL *ssl, bool server, uint64_t deadline_ms, char *err,
		      size_t errlen);
int cvr_tls_write_all(SSL *ssl, const uint8_t *p, size_t len,
		      uint64_t deadline_ms);
/* One framed message (cvr_msg_frame); *buf malloc'ed, *len its length. */
int cvr_tls_read_msg(SSL *ssl, uint8_t **buf, size_t *len,
		     uint64_t deadline_ms);
/* Encode m into a malloc'ed buffer. */
int cvr_encode_alloc(const struct cvr_msg *m, uint8_t **buf, size_t *len);
/*
 * The verified peer certificate's SHA-256 fingerprint as 64 lower-case
 * hex digits and its subject CN (empty if none).  -ENOENT if no peer
 * certificate.
 */
int cvr_tls_peer_id(SSL *ssl, char fpr[65], char *cn, size_t cnlen);
/* SHA-256 of len bytes. */
void cvr_sha256(const void *p, size_t len, uint8_t out[CVR_SHA_LEN]);

#endif /* CSVFS_REPLICA_TLS_H */
