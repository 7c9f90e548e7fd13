// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tls.c - TLS 1.3 with mutual certificates for the replication link
 * (tls.h): contexts, the socket BIO, deadlines, message framing.
 *
 * Both sides present a certificate signed by the CA they were given and
 * verify the other's; the replica then matches the primary's certificate
 * against its allow-list (replicad), the primary may pin the replica's
 * name (SSL_set1_host, in client.c).
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "clock.h"
#include "tls.h"

void cvr_sha256(const void *p, size_t len, uint8_t out[CVR_SHA_LEN])
{
	unsigned n = CVR_SHA_LEN;

	if (!EVP_Digest(p, len, out, &n, EVP_sha256(), NULL))
		memset(out, 0, CVR_SHA_LEN); /* never matches a real hash */
}

static void ossl_err(char *err, size_t errlen, const char *what,
		     const char *path)
{
	unsigned long e = ERR_peek_last_error();
	char buf[160] = "unknown error";

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	ERR_clear_error();
	snprintf(err, errlen, "%s %s: %s", what, path ? path : "", buf);
}

SSL_CTX *cvr_tls_ctx(bool server, const char *cert, const char *key,
		     const char *ca, char *err, size_t errlen)
{
	SSL_CTX *ctx =
		SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx) {
		ossl_err(err, errlen, "cannot create a TLS context", NULL);
		return NULL;
	}
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION)) {
		ossl_err(err, errlen, "cannot restrict to TLS 1.3", NULL);
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ossl_err(err, errlen, "cannot load the certificate", cert);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ossl_err(err, errlen, "cannot load the key", key);
		goto fail;
	}
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		ossl_err(err, errlen, "cannot load the CA", ca);
		goto fail;
	}
	SSL_CTX_set_verify(
		ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ------------------------------------------------------------------------
 * The socket under an SSL: openssl's socket BIO writes with write(2),
 * which raises SIGPIPE when the peer is gone; this one sends with
 * MSG_NOSIGNAL.
 */
static BIO_METHOD *nosig_method;
static pthread_once_t nosig_once = PTHREAD_ONCE_INIT;

static int nosig_fd(BIO *b)
{
	return (int)(intptr_t)BIO_get_data(b);
}

static int nosig_write(BIO *b, const char *buf, int len)
{
	ssize_t n = send(nosig_fd(b), buf, (size_t)len, MSG_NOSIGNAL);

	BIO_clear_retry_flags(b);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_write(b);
	return (int)n;
}

static int nosig_read(BIO *b, char *buf, int len)
{
	ssize_t n = recv(nosig_fd(b), buf, (size_t)len, 0);

	BIO_clear_retry_flags(b);
	if (n < 0 &&
	    (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		BIO_set_retry_read(b);
	return (int)n;
}

static long nosig_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)num;
	switch (cmd) {
	case BIO_C_GET_FD:
		if (ptr)
			*(int *)ptr = nosig_fd(b);
		return nosig_fd(b);
	case BIO_CTRL_FLUSH:
		return 1;
	default:
		return 0;
	}
}

static int nosig_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void nosig_init(void)
{
	BIO_METHOD *m =
		BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
				     BIO_TYPE_DESCRIPTOR,
			     "csvfs replica socket");

	if (m && BIO_meth_set_write(m, nosig_write) &&
	    BIO_meth_set_read(m, nosig_read) &&
	    BIO_meth_set_ctrl(m, nosig_ctrl) &&
	    BIO_meth_set_create(m, nosig_create))
		nosig_method = m;
	else
		BIO_meth_free(m);
}

int cvr_tls_set_sock(SSL *ssl, int fd)
{
	BIO *b;

	pthread_once(&nosig_once, nosig_init);
	if (!nosig_method)
		return -ENOMEM;
	b = BIO_new(nosig_method);
	if (!b)
		return -ENOMEM;
	BIO_set_data(b, (void *)(intptr_t)fd);
	SSL_set_bio(ssl, b, b); /* the SSL owns it; the fd stays the caller's */
	return 0;
}

/* ------------------------------------------------------------------------
 * Waiting with deadlines.
 */
static int ms_left(uint64_t deadline_ms)
{
	uint64_t now = cv_now_ms();

	return now >= deadline_ms ? 0 : (int)(deadline_ms - now);
}

static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do {
		if (!ms_left(deadline_ms))
			return -ETIMEDOUT;
		n = poll(&p, 1, ms_left(deadline_ms));
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms)
{
	int fd, rc, soerr = 0;
	socklen_t sl = sizeof(soerr);

	fd = socket(ai->ai_family,
		    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
	if (fd < 0)
		return -errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return fd;
	rc = -errno;
	if (rc == -EINPROGRESS) {
		rc = wait_fd(fd, POLLOUT, deadline_ms);
		if (!rc && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
			rc = -errno;
		if (!rc && soerr)
			rc = -soerr;
		if (!rc)
			return fd;
	}
	close(fd);
	return rc;
}

int cvr_tcp_connect(const char *host, uint16_t port, uint64_t deadline_ms,
		    char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char serv[8];
	int g, rc = -EHOSTUNREACH;

	snprintf(serv, sizeof(serv), "%u", port);
	g = getaddrinfo(host, serv, &hints, &res);
	if (g) {
		snprintf(err, errlen, "cannot resolve %s: %s", host,
			 gai_strerror(g));
		return -EHOSTUNREACH;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		rc = connect_one(ai, deadline_ms);
		if (rc >= 0)
			break;
	}
	freeaddrinfo(res);
	if (rc < 0)
		snprintf(err, errlen, "connect to %s port %u: %s", host, port,
			 strerror(-rc));
	return rc;
}

/* One step of an SSL call that returned n: 0 to retry after waiting,
 * else -errno. */
static int ssl_step(SSL *ssl, int n, uint64_t deadline_ms)
{
	int fd = SSL_get_fd(ssl);

	switch (SSL_get_error(ssl, n)) {
	case SSL_ERROR_WANT_READ:
		return wait_fd(fd, POLLIN, deadline_ms);
	case SSL_ERROR_WANT_WRITE:
		return wait_fd(fd, POLLOUT, deadline_ms);
	case SSL_ERROR_ZERO_RETURN:
		return -ECONNRESET;
	case SSL_ERROR_SYSCALL:
		return errno ? -errno : -ECONNRESET;
	default:
		return -EPROTO;
	}
}

int cvr_tls_handshake(SSL *ssl, bool server, uint64_t deadline_ms, char *err,
		      size_t errlen)
{
	char ossl[200] = "connection closed";
	unsigned long e;
	long vr;
	int n, rc;

	ERR_clear_error();
	for (;;) {
		errno = 0;
		n = server ? SSL_accept(ssl) : SSL_connect(ssl);
		if (n == 1)
			return 0;
		rc = ssl_step(ssl, n, deadline_ms);
		if (rc)
			break;
	}
	if (rc == -ETIMEDOUT) {
		snprintf(err, errlen, "TLS handshake timed out");
		return rc;
	}
	e = ERR_peek_last_error();
	if (e)
		ERR_error_string_n(e, ossl, sizeof(ossl));
	ERR_clear_error();
	vr = SSL_get_verify_result(ssl);
	if (ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		snprintf(err, errlen,
			 "TLS handshake failed: the peer presented no "
			 "certificate (both sides need one signed by the "
			 "other's CA)");
	else if (vr != X509_V_OK)
		snprintf(err, errlen,
			 "TLS handshake failed: the peer's certificate is not "
			 "valid: %s",
			 X509_verify_cert_error_string(vr));
	else
		snprintf(err, errlen, "TLS handshake failed: %s",
			 rc == -EPROTO ? ossl : strerror(-rc));
	return rc == -EPROTO ? -EKEYREJECTED : rc;
}

/* All len bytes through ssl, one way, by the deadline: 0 or -errno. */
static int ssl_all(SSL *ssl, uint8_t *p, size_t len, bool out,
		   uint64_t deadline_ms)
{
	size_t off = 0;
	int n, rc;

	while (off < len) {
		errno = 0;
		n = out ? SSL_write(ssl, p + off, (int)(len - off))
			: SSL_read(ssl, p + off, (int)(len - off));
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		rc = ssl_step(ssl, n, deadline_ms);
		if (rc)
			return rc;
	}
	return 0;
}

int cvr_tls_write_all(SSL *ssl, const uint8_t *p, size_t len,
		      uint64_t deadline_ms)
{
	return ssl_all(ssl, (uint8_t *)(uintptr_t)p, len, true, deadline_ms);
}

static int read_exact(SSL *ssl, uint8_t *p, size_t len, uint64_t deadline_ms)
{
	return ssl_all(ssl, p, len, false, deadline_ms);
}

int cvr_tls_read_msg(SSL *ssl, uint8_t **buf, size_t *len, uint64_t deadline_ms)
{
	uint8_t hdr[CVR_HDR_LEN];
	size_t n;
	int rc;

	*buf = NULL;
	rc = read_exact(ssl, hdr, sizeof(hdr), deadline_ms);
	if (!rc)
		rc = cvr_msg_frame(hdr, sizeof(hdr), &n);
	if (rc)
		return rc;
	*buf = malloc(n);
	if (!*buf)
		return -ENOMEM;
	memcpy(*buf, hdr, sizeof(hdr));
	rc = read_exact(ssl, *buf + sizeof(hdr), n - sizeof(hdr), deadline_ms);
	if (rc) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
	*len = n;
	return 0;
}

int cvr_encode_alloc(const struct cvr_msg *m, uint8_t **buf, size_t *len)
{
	size_t cap = cvr_msg_bound(m);
	int n;

	*buf = malloc(cap);
	if (!*buf)
		return -ENOMEM;
	n = cvr_msg_encode(m, *buf, cap);
	if (n < 0) {
		free(*buf);
		*buf = NULL;
		return n;
	}
	*len = (size_t)n;
	return 0;
}

int cvr_tls_peer_id(SSL *ssl, char fpr[65], char *cn, size_t cnlen)
{
	X509 *peer = SSL_get1_peer_certificate(ssl);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;

	fpr[0] = '\0';
	if (cnlen)
		cn[0] = '\0';
	if (!peer)
		return -ENOENT;
	if (X509_digest(peer, EVP_sha256(), md, &n) && n == 32)
		for (unsigned i = 0; i < n; i++)
			snprintf(fpr + 2 * i, 3, "%02x", md[i]);
	if (cnlen &&
	    X509_NAME_get_text_by_NID(X509_get_subject_name(peer),
				      NID_commonName, cn, (int)cnlen) < 0)
		cn[0] = '\0';
	X509_free(peer);
	return 0;
}
