// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_state.c - the replicated lock table of csvfs-lockd (see lm_state.h).
 *
 * A pure state machine: membership changes and decoded cluster messages
 * in, events out.  Every decision depends only on the table and the
 * input, so every node that applies the same ordered inputs reaches the
 * same table.  The layout is described in lm_state_i.h.
 *
 * This file holds the life cycle, readiness (corosync's quorum decisions),
 * membership changes and the protocol version they leave in force, and
 * the dispatch of cluster messages.  The rest of the table, joined by the
 * lm_ helpers declared in lm_state_i.h:
 *
 *	lm_table.c  the event queue, the nodes, the resource hash table
 *	lm_own.c    EX ownership: acquire, release, hand-off, drain, fence
 *	lm_plock.c  POSIX, OFD and flock locks
 *	lm_snap.c   the snapshot codec
 *	lm_sync.c   the state transfer
 *	lm_views.c  read-only queries and lm_state_check()
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"
#include "lm_state_i.h"

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
	lm_table_clear(st);
	free(st->stage);
	free(st);
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
bool lm_is_quorate(const struct lm_state *st)
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
	int rc = lm_res_sorted(st, &v);

	for (uint64_t i = 0; !rc && i < n; i++) {
		for (int s = 0; !rc && v[i]->x && s < 2; s++)
			rc = lm_wake(st, v[i], s, out);
		if (!rc)
			rc = lm_settle(st, v[i], out);
	}
	free(v);
	return rc;
}

int lm_update_ready(struct lm_state *st, struct lm_evq *out)
{
	bool ready = !st->syncing && lm_is_quorate(st);
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
	rc = lm_ev_push(out, ready ? LM_EV_READY : LM_EV_NOT_READY, 0, 0, 0,
			NULL, 0, 0);
	if (!rc && ready)
		rc = settle_all(st, out);
	return rc;
}

/* ---------------------------------------------------------------------
 * Membership
 */

void lm_sync_reset(struct lm_state *st, bool syncing)
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
int lm_member_left(struct lm_state *st, struct lm_node *n,
		   struct lm_evq *out)
{
	struct lm_rsrc *r, *next;

	n->member = 0;
	n->excluded = 0;
	FOR_EACH_RES(st, r, next) {
		int i = lm_waiter_find(r, n->id);

		if (i >= 0)
			lm_waiter_del(r, (uint32_t)i);
		for (int s = 0; r->x && s < 2; s++)
			lm_drop_waits(r, s, n->id, 0, true, 0, out);
		lm_res_gc(st, r);
	}
	if (lm_holds(st, n->id))
		n->fencing = 1;
	return lm_ev_push(out, LM_EV_NODE, n->id, 0, 0, NULL, 0, 0);
}

int lm_set_proto(struct lm_state *st, uint16_t v, struct lm_evq *out)
{
	uint16_t was = st->proto;

	if (v == was)
		return 0;
	st->proto = v;
	return lm_ev_push(out, LM_EV_PROTO, 0, 0, 0, NULL, v, was);
}

/* Leaves only: the remaining members all spoke the version in force, so
 * the highest they all speak is the same or higher. */
static int proto_after_leaves(struct lm_state *st, struct lm_evq *out)
{
	uint16_t v = 0;

	for (uint32_t i = 0; i < st->n_members; i++) {
		const struct lm_node *n = lm_nodes_get(st, st->members[i]);

		if (n->member && n->proto_max && (!v || n->proto_max < v))
			v = n->proto_max;
	}
	return v ? lm_set_proto(st, v, out) : 0;
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
		if (!lm_nodes_add(st, cc->members[i]))
			return -ENOMEM;
	memcpy(st->members, cc->members, cc->n_members * sizeof(uint32_t));
	st->n_members = (uint32_t)cc->n_members;
	qsort(st->members, st->n_members, sizeof(uint32_t), u32_cmp);

	/* Derive leaves and joins from the member lists themselves. */
	for (uint32_t i = 0; !rc && i < n_old; i++) {
		if (lm_member_index(st, old[i]) < 0) {
			leaves = true;
			rc = lm_member_left(st, lm_nodes_get(st, old[i]), out);
		}
	}
	for (uint32_t i = 0; !rc && i < st->n_members; i++) {
		struct lm_node *n = lm_nodes_get(st, st->members[i]);

		/* One kept out: a round again, it may fit now. */
		if (n->excluded) {
			joins = true;
			continue;
		}
		if (!n->member) {
			joins = true;
			n->member = 1;
			rc = lm_ev_push(out, LM_EV_NODE, n->id, 0, 0, NULL, 0,
					0);
		}
	}
	if (rc)
		return rc;
	/* Joins start a transfer; any change during one restarts it. */
	if (joins || st->syncing)
		lm_sync_reset(st, true);
	if (!st->syncing && leaves)
		rc = proto_after_leaves(st, out);
	if (rc)
		return rc;
	/* Whichever of the ring change and this confchg corosync delivers
	 * first, no decision made before both counts. */
	decisions_clear(st);
	return lm_update_ready(st, out);
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
	return lm_update_ready(st, out);
}

/* ---------------------------------------------------------------------
 * Messages
 */

static int do_node_info(struct lm_state *st, uint32_t from,
			const struct lm_c_node_info *ni, struct lm_evq *out)
{
	struct lm_node *n = lm_nodes_add(st, from);
	int idx = lm_member_index(st, from);

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
	return lm_update_ready(st, out);
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
	    q->ring.seq != st->ring.seq || lm_member_index(st, from) < 0)
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
	return lm_update_ready(st, out);
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
		return lm_do_acquire(st, from, &m->u.acquire, out);
	case LM_C_RELEASE:
		return lm_do_release(st, from, &m->u.release, out);
	case LM_C_HANDOFF:
		return lm_do_handoff(st, from, &m->u.handoff, out);
	case LM_C_DRAIN:
		return lm_do_drain(st, from, true, &m->u.drain, out);
	case LM_C_RESUME:
		return lm_do_drain(st, from, false, &m->u.drain, out);
	case LM_C_PLOCK:
		return lm_do_plock(st, from, &m->u.plock, out);
	case LM_C_FENCE:
		return lm_do_fence(st, m->u.fence.target, out);
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
		return lm_do_hello(st, from, &m->u.hello, out);
	case LM_C_SYNC_DATA:
		return lm_do_sync_data(st, from, &m->u.sync_data);
	case LM_C_SYNC_DONE:
		return lm_do_sync_done(st, from, &m->u.sync_done, out);
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
			return lm_reply(out, from, req_id,
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
