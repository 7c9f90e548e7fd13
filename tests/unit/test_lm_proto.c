// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_lm_proto.c - unit tests of the lockd wire codecs (lm_proto.h).
 *
 * Every message type of both families is built with non-trivial values
 * (a typical one and one at the limits: full lists, longest strings,
 * extreme integers), encoded, decoded and compared field by field.  The
 * encodings are then truncated at every length, extended, and corrupted
 * byte by byte: a decoder must reject them or produce a message whose
 * re-encoding is exactly the input (the format is canonical).  Specific
 * malformations (version, magic, counts, strings, enums, booleans,
 * ranges) are checked at hand-computed offsets, each offset verified
 * against the value the encoder put there.  Every version of the build's
 * range is encoded and decoded, the frozen messages checked to travel at
 * LM_PROTO_FROZEN, and the negotiation functions checked on chosen
 * ranges.  tests/Makefile.am builds this file twice: at the release's
 * range and at 2..3, where the version 3 heartbeat is checked too.
 *
 * struct lm_smsg holds whole batches, so messages live on the heap.
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lm_proto.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const uint16_t cmsg_types[] = {
    LM_C_SYNC_HELLO, LM_C_SYNC_DATA, LM_C_SYNC_DONE, LM_C_NODE_INFO,
    LM_C_HEARTBEAT,  LM_C_ACQUIRE,   LM_C_RELEASE,   LM_C_HANDOFF,
    LM_C_DRAIN,	     LM_C_RESUME,    LM_C_PLOCK,     LM_C_FENCE,
    LM_C_MOUNT,	     LM_C_QUORUM,
};

static const uint16_t smsg_types[] = {
    LM_S_HELLO,	     LM_S_ACQUIRE,   LM_S_RELEASE,  LM_S_PLOCK,
    LM_S_GETLK,	     LM_S_QUERY,     LM_S_ADMIN,    LM_S_CANCEL,
    LM_S_R_HELLO,    LM_S_R_RESULT,  LM_S_R_GETLK,  LM_S_R_STATUS,
    LM_S_R_NODES,    LM_S_R_OWNERS,  LM_S_R_LOCKS,  LM_S_EV_LEASE,
    LM_S_EV_GRANTED, LM_S_EV_REVOKE, LM_S_EV_OWNER, LM_S_EV_LOST,
    LM_S_R_VOLUMES,  LM_S_R_METRICS, LM_S_R_LOG,
};

/* Two variants of each sample: typical values, and values at the limits. */
#define NVARIANTS 2

static uint8_t payload[LM_SYNC_CHUNK];
static uint8_t buf[LM_MSG_MAX + 64];
static uint8_t buf2[LM_MSG_MAX + 64];

/* ------------------------------------------------------------------------
 * Sample messages.
 */
static void fill_res(struct lm_res *r, unsigned k)
{
	for (unsigned i = 0; i < LM_VOLUME_LEN; i++)
		r->volume[i] = (uint8_t)(0xa0 + 7 * i + k);
	r->fileid = 0x1122334455667788ull + k;
}

/* A string of len characters (len < size) derived from seed. */
static void fill_str(char *s, size_t size, size_t len, char seed)
{
	memset(s, 0, size);
	for (size_t i = 0; i < len && i < size - 1; i++)
		s[i] = (char)('a' + (seed + i) % 26);
}

static void fill_lock(struct lm_lock_entry *e, unsigned k, int v)
{
	fill_res(&e->res, k);
	e->space = (uint8_t)((k + 1) % 2);
	e->type = (uint8_t)(k % 2 + 1);
	e->waiting = (uint8_t)(k % 2);
	e->node = 3 + k;
	e->owner = 0xfeedface00000000ull + k;
	e->pid = 4242 + k;
	e->start = v ? 0 : 4096 * k + 1;
	e->end = v ? LM_OFFSET_MAX : 4096 * k + 100;
}

static void fill_mount(struct lm_mount *m, unsigned k, int v)
{
	for (unsigned i = 0; i < LM_VOLUME_LEN; i++)
		m->volume[i] = (uint8_t)(0x30 + 3 * i + k);
	fill_str(m->label, sizeof(m->label), v ? LM_NAME_MAX - 1 : 7, 2);
	fill_str(m->source, sizeof(m->source), v ? LM_PATH_MAX - 1 : 20, 4);
	fill_str(m->mountpoint, sizeof(m->mountpoint),
		 v ? LM_PATH_MAX - 1 : 8 + k % 5, (char)k);
}

static void sample_c_hello(struct lm_c_sync_hello *h, int v)
{
	h->n_members = v ? LM_MAX_NODES : 3;
	for (uint32_t i = 0; i < h->n_members; i++)
		h->members[i] = 1 + 2 * i;
	h->version = v ? UINT64_MAX : 0x0102030405060708ull;
	h->epoch = 77;
	h->votes = 1;
	h->expected_votes = 5;
	fill_str(h->name, sizeof(h->name), v ? LM_NAME_MAX - 1 : 6, 3);
	h->proto_min = v ? 1 : 2;
	h->proto_max = v ? UINT16_MAX : 3;
	h->kept_out = (uint8_t)v;
}

static void sample_c_plock(struct lm_c_plock *p, int v)
{
	p->req_id = 0xabcdef0123456789ull;
	fill_res(&p->res, 2);
	p->space = v ? LM_SPACE_FLOCK : LM_SPACE_POSIX;
	p->op = v ? LM_PL_RELEASE_OWNER : LM_PL_SETW;
	p->type = v ? LM_LK_READ : LM_LK_WRITE;
	p->owner = 0x8000000000000001ull;
	p->start = v ? 0 : 100;
	p->end = v ? LM_OFFSET_MAX : 199;
	p->pid = 31337;
}

static void sample_cmsg(uint16_t type, int v, struct lm_cmsg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	switch (type) {
	case LM_C_SYNC_HELLO:
		sample_c_hello(&m->u.hello, v);
		break;
	case LM_C_SYNC_DATA:
		m->u.sync_data.index = v ? UINT32_MAX : 7;
		m->u.sync_data.len = v ? LM_SYNC_CHUNK : 100;
		m->u.sync_data.data = payload;
		break;
	case LM_C_SYNC_DONE:
		m->u.sync_done.chunks = 9;
		m->u.sync_done.total_len = 9ull * LM_SYNC_CHUNK - 5;
		m->u.sync_done.checksum = 0xaf63dc4c8601ec8cull;
		break;
	case LM_C_NODE_INFO:
		m->u.node_info.votes = 2;
		m->u.node_info.expected_votes = v ? UINT32_MAX : 3;
		break;
	case LM_C_HEARTBEAT:
		m->u.heartbeat.seq = v ? UINT64_MAX : 123456789;
		m->u.heartbeat.lease_timeout_ms = v ? UINT32_MAX : 5000;
		break;
	case LM_C_QUORUM:
		m->u.quorum.ring.nodeid = v ? UINT32_MAX : 2;
		m->u.quorum.ring.seq = v ? UINT64_MAX : 0x1234;
		m->u.quorum.quorate = (uint8_t)!v;
		m->u.quorum.node_votes = 1;
		m->u.quorum.expected_votes = 3;
		m->u.quorum.total_votes = v ? UINT32_MAX : 2;
		m->u.quorum.quorum = 2;
		m->u.quorum.qdevice_votes = v;
		m->u.quorum.flags = v ? LM_QF_ALL : LM_QF_TWO_NODE;
		snprintf(m->u.quorum.qdevice_name,
			 sizeof(m->u.quorum.qdevice_name), "%s",
			 v ? "Qdevice" : "");
		break;
	case LM_C_ACQUIRE:
		m->u.acquire.req_id = 17;
		fill_res(&m->u.acquire.res, 1);
		break;
	case LM_C_RELEASE:
		m->u.release.req_id = 18;
		fill_res(&m->u.release.res, 2);
		m->u.release.epoch = 0x100000001ull;
		break;
	case LM_C_HANDOFF:
		m->u.handoff.req_id = 19;
		fill_res(&m->u.handoff.res, 3);
		m->u.handoff.target = 4;
		break;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		m->u.drain.req_id = 20;
		m->u.drain.target = v ? UINT32_MAX : 2;
		break;
	case LM_C_PLOCK:
		sample_c_plock(&m->u.plock, v);
		break;
	case LM_C_FENCE:
		m->u.fence.target = 3;
		break;
	case LM_C_MOUNT:
		m->u.mount.op = v ? LM_MOUNT_DEL : LM_MOUNT_ADD;
		fill_mount(&m->u.mount.m, 1, v);
		break;
	}
}

static void sample_s_request(uint16_t type, int v, struct lm_smsg *m)
{
	switch (type) {
	case LM_S_HELLO:
		m->u.hello.proto_min = v ? 1 : 2;
		m->u.hello.proto_max = v ? UINT32_MAX : 2;
		m->u.hello.kind = v ? LM_CLIENT_ADMIN : LM_CLIENT_CSVFS;
		for (unsigned i = 0; i < LM_VOLUME_LEN; i++)
			m->u.hello.volume[i] = (uint8_t)(0x5a ^ i);
		m->u.hello.pid = 999;
		fill_str(m->u.hello.label, LM_PATH_MAX,
			 v ? LM_PATH_MAX - 1 : 12, 1);
		fill_str(m->u.hello.vol_label, LM_NAME_MAX,
			 v ? LM_NAME_MAX - 1 : 0, 3);
		fill_str(m->u.hello.source, LM_PATH_MAX,
			 v ? LM_PATH_MAX - 1 : 9, 5);
		break;
	case LM_S_ACQUIRE:
		m->u.acquire.fileid = 0x4000000000000123ull;
		m->u.acquire.flags = v ? 0 : LM_ACQ_NOWAIT;
		break;
	case LM_S_RELEASE:
		m->u.release.fileid = 55;
		m->u.release.epoch = 66;
		break;
	case LM_S_PLOCK:
	case LM_S_GETLK:
		m->u.plock.fileid = 77;
		m->u.plock.space = v ? LM_SPACE_FLOCK : LM_SPACE_POSIX;
		m->u.plock.op = v ? LM_PL_CANCEL : LM_PL_SET;
		m->u.plock.type = v ? LM_LK_UNLOCK : LM_LK_READ;
		m->u.plock.owner = 0xdeadbeefcafef00dull;
		m->u.plock.start = v ? 0 : 10;
		m->u.plock.end = v ? LM_OFFSET_MAX : 10;
		m->u.plock.pid = 12;
		break;
	case LM_S_QUERY:
		m->u.query.what = v ? LM_QUERY_METRICS : LM_QUERY_OWNERS;
		m->u.query.has_res = 1;
		fill_res(&m->u.query.res, 6);
		break;
	case LM_S_ADMIN:
		m->u.admin.op = v ? LM_ADMIN_RESUME : LM_ADMIN_HANDOFF;
		fill_res(&m->u.admin.res, 7);
		fill_str(m->u.admin.node, LM_NAME_MAX, v ? 63 : 2, 13);
		break;
	case LM_S_CANCEL:
		m->u.cancel.seq = 0x01020304;
		break;
	}
}

static void sample_s_status(struct lm_s_r_status *r, int v)
{
	r->status = v ? -LM_ERR_SYNCING : 0;
	fill_str(r->cluster_name, LM_NAME_MAX, v ? 63 : 7, 4);
	fill_str(r->node_name, LM_NAME_MAX, v ? 63 : 2, 9);
	r->node_id = 2;
	r->transport = v ? 2 : 1;
	r->quorate = 1;
	r->ready = (uint8_t)!v;
	r->syncing = (uint8_t)v;
	r->expected_votes = 3;
	r->total_votes = 2;
	r->n_members = v ? LM_MAX_NODES : 2;
	for (uint32_t i = 0; i < r->n_members; i++)
		r->members[i] = 100 + i;
	r->version = 1000;
	r->epoch = 2000;
	r->digest = 0x0123456789abcdefull;
	r->n_resources = 3000;
	r->n_locks = 4000;
	r->lease_remaining_ms = v ? -1 : 7500;
	r->lease_timeout_ms = 10000;
	r->n_clients = 4;
	r->proto_version = v ? 0 : 2;
	r->proto_min = 2;
	r->proto_max = v ? UINT16_MAX : 3;
}

static void sample_s_batch(uint16_t type, int v, struct lm_smsg *m)
{
	uint32_t n = v ? LM_BATCH_MAX : 3;

	for (uint32_t i = 0; i < n; i++) {
		struct lm_node_entry *ne = &m->u.r_nodes.e[i];
		struct lm_owner_entry *oe = &m->u.r_owners.e[i];

		if (type == LM_S_R_NODES) {
			ne->id = i + 1;
			fill_str(ne->name, LM_NAME_MAX, v ? 63 : 5, (char)i);
			ne->state = (uint8_t)(i % 4);
			ne->member = (uint8_t)(i % 2);
			ne->draining = (uint8_t)((i + 1) % 2);
			ne->votes = 1;
			ne->n_owned = 10 + i;
			ne->n_locks = 20 + i;
			ne->heartbeat_age_ms = i % 2 ? -1 : 250 + (int64_t)i;
			ne->proto_min = (uint16_t)(i % 3);
			ne->proto_max = v ? UINT16_MAX : (uint16_t)(2 + i % 2);
			ne->heartbeat_version = (uint16_t)(i % 4);
			ne->lease_timeout_ms = i % 2 ? 0 : 5000 + i;
		} else if (type == LM_S_R_OWNERS) {
			fill_res(&oe->res, i);
			oe->owner = i % 4;
			oe->epoch = 1000 + i;
			oe->n_waiters = i;
			oe->handoff_target = i % 5;
			oe->revoking = (uint8_t)(i % 2);
			oe->age_ms = i % 3 ? -1 : INT64_MAX;
		} else {
			fill_lock(&m->u.r_locks.e[i], i, v);
		}
	}
	/* status, more and n sit at the same place in all three replies */
	m->u.r_nodes.status = v ? 0 : -EAGAIN;
	m->u.r_nodes.more = (uint8_t)!v;
	m->u.r_nodes.n = n;
}

static void sample_s_volumes(struct lm_s_r_volumes *r, int v)
{
	r->status = 0;
	r->more = (uint8_t)!v;
	r->n = v ? LM_VOL_BATCH_MAX : 2;
	for (uint32_t i = 0; i < r->n; i++) {
		r->e[i].node = i + 1;
		fill_mount(&r->e[i].m, i, v);
	}
}

static void sample_s_metrics(struct lm_s_r_metrics *r, int v)
{
	uint64_t base = v ? UINT64_MAX - 100 : 10;

	r->status = v ? -LM_ERR_SHUTDOWN : 0;
	r->uptime_ms = base;
	r->grants = base + 1;
	r->handoffs = base + 2;
	r->revokes = base + 3;
	r->releases = base + 4;
	r->lost = base + 5;
	r->fences = base + 6;
	r->acquires = base + 7;
	r->acquire_errors = base + 8;
	r->lease_remaining_ms = v ? -1 : 4321;
	r->lease_timeout_ms = v ? UINT32_MAX : 5000;
	for (unsigned i = 0; i < LM_HIST_BUCKETS; i++)
		r->acquire_latency.bucket[i] = base + 20 + i;
	r->acquire_latency.count = base + 40;
	r->acquire_latency.sum_us = base + 41;
}

static void sample_s_reply(uint16_t type, int v, struct lm_smsg *m)
{
	switch (type) {
	case LM_S_R_HELLO:
		m->u.r_hello.status = v ? EPROTONOSUPPORT : 0;
		m->u.r_hello.version = v ? 0 : 2;
		m->u.r_hello.proto_min = 2;
		m->u.r_hello.proto_max = v ? UINT32_MAX : 2;
		m->u.r_hello.node_id = 3;
		fill_str(m->u.r_hello.node_name, LM_NAME_MAX, v ? 63 : 2, 5);
		fill_str(m->u.r_hello.cluster_name, LM_NAME_MAX, v ? 63 : 5, 7);
		break;
	case LM_S_R_RESULT:
		m->u.r_result.status = v ? INT32_MIN : -LM_ERR_NOQUORUM;
		m->u.r_result.epoch = 0x7766554433221100ull;
		break;
	case LM_S_R_GETLK:
		m->u.r_getlk.status = 0;
		m->u.r_getlk.found = 1;
		fill_lock(&m->u.r_getlk.conflict, 9, v);
		break;
	case LM_S_R_STATUS:
		sample_s_status(&m->u.r_status, v);
		break;
	case LM_S_R_NODES:
	case LM_S_R_OWNERS:
	case LM_S_R_LOCKS:
		sample_s_batch(type, v, m);
		break;
	case LM_S_R_VOLUMES:
		sample_s_volumes(&m->u.r_volumes, v);
		break;
	case LM_S_R_METRICS:
		sample_s_metrics(&m->u.r_metrics, v);
		break;
	case LM_S_R_LOG: /* v 1: a full batch of every byte value */
		m->u.r_log.more = (uint8_t)!v;
		m->u.r_log.n = v ? LM_LOG_BATCH_MAX : 5;
		for (uint32_t i = 0; i < m->u.r_log.n; i++)
			m->u.r_log.e[i] = (char)(v ? i * 7 : 'a' + i);
		break;
	}
}

static void sample_smsg(uint16_t type, int v, struct lm_smsg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->seq = type >= LM_S_EV_LEASE ? 0 : 0x10000 + type;
	sample_s_request(type, v, m);
	sample_s_reply(type, v, m);
	switch (type) {
	case LM_S_EV_LEASE:
		m->u.ev_lease.valid = (uint8_t)!v;
		m->u.ev_lease.deadline_ns = v ? UINT64_MAX : 5000000000ull;
		break;
	case LM_S_EV_GRANTED:
	case LM_S_EV_REVOKE:
	case LM_S_EV_OWNER:
	case LM_S_EV_LOST:
		m->u.ev_file.fileid = 0x55aa55aa55aa55aaull;
		m->u.ev_file.epoch = 31;
		m->u.ev_file.owner = v ? 0 : 2;
		break;
	}
}

/* ------------------------------------------------------------------------
 * Field-by-field comparison.
 */
#define EQ(a, b, f)    assert_true((a)->f == (b)->f)
#define EQMEM(a, b, f) assert_memory_equal((a)->f, (b)->f, sizeof((a)->f))

static void cmp_res(const struct lm_res *a, const struct lm_res *b)
{
	EQMEM(a, b, volume);
	EQ(a, b, fileid);
}

static void cmp_mount(const struct lm_mount *a, const struct lm_mount *b)
{
	EQMEM(a, b, volume);
	assert_string_equal(a->label, b->label);
	assert_string_equal(a->source, b->source);
	assert_string_equal(a->mountpoint, b->mountpoint);
}

static void cmp_cmsg(const struct lm_cmsg *a, const struct lm_cmsg *b)
{
	EQ(a, b, type);
	switch (a->type) {
	case LM_C_SYNC_HELLO:
		EQ(a, b, u.hello.n_members);
		assert_memory_equal(a->u.hello.members, b->u.hello.members,
				    a->u.hello.n_members * sizeof(uint32_t));
		EQ(a, b, u.hello.version);
		EQ(a, b, u.hello.epoch);
		EQ(a, b, u.hello.votes);
		EQ(a, b, u.hello.expected_votes);
		assert_string_equal(a->u.hello.name, b->u.hello.name);
		EQ(a, b, u.hello.proto_min);
		EQ(a, b, u.hello.proto_max);
		EQ(a, b, u.hello.kept_out);
		break;
	case LM_C_SYNC_DATA:
		EQ(a, b, u.sync_data.index);
		EQ(a, b, u.sync_data.len);
		assert_memory_equal(a->u.sync_data.data, b->u.sync_data.data,
				    a->u.sync_data.len);
		break;
	case LM_C_SYNC_DONE:
		EQ(a, b, u.sync_done.chunks);
		EQ(a, b, u.sync_done.total_len);
		EQ(a, b, u.sync_done.checksum);
		break;
	case LM_C_NODE_INFO:
		EQ(a, b, u.node_info.votes);
		EQ(a, b, u.node_info.expected_votes);
		break;
	case LM_C_HEARTBEAT:
		EQ(a, b, u.heartbeat.seq);
		/* travels from version 3 on only */
		if (b->version >= 3)
			EQ(a, b, u.heartbeat.lease_timeout_ms);
		else
			assert_int_equal(b->u.heartbeat.lease_timeout_ms, 0);
		break;
	case LM_C_QUORUM:
		EQ(a, b, u.quorum.ring.nodeid);
		EQ(a, b, u.quorum.ring.seq);
		EQ(a, b, u.quorum.quorate);
		EQ(a, b, u.quorum.node_votes);
		EQ(a, b, u.quorum.expected_votes);
		EQ(a, b, u.quorum.total_votes);
		EQ(a, b, u.quorum.quorum);
		EQ(a, b, u.quorum.qdevice_votes);
		EQ(a, b, u.quorum.flags);
		assert_string_equal(a->u.quorum.qdevice_name,
				    b->u.quorum.qdevice_name);
		break;
	case LM_C_ACQUIRE:
		EQ(a, b, u.acquire.req_id);
		cmp_res(&a->u.acquire.res, &b->u.acquire.res);
		break;
	case LM_C_RELEASE:
		EQ(a, b, u.release.req_id);
		cmp_res(&a->u.release.res, &b->u.release.res);
		EQ(a, b, u.release.epoch);
		break;
	case LM_C_HANDOFF:
		EQ(a, b, u.handoff.req_id);
		cmp_res(&a->u.handoff.res, &b->u.handoff.res);
		EQ(a, b, u.handoff.target);
		break;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		EQ(a, b, u.drain.req_id);
		EQ(a, b, u.drain.target);
		break;
	case LM_C_PLOCK:
		EQ(a, b, u.plock.req_id);
		cmp_res(&a->u.plock.res, &b->u.plock.res);
		EQ(a, b, u.plock.space);
		EQ(a, b, u.plock.op);
		EQ(a, b, u.plock.type);
		EQ(a, b, u.plock.owner);
		EQ(a, b, u.plock.start);
		EQ(a, b, u.plock.end);
		EQ(a, b, u.plock.pid);
		break;
	case LM_C_FENCE:
		EQ(a, b, u.fence.target);
		break;
	case LM_C_MOUNT:
		EQ(a, b, u.mount.op);
		cmp_mount(&a->u.mount.m, &b->u.mount.m);
		break;
	default:
		fail_msg("unexpected cluster type %u", a->type);
	}
}

static void cmp_lock(const struct lm_lock_entry *a,
		     const struct lm_lock_entry *b)
{
	cmp_res(&a->res, &b->res);
	EQ(a, b, space);
	EQ(a, b, type);
	EQ(a, b, waiting);
	EQ(a, b, node);
	EQ(a, b, owner);
	EQ(a, b, pid);
	EQ(a, b, start);
	EQ(a, b, end);
}

static void cmp_node(const struct lm_node_entry *a,
		     const struct lm_node_entry *b)
{
	EQ(a, b, id);
	assert_string_equal(a->name, b->name);
	EQ(a, b, state);
	EQ(a, b, member);
	EQ(a, b, draining);
	EQ(a, b, votes);
	EQ(a, b, n_owned);
	EQ(a, b, n_locks);
	EQ(a, b, heartbeat_age_ms);
	EQ(a, b, proto_min);
	EQ(a, b, proto_max);
	EQ(a, b, heartbeat_version);
	EQ(a, b, lease_timeout_ms);
}

static void cmp_owner(const struct lm_owner_entry *a,
		      const struct lm_owner_entry *b)
{
	cmp_res(&a->res, &b->res);
	EQ(a, b, owner);
	EQ(a, b, epoch);
	EQ(a, b, n_waiters);
	EQ(a, b, handoff_target);
	EQ(a, b, revoking);
	EQ(a, b, age_ms);
}

static void cmp_s_request(const struct lm_smsg *a, const struct lm_smsg *b)
{
	switch (a->type) {
	case LM_S_HELLO:
		EQ(a, b, u.hello.proto_min);
		EQ(a, b, u.hello.proto_max);
		EQ(a, b, u.hello.kind);
		EQMEM(a, b, u.hello.volume);
		EQ(a, b, u.hello.pid);
		assert_string_equal(a->u.hello.label, b->u.hello.label);
		assert_string_equal(a->u.hello.vol_label,
				    b->u.hello.vol_label);
		assert_string_equal(a->u.hello.source, b->u.hello.source);
		break;
	case LM_S_ACQUIRE:
		EQ(a, b, u.acquire.fileid);
		EQ(a, b, u.acquire.flags);
		break;
	case LM_S_RELEASE:
		EQ(a, b, u.release.fileid);
		EQ(a, b, u.release.epoch);
		break;
	case LM_S_PLOCK:
	case LM_S_GETLK:
		EQ(a, b, u.plock.fileid);
		EQ(a, b, u.plock.space);
		EQ(a, b, u.plock.op);
		EQ(a, b, u.plock.type);
		EQ(a, b, u.plock.owner);
		EQ(a, b, u.plock.start);
		EQ(a, b, u.plock.end);
		EQ(a, b, u.plock.pid);
		break;
	case LM_S_QUERY:
		EQ(a, b, u.query.what);
		EQ(a, b, u.query.has_res);
		cmp_res(&a->u.query.res, &b->u.query.res);
		break;
	case LM_S_ADMIN:
		EQ(a, b, u.admin.op);
		cmp_res(&a->u.admin.res, &b->u.admin.res);
		assert_string_equal(a->u.admin.node, b->u.admin.node);
		break;
	case LM_S_CANCEL:
		EQ(a, b, u.cancel.seq);
		break;
	}
}

static void cmp_s_status(const struct lm_s_r_status *a,
			 const struct lm_s_r_status *b)
{
	EQ(a, b, status);
	assert_string_equal(a->cluster_name, b->cluster_name);
	assert_string_equal(a->node_name, b->node_name);
	EQ(a, b, node_id);
	EQ(a, b, transport);
	EQ(a, b, quorate);
	EQ(a, b, ready);
	EQ(a, b, syncing);
	EQ(a, b, expected_votes);
	EQ(a, b, total_votes);
	EQ(a, b, n_members);
	assert_memory_equal(a->members, b->members,
			    a->n_members * sizeof(uint32_t));
	EQ(a, b, version);
	EQ(a, b, epoch);
	EQ(a, b, digest);
	EQ(a, b, n_resources);
	EQ(a, b, n_locks);
	EQ(a, b, lease_remaining_ms);
	EQ(a, b, lease_timeout_ms);
	EQ(a, b, n_clients);
	EQ(a, b, proto_version);
	EQ(a, b, proto_min);
	EQ(a, b, proto_max);
}

static void cmp_s_batch(const struct lm_smsg *a, const struct lm_smsg *b)
{
	EQ(a, b, u.r_nodes.status);
	EQ(a, b, u.r_nodes.more);
	EQ(a, b, u.r_nodes.n);
	for (uint32_t i = 0; i < a->u.r_nodes.n; i++) {
		if (a->type == LM_S_R_NODES)
			cmp_node(&a->u.r_nodes.e[i], &b->u.r_nodes.e[i]);
		else if (a->type == LM_S_R_OWNERS)
			cmp_owner(&a->u.r_owners.e[i], &b->u.r_owners.e[i]);
		else
			cmp_lock(&a->u.r_locks.e[i], &b->u.r_locks.e[i]);
	}
}

static void cmp_s_volumes(const struct lm_s_r_volumes *a,
			  const struct lm_s_r_volumes *b)
{
	EQ(a, b, status);
	EQ(a, b, more);
	EQ(a, b, n);
	for (uint32_t i = 0; i < a->n; i++) {
		EQ(a, b, e[i].node);
		cmp_mount(&a->e[i].m, &b->e[i].m);
	}
}

static void cmp_s_metrics(const struct lm_s_r_metrics *a,
			  const struct lm_s_r_metrics *b)
{
	EQ(a, b, status);
	EQ(a, b, uptime_ms);
	EQ(a, b, grants);
	EQ(a, b, handoffs);
	EQ(a, b, revokes);
	EQ(a, b, releases);
	EQ(a, b, lost);
	EQ(a, b, fences);
	EQ(a, b, acquires);
	EQ(a, b, acquire_errors);
	EQ(a, b, lease_remaining_ms);
	EQ(a, b, lease_timeout_ms);
	EQMEM(a, b, acquire_latency.bucket);
	EQ(a, b, acquire_latency.count);
	EQ(a, b, acquire_latency.sum_us);
}

static void cmp_s_reply(const struct lm_smsg *a, const struct lm_smsg *b)
{
	switch (a->type) {
	case LM_S_R_HELLO:
		EQ(a, b, u.r_hello.status);
		EQ(a, b, u.r_hello.version);
		EQ(a, b, u.r_hello.proto_min);
		EQ(a, b, u.r_hello.proto_max);
		EQ(a, b, u.r_hello.node_id);
		assert_string_equal(a->u.r_hello.node_name,
				    b->u.r_hello.node_name);
		assert_string_equal(a->u.r_hello.cluster_name,
				    b->u.r_hello.cluster_name);
		break;
	case LM_S_R_RESULT:
		EQ(a, b, u.r_result.status);
		EQ(a, b, u.r_result.epoch);
		break;
	case LM_S_R_GETLK:
		EQ(a, b, u.r_getlk.status);
		EQ(a, b, u.r_getlk.found);
		cmp_lock(&a->u.r_getlk.conflict, &b->u.r_getlk.conflict);
		break;
	case LM_S_R_STATUS:
		cmp_s_status(&a->u.r_status, &b->u.r_status);
		break;
	case LM_S_R_NODES:
	case LM_S_R_OWNERS:
	case LM_S_R_LOCKS:
		cmp_s_batch(a, b);
		break;
	case LM_S_R_VOLUMES:
		cmp_s_volumes(&a->u.r_volumes, &b->u.r_volumes);
		break;
	case LM_S_R_METRICS:
		cmp_s_metrics(&a->u.r_metrics, &b->u.r_metrics);
		break;
	case LM_S_R_LOG:
		EQ(a, b, u.r_log.status);
		EQ(a, b, u.r_log.more);
		EQ(a, b, u.r_log.n);
		assert_memory_equal(a->u.r_log.e, b->u.r_log.e, a->u.r_log.n);
		break;
	}
}

static void cmp_smsg(const struct lm_smsg *a, const struct lm_smsg *b)
{
	EQ(a, b, type);
	EQ(a, b, seq);
	cmp_s_request(a, b);
	cmp_s_reply(a, b);
	switch (a->type) {
	case LM_S_EV_LEASE:
		EQ(a, b, u.ev_lease.valid);
		EQ(a, b, u.ev_lease.deadline_ns);
		break;
	case LM_S_EV_GRANTED:
	case LM_S_EV_REVOKE:
	case LM_S_EV_OWNER:
	case LM_S_EV_LOST:
		EQ(a, b, u.ev_file.fileid);
		EQ(a, b, u.ev_file.epoch);
		EQ(a, b, u.ev_file.owner);
		break;
	}
}

/* ------------------------------------------------------------------------
 * Helpers over raw encodings.
 */
static uint32_t rd32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void set_len(uint8_t *b, size_t len)
{
	wr32(b + 8, (uint32_t)len);
}

/* Replace the byte at off, which must hold old (guards the offsets). */
static void patch8(uint8_t *b, size_t off, uint8_t old, uint8_t new)
{
	assert_int_equal(b[off], old);
	b[off] = new;
}

static void patch32(uint8_t *b, size_t off, uint32_t old, uint32_t new)
{
	assert_int_equal(rd32(b + off), old);
	wr32(b + off, new);
}

static int enc_c(uint16_t type, int v, uint8_t *out)
{
	struct lm_cmsg m;
	int len;

	sample_cmsg(type, v, &m);
	len = lm_cmsg_encode(&m, out, LM_MSG_MAX);
	assert_true(len >= LM_HDR_LEN && len <= LM_MSG_MAX);
	return len;
}

static int enc_s(uint16_t type, int v, uint8_t *out)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	int len;

	assert_non_null(m);
	sample_smsg(type, v, m);
	len = lm_smsg_encode(m, out, LM_MSG_MAX);
	assert_true(len >= LM_HDR_LEN && len <= LM_MSG_MAX);
	free(m);
	return len;
}

/* Decode in; if accepted, the re-encoding must be exactly in. */
static int check_canonical_c(const uint8_t *in, size_t len)
{
	struct lm_cmsg m;
	int rc = lm_cmsg_decode(in, len, &m);

	if (rc == 0) {
		assert_int_equal(lm_cmsg_encode(&m, buf2, sizeof(buf2)), len);
		assert_memory_equal(buf2, in, len);
	} else {
		assert_true(rc == -EBADMSG || rc == -EPROTO ||
			    rc == -EPROTONOSUPPORT);
	}
	return rc;
}

static int check_canonical_s(const uint8_t *in, size_t len, struct lm_smsg *m)
{
	int rc = lm_smsg_decode(in, len, m);

	if (rc == 0) {
		assert_int_equal(lm_smsg_encode(m, buf2, sizeof(buf2)), len);
		assert_memory_equal(buf2, in, len);
	} else {
		assert_true(rc == -EBADMSG || rc == -EPROTO ||
			    rc == -EPROTONOSUPPORT);
	}
	return rc;
}

/* ------------------------------------------------------------------------
 * Round trips, truncation, trailing bytes, corruption.
 */
static void test_cmsg_roundtrip(void **state)
{
	for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++) {
		for (int v = 0; v < NVARIANTS; v++) {
			struct lm_cmsg a, b;
			int len;

			sample_cmsg(cmsg_types[t], v, &a);
			len = lm_cmsg_encode(&a, buf, sizeof(buf));
			assert_true(len > 0);
			assert_int_equal(rd32(buf + 8), len);
			assert_int_equal(lm_cmsg_decode(buf, len, &b), 0);
			cmp_cmsg(&a, &b);
			if (a.type == LM_C_SYNC_DATA)
				assert_ptr_equal(b.u.sync_data.data, buf + 24);
		}
	}
}

static void test_smsg_roundtrip(void **state)
{
	struct lm_smsg *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));

	assert_non_null(a);
	assert_non_null(b);
	for (size_t t = 0; t < ARRAY_SIZE(smsg_types); t++) {
		for (int v = 0; v < NVARIANTS; v++) {
			int len;

			sample_smsg(smsg_types[t], v, a);
			len = lm_smsg_encode(a, buf, sizeof(buf));
			assert_true(len > 0);
			assert_int_equal(rd32(buf + 8), len);
			assert_int_equal(lm_smsg_decode(buf, len, b), 0);
			cmp_smsg(a, b);
		}
	}
	free(a);
	free(b);
}

/* Full batches and a full chunk fit in LM_MSG_MAX; only n entries go. */
static void test_sizes(void **state)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	int full, small;

	assert_non_null(m);
	assert_true(enc_c(LM_C_SYNC_DATA, 1, buf) ==
		    LM_HDR_LEN + 8 + LM_SYNC_CHUNK);
	for (uint16_t t = LM_S_R_NODES; t <= LM_S_R_LOCKS; t++) {
		full = enc_s(t, 1, buf);
		small = enc_s(t, 0, buf);
		/* the per-entry size times the entry count difference */
		assert_int_equal((full - 25) * 3, (small - 25) * LM_BATCH_MAX);
	}
	assert_int_equal(enc_s(LM_S_R_NODES, 1, buf),
			 25 + LM_BATCH_MAX * (4 + LM_NAME_MAX + 3 + 12 + 8 +
					      2 + 2 + 2 + 4 + 1));
	sample_smsg(LM_S_R_LOCKS, 0, m);
	m->u.r_locks.n = 0;
	assert_int_equal(lm_smsg_encode(m, buf, sizeof(buf)), 25);
	/* a full volumes batch: its own, smaller batch limit */
	assert_int_equal(enc_s(LM_S_R_VOLUMES, 1, buf),
			 25 + LM_VOL_BATCH_MAX * (4 + LM_VOLUME_LEN +
						  LM_NAME_MAX +
						  2 * LM_PATH_MAX));
	free(m);
}

static void test_truncation(void **state)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	struct lm_cmsg c;
	int len;

	assert_non_null(m);
	for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++) {
		for (int v = 0; v < NVARIANTS; v++) {
			len = enc_c(cmsg_types[t], v, buf);
			for (int l = 0; l < len; l++) {
				assert_int_not_equal(lm_cmsg_decode(buf, l, &c),
						     0);
				/* consistent length field: body must notice */
				memcpy(buf2, buf, len);
				if (l >= 12)
					set_len(buf2, l);
				assert_int_equal(lm_cmsg_decode(buf2, l, &c),
						 -EBADMSG);
			}
		}
	}
	for (size_t t = 0; t < ARRAY_SIZE(smsg_types); t++) {
		for (int v = 0; v < NVARIANTS; v++) {
			len = enc_s(smsg_types[t], v, buf);
			for (int l = 0; l < len; l++) {
				assert_int_not_equal(lm_smsg_decode(buf, l, m),
						     0);
				memcpy(buf2, buf, len);
				if (l >= 12)
					set_len(buf2, l);
				assert_int_equal(lm_smsg_decode(buf2, l, m),
						 -EBADMSG);
			}
		}
	}
	free(m);
}

static void test_trailing(void **state)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	struct lm_cmsg c;
	int len;

	assert_non_null(m);
	for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++) {
		len = enc_c(cmsg_types[t], 0, buf);
		buf[len] = 0;
		set_len(buf, len + 1);
		assert_int_equal(lm_cmsg_decode(buf, len + 1, &c), -EBADMSG);
		/* length field says more than there is */
		assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	}
	for (size_t t = 0; t < ARRAY_SIZE(smsg_types); t++) {
		len = enc_s(smsg_types[t], 0, buf);
		buf[len] = 0;
		set_len(buf, len + 1);
		assert_int_equal(lm_smsg_decode(buf, len + 1, m), -EBADMSG);
		assert_int_equal(lm_smsg_decode(buf, len, m), -EBADMSG);
	}
	free(m);
}

/*
 * Every value of every header byte, and a few flips of every body byte:
 * rejected, or accepted with an identical re-encoding.  Run under ASan.
 */
static void test_corruption(void **state)
{
	static const uint8_t flips[] = {0x01, 0x02, 0x80, 0xff};
	struct lm_smsg *m = malloc(sizeof(*m));
	uint8_t orig[LM_MSG_MAX];
	unsigned accepted = 0;
	int len;

	assert_non_null(m);
	for (size_t k = 0; k < ARRAY_SIZE(cmsg_types) + ARRAY_SIZE(smsg_types);
	     k++) {
		bool is_c = k < ARRAY_SIZE(cmsg_types);

		len = is_c ? enc_c(cmsg_types[k], 0, orig)
			   : enc_s(smsg_types[k - ARRAY_SIZE(cmsg_types)], 0,
				   orig);
		for (int i = 0; i < len; i++) {
			int nval = i < LM_HDR_LEN ? 256 : ARRAY_SIZE(flips);

			for (int x = 0; x < nval; x++) {
				memcpy(buf, orig, len);
				if (i < LM_HDR_LEN)
					buf[i] = (uint8_t)x;
				else
					buf[i] ^= flips[x];
				if (is_c ? !check_canonical_c(buf, len)
					 : !check_canonical_s(buf, len, m))
					accepted++;
			}
		}
	}
	/* at least the unmodified values and plain value changes pass */
	assert_true(accepted > 0);
	free(m);
}

/* ------------------------------------------------------------------------
 * Specific malformations.
 */
static void test_header_rejects(void **state)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	struct lm_cmsg c;
	int len;

	assert_non_null(m);
	len = enc_s(LM_S_ACQUIRE, 0, buf);
	/* a cluster message is not a socket message, and vice versa */
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EPROTO);
	patch32(buf, 0, LM_SMSG_MAGIC, LM_SMSG_MAGIC ^ 0x100);
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTO);
	len = enc_c(LM_C_FENCE, 0, buf);
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTO);

	len = enc_s(LM_S_ACQUIRE, 0, buf);
	buf[4] = LM_CLIENT_VERSION_MAX + 1;
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTONOSUPPORT);
	buf[4] = 1; /* before negotiation */
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTONOSUPPORT);
	buf[4] = 0;
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTONOSUPPORT);
	len = enc_c(LM_C_FENCE, 0, buf);
	buf[5] = 1;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EPROTONOSUPPORT);

	/* unknown types, right next to known ones */
	len = enc_s(LM_S_EV_LOST, 0, buf);
	buf[6] = LM_S_EV_LOST + 1;
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTO);
	buf[6] = 0;
	assert_int_equal(lm_smsg_decode(buf, len, m), -EPROTO);
	len = enc_c(LM_C_FENCE, 0, buf);
	buf[6] = 7;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EPROTO);
	buf[6] = LM_C_FENCE;
	buf[7] = 1;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EPROTO);

	/* cluster messages carry seq 0 */
	buf[7] = 0;
	patch32(buf, 12, 0, 1);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);

	/* rejected decodes leave a zeroed message */
	assert_int_equal(c.type, 0);
	assert_int_equal(lm_cmsg_decode(NULL, 0, &c), -EBADMSG);
	assert_int_equal(lm_smsg_decode(NULL, 0, m), -EBADMSG);
	free(m);
}

/* Cluster: counts, strings, enums, ranges at their wire offsets. */
static void test_cmsg_rejects(void **state)
{
	struct lm_cmsg c;
	int len;

	len = enc_c(LM_C_SYNC_HELLO, 0, buf);
	patch32(buf, 16, 3, LM_MAX_NODES + 1);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_SYNC_HELLO, 1, buf);
	patch32(buf, 16, LM_MAX_NODES, UINT32_MAX);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);

	/* name at 56..119 (3 members): no NUL, junk after the NUL */
	len = enc_c(LM_C_SYNC_HELLO, 0, buf);
	memset(buf + 56, 'x', LM_NAME_MAX);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_SYNC_HELLO, 0, buf);
	patch8(buf, 56 + LM_NAME_MAX - 1, 0, 'x');
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	/* range at 120/122: min 0, min > max; kept_out at 124 a boolean */
	len = enc_c(LM_C_SYNC_HELLO, 0, buf);
	patch8(buf, 120, 2, 0);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_SYNC_HELLO, 0, buf);
	patch8(buf, 120, 2, 4);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_SYNC_HELLO, 0, buf);
	patch8(buf, 124, 0, 2);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);

	len = enc_c(LM_C_SYNC_DATA, 1, buf);
	patch32(buf, 20, LM_SYNC_CHUNK, LM_SYNC_CHUNK + 1);
	buf[len] = 0;
	set_len(buf, len + 1);
	assert_int_equal(lm_cmsg_decode(buf, len + 1, &c), -EBADMSG);

	/* mount: op 16 (RESET..DEL), label 33, mount point 353 */
	len = enc_c(LM_C_MOUNT, 0, buf);
	patch8(buf, 16, LM_MOUNT_ADD, 0);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	buf[16] = LM_MOUNT_DEL + 1;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_MOUNT, 1, buf);
	patch8(buf, 33 + LM_NAME_MAX - 1, 0, 'x');
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_MOUNT, 1, buf);
	patch8(buf, 353 + LM_PATH_MAX - 1, 0, 'x');
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);

	/* plock: space 48, op 49, type 50, start 59, end 67 */
	len = enc_c(LM_C_PLOCK, 0, buf);
	patch8(buf, 48, LM_SPACE_POSIX, 2);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_PLOCK, 0, buf);
	patch8(buf, 49, LM_PL_SETW, 0);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	buf[49] = LM_PL_RELEASE_OWNER + 1;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_PLOCK, 0, buf);
	patch8(buf, 50, LM_LK_WRITE, 3);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c(LM_C_PLOCK, 0, buf);
	patch8(buf, 59, 100, 200);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	patch8(buf, 59, 200, 199);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), 0);
	assert_true(c.u.plock.start == c.u.plock.end);
}

static void expect_s_reject(uint16_t type, int v, size_t off, uint8_t old,
			    uint8_t new)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	int len;

	assert_non_null(m);
	len = enc_s(type, v, buf);
	patch8(buf, off, old, new);
	assert_int_equal(lm_smsg_decode(buf, len, m), -EBADMSG);
	free(m);
}

/* Socket: the same, for every checked field of every type. */
static void test_smsg_rejects(void **state)
{
	/* hello: range 16/20, kind 24, label 48, vol_label 304, source 368 */
	expect_s_reject(LM_S_HELLO, 0, 16, 2, 0); /* min 0 */
	expect_s_reject(LM_S_HELLO, 0, 16, 2, 3); /* min > max */
	expect_s_reject(LM_S_HELLO, 0, 24, LM_CLIENT_CSVFS, 0);
	expect_s_reject(LM_S_HELLO, 0, 24, LM_CLIENT_CSVFS, 3);
	expect_s_reject(LM_S_HELLO, 1, 48 + 255, 0, 'z'); /* label */
	expect_s_reject(LM_S_HELLO, 1, 304 + 63, 0, 'z'); /* vol_label */
	expect_s_reject(LM_S_HELLO, 1, 368 + 255, 0, 'z'); /* source */
	expect_s_reject(LM_S_HELLO, 0, 48 + 20, 0, 'z'); /* junk after NUL */
	/* plock: space 24, op 25, type 26, start 35, end 43 */
	expect_s_reject(LM_S_PLOCK, 0, 24, 0, 2);
	expect_s_reject(LM_S_PLOCK, 0, 25, LM_PL_SET, 0);
	expect_s_reject(LM_S_PLOCK, 0, 25, LM_PL_SET, 6);
	expect_s_reject(LM_S_PLOCK, 0, 26, LM_LK_READ, 3);
	expect_s_reject(LM_S_PLOCK, 0, 35, 10, 11);
	expect_s_reject(LM_S_GETLK, 0, 43, 10, 9); /* end < start */
	expect_s_reject(LM_S_GETLK, 0, 24, 0, 0xff);
	expect_s_reject(LM_S_QUERY, 0, 16, LM_QUERY_OWNERS, 0);
	expect_s_reject(LM_S_QUERY, 0, 16, LM_QUERY_OWNERS,
			LM_QUERY_LOG + 1);
	expect_s_reject(LM_S_QUERY, 0, 20, 1, 2);
	expect_s_reject(LM_S_ADMIN, 0, 16, LM_ADMIN_HANDOFF, 0);
	expect_s_reject(LM_S_ADMIN, 0, 16, LM_ADMIN_HANDOFF, 4);
	expect_s_reject(LM_S_ADMIN, 1, 44 + 63, 0, 'q');
	expect_s_reject(LM_S_R_HELLO, 1, 36 + 63, 0, 'q');
	expect_s_reject(LM_S_R_HELLO, 1, 100 + 63, 0, 'q');
	/* r_getlk: found 20, space 45, type 46, waiting 47 */
	expect_s_reject(LM_S_R_GETLK, 0, 20, 1, 2);
	expect_s_reject(LM_S_R_GETLK, 0, 45, 0, 2);
	expect_s_reject(LM_S_R_GETLK, 0, 46, 2, 3);
	expect_s_reject(LM_S_R_GETLK, 0, 47, 1, 2);
	/* r_status: names 20/84, quorate 153, ready 154, syncing 155 */
	expect_s_reject(LM_S_R_STATUS, 1, 20 + 63, 0, 'q');
	expect_s_reject(LM_S_R_STATUS, 1, 84 + 63, 0, 'q');
	expect_s_reject(LM_S_R_STATUS, 0, 153, 1, 2);
	expect_s_reject(LM_S_R_STATUS, 0, 154, 1, 2);
	expect_s_reject(LM_S_R_STATUS, 0, 155, 0, 2);
	expect_s_reject(LM_S_R_STATUS, 1, 164, LM_MAX_NODES, LM_MAX_NODES + 1);
	/* batches: more 20, n 21; first node entry: name 29, state 93 */
	expect_s_reject(LM_S_R_NODES, 0, 20, 1, 2);
	expect_s_reject(LM_S_R_NODES, 1, 21, LM_BATCH_MAX, LM_BATCH_MAX + 1);
	expect_s_reject(LM_S_R_NODES, 1, 24, 0, 1); /* n = 2^24 + 128 */
	expect_s_reject(LM_S_R_NODES, 1, 29 + 63, 0, 'q');
	expect_s_reject(LM_S_R_NODES, 0, 93, 0, LM_NODE_INCOMPATIBLE + 1);
	expect_s_reject(LM_S_R_NODES, 0, 94, 0, 2);
	expect_s_reject(LM_S_R_NODES, 0, 95, 1, 2);
	expect_s_reject(LM_S_R_OWNERS, 1, 21, LM_BATCH_MAX, 0xff);
	expect_s_reject(LM_S_R_OWNERS, 0, 25 + 24 + 20, 0, 2); /* revoking */
	expect_s_reject(LM_S_R_LOCKS, 0, 21, 3, LM_BATCH_MAX + 1);
	expect_s_reject(LM_S_R_LOCKS, 0, 25 + 24, 1, 2);     /* space */
	expect_s_reject(LM_S_R_LOCKS, 0, 25 + 24 + 1, 1, 3); /* type */
	expect_s_reject(LM_S_EV_LEASE, 0, 16, 1, 2);
}

/* ------------------------------------------------------------------------
 * Encoder input checks.
 */
static void test_cmsg_encode_rejects(void **state)
{
	struct lm_cmsg m;
	int len;

	assert_int_equal(lm_cmsg_encode(NULL, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_FENCE, 0, &m);
	assert_int_equal(lm_cmsg_encode(&m, NULL, 100), -EINVAL);
	m.type = 7;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.type = 0;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_SYNC_HELLO, 0, &m);
	m.u.hello.n_members = LM_MAX_NODES + 1;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_SYNC_HELLO, 0, &m);
	memset(m.u.hello.name, 'n', LM_NAME_MAX);
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_SYNC_DATA, 0, &m);
	m.u.sync_data.len = LM_SYNC_CHUNK + 1;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.sync_data.len = 1;
	m.u.sync_data.data = NULL;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	m.u.sync_data.len = 0; /* an empty chunk needs no data */
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), 24);
	sample_cmsg(LM_C_PLOCK, 0, &m);
	m.u.plock.start = m.u.plock.end + 1;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_PLOCK, 0, &m);
	m.u.plock.op = 0;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_PLOCK, 0, &m);
	m.u.plock.space = 2;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);
	sample_cmsg(LM_C_PLOCK, 0, &m);
	m.u.plock.type = 3;
	assert_int_equal(lm_cmsg_encode(&m, buf, sizeof(buf)), -EINVAL);

	/* every buffer shorter than the message is too small */
	for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++) {
		len = enc_c(cmsg_types[t], 0, buf);
		sample_cmsg(cmsg_types[t], 0, &m);
		for (int cap = 0; cap < len; cap++)
			assert_int_equal(lm_cmsg_encode(&m, buf2, cap),
					 -ENOSPC);
		assert_int_equal(lm_cmsg_encode(&m, buf2, len), len);
	}
}

static void expect_s_einval(struct lm_smsg *m)
{
	assert_int_equal(lm_smsg_encode(m, buf, sizeof(buf)), -EINVAL);
}

static void test_smsg_encode_rejects(void **state)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	int len;

	assert_non_null(m);
	assert_int_equal(lm_smsg_encode(NULL, buf, sizeof(buf)), -EINVAL);
	sample_smsg(LM_S_ACQUIRE, 0, m);
	m->type = 9;
	expect_s_einval(m);
	sample_smsg(LM_S_HELLO, 0, m);
	m->u.hello.kind = 0;
	expect_s_einval(m);
	sample_smsg(LM_S_HELLO, 0, m);
	memset(m->u.hello.label, 'l', LM_PATH_MAX);
	expect_s_einval(m);
	sample_smsg(LM_S_HELLO, 0, m);
	memset(m->u.hello.source, 's', LM_PATH_MAX);
	expect_s_einval(m);
	sample_smsg(LM_S_R_VOLUMES, 0, m);
	m->u.r_volumes.n = LM_VOL_BATCH_MAX + 1;
	expect_s_einval(m);
	sample_smsg(LM_S_R_VOLUMES, 0, m);
	memset(m->u.r_volumes.e[1].m.mountpoint, 'm', LM_PATH_MAX);
	expect_s_einval(m);
	sample_smsg(LM_S_PLOCK, 0, m);
	m->u.plock.op = LM_PL_RELEASE_OWNER + 1;
	expect_s_einval(m);
	sample_smsg(LM_S_GETLK, 0, m);
	m->u.plock.op = 0; /* ignored for GETLK */
	assert_true(lm_smsg_encode(m, buf, sizeof(buf)) > 0);
	m->u.plock.end = 0;
	expect_s_einval(m);
	sample_smsg(LM_S_QUERY, 0, m);
	m->u.query.has_res = 2;
	expect_s_einval(m);
	sample_smsg(LM_S_ADMIN, 0, m);
	m->u.admin.op = 0;
	expect_s_einval(m);
	sample_smsg(LM_S_R_STATUS, 0, m);
	m->u.r_status.n_members = LM_MAX_NODES + 1;
	expect_s_einval(m);
	sample_smsg(LM_S_R_NODES, 0, m);
	m->u.r_nodes.n = LM_BATCH_MAX + 1;
	expect_s_einval(m);
	sample_smsg(LM_S_R_NODES, 0, m);
	m->u.r_nodes.e[2].state = LM_NODE_INCOMPATIBLE + 1;
	expect_s_einval(m);
	sample_smsg(LM_S_R_OWNERS, 0, m);
	m->u.r_owners.e[1].revoking = 7;
	expect_s_einval(m);
	sample_smsg(LM_S_R_LOCKS, 0, m);
	m->u.r_locks.e[2].start = UINT64_MAX;
	expect_s_einval(m);
	sample_smsg(LM_S_R_LOCKS, 0, m);
	m->u.r_locks.e[3].start = UINT64_MAX; /* beyond n: not checked */
	assert_true(lm_smsg_encode(m, buf, sizeof(buf)) > 0);
	sample_smsg(LM_S_EV_LEASE, 0, m);
	m->u.ev_lease.valid = 2;
	expect_s_einval(m);

	for (size_t t = 0; t < ARRAY_SIZE(smsg_types); t++) {
		len = enc_s(smsg_types[t], 1, buf);
		sample_smsg(smsg_types[t], 1, m);
		for (int cap = 0; cap < len; cap++)
			assert_int_equal(lm_smsg_encode(m, buf2, cap), -ENOSPC);
		assert_int_equal(lm_smsg_encode(m, buf2, len), len);
	}
	free(m);
}

/* Strings are zero-padded on the wire whatever follows their NUL. */
static void test_string_padding(void **state)
{
	struct lm_smsg *m = malloc(sizeof(*m)), *d = malloc(sizeof(*d));
	int len;

	assert_non_null(m);
	assert_non_null(d);
	sample_smsg(LM_S_ADMIN, 0, m);
	memset(m->u.admin.node, 'j', LM_NAME_MAX);
	strcpy(m->u.admin.node, "n2");
	len = lm_smsg_encode(m, buf, sizeof(buf));
	assert_int_equal(len, 108);
	for (int i = 44 + 2; i < 108; i++)
		assert_int_equal(buf[i], 0);
	assert_int_equal(lm_smsg_decode(buf, len, d), 0);
	assert_string_equal(d->u.admin.node, "n2");
	free(m);
	free(d);
}

/* ------------------------------------------------------------------------
 * Texts and checksum.
 */
static void test_strerror(void **state)
{
	const char *seen[LM_ERR_LOST - LM_ERR_BASE + 1] = {0};

	for (int e = LM_ERR_NOQUORUM; e <= LM_ERR_LOST; e++) {
		const char *s = lm_strerror(e);

		assert_non_null(s);
		assert_null(strstr(s, "unknown"));
		assert_ptr_equal(lm_strerror(-e), s);
		for (int k = LM_ERR_NOQUORUM; k < e; k++)
			assert_string_not_equal(seen[k - LM_ERR_BASE], s);
		seen[e - LM_ERR_BASE] = s;
	}
	assert_non_null(strstr(lm_strerror(LM_ERR_NOQUORUM), "quorate"));
	assert_string_equal(lm_strerror(0), "success");
	assert_non_null(strstr(lm_strerror(EAGAIN), "temporarily"));
	assert_non_null(strstr(lm_strerror(-EPERM), "not permitted"));
	assert_non_null(strstr(lm_strerror(EINVAL), "Invalid"));
	assert_non_null(strstr(lm_strerror(EPROTO), "rotocol"));
	assert_non_null(strstr(lm_strerror(ETIMEDOUT), "timed out"));
	assert_string_equal(lm_strerror(LM_ERR_BASE + 50),
			    "unknown lock manager error");
	assert_string_equal(lm_strerror(LM_ERR_BASE), "unknown error");
	assert_string_equal(lm_strerror(LM_ERR_MAX + 1), "unknown error");
	assert_string_equal(lm_strerror(999), "unknown error");
	assert_string_equal(lm_strerror(INT_MAX), "unknown error");
	assert_string_equal(lm_strerror(INT_MIN), "unknown error");
}

static void test_names(void **state)
{
	for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++)
		assert_string_not_equal(lm_cmsg_type_name(cmsg_types[t]),
					"unknown");
	for (size_t t = 0; t < ARRAY_SIZE(smsg_types); t++)
		assert_string_not_equal(lm_smsg_type_name(smsg_types[t]),
					"unknown");
	assert_string_equal(lm_cmsg_type_name(LM_C_PLOCK), "plock");
	assert_string_equal(lm_smsg_type_name(LM_S_R_NODES), "r_nodes");
	assert_string_equal(lm_cmsg_type_name(0), "unknown");
	assert_string_equal(lm_cmsg_type_name(7), "unknown");
	assert_string_equal(lm_cmsg_type_name(UINT32_MAX), "unknown");
	assert_string_equal(lm_smsg_type_name(9), "unknown");
	assert_string_equal(lm_smsg_type_name(133), "unknown");
	assert_string_equal(lm_node_state_name(LM_NODE_DOWN), "down");
	assert_string_equal(lm_node_state_name(LM_NODE_UP), "up");
	assert_string_equal(lm_node_state_name(LM_NODE_FENCING), "fencing");
	assert_string_equal(lm_node_state_name(LM_NODE_INCOMPATIBLE),
			    "incompatible");
	assert_string_equal(lm_node_state_name(4), "unknown");
}


/* ------------------------------------------------------------------------
 * Versions: every version of the build's range round-trips, the layout
 * follows the version, the frozen messages travel at LM_PROTO_FROZEN.
 */
static int enc_c_at(uint16_t type, unsigned version, uint8_t *out)
{
	struct lm_cmsg m;

	sample_cmsg(type, 0, &m);
	m.version = (uint16_t)version;
	return lm_cmsg_encode(&m, out, LM_MSG_MAX);
}

static void test_versions(void **state)
{
	struct lm_cmsg c;
	int len;

	for (unsigned v = LM_PROTO_VERSION_MIN; v <= LM_PROTO_VERSION_MAX;
	     v++) {
		for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++) {
			struct lm_cmsg a;

			len = enc_c_at(cmsg_types[t], v, buf);
			assert_true(len > 0);
			assert_int_equal(lm_cmsg_decode(buf, len, &c), 0);
			sample_cmsg(cmsg_types[t], 0, &a);
			cmp_cmsg(&a, &c);
			assert_int_equal(c.version,
					 lm_cmsg_frozen(cmsg_types[t]) ?
						 LM_PROTO_FROZEN : v);
			assert_int_equal(lm_msg_version(buf, len), c.version);
		}
		/* the heartbeat grew a field at version 3 */
		len = enc_c_at(LM_C_HEARTBEAT, v, buf);
		assert_int_equal(len, LM_HDR_LEN + 8 + (v >= 3 ? 4 : 0));
		/* version 0 means the top of the range */
		assert_int_equal(enc_c_at(LM_C_FENCE, 0, buf2), LM_HDR_LEN + 4);
		assert_int_equal(lm_msg_version(buf2, LM_HDR_LEN + 4),
				 LM_PROTO_VERSION_MAX);
	}
	/* outside the range: the encoder refuses, the decoder too */
	assert_int_equal(enc_c_at(LM_C_FENCE, LM_PROTO_VERSION_MAX + 1, buf),
			 -EINVAL);
	assert_int_equal(enc_c_at(LM_C_FENCE, LM_PROTO_VERSION_MIN - 1, buf),
			 -EINVAL);
	assert_int_equal(enc_c_at(LM_C_HEARTBEAT, 1, buf), -EINVAL);
	len = enc_c_at(LM_C_HEARTBEAT, LM_PROTO_VERSION_MAX, buf);
	buf[4] = LM_PROTO_VERSION_MAX + 1;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EPROTONOSUPPORT);
	/* frozen: whatever version is asked, and only that one is read */
	len = enc_c_at(LM_C_SYNC_HELLO, LM_PROTO_VERSION_MAX + 5, buf);
	assert_true(len > 0);
	assert_int_equal(lm_msg_version(buf, len), LM_PROTO_FROZEN);
	buf[4] = LM_PROTO_FROZEN + 1;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EPROTONOSUPPORT);
	assert_int_equal(lm_msg_version(buf, 3), 0);
}

#if LM_PROTO_VERSION_MAX >= 3
/* Built with the next version: a version 3 heartbeat read as version 2
 * is four bytes too long, and the reverse too short. */
static void test_heartbeat_v3(void **state)
{
	struct lm_cmsg c;
	int len = enc_c_at(LM_C_HEARTBEAT, 3, buf);

	assert_int_equal(lm_cmsg_decode(buf, len, &c), 0);
	assert_int_equal(c.u.heartbeat.lease_timeout_ms, 5000);
	buf[4] = 2;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
	len = enc_c_at(LM_C_HEARTBEAT, 2, buf);
	assert_int_equal(lm_cmsg_decode(buf, len, &c), 0);
	assert_int_equal(c.u.heartbeat.lease_timeout_ms, 0);
	buf[4] = 3;
	assert_int_equal(lm_cmsg_decode(buf, len, &c), -EBADMSG);
}
#endif

static void test_choose(void **state)
{
	assert_int_equal(lm_proto_choose(2, 2, 2, 2), 2);
	assert_int_equal(lm_proto_choose(1, 2, 2, 3), 2);
	assert_int_equal(lm_proto_choose(2, 5, 3, 4), 4);
	assert_int_equal(lm_proto_choose(3, 3, 1, 2), 0); /* too new */
	assert_int_equal(lm_proto_choose(1, 2, 3, 3), 0); /* too old */
	assert_int_equal(lm_proto_choose(0, 0, 0, 2), 0); /* no version 0 */
}

#define PEER(lo, hi, vt, l) { .min = lo, .max = hi, .votes = vt, .latest = l }

/* negotiate n peers; expected version and admitted set as a bit mask */
static void expect_negotiate(const struct lm_proto_peer *p, size_t n,
			     unsigned want, unsigned want_mask)
{
	bool admitted[LM_MAX_NODES];
	unsigned mask = 0;

	assert_int_equal(lm_proto_negotiate(p, n, admitted), want);
	for (size_t i = 0; i < n; i++)
		if (admitted[i])
			mask |= 1u << i;
	assert_int_equal(mask, want_mask);
}

static void test_negotiate(void **state)
{
	/* all overlap: the lowest max, everyone in */
	const struct lm_proto_peer same[] = {
		PEER(2, 3, 1, true), PEER(2, 2, 1, true), PEER(2, 2, 1, true) };
	const struct lm_proto_peer up[] = {
		PEER(2, 3, 1, true), PEER(2, 3, 1, true), PEER(2, 3, 1, true) };
	const struct lm_proto_peer wide[] = {
		PEER(1, 9, 1, true), PEER(3, 7, 1, true), PEER(2, 5, 1, false) };
	/* a newcomer too old for the running lineage: it stays out */
	const struct lm_proto_peer old[] = {
		PEER(3, 3, 1, true), PEER(2, 2, 1, false), PEER(2, 3, 1, true) };
	/* a newcomer too new */
	const struct lm_proto_peer new[] = {
		PEER(2, 2, 1, true), PEER(3, 3, 1, false), PEER(2, 3, 1, true) };
	/* no lineage yet (fresh start): the votes decide */
	const struct lm_proto_peer fresh[] = {
		PEER(3, 3, 1, true), PEER(2, 2, 1, true), PEER(2, 2, 1, true) };
	/* the lineage outweighs more votes of newcomers */
	const struct lm_proto_peer lineage[] = {
		PEER(3, 3, 1, true), PEER(2, 3, 1, true), PEER(2, 3, 1, true),
		PEER(2, 2, 1, false), PEER(2, 2, 1, false) };
	/* a node without votes is not dropped for a higher version */
	const struct lm_proto_peer novote[] = {
		PEER(2, 3, 1, true), PEER(2, 2, 0, true) };
	/* equal on everything: the higher version */
	const struct lm_proto_peer tie[] = {
		PEER(2, 3, 1, true), PEER(3, 3, 1, false), PEER(2, 2, 1, false) };

	expect_negotiate(same, 3, 2, 07);
	expect_negotiate(up, 3, 3, 07);
	expect_negotiate(wide, 3, 5, 07);
	expect_negotiate(old, 3, 3, 05);
	expect_negotiate(new, 3, 2, 05);
	expect_negotiate(fresh, 3, 2, 06);
	expect_negotiate(lineage, 5, 3, 007);
	expect_negotiate(novote, 2, 2, 03);
	expect_negotiate(tie, 3, 3, 03);
	expect_negotiate(same, 1, 3, 01);
	expect_negotiate(same, 0, 0, 0);
}

static void test_checksum(void **state)
{
	assert_true(lm_checksum64(LM_CHECKSUM_SEED, "a", 1) ==
		    0xaf63dc4c8601ec8cull);
	assert_true(lm_checksum64(LM_CHECKSUM_SEED, "", 0) == LM_CHECKSUM_SEED);
	assert_true(lm_checksum64(LM_CHECKSUM_SEED, "foobar", 6) ==
		    0x85944171f73967e8ull);
	/* chaining equals one pass */
	assert_true(lm_checksum64(lm_checksum64(LM_CHECKSUM_SEED, "foo", 3),
				  "bar", 3) == 0x85944171f73967e8ull);
}

/*
 * With LM_PROTO_CORPUS=DIR, write every sample encoding as a seed for the
 * fuzzers to DIR/fuzz_cmsg and DIR/fuzz_smsg (which must exist).
 */
static int write_seed(const char *dir, const char *target, const char *name,
		      int v, const uint8_t *data, int len)
{
	char path[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s/%s-%d", dir, target, name, v);
	f = fopen(path, "wb");
	if (!f) {
		perror(path);
		return -1;
	}
	n = fwrite(data, 1, len, f);
	if (fclose(f) || n != (size_t)len) {
		perror(path);
		return -1;
	}
	return 0;
}

static int write_corpus(const char *dir)
{
	struct lm_smsg *m = malloc(sizeof(*m));
	struct lm_cmsg c;
	const char *name;
	int rc = 0, len;

	if (!m)
		return 1;
	for (int v = 0; v < NVARIANTS; v++) {
		for (size_t t = 0; t < ARRAY_SIZE(cmsg_types); t++) {
			sample_cmsg(cmsg_types[t], v, &c);
			len = lm_cmsg_encode(&c, buf, sizeof(buf));
			name = lm_cmsg_type_name(c.type);
			if (len < 0 ||
			    write_seed(dir, "fuzz_cmsg", name, v, buf, len))
				rc = 1;
		}
		for (size_t t = 0; t < ARRAY_SIZE(smsg_types); t++) {
			sample_smsg(smsg_types[t], v, m);
			len = lm_smsg_encode(m, buf, sizeof(buf));
			name = lm_smsg_type_name(m->type);
			if (len < 0 ||
			    write_seed(dir, "fuzz_smsg", name, v, buf, len))
				rc = 1;
		}
	}
	free(m);
	return rc;
}

int main(void)
{
	const char *corpus = getenv("LM_PROTO_CORPUS");

	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cmsg_roundtrip),
	    cmocka_unit_test(test_smsg_roundtrip),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_trailing),
	    cmocka_unit_test(test_corruption),
	    cmocka_unit_test(test_header_rejects),
	    cmocka_unit_test(test_cmsg_rejects),
	    cmocka_unit_test(test_smsg_rejects),
	    cmocka_unit_test(test_cmsg_encode_rejects),
	    cmocka_unit_test(test_smsg_encode_rejects),
	    cmocka_unit_test(test_string_padding),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_checksum),
	    cmocka_unit_test(test_versions),
	    cmocka_unit_test(test_choose),
	    cmocka_unit_test(test_negotiate),
#if LM_PROTO_VERSION_MAX >= 3
	    cmocka_unit_test(test_heartbeat_v3),
#endif
	};

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 131 + 7);
	if (corpus)
		return write_corpus(corpus);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
