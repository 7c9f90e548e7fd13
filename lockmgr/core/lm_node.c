// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_node.c - this node's view around the replicated lock table: local
 * ownership, requests, the lease and the fencer's timing (lm_node.h).
 *
 * EX ownership is per node in the replicated table; locally a resource
 * has one struct own that records which clients hold it (holders) and
 * which wait for it (waiters), so that a node never asks the cluster
 * twice for the same file and never gives a file up while a local client
 * still writes to it.
 *
 * Every cluster request of this node carries a node-local req_id
 * (struct req).  The table answers it by events naming that id;
 * requests answered NOQUORUM or SYNCING are resent after LM_EV_READY,
 * queued ones after LM_EV_SYNC_INSTALLED (the transfer drops waits).
 *
 * Races handled here:
 *   - a client cancels an acquire that the table grants meanwhile: the
 *     grant finds no waiter and is released at once;
 *   - a client cancels a SETW that is granted before the cancel is
 *     applied: the late PLOCK_GRANTED is undone with an UNLOCK;
 *   - the lease ends while we own files: holders are told LOST and the
 *     entry stays (LM_OWN_LOST) until the table, once ready again, shows
 *     whether we still own it (then we release it) or not.
 *
 * Lease.  A heartbeat (LM_C_HEARTBEAT, seq) is multicast every
 * heartbeat_ms; its send time is remembered by seq.  When our own
 * heartbeat is delivered back while the table is quorate and the
 * transport's quorum view is quorate for the same ring, the lease is
 * extended to send time + lease.  The send time, not the delivery time,
 * is what makes this safe: the survivors measure from the delivery of
 * our last heartbeat, which came after its send.
 *
 * Fencing.  Each node's latest heartbeat delivery is recorded on our own
 * clock (nodes never heard from: when we first saw them absent, which is
 * never before our start).  X's lease cannot outlive that delivery by more
 * than lease of X's clock, so the fencer may fence X once
 *     now - delivery >= lm_node_fence_wait_ms()
 * and, if a fence command is configured, after it exited 0 for X.  A
 * message of X that did not decode counts as a heartbeat delivery: it
 * may have been one that extended X's lease (X reads its own).
 *
 * Quorum is corosync's decision for the table's current ring (LM_C_QUORUM,
 * applied by lm_state).  While the decision for a new ring is pending the
 * table is not quorate, so the lease is not extended, but it does not end
 * either: only a decided "not quorate" (or the transport's own view) ends
 * it.  With two_node and no quorum device both halves of a split are
 * quorate, so a departed node is fenced only once a fence command
 * confirmed it.  A node kept out by the protocol round (LM_NODE_
 * INCOMPATIBLE) has no lease.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "lm_node.h"

#define NS_PER_MS 1000000ull
#define NODE_RECS (2 * LM_MAX_NODES)

struct link {
	struct link *next, *prev;
};

static void l_init(struct link *h)
{
	h->next = h->prev = h;
}

static void l_add_tail(struct link *h, struct link *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static void l_del(struct link *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

#define l_entry(ptr, type) ((type *)(void *)(ptr)) /* link comes first */
#define l_for_each_safe(pos, tmp, head) \
	for (pos = (head)->next, tmp = pos->next; pos != (head); \
	     pos = tmp, tmp = pos->next)

/* A client waiting for an EX ownership this node is getting. */
struct waiter {
	struct waiter *next;
	uint32_t client;
	uint32_t seq;
	uint32_t flags; /* LM_ACQ_* */
	uint64_t start_ns;
};

/* A client holding an EX ownership of this node. */
struct holder {
	struct holder *next;
	uint32_t client;
	uint32_t seq; /* of the acquire that gave it (for cancel) */
};

struct own {
	struct link link; /* first: in n->owns */
	struct lm_res res;
	enum lm_node_own_state state;
	uint64_t epoch;
	uint64_t req_id; /* ACQUIRING / RELEASING request */
	uint64_t revoke_ns;
	bool revoke_warned;
	bool handoff; /* granted by hand-off, not claimed yet */
	uint64_t idle_since_ns;
	struct holder *holders;
	struct waiter *waiters; /* FIFO */
};

enum req_kind {
	REQ_ACQUIRE = 10, /* for an own entry */
	REQ_RELEASE,	  /* for an own entry */
	/* and enum lm_node_req_kind */
};

enum req_state {
	RS_SENT = 1,	/* sent, no answer yet */
	RS_WAIT_READY,	/* answered NOQUORUM/SYNCING: resend after READY */
	RS_QUEUED,	/* waiting in the table: resend after SYNC_INSTALLED */
};

struct req {
	struct link link; /* first: in n->reqs */
	uint64_t req_id;
	int kind; /* enum req_kind or enum lm_node_req_kind */
	enum req_state state;
	struct lm_cmsg msg; /* what to resend */
	struct own *own;    /* ACQUIRE / RELEASE */
	uint32_t client;    /* PLOCK / ADMIN; 0 once gone */
	uint32_t seq;
	bool canceled; /* SETW canceled: undo a late grant */
};

/* What this node remembers of each node for fencing (not replicated). */
struct node_rec {
	uint32_t id;
	uint64_t last_hb_ns; /* delivery of its latest heartbeat */
	bool hb_seen;
	uint64_t fence_sent_ns;	 /* LM_C_FENCE sent at */
	uint64_t fence_sent_gen; /* ready_gen when it was sent */
	bool fence_running;
	uint64_t fence_started_ns;
	int fence_result; /* -1 none yet, 0 confirmed, >0 failed */
	uint64_t fence_failed_ns;
	bool no_cmd_warned; /* two_node without a fence command: said */
	uint16_t hb_version;	 /* version of its last heartbeat, 0 none */
	uint32_t hb_lease_ms;	 /* its lease, from a version 3 heartbeat */
	bool lease_warned;	 /* longer lease than ours: said once */
	uint16_t bad_version;	 /* undecodable version last reported */
};

struct lm_node {
	const struct lm_state *st;
	struct lm_node_conf c;
	uint64_t next_req_id;
	struct link reqs;
	struct link owns;
	bool ready;
	/* bumped at every LM_EV_READY: a FENCE sent in an earlier ready
	 * period may have been dropped by a ring change */
	uint64_t ready_gen;
	bool stopping;
	bool kept_out; /* LM_NODE_INCOMPATIBLE in the table */
	bool decided_out; /* "not quorate" decided for the current ring */
	/* the latest decision applied said quorate and no member left
	 * since: no other partition could extend a lease meanwhile */
	bool was_quorate;

	uint64_t hb_seq;
	uint64_t hb_send_ns[LM_NODE_HB_SLOTS]; /* by seq % SLOTS */
	uint64_t hb_next_ns;
	bool lease_valid;
	uint64_t lease_deadline_ns;
	struct node_rec nodes[NODE_RECS];
	unsigned n_nodes;
};

/* ---- the action queue ---- */

void lm_node_actq_init(struct lm_node_actq *q)
{
	memset(q, 0, sizeof(*q));
}

void lm_node_actq_reset(struct lm_node_actq *q)
{
	for (size_t i = 0; i < q->n; i++)
		free(q->a[i].data);
	q->n = 0;
}

void lm_node_actq_free(struct lm_node_actq *q)
{
	lm_node_actq_reset(q);
	free(q->a);
	memset(q, 0, sizeof(*q));
}

static struct lm_node_act *act_push(struct lm_node_actq *q,
				    enum lm_node_act_type type)
{
	struct lm_node_act *a;

	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct lm_node_act *v = realloc(q->a, cap * sizeof(*v));

		if (!v) {
			q->fatal = "out of memory for the actions of lockd";
			return NULL;
		}
		q->a = v;
		q->cap = cap;
	}
	a = &q->a[q->n++];
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->latency_us = -1;
	return a;
}

static void act_log(struct lm_node_actq *q, int level,
		    const struct lm_res *res, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void act_log(struct lm_node_actq *q, int level,
		    const struct lm_res *res, const char *fmt, ...)
{
	struct lm_node_act *a = act_push(q, LM_NA_LOG);
	va_list ap;

	if (!a)
		return;
	a->level = level;
	if (res)
		a->res = *res;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
}

static void act_send(struct lm_node_actq *q, const struct lm_cmsg *m)
{
	struct lm_node_act *a = act_push(q, LM_NA_SEND);

	if (a)
		a->msg = *m;
}

static void act_reply(struct lm_node_actq *q, uint32_t client, uint32_t seq,
		      int32_t status, uint64_t epoch)
{
	struct lm_node_act *a = act_push(q, LM_NA_REPLY);

	if (!a)
		return;
	a->client = client;
	a->seq = seq;
	a->status = status;
	a->epoch = epoch;
}

static void act_reply_acquire(struct lm_node_actq *q, uint32_t client,
			      uint32_t seq, int32_t status, uint64_t epoch,
			      int64_t latency_us)
{
	act_reply(q, client, seq, status, epoch);
	if (q->n && q->a[q->n - 1].type == LM_NA_REPLY) {
		q->a[q->n - 1].acquire = true;
		q->a[q->n - 1].latency_us = latency_us;
	}
}

static void act_push_ev(struct lm_node_actq *q, enum lm_node_act_type type,
			uint32_t client, uint16_t smsg,
			const struct lm_res *res, uint64_t epoch,
			uint32_t owner)
{
	struct lm_node_act *a = act_push(q, type);

	if (!a)
		return;
	a->client = client;
	a->smsg = smsg;
	a->res = *res;
	a->epoch = epoch;
	a->node = owner;
}

static void act_lease(struct lm_node *n, struct lm_node_actq *q)
{
	struct lm_node_act *a = act_push(q, LM_NA_LEASE);

	if (!a)
		return;
	a->lease_valid = n->lease_valid;
	a->deadline = n->lease_valid ? n->lease_deadline_ns : 0;
}

static void *oom(struct lm_node_actq *q, const char *why)
{
	q->fatal = why;
	return NULL;
}

/* ---- set-up ---- */

uint64_t lm_node_fence_wait_ms(uint32_t lease_ms, uint32_t drift_ppm,
			       uint32_t margin_ms, uint32_t watchdog_ms)
{
	uint64_t lease = lease_ms;
	uint64_t wait;

	/* round the drift allowance up: never wait less than needed */
	wait = lease + (lease * drift_ppm + 999999) / 1000000;
	return wait + margin_ms + watchdog_ms;
}

struct lm_node *lm_node_new(const struct lm_state *st, uint64_t now)
{
	struct lm_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->st = st;
	l_init(&n->reqs);
	l_init(&n->owns);
	n->hb_next_ns = now;
	n->c.sync_chunk = LM_SYNC_CHUNK;
	return n;
}

void lm_node_configure(struct lm_node *n, const struct lm_node_conf *c)
{
	n->c = *c;
	if (!n->c.sync_chunk || n->c.sync_chunk > LM_SYNC_CHUNK)
		n->c.sync_chunk = LM_SYNC_CHUNK;
	if (!n->c.heartbeat_ms)
		n->c.heartbeat_ms = 1;
}

static void holders_free(struct own *o)
{
	while (o->holders) {
		struct holder *h = o->holders;

		o->holders = h->next;
		free(h);
	}
}

static void own_free(struct own *o)
{
	holders_free(o);
	while (o->waiters) {
		struct waiter *w = o->waiters;

		o->waiters = w->next;
		free(w);
	}
	l_del(&o->link);
	free(o);
}

static void req_free(struct req *r)
{
	l_del(&r->link);
	free(r);
}

void lm_node_free(struct lm_node *n)
{
	struct link *p, *t;

	if (!n)
		return;
	l_for_each_safe(p, t, &n->owns)
		own_free(l_entry(p, struct own));
	l_for_each_safe(p, t, &n->reqs)
		req_free(l_entry(p, struct req));
	free(n);
}

/* ---- requests ---- */

static void set_req_id(struct lm_cmsg *m, uint64_t id)
{
	switch (m->type) {
	case LM_C_ACQUIRE:
		m->u.acquire.req_id = id;
		break;
	case LM_C_RELEASE:
		m->u.release.req_id = id;
		break;
	case LM_C_HANDOFF:
		m->u.handoff.req_id = id;
		break;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		m->u.drain.req_id = id;
		break;
	case LM_C_PLOCK:
		m->u.plock.req_id = id;
		break;
	}
}

static void req_send(struct req *r, struct lm_node_actq *q)
{
	r->state = RS_SENT;
	act_send(q, &r->msg);
}

static struct req *req_new(struct lm_node *n, int kind,
			   const struct lm_cmsg *m, struct lm_node_actq *q)
{
	struct req *r = calloc(1, sizeof(*r));

	if (!r)
		return oom(q, "out of memory for a cluster request");
	r->req_id = ++n->next_req_id;
	r->kind = kind;
	r->msg = *m;
	set_req_id(&r->msg, r->req_id);
	l_add_tail(&n->reqs, &r->link);
	req_send(r, q);
	return r;
}

uint64_t lm_node_request(struct lm_node *n, enum lm_node_req_kind kind,
			 const struct lm_cmsg *msg, uint32_t client,
			 uint32_t seq, uint64_t now, struct lm_node_actq *q)
{
	struct req *r = req_new(n, (int)kind, msg, q);

	(void)now;
	if (!r)
		return 0;
	r->client = client;
	r->seq = seq;
	return r->req_id;
}

static struct req *req_find(struct lm_node *n, uint64_t req_id)
{
	struct link *p, *t;

	if (!req_id)
		return NULL;
	l_for_each_safe(p, t, &n->reqs) {
		struct req *r = l_entry(p, struct req);

		if (r->req_id == req_id)
			return r;
	}
	return NULL;
}

static void resend_in_state(struct lm_node *n, enum req_state s,
			    struct lm_node_actq *q)
{
	struct link *p, *t;
	unsigned k = 0;

	l_for_each_safe(p, t, &n->reqs) {
		struct req *r = l_entry(p, struct req);

		if (r->state == s) {
			req_send(r, q);
			k++;
		}
	}
	if (k)
		act_log(q, LOG_INFO, NULL, "resent %u %s request(s)", k,
			s == RS_QUEUED ? "queued" : "unanswered");
}

size_t lm_node_pending_requests(const struct lm_node *n)
{
	const struct link *p;
	size_t k = 0;

	for (p = n->reqs.next; p != &n->reqs; p = p->next)
		k++;
	return k;
}

/* ---- own entries ---- */

static bool res_eq(const struct lm_res *a, const struct lm_res *b)
{
	return a->fileid == b->fileid &&
	       !memcmp(a->volume, b->volume, LM_VOLUME_LEN);
}

static struct own *own_find(struct lm_node *n, const struct lm_res *res)
{
	struct link *p, *t;

	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);

		if (res_eq(&o->res, res))
			return o;
	}
	return NULL;
}

static struct own *own_new(struct lm_node *n, const struct lm_res *res,
			   struct lm_node_actq *q)
{
	struct own *o = calloc(1, sizeof(*o));

	if (!o)
		return oom(q, "out of memory for an ownership record");
	o->res = *res;
	l_add_tail(&n->owns, &o->link);
	return o;
}

static void own_send_acquire(struct lm_node *n, struct own *o,
			     struct lm_node_actq *q)
{
	struct lm_cmsg m = { .type = LM_C_ACQUIRE };
	struct req *r;

	m.u.acquire.res = o->res;
	o->state = LM_OWN_ACQUIRING;
	r = req_new(n, REQ_ACQUIRE, &m, q);
	if (!r)
		return;
	r->own = o;
	o->req_id = r->req_id;
}

static void own_release(struct lm_node *n, struct own *o, const char *why,
			struct lm_node_actq *q)
{
	struct lm_cmsg m = { .type = LM_C_RELEASE };
	struct req *r;

	m.u.release.res = o->res;
	m.u.release.epoch = o->epoch;
	o->state = LM_OWN_RELEASING;
	act_log(q, LOG_INFO, &o->res, "releasing epoch %llu: %s",
		(unsigned long long)o->epoch, why);
	r = req_new(n, REQ_RELEASE, &m, q);
	if (!r)
		return;
	r->own = o;
	o->req_id = r->req_id;
}

static void own_forget_req(struct lm_node *n, struct own *o)
{
	struct req *r = req_find(n, o->req_id);

	if (r && r->own == o)
		req_free(r);
	o->req_id = 0;
}

/* The entry no longer stands for an ownership: drop it, or start over
 * for the clients still waiting. */
static void own_done(struct lm_node *n, struct own *o,
		     struct lm_node_actq *q)
{
	own_forget_req(n, o);
	o->handoff = false;
	holders_free(o);
	if (o->waiters && !n->stopping)
		own_send_acquire(n, o, q);
	else
		own_free(o);
}

static void reply_waiters(struct own *o, int32_t status, bool nowait_only,
			  struct lm_node_actq *q)
{
	struct waiter **pp = &o->waiters, *w;

	while ((w = *pp)) {
		if (nowait_only && !(w->flags & LM_ACQ_NOWAIT)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		act_reply_acquire(q, w->client, w->seq, status, 0, -1);
		free(w);
	}
}

static void add_holder(struct own *o, uint32_t client, uint32_t seq,
		       struct lm_node_actq *q)
{
	struct holder *h;

	for (h = o->holders; h; h = h->next)
		if (h->client == client) {
			h->seq = seq;
			return;
		}
	h = calloc(1, sizeof(*h));
	if (!h) {
		oom(q, "out of memory for an ownership holder");
		return;
	}
	h->client = client;
	h->seq = seq;
	h->next = o->holders;
	o->holders = h;
	o->handoff = false;
}

/* Granted (or confirmed) at epoch: waiters become holders. */
static void own_granted(struct lm_node *n, struct own *o, uint64_t epoch,
			uint64_t now, struct lm_node_actq *q)
{
	own_forget_req(n, o);
	o->state = LM_OWN_HELD;
	o->epoch = epoch;
	o->idle_since_ns = now;
	while (o->waiters) {
		struct waiter *w = o->waiters;

		o->waiters = w->next;
		add_holder(o, w->client, w->seq, q);
		act_reply_acquire(q, w->client, w->seq, 0, epoch,
				  (int64_t)((now - w->start_ns) / 1000));
		free(w);
	}
	act_log(q, LOG_INFO, &o->res, "granted to this node, epoch %llu",
		(unsigned long long)epoch);
	if (!o->holders && !o->handoff)
		own_release(n, o, "nobody waits for it any more", q);
}

/* Our ownership ended without a release of ours: poison the holders. */
static void own_lost(struct lm_node *n, struct own *o, const char *why,
		     struct lm_node_actq *q)
{
	unsigned k = 0;

	while (o->holders) {
		struct holder *h = o->holders;

		o->holders = h->next;
		act_push_ev(q, LM_NA_PUSH, h->client, LM_S_EV_LOST, &o->res,
			    o->epoch, n->c.self);
		free(h);
		k++;
	}
	act_log(q, LOG_ERR, &o->res, "ownership (epoch %llu) lost: %s; %u "
		"local client(s) told to fail further writes with EIO",
		(unsigned long long)o->epoch, why, k);
}

/* ---- client operations ---- */

static struct waiter *add_waiter(struct own *o, uint32_t client,
				 uint32_t seq, uint32_t flags, uint64_t now,
				 struct lm_node_actq *q)
{
	struct waiter *w = calloc(1, sizeof(*w)), **pp;

	if (!w)
		return oom(q, "out of memory for a waiting acquire");
	w->client = client;
	w->seq = seq;
	w->flags = flags;
	w->start_ns = now;
	for (pp = &o->waiters; *pp; pp = &(*pp)->next)
		;
	*pp = w;
	return w;
}

static bool owned_by_other(struct lm_node *n, const struct lm_res *res)
{
	struct lm_owner_entry e;

	return lm_state_owner(n->st, res, &e) == 0 && e.owner &&
	       e.owner != n->c.self;
}

void lm_node_acquire(struct lm_node *n, uint32_t client, uint32_t seq,
		     const struct lm_res *res, uint32_t flags, uint64_t now,
		     struct lm_node_actq *q)
{
	bool nowait = flags & LM_ACQ_NOWAIT;
	struct own *o;

	if (n->stopping) {
		act_reply_acquire(q, client, seq, LM_ERR_SHUTDOWN, 0, -1);
		return;
	}
	o = own_find(n, res);
	if (o && o->state == LM_OWN_HELD) {
		/* already this node's: granted at once */
		add_holder(o, client, seq, q);
		act_reply_acquire(q, client, seq, 0, o->epoch, 0);
		return;
	}
	if (nowait && (owned_by_other(n, res) ||
		       (o && o->state != LM_OWN_ACQUIRING))) {
		act_reply_acquire(q, client, seq, EAGAIN, 0, -1);
		return;
	}
	if (!o) {
		o = own_new(n, res, q);
		if (!o || !add_waiter(o, client, seq, flags, now, q))
			return;
		own_send_acquire(n, o, q);
		return;
	}
	add_waiter(o, client, seq, flags, now, q); /* sent after this step */
}

static struct holder **holder_of(struct own *o, uint32_t client)
{
	struct holder **pp;

	for (pp = &o->holders; *pp; pp = &(*pp)->next)
		if ((*pp)->client == client)
			return pp;
	return NULL;
}

static void drop_holder(struct lm_node *n, struct own *o,
			struct holder **pp, const char *why, uint64_t now,
			struct lm_node_actq *q)
{
	struct holder *h = *pp;

	*pp = h->next;
	free(h);
	if (o->holders)
		return;
	o->idle_since_ns = now;
	if (o->state == LM_OWN_HELD || o->state == LM_OWN_REVOKING)
		own_release(n, o, why, q);
}

int lm_node_release(struct lm_node *n, uint32_t client,
		    const struct lm_res *res, uint64_t epoch, uint64_t now,
		    struct lm_node_actq *q)
{
	struct holder **pp;
	struct own *o = own_find(n, res);

	if (!o || !(pp = holder_of(o, client)) ||
	    (epoch && epoch != o->epoch))
		return LM_ERR_NOTOWNER;
	drop_holder(n, o, pp, o->state == LM_OWN_REVOKING ?
		    "revoke answered by every local holder" :
		    "last local holder released it", now, q);
	return 0;
}

static bool cancel_acquire(struct lm_node *n, uint32_t client, uint32_t seq,
			   uint64_t now, struct lm_node_actq *q)
{
	struct link *p, *t;

	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);
		struct waiter **wp;
		struct holder **hp;

		for (wp = &o->waiters; *wp; wp = &(*wp)->next) {
			struct waiter *w = *wp;

			if (w->client != client || w->seq != seq)
				continue;
			*wp = w->next;
			free(w);
			act_reply(q, client, seq, LM_ERR_CANCELED, 0);
			return true;
		}
		/* granted just before the cancel: undo the grant */
		for (hp = &o->holders; *hp; hp = &(*hp)->next)
			if ((*hp)->client == client && (*hp)->seq == seq) {
				drop_holder(n, o, hp, "acquire canceled", now,
					    q);
				return true;
			}
	}
	return false;
}

/* A SETW canceled before its grant is applied: the table is asked to
 * drop the wait, and a grant applied before that (PLOCK_GRANTED) is
 * undone by an UNLOCK (on_plock_granted). */
static bool cancel_setw(struct lm_node *n, uint32_t client, uint32_t seq,
			struct lm_node_actq *q)
{
	struct link *p, *t;
	struct lm_cmsg cm;

	l_for_each_safe(p, t, &n->reqs) {
		struct req *r = l_entry(p, struct req);

		if (r->client != client || r->seq != seq ||
		    r->kind != LM_NREQ_PLOCK || r->canceled ||
		    r->msg.u.plock.op != LM_PL_SETW)
			continue;
		r->canceled = true;
		act_reply(q, client, seq, LM_ERR_CANCELED, 0);
		cm = r->msg;
		cm.u.plock.op = LM_PL_CANCEL;
		req_new(n, LM_NREQ_INTERNAL, &cm, q);
		return true;
	}
	return false;
}

void lm_node_cancel(struct lm_node *n, uint32_t client, uint32_t cseq,
		    uint32_t seq, uint64_t now, struct lm_node_actq *q)
{
	if (cancel_acquire(n, client, seq, now, q) ||
	    cancel_setw(n, client, seq, q))
		act_reply(q, client, cseq, 0, 0);
	else
		act_reply(q, client, cseq, ENOENT, 0);
}

void lm_node_client_gone(struct lm_node *n, uint32_t client, uint64_t now,
			 struct lm_node_actq *q)
{
	struct link *p, *t;

	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);
		struct waiter **wp = &o->waiters, *w;
		struct holder **hp;

		while ((w = *wp)) {
			if (w->client == client) {
				*wp = w->next;
				free(w);
			} else {
				wp = &w->next;
			}
		}
		hp = holder_of(o, client);
		if (hp)
			drop_holder(n, o, hp, "its client disconnected", now,
				    q);
	}
	l_for_each_safe(p, t, &n->reqs) {
		struct req *r = l_entry(p, struct req);

		if (r->client != client)
			continue;
		r->client = 0;
		r->canceled = true;
	}
}

/* ---- lease end, revoke, hand-off ---- */

static void resolve_lost(struct lm_node *n, struct lm_node_actq *q);

/*
 * The lease can end while the table stays ready: this lockd was stopped
 * (SIGSTOP, a hang) for longer than the lease while corosync kept the
 * node in the membership.  No LM_EV_READY follows then, so the lost
 * entries are resolved here at once; otherwise a waiter on another node
 * would wait for as long as this node lives (found by t-fault-stop).
 */
static void lease_lost_all(struct lm_node *n, struct lm_node_actq *q)
{
	struct link *p, *t;

	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);

		if (o->state != LM_OWN_HELD && o->state != LM_OWN_REVOKING)
			continue;
		own_lost(n, o, "the lease of this node ended", q);
		o->state = LM_OWN_LOST;
	}
	resolve_lost(n, q);
}

/*
 * Once ready: lost entries the table still gives us are released (never
 * used again: the VM may run elsewhere by now); ownerships the table gives
 * us that this process does not know of (a new process, or a lineage that
 * lost them) are released too.
 */
struct scan_arg {
	struct lm_node *n;
	struct lm_node_actq *q;
};

static int scan_unknown_owner(const struct lm_owner_entry *e, void *arg)
{
	struct scan_arg *sa = arg;
	struct own *o;

	if (e->owner != sa->n->c.self || own_find(sa->n, &e->res))
		return 0;
	o = own_new(sa->n, &e->res, sa->q);
	if (!o)
		return -ENOMEM;
	o->epoch = e->epoch;
	own_release(sa->n, o, "owned in the table but unknown to this "
		    "process", sa->q);
	return 0;
}

static void resolve_lost(struct lm_node *n, struct lm_node_actq *q)
{
	struct scan_arg sa = { .n = n, .q = q };
	struct link *p, *t;

	if (!n->ready)
		return;
	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);
		struct lm_owner_entry e;

		if (o->state != LM_OWN_LOST)
			continue;
		if (lm_state_owner(n->st, &o->res, &e) == 0 &&
		    e.owner == n->c.self) {
			o->epoch = e.epoch;
			own_release(n, o, "ownership was lost locally", q);
		} else {
			own_done(n, o, q);
		}
	}
	lm_state_foreach_owner(n->st, scan_unknown_owner, &sa);
}

/* After a transfer: what we hold must still be ours at the same epoch. */
static void verify_held(struct lm_node *n, struct lm_node_actq *q)
{
	struct link *p, *t;

	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);
		struct lm_owner_entry e;

		if (o->state != LM_OWN_HELD && o->state != LM_OWN_REVOKING)
			continue;
		if (lm_state_owner(n->st, &o->res, &e) == 0 &&
		    e.owner == n->c.self && e.epoch == o->epoch)
			continue;
		own_lost(n, o, "the cluster's table no longer gives it to "
			 "this node", q);
		own_done(n, o, q);
	}
}

static void revoke_own(struct lm_node *n, struct own *o, uint64_t now,
		       struct lm_node_actq *q)
{
	struct holder *h;

	if (!o->holders) {
		own_release(n, o, "revoked, and no local client holds it", q);
		return;
	}
	o->state = LM_OWN_REVOKING;
	o->revoke_ns = now;
	o->revoke_warned = false;
	for (h = o->holders; h; h = h->next)
		act_push_ev(q, LM_NA_PUSH, h->client, LM_S_EV_REVOKE,
			    &o->res, o->epoch, n->c.self);
	act_log(q, LOG_INFO, &o->res, "revoke asked; waiting for the local "
		"holders to flush and release");
}

static void on_revoke(struct lm_node *n, const struct lm_ev *ev,
		      uint64_t now, struct lm_node_actq *q)
{
	struct own *o = own_find(n, &ev->res);
	struct lm_owner_entry e;

	if (!o) {
		if (lm_state_owner(n->st, &ev->res, &e) ||
		    e.owner != n->c.self)
			return;
		o = own_new(n, &ev->res, q);
		if (!o)
			return;
		o->epoch = e.epoch;
		own_release(n, o, "revoked, and no local client holds it", q);
		return;
	}
	if (o->state == LM_OWN_HELD)
		revoke_own(n, o, now, q);
}

static void on_handoff_grant(struct lm_node *n, const struct lm_ev *ev,
			     uint64_t now, struct lm_node_actq *q)
{
	struct own *o = own_find(n, &ev->res);

	if (!o)
		o = own_new(n, &ev->res, q);
	if (!o)
		return;
	o->handoff = true;
	act_log(q, LOG_NOTICE, &ev->res, "handed off to this node, epoch "
		"%llu", (unsigned long long)ev->epoch);
	own_granted(n, o, ev->epoch, now, q);
	act_push_ev(q, LM_NA_PUSH_VOLUME, 0, LM_S_EV_GRANTED, &ev->res,
		    ev->epoch, n->c.self);
}

static void on_granted(struct lm_node *n, const struct lm_ev *ev,
		       uint64_t now, struct lm_node_actq *q)
{
	struct req *r = req_find(n, ev->req_id);

	if (!ev->req_id) {
		on_handoff_grant(n, ev, now, q);
		return;
	}
	if (!r || r->kind != REQ_ACQUIRE || !r->own) {
		act_log(q, LOG_DEBUG, NULL, "grant for unknown request %llu "
			"ignored", (unsigned long long)ev->req_id);
		return;
	}
	own_granted(n, r->own, ev->epoch, now, q);
}

static void on_released(struct lm_node *n, const struct lm_ev *ev,
			struct lm_node_actq *q)
{
	struct own *o = own_find(n, &ev->res);

	if (o && o->state == LM_OWN_RELEASING)
		own_done(n, o, q);
}

static void on_lost(struct lm_node *n, const struct lm_ev *ev,
		    struct lm_node_actq *q)
{
	struct own *o = own_find(n, &ev->res);

	if (!o)
		return;
	if (o->state == LM_OWN_HELD || o->state == LM_OWN_REVOKING)
		own_lost(n, o, "this node was fenced", q);
	if (o->state != LM_OWN_ACQUIRING)
		own_done(n, o, q);
}

static void on_owner(struct lm_node *n, const struct lm_ev *ev,
		     struct lm_node_actq *q)
{
	struct own *o = own_find(n, &ev->res);

	act_push_ev(q, LM_NA_PUSH_VOLUME, 0, LM_S_EV_OWNER, &ev->res,
		    ev->epoch, ev->node);
	if (o && ev->node != n->c.self &&
	    (o->state == LM_OWN_HELD || o->state == LM_OWN_REVOKING)) {
		own_lost(n, o, "the table gave it to another node", q);
		own_done(n, o, q);
	}
}

/* ---- replies ---- */

static void plock_undo(struct lm_node *n, const struct req *r,
		       struct lm_node_actq *q)
{
	struct lm_cmsg m = r->msg;

	m.u.plock.op = LM_PL_UNLOCK;
	req_new(n, LM_NREQ_INTERNAL, &m, q);
}

static void on_reply_own(struct lm_node *n, struct req *r, int32_t st,
			 uint64_t epoch, uint64_t now, struct lm_node_actq *q)
{
	struct own *o = r->own;

	if (r->kind == REQ_ACQUIRE && st == 0) {
		own_granted(n, o, epoch, now, q);
		return;
	}
	if (r->kind == REQ_ACQUIRE) {
		act_log(q, LOG_INFO, &o->res, "acquire refused: %s",
			lm_strerror(st));
		reply_waiters(o, st, false, q);
	} else if (st) {
		act_log(q, LOG_INFO, &o->res, "release answered: %s",
			lm_strerror(st));
	}
	own_done(n, o, q);
}

static void on_reply(struct lm_node *n, const struct lm_ev *ev,
		     uint64_t now, struct lm_node_actq *q)
{
	struct req *r = req_find(n, ev->req_id);
	int32_t st = ev->status;

	if (!r) {
		act_log(q, LOG_DEBUG, NULL, "reply to unknown request %llu "
			"ignored", (unsigned long long)ev->req_id);
		return;
	}
	if ((st == LM_ERR_NOQUORUM || st == LM_ERR_SYNCING) &&
	    !(r->kind == LM_NREQ_ADMIN && st == LM_ERR_NOQUORUM)) {
		r->state = RS_WAIT_READY; /* resent after LM_EV_READY */
		return;
	}
	if (r->kind == REQ_ACQUIRE || r->kind == REQ_RELEASE) {
		on_reply_own(n, r, st, ev->epoch, now, q);
		return;
	}
	if ((r->kind == LM_NREQ_PLOCK || r->kind == LM_NREQ_ADMIN) &&
	    r->client && !r->canceled)
		act_reply(q, r->client, r->seq, st, ev->epoch);
	if (r->kind == LM_NREQ_INTERNAL && st)
		act_log(q, LOG_DEBUG, NULL, "internal request %llu: %s",
			(unsigned long long)r->req_id, lm_strerror(st));
	req_free(r);
}

static void on_queued(struct lm_node *n, const struct lm_ev *ev,
		      struct lm_node_actq *q)
{
	struct req *r = req_find(n, ev->req_id);

	if (!r)
		return;
	r->state = RS_QUEUED;
	if (r->kind == REQ_ACQUIRE)
		reply_waiters(r->own, EAGAIN, true, q);
}

static void on_plock_granted(struct lm_node *n, const struct lm_ev *ev,
			     struct lm_node_actq *q)
{
	struct req *r = req_find(n, ev->req_id);

	if (!r)
		return;
	if (r->canceled || !r->client)
		plock_undo(n, r, q);
	else
		act_reply(q, r->client, r->seq, 0, 0);
	req_free(r);
}

/* ---- state transfer ---- */

static void send_snapshot(struct lm_node *n, struct lm_node_actq *q)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_DATA };
	size_t len = 0, off, chunk = n->c.sync_chunk;
	uint8_t *buf = NULL;
	uint32_t idx = 0;

	if (lm_state_snapshot(n->st, &buf, &len)) {
		q->fatal = "cannot serialise the lock table for a joining "
			   "node";
		return;
	}
	for (off = 0; off < len; off += chunk, idx++) {
		struct lm_node_act *a = act_push(q, LM_NA_SEND);

		if (!a)
			break;
		m.u.sync_data.index = idx;
		m.u.sync_data.len = (uint32_t)(len - off > chunk ? chunk :
					       len - off);
		m.u.sync_data.data = buf + off;
		a->msg = m;
		if (!off)
			a->data = buf; /* the queue owns the whole buffer */
	}
	m.type = LM_C_SYNC_DONE;
	memset(&m.u, 0, sizeof(m.u));
	m.u.sync_done.chunks = idx;
	m.u.sync_done.total_len = len;
	m.u.sync_done.checksum = lm_checksum64(LM_CHECKSUM_SEED, buf, len);
	act_send(q, &m);
	act_log(q, LOG_NOTICE, NULL, "state transfer: this node is the donor, "
		"sent %zu bytes in %u chunk(s)", len, idx);
	if (!len || q->fatal)
		free(buf); /* no chunk took it */
}

/*
 * Everything owned is lost, even when the lease had already ended: the
 * table may have granted files to this node since (it was still a member
 * of the quorate ring, only its heartbeats came late), and a node that
 * merges back from a minority has its lease extended before the transfer
 * shows what it still owns.  Race without this (found by tests/sim): the
 * lease runs out, file F is granted to us, the partition splits and we
 * are in the minority, the majority fences us and grants F elsewhere; we
 * merge back, our next heartbeat makes the lease valid during the
 * transfer, and our client, never told LOST, writes F with its old epoch.
 */
void lm_node_lease_end(struct lm_node *n, const char *why,
		       struct lm_node_actq *q)
{
	if (n->lease_valid) {
		n->lease_valid = false;
		act_log(q, LOG_ERR, NULL, "lease ended: %s; writes on this "
			"node stop until it is renewed", why);
		act_lease(n, q);
	}
	lease_lost_all(n, q);
}

/* corosync decided "not quorate" for the current ring: no grants, and
 * the lease ends (a pending decision only stops its extension). */
static void decided_out(struct lm_node *n, const struct lm_status_info *si,
			struct lm_node_actq *q)
{
	n->decided_out = true;
	act_log(q, LOG_WARNING, NULL, "lock table not quorate: corosync "
		"(votequorum on node %u) decided so for ring %u.%llu (%u of "
		"%u expected votes, %u needed); no grants until quorum "
		"returns", si->quorum_from, si->ring.nodeid,
		(unsigned long long)si->ring.seq, si->total_votes,
		si->expected_votes, si->q.quorum);
	lm_node_lease_end(n, "the lock table lost quorum", q);
}

static void on_not_ready(struct lm_node *n, struct lm_node_actq *q)
{
	struct lm_status_info si;

	n->ready = false;
	lm_state_status(n->st, &si);
	if (!si.quorate && !si.quorum_from) {
		/* a new ring or membership: corosync's decision for it is
		 * on its way; the lease is not extended meanwhile, and ends
		 * on its own if the decision is late */
		act_log(q, LOG_INFO, NULL, "waiting for corosync's quorum "
			"decision for ring %u.%llu", si.ring.nodeid,
			(unsigned long long)si.ring.seq);
	} else if (!si.quorate) {
		decided_out(n, &si, q);
	} else {
		act_log(q, LOG_NOTICE, NULL, "state transfer under way: no "
			"grants until it completes");
	}
}

static void on_ready(struct lm_node *n, uint64_t now, struct lm_node_actq *q)
{
	n->ready = true;
	n->ready_gen++;
	act_log(q, LOG_NOTICE, NULL, "lock table ready");
	/* prove our membership in the new ring at once: the lease must not
	 * wait a heartbeat period after a ring change */
	lm_node_heartbeat_now(n, now);
	resend_in_state(n, RS_WAIT_READY, q);
	resolve_lost(n, q);
}

static void on_sync_installed(struct lm_node *n, struct lm_node_actq *q)
{
	act_log(q, LOG_NOTICE, NULL, "state transfer done: table installed");
	resend_in_state(n, RS_QUEUED, q);
	verify_held(n, q);
	resolve_lost(n, q);
}

static void on_fenced(struct lm_node *n, uint32_t id, uint64_t now,
		      struct lm_node_actq *q);

/* Events about this node's own requests and ownerships. */
static void event_mine(struct lm_node *n, const struct lm_ev *ev,
		       uint64_t now, struct lm_node_actq *q)
{
	switch (ev->type) {
	case LM_EV_REPLY:
		on_reply(n, ev, now, q);
		break;
	case LM_EV_QUEUED:
		on_queued(n, ev, q);
		break;
	case LM_EV_GRANTED:
		on_granted(n, ev, now, q);
		break;
	case LM_EV_REVOKE:
		on_revoke(n, ev, now, q);
		break;
	case LM_EV_RELEASED:
		on_released(n, ev, q);
		break;
	case LM_EV_LOST:
		on_lost(n, ev, q);
		break;
	case LM_EV_PLOCK_GRANTED:
		on_plock_granted(n, ev, q);
		break;
	case LM_EV_SYNC_DONOR:
		send_snapshot(n, q);
		break;
	default:
		break;
	}
}

void lm_node_event(struct lm_node *n, const struct lm_ev *ev, uint64_t now,
		   struct lm_node_actq *q)
{
	switch (ev->type) {
	case LM_EV_OWNER:
		on_owner(n, ev, q);
		break;
	case LM_EV_FENCED:
		on_fenced(n, ev->node, now, q);
		break;
	case LM_EV_NODE:
		act_log(q, LOG_DEBUG, NULL, "node %u changed state", ev->node);
		break;
	case LM_EV_READY:
		on_ready(n, now, q);
		break;
	case LM_EV_NOT_READY:
		on_not_ready(n, q);
		break;
	case LM_EV_SYNC_INSTALLED:
		on_sync_installed(n, q);
		break;
	case LM_EV_SYNC_FAILED:
		q->fatal = "the state transfer was rejected (the donor's "
			   "table did not decode)";
		break;
	default:
		if (ev->node == n->c.self)
			event_mine(n, ev, now, q);
		break;
	}
}

/* ---- timers, shutdown ---- */

void lm_node_res_tick(struct lm_node *n, uint64_t now,
		      struct lm_node_actq *q)
{
	uint64_t revoke_ns = n->c.revoke_timeout_ms * NS_PER_MS;
	uint64_t idle_ns = n->c.handoff_idle_ms * NS_PER_MS;
	struct link *p, *t;

	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);

		if (o->state == LM_OWN_REVOKING && !o->revoke_warned &&
		    now - o->revoke_ns >= revoke_ns) {
			struct lm_node_act *a = act_push(q, LM_NA_REVOKE_SLOW);

			if (a) {
				a->res = o->res;
				a->deadline = (now - o->revoke_ns) / NS_PER_MS;
			}
			o->revoke_warned = true;
		}
		if (o->state == LM_OWN_HELD && !o->holders &&
		    now - o->idle_since_ns >= idle_ns)
			own_release(n, o, "hand-off grant not claimed by a "
				    "local client", q);
	}
}

unsigned lm_node_stop(struct lm_node *n, uint64_t now,
		      struct lm_node_actq *q)
{
	struct link *p, *t;
	unsigned k = 0;

	n->stopping = true;
	l_for_each_safe(p, t, &n->owns) {
		struct own *o = l_entry(p, struct own);

		reply_waiters(o, LM_ERR_SHUTDOWN, false, q);
		if (o->state != LM_OWN_HELD)
			continue;
		k++;
		if (!n->ready) {
			act_log(q, LOG_WARNING, &o->res, "not released at "
				"shutdown: the lock table is not ready; the "
				"other nodes fence this node for it");
			continue;
		}
		revoke_own(n, o, now, q);
	}
	return k;
}

bool lm_node_settled(const struct lm_node *n)
{
	const struct link *p;

	if (!n->ready)
		return true;
	for (p = n->owns.next; p != &n->owns; p = p->next) {
		const struct own *o = (const struct own *)(const void *)p;

		if (o->state == LM_OWN_HELD || o->state == LM_OWN_REVOKING ||
		    o->state == LM_OWN_RELEASING)
			return false;
	}
	return true;
}

/* ---- per-node records ---- */

static struct node_rec *rec_get(struct lm_node *n, uint32_t id,
				uint64_t now)
{
	struct node_rec *r;

	for (unsigned i = 0; i < n->n_nodes; i++)
		if (n->nodes[i].id == id)
			return &n->nodes[i];
	if (n->n_nodes == NODE_RECS)
		return NULL;
	r = &n->nodes[n->n_nodes++];
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->last_hb_ns = now; /* conservative: not before now */
	r->fence_result = -1;
	return r;
}

static bool in_list(const uint32_t *ids, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * A join may bring in a partition where a node X outside ours kept
 * extending its lease by heartbeats this node never saw; after the
 * transfer X may be FENCING here, and this node its fencer.  That is
 * possible only while our partition was not quorate (two quorate
 * partitions cannot coexist; with two_node only a fence command
 * fences), so after a minority every node that was not in our view is
 * taken to have had a heartbeat delivered now.  Race without this (found
 * by tests/sim): the fencer is split off alone, X keeps its lease in the
 * quorate part, stalls and is cut off; the fencer merges back and fenced
 * X from the last heartbeat it had seen before the split, while X's
 * clients still held a valid lease.  Not after a quorate period: a
 * FENCING node that flaps in and out would push its fence back forever.
 */
static void joined_unseen(struct lm_node *n, uint64_t now)
{
	struct lm_status_info si;

	if (n->was_quorate)
		return;
	lm_state_status(n->st, &si); /* the view before this change */
	for (unsigned i = 0; i < n->n_nodes; i++) {
		struct node_rec *r = &n->nodes[i];

		if (r->id != n->c.self &&
		    !in_list(si.members, si.n_members, r->id) &&
		    r->last_hb_ns < now)
			r->last_hb_ns = now;
	}
}

void lm_node_confchg(struct lm_node *n, const struct lm_confchg *cc,
		     uint64_t now)
{
	if (cc->n_joined)
		joined_unseen(n, now);
	/* quorate still?  Unknown until the decision for the new ring, which
	 * a merge may overtake */
	if (cc->n_left)
		n->was_quorate = false;
	for (size_t i = 0; i < cc->n_left; i++)
		rec_get(n, cc->left[i], now);
	/*
	 * Heartbeats multicast while the ring was re-forming may be lost;
	 * prove membership of the new ring at once rather than a heartbeat
	 * period later, or a lease that outlasts failure detection by less
	 * than a period runs out on the survivors.
	 */
	lm_node_heartbeat_now(n, now);
}

int64_t lm_node_heartbeat_age_ms(const struct lm_node *n, uint32_t id,
				 uint64_t now)
{
	for (unsigned i = 0; i < n->n_nodes; i++)
		if (n->nodes[i].id == id && n->nodes[i].hb_seen)
			return (int64_t)((now - n->nodes[i].last_hb_ns) /
					 NS_PER_MS);
	return -1;
}

/* ---- lease ---- */

/*
 * A FENCING node's heartbeats neither extend its lease nor delay its
 * fence.  Race without this: X's lockd is restarted (or X flaps out and
 * back within the lease); X left holding files, so it is FENCING, and
 * rejoins at once.  If its new heartbeats pushed its fence back, the
 * fencer would wait for as long as X lives and X's files would stay
 * blocked forever; if they extended its lease, an old process of X could
 * keep writing past the fence.  Both sides read X's state from the
 * replicated table at the same point of the order, so X stops extending
 * exactly when the fencer stops counting: X's lease then cannot outlive
 * the last heartbeat the fencer counted by more than lease_timeout.
 */
static bool node_fencing(struct lm_node *n, uint32_t id)
{
	struct lm_node_entry e;

	return lm_state_node(n->st, id, &e) == 0 &&
	       e.state == LM_NODE_FENCING;
}

static bool table_quorate(struct lm_node *n)
{
	struct lm_status_info si;

	lm_state_status(n->st, &si);
	return si.quorate;
}

static bool self_kept_out(struct lm_node *n)
{
	struct lm_node_entry e;

	return lm_state_node(n->st, n->c.self, &e) == 0 &&
	       e.state == LM_NODE_INCOMPATIBLE;
}

bool lm_node_applied(struct lm_node *n, uint64_t now,
		     struct lm_node_actq *q)
{
	bool out = self_kept_out(n);
	struct lm_status_info si;

	lm_state_status(n->st, &si);
	if (si.quorum_from)
		n->was_quorate = si.quorate;
	if (si.quorate || !si.quorum_from)
		n->decided_out = false;
	else if (!n->decided_out)
		decided_out(n, &si, q);

	if (out == n->kept_out)
		return out;
	n->kept_out = out;
	if (out)
		lm_node_lease_end(n, "this node is kept out of the cluster "
				  "(protocol versions)", q);
	else
		lm_node_heartbeat_now(n, now);
	return out;
}

/*
 * The fencer waits for a departed node's lease by its own lease: a node
 * whose lease is longer could still write when it is fenced.  Version 3
 * heartbeats carry the sender's lease, so this can be told.
 */
static void check_peer_lease(struct lm_node *n, struct node_rec *r,
			     const struct lm_cmsg *m, struct lm_node_actq *q)
{
	r->hb_version = m->version;
	r->hb_lease_ms = 0;
	if (m->version < 3)
		return;
	r->hb_lease_ms = m->u.heartbeat.lease_timeout_ms;
	if (r->lease_warned || r->hb_lease_ms <= n->c.lease_ms)
		return;
	r->lease_warned = true;
	act_log(q, LOG_WARNING, NULL, "node %u's lease is %u ms, longer than "
		"this node's %u ms: a fence by this node could come before "
		"its lease ends; set the same lease_timeout_ms on every node",
		r->id, r->hb_lease_ms, n->c.lease_ms);
}

/* A delivery of from that may carry its lease: the fence waits from it. */
static void hb_delivery(struct lm_node *n, struct node_rec *r, uint32_t from,
			uint64_t now)
{
	if (r && !node_fencing(n, from)) {
		r->last_hb_ns = now;
		r->hb_seen = true;
	}
}

bool lm_node_undecodable(struct lm_node *n, uint32_t from, uint16_t version,
			 uint64_t now)
{
	struct node_rec *r = rec_get(n, from, now);

	hb_delivery(n, r, from, now);
	if (!r)
		return true;
	if (r->bad_version == version)
		return false;
	r->bad_version = version;
	return true;
}

void lm_node_peer_wire(const struct lm_node *n, uint32_t id,
		       uint16_t *hb_version, uint32_t *lease_ms)
{
	*hb_version = 0;
	*lease_ms = 0;
	for (unsigned i = 0; i < n->n_nodes; i++) {
		if (n->nodes[i].id == id) {
			*hb_version = n->nodes[i].hb_version;
			*lease_ms = n->nodes[i].hb_lease_ms;
		}
	}
}

void lm_node_heartbeat(struct lm_node *n, uint32_t from,
		       const struct lm_cmsg *m, bool tp_quorate, uint64_t now,
		       struct lm_node_actq *q)
{
	struct node_rec *r = rec_get(n, from, now);
	bool fencing = node_fencing(n, from);
	uint64_t deadline, sent, seq = m->u.heartbeat.seq;

	hb_delivery(n, r, from, now);
	if (r)
		check_peer_lease(n, r, m, q);
	if (from != n->c.self || seq == 0 || seq > n->hb_seq ||
	    n->hb_seq - seq >= LM_NODE_HB_SLOTS)
		return;
	/*
	 * The lease proves membership of the quorate partition, which a
	 * state transfer does not change: it is extended while the table
	 * syncs too.  Otherwise a node that flaps in and out makes every
	 * member resync at each rejoin, and the survivors' leases ran out
	 * between the transfers and the ring re-formations.  A node that
	 * merges back from a minority lost its lease and every ownership
	 * when it lost quorum; a valid lease gives it nothing to write
	 * until new grants, which need the transfer done.
	 */
	if (!table_quorate(n) || !tp_quorate || fencing ||
	    self_kept_out(n))
		return;
	sent = n->hb_send_ns[seq % LM_NODE_HB_SLOTS];
	deadline = sent + n->c.lease_ms * NS_PER_MS;
	if (deadline <= now)
		return; /* delivered too late to be of use */
	if (n->lease_valid && deadline <= n->lease_deadline_ns)
		return;
	if (!n->lease_valid)
		act_log(q, LOG_NOTICE, NULL, "lease valid (heartbeat %llu "
			"delivered after %llu ms)", (unsigned long long)seq,
			(unsigned long long)((now - sent) / NS_PER_MS));
	n->lease_valid = true;
	n->lease_deadline_ns = deadline;
	act_lease(n, q);
}

static void heartbeat_send(struct lm_node *n, uint64_t now,
			   struct lm_node_actq *q)
{
	struct lm_cmsg m = { .type = LM_C_HEARTBEAT };

	m.u.heartbeat.seq = ++n->hb_seq;
	/* travels only at version 3 and later (lm_proto.h) */
	m.u.heartbeat.lease_timeout_ms = n->c.lease_ms;
	n->hb_send_ns[n->hb_seq % LM_NODE_HB_SLOTS] = now;
	act_send(q, &m);
	n->hb_next_ns = now + n->c.heartbeat_ms * NS_PER_MS;
}

void lm_node_heartbeat_now(struct lm_node *n, uint64_t now)
{
	n->hb_next_ns = now;
}

bool lm_node_lease(const struct lm_node *n, uint64_t *deadline)
{
	if (deadline)
		*deadline = n->lease_valid ? n->lease_deadline_ns : 0;
	return n->lease_valid;
}

bool lm_node_ready(const struct lm_node *n)
{
	return n->ready;
}

/* ---- fencing ---- */

static void node_name(struct lm_node *n, uint32_t id, char *buf, size_t len)
{
	struct lm_node_entry e;

	if (lm_state_node(n->st, id, &e) == 0 && e.name[0])
		snprintf(buf, len, "%s", e.name);
	else
		snprintf(buf, len, "%u", id);
}

void lm_node_fence_cmd_done(struct lm_node *n, uint32_t id, int status,
			    uint64_t now, struct lm_node_actq *q)
{
	struct node_rec *r = rec_get(n, id, now);
	char name[LM_NAME_MAX];

	if (!r)
		return;
	r->fence_running = false;
	node_name(n, id, name, sizeof(name));
	if (status == 0) {
		r->fence_result = 0;
		act_log(q, LOG_NOTICE, NULL, "node %s: fence command confirmed "
			"the fence after %llu ms", name, (unsigned long long)
			((now - r->fence_started_ns) / NS_PER_MS));
		return;
	}
	r->fence_result = status;
	r->fence_failed_ns = now;
	act_log(q, LOG_ERR, NULL, "node %s: fence command failed (exit status "
		"%d, 128 + signal when killed); its files stay blocked; "
		"retrying in %u ms - check the fence agent", name, status,
		n->c.fence_retry_ms);
}

static void on_fenced(struct lm_node *n, uint32_t id, uint64_t now,
		      struct lm_node_actq *q)
{
	struct node_rec *r = rec_get(n, id, now);
	char name[LM_NAME_MAX];

	node_name(n, id, name, sizeof(name));
	act_log(q, LOG_NOTICE, NULL, "node %s (id %u) fenced: its files may "
		"be granted again", name, id);
	if (!r)
		return;
	/*
	 * X's lease may rest on a heartbeat this node did not count: one
	 * delivered while X's own table was still being transferred and did
	 * not yet show X as FENCING (a restarted lockd, a merge).  Every such
	 * heartbeat was delivered before this fence, so a later departure of
	 * X is measured from here at the earliest.  Race without this (found
	 * by tests/sim): X restarts and rejoins, its heartbeat during the
	 * transfer extends its lease, X is fenced while a member, is granted
	 * a file and is cut off at once; the fencer, counting from X's last
	 * heartbeat before the restart, fenced X again while X's clients
	 * still held a valid lease.
	 */
	r->last_hb_ns = now;
	r->fence_sent_ns = 0;
	r->fence_result = -1;
	if (r->fence_running) {
		struct lm_node_act *a = act_push(q, LM_NA_FENCE_KILL);

		if (a)
			a->node = id;
	}
}

/*
 * two_node without a quorum device: both halves of a split are quorate
 * (that is what two_node means), so the lease wait alone cannot tell
 * which half may take the other's files - both would.  Known from the
 * configuration (corosync's cmap, at start) or from the decision the
 * table applies.
 */
static bool two_node_split(struct lm_node *n)
{
	struct lm_status_info si;

	if (n->c.two_node)
		return true;
	lm_state_status(n->st, &si);
	return si.quorum_from && (si.q.flags & LM_QF_TWO_NODE) &&
	       !si.q.qdevice_votes;
}

/* True once the fence command (if any, and required with two_node)
 * confirmed X's fence. */
static bool fence_cmd_ok(struct lm_node *n, struct node_rec *r, uint64_t now,
			 struct lm_node_actq *q)
{
	uint64_t timeout = n->c.fence_command_timeout_ms * NS_PER_MS;
	struct lm_node_act *a;

	if (r->fence_result == 0)
		return true;
	if (!n->c.fence_command) {
		if (!two_node_split(n))
			return true;
		if (!r->no_cmd_warned)
			act_log(q, LOG_ERR, NULL, "node %u: not fenced: "
				"corosync has two_node and no quorum device, "
				"so only a fence command can confirm it; set "
				"fence_command", r->id);
		r->no_cmd_warned = true;
		return false;
	}
	if (r->fence_running) {
		if (now - r->fence_started_ns < timeout)
			return false;
		act_log(q, LOG_ERR, NULL, "node %u: fence command timed out "
			"after %u ms; killing it", r->id,
			n->c.fence_command_timeout_ms);
		a = act_push(q, LM_NA_FENCE_KILL);
		if (a)
			a->node = r->id;
		return false;
	}
	if (r->fence_result > 0 &&
	    now - r->fence_failed_ns < n->c.fence_retry_ms * NS_PER_MS)
		return false;
	a = act_push(q, LM_NA_FENCE_CMD);
	if (!a)
		return false;
	a->node = r->id;
	r->fence_running = true;
	r->fence_started_ns = now;
	r->fence_result = -1;
	return false;
}

static void fence_one(struct lm_node *n, uint32_t id, uint64_t now,
		      struct lm_node_actq *q)
{
	struct node_rec *r = rec_get(n, id, now);
	uint64_t need = lm_node_fence_wait_ms(n->c.lease_ms, n->c.drift_ppm,
					      n->c.margin_ms,
					      n->c.watchdog_ms);
	uint64_t resend = n->c.lease_ms * NS_PER_MS / 2, waited;
	struct lm_cmsg m = { .type = LM_C_FENCE };
	char name[LM_NAME_MAX];

	if (!r)
		return;
	waited = (now - r->last_hb_ns) / NS_PER_MS;
	if (waited < need)
		return;
	if (!fence_cmd_ok(n, r, now, q))
		return;
	/*
	 * A FENCE delivered while the table is not ready is ignored
	 * (lm_state.h); under ring churn that can happen to every copy.
	 * Send again at once when a new ready period began since.
	 */
	if (r->fence_sent_ns && r->fence_sent_gen == n->ready_gen &&
	    now - r->fence_sent_ns < resend)
		return;
	node_name(n, id, name, sizeof(name));
	act_log(q, LOG_NOTICE, NULL, "fencing node %s (id %u): %s %llu ms ago "
		">= %llu ms (lease %u ms, drift %u ppm, margin %u ms, "
		"watchdog %u ms)%s", name, id, r->hb_seen ? "last heartbeat" :
		"absent since", (unsigned long long)waited,
		(unsigned long long)need, n->c.lease_ms, n->c.drift_ppm,
		n->c.margin_ms, n->c.watchdog_ms, n->c.fence_command ?
		", fence command confirmed" : "");
	m.u.fence.target = id;
	act_send(q, &m);
	r->fence_sent_ns = now;
	r->fence_sent_gen = n->ready_gen;
}

/*
 * The fencer is the lowest member that does not await a fence itself
 * and is not kept out by the protocol round.  lm_state_fencer() names
 * the lowest member not kept out, and a node never fences
 * itself (its fence command would stop the fencer); so when the lowest
 * node rejoined before its fence - a lockd restarted at once - nobody
 * fenced it and its old files stayed blocked for good (found by
 * tests/sim once it ran this code).  When every member awaits a fence,
 * the lowest fences the others, and the first of them fenced then fences
 * it.  Every member reads the same states at the same point of the
 * order, so they agree on the fencer.
 */
static uint32_t fencer(struct lm_node *n)
{
	uint32_t lowest = lm_state_fencer(n->st);
	struct lm_status_info si;

	if (!lowest)
		return 0;
	lm_state_status(n->st, &si);
	for (uint32_t i = 0; i < si.n_members; i++) {
		struct lm_node_entry e;

		/* neither awaiting a fence nor kept out (its messages
		 * would not be read) */
		if (lm_state_node(n->st, si.members[i], &e) == 0 &&
		    e.state == LM_NODE_UP)
			return si.members[i];
	}
	return lowest;
}

static void fence_check(struct lm_node *n, uint64_t now,
			struct lm_node_actq *q)
{
	uint32_t ids[NODE_RECS];
	size_t k;

	if (!n->ready || fencer(n) != n->c.self)
		return;
	k = lm_state_fence_pending(n->st, ids, NODE_RECS);
	if (k > NODE_RECS)
		k = NODE_RECS;
	for (size_t i = 0; i < k; i++)
		if (ids[i] != n->c.self)
			fence_one(n, ids[i], now, q);
}

void lm_node_lease_tick(struct lm_node *n, uint64_t now,
			struct lm_node_actq *q)
{
	if (now >= n->hb_next_ns)
		heartbeat_send(n, now, q);
	if (n->lease_valid && now >= n->lease_deadline_ns)
		lm_node_lease_end(n, "no heartbeat of this node was delivered "
				  "in a quorate ring in time", q);
	fence_check(n, now, q);
}

/* ---- views ---- */

int lm_node_foreach_own(const struct lm_node *n,
			int (*fn)(const struct lm_node_own_info *, void *),
			void *arg)
{
	const struct link *p;
	int ret;

	for (p = n->owns.next; p != &n->owns; p = p->next) {
		const struct own *o = (const struct own *)(const void *)p;
		struct lm_node_own_info info = {
			.res = o->res, .state = o->state, .epoch = o->epoch,
		};

		for (const struct holder *h = o->holders; h; h = h->next) {
			if (info.n_holders < 8)
				info.holders[info.n_holders] = h->client;
			info.n_holders++;
		}
		for (const struct waiter *w = o->waiters; w; w = w->next)
			info.n_waiters++;
		ret = fn(&info, arg);
		if (ret)
			return ret;
	}
	return 0;
}
