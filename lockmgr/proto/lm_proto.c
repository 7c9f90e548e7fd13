// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lm_proto.c - encoders and bounds-checked decoders of the lockd wire
 * formats (lm_proto.h).  The only place that converts byte order.
 *
 * Each body is described once, by a walker function per struct that works
 * in both directions (as XDR routines do): the cursor says whether it
 * writes fields into a buffer or reads them out of one.  Encoder and
 * decoder therefore cannot disagree on the layout.  The value checks
 * (enums, booleans, counts, ranges, strings) are one function per family,
 * run before encoding (-EINVAL) and after decoding (-EBADMSG), so both
 * accept exactly the same set of messages.  The format is canonical:
 * strings are zero-padded and decoders insist on it, cluster messages
 * carry seq 0, so encode(decode(x)) == x for every accepted x (the
 * fuzzers check this).
 *
 * No I/O, no allocation, no clock: this file is linked into liblockmgr,
 * the daemon, the simulator and the fuzzers.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "lm_cur.h"
#include "lm_proto.h"

uint64_t lm_checksum64(uint64_t seed, const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* ------------------------------------------------------------------------
 * Wire sizes of the largest messages, checked against LM_MSG_MAX at
 * compile time (and against real encodings by the unit test).
 */
#define LM_RES_WIRE	    (LM_VOLUME_LEN + 8)
#define LM_NODE_ENTRY_WIRE  (4 + LM_NAME_MAX + 1 + 1 + 1 + 4 + 4 + 4 + 8 + \
			     2 + 2 + 2 + 4 + 1)
#define LM_OWNER_ENTRY_WIRE (LM_RES_WIRE + 4 + 8 + 4 + 4 + 1 + 8)
#define LM_LOCK_ENTRY_WIRE  (LM_RES_WIRE + 1 + 1 + 1 + 4 + 8 + 4 + 8 + 8)
#define LM_BATCH_HDR_WIRE   (LM_HDR_LEN + 4 + 1 + 4)
#define LM_MOUNT_WIRE	    (LM_VOLUME_LEN + LM_NAME_MAX + 2 * LM_PATH_MAX)
#define LM_VOLUME_ENTRY_WIRE (4 + LM_MOUNT_WIRE)

_Static_assert(LM_BATCH_HDR_WIRE + LM_BATCH_MAX * LM_NODE_ENTRY_WIRE <=
		   LM_MSG_MAX,
	       "a full nodes batch exceeds LM_MSG_MAX");
_Static_assert(LM_BATCH_HDR_WIRE + LM_BATCH_MAX * LM_OWNER_ENTRY_WIRE <=
		   LM_MSG_MAX,
	       "a full owners batch exceeds LM_MSG_MAX");
_Static_assert(LM_BATCH_HDR_WIRE + LM_BATCH_MAX * LM_LOCK_ENTRY_WIRE <=
		   LM_MSG_MAX,
	       "a full locks batch exceeds LM_MSG_MAX");
_Static_assert(LM_BATCH_HDR_WIRE + LM_VOL_BATCH_MAX * LM_VOLUME_ENTRY_WIRE <=
		   LM_MSG_MAX,
	       "a full volumes batch exceeds LM_MSG_MAX");
_Static_assert(LM_BATCH_HDR_WIRE + LM_LOG_BATCH_MAX <= LM_MSG_MAX,
	       "a full log batch exceeds LM_MSG_MAX");
_Static_assert(LM_HDR_LEN + 4 + 4 + LM_SYNC_CHUNK <= LM_MSG_MAX,
	       "a full sync_data chunk exceeds LM_MSG_MAX");

/* ------------------------------------------------------------------------
 * Byte order and the cursor.
 */
static void put_le16(uint8_t *p, uint16_t v)
{
	lm_put_le(p, v, 2);
}
static void put_le32(uint8_t *p, uint32_t v)
{
	lm_put_le(p, v, 4);
}
static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)lm_get_le(p, 2);
}
static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)lm_get_le(p, 4);
}

/*
 * A string in a fixed array of size bytes: its characters, then zeros.
 * The decoder requires a NUL inside the array and only zeros after it;
 * the encoder relies on the value check having found the NUL.
 */
static void x_str(struct lm_cur *c, char *s, size_t size)
{
	const uint8_t *p;
	size_t at, n;

	if (!cur_take(c, size, &at))
		return;
	if (cur_enc(c)) {
		n = strnlen(s, size);
		memcpy(c->out + at, s, n);
		memset(c->out + at + n, 0, size - n);
		return;
	}
	p = c->in + at;
	n = strnlen((const char *)p, size);
	for (size_t i = n; i < size; i++) {
		if (p[i]) {
			c->err = -EBADMSG;
			return;
		}
	}
	memcpy(s, p, size);
}

/* A list count; the decoder refuses counts over max before any entry. */
static void x_count(struct lm_cur *c, uint32_t *n, uint32_t max)
{
	x_u32(c, n);
	if (!cur_enc(c) && !c->err && *n > max) {
		*n = 0;
		c->err = -EBADMSG;
	}
}

/* len bytes at *data (encoding) or a pointer into the input (decoding). */
static void x_blob(struct lm_cur *c, const uint8_t **data, size_t len)
{
	size_t at;

	if (!cur_take(c, len, &at))
		return;
	if (cur_enc(c)) {
		if (len)
			memcpy(c->out + at, *data, len);
	} else {
		*data = c->in + at;
	}
}

static void x_res(struct lm_cur *c, struct lm_res *r)
{
	x_raw(c, r->volume, LM_VOLUME_LEN);
	x_u64(c, &r->fileid);
}

static void x_mount(struct lm_cur *c, struct lm_mount *m)
{
	x_raw(c, m->volume, LM_VOLUME_LEN);
	x_str(c, m->label, sizeof(m->label));
	x_str(c, m->source, sizeof(m->source));
	x_str(c, m->mountpoint, sizeof(m->mountpoint));
}

static bool mount_ok(const struct lm_mount *m)
{
	return memchr(m->label, '\0', sizeof(m->label)) &&
	       memchr(m->source, '\0', sizeof(m->source)) &&
	       memchr(m->mountpoint, '\0', sizeof(m->mountpoint));
}

/* ------------------------------------------------------------------------
 * Acquire latency histogram: 100us .. 10s, then +Inf.
 */
static const uint64_t hist_bounds_us[LM_HIST_BUCKETS] = {
	100,	 250,	  500,	    1000,    2500,    5000,
	10000,	 25000,	  50000,    100000,  250000,  500000,
	1000000, 2500000, 10000000, UINT64_MAX,
};

uint64_t lm_hist_bound_us(unsigned i)
{
	return i < LM_HIST_BUCKETS ? hist_bounds_us[i] : UINT64_MAX;
}

void lm_hist_observe(struct lm_hist *h, uint64_t us)
{
	unsigned i = 0;

	while (i < LM_HIST_BUCKETS - 1 && us > hist_bounds_us[i])
		i++;
	h->bucket[i]++;
	h->count++;
	h->sum_us += us;
}

/* ------------------------------------------------------------------------
 * Header.
 */
static int hdr_encode(uint8_t *buf, size_t cap, uint32_t magic, uint16_t type,
		      uint32_t seq, unsigned version)
{
	if (cap < LM_HDR_LEN)
		return -ENOSPC;
	put_le32(buf, magic);
	put_le16(buf + 4, (uint16_t)version);
	put_le16(buf + 6, type);
	put_le32(buf + 8, 0); /* length: patched once the body is written */
	put_le32(buf + 12, seq);
	return 0;
}

/* Finish an encoding: patch the length, or return the cursor's error. */
static int hdr_finish(struct lm_cur *c)
{
	if (c->err)
		return c->err;
	if (c->off > LM_MSG_MAX)
		return -EINVAL; /* cannot happen: see the static asserts */
	put_le32(c->out + 8, (uint32_t)c->off);
	return (int)c->off;
}

unsigned lm_msg_version(const uint8_t *buf, size_t len)
{
	return len < LM_HDR_LEN ? 0 : get_le16(buf + 4);
}

/*
 * The version a message of this family and type may carry: the frozen
 * one for the negotiating messages, else this build's range.  An encoder
 * asked for version 0 uses the top of the range.
 */
static bool version_ok(uint32_t magic, bool frozen, unsigned v)
{
	if (frozen)
		return v == LM_PROTO_FROZEN;
	if (magic == LM_CMSG_MAGIC)
		return v >= LM_PROTO_VERSION_MIN && v <= LM_PROTO_VERSION_MAX;
	return v >= LM_CLIENT_VERSION_MIN && v <= LM_CLIENT_VERSION_MAX;
}

static unsigned version_to_encode(uint32_t magic, bool frozen, unsigned v)
{
	if (frozen)
		return LM_PROTO_FROZEN;
	if (v)
		return v;
	return magic == LM_CMSG_MAGIC ? LM_PROTO_VERSION_MAX :
					LM_CLIENT_VERSION_MAX;
}

static int hdr_decode(const uint8_t *buf, size_t len, uint32_t magic,
		      bool (*frozen)(unsigned), uint16_t *type,
		      uint16_t *version, uint32_t *seq)
{
	if (len < LM_HDR_LEN)
		return -EBADMSG;
	if (get_le32(buf) != magic)
		return -EPROTO;
	*type = get_le16(buf + 6);
	*version = get_le16(buf + 4);
	if (!version_ok(magic, frozen(*type), *version))
		return -EPROTONOSUPPORT;
	if (get_le32(buf + 8) != len)
		return -EBADMSG;
	*seq = get_le32(buf + 12);
	return 0;
}

/* ------------------------------------------------------------------------
 * Names; a type is known if it has one.
 */
static const char *const cmsg_names[] = {
    [LM_C_SYNC_HELLO] = "sync_hello", [LM_C_SYNC_DATA] = "sync_data",
    [LM_C_SYNC_DONE] = "sync_done",   [LM_C_NODE_INFO] = "node_info",
    [LM_C_HEARTBEAT] = "heartbeat",   [LM_C_ACQUIRE] = "acquire",
    [LM_C_RELEASE] = "release",	      [LM_C_HANDOFF] = "handoff",
    [LM_C_DRAIN] = "drain",	      [LM_C_RESUME] = "resume",
    [LM_C_PLOCK] = "plock",	      [LM_C_FENCE] = "fence",
    [LM_C_MOUNT] = "mount",	      [LM_C_QUORUM] = "quorum",
};

static const char *const smsg_names[] = {
    [LM_S_HELLO] = "hello",	      [LM_S_ACQUIRE] = "acquire",
    [LM_S_RELEASE] = "release",	      [LM_S_PLOCK] = "plock",
    [LM_S_GETLK] = "getlk",	      [LM_S_QUERY] = "query",
    [LM_S_ADMIN] = "admin",	      [LM_S_CANCEL] = "cancel",
    [LM_S_R_HELLO] = "r_hello",	      [LM_S_R_RESULT] = "r_result",
    [LM_S_R_GETLK] = "r_getlk",	      [LM_S_R_STATUS] = "r_status",
    [LM_S_R_NODES] = "r_nodes",	      [LM_S_R_OWNERS] = "r_owners",
    [LM_S_R_LOCKS] = "r_locks",	      [LM_S_R_VOLUMES] = "r_volumes",
    [LM_S_R_METRICS] = "r_metrics",   [LM_S_R_LOG] = "r_log",
    [LM_S_EV_LEASE] = "ev_lease",
    [LM_S_EV_GRANTED] = "ev_granted", [LM_S_EV_REVOKE] = "ev_revoke",
    [LM_S_EV_OWNER] = "ev_owner",     [LM_S_EV_LOST] = "ev_lost",
};

static const char *const node_state_names[] = {
    [LM_NODE_DOWN] = "down",
    [LM_NODE_UP] = "up",
    [LM_NODE_FENCING] = "fencing",
    [LM_NODE_INCOMPATIBLE] = "incompatible",
};

#define LM_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t n, unsigned i)
{
	return i < n && names[i] ? names[i] : "unknown";
}

static bool cmsg_type_known(unsigned type)
{
	return type < LM_ARRAY_SIZE(cmsg_names) && cmsg_names[type];
}

static bool smsg_type_known(unsigned type)
{
	return type < LM_ARRAY_SIZE(smsg_names) && smsg_names[type];
}

const char *lm_cmsg_type_name(unsigned type)
{
	return name_of(cmsg_names, LM_ARRAY_SIZE(cmsg_names), type);
}

const char *lm_smsg_type_name(unsigned type)
{
	return name_of(smsg_names, LM_ARRAY_SIZE(smsg_names), type);
}

const char *lm_node_state_name(unsigned state)
{
	return name_of(node_state_names, LM_ARRAY_SIZE(node_state_names),
		       state);
}

/* ------------------------------------------------------------------------
 * Value checks shared by both families.
 */
static bool str_ok(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

static bool bool_ok(uint8_t b)
{
	return b <= 1;
}

static bool space_ok(uint8_t space)
{
	return space <= LM_SPACE_FLOCK;
}

static bool lktype_ok(uint8_t type)
{
	return type <= LM_LK_WRITE;
}

static bool plop_ok(uint8_t op)
{
	return op >= LM_PL_SET && op <= LM_PL_RELEASE_OWNER;
}

/* ------------------------------------------------------------------------
 * Cluster messages.
 */
static void x_c_hello(struct lm_cur *c, struct lm_c_sync_hello *h)
{
	x_count(c, &h->n_members, LM_MAX_NODES);
	for (uint32_t i = 0; i < h->n_members && !c->err; i++)
		x_u32(c, &h->members[i]);
	x_u64(c, &h->version);
	x_u64(c, &h->epoch);
	x_u32(c, &h->votes);
	x_u32(c, &h->expected_votes);
	x_str(c, h->name, sizeof(h->name));
	x_u16(c, &h->proto_min);
	x_u16(c, &h->proto_max);
	x_u8(c, &h->kept_out);
}

static void x_c_sync_data(struct lm_cur *c, struct lm_c_sync_data *d)
{
	x_u32(c, &d->index);
	x_count(c, &d->len, LM_SYNC_CHUNK);
	x_blob(c, &d->data, d->len);
}

static void x_c_plock(struct lm_cur *c, struct lm_c_plock *p)
{
	x_u64(c, &p->req_id);
	x_res(c, &p->res);
	x_u8(c, &p->space);
	x_u8(c, &p->op);
	x_u8(c, &p->type);
	x_u64(c, &p->owner);
	x_u64(c, &p->start);
	x_u64(c, &p->end);
	x_u32(c, &p->pid);
}

static void x_quorum(struct lm_cur *c, struct lm_quorum *q)
{
	x_u32(c, &q->ring.nodeid);
	x_u64(c, &q->ring.seq);
	x_u8(c, &q->quorate);
	x_u32(c, &q->node_votes);
	x_u32(c, &q->expected_votes);
	x_u32(c, &q->total_votes);
	x_u32(c, &q->quorum);
	x_u32(c, &q->qdevice_votes);
	x_u32(c, &q->flags);
	x_str(c, q->qdevice_name, sizeof(q->qdevice_name));
}

/* Walk the body of m; false for an unknown type. */
static bool x_cmsg_body(struct lm_cur *c, struct lm_cmsg *m)
{
	switch (m->type) {
	case LM_C_SYNC_HELLO:
		x_c_hello(c, &m->u.hello);
		break;
	case LM_C_SYNC_DATA:
		x_c_sync_data(c, &m->u.sync_data);
		break;
	case LM_C_SYNC_DONE:
		x_u32(c, &m->u.sync_done.chunks);
		x_u64(c, &m->u.sync_done.total_len);
		x_u64(c, &m->u.sync_done.checksum);
		break;
	case LM_C_NODE_INFO:
		x_u32(c, &m->u.node_info.votes);
		x_u32(c, &m->u.node_info.expected_votes);
		break;
	case LM_C_HEARTBEAT:
		x_u64(c, &m->u.heartbeat.seq);
		if (c->version >= 3)
			x_u32(c, &m->u.heartbeat.lease_timeout_ms);
		break;
	case LM_C_QUORUM:
		x_quorum(c, &m->u.quorum);
		break;
	case LM_C_ACQUIRE:
		x_u64(c, &m->u.acquire.req_id);
		x_res(c, &m->u.acquire.res);
		break;
	case LM_C_RELEASE:
		x_u64(c, &m->u.release.req_id);
		x_res(c, &m->u.release.res);
		x_u64(c, &m->u.release.epoch);
		break;
	case LM_C_HANDOFF:
		x_u64(c, &m->u.handoff.req_id);
		x_res(c, &m->u.handoff.res);
		x_u32(c, &m->u.handoff.target);
		break;
	case LM_C_DRAIN:
	case LM_C_RESUME:
		x_u64(c, &m->u.drain.req_id);
		x_u32(c, &m->u.drain.target);
		break;
	case LM_C_PLOCK:
		x_c_plock(c, &m->u.plock);
		break;
	case LM_C_FENCE:
		x_u32(c, &m->u.fence.target);
		break;
	case LM_C_MOUNT:
		x_u8(c, &m->u.mount.op);
		x_mount(c, &m->u.mount.m);
		break;
	default:
		return false;
	}
	return true;
}

static bool quorum_ok(const struct lm_quorum *q)
{
	return q->quorate <= 1 && !(q->flags & ~(uint32_t)LM_QF_ALL) &&
	       str_ok(q->qdevice_name, sizeof(q->qdevice_name));
}

/* Field values a cluster message of a known type may carry. */
static bool cmsg_ok(const struct lm_cmsg *m)
{
	const struct lm_c_plock *p = &m->u.plock;

	switch (m->type) {
	case LM_C_SYNC_HELLO:
		return m->u.hello.n_members <= LM_MAX_NODES &&
		       str_ok(m->u.hello.name, sizeof(m->u.hello.name)) &&
		       m->u.hello.proto_min >= 1 &&
		       m->u.hello.proto_min <= m->u.hello.proto_max &&
		       bool_ok(m->u.hello.kept_out);
	case LM_C_SYNC_DATA:
		return m->u.sync_data.len <= LM_SYNC_CHUNK &&
		       (m->u.sync_data.len == 0 || m->u.sync_data.data);
	case LM_C_PLOCK:
		return space_ok(p->space) && plop_ok(p->op) &&
		       lktype_ok(p->type) && p->start <= p->end;
	case LM_C_QUORUM:
		return quorum_ok(&m->u.quorum);
	case LM_C_MOUNT:
		return m->u.mount.op >= LM_MOUNT_RESET &&
		       m->u.mount.op <= LM_MOUNT_DEL &&
		       mount_ok(&m->u.mount.m);
	default:
		return true;
	}
}

bool lm_cmsg_frozen(unsigned type)
{
	return type == LM_C_SYNC_HELLO || type == LM_C_NODE_INFO;
}

int lm_cmsg_encode(const struct lm_cmsg *m, uint8_t *buf, size_t cap)
{
	struct lm_cur c = {.out = buf, .cap = cap, .off = LM_HDR_LEN};
	int rc;

	if (!m || !buf || !cmsg_type_known(m->type) || !cmsg_ok(m))
		return -EINVAL;
	c.version = version_to_encode(LM_CMSG_MAGIC, lm_cmsg_frozen(m->type),
				      m->version);
	if (!version_ok(LM_CMSG_MAGIC, lm_cmsg_frozen(m->type), c.version))
		return -EINVAL;
	rc = hdr_encode(buf, cap, LM_CMSG_MAGIC, m->type, 0, c.version);
	if (rc)
		return rc;
	/* Encoding only reads *m: the walker writes fields when decoding. */
	x_cmsg_body(&c, (struct lm_cmsg *)m);
	return hdr_finish(&c);
}

int lm_cmsg_decode(const uint8_t *buf, size_t len, struct lm_cmsg *m)
{
	struct lm_cur c = {.in = buf, .cap = len, .off = LM_HDR_LEN};
	uint32_t seq;
	int rc;

	memset(m, 0, sizeof(*m));
	rc = hdr_decode(buf, len, LM_CMSG_MAGIC, lm_cmsg_frozen, &m->type,
			&m->version, &seq);
	if (rc)
		goto fail;
	c.version = m->version;
	rc = -EPROTO;
	if (!x_cmsg_body(&c, m))
		goto fail;
	rc = -EBADMSG;
	if (c.err || c.off != len || seq != 0 || !cmsg_ok(m))
		goto fail;
	return 0;
fail:
	memset(m, 0, sizeof(*m));
	return rc;
}

/* ------------------------------------------------------------------------
 * Socket messages.
 */
static void x_s_hello(struct lm_cur *c, struct lm_s_hello *h)
{
	x_u32(c, &h->proto_min);
	x_u32(c, &h->proto_max);
	x_u32(c, &h->kind);
	x_raw(c, h->volume, LM_VOLUME_LEN);
	x_u32(c, &h->pid);
	x_str(c, h->label, sizeof(h->label));
	x_str(c, h->vol_label, sizeof(h->vol_label));
	x_str(c, h->source, sizeof(h->source));
}

static void x_s_plock(struct lm_cur *c, struct lm_s_plock *p)
{
	x_u64(c, &p->fileid);
	x_u8(c, &p->space);
	x_u8(c, &p->op);
	x_u8(c, &p->type);
	x_u64(c, &p->owner);
	x_u64(c, &p->start);
	x_u64(c, &p->end);
	x_u32(c, &p->pid);
}

static void x_s_query(struct lm_cur *c, struct lm_s_query *q)
{
	x_u32(c, &q->what);
	x_u8(c, &q->has_res);
	x_res(c, &q->res);
}

static void x_s_admin(struct lm_cur *c, struct lm_s_admin *a)
{
	x_u32(c, &a->op);
	x_res(c, &a->res);
	x_str(c, a->node, sizeof(a->node));
}

static void x_s_r_hello(struct lm_cur *c, struct lm_s_r_hello *r)
{
	x_s32(c, &r->status);
	x_u32(c, &r->version);
	x_u32(c, &r->proto_min);
	x_u32(c, &r->proto_max);
	x_u32(c, &r->node_id);
	x_str(c, r->node_name, sizeof(r->node_name));
	x_str(c, r->cluster_name, sizeof(r->cluster_name));
}

static void x_lock_entry(struct lm_cur *c, struct lm_lock_entry *e)
{
	x_res(c, &e->res);
	x_u8(c, &e->space);
	x_u8(c, &e->type);
	x_u8(c, &e->waiting);
	x_u32(c, &e->node);
	x_u64(c, &e->owner);
	x_u32(c, &e->pid);
	x_u64(c, &e->start);
	x_u64(c, &e->end);
}

static void x_s_r_getlk(struct lm_cur *c, struct lm_s_r_getlk *r)
{
	x_s32(c, &r->status);
	x_u8(c, &r->found);
	x_lock_entry(c, &r->conflict);
}

static void x_s_r_status(struct lm_cur *c, struct lm_s_r_status *r)
{
	x_s32(c, &r->status);
	x_str(c, r->cluster_name, sizeof(r->cluster_name));
	x_str(c, r->node_name, sizeof(r->node_name));
	x_u32(c, &r->node_id);
	x_u8(c, &r->transport);
	x_u8(c, &r->quorate);
	x_u8(c, &r->ready);
	x_u8(c, &r->syncing);
	x_u32(c, &r->expected_votes);
	x_u32(c, &r->total_votes);
	x_count(c, &r->n_members, LM_MAX_NODES);
	for (uint32_t i = 0; i < r->n_members && !c->err; i++)
		x_u32(c, &r->members[i]);
	x_u64(c, &r->version);
	x_u64(c, &r->epoch);
	x_u64(c, &r->digest);
	x_u64(c, &r->n_resources);
	x_u64(c, &r->n_locks);
	x_s64(c, &r->lease_remaining_ms);
	x_u32(c, &r->lease_timeout_ms);
	x_u32(c, &r->n_clients);
	x_u16(c, &r->proto_version);
	x_u16(c, &r->proto_min);
	x_u16(c, &r->proto_max);
	x_u32(c, &r->quorum_from);
	x_u8(c, &r->local_quorate);
	x_quorum(c, &r->q);
}

static void x_node_entry(struct lm_cur *c, struct lm_node_entry *e)
{
	x_u32(c, &e->id);
	x_str(c, e->name, sizeof(e->name));
	x_u8(c, &e->state);
	x_u8(c, &e->member);
	x_u8(c, &e->draining);
	x_u32(c, &e->votes);
	x_u32(c, &e->n_owned);
	x_u32(c, &e->n_locks);
	x_s64(c, &e->heartbeat_age_ms);
	x_u16(c, &e->proto_min);
	x_u16(c, &e->proto_max);
	x_u16(c, &e->heartbeat_version);
	x_u32(c, &e->lease_timeout_ms);
	x_u8(c, &e->quorum_decision);
}

static void x_owner_entry(struct lm_cur *c, struct lm_owner_entry *e)
{
	x_res(c, &e->res);
	x_u32(c, &e->owner);
	x_u64(c, &e->epoch);
	x_u32(c, &e->n_waiters);
	x_u32(c, &e->handoff_target);
	x_u8(c, &e->revoking);
	x_s64(c, &e->age_ms);
}

static void x_volume_entry(struct lm_cur *c, struct lm_volume_entry *e)
{
	x_u32(c, &e->node);
	x_mount(c, &e->m);
}

static void x_s_r_metrics(struct lm_cur *c, struct lm_s_r_metrics *r)
{
	x_s32(c, &r->status);
	x_u64(c, &r->uptime_ms);
	x_u64(c, &r->grants);
	x_u64(c, &r->handoffs);
	x_u64(c, &r->revokes);
	x_u64(c, &r->releases);
	x_u64(c, &r->lost);
	x_u64(c, &r->fences);
	x_u64(c, &r->acquires);
	x_u64(c, &r->acquire_errors);
	x_s64(c, &r->lease_remaining_ms);
	x_u32(c, &r->lease_timeout_ms);
	for (unsigned i = 0; i < LM_HIST_BUCKETS; i++)
		x_u64(c, &r->acquire_latency.bucket[i]);
	x_u64(c, &r->acquire_latency.count);
	x_u64(c, &r->acquire_latency.sum_us);
}

/*
 * The batch replies share their head (status, more, n); only the
 * first n entries travel.
 */
#define LM_X_BATCH(name, type, entry, max)                                     \
	static void name(struct lm_cur *c, type *r)                            \
	{                                                                      \
		x_s32(c, &r->status);                                          \
		x_u8(c, &r->more);                                             \
		x_count(c, &r->n, max);                                        \
		for (uint32_t i = 0; i < r->n && !c->err; i++)                 \
			entry(c, &r->e[i]);                                    \
	}
LM_X_BATCH(x_s_r_nodes, struct lm_s_r_nodes, x_node_entry, LM_BATCH_MAX)
LM_X_BATCH(x_s_r_owners, struct lm_s_r_owners, x_owner_entry, LM_BATCH_MAX)
LM_X_BATCH(x_s_r_locks, struct lm_s_r_locks, x_lock_entry, LM_BATCH_MAX)
LM_X_BATCH(x_s_r_volumes, struct lm_s_r_volumes, x_volume_entry,
	   LM_VOL_BATCH_MAX)
#undef LM_X_BATCH

/* The log batch: its bytes travel as they are. */
static void x_s_r_log(struct lm_cur *c, struct lm_s_r_log *r)
{
	x_s32(c, &r->status);
	x_u8(c, &r->more);
	x_count(c, &r->n, LM_LOG_BATCH_MAX);
	x_raw(c, (uint8_t *)r->e, r->n);
}

static bool x_smsg_request(struct lm_cur *c, struct lm_smsg *m)
{
	switch (m->type) {
	case LM_S_HELLO:
		x_s_hello(c, &m->u.hello);
		break;
	case LM_S_ACQUIRE:
		x_u64(c, &m->u.acquire.fileid);
		x_u32(c, &m->u.acquire.flags);
		break;
	case LM_S_RELEASE:
		x_u64(c, &m->u.release.fileid);
		x_u64(c, &m->u.release.epoch);
		break;
	case LM_S_PLOCK:
	case LM_S_GETLK:
		x_s_plock(c, &m->u.plock);
		break;
	case LM_S_QUERY:
		x_s_query(c, &m->u.query);
		break;
	case LM_S_ADMIN:
		x_s_admin(c, &m->u.admin);
		break;
	case LM_S_CANCEL:
		x_u32(c, &m->u.cancel.seq);
		break;
	default:
		return false;
	}
	return true;
}

static bool x_smsg_reply(struct lm_cur *c, struct lm_smsg *m)
{
	switch (m->type) {
	case LM_S_R_HELLO:
		x_s_r_hello(c, &m->u.r_hello);
		break;
	case LM_S_R_RESULT:
		x_s32(c, &m->u.r_result.status);
		x_u64(c, &m->u.r_result.epoch);
		break;
	case LM_S_R_GETLK:
		x_s_r_getlk(c, &m->u.r_getlk);
		break;
	case LM_S_R_STATUS:
		x_s_r_status(c, &m->u.r_status);
		break;
	case LM_S_R_NODES:
		x_s_r_nodes(c, &m->u.r_nodes);
		break;
	case LM_S_R_OWNERS:
		x_s_r_owners(c, &m->u.r_owners);
		break;
	case LM_S_R_LOCKS:
		x_s_r_locks(c, &m->u.r_locks);
		break;
	case LM_S_R_VOLUMES:
		x_s_r_volumes(c, &m->u.r_volumes);
		break;
	case LM_S_R_METRICS:
		x_s_r_metrics(c, &m->u.r_metrics);
		break;
	case LM_S_R_LOG:
		x_s_r_log(c, &m->u.r_log);
		break;
	default:
		return false;
	}
	return true;
}

static bool x_smsg_event(struct lm_cur *c, struct lm_smsg *m)
{
	switch (m->type) {
	case LM_S_EV_LEASE:
		x_u8(c, &m->u.ev_lease.valid);
		x_u64(c, &m->u.ev_lease.deadline_ns);
		break;
	case LM_S_EV_GRANTED:
	case LM_S_EV_REVOKE:
	case LM_S_EV_OWNER:
	case LM_S_EV_LOST:
		x_u64(c, &m->u.ev_file.fileid);
		x_u64(c, &m->u.ev_file.epoch);
		x_u32(c, &m->u.ev_file.owner);
		break;
	default:
		return false;
	}
	return true;
}

/* Walk the body of m; false for an unknown type. */
static bool x_smsg_body(struct lm_cur *c, struct lm_smsg *m)
{
	return x_smsg_request(c, m) || x_smsg_reply(c, m) || x_smsg_event(c, m);
}

static bool lock_entry_ok(const struct lm_lock_entry *e)
{
	return space_ok(e->space) && lktype_ok(e->type) &&
	       bool_ok(e->waiting) && e->start <= e->end;
}

static bool node_entry_ok(const struct lm_node_entry *e)
{
	return str_ok(e->name, sizeof(e->name)) &&
	       e->state <= LM_NODE_INCOMPATIBLE && bool_ok(e->member) &&
	       bool_ok(e->draining) && e->quorum_decision <= LM_NQ_NOT_QUORATE;
}

static bool s_plock_ok(const struct lm_s_plock *p, bool getlk)
{
	/* GETLK ignores op, so any value passes through unchanged. */
	return space_ok(p->space) && (getlk || plop_ok(p->op)) &&
	       lktype_ok(p->type) && p->start <= p->end;
}

static bool s_status_ok(const struct lm_s_r_status *r)
{
	return str_ok(r->cluster_name, sizeof(r->cluster_name)) &&
	       str_ok(r->node_name, sizeof(r->node_name)) &&
	       bool_ok(r->quorate) && bool_ok(r->ready) &&
	       bool_ok(r->syncing) && r->n_members <= LM_MAX_NODES &&
	       bool_ok(r->local_quorate) && quorum_ok(&r->q);
}

static bool s_batch_ok(const struct lm_smsg *m)
{
	uint32_t n;

	switch (m->type) {
	case LM_S_R_NODES:
		n = m->u.r_nodes.n;
		if (!bool_ok(m->u.r_nodes.more) || n > LM_BATCH_MAX)
			return false;
		for (uint32_t i = 0; i < n; i++)
			if (!node_entry_ok(&m->u.r_nodes.e[i]))
				return false;
		return true;
	case LM_S_R_OWNERS:
		n = m->u.r_owners.n;
		if (!bool_ok(m->u.r_owners.more) || n > LM_BATCH_MAX)
			return false;
		for (uint32_t i = 0; i < n; i++)
			if (!bool_ok(m->u.r_owners.e[i].revoking))
				return false;
		return true;
	case LM_S_R_VOLUMES:
		n = m->u.r_volumes.n;
		if (!bool_ok(m->u.r_volumes.more) || n > LM_VOL_BATCH_MAX)
			return false;
		for (uint32_t i = 0; i < n; i++)
			if (!mount_ok(&m->u.r_volumes.e[i].m))
				return false;
		return true;
	default: /* LM_S_R_LOCKS */
		n = m->u.r_locks.n;
		if (!bool_ok(m->u.r_locks.more) || n > LM_BATCH_MAX)
			return false;
		for (uint32_t i = 0; i < n; i++)
			if (!lock_entry_ok(&m->u.r_locks.e[i]))
				return false;
		return true;
	}
}

/* Field values a socket message of a known type may carry. */
static bool smsg_ok(const struct lm_smsg *m)
{
	const struct lm_s_admin *a = &m->u.admin;

	switch (m->type) {
	case LM_S_HELLO:
		return (m->u.hello.kind == LM_CLIENT_CSVFS ||
			m->u.hello.kind == LM_CLIENT_ADMIN) &&
		       m->u.hello.proto_min >= 1 &&
		       m->u.hello.proto_min <= m->u.hello.proto_max &&
		       str_ok(m->u.hello.label, sizeof(m->u.hello.label)) &&
		       str_ok(m->u.hello.vol_label,
			      sizeof(m->u.hello.vol_label)) &&
		       str_ok(m->u.hello.source, sizeof(m->u.hello.source));
	case LM_S_PLOCK:
	case LM_S_GETLK:
		return s_plock_ok(&m->u.plock, m->type == LM_S_GETLK);
	case LM_S_QUERY:
		return m->u.query.what >= LM_QUERY_STATUS &&
		       m->u.query.what <= LM_QUERY_LOG &&
		       bool_ok(m->u.query.has_res);
	case LM_S_ADMIN:
		return a->op >= LM_ADMIN_HANDOFF && a->op <= LM_ADMIN_RESUME &&
		       str_ok(a->node, sizeof(a->node));
	case LM_S_R_HELLO:
		return str_ok(m->u.r_hello.node_name, LM_NAME_MAX) &&
		       str_ok(m->u.r_hello.cluster_name, LM_NAME_MAX);
	case LM_S_R_GETLK:
		return bool_ok(m->u.r_getlk.found) &&
		       lock_entry_ok(&m->u.r_getlk.conflict);
	case LM_S_R_STATUS:
		return s_status_ok(&m->u.r_status);
	case LM_S_R_NODES:
	case LM_S_R_OWNERS:
	case LM_S_R_LOCKS:
	case LM_S_R_VOLUMES:
		return s_batch_ok(m);
	case LM_S_R_LOG:
		return bool_ok(m->u.r_log.more);
	case LM_S_EV_LEASE:
		return bool_ok(m->u.ev_lease.valid);
	default:
		return true;
	}
}

bool lm_smsg_frozen(unsigned type)
{
	return type == LM_S_HELLO || type == LM_S_R_HELLO;
}

int lm_smsg_encode(const struct lm_smsg *m, uint8_t *buf, size_t cap)
{
	return m ? lm_smsg_encode_v(m, m->version, buf, cap) : -EINVAL;
}

int lm_smsg_encode_v(const struct lm_smsg *m, unsigned version, uint8_t *buf,
		     size_t cap)
{
	struct lm_cur c = {.out = buf, .cap = cap, .off = LM_HDR_LEN};
	int rc;

	if (!m || !buf || !smsg_type_known(m->type) || !smsg_ok(m))
		return -EINVAL;
	c.version = version_to_encode(LM_SMSG_MAGIC, lm_smsg_frozen(m->type),
				      version);
	if (!version_ok(LM_SMSG_MAGIC, lm_smsg_frozen(m->type), c.version))
		return -EINVAL;
	rc = hdr_encode(buf, cap, LM_SMSG_MAGIC, m->type, m->seq, c.version);
	if (rc)
		return rc;
	/* Encoding only reads *m: the walker writes fields when decoding. */
	x_smsg_body(&c, (struct lm_smsg *)m);
	return hdr_finish(&c);
}

int lm_smsg_decode(const uint8_t *buf, size_t len, struct lm_smsg *m)
{
	struct lm_cur c = {.in = buf, .cap = len, .off = LM_HDR_LEN};
	int rc;

	memset(m, 0, sizeof(*m));
	rc = hdr_decode(buf, len, LM_SMSG_MAGIC, lm_smsg_frozen, &m->type,
			&m->version, &m->seq);
	if (rc)
		goto fail;
	c.version = m->version;
	rc = -EPROTO;
	if (!x_smsg_body(&c, m))
		goto fail;
	rc = -EBADMSG;
	if (c.err || c.off != len || !smsg_ok(m))
		goto fail;
	return 0;
fail:
	memset(m, 0, sizeof(*m));
	return rc;
}

/* ------------------------------------------------------------------------
 * Error texts.
 */
static const char *const lm_err_texts[] = {
    [LM_ERR_NOQUORUM - LM_ERR_BASE] = "cluster partition is not quorate",
    [LM_ERR_SYNCING - LM_ERR_BASE] = "lock table transfer under way",
    [LM_ERR_DRAINING - LM_ERR_BASE] = "node is draining",
    [LM_ERR_FENCING - LM_ERR_BASE] = "node awaits fencing",
    [LM_ERR_NOTOWNER - LM_ERR_BASE] = "not the owner of this grant",
    [LM_ERR_NONODE - LM_ERR_BASE] = "no such node",
    [LM_ERR_NOTMEMBER - LM_ERR_BASE] = "node is not a cluster member",
    [LM_ERR_SHUTDOWN - LM_ERR_BASE] = "lock manager is shutting down",
    [LM_ERR_LEASE - LM_ERR_BASE] = "node holds no valid lease",
    [LM_ERR_CANCELED - LM_ERR_BASE] = "request canceled",
    [LM_ERR_TIMEDOUT - LM_ERR_BASE] = "request timed out in lock manager",
    [LM_ERR_LOST - LM_ERR_BASE] = "ownership lost (fenced or lease ended)",
    [LM_ERR_PROTO - LM_ERR_BASE] =
	"this node is kept out of the cluster: its csvfs-lockd protocol "
	"versions do not meet the cluster's",
};

#if defined(__GLIBC__) &&                                                      \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
static const char *errno_text(int e)
{
	/* Static, untranslated text: safe from any thread. */
	return strerrordesc_np(e);
}
#else
static const char *errno_text(int e)
{
	static const char *const texts[] = {
	    [EPERM] = "Operation not permitted",
	    [ENOENT] = "No such file or directory",
	    [EIO] = "Input/output error",
	    [EAGAIN] = "Resource temporarily unavailable",
	    [ENOMEM] = "Cannot allocate memory",
	    [EACCES] = "Permission denied",
	    [EBUSY] = "Device or resource busy",
	    [EINVAL] = "Invalid argument",
	    [ENOSPC] = "No space left on device",
	    [EDEADLK] = "Resource deadlock avoided",
	    [ENOSYS] = "Function not implemented",
	    [EPROTO] = "Protocol error",
	    [EBADMSG] = "Bad message",
	    [EPROTONOSUPPORT] = "Protocol not supported",
	    [ENOTCONN] = "Transport endpoint is not connected",
	    [ETIMEDOUT] = "Connection timed out",
	    [ECONNREFUSED] = "Connection refused",
	    [ECANCELED] = "Operation canceled",
	};

	if (e < 0 || (size_t)e >= LM_ARRAY_SIZE(texts))
		return NULL;
	return texts[e];
}
#endif

const char *lm_strerror(int status)
{
	const char *s = NULL;
	size_t i;

	if (status < 0 && status != INT_MIN)
		status = -status;
	if (status == LM_OK)
		return "success";
	if (status > LM_ERR_BASE && status <= LM_ERR_MAX) {
		i = (size_t)(status - LM_ERR_BASE);
		if (i < LM_ARRAY_SIZE(lm_err_texts))
			s = lm_err_texts[i];
		return s ? s : "unknown lock manager error";
	}
	if (status > 0 && status < LM_ERR_BASE)
		s = errno_text(status);
	return s ? s : "unknown error";
}

/* ------------------------------------------------------------------------
 * Version negotiation.
 */
unsigned lm_proto_choose(unsigned min_a, unsigned max_a, unsigned min_b,
			 unsigned max_b)
{
	unsigned lo = min_a > min_b ? min_a : min_b;
	unsigned hi = max_a < max_b ? max_a : max_b;

	return lo <= hi && lo >= 1 ? hi : 0;
}

static bool peer_speaks(const struct lm_proto_peer *p, unsigned v)
{
	return p->min >= 1 && p->min <= v && v <= p->max;
}

/* The ranking key of version v (see lm_proto.h), compared field by field. */
struct lm_proto_score {
	uint64_t latest_votes, votes, speakers, version;
};

static struct lm_proto_score proto_score(const struct lm_proto_peer *p,
					 size_t n, unsigned v)
{
	struct lm_proto_score s = { 0, 0, 0, v };

	for (size_t i = 0; i < n; i++) {
		if (!peer_speaks(&p[i], v))
			continue;
		s.votes += p[i].votes;
		s.speakers++;
		if (p[i].latest)
			s.latest_votes += p[i].votes;
	}
	return s;
}

static bool score_better(const struct lm_proto_score *a,
			 const struct lm_proto_score *b)
{
	if (a->latest_votes != b->latest_votes)
		return a->latest_votes > b->latest_votes;
	if (a->votes != b->votes)
		return a->votes > b->votes;
	if (a->speakers != b->speakers)
		return a->speakers > b->speakers;
	return a->version > b->version;
}

/*
 * Only the peers' maxes need trying: as v grows, a peer starts speaking
 * it at its min and stops past its max, so between one max and the next
 * the speakers of the upper max include those of every v below it in the
 * stretch, and it ranks higher on version too.
 */
unsigned lm_proto_negotiate(const struct lm_proto_peer *p, size_t n,
			    bool *admitted)
{
	struct lm_proto_score best = { 0, 0, 0, 0 }, s;
	unsigned v = 0;

	for (size_t i = 0; i < n; i++) {
		if (p[i].min < 1 || p[i].min > p[i].max)
			continue;
		s = proto_score(p, n, p[i].max);
		if (!v || score_better(&s, &best)) {
			best = s;
			v = p[i].max;
		}
	}
	for (size_t i = 0; i < n; i++)
		admitted[i] = v && peer_speaks(&p[i], v);
	return v;
}
