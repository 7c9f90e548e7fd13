// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_rproto.c - unit tests of the replication protocol's codec
 * (replica/proto.c) and of the client's token bucket: a round trip of
 * every request, its reply and an error reply, each at its largest (full
 * file lists with the longest names, 1 MiB extents, a full point list);
 * every truncation refused; values a decoder must refuse refused by the
 * encoder and, patched on the wire, by the decoder; file names with
 * "..", "." or a leading '/' refused; random bytes refused or decoded
 * canonically; the bucket's pacing against a virtual clock.
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

#include "client.h"
#include "proto.h"

static uint8_t *wire, *wire2, *data;
static struct cvr_msg *m, *d;
static struct cvr_file files[CVR_FILES_MAX];
static struct cvr_file_hash hashes[CVR_FILES_MAX];
static struct cvr_point_info points[CVR_POINTS_MAX];

static int setup(void **state)
{
	(void)state;
	wire = malloc(CVR_MSG_MAX);
	wire2 = malloc(CVR_MSG_MAX);
	data = malloc(CVR_DATA_MAX);
	m = calloc(1, sizeof(*m));
	d = calloc(1, sizeof(*d));
	if (!wire || !wire2 || !data || !m || !d)
		return -1;
	for (size_t i = 0; i < CVR_DATA_MAX; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	for (unsigned i = 0; i < CVR_FILES_MAX; i++) {
		char pre[16];

		files[i].file_id = 1000 + i;
		files[i].size = (uint64_t)i << 30;
		memset(files[i].name, 'a' + i % 26, CVR_NAME_MAX);
		snprintf(pre, sizeof(pre), "vm%03u/", i);
		memcpy(files[i].name, pre, strlen(pre));
		files[i].name[CVR_NAME_MAX - 1] = 'z';
		files[i].name[CVR_NAME_MAX] = '\0';
		hashes[i].file_id = 1000 + i;
		hashes[i].size = i;
		hashes[i].kind = i % 3;
		if (hashes[i].kind)
			memset(hashes[i].sha256, (int)i + 1, CVR_SHA_LEN);
	}
	for (unsigned i = 0; i < CVR_POINTS_MAX; i++)
		points[i] = (struct cvr_point_info){ .point = 5 + 2 * i,
						     .time_ns = -1 + i,
						     .bytes = i * 99,
						     .nfiles = i % 7 };
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	free(wire);
	free(wire2);
	free(data);
	free(m);
	free(d);
	return 0;
}

/* Encode, decode, encode again: same bytes; every truncation refused. */
static int round_trip(const struct cvr_msg *msg)
{
	int n = cvr_msg_encode(msg, wire, CVR_MSG_MAX), n2;
	size_t framed;

	assert_true(n >= CVR_HDR_LEN);
	assert_true((size_t)n <= cvr_msg_bound(msg));
	assert_int_equal(cvr_msg_frame(wire, (size_t)n, &framed), 0);
	assert_int_equal(framed, (size_t)n);
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), 0);
	assert_int_equal(d->type, msg->type);
	assert_int_equal(d->seq, msg->seq);
	assert_int_equal(d->status, msg->status);
	n2 = cvr_msg_encode(d, wire2, CVR_MSG_MAX);
	assert_int_equal(n2, n);
	assert_memory_equal(wire, wire2, (size_t)n);
	/* every shorter prefix, its length patched to match, is refused */
	for (int cut = n - 1; cut >= CVR_HDR_LEN;
	     cut -= (cut > 4096 ? 4093 : 1)) {
		memcpy(wire2, wire, (size_t)cut);
		wire2[8] = (uint8_t)cut;
		wire2[9] = (uint8_t)(cut >> 8);
		wire2[10] = (uint8_t)(cut >> 16);
		wire2[11] = (uint8_t)(cut >> 24);
		assert_int_equal(cvr_msg_decode(wire2, (size_t)cut, d),
				 -EBADMSG);
	}
	assert_int_equal(cvr_msg_decode(wire, (size_t)n - 1, d), -EBADMSG);
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d),
			 0); /* for the caller */
	return n;
}

static void set(unsigned type, int32_t status)
{
	memset(m, 0, sizeof(*m));
	m->type = (uint16_t)type;
	m->status = status;
	m->seq = 0x1122334455667788ull;
}

static void test_requests(void **state)
{
	(void)state;
	set(CVR_HELLO, 0);
	m->u.hello = (struct cvr_q_hello){ .proto_min = 1,
					   .proto_max = 1,
					   .group = 7,
					   .generation = 3,
					   .base_generation = 2 };
	memset(m->u.hello.primary, 0xab, CVR_ID_LEN);
	memset(m->u.hello.name, 'p', CVR_NAME_MAX);
	round_trip(m);
	assert_memory_equal(d->u.hello.primary, m->u.hello.primary, CVR_ID_LEN);
	assert_int_equal(strlen(d->u.hello.name), CVR_NAME_MAX);

	set(CVR_PING, 0);
	m->u.ping = 99;
	round_trip(m);
	assert_int_equal(d->u.ping, 99);

	set(CVR_POINT_BEGIN, 0);
	m->u.begin = (struct cvr_q_point_begin){ .group = 7,
						 .point = 10,
						 .base_point = 9,
						 .time_ns = -5,
						 .nfiles = CVR_FILES_MAX,
						 .files = files };
	round_trip(m);
	assert_int_equal(d->u.begin.nfiles, CVR_FILES_MAX);
	assert_string_equal(d->u.begin.files[200].name, files[200].name);
	assert_int_equal(d->u.begin.files[255].size, files[255].size);
	assert_int_equal(d->u.begin.time_ns, -5);

	set(CVR_EXTENT, 0);
	m->u.op = (struct cvr_q_op){ .point = 10,
				     .op = 4,
				     .file_id = 1001,
				     .offset = 1ull << 40,
				     .len = CVR_DATA_MAX,
				     .data = data };
	memset(m->u.op.sha256, 0x5a, CVR_SHA_LEN);
	assert_true(round_trip(m) > (int)CVR_DATA_MAX);
	assert_memory_equal(d->u.op.data, data, CVR_DATA_MAX);
	assert_true(d->u.op.data >= wire && d->u.op.data < wire + CVR_MSG_MAX);

	set(CVR_TRUNCATE, 0);
	m->u.op = (struct cvr_q_op){
		.point = 10, .op = 5, .file_id = 1001, .offset = 12345
	};
	round_trip(m);
	assert_int_equal(d->u.op.offset, 12345);

	set(CVR_PUNCH, 0);
	m->u.op = (struct cvr_q_op){ .point = 10,
				     .op = 6,
				     .file_id = 1001,
				     .offset = 4096,
				     .len = 1 << 20 };
	round_trip(m);
	assert_int_equal(d->u.op.len, 1 << 20);

	set(CVR_POINT_END, 0);
	m->u.end = (struct cvr_q_point_end){
		.point = 10, .nops = 7, .nfiles = CVR_FILES_MAX, .files = hashes
	};
	round_trip(m);
	assert_memory_equal(d->u.end.files[77].sha256, hashes[77].sha256,
			    CVR_SHA_LEN);

	set(CVR_STATUS, 0);
	m->u.status.group = 7;
	round_trip(m);

	set(CVR_HASHES, 0);
	m->u.hashes = (struct cvr_q_hashes){ .group = 7,
					     .file_id = 1001,
					     .offset = 3ull << 20,
					     .chunk = 1 << 20,
					     .count = CVR_HASHES_MAX };
	round_trip(m);
	assert_int_equal(d->u.hashes.count, CVR_HASHES_MAX);
	m->u.hashes.offset += 4096; /* not on a chunk boundary */
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	m->u.hashes.offset -= 4096;
	m->u.hashes.chunk = 3 << 20; /* not a power of two */
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	m->u.hashes.chunk = 1 << 20;
	m->u.hashes.count = CVR_HASHES_MAX + 1;
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
}

static void test_replies(void **state)
{
	static const unsigned acks[] = { CVR_POINT_BEGIN, CVR_EXTENT,
					 CVR_TRUNCATE, CVR_PUNCH,
					 CVR_POINT_END };

	(void)state;
	set(CVR_HELLO | CVR_REPLY, 0);
	m->u.r_hello = (struct cvr_r_hello){ .version = 1,
					     .generation = 4,
					     .last_point = 9,
					     .open_point = 10,
					     .open_next_op = 3 };
	round_trip(m);
	assert_int_equal(d->u.r_hello.open_next_op, 3);

	for (unsigned i = 0; i < sizeof(acks) / sizeof(acks[0]); i++) {
		set(acks[i] | CVR_REPLY, 0);
		m->u.r_ack = (struct cvr_r_ack){ .point = 10,
						 .next_op = i,
						 .applied = acks[i] ==
							    CVR_POINT_END };
		round_trip(m);
		assert_int_equal(d->u.r_ack.next_op, i);
		/* an error reply of each: the text and nothing else */
		set(acks[i] | CVR_REPLY, CVR_E_HASH);
		memset(m->u.r_error, 'e', CVR_TEXT_MAX);
		round_trip(m);
		assert_int_equal(strlen(d->u.r_error), CVR_TEXT_MAX);
	}

	set(CVR_STATUS | CVR_REPLY, 0);
	m->u.r_status = (struct cvr_r_status){ .group = 7,
					       .generation = 2,
					       .last_point = 4099,
					       .promoted = 1,
					       .npoints = CVR_POINTS_MAX,
					       .points = points };
	round_trip(m);
	assert_int_equal(d->u.r_status.points[2047].point, points[2047].point);
	set(CVR_HASHES | CVR_REPLY, 0);
	m->u.r_hashes =
		(struct cvr_r_hashes){ .file_id = 1001,
				       .size = 12345,
				       .count = CVR_HASHES_MAX,
				       .sha256 =
					       (uint8_t(*)[CVR_SHA_LEN])data };
	round_trip(m);
	assert_memory_equal(d->u.r_hashes.sha256[1023], data + 1023 * 32, 32);

	set(CVR_STATUS | CVR_REPLY, -ENOENT);
	round_trip(m);
	assert_string_equal(d->u.r_error, "");
}

static void test_bad_values(void **state)
{
	(void)state;
	set(CVR_POINT_BEGIN, 0);
	m->u.begin = (struct cvr_q_point_begin){ .group = 7,
						 .point = 10,
						 .base_point = 10,
						 .nfiles = 1,
						 .files = files };
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	m->u.begin.base_point = 0;
	m->u.begin.nfiles = 0;
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	m->u.begin.nfiles = 2;
	files[1].file_id = files[0].file_id; /* duplicate ids */
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	files[1].file_id = 1001;

	set(CVR_EXTENT, 0);
	m->u.op = (struct cvr_q_op){ .point = 1,
				     .len = CVR_DATA_MAX + 1,
				     .data = data };
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	m->u.op.len = 0;
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	m->u.op.len = 10;
	m->u.op.offset = UINT64_MAX - 5;
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);

	set(CVR_TRUNCATE, 0);
	m->u.op = (struct cvr_q_op){ .point = 1, .len = 1 };
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);

	set(CVR_HELLO, 0);
	m->u.hello = (struct cvr_q_hello){
		.proto_min = 2, .proto_max = 1, .group = 1, .generation = 1
	};
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);

	set(CVR_PING | CVR_REPLY, -4500); /* between errno and CVR_E_* */
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	set(CVR_PING, -1); /* a request with a status */
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	set(CVR_TRUNCATE | CVR_REPLY, 0);
	m->u.r_ack.applied = 1; /* only POINT_END applies */
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
	set(99, 0);
	assert_int_equal(cvr_msg_encode(m, wire, CVR_MSG_MAX), -EINVAL);
}

/* Values patched on the wire: the decoder refuses them. */
static void test_bad_wire(void **state)
{
	int n;

	(void)state;
	set(CVR_POINT_BEGIN, 0);
	strcpy(files[0].name, "a/b");
	m->u.begin = (struct cvr_q_point_begin){
		.group = 7, .point = 10, .nfiles = 1, .files = files
	};
	n = cvr_msg_encode(m, wire, CVR_MSG_MAX);
	assert_true(n > 0);
	/* the name starts after header, 4 x u64, count, id, size, u16 */
	wire[CVR_HDR_LEN + 32 + 4 + 16 + 2] = '/';
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EBADMSG);
	memcpy(wire + CVR_HDR_LEN + 32 + 4 + 16 + 2, "../", 3);
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EBADMSG);
	memcpy(wire + CVR_HDR_LEN + 32 + 4 + 16 + 2, "a\0b", 3);
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EBADMSG);
	memcpy(wire + CVR_HDR_LEN + 32 + 4 + 16 + 2, "a/b", 3);
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), 0);
	wire[CVR_HDR_LEN + 32] = 0xff; /* count over the limit */
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EBADMSG);
	wire[CVR_HDR_LEN + 32] = 1;
	wire[4] = 2; /* version */
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EPROTONOSUPPORT);
	wire[4] = 1;
	wire[0] ^= 1; /* magic */
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EPROTO);
	wire[0] ^= 1;
	wire[6] = 77; /* type */
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EPROTO);
	wire[6] = CVR_POINT_BEGIN;
	wire[12] = 1; /* a request with a status */
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), -EBADMSG);
	wire[12] = 0;
	assert_int_equal(cvr_msg_decode(wire, (size_t)n, d), 0);
	assert_int_equal(cvr_msg_decode(wire, 10, d), -EBADMSG);
}

static void test_names(void **state)
{
	static const char *const good[] = { "a", "vm/disk.qcow2", "a/.b/c..",
					    "...", "x y" };
	static const char *const bad[] = { "",	   "/a",  "a/",	    "a//b",
					   ".",	   "..",  "a/../b", "a/./b",
					   "../a", "a\nb" };

	(void)state;
	for (unsigned i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(cvr_name_ok(good[i]));
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(cvr_name_ok(bad[i]));
	assert_string_equal(cvr_msg_type_name(CVR_EXTENT | CVR_REPLY),
			    "extent");
	assert_string_equal(cvr_msg_type_name(1234), "unknown");
	assert_non_null(strstr(cvr_strerror(CVR_E_SPLIT_BRAIN), "diverged"));
}

static void test_random(void **state)
{
	unsigned seed = 12345;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 200) + CVR_HDR_LEN;
		int rc;

		for (size_t j = 0; j < n; j++)
			wire[j] = (uint8_t)rand_r(&seed);
		/* a plausible header, so bodies get walked */
		wire[0] = 'C', wire[1] = 'V', wire[2] = 'R', wire[3] = 'P';
		wire[4] = 1, wire[5] = 0;
		wire[6] = (uint8_t)(rand_r(&seed) % 10), wire[7] &= 0x80;
		wire[8] = (uint8_t)n, wire[9] = (uint8_t)(n >> 8);
		wire[10] = wire[11] = 0;
		if (i % 2)
			memset(wire + 12, 0, 4);
		rc = cvr_msg_decode(wire, n, d);
		if (rc) {
			assert_true(rc == -EBADMSG || rc == -EPROTO ||
				    rc == -EPROTONOSUPPORT);
			continue;
		}
		assert_int_equal(cvr_msg_encode(d, wire2, CVR_MSG_MAX), (int)n);
		assert_memory_equal(wire, wire2, n);
	}
}

static void test_bucket(void **state)
{
	struct cvr_bucket b;
	uint64_t now = 1000, sent = 0, wait;

	(void)state;
	cvr_bucket_init(&b, 0, 0, now);
	assert_int_equal(cvr_bucket_take(&b, 1 << 30, now), 0);

	/* 1 MB/s, 100 KB burst: 10 MB take about 9.9 s of virtual time */
	cvr_bucket_init(&b, 1000000, 100000, now);
	while (sent < 10000000) {
		wait = cvr_bucket_take(&b, 65536, now);
		now += wait;
		sent += 65536;
	}
	assert_true(now - 1000 >= 9800000000ull);
	assert_true(now - 1000 <= 10100000000ull);
	/* after a long idle time only the burst is free */
	now += 3600ull * 1000000000;
	assert_int_equal(cvr_bucket_take(&b, 100000, now), 0);
	assert_true(cvr_bucket_take(&b, 1000, now) >= 999000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests),
		cmocka_unit_test(test_replies),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_bad_wire),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_random),
		cmocka_unit_test(test_bucket),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
