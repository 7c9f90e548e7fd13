// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_views.c - read-only views of the replicated lock table.
 *
 * What lockd answers to csvfs-admin and its clients (status, nodes,
 * owners, locks, F_GETLK, the fencer and the fences pending), and
 * lm_state_check(), the internal consistency check that the unit tests
 * and the simulator run after every step.  Nothing here changes the table.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"
#include "lm_state_i.h"

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
		n += lm_res_n_held(r);
	return n;
}

void lm_state_status(const struct lm_state *st, struct lm_status_info *out)
{
	memset(out, 0, sizeof(*out));
	out->quorate = lm_is_quorate(st);
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

static uint8_t node_state(const struct lm_node *n)
{
	if (n->excluded)
		return LM_NODE_INCOMPATIBLE;
	if (n->fencing)
		return LM_NODE_FENCING;
	return n->member ? LM_NODE_UP : LM_NODE_DOWN;
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
	const struct lm_node *n = lm_nodes_get(st, id);

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
	const struct lm_rsrc *r = lm_res_find(st, res);

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
	int rc = lm_res_sorted(st, &v);

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
		const struct lm_rsrc *r = lm_res_find(st, res);

		return r ? res_locks(r, fn, arg) : 0;
	}
	rc = lm_res_sorted(st, &v);
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
	const struct lm_rsrc *r = lm_res_find(st, res);
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

		if (!lm_lk_conflict(l, node, owner, type, start, end))
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
		if (lm_nodes_get(st, st->members[i])->member)
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
			CHECK(l->start <= l->end && lm_nodes_get(st, l->node),
			      "file %llu: bad lock range or node",
			      (unsigned long long)r->res.fileid);
			CHECK(s == 0 || (!l->start && l->end == LM_OFFSET_MAX),
			      "file %llu: partial flock",
			      (unsigned long long)r->res.fileid);
			if (!i)
				continue;
			CHECK(lm_lk_cmp(&lv->v[i - 1], l->node, l->owner,
					l->start) < 0,
			      "file %llu: locks out of order",
			      (unsigned long long)r->res.fileid);
			CHECK(!lm_same_owner(&lv->v[i - 1], l->node,
					      l->owner) ||
				      lv->v[i - 1].end < l->start,
			      "file %llu: overlapping ranges of one owner",
			      (unsigned long long)r->res.fileid);
			for (uint32_t j = 0; j < i; j++)
				CHECK(!lm_lk_conflict(&lv->v[j], l->node,
						      l->owner, l->type,
						      l->start, l->end),
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
	CHECK(!r->owner || lm_nodes_get(st, r->owner),
	      "file %llu: unknown owner %u", f, r->owner);
	CHECK(!r->handoff || lm_nodes_get(st, r->handoff),
	      "file %llu: unknown hand-off target", f);
	CHECK(r->epoch <= st->epoch, "file %llu: epoch ahead of table", f);
	CHECK(!r->revoking || r->owner, "file %llu: revoking but free", f);
	CHECK(!r->owner || r->epoch, "file %llu: owned at epoch 0", f);
	if (!r->x)
		return 0;
	CHECK(!lm_rx_empty(r->x), "file %llu: empty extension", f);
	for (uint32_t i = 0; i < r->x->n_waiters; i++) {
		uint32_t w = r->x->waiters[i].node;

		CHECK(w != r->owner, "file %llu: owner %u also waits", f, w);
		CHECK(lm_nodes_get(st, w) && lm_nodes_get(st, w)->member,
		      "file %llu: waiter %u not a member", f, w);
		for (uint32_t j = 0; j < i; j++)
			CHECK(r->x->waiters[j].node != w,
			      "file %llu: waiter %u twice", f, w);
	}
	for (int s = 0; s < 2; s++)
		for (uint32_t i = 0; i < r->x->wait[s].n; i++)
			CHECK(lm_nodes_get(st, r->x->wait[s].v[i].node) &&
				      lm_nodes_get(st, r->x->wait[s].v[i].node)
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
		CHECK(!!n->member == (lm_member_index(st, n->id) >= 0 &&
				      !n->excluded),
		      "node %u: member flag wrong", n->id);
		CHECK(!n->excluded || lm_member_index(st, n->id) >= 0,
		      "node %u: kept out but not in the membership", n->id);
		CHECK(!n->fencing || lm_holds(st, n->id),
		      "node %u: fencing but holds nothing", n->id);
	}
	for (uint32_t i = 0; i < st->n_members; i++)
		CHECK(lm_nodes_get(st, st->members[i]) &&
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
			CHECK((lm_res_hash(&r->res) & (st->n_buckets - 1)) == b,
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
	CHECK(!st->ready || (!st->syncing && lm_is_quorate(st)),
	      "ready while syncing or not quorate");
	return check_nodes(st, why, whylen);
}
