// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_state.c - the replicated lock table of csvfs-lockd (see lm_state.h).
 *
 * A pure state machine: membership changes and decoded cluster messages
 * in, events out.  Every decision depends only on the table and the
 * input, so every node that applies the same ordered inputs reaches the
 * same table.  The layout is described in lm_state_i.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"
#include "lm_state_i.h"

/* ---------------------------------------------------------------------
 * Event queue
 */

void lm_evq_init(struct lm_evq *q)
{
	memset(q, 0, sizeof(*q));
}

void lm_evq_reset(struct lm_evq *q)
{
	q->n = 0;
}

void lm_evq_free(struct lm_evq *q)
{
	free(q->ev);
	memset(q, 0, sizeof(*q));
}

static int ev_push(struct lm_evq *q, enum lm_ev_type type, uint32_t node,
		   uint64_t req_id, int32_t status, const struct lm_res *res,
		   uint64_t epoch, uint64_t owner)
{
	struct lm_ev *e;

	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct lm_ev *v = realloc(q->ev, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		q->ev = v;
		q->cap = cap;
	}
	e = &q->ev[q->n++];
	memset(e, 0, sizeof(*e));
	e->type = type;
	e->node = node;
	e->req_id = req_id;
	e->status = status;
	if (res)
		e->res = *res;
	e->epoch = epoch;
	e->owner = owner;
	return 0;
}

static int reply(struct lm_evq *q, uint32_t node, uint64_t req_id,
		 int32_t status, const struct lm_res *res, uint64_t epoch)
{
	return ev_push(q, LM_EV_REPLY, node, req_id, status, res, epoch, 0);
}

/* ---------------------------------------------------------------------
 * Nodes: a small array sorted by id
 */

static struct lm_node *node_get(const struct lm_state *st, uint32_t id)
{
	uint32_t lo = 0, hi = st->n_nodes;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (st->nodes[mid].id == id)
			return (struct lm_node *)&st->nodes[mid];
		if (st->nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Find or add; NULL only when the table is full or id is 0. */
static struct lm_node *node_add(struct lm_state *st, uint32_t id)
{
	struct lm_node *n = node_get(st, id);
	uint32_t i;

	if (n || id == 0)
		return n;
	if (st->n_nodes == LM_MAX_NODES)
		return NULL;
	for (i = st->n_nodes; i > 0 && st->nodes[i - 1].id > id; i--)
		st->nodes[i] = st->nodes[i - 1];
	n = &st->nodes[i];
	memset(n, 0, sizeof(*n));
	n->id = id;
	n->votes = 1;
	snprintf(n->name, sizeof(n->name), "node%u", id);
	st->n_nodes++;
	return n;
}

static int member_index(const struct lm_state *st, uint32_t id)
{
	for (uint32_t i = 0; i < st->n_members; i++)
		if (st->members[i] == id)
			return (int)i;
	return -1;
}

/* Eligible for a grant: an up member that is not draining. */
static bool node_eligible(const struct lm_state *st, uint32_t id)
{
	const struct lm_node *n = node_get(st, id);

	return n && n->member && !n->fencing && !n->draining;
}

static bool node_fencing(const struct lm_state *st, uint32_t id)
{
	const struct lm_node *n = node_get(st, id);

	return n && n->fencing;
}

static uint8_t node_state(const struct lm_node *n)
{
	if (n->excluded)
		return LM_NODE_INCOMPATIBLE;
	if (n->fencing)
		return LM_NODE_FENCING;
	return n->member ? LM_NODE_UP : LM_NODE_DOWN;
}

/* ---------------------------------------------------------------------
 * Resources: a chained hash table with a power-of-two bucket count
 */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t res_hash(const struct lm_res *res)
{
	uint64_t a, b;

	memcpy(&a, res->volume, 8);
	memcpy(&b, res->volume + 8, 8);
	return mix64(a ^ mix64(b ^ mix64(res->fileid)));
}

static bool res_eq(const struct lm_res *a, const struct lm_res *b)
{
	return a->fileid == b->fileid &&
	       memcmp(a->volume, b->volume, LM_VOLUME_LEN) == 0;
}

static int res_cmp(const struct lm_res *a, const struct lm_res *b)
{
	int c = memcmp(a->volume, b->volume, LM_VOLUME_LEN);

	if (c)
		return c;
	return a->fileid < b->fileid ? -1 : a->fileid > b->fileid;
}

static struct lm_rsrc *res_find(const struct lm_state *st,
				const struct lm_res *res)
{
	struct lm_rsrc *r;

	if (!st->n_buckets)
		return NULL;
	r = st->buckets[res_hash(res) & (st->n_buckets - 1)];
	for (; r; r = r->next)
		if (res_eq(&r->res, res))
			return r;
	return NULL;
}

static int table_grow(struct lm_state *st)
{
	uint64_t nb = st->n_buckets ? st->n_buckets * 2 : 64;
	struct lm_rsrc **b = calloc(nb, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (uint64_t i = 0; i < st->n_buckets; i++) {
		struct lm_rsrc *r = st->buckets[i], *next;

		for (; r; r = next) {
			uint64_t h = res_hash(&r->res) & (nb - 1);

			next = r->next;
			r->next = b[h];
			b[h] = r;
		}
	}
	free(st->buckets);
	st->buckets = b;
	st->n_buckets = nb;
	return 0;
}

static int res_insert(struct lm_state *st, struct lm_rsrc *r)
{
	uint64_t h;

	if (st->n_resources >= st->n_buckets) {
		int rc = table_grow(st);

		if (rc)
			return rc;
	}
	h = res_hash(&r->res) & (st->n_buckets - 1);
	r->next = st->buckets[h];
	st->buckets[h] = r;
	st->n_resources++;
	return 0;
}

static int res_get(struct lm_state *st, const struct lm_res *res,
		   struct lm_rsrc **out)
{
	struct lm_rsrc *r = res_find(st, res);
	int rc;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		r->res = *res;
		rc = res_insert(st, r);
		if (rc) {
			free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

static void rx_free(struct lm_rx *x)
{
	if (!x)
		return;
	free(x->waiters);
	for (int s = 0; s < 2; s++) {
		free(x->held[s].v);
		free(x->wait[s].v);
	}
	free(x);
}

static bool rx_empty(const struct lm_rx *x)
{
	return !x->n_waiters && !x->held[0].n && !x->held[1].n &&
	       !x->wait[0].n && !x->wait[1].n;
}

static struct lm_rx *rx_get(struct lm_rsrc *r)
{
	if (!r->x)
		r->x = calloc(1, sizeof(*r->x));
	return r->x;
}

/* Free the extension when empty and the resource when nothing is left:
 * the table holds only resources with an owner, waiter, lock or hand-off. */
static void res_gc(struct lm_state *st, struct lm_rsrc *r)
{
	struct lm_rsrc **pp;

	if (r->x && rx_empty(r->x)) {
		rx_free(r->x);
		r->x = NULL;
	}
	if (r->owner || r->handoff || r->x)
		return;
	pp = &st->buckets[res_hash(&r->res) & (st->n_buckets - 1)];
	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	st->n_resources--;
	free(r);
}

static void table_clear(struct lm_state *st)
{
	for (uint64_t i = 0; i < st->n_buckets; i++) {
		struct lm_rsrc *r = st->buckets[i], *next;

		for (; r; r = next) {
			next = r->next;
			rx_free(r->x);
			free(r);
		}
	}
	free(st->buckets);
	st->buckets = NULL;
	st->n_buckets = 0;
	st->n_resources = 0;
}

/* Calls fn on every resource (in hash order); fn may delete r. */
#define FOR_EACH_RES(st, r, next)                                   \
	for (uint64_t b_ = 0; b_ < (st)->n_buckets; b_++)           \
		for ((r) = (st)->buckets[b_]; (r) && ((next) = (r)->next, 1); \
		     (r) = (next))

static int res_key_cmp(const void *a, const void *b)
{
	const struct lm_rsrc *ra = *(const struct lm_rsrc *const *)a;
	const struct lm_rsrc *rb = *(const struct lm_rsrc *const *)b;

	return res_cmp(&ra->res, &rb->res);
}

/*
 * All resources sorted by key, in a malloc'd array (NULL when empty).
 * Whatever touches several resources walks them in this order: grants
 * take epochs from one counter, so hash-chain order (which depends on
 * each node's insertion history) would give nodes different epochs.
 */
static int res_sorted(const struct lm_state *st, struct lm_rsrc ***out)
{
	struct lm_rsrc **v = NULL, *r, *next;
	size_t n = 0;

	*out = NULL;
	if (!st->n_resources)
		return 0;
	v = malloc(st->n_resources * sizeof(*v));
	if (!v)
		return -ENOMEM;
	FOR_EACH_RES(st, r, next)
		v[n++] = r;
	qsort(v, n, sizeof(*v), res_key_cmp);
	*out = v;
	return 0;
}

/* ---------------------------------------------------------------------
 * Life cycle
 */

struct lm_state *lm_state_new(void)
{
	return calloc(1, sizeof(struct lm_state));
}

void lm_state_free(struct lm_state *st)
{
	if (!st)
		return;
	table_clear(st);
	free(st->stage);
	free(st);
}

/* ---------------------------------------------------------------------
 * EX ownership
 */

static int waiter_find(const struct lm_rsrc *r, uint32_t node)
{
	if (!r->x)
		return -1;
	for (uint32_t i = 0; i < r->x->n_waiters; i++)
		if (r->x->waiters[i].node == node)
			return (int)i;
	return -1;
}

static void waiter_del(struct lm_rsrc *r, uint32_t i)
{
	struct lm_rx *x = r->x;

	memmove(&x->waiters[i], &x->waiters[i + 1],
		(x->n_waiters - i - 1) * sizeof(x->waiters[0]));
	x->n_waiters--;
}

static int waiter_add(struct lm_rsrc *r, uint32_t node, uint64_t req_id)
{
	struct lm_rx *x = rx_get(r);

	if (!x)
		return -ENOMEM;
	if (x->n_waiters == x->cap_waiters) {
		uint32_t cap = x->cap_waiters ? x->cap_waiters * 2 : 2;
		struct lm_waiter *v = realloc(x->waiters, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		x->waiters = v;
		x->cap_waiters = cap;
	}
	x->waiters[x->n_waiters].node = node;
	x->waiters[x->n_waiters].req_id = req_id;
	x->n_waiters++;
	return 0;
}

/* Grant r to node with a new epoch.  If node was also queued, its queued
 * acquire is the one answered (its req_id rides on LM_EV_GRANTED). */
static int grant(struct lm_state *st, struct lm_rsrc *r, uint32_t node,
		 uint64_t req_id, struct lm_evq *out)
{
	int i = waiter_find(r, node);
	int rc;

	if (i >= 0) {
		if (!req_id)
			req_id = r->x->waiters[i].req_id;
		waiter_del(r, (uint32_t)i);
	}
	r->owner = node;
	r->epoch = ++st->epoch;
	r->revoking = 0;
	if (r->handoff == node)
		r->handoff = 0;
	st->dirty = true;
	rc = ev_push(out, LM_EV_GRANTED, node, req_id, 0, &r->res, r->epoch, 0);
	if (!rc)
		rc = ev_push(out, LM_EV_OWNER, node, 0, 0, &r->res, r->epoch,
			     0);
	return rc;
}

static bool has_eligible_waiter(const struct lm_state *st,
				const struct lm_rsrc *r)
{
	if (!r->x)
		return false;
	for (uint32_t i = 0; i < r->x->n_waiters; i++)
		if (node_eligible(st, r->x->waiters[i].node))
			return true;
	return false;
}

static int revoke(struct lm_state *st, struct lm_rsrc *r, struct lm_evq *out)
{
	/* A fencing owner cannot answer: the fence frees the resource. */
	if (r->revoking || !r->owner || node_fencing(st, r->owner))
		return 0;
	r->revoking = 1;
	st->dirty = true;
	return ev_push(out, LM_EV_REVOKE, r->owner, 0, 0, &r->res, r->epoch, 0);
}

/*
 * Bring r to rest after any change: a free resource goes to the hand-off
 * target if eligible, else to the first eligible waiter; an owned one with
 * someone eligible waiting (or a hand-off target) has its owner asked to
 * revoke.  Then r is deleted if empty.
 */
static int settle(struct lm_state *st, struct lm_rsrc *r, struct lm_evq *out)
{
	int rc = 0;

	if (!r->owner) {
		uint32_t to = 0;

		if (r->handoff && node_eligible(st, r->handoff))
			to = r->handoff;
		if (r->handoff && !to) {
			r->handoff = 0;	/* target gone: fall back to FIFO */
			st->dirty = true;
		}
		for (uint32_t i = 0; !to && r->x && i < r->x->n_waiters; i++)
			if (node_eligible(st, r->x->waiters[i].node))
				to = r->x->waiters[i].node;
		if (to)
			rc = grant(st, r, to, 0, out);
	}
	if (!rc && r->owner && (r->handoff || has_eligible_waiter(st, r)))
		rc = revoke(st, r, out);
	res_gc(st, r);
	return rc;
}

/* The owner gives r up (release or fence); the caller settles r. */
static int unown(struct lm_state *st, struct lm_rsrc *r, bool lost,
		 struct lm_evq *out)
{
	uint32_t old = r->owner;
	int rc;

	r->owner = 0;
	r->revoking = 0;
	st->dirty = true;
	rc = ev_push(out, lost ? LM_EV_LOST : LM_EV_RELEASED, old, 0, 0,
		     &r->res, r->epoch, 0);
	if (!rc)
		rc = ev_push(out, LM_EV_OWNER, 0, 0, 0, &r->res, r->epoch, 0);
	return rc;
}

/*
 * Why node id may not take part in a request, or 0: unknown, not a
 * member, awaiting a fence, or (when draining counts) draining.
 */
static int32_t node_status(const struct lm_state *st, uint32_t id,
			   bool draining_counts)
{
	const struct lm_node *n = node_get(st, id);

	if (!n)
		return LM_ERR_NONODE;
	if (!n->member)
		return LM_ERR_NOTMEMBER;
	if (draining_counts && n->draining)
		return LM_ERR_DRAINING;
	if (n->fencing)
		return LM_ERR_FENCING;
	return 0;
}

/* Errors for a node asking something for itself. */
static int32_t requester_status(const struct lm_state *st, uint32_t from)
{
	return node_status(st, from, false);
}

static int do_acquire(struct lm_state *st, uint32_t from,
		      const struct lm_c_acquire *a, struct lm_evq *out)
{
	const struct lm_node *n = node_get(st, from);
	int32_t status = requester_status(st, from);
	struct lm_rsrc *r;
	int i, rc;

	if (!status && n->draining)
		status = LM_ERR_DRAINING;
	if (status)
		return reply(out, from, a->req_id, status, &a->res, 0);
	rc = res_get(st, &a->res, &r);
	if (rc)
		return rc;
	if (r->owner == from)
		return reply(out, from, a->req_id, 0, &r->res, r->epoch);
	if (!r->owner)
		return grant(st, r, from, a->req_id, out);
	i = waiter_find(r, from);
	if (i >= 0)
		r->x->waiters[i].req_id = a->req_id; /* answer the latest */
	else
		rc = waiter_add(r, from, a->req_id);
	if (!rc)
		rc = ev_push(out, LM_EV_QUEUED, from, a->req_id, 0, &r->res,
			     r->epoch, 0);
	if (!rc)
		rc = revoke(st, r, out);
	return rc;
}

static int do_release(struct lm_state *st, uint32_t from,
		      const struct lm_c_release *m, struct lm_evq *out)
{
	struct lm_rsrc *r = res_find(st, &m->res);
	int32_t status = requester_status(st, from);
	int rc;

	/* A fencing node keeps its holdings until the fence (I3). */
	if (!status && (!r || r->owner != from || r->epoch != m->epoch))
		status = LM_ERR_NOTOWNER;
	if (status)
		return reply(out, from, m->req_id, status, &m->res, 0);
	rc = unown(st, r, false, out);
	if (!rc)
		rc = reply(out, from, m->req_id, 0, &m->res, m->epoch);
	if (!rc)
		rc = settle(st, r, out);
	return rc;
}

/* Errors for a node a hand-off names as the new owner. */
static int32_t target_status(const struct lm_state *st, uint32_t target)
{
	return node_status(st, target, true);
}

static int do_handoff(struct lm_state *st, uint32_t from,
		      const struct lm_c_handoff *m, struct lm_evq *out)
{
	int32_t status = target_status(st, m->target);
	struct lm_rsrc *r;
	int rc;

	if (status)
		return reply(out, from, m->req_id, status, &m->res, 0);
	rc = res_get(st, &m->res, &r);
	if (rc)
		return rc;
	if (r->owner != m->target) {
		r->handoff = m->target;
		st->dirty = true;
		if (r->owner)
			rc = revoke(st, r, out);
		else
			rc = settle(st, r, out);
	}
	if (!rc)
		rc = reply(out, from, m->req_id, 0, &m->res, r->epoch);
	return rc;
}

static int do_drain(struct lm_state *st, uint32_t from, bool drain,
		    const struct lm_c_drain *m, struct lm_evq *out)
{
	struct lm_node *t = node_get(st, m->target);
	struct lm_rsrc **v;
	uint64_t n = st->n_resources;
	int rc;

	if (!t)
		return reply(out, from, m->req_id, LM_ERR_NONODE, NULL, 0);
	rc = res_sorted(st, &v);
	if (rc)
		return rc;
	t->draining = drain;
	st->dirty = true;
	rc = ev_push(out, LM_EV_NODE, t->id, 0, 0, NULL, 0, 0);
	/* Draining revokes what T owns; resuming may make T's queued
	 * acquires of a free resource grantable again. */
	for (uint64_t i = 0; !rc && i < n; i++) {
		if (drain && v[i]->owner == t->id)
			rc = revoke(st, v[i], out);
		else if (!drain && waiter_find(v[i], t->id) >= 0)
			rc = settle(st, v[i], out);
	}
	free(v);
	if (!rc)
		rc = reply(out, from, m->req_id, 0, NULL, 0);
	return rc;
}

/* ---------------------------------------------------------------------
 * POSIX and flock locks
 */

static bool same_owner(const struct lm_lock *l, uint32_t node, uint64_t owner)
{
	return l->node == node && l->owner == owner;
}

static bool lk_conflict(const struct lm_lock *l, uint32_t node,
			uint64_t owner, uint8_t type, uint64_t start,
			uint64_t end)
{
	if (same_owner(l, node, owner))
		return false;
	if (l->end < start || l->start > end)
		return false;
	return l->type == LM_LK_WRITE || type == LM_LK_WRITE;
}

/* Order of held locks: (node, owner, start). */
static int lk_cmp(const struct lm_lock *a, uint32_t node, uint64_t owner,
		  uint64_t start)
{
	if (a->node != node)
		return a->node < node ? -1 : 1;
	if (a->owner != owner)
		return a->owner < owner ? -1 : 1;
	if (a->start != start)
		return a->start < start ? -1 : 1;
	return 0;
}

static int lv_insert_at(struct lm_lockv *lv, uint32_t i,
			const struct lm_lock *l)
{
	if (lv->n == lv->cap) {
		uint32_t cap = lv->cap ? lv->cap * 2 : 2;
		struct lm_lock *v = realloc(lv->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		lv->v = v;
		lv->cap = cap;
	}
	memmove(&lv->v[i + 1], &lv->v[i], (lv->n - i) * sizeof(*l));
	lv->v[i] = *l;
	lv->n++;
	return 0;
}

static void lv_del(struct lm_lockv *lv, uint32_t i)
{
	memmove(&lv->v[i], &lv->v[i + 1], (lv->n - i - 1) * sizeof(lv->v[0]));
	lv->n--;
}

/* Remove [start, end] from the ranges of (node, owner), splitting a range
 * that covers it on both sides.  start - 1 and end + 1 are only computed
 * when a range extends past them, so they never wrap. */
static int lv_unlock(struct lm_lockv *lv, uint32_t node, uint64_t owner,
		     uint64_t start, uint64_t end)
{
	for (uint32_t i = 0; i < lv->n;) {
		struct lm_lock *l = &lv->v[i];

		if (!same_owner(l, node, owner) || l->end < start ||
		    l->start > end) {
			i++;
			continue;
		}
		if (l->start < start && l->end > end) {
			struct lm_lock tail = *l;

			tail.start = end + 1;
			l->end = start - 1;
			return lv_insert_at(lv, i + 1, &tail);
		}
		if (l->start < start) {
			l->end = start - 1;
			i++;
		} else if (l->end > end) {
			l->start = end + 1;
			i++;
		} else {
			lv_del(lv, i);
		}
	}
	return 0;
}

/* Give (node, owner) type on [start, end]: cut the range out of its own
 * locks, merge with adjacent ranges of the same type, insert sorted. */
static int lv_lock(struct lm_lockv *lv, const struct lm_lock *nl)
{
	struct lm_lock l = *nl;
	uint32_t i;
	int rc = lv_unlock(lv, l.node, l.owner, l.start, l.end);

	if (rc)
		return rc;
	l.req_id = 0;
	for (i = 0; i < lv->n;) {
		struct lm_lock *o = &lv->v[i];

		if (same_owner(o, l.node, l.owner) && o->type == l.type &&
		    ((o->end != LM_OFFSET_MAX && o->end + 1 == l.start) ||
		     (l.end != LM_OFFSET_MAX && l.end + 1 == o->start))) {
			if (o->start < l.start)
				l.start = o->start;
			if (o->end > l.end)
				l.end = o->end;
			lv_del(lv, i);
			i = 0; /* l grew: look again from the start */
			continue;
		}
		i++;
	}
	for (i = 0; i < lv->n && lk_cmp(&lv->v[i], l.node, l.owner,
					l.start) < 0; i++)
		;
	return lv_insert_at(lv, i, &l);
}

static bool held_conflict(const struct lm_lockv *lv, const struct lm_lock *l)
{
	for (uint32_t i = 0; i < lv->n; i++)
		if (lk_conflict(&lv->v[i], l->node, l->owner, l->type,
				l->start, l->end))
			return true;
	return false;
}

/* A queued wait blocks only later waits that conflict with it. */
static bool wait_conflict(const struct lm_lockv *wv, uint32_t upto,
			  const struct lm_lock *l)
{
	for (uint32_t i = 0; i < upto && i < wv->n; i++)
		if (lk_conflict(&wv->v[i], l->node, l->owner, l->type,
				l->start, l->end))
			return true;
	return false;
}

/* Grant every queued wait that no longer conflicts, in FIFO order. */
static int wake(struct lm_state *st, struct lm_rsrc *r, int space,
		struct lm_evq *out)
{
	struct lm_lockv *held, *wv;
	int rc;

	if (!r->x)
		return 0;
	held = &r->x->held[space];
	wv = &r->x->wait[space];
	for (uint32_t i = 0; i < wv->n;) {
		struct lm_lock w = wv->v[i];

		if (held_conflict(held, &w) || wait_conflict(wv, i, &w)) {
			i++;
			continue;
		}
		rc = lv_lock(held, &w);
		if (rc)
			return rc;
		lv_del(wv, i);
		st->dirty = true;
		rc = ev_push(out, LM_EV_PLOCK_GRANTED, w.node, w.req_id, 0,
			     &r->res, 0, w.owner);
		if (rc)
			return rc;
	}
	return 0;
}

/* Drop the queued waits of (node, owner) (all owners of node when
 * all_owners), answering them with status unless status is 0. */
static int drop_waits(struct lm_rsrc *r, int space, uint32_t node,
		      uint64_t owner, bool all_owners, int32_t status,
		      struct lm_evq *out)
{
	struct lm_lockv *wv;
	int rc = 0;

	if (!r->x)
		return 0;
	wv = &r->x->wait[space];
	for (uint32_t i = 0; i < wv->n;) {
		struct lm_lock w = wv->v[i];

		if (w.node != node || (!all_owners && w.owner != owner)) {
			i++;
			continue;
		}
		lv_del(wv, i);
		if (status && !rc)
			rc = reply(out, w.node, w.req_id, status, &r->res, 0);
	}
	return rc;
}

static void drop_held(struct lm_state *st, struct lm_rsrc *r, int space,
		      uint32_t node, uint64_t owner, bool all_owners)
{
	struct lm_lockv *lv;

	if (!r->x)
		return;
	lv = &r->x->held[space];
	for (uint32_t i = 0; i < lv->n;) {
		if (lv->v[i].node == node &&
		    (all_owners || lv->v[i].owner == owner)) {
			lv_del(lv, i);
			st->dirty = true;
		} else {
			i++;
		}
	}
}

static int32_t plock_validate(const struct lm_state *st, uint32_t from,
			      const struct lm_c_plock *p)
{
	int32_t status = requester_status(st, from);

	if (status)
		return status;
	if (p->space > LM_SPACE_FLOCK || p->op < LM_PL_SET ||
	    p->op > LM_PL_RELEASE_OWNER)
		return EINVAL;
	if ((p->op == LM_PL_SET || p->op == LM_PL_SETW) &&
	    p->type > LM_LK_WRITE)
		return EINVAL;
	if (p->space == LM_SPACE_POSIX && p->start > p->end &&
	    (p->op != LM_PL_CANCEL && p->op != LM_PL_RELEASE_OWNER))
		return EINVAL;
	return 0;
}

/* SET / SETW of a READ or WRITE lock. */
static int plock_set(struct lm_state *st, struct lm_rsrc *r, uint32_t from,
		     const struct lm_c_plock *p, const struct lm_lock *l,
		     struct lm_evq *out)
{
	struct lm_rx *x = r->x;
	int s = p->space;
	int rc;

	if (!held_conflict(&x->held[s], l) &&
	    (p->op == LM_PL_SET || !wait_conflict(&x->wait[s], x->wait[s].n,
						   l))) {
		rc = lv_lock(&x->held[s], l);
		st->dirty = true;
		/* A downgrade may unblock waiters. */
		if (!rc)
			rc = reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = wake(st, r, s, out);
		return rc;
	}
	if (p->op == LM_PL_SET)
		return reply(out, from, p->req_id, EAGAIN, &p->res, 0);
	/* One queued wait per owner: a new SETW replaces an older one. */
	rc = drop_waits(r, s, from, p->owner, false, LM_ERR_CANCELED, out);
	if (!rc)
		rc = lv_insert_at(&x->wait[s], x->wait[s].n, l);
	if (!rc)
		rc = ev_push(out, LM_EV_QUEUED, from, p->req_id, 0, &p->res, 0,
			     p->owner);
	return rc;
}

static int do_plock(struct lm_state *st, uint32_t from,
		    const struct lm_c_plock *p, struct lm_evq *out)
{
	int32_t status = plock_validate(st, from, p);
	struct lm_lock l = { 0 };
	struct lm_rsrc *r;
	int s = p->space;
	int rc;

	if (status)
		return reply(out, from, p->req_id, status, &p->res, 0);
	rc = res_get(st, &p->res, &r);
	if (rc)
		return rc;
	if (!rx_get(r)) {
		res_gc(st, r);
		return -ENOMEM;
	}
	l.node = from;
	l.owner = p->owner;
	l.type = p->type;
	l.pid = p->pid;
	l.req_id = p->req_id;
	l.start = s == LM_SPACE_FLOCK ? 0 : p->start;
	l.end = s == LM_SPACE_FLOCK ? LM_OFFSET_MAX : p->end;

	switch (p->op) {
	case LM_PL_SET:
	case LM_PL_SETW:
		if (p->type != LM_LK_UNLOCK) {
			rc = plock_set(st, r, from, p, &l, out);
			break;
		}
		/* F_SETLK with F_UNLCK unlocks */
		/* fall through */
	case LM_PL_UNLOCK:
		rc = lv_unlock(&r->x->held[s], from, p->owner, l.start, l.end);
		st->dirty = true;
		if (!rc)
			rc = reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = wake(st, r, s, out);
		break;
	case LM_PL_CANCEL:
		rc = drop_waits(r, s, from, p->owner, false, LM_ERR_CANCELED,
				out);
		if (!rc)
			rc = reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = wake(st, r, s, out);
		break;
	default: /* LM_PL_RELEASE_OWNER */
		drop_held(st, r, s, from, p->owner, false);
		rc = drop_waits(r, s, from, p->owner, false, LM_ERR_CANCELED,
				out);
		if (!rc)
			rc = reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = wake(st, r, s, out);
		break;
	}
	res_gc(st, r);
	return rc;
}

/* ---------------------------------------------------------------------
 * Fencing
 */

static bool node_holds(const struct lm_state *st, uint32_t id)
{
	struct lm_rsrc *r, *next;

	FOR_EACH_RES(st, r, next) {
		if (r->owner == id)
			return true;
		for (int s = 0; r->x && s < 2; s++)
			for (uint32_t i = 0; i < r->x->held[s].n; i++)
				if (r->x->held[s].v[i].node == id)
					return true;
	}
	return false;
}

/* End everything the (just unfenced) node holds on r, then hand r on. */
static int fence_res(struct lm_state *st, struct lm_rsrc *r, uint32_t target,
		     struct lm_evq *out)
{
	int rc = 0;

	if (r->owner == target)
		rc = unown(st, r, true, out);
	for (int s = 0; !rc && r->x && s < 2; s++) {
		drop_held(st, r, s, target, 0, true);
		rc = drop_waits(r, s, target, 0, true, 0, out);
	}
	if (!rc && r->x) {
		int i = waiter_find(r, target);

		if (i >= 0)
			waiter_del(r, (uint32_t)i);
	}
	for (int s = 0; !rc && r->x && s < 2; s++)
		rc = wake(st, r, s, out);
	if (!rc)
		rc = settle(st, r, out);
	return rc;
}

static int do_fence(struct lm_state *st, uint32_t target, struct lm_evq *out)
{
	struct lm_node *t = node_get(st, target);
	uint64_t n = st->n_resources;
	struct lm_rsrc **v;
	int rc;

	if (!t || !t->fencing)
		return 0;
	rc = res_sorted(st, &v);
	if (rc)
		return rc;
	/* Clear the flag first: T (if a member) is eligible again. */
	t->fencing = 0;
	st->dirty = true;
	for (uint64_t i = 0; !rc && i < n; i++)
		rc = fence_res(st, v[i], target, out);
	free(v);
	if (!rc)
		rc = ev_push(out, LM_EV_FENCED, target, 0, 0, NULL, 0, 0);
	if (!rc)
		rc = ev_push(out, LM_EV_NODE, target, 0, 0, NULL, 0, 0);
	return rc;
}

/* ---------------------------------------------------------------------
 * Readiness
 */

/*
 * Quorum is corosync's decision, never a vote count of ours: each lockd
 * multicasts what its votequorum decided for ring R (LM_C_QUORUM), and the
 * table counts only decisions for the ring it is in (lm_state_apply_ring).
 * A ring change and any membership change forget every decision, so a
 * "quorate" from an older ring - still in flight, or from before a
 * split - can never count.  The partition is quorate when at least one
 * member's latest decision for the current ring says so and none says
 * otherwise: members of one ring normally agree, and while they do not
 * (a quorum device's vote reaching one node first), the cautious answer
 * wins.
 */
static bool is_quorate(const struct lm_state *st)
{
	bool any = false;

	for (uint32_t i = 0; i < st->n_qd; i++) {
		if (!st->qd[i].quorate)
			return false;
		any = true;
	}
	return any;
}

static void decisions_clear(struct lm_state *st)
{
	st->n_qd = 0;
	st->q_last_from = 0;
}

/* Re-evaluate every resource (sorted): wake lock waits and grant or
 * revoke what became possible while the state was not ready. */
static int settle_all(struct lm_state *st, struct lm_evq *out)
{
	uint64_t n = st->n_resources;
	struct lm_rsrc **v;
	int rc = res_sorted(st, &v);

	for (uint64_t i = 0; !rc && i < n; i++) {
		for (int s = 0; !rc && v[i]->x && s < 2; s++)
			rc = wake(st, v[i], s, out);
		if (!rc)
			rc = settle(st, v[i], out);
	}
	free(v);
	return rc;
}

static int update_ready(struct lm_state *st, struct lm_evq *out)
{
	bool ready = !st->syncing && is_quorate(st);
	int rc;

	if (ready == st->ready)
		return 0;
	st->ready = ready;
	/*
	 * The latest quorate lineage must have the highest version: every
	 * member of a partition that becomes ready bumps it at this same
	 * point of the order; a partition that never becomes ready (a
	 * minority that merely saw members leave) never does.
	 */
	if (ready)
		st->version++;
	rc = ev_push(out, ready ? LM_EV_READY : LM_EV_NOT_READY, 0, 0, 0,
		     NULL, 0, 0);
	if (!rc && ready)
		rc = settle_all(st, out);
	return rc;
}

/* ---------------------------------------------------------------------
 * Membership
 */

static void sync_reset(struct lm_state *st, bool syncing)
{
	st->syncing = syncing;
	st->sync_failed = false;
	st->donor = 0;
	memset(st->hellos, 0, sizeof(st->hellos));
	free(st->stage);
	st->stage = NULL;
	st->stage_len = 0;
	st->stage_cap = 0;
	st->stage_chunks = 0;
}

/* A node left: its queued waits go at once; its holdings stay until it
 * is fenced. */
static int node_left(struct lm_state *st, struct lm_node *n,
		     struct lm_evq *out)
{
	struct lm_rsrc *r, *next;

	n->member = 0;
	n->excluded = 0;
	FOR_EACH_RES(st, r, next) {
		int i = waiter_find(r, n->id);

		if (i >= 0)
			waiter_del(r, (uint32_t)i);
		for (int s = 0; r->x && s < 2; s++)
			drop_waits(r, s, n->id, 0, true, 0, out);
		res_gc(st, r);
	}
	if (node_holds(st, n->id))
		n->fencing = 1;
	return ev_push(out, LM_EV_NODE, n->id, 0, 0, NULL, 0, 0);
}

static int proto_set(struct lm_state *st, uint16_t v, struct lm_evq *out)
{
	uint16_t was = st->proto;

	if (v == was)
		return 0;
	st->proto = v;
	return ev_push(out, LM_EV_PROTO, 0, 0, 0, NULL, v, was);
}

/* Leaves only: the remaining members all spoke the version in force, so
 * the highest they all speak is the same or higher. */
static int proto_after_leaves(struct lm_state *st, struct lm_evq *out)
{
	uint16_t v = 0;

	for (uint32_t i = 0; i < st->n_members; i++) {
		const struct lm_node *n = node_get(st, st->members[i]);

		if (n->member && n->proto_max && (!v || n->proto_max < v))
			v = n->proto_max;
	}
	return v ? proto_set(st, v, out) : 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int lm_state_apply_confchg(struct lm_state *st, const struct lm_confchg *cc,
			   struct lm_evq *out)
{
	uint32_t old[LM_MAX_NODES], n_old = st->n_members;
	bool joins = cc->n_joined > 0, leaves = false;
	int rc = 0;

	if (cc->n_members > LM_MAX_NODES)
		return -EINVAL;
	memcpy(old, st->members, sizeof(old));
	for (size_t i = 0; i < cc->n_members; i++)
		if (!node_add(st, cc->members[i]))
			return -ENOMEM;
	memcpy(st->members, cc->members, cc->n_members * sizeof(uint32_t));
	st->n_members = (uint32_t)cc->n_members;
	qsort(st->members, st->n_members, sizeof(uint32_t), u32_cmp);

	/* Derive leaves and joins from the member lists themselves. */
	for (uint32_t i = 0; !rc && i < n_old; i++) {
		if (member_index(st, old[i]) < 0) {
			leaves = true;
			rc = node_left(st, node_get(st, old[i]), out);
		}
	}
	for (uint32_t i = 0; !rc && i < st->n_members; i++) {
		struct lm_node *n = node_get(st, st->members[i]);

		/* One kept out: a round again, it may fit now. */
		if (n->excluded) {
			joins = true;
			continue;
		}
		if (!n->member) {
			joins = true;
			n->member = 1;
			rc = ev_push(out, LM_EV_NODE, n->id, 0, 0, NULL, 0, 0);
		}
	}
	if (rc)
		return rc;
	/* Joins start a transfer; any change during one restarts it. */
	if (joins || st->syncing)
		sync_reset(st, true);
	if (!st->syncing && leaves)
		rc = proto_after_leaves(st, out);
	if (rc)
		return rc;
	/* Whichever of the ring change and this confchg corosync delivers
	 * first, no decision made before both counts. */
	decisions_clear(st);
	return update_ready(st, out);
}

int lm_state_apply_ring(struct lm_state *st, const struct lm_ring *ring,
			struct lm_evq *out)
{
	if (st->have_ring && st->ring.nodeid == ring->nodeid &&
	    st->ring.seq == ring->seq)
		return 0;
	st->ring = *ring;
	st->have_ring = true;
	decisions_clear(st);
	return update_ready(st, out);
}

/* ---------------------------------------------------------------------
 * Snapshot encoding
 */

struct wr {
	uint8_t *p;
};

static void put8(struct wr *w, uint8_t v)
{
	*w->p++ = v;
}

static void put32(struct wr *w, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*w->p++ = (uint8_t)(v >> (8 * i));
}

static void put64(struct wr *w, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*w->p++ = (uint8_t)(v >> (8 * i));
}

static void putn(struct wr *w, const void *d, size_t n)
{
	memcpy(w->p, d, n);
	w->p += n;
}

static uint32_t res_n_held(const struct lm_rsrc *r)
{
	return r->x ? r->x->held[0].n + r->x->held[1].n : 0;
}

static void put_res(struct wr *w, const struct lm_rsrc *r)
{
	putn(w, r->res.volume, LM_VOLUME_LEN);
	put64(w, r->res.fileid);
	put32(w, r->owner);
	put64(w, r->epoch);
	put32(w, r->handoff);
	put8(w, r->revoking);
	put32(w, res_n_held(r));
	for (int s = 0; r->x && s < 2; s++) {
		for (uint32_t i = 0; i < r->x->held[s].n; i++) {
			const struct lm_lock *l = &r->x->held[s].v[i];

			put8(w, (uint8_t)s);
			put8(w, l->type);
			put32(w, l->node);
			put64(w, l->owner);
			put64(w, l->start);
			put64(w, l->end);
			put32(w, l->pid);
		}
	}
}

int lm_state_snapshot(const struct lm_state *st, uint8_t **buf, size_t *len)
{
	size_t size = LM_SNAP_HDR_LEN + 4 + st->n_nodes * LM_SNAP_NODE_LEN + 4;
	uint64_t n = st->n_resources;
	struct lm_rsrc **v;
	struct wr w;
	int rc = res_sorted(st, &v);

	if (rc)
		return rc;
	/* Waiters are not replicated: a resource that only has waiters is
	 * not in the snapshot. */
	for (uint64_t i = 0, k = n; i < k; i++)
		if (!v[i]->owner && !v[i]->handoff && !res_n_held(v[i]))
			n--;
		else
			v[i - (k - n)] = v[i];
	for (uint64_t i = 0; i < n; i++)
		size += LM_SNAP_RES_LEN +
			(size_t)res_n_held(v[i]) * LM_SNAP_LOCK_LEN;
	*buf = malloc(size);
	if (!*buf) {
		free(v);
		return -ENOMEM;
	}
	w.p = *buf;
	put32(&w, LM_SNAP_MAGIC);
	put32(&w, LM_SNAP_FORMAT);
	put64(&w, st->version);
	put64(&w, st->epoch);
	put32(&w, st->n_nodes);
	for (uint32_t i = 0; i < st->n_nodes; i++) {
		const struct lm_node *nd = &st->nodes[i];

		put32(&w, nd->id);
		putn(&w, nd->name, LM_NAME_MAX);
		put8(&w, nd->fencing);
		put8(&w, nd->draining);
		put32(&w, nd->votes);
		put32(&w, nd->expected);
	}
	put32(&w, (uint32_t)n);
	for (uint64_t i = 0; i < n; i++)
		put_res(&w, v[i]);
	free(v);
	*len = size;
	return 0;
}

uint64_t lm_state_digest(const struct lm_state *st)
{
	uint8_t *buf;
	size_t len;
	uint64_t d;

	if (lm_state_snapshot(st, &buf, &len))
		return 0;
	d = lm_checksum64(LM_CHECKSUM_SEED, buf, len);
	free(buf);
	return d;
}

/* ---------------------------------------------------------------------
 * Snapshot decoding: every read is bounds-checked; any error sticks.
 */

struct rd {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static bool take(struct rd *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return false;
	}
	r->left -= n;
	return true;
}

static uint8_t get8(struct rd *r)
{
	return take(r, 1) ? *r->p++ : 0;
}

static uint32_t get32(struct rd *r)
{
	uint32_t v = 0;

	if (!take(r, 4))
		return 0;
	for (int i = 0; i < 4; i++)
		v |= (uint32_t)*r->p++ << (8 * i);
	return v;
}

static uint64_t get64(struct rd *r)
{
	uint64_t v = 0;

	if (!take(r, 8))
		return 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)*r->p++ << (8 * i);
	return v;
}

static void getn(struct rd *r, void *d, size_t n)
{
	if (take(r, n)) {
		memcpy(d, r->p, n);
		r->p += n;
	} else {
		memset(d, 0, n);
	}
}

static int get_nodes(struct rd *rd, struct lm_state *ns)
{
	uint32_t n = get32(rd);

	if (rd->bad || n > LM_MAX_NODES)
		return -EBADMSG;
	for (uint32_t i = 0; i < n; i++) {
		struct lm_node *nd = &ns->nodes[i];

		nd->id = get32(rd);
		getn(rd, nd->name, LM_NAME_MAX);
		nd->fencing = get8(rd);
		nd->draining = get8(rd);
		nd->votes = get32(rd);
		nd->expected = get32(rd);
		if (rd->bad || !nd->id || (i && nd->id <= nd[-1].id) ||
		    !memchr(nd->name, 0, LM_NAME_MAX) || nd->fencing > 1 ||
		    nd->draining > 1)
			return -EBADMSG;
	}
	ns->n_nodes = n;
	return 0;
}

/* One held lock, appended to r; order and overlap are checked against
 * the previous lock of the same space. */
static int get_lock(struct rd *rd, struct lm_state *ns, struct lm_rsrc *r,
		    int *last_space)
{
	struct lm_lock l = { 0 };
	uint8_t s = get8(rd);
	struct lm_lockv *lv;

	l.type = get8(rd);
	l.node = get32(rd);
	l.owner = get64(rd);
	l.start = get64(rd);
	l.end = get64(rd);
	l.pid = get32(rd);
	if (rd->bad || s > LM_SPACE_FLOCK || (int)s < *last_space ||
	    (l.type != LM_LK_READ && l.type != LM_LK_WRITE) ||
	    l.start > l.end || !node_get(ns, l.node) ||
	    (s == LM_SPACE_FLOCK && (l.start || l.end != LM_OFFSET_MAX)))
		return -EBADMSG;
	*last_space = s;
	if (!rx_get(r))
		return -ENOMEM;
	lv = &r->x->held[s];
	if (lv->n) {
		const struct lm_lock *p = &lv->v[lv->n - 1];

		if (lk_cmp(p, l.node, l.owner, l.start) >= 0 ||
		    (same_owner(p, l.node, l.owner) && p->end >= l.start))
			return -EBADMSG;
	}
	return lv_insert_at(lv, lv->n, &l);
}

static int get_res(struct rd *rd, struct lm_state *ns, struct lm_res *prev,
		   bool first)
{
	struct lm_rsrc *r = calloc(1, sizeof(*r));
	uint32_t n_locks;
	int last_space = 0, rc;

	if (!r)
		return -ENOMEM;
	getn(rd, r->res.volume, LM_VOLUME_LEN);
	r->res.fileid = get64(rd);
	r->owner = get32(rd);
	r->epoch = get64(rd);
	r->handoff = get32(rd);
	r->revoking = get8(rd);
	n_locks = get32(rd);
	rc = -EBADMSG;
	if (rd->bad || (!first && res_cmp(prev, &r->res) >= 0) ||
	    (r->owner && !node_get(ns, r->owner)) ||
	    (r->handoff && !node_get(ns, r->handoff)) ||
	    r->revoking > 1 || (r->revoking && !r->owner) ||
	    r->epoch > ns->epoch || (!r->owner && !r->handoff && !n_locks) ||
	    n_locks > rd->left / LM_SNAP_LOCK_LEN)
		goto fail;
	for (uint32_t i = 0; i < n_locks; i++) {
		rc = get_lock(rd, ns, r, &last_space);
		if (rc)
			goto fail;
	}
	rc = res_insert(ns, r);
	if (rc)
		goto fail;
	*prev = r->res;
	return 0;
fail:
	rx_free(r->x);
	free(r);
	return rc;
}

/* Decode buf into a new table (nodes, resources, version, epoch). */
static int snap_decode(const uint8_t *buf, size_t len, struct lm_state **out)
{
	struct rd rd = { .p = buf, .left = len };
	struct lm_state *ns = lm_state_new();
	struct lm_res prev = { { 0 }, 0 };
	uint32_t n_res;
	int rc = -EBADMSG;

	if (!ns)
		return -ENOMEM;
	if (get32(&rd) != LM_SNAP_MAGIC || get32(&rd) != LM_SNAP_FORMAT)
		goto fail;
	ns->version = get64(&rd);
	ns->epoch = get64(&rd);
	rc = get_nodes(&rd, ns);
	if (rc)
		goto fail;
	n_res = get32(&rd);
	rc = -EBADMSG;
	if (rd.bad || n_res > rd.left / LM_SNAP_RES_LEN)
		goto fail;
	for (uint32_t i = 0; i < n_res; i++) {
		rc = get_res(&rd, ns, &prev, i == 0);
		if (rc)
			goto fail;
	}
	rc = -EBADMSG;
	if (rd.left)
		goto fail;
	*out = ns;
	return 0;
fail:
	lm_state_free(ns);
	return rc;
}

int lm_state_snapshot_check(const uint8_t *buf, size_t len)
{
	struct lm_state *ns;
	int rc = snap_decode(buf, len, &ns);

	if (rc)
		return rc == -ENOMEM ? rc : -EBADMSG;
	lm_state_free(ns);
	return 0;
}

/* ---------------------------------------------------------------------
 * State transfer
 */

/* Keep node n out, or let it in again, after a round's negotiation. */
static int admit(struct lm_state *st, struct lm_node *n, bool in,
		 struct lm_evq *out)
{
	int rc = 0;

	if (!in) {
		if (n->member)
			rc = node_left(st, n, out);
		n->excluded = 1;
		return rc;
	}
	if (n->excluded) {
		n->excluded = 0;
		n->member = 1;
		rc = ev_push(out, LM_EV_NODE, n->id, 0, 0, NULL, 0, 0);
	}
	return rc;
}

/*
 * Every hello of the round is in: the version the cluster runs and who
 * speaks it (lm_state.h), from the hellos alone, so every member decides
 * the same at this point of the order.
 */
static int negotiate(struct lm_state *st, struct lm_evq *out)
{
	struct lm_proto_peer peers[LM_MAX_NODES];
	bool admitted[LM_MAX_NODES];
	uint64_t latest = 0;
	unsigned v;
	int rc;

	/* A node kept out may hold a copy of the latest table, but it is
	 * not running it: ranking it with the running members could keep
	 * out one of them in its place. */
	for (uint32_t i = 0; i < st->n_members; i++)
		if (!st->hellos[i].kept_out && st->hellos[i].version > latest)
			latest = st->hellos[i].version;
	for (uint32_t i = 0; i < st->n_members; i++) {
		const struct lm_hello *h = &st->hellos[i];

		peers[i] = (struct lm_proto_peer){
			.min = h->proto_min, .max = h->proto_max,
			.votes = h->votes,
			.latest = !h->kept_out && h->version == latest,
		};
	}
	v = lm_proto_negotiate(peers, st->n_members, admitted);
	rc = proto_set(st, (uint16_t)v, out);
	for (uint32_t i = 0; !rc && i < st->n_members; i++) {
		struct lm_node *n = node_get(st, st->members[i]);

		st->hellos[i].admitted = admitted[i];
		/* the name now, for the logs and a node kept out that
		 * never installs a table: the install sets the same */
		if (st->hellos[i].name[0])
			memcpy(n->name, st->hellos[i].name, LM_NAME_MAX);
		n->proto_min = st->hellos[i].proto_min;
		n->proto_max = st->hellos[i].proto_max;
		rc = admit(st, n, admitted[i], out);
		if (!rc && !admitted[i])
			rc = ev_push(out, LM_EV_EXCLUDED, n->id, 0, 0, NULL,
				     v, 0);
	}
	return rc;
}

static int do_hello(struct lm_state *st, uint32_t from,
		    const struct lm_c_sync_hello *h, struct lm_evq *out)
{
	int idx = member_index(st, from);
	struct lm_hello *e;
	uint32_t donor = 0;
	uint64_t best = 0;
	int rc;

	/* A hello for another membership is from an older round. */
	if (!st->syncing || idx < 0 || st->donor ||
	    h->n_members != st->n_members ||
	    memcmp(h->members, st->members, st->n_members * 4) != 0)
		return 0;
	e = &st->hellos[idx];
	if (e->got)
		return 0;
	e->got = 1;
	e->version = h->version;
	e->epoch = h->epoch;
	e->votes = h->votes;
	e->expected = h->expected_votes;
	memcpy(e->name, h->name, LM_NAME_MAX);
	e->name[LM_NAME_MAX - 1] = 0;
	e->proto_min = h->proto_min;
	e->proto_max = h->proto_max;
	e->kept_out = h->kept_out;
	for (uint32_t i = 0; i < st->n_members; i++)
		if (!st->hellos[i].got)
			return 0;
	rc = negotiate(st, out);
	for (uint32_t i = 0; !rc && i < st->n_members; i++) {
		if (!st->hellos[i].admitted)
			continue;
		/* members are sorted: ties go to the lowest id */
		if (!donor || st->hellos[i].version > best) {
			donor = st->members[i];
			best = st->hellos[i].version;
		}
	}
	if (rc)
		return rc;
	st->donor = donor;
	return ev_push(out, LM_EV_SYNC_DONOR, donor, 0, 0, NULL, 0, 0);
}

static int do_sync_data(struct lm_state *st, uint32_t from,
			const struct lm_c_sync_data *d)
{
	if (!st->syncing || !st->donor || from != st->donor ||
	    st->sync_failed || d->index != st->stage_chunks ||
	    d->len > LM_SYNC_CHUNK || (d->len && !d->data))
		return 0;
	if (st->stage_len + d->len > st->stage_cap) {
		size_t cap = st->stage_cap ? st->stage_cap * 2 : LM_SYNC_CHUNK;
		uint8_t *p;

		while (cap < st->stage_len + d->len)
			cap *= 2;
		p = realloc(st->stage, cap);
		if (!p)
			return -ENOMEM;
		st->stage = p;
		st->stage_cap = cap;
	}
	if (d->len)
		memcpy(st->stage + st->stage_len, d->data, d->len);
	st->stage_len += d->len;
	st->stage_chunks++;
	return 0;
}

/* Owner changes between the old and the new table, for the caches. */
static int install_owner_events(struct lm_state *st, struct lm_state *ns,
				struct lm_evq *out)
{
	struct lm_rsrc *r, *next;
	int rc = 0;

	FOR_EACH_RES(ns, r, next) {
		const struct lm_rsrc *o = res_find(st, &r->res);
		uint32_t was = o ? o->owner : 0;

		if (!rc && (was != r->owner || (o && o->epoch != r->epoch)))
			rc = ev_push(out, LM_EV_OWNER, r->owner, 0, 0, &r->res,
				     r->epoch, 0);
	}
	FOR_EACH_RES(st, r, next) {
		if (!rc && r->owner && !res_find(ns, &r->res))
			rc = ev_push(out, LM_EV_OWNER, 0, 0, 0, &r->res,
				     r->epoch, 0);
	}
	return rc;
}

/* Node names and votes from the hellos, states from the membership. */
static int install_nodes(struct lm_state *st, struct lm_state *ns)
{
	memcpy(st->nodes, ns->nodes, sizeof(st->nodes));
	st->n_nodes = ns->n_nodes;
	for (uint32_t i = 0; i < st->n_members; i++) {
		struct lm_node *n = node_add(st, st->members[i]);
		const struct lm_hello *h = &st->hellos[i];

		if (!n)
			return -ENOMEM;
		n->member = h->admitted;
		n->excluded = !h->admitted;
		n->proto_min = h->proto_min;
		n->proto_max = h->proto_max;
		n->votes = h->votes;
		n->expected = h->expected;
		if (h->name[0])
			memcpy(n->name, h->name, LM_NAME_MAX);
		if (h->epoch > st->epoch)
			st->epoch = h->epoch;
	}
	for (uint32_t i = 0; i < st->n_nodes; i++) {
		struct lm_node *n = &st->nodes[i];

		n->member = member_index(st, n->id) >= 0 && !n->excluded;
		if (!node_holds(st, n->id))
			n->fencing = 0;
		else if (!n->member)
			n->fencing = 1;
	}
	return 0;
}

/* A revoke asked before the transfer is asked again, so that an answer
 * lost with a departed view cannot stall the resource. */
static int install_revokes(struct lm_state *st, struct lm_evq *out)
{
	uint64_t n = st->n_resources;
	struct lm_rsrc **v;
	int rc = res_sorted(st, &v);

	for (uint64_t i = 0; !rc && i < n; i++) {
		struct lm_rsrc *r = v[i];
		const struct lm_node *o = node_get(st, r->owner);

		if (r->revoking && o && o->member && !o->fencing)
			rc = ev_push(out, LM_EV_REVOKE, r->owner, 0, 0,
				     &r->res, r->epoch, 0);
	}
	free(v);
	return rc;
}

static int sync_failed(struct lm_state *st, struct lm_evq *out)
{
	st->sync_failed = true;
	return ev_push(out, LM_EV_SYNC_FAILED, st->donor, 0, 0, NULL, 0, 0);
}

static int do_sync_done(struct lm_state *st, uint32_t from,
			const struct lm_c_sync_done *d, struct lm_evq *out)
{
	struct lm_state *ns;
	int rc;

	if (!st->syncing || !st->donor || from != st->donor ||
	    st->sync_failed)
		return 0;
	if (d->chunks != st->stage_chunks || d->total_len != st->stage_len ||
	    d->checksum != lm_checksum64(LM_CHECKSUM_SEED, st->stage,
					 st->stage_len))
		return sync_failed(st, out);
	rc = snap_decode(st->stage, st->stage_len, &ns);
	if (rc == -EBADMSG)
		return sync_failed(st, out);
	if (rc)
		return rc;
	rc = install_owner_events(st, ns, out);
	if (rc) {
		lm_state_free(ns);
		return rc;
	}
	/* Take the table: the new one replaces ours wholesale. */
	table_clear(st);
	st->buckets = ns->buckets;
	st->n_buckets = ns->n_buckets;
	st->n_resources = ns->n_resources;
	ns->buckets = NULL;
	ns->n_buckets = 0;
	ns->n_resources = 0;
	st->version = ns->version;
	st->epoch = ns->epoch;
	rc = install_nodes(st, ns);
	lm_state_free(ns);
	if (rc)
		return rc;
	sync_reset(st, false);
	/* A quorate install starts a newer lineage than any partition that
	 * was not part of it: update_ready() bumps the version below. */
	rc = ev_push(out, LM_EV_SYNC_INSTALLED, from, 0, 0, NULL, 0, 0);
	for (uint32_t i = 0; !rc && i < st->n_nodes; i++)
		rc = ev_push(out, LM_EV_NODE, st->nodes[i].id, 0, 0, NULL, 0,
			     0);
	if (!rc)
		rc = install_revokes(st, out);
	if (!rc)
		rc = update_ready(st, out);
	return rc;
}

/* ---------------------------------------------------------------------
 * Messages
 */

static int do_node_info(struct lm_state *st, uint32_t from,
			const struct lm_c_node_info *ni, struct lm_evq *out)
{
	struct lm_node *n = node_add(st, from);
	int idx = member_index(st, from);

	if (!n)
		return -ENOMEM;
	n->votes = ni->votes;
	n->expected = ni->expected_votes;
	st->dirty = true;
	/* Newer than the hello the install would take the figures from. */
	if (st->syncing && idx >= 0 && st->hellos[idx].got) {
		st->hellos[idx].votes = ni->votes;
		st->hellos[idx].expected = ni->expected_votes;
	}
	return update_ready(st, out);
}

/* A member's decision for the current ring replaces its earlier one;
 * one for another ring, or from a non-member, is stale and ignored. */
static int do_quorum(struct lm_state *st, uint32_t from,
		     const struct lm_quorum *q, struct lm_evq *out)
{
	uint32_t i;

	/*
	 * Only the ordered inputs since the last ring or membership change
	 * decide which decisions count, never the table's own node records:
	 * a node installing a transfer has stale ones, and decisions are not
	 * part of the transfer.  (A node kept out for its protocol version
	 * sends none: lockd_cpg.c holds them back.)
	 */
	if (!st->have_ring || q->ring.nodeid != st->ring.nodeid ||
	    q->ring.seq != st->ring.seq || member_index(st, from) < 0)
		return 0;
	for (i = 0; i < st->n_qd && st->qd_from[i] != from; i++)
		;
	if (i == st->n_qd) {
		if (st->n_qd == LM_MAX_NODES)
			return 0; /* cannot happen: one slot per member */
		st->n_qd++;
	}
	st->qd[i] = *q;
	st->qd_from[i] = from;
	st->q_last = *q;
	st->q_last_from = from;
	return update_ready(st, out);
}

/* The request id of a request message, for a not-ready reply. */
static bool request_id(const struct lm_cmsg *m, uint64_t *req_id,
		       const struct lm_res **res)
{
	*res = NULL;
	switch (m->type) {
	case LM_C_ACQUIRE:
		*req_id = m->u.acquire.req_id;
		*res = &m->u.acquire.res;
		return true;
	case LM_C_RELEASE:
		*req_id = m->u.release.req_id;
		*res = &m->u.release.res;
		return true;
	case LM_C_HANDOFF:
		*req_id = m->u.handoff.req_id;
		*res = &m->u.handoff.res;
		return true;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		*req_id = m->u.drain.req_id;
		return true;
	case LM_C_PLOCK:
		*req_id = m->u.plock.req_id;
		*res = &m->u.plock.res;
		return true;
	default:
		return false;
	}
}

static int apply_request(struct lm_state *st, uint32_t from,
			 const struct lm_cmsg *m, struct lm_evq *out)
{
	switch (m->type) {
	case LM_C_ACQUIRE:
		return do_acquire(st, from, &m->u.acquire, out);
	case LM_C_RELEASE:
		return do_release(st, from, &m->u.release, out);
	case LM_C_HANDOFF:
		return do_handoff(st, from, &m->u.handoff, out);
	case LM_C_DRAIN:
		return do_drain(st, from, true, &m->u.drain, out);
	case LM_C_RESUME:
		return do_drain(st, from, false, &m->u.drain, out);
	case LM_C_PLOCK:
		return do_plock(st, from, &m->u.plock, out);
	case LM_C_FENCE:
		return do_fence(st, m->u.fence.target, out);
	default:
		return 0;
	}
}

int lm_state_apply_msg(struct lm_state *st, uint32_t from,
		       const struct lm_cmsg *m, struct lm_evq *out)
{
	bool was_ready = st->ready;
	const struct lm_res *res;
	uint64_t req_id;
	int rc;

	st->dirty = false;
	switch (m->type) {
	case LM_C_SYNC_HELLO:
		return do_hello(st, from, &m->u.hello, out);
	case LM_C_SYNC_DATA:
		return do_sync_data(st, from, &m->u.sync_data);
	case LM_C_SYNC_DONE:
		return do_sync_done(st, from, &m->u.sync_done, out);
	case LM_C_NODE_INFO:
		rc = do_node_info(st, from, &m->u.node_info, out);
		break;
	case LM_C_HEARTBEAT:
		return 0;
	case LM_C_QUORUM:
		rc = do_quorum(st, from, &m->u.quorum, out);
		break;
	default:
		if (!st->ready) {
			/* A FENCE has no sender waiting: its fencer resends
			 * it once ready. */
			if (!request_id(m, &req_id, &res))
				return 0;
			return reply(out, from, req_id,
				     st->syncing ? LM_ERR_SYNCING :
						   LM_ERR_NOQUORUM,
				     res, 0);
		}
		rc = apply_request(st, from, m, out);
		break;
	}
	if (st->dirty && was_ready)
		st->version++;
	st->dirty = false;
	return rc;
}

/* ---------------------------------------------------------------------
 * Read-only views
 */

static void node_counts(const struct lm_state *st, uint32_t id,
			uint32_t *owned, uint32_t *locks)
{
	struct lm_rsrc *r, *next;

	*owned = 0;
	*locks = 0;
	FOR_EACH_RES(st, r, next) {
		if (r->owner == id)
			(*owned)++;
		for (int s = 0; r->x && s < 2; s++)
			for (uint32_t i = 0; i < r->x->held[s].n; i++)
				if (r->x->held[s].v[i].node == id)
					(*locks)++;
	}
}

static uint64_t count_locks(const struct lm_state *st)
{
	struct lm_rsrc *r, *next;
	uint64_t n = 0;

	FOR_EACH_RES(st, r, next)
		n += res_n_held(r);
	return n;
}

void lm_state_status(const struct lm_state *st, struct lm_status_info *out)
{
	memset(out, 0, sizeof(*out));
	out->quorate = is_quorate(st);
	out->ready = st->ready;
	out->syncing = st->syncing;
	out->donor = st->donor;
	out->ring = st->ring;
	out->quorum_from = st->q_last_from;
	if (st->q_last_from) {
		out->q = st->q_last;
		out->expected_votes = st->q_last.expected_votes;
		out->total_votes = st->q_last.total_votes;
	}
	out->n_members = st->n_members;
	memcpy(out->members, st->members, st->n_members * sizeof(uint32_t));
	out->version = st->version;
	out->epoch = st->epoch;
	out->n_resources = st->n_resources;
	out->n_locks = count_locks(st);
	out->proto_version = st->proto;
}

static void fill_node(const struct lm_state *st, const struct lm_node *n,
		      struct lm_node_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->id = n->id;
	memcpy(e->name, n->name, LM_NAME_MAX);
	e->state = node_state(n);
	e->member = n->member;
	e->draining = n->draining;
	e->votes = n->votes;
	node_counts(st, n->id, &e->n_owned, &e->n_locks);
	e->heartbeat_age_ms = -1;
	e->proto_min = n->proto_min;
	e->proto_max = n->proto_max;
	for (uint32_t i = 0; i < st->n_qd; i++)
		if (st->qd_from[i] == n->id)
			e->quorum_decision = st->qd[i].quorate ?
				LM_NQ_QUORATE : LM_NQ_NOT_QUORATE;
}

int lm_state_node(const struct lm_state *st, uint32_t id,
		  struct lm_node_entry *e)
{
	const struct lm_node *n = node_get(st, id);

	if (!n)
		return -ENOENT;
	fill_node(st, n, e);
	return 0;
}

int lm_state_node_by_name(const struct lm_state *st, const char *name,
			  uint32_t *id)
{
	for (uint32_t i = 0; i < st->n_nodes; i++) {
		if (strncmp(st->nodes[i].name, name, LM_NAME_MAX) == 0) {
			*id = st->nodes[i].id;
			return 0;
		}
	}
	return -ENOENT;
}

int lm_state_foreach_node(const struct lm_state *st,
			  int (*fn)(const struct lm_node_entry *, void *),
			  void *arg)
{
	struct lm_node_entry e;
	int rc;

	for (uint32_t i = 0; i < st->n_nodes; i++) {
		fill_node(st, &st->nodes[i], &e);
		rc = fn(&e, arg);
		if (rc)
			return rc;
	}
	return 0;
}

static void fill_owner(const struct lm_rsrc *r, struct lm_owner_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->res = r->res;
	e->owner = r->owner;
	e->epoch = r->epoch;
	e->n_waiters = r->x ? r->x->n_waiters : 0;
	e->handoff_target = r->handoff;
	e->revoking = r->revoking;
	e->age_ms = -1;
}

int lm_state_owner(const struct lm_state *st, const struct lm_res *res,
		   struct lm_owner_entry *e)
{
	const struct lm_rsrc *r = res_find(st, res);

	if (!r)
		return -ENOENT;
	fill_owner(r, e);
	return 0;
}

int lm_state_foreach_owner(const struct lm_state *st,
			   int (*fn)(const struct lm_owner_entry *, void *),
			   void *arg)
{
	uint64_t n = st->n_resources;
	struct lm_owner_entry e;
	struct lm_rsrc **v;
	int rc = res_sorted(st, &v);

	for (uint64_t i = 0; !rc && i < n; i++) {
		fill_owner(v[i], &e);
		rc = fn(&e, arg);
	}
	free(v);
	return rc;
}

static int res_locks(const struct lm_rsrc *r,
		     int (*fn)(const struct lm_lock_entry *, void *),
		     void *arg)
{
	struct lm_lock_entry e;
	int rc;

	for (int w = 0; r->x && w < 2; w++) {
		for (int s = 0; s < 2; s++) {
			const struct lm_lockv *lv =
				w ? &r->x->wait[s] : &r->x->held[s];

			for (uint32_t i = 0; i < lv->n; i++) {
				memset(&e, 0, sizeof(e));
				e.res = r->res;
				e.space = (uint8_t)s;
				e.type = lv->v[i].type;
				e.waiting = (uint8_t)w;
				e.node = lv->v[i].node;
				e.owner = lv->v[i].owner;
				e.pid = lv->v[i].pid;
				e.start = lv->v[i].start;
				e.end = lv->v[i].end;
				rc = fn(&e, arg);
				if (rc)
					return rc;
			}
		}
	}
	return 0;
}

int lm_state_foreach_lock(const struct lm_state *st, const struct lm_res *res,
			  int (*fn)(const struct lm_lock_entry *, void *),
			  void *arg)
{
	uint64_t n = st->n_resources;
	struct lm_rsrc **v;
	int rc;

	if (res) {
		const struct lm_rsrc *r = res_find(st, res);

		return r ? res_locks(r, fn, arg) : 0;
	}
	rc = res_sorted(st, &v);
	for (uint64_t i = 0; !rc && i < n; i++)
		rc = res_locks(v[i], fn, arg);
	free(v);
	return rc;
}

int lm_state_getlk(const struct lm_state *st, const struct lm_res *res,
		   uint8_t space, uint32_t node, uint64_t owner, uint8_t type,
		   uint64_t start, uint64_t end,
		   struct lm_lock_entry *conflict)
{
	const struct lm_rsrc *r = res_find(st, res);
	const struct lm_lockv *lv;

	if (!r || !r->x || space > LM_SPACE_FLOCK || type == LM_LK_UNLOCK)
		return 0;
	if (space == LM_SPACE_FLOCK) {
		start = 0;
		end = LM_OFFSET_MAX;
	}
	lv = &r->x->held[space];
	for (uint32_t i = 0; i < lv->n; i++) {
		const struct lm_lock *l = &lv->v[i];

		if (!lk_conflict(l, node, owner, type, start, end))
			continue;
		memset(conflict, 0, sizeof(*conflict));
		conflict->res = r->res;
		conflict->space = space;
		conflict->type = l->type;
		conflict->node = l->node;
		conflict->owner = l->owner;
		conflict->pid = l->pid;
		conflict->start = l->start;
		conflict->end = l->end;
		return 1;
	}
	return 0;
}

uint32_t lm_state_fencer(const struct lm_state *st)
{
	if (!st->ready)
		return 0;
	for (uint32_t i = 0; i < st->n_members; i++)
		if (node_get(st, st->members[i])->member)
			return st->members[i];
	return 0;
}

size_t lm_state_fence_pending(const struct lm_state *st, uint32_t *ids,
			      size_t max)
{
	size_t n = 0;

	for (uint32_t i = 0; i < st->n_nodes; i++) {
		if (!st->nodes[i].fencing)
			continue;
		if (n < max)
			ids[n] = st->nodes[i].id;
		n++;
	}
	return n;
}

/* ---------------------------------------------------------------------
 * Consistency check
 */

#define CHECK(cond, ...)                                    \
	do {                                                \
		if (!(cond)) {                              \
			snprintf(why, whylen, __VA_ARGS__); \
			return -EUCLEAN;                    \
		}                                           \
	} while (0)

static int check_locks(const struct lm_state *st, const struct lm_rsrc *r,
		       char *why, size_t whylen)
{
	for (int s = 0; s < 2; s++) {
		const struct lm_lockv *lv = &r->x->held[s];

		for (uint32_t i = 0; i < lv->n; i++) {
			const struct lm_lock *l = &lv->v[i];

			CHECK(l->type == LM_LK_READ || l->type == LM_LK_WRITE,
			      "file %llu: bad lock type %u",
			      (unsigned long long)r->res.fileid, l->type);
			CHECK(l->start <= l->end && node_get(st, l->node),
			      "file %llu: bad lock range or node",
			      (unsigned long long)r->res.fileid);
			CHECK(s == 0 || (!l->start && l->end == LM_OFFSET_MAX),
			      "file %llu: partial flock",
			      (unsigned long long)r->res.fileid);
			if (!i)
				continue;
			CHECK(lk_cmp(&lv->v[i - 1], l->node, l->owner,
				     l->start) < 0,
			      "file %llu: locks out of order",
			      (unsigned long long)r->res.fileid);
			CHECK(!same_owner(&lv->v[i - 1], l->node, l->owner) ||
				      lv->v[i - 1].end < l->start,
			      "file %llu: overlapping ranges of one owner",
			      (unsigned long long)r->res.fileid);
			for (uint32_t j = 0; j < i; j++)
				CHECK(!lk_conflict(&lv->v[j], l->node,
						   l->owner, l->type, l->start,
						   l->end),
				      "file %llu: conflicting locks held",
				      (unsigned long long)r->res.fileid);
		}
	}
	return 0;
}

static int check_res(const struct lm_state *st, const struct lm_rsrc *r,
		     char *why, size_t whylen)
{
	unsigned long long f = r->res.fileid;

	CHECK(r->owner || r->handoff || r->x, "file %llu: empty entry", f);
	CHECK(!r->owner || node_get(st, r->owner),
	      "file %llu: unknown owner %u", f, r->owner);
	CHECK(!r->handoff || node_get(st, r->handoff),
	      "file %llu: unknown hand-off target", f);
	CHECK(r->epoch <= st->epoch, "file %llu: epoch ahead of table", f);
	CHECK(!r->revoking || r->owner, "file %llu: revoking but free", f);
	CHECK(!r->owner || r->epoch, "file %llu: owned at epoch 0", f);
	if (!r->x)
		return 0;
	CHECK(!rx_empty(r->x), "file %llu: empty extension", f);
	for (uint32_t i = 0; i < r->x->n_waiters; i++) {
		uint32_t w = r->x->waiters[i].node;

		CHECK(w != r->owner, "file %llu: owner %u also waits", f, w);
		CHECK(node_get(st, w) && node_get(st, w)->member,
		      "file %llu: waiter %u not a member", f, w);
		for (uint32_t j = 0; j < i; j++)
			CHECK(r->x->waiters[j].node != w,
			      "file %llu: waiter %u twice", f, w);
	}
	for (int s = 0; s < 2; s++)
		for (uint32_t i = 0; i < r->x->wait[s].n; i++)
			CHECK(node_get(st, r->x->wait[s].v[i].node) &&
				      node_get(st, r->x->wait[s].v[i].node)
					      ->member,
			      "file %llu: lock waiter not a member", f);
	return check_locks(st, r, why, whylen);
}

static int check_nodes(const struct lm_state *st, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < st->n_nodes; i++) {
		const struct lm_node *n = &st->nodes[i];

		CHECK(n->id && (!i || st->nodes[i - 1].id < n->id),
		      "nodes out of order at %u", i);
		CHECK(!!n->member == (member_index(st, n->id) >= 0 &&
				      !n->excluded),
		      "node %u: member flag wrong", n->id);
		CHECK(!n->excluded || member_index(st, n->id) >= 0,
		      "node %u: kept out but not in the membership", n->id);
		CHECK(!n->fencing || node_holds(st, n->id),
		      "node %u: fencing but holds nothing", n->id);
	}
	for (uint32_t i = 0; i < st->n_members; i++)
		CHECK(node_get(st, st->members[i]) &&
			      (!i || st->members[i - 1] < st->members[i]),
		      "members unknown or out of order");
	return 0;
}

int lm_state_check(const struct lm_state *st, char *why, size_t whylen)
{
	uint64_t n = 0;
	int rc;

	for (uint64_t b = 0; b < st->n_buckets; b++) {
		for (const struct lm_rsrc *r = st->buckets[b]; r; r = r->next) {
			CHECK((res_hash(&r->res) & (st->n_buckets - 1)) == b,
			      "file %llu: in the wrong bucket",
			      (unsigned long long)r->res.fileid);
			rc = check_res(st, r, why, whylen);
			if (rc)
				return rc;
			n++;
		}
	}
	CHECK(n == st->n_resources, "resource count %llu, table says %llu",
	      (unsigned long long)n, (unsigned long long)st->n_resources);
	CHECK(!st->ready || (!st->syncing && is_quorate(st)),
	      "ready while syncing or not quorate");
	return check_nodes(st, why, whylen);
}
