// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_sync.c - the state transfer of the replicated lock table.
 *
 * A round after a join: every member multicasts a hello; from the hellos
 * alone all agree on the protocol version, who is admitted and the donor
 * (the highest table version); the donor's snapshot (lm_snap.c) comes in
 * LM_C_SYNC_DATA chunks, and LM_C_SYNC_DONE installs it if the checksum
 * and the decoder accept it.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"
#include "lm_state_i.h"

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
			rc = lm_member_left(st, n, out);
		n->excluded = 1;
		return rc;
	}
	if (n->excluded) {
		n->excluded = 0;
		n->member = 1;
		rc = lm_ev_push(out, LM_EV_NODE, n->id, 0, 0, NULL, 0, 0);
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
	rc = lm_set_proto(st, (uint16_t)v, out);
	for (uint32_t i = 0; !rc && i < st->n_members; i++) {
		struct lm_node *n = lm_nodes_get(st, st->members[i]);

		st->hellos[i].admitted = admitted[i];
		/* the name now, for the logs and a node kept out that
		 * never installs a table: the install sets the same */
		if (st->hellos[i].name[0])
			memcpy(n->name, st->hellos[i].name, LM_NAME_MAX);
		n->proto_min = st->hellos[i].proto_min;
		n->proto_max = st->hellos[i].proto_max;
		rc = admit(st, n, admitted[i], out);
		if (!rc && !admitted[i])
			rc = lm_ev_push(out, LM_EV_EXCLUDED, n->id, 0, 0, NULL,
					v, 0);
	}
	return rc;
}

int lm_do_hello(struct lm_state *st, uint32_t from,
		const struct lm_c_sync_hello *h, struct lm_evq *out)
{
	int idx = lm_member_index(st, from);
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
	return lm_ev_push(out, LM_EV_SYNC_DONOR, donor, 0, 0, NULL, 0, 0);
}

int lm_do_sync_data(struct lm_state *st, uint32_t from,
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
		const struct lm_rsrc *o = lm_res_find(st, &r->res);
		uint32_t was = o ? o->owner : 0;

		if (!rc && (was != r->owner || (o && o->epoch != r->epoch)))
			rc = lm_ev_push(out, LM_EV_OWNER, r->owner, 0, 0,
					&r->res, r->epoch, 0);
	}
	FOR_EACH_RES(st, r, next) {
		if (!rc && r->owner && !lm_res_find(ns, &r->res))
			rc = lm_ev_push(out, LM_EV_OWNER, 0, 0, 0, &r->res,
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
		struct lm_node *n = lm_nodes_add(st, st->members[i]);
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

		n->member = lm_member_index(st, n->id) >= 0 && !n->excluded;
		if (!lm_holds(st, n->id))
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
	int rc = lm_res_sorted(st, &v);

	for (uint64_t i = 0; !rc && i < n; i++) {
		struct lm_rsrc *r = v[i];
		const struct lm_node *o = lm_nodes_get(st, r->owner);

		if (r->revoking && o && o->member && !o->fencing)
			rc = lm_ev_push(out, LM_EV_REVOKE, r->owner, 0, 0,
					&r->res, r->epoch, 0);
	}
	free(v);
	return rc;
}

static int sync_failed(struct lm_state *st, struct lm_evq *out)
{
	st->sync_failed = true;
	return lm_ev_push(out, LM_EV_SYNC_FAILED, st->donor, 0, 0, NULL, 0, 0);
}

int lm_do_sync_done(struct lm_state *st, uint32_t from,
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
	rc = lm_snap_decode(st->stage, st->stage_len, &ns);
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
	lm_table_clear(st);
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
	lm_sync_reset(st, false);
	/* A quorate install starts a newer lineage than any partition that
	 * was not part of it: lm_update_ready() bumps the version below. */
	rc = lm_ev_push(out, LM_EV_SYNC_INSTALLED, from, 0, 0, NULL, 0, 0);
	for (uint32_t i = 0; !rc && i < st->n_nodes; i++)
		rc = lm_ev_push(out, LM_EV_NODE, st->nodes[i].id, 0, 0, NULL, 0,
				0);
	if (!rc)
		rc = install_revokes(st, out);
	if (!rc)
		rc = lm_update_ready(st, out);
	return rc;
}
