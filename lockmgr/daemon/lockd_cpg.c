// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_cpg.c - the transports of csvfs-lockd.
 *
 * corosync: CPG (group "csvfs-lockd", AGREED order) carries the cluster
 * messages; libquorum reports "quorate" together with the ring id it is
 * for, which lets the lease code compare it with the CPG totem ring id;
 * votequorum gives this node's votes, expected votes, flags and quorum
 * device state.  When the two ring ids match, the decision is multicast
 * (LM_C_QUORUM, naming the ring) for the lock table to apply at one point
 * of the order; the CPG totem ring change is applied to the table where
 * CPG delivers it (lockd_ring).  Votes also go out as LM_C_NODE_INFO for
 * display.  cmap names this node and the cluster and tells whether
 * two_node is set without a quorum device.
 *
 * standalone: no corosync.  This node is id 1, joins alone at start, and
 * every multicast is delivered back to itself, in order, from the loop.
 *
 * Outgoing messages always go through one queue (lockd.outq): apply never
 * sends or delivers re-entrantly, and CS_ERR_TRY_AGAIN from corosync only
 * delays the queue (retried at the next loop turn or tick), never drops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>

#include "lockd.h"
#include "log.h"

#define LOCKD_CPG_GROUP "csvfs-lockd"
#define OUTQ_MAX 100000 /* messages; past this the node is hopelessly stuck */

struct tp {
	bool standalone;
	cpg_handle_t cpg;
	int cpg_fd;
	quorum_handle_t q;
	int q_fd;
	votequorum_handle_t vq;
	int vq_fd;
	bool joined;			/* our own join was delivered */
	struct cpg_ring_id cpg_ring;	/* latest totem ring seen by CPG */
	bool have_cpg_ring;
	struct quorum_ring_id q_ring;	/* ring the quorate flag is for */
	bool have_q_ring;
	uint32_t members[LM_MAX_NODES]; /* current CPG members, sorted */
	uint32_t n_members;
};

static struct tp tp_data;
static struct lockd *g_ld; /* for the corosync callbacks (one instance) */

/* Our own names: cs_strerror() needs libcorosync_common. */
static const char *cs_err_name(cs_error_t e)
{
	switch (e) {
	case CS_OK:
		return "ok";
	case CS_ERR_LIBRARY:
		return "cannot reach corosync";
	case CS_ERR_TRY_AGAIN:
		return "try again";
	case CS_ERR_ACCESS:
		return "permission denied";
	case CS_ERR_BAD_HANDLE:
		return "bad handle (corosync went away)";
	case CS_ERR_NOT_EXIST:
		return "does not exist";
	case CS_ERR_EXIST:
		return "already exists";
	default:
		return "corosync error";
	}
}

/* ---- outgoing queue ---- */

/*
 * Messages are queued unencoded and encoded when sent, at the cluster
 * version in force then (lm_state.h, "Protocol version").  Why:
 *   - a node encodes nothing but the frozen hello and node_info before
 *     its first round is over, nor when it is kept out: it does not know
 *     a version the others read;
 *   - requests (the table's inputs other than the transfer's) wait while
 *     the table syncs.  A round with a join may lower the version (an
 *     older node came in), and a request encoded at the old one must
 *     never be applied after the install, where the newcomer could not
 *     decode it and the tables would part.  Every message a member sent
 *     before its hello is ordered before that hello, so before the end
 *     of the round; what it sends during the round waits here until its
 *     own install and then goes at the new version.  Those requests would
 *     only be refused (LM_ERR_SYNCING) during the round anyway.
 * Heartbeats, mounts and the donor's chunks are not held back by a
 * transfer: they are not applied to the table (heartbeats and mounts),
 * or only by the members of the new round (chunks, sent after the
 * negotiation).  A heartbeat that cannot go now is dropped, not queued:
 * the next one is due soon and an old one is useless.  Messages that
 * wait keep their order among themselves.
 */
enum out_class {
	OUT_FROZEN,   /* hello, node_info: always */
	OUT_UNAPPLIED, /* heartbeat, mount, sync data/done: once a version */
	OUT_REQUEST,  /* table requests: once a version, and not syncing */
};

static enum out_class out_class(uint16_t type)
{
	switch (type) {
	case LM_C_SYNC_HELLO:
	case LM_C_NODE_INFO:
		return OUT_FROZEN;
	case LM_C_HEARTBEAT:
	case LM_C_MOUNT:
	case LM_C_SYNC_DATA:
	case LM_C_SYNC_DONE:
		return OUT_UNAPPLIED;
	default:
		return OUT_REQUEST;
	}
}

uint16_t lockd_wire_version(struct lockd *ld)
{
	struct lm_status_info si;

	if (ld->kept_out)
		return 0;
	lm_state_status(ld->st, &si);
	return si.proto_version;
}

/* The version to send m at now, 0 if it must wait. */
static uint16_t out_version(struct lockd *ld, const struct lm_cmsg *m)
{
	enum out_class k = out_class(m->type);
	struct lm_status_info si;
	uint16_t v;

	if (k == OUT_FROZEN)
		return LM_PROTO_FROZEN;
	v = lockd_wire_version(ld);
	if (!v || k == OUT_UNAPPLIED)
		return v;
	lm_state_status(ld->st, &si);
	return si.syncing ? 0 : v;
}

int lockd_send(struct lockd *ld, const struct lm_cmsg *m)
{
	size_t extra = m->type == LM_C_SYNC_DATA ? m->u.sync_data.len : 0;
	struct lockd_cout *o;

	if (m->type == LM_C_HEARTBEAT && !out_version(ld, m))
		return 0;
	o = malloc(sizeof(*o) + extra);
	if (!o) {
		lockd_fatal(ld, "out of memory queueing a cluster message");
		return -ENOMEM;
	}
	o->next = NULL;
	o->msg = *m;
	if (extra) {
		memcpy(o->data, m->u.sync_data.data, extra);
		o->msg.u.sync_data.data = o->data;
	}
	if (ld->outq_tail)
		ld->outq_tail->next = o;
	else
		ld->outq = o;
	ld->outq_tail = o;
	if (++ld->outq_len == OUTQ_MAX)
		log_err("%u cluster messages wait to be sent: corosync does "
			"not accept them; check corosync's health",
			ld->outq_len);
	return 0;
}

/* Unlink *pp (o) from the queue; pp is &ld->outq or &prev->next. */
static void outq_unlink(struct lockd *ld, struct lockd_cout **pp)
{
	struct lockd_cout *o = *pp;

	*pp = o->next;
	if (ld->outq_tail == o)
		ld->outq_tail = pp == &ld->outq ? NULL :
			(struct lockd_cout *)(void *)pp; /* next is first */
	ld->outq_len--;
}

static void outq_pop(struct lockd *ld)
{
	struct lockd_cout *o = ld->outq;

	outq_unlink(ld, &ld->outq);
	free(o);
}

void lockd_drop_queued_sync(struct lockd *ld)
{
	struct lockd_cout **pp = &ld->outq, *o;

	while ((o = *pp)) {
		if (o->msg.type == LM_C_SYNC_DATA ||
		    o->msg.type == LM_C_SYNC_DONE) {
			outq_unlink(ld, pp);
			free(o);
			continue;
		}
		pp = &o->next;
	}
}

static bool mcast_one(struct lockd *ld, const uint8_t *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	cs_error_t e;

	e = cpg_mcast_joined(tp_data.cpg, CPG_TYPE_AGREED, &iov, 1);
	if (e == CS_OK)
		return true;
	if (e != CS_ERR_TRY_AGAIN) {
		log_err("cpg_mcast_joined failed: %s (%d)", cs_err_name(e), e);
		lockd_fatal(ld, "cannot multicast to corosync");
	}
	return false; /* try again at the next turn */
}

/* Send (or deliver, standalone) o, encoded at version v; false: stop. */
static bool send_one(struct lockd *ld, struct lockd_cout **pp, uint16_t v)
{
	static uint8_t buf[LM_MSG_MAX]; /* the loop thread only */
	struct lockd_cout *o = *pp;
	int len;

	o->msg.version = v;
	len = lm_cmsg_encode(&o->msg, buf, sizeof(buf));
	if (len < 0) {
		log_err("cannot encode a %s cluster message at version %u: "
			"%s; this is a bug", lm_cmsg_type_name(o->msg.type),
			v, strerror(-len));
	} else if (tp_data.standalone) {
		/* unlinked first: delivering may queue more behind it */
		outq_unlink(ld, pp);
		lockd_deliver(ld, ld->our_id, buf, (size_t)len);
		free(o);
		return true;
	} else if (!mcast_one(ld, buf, (size_t)len)) {
		return false;
	}
	outq_unlink(ld, pp);
	free(o);
	return true;
}

void lockd_flush(struct lockd *ld)
{
	struct lockd_cout **pp = &ld->outq, *o;
	unsigned budget = 10000;
	uint16_t v;

	if (ld->in_apply)
		return;
	while ((o = *pp) && !ld->exit_now && budget--) {
		v = out_version(ld, &o->msg);
		if (!v) {
			pp = &o->next; /* waits; later ones may go */
			continue;
		}
		if (!send_one(ld, pp, v))
			return;
	}
}

/* ---- protocol version ---- */

static void node_label(struct lockd *ld, uint32_t id, struct lm_node_entry *e)
{
	if (lm_state_node(ld->st, id, e) != 0) {
		memset(e, 0, sizeof(*e));
		e->id = id;
	}
	if (!e->name[0])
		snprintf(e->name, sizeof(e->name), "%u", id);
}

/* What to do about a range that misses version v. */
static const char *proto_advice(unsigned min, unsigned max, unsigned v,
				bool self)
{
	if (max < v)
		return self ? "upgrade csvfs-lockd on this node" :
			      "upgrade csvfs-lockd on it";
	(void)min;
	return self ? "the cluster must be upgraded first, or run a "
		      "csvfs-lockd here that still speaks that version" :
		      "upgrade the other nodes first, or run a csvfs-lockd "
		      "there that still speaks that version";
}

void lockd_proto_event(struct lockd *ld, const struct lm_ev *ev)
{
	struct lm_node_entry e;

	if (ev->type == LM_EV_PROTO && ev->owner) {
		log_notice("cluster protocol version %llu (was %llu; this "
			   "node speaks %u..%u)", (unsigned long long)ev->epoch,
			   (unsigned long long)ev->owner,
			   LM_PROTO_VERSION_MIN, LM_PROTO_VERSION_MAX);
		return;
	}
	if (ev->type == LM_EV_PROTO) {
		log_notice("cluster protocol version %llu (this node speaks "
			   "%u..%u)", (unsigned long long)ev->epoch,
			   LM_PROTO_VERSION_MIN, LM_PROTO_VERSION_MAX);
		return;
	}
	node_label(ld, ev->node, &e);
	if (ev->node == ld->our_id) {
		log_err("this node speaks cluster protocol %u..%u, but the "
			"cluster runs version %llu: it is kept out of the "
			"cluster (no grants, no lease) until that changes; %s",
			LM_PROTO_VERSION_MIN, LM_PROTO_VERSION_MAX,
			(unsigned long long)ev->epoch,
			proto_advice(LM_PROTO_VERSION_MIN,
				     LM_PROTO_VERSION_MAX,
				     (unsigned)ev->epoch, true));
		return;
	}
	log_warn("node %s (id %u) speaks cluster protocol %u..%u, the "
		 "cluster runs version %llu: it is kept out; %s", e.name,
		 ev->node, e.proto_min, e.proto_max,
		 (unsigned long long)ev->epoch,
		 proto_advice(e.proto_min, e.proto_max, (unsigned)ev->epoch,
			      false));
}

/* Whether this node is kept out, and ending the lease when it becomes
 * so or when corosync decided "not quorate", are lm_node's decisions;
 * what being kept out means for sending is ours. */
void lockd_node_applied(struct lockd *ld)
{
	bool out = lm_node_applied(ld->node, cv_now_ns(), &ld->acts);
	bool was = ld->kept_out;

	ld->kept_out = out;
	lockd_node_run(ld);
	if (was && !out)
		log_notice("this node takes part in the cluster again "
			   "(protocol version %u)", lockd_wire_version(ld));
}

/* ---- quorum view ---- */

static void update_ring_match(struct lockd *ld)
{
	bool was = ld->quorate && ld->ring_match;

	ld->ring_match = tp_data.have_cpg_ring && tp_data.have_q_ring &&
			 tp_data.cpg_ring.nodeid == tp_data.q_ring.nodeid &&
			 tp_data.cpg_ring.seq == tp_data.q_ring.seq;
	if (was && !ld->quorate)
		lockd_lease_end(ld, "corosync reports this partition is not "
			       "quorate");
}

bool lockd_tp_quorate(const struct lockd *ld)
{
	return ld->quorate && ld->ring_match;
}

static const struct {
	unsigned vq;
	uint32_t lm;
} qflag_map[] = {
	{ VOTEQUORUM_INFO_TWONODE, LM_QF_TWO_NODE },
	{ VOTEQUORUM_INFO_WAIT_FOR_ALL, LM_QF_WAIT_FOR_ALL },
	{ VOTEQUORUM_INFO_LAST_MAN_STANDING, LM_QF_LMS },
	{ VOTEQUORUM_INFO_AUTO_TIE_BREAKER, LM_QF_ATB },
	{ VOTEQUORUM_INFO_ALLOW_DOWNSCALE, LM_QF_ALLOW_DOWNSCALE },
	{ VOTEQUORUM_INFO_QDEVICE_REGISTERED, LM_QF_QDEV_REGISTERED },
	{ VOTEQUORUM_INFO_QDEVICE_ALIVE, LM_QF_QDEV_ALIVE },
	{ VOTEQUORUM_INFO_QDEVICE_CAST_VOTE, LM_QF_QDEV_CAST_VOTE },
	{ VOTEQUORUM_INFO_QDEVICE_MASTER_WINS, LM_QF_QDEV_MASTER_WINS },
};

/*
 * The decision goes out only for a ring both libquorum and CPG agree on:
 * a "quorate" that libquorum reported for an older ring must not be
 * multicast as the new ring's.  The table applies it only in the ring it
 * names, so one that arrives after yet another ring change is dropped.
 */
void lockd_tp_send_quorum(struct lockd *ld)
{
	struct lm_cmsg m = { .type = LM_C_QUORUM };
	struct lm_quorum *q = &m.u.quorum;

	if (!tp_data.joined || !ld->ring_match)
		return;
	*q = ld->quorum_info;
	q->ring.nodeid = tp_data.cpg_ring.nodeid;
	q->ring.seq = tp_data.cpg_ring.seq;
	q->quorate = ld->quorate;
	if (!ld->quorum_resend &&
	    memcmp(q, &ld->quorum_sent, sizeof(*q)) == 0)
		return;
	if (lockd_send(ld, &m) == 0) {
		ld->quorum_sent = *q;
		ld->quorum_resend = false;
		log_info("quorum decision for ring %u.%llu multicast: %s (%u "
			 "of %u votes, %u needed)", q->ring.nodeid,
			 (unsigned long long)q->ring.seq, q->quorate ?
			 "quorate" : "not quorate", q->total_votes,
			 q->expected_votes, q->quorum);
	}
}

void lockd_tp_send_node_info(struct lockd *ld)
{
	struct lm_cmsg m = { .type = LM_C_NODE_INFO };

	if (!tp_data.joined)
		return;
	if (ld->votes == ld->sent_votes &&
	    ld->expected_votes == ld->sent_expected)
		return;
	m.u.node_info.votes = ld->votes;
	m.u.node_info.expected_votes = ld->expected_votes;
	if (lockd_send(ld, &m) == 0) {
		ld->sent_votes = ld->votes;
		ld->sent_expected = ld->expected_votes;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

void lockd_tp_send_hello(struct lockd *ld, const struct lm_confchg *cc)
{
	struct lm_cmsg m = { .type = LM_C_SYNC_HELLO };
	struct lm_c_sync_hello *h = &m.u.hello;
	struct lm_status_info si;

	lm_state_status(ld->st, &si);
	h->n_members = (uint32_t)cc->n_members;
	memcpy(h->members, cc->members, cc->n_members * sizeof(uint32_t));
	qsort(h->members, h->n_members, sizeof(uint32_t), cmp_u32);
	h->version = si.version;
	/* the installed table's epoch is the highest of all hellos: carry
	 * the durable reservation, which exceeds every epoch this node may
	 * have seen granted, even by a table that no member holds any more */
	h->epoch = si.epoch > ld->epoch_reserved ? si.epoch :
		   ld->epoch_reserved;
	h->votes = ld->votes;
	h->expected_votes = ld->expected_votes;
	snprintf(h->name, sizeof(h->name), "%s", ld->node_name);
	h->proto_min = LM_PROTO_VERSION_MIN;
	h->proto_max = LM_PROTO_VERSION_MAX;
	h->kept_out = ld->kept_out;
	lockd_send(ld, &m);
	ld->sent_votes = ld->votes;
	ld->sent_expected = ld->expected_votes;
}

/* ---- standalone ---- */

static int standalone_init(struct lockd *ld)
{
	static const uint32_t self = 1;
	struct lm_confchg cc = {
		.members = &self, .n_members = 1,
		.joined = &self, .n_joined = 1,
	};
	static const struct lm_ring ring = { .nodeid = 1, .seq = 1 };

	tp_data.standalone = true;
	tp_data.joined = true;
	tp_data.cpg_ring.nodeid = ring.nodeid;
	tp_data.cpg_ring.seq = ring.seq;
	ld->our_id = 1;
	ld->votes = ld->expected_votes = 1;
	ld->quorate = ld->ring_match = true;
	ld->quorum_info.node_votes = 1;
	ld->quorum_info.expected_votes = 1;
	ld->quorum_info.total_votes = 1;
	ld->quorum_info.quorum = 1;
	lockd_lease_resolve(ld, 0); /* once our_id is known */
	lockd_ring(ld, &ring);
	lockd_confchg(ld, &cc);
	return 0;
}

/* ---- corosync callbacks ---- */

static void cpg_deliver(cpg_handle_t h, const struct cpg_name *group,
			uint32_t nodeid, uint32_t pid, void *msg, size_t len)
{
	(void)h;
	(void)group;
	if (nodeid == g_ld->our_id && pid != (uint32_t)getpid())
		return; /* a second lockd on this node: not us */
	lockd_deliver(g_ld, nodeid, msg, len);
}

static bool has_id(const uint32_t *v, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == id)
			return true;
	return false;
}

/* Node ids of a CPG address list, without duplicates and without another
 * lockd process of this node. */
static size_t cpg_ids(const struct cpg_address *a, size_t n, uint32_t *out)
{
	size_t k = 0;

	for (size_t i = 0; i < n && k < LM_MAX_NODES; i++) {
		if (a[i].nodeid == g_ld->our_id &&
		    a[i].pid != (uint32_t)getpid())
			continue;
		if (!has_id(out, k, a[i].nodeid))
			out[k++] = a[i].nodeid;
	}
	return k;
}

static bool another_lockd_here(const struct cpg_address *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].nodeid == g_ld->our_id &&
		    a[i].pid != (uint32_t)getpid())
			return true;
	return false;
}

static void cpg_confchg(cpg_handle_t h, const struct cpg_name *group,
			const struct cpg_address *mem, size_t n_mem,
			const struct cpg_address *left, size_t n_left,
			const struct cpg_address *joined, size_t n_joined)
{
	uint32_t m[LM_MAX_NODES], l[LM_MAX_NODES], j[LM_MAX_NODES], l2[LM_MAX_NODES];
	struct lm_confchg cc = { 0 };
	size_t nl2 = 0;
	bool self_joined = false;

	(void)h;
	(void)group;
	for (size_t i = 0; i < n_joined; i++)
		if (joined[i].nodeid == g_ld->our_id &&
		    joined[i].pid == (uint32_t)getpid())
			self_joined = true;
	if (self_joined && another_lockd_here(mem, n_mem)) {
		log_err("another csvfs-lockd already runs on this node "
			"(corosync node id %u); stop it first", g_ld->our_id);
		g_ld->exit_now = true;
		g_ld->exit_code = 1;
		return;
	}
	cc.members = m;
	cc.n_members = cpg_ids(mem, n_mem, m);
	cc.joined = j;
	cc.n_joined = cpg_ids(joined, n_joined, j);
	cc.n_left = cpg_ids(left, n_left, l);
	for (size_t i = 0; i < cc.n_left; i++) /* still there: not gone */
		if (!has_id(m, cc.n_members, l[i]))
			l2[nl2++] = l[i];
	cc.left = l2;
	cc.n_left = nl2;
	if (self_joined)
		tp_data.joined = true;
	memcpy(tp_data.members, m, cc.n_members * sizeof(uint32_t));
	tp_data.n_members = (uint32_t)cc.n_members;
	log_notice("membership: %zu member(s), %zu joined, %zu left",
		   cc.n_members, cc.n_joined, cc.n_left);
	lockd_confchg(g_ld, &cc);
}

static void cpg_totem(cpg_handle_t h, struct cpg_ring_id ring,
		      uint32_t n, const uint32_t *members)
{
	struct lm_ring r = { .nodeid = ring.nodeid, .seq = ring.seq };

	(void)h;
	(void)members;
	tp_data.cpg_ring = ring;
	tp_data.have_cpg_ring = true;
	log_info("totem ring %u.%llu with %u node(s)", ring.nodeid,
		 (unsigned long long)ring.seq, n);
	update_ring_match(g_ld);
	/* after the old ring's messages, before the new ring's */
	lockd_ring(g_ld, &r);
}

static void quorum_notify(quorum_handle_t h, uint32_t quorate,
			  struct quorum_ring_id ring, uint32_t n,
			  const uint32_t *members)
{
	bool was = g_ld->quorate;

	(void)h;
	(void)members;
	tp_data.q_ring = ring;
	tp_data.have_q_ring = true;
	g_ld->quorate = quorate != 0;
	if (was != g_ld->quorate)
		log_notice("quorum %s (ring %u.%llu, %u node(s))",
			   quorate ? "gained" : "lost", ring.nodeid,
			   (unsigned long long)ring.seq, n);
	if (was && !g_ld->quorate)
		lockd_lease_end(g_ld, "quorum lost");
	update_ring_match(g_ld);
	lockd_tp_send_quorum(g_ld);
	/* a heartbeat delivered before this notice did not count for the
	 * lease (ring ids must match): send the next one now */
	if (g_ld->quorate)
		lockd_lease_heartbeat_now(g_ld);
}

static void quorum_info_set(struct lm_quorum *q,
			    const struct votequorum_info *info,
			    uint32_t expected)
{
	memset(q, 0, sizeof(*q));
	q->node_votes = info->node_votes;
	q->expected_votes = expected;
	q->total_votes = info->total_votes;
	q->quorum = info->quorum;
	for (size_t i = 0; i < sizeof(qflag_map) / sizeof(qflag_map[0]); i++)
		if (info->flags & qflag_map[i].vq)
			q->flags |= qflag_map[i].lm;
	if (info->flags & VOTEQUORUM_INFO_QDEVICE_REGISTERED) {
		q->qdevice_votes = info->qdevice_votes;
		snprintf(q->qdevice_name, sizeof(q->qdevice_name), "%.*s",
			 (int)sizeof(q->qdevice_name) - 1, info->qdevice_name);
	}
}

static void votes_refresh(struct lockd *ld)
{
	static bool warned; /* one warning per run of failures */
	struct votequorum_info info;
	cs_error_t e;

	e = votequorum_getinfo(tp_data.vq, ld->our_id, &info);
	if (e != CS_OK) {
		if (!warned)
			log_warn("votequorum_getinfo failed: %s; keeping votes "
				 "%u expected %u", cs_err_name(e), ld->votes,
				 ld->expected_votes);
		warned = true;
		return;
	}
	warned = false;
	ld->votes = info.node_votes;
	ld->expected_votes = info.highest_expected > info.node_expected_votes ?
			     info.highest_expected : info.node_expected_votes;
	quorum_info_set(&ld->quorum_info, &info, ld->expected_votes);
	lockd_tp_send_node_info(ld);
	lockd_tp_send_quorum(ld);
}

static void vq_quorum(votequorum_handle_t h, uint64_t ctx, uint32_t quorate,
		      uint32_t n, votequorum_node_t nodes[])
{
	(void)h;
	(void)ctx;
	(void)quorate;
	(void)n;
	(void)nodes;
	votes_refresh(g_ld);
}

static void vq_expected(votequorum_handle_t h, uint64_t ctx, uint32_t exp)
{
	(void)h;
	(void)ctx;
	(void)exp;
	votes_refresh(g_ld);
}

/*
 * votequorum calls back on quorum and expected-votes changes, but not on
 * every figure csvfs-admin shows (last_man_standing lowering expected
 * votes, a quorum device's state): read them once a second, and multicast
 * the decision again when anything changed.
 */
void lockd_tp_tick(struct lockd *ld, uint64_t now)
{
	static uint64_t next;

	if (tp_data.standalone || !tp_data.vq || now < next)
		return;
	next = now + 1000000000ull;
	votes_refresh(ld);
}

/* ---- corosync set-up ---- */

static void names_from_cmap(struct lockd *ld)
{
	cmap_handle_t cm;
	char key[128], *s = NULL;
	uint32_t id;

	if (cmap_initialize(&cm) != CS_OK) {
		log_warn("cannot read corosync's configuration (cmap); node "
			 "and cluster names fall back to defaults");
		return;
	}
	for (unsigned i = 0; !ld->node_name[0] && i < 4 * LM_MAX_NODES; i++) {
		snprintf(key, sizeof(key), "nodelist.node.%u.nodeid", i);
		if (cmap_get_uint32(cm, key, &id) != CS_OK)
			break;
		if (id != ld->our_id)
			continue;
		snprintf(key, sizeof(key), "nodelist.node.%u.name", i);
		if (cmap_get_string(cm, key, &s) == CS_OK) {
			snprintf(ld->node_name, sizeof(ld->node_name), "%s", s);
			free(s);
		}
	}
	if (!ld->cluster_name[0] &&
	    cmap_get_string(cm, "totem.cluster_name", &s) == CS_OK) {
		snprintf(ld->cluster_name, sizeof(ld->cluster_name), "%s", s);
		free(s);
	}
	cmap_finalize(cm);
}

/*
 * How long corosync may take to deliver nothing while it notices a lost
 * node and forms a new ring: the runtime token timeout (token_coefficient
 * included) plus the consensus timeout.  0 when cmap cannot tell.
 */
static uint32_t detection_ms_from_cmap(void)
{
	cmap_handle_t cm;
	uint32_t token = 0, consensus = 0;

	if (cmap_initialize(&cm) != CS_OK)
		return 0;
	if (cmap_get_uint32(cm, "runtime.config.totem.token", &token) !=
	    CS_OK)
		token = 0;
	if (cmap_get_uint32(cm, "runtime.config.totem.consensus",
			    &consensus) != CS_OK)
		consensus = token + token / 5; /* corosync's default */
	cmap_finalize(cm);
	return token ? token + consensus : 0;
}

/*
 * two_node without a quorum device keeps both halves of a split quorate
 * (that is what two_node means), so leases alone cannot tell which half
 * may take the other's files: only a fence command that has confirmed
 * the other node is dead (STONITH) can.  Refuse to run without one.
 */
static int two_node_check(struct lockd *ld, char *err, size_t errlen)
{
	cmap_handle_t cm;
	uint8_t two8 = 0;
	uint32_t two32 = 0;
	char *model = NULL;
	bool two, qdev;

	if (cmap_initialize(&cm) != CS_OK)
		return 0; /* nothing known: votequorum's flags show it later */
	if (cmap_get_uint8(cm, "quorum.two_node", &two8) != CS_OK &&
	    cmap_get_uint32(cm, "quorum.two_node", &two32) != CS_OK)
		two8 = 0;
	qdev = cmap_get_string(cm, "quorum.device.model", &model) == CS_OK;
	free(model);
	cmap_finalize(cm);
	two = two8 || two32;
	ld->two_node_no_qdevice = two && !qdev;
	if (!ld->two_node_no_qdevice || ld->conf.fence_command[0])
		return 0;
	snprintf(err, errlen, "corosync has two_node: 1 and no quorum device: "
		 "both halves of a split stay quorate, so csvfs-lockd can "
		 "only take over a departed node's files after a fence "
		 "command confirmed it is dead; set fence_command in "
		 "csvfs.conf (a STONITH agent) or add a quorum device "
		 "(corosync-qdevice with corosync-qnetd) to corosync.conf");
	return -EINVAL;
}

static int cpg_setup(struct lockd *ld, char *err, size_t errlen)
{
	cpg_model_v1_data_t model = {
		.model = CPG_MODEL_V1,
		.cpg_deliver_fn = cpg_deliver,
		.cpg_confchg_fn = cpg_confchg,
		.cpg_totem_confchg_fn = cpg_totem,
		.flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
	};
	unsigned int id;
	cs_error_t e;

	e = cpg_model_initialize(&tp_data.cpg, CPG_MODEL_V1,
				 (cpg_model_data_t *)&model, NULL);
	if (e != CS_OK) {
		snprintf(err, errlen, "cannot connect to corosync: is "
			 "corosync.service running? (cpg: %s)",
			 cs_err_name(e));
		return -ECONNREFUSED;
	}
	if (cpg_local_get(tp_data.cpg, &id) != CS_OK ||
	    cpg_fd_get(tp_data.cpg, &tp_data.cpg_fd) != CS_OK) {
		snprintf(err, errlen, "corosync CPG: cannot get the local "
			 "node id or the CPG fd");
		return -EIO;
	}
	ld->our_id = id;
	return 0;
}

static int quorum_setup(struct lockd *ld, char *err, size_t errlen)
{
	quorum_model_v1_data_t qm = {
		.model = QUORUM_MODEL_V1,
		.quorum_notify_fn = quorum_notify,
	};
	votequorum_callbacks_t vcb = {
		.votequorum_quorum_notify_fn = vq_quorum,
		.votequorum_expectedvotes_notify_fn = vq_expected,
	};
	uint32_t qtype = 0;
	cs_error_t e;

	e = quorum_model_initialize(&tp_data.q, QUORUM_MODEL_V1,
				    (quorum_model_data_t *)&qm, &qtype, NULL);
	if (e != CS_OK || qtype != QUORUM_SET) {
		snprintf(err, errlen, "corosync has no quorum provider (%s): "
			 "set quorum { provider: corosync_votequorum } in "
			 "corosync.conf", cs_err_name(e));
		return -EIO;
	}
	e = votequorum_initialize(&tp_data.vq, &vcb);
	if (e != CS_OK) {
		snprintf(err, errlen, "cannot connect to votequorum: %s; "
			 "corosync must use provider corosync_votequorum",
			 cs_err_name(e));
		return -EIO;
	}
	if (quorum_fd_get(tp_data.q, &tp_data.q_fd) != CS_OK ||
	    votequorum_fd_get(tp_data.vq, &tp_data.vq_fd) != CS_OK ||
	    quorum_trackstart(tp_data.q, CS_TRACK_CHANGES) != CS_OK ||
	    votequorum_trackstart(tp_data.vq, 0, CS_TRACK_CHANGES) != CS_OK) {
		snprintf(err, errlen, "corosync quorum tracking could not "
			 "start");
		return -EIO;
	}
	votes_refresh(ld);
	return 0;
}

static int corosync_init(struct lockd *ld, char *err, size_t errlen)
{
	struct cpg_name group;
	cs_error_t e;
	int ret;

	ret = cpg_setup(ld, err, errlen);
	if (!ret)
		ret = quorum_setup(ld, err, errlen);
	if (ret)
		return ret;
	if (!ld->node_name[0] || !ld->cluster_name[0])
		names_from_cmap(ld);
	ret = two_node_check(ld, err, errlen);
	if (ret)
		return ret;
	lockd_lease_resolve(ld, detection_ms_from_cmap());
	snprintf(group.value, sizeof(group.value), "%s", LOCKD_CPG_GROUP);
	group.length = (uint32_t)strlen(group.value);
	do {
		e = cpg_join(tp_data.cpg, &group);
		if (e == CS_ERR_TRY_AGAIN)
			usleep(100000);
	} while (e == CS_ERR_TRY_AGAIN);
	if (e != CS_OK) {
		snprintf(err, errlen, "cannot join CPG group %s: %s",
			 LOCKD_CPG_GROUP, cs_err_name(e));
		return -EIO;
	}
	if (lockd_epoll_add(ld, tp_data.cpg_fd, EPOLLIN, TAG_CPG) ||
	    lockd_epoll_add(ld, tp_data.q_fd, EPOLLIN, TAG_QUORUM) ||
	    lockd_epoll_add(ld, tp_data.vq_fd, EPOLLIN, TAG_VOTEQUORUM)) {
		snprintf(err, errlen, "epoll on corosync fds: %s",
			 strerror(errno));
		return -EIO;
	}
	return 0;
}

static void default_names(struct lockd *ld)
{
	struct utsname u;

	if (!ld->node_name[0] && uname(&u) == 0) {
		/* nodename is 65 bytes: keep what fits */
		u.nodename[sizeof(ld->node_name) - 1] = '\0';
		memcpy(ld->node_name, u.nodename, sizeof(ld->node_name));
	}
	if (!ld->cluster_name[0])
		snprintf(ld->cluster_name, sizeof(ld->cluster_name), "csvfs");
}

int lockd_tp_init(struct lockd *ld, char *err, size_t errlen)
{
	int ret = 0;

	g_ld = ld;
	ld->tp = &tp_data;
	tp_data.cpg_fd = tp_data.q_fd = tp_data.vq_fd = -1;
	snprintf(ld->node_name, sizeof(ld->node_name), "%s", ld->conf.node);
	snprintf(ld->cluster_name, sizeof(ld->cluster_name), "%s",
		 ld->conf.cluster_name);
	if (ld->conf.transport == LOCKD_TRANSPORT_COROSYNC)
		ret = corosync_init(ld, err, errlen);
	default_names(ld);
	if (ret)
		return ret;
	if (ld->conf.transport == LOCKD_TRANSPORT_STANDALONE)
		return standalone_init(ld);
	return 0;
}

void lockd_tp_fini(struct lockd *ld)
{
	struct cpg_name group;

	while (ld->outq)
		outq_pop(ld);
	if (tp_data.standalone || !tp_data.cpg)
		return;
	if (tp_data.joined && !ld->exit_code) {
		snprintf(group.value, sizeof(group.value), "%s",
			 LOCKD_CPG_GROUP);
		group.length = (uint32_t)strlen(group.value);
		cpg_leave(tp_data.cpg, &group);
	}
	cpg_finalize(tp_data.cpg);
	if (tp_data.q)
		quorum_finalize(tp_data.q);
	if (tp_data.vq)
		votequorum_finalize(tp_data.vq);
	tp_data.cpg = 0;
}

void lockd_tp_dispatch(struct lockd *ld, uint64_t tag, uint32_t events)
{
	cs_error_t e;
	const char *what;

	if (tag == TAG_CPG) {
		what = "CPG";
		e = cpg_dispatch(tp_data.cpg, CS_DISPATCH_ALL);
	} else if (tag == TAG_QUORUM) {
		what = "quorum";
		e = quorum_dispatch(tp_data.q, CS_DISPATCH_ALL);
	} else {
		what = "votequorum";
		e = votequorum_dispatch(tp_data.vq, CS_DISPATCH_ALL);
	}
	if (e == CS_OK || e == CS_ERR_TRY_AGAIN) {
		if (!(events & (EPOLLHUP | EPOLLERR)))
			return;
	}
	log_err("lost the connection to corosync (%s: %s)", what,
		cs_err_name(e));
	lockd_lease_end(ld, "corosync connection lost");
	lockd_fatal(ld, "corosync stopped or crashed");
}
