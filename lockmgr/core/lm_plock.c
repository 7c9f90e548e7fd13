// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_plock.c - POSIX, OFD and flock locks in the replicated lock table.
 *
 * Per resource and lock space, the held ranges (sorted by node, owner and
 * start; one owner's ranges never overlap) and the queued SETW waits in
 * FIFO order.  A flock lock is a whole-file range in a space of its own.
 * The owner is the client's: a pid's POSIX locks, an open file's OFD or
 * flock locks.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"
#include "lm_state_i.h"

/* ---------------------------------------------------------------------
 * POSIX and flock locks
 */

bool lm_same_owner(const struct lm_lock *l, uint32_t node, uint64_t owner)
{
	return l->node == node && l->owner == owner;
}

bool lm_lk_conflict(const struct lm_lock *l, uint32_t node,
		    uint64_t owner, uint8_t type, uint64_t start,
		    uint64_t end)
{
	if (lm_same_owner(l, node, owner))
		return false;
	if (l->end < start || l->start > end)
		return false;
	return l->type == LM_LK_WRITE || type == LM_LK_WRITE;
}

/* Order of held locks: (node, owner, start). */
int lm_lk_cmp(const struct lm_lock *a, uint32_t node, uint64_t owner,
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

int lm_lv_insert_at(struct lm_lockv *lv, uint32_t i,
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

		if (!lm_same_owner(l, node, owner) || l->end < start ||
		    l->start > end) {
			i++;
			continue;
		}
		if (l->start < start && l->end > end) {
			struct lm_lock tail = *l;

			tail.start = end + 1;
			l->end = start - 1;
			return lm_lv_insert_at(lv, i + 1, &tail);
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

		if (lm_same_owner(o, l.node, l.owner) && o->type == l.type &&
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
	for (i = 0; i < lv->n && lm_lk_cmp(&lv->v[i], l.node, l.owner,
					   l.start) < 0; i++)
		;
	return lm_lv_insert_at(lv, i, &l);
}

static bool held_conflict(const struct lm_lockv *lv, const struct lm_lock *l)
{
	for (uint32_t i = 0; i < lv->n; i++)
		if (lm_lk_conflict(&lv->v[i], l->node, l->owner, l->type,
				   l->start, l->end))
			return true;
	return false;
}

/* A queued wait blocks only later waits that conflict with it. */
static bool wait_conflict(const struct lm_lockv *wv, uint32_t upto,
			  const struct lm_lock *l)
{
	for (uint32_t i = 0; i < upto && i < wv->n; i++)
		if (lm_lk_conflict(&wv->v[i], l->node, l->owner, l->type,
				   l->start, l->end))
			return true;
	return false;
}

/* Grant every queued wait that no longer conflicts, in FIFO order. */
int lm_wake(struct lm_state *st, struct lm_rsrc *r, int space,
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
		rc = lm_ev_push(out, LM_EV_PLOCK_GRANTED, w.node, w.req_id, 0,
				&r->res, 0, w.owner);
		if (rc)
			return rc;
	}
	return 0;
}

/* Drop the queued waits of (node, owner) (all owners of node when
 * all_owners), answering them with status unless status is 0. */
int lm_drop_waits(struct lm_rsrc *r, int space, uint32_t node,
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
			rc = lm_reply(out, w.node, w.req_id, status, &r->res,
				      0);
	}
	return rc;
}

void lm_drop_held(struct lm_state *st, struct lm_rsrc *r, int space,
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
	int32_t status = lm_requester_status(st, from);

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
			rc = lm_reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = lm_wake(st, r, s, out);
		return rc;
	}
	if (p->op == LM_PL_SET)
		return lm_reply(out, from, p->req_id, EAGAIN, &p->res, 0);
	/* One queued wait per owner: a new SETW replaces an older one. */
	rc = lm_drop_waits(r, s, from, p->owner, false, LM_ERR_CANCELED, out);
	if (!rc)
		rc = lm_lv_insert_at(&x->wait[s], x->wait[s].n, l);
	if (!rc)
		rc = lm_ev_push(out, LM_EV_QUEUED, from, p->req_id, 0, &p->res,
				0, p->owner);
	return rc;
}

int lm_do_plock(struct lm_state *st, uint32_t from,
		const struct lm_c_plock *p, struct lm_evq *out)
{
	int32_t status = plock_validate(st, from, p);
	struct lm_lock l = { 0 };
	struct lm_rsrc *r;
	int s = p->space;
	int rc;

	if (status)
		return lm_reply(out, from, p->req_id, status, &p->res, 0);
	rc = lm_res_get(st, &p->res, &r);
	if (rc)
		return rc;
	if (!lm_rx_get(r)) {
		lm_res_gc(st, r);
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
			rc = lm_reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = lm_wake(st, r, s, out);
		break;
	case LM_PL_CANCEL:
		rc = lm_drop_waits(r, s, from, p->owner, false, LM_ERR_CANCELED,
				   out);
		if (!rc)
			rc = lm_reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = lm_wake(st, r, s, out);
		break;
	default: /* LM_PL_RELEASE_OWNER */
		lm_drop_held(st, r, s, from, p->owner, false);
		rc = lm_drop_waits(r, s, from, p->owner, false, LM_ERR_CANCELED,
				   out);
		if (!rc)
			rc = lm_reply(out, from, p->req_id, 0, &p->res, 0);
		if (!rc)
			rc = lm_wake(st, r, s, out);
		break;
	}
	lm_res_gc(st, r);
	return rc;
}
