// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * chan_cli.c - a node's end of the coordinator channel (chan.h).
 *
 * One I/O thread connects (TCP, TLS, HELLO within connect_ms), runs the
 * link's loop, and when the connection fails tells the owner to drop its
 * maps (reset), fails the calls in flight with -ECONNRESET and connects
 * again after a back-off that doubles from backoff_min_ms up to
 * backoff_max_ms (and starts again from the bottom after a connection
 * that lived longer than the cap).
 *
 * Callers encode their request, wait for a connection (up to their
 * timeout), queue it on the link, and sleep on their own condition
 * variable; the I/O thread decodes the reply into the caller's struct
 * under cl->lock and wakes it.  A caller that timed out unlinks its call
 * under the same lock, so a late reply finds nothing and is dropped.
 *
 * Locks: cl->lock (everything in struct cvb_cli below it) before the
 * link's lock.  The link pointer is only used under cl->lock; the I/O
 * thread frees a link only after clearing cl->link under cl->lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chan_i.h"
#include "clock.h"
#include "log.h"

struct cli_call {
	struct cli_call *next;
	uint64_t id;
	uint16_t type; /* of the request */
	struct cvb_msg *rep;
	uint8_t **rbuf;
	bool done;
	int rc;
	pthread_cond_t cond;
};

struct cvb_cli {
	struct cvb_cli_opts opts; /* host not used: see host below */
	struct cvb_chan_key key;
	SSL_CTX *ctx;
	pthread_t thr;

	pthread_mutex_t lock; /* protects the fields below */
	pthread_cond_t cond;  /* up, closing, host changed */
	char *host;
	uint16_t port;
	unsigned target_gen;   /* bumped by cvb_cli_retarget */
	struct cvb_link *link; /* while up */
	bool up;
	bool closing;
	uint16_t version; /* of the connection */
	uint32_t coordinator;
	uint64_t next_id;
	struct cli_call *calls; /* sent, waiting for their reply */
	int last_err;
	char why[800];
};

static void cond_init_mono(pthread_cond_t *c)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(c, &ca);
	pthread_condattr_destroy(&ca);
}

static void unlink_call(struct cvb_cli *cl, struct cli_call *call)
{
	for (struct cli_call **pp = &cl->calls; *pp; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			return;
		}
	}
}

/* ------------------------------------------------------------------------
 * Messages from the coordinator (on the I/O thread).
 */
static int cli_reply(struct cvb_cli *cl, uint8_t *buf, size_t len, uint64_t id)
{
	struct cli_call *call;
	int rc;

	pthread_mutex_lock(&cl->lock);
	for (call = cl->calls; call && call->id != id; call = call->next)
		;
	if (!call) {
		pthread_mutex_unlock(&cl->lock);
		log_debug("coordinator channel: reply %llu came after its "
			  "call gave up",
			  (unsigned long long)id);
		free(buf);
		return 0;
	}
	rc = cvb_msg_decode(buf, len, call->rep);
	if (!rc && call->rep->type != (call->type | CVB_REPLY))
		rc = -EPROTO;
	call->rc = rc ? rc : call->rep->status;
	if (!rc && call->rbuf)
		*call->rbuf = buf;
	else
		free(buf);
	unlink_call(cl, call);
	call->done = true;
	pthread_cond_signal(&call->cond);
	pthread_mutex_unlock(&cl->lock);
	if (rc)
		log_warn("coordinator channel: bad reply (%zu bytes) from the "
			 "coordinator: %s",
			 len, strerror(-rc));
	return rc;
}

static int cli_recall(struct cvb_cli *cl, struct cvb_link *l, uint8_t *buf,
		      size_t len)
{
	struct cvb_msg m, ack = { .type = CVB_RECALL | CVB_REPLY };
	int rc = cvb_msg_decode(buf, len, &m);

	free(buf);
	if (rc)
		return rc;
	if (cl->opts.recall)
		cl->opts.recall(cl->opts.arg, m.u.recall.ino, m.u.recall.gen);
	ack.version = m.version;
	ack.req_id = m.req_id;
	return cvb_link_send_msg(l, &ack);
}

static int cli_on_msg(struct cvb_link *l, uint8_t *buf, size_t len)
{
	struct cvb_cli *cl = l->owner;
	uint64_t id;
	uint16_t type;

	cvb_msg_peek(buf, &id, &type);
	if (type == CVB_PING)
		return cvb_link_pong(l, buf, len);
	if (type == (CVB_PING | CVB_REPLY) && id == 0) {
		free(buf); /* the answer to a keep-alive */
		return 0;
	}
	if (type & CVB_REPLY)
		return cli_reply(cl, buf, len, id);
	if (type == CVB_RECALL)
		return cli_recall(cl, l, buf, len);
	log_warn("coordinator channel: unexpected %s request from the "
		 "coordinator",
		 cvb_msg_type_name(type));
	free(buf);
	return -EPROTO;
}

static const struct cvb_link_ops cli_link_ops = {
	.on_msg = cli_on_msg,
};

/* ------------------------------------------------------------------------
 * Connecting.
 */
static int cli_hello(struct cvb_cli *cl, SSL *ssl, uint64_t deadline, char *err,
		     size_t errlen)
{
	struct cvb_msg m = { .type = CVB_HELLO, .req_id = 1 };
	uint8_t *out = NULL, *in = NULL;
	size_t olen, ilen;
	int rc;

	m.u.hello.node_id = cl->opts.node_id;
	m.u.hello.proto_min = CVB_VERSION_MIN;
	m.u.hello.proto_max = CVB_VERSION_MAX;
	memcpy(m.u.hello.volume, cl->key.volume, CVB_UUID_LEN);
	rc = cvb_encode_alloc(&m, &out, &olen);
	if (!rc)
		rc = cvb_tls_write_all(ssl, out, olen, deadline);
	if (!rc)
		rc = cvb_tls_read_msg(ssl, &in, &ilen, deadline);
	if (!rc)
		rc = cvb_msg_decode(in, ilen, &m);
	if (!rc && m.type != (CVB_HELLO | CVB_REPLY))
		rc = -EPROTO;
	if (rc)
		snprintf(err, errlen, "hello: %s", strerror(-rc));
	else if ((rc = m.status))
		snprintf(err, errlen, "the coordinator refused this node: %s",
			 strerror(-rc));
	if (!rc) {
		cl->version = m.u.r_hello.version;
		cl->coordinator = m.u.r_hello.node_id;
	}
	free(out);
	free(in);
	return rc;
}

static int cli_tls(struct cvb_cli *cl, int fd, uint64_t deadline, SSL **out,
		   char *err, size_t errlen)
{
	struct cvb_psk_seen seen = { .key = &cl->key };
	SSL *ssl = SSL_new(cl->ctx);
	int rc;

	if (!ssl || cvb_ssl_set_sock(ssl, fd)) {
		SSL_free(ssl);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	SSL_set_app_data(ssl, &seen);
	rc = cvb_tls_handshake(ssl, false, deadline, err, errlen);
	SSL_set_app_data(ssl, NULL);
	if (!rc)
		rc = cli_hello(cl, ssl, deadline, err, errlen);
	if (rc) {
		SSL_free(ssl);
		return rc;
	}
	*out = ssl;
	return 0;
}

/* A connected link to the current target, or -errno with err. */
static int cli_connect(struct cvb_cli *cl, struct cvb_link **out, unsigned *gen,
		       char *err, size_t errlen)
{
	uint64_t deadline = cv_now_ms() + (uint64_t)cl->opts.times.connect_ms;
	struct cvb_link *l = calloc(1, sizeof(*l));
	char host[256];
	uint16_t port;
	SSL *ssl = NULL;
	int fd, rc;

	pthread_mutex_lock(&cl->lock);
	snprintf(host, sizeof(host), "%s", cl->host);
	port = cl->port;
	*gen = cl->target_gen;
	pthread_mutex_unlock(&cl->lock);
	if (!l)
		return -ENOMEM;
	fd = cvb_tcp_connect(host, port, deadline, err, errlen);
	if (fd < 0) {
		free(l);
		return fd;
	}
	cvb_sock_tune(fd, cl->opts.times.dead_ms);
	rc = cli_tls(cl, fd, deadline, &ssl, err, errlen);
	if (!rc)
		rc = cvb_link_init(l, fd, ssl, &cli_link_ops, cl,
				   &cl->opts.times);
	if (rc) {
		SSL_free(ssl);
		close(fd);
		free(l);
		return rc;
	}
	snprintf(l->peer, sizeof(l->peer), "coordinator %s port %u", host,
		 port);
	*out = l;
	return 0;
}

/* Note a failed attempt; log it when the error is new. */
static void cli_failed(struct cvb_cli *cl, int rc, const char *err, int backoff)
{
	char why[sizeof(cl->why)];
	bool news;

	pthread_mutex_lock(&cl->lock);
	news = cl->last_err != rc;
	cl->last_err = rc;
	snprintf(cl->why, sizeof(cl->why), "coordinator %s port %u: %s",
		 cl->host, cl->port, err);
	memcpy(why, cl->why, sizeof(why));
	pthread_mutex_unlock(&cl->lock);
	cv_log(news ? LOG_WARNING : LOG_DEBUG,
	       "coordinator channel: cannot reach %s (retrying in %d ms)", why,
	       backoff);
}

/* Sleep ms unless closing or retargeted since gen. */
static void cli_sleep(struct cvb_cli *cl, int ms, unsigned gen)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)ms * CV_NS_PER_MS;
	struct timespec ts = cv_timespec_of(deadline);

	pthread_mutex_lock(&cl->lock);
	while (!cl->closing && gen == cl->target_gen && cv_now_ns() < deadline)
		pthread_cond_timedwait(&cl->cond, &cl->lock, &ts);
	pthread_mutex_unlock(&cl->lock);
}

/* Run one connection until it ends; false if closing. */
static bool cli_session(struct cvb_cli *cl, struct cvb_link *l, unsigned gen)
{
	char why[320] = "";
	bool closing;
	int rc;

	pthread_mutex_lock(&cl->lock);
	if (gen != cl->target_gen || cl->closing) {
		/* retargeted while connecting: this is the old coordinator */
		closing = cl->closing;
		pthread_mutex_unlock(&cl->lock);
		cvb_link_destroy(l);
		free(l);
		return !closing;
	}
	cl->link = l;
	cl->up = true;
	cl->last_err = 0;
	cl->why[0] = '\0';
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	log_notice("coordinator channel: connected to %s (node %u, protocol "
		   "%u)",
		   l->peer, cl->coordinator, cl->version);
	rc = cvb_link_run(l, why, sizeof(why));
	pthread_mutex_lock(&cl->lock);
	cl->up = false;
	cl->link = NULL;
	cvb_link_stop(l);
	closing = cl->closing;
	pthread_mutex_unlock(&cl->lock);
	/* maps go before any caller hears that the connection went */
	if (cl->opts.reset)
		cl->opts.reset(cl->opts.arg);
	pthread_mutex_lock(&cl->lock);
	while (cl->calls) {
		struct cli_call *call = cl->calls;

		cl->calls = call->next;
		call->rc = -ECONNRESET;
		call->done = true;
		pthread_cond_signal(&call->cond);
	}
	cl->last_err = rc ? rc : -ECONNRESET;
	snprintf(cl->why, sizeof(cl->why), "%s: %s", l->peer,
		 rc ? why : "connection closed");
	pthread_mutex_unlock(&cl->lock);
	if (!closing)
		log_warn("coordinator channel: connection to %s lost: %s",
			 l->peer, rc ? why : "closed");
	if (closing)
		SSL_shutdown(l->ssl); /* best effort: a clean close_notify */
	cvb_link_destroy(l);
	free(l);
	return !closing;
}

static void *cli_main(void *arg)
{
	struct cvb_cli *cl = arg;
	int backoff = cl->opts.times.backoff_min_ms;
	struct cvb_link *l;
	uint64_t t0;
	char err[320];
	unsigned gen = 0;
	int rc;

	for (;;) {
		pthread_mutex_lock(&cl->lock);
		rc = cl->closing;
		pthread_mutex_unlock(&cl->lock);
		if (rc)
			break;
		rc = cli_connect(cl, &l, &gen, err, sizeof(err));
		if (rc) {
			cli_failed(cl, rc, err, backoff);
		} else {
			t0 = cv_now_ms();
			if (!cli_session(cl, l, gen))
				break;
			if (cv_now_ms() - t0 >
			    (uint64_t)cl->opts.times.backoff_max_ms)
				backoff = cl->opts.times.backoff_min_ms;
		}
		cli_sleep(cl, backoff, gen);
		backoff = backoff * 2 > cl->opts.times.backoff_max_ms
				  ? cl->opts.times.backoff_max_ms
				  : backoff * 2;
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * The API.
 */
int cvb_cli_open(const struct cvb_cli_opts *opts, struct cvb_cli **out)
{
	struct cvb_cli *cl;

	if (!opts->key || !opts->host || !opts->port)
		return -EINVAL;
	cl = calloc(1, sizeof(*cl));
	if (!cl)
		return -ENOMEM;
	cl->opts = *opts;
	cl->key = *opts->key;
	cl->opts.key = &cl->key;
	cl->opts.host = NULL;
	cvb_times_fill(&cl->opts.times);
	pthread_mutex_init(&cl->lock, NULL);
	cond_init_mono(&cl->cond);
	cl->host = strdup(opts->host);
	cl->port = opts->port;
	cl->ctx = cvb_tls_ctx(false);
	cl->last_err = -ENOTCONN;
	snprintf(cl->why, sizeof(cl->why), "not connected yet");
	if (!cl->host || !cl->ctx ||
	    pthread_create(&cl->thr, NULL, cli_main, cl)) {
		SSL_CTX_free(cl->ctx);
		free(cl->host);
		free(cl);
		return -ENOMEM;
	}
	*out = cl;
	return 0;
}

void cvb_cli_close(struct cvb_cli *cl)
{
	if (!cl)
		return;
	pthread_mutex_lock(&cl->lock);
	cl->closing = true;
	if (cl->link)
		cvb_link_stop(cl->link);
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	pthread_join(cl->thr, NULL);
	SSL_CTX_free(cl->ctx);
	free(cl->host);
	pthread_cond_destroy(&cl->cond);
	pthread_mutex_destroy(&cl->lock);
	OPENSSL_cleanse(&cl->key, sizeof(cl->key));
	free(cl);
}

int cvb_cli_retarget(struct cvb_cli *cl, const char *host, uint16_t port)
{
	char *h = strdup(host);

	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&cl->lock);
	free(cl->host);
	cl->host = h;
	cl->port = port;
	cl->target_gen++;
	if (cl->link) {
		/* new calls wait for the new coordinator; those in flight
		 * fail with -ECONNRESET when the old link ends */
		cl->up = false;
		cvb_link_stop(cl->link);
	}
	pthread_cond_broadcast(&cl->cond);
	pthread_mutex_unlock(&cl->lock);
	return 0;
}

bool cvb_cli_connected(struct cvb_cli *cl, int *last_err, char *why,
		       size_t whylen)
{
	bool up;

	pthread_mutex_lock(&cl->lock);
	up = cl->up;
	if (last_err)
		*last_err = up ? 0 : cl->last_err;
	if (why)
		snprintf(why, whylen, "%s", up ? "" : cl->why);
	pthread_mutex_unlock(&cl->lock);
	return up;
}

/* Wait (cl->lock held) until connected or the deadline: 0 or -errno. */
static int wait_up(struct cvb_cli *cl, uint64_t deadline_ns)
{
	struct timespec ts = cv_timespec_of(deadline_ns);

	while (!cl->up && !cl->closing && cv_now_ns() < deadline_ns)
		pthread_cond_timedwait(&cl->cond, &cl->lock, &ts);
	if (cl->closing)
		return -ESHUTDOWN;
	if (cl->up)
		return 0;
	return cl->last_err && cl->last_err != -ENOTCONN ? cl->last_err
							 : -ETIMEDOUT;
}

static struct cvb_obuf *encode_req(struct cvb_msg *req, int *rc)
{
	size_t cap = cvb_msg_bound(req);
	struct cvb_obuf *b = malloc(sizeof(*b) + cap);
	int n;

	*rc = -ENOMEM;
	if (!b)
		return NULL;
	n = cvb_msg_encode(req, b->data, cap);
	if (n < 0) {
		*rc = n;
		free(b);
		return NULL;
	}
	b->len = (size_t)n;
	return b;
}

int cvb_cli_call(struct cvb_cli *cl, struct cvb_msg *req, struct cvb_msg *rep,
		 uint8_t **rbuf, int timeout_ms)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)timeout_ms * CV_NS_PER_MS;
	struct timespec ts = cv_timespec_of(deadline);
	struct cli_call call = { .type = req->type, .rep = rep, .rbuf = rbuf };
	struct cvb_obuf *b;
	int rc;

	if (req->type & CVB_REPLY || req->type == CVB_HELLO)
		return -EINVAL;
	pthread_mutex_lock(&cl->lock);
	call.id = ++cl->next_id;
	rc = wait_up(cl, deadline);
	req->version = cl->version;
	pthread_mutex_unlock(&cl->lock);
	if (rc)
		return rc;
	req->req_id = call.id;
	b = encode_req(req, &rc);
	if (!b)
		return rc;
	cond_init_mono(&call.cond);
	pthread_mutex_lock(&cl->lock);
	rc = cl->up ? cvb_link_send(cl->link, b) : -ECONNRESET;
	if (rc) {
		if (!cl->up)
			free(b);
		goto out;
	}
	call.next = cl->calls;
	cl->calls = &call;
	while (!call.done && cv_now_ns() < deadline)
		pthread_cond_timedwait(&call.cond, &cl->lock, &ts);
	if (call.done) {
		rc = call.rc;
	} else {
		unlink_call(cl, &call);
		rc = -ETIMEDOUT;
	}
out:
	pthread_mutex_unlock(&cl->lock);
	pthread_cond_destroy(&call.cond);
	return rc;
}
