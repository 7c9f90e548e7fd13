// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * chan_srv.c - the coordinator's end of the channel (chan.h).
 *
 * An accept thread takes connections and starts one thread per
 * connection, which does the TLS handshake and HELLO (within
 * connect_ms), then runs the link's loop: requests go to the handler,
 * PINGs are answered at once, replies are acknowledgements of recalls.
 * A connection whose node connects again is closed in favour of the new
 * one.  Finished connection threads are joined by the accept thread.
 *
 * Lifetime of a connection: referenced by its thread (until joined) and
 * by each request not yet answered, so cvb_srv_reply may come after the
 * connection died (the reply is then dropped) or after cvb_srv_stop.
 *
 * Locks: srv->lock (the connection list, current/up/done flags, next
 * recall id) is taken before a link's lock, never the other way; the
 * link's lock also protects a connection's recall waiters and dead flag.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chan_i.h"
#include "clock.h"
#include "log.h"

#define CVB_SRV_CONN_MAX 128

struct recall_wait {
	struct recall_wait *next;
	uint64_t id;
	bool done;
	int status;
};

struct srv_conn {
	struct srv_conn *next; /* srv->conns, under srv->lock */
	struct cvb_srv *srv;   /* while the thread runs */
	struct cvb_link link;
	pthread_t thr;
	atomic_int refs;
	char addr[64];
	struct cvb_psk_seen seen;
	uint32_t node;	  /* set by HELLO, then constant */
	uint16_t version; /* likewise */
	/* under srv->lock */
	bool up;      /* HELLO done, not yet closed */
	bool current; /* the node's connection (not replaced) */
	bool done;    /* thread finished: join it */
	/* under link.lock */
	bool dead;
	struct recall_wait *recalls;
	pthread_cond_t cond; /* a recall acknowledged, or dead */
};

struct cvb_srv {
	struct cvb_srv_opts opts;
	struct cvb_chan_key key;
	SSL_CTX *ctx;
	int lfd;
	int stop_fd;
	uint16_t port;
	pthread_t accept_thr;

	pthread_mutex_t lock; /* protects the fields below */
	struct srv_conn *conns;
	unsigned nconns;
	uint64_t next_id;
};

struct cvb_srv_req {
	struct srv_conn *conn;
	uint8_t *buf; /* the message, which payload pointers point into */
	struct cvb_msg msg;
};

static void conn_put(struct srv_conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	pthread_cond_destroy(&c->cond);
	cvb_link_destroy(&c->link);
	free(c);
}

/* ------------------------------------------------------------------------
 * Messages on a connection's link.
 */
static int srv_recall_ack(struct srv_conn *c, uint8_t *buf, size_t len)
{
	struct cvb_msg m;
	struct recall_wait *w;
	int rc = cvb_msg_decode(buf, len, &m);

	free(buf);
	if (rc)
		return rc;
	if (m.type != (CVB_RECALL | CVB_REPLY))
		return -EPROTO;
	pthread_mutex_lock(&c->link.lock);
	for (w = c->recalls; w; w = w->next) {
		if (w->id == m.req_id) {
			w->done = true;
			w->status = m.status;
			pthread_cond_broadcast(&c->cond);
		}
	}
	pthread_mutex_unlock(&c->link.lock);
	return 0;
}

static int srv_on_msg(struct cvb_link *l, uint8_t *buf, size_t len)
{
	struct srv_conn *c = l->owner;
	struct cvb_srv_req *req;
	uint64_t id;
	uint16_t type;
	int rc;

	cvb_msg_peek(buf, &id, &type);
	if (type == CVB_PING)
		return cvb_link_pong(l, buf, len);
	if (type == (CVB_PING | CVB_REPLY)) {
		free(buf);
		return 0;
	}
	if (type & CVB_REPLY)
		return srv_recall_ack(c, buf, len);
	req = malloc(sizeof(*req));
	if (!req) {
		free(buf);
		return -ENOMEM;
	}
	rc = cvb_msg_decode(buf, len, &req->msg);
	if (!rc && (type == CVB_HELLO || type == CVB_RECALL))
		rc = -EPROTO;
	if (rc) {
		log_warn("coordinator channel: %s sent a bad %s message "
			 "(%zu bytes): %s",
			 l->peer, cvb_msg_type_name(type), len, strerror(-rc));
		free(buf);
		free(req);
		return rc;
	}
	req->buf = buf;
	req->conn = c;
	atomic_fetch_add(&c->refs, 1);
	c->srv->opts.handler(c->srv->opts.arg, req);
	return 0;
}

static const struct cvb_link_ops srv_link_ops = {
	.on_msg = srv_on_msg,
};

const struct cvb_msg *cvb_srv_req_msg(const struct cvb_srv_req *req)
{
	return &req->msg;
}

uint32_t cvb_srv_req_node(const struct cvb_srv_req *req)
{
	return req->conn->node;
}

void cvb_srv_reply(struct cvb_srv_req *req, int status, struct cvb_msg *rep)
{
	struct srv_conn *c = req->conn;
	struct cvb_msg err = { 0 };
	int rc;

	if (!rep || status)
		rep = &err;
	rep->type = req->msg.type | CVB_REPLY;
	rep->version = c->version;
	rep->status = status < -4095 || status > 0 ? -EIO : status;
	rep->req_id = req->msg.req_id;
	rc = cvb_link_send_msg(&c->link, rep);
	if (rc == -EINVAL) {
		log_err("coordinator channel: the reply to %s's %s does not "
			"encode (a value out of range); answering EIO",
			c->link.peer, cvb_msg_type_name(req->msg.type));
		err = (struct cvb_msg){ .type = rep->type,
					.status = -EIO,
					.req_id = rep->req_id,
					.version = c->version };
		rc = cvb_link_send_msg(&c->link, &err);
	}
	if (rc && rc != -ENOTCONN)
		log_warn("coordinator channel: reply to %s: %s", c->link.peer,
			 strerror(-rc));
	free(req->buf);
	free(req);
	conn_put(c);
}

/* ------------------------------------------------------------------------
 * A connection's thread: handshake, HELLO, the loop.
 */

/* The version both speak, or 0. */
static uint16_t choose_version(const struct cvb_q_hello *h)
{
	unsigned lo =
		h->proto_min > CVB_VERSION_MIN ? h->proto_min : CVB_VERSION_MIN;
	unsigned hi =
		h->proto_max < CVB_VERSION_MAX ? h->proto_max : CVB_VERSION_MAX;

	return lo <= hi ? (uint16_t)hi : 0;
}

/* Check HELLO; the status to answer it with, err saying why not 0. */
static int hello_check(struct srv_conn *c, const struct cvb_msg *m, char *err,
		       size_t errlen)
{
	if (m->type != CVB_HELLO) {
		snprintf(err, errlen, "first message is %s, not hello",
			 cvb_msg_type_name(m->type));
		return -EPROTO;
	}
	if (memcmp(m->u.hello.volume, c->srv->key.volume, CVB_UUID_LEN)) {
		snprintf(err, errlen, "node %u asks for another volume",
			 m->u.hello.node_id);
		return -ESTALE;
	}
	c->version = choose_version(&m->u.hello);
	if (!c->version) {
		snprintf(err, errlen,
			 "node %u speaks versions %u..%u, this coordinator "
			 "%u..%u",
			 m->u.hello.node_id, m->u.hello.proto_min,
			 m->u.hello.proto_max, CVB_VERSION_MIN,
			 CVB_VERSION_MAX);
		return -EPROTONOSUPPORT;
	}
	return 0;
}

static int hello_answer(struct srv_conn *c, uint64_t deadline, char *err,
			size_t errlen)
{
	struct cvb_msg m, r = { .type = CVB_HELLO | CVB_REPLY };
	uint8_t *buf = NULL, *out = NULL;
	size_t len, olen;
	int rc, st;

	rc = cvb_tls_read_msg(c->link.ssl, &buf, &len, deadline);
	if (!rc)
		rc = cvb_msg_decode(buf, len, &m);
	if (rc) {
		snprintf(err, errlen, "no valid hello: %s", strerror(-rc));
		goto out;
	}
	st = hello_check(c, &m, err, errlen);
	r.req_id = m.req_id;
	r.status = st;
	r.u.r_hello.version = c->version;
	r.u.r_hello.node_id = c->srv->opts.node_id;
	rc = cvb_encode_alloc(&r, &out, &olen);
	if (!rc)
		rc = cvb_tls_write_all(c->link.ssl, out, olen, deadline);
	if (!rc && st)
		rc = st;
	else if (rc)
		snprintf(err, errlen, "answering hello: %s", strerror(-rc));
	c->node = m.u.hello.node_id;
out:
	free(buf);
	free(out);
	return rc;
}

static int conn_open(struct srv_conn *c)
{
	uint64_t deadline =
		cv_now_ms() + (uint64_t)c->srv->opts.times.connect_ms;
	char err[320];
	int rc;

	SSL_set_app_data(c->link.ssl, &c->seen);
	rc = cvb_tls_handshake(c->link.ssl, true, deadline, err, sizeof(err));
	SSL_set_app_data(c->link.ssl, NULL);
	if (rc) {
		log_warn("coordinator channel: connection from %s %s", c->addr,
			 err);
		return rc;
	}
	rc = hello_answer(c, deadline, err, sizeof(err));
	if (rc) {
		log_warn("coordinator channel: connection from %s refused: %s",
			 c->addr, err);
		return rc;
	}
	snprintf(c->link.peer, sizeof(c->link.peer), "node %u (%s)", c->node,
		 c->addr);
	return 0;
}

/* The node's connection is now c: close an older one. */
static void conn_register(struct srv_conn *c)
{
	struct cvb_srv *srv = c->srv;

	pthread_mutex_lock(&srv->lock);
	for (struct srv_conn *o = srv->conns; o; o = o->next) {
		if (o == c || !o->current || o->node != c->node)
			continue;
		o->current = false;
		log_notice("coordinator channel: node %u connected again from "
			   "%s; closing its connection from %s",
			   c->node, c->addr, o->addr);
		cvb_link_stop(&o->link);
	}
	c->up = c->current = true;
	pthread_mutex_unlock(&srv->lock);
	log_info("coordinator channel: %s connected (protocol %u)",
		 c->link.peer, c->version);
	if (srv->opts.node_event)
		srv->opts.node_event(srv->opts.arg, c->node, true);
}

static void conn_end(struct srv_conn *c)
{
	struct cvb_srv *srv = c->srv;
	bool was_current;

	cvb_link_stop(&c->link);
	shutdown(c->link.fd, SHUT_RDWR);
	pthread_mutex_lock(&c->link.lock);
	c->dead = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->link.lock);
	pthread_mutex_lock(&srv->lock);
	was_current = c->up && c->current;
	c->up = c->current = false;
	pthread_mutex_unlock(&srv->lock);
	if (was_current && srv->opts.node_event)
		srv->opts.node_event(srv->opts.arg, c->node, false);
	pthread_mutex_lock(&srv->lock);
	c->done = true;
	pthread_mutex_unlock(&srv->lock);
}

static void *conn_main(void *arg)
{
	struct srv_conn *c = arg;
	char why[320] = "";
	int rc;

	if (!conn_open(c)) {
		conn_register(c);
		rc = cvb_link_run(&c->link, why, sizeof(why));
		if (rc && rc != -ESHUTDOWN)
			log_warn("coordinator channel: connection of %s lost: "
				 "%s",
				 c->link.peer, why);
		else
			log_info("coordinator channel: connection of %s "
				 "closed",
				 c->link.peer);
	}
	conn_end(c);
	return NULL;
}

/* ------------------------------------------------------------------------
 * Accepting.
 */
static void addr_string(const struct sockaddr_storage *ss, socklen_t len,
			char *out, size_t outlen)
{
	char host[48], serv[8];

	if (getnameinfo((const struct sockaddr *)ss, len, host, sizeof(host),
			serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV))
		snprintf(out, outlen, "?");
	else
		snprintf(out, outlen, "%s:%s", host, serv);
}

static struct srv_conn *conn_new(struct cvb_srv *srv, int fd, const char *addr)
{
	struct srv_conn *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	SSL *ssl = SSL_new(srv->ctx);

	if (!c || !ssl || cvb_ssl_set_sock(ssl, fd) ||
	    cvb_link_init(&c->link, fd, ssl, &srv_link_ops, c,
			  &srv->opts.times)) {
		SSL_free(ssl);
		free(c);
		return NULL;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	c->srv = srv;
	atomic_init(&c->refs, 1); /* the thread's, dropped when joined */
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	snprintf(c->link.peer, sizeof(c->link.peer), "%s", addr);
	c->seen.key = &srv->key;
	return c;
}

/* Join the threads of finished connections (all of them if all). */
static void reap(struct cvb_srv *srv, bool all)
{
	struct srv_conn **pp, *c, *gone = NULL;

	pthread_mutex_lock(&srv->lock);
	for (pp = &srv->conns; (c = *pp);) {
		if (all || c->done) {
			*pp = c->next;
			c->next = gone;
			gone = c;
			srv->nconns--;
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&srv->lock);
	while ((c = gone)) {
		gone = c->next;
		pthread_join(c->thr, NULL);
		conn_put(c);
	}
}

static void accept_one(struct cvb_srv *srv)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct srv_conn *c;
	char addr[64];
	int fd = accept4(srv->lfd, (struct sockaddr *)&ss, &sl,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("coordinator channel: accept on port %u: %s",
				 srv->port, strerror(errno));
		return;
	}
	addr_string(&ss, sl, addr, sizeof(addr));
	if (srv->nconns >= CVB_SRV_CONN_MAX) {
		log_warn("coordinator channel: connection from %s refused: "
			 "%d connections already",
			 addr, CVB_SRV_CONN_MAX);
		close(fd);
		return;
	}
	cvb_sock_tune(fd, srv->opts.times.dead_ms);
	c = conn_new(srv, fd, addr);
	if (!c) {
		log_err("coordinator channel: no memory for a connection from "
			"%s",
			addr);
		close(fd);
		return;
	}
	pthread_mutex_lock(&srv->lock);
	c->next = srv->conns;
	srv->conns = c;
	srv->nconns++;
	if (pthread_create(&c->thr, NULL, conn_main, c)) {
		srv->conns = c->next;
		srv->nconns--;
		pthread_mutex_unlock(&srv->lock);
		log_err("coordinator channel: cannot start a thread for %s",
			addr);
		conn_put(c);
		return;
	}
	pthread_mutex_unlock(&srv->lock);
}

static void *accept_main(void *arg)
{
	struct cvb_srv *srv = arg;
	struct pollfd p[2] = { { .fd = srv->lfd, .events = POLLIN },
			       { .fd = srv->stop_fd, .events = POLLIN } };

	for (;;) {
		if (poll(p, 2, 1000) < 0 && errno != EINTR) {
			log_err("coordinator channel: poll: %s",
				strerror(errno));
			break;
		}
		if (p[1].revents)
			break;
		reap(srv, false);
		if (p[0].revents & POLLIN)
			accept_one(srv);
	}
	return NULL;
}

/* ------------------------------------------------------------------------
 * Start and stop.
 */
static int listen_addr(struct cvb_srv *srv, const char *host, char *err,
		       size_t errlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV },
			*res;
	char serv[8];
	int one = 1, zero = 0, g, rc;

	snprintf(serv, sizeof(serv), "%u", srv->opts.port);
	g = getaddrinfo(host, serv, &hints, &res);
	if (g) {
		snprintf(err, errlen, "%s", gai_strerror(g));
		return -EADDRNOTAVAIL;
	}
	srv->lfd = socket(res->ai_family,
			  SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	rc = srv->lfd < 0 ? -errno : 0;
	if (!rc) {
		setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one,
			   sizeof(one));
		if (res->ai_family == AF_INET6) /* "::" takes IPv4 too */
			setsockopt(srv->lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero,
				   sizeof(zero));
	}
	if (!rc && (bind(srv->lfd, res->ai_addr, res->ai_addrlen) ||
		    listen(srv->lfd, 64)))
		rc = -errno;
	freeaddrinfo(res);
	if (rc) {
		snprintf(err, errlen, "%s", strerror(-rc));
		if (srv->lfd >= 0)
			close(srv->lfd);
		srv->lfd = -1;
	}
	return rc;
}

/* Listen on opts.host, or on every address: IPv6 and IPv4 together
 * where the host has IPv6, else IPv4. */
static int listen_on(struct cvb_srv *srv, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	int rc;

	if (srv->opts.host)
		rc = listen_addr(srv, srv->opts.host, err, errlen);
	else if ((rc = listen_addr(srv, "::", err, errlen)))
		rc = listen_addr(srv, "0.0.0.0", err, errlen);
	if (rc)
		return rc;
	if (getsockname(srv->lfd, (struct sockaddr *)&ss, &sl)) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -errno;
	}
	srv->port = ntohs(ss.ss_family == AF_INET6
				  ? ((struct sockaddr_in6 *)&ss)->sin6_port
				  : ((struct sockaddr_in *)&ss)->sin_port);
	return 0;
}

static void srv_free(struct cvb_srv *srv)
{
	if (srv->lfd >= 0)
		close(srv->lfd);
	if (srv->stop_fd >= 0)
		close(srv->stop_fd);
	SSL_CTX_free(srv->ctx);
	pthread_mutex_destroy(&srv->lock);
	OPENSSL_cleanse(&srv->key, sizeof(srv->key));
	free(srv);
}

int cvb_srv_start(const struct cvb_srv_opts *opts, struct cvb_srv **out)
{
	struct cvb_srv *srv;
	char err[256];
	int rc;

	if (!opts->key || !opts->handler)
		return -EINVAL;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->opts = *opts;
	srv->key = *opts->key;
	srv->opts.key = &srv->key;
	srv->opts.host = NULL; /* not kept: only used here */
	cvb_times_fill(&srv->opts.times);
	pthread_mutex_init(&srv->lock, NULL);
	srv->lfd = -1;
	srv->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	srv->ctx = cvb_tls_ctx(true);
	rc = srv->stop_fd < 0 || !srv->ctx ? -ENOMEM : 0;
	srv->opts.host = opts->host;
	if (!rc && (rc = listen_on(srv, err, sizeof(err))))
		log_err("coordinator channel: cannot listen on %s port %u: %s",
			opts->host ? opts->host : "*", opts->port, err);
	srv->opts.host = NULL;
	if (!rc && pthread_create(&srv->accept_thr, NULL, accept_main, srv))
		rc = -EAGAIN;
	if (rc) {
		srv_free(srv);
		return rc;
	}
	log_info("coordinator channel: listening on port %u for volume %s",
		 srv->port, srv->key.identity + 10);
	*out = srv;
	return 0;
}

uint16_t cvb_srv_port(const struct cvb_srv *srv)
{
	return srv->port;
}

void cvb_srv_stop(struct cvb_srv *srv)
{
	uint64_t one = 1;

	if (!srv)
		return;
	if (write(srv->stop_fd, &one, sizeof(one)) < 0)
		log_err("coordinator channel: cannot stop the accept thread: "
			"%s",
			strerror(errno));
	pthread_join(srv->accept_thr, NULL);
	pthread_mutex_lock(&srv->lock);
	for (struct srv_conn *c = srv->conns; c; c = c->next) {
		cvb_link_stop(&c->link);
		shutdown(c->link.fd, SHUT_RDWR); /* ends a handshake too */
	}
	pthread_mutex_unlock(&srv->lock);
	reap(srv, true);
	srv_free(srv);
}

/* ------------------------------------------------------------------------
 * Recall and the node list.
 */
static struct srv_conn *conn_of(struct cvb_srv *srv, uint32_t node,
				uint64_t *id)
{
	struct srv_conn *c;

	pthread_mutex_lock(&srv->lock);
	for (c = srv->conns; c; c = c->next)
		if (c->up && c->current && c->node == node)
			break;
	if (c)
		atomic_fetch_add(&c->refs, 1);
	*id = ++srv->next_id;
	pthread_mutex_unlock(&srv->lock);
	return c;
}

static int recall_wait(struct srv_conn *c, struct recall_wait *w,
		       uint64_t deadline_ns)
{
	struct timespec ts = cv_timespec_of(deadline_ns);
	struct recall_wait **pp;
	int rc;

	pthread_mutex_lock(&c->link.lock);
	while (!w->done && !c->dead && cv_now_ns() < deadline_ns)
		pthread_cond_timedwait(&c->cond, &c->link.lock, &ts);
	rc = w->done ? w->status : c->dead ? -ENOTCONN : -ETIMEDOUT;
	for (pp = &c->recalls; *pp; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	pthread_mutex_unlock(&c->link.lock);
	return rc;
}

/* Register w on c and send the recall; -errno if it could not go. */
static int recall_send(struct srv_conn *c, struct recall_wait *w, uint64_t ino,
		       uint64_t gen)
{
	struct cvb_msg m = { .type = CVB_RECALL };

	m.version = c->version;
	m.req_id = w->id;
	m.u.recall.ino = ino;
	m.u.recall.gen = gen;
	pthread_mutex_lock(&c->link.lock);
	w->next = c->recalls;
	c->recalls = w;
	pthread_mutex_unlock(&c->link.lock);
	return cvb_link_send_msg(&c->link, &m);
}

/* Wait for w's ack (or give up at once if sending failed with rc). */
static int recall_finish(struct srv_conn *c, struct recall_wait *w, int rc,
			 uint64_t ino, uint64_t deadline_ns)
{
	if (!rc)
		rc = recall_wait(c, w, deadline_ns);
	else
		recall_wait(c, w, 0);
	if (rc)
		log_warn("coordinator channel: recall of the map of inode "
			 "%llu from %s: %s",
			 (unsigned long long)ino, c->link.peer, strerror(-rc));
	return rc;
}

int cvb_srv_recall(struct cvb_srv *srv, uint32_t node, uint64_t ino,
		   uint64_t gen, int timeout_ms)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)timeout_ms * CV_NS_PER_MS;
	struct recall_wait w = { 0 };
	struct srv_conn *c = conn_of(srv, node, &w.id);
	int rc;

	if (!c)
		return -ENOTCONN;
	rc = recall_send(c, &w, ino, gen);
	rc = recall_finish(c, &w, rc, ino, deadline);
	conn_put(c);
	return rc;
}

/* Every connected node, referenced, with a recall id each. */
static unsigned conns_up(struct cvb_srv *srv, struct srv_conn **cs,
			 struct recall_wait *ws)
{
	unsigned n = 0;

	pthread_mutex_lock(&srv->lock);
	for (struct srv_conn *c = srv->conns; c && n < CVB_SRV_CONN_MAX;
	     c = c->next) {
		if (!c->up || !c->current)
			continue;
		atomic_fetch_add(&c->refs, 1);
		cs[n] = c;
		ws[n].id = ++srv->next_id;
		n++;
	}
	pthread_mutex_unlock(&srv->lock);
	return n;
}

int cvb_srv_recall_all(struct cvb_srv *srv, uint64_t ino, uint64_t gen,
		       int timeout_ms)
{
	uint64_t deadline = cv_now_ns() + (uint64_t)timeout_ms * CV_NS_PER_MS;
	struct srv_conn **cs = calloc(CVB_SRV_CONN_MAX, sizeof(*cs));
	struct recall_wait *ws = calloc(CVB_SRV_CONN_MAX, sizeof(*ws));
	int *sent = calloc(CVB_SRV_CONN_MAX, sizeof(*sent));
	unsigned n;
	int rc = 0, r;

	if (!cs || !ws || !sent) {
		rc = -ENOMEM;
		goto out;
	}
	n = conns_up(srv, cs, ws);
	/* all at once, then wait: one round trip, not one per node */
	for (unsigned i = 0; i < n; i++)
		sent[i] = recall_send(cs[i], &ws[i], ino, gen);
	for (unsigned i = 0; i < n; i++) {
		r = recall_finish(cs[i], &ws[i], sent[i], ino, deadline);
		if (r && !rc)
			rc = r;
		conn_put(cs[i]);
	}
out:
	free(cs);
	free(ws);
	free(sent);
	return rc;
}

unsigned cvb_srv_nodes(struct cvb_srv *srv, uint32_t *ids, unsigned max)
{
	unsigned n = 0;

	pthread_mutex_lock(&srv->lock);
	for (struct srv_conn *c = srv->conns; c && n < max; c = c->next)
		if (c->up && c->current)
			ids[n++] = c->node;
	pthread_mutex_unlock(&srv->lock);
	return n;
}
