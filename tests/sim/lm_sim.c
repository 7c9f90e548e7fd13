/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_sim.c - deterministic simulator of the replicated lock table.
 *
 * K lm_state machines on a simulated totally ordered bus with virtual
 * synchrony: the cluster is a set of partitions, each with its own ordered
 * stream; a membership change reaches every member of a partition at the
 * same point of its stream; a message goes to every member of the
 * partition it was sent in, or, when the partition changes first, is
 * either delivered in the old view or discarded for all (a discarded
 * request of a sender that stays alive is sent again in its next view,
 * as corosync does).  Every view change is also a new corosync ring,
 * applied to each member just before or just after the confchg (either
 * order is drawn), and quorum comes from outside the table as corosync's
 * does: each member multicasts its votequorum's decision for the new ring
 * (a majority of K); some first send a cautious "not quorate" and correct
 * it later, some resend the decision of their previous ring late (stale),
 * and clients inject decisions for older or other rings.  Around each
 * state runs the daemon's own node logic,
 * lm_node.c - the code csvfs-lockd runs: local clients, requests and
 * their resends, hellos, snapshot chunks, revokes, heartbeats, the lease
 * and the fencer's timing - driven on a simulated clock (one step = 1 ms)
 * the way lockd_res.c and lockd_lease.c drive it.  Only the clients
 * (csvfs mounts: acquire, write while the lease is valid, answer revokes,
 * plocks, cancels, disconnects) and the transport are modelled here.
 * Random requests, crashes, restarts, splits, merges and stalls (a node's
 * lockd stops while corosync cuts it off; its csvfs keeps writing until
 * its lease deadline) are drawn from a seeded PRNG, and the invariants of
 * doc/design.md §2.6 are checked after every step:
 *
 *   I1 at most one node has a client that believes it owns a resource
 *      while that node's lease is valid; grant epochs strictly increase;
 *   I2 nothing is granted in a partition that is not quorate, whatever
 *      stale or disagreeing decisions were delivered;
 *   I3 an ownership ends only by its owner's release or by a fence, so a
 *      departed owner's resources are re-granted only after its fence;
 *   I4 every write (by a client that believes it owns the file, on a
 *      node whose lease deadline has not passed) carries the newest epoch
 *      of its resource;
 *   I5 the members of a partition that are not syncing hold equal tables;
 * plus lm_state_check() on every node, and liveness after a final heal.
 *
 * Rolling upgrades: each node (re)starts speaking a random range of
 * cluster protocol versions (2..2, 2..3 or 3..3, mostly 2..3), so rounds
 * keep nodes out and let them in again; a node kept out has no lease
 * (lm_node ends it; checked) and sends no heartbeat, as in lockd.  The
 * final heal restarts crashed nodes at 2..3.
 *
 * What it catches, by bugs planted in lm_node.c (10 seeds x 200,000
 * steps each): the fencer not waiting (I1/I4 at once), waiting half the
 * lease (I1), holders not told LOST at lease end (I4), a revoke released
 * before the holders answer (I1/I4), a FENCING node's heartbeats counted
 * (liveness), the lowest member as fencer even when it awaits a fence
 * (liveness).  What it does not: the wait short by 1 ms or missing the
 * drift term (the window is smaller than the bus latency), a lease
 * counted from delivery instead of send (all members deliver at the
 * same instant here), and an extension without quorum, a skipped
 * verify_held or a missed OWNER-elsewhere loss (other paths cover them
 * in this model).  Its long runs found four real bugs (see git log; the
 * fourth, a fencer back from a minority, once it modelled quorum
 * decisions).
 *
 *   lm_sim [--seed S] [--steps N] [--nodes K] [--lease MS] [--verbose]
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lm_node.h"
#include "lm_state.h"

#define MAXK 16
#define NRES 16
#define MAXREQ 24
#define CHUNK 96	 /* small: exercise multi-chunk transfers */
#define NCLI 3		 /* csvfs clients per node */
#define MAXPEND 8	 /* a client's unanswered requests */
#define MAXLOST 256	 /* requests discarded with a view, to send again */
#define MAXREQ 24	 /* a node's unanswered requests: clients wait */
#define STEP_NS 1000000ull /* simulated time per step: 1 ms */
#define DRIFT_PPM 50000	 /* clock rates differ by up to 5 % */
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

/* A request a client waits an answer for. */
struct pend {
	uint32_t seq;
	int res;
	bool acquire;
};

/* A csvfs mount of a node, as lockd sees it: a client id. */
struct client {
	uint32_t id;		/* 0: no client in this slot */
	uint32_t next_seq;
	uint64_t belief[NRES];	/* epoch it believes it owns, 0 none */
	int release_at[NRES];	/* answers a revoke at that step, -1 none */
	struct pend pend[MAXPEND];
	int n_pend;
	uint32_t plowners;	/* bit (res * 2 + space) * 4 + owner */
};

struct node {
	bool alive;
	int part;
	struct lm_state *st;
	struct lm_node *ln;
	struct client cli[NCLI];
	uint32_t next_client;
	struct lm_cmsg lost[MAXLOST]; /* discarded with their view */
	int n_lost;
	int64_t fence_done_at[MAXK + 1]; /* fence command ends, -1 none */
	int fence_status[MAXK + 1];
	uint64_t stall_until;	/* lockd stopped until then (steps) */
	uint32_t stall_old;	/* membership before its pending confchg */
	bool stalled;
	uint16_t proto_min, proto_max; /* cluster versions it speaks */
	struct lm_quorum last_q; /* the decision it sent last */
	int64_t q_fix_at;	 /* step to send the true decision, -1 none */
};

static struct node nodes[MAXK];
static uint32_t machine_drift[MAXK]; /* ppm, 0..DRIFT_PPM */
static struct part parts[MAXK];
static int n_parts;
static uint32_t K = 5;
static uint32_t lease_ms = 300;
static bool fence_cmd;
static uint64_t seed;
static uint64_t steps = 100000;
static uint64_t step;
static bool verbose;
static struct lm_evq evq;
static struct lm_node_actq acts;

/* global truth */
static uint64_t g_epoch[NRES];	 /* newest grant epoch per resource */
static uint32_t g_owner[NRES];	 /* its owner */
static bool g_ended[NRES];	 /* that grant was released or fenced */
static uint64_t g_max_epoch;
static uint64_t g_store[NRES];	 /* newest epoch that wrote */
static uint64_t n_grants, n_writes, n_deliveries, n_syncs, n_fences,
	n_faults, n_skipped, n_stalls, n_lease_ends, n_lost_pushes,
	n_stale_q, n_cautious_q;
static uint64_t n_kept_out; /* rounds that kept a node out */
static uint64_t g_ring_seq;

static char trace[TRACE_LEN][160];
static int trace_pos;

/*
 * Node i's CLOCK_MONOTONIC.  Each machine's clock runs fast by its own
 * 0..DRIFT_PPM (kept across lockd restarts), so two clocks differ in
 * rate by at most DRIFT_PPM, which is what the fencer is told to allow
 * for: leaving the drift out of its wait shows.
 */
static uint64_t now_ns(int i)
{
	return step * (STEP_NS + machine_drift[i] * (STEP_NS / 1000000));
}

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
		" --steps %" PRIu64 " --nodes %u --lease %u\n", seed, steps, K,
		lease_ms);
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

/* What csvfs checks before a write: the lease deadline it was given. */
static bool lease_valid(int i)
{
	uint64_t deadline;

	return nodes[i].alive && lm_node_lease(nodes[i].ln, &deadline) &&
	       now_ns(i) < deadline;
}

/* ---- the bus ---- */

static void send(int i, const struct lm_cmsg *m)
{
	struct part *p = &parts[nodes[i].part];
	struct lm_status_info si;
	struct qmsg *q;

	/* lockd_send: no heartbeat without a cluster version to send it
	 * at (none negotiated yet, or this node kept out) */
	lm_state_status(nodes[i].st, &si);
	if (m->type == LM_C_HEARTBEAT && (!si.proto_version || kept_out(i)))
		return;

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

static bool has_req_id(const struct lm_cmsg *m)
{
	switch (m->type) {
	case LM_C_ACQUIRE:
	case LM_C_RELEASE:
	case LM_C_HANDOFF:
	case LM_C_DRAIN:
	case LM_C_RESUME:
	case LM_C_PLOCK:
		return true;
	default:
		return false;
	}
}

/* Discard the queue of partition p, from its k-th message on; a request
 * of a sender that stays alive goes out again in its next view. */
static void discard(int p, size_t keep)
{
	struct part *pt = &parts[p];

	while (pt->n > keep) {
		size_t last = (pt->head + pt->n - 1) % pt->cap;
		struct qmsg *q = &pt->q[last];
		struct node *s = &nodes[q->from - 1];

		if (has_req_id(&q->m) && s->alive) {
			if (s->n_lost == MAXLOST)
				die("node %u lost too many requests (%zu "
				    "queued)", q->from, pt->n);
			/* newest last: resent in the order sent */
			memmove(&s->lost[1], &s->lost[0],
				(size_t)s->n_lost * sizeof(s->lost[0]));
			s->lost[0] = q->m;
			s->n_lost++;
		}
		free(q->data);
		pt->n--;
	}
}

static void resend_lost(int i)
{
	for (int k = 0; k < nodes[i].n_lost; k++)
		send(i, &nodes[i].lost[k]);
	nodes[i].n_lost = 0;
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

/* The checks on the events of one apply, before lm_node sees them. */
static void observe(int i)
{
	for (size_t k = 0; k < evq.n; k++) {
		const struct lm_ev *e = &evq.ev[k];

		switch (e->type) {
		case LM_EV_GRANTED:
			check_grant(i, e);
			break;
		case LM_EV_RELEASED:
		case LM_EV_LOST:
			check_end(i, e);
			break;
		case LM_EV_PLOCK_GRANTED:
			if (!part_quorate(nodes[i].part))
				die("I2: plock granted on %d in a minority",
				    i + 1);
			break;
		case LM_EV_SYNC_INSTALLED:
			n_syncs++;
			break;
		case LM_EV_FENCED:
			n_fences++;
			tr("node %u fenced (seen by %d)", e->node, i + 1);
			break;
		case LM_EV_EXCLUDED:
			if (e->node == (uint32_t)i + 1) {
				n_kept_out++;
				tr("node %d kept out (%u..%u, cluster %" PRIu64
				   ")", i + 1, nodes[i].proto_min,
				   nodes[i].proto_max, e->epoch);
			}
			break;
		case LM_EV_SYNC_FAILED:
			die("node %d: state transfer failed", i + 1);
		default:
			break;
		}
	}
}

/* ---- the clients: csvfs as lockd sees it ---- */

static struct client *client_by_id(int i, uint32_t id)
{
	for (int c = 0; c < NCLI; c++)
		if (id && nodes[i].cli[c].id == id)
			return &nodes[i].cli[c];
	return NULL;
}

static void client_new(int i, struct client *c)
{
	memset(c, 0, sizeof(*c));
	c->id = ++nodes[i].next_client;
	for (int r = 0; r < NRES; r++)
		c->release_at[r] = -1;
}

static struct pend *pend_find(struct client *c, uint32_t seq)
{
	for (int k = 0; k < c->n_pend; k++)
		if (c->pend[k].seq == seq)
			return &c->pend[k];
	return NULL;
}

static void pend_drop(struct client *c, struct pend *p)
{
	*p = c->pend[--c->n_pend];
}

static void on_reply(int i, const struct lm_node_act *a)
{
	struct client *c = client_by_id(i, a->client);
	struct pend *p = c ? pend_find(c, a->seq) : NULL;

	if (!p)
		return;
	if (p->acquire && a->status == 0) {
		c->belief[p->res] = a->epoch;
		tr("node %d client %u owns file %d at %" PRIu64, i + 1, c->id,
		   p->res, a->epoch);
	}
	pend_drop(c, p);
}

static void on_push(int i, const struct lm_node_act *a)
{
	struct client *c = client_by_id(i, a->client);
	int r = res_idx(&a->res);

	if (!c)
		return;
	if (a->smsg == LM_S_EV_LOST) {
		/* poisoned: never writes it again through these handles */
		c->belief[r] = 0;
		c->release_at[r] = -1;
		n_lost_pushes++;
	} else if (a->smsg == LM_S_EV_REVOKE && c->release_at[r] < 0) {
		c->release_at[r] = (int)(step + rn(4)); /* flush, then answer */
	}
}

static void on_fence_act(int i, const struct lm_node_act *a)
{
	struct node *n = &nodes[i];

	if (a->type == LM_NA_FENCE_CMD) {
		n->fence_done_at[a->node] = (int64_t)(step + 1 + rn(30));
		n->fence_status[a->node] = rn(8) ? 0 : 1;
	} else if (n->fence_done_at[a->node] >= 0) {
		n->fence_done_at[a->node] = (int64_t)step; /* killed */
		n->fence_status[a->node] = 128 + 9;
	}
}

/* Carry out what node i's lm_node decided, as lockd_node_run does. */
static void run_acts(int i)
{
	for (size_t k = 0; k < acts.n; k++) {
		const struct lm_node_act *a = &acts.a[k];

		switch (a->type) {
		case LM_NA_SEND:
			send(i, &a->msg);
			break;
		case LM_NA_REPLY:
			on_reply(i, a);
			break;
		case LM_NA_PUSH:
			on_push(i, a);
			break;
		case LM_NA_LEASE:
			if (!a->lease_valid)
				n_lease_ends++;
			break;
		case LM_NA_FENCE_CMD:
		case LM_NA_FENCE_KILL:
			on_fence_act(i, a);
			break;
		case LM_NA_LOG:
			if (verbose && a->level <= 5)
				tr("node %d: %s", i + 1, a->text);
			break;
		default:
			break;
		}
	}
	if (acts.fatal)
		die("node %d: %s", i + 1, acts.fatal);
	lm_node_actq_reset(&acts);
}

static void route_events(int i)
{
	observe(i);
	for (size_t k = 0; k < evq.n; k++)
		lm_node_event(nodes[i].ln, &evq.ev[k], now_ns(i), &acts);
	/* as lockd_node_applied after every apply */
	lm_node_applied(nodes[i].ln, now_ns(i), &acts);
	run_acts(i);
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
		if (!(parts[p].mask & (1u << i)))
			continue;
		if (q.m.type == LM_C_HEARTBEAT) {
			lm_node_heartbeat(nodes[i].ln, q.from, &q.m,
					  part_quorate(p), now_ns(i), &acts);
			run_acts(i);
			continue;
		}
		lm_evq_reset(&evq);
		if (lm_state_apply_msg(nodes[i].st, q.from, &q.m, &evq))
			die("apply failed on %d", i + 1);
		route_events(i);
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

/* The transport's hello (lockd_tp_send_hello): votes are the
 * transport's, one per node here. */
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

/* A new totem ring, as lockd_ring applies it. */
static void apply_ring(int i, uint64_t seq)
{
	struct lm_ring r = { .nodeid = 1, .seq = seq };

	lm_evq_reset(&evq);
	if (lm_state_apply_ring(nodes[i].st, &r, &evq))
		die("ring failed on %d", i + 1);
	route_events(i);
}

/* One node applies a membership change, as lockd_confchg does; corosync
 * may hand the new ring before or after it. */
static void node_confchg(int i, int p, const struct lm_confchg *c)
{
	struct lm_status_info si;
	bool ring_first = rn(2);

	nodes[i].part = p;
	if (ring_first)
		apply_ring(i, parts[p].ring);
	lm_node_confchg(nodes[i].ln, c, now_ns(i));
	/* the transport's quorum view (lockd_cpg.c): a partition without
	 * quorum ends the lease at once */
	if (!part_quorate(p))
		lm_node_lease_end(nodes[i].ln, "quorum lost", &acts);
	run_acts(i);
	lm_evq_reset(&evq);
	if (lm_state_apply_confchg(nodes[i].st, c, &evq))
		die("confchg failed on %d", i + 1);
	route_events(i);
	if (!ring_first)
		apply_ring(i, parts[p].ring);
	lm_state_status(nodes[i].st, &si);
	if (si.syncing)
		send_hello(i);
	decide_new_ring(i);
	resend_lost(i);
}

/* Partition p now has members mask (was old): a confchg to each member
 * (a stalled member gets it when it resumes). */
static void confchg(int p, uint32_t old)
{
	uint32_t mem[MAXK], left[MAXK], joined[MAXK];
	uint32_t mask = parts[p].mask;
	struct lm_confchg cc = {
		.members = mem, .n_members = ids_of(mask, mem),
		.left = left, .n_left = ids_of(old & ~mask, left),
		.joined = joined, .n_joined = ids_of(mask & ~old, joined),
	};

	parts[p].ring = ++g_ring_seq;
	tr("confchg partition %d: %zu members (+%zu -%zu) ring %" PRIu64
	   "%s", p, cc.n_members, cc.n_joined, cc.n_left, parts[p].ring,
	   part_quorate(p) ? " quorate" : "");
	for (int i = 0; i < (int)K; i++) {
		struct lm_confchg c = cc;

		if (!(mask & (1u << i)))
			continue;
		if (nodes[i].stalled)
			die("confchg to stalled node %d", i + 1);
		/* each side of a merge sees the other as joined */
		if (!(old & (1u << i))) {
			c.n_joined = ids_of(old ? old : mask, joined);
			c.joined = joined;
		}
		node_confchg(i, p, &c);
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

	lm_node_free(n->ln);
	lm_state_free(n->st);
	memset(n, 0, sizeof(*n));
	n->part = -1;
	n->q_fix_at = -1;
	for (uint32_t t = 0; t <= MAXK; t++)
		n->fence_done_at[t] = -1;
}

/* A (re)started node speaks a random range, any = false: 2..3. */
static void node_start(int i, bool any)
{
	static const uint16_t ranges[][2] = { { 2, 2 }, { 3, 3 } };
	uint32_t x = any ? rn(8) : 7;
	struct lm_node_conf c = {
		.self = (uint32_t)i + 1,
		.lease_ms = lease_ms,
		.heartbeat_ms = lease_ms / 8,
		/* no margin: the fencer's wait is exactly the lease plus
		 * the drift allowance, so any shortening of it shows */
		.drift_ppm = DRIFT_PPM, .margin_ms = 0, .watchdog_ms = 0,
		.fence_command = fence_cmd,
		.fence_command_timeout_ms = 20,
		.fence_retry_ms = 10,
		.revoke_timeout_ms = 50,
		.handoff_idle_ms = 200,
		.sync_chunk = CHUNK,
	};

	node_reset(i);
	nodes[i].proto_min = x < 2 ? ranges[x][0] : 2;
	nodes[i].proto_max = x < 2 ? ranges[x][1] : 3;
	nodes[i].alive = true;
	nodes[i].st = lm_state_new();
	nodes[i].ln = lm_node_new(nodes[i].st, now_ns(i));
	if (!nodes[i].st || !nodes[i].ln)
		die("out of memory");
	lm_node_configure(nodes[i].ln, &c);
	for (int k = 0; k < NCLI; k++)
		client_new(i, &nodes[i].cli[k]);
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
	if (!nodes[i].stalled)
		end_view(p, all);
	node_reset(i);
	parts[p].mask &= ~(1u << i);
	if (parts[p].mask)
		confchg(p, old);
	else
		del_part(p);
}

static bool part_stalled(int p)
{
	for (int i = 0; i < (int)K; i++)
		if ((parts[p].mask & (1u << i)) && nodes[i].stalled)
			return true;
	return false;
}

static void split(int p)
{
	uint32_t old = parts[p].mask, a = 0;
	int q;

	if (popcount(old) < 2 || part_stalled(p))
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

/*
 * Node i's lockd stops (SIGSTOP, a hang) while corosync cuts it off: the
 * others see it leave now, it sees its own membership change only when
 * it resumes.  Meanwhile its csvfs clients keep writing as long as the
 * lease deadline they were given has not passed - what the fencer's wait
 * must cover.
 */
static void stall(int i)
{
	int p = nodes[i].part;
	uint32_t old = parts[p].mask;

	if (popcount(old) < 2 || part_stalled(p) ||
	    breaks_lineage(old & ~(1u << i), 0)) {
		n_skipped++;
		return;
	}
	tr("node %d stalls and is cut off", i + 1);
	n_stalls++;
	end_view(p, false);
	parts[p].mask = old & ~(1u << i);
	nodes[i].part = new_part(1u << i);
	nodes[i].stalled = true;
	nodes[i].stall_old = old;
	nodes[i].stall_until = step + rn(3 * lease_ms);
	confchg(p, old);
}

static void resume(int i)
{
	tr("node %d resumes", i + 1);
	nodes[i].stalled = false;
	confchg(nodes[i].part, nodes[i].stall_old);
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

static bool pend_add(struct client *c, uint32_t seq, int res, bool acquire)
{
	if (c->n_pend == MAXPEND)
		return false;
	c->pend[c->n_pend++] = (struct pend){ .seq = seq, .res = res,
					      .acquire = acquire };
	return true;
}

static void client_acquire(int i, struct client *c, int r)
{
	struct lm_res res = res_of(r);
	uint32_t seq = ++c->next_seq;

	for (int k = 0; k < c->n_pend; k++)
		if (c->pend[k].acquire && c->pend[k].res == r)
			return;
	if (c->belief[r] || !pend_add(c, seq, r, true))
		return;
	lm_node_acquire(nodes[i].ln, c->id, seq, &res,
			rn(5) ? 0 : LM_ACQ_NOWAIT, now_ns(i), &acts);
}

/* Stop treating itself as owner, then tell lockd. */
static void client_release(int i, struct client *c, int r)
{
	struct lm_res res = res_of(r);
	uint64_t e = c->belief[r];

	if (!e)
		return;
	c->belief[r] = 0;
	c->release_at[r] = -1;
	if (lm_node_release(nodes[i].ln, c->id, &res, e, now_ns(i), &acts))
		tr("node %d client %u: release of file %d refused", i + 1,
		   c->id, r);
}

static void client_plock(int i, struct client *c)
{
	static const uint64_t offs[] = { 0, 1, 5, 9, 10, 20, 63, 100,
					 LM_OFFSET_MAX - 1, LM_OFFSET_MAX };
	struct lm_cmsg m = { .type = LM_C_PLOCK };
	uint64_t a = offs[rn(10)], b = offs[rn(10)];
	int r = (int)rn(4); /* few files: contention */
	uint32_t seq = ++c->next_seq;

	m.u.plock.res = res_of(r);
	m.u.plock.space = rn(5) ? LM_SPACE_POSIX : LM_SPACE_FLOCK;
	m.u.plock.op = (uint8_t)(1 + rn(5));
	m.u.plock.type = (uint8_t)(1 + rn(2));
	m.u.plock.owner = 1 + rn(3);
	m.u.plock.start = a < b ? a : b;
	m.u.plock.end = a < b ? b : a;
	m.u.plock.pid = (uint32_t)i + 1;
	if (!pend_add(c, seq, r, false))
		return;
	c->plowners |= 1u << ((r * 2 + m.u.plock.space) * 4 +
			      (int)m.u.plock.owner);
	lm_node_request(nodes[i].ln, LM_NREQ_PLOCK, &m, c->id, seq, now_ns(i),
			&acts);
}

static void client_cancel(int i, struct client *c)
{
	struct pend *p;

	if (!c->n_pend)
		return;
	p = &c->pend[rn((uint32_t)c->n_pend)];
	lm_node_cancel(nodes[i].ln, c->id, ++c->next_seq, p->seq, now_ns(i),
		       &acts);
	pend_drop(c, p);
}

/* A csvfs goes away: lockd drops its waits and holds and releases the
 * plock owners it used (lockd_res_client_gone). */
static void client_gone(int i, struct client *c)
{
	lm_node_client_gone(nodes[i].ln, c->id, now_ns(i), &acts);
	for (int b = 0; b < 32; b++) {
		struct lm_cmsg m = { .type = LM_C_PLOCK };

		if (!(c->plowners & (1u << b)))
			continue;
		m.u.plock.res = res_of(b / 8);
		m.u.plock.space = (uint8_t)(b / 4 % 2);
		m.u.plock.op = LM_PL_RELEASE_OWNER;
		m.u.plock.owner = (uint64_t)(b % 4);
		m.u.plock.end = LM_OFFSET_MAX;
		lm_node_request(nodes[i].ln, LM_NREQ_INTERNAL, &m, 0, 0,
				now_ns(i), &acts);
	}
	tr("node %d client %u disconnects", i + 1, c->id);
	client_new(i, c);
}

static void admin_op(int i, struct client *c, int r)
{
	struct lm_cmsg m = { 0 };

	if (rn(2)) {
		m.type = LM_C_HANDOFF;
		m.u.handoff.res = res_of(r);
		m.u.handoff.target = 1 + rn(K + 1);
	} else {
		m.type = rn(3) ? LM_C_RESUME : LM_C_DRAIN;
		m.u.drain.target = 1 + rn(K);
	}
	if (!pend_add(c, ++c->next_seq, r, false))
		return;
	lm_node_request(nodes[i].ln, LM_NREQ_ADMIN, &m, c->id, c->next_seq,
			now_ns(i), &acts);
}

/* A decision for an older or a foreign ring, saying quorate: must never
 * count. */
static void stale_decision(int i)
{
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

static void client_op(void)
{
	int i = pick_alive();
	struct client *c;
	int r = (int)rn(NRES);
	uint32_t x = rn(100);

	if (i < 0 || nodes[i].stalled ||
	    lm_node_pending_requests(nodes[i].ln) >= MAXREQ)
		return;
	c = &nodes[i].cli[rn(NCLI)];
	if (x < 40) {
		client_acquire(i, c, r);
	} else if (x < 55) {
		client_release(i, c, r);
	} else if (x < 60) {
		admin_op(i, c, r);
	} else if (x < 63) {
		client_cancel(i, c);
	} else if (x < 64) {
		client_gone(i, c);
	} else if (x < 94) {
		client_plock(i, c);
	} else if (x < 95) {
		struct lm_cmsg m = { .type = LM_C_NODE_INFO };

		m.u.node_info.votes = 1;
		m.u.node_info.expected_votes = K;
		send(i, &m);
	} else {
		stale_decision(i);
	}
	run_acts(i);
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

/* ---- timers of the nodes ---- */

static void answer_revokes(int i)
{
	for (int k = 0; k < NCLI; k++) {
		struct client *c = &nodes[i].cli[k];

		for (int r = 0; r < NRES; r++)
			if (c->release_at[r] >= 0 &&
			    (uint64_t)c->release_at[r] <= step)
				client_release(i, c, r);
	}
}

static void fence_cmds(int i)
{
	struct node *n = &nodes[i];

	for (uint32_t t = 1; t <= K; t++) {
		if (n->fence_done_at[t] < 0 ||
		    (uint64_t)n->fence_done_at[t] > step)
			continue;
		n->fence_done_at[t] = -1;
		lm_node_fence_cmd_done(n->ln, t, n->fence_status[t], now_ns(i),
				       &acts);
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
			for (int k = 0; k < NCLI; k++) {
				uint64_t e = nodes[i].cli[k].belief[r];

				if (!nodes[i].alive || !e || !valid[i])
					continue;
				if (holder >= 0 && holder != i)
					die("I1: nodes %d and %d both own file "
					    "%d", holder + 1, i + 1, r);
				holder = i;
				if (rn(2))
					continue;
				/* a write, stamped with the owner's epoch */
				n_writes++;
				if (e < g_epoch[r] || e < g_store[r])
					die("I4: node %d writes file %d at "
					    "epoch %" PRIu64 ", newest grant %"
					    PRIu64, i + 1, r, e, g_epoch[r]);
				g_store[r] = e;
			}
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
	return p != q && !part_stalled(p) && !part_stalled(q) &&
	       !breaks_lineage(parts[p].mask | parts[q].mask, 0);
}

static bool crash_ok(int i)
{
	if (crash_loses_table(i) ||
	    breaks_lineage(parts[nodes[i].part].mask, 1u << i)) {
		n_skipped++;
		return false;
	}
	return true;
}

static void restart(int i)
{
	int p;

	/* lockd restart: a new process, an empty table */
	crash(i, rn(2));
	node_start(i, true);
	p = pick_part();
	if (p != nodes[i].part && merge_ok(p, nodes[i].part))
		merge(p, nodes[i].part, true);
}

static void fault(void)
{
	uint32_t x = rn(7);
	int i = pick_alive(), p = pick_part(), q = pick_part();

	n_faults++;
	if (x == 0 && i >= 0 && popcount(alive_mask()) > 1) {
		if (crash_ok(i))
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
		if (crash_ok(i))
			restart(i);
	} else if (x == 6 && i >= 0 && !nodes[i].stalled) {
		stall(i);
	}
}

/* The daemon's timer tick, and what the clients do on their own. */
static void tick(void)
{
	for (int i = 0; i < (int)K; i++) {
		struct lm_node *ln = nodes[i].ln;

		if (!nodes[i].alive)
			continue;
		if (nodes[i].stalled) {
			if (step >= nodes[i].stall_until)
				resume(i);
			continue;
		}
		answer_revokes(i);
		fence_cmds(i);
		fix_decision(i);
		lm_node_lease_tick(ln, now_ns(i), &acts);
		lm_node_res_tick(ln, now_ns(i), &acts);
		run_acts(i);
	}
}

/* I2 at its root: a table is ready only in a partition corosync deems
 * quorate, whatever decisions (stale, foreign, cautious) it was fed (a
 * stalled node excepted until it resumes); and a node kept out has no
 * lease. */
static void check_ready(int i)
{
	struct lm_status_info si;

	lm_state_status(nodes[i].st, &si);
	/* a stalled lockd applies nothing: its table is as it was */
	if (si.ready && !part_quorate(nodes[i].part) && !nodes[i].stalled)
		die("I2: node %d is ready in a partition of %u/%u (ring %"
		    PRIu64 ", decision from %u)", i + 1,
		    popcount(parts[nodes[i].part].mask), K, si.ring.seq,
		    si.quorum_from);
	if (kept_out(i) && lm_node_lease(nodes[i].ln, NULL))
		die("node %d is kept out but has a lease", i + 1);
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

		if (parts[p].n && !part_stalled(p)) {
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

/* Still something to do for the heal to wait for? */
static bool busy_nodes(void)
{
	for (int i = 0; i < (int)K; i++) {
		/* a SETW may wait for good: a plock is held until unlocked */
		if (lm_state_fence_pending(nodes[i].st, NULL, 0) > 0)
			return true;
		if (nodes[i].alive && nodes[i].q_fix_at >= 0)
			return true;
		for (int k = 0; k < NCLI; k++)
			for (int r = 0; r < NRES; r++)
				if (nodes[i].cli[k].release_at[r] >= 0)
					return true;
	}
	return false;
}

/* Resume every draining node once the bus is quiet. */
static bool resume_drained(void)
{
	for (uint32_t t = 1; t <= K; t++) {
		struct lm_node_entry ne;
		struct lm_cmsg m = { .type = LM_C_RESUME };

		if (lm_state_node(nodes[0].st, t, &ne) || !ne.draining)
			continue;
		m.u.drain.target = t;
		lm_node_request(nodes[0].ln, LM_NREQ_INTERNAL, &m, 0, 0,
				now_ns(0), &acts);
		run_acts(0);
		return true;
	}
	return false;
}

static void check_answered(void)
{
	for (int i = 0; i < (int)K; i++)
		for (int k = 0; k < NCLI; k++) {
			const struct client *c = &nodes[i].cli[k];

			for (int j = 0; j < c->n_pend; j++)
				if (c->pend[j].acquire)
					die("liveness: node %d client %u's "
					    "acquire of file %d (seq %u) never "
					    "answered", i + 1, c->id,
					    c->pend[j].res, c->pend[j].seq);
		}
}

static void heal(void)
{
	uint64_t rounds = 0;

	tr("final heal");
	for (int i = 0; i < (int)K; i++) {
		if (!nodes[i].alive)
			node_start(i, false);
		else if (nodes[i].stalled)
			resume(i);
	}
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

		if (!busy)
			busy = resume_drained();
		busy |= busy_nodes();
		step++;
		tick();
		check_all();
		if (!busy)
			break;
		if (++rounds > 200000) {
			for (int i = 0; i < (int)K; i++) {
				uint32_t ids[MAXK];
				size_t np = lm_state_fence_pending(
					nodes[i].st, ids, MAXK);

				fprintf(stderr, "node %d: fencer %u, pending "
					"%zu (%u), fence cmd at %" PRId64 "\n",
					i + 1, lm_state_fencer(nodes[i].st),
					np, np ? ids[0] : 0,
					np ? nodes[i].fence_done_at[ids[0]] :
					0);
			}
			die("liveness: the bus never drained after the heal");
		}
	}
	check_answered();
}

static void usage(void)
{
	fprintf(stderr, "usage: lm_sim [--seed S] [--steps N] [--nodes K] "
			"[--lease MS] [--verbose]\n");
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
		else if (!strcmp(argv[a], "--lease") && a + 1 < argc)
			lease_ms = (uint32_t)strtoul(argv[++a], NULL, 0);
		else if (!strcmp(argv[a], "--verbose"))
			verbose = true;
		else
			usage();
	}
	if (K < 1 || K > MAXK || lease_ms < 16)
		usage();
	rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
	/* half the seeds also wait for a (simulated) fence command */
	fence_cmd = rnd() & 1;
	printf("lm_sim: seed %" PRIu64 " steps %" PRIu64 " nodes %u lease %u "
	       "ms%s (reproduce: lm_sim --seed %" PRIu64 " --steps %" PRIu64
	       " --nodes %u --lease %u)\n", seed, steps, K, lease_ms,
	       fence_cmd ? ", fence command" : "", seed, steps, K, lease_ms);
	fflush(stdout);
	lm_evq_init(&evq);
	lm_node_actq_init(&acts);
	for (int i = 0; i < (int)K; i++) {
		node_reset(i);
		machine_drift[i] = rn(DRIFT_PPM + 1);
	}
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
	       " transfers, %" PRIu64 " fences, %" PRIu64 " lease ends, %"
	       PRIu64 " lost, %" PRIu64 " stalls, %" PRIu64 " faults (%"
	       PRIu64 " skipped: would lose the newest table), %" PRIu64
	       " nodes kept out, %" PRIu64 " stale and %" PRIu64
	       " cautious quorum decisions\n",
	       steps, n_deliveries, n_grants, n_writes, n_syncs, n_fences,
	       n_lease_ends, n_lost_pushes, n_stalls, n_faults, n_skipped,
	       n_kept_out, n_stale_q, n_cautious_q);
	for (int i = 0; i < (int)K; i++)
		node_reset(i);
	for (int p = 0; p < n_parts; p++) {
		discard(p, 0);
		free(parts[p].q);
	}
	lm_evq_free(&evq);
	lm_node_actq_free(&acts);
	return 0;
}
