/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_sim.c - deterministic simulator of the replicated lock table.
 *
 * K lm_state machines on a simulated totally ordered bus with virtual
 * synchrony: the cluster is a set of partitions, each with its own ordered
 * stream; a membership change reaches every member of a partition at the
 * same point of its stream; a message goes to every member of the
 * partition it was sent in, or, when the partition changes first, is
 * either delivered in the old view or discarded for all.  Every view
 * change is also a new corosync ring, applied to each member just before
 * or just after the confchg (either order is drawn), and quorum comes
 * from outside the table as corosync's does: each member multicasts its
 * votequorum's decision for the new ring (a majority of K); some first
 * send a cautious "not quorate" and correct it later, some resend the
 * decision of their previous ring late (stale), and clients inject
 * decisions for older or other rings.  Around each
 * state runs a small model of the lockd shell (hellos, snapshot chunks,
 * revoke answers, resends, fencing).  Random requests, crashes, restarts,
 * splits and merges are drawn from a seeded PRNG, and the invariants of
 * doc/design.md §2.6 are checked after every step:
 *
 *   I1 at most one node believes it owns a resource while its lease is
 *      valid; grant epochs strictly increase;
 *   I2 nothing is granted in a partition that is not quorate, whatever
 *      stale or disagreeing decisions were delivered;
 *   I3 an ownership ends only by its owner's release or by a fence, so a
 *      departed owner's resources are re-granted only after its fence;
 *   I4 every modelled write carries the newest epoch of its resource;
 *   I5 the members of a partition that are not syncing hold equal tables;
 * plus lm_state_check() on every node, and liveness after a final heal.
 *
 * Rolling upgrades: each node (re)starts speaking a random range of
 * cluster protocol versions (2..2, 2..3 or 3..3, mostly 2..3), so rounds
 * keep nodes out and let them in again; a node kept out has no lease, as
 * in lockd.  The final heal restarts crashed nodes at 2..3.
 *
 *   lm_sim [--seed S] [--steps N] [--nodes K] [--verbose]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_state.h"

#define MAXK 16
#define NRES 16
#define MAXREQ 24
#define CHUNK 96	 /* small: exercise multi-chunk transfers */
#define LEASE_STEPS 6	 /* fencer waits this long after a departure */
#define TRACE_LEN 40

/* ---- PRNG: xorshift64* ---- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static uint32_t rn(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/* ---- world ---- */

struct qmsg {
	uint32_t from;
	struct lm_cmsg m;
	uint8_t *data; /* owned copy of a sync chunk */
};

struct part {
	uint32_t mask; /* bit i: node i + 1 */
	uint64_t ring; /* ring seq of the current view */
	struct qmsg *q;
	size_t head, n, cap;
};

enum rq_state { RQ_INFLIGHT, RQ_RETRY, RQ_QUEUED };

struct req {
	uint64_t id;
	struct lm_cmsg m;
	enum rq_state state;
	bool lost; /* message discarded with its view: resend */
};

struct node {
	bool alive;
	int part;
	struct lm_state *st;
	uint64_t next_req;
	struct req reqs[MAXREQ];
	int n_reqs;
	uint64_t belief[NRES];	  /* epoch believed owned, 0 = none */
	int revoke_at[NRES];	  /* step to answer a revoke, -1 none */
	uint32_t fence_age[MAXK + 1]; /* as fencer: steps pending */
	int down_since;
	uint16_t proto_min, proto_max; /* cluster versions it speaks */
	struct lm_quorum last_q; /* the decision it sent last */
	int64_t q_fix_at;	 /* step to send the true decision, -1 none */
};

static struct node nodes[MAXK];
static struct part parts[MAXK];
static int n_parts;
static uint32_t K = 5;
static uint64_t seed;
static uint64_t steps = 100000;
static uint64_t step;
static bool verbose;
static struct lm_evq evq;

/* global truth */
static uint64_t g_epoch[NRES];	 /* newest grant epoch per resource */
static uint32_t g_owner[NRES];	 /* its owner */
static bool g_ended[NRES];	 /* that grant was released or fenced */
static uint64_t g_max_epoch;
static uint64_t g_store[NRES];	 /* newest epoch that wrote */
static uint64_t n_kept_out; /* rounds that kept a node out */
static uint64_t n_grants, n_writes, n_deliveries, n_syncs, n_fences,
	n_faults, n_skipped, n_stale_q, n_cautious_q;
static uint64_t g_ring_seq;

static char trace[TRACE_LEN][160];
static int trace_pos;

static void tr(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void tr(const char *fmt, ...)
{
	char *t = trace[trace_pos++ % TRACE_LEN];
	va_list ap;
	int n = snprintf(t, 160, "%6" PRIu64 " ", step);

	va_start(ap, fmt);
	vsnprintf(t + n, 160 - (size_t)n, fmt, ap);
	va_end(ap);
	if (verbose)
		fprintf(stderr, "%s\n", t);
}

static void die(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
	va_list ap;
	int first = trace_pos > TRACE_LEN ? trace_pos - TRACE_LEN : 0;

	fprintf(stderr, "lm_sim: VIOLATION at step %" PRIu64 ": ", step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nlast events:\n");
	for (int i = first; i < trace_pos; i++)
		fprintf(stderr, "  %s\n", trace[i % TRACE_LEN]);
	fprintf(stderr, "reproduce: lm_sim --seed %" PRIu64
		" --steps %" PRIu64 " --nodes %u\n", seed, steps, K);
	exit(1);
}

static struct lm_res res_of(int r)
{
	struct lm_res res;

	memset(&res, 0, sizeof(res));
	res.volume[0] = 0xc5;
	res.fileid = 1000 + (uint64_t)r;
	return res;
}

static int res_idx(const struct lm_res *res)
{
	return (int)(res->fileid - 1000);
}

static uint32_t popcount(uint32_t m)
{
	return (uint32_t)__builtin_popcount(m);
}

static bool part_quorate(int p)
{
	return popcount(parts[p].mask) * 2 > K;
}

static bool kept_out(int i)
{
	struct lm_node_entry e;

	return lm_state_node(nodes[i].st, (uint32_t)i + 1, &e) == 0 &&
	       e.state == LM_NODE_INCOMPATIBLE;
}

static bool lease_valid(int i)
{
	struct lm_status_info si;

	if (!nodes[i].alive || !part_quorate(nodes[i].part) || kept_out(i))
		return false;
	lm_state_status(nodes[i].st, &si);
	return si.ready;
}

static void clear_beliefs(int i)
{
	for (int r = 0; r < NRES; r++)
		nodes[i].belief[r] = 0;
}

/* ---- the bus ---- */

static void send(int i, const struct lm_cmsg *m)
{
	struct part *p = &parts[nodes[i].part];
	struct qmsg *q;

	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct qmsg *v = malloc(cap * sizeof(*v));

		if (!v)
			die("out of memory");
		for (size_t k = 0; k < p->n; k++)
			v[k] = p->q[(p->head + k) % (p->cap ? p->cap : 1)];
		free(p->q);
		p->q = v;
		p->head = 0;
		p->cap = cap;
	}
	q = &p->q[(p->head + p->n) % p->cap];
	q->from = (uint32_t)i + 1;
	q->m = *m;
	q->data = NULL;
	if (m->type == LM_C_SYNC_DATA) {
		q->data = malloc(m->u.sync_data.len + 1);
		memcpy(q->data, m->u.sync_data.data, m->u.sync_data.len);
		q->m.u.sync_data.data = q->data;
	}
	p->n++;
}

static struct qmsg pop(struct part *p)
{
	struct qmsg q = p->q[p->head];

	p->head = (p->head + 1) % p->cap;
	p->n--;
	return q;
}

static struct req *req_find(int i, uint64_t id)
{
	for (int k = 0; k < nodes[i].n_reqs; k++)
		if (nodes[i].reqs[k].id == id)
			return &nodes[i].reqs[k];
	return NULL;
}

static void req_done(int i, uint64_t id)
{
	struct node *n = &nodes[i];

	for (int k = 0; k < n->n_reqs; k++) {
		if (n->reqs[k].id == id) {
			n->reqs[k] = n->reqs[--n->n_reqs];
			return;
		}
	}
}

static uint64_t *req_id_field(struct lm_cmsg *m)
{
	switch (m->type) {
	case LM_C_ACQUIRE:
		return &m->u.acquire.req_id;
	case LM_C_RELEASE:
		return &m->u.release.req_id;
	case LM_C_HANDOFF:
		return &m->u.handoff.req_id;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		return &m->u.drain.req_id;
	case LM_C_PLOCK:
		return &m->u.plock.req_id;
	default:
		return NULL;
	}
}

/* A request the shell tracks until it is answered. */
static bool request(int i, struct lm_cmsg *m)
{
	struct node *n = &nodes[i];
	struct req *r;

	if (n->n_reqs == MAXREQ)
		return false;
	r = &n->reqs[n->n_reqs++];
	r->id = ++n->next_req;
	*req_id_field(m) = r->id;
	r->m = *m;
	r->state = RQ_INFLIGHT;
	r->lost = false;
	send(i, m);
	return true;
}

static void resend(int i, struct req *r)
{
	r->state = RQ_INFLIGHT;
	r->lost = false;
	send(i, &r->m);
}

/* Discard the queue of partition p, from its k-th message on; the shell
 * of an alive sender resends a lost request after the confchg. */
static void discard(int p, size_t keep)
{
	struct part *pt = &parts[p];

	while (pt->n > keep) {
		size_t last = (pt->head + pt->n - 1) % pt->cap;
		struct qmsg *q = &pt->q[last];
		int s = (int)q->from - 1;
		uint64_t *id = req_id_field(&q->m);

		if (id && nodes[s].alive) {
			struct req *r = req_find(s, *id);

			if (r)
				r->lost = true;
		}
		free(q->data);
		pt->n--;
	}
}

/* ---- global checks on grants ---- */

static void check_grant(int i, const struct lm_ev *e)
{
	int r = res_idx(&e->res);

	if (e->epoch == g_epoch[r] && e->node == g_owner[r])
		return; /* the same grant, applied by another member */
	if (!part_quorate(nodes[i].part))
		die("I2: node %u granted file %d to %u at epoch %" PRIu64
		    " in a partition of %u/%u", i + 1, r, e->node, e->epoch,
		    popcount(parts[nodes[i].part].mask), K);
	if (e->epoch <= g_max_epoch)
		die("I1: epoch %" PRIu64 " for file %d not above %" PRIu64,
		    e->epoch, r, g_max_epoch);
	if (g_epoch[r] && !g_ended[r])
		die("I3: file %d granted to %u at %" PRIu64
		    " while %u's grant %" PRIu64 " never ended", r, e->node,
		    e->epoch, g_owner[r], g_epoch[r]);
	g_epoch[r] = e->epoch;
	g_owner[r] = e->node;
	g_ended[r] = false;
	g_max_epoch = e->epoch;
	n_grants++;
	tr("grant file %d -> %u epoch %" PRIu64, r, e->node, e->epoch);
}

static void check_end(int i, const struct lm_ev *e)
{
	int r = res_idx(&e->res);

	/* I3: a departed owner's grant ends only by its fence */
	if (e->type == LM_EV_RELEASED &&
	    !(parts[nodes[i].part].mask & (1u << (e->node - 1))))
		die("I3: node %d saw %u release file %d without being a "
		    "member", i + 1, e->node, r);

	if (e->epoch == g_epoch[r] && e->node == g_owner[r] && !g_ended[r]) {
		g_ended[r] = true;
		tr("%s file %d by %u epoch %" PRIu64,
		   e->type == LM_EV_LOST ? "lost" : "released", r, e->node,
		   e->epoch);
	}
}

/* ---- the shell ---- */

static void send_hello(int i)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };
	struct lm_status_info si;

	lm_state_status(nodes[i].st, &si);
	m.u.hello.n_members = si.n_members;
	memcpy(m.u.hello.members, si.members, sizeof(si.members));
	m.u.hello.version = si.version;
	m.u.hello.epoch = si.epoch;
	m.u.hello.votes = 1;
	m.u.hello.expected_votes = K;
	snprintf(m.u.hello.name, LM_NAME_MAX, "n%d", i + 1);
	m.u.hello.proto_min = nodes[i].proto_min;
	m.u.hello.proto_max = nodes[i].proto_max;
	m.u.hello.kept_out = kept_out(i);
	send(i, &m);
}

static void send_snapshot(int i)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_DATA };
	uint8_t *buf;
	size_t len, off;
	uint32_t idx = 0;

	if (lm_state_snapshot(nodes[i].st, &buf, &len))
		die("snapshot failed on %d", i + 1);
	if (lm_state_snapshot_check(buf, len))
		die("node %d's snapshot does not decode", i + 1);
	for (off = 0; off < len; off += CHUNK) {
		m.u.sync_data.index = idx++;
		m.u.sync_data.len = (uint32_t)(len - off < CHUNK ? len - off :
								   CHUNK);
		m.u.sync_data.data = buf + off;
		send(i, &m);
	}
	m.type = LM_C_SYNC_DONE;
	m.u.sync_done.chunks = idx;
	m.u.sync_done.total_len = len;
	m.u.sync_done.checksum = lm_checksum64(LM_CHECKSUM_SEED, buf, len);
	send(i, &m);
	free(buf);
	tr("node %d donates %zu bytes in %u chunks", i + 1, len, idx);
}

static void on_reply(int i, const struct lm_ev *e)
{
	struct req *r = req_find(i, e->req_id);

	if (!r)
		return;
	if (e->status == LM_ERR_NOQUORUM || e->status == LM_ERR_SYNCING) {
		r->state = RQ_RETRY;
		return;
	}
	if (r->m.type == LM_C_ACQUIRE && e->status == 0)
		nodes[i].belief[res_idx(&e->res)] = e->epoch;
	req_done(i, e->req_id);
}

/* React to the events of one apply on node i. */
static void shell(int i, bool *resend_retry, bool *resend_queued)
{
	struct node *n = &nodes[i];
	uint32_t self = (uint32_t)i + 1;

	for (size_t k = 0; k < evq.n; k++) {
		const struct lm_ev *e = &evq.ev[k];
		int r = res_idx(&e->res);
		struct req *rq;

		switch (e->type) {
		case LM_EV_GRANTED:
			check_grant(i, e);
			if (e->node != self)
				break;
			n->belief[r] = e->epoch;
			if (e->req_id)
				req_done(i, e->req_id);
			break;
		case LM_EV_RELEASED:
		case LM_EV_LOST:
			check_end(i, e);
			if (e->node == self)
				n->belief[r] = 0;
			break;
		case LM_EV_PLOCK_GRANTED:
			if (!part_quorate(n->part))
				die("I2: plock granted on %u in a minority",
				    self);
			if (e->node == self)
				req_done(i, e->req_id);
			break;
		case LM_EV_REPLY:
			if (e->node == self)
				on_reply(i, e);
			break;
		case LM_EV_QUEUED:
			rq = e->node == self ? req_find(i, e->req_id) : NULL;
			if (rq)
				rq->state = RQ_QUEUED;
			break;
		case LM_EV_REVOKE:
			if (e->node == self && n->revoke_at[r] < 0)
				n->revoke_at[r] = (int)(step + rn(4));
			break;
		case LM_EV_SYNC_DONOR:
			if (e->node == self)
				send_snapshot(i);
			break;
		case LM_EV_SYNC_INSTALLED:
			n_syncs++;
			*resend_queued = true;
			break;
		case LM_EV_READY:
			*resend_retry = true;
			break;
		case LM_EV_FENCED:
			n_fences++;
			tr("node %u fenced (seen by %u)", e->node, self);
			break;
		case LM_EV_EXCLUDED:
			if (e->node == self) {
				n_kept_out++;
				tr("node %u kept out (%u..%u, cluster %" PRIu64
				   ")", self, n->proto_min, n->proto_max,
				   e->epoch);
			}
			break;
		case LM_EV_SYNC_FAILED:
			die("node %u: state transfer failed", self);
		default:
			break;
		}
	}
}

static void after_events(int i, bool retry, bool queued)
{
	struct node *n = &nodes[i];

	for (int k = 0; k < n->n_reqs; k++) {
		struct req *r = &n->reqs[k];

		if ((retry && r->state == RQ_RETRY) ||
		    (queued && r->state == RQ_QUEUED) ||
		    (queued && r->state == RQ_RETRY))
			resend(i, r);
	}
}

static void check_node(int i)
{
	char why[256];

	if (lm_state_check(nodes[i].st, why, sizeof(why)))
		die("node %d: lm_state_check: %s", i + 1, why);
}

/* Deliver one message of partition p to all its members. */
static void deliver(int p)
{
	struct qmsg q = pop(&parts[p]);

	n_deliveries++;
	for (int i = 0; i < (int)K; i++) {
		bool retry = false, queued = false;

		if (!(parts[p].mask & (1u << i)))
			continue;
		lm_evq_reset(&evq);
		if (lm_state_apply_msg(nodes[i].st, q.from, &q.m, &evq))
			die("apply failed on %d", i + 1);
		shell(i, &retry, &queued);
		after_events(i, retry, queued);
	}
	free(q.data);
}

/* I5: members of a partition that are not syncing agree. */
static void check_partition(int p)
{
	uint64_t d = 0;
	int first = -1;

	for (int i = 0; i < (int)K; i++) {
		struct lm_status_info si;
		uint64_t di;

		if (!(parts[p].mask & (1u << i)))
			continue;
		lm_state_status(nodes[i].st, &si);
		if (si.syncing)
			continue;
		di = lm_state_digest(nodes[i].st);
		if (first < 0) {
			first = i;
			d = di;
		} else if (di != d) {
			die("I5: nodes %d and %d of one partition differ",
			    first + 1, i + 1);
		}
	}
}

static bool breaks_lineage(uint32_t mask, uint32_t gone);

/* ---- membership ---- */

static size_t ids_of(uint32_t mask, uint32_t *ids)
{
	size_t n = 0;

	for (uint32_t i = 0; i < K; i++)
		if (mask & (1u << i))
			ids[n++] = i + 1;
	return n;
}

/* ---- quorum decisions from outside the table ---- */

static void send_decision(int i, uint64_t ring, bool quorate)
{
	struct lm_cmsg m = { .type = LM_C_QUORUM };

	m.u.quorum.ring.nodeid = 1;
	m.u.quorum.ring.seq = ring;
	m.u.quorum.quorate = quorate;
	m.u.quorum.node_votes = 1;
	m.u.quorum.expected_votes = K;
	m.u.quorum.total_votes = popcount(parts[nodes[i].part].mask);
	m.u.quorum.quorum = K / 2 + 1;
	send(i, &m);
	nodes[i].last_q = m.u.quorum;
}

/* Node i's votequorum decided for its new ring: maybe a stale decision
 * of its previous ring still leaves first, maybe a cautious "not
 * quorate" comes before the true one. */
static void decide_new_ring(int i)
{
	struct node *n = &nodes[i];
	struct part *p = &parts[n->part];
	bool truth = part_quorate(n->part);

	if (n->last_q.ring.seq && n->last_q.ring.seq < p->ring && !rn(4)) {
		struct lm_quorum old = n->last_q;

		n_stale_q++;
		send_decision(i, old.ring.seq, true);
		n->last_q = old;
	}
	if (truth && !rn(6)) {
		n_cautious_q++;
		send_decision(i, p->ring, false);
		n->q_fix_at = (int64_t)(step + 1 + rn(20));
		return;
	}
	n->q_fix_at = -1;
	send_decision(i, p->ring, truth);
}

static void apply_ring(int i, uint64_t seq)
{
	struct lm_ring r = { .nodeid = 1, .seq = seq };
	bool retry = false, queued = false;

	lm_evq_reset(&evq);
	if (lm_state_apply_ring(nodes[i].st, &r, &evq))
		die("ring failed on %d", i + 1);
	shell(i, &retry, &queued);
	after_events(i, retry, queued);
}

/* Partition p now has members mask (was old): a confchg to each member. */
static void confchg(int p, uint32_t old)
{
	uint32_t mem[MAXK], left[MAXK], joined[MAXK];
	uint32_t mask = parts[p].mask;
	struct lm_confchg cc = {
		.members = mem, .n_members = ids_of(mask, mem),
		.left = left, .n_left = ids_of(old & ~mask, left),
		.joined = joined, .n_joined = ids_of(mask & ~old, joined),
	};

	bool ring_first;

	parts[p].ring = ++g_ring_seq;
	tr("confchg partition %d: %zu members (+%zu -%zu) ring %" PRIu64
	   "%s", p, cc.n_members, cc.n_joined, cc.n_left, parts[p].ring,
	   part_quorate(p) ? " quorate" : "");
	for (int i = 0; i < (int)K; i++) {
		bool retry = false, queued = false;
		struct lm_status_info si;
		struct lm_confchg c = cc;

		if (!(mask & (1u << i)))
			continue;
		nodes[i].part = p;
		/* corosync may hand the ring before or after the confchg */
		ring_first = rn(2);
		if (ring_first)
			apply_ring(i, parts[p].ring);
		/* each side of a merge sees the other as joined */
		if (!(old & (1u << i))) {
			c.n_joined = ids_of(old ? old : mask, joined);
			c.joined = joined;
		}
		/* a node that leaves a quorate partition loses its lease */
		if (!part_quorate(p))
			clear_beliefs(i);
		lm_evq_reset(&evq);
		if (lm_state_apply_confchg(nodes[i].st, &c, &evq))
			die("confchg failed on %d", i + 1);
		shell(i, &retry, &queued);
		if (!ring_first)
			apply_ring(i, parts[p].ring);
		lm_state_status(nodes[i].st, &si);
		if (si.syncing)
			send_hello(i);
		decide_new_ring(i);
		for (int k = 0; k < nodes[i].n_reqs; k++)
			if (nodes[i].reqs[k].lost)
				resend(i, &nodes[i].reqs[k]);
		after_events(i, retry, queued);
		cc.joined = joined;
		cc.n_joined = ids_of(mask & ~old, joined);
	}
}

/* Before a view changes: deliver a random prefix (maybe all) of its
 * pending messages in the old view, discard the rest for everyone. */
static void end_view(int p, bool all)
{
	size_t keep = all || rn(2) ? parts[p].n : rn((uint32_t)parts[p].n + 1);
	size_t budget = 2000;

	discard(p, keep);
	while (parts[p].n && keep-- && budget--)
		deliver(p);
	/* what the deliveries sent is in flight during the change */
	if (!all)
		discard(p, 0);
	else
		while (parts[p].n && budget--)
			deliver(p);
	discard(p, 0);
}

static int new_part(uint32_t mask)
{
	int p = n_parts++;

	memset(&parts[p], 0, sizeof(parts[p]));
	parts[p].mask = mask;
	return p;
}

static void del_part(int p)
{
	free(parts[p].q);
	parts[p] = parts[--n_parts];
	for (int i = 0; i < (int)K; i++)
		if (nodes[i].alive && nodes[i].part == n_parts)
			nodes[i].part = p;
}

static void node_reset(int i)
{
	struct node *n = &nodes[i];

	lm_state_free(n->st);
	memset(n, 0, sizeof(*n));
	n->part = -1;
	n->q_fix_at = -1;
	for (int r = 0; r < NRES; r++)
		n->revoke_at[r] = -1;
}

/* A (re)started node speaks a random range, any = false: 2..3. */
static void node_start(int i, bool any)
{
	static const uint16_t ranges[][2] = { { 2, 2 }, { 3, 3 } };
	uint32_t x = any ? rn(8) : 7;

	node_reset(i);
	nodes[i].proto_min = x < 2 ? ranges[x][0] : 2;
	nodes[i].proto_max = x < 2 ? ranges[x][1] : 3;
	nodes[i].alive = true;
	nodes[i].st = lm_state_new();
	nodes[i].part = new_part(1u << i);
	tr("node %d starts (%u..%u)", i + 1, nodes[i].proto_min,
	   nodes[i].proto_max);
	confchg(nodes[i].part, 0);
}

static void crash(int i, bool all)
{
	int p = nodes[i].part;
	uint32_t old = parts[p].mask;

	tr("node %d crashes", i + 1);
	end_view(p, all);
	node_reset(i);
	parts[p].mask &= ~(1u << i);
	if (parts[p].mask)
		confchg(p, old);
	else
		del_part(p);
}

static void split(int p)
{
	uint32_t old = parts[p].mask, a = 0;
	int q;

	if (popcount(old) < 2)
		return;
	while (!a || a == old)
		a = old & (uint32_t)rnd();
	if (breaks_lineage(a, 0) || breaks_lineage(old & ~a, 0)) {
		n_skipped++;
		return;
	}
	tr("split partition %d", p);
	end_view(p, false);
	parts[p].mask = a;
	q = new_part(old & ~a);
	confchg(p, old);
	confchg(q, old);
}

static void merge(int p, int q, bool all)
{
	uint32_t a = parts[p].mask, b = parts[q].mask;

	tr("merge partitions %d and %d", p, q);
	end_view(p, all);
	end_view(q, all);
	parts[p].mask = a | b;
	parts[q].mask = 0;
	/* members of q joined p: old mask of p for them is b, see confchg */
	del_part(q);
	if (p == n_parts)
		p = q;
	confchg(p, a);
}

/* ---- random client work ---- */

static uint32_t alive_mask(void)
{
	uint32_t m = 0;

	for (uint32_t i = 0; i < K; i++)
		if (nodes[i].alive)
			m |= 1u << i;
	return m;
}

static int pick_alive(void)
{
	uint32_t m = alive_mask();
	uint32_t ids[MAXK];
	size_t n = ids_of(m, ids);

	return n ? (int)ids[rn((uint32_t)n)] - 1 : -1;
}

static void random_plock(int i)
{
	static const uint64_t offs[] = { 0, 1, 5, 9, 10, 20, 63, 100,
					 LM_OFFSET_MAX - 1, LM_OFFSET_MAX };
	struct lm_cmsg m = { .type = LM_C_PLOCK };
	uint64_t a = offs[rn(10)], b = offs[rn(10)];

	m.u.plock.res = res_of((int)rn(4)); /* few files: contention */
	m.u.plock.space = rn(5) ? LM_SPACE_POSIX : LM_SPACE_FLOCK;
	m.u.plock.op = (uint8_t)(1 + rn(5));
	m.u.plock.type = (uint8_t)(1 + rn(2));
	m.u.plock.owner = 1 + rn(3);
	m.u.plock.start = a < b ? a : b;
	m.u.plock.end = a < b ? b : a;
	m.u.plock.pid = (uint32_t)i + 1;
	request(i, &m);
}

static void client_op(void)
{
	int i = pick_alive();
	struct lm_cmsg m = { 0 };
	int r = (int)rn(NRES);
	uint32_t x = rn(100);

	if (i < 0)
		return;
	if (x < 40) {
		/* lockd coalesces acquires of one file */
		for (int k = 0; k < nodes[i].n_reqs; k++)
			if (nodes[i].reqs[k].m.type == LM_C_ACQUIRE &&
			    res_idx(&nodes[i].reqs[k].m.u.acquire.res) == r)
				return;
		m.type = LM_C_ACQUIRE;
		m.u.acquire.res = res_of(r);
		request(i, &m);
	} else if (x < 55) {
		if (!nodes[i].belief[r])
			return;
		/* idle release: stop treating itself as owner first */
		m.type = LM_C_RELEASE;
		m.u.release.res = res_of(r);
		m.u.release.epoch = nodes[i].belief[r];
		nodes[i].belief[r] = 0;
		request(i, &m);
	} else if (x < 62) {
		m.type = LM_C_HANDOFF;
		m.u.handoff.res = res_of(r);
		m.u.handoff.target = 1 + rn(K + 1);
		request(i, &m);
	} else if (x < 66) {
		m.type = rn(3) ? LM_C_RESUME : LM_C_DRAIN;
		m.u.drain.target = 1 + rn(K);
		request(i, &m);
	} else if (x < 94) {
		random_plock(i);
	} else if (x < 95) {
		m.type = LM_C_NODE_INFO;
		m.u.node_info.votes = 1;
		m.u.node_info.expected_votes = K;
		send(i, &m);
	} else {
		/* a decision for an older or a foreign ring, saying quorate:
		 * must never count */
		uint64_t cur = parts[nodes[i].part].ring, ring;
		struct lm_quorum keep = nodes[i].last_q;

		if (rn(2) && cur > 1)
			ring = cur - 1 - rn((uint32_t)(cur - 1));
		else
			ring = g_ring_seq + 1 + rn(3);
		n_stale_q++;
		send_decision(i, ring, true);
		nodes[i].last_q = keep;
	}
}

/* A node that first sent a cautious "not quorate" sends the truth. */
static void fix_decision(int i)
{
	struct node *n = &nodes[i];

	if (n->q_fix_at < 0 || (uint64_t)n->q_fix_at > step)
		return;
	n->q_fix_at = -1;
	send_decision(i, parts[n->part].ring, part_quorate(n->part));
}

/* ---- timers of the shells ---- */

static void answer_revokes(int i)
{
	struct node *n = &nodes[i];

	for (int r = 0; r < NRES; r++) {
		struct lm_owner_entry oe;
		struct lm_res res = res_of(r);
		struct lm_cmsg m = { .type = LM_C_RELEASE };

		if (n->revoke_at[r] < 0 || (uint64_t)n->revoke_at[r] > step)
			continue;
		n->revoke_at[r] = -1;
		if (lm_state_owner(n->st, &res, &oe) ||
		    oe.owner != (uint32_t)i + 1)
			continue;
		/* flushed; no longer the owner from here on */
		n->belief[r] = 0;
		m.u.release.res = res;
		m.u.release.epoch = oe.epoch;
		request(i, &m);
	}
}

static void fencer(int i)
{
	struct node *n = &nodes[i];
	uint32_t ids[MAXK + 1];
	bool pending[MAXK + 1] = { false };
	size_t np;

	if (lm_state_fencer(n->st) != (uint32_t)i + 1) {
		memset(n->fence_age, 0, sizeof(n->fence_age));
		return;
	}
	np = lm_state_fence_pending(n->st, ids, MAXK + 1);
	for (size_t k = 0; k < np && k <= MAXK; k++)
		pending[ids[k]] = true;
	for (uint32_t t = 1; t <= K; t++) {
		struct lm_cmsg m = { .type = LM_C_FENCE };

		if (!pending[t]) {
			n->fence_age[t] = 0;
			continue;
		}
		if (++n->fence_age[t] % LEASE_STEPS)
			continue;
		m.u.fence.target = t;
		send(i, &m);
		tr("node %d sends FENCE %u", i + 1, t);
	}
}

/* I1 and I4: owners with a valid lease, and their writes. */
static void check_owners(void)
{
	bool valid[MAXK];

	for (int i = 0; i < (int)K; i++)
		valid[i] = lease_valid(i);
	for (int r = 0; r < NRES; r++) {
		int holder = -1;

		for (int i = 0; i < (int)K; i++) {
			uint64_t e = nodes[i].belief[r];

			if (!nodes[i].alive || !e || !valid[i])
				continue;
			if (holder >= 0)
				die("I1: nodes %d and %d both own file %d",
				    holder + 1, i + 1, r);
			holder = i;
			if (rn(2))
				continue;
			/* a write, stamped with the owner's epoch */
			n_writes++;
			if (e < g_epoch[r] || e < g_store[r])
				die("I4: node %d writes file %d at epoch %"
				    PRIu64 ", newest grant %" PRIu64, i + 1,
				    r, e, g_epoch[r]);
			g_store[r] = e;
		}
	}
}


/*
 * The tables live in memory only.  The design relies on every quorate
 * partition containing a process that holds the latest quorate table; a
 * run in which every holder of that table crashes or stays outside a
 * quorate partition while others form one would take a stale table
 * (epochs would go back).  That needs persistent state to survive, so
 * the fault model keeps to the assumption: faults that would break it
 * are skipped (and counted).
 */
static uint64_t version_of(int i)
{
	struct lm_status_info si;

	lm_state_status(nodes[i].st, &si);
	return si.syncing && si.version == 0 ? 0 : si.version;
}

/* Would a quorate partition of mask (without the nodes of gone) lack a
 * holder of the newest table among the processes that stay alive? */
static bool breaks_lineage(uint32_t mask, uint32_t gone)
{
	uint64_t best = 0, inside = 0;

	for (int i = 0; i < (int)K; i++) {
		if (!nodes[i].alive || (gone & (1u << i)))
			continue;
		if (version_of(i) > best)
			best = version_of(i);
		if ((mask & (1u << i)) && version_of(i) > inside)
			inside = version_of(i);
	}
	return popcount(mask & ~gone) * 2 > K && inside < best;
}

/* Would the crash of node i lose the newest table? */
static bool crash_loses_table(int i)
{
	uint64_t v = version_of(i);

	for (int k = 0; k < (int)K; k++)
		if (k != i && nodes[k].alive && version_of(k) >= v)
			return false;
	return true;
}

/* ---- the run ---- */

static int pick_part(void)
{
	return n_parts ? (int)rn((uint32_t)n_parts) : -1;
}

static bool merge_ok(int p, int q)
{
	return p != q && !breaks_lineage(parts[p].mask | parts[q].mask, 0);
}

static void fault(void)
{
	uint32_t x = rn(6);
	int i = pick_alive(), p = pick_part(), q = pick_part();

	n_faults++;
	if (x == 0 && i >= 0 && popcount(alive_mask()) > 1) {
		if (crash_loses_table(i) ||
		    breaks_lineage(parts[nodes[i].part].mask, 1u << i)) {
			n_skipped++;
			return;
		}
		crash(i, false);
	} else if (x == 1) {
		for (i = 0; i < (int)K && nodes[i].alive; i++)
			;
		if (i == (int)K)
			return;
		node_start(i, true);
		p = nodes[i].part;
		if (q != p && q >= 0 && q < n_parts && merge_ok(q, p))
			merge(q, p, rn(2));
	} else if ((x == 2 || x == 3) && p >= 0) {
		split(p);
	} else if (x == 4 && n_parts > 1 && p != q) {
		if (!merge_ok(p, q)) {
			n_skipped++;
			return;
		}
		merge(p, q, rn(2));
	} else if (x == 5 && i >= 0) {
		/* lockd restart: a new process, an empty table */
		if (crash_loses_table(i) ||
		    breaks_lineage(parts[nodes[i].part].mask, 1u << i)) {
			n_skipped++;
			return;
		}
		crash(i, rn(2));
		node_start(i, true);
		p = pick_part();
		if (p != nodes[i].part && merge_ok(p, nodes[i].part))
			merge(p, nodes[i].part, true);
	}
}

static void tick(void)
{
	for (int i = 0; i < (int)K; i++) {
		if (!nodes[i].alive)
			continue;
		answer_revokes(i);
		fencer(i);
		fix_decision(i);
	}
}

/* I2 at its root: a table is ready only in a partition corosync deems
 * quorate, whatever decisions (stale, foreign, cautious) it was fed. */
static void check_ready(int i)
{
	struct lm_status_info si;

	lm_state_status(nodes[i].st, &si);
	if (si.ready && !part_quorate(nodes[i].part))
		die("I2: node %d is ready in a partition of %u/%u (ring %"
		    PRIu64 ", decision from %u)", i + 1,
		    popcount(parts[nodes[i].part].mask), K, si.ring.seq,
		    si.quorum_from);
}

static void check_all(void)
{
	check_owners();
	for (int i = 0; i < (int)K; i++)
		if (nodes[i].alive) {
			check_node(i);
			check_ready(i);
		}
	for (int p = 0; p < n_parts; p++)
		check_partition(p);
}

static bool deliver_any(void)
{
	int start = pick_part();

	for (int k = 0; k < n_parts; k++) {
		int p = (start + k) % n_parts;

		if (parts[p].n) {
			deliver(p);
			return true;
		}
	}
	return false;
}

static void one_step(void)
{
	uint32_t x = rn(1000);

	if (x < 8)
		fault();
	else if (x < 550 && deliver_any())
		;
	else
		client_op();
	tick();
	check_all();
}

static void heal(void)
{
	uint64_t rounds = 0;

	tr("final heal");
	for (int i = 0; i < (int)K; i++)
		if (!nodes[i].alive)
			node_start(i, false);
	/* merge everything into the partition with the newest table */
	while (n_parts > 1) {
		int best = 0;

		for (int i = 0; i < (int)K; i++)
			if (version_of(i) > version_of(best))
				best = i;
		best = nodes[best].part;
		merge(best, best ? 0 : 1, true);
	}
	for (;;) {
		bool busy = deliver_any();

		/* resume every draining node once the bus is quiet */
		for (uint32_t t = 1; !busy && t <= K; t++) {
			struct lm_node_entry ne;
			struct lm_cmsg m = { .type = LM_C_RESUME };

			if (lm_state_node(nodes[0].st, t, &ne) || !ne.draining)
				continue;
			m.u.drain.target = t;
			send(0, &m);
			busy = true;
		}

		for (int i = 0; i < (int)K; i++)
			for (int r = 0; r < NRES; r++)
				busy |= nodes[i].revoke_at[r] >= 0;
		for (int i = 0; i < (int)K; i++)
			busy |= nodes[i].q_fix_at >= 0;
		for (int i = 0; i < (int)K; i++)
			busy |= lm_state_fence_pending(nodes[i].st, NULL, 0) >
				0;
		step++;
		tick();
		check_all();
		if (!busy)
			break;
		if (++rounds > 200000)
			die("liveness: the bus never drained after the heal");
	}
	for (int i = 0; i < (int)K; i++) {
		for (int k = 0; k < nodes[i].n_reqs; k++) {
			const struct req *r = &nodes[i].reqs[k];

			struct lm_owner_entry oe = { .owner = 0 };

			if (r->m.type == LM_C_ACQUIRE) {
				lm_state_owner(nodes[i].st, &r->m.u.acquire.res,
					       &oe);
				fprintf(stderr, "req state %d lost %d; owner %u "
					"epoch %" PRIu64 " waiters %u revoking "
					"%u handoff %u\n", r->state, r->lost,
					oe.owner, oe.epoch, oe.n_waiters,
					oe.revoking, oe.handoff_target);
			}
			if (r->m.type == LM_C_ACQUIRE)
				die("liveness: node %d's acquire of file %d "
				    "(req %" PRIu64 ") never answered", i + 1,
				    res_idx(&r->m.u.acquire.res), r->id);
		}
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: lm_sim [--seed S] [--steps N] [--nodes K] "
			"[--verbose]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--seed") && a + 1 < argc)
			seed = strtoull(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--steps") && a + 1 < argc)
			steps = strtoull(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--nodes") && a + 1 < argc)
			K = (uint32_t)strtoul(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--verbose"))
			verbose = true;
		else
			usage();
	}
	if (K < 1 || K > MAXK)
		usage();
	rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
	printf("lm_sim: seed %" PRIu64 " steps %" PRIu64 " nodes %u "
	       "(reproduce: lm_sim --seed %" PRIu64 " --steps %" PRIu64
	       " --nodes %u)\n", seed, steps, K, seed, steps, K);
	fflush(stdout);
	lm_evq_init(&evq);
	for (int i = 0; i < (int)K; i++)
		node_reset(i);
	for (int i = 0; i < (int)K; i++) {
		node_start(i, false);
		if (i)
			merge(0, nodes[i].part, true);
	}
	for (step = 0; step < steps; step++)
		one_step();
	heal();
	printf("lm_sim: ok: %" PRIu64 " steps, %" PRIu64 " deliveries, %"
	       PRIu64 " grants, %" PRIu64 " writes, %" PRIu64
	       " transfers, %" PRIu64 " fences, %" PRIu64 " faults (%" PRIu64
	       " skipped: would lose the newest table), %" PRIu64
	       " nodes kept out, %" PRIu64 " stale and %" PRIu64
	       " cautious quorum decisions\n",
	       steps, n_deliveries, n_grants, n_writes, n_syncs, n_fences,
	       n_faults, n_skipped, n_kept_out, n_stale_q, n_cautious_q);
	for (int i = 0; i < (int)K; i++)
		lm_state_free(nodes[i].st);
	for (int p = 0; p < n_parts; p++) {
		discard(p, 0);
		free(parts[p].q);
	}
	lm_evq_free(&evq);
	return 0;
}
