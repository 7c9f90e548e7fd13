// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_bmsg.c - unit tests of the coordinator channel's codec
 * (csvfs/backends/block/bmsg.c): a round trip of the request, the reply
 * and an error reply of every message type, each at its largest
 * (longest names, full lists, 1 MiB payloads); every truncation of every
 * message refused; oversized names, values, counts and payloads refused
 * by the encoder and, hand-made on the wire, by the decoder; garbage
 * (bad magic, type, version, status, trailing bytes, NUL or '/' in
 * names, random bytes) refused without reading outside the input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bmsg.h"
#include "bmsg_samples.h"

static uint8_t *wire, *wire2;

static int setup(void **state)
{
	(void)state;
	sample_fill_payload();
	wire = malloc(CVB_MSG_MAX);
	wire2 = malloc(CVB_MSG_MAX);
	return wire && wire2 ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	free(wire);
	free(wire2);
	return 0;
}

/* Payload pointers differ between a message and its decoding. */
static void null_payloads(struct cvb_msg *m)
{
	unsigned type = m->type & ~CVB_REPLY;

	if (!(m->type & CVB_REPLY) && type == CVB_SETXATTR)
		m->u.xattr.value = NULL;
	if (!(m->type & CVB_REPLY) && type == CVB_WRITE)
		m->u.io.data = NULL;
	if (m->type & CVB_REPLY &&
	    (type == CVB_GETXATTR || type == CVB_LISTXATTR))
		m->u.r_xattr.value = NULL;
	if (m->type & CVB_REPLY && type == CVB_READ)
		m->u.r_io.data = NULL;
}

static const uint8_t *payload_of(const struct cvb_msg *m, uint32_t *len)
{
	unsigned type = m->type & ~CVB_REPLY;

	*len = 0;
	if (m->status)
		return NULL;
	if (!(m->type & CVB_REPLY) && type == CVB_SETXATTR)
		return *len = m->u.xattr.len, m->u.xattr.value;
	if (!(m->type & CVB_REPLY) && type == CVB_WRITE)
		return *len = m->u.io.len, m->u.io.data;
	if (m->type & CVB_REPLY &&
	    (type == CVB_GETXATTR || type == CVB_LISTXATTR))
		return *len = m->u.r_xattr.len, m->u.r_xattr.value;
	if (m->type & CVB_REPLY && type == CVB_READ)
		return *len = m->u.r_io.len, m->u.r_io.data;
	return NULL;
}

/* Encode m, decode, compare structs and payload, re-encode to the same
 * bytes; returns the length. */
static int round_trip(struct cvb_msg *m)
{
	static struct cvb_msg d, a, b;
	const uint8_t *p;
	uint32_t plen, dlen;
	int len, len2;

	len = cvb_msg_encode(m, wire, CVB_MSG_MAX);
	assert_true(len >= CVB_HDR_LEN);
	assert_true((size_t)len <= cvb_msg_bound(m));
	assert_int_equal(cvb_msg_decode(wire, (size_t)len, &d), 0);
	assert_int_equal(d.version, CVB_VERSION_MAX);
	p = payload_of(&d, &dlen);
	(void)payload_of(m, &plen);
	assert_int_equal(dlen, plen);
	if (plen) {
		assert_true(p >= wire && p + plen <= wire + len);
		assert_memory_equal(p, sample_payload, plen);
	}
	a = *m;
	b = d;
	a.version = b.version;
	null_payloads(&a);
	null_payloads(&b);
	assert_memory_equal(&a, &b, sizeof(a));
	len2 = cvb_msg_encode(&d, wire2, CVB_MSG_MAX);
	assert_int_equal(len2, len);
	assert_memory_equal(wire, wire2, (size_t)len);
	return len;
}

static void test_round_trips(void **state)
{
	struct cvb_msg *m = malloc(sizeof(*m));

	(void)state;
	for (size_t i = 0; i < N_SAMPLE_TYPES; i++) {
		sample_request(sample_types[i], m);
		round_trip(m);
		sample_reply(sample_types[i], m);
		round_trip(m);
		sample_reply(sample_types[i], m);
		memset(&m->u, 0, sizeof(m->u));
		m->status = -ENOENT;
		assert_int_equal(round_trip(m), CVB_HDR_LEN);
		assert_string_not_equal(cvb_msg_type_name(sample_types[i]),
					"unknown");
	}
	/* the largest messages fit */
	sample_request(CVB_WRITE, m);
	assert_true((unsigned)round_trip(m) <= CVB_MSG_MAX);
	sample_reply(CVB_READ, m);
	assert_true((unsigned)round_trip(m) > CVB_DATA_MAX);
	free(m);
}

/* Every proper prefix of every message is refused. */
static void test_truncated(void **state)
{
	struct cvb_msg *m = malloc(sizeof(*m)), *d = malloc(sizeof(*d));
	uint8_t *cut;
	int len;

	(void)state;
	for (size_t i = 0; i < N_SAMPLE_TYPES; i++) {
		for (int r = 0; r < 2; r++) {
			if (r)
				sample_reply(sample_types[i], m);
			else
				sample_request(sample_types[i], m);
			len = cvb_msg_encode(m, wire, CVB_MSG_MAX);
			assert_true(len > 0);
			/* an exact-size copy so ASan sees any overread */
			for (int n = 0; n < len; n += n < 512 ? 1 : 509) {
				cut = malloc((size_t)n + 1);
				memcpy(cut, wire, (size_t)n);
				assert_int_equal(
					cvb_msg_decode(cut, (size_t)n, d),
					-EBADMSG);
				/* and with the length field telling n */
				if (n >= CVB_HDR_LEN) {
					cut[8] = (uint8_t)n;
					cut[9] = (uint8_t)(n >> 8);
					cut[10] = (uint8_t)(n >> 16);
					cut[11] = (uint8_t)(n >> 24);
					assert_int_equal(
						cvb_msg_decode(cut, (size_t)n,
							       d),
						-EBADMSG);
				}
				free(cut);
			}
		}
	}
	free(m);
	free(d);
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* A hand-made message: header of type, then body; returns its length. */
static size_t craft(uint8_t *buf, uint16_t type, const uint8_t *body,
		    size_t blen)
{
	memset(buf, 0, CVB_HDR_LEN);
	put_le(buf, CVB_MAGIC, 4);
	put_le(buf + 4, 1, 2);
	put_le(buf + 6, type, 2);
	put_le(buf + 8, CVB_HDR_LEN + blen, 4);
	put_le(buf + 16, 5, 8);
	memcpy(buf + CVB_HDR_LEN, body, blen);
	return CVB_HDR_LEN + blen;
}

static void test_oversized_encode(void **state)
{
	struct cvb_msg *m = malloc(sizeof(*m));

	(void)state;
	sample_request(CVB_LOOKUP, m);
	memset(m->u.name.name, 'x', CVB_NAME_MAX + 1); /* no NUL in range */
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_request(CVB_SETXATTR, m);
	m->u.xattr.len = CVB_XATTR_MAX + 1;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_request(CVB_WRITE, m);
	m->u.io.len = CVB_DATA_MAX + 1;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_reply(CVB_MAP, m);
	m->u.r_map.n = CVB_EXTENTS_MAX + 1;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_reply(CVB_READDIR, m);
	m->u.r_readdir.n = CVB_DIRENTS_MAX + 1;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_request(CVB_READDIR, m);
	m->u.readdir.max = 0;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_request(CVB_RENAME, m);
	strcpy(m->u.rename.newname, "a/b");
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_request(CVB_MKDIR, m);
	m->u.create.name[0] = '\0';
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_reply(CVB_GETATTR, m);
	m->u.r_attr.mtime.nsec = 1000000000;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_reply(CVB_GETATTR, m);
	m->status = 1;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	sample_request(CVB_GETATTR, m);
	m->status = -EIO; /* requests carry no status */
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	m->status = 0;
	m->type = 99;
	assert_int_equal(cvb_msg_encode(m, wire, CVB_MSG_MAX), -EINVAL);
	/* too small a buffer */
	sample_request(CVB_LOOKUP, m);
	assert_int_equal(cvb_msg_encode(m, wire, 30), -ENOSPC);
	free(m);
}

static void test_oversized_decode(void **state)
{
	static uint8_t body[CVB_DATA_MAX + 64];
	struct cvb_msg *d = malloc(sizeof(*d));
	size_t len;

	(void)state;
	/* lookup with a 256-byte name */
	put_le(body, 2, 8);
	put_le(body + 8, 256, 2);
	memset(body + 10, 'a', 256);
	len = craft(wire, CVB_LOOKUP, body, 10 + 256);
	assert_int_equal(cvb_msg_decode(wire, len, d), -EBADMSG);
	/* ... 255 is fine */
	put_le(body + 8, 255, 2);
	len = craft(wire, CVB_LOOKUP, body, 10 + 255);
	assert_int_equal(cvb_msg_decode(wire, len, d), 0);
	/* ... but not with a NUL or a '/' in it, nor empty */
	body[10 + 7] = '\0';
	assert_int_equal(cvb_msg_decode(wire,
					craft(wire, CVB_LOOKUP, body, 10 + 255),
					d),
			 -EBADMSG);
	body[10 + 7] = '/';
	assert_int_equal(cvb_msg_decode(wire,
					craft(wire, CVB_LOOKUP, body, 10 + 255),
					d),
			 -EBADMSG);
	put_le(body + 8, 0, 2);
	assert_int_equal(
		cvb_msg_decode(wire, craft(wire, CVB_LOOKUP, body, 10), d),
		-EBADMSG);
	/* setxattr with a 64 KiB + 1 value */
	put_le(body, 17, 8);
	put_le(body + 8, 1, 2);
	body[10] = 'u';
	put_le(body + 11, 0, 4);
	put_le(body + 15, CVB_XATTR_MAX + 1, 4);
	len = craft(wire, CVB_SETXATTR, body, 19 + CVB_XATTR_MAX + 1);
	assert_int_equal(cvb_msg_decode(wire, len, d), -EBADMSG);
	/* a map reply with 257 extents */
	memset(body, 0, 12);
	put_le(body + 8, CVB_EXTENTS_MAX + 1, 4);
	len = craft(wire, CVB_MAP | CVB_REPLY, body,
		    12 + 24 * (CVB_EXTENTS_MAX + 1));
	assert_int_equal(cvb_msg_decode(wire, len, d), -EBADMSG);
	/* a count far past the input */
	put_le(body + 8, 0xffffffffu, 4);
	len = craft(wire, CVB_MAP | CVB_REPLY, body, 12);
	assert_int_equal(cvb_msg_decode(wire, len, d), -EBADMSG);
	/* a read reply claiming 1 MiB + 1 */
	put_le(body, CVB_DATA_MAX + 1, 4);
	len = craft(wire, CVB_READ | CVB_REPLY, body, 4 + CVB_DATA_MAX + 1);
	assert_int_equal(cvb_msg_decode(wire, len, d), -EBADMSG);
	/* a read request asking for more than 1 MiB */
	memset(body, 0, 32);
	put_le(body + 32, CVB_DATA_MAX + 1, 4);
	assert_int_equal(
		cvb_msg_decode(wire, craft(wire, CVB_READ, body, 36), d),
		-EBADMSG);
	free(d);
}

static void test_frame(void **state)
{
	struct cvb_msg m;
	size_t n = 0;
	int len;

	(void)state;
	sample_request(CVB_GETATTR, &m);
	len = cvb_msg_encode(&m, wire, CVB_MSG_MAX);
	assert_int_equal(cvb_msg_frame(wire, CVB_HDR_LEN, &n), 0);
	assert_int_equal(n, (size_t)len);
	assert_int_equal(cvb_msg_frame(wire, CVB_HDR_LEN - 1, &n), -EBADMSG);
	put_le(wire + 8, CVB_MSG_MAX + 1, 4);
	assert_int_equal(cvb_msg_frame(wire, CVB_HDR_LEN, &n), -EBADMSG);
	put_le(wire + 8, CVB_HDR_LEN - 1, 4);
	assert_int_equal(cvb_msg_frame(wire, CVB_HDR_LEN, &n), -EBADMSG);
	wire[0] ^= 1;
	assert_int_equal(cvb_msg_frame(wire, CVB_HDR_LEN, &n), -EPROTO);
}

static void test_garbage(void **state)
{
	struct cvb_msg m, *d = malloc(sizeof(*d));
	uint64_t id;
	uint16_t type;
	int len;

	(void)state;
	sample_request(CVB_GETATTR, &m);
	len = cvb_msg_encode(&m, wire, CVB_MSG_MAX);
	cvb_msg_peek(wire, &id, &type);
	assert_int_equal(id, m.req_id);
	assert_int_equal(type, CVB_GETATTR);
#define MUTATE(off, val, n, want)                                              \
	do {                                                                   \
		memcpy(wire2, wire, (size_t)len);                              \
		put_le(wire2 + (off), (val), (n));                             \
		assert_int_equal(cvb_msg_decode(wire2, (size_t)len, d),        \
				 (want));                                      \
	} while (0)
	MUTATE(0, 0x12345678, 4, -EPROTO);     /* magic */
	MUTATE(6, 99, 2, -EPROTO);	       /* type */
	MUTATE(6, CVB_REPLY | 99, 2, -EPROTO); /* reply type */
	MUTATE(4, 2, 2, -EPROTONOSUPPORT);     /* version */
	MUTATE(4, 0, 2, -EPROTONOSUPPORT);
	MUTATE(8, (uint64_t)len + 1, 4, -EBADMSG); /* length */
	MUTATE(12, (uint32_t)-EIO, 4, -EBADMSG);   /* status */
	/* replies: status positive or below -4095; an error with a body */
	sample_reply(CVB_GETATTR, &m);
	len = cvb_msg_encode(&m, wire, CVB_MSG_MAX);
	MUTATE(12, 1, 4, -EBADMSG);
	MUTATE(12, (uint32_t)-4096, 4, -EBADMSG);
	MUTATE(12, (uint32_t)-ENOENT, 4, -EBADMSG);
	/* a trailing byte */
	memcpy(wire2, wire, (size_t)len);
	wire2[len] = 0;
	put_le(wire2 + 8, (uint64_t)len + 1, 4);
	assert_int_equal(cvb_msg_decode(wire2, (size_t)len + 1, d), -EBADMSG);
	/* a readdir entry with a bad dtype */
	sample_reply(CVB_READDIR, &m);
	m.u.r_readdir.n = 1;
	len = cvb_msg_encode(&m, wire, CVB_MSG_MAX);
	MUTATE(24 + 5 + 16, 16, 1, -EBADMSG);
#undef MUTATE
	free(d);
}

/* Random bytes behind a valid header: refused or a canonical message. */
static void test_random(void **state)
{
	struct cvb_msg *d = malloc(sizeof(*d));
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t blen;
	int rc, ok = 0;

	(void)state;
	for (int i = 0; i < 200000; i++) {
		uint8_t body[64];

		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		blen = x % sizeof(body);
		for (size_t j = 0; j < blen; j++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			body[j] = (uint8_t)(x % 4 ? x & 3 : x >> 8);
		}
		craft(wire,
		      sample_types[(x >> 20) % N_SAMPLE_TYPES] |
			      (x >> 40 & 1 ? CVB_REPLY : 0),
		      body, blen);
		put_le(wire + 12, 0, 4);
		rc = cvb_msg_decode(wire, CVB_HDR_LEN + blen, d);
		if (rc) {
			assert_int_equal(rc, -EBADMSG);
			continue;
		}
		ok++;
		assert_int_equal(cvb_msg_encode(d, wire2, CVB_MSG_MAX),
				 (int)(CVB_HDR_LEN + blen));
		assert_memory_equal(wire, wire2, CVB_HDR_LEN + blen);
	}
	assert_true(ok > 100); /* the generator does reach valid bodies */
	free(d);
}

static void test_stat_conversion(void **state)
{
	struct stat st, st2;
	struct statvfs sv, sv2;
	struct cvb_attr a;
	struct cvb_statfs w;

	(void)state;
	memset(&st, 0, sizeof(st));
	st.st_ino = 1234567890123ull;
	st.st_mode = 0100640;
	st.st_nlink = 3;
	st.st_uid = 5;
	st.st_gid = 6;
	st.st_rdev = 7;
	st.st_size = 1ll << 42;
	st.st_blocks = 99;
	st.st_blksize = 4096;
	st.st_mtim.tv_sec = 1700000000;
	st.st_mtim.tv_nsec = 123;
	cvb_attr_from_stat(&a, &st);
	cvb_attr_to_stat(&a, &st2);
	assert_memory_equal(&st, &st2, sizeof(st));
	memset(&sv, 0, sizeof(sv));
	sv.f_bsize = 4096;
	sv.f_blocks = 1ull << 40;
	sv.f_namemax = 255;
	sv.f_fsid = 42;
	cvb_statfs_from(&w, &sv);
	cvb_statfs_to(&w, &sv2);
	assert_memory_equal(&sv, &sv2, sizeof(sv));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_oversized_encode),
		cmocka_unit_test(test_oversized_decode),
		cmocka_unit_test(test_frame),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_stat_conversion),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
