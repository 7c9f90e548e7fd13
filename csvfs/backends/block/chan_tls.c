// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * chan_tls.c - the channel's key, TLS contexts, sockets and the link
 * (one connection's I/O loop), shared by chan_srv.c and chan_cli.c.
 *
 * The PSK: HKDF-SHA256 with the corosync authkey as input key material,
 * a fixed salt naming this use, and "volume" + the volume's uuid as
 * info; its TLS identity is "csvfs-vol-" + the uuid in hex.  The server
 * has no certificate: a client that offers no PSK, or another volume's,
 * or one derived from another authkey, fails the handshake, and the
 * server's callback notes which of these it was for the log.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>

#include "chan_i.h"
#include "clock.h"
#include "log.h"

#define CVB_KEY_SALT	"csvfs coordinator channel v1"
#define CVB_AUTHKEY_MAX 65536
/* TLS_AES_128_GCM_SHA256: the PSK's cipher (its hash binds the PSK). */
static const unsigned char psk_cipher_id[2] = { 0x13, 0x01 };

void cvb_times_fill(struct cvb_chan_times *t)
{
	if (t->connect_ms <= 0)
		t->connect_ms = CVB_DEF_CONNECT_MS;
	if (t->keepalive_ms <= 0)
		t->keepalive_ms = CVB_DEF_KEEPALIVE_MS;
	if (t->dead_ms <= 0)
		t->dead_ms = CVB_DEF_DEAD_MS;
	if (t->backoff_min_ms <= 0)
		t->backoff_min_ms = CVB_DEF_BACKOFF_MIN_MS;
	if (t->backoff_max_ms < t->backoff_min_ms)
		t->backoff_max_ms = t->backoff_min_ms > CVB_DEF_BACKOFF_MAX_MS
					    ? t->backoff_min_ms
					    : CVB_DEF_BACKOFF_MAX_MS;
}

/* ------------------------------------------------------------------------
 * The key.
 */
int cvb_chan_key_derive(const void *authkey, size_t len,
			const uint8_t volume[CVB_UUID_LEN],
			struct cvb_chan_key *key)
{
	uint8_t info[6 + CVB_UUID_LEN];
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	OSSL_PARAM p[5];
	int rc = -EIO;

	if (!len)
		return -EINVAL;
	memcpy(info, "volume", 6);
	memcpy(info + 6, volume, CVB_UUID_LEN);
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
						(char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY,
						 (void *)authkey, len);
	p[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						 (void *)CVB_KEY_SALT,
						 strlen(CVB_KEY_SALT));
	p[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
						 sizeof(info));
	p[4] = OSSL_PARAM_construct_end();
	kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kdf)
		goto out;
	kctx = EVP_KDF_CTX_new(kdf);
	if (!kctx || EVP_KDF_derive(kctx, key->psk, sizeof(key->psk), p) <= 0)
		goto out;
	memcpy(key->volume, volume, CVB_UUID_LEN);
	memcpy(key->identity, "csvfs-vol-", 10);
	for (int i = 0; i < CVB_UUID_LEN; i++)
		snprintf(key->identity + 10 + 2 * i, 3, "%02x", volume[i]);
	rc = 0;
out:
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return rc;
}

static int read_key_file(int fd, uint8_t *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	while ((n = read(fd, buf + *len, cap - *len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		*len += (size_t)n;
		if (*len == cap)
			return -EFBIG;
	}
	return 0;
}

int cvb_chan_key_load(const char *path, const uint8_t volume[CVB_UUID_LEN],
		      struct cvb_chan_key *key, char *err, size_t errlen)
{
	uint8_t *buf = malloc(CVB_AUTHKEY_MAX + 1);
	size_t len = 0;
	int fd, rc;

	path = path ? path : CVB_CHAN_AUTHKEY;
	if (!buf)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? -ENOKEY : -errno;
		snprintf(err, errlen,
			 "cannot read the cluster key %s: %s (the coordinator "
			 "channel's key is derived from corosync's authkey)",
			 path, strerror(errno));
		goto out;
	}
	rc = read_key_file(fd, buf, CVB_AUTHKEY_MAX + 1, &len);
	close(fd);
	if (rc || len == 0) {
		snprintf(err, errlen, "cluster key %s: %s", path,
			 rc ? strerror(-rc) : "empty file");
		rc = rc == -EFBIG || !rc ? -EINVAL : rc;
		goto out;
	}
	rc = cvb_chan_key_derive(buf, len, volume, key);
	if (rc)
		snprintf(err, errlen, "cluster key %s: key derivation failed",
			 path);
out:
	OPENSSL_cleanse(buf, CVB_AUTHKEY_MAX + 1);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------------
 * TLS contexts and the PSK callbacks.
 */
static SSL_SESSION *psk_session(SSL *ssl, const struct cvb_chan_key *key)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_cipher_id);
	SSL_SESSION *s;

	if (!cipher)
		return NULL;
	s = SSL_SESSION_new();
	if (!s)
		return NULL;
	if (!SSL_SESSION_set1_master_key(s, key->psk, sizeof(key->psk)) ||
	    !SSL_SESSION_set_cipher(s, cipher) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

static int psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id,
		      size_t *idlen, SSL_SESSION **sess)
{
	struct cvb_psk_seen *seen = SSL_get_app_data(ssl);
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_cipher_id);

	*sess = NULL;
	if (!seen || !cipher)
		return 0;
	if (md && md != SSL_CIPHER_get_handshake_digest(cipher))
		return 1; /* no PSK for another hash */
	*sess = psk_session(ssl, seen->key);
	if (!*sess)
		return 0;
	*id = (const unsigned char *)seen->key->identity;
	*idlen = strlen(seen->key->identity);
	seen->offered = true;
	return 1;
}

static int psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen,
		       SSL_SESSION **sess)
{
	struct cvb_psk_seen *seen = SSL_get_app_data(ssl);
	size_t n;

	*sess = NULL;
	if (!seen)
		return 0;
	seen->offered = true;
	n = idlen < sizeof(seen->identity) - 1 ? idlen
					       : sizeof(seen->identity) - 1;
	for (size_t i = 0; i < n; i++)
		seen->identity[i] =
			id[i] >= 0x20 && id[i] < 0x7f ? (char)id[i] : '?';
	seen->identity[n] = '\0';
	if (idlen != strlen(seen->key->identity) ||
	    memcmp(id, seen->key->identity, idlen))
		return 1; /* not ours: the handshake fails (no certificate) */
	seen->identity_ok = true;
	*sess = psk_session(ssl, seen->key);
	return *sess ? 1 : 0;
}

SSL_CTX *cvb_tls_ctx(bool server)
{
	SSL_CTX *ctx =
		SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		return NULL;
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
	    !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256")) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (server)
		SSL_CTX_set_psk_find_session_callback(ctx, psk_find_cb);
	else
		SSL_CTX_set_psk_use_session_callback(ctx, psk_use_cb);
	return ctx;
}

/* ------------------------------------------------------------------------
 * The socket under an SSL: openssl's own socket BIO writes with write(2),
 * which raises SIGPIPE when the peer is gone and would kill the process
 * unless it ignores the signal.  This one sends with MSG_NOSIGNAL.
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
			     "csvfs socket");

	if (m && BIO_meth_set_write(m, nosig_write) &&
	    BIO_meth_set_read(m, nosig_read) &&
	    BIO_meth_set_ctrl(m, nosig_ctrl) &&
	    BIO_meth_set_create(m, nosig_create))
		nosig_method = m;
	else
		BIO_meth_free(m);
}

int cvb_ssl_set_sock(SSL *ssl, int fd)
{
	BIO *b;

	pthread_once(&nosig_once, nosig_init);
	if (!nosig_method)
		return -ENOMEM;
	b = BIO_new(nosig_method);
	if (!b)
		return -ENOMEM;
	BIO_set_data(b, (void *)(intptr_t)fd);
	SSL_set_bio(ssl, b, b); /* the SSL owns it; the fd stays ours */
	return 0;
}

/* ------------------------------------------------------------------------
 * Sockets.
 */
int cvb_sock_tune(int fd, int dead_ms)
{
	int one = 1;
	unsigned utimeout = (unsigned)dead_ms;

	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &utimeout,
		       sizeof(utimeout)))
		return -errno;
	return 0;
}

static int ms_left(uint64_t deadline_ms)
{
	uint64_t now = cv_now_ms();

	return now >= deadline_ms ? 0 : (int)(deadline_ms - now);
}

/* Wait for events on fd until deadline: 0, -ETIMEDOUT or -errno. */
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

int cvb_tcp_connect(const char *host, uint16_t port, uint64_t deadline_ms,
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

/* ------------------------------------------------------------------------
 * Handshake and blocking I/O (before the link's loop).
 */

/* One step of an SSL call that returned n: 0 to retry after waiting,
 * else -errno.  Waits for what openssl wants until deadline. */
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

static void ssl_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "connection closed");
	ERR_clear_error();
}

/* The client's view of a failed handshake: the coordinator's alert
 * says whether our key was refused. */
static int client_failure(int rc, char *err, size_t errlen)
{
	unsigned long e = ERR_peek_last_error();
	int reason = ERR_GET_REASON(e);
	char ossl[160];

	ssl_errstr(ossl, sizeof(ossl));
	/* what openssl's server answers to a PSK it cannot use: a binder
	 * that does not verify (another authkey), an identity it does not
	 * know (another volume) leaving it no way to authenticate */
	if (rc == -EPROTO && (reason == SSL_R_TLSV1_ALERT_DECRYPT_ERROR ||
			      reason == SSL_R_SSLV3_ALERT_ILLEGAL_PARAMETER ||
			      reason == SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE)) {
		snprintf(err, errlen,
			 "the coordinator refused this node's key (%s): check "
			 "that this node's corosync authkey is the cluster's "
			 "and that the coordinator serves this volume",
			 ossl);
		return -EKEYREJECTED;
	}
	snprintf(err, errlen, "TLS handshake failed: %s",
		 rc == -EPROTO ? ossl : strerror(-rc));
	return rc;
}

/* The server's: what the PSK callback saw tells why. */
static int server_failure(SSL *ssl, int rc, char *err, size_t errlen)
{
	const struct cvb_psk_seen *seen = SSL_get_app_data(ssl);
	char ossl[160];

	ssl_errstr(ossl, sizeof(ossl));
	if (rc != -EPROTO) {
		snprintf(err, errlen, "TLS handshake failed: %s",
			 strerror(-rc));
		return rc;
	}
	if (!seen->offered)
		snprintf(err, errlen,
			 "refused: the peer offered no pre-shared key (not a "
			 "csvfs node of this cluster?) (%s)",
			 ossl);
	else if (!seen->identity_ok)
		snprintf(err, errlen,
			 "refused: the peer's key is for '%s', not this volume "
			 "(%s)",
			 seen->identity, seen->key->identity);
	else
		snprintf(err, errlen,
			 "refused: the peer's key does not match (a different "
			 "corosync authkey?) (%s)",
			 ossl);
	return -EKEYREJECTED;
}

int cvb_tls_handshake(SSL *ssl, bool server, uint64_t deadline_ms, char *err,
		      size_t errlen)
{
	int n, rc;

	ERR_clear_error();
	for (;;) {
		n = server ? SSL_accept(ssl) : SSL_connect(ssl);
		if (n == 1)
			return 0;
		rc = ssl_step(ssl, n, deadline_ms);
		if (rc == -ETIMEDOUT) {
			snprintf(err, errlen, "TLS handshake timed out");
			return rc;
		}
		if (rc)
			return server ? server_failure(ssl, rc, err, errlen)
				      : client_failure(rc, err, errlen);
	}
}

int cvb_tls_write_all(SSL *ssl, const uint8_t *p, size_t len,
		      uint64_t deadline_ms)
{
	size_t off = 0;
	int n, rc;

	while (off < len) {
		n = SSL_write(ssl, p + off, (int)(len - off));
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

static int read_exact(SSL *ssl, uint8_t *p, size_t len, uint64_t deadline_ms)
{
	size_t off = 0;
	int n, rc;

	while (off < len) {
		n = SSL_read(ssl, p + off, (int)(len - off));
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

int cvb_tls_read_msg(SSL *ssl, uint8_t **buf, size_t *len, uint64_t deadline_ms)
{
	uint8_t hdr[CVB_HDR_LEN];
	size_t n;
	int rc;

	rc = read_exact(ssl, hdr, sizeof(hdr), deadline_ms);
	if (!rc)
		rc = cvb_msg_frame(hdr, sizeof(hdr), &n);
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

int cvb_encode_alloc(const struct cvb_msg *m, uint8_t **buf, size_t *len)
{
	size_t cap = cvb_msg_bound(m);
	int n;

	*buf = malloc(cap);
	if (!*buf)
		return -ENOMEM;
	n = cvb_msg_encode(m, *buf, cap);
	if (n < 0) {
		free(*buf);
		*buf = NULL;
		return n;
	}
	*len = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------------
 * The link.
 */
int cvb_link_init(struct cvb_link *l, int fd, SSL *ssl,
		  const struct cvb_link_ops *ops, void *owner,
		  const struct cvb_chan_times *t)
{
	memset(l, 0, sizeof(*l));
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (l->evfd < 0)
		return -errno;
	pthread_mutex_init(&l->lock, NULL);
	l->fd = fd;
	l->ssl = ssl;
	l->ops = ops;
	l->owner = owner;
	l->times = *t;
	return 0;
}

static void free_queue(struct cvb_obuf *b)
{
	while (b) {
		struct cvb_obuf *next = b->next;

		free(b);
		b = next;
	}
}

void cvb_link_destroy(struct cvb_link *l)
{
	free_queue(l->head);
	l->head = l->tail = NULL;
	free(l->rbuf);
	l->rbuf = NULL;
	if (l->ssl)
		SSL_free(l->ssl);
	l->ssl = NULL;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->evfd >= 0)
		close(l->evfd);
	l->evfd = -1;
	pthread_mutex_destroy(&l->lock);
}

static void wake(struct cvb_link *l)
{
	uint64_t one = 1;

	if (write(l->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("%s: cannot wake the channel's I/O thread: %s",
			 l->peer, strerror(errno));
}

int cvb_link_send(struct cvb_link *l, struct cvb_obuf *b)
{
	b->next = NULL;
	b->off = 0;
	pthread_mutex_lock(&l->lock);
	if (l->stop) {
		pthread_mutex_unlock(&l->lock);
		free(b);
		return -ENOTCONN;
	}
	if (l->tail)
		l->tail->next = b;
	else
		l->head = b;
	l->tail = b;
	pthread_mutex_unlock(&l->lock);
	wake(l);
	return 0;
}

int cvb_link_send_msg(struct cvb_link *l, const struct cvb_msg *m)
{
	struct cvb_obuf *b = malloc(sizeof(*b) + cvb_msg_bound(m));
	int n;

	if (!b)
		return -ENOMEM;
	n = cvb_msg_encode(m, b->data, cvb_msg_bound(m));
	if (n < 0) {
		free(b);
		return n;
	}
	b->len = (size_t)n;
	return cvb_link_send(l, b);
}

void cvb_link_stop(struct cvb_link *l)
{
	pthread_mutex_lock(&l->lock);
	l->stop = true;
	pthread_mutex_unlock(&l->lock);
	wake(l);
}

int cvb_link_pong(struct cvb_link *l, uint8_t *buf, size_t len)
{
	struct cvb_msg q, r = { .type = CVB_PING | CVB_REPLY };
	int rc = cvb_msg_decode(buf, len, &q);

	free(buf);
	if (rc)
		return rc;
	r.req_id = q.req_id;
	r.u.r_ping = q.u.ping;
	return cvb_link_send_msg(l, &r);
}

/* An SSL call that returned n in the loop: 0 to go on (want_write set
 * if it waits to write), else -errno with why. */
static int loop_ssl_err(struct cvb_link *l, int n, bool *want_write, char *why,
			size_t whylen)
{
	char ossl[160];
	int e = SSL_get_error(l->ssl, n);

	if (e == SSL_ERROR_WANT_READ)
		return 0;
	if (e == SSL_ERROR_WANT_WRITE) {
		*want_write = true;
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN) {
		snprintf(why, whylen, "closed by the peer");
		return -ESHUTDOWN;
	}
	if ((e == SSL_ERROR_SYSCALL && errno == 0) ||
	    (e == SSL_ERROR_SSL &&
	     ERR_GET_REASON(ERR_peek_last_error()) ==
		     SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
		ERR_clear_error();
		snprintf(why, whylen, "connection closed by the peer");
		return -ECONNRESET;
	}
	if (e == SSL_ERROR_SYSCALL) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -errno;
	}
	ssl_errstr(ossl, sizeof(ossl));
	snprintf(why, whylen, "TLS error: %s", ossl);
	return -EPROTO;
}

static int loop_flush(struct cvb_link *l, bool *want_write, char *why,
		      size_t whylen)
{
	struct cvb_obuf *b;
	int n;

	for (;;) {
		pthread_mutex_lock(&l->lock);
		b = l->head; /* only this thread unlinks or frees it */
		pthread_mutex_unlock(&l->lock);
		if (!b)
			return 0;
		ERR_clear_error();
		errno = 0;
		n = SSL_write(l->ssl, b->data + b->off, (int)(b->len - b->off));
		if (n <= 0)
			return loop_ssl_err(l, n, want_write, why, whylen);
		b->off += (size_t)n;
		l->last_tx_ms = cv_now_ms();
		if (b->off < b->len)
			continue;
		pthread_mutex_lock(&l->lock);
		l->head = b->next;
		if (!l->head)
			l->tail = NULL;
		pthread_mutex_unlock(&l->lock);
		free(b);
	}
}

/* The header is complete: allocate the message. */
static int loop_frame(struct cvb_link *l, char *why, size_t whylen)
{
	size_t n;
	int rc = cvb_msg_frame(l->hdr, CVB_HDR_LEN, &n);

	if (rc) {
		snprintf(why, whylen, "not a channel message (%s)",
			 strerror(-rc));
		return rc;
	}
	l->rbuf = malloc(n);
	if (!l->rbuf) {
		snprintf(why, whylen, "out of memory for %zu bytes", n);
		return -ENOMEM;
	}
	memcpy(l->rbuf, l->hdr, CVB_HDR_LEN);
	l->rlen = n;
	l->rgot = CVB_HDR_LEN;
	return 0;
}

/* Deliver the message in rbuf if it is complete. */
static int loop_deliver(struct cvb_link *l)
{
	uint8_t *buf = l->rbuf;
	size_t len = l->rlen;

	if (!buf || l->rgot < l->rlen)
		return 0;
	l->rbuf = NULL;
	l->rlen = l->rgot = l->hdr_got = 0;
	return l->ops->on_msg(l, buf, len);
}

static void mid_message(struct cvb_link *l, char *why, size_t whylen)
{
	size_t n = strlen(why);

	if (l->rbuf)
		snprintf(why + n, whylen - n,
			 ", mid-message (%zu of %zu bytes)", l->rgot, l->rlen);
	else if (l->hdr_got)
		snprintf(why + n, whylen - n, ", mid-header (%zu of %d bytes)",
			 l->hdr_got, CVB_HDR_LEN);
}

static int loop_read(struct cvb_link *l, bool *want_write, char *why,
		     size_t whylen)
{
	int n, rc;

	for (;;) {
		ERR_clear_error();
		errno = 0;
		if (!l->rbuf)
			n = SSL_read(l->ssl, l->hdr + l->hdr_got,
				     (int)(CVB_HDR_LEN - l->hdr_got));
		else
			n = SSL_read(l->ssl, l->rbuf + l->rgot,
				     (int)(l->rlen - l->rgot));
		if (n <= 0) {
			rc = loop_ssl_err(l, n, want_write, why, whylen);
			if (rc)
				mid_message(l, why, whylen);
			return rc;
		}
		l->last_rx_ms = cv_now_ms();
		if (l->rbuf)
			l->rgot += (size_t)n;
		else if ((l->hdr_got += (size_t)n) == CVB_HDR_LEN &&
			 (rc = loop_frame(l, why, whylen)))
			return rc;
		rc = loop_deliver(l);
		if (rc) {
			snprintf(why, whylen, "bad message: %s", strerror(-rc));
			return rc;
		}
	}
}

static int loop_keepalive(struct cvb_link *l, uint64_t now, char *why,
			  size_t whylen)
{
	struct cvb_msg ping = { .type = CVB_PING };

	if (now - l->last_rx_ms >= (uint64_t)l->times.dead_ms) {
		snprintf(why, whylen, "nothing received for %llu ms",
			 (unsigned long long)(now - l->last_rx_ms));
		return -ETIMEDOUT;
	}
	if (now - l->last_tx_ms < (uint64_t)l->times.keepalive_ms)
		return 0;
	ping.u.ping = ++l->ping_seq; /* req_id 0: a keep-alive */
	l->last_tx_ms = now;	     /* one ping per interval, even if held */
	return cvb_link_send_msg(l, &ping);
}

static int loop_timeout(const struct cvb_link *l, uint64_t now)
{
	uint64_t ka = l->last_tx_ms + (uint64_t)l->times.keepalive_ms;
	uint64_t dead = l->last_rx_ms + (uint64_t)l->times.dead_ms;
	uint64_t next = ka < dead ? ka : dead;

	return next <= now ? 0 : (int)(next - now);
}

static bool link_stopped(struct cvb_link *l)
{
	bool stop;

	pthread_mutex_lock(&l->lock);
	stop = l->stop;
	pthread_mutex_unlock(&l->lock);
	return stop;
}

int cvb_link_run(struct cvb_link *l, char *why, size_t whylen)
{
	struct pollfd p[2] = { { .fd = l->fd }, { .fd = l->evfd } };
	uint64_t ev;
	bool want_write;
	int rc;

	l->last_rx_ms = l->last_tx_ms = cv_now_ms();
	while (!link_stopped(l)) {
		want_write = false;
		rc = loop_keepalive(l, cv_now_ms(), why, whylen);
		if (!rc)
			rc = loop_flush(l, &want_write, why, whylen);
		if (!rc)
			rc = loop_read(l, &want_write, why, whylen);
		if (rc)
			return rc;
		p[0].events = POLLIN | (want_write ? POLLOUT : 0);
		p[1].events = POLLIN;
		if (poll(p, 2, loop_timeout(l, cv_now_ms())) < 0 &&
		    errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return -errno;
		}
		if (p[1].revents & POLLIN &&
		    read(l->evfd, &ev, sizeof(ev)) < 0 && errno != EAGAIN)
			return -errno;
	}
	return 0;
}
