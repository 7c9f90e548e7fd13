// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * session.c - one primary's connection to csvfs-replicad: TLS with its
 * certificate checked against the allow-list, HELLO, then points.
 *
 * Every request gets exactly one reply, in order.  A session owns its
 * group's stage (the daemon's registry lets one session per group in);
 * it takes the group's lock for what touches images or state (HELLO,
 * POINT_BEGIN, POINT_END, STATUS), not for appending operations, so a
 * materialise command can copy the images while a point streams in.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "clock.h"
#include "log.h"
#include "replicad.h"
#include "stage.h"
#include "tls.h"

struct session {
	struct rd_daemon *d;
	SSL *ssl;
	const char *peer; /* address, for logs */
	char fpr[65];
	char cn[256];
	bool allowed;
	struct rs_group *g;
	uint64_t group; /* claimed in the registry, 0: none */
	uint16_t version;
	struct cvr_msg *rx, *tx;
	char err[512];
};

/* ------------------------------------------------------------------------
 * The registry: one session per group.
 */
static bool claim(struct rd_daemon *d, uint64_t group)
{
	bool ok = true;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nbusy && ok; i++)
		ok = d->busy[i] != group;
	if (ok && d->nbusy == d->capbusy) {
		uint64_t *p =
			realloc(d->busy, (d->capbusy * 2 + 8) * sizeof(*p));

		if (p) {
			d->busy = p;
			d->capbusy = d->capbusy * 2 + 8;
		} else {
			ok = false;
		}
	}
	if (ok)
		d->busy[d->nbusy++] = group;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

static void unclaim(struct rd_daemon *d, uint64_t group)
{
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nbusy; i++)
		if (d->busy[i] == group) {
			d->busy[i] = d->busy[--d->nbusy];
			break;
		}
	pthread_mutex_unlock(&d->lock);
}

/* ------------------------------------------------------------------------
 * Replies.
 */
static int reply(struct session *s, int status)
{
	uint8_t *buf;
	size_t len;
	int rc;

	s->tx->type = s->rx->type | CVR_REPLY;
	s->tx->seq = s->rx->seq;
	s->tx->status = status;
	s->tx->version = (s->rx->type == CVR_HELLO) ? 0 : s->version;
	if (status) {
		snprintf(s->tx->u.r_error, sizeof(s->tx->u.r_error), "%s",
			 s->err[0] ? s->err : cvr_strerror(status));
		log_notice("%s: %s refused: %s", s->peer,
			   cvr_msg_type_name(s->rx->type), s->tx->u.r_error);
	}
	rc = cvr_encode_alloc(s->tx, &buf, &len);
	if (rc) {
		log_err("%s: cannot encode a %s reply: %s", s->peer,
			cvr_msg_type_name(s->rx->type), strerror(-rc));
		return rc;
	}
	rc = cvr_tls_write_all(s->ssl, buf, len,
			       cv_now_ms() + (uint64_t)s->d->conf.idle_ms);
	free(buf);
	return rc;
}

static int reply_ack(struct session *s, uint64_t point, uint64_t next_op,
		     bool applied)
{
	memset(&s->tx->u, 0, sizeof(s->tx->u));
	s->tx->u.r_ack.point = point;
	s->tx->u.r_ack.next_op = next_op;
	s->tx->u.r_ack.applied = applied;
	return reply(s, 0);
}

static int64_t now_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------------------
 * HELLO: who may use the group, and whose generation it follows.
 */
static int hello_check(struct session *s, const struct cvr_q_hello *h)
{
	struct rs_group *g = s->g;

	if (!g->exists) {
		memcpy(g->primary, h->primary, CVR_ID_LEN);
		snprintf(g->peer, sizeof(g->peer), "%s", s->fpr);
		g->generation = h->generation;
		log_notice("%s: new group %016" PRIx64 " from primary %s (%s)",
			   s->peer, g->id, h->name, s->cn);
		return rs_group_save(g) ? CVR_E_STORE : 0;
	}
	if (strcmp(g->peer, s->fpr)) {
		snprintf(s->err, sizeof(s->err),
			 "group %016" PRIx64 " belongs to another primary "
			 "(certificate %.16s...)",
			 g->id, g->peer);
		return CVR_E_NOT_ALLOWED;
	}
	if (memcmp(g->primary, h->primary, CVR_ID_LEN)) {
		snprintf(s->err, sizeof(s->err),
			 "group %016" PRIx64 " is replicated from another "
			 "primary site id",
			 g->id);
		return CVR_E_NOT_ALLOWED;
	}
	if (g->promoted) {
		snprintf(s->err, sizeof(s->err),
			 "group %016" PRIx64 " was failed over to this site; "
			 "it no longer follows the primary (split brain "
			 "guard)",
			 g->id);
		return CVR_E_SPLIT_BRAIN;
	}
	if (h->generation == g->generation)
		return 0;
	if (h->base_generation != g->generation) {
		snprintf(s->err, sizeof(s->err),
			 "the replica follows generation %" PRIu64
			 " of group %016" PRIx64 ", the primary is at %" PRIu64
			 " from %" PRIu64,
			 g->generation, g->id, h->generation,
			 h->base_generation);
		return CVR_E_SPLIT_BRAIN;
	}
	g->generation = h->generation;
	return rs_group_save(g) ? CVR_E_STORE : 0;
}

static void release(struct session *s)
{
	if (s->g) {
		rs_stage_close(s->g);
		rs_group_close(s->g);
		s->g = NULL;
	}
	if (s->group)
		unclaim(s->d, s->group);
	s->group = 0;
}

static int on_hello(struct session *s)
{
	const struct cvr_q_hello *h = &s->rx->u.hello;
	struct cvr_r_hello *r = &s->tx->u.r_hello;
	int rc;

	if (s->g)
		return reply(s, -EISCONN);
	if (!s->allowed) {
		snprintf(s->err, sizeof(s->err),
			 "certificate %s (CN %s) is not in the replica's "
			 "allow-list",
			 s->fpr, s->cn[0] ? s->cn : "none");
		return reply(s, CVR_E_NOT_ALLOWED);
	}
	if (h->proto_max < CVR_VERSION_MIN || h->proto_min > CVR_VERSION_MAX)
		return reply(s, -EPROTONOSUPPORT);
	s->version =
		h->proto_max < CVR_VERSION_MAX ? h->proto_max : CVR_VERSION_MAX;
	if (!claim(s->d, h->group)) {
		snprintf(s->err, sizeof(s->err),
			 "group %016" PRIx64 " is in another session",
			 h->group);
		return reply(s, -EBUSY);
	}
	s->group = h->group;
	rc = rs_group_open(&s->d->store, h->group, &s->g);
	if (!rc)
		rc = rs_group_lock(s->g, s->d->conf.lock_ms, s->err,
				   sizeof(s->err));
	if (rc) {
		release(s);
		return reply(s, rc == -EBUSY ? rc : CVR_E_STORE);
	}
	rc = hello_check(s, h);
	memset(r, 0, sizeof(*r));
	if (!rc && rs_stage_peek(s->g, &r->open_point, &r->open_next_op))
		r->open_point = r->open_next_op = 0;
	r->version = s->version;
	memcpy(r->replica, s->d->store.id, CVR_ID_LEN);
	r->generation = s->g->generation;
	r->last_point = rs_group_last(s->g);
	rs_group_unlock(s->g);
	if (rc)
		release(s);
	return reply(s, rc);
}

/* ------------------------------------------------------------------------
 * Points.
 */
static int on_begin(struct session *s)
{
	const struct cvr_q_point_begin *b = &s->rx->u.begin;
	uint64_t next = 0;
	int rc;

	if (b->group != s->g->id)
		return reply(s, -EXDEV);
	rc = rs_group_lock(s->g, s->d->conf.lock_ms, s->err, sizeof(s->err));
	if (rc)
		return reply(s, rc == -EBUSY ? rc : CVR_E_STORE);
	rc = rs_begin(s->g, b, &next, s->err, sizeof(s->err));
	rs_group_unlock(s->g);
	if (rc)
		return reply(s, rc);
	if (next)
		log_info("%s: point %" PRIu64 " resumes at op %" PRIu64,
			 s->peer, b->point, next);
	return reply_ack(s, b->point, next, false);
}

static int on_op(struct session *s)
{
	int rc = rs_op(s->g, s->rx->type, &s->rx->u.op, s->err, sizeof(s->err));

	if (rc)
		return reply(s, rc);
	return reply_ack(s, s->rx->u.op.point, s->g->next_op, false);
}

static int on_end(struct session *s)
{
	const struct cvr_q_point_end *e = &s->rx->u.end;
	int rc =
		rs_group_lock(s->g, s->d->conf.lock_ms, s->err, sizeof(s->err));

	if (rc)
		return reply(s, rc == -EBUSY ? rc : CVR_E_STORE);
	rc = rs_end(s->g, e, now_realtime_ns(), s->err, sizeof(s->err));
	rs_group_unlock(s->g);
	if (rc)
		return reply(s, rc);
	return reply_ack(s, e->point, e->nops, true);
}

static int on_status(struct session *s)
{
	struct cvr_r_status *r = &s->tx->u.r_status;
	struct rs_group *g = s->g;
	size_t first;
	int rc;

	if (s->rx->u.status.group != g->id)
		return reply(s, -EXDEV);
	rc = rs_group_lock(g, s->d->conf.lock_ms, s->err, sizeof(s->err));
	if (rc)
		return reply(s, rc == -EBUSY ? rc : CVR_E_STORE);
	memset(r, 0, sizeof(*r));
	r->group = g->id;
	r->generation = g->generation;
	r->last_point = rs_group_last(g);
	r->promoted = g->promoted;
	r->open_point = g->stage_fd >= 0 ? g->open_point : 0;
	r->open_next_op = g->stage_fd >= 0 ? g->next_op : 0;
	first = g->npoints > CVR_POINTS_MAX ? g->npoints - CVR_POINTS_MAX : 0;
	r->points = s->tx->store.points;
	for (size_t i = first; i < g->npoints; i++)
		r->points[r->npoints++] = (struct cvr_point_info){
			.point = g->points[i].point,
			.time_ns = g->points[i].time_ns,
			.bytes = rs_point_bytes(g, g->points[i].point),
		};
	rs_group_unlock(g);
	return reply(s, 0);
}

static int on_hashes(struct session *s)
{
	const struct cvr_q_hashes *q = &s->rx->u.hashes;
	struct cvr_r_hashes *r = &s->tx->u.r_hashes;
	int rc;

	if (q->group != s->g->id)
		return reply(s, -EXDEV);
	rc = rs_group_lock(s->g, s->d->conf.lock_ms, s->err, sizeof(s->err));
	if (rc)
		return reply(s, rc == -EBUSY ? rc : CVR_E_STORE);
	memset(r, 0, sizeof(*r));
	r->file_id = q->file_id;
	r->count = q->count;
	r->sha256 = s->tx->store.sha;
	rc = rs_image_hashes(s->g, q, r->sha256, &r->size);
	rs_group_unlock(s->g);
	if (rc)
		snprintf(s->err, sizeof(s->err),
			 "cannot hash the image of file %" PRIu64 ": %s",
			 q->file_id, strerror(-rc));
	return reply(s, rc ? CVR_E_STORE : 0);
}

static int dispatch(struct session *s)
{
	unsigned type = s->rx->type;

	s->err[0] = '\0';
	if (type & CVR_REPLY)
		return -EPROTO;
	if (type == CVR_PING) {
		s->tx->u.r_ping = s->rx->u.ping;
		return reply(s, 0);
	}
	if (type == CVR_HELLO)
		return on_hello(s);
	if (!s->g)
		return reply(s, -ENOTCONN);
	switch (type) {
	case CVR_POINT_BEGIN:
		return on_begin(s);
	case CVR_EXTENT:
	case CVR_TRUNCATE:
	case CVR_PUNCH:
		return on_op(s);
	case CVR_POINT_END:
		return on_end(s);
	case CVR_HASHES:
		return on_hashes(s);
	default:
		return on_status(s);
	}
}

/* ------------------------------------------------------------------------
 * The connection.
 */
static int serve(struct session *s)
{
	uint8_t *buf;
	size_t len;
	int rc;

	for (;;) {
		rc = cvr_tls_read_msg(s->ssl, &buf, &len,
				      cv_now_ms() +
					      (uint64_t)s->d->conf.idle_ms);
		if (rc)
			return rc;
		rc = cvr_msg_decode(buf, len, s->rx);
		if (rc) {
			free(buf);
			return rc;
		}
		rc = dispatch(s);
		free(buf);
		if (rc)
			return rc;
		if (!s->allowed) /* told why; nothing more to say */
			return -EACCES;
	}
}

static int session_start(struct session *s, int fd)
{
	char err[256];
	int rc;

	s->tx = calloc(1, sizeof(*s->tx));
	s->rx = calloc(1, sizeof(*s->rx));
	s->ssl = SSL_new(s->d->ctx);
	if (!s->tx || !s->rx || !s->ssl)
		return -ENOMEM;
	s->version = CVR_VERSION_HELLO;
	rc = cvr_tls_set_sock(s->ssl, fd);
	if (!rc)
		rc = cvr_tls_handshake(
			s->ssl, true,
			cv_now_ms() + (uint64_t)s->d->conf.handshake_ms, err,
			sizeof(err));
	if (rc) {
		log_warn("%s: refused: %s", s->peer, err);
		return rc;
	}
	rc = cvr_tls_peer_id(s->ssl, s->fpr, s->cn, sizeof(s->cn));
	if (rc)
		return rc;
	pthread_mutex_lock(&s->d->lock); /* SIGHUP swaps the list */
	s->allowed = rd_allowed(&s->d->allow, s->fpr, s->cn);
	pthread_mutex_unlock(&s->d->lock);
	log_info("%s: certificate %s (CN %s)%s", s->peer, s->fpr, s->cn,
		 s->allowed ? "" : " is not in the allow-list");
	return 0;
}

void rd_session(struct rd_daemon *d, int fd, const char *peer)
{
	struct session s = { .d = d, .peer = peer };
	int rc = session_start(&s, fd);

	if (!rc) {
		rc = serve(&s);
		if (rc == -ECONNRESET)
			log_info("%s: session ended", peer);
		else if (rc != -EACCES)
			log_notice("%s: session ended: %s", peer,
				   strerror(-rc));
	}
	release(&s);
	if (s.ssl) {
		SSL_shutdown(s.ssl);
		SSL_free(s.ssl);
	}
	ERR_clear_error();
	close(fd);
	free(s.tx);
	free(s.rx);
}
