// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * client.c - libcvreplica (client.h): the primary's end of the link to
 * csvfs-replicad.
 *
 * Requests carry increasing seq numbers; the replica answers them in
 * order, so the client checks each reply against the oldest request in
 * flight.  Operations are pipelined up to a window; POINT_BEGIN, END,
 * HELLO and STATUS wait for their reply.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "client.h"
#include "clock.h"
#include "tls.h"

#define NS_PER_S 1000000000ull

struct cvr_client {
	struct cvr_client_conf conf;
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	uint16_t version;
	uint64_t seq;	    /* last request's */
	uint64_t acked_seq; /* last reply read */
	uint64_t point;	    /* open point, 0: none */
	uint64_t op;	    /* next operation number of the caller */
	uint64_t skip;	    /* operations the replica held at begin */
	uint64_t sent;	    /* bytes */
	struct cvr_bucket bucket;
	struct cvr_msg *tx, *rx; /* large: allocated once */
	char err[512];
};

/* ------------------------------------------------------------------------
 * The token bucket.
 */
void cvr_bucket_init(struct cvr_bucket *b, uint64_t rate, uint64_t burst,
		     uint64_t now_ns)
{
	b->rate = rate;
	b->burst = burst ? burst : rate / 10;
	if (b->burst < 65536)
		b->burst = 65536;
	b->tokens = (double)b->burst;
	b->last_ns = now_ns;
}

uint64_t cvr_bucket_take(struct cvr_bucket *b, uint64_t n, uint64_t now_ns)
{
	if (!b->rate)
		return 0;
	if (now_ns > b->last_ns) {
		b->tokens += (double)(now_ns - b->last_ns) * (double)b->rate /
			     (double)NS_PER_S;
		if (b->tokens > (double)b->burst)
			b->tokens = (double)b->burst;
		b->last_ns = now_ns;
	}
	b->tokens -= (double)n;
	if (b->tokens >= 0)
		return 0;
	return (uint64_t)(-b->tokens * (double)NS_PER_S / (double)b->rate);
}

static void pace(struct cvr_client *c, size_t n)
{
	uint64_t wait = cvr_bucket_take(&c->bucket, n, cv_now_ns());
	struct timespec ts = { .tv_sec = (time_t)(wait / NS_PER_S),
			       .tv_nsec = (long)(wait % NS_PER_S) };

	while (wait && nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------------
 * Messages.
 */
static int fail(struct cvr_client *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct cvr_client *c, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return rc;
}

static uint64_t deadline(int ms)
{
	return cv_now_ms() + (uint64_t)ms;
}

/* Send c->tx as the next request. */
static int send_tx(struct cvr_client *c)
{
	uint8_t *buf;
	size_t len;
	int rc;

	c->tx->seq = ++c->seq;
	c->tx->version = c->tx->type == CVR_HELLO ? 0 : c->version;
	rc = cvr_encode_alloc(c->tx, &buf, &len);
	if (rc)
		return fail(c, rc, "cannot encode %s: %s",
			    cvr_msg_type_name(c->tx->type), strerror(-rc));
	pace(c, len);
	rc = cvr_tls_write_all(c->ssl, buf, len, deadline(c->conf.io_ms));
	free(buf);
	if (rc)
		return fail(c, rc, "sending %s to %s: %s",
			    cvr_msg_type_name(c->tx->type), c->conf.host,
			    strerror(-rc));
	c->sent += len;
	return 0;
}

/* Read the reply to the oldest request in flight into c->rx. */
static int read_reply(struct cvr_client *c, int ms)
{
	uint8_t *buf;
	size_t len;
	int rc = cvr_tls_read_msg(c->ssl, &buf, &len, deadline(ms));

	if (rc)
		return fail(c, rc, "waiting for the replica %s: %s",
			    c->conf.host,
			    rc == -ETIMEDOUT ? "timed out" : strerror(-rc));
	rc = cvr_msg_decode(buf, len, c->rx);
	free(buf);
	if (rc)
		return fail(c, rc, "bad reply from %s: %s", c->conf.host,
			    strerror(-rc));
	if (!(c->rx->type & CVR_REPLY) || c->rx->seq != c->acked_seq + 1)
		return fail(c, -EPROTO, "reply out of order from %s",
			    c->conf.host);
	c->acked_seq++;
	if (c->rx->status)
		return fail(c, c->rx->status, "the replica refused %s: %s%s%s",
			    cvr_msg_type_name(c->rx->type),
			    cvr_strerror(c->rx->status),
			    c->rx->u.r_error[0] ? ": " : "", c->rx->u.r_error);
	return 0;
}

/* Read replies until at most keep requests are in flight. */
static int drain(struct cvr_client *c, uint64_t keep, int ms)
{
	int rc;

	while (c->seq - c->acked_seq > keep) {
		rc = read_reply(c, ms);
		if (rc)
			return rc;
	}
	return 0;
}

static int request(struct cvr_client *c, int ms)
{
	int rc = drain(c, 0, c->conf.io_ms);

	if (!rc)
		rc = send_tx(c);
	if (!rc)
		rc = drain(c, 0, ms);
	return rc;
}

/* ------------------------------------------------------------------------
 * Connecting.
 */
static void conf_fill(struct cvr_client_conf *o)
{
	if (!o->port)
		o->port = CVR_DEFAULT_PORT;
	if (o->connect_ms <= 0)
		o->connect_ms = 10000;
	if (o->io_ms <= 0)
		o->io_ms = 30000;
	if (o->apply_ms <= 0)
		o->apply_ms = 600000;
	if (!o->window)
		o->window = 16;
}

static int connect_tls(struct cvr_client *c, char *err, size_t errlen)
{
	uint64_t dl = deadline(c->conf.connect_ms);
	int rc;

	c->ctx = cvr_tls_ctx(false, c->conf.cert, c->conf.key, c->conf.ca, err,
			     errlen);
	if (!c->ctx)
		return -EINVAL;
	c->fd = cvr_tcp_connect(c->conf.host, c->conf.port, dl, err, errlen);
	if (c->fd < 0)
		return c->fd;
	c->ssl = SSL_new(c->ctx);
	if (!c->ssl) {
		snprintf(err, errlen, "out of memory for a TLS session");
		return -ENOMEM;
	}
	if (c->conf.server_name &&
	    (!SSL_set1_host(c->ssl, c->conf.server_name) ||
	     !SSL_set_tlsext_host_name(c->ssl, c->conf.server_name))) {
		snprintf(err, errlen, "bad server name %s",
			 c->conf.server_name);
		return -EINVAL;
	}
	rc = cvr_tls_set_sock(c->ssl, c->fd);
	if (rc)
		return rc;
	rc = cvr_tls_handshake(c->ssl, false, dl, err, errlen);
	if (rc) {
		size_t n = strlen(err);

		snprintf(err + n, errlen - n, " (replica %s port %u)",
			 c->conf.host, c->conf.port);
	}
	return rc;
}

static struct cvr_client *client_new(const struct cvr_client_conf *conf)
{
	struct cvr_client *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->fd = -1;
	c->conf = *conf;
	conf_fill(&c->conf);
	c->tx = calloc(1, sizeof(*c->tx));
	c->rx = calloc(1, sizeof(*c->rx));
	if (!c->tx || !c->rx) {
		cvr_client_close(c);
		return NULL;
	}
	cvr_bucket_init(&c->bucket, c->conf.rate, c->conf.burst, cv_now_ns());
	c->version = CVR_VERSION_HELLO;
	return c;
}

/*
 * In TLS 1.3 the client's handshake ends before the server has checked
 * the client's certificate: a refusal arrives as an alert after it, when
 * HELLO is sent.  Read that alert, so the error says what the replica
 * refused rather than "connection reset".
 */
static void peer_alert(struct cvr_client *c, int rc, char *err, size_t errlen)
{
	uint8_t b;
	unsigned long e;
	char ossl[160];

	if (rc != -ECONNRESET && rc != -EPIPE && rc != -EPROTO) {
		snprintf(err, errlen, "%s", c->err);
		return;
	}
	e = ERR_peek_last_error(); /* a failed read has it already */
	if (!e) {
		(void)SSL_read(c->ssl, &b, 1);
		e = ERR_peek_last_error();
	}
	if (!e || ERR_GET_LIB(e) != ERR_LIB_SSL) {
		snprintf(err, errlen, "%s", c->err);
		return;
	}
	ERR_error_string_n(e, ossl, sizeof(ossl));
	ERR_clear_error();
	snprintf(err, errlen,
		 "the replica %s refused this primary's certificate after "
		 "the TLS handshake (%s): check that the replica's CA signed "
		 "it",
		 c->conf.host, ossl);
}

int cvr_client_open(const struct cvr_client_conf *conf,
		    const struct cvr_q_hello *hello, struct cvr_client **out,
		    struct cvr_r_hello *rh, char *err, size_t errlen)
{
	struct cvr_client *c = client_new(conf);
	int rc;

	*out = NULL;
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = connect_tls(c, err, errlen);
	if (rc)
		goto fail;
	c->tx->type = CVR_HELLO;
	c->tx->u.hello = *hello;
	c->tx->u.hello.proto_min = CVR_VERSION_MIN;
	c->tx->u.hello.proto_max = CVR_VERSION_MAX;
	rc = request(c, c->conf.io_ms);
	if (rc) {
		peer_alert(c, rc, err, errlen);
		goto fail;
	}
	c->version = c->rx->u.r_hello.version;
	if (c->version < CVR_VERSION_MIN || c->version > CVR_VERSION_MAX) {
		snprintf(err, errlen, "the replica chose version %u",
			 c->version);
		rc = -EPROTONOSUPPORT;
		goto fail;
	}
	if (rh)
		*rh = c->rx->u.r_hello;
	*out = c;
	return 0;
fail:
	cvr_client_close(c);
	return rc;
}

void cvr_client_close(struct cvr_client *c)
{
	if (!c)
		return;
	if (c->ssl) {
		SSL_shutdown(c->ssl); /* a close_notify, not waited for */
		SSL_free(c->ssl);
	}
	if (c->fd >= 0)
		close(c->fd);
	SSL_CTX_free(c->ctx);
	free(c->tx);
	free(c->rx);
	free(c);
}

const char *cvr_client_error(const struct cvr_client *c)
{
	return c ? c->err : "out of memory";
}

uint64_t cvr_client_sent(const struct cvr_client *c)
{
	return c->sent;
}

/* ------------------------------------------------------------------------
 * Points.
 */
int cvr_client_begin(struct cvr_client *c,
		     const struct cvr_q_point_begin *begin, uint64_t *next_op)
{
	int rc;

	c->tx->type = CVR_POINT_BEGIN;
	c->tx->u.begin = *begin;
	rc = request(c, c->conf.io_ms);
	if (rc)
		return rc;
	if (c->rx->u.r_ack.point != begin->point)
		return fail(c, -EPROTO, "the replica acknowledged point %llu",
			    (unsigned long long)c->rx->u.r_ack.point);
	c->point = begin->point;
	c->op = 0;
	c->skip = c->rx->u.r_ack.next_op;
	if (next_op)
		*next_op = c->skip;
	return 0;
}

/* Send the operation in c->tx (type and body set) unless the replica
 * holds it already. */
static int send_op(struct cvr_client *c)
{
	int rc;

	if (!c->point)
		return fail(c, -EINVAL, "no point is open");
	c->tx->u.op.point = c->point;
	c->tx->u.op.op = c->op++;
	if (c->tx->u.op.op < c->skip)
		return 0;
	rc = drain(c, c->conf.window - 1, c->conf.io_ms);
	if (!rc)
		rc = send_tx(c);
	return rc;
}

int cvr_client_extent(struct cvr_client *c, uint64_t file_id, uint64_t offset,
		      const void *data, size_t len)
{
	struct cvr_q_op *q = &c->tx->u.op;

	if (!len || len > CVR_DATA_MAX)
		return fail(c, -EINVAL, "extent of %zu bytes", len);
	memset(q, 0, sizeof(*q));
	c->tx->type = CVR_EXTENT;
	q->file_id = file_id;
	q->offset = offset;
	q->len = len;
	q->data = data;
	/* the hash only when it is sent: a resumed point skips the rest */
	if (c->op >= c->skip)
		cvr_sha256(data, len, q->sha256);
	return send_op(c);
}

int cvr_client_truncate(struct cvr_client *c, uint64_t file_id, uint64_t size)
{
	struct cvr_q_op *q = &c->tx->u.op;

	memset(q, 0, sizeof(*q));
	c->tx->type = CVR_TRUNCATE;
	q->file_id = file_id;
	q->offset = size;
	return send_op(c);
}

int cvr_client_punch(struct cvr_client *c, uint64_t file_id, uint64_t offset,
		     uint64_t len)
{
	struct cvr_q_op *q = &c->tx->u.op;

	memset(q, 0, sizeof(*q));
	c->tx->type = CVR_PUNCH;
	q->file_id = file_id;
	q->offset = offset;
	q->len = len;
	return send_op(c);
}

int cvr_client_end(struct cvr_client *c, struct cvr_q_point_end *end)
{
	int rc;

	if (!c->point)
		return fail(c, -EINVAL, "no point is open");
	end->point = c->point;
	end->nops = c->op;
	rc = drain(c, 0, c->conf.io_ms);
	if (rc)
		return rc;
	c->tx->type = CVR_POINT_END;
	c->tx->u.end = *end;
	rc = request(c, c->conf.apply_ms);
	if (rc)
		return rc;
	if (!c->rx->u.r_ack.applied || c->rx->u.r_ack.point != end->point)
		return fail(c, -EPROTO, "point %llu not applied",
			    (unsigned long long)end->point);
	c->point = 0;
	return 0;
}

int cvr_client_status(struct cvr_client *c, uint64_t group,
		      struct cvr_msg **reply)
{
	int rc;

	*reply = NULL;
	c->tx->type = CVR_STATUS;
	c->tx->u.status.group = group;
	rc = request(c, c->conf.io_ms);
	if (rc)
		return rc;
	*reply = c->rx;
	c->rx = calloc(1, sizeof(*c->rx));
	if (!c->rx) {
		c->rx = *reply;
		*reply = NULL;
		return fail(c, -ENOMEM, "out of memory");
	}
	/* the decoded list points into the old rx's own storage: moved
	 * with it */
	return 0;
}

int cvr_client_hashes(struct cvr_client *c, uint64_t group, uint64_t file_id,
		      uint64_t offset, uint32_t chunk, uint32_t count,
		      uint8_t (*sha)[CVR_SHA_LEN], uint64_t *size)
{
	int rc;

	c->tx->type = CVR_HASHES;
	c->tx->u.hashes = (struct cvr_q_hashes){ .group = group,
						 .file_id = file_id,
						 .offset = offset,
						 .chunk = chunk,
						 .count = count };
	rc = request(c, c->conf.io_ms);
	if (rc)
		return rc;
	if (c->rx->u.r_hashes.count != count ||
	    c->rx->u.r_hashes.file_id != file_id)
		return fail(c, -EPROTO, "the replica answered %u hashes",
			    c->rx->u.r_hashes.count);
	memcpy(sha, c->rx->u.r_hashes.sha256, (size_t)count * CVR_SHA_LEN);
	*size = c->rx->u.r_hashes.size;
	return 0;
}
