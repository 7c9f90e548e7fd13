// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_own.c - EX ownership in the replicated lock table (lm_state.c).
 *
 * Acquire, release, hand-off, drain and resume, and the fence that ends
 * what a departed node held.  lm_settle() is the one place that gives a
 * free resource to someone and asks an owner to give one up; every change
 * of an owner, a waiter or a node's eligibility ends in it.  A grant only
 * ever takes a free resource and a new epoch (I1).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"
#include "lm_state_i.h"

/* ---------------------------------------------------------------------
 * EX ownership
 */

/* Eligible for a grant: an up member that is not draining. */
static bool node_eligible(const struct lm_state *st, uint32_t id)
{
	const struct lm_node *n = lm_nodes_get(st, id);

	return n && n->member && !n->fencing && !n->draining;
}

static bool node_fencing(const struct lm_state *st, uint32_t id)
{
	const struct lm_node *n = lm_nodes_get(st, id);

	return n && n->fencing;
}

int lm_waiter_find(const struct lm_rsrc *r, uint32_t node)
{
	if (!r->x)
		return -1;
	for (uint32_t i = 0; i < r->x->n_waiters; i++)
		if (r->x->waiters[i].node == node)
			return (int)i;
	return -1;
}

void lm_waiter_del(struct lm_rsrc *r, uint32_t i)
{
	struct lm_rx *x = r->x;

	memmove(&x->waiters[i], &x->waiters[i + 1],
		(x->n_waiters - i - 1) * sizeof(x->waiters[0]));
	x->n_waiters--;
}

static int waiter_add(struct lm_rsrc *r, uint32_t node, uint64_t req_id)
{
	struct lm_rx *x = lm_rx_get(r);

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
	int i = lm_waiter_find(r, node);
	int rc;

	if (i >= 0) {
		if (!req_id)
			req_id = r->x->waiters[i].req_id;
		lm_waiter_del(r, (uint32_t)i);
	}
	r->owner = node;
	r->epoch = ++st->epoch;
	r->revoking = 0;
	if (r->handoff == node)
		r->handoff = 0;
	st->dirty = true;
	rc = lm_ev_push(out, LM_EV_GRANTED, node, req_id, 0, &r->res, r->epoch,
			0);
	if (!rc)
		rc = lm_ev_push(out, LM_EV_OWNER, node, 0, 0, &r->res, r->epoch,
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
	return lm_ev_push(out, LM_EV_REVOKE, r->owner, 0, 0, &r->res, r->epoch,
			  0);
}

/*
 * Bring r to rest after any change: a free resource goes to the hand-off
 * target if eligible, else to the first eligible waiter; an owned one with
 * someone eligible waiting (or a hand-off target) has its owner asked to
 * revoke.  Then r is deleted if empty.
 */
int lm_settle(struct lm_state *st, struct lm_rsrc *r, struct lm_evq *out)
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
	lm_res_gc(st, r);
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
	rc = lm_ev_push(out, lost ? LM_EV_LOST : LM_EV_RELEASED, old, 0, 0,
			&r->res, r->epoch, 0);
	if (!rc)
		rc = lm_ev_push(out, LM_EV_OWNER, 0, 0, 0, &r->res, r->epoch,
				0);
	return rc;
}

/*
 * Why node id may not take part in a request, or 0: unknown, not a
 * member, awaiting a fence, or (when draining counts) draining.
 */
static int32_t node_status(const struct lm_state *st, uint32_t id,
			   bool draining_counts)
{
	const struct lm_node *n = lm_nodes_get(st, id);

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
int32_t lm_requester_status(const struct lm_state *st, uint32_t from)
{
	return node_status(st, from, false);
}

int lm_do_acquire(struct lm_state *st, uint32_t from,
		  const struct lm_c_acquire *a, struct lm_evq *out)
{
	const struct lm_node *n = lm_nodes_get(st, from);
	int32_t status = lm_requester_status(st, from);
	struct lm_rsrc *r;
	int i, rc;

	if (!status && n->draining)
		status = LM_ERR_DRAINING;
	if (status)
		return lm_reply(out, from, a->req_id, status, &a->res, 0);
	rc = lm_res_get(st, &a->res, &r);
	if (rc)
		return rc;
	if (r->owner == from)
		return lm_reply(out, from, a->req_id, 0, &r->res, r->epoch);
	if (!r->owner)
		return grant(st, r, from, a->req_id, out);
	i = lm_waiter_find(r, from);
	if (i >= 0)
		r->x->waiters[i].req_id = a->req_id; /* answer the latest */
	else
		rc = waiter_add(r, from, a->req_id);
	if (!rc)
		rc = lm_ev_push(out, LM_EV_QUEUED, from, a->req_id, 0, &r->res,
				r->epoch, 0);
	if (!rc)
		rc = revoke(st, r, out);
	return rc;
}

int lm_do_release(struct lm_state *st, uint32_t from,
		  const struct lm_c_release *m, struct lm_evq *out)
{
	struct lm_rsrc *r = lm_res_find(st, &m->res);
	int32_t status = lm_requester_status(st, from);
	int rc;

	/* A fencing node keeps its holdings until the fence (I3). */
	if (!status && (!r || r->owner != from || r->epoch != m->epoch))
		status = LM_ERR_NOTOWNER;
	if (status)
		return lm_reply(out, from, m->req_id, status, &m->res, 0);
	rc = unown(st, r, false, out);
	if (!rc)
		rc = lm_reply(out, from, m->req_id, 0, &m->res, m->epoch);
	if (!rc)
		rc = lm_settle(st, r, out);
	return rc;
}

/* Errors for a node a hand-off names as the new owner. */
static int32_t target_status(const struct lm_state *st, uint32_t target)
{
	return node_status(st, target, true);
}

int lm_do_handoff(struct lm_state *st, uint32_t from,
		  const struct lm_c_handoff *m, struct lm_evq *out)
{
	int32_t status = target_status(st, m->target);
	struct lm_rsrc *r;
	int rc;

	if (status)
		return lm_reply(out, from, m->req_id, status, &m->res, 0);
	rc = lm_res_get(st, &m->res, &r);
	if (rc)
		return rc;
	if (r->owner != m->target) {
		r->handoff = m->target;
		st->dirty = true;
		if (r->owner)
			rc = revoke(st, r, out);
		else
			rc = lm_settle(st, r, out);
	}
	if (!rc)
		rc = lm_reply(out, from, m->req_id, 0, &m->res, r->epoch);
	return rc;
}

int lm_do_drain(struct lm_state *st, uint32_t from, bool drain,
		const struct lm_c_drain *m, struct lm_evq *out)
{
	struct lm_node *t = lm_nodes_get(st, m->target);
	struct lm_rsrc **v;
	uint64_t n = st->n_resources;
	int rc;

	if (!t)
		return lm_reply(out, from, m->req_id, LM_ERR_NONODE, NULL, 0);
	rc = lm_res_sorted(st, &v);
	if (rc)
		return rc;
	t->draining = drain;
	st->dirty = true;
	rc = lm_ev_push(out, LM_EV_NODE, t->id, 0, 0, NULL, 0, 0);
	/* Draining revokes what T owns; resuming may make T's queued
	 * acquires of a free resource grantable again. */
	for (uint64_t i = 0; !rc && i < n; i++) {
		if (drain && v[i]->owner == t->id)
			rc = revoke(st, v[i], out);
		else if (!drain && lm_waiter_find(v[i], t->id) >= 0)
			rc = lm_settle(st, v[i], out);
	}
	free(v);
	if (!rc)
		rc = lm_reply(out, from, m->req_id, 0, NULL, 0);
	return rc;
}

/* ---------------------------------------------------------------------
 * Fencing
 */

bool lm_holds(const struct lm_state *st, uint32_t id)
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
		lm_drop_held(st, r, s, target, 0, true);
		rc = lm_drop_waits(r, s, target, 0, true, 0, out);
	}
	if (!rc && r->x) {
		int i = lm_waiter_find(r, target);

		if (i >= 0)
			lm_waiter_del(r, (uint32_t)i);
	}
	for (int s = 0; !rc && r->x && s < 2; s++)
		rc = lm_wake(st, r, s, out);
	if (!rc)
		rc = lm_settle(st, r, out);
	return rc;
}

int lm_do_fence(struct lm_state *st, uint32_t target, struct lm_evq *out)
{
	struct lm_node *t = lm_nodes_get(st, target);
	uint64_t n = st->n_resources;
	struct lm_rsrc **v;
	int rc;

	if (!t || !t->fencing)
		return 0;
	rc = lm_res_sorted(st, &v);
	if (rc)
		return rc;
	/* Clear the flag first: T (if a member) is eligible again. */
	t->fencing = 0;
	st->dirty = true;
	for (uint64_t i = 0; !rc && i < n; i++)
		rc = fence_res(st, v[i], target, out);
	free(v);
	if (!rc)
		rc = lm_ev_push(out, LM_EV_FENCED, target, 0, 0, NULL, 0, 0);
	if (!rc)
		rc = lm_ev_push(out, LM_EV_NODE, target, 0, 0, NULL, 0, 0);
	return rc;
}
