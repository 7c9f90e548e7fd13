// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_serve.c - what csvfs-lockd does with each client request: hello
 * and authentication, acquire / release / cancel, byte-range locks,
 * F_GETLK, queries (answered from the local replica, in batches of
 * LM_BATCH_MAX; volumes from the mounts list of lockd_mounts.c, metrics
 * from this lockd's counters) and admin operations (hand-off, drain,
 * resume).
 *
 * Requests that change the table become cluster messages with a req_id
 * (lockd_res.c); their replies come back through the table's events.
 * Everything answered here is answered from the local replica, which is
 * identical on every node at the same point of the order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lockd.h"
#include "log.h"

/* Root, or a member of socket_group (primary or supplementary). */
static bool peer_allowed(struct lockd *ld, struct lockd_client *c)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (c->uid == 0)
		return true;
	if (ld->socket_gid == (gid_t)-1)
		return false;
	if (c->gid == ld->socket_gid)
		return true;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == ld->socket_gid)
			return true;
	return false;
}

static void serve_hello(struct lockd *ld, struct lockd_client *c,
			const struct lm_smsg *m)
{
	struct lm_smsg r = { .type = LM_S_R_HELLO, .seq = m->seq };
	const struct lm_s_hello *h = &m->u.hello;
	unsigned v = lm_proto_choose(h->proto_min, h->proto_max,
				     LM_CLIENT_VERSION_MIN,
				     LM_CLIENT_VERSION_MAX);

	r.u.r_hello.proto_min = LM_CLIENT_VERSION_MIN;
	r.u.r_hello.proto_max = LM_CLIENT_VERSION_MAX;
	r.u.r_hello.node_id = ld->our_id;
	snprintf(r.u.r_hello.node_name, LM_NAME_MAX, "%s", ld->node_name);
	snprintf(r.u.r_hello.cluster_name, LM_NAME_MAX, "%s",
		 ld->cluster_name);
	if (!peer_allowed(ld, c)) {
		log_warn("client pid %d uid %u refused: only root%s%s may use "
			 "%s", (int)c->pid, (unsigned)c->uid,
			 ld->socket_gid != (gid_t)-1 ? " and group " : "",
			 ld->conf.socket_group, ld->conf.socket);
		r.u.r_hello.status = EACCES;
	} else if (!v) {
		log_warn("client pid %d speaks client protocol %u..%u, this "
			 "csvfs-lockd %u..%u: refused; upgrade %s",
			 (int)c->pid, h->proto_min, h->proto_max,
			 LM_CLIENT_VERSION_MIN, LM_CLIENT_VERSION_MAX,
			 h->proto_max < LM_CLIENT_VERSION_MIN ?
				 "the client (csvfs, csvfs-admin)" :
				 "csvfs-lockd");
		r.u.r_hello.status = EPROTONOSUPPORT;
	} else if (h->kind != LM_CLIENT_CSVFS && h->kind != LM_CLIENT_ADMIN) {
		log_warn("client pid %d: unknown client kind %u", (int)c->pid,
			 h->kind);
		r.u.r_hello.status = EINVAL;
	}
	if (!r.u.r_hello.status)
		r.u.r_hello.version = v;
	lockd_client_push(ld, c, &r);
	if (r.u.r_hello.status) {
		c->dead = true;
		return;
	}
	c->version = (uint16_t)v;
	c->hello_done = true;
	c->kind = (enum lm_client_kind)h->kind;
	memcpy(c->volume, h->volume, LM_VOLUME_LEN);
	snprintf(c->label, sizeof(c->label), "%s", h->label);
	snprintf(c->vol_label, sizeof(c->vol_label), "%s", h->vol_label);
	snprintf(c->source, sizeof(c->source), "%s", h->source);
	log_info("client %u connected: pid %d uid %u, %s, %s", c->id,
		 (int)c->pid, (unsigned)c->uid,
		 c->kind == LM_CLIENT_CSVFS ? "csvfs" : "admin",
		 c->label[0] ? c->label : "no label");
	if (c->kind == LM_CLIENT_CSVFS) {
		lockd_push_lease(ld, c);
		lockd_mounts_client_up(ld, c);
	}
}

/* ---- byte-range locks ---- */

static void remember_plowner(struct lockd_client *c,
			     const struct lm_s_plock *p)
{
	struct lockd_plowner **pp, *po;

	for (pp = &c->plowners; (po = *pp); pp = &po->next)
		if (po->fileid == p->fileid && po->space == p->space &&
		    po->owner == p->owner)
			break;
	if (p->op == LM_PL_RELEASE_OWNER) {
		if (po) {
			*pp = po->next;
			free(po);
		}
		return;
	}
	if (po || !(po = calloc(1, sizeof(*po))))
		return; /* known, or forgotten (then freed at fence only) */
	po->fileid = p->fileid;
	po->space = p->space;
	po->owner = p->owner;
	po->next = c->plowners;
	c->plowners = po;
}

static bool plock_valid(const struct lm_s_plock *p, bool getlk)
{
	if (p->space != LM_SPACE_POSIX && p->space != LM_SPACE_FLOCK)
		return false;
	if (p->start > p->end)
		return false;
	if (getlk)
		return p->type == LM_LK_READ || p->type == LM_LK_WRITE;
	if (p->op < LM_PL_SET || p->op > LM_PL_RELEASE_OWNER)
		return false;
	if (p->op == LM_PL_SET || p->op == LM_PL_SETW)
		return p->type == LM_LK_READ || p->type == LM_LK_WRITE;
	return true;
}

static void plock_to_cmsg(const struct lockd_client *c,
			  const struct lm_s_plock *p, struct lm_cmsg *cm)
{
	memset(cm, 0, sizeof(*cm));
	cm->type = LM_C_PLOCK;
	memcpy(cm->u.plock.res.volume, c->volume, LM_VOLUME_LEN);
	cm->u.plock.res.fileid = p->fileid;
	cm->u.plock.space = p->space;
	cm->u.plock.op = p->op;
	cm->u.plock.type = p->type;
	cm->u.plock.owner = p->owner;
	cm->u.plock.start = p->start;
	cm->u.plock.end = p->end;
	cm->u.plock.pid = p->pid;
}

static void serve_plock(struct lockd *ld, struct lockd_client *c,
			const struct lm_smsg *m)
{
	const struct lm_s_plock *p = &m->u.plock;
	struct lm_cmsg cm;

	if (!plock_valid(p, false)) {
		lockd_client_reply(ld, c, m->seq, EINVAL, 0);
		return;
	}
	if (ld->stopping && (p->op == LM_PL_SET || p->op == LM_PL_SETW)) {
		lockd_client_reply(ld, c, m->seq, LM_ERR_SHUTDOWN, 0);
		return;
	}
	remember_plowner(c, p);
	plock_to_cmsg(c, p, &cm);
	lockd_request(ld, LM_NREQ_PLOCK, &cm, c, m->seq);
}

static void serve_getlk(struct lockd *ld, struct lockd_client *c,
			const struct lm_smsg *m)
{
	struct lm_smsg r = { .type = LM_S_R_GETLK, .seq = m->seq };
	const struct lm_s_plock *p = &m->u.plock;
	struct lm_res res = { .fileid = p->fileid };
	int ret;

	if (!plock_valid(p, true)) {
		lockd_client_reply(ld, c, m->seq, EINVAL, 0);
		return;
	}
	memcpy(res.volume, c->volume, LM_VOLUME_LEN);
	ret = lm_state_getlk(ld->st, &res, p->space, ld->our_id, p->owner,
			     p->type, p->start, p->end, &r.u.r_getlk.conflict);
	r.u.r_getlk.status = ret < 0 ? -ret : 0;
	r.u.r_getlk.found = ret == 1;
	lockd_client_push(ld, c, &r);
}

/* Cancel an acquire or a SETW by the seq of its request. */
static void serve_cancel(struct lockd *ld, struct lockd_client *c,
			 const struct lm_smsg *m)
{
	lockd_cancel(ld, c, m->seq, m->u.cancel.seq);
}

/* ---- queries ---- */

static void serve_status(struct lockd *ld, struct lockd_client *c,
			 uint32_t seq)
{
	struct lm_smsg *r = calloc(1, sizeof(*r));
	struct lm_s_r_status *s;
	struct lm_status_info si;
	uint64_t now = cv_now_ns();

	if (!r) {
		lockd_client_reply(ld, c, seq, ENOMEM, 0);
		return;
	}
	r->type = LM_S_R_STATUS;
	r->seq = seq;
	s = &r->u.r_status;
	lm_state_status(ld->st, &si);
	snprintf(s->cluster_name, LM_NAME_MAX, "%s", ld->cluster_name);
	snprintf(s->node_name, LM_NAME_MAX, "%s", ld->node_name);
	s->node_id = ld->our_id;
	s->transport = (uint8_t)ld->conf.transport;
	s->quorate = si.quorate;
	s->ready = si.ready && !ld->kept_out;
	s->syncing = si.syncing;
	s->expected_votes = si.expected_votes;
	s->total_votes = si.total_votes;
	s->n_members = si.n_members;
	memcpy(s->members, si.members, sizeof(s->members));
	s->version = si.version;
	s->epoch = si.epoch;
	s->digest = lm_state_digest(ld->st);
	s->n_resources = si.n_resources;
	s->n_locks = si.n_locks;
	s->lease_remaining_ms = ld->lease_valid && ld->lease_deadline_ns > now ?
		(int64_t)((ld->lease_deadline_ns - now) / 1000000) : -1;
	s->lease_timeout_ms = ld->conf.lease_timeout_ms;
	s->n_clients = ld->n_clients;
	s->proto_version = si.proto_version;
	s->proto_min = LM_PROTO_VERSION_MIN;
	s->proto_max = LM_PROTO_VERSION_MAX;
	s->quorum_from = si.quorum_from;
	s->local_quorate = lockd_tp_quorate(ld);
	s->q = si.quorum_from ? si.q : ld->quorum_info;
	s->q.ring = si.ring;
	s->q.quorate = si.quorate;
	lockd_client_push(ld, c, r);
	free(r);
}

/* Rows are gathered first, then sent in batches: more = 1 on all but the
 * last message. */
struct rows {
	struct lockd *ld;
	size_t n, cap, size;
	uint8_t *v;
};

static int rows_add(struct rows *rs, const void *row)
{
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? 2 * rs->cap : 64;
		uint8_t *v = realloc(rs->v, cap * rs->size);

		if (!v)
			return -ENOMEM;
		rs->v = v;
		rs->cap = cap;
	}
	memcpy(rs->v + rs->n * rs->size, row, rs->size);
	rs->n++;
	return 0;
}

static int node_row(const struct lm_node_entry *e, void *arg)
{
	struct rows *rs = arg;
	struct lm_node_entry row = *e;

	row.heartbeat_age_ms = lockd_heartbeat_age_ms(rs->ld, e->id);
	lockd_node_wire(rs->ld, e->id, &row.heartbeat_version,
			&row.lease_timeout_ms);
	return rows_add(rs, &row);
}

static int owner_row(const struct lm_owner_entry *e, void *arg)
{
	struct rows *rs = arg;
	struct lm_owner_entry row = *e;

	row.age_ms = e->owner ? lockd_grant_age_ms(rs->ld, &e->res) : -1;
	return rows_add(rs, &row);
}

static int lock_row(const struct lm_lock_entry *e, void *arg)
{
	return rows_add(arg, e);
}

/* Where a batch reply of type keeps its head and entries. */
static void *batch_of(struct lm_smsg *r, uint16_t type, uint8_t **more,
		      uint32_t **n, size_t *max)
{
	*max = LM_BATCH_MAX;
	switch (type) {
	case LM_S_R_NODES:
		*more = &r->u.r_nodes.more;
		*n = &r->u.r_nodes.n;
		return r->u.r_nodes.e;
	case LM_S_R_OWNERS:
		*more = &r->u.r_owners.more;
		*n = &r->u.r_owners.n;
		return r->u.r_owners.e;
	case LM_S_R_VOLUMES:
		*max = LM_VOL_BATCH_MAX;
		*more = &r->u.r_volumes.more;
		*n = &r->u.r_volumes.n;
		return r->u.r_volumes.e;
	case LM_S_R_LOG:
		*max = LM_LOG_BATCH_MAX;
		*more = &r->u.r_log.more;
		*n = &r->u.r_log.n;
		return r->u.r_log.e;
	default: /* LM_S_R_LOCKS */
		*more = &r->u.r_locks.more;
		*n = &r->u.r_locks.n;
		return r->u.r_locks.e;
	}
}

static void send_rows(struct lockd *ld, struct lockd_client *c, uint32_t seq,
		      uint16_t type, const struct rows *rs)
{
	struct lm_smsg *r = calloc(1, sizeof(*r));
	size_t off = 0, max, n;
	uint32_t *np;
	uint8_t *more;
	void *dst;

	if (!r) {
		lockd_client_reply(ld, c, seq, ENOMEM, 0);
		return;
	}
	r->type = type;
	r->seq = seq;
	dst = batch_of(r, type, &more, &np, &max);
	do {
		n = rs->n - off > max ? max : rs->n - off;
		if (n)
			memcpy(dst, rs->v + off * rs->size, n * rs->size);
		off += n;
		*more = off < rs->n;
		*np = (uint32_t)n;
		lockd_client_push(ld, c, r);
	} while (off < rs->n);
	free(r);
}

static void serve_metrics(struct lockd *ld, struct lockd_client *c,
			  uint32_t seq)
{
	struct lm_smsg *r = calloc(1, sizeof(*r));
	const struct lockd_metrics *mt = &ld->metrics;
	struct lm_s_r_metrics *m;
	uint64_t now = cv_now_ns();

	if (!r) {
		lockd_client_reply(ld, c, seq, ENOMEM, 0);
		return;
	}
	r->type = LM_S_R_METRICS;
	r->seq = seq;
	m = &r->u.r_metrics;
	m->uptime_ms = (now - ld->start_ns) / 1000000;
	m->grants = mt->grants;
	m->handoffs = mt->handoffs;
	m->revokes = mt->revokes;
	m->releases = mt->releases;
	m->lost = mt->lost;
	m->fences = mt->fences;
	m->acquires = mt->acquires;
	m->acquire_errors = mt->acquire_errors;
	m->lease_remaining_ms = ld->lease_valid && ld->lease_deadline_ns > now ?
		(int64_t)((ld->lease_deadline_ns - now) / 1000000) : -1;
	m->lease_timeout_ms = ld->conf.lease_timeout_ms;
	m->acquire_latency = mt->acquire_latency;
	lockd_client_push(ld, c, r);
	free(r);
}

static void serve_query(struct lockd *ld, struct lockd_client *c,
			const struct lm_smsg *m)
{
	const struct lm_s_query *q = &m->u.query;
	const struct lm_res *filter = q->has_res ? &q->res : NULL;
	struct rows rs = { .ld = ld };
	struct lm_owner_entry oe;
	uint16_t type;
	int ret = 0;

	switch (q->what) {
	case LM_QUERY_STATUS:
		serve_status(ld, c, m->seq);
		return;
	case LM_QUERY_NODES:
		type = LM_S_R_NODES;
		rs.size = sizeof(struct lm_node_entry);
		ret = lm_state_foreach_node(ld->st, node_row, &rs);
		break;
	case LM_QUERY_OWNERS:
		type = LM_S_R_OWNERS;
		rs.size = sizeof(struct lm_owner_entry);
		if (!filter)
			ret = lm_state_foreach_owner(ld->st, owner_row, &rs);
		else if (lm_state_owner(ld->st, filter, &oe) == 0)
			ret = owner_row(&oe, &rs);
		break;
	case LM_QUERY_LOCKS:
		type = LM_S_R_LOCKS;
		rs.size = sizeof(struct lm_lock_entry);
		ret = lm_state_foreach_lock(ld->st, filter, lock_row, &rs);
		break;
	case LM_QUERY_VOLUMES:
		type = LM_S_R_VOLUMES;
		rs.size = sizeof(struct lm_volume_entry);
		for (size_t i = 0; i < ld->n_mounts && !ret; i++)
			ret = rows_add(&rs, &ld->mounts[i]);
		break;
	case LM_QUERY_METRICS:
		serve_metrics(ld, c, m->seq);
		return;
	case LM_QUERY_LOG: /* rows of one byte: the ring's text */
		type = LM_S_R_LOG;
		rs.size = 1;
		rs.v = malloc(cv_log_ring_size());
		if (rs.v)
			rs.n = cv_log_ring_read((char *)rs.v,
						cv_log_ring_size());
		ret = rs.v ? 0 : -ENOMEM;
		break;
	default:
		lockd_client_reply(ld, c, m->seq, EINVAL, 0);
		return;
	}
	if (ret)
		lockd_client_reply(ld, c, m->seq, ENOMEM, 0);
	else
		send_rows(ld, c, m->seq, type, &rs);
	free(rs.v);
}

/* ---- admin ---- */

static void serve_admin(struct lockd *ld, struct lockd_client *c,
			const struct lm_smsg *m)
{
	const struct lm_s_admin *a = &m->u.admin;
	struct lm_cmsg cm = { 0 };
	uint32_t target = ld->our_id;

	if (ld->stopping) {
		lockd_client_reply(ld, c, m->seq, LM_ERR_SHUTDOWN, 0);
		return;
	}
	if (a->node[0] && lm_state_node_by_name(ld->st, a->node, &target)) {
		log_info("admin request from pid %d: no node named \"%s\"",
			 (int)c->pid, a->node);
		lockd_client_reply(ld, c, m->seq, LM_ERR_NONODE, 0);
		return;
	}
	switch (a->op) {
	case LM_ADMIN_HANDOFF:
		cm.type = LM_C_HANDOFF;
		cm.u.handoff.res = a->res;
		cm.u.handoff.target = target;
		break;
	case LM_ADMIN_DRAIN:
	case LM_ADMIN_RESUME:
		cm.type = a->op == LM_ADMIN_DRAIN ? LM_C_DRAIN : LM_C_RESUME;
		cm.u.drain.target = target;
		break;
	default:
		lockd_client_reply(ld, c, m->seq, EINVAL, 0);
		return;
	}
	log_notice("admin: %s of node %u requested by pid %d",
		   lm_cmsg_type_name(cm.type), target, (int)c->pid);
	lockd_request(ld, LM_NREQ_ADMIN, &cm, c, m->seq);
}

void lockd_serve(struct lockd *ld, struct lockd_client *c,
		 const struct lm_smsg *m)
{
	int ret;

	if (!c->hello_done) {
		if (m->type == LM_S_HELLO) {
			serve_hello(ld, c, m);
			return;
		}
		log_warn("client pid %d sent %s before hello; disconnecting it",
			 (int)c->pid, lm_smsg_type_name(m->type));
		lockd_client_reply(ld, c, m->seq, EPROTO, 0);
		c->dead = true;
		return;
	}
	if (ld->kept_out && (m->type == LM_S_ACQUIRE ||
			     m->type == LM_S_PLOCK || m->type == LM_S_ADMIN)) {
		/* nothing this node sends would be read: say why at once */
		lockd_client_reply(ld, c, m->seq, LM_ERR_PROTO, 0);
		return;
	}
	switch (m->type) {
	case LM_S_ACQUIRE:
		lockd_acquire(ld, c, m->seq, m->u.acquire.fileid,
			      m->u.acquire.flags);
		break;
	case LM_S_RELEASE:
		ret = lockd_client_release(ld, c, m->u.release.fileid,
					   m->u.release.epoch);
		lockd_client_reply(ld, c, m->seq, ret, 0);
		break;
	case LM_S_PLOCK:
		serve_plock(ld, c, m);
		break;
	case LM_S_GETLK:
		serve_getlk(ld, c, m);
		break;
	case LM_S_QUERY:
		serve_query(ld, c, m);
		break;
	case LM_S_ADMIN:
		serve_admin(ld, c, m);
		break;
	case LM_S_CANCEL:
		serve_cancel(ld, c, m);
		break;
	default:
		log_warn("client pid %d sent %s, which is not a request; "
			 "disconnecting it", (int)c->pid,
			 lm_smsg_type_name(m->type));
		lockd_client_reply(ld, c, m->seq, EPROTO, 0);
		c->dead = true;
	}
}
