// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_table.c - the containers of the replicated lock table (lm_state.c).
 *
 * The event queue a step fills, the nodes (a small array sorted by id) and
 * the resources (a chained hash table, each entry with a lazily allocated
 * extension for waiters and locks).  Nothing here decides anything: these
 * store, find and walk; lm_own.c, lm_plock.c and lm_state.c decide.
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

int lm_ev_push(struct lm_evq *q, enum lm_ev_type type, uint32_t node,
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

int lm_reply(struct lm_evq *q, uint32_t node, uint64_t req_id,
	     int32_t status, const struct lm_res *res, uint64_t epoch)
{
	return lm_ev_push(q, LM_EV_REPLY, node, req_id, status, res, epoch, 0);
}

/* ---------------------------------------------------------------------
 * Nodes: a small array sorted by id
 */

struct lm_node *lm_nodes_get(const struct lm_state *st, uint32_t id)
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
struct lm_node *lm_nodes_add(struct lm_state *st, uint32_t id)
{
	struct lm_node *n = lm_nodes_get(st, id);
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

int lm_member_index(const struct lm_state *st, uint32_t id)
{
	for (uint32_t i = 0; i < st->n_members; i++)
		if (st->members[i] == id)
			return (int)i;
	return -1;
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

uint64_t lm_res_hash(const struct lm_res *res)
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

int lm_res_cmp(const struct lm_res *a, const struct lm_res *b)
{
	int c = memcmp(a->volume, b->volume, LM_VOLUME_LEN);

	if (c)
		return c;
	return a->fileid < b->fileid ? -1 : a->fileid > b->fileid;
}

struct lm_rsrc *lm_res_find(const struct lm_state *st,
			    const struct lm_res *res)
{
	struct lm_rsrc *r;

	if (!st->n_buckets)
		return NULL;
	r = st->buckets[lm_res_hash(res) & (st->n_buckets - 1)];
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
			uint64_t h = lm_res_hash(&r->res) & (nb - 1);

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

int lm_res_insert(struct lm_state *st, struct lm_rsrc *r)
{
	uint64_t h;

	if (st->n_resources >= st->n_buckets) {
		int rc = table_grow(st);

		if (rc)
			return rc;
	}
	h = lm_res_hash(&r->res) & (st->n_buckets - 1);
	r->next = st->buckets[h];
	st->buckets[h] = r;
	st->n_resources++;
	return 0;
}

int lm_res_get(struct lm_state *st, const struct lm_res *res,
	       struct lm_rsrc **out)
{
	struct lm_rsrc *r = lm_res_find(st, res);
	int rc;

	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return -ENOMEM;
		r->res = *res;
		rc = lm_res_insert(st, r);
		if (rc) {
			free(r);
			return rc;
		}
	}
	*out = r;
	return 0;
}

void lm_rx_free(struct lm_rx *x)
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

bool lm_rx_empty(const struct lm_rx *x)
{
	return !x->n_waiters && !x->held[0].n && !x->held[1].n &&
	       !x->wait[0].n && !x->wait[1].n;
}

struct lm_rx *lm_rx_get(struct lm_rsrc *r)
{
	if (!r->x)
		r->x = calloc(1, sizeof(*r->x));
	return r->x;
}

uint32_t lm_res_n_held(const struct lm_rsrc *r)
{
	return r->x ? r->x->held[0].n + r->x->held[1].n : 0;
}

/* Free the extension when empty and the resource when nothing is left:
 * the table holds only resources with an owner, waiter, lock or hand-off. */
void lm_res_gc(struct lm_state *st, struct lm_rsrc *r)
{
	struct lm_rsrc **pp;

	if (r->x && lm_rx_empty(r->x)) {
		lm_rx_free(r->x);
		r->x = NULL;
	}
	if (r->owner || r->handoff || r->x)
		return;
	pp = &st->buckets[lm_res_hash(&r->res) & (st->n_buckets - 1)];
	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	st->n_resources--;
	free(r);
}

void lm_table_clear(struct lm_state *st)
{
	for (uint64_t i = 0; i < st->n_buckets; i++) {
		struct lm_rsrc *r = st->buckets[i], *next;

		for (; r; r = next) {
			next = r->next;
			lm_rx_free(r->x);
			free(r);
		}
	}
	free(st->buckets);
	st->buckets = NULL;
	st->n_buckets = 0;
	st->n_resources = 0;
}

static int res_key_cmp(const void *a, const void *b)
{
	const struct lm_rsrc *ra = *(const struct lm_rsrc *const *)a;
	const struct lm_rsrc *rb = *(const struct lm_rsrc *const *)b;

	return lm_res_cmp(&ra->res, &rb->res);
}

/*
 * All resources sorted by key, in a malloc'd array (NULL when empty).
 * Whatever touches several resources walks them in this order: grants
 * take epochs from one counter, so hash-chain order (which depends on
 * each node's insertion history) would give nodes different epochs.
 */
int lm_res_sorted(const struct lm_state *st, struct lm_rsrc ***out)
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
