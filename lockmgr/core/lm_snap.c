// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_snap.c - the snapshot codec of the replicated lock table.
 *
 * A snapshot (format in lm_state_i.h) is the replicated part of the table
 * in one deterministic byte form: nodes compare its digest, and a joining
 * node installs the donor's (lm_sync.c).  One walker writes and reads it,
 * so the encoder and the decoder cannot disagree; decoding checks every
 * record, since the bytes come from another node.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lm_cur.h"
#include "lm_state.h"
#include "lm_state_i.h"

/* ---------------------------------------------------------------------
 * Snapshot codec: one walker for both directions
 */

/* The snapshot walks with the messages' cursor (lm_cur.h). */

/* The nodes, sorted by id. */
static int x_nodes(struct lm_cur *c, struct lm_state *st)
{
	x_u32(c, &st->n_nodes);
	if (!cur_enc(c) && (c->err || st->n_nodes > LM_MAX_NODES))
		return -EBADMSG;
	for (uint32_t i = 0; i < st->n_nodes; i++) {
		struct lm_node *nd = &st->nodes[i];

		x_u32(c, &nd->id);
		x_raw(c, nd->name, LM_NAME_MAX);
		x_u8(c, &nd->fencing);
		x_u8(c, &nd->draining);
		x_u32(c, &nd->votes);
		x_u32(c, &nd->expected);
		if (!cur_enc(c) &&
		    (c->err || !nd->id || (i && nd->id <= nd[-1].id) ||
		     !memchr(nd->name, 0, LM_NAME_MAX) || nd->fencing > 1 ||
		     nd->draining > 1))
			return -EBADMSG;
	}
	return 0;
}

/* The i-th held lock of r, POSIX ones first, and its space. */
static void lock_at(const struct lm_rsrc *r, uint32_t i, uint8_t *s,
		    struct lm_lock *l)
{
	*s = i < r->x->held[0].n ? 0 : 1;
	*l = r->x->held[*s].v[*s ? i - r->x->held[0].n : i];
}

/* A decoded held lock, appended to r; order and overlap are checked
 * against the previous lock of the same space. */
static int lock_add(struct lm_state *ns, struct lm_rsrc *r, uint8_t s,
		    const struct lm_lock *l, int *last_space)
{
	struct lm_lockv *lv;

	if (s > LM_SPACE_FLOCK || (int)s < *last_space ||
	    (l->type != LM_LK_READ && l->type != LM_LK_WRITE) ||
	    l->start > l->end || !lm_nodes_get(ns, l->node) ||
	    (s == LM_SPACE_FLOCK && (l->start || l->end != LM_OFFSET_MAX)))
		return -EBADMSG;
	*last_space = s;
	if (!lm_rx_get(r))
		return -ENOMEM;
	lv = &r->x->held[s];
	if (lv->n) {
		const struct lm_lock *p = &lv->v[lv->n - 1];

		if (lm_lk_cmp(p, l->node, l->owner, l->start) >= 0 ||
		    (lm_same_owner(p, l->node, l->owner) &&
		     p->end >= l->start))
			return -EBADMSG;
	}
	return lm_lv_insert_at(lv, lv->n, l);
}

/* Whether a decoded resource head (before its locks) is acceptable after
 * prev (NULL for the first resource). */
static bool res_ok(const struct lm_cur *c, const struct lm_state *ns,
		   const struct lm_rsrc *r, const struct lm_res *prev,
		   uint32_t n_locks)
{
	return !c->err && (!prev || lm_res_cmp(prev, &r->res) < 0) &&
	       (!r->owner || lm_nodes_get(ns, r->owner)) &&
	       (!r->handoff || lm_nodes_get(ns, r->handoff)) &&
	       r->revoking <= 1 && (!r->revoking || r->owner) &&
	       r->epoch <= ns->epoch && (r->owner || r->handoff || n_locks) &&
	       n_locks <= cur_left(c) / LM_SNAP_LOCK_LEN;
}

/* One resource and its held locks.  Decoding fills r, a new zeroed entry
 * that follows prev. */
static int x_rsrc(struct lm_cur *c, struct lm_state *st, struct lm_rsrc *r,
		  const struct lm_res *prev)
{
	uint32_t n_locks = lm_res_n_held(r);
	int last_space = 0, rc;

	x_raw(c, r->res.volume, LM_VOLUME_LEN);
	x_u64(c, &r->res.fileid);
	x_u32(c, &r->owner);
	x_u64(c, &r->epoch);
	x_u32(c, &r->handoff);
	x_u8(c, &r->revoking);
	x_u32(c, &n_locks);
	if (!cur_enc(c) && !res_ok(c, st, r, prev, n_locks))
		return -EBADMSG;
	for (uint32_t i = 0; i < n_locks; i++) {
		struct lm_lock l = { 0 };
		uint8_t s = 0;

		if (cur_enc(c))
			lock_at(r, i, &s, &l);
		x_u8(c, &s);
		x_u8(c, &l.type);
		x_u32(c, &l.node);
		x_u64(c, &l.owner);
		x_u64(c, &l.start);
		x_u64(c, &l.end);
		x_u32(c, &l.pid);
		if (cur_enc(c))
			continue;
		if (c->err)
			return -EBADMSG;
		rc = lock_add(st, r, s, &l, &last_space);
		if (rc)
			return rc;
	}
	return 0;
}

/* Decode the next resource into a new entry of ns; *prev is the one
 * before it (unless first), and becomes this one. */
static int res_decode(struct lm_cur *c, struct lm_state *ns,
		      struct lm_res *prev, bool first)
{
	struct lm_rsrc *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	rc = x_rsrc(c, ns, r, first ? NULL : prev);
	if (!rc)
		rc = lm_res_insert(ns, r);
	if (rc) {
		lm_rx_free(r->x);
		free(r);
		return rc;
	}
	*prev = r->res;
	return 0;
}

/*
 * The whole snapshot.  Encoding writes st and the n_res resources of v;
 * decoding fills st, a new table, checking each record as it comes.
 */
static int x_snap(struct lm_cur *c, struct lm_state *st,
		  struct lm_rsrc **v, uint32_t n_res)
{
	uint32_t magic = LM_SNAP_MAGIC, format = LM_SNAP_FORMAT;
	struct lm_res prev = { { 0 }, 0 };
	int rc;

	x_u32(c, &magic);
	x_u32(c, &format);
	if (magic != LM_SNAP_MAGIC || format != LM_SNAP_FORMAT)
		return -EBADMSG;
	x_u64(c, &st->version);
	x_u64(c, &st->epoch);
	rc = x_nodes(c, st);
	if (rc)
		return rc;
	x_u32(c, &n_res);
	if (!cur_enc(c) && (c->err || n_res > cur_left(c) / LM_SNAP_RES_LEN))
		return -EBADMSG;
	for (uint32_t i = 0; !rc && i < n_res; i++)
		rc = cur_enc(c) ? x_rsrc(c, st, v[i], NULL) :
				  res_decode(c, st, &prev, i == 0);
	if (!rc)
		rc = c->err;
	if (!rc && cur_left(c))
		rc = cur_enc(c) ? -ENOSPC : -EBADMSG;
	return rc;
}

int lm_state_snapshot(const struct lm_state *st, uint8_t **buf, size_t *len)
{
	size_t size = LM_SNAP_HDR_LEN + 4 + st->n_nodes * LM_SNAP_NODE_LEN + 4;
	uint64_t n = st->n_resources;
	struct lm_cur c = { 0 };
	struct lm_rsrc **v;
	int rc = lm_res_sorted(st, &v);

	if (rc)
		return rc;
	/* Waiters are not replicated: a resource that only has waiters is
	 * not in the snapshot. */
	for (uint64_t i = 0, k = n; i < k; i++)
		if (!v[i]->owner && !v[i]->handoff && !lm_res_n_held(v[i]))
			n--;
		else
			v[i - (k - n)] = v[i];
	for (uint64_t i = 0; i < n; i++)
		size += LM_SNAP_RES_LEN +
			(size_t)lm_res_n_held(v[i]) * LM_SNAP_LOCK_LEN;
	*buf = malloc(size);
	if (!*buf) {
		free(v);
		return -ENOMEM;
	}
	c.out = *buf;
	c.cap = size;
	/* Encoding only reads the table: the walker writes when decoding. */
	rc = x_snap(&c, (struct lm_state *)st, v, (uint32_t)n);
	free(v);
	if (rc) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
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

/* Decode buf into a new table (nodes, resources, version, epoch). */
int lm_snap_decode(const uint8_t *buf, size_t len, struct lm_state **out)
{
	struct lm_cur c = { .in = buf, .cap = len };
	struct lm_state *ns = lm_state_new();
	int rc;

	if (!ns)
		return -ENOMEM;
	rc = x_snap(&c, ns, NULL, 0);
	if (rc) {
		lm_state_free(ns);
		return rc;
	}
	*out = ns;
	return 0;
}

int lm_state_snapshot_check(const uint8_t *buf, size_t len)
{
	struct lm_state *ns;
	int rc = lm_snap_decode(buf, len, &ns);

	if (rc)
		return rc == -ENOMEM ? rc : -EBADMSG;
	lm_state_free(ns);
	return 0;
}
