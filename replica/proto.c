// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * proto.c - encoders and bounds-checked decoders of the replication
 * protocol (proto.h).
 *
 * Each body is described once, by a walker that works in both directions
 * on the cursor of lockmgr/proto/lm_cur.h: encoding writes the fields,
 * decoding reads them, so the two cannot drift apart.  Walkers check only
 * what keeps the decoder inside its buffers (lengths against the arrays
 * they fill, counts against their limits); the value checks (msg_ok) run
 * before encoding (-EINVAL) and after decoding (-EBADMSG), so both accept
 * exactly the same messages.
 *
 * No I/O, no allocation, no clock.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "lm_cur.h"
#include "proto.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------
 * Field walkers.
 */

/* u16 length then the bytes, into a NUL-terminated array of max + 1
 * bytes.  Decoding refuses lengths over max and NUL bytes. */
static void x_name(struct lm_cur *c, char *s, size_t max)
{
	uint16_t n = 0;
	size_t at;

	if (cur_enc(c))
		n = (uint16_t)strnlen(s, max + 1);
	x_u16(c, &n);
	if (c->err)
		return;
	if (n > max) {
		c->err = cur_enc(c) ? -EINVAL : -EBADMSG;
		return;
	}
	if (!cur_take(c, n, &at))
		return;
	if (cur_enc(c)) {
		memcpy(c->out + at, s, n);
		return;
	}
	if (memchr(c->in + at, '\0', n)) {
		c->err = -EBADMSG;
		return;
	}
	memcpy(s, c->in + at, n);
	s[n] = '\0';
}

/* A count; decoding refuses one over max before anything it counts. */
static void x_count(struct lm_cur *c, uint32_t *n, uint32_t max)
{
	x_u32(c, n);
	if (!cur_enc(c) && !c->err && *n > max) {
		*n = 0;
		c->err = -EBADMSG;
	}
}

/* u32 length (<= max) then the bytes: copied from *data when encoding,
 * *data pointed into the input when decoding. */
static void x_payload(struct lm_cur *c, uint64_t *len, const uint8_t **data,
		      uint32_t max)
{
	uint32_t n = (uint32_t)*len;
	size_t at;

	x_count(c, &n, max);
	if (c->err)
		return;
	if (!cur_enc(c))
		*len = n;
	if (!cur_take(c, n, &at))
		return;
	if (cur_enc(c)) {
		if (n)
			memcpy(c->out + at, *data, n);
	} else {
		*data = c->in + at;
	}
}

/* ------------------------------------------------------------------------
 * Request bodies.
 */
static void x_q_hello(struct lm_cur *c, struct cvr_q_hello *h)
{
	x_u16(c, &h->proto_min);
	x_u16(c, &h->proto_max);
	x_raw(c, h->primary, CVR_ID_LEN);
	x_u64(c, &h->group);
	x_u64(c, &h->generation);
	x_u64(c, &h->base_generation);
	x_name(c, h->name, CVR_NAME_MAX);
}

static void x_q_begin(struct lm_cur *c, struct cvr_q_point_begin *b,
		      struct cvr_file *store)
{
	x_u64(c, &b->group);
	x_u64(c, &b->point);
	x_u64(c, &b->base_point);
	x_s64(c, &b->time_ns);
	x_count(c, &b->nfiles, CVR_FILES_MAX);
	if (!cur_enc(c))
		b->files = store;
	for (uint32_t i = 0; i < b->nfiles && !c->err; i++) {
		x_u64(c, &b->files[i].file_id);
		x_u64(c, &b->files[i].size);
		x_name(c, b->files[i].name, CVR_NAME_MAX);
	}
}

static void x_q_op(struct lm_cur *c, struct cvr_q_op *q, unsigned type)
{
	x_u64(c, &q->point);
	x_u64(c, &q->op);
	x_u64(c, &q->file_id);
	x_u64(c, &q->offset);
	if (type == CVR_EXTENT) {
		x_raw(c, q->sha256, CVR_SHA_LEN);
		x_payload(c, &q->len, &q->data, CVR_DATA_MAX);
	} else if (type == CVR_PUNCH) {
		x_u64(c, &q->len);
	}
}

static void x_q_end(struct lm_cur *c, struct cvr_q_point_end *e,
		    struct cvr_file_hash *store)
{
	x_u64(c, &e->point);
	x_u64(c, &e->nops);
	x_count(c, &e->nfiles, CVR_FILES_MAX);
	if (!cur_enc(c))
		e->files = store;
	for (uint32_t i = 0; i < e->nfiles && !c->err; i++) {
		x_u64(c, &e->files[i].file_id);
		x_u64(c, &e->files[i].size);
		x_u8(c, &e->files[i].kind);
		x_raw(c, e->files[i].sha256, CVR_SHA_LEN);
	}
}

static void x_request(struct lm_cur *c, struct cvr_msg *m)
{
	switch (m->type) {
	case CVR_HELLO:
		x_q_hello(c, &m->u.hello);
		break;
	case CVR_PING:
		x_u64(c, &m->u.ping);
		break;
	case CVR_POINT_BEGIN:
		x_q_begin(c, &m->u.begin, m->store.files);
		break;
	case CVR_EXTENT:
	case CVR_TRUNCATE:
	case CVR_PUNCH:
		x_q_op(c, &m->u.op, m->type);
		break;
	case CVR_POINT_END:
		x_q_end(c, &m->u.end, m->store.hashes);
		break;
	case CVR_STATUS:
		x_u64(c, &m->u.status.group);
		break;
	case CVR_HASHES:
		x_u64(c, &m->u.hashes.group);
		x_u64(c, &m->u.hashes.file_id);
		x_u64(c, &m->u.hashes.offset);
		x_u32(c, &m->u.hashes.chunk);
		x_u32(c, &m->u.hashes.count);
		break;
	}
}

/* ------------------------------------------------------------------------
 * Reply bodies.
 */
static void x_r_hello(struct lm_cur *c, struct cvr_r_hello *r)
{
	x_u16(c, &r->version);
	x_raw(c, r->replica, CVR_ID_LEN);
	x_u64(c, &r->generation);
	x_u64(c, &r->last_point);
	x_u64(c, &r->open_point);
	x_u64(c, &r->open_next_op);
}

static void x_r_status(struct lm_cur *c, struct cvr_r_status *r,
		       struct cvr_point_info *store)
{
	x_u64(c, &r->group);
	x_u64(c, &r->generation);
	x_u64(c, &r->last_point);
	x_u64(c, &r->open_point);
	x_u64(c, &r->open_next_op);
	x_u8(c, &r->promoted);
	x_count(c, &r->npoints, CVR_POINTS_MAX);
	if (!cur_enc(c))
		r->points = store;
	for (uint32_t i = 0; i < r->npoints && !c->err; i++) {
		x_u64(c, &r->points[i].point);
		x_s64(c, &r->points[i].time_ns);
		x_u64(c, &r->points[i].bytes);
		x_u32(c, &r->points[i].nfiles);
	}
}

static void x_r_hashes(struct lm_cur *c, struct cvr_r_hashes *r,
		       uint8_t (*store)[CVR_SHA_LEN])
{
	x_u64(c, &r->file_id);
	x_u64(c, &r->size);
	x_count(c, &r->count, CVR_HASHES_MAX);
	if (!cur_enc(c))
		r->sha256 = store;
	for (uint32_t i = 0; i < r->count && !c->err; i++)
		x_raw(c, r->sha256[i], CVR_SHA_LEN);
}

static void x_reply(struct lm_cur *c, struct cvr_msg *m, unsigned type)
{
	if (m->status) {
		x_name(c, m->u.r_error, CVR_TEXT_MAX);
		return;
	}
	switch (type) {
	case CVR_HELLO:
		x_r_hello(c, &m->u.r_hello);
		break;
	case CVR_PING:
		x_u64(c, &m->u.r_ping);
		break;
	case CVR_POINT_BEGIN:
	case CVR_EXTENT:
	case CVR_TRUNCATE:
	case CVR_PUNCH:
	case CVR_POINT_END:
		x_u64(c, &m->u.r_ack.point);
		x_u64(c, &m->u.r_ack.next_op);
		x_u8(c, &m->u.r_ack.applied);
		break;
	case CVR_STATUS:
		x_r_status(c, &m->u.r_status, m->store.points);
		break;
	case CVR_HASHES:
		x_r_hashes(c, &m->u.r_hashes, m->store.sha);
		break;
	}
}

/* ------------------------------------------------------------------------
 * Names; a type is known if it has one.
 */
static const char *const type_names[] = {
	[CVR_HELLO] = "hello",
	[CVR_PING] = "ping",
	[CVR_POINT_BEGIN] = "point_begin",
	[CVR_EXTENT] = "extent",
	[CVR_TRUNCATE] = "truncate",
	[CVR_PUNCH] = "punch",
	[CVR_POINT_END] = "point_end",
	[CVR_STATUS] = "status",
	[CVR_HASHES] = "hashes",
};

bool cvr_msg_type_known(unsigned type)
{
	return type < ARRAY_SIZE(type_names) && type_names[type];
}

const char *cvr_msg_type_name(unsigned type)
{
	type &= ~CVR_REPLY;
	return cvr_msg_type_known(type) ? type_names[type] : "unknown";
}

const char *cvr_strerror(int status)
{
	switch (status) {
	case CVR_E_NOT_ALLOWED:
		return "this primary may not replicate this group";
	case CVR_E_SPLIT_BRAIN:
		return "generations diverged (the group failed over)";
	case CVR_E_NO_POINT:
		return "no point is open";
	case CVR_E_OP_ORDER:
		return "operation out of order";
	case CVR_E_HASH:
		return "SHA-256 mismatch";
	case CVR_E_BASE:
		return "the point's base is not the replica's last point";
	case CVR_E_STORE:
		return "the replica's storage failed";
	default:
		return status < 0 && status >= -4095
			       ? strerror(-status)
			       : (status ? "unknown error" : "Success");
	}
}

/* ------------------------------------------------------------------------
 * Value checks, run before encoding and after decoding.
 */
bool cvr_name_ok(const char *name)
{
	size_t n = strnlen(name, CVR_NAME_MAX + 1), i = 0;

	if (n == 0 || n > CVR_NAME_MAX || name[0] == '/')
		return false;
	for (size_t k = 0; k < n; k++)
		if ((unsigned char)name[k] < 0x20 || name[k] == 0x7f)
			return false;
	while (i < n) {
		size_t e = i;

		while (e < n && name[e] != '/')
			e++;
		if (e == i || (e - i == 1 && name[i] == '.') ||
		    (e - i == 2 && name[i] == '.' && name[i + 1] == '.'))
			return false;
		i = e + 1;
		if (e + 1 == n) /* a trailing '/' */
			return false;
	}
	return true;
}

static bool begin_ok(const struct cvr_q_point_begin *b)
{
	if (b->point == 0 || b->base_point >= b->point || b->nfiles == 0 ||
	    b->nfiles > CVR_FILES_MAX || !b->files)
		return false;
	for (uint32_t i = 0; i < b->nfiles; i++) {
		if (!cvr_name_ok(b->files[i].name))
			return false;
		for (uint32_t j = 0; j < i; j++)
			if (b->files[j].file_id == b->files[i].file_id ||
			    !strcmp(b->files[j].name, b->files[i].name))
				return false;
	}
	return true;
}

static bool zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static bool end_ok(const struct cvr_q_point_end *e)
{
	if (e->point == 0 || e->nfiles > CVR_FILES_MAX ||
	    (e->nfiles && !e->files))
		return false;
	for (uint32_t i = 0; i < e->nfiles; i++) {
		const struct cvr_file_hash *h = &e->files[i];

		if (h->kind > CVR_HASH_EXTENTS ||
		    (h->kind == CVR_HASH_NONE && !zero(h->sha256, CVR_SHA_LEN)))
			return false;
		for (uint32_t j = 0; j < i; j++)
			if (e->files[j].file_id == h->file_id)
				return false;
	}
	return true;
}

static bool op_ok(const struct cvr_q_op *q, unsigned type)
{
	if (q->point == 0)
		return false;
	if (type == CVR_EXTENT)
		return q->len >= 1 && q->len <= CVR_DATA_MAX &&
		       q->offset + q->len > q->offset;
	if (type == CVR_PUNCH)
		return q->len >= 1 && q->offset + q->len > q->offset &&
		       zero(q->sha256, CVR_SHA_LEN);
	return q->len == 0 && zero(q->sha256, CVR_SHA_LEN);
}

static bool hashes_ok(const struct cvr_q_hashes *q)
{
	if (q->group == 0 || q->chunk < 4096 || q->chunk > (64u << 20) ||
	    (q->chunk & (q->chunk - 1)) || q->offset % q->chunk ||
	    q->count == 0 || q->count > CVR_HASHES_MAX)
		return false;
	/* the last chunk's end fits in 64 bits */
	return q->offset / q->chunk + q->count <= UINT64_MAX / q->chunk;
}

static bool request_ok(const struct cvr_msg *m)
{
	const struct cvr_q_hello *h = &m->u.hello;

	switch (m->type) {
	case CVR_HELLO:
		return h->proto_min >= 1 && h->proto_min <= h->proto_max &&
		       h->group != 0 && h->generation != 0;
	case CVR_POINT_BEGIN:
		return begin_ok(&m->u.begin);
	case CVR_EXTENT:
	case CVR_TRUNCATE:
	case CVR_PUNCH:
		return op_ok(&m->u.op, m->type);
	case CVR_POINT_END:
		return end_ok(&m->u.end);
	case CVR_STATUS:
		return m->u.status.group != 0;
	case CVR_HASHES:
		return hashes_ok(&m->u.hashes);
	default:
		return true;
	}
}

static bool status_ok(const struct cvr_r_status *r)
{
	if (r->promoted > 1 || r->npoints > CVR_POINTS_MAX ||
	    (r->npoints && !r->points))
		return false;
	for (uint32_t i = 1; i < r->npoints; i++)
		if (r->points[i].point <= r->points[i - 1].point)
			return false;
	return true;
}

static bool reply_ok(const struct cvr_msg *m, unsigned type)
{
	if (m->status > 0 || m->status < CVR_E_MIN ||
	    (m->status < -4095 && m->status > CVR_E_NOT_ALLOWED))
		return false;
	if (m->status)
		return true;
	switch (type) {
	case CVR_HELLO:
		return m->u.r_hello.version >= 1 &&
		       m->u.r_hello.generation != 0;
	case CVR_POINT_BEGIN:
	case CVR_EXTENT:
	case CVR_TRUNCATE:
	case CVR_PUNCH:
	case CVR_POINT_END:
		return m->u.r_ack.applied <= 1 &&
		       (type == CVR_POINT_END || !m->u.r_ack.applied);
	case CVR_STATUS:
		return status_ok(&m->u.r_status);
	case CVR_HASHES:
		return m->u.r_hashes.count <= CVR_HASHES_MAX &&
		       (!m->u.r_hashes.count || m->u.r_hashes.sha256);
	default:
		return true;
	}
}

static bool msg_ok(const struct cvr_msg *m)
{
	unsigned type = m->type & ~CVR_REPLY;

	if (m->type & CVR_REPLY)
		return reply_ok(m, type);
	return m->status == 0 && request_ok(m);
}

/* ------------------------------------------------------------------------
 * Header and the whole message.
 */
static void walk_body(struct lm_cur *c, struct cvr_msg *m)
{
	if (!(m->type & CVR_REPLY))
		x_request(c, m);
	else
		x_reply(c, m, m->type & ~CVR_REPLY);
}

static unsigned version_for(unsigned type, unsigned asked)
{
	if ((type & ~CVR_REPLY) == CVR_HELLO)
		return CVR_VERSION_HELLO;
	return asked ? asked : CVR_VERSION_MAX;
}

static bool version_ok(unsigned type, unsigned v)
{
	if ((type & ~CVR_REPLY) == CVR_HELLO)
		return v == CVR_VERSION_HELLO;
	return v >= CVR_VERSION_MIN && v <= CVR_VERSION_MAX;
}

static void x_header(struct lm_cur *c, struct cvr_msg *m, uint32_t *magic,
		     uint32_t *len)
{
	x_u32(c, magic);
	x_u16(c, &m->version);
	x_u16(c, &m->type);
	x_u32(c, len);
	x_s32(c, &m->status);
	x_u64(c, &m->seq);
}

int cvr_msg_encode(const struct cvr_msg *m, uint8_t *buf, size_t cap)
{
	struct cvr_msg h;
	struct lm_cur c = { .out = buf, .cap = cap };
	uint32_t magic = CVR_MAGIC, len = 0;

	if (!m || !buf || !cvr_msg_type_known(m->type & ~CVR_REPLY) ||
	    !msg_ok(m))
		return -EINVAL;
	h.type = m->type;
	h.status = m->status;
	h.seq = m->seq;
	h.version = (uint16_t)version_for(m->type, m->version);
	if (!version_ok(m->type, h.version))
		return -EINVAL;
	x_header(&c, &h, &magic, &len);
	/* Encoding only reads *m: the walkers write fields when decoding. */
	walk_body(&c, (struct cvr_msg *)m);
	if (c.err)
		return c.err;
	if (c.off > CVR_MSG_MAX)
		return -EINVAL;
	lm_put_le(buf + 8, c.off, 4); /* the length, now known */
	return (int)c.off;
}

int cvr_msg_frame(const uint8_t *hdr, size_t len, size_t *msglen)
{
	uint64_t n;

	if (len < CVR_HDR_LEN)
		return -EBADMSG;
	if (lm_get_le(hdr, 4) != CVR_MAGIC)
		return -EPROTO;
	n = lm_get_le(hdr + 8, 4);
	if (n < CVR_HDR_LEN || n > CVR_MSG_MAX)
		return -EBADMSG;
	*msglen = (size_t)n;
	return 0;
}

static int decode_header(struct lm_cur *c, size_t len, struct cvr_msg *m)
{
	uint32_t magic = 0, wlen = 0;

	if (len < CVR_HDR_LEN)
		return -EBADMSG;
	x_header(c, m, &magic, &wlen);
	if (magic != CVR_MAGIC)
		return -EPROTO;
	if (!cvr_msg_type_known(m->type & ~CVR_REPLY))
		return -EPROTO;
	if (!version_ok(m->type, m->version))
		return -EPROTONOSUPPORT;
	if (wlen != len || len > CVR_MSG_MAX)
		return -EBADMSG;
	return 0;
}

/* Only the header and union: the list storage is large and is written
 * as far as the decoder fills it. */
static void clear(struct cvr_msg *m)
{
	memset(m, 0, offsetof(struct cvr_msg, store));
}

int cvr_msg_decode(const uint8_t *buf, size_t len, struct cvr_msg *m)
{
	struct lm_cur c = { .in = buf, .cap = len };
	int rc;

	clear(m);
	rc = decode_header(&c, len, m);
	if (rc)
		goto fail;
	rc = -EBADMSG;
	/* a request's status is 0: checked before its body is read */
	if (!(m->type & CVR_REPLY) && m->status)
		goto fail;
	walk_body(&c, m);
	if (c.err || c.off != len || !msg_ok(m))
		goto fail;
	return 0;
fail:
	clear(m);
	return rc;
}

size_t cvr_msg_bound(const struct cvr_msg *m)
{
	unsigned type = m->type & ~CVR_REPLY;
	size_t n = CVR_HDR_LEN + 4096 + CVR_TEXT_MAX;

	if (!(m->type & CVR_REPLY)) {
		if (type == CVR_EXTENT)
			n += m->u.op.len;
		if (type == CVR_POINT_BEGIN || type == CVR_HELLO)
			n += CVR_LIST_MAX;
		if (type == CVR_POINT_END)
			n += (size_t)m->u.end.nfiles * (17 + CVR_SHA_LEN);
		return n;
	}
	if (!m->status && type == CVR_STATUS)
		n += (size_t)m->u.r_status.npoints * 28;
	if (!m->status && type == CVR_HASHES)
		n += (size_t)m->u.r_hashes.count * CVR_SHA_LEN;
	return n;
}
