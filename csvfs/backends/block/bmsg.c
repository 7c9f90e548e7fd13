// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bmsg.c - encoders and bounds-checked decoders of the coordinator
 * channel's messages (bmsg.h).
 *
 * Each body is described once, by a walker that works in both
 * directions on lockd's cursor (lm_cur.h): encoding writes the fields,
 * decoding reads them, so the two cannot drift apart.  The walkers check
 * only what keeps the decoder inside its buffers (lengths against the
 * arrays they fill, counts against their limits); the value checks
 * (msg_ok) run before encoding (-EINVAL) and after decoding (-EBADMSG),
 * so both accept exactly the same messages.
 *
 * No I/O, no allocation, no clock.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>

#include "bmsg.h"
#include "lm_cur.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------------
 * Field walkers.
 */

/* A name or path: u16 length then the bytes, into a NUL-terminated array
 * of max + 1 bytes.  Decoding refuses lengths over max and NUL bytes. */
static void x_name(struct lm_cur *c, char *s, size_t max)
{
	uint16_t n = 0;
	size_t at;

	if (cur_enc(c))
		n = (uint16_t)strnlen(s, max + 1);
	x_u16(c, &n);
	if (c->err)
		return;
	if (!cur_enc(c) && n > max) {
		c->err = -EBADMSG;
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
static void x_payload(struct lm_cur *c, uint32_t *len, const uint8_t **data,
		      uint32_t max)
{
	size_t at;

	x_count(c, len, max);
	if (!cur_take(c, *len, &at))
		return;
	if (cur_enc(c)) {
		if (*len)
			memcpy(c->out + at, *data, *len);
	} else {
		*data = c->in + at;
	}
}

static void x_time(struct lm_cur *c, struct cvb_time *t)
{
	x_s64(c, &t->sec);
	x_u32(c, &t->nsec);
}

static void x_attr(struct lm_cur *c, struct cvb_attr *a)
{
	x_u64(c, &a->ino);
	x_u32(c, &a->mode);
	x_u32(c, &a->nlink);
	x_u32(c, &a->uid);
	x_u32(c, &a->gid);
	x_u64(c, &a->rdev);
	x_u64(c, &a->size);
	x_u64(c, &a->blocks);
	x_u32(c, &a->blksize);
	x_time(c, &a->atime);
	x_time(c, &a->mtime);
	x_time(c, &a->ctime);
}

static void x_cred(struct lm_cur *c, struct cvb_wcred *cr)
{
	x_u32(c, &cr->uid);
	x_u32(c, &cr->gid);
}

static void x_statfs(struct lm_cur *c, struct cvb_statfs *s)
{
	x_u64(c, &s->bsize);
	x_u64(c, &s->frsize);
	x_u64(c, &s->blocks);
	x_u64(c, &s->bfree);
	x_u64(c, &s->bavail);
	x_u64(c, &s->files);
	x_u64(c, &s->ffree);
	x_u64(c, &s->favail);
	x_u64(c, &s->fsid);
	x_u64(c, &s->flag);
	x_u32(c, &s->namemax);
}

/* ------------------------------------------------------------------------
 * Request bodies.
 */
static void x_q_hello(struct lm_cur *c, struct cvb_q_hello *h)
{
	x_u32(c, &h->node_id);
	x_u16(c, &h->proto_min);
	x_u16(c, &h->proto_max);
	x_raw(c, h->volume, CVB_UUID_LEN);
}

static void x_q_name(struct lm_cur *c, struct cvb_q_name *q)
{
	x_u64(c, &q->dir);
	x_name(c, q->name, CVB_NAME_MAX);
}

static void x_q_create(struct lm_cur *c, struct cvb_q_create *q, unsigned type)
{
	x_u64(c, &q->dir);
	x_name(c, q->name, CVB_NAME_MAX);
	x_u32(c, &q->mode);
	if (type == CVB_MKNOD)
		x_u64(c, &q->rdev);
	x_cred(c, &q->cred);
	if (type == CVB_SYMLINK)
		x_name(c, q->target, CVB_PATH_MAX);
}

static void x_q_rename(struct lm_cur *c, struct cvb_q_rename *q)
{
	x_u64(c, &q->dir);
	x_name(c, q->name, CVB_NAME_MAX);
	x_u64(c, &q->newdir);
	x_name(c, q->newname, CVB_NAME_MAX);
	x_u32(c, &q->flags);
}

static void x_q_xattr(struct lm_cur *c, struct cvb_q_xattr *q, unsigned type)
{
	x_u64(c, &q->ino);
	if (type != CVB_LISTXATTR)
		x_name(c, q->name, CVB_NAME_MAX);
	if (type == CVB_GETXATTR || type == CVB_LISTXATTR)
		x_u32(c, &q->size);
	if (type == CVB_SETXATTR) {
		x_u32(c, &q->flags);
		x_payload(c, &q->len, &q->value, CVB_XATTR_MAX);
	}
}

static void x_q_io(struct lm_cur *c, struct cvb_q_io *q, unsigned type)
{
	x_u64(c, &q->ino);
	x_u64(c, &q->gen);
	x_u64(c, &q->off);
	x_u64(c, &q->phys);
	if (type == CVB_WRITE)
		x_payload(c, &q->len, &q->data, CVB_DATA_MAX);
	else
		x_u32(c, &q->len);
}

static void x_q_misc(struct lm_cur *c, struct cvb_msg *m)
{
	switch (m->type) {
	case CVB_LINK:
		x_u64(c, &m->u.link.ino);
		x_u64(c, &m->u.link.newdir);
		x_name(c, m->u.link.newname, CVB_NAME_MAX);
		break;
	case CVB_SETATTR:
		x_u64(c, &m->u.setattr.ino);
		x_u32(c, &m->u.setattr.to_set);
		x_attr(c, &m->u.setattr.attr);
		break;
	case CVB_READDIR:
		x_u64(c, &m->u.readdir.dir);
		x_u64(c, &m->u.readdir.cookie);
		x_u32(c, &m->u.readdir.max);
		break;
	case CVB_MAP:
	case CVB_ALLOC:
		x_u64(c, &m->u.map.ino);
		x_u64(c, &m->u.map.off);
		x_u64(c, &m->u.map.len);
		x_u32(c, &m->u.map.max);
		break;
	case CVB_FALLOCATE:
		x_u64(c, &m->u.fallocate.ino);
		x_u32(c, &m->u.fallocate.mode);
		x_u64(c, &m->u.fallocate.off);
		x_u64(c, &m->u.fallocate.len);
		break;
	case CVB_SET_WRITTEN:
		x_u64(c, &m->u.written.ino);
		x_u64(c, &m->u.written.size);
		x_time(c, &m->u.written.mtime);
		break;
	case CVB_RECALL:
		x_u64(c, &m->u.recall.ino);
		x_u64(c, &m->u.recall.gen);
		break;
	}
}

static void x_request(struct lm_cur *c, struct cvb_msg *m)
{
	switch (m->type) {
	case CVB_HELLO:
		x_q_hello(c, &m->u.hello);
		break;
	case CVB_PING:
		x_u64(c, &m->u.ping);
		break;
	case CVB_GETATTR:
	case CVB_READLINK:
	case CVB_OPEN_REF:
	case CVB_CLOSE_REF:
		x_u64(c, &m->u.ino.ino);
		break;
	case CVB_LOOKUP:
	case CVB_UNLINK:
	case CVB_RMDIR:
		x_q_name(c, &m->u.name);
		break;
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
		x_q_create(c, &m->u.create, m->type);
		break;
	case CVB_RENAME:
		x_q_rename(c, &m->u.rename);
		break;
	case CVB_GETXATTR:
	case CVB_SETXATTR:
	case CVB_LISTXATTR:
	case CVB_REMOVEXATTR:
		x_q_xattr(c, &m->u.xattr, m->type);
		break;
	case CVB_READ:
	case CVB_WRITE:
		x_q_io(c, &m->u.io, m->type);
		break;
	case CVB_STATFS:
	case CVB_COMMIT:
		break;
	default:
		x_q_misc(c, m);
	}
}

/* ------------------------------------------------------------------------
 * Reply bodies (only when status is 0).
 */
static void x_r_readdir(struct lm_cur *c, struct cvb_r_readdir *r)
{
	x_count(c, &r->n, CVB_DIRENTS_MAX);
	x_u8(c, &r->eof);
	for (uint32_t i = 0; i < r->n && !c->err; i++) {
		x_u64(c, &r->ent[i].ino);
		x_u64(c, &r->ent[i].next);
		x_u8(c, &r->ent[i].dtype);
		x_name(c, r->ent[i].name, CVB_NAME_MAX);
	}
}

static void x_r_map(struct lm_cur *c, struct cvb_r_map *r)
{
	x_u64(c, &r->gen);
	x_count(c, &r->n, CVB_EXTENTS_MAX);
	for (uint32_t i = 0; i < r->n && !c->err; i++) {
		x_u64(c, &r->ext[i].off);
		x_u64(c, &r->ext[i].len);
		x_u64(c, &r->ext[i].phys);
	}
}

static void x_reply(struct lm_cur *c, struct cvb_msg *m, unsigned type)
{
	switch (type) {
	case CVB_HELLO:
		x_u16(c, &m->u.r_hello.version);
		x_u32(c, &m->u.r_hello.node_id);
		break;
	case CVB_PING:
		x_u64(c, &m->u.r_ping);
		break;
	case CVB_LOOKUP:
	case CVB_GETATTR:
	case CVB_SETATTR:
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
	case CVB_LINK:
		x_attr(c, &m->u.r_attr);
		break;
	case CVB_READLINK:
		x_name(c, m->u.r_readlink.target, CVB_PATH_MAX);
		break;
	case CVB_READDIR:
		x_r_readdir(c, &m->u.r_readdir);
		break;
	case CVB_STATFS:
		x_statfs(c, &m->u.r_statfs);
		break;
	case CVB_GETXATTR:
	case CVB_LISTXATTR:
		x_u32(c, &m->u.r_xattr.size);
		x_payload(c, &m->u.r_xattr.len, &m->u.r_xattr.value,
			  CVB_XATTR_MAX);
		break;
	case CVB_MAP:
	case CVB_ALLOC:
		x_r_map(c, &m->u.r_map);
		break;
	case CVB_READ:
		x_payload(c, &m->u.r_io.len, &m->u.r_io.data, CVB_DATA_MAX);
		break;
	case CVB_WRITE:
		x_u32(c, &m->u.r_io.len);
		break;
	default: /* the rest answer with the status alone */
		break;
	}
}

/* ------------------------------------------------------------------------
 * Names; a type is known if it has one.
 */
static const char *const type_names[] = {
	[CVB_HELLO] = "hello",
	[CVB_PING] = "ping",
	[CVB_LOOKUP] = "lookup",
	[CVB_GETATTR] = "getattr",
	[CVB_SETATTR] = "setattr",
	[CVB_MKNOD] = "mknod",
	[CVB_MKDIR] = "mkdir",
	[CVB_SYMLINK] = "symlink",
	[CVB_LINK] = "link",
	[CVB_UNLINK] = "unlink",
	[CVB_RMDIR] = "rmdir",
	[CVB_RENAME] = "rename",
	[CVB_READLINK] = "readlink",
	[CVB_READDIR] = "readdir",
	[CVB_STATFS] = "statfs",
	[CVB_GETXATTR] = "getxattr",
	[CVB_SETXATTR] = "setxattr",
	[CVB_LISTXATTR] = "listxattr",
	[CVB_REMOVEXATTR] = "removexattr",
	[CVB_OPEN_REF] = "open_ref",
	[CVB_CLOSE_REF] = "close_ref",
	[CVB_MAP] = "map",
	[CVB_ALLOC] = "alloc",
	[CVB_FALLOCATE] = "fallocate",
	[CVB_SET_WRITTEN] = "set_written",
	[CVB_COMMIT] = "commit",
	[CVB_READ] = "read",
	[CVB_WRITE] = "write",
	[CVB_RECALL] = "recall",
};

bool cvb_msg_type_known(unsigned type)
{
	return type < ARRAY_SIZE(type_names) && type_names[type];
}

const char *cvb_msg_type_name(unsigned type)
{
	type &= ~CVB_REPLY;
	return cvb_msg_type_known(type) ? type_names[type] : "unknown";
}

/* ------------------------------------------------------------------------
 * Value checks, run before encoding and after decoding.
 */
static bool name_ok(const char *s, size_t max, bool entry)
{
	size_t n = strnlen(s, max + 1);

	return n >= 1 && n <= max && !(entry && memchr(s, '/', n));
}

static bool empty(const char *s)
{
	return s[0] == '\0';
}

static bool time_ok(const struct cvb_time *t)
{
	return t->nsec < 1000000000u;
}

static bool attr_ok(const struct cvb_attr *a)
{
	return time_ok(&a->atime) && time_ok(&a->mtime) && time_ok(&a->ctime);
}

static bool create_ok(const struct cvb_q_create *q, unsigned type)
{
	if (!name_ok(q->name, CVB_NAME_MAX, true))
		return false;
	if (type == CVB_SYMLINK)
		return q->rdev == 0 && name_ok(q->target, CVB_PATH_MAX, false);
	return empty(q->target) && (type == CVB_MKNOD || q->rdev == 0);
}

static bool xattr_q_ok(const struct cvb_q_xattr *q, unsigned type)
{
	bool get = type == CVB_GETXATTR || type == CVB_LISTXATTR;

	if (type == CVB_LISTXATTR ? !empty(q->name)
				  : !name_ok(q->name, CVB_NAME_MAX, false))
		return false;
	if (get)
		return q->size <= CVB_XATTR_MAX && q->flags == 0 && q->len == 0;
	if (type == CVB_SETXATTR)
		return q->size == 0 && q->flags <= 3 && q->len <= CVB_XATTR_MAX;
	return q->size == 0 && q->flags == 0 && q->len == 0;
}

static bool request_ok(const struct cvb_msg *m)
{
	const struct cvb_q_hello *h = &m->u.hello;

	switch (m->type) {
	case CVB_HELLO:
		return h->proto_min >= 1 && h->proto_min <= h->proto_max;
	case CVB_LOOKUP:
	case CVB_UNLINK:
	case CVB_RMDIR:
		return name_ok(m->u.name.name, CVB_NAME_MAX, true);
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
		return create_ok(&m->u.create, m->type);
	case CVB_LINK:
		return name_ok(m->u.link.newname, CVB_NAME_MAX, true);
	case CVB_RENAME:
		return name_ok(m->u.rename.name, CVB_NAME_MAX, true) &&
		       name_ok(m->u.rename.newname, CVB_NAME_MAX, true) &&
		       m->u.rename.flags <= 2;
	case CVB_READDIR:
		return m->u.readdir.max >= 1 &&
		       m->u.readdir.max <= CVB_DIRENTS_MAX;
	case CVB_GETXATTR:
	case CVB_SETXATTR:
	case CVB_LISTXATTR:
	case CVB_REMOVEXATTR:
		return xattr_q_ok(&m->u.xattr, m->type);
	case CVB_MAP:
	case CVB_ALLOC:
		return m->u.map.max >= 1 && m->u.map.max <= CVB_EXTENTS_MAX;
	case CVB_SETATTR:
		return attr_ok(&m->u.setattr.attr);
	case CVB_SET_WRITTEN:
		return time_ok(&m->u.written.mtime);
	case CVB_READ:
	case CVB_WRITE:
		return m->u.io.len <= CVB_DATA_MAX;
	default:
		return true;
	}
}

static bool readdir_ok(const struct cvb_r_readdir *r)
{
	if (r->eof > 1 || r->n > CVB_DIRENTS_MAX)
		return false;
	for (uint32_t i = 0; i < r->n; i++)
		if (r->ent[i].dtype > 15 ||
		    !name_ok(r->ent[i].name, CVB_NAME_MAX, true))
			return false;
	return true;
}

static bool reply_ok(const struct cvb_msg *m, unsigned type)
{
	if (m->status > 0 || m->status < -4095)
		return false;
	if (m->status)
		return true;
	switch (type) {
	case CVB_HELLO:
		return m->u.r_hello.version >= 1;
	case CVB_LOOKUP:
	case CVB_GETATTR:
	case CVB_SETATTR:
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
	case CVB_LINK:
		return attr_ok(&m->u.r_attr);
	case CVB_READLINK:
		return name_ok(m->u.r_readlink.target, CVB_PATH_MAX, false);
	case CVB_READDIR:
		return readdir_ok(&m->u.r_readdir);
	case CVB_GETXATTR:
	case CVB_LISTXATTR:
		return m->u.r_xattr.len <= m->u.r_xattr.size &&
		       m->u.r_xattr.len <= CVB_XATTR_MAX;
	case CVB_MAP:
	case CVB_ALLOC:
		return m->u.r_map.n <= CVB_EXTENTS_MAX;
	case CVB_READ:
	case CVB_WRITE:
		return m->u.r_io.len <= CVB_DATA_MAX;
	default:
		return true;
	}
}

static bool msg_ok(const struct cvb_msg *m)
{
	unsigned type = m->type & ~CVB_REPLY;

	if (m->type & CVB_REPLY)
		return reply_ok(m, type);
	return m->status == 0 && request_ok(m);
}

/* ------------------------------------------------------------------------
 * Header and the whole message.
 */
static void walk_body(struct lm_cur *c, struct cvb_msg *m)
{
	if (!(m->type & CVB_REPLY))
		x_request(c, m);
	else if (m->status == 0)
		x_reply(c, m, m->type & ~CVB_REPLY);
}

static unsigned version_for(unsigned type, unsigned asked)
{
	if ((type & ~CVB_REPLY) == CVB_HELLO)
		return CVB_VERSION_HELLO;
	return asked ? asked : CVB_VERSION_MAX;
}

static bool version_ok(unsigned type, unsigned v)
{
	if ((type & ~CVB_REPLY) == CVB_HELLO)
		return v == CVB_VERSION_HELLO;
	return v >= CVB_VERSION_MIN && v <= CVB_VERSION_MAX;
}

static void x_header(struct lm_cur *c, struct cvb_msg *m, uint32_t *magic,
		     uint32_t *len)
{
	x_u32(c, magic);
	x_u16(c, &m->version);
	x_u16(c, &m->type);
	x_u32(c, len);
	x_s32(c, &m->status);
	x_u64(c, &m->req_id);
}

int cvb_msg_encode(const struct cvb_msg *m, uint8_t *buf, size_t cap)
{
	struct cvb_msg h;
	struct lm_cur c = { .out = buf, .cap = cap };
	uint32_t magic = CVB_MAGIC, len = 0;

	if (!m || !buf || !cvb_msg_type_known(m->type & ~CVB_REPLY) ||
	    !msg_ok(m))
		return -EINVAL;
	h = (struct cvb_msg){ .type = m->type,
			      .status = m->status,
			      .req_id = m->req_id };
	h.version = (uint16_t)version_for(m->type, m->version);
	if (!version_ok(m->type, h.version))
		return -EINVAL;
	x_header(&c, &h, &magic, &len);
	/* Encoding only reads *m: the walkers write fields when decoding. */
	walk_body(&c, (struct cvb_msg *)m);
	if (c.err)
		return c.err;
	if (c.off > CVB_MSG_MAX)
		return -EINVAL;
	lm_put_le(buf + 8, c.off, 4); /* the length, now known */
	return (int)c.off;
}

int cvb_msg_frame(const uint8_t *hdr, size_t len, size_t *msglen)
{
	uint64_t n;

	if (len < CVB_HDR_LEN)
		return -EBADMSG;
	if (lm_get_le(hdr, 4) != CVB_MAGIC)
		return -EPROTO;
	n = lm_get_le(hdr + 8, 4);
	if (n < CVB_HDR_LEN || n > CVB_MSG_MAX)
		return -EBADMSG;
	*msglen = (size_t)n;
	return 0;
}

void cvb_msg_peek(const uint8_t *hdr, uint64_t *req_id, uint16_t *type)
{
	*type = (uint16_t)lm_get_le(hdr + 6, 2);
	*req_id = lm_get_le(hdr + 16, 8);
}

static int decode_header(struct lm_cur *c, size_t len, struct cvb_msg *m)
{
	uint32_t magic = 0, wlen = 0;

	if (len < CVB_HDR_LEN)
		return -EBADMSG;
	x_header(c, m, &magic, &wlen);
	if (magic != CVB_MAGIC)
		return -EPROTO;
	if (!cvb_msg_type_known(m->type & ~CVB_REPLY))
		return -EPROTO;
	if (!version_ok(m->type, m->version))
		return -EPROTONOSUPPORT;
	if (wlen != len || len > CVB_MSG_MAX)
		return -EBADMSG;
	return 0;
}

int cvb_msg_decode(const uint8_t *buf, size_t len, struct cvb_msg *m)
{
	struct lm_cur c = { .in = buf, .cap = len };
	int rc;

	memset(m, 0, sizeof(*m));
	rc = decode_header(&c, len, m);
	if (rc)
		goto fail;
	rc = -EBADMSG;
	/* a request's status is 0: checked before its body is read */
	if (!(m->type & CVB_REPLY) && m->status)
		goto fail;
	walk_body(&c, m);
	if (c.err || c.off != len || !msg_ok(m))
		goto fail;
	return 0;
fail:
	memset(m, 0, sizeof(*m));
	return rc;
}

/* Fixed parts of any body fit in this; variable parts are added. */
#define CVB_FIXED_BOUND 8192

size_t cvb_msg_bound(const struct cvb_msg *m)
{
	unsigned type = m->type & ~CVB_REPLY;
	size_t n = CVB_HDR_LEN + CVB_FIXED_BOUND;

	if (!(m->type & CVB_REPLY)) {
		if (type == CVB_SETXATTR)
			n += m->u.xattr.len;
		if (type == CVB_WRITE)
			n += m->u.io.len;
		return n;
	}
	if (m->status)
		return n;
	if (type == CVB_READDIR)
		n += (size_t)CVB_DIRENTS_MAX * (19 + CVB_NAME_MAX);
	if (type == CVB_GETXATTR || type == CVB_LISTXATTR)
		n += m->u.r_xattr.len;
	if (type == CVB_MAP || type == CVB_ALLOC)
		n += (size_t)CVB_EXTENTS_MAX * 24;
	if (type == CVB_READ)
		n += m->u.r_io.len;
	return n;
}

/* ------------------------------------------------------------------------
 * struct stat and statvfs to and from the wire's fixed-width forms.
 */
void cvb_attr_from_stat(struct cvb_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = st->st_rdev;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->blksize = (uint32_t)st->st_blksize;
	a->atime = (struct cvb_time){ st->st_atim.tv_sec,
				      (uint32_t)st->st_atim.tv_nsec };
	a->mtime = (struct cvb_time){ st->st_mtim.tv_sec,
				      (uint32_t)st->st_mtim.tv_nsec };
	a->ctime = (struct cvb_time){ st->st_ctim.tv_sec,
				      (uint32_t)st->st_ctim.tv_nsec };
}

void cvb_attr_to_stat(const struct cvb_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_blksize = (blksize_t)a->blksize;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

void cvb_statfs_from(struct cvb_statfs *w, const struct statvfs *st)
{
	*w = (struct cvb_statfs){
		.bsize = st->f_bsize,
		.frsize = st->f_frsize,
		.blocks = st->f_blocks,
		.bfree = st->f_bfree,
		.bavail = st->f_bavail,
		.files = st->f_files,
		.ffree = st->f_ffree,
		.favail = st->f_favail,
		.fsid = st->f_fsid,
		.flag = st->f_flag,
		.namemax = (uint32_t)st->f_namemax,
	};
}

void cvb_statfs_to(const struct cvb_statfs *w, struct statvfs *st)
{
	memset(st, 0, sizeof(*st));
	st->f_bsize = w->bsize;
	st->f_frsize = w->frsize;
	st->f_blocks = w->blocks;
	st->f_bfree = w->bfree;
	st->f_bavail = w->bavail;
	st->f_files = w->files;
	st->f_ffree = w->ffree;
	st->f_favail = w->favail;
	st->f_fsid = w->fsid;
	st->f_flag = w->flag;
	st->f_namemax = w->namemax;
}
