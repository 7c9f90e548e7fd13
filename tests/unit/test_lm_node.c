/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test_lm_node.c - unit tests of this node's decisions (lm_node.h).
 *
 * Node 1 runs lm_node around a real lock table (lm_state) of a 3-node
 * cluster: every message and membership change is applied to the table
 * and its events are handed to the node, as csvfs-lockd does; what the
 * node sends is applied back when a test says so, which lets a test put
 * other nodes' messages in between - the races of lockd_res.c's top
 * comment.  Time is an argument, so the fence timing is checked to the
 * millisecond.
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

#include "lm_node.h"
#include "lm_state.h"

#define SELF 1
#define MS 1000000ull
#define LEASE 1000
#define CLI 7 /* the client id of the tests */

struct t {
	struct lm_state *st;
	struct lm_evq q;
	struct lm_node *ln;
	struct lm_node_actq a;
	struct lm_node_conf conf;
	uint32_t members[LM_MAX_NODES];
	size_t n;
	uint64_t now;
	uint64_t ring_seq;  /* the table's current totem ring */
	bool manual_quorum; /* confchg leaves the decision to the test */
	uint16_t proto_min[8], proto_max[8]; /* by node id; 0: 2..3 */
};

static struct lm_res R(uint64_t fileid)
{
	struct lm_res r;

	memset(&r, 0, sizeof(r));
	memset(r.volume, 0xab, sizeof(r.volume));
	r.fileid = fileid;
	return r;
}

/* ---- driving the table and the node ---- */

static void route(struct t *t)
{
	char why[256] = "";

	if (lm_state_check(t->st, why, sizeof(why)))
		fail_msg("lm_state_check: %s", why);
	for (size_t i = 0; i < t->q.n; i++)
		lm_node_event(t->ln, &t->q.ev[i], t->now, &t->a);
	lm_node_applied(t->ln, t->now, &t->a);
	assert_null(t->a.fatal);
}

static void msg(struct t *t, uint32_t from, const struct lm_cmsg *m)
{
	lm_evq_reset(&t->q);
	assert_int_equal(lm_state_apply_msg(t->st, from, m, &t->q), 0);
	route(t);
}

/* votequorum's decision for ring seq, as node from multicasts it (a
 * simple majority of 3 one-vote nodes unless the test says otherwise). */
static void decide_flags(struct t *t, uint32_t from, uint64_t seq,
			 bool quorate, uint32_t flags)
{
	struct lm_cmsg m = { .type = LM_C_QUORUM };

	m.u.quorum.ring.nodeid = 1;
	m.u.quorum.ring.seq = seq;
	m.u.quorum.quorate = quorate;
	m.u.quorum.node_votes = 1;
	m.u.quorum.expected_votes = 3;
	m.u.quorum.total_votes = (uint32_t)t->n;
	m.u.quorum.quorum = 2;
	m.u.quorum.flags = flags;
	msg(t, from, &m);
}

static void decide(struct t *t, uint32_t from, uint64_t seq, bool quorate)
{
	decide_flags(t, from, seq, quorate, 0);
}

/*
 * A membership change as corosync delivers it: a new ring, the confchg,
 * then (unless the test decides itself) the lowest member's votequorum
 * decision for the new ring.
 */
static void confchg(struct t *t, const uint32_t *left, size_t n_left,
		    const uint32_t *joined, size_t n_joined)
{
	struct lm_confchg cc = {
		.members = t->members, .n_members = t->n,
		.left = left, .n_left = n_left,
		.joined = joined, .n_joined = n_joined,
	};
	struct lm_ring r = { .nodeid = 1, .seq = ++t->ring_seq };

	lm_evq_reset(&t->q);
	assert_int_equal(lm_state_apply_ring(t->st, &r, &t->q), 0);
	route(t);
	lm_node_confchg(t->ln, &cc, t->now);
	lm_evq_reset(&t->q);
	assert_int_equal(lm_state_apply_confchg(t->st, &cc, &t->q), 0);
	route(t);
	if (!t->manual_quorum && t->n)
		decide(t, t->members[0], t->ring_seq, t->n * 2 > 3);
}

/* Node from's heartbeat seq delivered (at version 2: no lease in it). */
static void heartbeat(struct t *t, uint32_t from, uint64_t seq,
		      bool tp_quorate, uint64_t now)
{
	struct lm_cmsg m = { .type = LM_C_HEARTBEAT, .version = 2 };

	m.u.heartbeat.seq = seq;
	lm_node_heartbeat(t->ln, from, &m, tp_quorate, now, &t->a);
}

static void clear(struct t *t)
{
	lm_node_actq_reset(&t->a);
}

/* Apply what node 1 sent so far (SYNC_* excepted: tests drive the
 * transfer), in order; the actions are cleared first. */
static void deliver_sent(struct t *t)
{
	struct lm_cmsg sent[64];
	size_t n = 0;

	for (size_t i = 0; i < t->a.n && n < 64; i++) {
		const struct lm_cmsg *m = &t->a.a[i].msg;

		if (t->a.a[i].type == LM_NA_SEND &&
		    m->type != LM_C_SYNC_DATA && m->type != LM_C_SYNC_DONE &&
		    m->type != LM_C_HEARTBEAT)
			sent[n++] = *m;
	}
	clear(t);
	for (size_t i = 0; i < n; i++)
		msg(t, SELF, &sent[i]);
}

static const struct lm_node_act *find_act(struct t *t,
					  enum lm_node_act_type type,
					  uint16_t what)
{
	for (size_t i = 0; i < t->a.n; i++) {
		const struct lm_node_act *a = &t->a.a[i];

		if (a->type != type)
			continue;
		if (type == LM_NA_SEND && what && a->msg.type != what)
			continue;
		if ((type == LM_NA_PUSH || type == LM_NA_PUSH_VOLUME) &&
		    what && a->smsg != what)
			continue;
		return a;
	}
	return NULL;
}

static const struct lm_node_act *find_reply(struct t *t, uint32_t seq)
{
	for (size_t i = 0; i < t->a.n; i++)
		if (t->a.a[i].type == LM_NA_REPLY && t->a.a[i].seq == seq)
			return &t->a.a[i];
	return NULL;
}

static void hello(struct t *t, uint32_t from)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };
	struct lm_status_info si;

	lm_state_status(t->st, &si);
	m.u.hello.n_members = (uint32_t)t->n;
	memcpy(m.u.hello.members, t->members, t->n * sizeof(uint32_t));
	m.u.hello.version = si.version;
	m.u.hello.epoch = si.epoch;
	m.u.hello.votes = 1;
	m.u.hello.expected_votes = 3;
	snprintf(m.u.hello.name, sizeof(m.u.hello.name), "n%u", from);
	m.u.hello.proto_min = t->proto_min[from] ? t->proto_min[from] : 2;
	m.u.hello.proto_max = t->proto_max[from] ? t->proto_max[from] : 3;
	msg(t, from, &m);
}

/* Every member says hello; the lowest member is the donor, and sends
 * this table's snapshot (node 1's lm_node must offer it when that is
 * node 1). */
static void sync_all(struct t *t)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_DATA };
	uint32_t donor = t->members[0], idx = 0;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < t->n; i++)
		hello(t, t->members[i]);
	if (donor == t->conf.self)
		assert_non_null(find_act(t, LM_NA_SEND, LM_C_SYNC_DONE));
	assert_int_equal(lm_state_snapshot(t->st, &buf, &len), 0);
	for (size_t off = 0; off < len; off += 100, idx++) {
		m.u.sync_data.index = idx;
		m.u.sync_data.len = (uint32_t)(len - off < 100 ? len - off :
					       100);
		m.u.sync_data.data = buf + off;
		msg(t, donor, &m);
	}
	m.type = LM_C_SYNC_DONE;
	memset(&m.u, 0, sizeof(m.u));
	m.u.sync_done.chunks = idx;
	m.u.sync_done.total_len = len;
	m.u.sync_done.checksum = lm_checksum64(LM_CHECKSUM_SEED, buf, len);
	msg(t, donor, &m);
	free(buf);
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

static void leave(struct t *t, uint32_t id)
{
	size_t j = 0;

	for (size_t i = 0; i < t->n; i++)
		if (t->members[i] != id)
			t->members[j++] = t->members[i];
	t->n = j;
	confchg(t, &id, 1, NULL, 0);
}

static struct t *setup_with(const struct lm_node_conf *c)
{
	struct t *t = calloc(1, sizeof(*t));

	t->st = lm_state_new();
	t->ln = lm_node_new(t->st, 0);
	lm_evq_init(&t->q);
	lm_node_actq_init(&t->a);
	t->conf = *c;
	lm_node_configure(t->ln, c);
	for (uint32_t id = 1; id <= 3; id++)
		join(t, id);
	sync_all(t);
	assert_true(lm_node_ready(t->ln));
	clear(t);
	return t;
}

static const struct lm_node_conf base_conf = {
	.self = SELF,
	.lease_ms = LEASE,
	.heartbeat_ms = LEASE / 8,
	.fence_command_timeout_ms = 500,
	.fence_retry_ms = 200,
	.revoke_timeout_ms = 300,
	.handoff_idle_ms = 500,
	.sync_chunk = 100,
};

static int setup(void **state)
{
	*state = setup_with(&base_conf);
	return 0;
}

static int setup_fence_cmd(void **state)
{
	struct lm_node_conf c = base_conf;

	c.fence_command = true;
	*state = setup_with(&c);
	return 0;
}

static int setup_two_node(void **state)
{
	struct lm_node_conf c = base_conf;

	c.two_node = true;
	*state = setup_with(&c);
	return 0;
}

static int setup_two_node_cmd(void **state)
{
	struct lm_node_conf c = base_conf;

	c.two_node = true;
	c.fence_command = true;
	*state = setup_with(&c);
	return 0;
}

static int setup_drift(void **state)
{
	struct lm_node_conf c = base_conf;

	c.drift_ppm = 100000; /* 10 % */
	c.margin_ms = 50;
	c.watchdog_ms = 200;
	*state = setup_with(&c);
	return 0;
}

static int teardown(void **state)
{
	struct t *t = *state;

	lm_node_free(t->ln);
	lm_state_free(t->st);
	lm_evq_free(&t->q);
	lm_node_actq_free(&t->a);
	free(t);
	return 0;
}

/* Another node's acquire of file fid, applied. */
static void acquire_from(struct t *t, uint32_t from, uint64_t req,
			 uint64_t fid)
{
	struct lm_cmsg m = { .type = LM_C_ACQUIRE };

	m.u.acquire.req_id = req;
	m.u.acquire.res = R(fid);
	msg(t, from, &m);
}

static void release_from(struct t *t, uint32_t from, uint64_t req,
			 uint64_t fid)
{
	struct lm_cmsg m = { .type = LM_C_RELEASE };
	struct lm_owner_entry e;
	struct lm_res r = R(fid);

	assert_int_equal(lm_state_owner(t->st, &r, &e), 0);
	m.u.release.req_id = req;
	m.u.release.res = r;
	m.u.release.epoch = e.epoch;
	msg(t, from, &m);
}

static uint32_t owner(struct t *t, uint64_t fid)
{
	struct lm_owner_entry e;
	struct lm_res r = R(fid);

	return lm_state_owner(t->st, &r, &e) ? 0 : e.owner;
}

static int own_state_cb(const struct lm_node_own_info *info, void *arg)
{
	int *out = arg;

	*out = (int)info->state;
	return 1;
}

/* The state of node 1's entry for its only resource, 0 if none. */
static int own_state(struct t *t)
{
	int s = 0;

	lm_node_foreach_own(t->ln, own_state_cb, &s);
	return s;
}

/* Client CLI acquires file fid (seq) and gets it. */
static void own_file(struct t *t, uint64_t fid, uint32_t seq)
{
	struct lm_res r = R(fid);

	lm_node_acquire(t->ln, CLI, seq, &r, 0, t->now, &t->a);
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_ACQUIRE));
	deliver_sent(t);
	assert_non_null(find_reply(t, seq));
	assert_int_equal(find_reply(t, seq)->status, 0);
	assert_int_equal(owner(t, fid), SELF);
	clear(t);
}

/* ---- fence timing ---- */

static void test_fence_wait_ms(void **state)
{
	(void)state;
	assert_int_equal(lm_node_fence_wait_ms(2200, 0, 0, 0), 2200);
	/* the drift part is rounded up: never less than needed */
	assert_int_equal(lm_node_fence_wait_ms(1000, 1, 0, 0), 1001);
	assert_int_equal(lm_node_fence_wait_ms(4000, 10000, 500, 0), 4540);
	assert_int_equal(lm_node_fence_wait_ms(4000, 10000, 500, 10000),
			 14540);
	assert_int_equal(lm_node_fence_wait_ms(UINT32_MAX, 1000000, 0, 0),
			 2ull * UINT32_MAX);
}

/* Node 3 owns file 1, its last heartbeat is delivered at hb_ms, and it
 * leaves at leave_ms. */
static void owner_departs(struct t *t, uint64_t hb_ms, uint64_t leave_ms)
{
	acquire_from(t, 3, 50, 1);
	assert_int_equal(owner(t, 1), 3);
	t->now = hb_ms * MS;
	heartbeat(t, 3, 1, true, t->now);
	t->now = leave_ms * MS;
	leave(t, 3);
	clear(t);
}

static bool fence_sent_at(struct t *t, uint64_t ms)
{
	const struct lm_node_act *a;

	t->now = ms * MS;
	clear(t);
	lm_node_lease_tick(t->ln, t->now, &t->a);
	a = find_act(t, LM_NA_SEND, LM_C_FENCE);
	if (a)
		assert_int_equal(a->msg.u.fence.target, 3);
	return a != NULL;
}

static void test_fence_after_lease(void **state)
{
	struct t *t = *state;

	owner_departs(t, 10, 300);
	assert_false(fence_sent_at(t, 10 + LEASE - 1));
	assert_true(fence_sent_at(t, 10 + LEASE));
	/* sent once per ready period, again after half a lease */
	assert_false(fence_sent_at(t, 10 + LEASE + 1));
	assert_true(fence_sent_at(t, 10 + LEASE + LEASE / 2));
	deliver_sent(t);
	assert_int_equal(owner(t, 1), 0);
	assert_int_equal(lm_state_fence_pending(t->st, NULL, 0), 0);
}

static void test_fence_drift_margin_watchdog(void **state)
{
	struct t *t = *state;

	owner_departs(t, 10, 20);
	/* 1000 + 10 % + 50 + 200 */
	assert_false(fence_sent_at(t, 10 + 1349));
	assert_true(fence_sent_at(t, 10 + 1350));
}

/* Never heard from: measured from when it was first seen absent. */
static void test_fence_absent_since(void **state)
{
	struct t *t = *state;

	acquire_from(t, 3, 50, 1);
	t->now = 400 * MS;
	leave(t, 3);
	assert_false(fence_sent_at(t, 400 + LEASE - 1));
	assert_true(fence_sent_at(t, 400 + LEASE));
}

/* A FENCING node's heartbeats do not push its fence back. */
static void test_fencing_heartbeat_ignored(void **state)
{
	struct t *t = *state;

	owner_departs(t, 10, 20);
	t->now = 900 * MS;
	heartbeat(t, 3, 2, true, t->now);
	assert_true(fence_sent_at(t, 10 + LEASE));
}

/* Fenced while a member, granted a file, gone again: the next fence is
 * measured from the first one at the earliest, since X's lease may rest
 * on a heartbeat delivered during its transfer, which nobody counted. */
static void test_fence_measured_from_last_fence(void **state)
{
	struct t *t = *state;

	owner_departs(t, 10, 20);
	t->now = 30 * MS;
	join(t, 3);
	sync_all(t);
	assert_true(fence_sent_at(t, 10 + LEASE));
	deliver_sent(t); /* applied at 1010 ms: node 3 up again */
	assert_int_equal(lm_state_fence_pending(t->st, NULL, 0), 0);
	acquire_from(t, 3, 51, 2);
	assert_int_equal(owner(t, 2), 3);
	t->now = 1100 * MS;
	leave(t, 3);
	assert_false(fence_sent_at(t, 10 + LEASE + LEASE - 1));
	assert_true(fence_sent_at(t, 10 + LEASE + LEASE));
}

/* This node was in a minority while node 3 stayed in the quorate part
 * (where it may have extended its lease by heartbeats never seen here):
 * after the merge its fence is measured from the merge.  After a quorate
 * period a join pushes nothing back (test_fence_measured_from_last_fence). */
static void test_fence_after_minority_from_merge(void **state)
{
	struct t *t = *state;

	acquire_from(t, 3, 50, 1);
	t->now = 10 * MS;
	heartbeat(t, 3, 1, true, t->now);
	t->now = 20 * MS;
	leave(t, 2);
	leave(t, 3);
	assert_false(lm_node_ready(t->ln));
	t->now = 500 * MS;
	join(t, 2);
	sync_all(t);
	assert_true(lm_node_ready(t->ln));
	assert_false(fence_sent_at(t, 10 + LEASE));
	assert_false(fence_sent_at(t, 500 + LEASE - 1));
	assert_true(fence_sent_at(t, 500 + LEASE));
}

/* The lowest node awaits a fence: the next one fences it. */
static void test_fencer_skips_fencing_node(void **state)
{
	struct t *t = *state;
	struct lm_node_conf c = t->conf;

	lm_node_free(t->ln);
	c.self = 2;
	t->conf = c;
	t->ln = lm_node_new(t->st, t->now);
	lm_node_configure(t->ln, &c);
	msg(t, 1, &(struct lm_cmsg){ .type = LM_C_ACQUIRE,
				     .u.acquire = { .req_id = 9,
						    .res = R(4) } });
	t->now = 10 * MS;
	leave(t, 1);
	join(t, 1);
	sync_all(t);
	assert_int_equal(lm_state_fencer(t->st), 1);
	clear(t);
	t->now = (10 + LEASE) * MS;
	lm_node_lease_tick(t->ln, t->now, &t->a);
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_FENCE));
	assert_int_equal(find_act(t, LM_NA_SEND, LM_C_FENCE)->msg.u.fence
			 .target, 1);
}

static void test_fence_command(void **state)
{
	struct t *t = *state;
	uint64_t t0 = 10 + LEASE;

	owner_departs(t, 10, 20);
	assert_false(fence_sent_at(t, t0));
	assert_non_null(find_act(t, LM_NA_FENCE_CMD, 0));
	assert_int_equal(find_act(t, LM_NA_FENCE_CMD, 0)->node, 3);
	/* running: no second command, no fence */
	assert_false(fence_sent_at(t, t0 + 10));
	assert_null(find_act(t, LM_NA_FENCE_CMD, 0));
	/* failed: retried after fence_retry_ms */
	lm_node_fence_cmd_done(t->ln, 3, 1, t->now, &t->a);
	assert_false(fence_sent_at(t, t0 + 10 + 199));
	assert_null(find_act(t, LM_NA_FENCE_CMD, 0));
	assert_false(fence_sent_at(t, t0 + 10 + 200));
	assert_non_null(find_act(t, LM_NA_FENCE_CMD, 0));
	/* hangs: killed after fence_command_timeout_ms */
	assert_false(fence_sent_at(t, t0 + 210 + 499));
	assert_null(find_act(t, LM_NA_FENCE_KILL, 0));
	assert_false(fence_sent_at(t, t0 + 210 + 500));
	assert_non_null(find_act(t, LM_NA_FENCE_KILL, 0));
	lm_node_fence_cmd_done(t->ln, 3, 137, t->now, &t->a);
	assert_false(fence_sent_at(t, t0 + 710 + 200));
	assert_non_null(find_act(t, LM_NA_FENCE_CMD, 0));
	/* confirmed: the fence goes out at the next tick */
	lm_node_fence_cmd_done(t->ln, 3, 0, t->now, &t->a);
	assert_true(fence_sent_at(t, t0 + 911));
}

/* ---- lease ---- */

static uint64_t heartbeat_sent(struct t *t, uint64_t ms)
{
	const struct lm_node_act *a;

	t->now = ms * MS;
	clear(t);
	lm_node_lease_tick(t->ln, t->now, &t->a);
	a = find_act(t, LM_NA_SEND, LM_C_HEARTBEAT);
	return a ? a->msg.u.heartbeat.seq : 0;
}

static void test_lease_from_send_time(void **state)
{
	struct t *t = *state;
	uint64_t seq = heartbeat_sent(t, 100), deadline;
	const struct lm_node_act *a;

	assert_true(seq > 0);
	/* not before a heartbeat period */
	assert_int_equal(heartbeat_sent(t, 100 + LEASE / 8 - 1), 0);
	/* a stale quorum view never extends it */
	t->now = 130 * MS;
	heartbeat(t, SELF, seq, false, t->now);
	assert_false(lm_node_lease(t->ln, NULL));
	heartbeat(t, SELF, seq, true, t->now);
	a = find_act(t, LM_NA_LEASE, 0);
	assert_non_null(a);
	assert_true(a->lease_valid);
	/* send time + lease, not delivery time + lease */
	assert_int_equal(a->deadline, (100 + LEASE) * MS);
	assert_true(lm_node_lease(t->ln, &deadline));
	assert_int_equal(deadline, (100 + LEASE) * MS);
	/* delivered too late to be of use */
	seq = heartbeat_sent(t, 300);
	t->now = (300 + LEASE) * MS;
	heartbeat(t, SELF, seq, true, t->now);
	assert_null(find_act(t, LM_NA_LEASE, 0));
	/* ends at the deadline */
	clear(t);
	lm_node_lease_tick(t->ln, (100 + LEASE) * MS, &t->a);
	a = find_act(t, LM_NA_LEASE, 0);
	assert_non_null(a);
	assert_false(a->lease_valid);
}

static void test_lease_ends_without_quorum(void **state)
{
	struct t *t = *state;
	uint64_t seq = heartbeat_sent(t, 0);

	heartbeat(t, SELF, seq, true, 5 * MS);
	assert_true(lm_node_lease(t->ln, NULL));
	leave(t, 3);
	assert_true(lm_node_lease(t->ln, NULL));
	clear(t);
	leave(t, 2);
	assert_false(lm_node_lease(t->ln, NULL));
	assert_non_null(find_act(t, LM_NA_LEASE, 0));
	seq = heartbeat_sent(t, 200);
	heartbeat(t, SELF, seq, true, 205 * MS);
	assert_false(lm_node_lease(t->ln, NULL));
}

/* ---- the races of lockd_res.c ---- */

/* The client cancels while its acquire waits; the grant that follows
 * finds nobody and is released at once. */
static void test_cancel_before_grant(void **state)
{
	struct t *t = *state;
	struct lm_res r = R(1);

	acquire_from(t, 2, 50, 1);
	lm_node_acquire(t->ln, CLI, 5, &r, 0, t->now, &t->a);
	deliver_sent(t);
	assert_null(find_reply(t, 5)); /* queued */
	lm_node_cancel(t->ln, CLI, 6, 5, t->now, &t->a);
	assert_int_equal(find_reply(t, 5)->status, LM_ERR_CANCELED);
	assert_int_equal(find_reply(t, 6)->status, 0);
	clear(t);
	release_from(t, 2, 51, 1);
	assert_int_equal(owner(t, 1), SELF);
	assert_null(find_reply(t, 5));
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	deliver_sent(t);
	assert_int_equal(owner(t, 1), 0);
	assert_int_equal(own_state(t), 0);
}

/* The grant is applied before the cancel arrives: the client was told
 * OK, and its cancel gives the file back. */
static void test_cancel_after_grant(void **state)
{
	struct t *t = *state;

	own_file(t, 1, 5);
	lm_node_cancel(t->ln, CLI, 6, 5, t->now, &t->a);
	assert_int_equal(find_reply(t, 6)->status, 0);
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	deliver_sent(t);
	assert_int_equal(owner(t, 1), 0);
	/* nothing left to cancel */
	lm_node_cancel(t->ln, CLI, 7, 5, t->now, &t->a);
	assert_int_equal(find_reply(t, 7)->status, ENOENT);
}

static struct lm_cmsg plock_msg(uint8_t op, uint64_t owner)
{
	struct lm_cmsg m = { .type = LM_C_PLOCK };

	m.u.plock.res = R(1);
	m.u.plock.space = LM_SPACE_POSIX;
	m.u.plock.op = op;
	m.u.plock.type = LM_LK_WRITE;
	m.u.plock.owner = owner;
	m.u.plock.end = 10;
	return m;
}

static int count_node_locks(const struct lm_lock_entry *e, void *arg)
{
	unsigned *n = arg;

	if (e->node == SELF)
		(*n)++;
	return 0;
}

/* SETW canceled, but granted before the cancel is applied: the late
 * PLOCK_GRANTED is not given to the client and is undone by an UNLOCK. */
static void test_setw_cancel_late_grant(void **state)
{
	struct t *t = *state;
	struct lm_cmsg m = plock_msg(LM_PL_SET, 1);
	struct lm_cmsg held;
	struct lm_res r = R(1);
	unsigned n = 0;

	m.u.plock.req_id = 70;
	msg(t, 2, &m); /* node 2 holds [0, 10] */
	m = plock_msg(LM_PL_SETW, 9);
	lm_node_request(t->ln, LM_NREQ_PLOCK, &m, CLI, 5, t->now, &t->a);
	deliver_sent(t);
	assert_null(find_reply(t, 5)); /* queued */
	lm_node_cancel(t->ln, CLI, 6, 5, t->now, &t->a);
	assert_int_equal(find_reply(t, 5)->status, LM_ERR_CANCELED);
	assert_int_equal(find_reply(t, 6)->status, 0);
	held = find_act(t, LM_NA_SEND, LM_C_PLOCK)->msg;
	assert_int_equal(held.u.plock.op, LM_PL_CANCEL);
	clear(t);
	/* node 2 unlocks before our CANCEL is delivered: granted to us */
	m = plock_msg(LM_PL_UNLOCK, 1);
	m.u.plock.req_id = 71;
	msg(t, 2, &m);
	assert_null(find_reply(t, 5));
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_PLOCK));
	assert_int_equal(find_act(t, LM_NA_SEND, LM_C_PLOCK)->msg.u.plock.op,
			 LM_PL_UNLOCK);
	msg(t, SELF, &held);
	deliver_sent(t);
	lm_state_foreach_lock(t->st, &r, count_node_locks, &n);
	assert_int_equal(n, 0);
	assert_int_equal(lm_node_pending_requests(t->ln), 0);
}

/* The lease ends while we own a file and the table stays ready: the
 * holder is told LOST at once and the file released. */
static void test_lease_end_while_owning(void **state)
{
	struct t *t = *state;
	const struct lm_node_act *a;
	struct lm_res r = R(1);

	own_file(t, 1, 5);
	heartbeat(t, SELF, heartbeat_sent(t, 0), true, MS);
	clear(t);
	lm_node_lease_end(t->ln, "test", &t->a);
	a = find_act(t, LM_NA_PUSH, LM_S_EV_LOST);
	assert_non_null(a);
	assert_int_equal(a->client, CLI);
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	deliver_sent(t);
	assert_int_equal(owner(t, 1), 0);
	assert_int_equal(own_state(t), 0);
	/* the client's release finds nothing: its handles are poisoned */
	assert_int_equal(lm_node_release(t->ln, CLI, &r, 0, t->now, &t->a),
			 LM_ERR_NOTOWNER);
}

/* Quorum lost while owning: LOST now, the release waits for the table
 * to be ready again (it may have been fenced meanwhile). */
static void test_lease_end_without_quorum(void **state)
{
	struct t *t = *state;

	own_file(t, 1, 5);
	heartbeat(t, SELF, heartbeat_sent(t, 0), true, MS);
	leave(t, 3);
	clear(t);
	leave(t, 2);
	assert_non_null(find_act(t, LM_NA_PUSH, LM_S_EV_LOST));
	assert_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	assert_int_equal(own_state(t), LM_OWN_LOST);
	clear(t);
	join(t, 2);
	join(t, 3);
	sync_all(t);
	assert_true(lm_node_ready(t->ln));
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	deliver_sent(t);
	assert_int_equal(owner(t, 1), 0);
	assert_int_equal(own_state(t), 0);
}

/* Granted while the lease had already run out (late heartbeats), then
 * quorum lost: the holder must be told LOST all the same, or it writes
 * with its old epoch once a merge makes the lease valid again. */
static void test_lost_after_late_grant(void **state)
{
	struct t *t = *state;
	uint64_t seq = heartbeat_sent(t, 0);

	heartbeat(t, SELF, seq, true, MS);
	clear(t);
	lm_node_lease_tick(t->ln, LEASE * MS, &t->a);
	assert_false(lm_node_lease(t->ln, NULL));
	t->now = LEASE * MS;
	own_file(t, 1, 5);
	leave(t, 3);
	clear(t);
	leave(t, 2);
	assert_non_null(find_act(t, LM_NA_PUSH, LM_S_EV_LOST));
	assert_int_equal(find_act(t, LM_NA_PUSH, LM_S_EV_LOST)->client, CLI);
	assert_int_equal(own_state(t), LM_OWN_LOST);
}

/* A request answered NOQUORUM is sent again, same req_id, once ready. */
static void test_resend_after_ready(void **state)
{
	struct t *t = *state;
	struct lm_res r = R(1);
	uint64_t req;

	leave(t, 3);
	leave(t, 2);
	clear(t);
	lm_node_acquire(t->ln, CLI, 5, &r, 0, t->now, &t->a);
	req = find_act(t, LM_NA_SEND, LM_C_ACQUIRE)->msg.u.acquire.req_id;
	deliver_sent(t);
	assert_null(find_reply(t, 5));
	join(t, 2);
	join(t, 3);
	sync_all(t);
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_ACQUIRE));
	assert_int_equal(find_act(t, LM_NA_SEND, LM_C_ACQUIRE)->msg.u.acquire
			 .req_id, req);
	deliver_sent(t);
	assert_int_equal(find_reply(t, 5)->status, 0);
}

/* A revoke is pushed to every holder; the release follows the last. */
static void test_revoke_waits_for_holders(void **state)
{
	struct t *t = *state;
	struct lm_res r = R(1);

	own_file(t, 1, 5);
	lm_node_acquire(t->ln, CLI + 1, 6, &r, 0, t->now, &t->a);
	assert_int_equal(find_reply(t, 6)->status, 0);
	clear(t);
	acquire_from(t, 2, 50, 1);
	assert_non_null(find_act(t, LM_NA_PUSH, LM_S_EV_REVOKE));
	assert_int_equal(own_state(t), LM_OWN_REVOKING);
	clear(t);
	assert_int_equal(lm_node_release(t->ln, CLI, &r, 0, t->now, &t->a),
			 0);
	assert_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	assert_int_equal(lm_node_release(t->ln, CLI + 1, &r, 0, t->now,
					 &t->a), 0);
	assert_non_null(find_act(t, LM_NA_SEND, LM_C_RELEASE));
	deliver_sent(t);
	assert_int_equal(owner(t, 1), 2);
}

/* ---- quorum decisions, protocol versions (lm_node_applied) ---- */

static bool lease_act(struct t *t, bool valid)
{
	const struct lm_node_act *a = find_act(t, LM_NA_LEASE, 0);

	return a && a->lease_valid == valid;
}

/* A valid lease from a heartbeat sent at 0 and delivered at 5 ms. */
static void lease_now(struct t *t)
{
	heartbeat(t, SELF, heartbeat_sent(t, 0), true, 5 * MS);
	assert_true(lm_node_lease(t->ln, NULL));
	clear(t);
}

/* A new ring whose decision is pending: the table is not ready, the
 * lease is neither extended nor ended; the decision "quorate" lets the
 * next heartbeat extend it again. */
static void test_lease_held_while_quorum_pending(void **state)
{
	struct t *t = *state;
	uint64_t deadline, seq;

	lease_now(t);
	own_file(t, 1, 5);
	t->manual_quorum = true;
	t->now = 100 * MS;
	leave(t, 3);
	assert_false(lm_node_ready(t->ln));
	assert_true(lm_node_lease(t->ln, &deadline));
	assert_int_equal(deadline, LEASE * MS);
	assert_null(find_act(t, LM_NA_LEASE, 0));
	assert_null(find_act(t, LM_NA_PUSH, LM_S_EV_LOST));
	/* the transport's view is quorate, the table's decision pending */
	seq = heartbeat_sent(t, 200);
	heartbeat(t, SELF, seq, true, 205 * MS);
	assert_null(find_act(t, LM_NA_LEASE, 0));
	assert_true(lm_node_lease(t->ln, &deadline));
	assert_int_equal(deadline, LEASE * MS);
	/* a "not quorate" for an older ring does not count */
	decide(t, 2, t->ring_seq - 1, false);
	assert_true(lm_node_lease(t->ln, NULL));
	/* decided quorate: ready, and heartbeats extend the lease again */
	decide(t, 1, t->ring_seq, true);
	assert_true(lm_node_ready(t->ln));
	seq = heartbeat_sent(t, 300);
	heartbeat(t, SELF, seq, true, 305 * MS);
	assert_true(lm_node_lease(t->ln, &deadline));
	assert_int_equal(deadline, (300 + LEASE) * MS);
	assert_int_equal(own_state(t), LM_OWN_HELD);
}

/* Pending first, then decided "not quorate" for the current ring: that
 * decision, not the pending one, ends the lease and the holders are told
 * LOST. */
static void test_decided_not_quorate_ends_lease(void **state)
{
	struct t *t = *state;

	lease_now(t);
	own_file(t, 1, 5);
	t->manual_quorum = true;
	t->now = 100 * MS;
	leave(t, 3);
	assert_true(lm_node_lease(t->ln, NULL));
	clear(t);
	decide(t, 2, t->ring_seq, false);
	assert_false(lm_node_lease(t->ln, NULL));
	assert_true(lease_act(t, false));
	assert_non_null(find_act(t, LM_NA_PUSH, LM_S_EV_LOST));
	assert_int_equal(own_state(t), LM_OWN_LOST);
	/* said once per decision: a second one changes nothing */
	clear(t);
	decide(t, 1, t->ring_seq, false);
	assert_null(find_act(t, LM_NA_LEASE, 0));
	assert_null(find_act(t, LM_NA_LOG, 0));
	/* and no heartbeat extends it while the decision stands */
	heartbeat(t, SELF, heartbeat_sent(t, 200), true, 205 * MS);
	assert_false(lm_node_lease(t->ln, NULL));
}

/* two_node without a quorum device: the lease wait alone never fences
 * (both halves would take each other's files); with no fence command
 * nothing is fenced at all, and the operator is told once. */
static void test_two_node_no_fence_without_cmd(void **state)
{
	struct t *t = *state;

	owner_departs(t, 10, 300);
	assert_false(fence_sent_at(t, 10 + LEASE));
	assert_non_null(find_act(t, LM_NA_LOG, 0));
	assert_null(find_act(t, LM_NA_FENCE_CMD, 0));
	assert_false(fence_sent_at(t, 10 + 10 * LEASE));
	assert_null(find_act(t, LM_NA_LOG, 0));
	assert_int_equal(owner(t, 1), 3);
}

/* Likewise when it is the table's decision that says two_node without a
 * quorum device (another node's votequorum); with a device it does not
 * hold. */
static void test_two_node_from_decision(void **state)
{
	struct t *t = *state;

	acquire_from(t, 3, 50, 1);
	t->now = 10 * MS;
	heartbeat(t, 3, 1, true, t->now);
	t->manual_quorum = true;
	t->now = 300 * MS;
	leave(t, 3);
	decide_flags(t, 1, t->ring_seq, true, LM_QF_TWO_NODE);
	assert_true(lm_node_ready(t->ln));
	assert_false(fence_sent_at(t, 10 + LEASE));
	decide_flags(t, 1, t->ring_seq, true,
		     LM_QF_TWO_NODE | LM_QF_QDEV_REGISTERED);
	assert_false(fence_sent_at(t, 10 + LEASE + 1)); /* votes, not flags */
	{
		struct lm_cmsg m = { .type = LM_C_QUORUM };

		m.u.quorum.ring.nodeid = 1;
		m.u.quorum.ring.seq = t->ring_seq;
		m.u.quorum.quorate = 1;
		m.u.quorum.flags = LM_QF_TWO_NODE | LM_QF_QDEV_REGISTERED;
		m.u.quorum.qdevice_votes = 1;
		msg(t, 1, &m);
	}
	assert_true(fence_sent_at(t, 10 + LEASE + 2));
}

/* two_node with a fence command: the fence waits for its confirmation. */
static void test_two_node_fence_cmd_confirms(void **state)
{
	struct t *t = *state;

	owner_departs(t, 10, 300);
	assert_false(fence_sent_at(t, 10 + LEASE));
	assert_non_null(find_act(t, LM_NA_FENCE_CMD, 0));
	assert_false(fence_sent_at(t, 10 + LEASE + 50));
	lm_node_fence_cmd_done(t->ln, 3, 0, (10 + LEASE + 60) * MS, &t->a);
	assert_true(fence_sent_at(t, 10 + LEASE + 61));
}

/* A message of X this node could not decode may have been a heartbeat
 * that extended X's lease: the fence waits from it.  Not from a FENCING
 * node's, though, as for its heartbeats. */
static void test_undecodable_counts_as_heartbeat(void **state)
{
	struct t *t = *state;

	acquire_from(t, 3, 50, 1);
	t->now = 10 * MS;
	heartbeat(t, 3, 1, true, t->now);
	/* reported once per node and version */
	assert_true(lm_node_undecodable(t->ln, 3, 9, 200 * MS));
	assert_false(lm_node_undecodable(t->ln, 3, 9, 200 * MS));
	t->now = 300 * MS;
	leave(t, 3);
	assert_true(lm_node_undecodable(t->ln, 3, 10, 400 * MS));
	assert_false(fence_sent_at(t, 10 + LEASE));
	assert_false(fence_sent_at(t, 200 + LEASE - 1));
	assert_true(fence_sent_at(t, 200 + LEASE));
}

/* Version 3 heartbeats carry the sender's lease: remembered for `nodes`,
 * and a longer one than ours is warned about once. */
static void test_peer_lease_from_heartbeat(void **state)
{
	struct t *t = *state;
	struct lm_cmsg m = { .type = LM_C_HEARTBEAT, .version = 3 };
	uint16_t v;
	uint32_t lease;

	m.u.heartbeat.seq = 1;
	m.u.heartbeat.lease_timeout_ms = 2 * LEASE;
	lm_node_heartbeat(t->ln, 2, &m, true, MS, &t->a);
	lm_node_peer_wire(t->ln, 2, &v, &lease);
	assert_int_equal(v, 3);
	assert_int_equal(lease, 2 * LEASE);
	assert_non_null(find_act(t, LM_NA_LOG, 0));
	clear(t);
	lm_node_heartbeat(t->ln, 2, &m, true, 2 * MS, &t->a);
	assert_null(find_act(t, LM_NA_LOG, 0));
	heartbeat(t, 3, 1, true, 3 * MS);
	lm_node_peer_wire(t->ln, 3, &v, &lease);
	assert_int_equal(v, 2);
	assert_int_equal(lease, 0);
	/* our own heartbeats say our lease */
	assert_true(heartbeat_sent(t, 0) > 0);
	assert_int_equal(find_act(t, LM_NA_SEND, LM_C_HEARTBEAT)->msg.u.
			 heartbeat.lease_timeout_ms, LEASE);
}

/* A round keeps this node out (it speaks 2..2, the others 3..3): its
 * lease ends, its holders are told LOST, and its heartbeats do not
 * extend it until a round lets it in again. */
static void test_kept_out_ends_lease(void **state)
{
	struct t *t = *state;
	struct lm_node_entry e;

	lease_now(t);
	own_file(t, 1, 5);
	t->proto_min[1] = t->proto_max[1] = 2;
	for (uint32_t id = 2; id <= 4; id++)
		t->proto_min[id] = t->proto_max[id] = 3;
	t->now = 100 * MS;
	join(t, 4);
	assert_true(lm_node_lease(t->ln, NULL));
	clear(t);
	for (size_t i = 0; i < t->n; i++)
		hello(t, t->members[i]);
	assert_int_equal(lm_state_node(t->st, SELF, &e), 0);
	assert_int_equal(e.state, LM_NODE_INCOMPATIBLE);
	assert_true(lease_act(t, false));
	assert_false(lm_node_lease(t->ln, NULL));
	assert_non_null(find_act(t, LM_NA_PUSH, LM_S_EV_LOST));
	assert_true(lm_node_applied(t->ln, t->now, &t->a));
	heartbeat(t, SELF, heartbeat_sent(t, 200), true, 205 * MS);
	assert_false(lm_node_lease(t->ln, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fence_wait_ms),
		cmocka_unit_test_setup_teardown(test_fence_after_lease, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_fence_drift_margin_watchdog, setup_drift,
			teardown),
		cmocka_unit_test_setup_teardown(test_fence_absent_since, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_fencing_heartbeat_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_fence_measured_from_last_fence, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_fencer_skips_fencing_node, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_fence_after_minority_from_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fence_command,
						setup_fence_cmd, teardown),
		cmocka_unit_test_setup_teardown(test_lease_from_send_time,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_lease_ends_without_quorum, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_before_grant,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_after_grant, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_setw_cancel_late_grant,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_end_while_owning,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lease_end_without_quorum,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_after_late_grant,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_resend_after_ready, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_revoke_waits_for_holders,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_lease_held_while_quorum_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_decided_not_quorate_ends_lease, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_two_node_no_fence_without_cmd, setup_two_node,
			teardown),
		cmocka_unit_test_setup_teardown(test_two_node_from_decision,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_two_node_fence_cmd_confirms, setup_two_node_cmd,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_undecodable_counts_as_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_peer_lease_from_heartbeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kept_out_ends_lease,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
