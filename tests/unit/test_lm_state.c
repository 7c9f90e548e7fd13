/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_lm_state.c - unit tests of the replicated lock table (lm_state.h).
 *
 * One table is driven as one node sees the cluster: membership changes and
 * messages from any node id are applied to it, and the events it returns
 * are checked.  The state transfer is driven by hand, with the table's own
 * snapshot as the donor's.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lm_state.h"

struct t {
	struct lm_state *st;
	struct lm_evq q;
	uint32_t members[LM_MAX_NODES];
	size_t n;
	uint32_t expected;
	uint64_t ring_seq;
	bool manual_quorum; /* confchg() sends no decision */
	bool keep_ring;	    /* confchg() without a new ring (a lockd left) */
};

static struct lm_res R(uint64_t fileid)
{
	struct lm_res r;

	memset(&r, 0, sizeof(r));
	memset(r.volume, 0xab, sizeof(r.volume));
	r.fileid = fileid;
	return r;
}

static const struct lm_ev *ev_find(struct t *t, enum lm_ev_type type,
				   uint32_t node)
{
	for (size_t i = 0; i < t->q.n; i++)
		if (t->q.ev[i].type == type &&
		    (node == 0 || t->q.ev[i].node == node))
			return &t->q.ev[i];
	return NULL;
}

static size_t ev_count(struct t *t, enum lm_ev_type type)
{
	size_t n = 0;

	for (size_t i = 0; i < t->q.n; i++)
		n += t->q.ev[i].type == type;
	return n;
}

static void check_ok(struct t *t)
{
	char why[256] = "";

	if (lm_state_check(t->st, why, sizeof(why)))
		fail_msg("lm_state_check: %s", why);
}

static void msg(struct t *t, uint32_t from, const struct lm_cmsg *m)
{
	lm_evq_reset(&t->q);
	assert_int_equal(lm_state_apply_msg(t->st, from, m, &t->q), 0);
	check_ok(t);
}

/* votequorum's decision for ring seq, as node from multicasts it;
 * events are appended to t->q. */
static void decide(struct t *t, uint32_t from, uint64_t seq, bool quorate)
{
	struct lm_cmsg m = { .type = LM_C_QUORUM };

	m.u.quorum.ring.nodeid = 1;
	m.u.quorum.ring.seq = seq;
	m.u.quorum.quorate = quorate;
	m.u.quorum.node_votes = 1;
	m.u.quorum.expected_votes = t->expected;
	m.u.quorum.total_votes = (uint32_t)t->n;
	m.u.quorum.quorum = t->expected / 2 + 1;
	assert_int_equal(lm_state_apply_msg(t->st, from, &m, &t->q), 0);
	check_ok(t);
}

static void ring(struct t *t)
{
	struct lm_ring r = { .nodeid = 1, .seq = ++t->ring_seq };

	assert_int_equal(lm_state_apply_ring(t->st, &r, &t->q), 0);
	check_ok(t);
}

/*
 * Apply a membership change to the list in t->members, as corosync
 * delivers it: a new ring, the confchg, then (unless the test decides
 * itself) the lowest member's votequorum decision for the new ring, a
 * simple majority of t->expected one-vote nodes.
 */
static void confchg(struct t *t, const uint32_t *left, size_t n_left,
		    const uint32_t *joined, size_t n_joined)
{
	struct lm_confchg cc = {
		.members = t->members, .n_members = t->n,
		.left = left, .n_left = n_left,
		.joined = joined, .n_joined = n_joined,
	};

	lm_evq_reset(&t->q);
	if (!t->keep_ring)
		ring(t);
	assert_int_equal(lm_state_apply_confchg(t->st, &cc, &t->q), 0);
	check_ok(t);
	if (!t->manual_quorum && t->n)
		decide(t, t->members[0], t->ring_seq, t->n * 2 > t->expected);
}

static void hello_range(struct t *t, uint32_t from, uint64_t version,
			uint64_t epoch, uint16_t min, uint16_t max)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };

	m.u.hello.n_members = (uint32_t)t->n;
	memcpy(m.u.hello.members, t->members, t->n * sizeof(uint32_t));
	m.u.hello.version = version;
	m.u.hello.epoch = epoch;
	m.u.hello.votes = 1;
	m.u.hello.expected_votes = t->expected;
	snprintf(m.u.hello.name, sizeof(m.u.hello.name), "n%u", from);
	m.u.hello.proto_min = min;
	m.u.hello.proto_max = max;
	msg(t, from, &m);
}

static void hello(struct t *t, uint32_t from, uint64_t version,
		  uint64_t epoch)
{
	hello_range(t, from, version, epoch, 2, 2);
}

/* The donor sends buf in chunks of chunk bytes, then DONE. */
static void send_snapshot(struct t *t, uint32_t donor, const uint8_t *buf,
			  size_t len, size_t chunk)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_DATA };
	uint32_t idx = 0;

	for (size_t off = 0; off < len; off += chunk, idx++) {
		m.u.sync_data.index = idx;
		m.u.sync_data.len = (uint32_t)(len - off < chunk ? len - off :
								   chunk);
		m.u.sync_data.data = buf + off;
		msg(t, donor, &m);
	}
	m.type = LM_C_SYNC_DONE;
	m.u.sync_done.chunks = idx;
	m.u.sync_done.total_len = len;
	m.u.sync_done.checksum = lm_checksum64(LM_CHECKSUM_SEED, buf, len);
	msg(t, donor, &m);
}

/* Full transfer where every member reports this table's own version and
 * the lowest id (donor) sends this table's own snapshot. */
static void sync_all(struct t *t)
{
	struct lm_status_info si;
	uint8_t *buf;
	size_t len;

	lm_state_status(t->st, &si);
	for (size_t i = 0; i < t->n; i++)
		hello(t, t->members[i], si.version, si.epoch);
	assert_non_null(ev_find(t, LM_EV_SYNC_DONOR, t->members[0]));
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	send_snapshot(t, t->members[0], buf, len, 100);
	free(buf);
}

/* A ready cluster of nodes 1..n, expected votes n. */
static struct t *setup_cluster(size_t n)
{
	struct t *t = calloc(1, sizeof(*t));

	t->st = lm_state_new();
	lm_evq_init(&t->q);
	t->n = n;
	t->expected = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		t->members[i] = (uint32_t)i + 1;
	confchg(t, NULL, 0, t->members, n);
	sync_all(t);
	assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
	assert_non_null(ev_find(t, LM_EV_READY, 0));
	return t;
}

static int setup3(void **state)
{
	*state = setup_cluster(3);
	return 0;
}

static int setup5(void **state)
{
	*state = setup_cluster(5);
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	lm_state_free(t->st);
	lm_evq_free(&t->q);
	free(t);
	return 0;
}

/* ---- request helpers ---- */

static void acquire(struct t *t, uint32_t from, uint64_t req, uint64_t fid)
{
	struct lm_cmsg m = { .type = LM_C_ACQUIRE };

	m.u.acquire.req_id = req;
	m.u.acquire.res = R(fid);
	msg(t, from, &m);
}

static void release(struct t *t, uint32_t from, uint64_t req, uint64_t fid,
		    uint64_t epoch)
{
	struct lm_cmsg m = { .type = LM_C_RELEASE };

	m.u.release.req_id = req;
	m.u.release.res = R(fid);
	m.u.release.epoch = epoch;
	msg(t, from, &m);
}

static void handoff(struct t *t, uint32_t from, uint64_t req, uint64_t fid,
		    uint32_t target)
{
	struct lm_cmsg m = { .type = LM_C_HANDOFF };

	m.u.handoff.req_id = req;
	m.u.handoff.res = R(fid);
	m.u.handoff.target = target;
	msg(t, from, &m);
}

static void drain(struct t *t, uint32_t from, bool on, uint32_t target)
{
	struct lm_cmsg m = { .type = on ? LM_C_DRAIN : LM_C_RESUME };

	m.u.drain.req_id = 77;
	m.u.drain.target = target;
	msg(t, from, &m);
}

static void fence(struct t *t, uint32_t from, uint32_t target)
{
	struct lm_cmsg m = { .type = LM_C_FENCE };

	m.u.fence.target = target;
	msg(t, from, &m);
}

static void plock(struct t *t, uint32_t from, uint64_t req, uint8_t op,
		  uint8_t type, uint64_t owner, uint64_t start, uint64_t end)
{
	struct lm_cmsg m = { .type = LM_C_PLOCK };

	m.u.plock.req_id = req;
	m.u.plock.res = R(1);
	m.u.plock.space = LM_SPACE_POSIX;
	m.u.plock.op = op;
	m.u.plock.type = type;
	m.u.plock.owner = owner;
	m.u.plock.start = start;
	m.u.plock.end = end;
	m.u.plock.pid = 100 + from;
	msg(t, from, &m);
}

static void flock_op(struct t *t, uint32_t from, uint64_t req, uint8_t op,
		     uint8_t type, uint64_t owner)
{
	struct lm_cmsg m = { .type = LM_C_PLOCK };

	m.u.plock.req_id = req;
	m.u.plock.res = R(1);
	m.u.plock.space = LM_SPACE_FLOCK;
	m.u.plock.op = op;
	m.u.plock.type = type;
	m.u.plock.owner = owner;
	msg(t, from, &m);
}

static int32_t reply_status(struct t *t, uint32_t node)
{
	const struct lm_ev *e = ev_find(t, LM_EV_REPLY, node);

	assert_non_null(e);
	return e->status;
}

static struct lm_owner_entry owner_of(struct t *t, uint64_t fid)
{
	struct lm_owner_entry e;
	struct lm_res r = R(fid);

	memset(&e, 0, sizeof(e));
	if (lm_state_owner(t->st, &r, &e))
		e.owner = 0;
	return e;
}

/* Remove node id from the member list (leave). */
static void leave(struct t *t, uint32_t id)
{
	size_t j = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->members[i] != id)
			t->members[j++] = t->members[i];
	t->n = j;
	confchg(t, &id, 1, NULL, 0);
}

static void join(struct t *t, uint32_t id)
{
	size_t i = t->n++;

	while (i > 0 && t->members[i - 1] > id) {
		t->members[i] = t->members[i - 1];
		i--;
	}
	t->members[i] = id;
	confchg(t, NULL, 0, &id, 1);
}

/* ---- tests: readiness and quorum ---- */

static void test_not_ready_replies(void **state)
{
	struct t t0 = { 0 }, *t = &t0;
	struct lm_status_info si;

	t->st = lm_state_new();
	t->n = 2;
	t->expected = 5;
	t->members[0] = 1;
	t->members[1] = 2;
	confchg(t, NULL, 0, t->members, 2);
	acquire(t, 1, 9, 1);
	assert_int_equal(reply_status(t, 1), LM_ERR_SYNCING);
	assert_int_equal(ev_find(t, LM_EV_REPLY, 1)->req_id, 9);
	sync_all(t);
	assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
	assert_null(ev_find(t, LM_EV_READY, 0));
	lm_state_status(t->st, &si);
	assert_false(si.quorate);
	assert_int_equal(si.expected_votes, 5);
	assert_int_equal(si.total_votes, 2);
	acquire(t, 1, 10, 1);
	assert_int_equal(reply_status(t, 1), LM_ERR_NOQUORUM);
	assert_int_equal(lm_state_fencer(t->st), 0);
	/* a FENCE while not ready changes nothing and answers nothing */
	fence(t, 1, 2);
	assert_int_equal(t->q.n, 0);
	/* a third member makes 3 of 5: quorate after the transfer */
	join(t, 3);
	sync_all(t);
	assert_non_null(ev_find(t, LM_EV_READY, 0));
	assert_int_equal(lm_state_fencer(t->st), 1);
	lm_state_free(t->st);
	lm_evq_free(&t->q);
}

static bool is_ready(struct t *t)
{
	struct lm_status_info si;

	lm_state_status(t->st, &si);
	return si.ready;
}

/* Votes reported by nodes are shown, never counted: corosync decides. */
static void test_quorum_node_info(void **state)
{
	struct t *t = *state;
	struct lm_cmsg m = { .type = LM_C_NODE_INFO };
	struct lm_node_entry ne;

	m.u.node_info.votes = 3;
	m.u.node_info.expected_votes = 7;
	msg(t, 2, &m);
	assert_null(ev_find(t, LM_EV_NOT_READY, 0));
	assert_true(is_ready(t));
	assert_int_equal(lm_state_node(t->st, 2, &ne), 0);
	assert_int_equal(ne.votes, 3);
	/* heartbeats are not applied */
	m.type = LM_C_HEARTBEAT;
	msg(t, 1, &m);
	assert_int_equal(t->q.n, 0);
}

static void test_quorum_decisions(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;
	uint64_t r = t->ring_seq, v;

	/* member 2's votequorum says not quorate: the cautious view wins */
	lm_evq_reset(&t->q);
	decide(t, 2, r, false);
	assert_non_null(ev_find(t, LM_EV_NOT_READY, 0));
	lm_state_status(t->st, &si);
	assert_false(si.quorate);
	assert_int_equal(si.quorum_from, 2);
	acquire(t, 1, 1, 1);
	assert_int_equal(reply_status(t, 1), LM_ERR_NOQUORUM);
	/* stale (older ring), foreign (other ring) and non-member decisions
	 * change nothing */
	lm_evq_reset(&t->q);
	decide(t, 2, r - 1, true);
	decide(t, 2, r + 1, true);
	decide(t, 9, r, true);
	assert_int_equal(t->q.n, 0);
	assert_false(is_ready(t));
	/* member 2 changes its mind within the ring (a quorum device's
	 * vote arrived): ready again, the version bumped */
	lm_state_status(t->st, &si);
	v = si.version;
	lm_evq_reset(&t->q);
	decide(t, 2, r, true);
	assert_non_null(ev_find(t, LM_EV_READY, 0));
	lm_state_status(t->st, &si);
	assert_int_equal(si.version, v + 1);
	/* a new ring forgets every decision without deciding "not
	 * quorate": the daemon waits for the new ring's decision */
	lm_evq_reset(&t->q);
	ring(t);
	assert_non_null(ev_find(t, LM_EV_NOT_READY, 0));
	lm_state_status(t->st, &si);
	assert_false(si.quorate);
	assert_int_equal(si.quorum_from, 0);
	/* the same ring again changes nothing */
	{
		struct lm_ring same = { .nodeid = 1, .seq = t->ring_seq };

		lm_evq_reset(&t->q);
		assert_int_equal(lm_state_apply_ring(t->st, &same, &t->q), 0);
		assert_int_equal(t->q.n, 0);
	}
	/* "quorate" for the old ring, delivered late, never counts */
	lm_evq_reset(&t->q);
	decide(t, 1, r, true);
	assert_false(is_ready(t));
	decide(t, 3, t->ring_seq, true);
	assert_non_null(ev_find(t, LM_EV_READY, 0));
	/* a membership change without a ring change forgets them too */
	lm_evq_reset(&t->q);
	t->manual_quorum = true;
	t->keep_ring = true;
	leave(t, 3);
	assert_non_null(ev_find(t, LM_EV_NOT_READY, 0));
	lm_evq_reset(&t->q);
	decide(t, 3, t->ring_seq, true); /* no longer a member */
	assert_false(is_ready(t));
	decide(t, 1, t->ring_seq, true);
	assert_true(is_ready(t));
}

/*
 * The table follows votequorum even where a vote count of the members
 * would not: one node of two with a quorum device's vote, and
 * last_man_standing shrinking expected votes as nodes go.
 */
static void test_quorum_follows_votequorum(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;

	leave(t, 3);
	assert_true(is_ready(t));
	t->manual_quorum = true;
	leave(t, 2);
	assert_false(is_ready(t));
	t->expected = 1; /* last_man_standing recalculated it */
	decide(t, 1, t->ring_seq, true);
	assert_non_null(ev_find(t, LM_EV_READY, 0));
	lm_state_status(t->st, &si);
	assert_int_equal(si.expected_votes, 1);
	assert_int_equal(lm_state_fencer(t->st), 1);
	acquire(t, 1, 1, 1);
	assert_non_null(ev_find(t, LM_EV_GRANTED, 1));
}

static void test_quorum_lost_on_leave(void **state)
{
	struct t *t = *state;

	leave(t, 3);
	assert_true(is_ready(t));
	leave(t, 2);
	assert_false(is_ready(t));
	acquire(t, 1, 1, 1);
	assert_int_equal(reply_status(t, 1), LM_ERR_NOQUORUM);
}

/* ---- tests: EX ownership ---- */

static void test_acquire_release(void **state)
{
	struct t *t = *state;
	const struct lm_ev *e;
	uint64_t ep;

	acquire(t, 1, 5, 1);
	e = ev_find(t, LM_EV_GRANTED, 1);
	assert_non_null(e);
	assert_int_equal(e->req_id, 5);
	ep = e->epoch;
	assert_non_null(ev_find(t, LM_EV_OWNER, 1));
	/* idempotent */
	acquire(t, 1, 6, 1);
	assert_int_equal(reply_status(t, 1), 0);
	assert_int_equal(ev_find(t, LM_EV_REPLY, 1)->epoch, ep);
	/* wrong epoch, wrong node */
	release(t, 1, 7, 1, ep + 1);
	assert_int_equal(reply_status(t, 1), LM_ERR_NOTOWNER);
	release(t, 2, 8, 1, ep);
	assert_int_equal(reply_status(t, 2), LM_ERR_NOTOWNER);
	release(t, 2, 8, 99, ep);
	assert_int_equal(reply_status(t, 2), LM_ERR_NOTOWNER);
	release(t, 1, 9, 1, ep);
	assert_int_equal(reply_status(t, 1), 0);
	assert_non_null(ev_find(t, LM_EV_RELEASED, 1));
	e = ev_find(t, LM_EV_OWNER, 0);
	assert_non_null(e);
	assert_int_equal(e->node, 0);
	/* nothing left: the entry is gone */
	{
		struct lm_res r = R(1);
		struct lm_owner_entry oe;

		assert_int_equal(lm_state_owner(t->st, &r, &oe), -ENOENT);
	}
	/* epochs only grow */
	acquire(t, 2, 10, 1);
	assert_true(ev_find(t, LM_EV_GRANTED, 2)->epoch > ep);
}

static void test_fifo_waiters(void **state)
{
	struct t *t = *state;
	uint64_t ep;

	acquire(t, 1, 1, 1);
	ep = ev_find(t, LM_EV_GRANTED, 1)->epoch;
	acquire(t, 2, 2, 1);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 2));
	assert_non_null(ev_find(t, LM_EV_REVOKE, 1));
	acquire(t, 3, 3, 1);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 3));
	assert_null(ev_find(t, LM_EV_REVOKE, 1)); /* asked once */
	acquire(t, 2, 4, 1);			  /* queued once */
	assert_int_equal(owner_of(t, 1).n_waiters, 2);
	assert_int_equal(owner_of(t, 1).revoking, 1);
	release(t, 1, 5, 1, ep);
	/* 2 first (with its latest req_id), then asked to revoke for 3 */
	assert_int_equal(ev_find(t, LM_EV_GRANTED, 2)->req_id, 4);
	assert_non_null(ev_find(t, LM_EV_REVOKE, 2));
	ep = ev_find(t, LM_EV_GRANTED, 2)->epoch;
	release(t, 2, 6, 1, ep);
	assert_int_equal(ev_find(t, LM_EV_GRANTED, 3)->req_id, 3);
	assert_null(ev_find(t, LM_EV_REVOKE, 3));
	assert_int_equal(owner_of(t, 1).n_waiters, 0);
}

static void test_handoff(void **state)
{
	struct t *t = *state;
	uint64_t ep;

	/* free: granted to the target at once, req_id 0 */
	handoff(t, 1, 1, 1, 2);
	assert_int_equal(reply_status(t, 1), 0);
	assert_int_equal(ev_find(t, LM_EV_GRANTED, 2)->req_id, 0);
	ep = ev_find(t, LM_EV_GRANTED, 2)->epoch;
	/* owned by the target: OK, nothing changes */
	handoff(t, 1, 2, 1, 2);
	assert_int_equal(reply_status(t, 1), 0);
	assert_null(ev_find(t, LM_EV_GRANTED, 0));
	/* a waiter first, then a hand-off to 1: 1 wins over the waiter */
	acquire(t, 3, 3, 1);
	handoff(t, 2, 4, 1, 1);
	assert_int_equal(owner_of(t, 1).handoff_target, 1);
	release(t, 2, 5, 1, ep);
	assert_non_null(ev_find(t, LM_EV_GRANTED, 1));
	assert_non_null(ev_find(t, LM_EV_REVOKE, 1)); /* 3 still waits */
	assert_int_equal(owner_of(t, 1).handoff_target, 0);
	/* errors */
	handoff(t, 1, 6, 1, 42);
	assert_int_equal(reply_status(t, 1), LM_ERR_NONODE);
	leave(t, 3);
	handoff(t, 1, 7, 1, 3);
	assert_int_equal(reply_status(t, 1), LM_ERR_NOTMEMBER);
	drain(t, 1, true, 2);
	handoff(t, 1, 8, 1, 2);
	assert_int_equal(reply_status(t, 1), LM_ERR_DRAINING);
}

static void test_handoff_target_gone(void **state)
{
	struct t *t = *state;
	uint64_t ep;

	acquire(t, 1, 1, 1);
	ep = ev_find(t, LM_EV_GRANTED, 1)->epoch;
	acquire(t, 2, 2, 1);
	handoff(t, 1, 3, 1, 3);
	leave(t, 3);
	release(t, 1, 4, 1, ep);
	/* the target left: the waiter gets it */
	assert_non_null(ev_find(t, LM_EV_GRANTED, 2));
}

static void test_drain_resume(void **state)
{
	struct t *t = *state;
	uint64_t ep;

	acquire(t, 1, 1, 1);
	ep = ev_find(t, LM_EV_GRANTED, 1)->epoch;
	acquire(t, 1, 2, 2);
	drain(t, 3, true, 1);
	assert_int_equal(reply_status(t, 3), 0);
	assert_int_equal(ev_count(t, LM_EV_REVOKE), 2);
	acquire(t, 1, 3, 3);
	assert_int_equal(reply_status(t, 1), LM_ERR_DRAINING);
	/* release with no waiter: free */
	release(t, 1, 4, 1, ep);
	assert_int_equal(owner_of(t, 1).owner, 0);
	/* a draining waiter is not eligible: a free resource stays free */
	acquire(t, 2, 5, 4);
	ep = ev_find(t, LM_EV_GRANTED, 2)->epoch;
	drain(t, 3, true, 3);
	acquire(t, 3, 6, 4);
	assert_int_equal(reply_status(t, 3), LM_ERR_DRAINING);
	drain(t, 3, false, 3);
	acquire(t, 3, 7, 4);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 3));
	drain(t, 3, true, 3);
	release(t, 2, 8, 4, ep);
	assert_null(ev_find(t, LM_EV_GRANTED, 0));
	assert_int_equal(owner_of(t, 4).n_waiters, 1);
	/* resume: its queued acquire of the free resource is granted */
	drain(t, 1, false, 3);
	assert_int_equal(ev_find(t, LM_EV_GRANTED, 3)->req_id, 7);
	drain(t, 1, true, 42);
	assert_int_equal(reply_status(t, 1), LM_ERR_NONODE);
}

/* ---- tests: fencing ---- */

static void test_fence(void **state)
{
	struct t *t = *state;
	struct lm_node_entry ne;
	uint32_t ids[8];

	acquire(t, 3, 1, 1);
	acquire(t, 2, 2, 1);	/* queued behind 3 */
	acquire(t, 3, 3, 2);
	acquire(t, 4, 4, 2);	/* queued behind 3 */
	acquire(t, 2, 5, 3);
	acquire(t, 4, 6, 3);	/* 4 waits on 3, then leaves */
	plock(t, 3, 7, LM_PL_SET, LM_LK_WRITE, 1, 0, 9);
	leave(t, 4);
	assert_int_equal(owner_of(t, 3).n_waiters, 0); /* wait dropped */
	leave(t, 3);
	lm_state_node(t->st, 3, &ne);
	assert_int_equal(ne.state, LM_NODE_FENCING);
	assert_int_equal(ne.n_owned, 2);
	assert_int_equal(ne.n_locks, 1);
	assert_int_equal(lm_state_node(t->st, 4, &ne), 0);
	assert_int_equal(ne.state, LM_NODE_DOWN);
	/* holdings kept: nothing granted until the fence */
	assert_int_equal(owner_of(t, 1).owner, 3);
	acquire(t, 1, 8, 1);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 1));
	assert_null(ev_find(t, LM_EV_REVOKE, 0)); /* fencing: not asked */
	plock(t, 1, 9, LM_PL_SET, LM_LK_READ, 1, 5, 5);
	assert_int_equal(reply_status(t, 1), EAGAIN);
	assert_int_equal(lm_state_fence_pending(t->st, ids, 8), 1);
	assert_int_equal(ids[0], 3);
	fence(t, 1, 2);	/* not fencing: ignored */
	assert_int_equal(t->q.n, 0);
	fence(t, 1, 3);
	assert_int_equal(ev_count(t, LM_EV_LOST), 2);
	assert_non_null(ev_find(t, LM_EV_FENCED, 3));
	assert_int_equal(owner_of(t, 1).owner, 2); /* FIFO: 2 then 1 */
	assert_int_equal(owner_of(t, 2).owner, 0); /* 4 left: free */
	lm_state_node(t->st, 3, &ne);
	assert_int_equal(ne.state, LM_NODE_DOWN);
	assert_int_equal(lm_state_fence_pending(t->st, ids, 8), 0);
}

static void test_fencing_rejoined(void **state)
{
	struct t *t = *state;
	struct lm_node_entry ne;
	uint32_t ids[8];
	uint64_t ep;

	acquire(t, 3, 1, 1);
	ep = ev_find(t, LM_EV_GRANTED, 3)->epoch;
	leave(t, 3);
	join(t, 3);
	sync_all(t);
	lm_state_node(t->st, 3, &ne);
	assert_int_equal(ne.state, LM_NODE_FENCING);
	assert_int_equal(ne.member, 1);
	/* a rejoined fencing node may not act, but is pending a fence */
	acquire(t, 3, 2, 5);
	assert_int_equal(reply_status(t, 3), LM_ERR_FENCING);
	release(t, 3, 3, 1, ep);
	assert_int_equal(reply_status(t, 3), LM_ERR_FENCING);
	plock(t, 3, 4, LM_PL_SET, LM_LK_READ, 1, 0, 0);
	assert_int_equal(reply_status(t, 3), LM_ERR_FENCING);
	handoff(t, 1, 5, 2, 3);
	assert_int_equal(reply_status(t, 1), LM_ERR_FENCING);
	assert_int_equal(lm_state_fence_pending(t->st, ids, 8), 1);
	fence(t, 1, 3);
	assert_non_null(ev_find(t, LM_EV_LOST, 3));
	lm_state_node(t->st, 3, &ne);
	assert_int_equal(ne.state, LM_NODE_UP);
	acquire(t, 3, 6, 1);
	assert_non_null(ev_find(t, LM_EV_GRANTED, 3));
}

/* ---- tests: POSIX and flock locks ---- */

struct lk_list {
	struct lm_lock_entry e[32];
	int n;
};

static int lk_collect(const struct lm_lock_entry *e, void *arg)
{
	struct lk_list *l = arg;

	if (l->n < 32)
		l->e[l->n++] = *e;
	return 0;
}

static struct lk_list locks_of(struct t *t)
{
	struct lk_list l = { .n = 0 };
	struct lm_res r = R(1);

	lm_state_foreach_lock(t->st, &r, lk_collect, &l);
	return l;
}

static void expect_range(const struct lm_lock_entry *e, uint8_t type,
			 uint64_t start, uint64_t end)
{
	assert_int_equal(e->type, type);
	assert_int_equal(e->start, start);
	assert_int_equal(e->end, end);
}

static void test_plock_split_merge(void **state)
{
	struct t *t = *state;
	struct lk_list l;

	plock(t, 1, 1, LM_PL_SET, LM_LK_WRITE, 7, 0, 99);
	assert_int_equal(reply_status(t, 1), 0);
	/* unlock in the middle splits */
	plock(t, 1, 2, LM_PL_UNLOCK, 0, 7, 10, 19);
	l = locks_of(t);
	assert_int_equal(l.n, 2);
	expect_range(&l.e[0], LM_LK_WRITE, 0, 9);
	expect_range(&l.e[1], LM_LK_WRITE, 20, 99);
	/* refill the hole: adjacent merge back into one range */
	plock(t, 1, 3, LM_PL_SET, LM_LK_WRITE, 7, 10, 19);
	l = locks_of(t);
	assert_int_equal(l.n, 1);
	expect_range(&l.e[0], LM_LK_WRITE, 0, 99);
	/* downgrade part of it: three ranges */
	plock(t, 1, 4, LM_PL_SET, LM_LK_READ, 7, 40, 49);
	l = locks_of(t);
	assert_int_equal(l.n, 3);
	expect_range(&l.e[0], LM_LK_WRITE, 0, 39);
	expect_range(&l.e[1], LM_LK_READ, 40, 49);
	expect_range(&l.e[2], LM_LK_WRITE, 50, 99);
	/* upgrade it back: one range again */
	plock(t, 1, 5, LM_PL_SET, LM_LK_WRITE, 7, 40, 49);
	l = locks_of(t);
	assert_int_equal(l.n, 1);
	/* to end of file, then unlock a tail that reaches LM_OFFSET_MAX */
	plock(t, 1, 6, LM_PL_SET, LM_LK_WRITE, 7, 100, LM_OFFSET_MAX);
	l = locks_of(t);
	assert_int_equal(l.n, 1);
	expect_range(&l.e[0], LM_LK_WRITE, 0, LM_OFFSET_MAX);
	plock(t, 1, 7, LM_PL_UNLOCK, 0, 7, 1000, LM_OFFSET_MAX);
	l = locks_of(t);
	expect_range(&l.e[0], LM_LK_WRITE, 0, 999);
	plock(t, 1, 8, LM_PL_SET, LM_LK_READ, 7, LM_OFFSET_MAX,
	      LM_OFFSET_MAX);
	l = locks_of(t);
	assert_int_equal(l.n, 2);
	expect_range(&l.e[1], LM_LK_READ, LM_OFFSET_MAX, LM_OFFSET_MAX);
	/* unlock from 0 covering the first range entirely */
	plock(t, 1, 9, LM_PL_UNLOCK, 0, 7, 0, 999);
	l = locks_of(t);
	assert_int_equal(l.n, 1);
	/* bad ranges and types */
	plock(t, 1, 10, LM_PL_SET, LM_LK_READ, 7, 5, 4);
	assert_int_equal(reply_status(t, 1), EINVAL);
	plock(t, 1, 11, LM_PL_SET, 9, 7, 0, 4);
	assert_int_equal(reply_status(t, 1), EINVAL);
	plock(t, 1, 12, 99, LM_LK_READ, 7, 0, 4);
	assert_int_equal(reply_status(t, 1), EINVAL);
	/* F_SETLK with F_UNLCK unlocks */
	plock(t, 1, 13, LM_PL_SET, LM_LK_UNLOCK, 7, 0, LM_OFFSET_MAX);
	assert_int_equal(locks_of(t).n, 0);
	assert_int_equal(owner_of(t, 1).owner, 0);
}

static void test_plock_conflict_getlk(void **state)
{
	struct t *t = *state;
	struct lm_lock_entry c;
	struct lm_res r = R(1);

	plock(t, 1, 1, LM_PL_SET, LM_LK_READ, 7, 0, 99);
	plock(t, 2, 2, LM_PL_SET, LM_LK_READ, 8, 50, 149);
	assert_int_equal(reply_status(t, 2), 0);
	plock(t, 2, 3, LM_PL_SET, LM_LK_WRITE, 8, 90, 95);
	assert_int_equal(reply_status(t, 2), EAGAIN);
	plock(t, 2, 4, LM_PL_SET, LM_LK_WRITE, 8, 100, 149);
	assert_int_equal(reply_status(t, 2), 0);
	/* the same node with another owner conflicts too */
	plock(t, 1, 5, LM_PL_SET, LM_LK_WRITE, 9, 0, 0);
	assert_int_equal(reply_status(t, 1), EAGAIN);
	assert_int_equal(lm_state_getlk(t->st, &r, LM_SPACE_POSIX, 3, 1,
					LM_LK_WRITE, 120, 130, &c), 1);
	assert_int_equal(c.node, 2);
	assert_int_equal(c.pid, 102);
	assert_int_equal(lm_state_getlk(t->st, &r, LM_SPACE_POSIX, 3, 1,
					LM_LK_READ, 0, 99, &c), 0);
	assert_int_equal(lm_state_getlk(t->st, &r, LM_SPACE_POSIX, 2, 8,
					LM_LK_WRITE, 100, 149, &c), 0);
}

static void test_plock_setw_wakeup(void **state)
{
	struct t *t = *state;
	const struct lm_ev *e;

	plock(t, 1, 1, LM_PL_SET, LM_LK_WRITE, 7, 0, 99);
	plock(t, 2, 2, LM_PL_SETW, LM_LK_WRITE, 8, 50, 59);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 2));
	plock(t, 3, 3, LM_PL_SETW, LM_LK_READ, 9, 55, 200);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 3));
	/* a later SETW that conflicts with a queued one waits too */
	plock(t, 2, 4, LM_PL_SETW, LM_LK_READ, 10, 200, 300);
	assert_non_null(ev_find(t, LM_EV_REPLY, 2)); /* no conflict: held */
	plock(t, 1, 5, LM_PL_SETW, LM_LK_READ, 11, 150, 160);
	assert_int_equal(reply_status(t, 1), 0); /* READ vs queued READ */
	assert_int_equal(locks_of(t).n, 5);
	/* unlocking part of the range does not wake 8 (still overlaps) */
	plock(t, 1, 6, LM_PL_UNLOCK, 0, 7, 0, 49);
	assert_null(ev_find(t, LM_EV_PLOCK_GRANTED, 0));
	plock(t, 1, 7, LM_PL_UNLOCK, 0, 7, 50, 99);
	e = ev_find(t, LM_EV_PLOCK_GRANTED, 2);
	assert_non_null(e);
	assert_int_equal(e->req_id, 2);
	assert_int_equal(e->owner, 8);
	/* 9 overlaps 8's new write lock: still waiting */
	assert_null(ev_find(t, LM_EV_PLOCK_GRANTED, 3));
	/* RELEASE_OWNER of 8 wakes 9 */
	plock(t, 2, 8, LM_PL_RELEASE_OWNER, 0, 8, 0, 0);
	assert_non_null(ev_find(t, LM_EV_PLOCK_GRANTED, 3));
	/* cancel of a queued wait */
	plock(t, 1, 9, LM_PL_SETW, LM_LK_WRITE, 12, 0, LM_OFFSET_MAX);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 1));
	plock(t, 1, 10, LM_PL_CANCEL, 0, 12, 0, 0);
	assert_int_equal(ev_count(t, LM_EV_REPLY), 2);
	assert_int_equal(t->q.ev[0].status, LM_ERR_CANCELED);
	assert_int_equal(t->q.ev[0].req_id, 9);
}

static void test_plock_leave_drops_waits(void **state)
{
	struct t *t = *state;

	plock(t, 1, 1, LM_PL_SET, LM_LK_WRITE, 7, 0, 9);
	plock(t, 2, 2, LM_PL_SETW, LM_LK_WRITE, 8, 0, 9);
	plock(t, 3, 3, LM_PL_SETW, LM_LK_WRITE, 9, 5, 5);
	leave(t, 2);
	assert_int_equal(locks_of(t).n, 2); /* 1's lock, 3's wait */
	plock(t, 1, 4, LM_PL_UNLOCK, 0, 7, 0, 9);
	assert_non_null(ev_find(t, LM_EV_PLOCK_GRANTED, 3));
}

static void test_flock(void **state)
{
	struct t *t = *state;
	struct lk_list l;

	flock_op(t, 1, 1, LM_PL_SET, LM_LK_READ, 7);
	flock_op(t, 2, 2, LM_PL_SET, LM_LK_READ, 8);
	assert_int_equal(reply_status(t, 2), 0);
	flock_op(t, 2, 3, LM_PL_SET, LM_LK_WRITE, 8);
	assert_int_equal(reply_status(t, 2), EAGAIN);
	flock_op(t, 2, 4, LM_PL_SETW, LM_LK_WRITE, 8);
	assert_non_null(ev_find(t, LM_EV_QUEUED, 2));
	/* a POSIX write lock is another space: no conflict */
	plock(t, 3, 5, LM_PL_SET, LM_LK_WRITE, 9, 0, LM_OFFSET_MAX);
	assert_int_equal(reply_status(t, 3), 0);
	flock_op(t, 1, 6, LM_PL_UNLOCK, 0, 7);
	assert_non_null(ev_find(t, LM_EV_PLOCK_GRANTED, 2));
	l = locks_of(t);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.e[1].space, LM_SPACE_FLOCK);
	expect_range(&l.e[1], LM_LK_WRITE, 0, LM_OFFSET_MAX);
}


/* ---- tests: protocol versions ---- */

/*
 * A round where member i announces lo[i]..hi[i] and the table version of
 * this table (or 0 where fresh[i]); then the donor's snapshot, this
 * table's own.  The events of the last hello stay in *neg (copied).
 */
static uint32_t round_ranges(struct t *t, const uint16_t *lo,
			     const uint16_t *hi, const bool *fresh,
			     struct lm_evq *neg)
{
	struct lm_status_info si;
	const struct lm_ev *d;
	uint32_t donor;
	uint8_t *buf;
	size_t len;

	lm_state_status(t->st, &si);
	for (size_t i = 0; i < t->n; i++)
		hello_range(t, t->members[i], fresh[i] ? 0 : si.version,
			    si.epoch, lo[i], hi[i]);
	neg->n = 0;
	for (size_t i = 0; i < t->q.n; i++) {
		if (neg->n == neg->cap) {
			neg->cap = neg->cap ? 2 * neg->cap : 16;
			neg->ev = realloc(neg->ev, neg->cap * sizeof(*neg->ev));
			assert_non_null(neg->ev);
		}
		neg->ev[neg->n++] = t->q.ev[i];
	}
	d = ev_find(t, LM_EV_SYNC_DONOR, 0);
	assert_non_null(d);
	donor = d->node;
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	send_snapshot(t, donor, buf, len, 1000);
	free(buf);
	assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
	return donor;
}

static const struct lm_ev *neg_find(const struct lm_evq *q,
				    enum lm_ev_type type, uint32_t node)
{
	for (size_t i = 0; i < q->n; i++)
		if (q->ev[i].type == type && (!node || q->ev[i].node == node))
			return &q->ev[i];
	return NULL;
}

static uint16_t proto_of(struct t *t)
{
	struct lm_status_info si;

	lm_state_status(t->st, &si);
	return si.proto_version;
}

static uint8_t state_of(struct t *t, uint32_t id)
{
	struct lm_node_entry e;

	assert_int_equal(lm_state_node(t->st, id, &e), 0);
	return e.state;
}

/* Ranges that overlap: the highest common version; it falls when an older
 * node joins, rises when it leaves (no round needed then). */
static void test_proto_overlap(void **state)
{
	static const uint16_t lo[] = { 2, 2, 2, 2, 2 }, hi3[] = { 3, 3, 3, 3 };
	static const uint16_t hi2[] = { 3, 3, 3, 3, 2 };
	static const bool fresh4[] = { 0, 0, 0, 1 }, fresh5[] = { 0, 0, 0, 0, 1 };
	struct t *t = *state;
	struct lm_evq neg = { 0 };
	const struct lm_ev *e;
	struct lm_status_info si;

	assert_int_equal(proto_of(t), 2);
	join(t, 4);
	round_ranges(t, lo, hi3, fresh4, &neg);
	e = neg_find(&neg, LM_EV_PROTO, 0);
	assert_non_null(e);
	assert_int_equal(e->epoch, 3);
	assert_int_equal(e->owner, 2);
	assert_null(neg_find(&neg, LM_EV_EXCLUDED, 0));
	assert_int_equal(proto_of(t), 3);
	join(t, 5);
	round_ranges(t, lo, hi2, fresh5, &neg);
	assert_int_equal(neg_find(&neg, LM_EV_PROTO, 0)->epoch, 2);
	assert_int_equal(proto_of(t), 2);
	assert_int_equal(state_of(t, 5), LM_NODE_UP);
	leave(t, 5);
	e = ev_find(t, LM_EV_PROTO, 0);
	assert_non_null(e);
	assert_int_equal(e->epoch, 3);
	lm_state_status(t->st, &si);
	assert_false(si.syncing);
	assert_true(si.ready);
	assert_int_equal(si.proto_version, 3);
	free(neg.ev);
}

/* A newcomer too new for the running lineage is kept out: not a member
 * for quorum, requests or fencing; any change restarts a round while it
 * is there; once it speaks the cluster's version it is let in. */
static void test_proto_excluded(void **state)
{
	static const uint16_t lo[] = { 2, 2, 2, 2, 2, 4 };
	static const uint16_t hi[] = { 3, 3, 3, 3, 3, 4 };
	static const uint16_t lo2[] = { 2, 2, 2, 2, 3 }, hi2[] = { 3, 3, 3, 3, 4 };
	static const bool fresh[] = { 0, 0, 0, 0, 0, 1 };
	struct t *t = *state;
	struct lm_evq neg = { 0 };
	struct lm_status_info si;
	const struct lm_ev *e;

	acquire(t, 1, 1, 1);
	join(t, 6);
	assert_int_equal(round_ranges(t, lo, hi, fresh, &neg), 1);
	e = neg_find(&neg, LM_EV_EXCLUDED, 6);
	assert_non_null(e);
	assert_int_equal(e->epoch, 3);
	assert_int_equal(neg_find(&neg, LM_EV_PROTO, 0)->epoch, 3);
	assert_int_equal(state_of(t, 6), LM_NODE_INCOMPATIBLE);
	lm_state_status(t->st, &si);
	assert_true(si.ready);
	/* votequorum counts it: corosync knows no protocol versions */
	assert_int_equal(si.total_votes, 6);
	assert_int_equal(owner_of(t, 1).owner, 1);
	acquire(t, 6, 9, 2);
	assert_int_equal(reply_status(t, 6), LM_ERR_NOTMEMBER);
	assert_int_equal(lm_state_fencer(t->st), 1);
	/* another node leaves: node 6 is reconsidered in a round */
	leave(t, 5);
	lm_state_status(t->st, &si);
	assert_true(si.syncing);
	round_ranges(t, lo + 1, hi + 1, fresh + 1, &neg);
	assert_non_null(neg_find(&neg, LM_EV_EXCLUDED, 6));
	/* node 6 restarts with a range that meets the cluster's */
	leave(t, 6);
	assert_int_equal(state_of(t, 6), LM_NODE_DOWN);
	lm_state_status(t->st, &si);
	assert_false(si.syncing);
	join(t, 6);
	round_ranges(t, lo2, hi2, fresh + 1, &neg);
	assert_null(neg_find(&neg, LM_EV_EXCLUDED, 0));
	assert_int_equal(state_of(t, 6), LM_NODE_UP);
	assert_int_equal(proto_of(t), 3);
	free(neg.ev);
}

/* ---- tests: state transfer and snapshots ---- */

static void test_sync_donor_choice(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;

	join(t, 4);
	assert_non_null(ev_find(t, LM_EV_NOT_READY, 0));
	lm_state_status(t->st, &si);
	assert_true(si.syncing);
	acquire(t, 1, 1, 1);
	assert_int_equal(reply_status(t, 1), LM_ERR_SYNCING);
	hello(t, 1, 5, 3);
	hello(t, 1, 9, 3);	/* a second hello from 1 is ignored */
	hello(t, 2, 7, 3);
	hello(t, 3, 7, 8);
	assert_null(ev_find(t, LM_EV_SYNC_DONOR, 0));
	{
		/* a hello for another membership is stale */
		struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };

		m.u.hello.n_members = 1;
		m.u.hello.members[0] = 4;
		msg(t, 4, &m);
		assert_null(ev_find(t, LM_EV_SYNC_DONOR, 0));
	}
	hello(t, 4, 2, 1);
	/* highest version 7, tie between 2 and 3: the lowest id */
	assert_int_equal(ev_find(t, LM_EV_SYNC_DONOR, 0)->node, 2);
}

static void test_sync_install(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;
	struct lm_node_entry ne;
	uint8_t *buf;
	size_t len;
	uint64_t d;

	acquire(t, 1, 1, 1);
	plock(t, 2, 2, LM_PL_SET, LM_LK_READ, 7, 0, 10);
	acquire(t, 2, 3, 1); /* a queued wait, dropped by the install */
	d = lm_state_digest(t->st);
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	join(t, 4);
	hello(t, 1, 3, 50);
	hello(t, 2, 3, 1);
	hello(t, 3, 3, 1);
	hello(t, 4, 0, 0);
	assert_int_equal(ev_find(t, LM_EV_SYNC_DONOR, 0)->node, 1);
	/* chunks from others, out of order or too long are ignored */
	{
		struct lm_cmsg m = { .type = LM_C_SYNC_DATA };

		m.u.sync_data.index = 0;
		m.u.sync_data.len = 3;
		m.u.sync_data.data = (const uint8_t *)"xyz";
		msg(t, 2, &m);
		m.u.sync_data.index = 5;
		msg(t, 1, &m);
		m.u.sync_data.index = 0;
		m.u.sync_data.len = LM_SYNC_CHUNK + 1;
		msg(t, 1, &m);
		m.type = LM_C_SYNC_DONE;
		msg(t, 3, &m);
		assert_int_equal(t->q.n, 0);
	}
	send_snapshot(t, 1, buf, len, 7);
	free(buf);
	assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
	assert_non_null(ev_find(t, LM_EV_READY, 0));
	assert_non_null(ev_find(t, LM_EV_REVOKE, 1)); /* asked again */
	lm_state_status(t->st, &si);
	assert_false(si.syncing);
	assert_int_equal(si.epoch, 50);	/* highest of the hellos */
	assert_int_equal(owner_of(t, 1).n_waiters, 0);
	assert_int_equal(lm_state_node(t->st, 4, &ne), 0);
	assert_string_equal(ne.name, "n4");
	assert_int_equal(lm_state_node_by_name(t->st, "n2", &ne.id), 0);
	assert_int_equal(ne.id, 2);
	/* the table equals the donor's (epoch and version aside) */
	assert_true(lm_state_digest(t->st) != d);
	assert_int_equal(owner_of(t, 1).owner, 1);
	assert_int_equal(locks_of(t).n, 1);
}

static void test_sync_restart_on_confchg(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;

	join(t, 4);
	hello(t, 1, 1, 1);
	hello(t, 2, 1, 1);
	leave(t, 3); /* restart: hellos for the new membership needed */
	lm_state_status(t->st, &si);
	assert_true(si.syncing);
	assert_int_equal(si.donor, 0);
	sync_all(t);
	assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
}

static void test_sync_corrupt(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;
	uint8_t *buf;
	size_t len;

	acquire(t, 1, 1, 1);
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	join(t, 4);
	for (uint32_t i = 1; i <= 4; i++)
		hello(t, i, 0, 0);
	buf[len - 30] ^= 0xff; /* inside the resource: owner field */
	buf[8] ^= 0; /* checksum still matches the corrupt bytes */
	send_snapshot(t, 1, buf, len, 64);
	if (!ev_find(t, LM_EV_SYNC_FAILED, 0)) {
		/* the flip may still decode: then it installed */
		assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
	}
	/* a wrong checksum always fails */
	join(t, 5);
	for (uint32_t i = 1; i <= 5; i++)
		hello(t, i, 0, 0);
	{
		struct lm_cmsg m = { .type = LM_C_SYNC_DATA };

		m.u.sync_data.index = 0;
		m.u.sync_data.len = (uint32_t)len;
		m.u.sync_data.data = buf;
		msg(t, 1, &m);
		m.type = LM_C_SYNC_DONE;
		m.u.sync_done.chunks = 1;
		m.u.sync_done.total_len = len;
		m.u.sync_done.checksum = 1;
		msg(t, 1, &m);
		assert_non_null(ev_find(t, LM_EV_SYNC_FAILED, 0));
	}
	lm_state_status(t->st, &si);
	assert_true(si.syncing);
	assert_false(si.ready);
	free(buf);
	/* garbage that checksums fine: SYNC_FAILED too */
	join(t, 6);
	for (uint32_t i = 1; i <= 6; i++)
		hello(t, i, 0, 0);
	send_snapshot(t, 1, (const uint8_t *)"not a snapshot", 14, 5);
	assert_non_null(ev_find(t, LM_EV_SYNC_FAILED, 0));
}

static void test_snapshot_roundtrip(void **state)
{
	struct t *t = *state;
	struct lm_state *b = lm_state_new();
	struct lm_evq q;
	uint8_t *buf, *buf2;
	size_t len, len2;

	lm_evq_init(&q);
	for (uint64_t f = 1; f <= 300; f++)
		acquire(t, (uint32_t)(f % 3) + 1, f, f * 7919);
	plock(t, 1, 1, LM_PL_SET, LM_LK_WRITE, 7, 0, 9);
	plock(t, 2, 2, LM_PL_SET, LM_LK_READ, 8, 20, LM_OFFSET_MAX);
	flock_op(t, 3, 3, LM_PL_SET, LM_LK_READ, 9);
	handoff(t, 1, 4, 7919, 3);
	drain(t, 1, true, 2);
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	assert_int_equal(lm_state_snapshot_check(buf, len), 0);
	for (size_t cut = 0; cut < len; cut += 97)
		assert_int_equal(lm_state_snapshot_check(buf, cut), -EBADMSG);
	assert_int_equal(lm_state_snapshot_check(buf, len + 0), 0);
	/* a second table fed the same snapshot by a transfer */
	{
		uint32_t mem[3] = { 1, 2, 3 };
		struct lm_confchg cc = { .members = mem, .n_members = 3,
					 .joined = mem, .n_joined = 3 };
		struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };
		struct lm_ring rg = { .nodeid = 1, .seq = 1 };

		assert_int_equal(lm_state_apply_ring(b, &rg, &q), 0);
		assert_int_equal(lm_state_apply_confchg(b, &cc, &q), 0);
		m.u.hello.n_members = 3;
		memcpy(m.u.hello.members, mem, sizeof(mem));
		m.u.hello.version = 1000;
		m.u.hello.votes = 1;
		m.u.hello.expected_votes = 3;
		m.u.hello.proto_min = m.u.hello.proto_max = 2;
		for (uint32_t i = 1; i <= 3; i++) {
			snprintf(m.u.hello.name, LM_NAME_MAX, "n%u", i);
			assert_int_equal(lm_state_apply_msg(b, i, &m, &q), 0);
		}
		m.type = LM_C_SYNC_DATA;
		m.u.sync_data.index = 0;
		m.u.sync_data.len = (uint32_t)len;
		m.u.sync_data.data = buf;
		assert_int_equal(lm_state_apply_msg(b, 1, &m, &q), 0);
		m.type = LM_C_SYNC_DONE;
		m.u.sync_done.chunks = 1;
		m.u.sync_done.total_len = len;
		m.u.sync_done.checksum =
			lm_checksum64(LM_CHECKSUM_SEED, buf, len);
		assert_int_equal(lm_state_apply_msg(b, 1, &m, &q), 0);
		m.type = LM_C_QUORUM;
		memset(&m.u.quorum, 0, sizeof(m.u.quorum));
		m.u.quorum.ring = rg;
		m.u.quorum.quorate = 1;
		assert_int_equal(lm_state_apply_msg(b, 2, &m, &q), 0);
	}
	/* equal content; becoming ready bumped the version only */
	assert_int_equal(lm_state_snapshot(b, &buf2, &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf + 24, buf2 + 24, len - 24);
	/* the same change on both gives equal digests */
	lm_evq_reset(&t->q);
	{
		struct lm_cmsg m = { .type = LM_C_ACQUIRE };
		struct lm_status_info sa, sb;

		m.u.acquire.res = R(424242);
		m.u.acquire.req_id = 1;
		lm_state_apply_msg(t->st, 1, &m, &t->q);
		lm_state_apply_msg(b, 1, &m, &q);
		lm_state_status(t->st, &sa);
		lm_state_status(b, &sb);
		assert_int_equal(sa.epoch, sb.epoch);
		assert_int_equal(sa.n_resources, sb.n_resources);
		assert_int_equal(sa.n_locks, 3);
	}
	free(buf);
	free(buf2);
	lm_state_free(b);
	lm_evq_free(&q);
}

static void test_snapshot_bad(void **state)
{
	struct t *t = *state;
	uint8_t *buf;
	size_t len;

	acquire(t, 1, 1, 1);
	plock(t, 2, 2, LM_PL_SET, LM_LK_READ, 8, 0, 9);
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	/* every single-byte flip either decodes or is refused; none
	 * crashes (ASan) */
	for (size_t i = 0; i < len; i++) {
		buf[i] ^= 0x5a;
		(void)lm_state_snapshot_check(buf, len);
		buf[i] ^= 0x5a;
	}
	buf[0] ^= 1;
	assert_int_equal(lm_state_snapshot_check(buf, len), -EBADMSG);
	free(buf);
	assert_int_equal(lm_state_snapshot_check(NULL, 0), -EBADMSG);
}

/*
 * A snapshot of snap_fixture()'s table, written by the format-1 encoder
 * and kept as bytes: the encoder must go on producing exactly these, and
 * the decoder must go on installing them (a donor of an older build).
 */
static const uint8_t snap_v1[] = {
	0x43, 0x56, 0x53, 0x4e, 0x01, 0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x6e, 0x31, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x6e, 0x32, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	0x03, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x6e, 0x33, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x03, 0x00,
	0x00, 0x00, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x02, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03,
	0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc8,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0x67, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00, 0x00,
	0x00, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0x00, 0x00, 0x00, 0x00, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0x0a, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00,
	0x00, 0x00, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0xab,
	0xab, 0xab, 0xab, 0xab, 0xab, 0xab, 0x0b, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00
};

/* Owners, a revoke, a hand-off, POSIX and flock locks, a draining node. */
static void snap_fixture(struct t *t)
{
	acquire(t, 1, 1, 10);
	acquire(t, 2, 2, 10);
	acquire(t, 1, 3, 11);
	handoff(t, 2, 4, 11, 3);
	plock(t, 2, 5, LM_PL_SET, LM_LK_WRITE, 7, 0, 99);
	plock(t, 3, 6, LM_PL_SET, LM_LK_READ, 8, 200, LM_OFFSET_MAX);
	flock_op(t, 1, 7, LM_PL_SET, LM_LK_READ, 9);
	drain(t, 1, true, 3);
}

static void dump_hex(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		fprintf(stderr, "%s0x%02x,%s", i % 12 ? " " : "\t", buf[i],
			i % 12 == 11 || i + 1 == len ? "\n" : "");
}

static void test_snapshot_fixed(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;
	uint32_t again = 3;
	uint8_t *buf;
	size_t len;

	snap_fixture(t);
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	if (len != sizeof(snap_v1) || memcmp(buf, snap_v1, len)) {
		dump_hex(buf, len);
		free(buf);
		fail_msg("snapshot bytes changed (new ones above)");
	}
	free(buf);
	assert_int_equal(lm_state_snapshot_check(snap_v1, sizeof(snap_v1)),
			 0);
	/* a round (node 3 joins again) whose donor sends the fixed bytes */
	confchg(t, NULL, 0, &again, 1);
	lm_state_status(t->st, &si);
	for (size_t i = 0; i < t->n; i++)
		hello(t, t->members[i], si.version, si.epoch);
	send_snapshot(t, 1, snap_v1, sizeof(snap_v1), 64);
	assert_non_null(ev_find(t, LM_EV_SYNC_INSTALLED, 0));
	/* the same table again; only the version moved (ready bumps it) */
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	assert_int_equal(len, sizeof(snap_v1));
	assert_memory_equal(buf, snap_v1, 8);
	assert_memory_equal(buf + 16, snap_v1 + 16, len - 16);
	free(buf);
}

static int count_cb(const struct lm_owner_entry *e, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static int node_cb(const struct lm_node_entry *e, void *arg)
{
	(*(int *)arg)++;
	return e->id == 2 ? 5 : 0;
}

static void test_views(void **state)
{
	struct t *t = *state;
	struct lm_status_info si;
	int n = 0;

	for (uint64_t f = 1; f <= 1000; f++)
		acquire(t, 1, f, f);
	lm_state_foreach_owner(t->st, count_cb, &n);
	assert_int_equal(n, 1000);
	n = 0;
	assert_int_equal(lm_state_foreach_node(t->st, node_cb, &n), 5);
	assert_int_equal(n, 2);
	lm_state_status(t->st, &si);
	assert_int_equal(si.n_resources, 1000);
	assert_int_equal(si.n_members, 3);
	assert_int_equal(si.epoch, 1000);
	assert_int_equal(lm_state_node(t->st, 99, NULL), -ENOENT);
	assert_int_equal(lm_state_node_by_name(t->st, "zz", NULL), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_ready_replies),
		cmocka_unit_test_setup_teardown(test_quorum_decisions, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_quorum_follows_votequorum,
						setup3, teardown),
		cmocka_unit_test_setup_teardown(test_quorum_node_info, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_quorum_lost_on_leave,
						setup3, teardown),
		cmocka_unit_test_setup_teardown(test_acquire_release, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_fifo_waiters, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_handoff, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_handoff_target_gone,
						setup3, teardown),
		cmocka_unit_test_setup_teardown(test_drain_resume, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_fence, setup5, teardown),
		cmocka_unit_test_setup_teardown(test_fencing_rejoined, setup5,
						teardown),
		cmocka_unit_test_setup_teardown(test_plock_split_merge, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_plock_conflict_getlk,
						setup3, teardown),
		cmocka_unit_test_setup_teardown(test_plock_setw_wakeup, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_plock_leave_drops_waits,
						setup3, teardown),
		cmocka_unit_test_setup_teardown(test_flock, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_sync_donor_choice, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_sync_install, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_sync_restart_on_confchg,
						setup3, teardown),
		cmocka_unit_test_setup_teardown(test_sync_corrupt, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_roundtrip, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_bad, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_snapshot_fixed, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_views, setup3, teardown),
		cmocka_unit_test_setup_teardown(test_proto_overlap, setup3,
						teardown),
		cmocka_unit_test_setup_teardown(test_proto_excluded, setup5,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
