// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_jbd2.c - unit tests of the jbd2 codec (csvfs/backends/block/
 * jbd2.c) and of the journal (journal.c, replay.c) over an in-memory
 * device: round trips of every block type in every tag layout, rejects
 * of corrupt and truncated blocks, commit/replay, revokes, escaping,
 * wraparound, and a write-failure injected at every device write of a
 * transaction (replay then gives all of it or none).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "crc32c.h"
#include "jbd2.h"
#include "journal.h"

static const uint32_t layouts[] = {
	0,
	JB_INCOMPAT_64BIT,
	JB_INCOMPAT_CSUM_V2,
	JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_64BIT,
	JB_INCOMPAT_CSUM_V3,
	JB_INCOMPAT_CSUM_V3 | JB_INCOMPAT_64BIT | JB_INCOMPAT_REVOKE,
};
#define NLAYOUTS (sizeof(layouts) / sizeof(layouts[0]))

static void make_super(struct jb_super *sb, uint32_t bs, uint32_t incompat,
		       uint32_t maxlen)
{
	memset(sb, 0, sizeof(*sb));
	sb->blocktype = JB_SB_V2;
	sb->blocksize = bs;
	sb->maxlen = maxlen;
	sb->first = 1;
	sb->sequence = 1;
	sb->incompat = incompat;
	sb->nr_users = 1;
	if (incompat & (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3))
		sb->csum_type = JB_CSUM_CRC32C;
	for (int i = 0; i < 16; i++)
		sb->uuid[i] = (uint8_t)(0x10 + i);
}

static void make_fmt(struct jb_fmt *f, uint32_t bs, uint32_t incompat)
{
	struct jb_super sb;

	make_super(&sb, bs, incompat, 1024);
	assert_int_equal(jb_fmt_init(f, &sb), 0);
}

static void test_crc32c(void **state)
{
	(void)state;
	/* The standard check value is 0xE3069283 with the final inversion
	 * jbd2 does not do. */
	assert_int_equal(cv_crc32c(0xffffffffu, "123456789", 9),
			 ~0xE3069283u);
	assert_int_equal(cv_crc32c(cv_crc32c(0xffffffffu, "1234", 4),
				   "56789", 5), ~0xE3069283u);
}

static void test_super_roundtrip(void **state)
{
	uint8_t buf[JB_SB_SIZE];
	struct jb_super sb, out;

	(void)state;
	memset(buf, 0xa5, sizeof(buf));	/* fields we keep as they are */
	make_super(&sb, 4096, JB_INCOMPAT_CSUM_V3 | JB_INCOMPAT_64BIT |
		   JB_INCOMPAT_REVOKE, 32768);
	sb.start = 7;
	sb.sequence = 0x12345678;
	assert_int_equal(jb_super_encode(&sb, buf, sizeof(buf)), 0);
	assert_int_equal(jb_super_decode(buf, sizeof(buf), &out), 0);
	assert_int_equal(out.blocksize, 4096);
	assert_int_equal(out.maxlen, 32768);
	assert_int_equal(out.start, 7);
	assert_int_equal(out.sequence, 0x12345678);
	assert_int_equal(out.incompat, sb.incompat);
	assert_memory_equal(out.uuid, sb.uuid, 16);
	assert_int_equal(buf[0x200], 0xa5);
	/* short, corrupt, bad magic */
	assert_int_equal(jb_super_decode(buf, 1023, &out), -EBADMSG);
	buf[0x30] ^= 1;
	assert_int_equal(jb_super_decode(buf, sizeof(buf), &out), -EBADMSG);
	buf[0x30] ^= 1;
	buf[0] ^= 0x80;
	assert_int_equal(jb_super_decode(buf, sizeof(buf), &out), -EBADMSG);
}

static void test_super_rejects(void **state)
{
	static const uint32_t bad[] = { JB_INCOMPAT_ASYNC_COMMIT,
					JB_INCOMPAT_FAST_COMMIT, 0x100 };
	uint8_t buf[JB_SB_SIZE] = { 0 };
	struct jb_super sb, out;

	(void)state;
	for (unsigned i = 0; i < 3; i++) {
		make_super(&sb, 4096, JB_INCOMPAT_CSUM_V3 | bad[i], 1024);
		assert_int_equal(jb_super_encode(&sb, buf, sizeof(buf)), 0);
		assert_int_equal(jb_super_decode(buf, sizeof(buf), &out),
				 -EOPNOTSUPP);
	}
	make_super(&sb, 4096, 0, 1024);
	sb.compat = JB_COMPAT_CHECKSUM;	/* v1 commit checksums */
	jb_super_encode(&sb, buf, sizeof(buf));
	assert_int_equal(jb_super_decode(buf, sizeof(buf), &out), -EOPNOTSUPP);
	make_super(&sb, 4096, JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3, 1024);
	jb_super_encode(&sb, buf, sizeof(buf));
	assert_int_equal(jb_super_decode(buf, sizeof(buf), &out), -EBADMSG);
	make_super(&sb, 3000, 0, 1024);
	assert_int_equal(jb_super_encode(&sb, buf, sizeof(buf)), -EINVAL);
	make_super(&sb, 4096, 0, 1024);
	sb.start = 2000;	/* outside the log */
	jb_super_encode(&sb, buf, sizeof(buf));
	assert_int_equal(jb_super_decode(buf, sizeof(buf), &out), -EBADMSG);
}

static void fill_tags(struct jb_tag *t, unsigned n, bool big)
{
	for (unsigned i = 0; i < n; i++) {
		t[i].blocknr = (big ? 0x100000000ull * (i + 1) : 0) + 1000 + i;
		t[i].flags = (i % 3 == 0) ? JB_FLAG_ESCAPE : 0;
		t[i].csum = 0xdead0000u + i;
	}
}

static void desc_roundtrip(uint32_t bs, uint32_t incompat)
{
	struct jb_fmt f;
	unsigned cap, n;
	uint32_t seq;
	uint8_t *buf = malloc(bs);
	struct jb_tag *in, *out;

	make_fmt(&f, bs, incompat);
	cap = jb_desc_capacity(&f);
	in = calloc(cap, sizeof(*in));
	out = calloc(jb_desc_max_tags(&f), sizeof(*out));
	fill_tags(in, cap, incompat & JB_INCOMPAT_64BIT);
	assert_int_equal(jb_desc_encode(&f, 42, in, cap + 1, buf), -EINVAL);
	assert_int_equal(jb_desc_encode(&f, 42, in, cap, buf), 0);
	assert_int_equal(jb_desc_decode(&f, buf, bs, &seq, out,
					jb_desc_max_tags(&f), &n), 0);
	assert_int_equal(seq, 42);
	assert_int_equal(n, cap);
	for (unsigned i = 0; i < n; i++) {
		uint32_t want = in[i].csum;

		if (!(incompat & JB_INCOMPAT_CSUM_V3))
			want = jb_has_csum(&f) ? want & 0xffff : 0;
		assert_int_equal(out[i].blocknr, in[i].blocknr);
		assert_int_equal(out[i].csum, want);
		assert_int_equal(out[i].flags & JB_FLAG_ESCAPE,
				 in[i].flags & JB_FLAG_ESCAPE);
		assert_int_equal(!!(out[i].flags & JB_FLAG_SAME_UUID), i > 0);
		assert_int_equal(!!(out[i].flags & JB_FLAG_LAST_TAG),
				 i == n - 1);
	}
	assert_int_equal(jb_desc_decode(&f, buf, bs - 1, &seq, out,
					jb_desc_max_tags(&f), &n), -EBADMSG);
	assert_int_equal(jb_desc_decode(&f, buf, bs, &seq, out, 1, &n),
			 -EBADMSG);
	buf[20] ^= 4;
	if (jb_has_csum(&f))
		assert_int_equal(jb_desc_decode(&f, buf, bs, &seq, out,
						jb_desc_max_tags(&f), &n),
				 -EBADMSG);
	free(buf);
	free(in);
	free(out);
}

static void test_desc_roundtrip(void **state)
{
	(void)state;
	for (unsigned i = 0; i < NLAYOUTS; i++) {
		desc_roundtrip(1024, layouts[i]);
		desc_roundtrip(4096, layouts[i]);
	}
}

static void test_revoke_commit(void **state)
{
	(void)state;
	for (unsigned l = 0; l < NLAYOUTS; l++) {
		struct jb_fmt f;
		uint8_t buf[1024];
		uint64_t in[300], out[300], sec;
		unsigned cap, n;
		uint32_t seq, nsec;

		make_fmt(&f, 1024, layouts[l]);
		cap = jb_revoke_capacity(&f);
		assert_true(cap <= 300);
		for (unsigned i = 0; i < cap; i++)
			in[i] = (f.incompat & JB_INCOMPAT_64BIT ? 1ull << 40 :
								  0) + i * 7;
		assert_int_equal(jb_revoke_encode(&f, 9, in, cap, buf), 0);
		assert_int_equal(jb_revoke_decode(&f, buf, 1024, &seq, out,
						  cap, &n), 0);
		assert_int_equal(n, cap);
		assert_int_equal(seq, 9);
		assert_memory_equal(in, out, cap * sizeof(*in));
		buf[15] = 0xff;	/* r_count past the block */
		assert_int_equal(jb_revoke_decode(&f, buf, 1024, &seq, out,
						  cap, &n), -EBADMSG);
		assert_int_equal(jb_commit_encode(&f, 77, 1700000000, 5, buf),
				 0);
		assert_int_equal(jb_commit_decode(&f, buf, 1024, &seq, &sec,
						  &nsec), 0);
		assert_int_equal(seq, 77);
		assert_int_equal(sec, 1700000000);
		assert_int_equal(nsec, 5);
		assert_int_equal(jb_commit_decode(&f, buf, 100, &seq, &sec,
						  &nsec), -EBADMSG);
		buf[1000] = 1;
		if (jb_has_csum(&f))
			assert_int_equal(jb_commit_decode(&f, buf, 1024, &seq,
							  &sec, &nsec),
					 -EBADMSG);
	}
}

static void test_escape_and_tag_csum(void **state)
{
	struct jb_fmt f;
	uint8_t blk[1024] = { 0xc0, 0x3b, 0x39, 0x98, 1, 2, 3 };
	struct jb_tag t = { 0 };
	uint32_t type, seq;

	(void)state;
	make_fmt(&f, 1024, JB_INCOMPAT_CSUM_V3);
	assert_true(jb_needs_escape(blk));
	assert_int_equal(jb_header_decode(blk, 1024, &type, &seq), 0);
	jb_escape(blk);
	assert_false(jb_needs_escape(blk));
	assert_int_equal(jb_header_decode(blk, 1024, &type, &seq), -ENOENT);
	t.csum = jb_block_csum(&f, 5, blk);
	assert_true(jb_tag_csum_ok(&f, &t, 5, blk));
	assert_false(jb_tag_csum_ok(&f, &t, 6, blk));
	blk[500] ^= 1;
	assert_false(jb_tag_csum_ok(&f, &t, 5, blk));
	jb_unescape(blk);
	assert_true(jb_needs_escape(blk));
}

/* ---- the journal over an in-memory device ------------------------ */

#define BS 1024u
#define NBLK 4096u
#define JLEN 64u	/* journal blocks: two extents */

struct memdev {
	uint8_t *blk;
	long writes;	/* device writes so far */
	long fail_at;	/* write number that fails (and all after), -1 never */
	bool tear;	/* the failing write lands half its first block */
};

static int md_read(void *priv, uint64_t b, unsigned count, void *buf)
{
	struct memdev *m = priv;

	if (b + count > NBLK)
		return -EIO;
	memcpy(buf, m->blk + b * BS, (size_t)count * BS);
	return 0;
}

static int md_write(void *priv, uint64_t b, unsigned count, const void *buf)
{
	struct memdev *m = priv;

	if (b + count > NBLK)
		return -EIO;
	if (m->fail_at >= 0 && m->writes >= m->fail_at) {
		if (m->tear && m->writes++ == m->fail_at)
			memcpy(m->blk + b * BS, buf, BS / 2);
		return -EIO;	/* the process "died" here */
	}
	m->writes++;
	memcpy(m->blk + b * BS, buf, (size_t)count * BS);
	return 0;
}

static int md_flush(void *priv)
{
	struct memdev *m = priv;

	return m->fail_at >= 0 && m->writes >= m->fail_at ? -EIO : 0;
}

static const struct cvj_extent jmap_ext[] = {
	{ 0, 1000, JLEN / 2 },
	{ JLEN / 2, 3000, JLEN / 2 },
};

static struct memdev *md_new(void)
{
	struct memdev *m = calloc(1, sizeof(*m));
	struct jb_super sb;

	m->blk = calloc(NBLK, BS);
	m->fail_at = -1;
	for (uint32_t b = 0; b < NBLK; b++)
		memset(m->blk + b * BS, (int)(b & 0xff), BS);
	memset(m->blk + 1000 * BS, 0, BS);
	make_super(&sb, BS, 0, JLEN);
	assert_int_equal(jb_super_encode(&sb, m->blk + 1000 * BS, BS), 0);
	return m;
}

static void md_free(struct memdev *m)
{
	free(m->blk);
	free(m);
}

static struct cvj_journal *jopen(struct memdev *m)
{
	struct cvj_dev d = { m, BS, md_read, md_write, md_flush };
	struct cvj_journal *j;

	assert_int_equal(cvj_open(&d, jmap_ext, 2, &j), 0);
	return j;
}

/* Transaction number k of a test: blocks 100+k%7 .. (n of them), with
 * contents that name k; every fifth starts with the jbd2 magic. */
static void make_txn(unsigned k, unsigned n, uint8_t *data,
		     struct cvj_block *b)
{
	for (unsigned i = 0; i < n; i++) {
		uint8_t *d = data + (size_t)i * BS;

		memset(d, (int)(k * 31 + i), BS);
		if ((k + i) % 5 == 0)
			memcpy(d, "\xc0\x3b\x39\x98", 4);
		b[i].home = 100 + (k % 7) + i;
		b[i].data = d;
	}
}

#define HOME0 100u
#define NHOME 16u

/* The home area 100..115 as it is on the device now. */
static void snap(const struct memdev *m, uint8_t *out)
{
	memcpy(out, m->blk + HOME0 * BS, NHOME * BS);
}

static void model_apply(uint8_t *model, const struct cvj_block *b, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		memcpy(model + (b[i].home - HOME0) * BS, b[i].data, BS);
}

static const uint32_t feat = JB_INCOMPAT_CSUM_V3 | JB_INCOMPAT_64BIT |
			     JB_INCOMPAT_REVOKE;

static void test_commit_replay(void **state)
{
	struct memdev *m = md_new();
	struct cvj_journal *j = jopen(m);
	struct cvj_replay_info info;
	uint8_t data[4 * BS], model[NHOME * BS], now[NHOME * BS];
	struct cvj_block b[4];

	(void)state;
	assert_int_equal(cvj_set_features(j, feat), 0);
	snap(m, model);
	for (unsigned k = 0; k < 3; k++) {
		make_txn(k, 4, data, b);
		assert_int_equal(cvj_commit(j, b, 4, NULL, 0), 0);
		model_apply(model, b, 4);
		assert_memory_equal(cvj_pending(j, b[0].home), data, BS);
	}
	snap(m, now);
	assert_memory_not_equal(now, model, sizeof(now));	/* not home */
	cvj_close(j);		/* crash: nothing checkpointed */
	j = jopen(m);
	assert_true(cvj_needs_recovery(j));
	assert_int_equal(cvj_commit(j, b, 1, NULL, 0), -EUCLEAN);
	assert_int_equal(cvj_replay(j, &info), 0);
	assert_int_equal(info.transactions, 3);
	assert_int_equal(info.blocks, 12);
	assert_int_equal(info.stop, 0);
	snap(m, now);
	assert_memory_equal(now, model, sizeof(now));
	cvj_close(j);
	j = jopen(m);
	assert_false(cvj_needs_recovery(j));
	assert_int_equal(cvj_super(j)->sequence, 5);	/* 1 + 3, skip one */
	assert_int_equal(cvj_super(j)->incompat, feat);
	cvj_close(j);
	md_free(m);
}

static void test_revoke(void **state)
{
	struct memdev *m = md_new();
	struct cvj_journal *j = jopen(m);
	struct cvj_replay_info info;
	uint8_t x[BS], y[BS], orig[BS];
	struct cvj_block bx = { 500, x }, by = { 501, y };
	uint64_t r500 = 500, r501 = 501;

	(void)state;
	assert_int_equal(cvj_set_features(j, feat), 0);
	memcpy(orig, m->blk + 500 * BS, BS);
	memset(x, 'x', BS);
	memset(y, 'y', BS);
	assert_int_equal(cvj_commit(j, &bx, 1, NULL, 0), 0);
	assert_int_equal(cvj_commit(j, NULL, 0, &r500, 1), 0);
	assert_null(cvj_pending(j, 500));
	assert_int_equal(cvj_commit(j, &by, 1, &r501, 1), 0);	/* write wins */
	cvj_close(j);
	j = jopen(m);
	assert_int_equal(cvj_replay(j, &info), 0);
	assert_int_equal(info.transactions, 3);
	assert_int_equal(info.revoked, 1);
	assert_memory_equal(m->blk + 500 * BS, orig, BS);
	assert_memory_equal(m->blk + 501 * BS, y, BS);
	cvj_close(j);
	md_free(m);
}

static void test_wraparound(void **state)
{
	struct memdev *m = md_new();
	struct cvj_journal *j = jopen(m);
	struct cvj_replay_info info;
	uint8_t data[3 * BS], model[NHOME * BS], now[NHOME * BS];
	struct cvj_block b[3];
	struct cvj_stats st;

	(void)state;
	assert_int_equal(cvj_set_features(j, feat), 0);
	snap(m, model);
	for (unsigned k = 0; k < 100; k++) {
		make_txn(k, 3, data, b);
		assert_int_equal(cvj_commit(j, b, 3, NULL, 0), 0);
		model_apply(model, b, 3);
	}
	cvj_get_stats(j, &st);
	assert_true(st.checkpoints >= 5);
	cvj_close(j);
	j = jopen(m);
	assert_int_equal(cvj_replay(j, &info), 0);
	assert_true(info.transactions > 0);
	snap(m, now);
	assert_memory_equal(now, model, sizeof(now));
	cvj_close(j);
	md_free(m);
}

/* Corrupt one logged data block: that transaction and the ones after it
 * are not replayed (the scan stops there). */
static void test_bad_data_csum(void **state)
{
	struct memdev *m = md_new();
	struct cvj_journal *j = jopen(m);
	struct cvj_replay_info info;
	uint8_t data[2 * BS], model[NHOME * BS], now[NHOME * BS];
	struct cvj_block b[2];

	(void)state;
	assert_int_equal(cvj_set_features(j, feat), 0);
	make_txn(0, 2, data, b);
	assert_int_equal(cvj_commit(j, b, 2, NULL, 0), 0);
	snap(m, model);
	model_apply(model, b, 2);
	make_txn(1, 2, data, b);
	assert_int_equal(cvj_commit(j, b, 2, NULL, 0), 0);
	cvj_close(j);
	/* log: 1 desc 2 3 data 4 commit | 5 desc 6 7 data 8 commit */
	m->blk[1000 * BS + 6 * BS + 100] ^= 1;
	j = jopen(m);
	assert_int_equal(cvj_replay(j, &info), 0);
	assert_int_equal(info.transactions, 1);
	assert_int_equal(info.stop, -EBADMSG);
	snap(m, now);
	assert_memory_equal(now, model, sizeof(now));
	cvj_close(j);
	md_free(m);
}

#define TORN_TXNS 16u

/* Run TORN_TXNS transactions of 3 blocks (the log fills and checkpoints
 * on the way) with the device failing for good at write number fail_at;
 * returns how many commits succeeded and leaves the models of every
 * state in models[0..TORN_TXNS]. */
static unsigned torn_run(struct memdev *m, long fail_at, bool tear,
			 uint8_t *models)
{
	struct cvj_journal *j = jopen(m);
	uint8_t data[3 * BS];
	struct cvj_block b[3];
	unsigned ok = 0;

	assert_int_equal(cvj_set_features(j, feat), 0);
	snap(m, models);
	m->writes = 0;
	m->fail_at = fail_at;
	m->tear = tear;
	for (unsigned k = 0; k < TORN_TXNS; k++) {
		uint8_t *next = models + (size_t)(k + 1) * NHOME * BS;

		make_txn(k, 3, data, b);
		memcpy(next, next - NHOME * BS, NHOME * BS);
		model_apply(next, b, 3);
		if (cvj_commit(j, b, 3, NULL, 0) == 0 && ok == k)
			ok++;
	}
	cvj_close(j);
	m->fail_at = -1;
	return ok;
}

static void test_torn_writes(void **state)
{
	size_t msz = (size_t)(TORN_TXNS + 1) * NHOME * BS;
	uint8_t *models = malloc(msz), now[NHOME * BS];
	long total;

	(void)state;
	{	/* how many writes the whole run makes */
		struct memdev *m = md_new();

		assert_int_equal(torn_run(m, -1, false, models), TORN_TXNS);
		total = m->writes;
		md_free(m);
	}
	for (long f = 0; f <= 2 * total + 1; f++) {
		struct memdev *m = md_new();
		/* each write fails whole, then each write is torn */
		unsigned ok = torn_run(m, f % (total + 1), f > total, models);
		struct cvj_journal *j = jopen(m);
		struct cvj_replay_info info;

		assert_int_equal(cvj_replay(j, &info), 0);
		snap(m, now);
		/* all of the commits that returned 0, and maybe the one the
		 * failure cut short, never part of one */
		if (memcmp(now, models + (size_t)ok * NHOME * BS, sizeof(now)))
			assert_true(ok < TORN_TXNS &&
				    !memcmp(now, models + (size_t)(ok + 1) *
						NHOME * BS, sizeof(now)));
		cvj_close(j);
		md_free(m);
	}
	free(models);
}

/* A replay that dies at any write is simply done again: the log is
 * only marked empty after every block is home. */
static void test_replay_interrupted(void **state)
{
	uint8_t data[3 * BS], model[NHOME * BS], now[NHOME * BS];
	struct cvj_block b[3];
	long total = 0;

	(void)state;
	/* f == -1: no failure, counts the writes a replay makes */
	for (long f = -1; f <= total; f++) {
		struct memdev *m = md_new();
		struct cvj_journal *j = jopen(m);
		struct cvj_replay_info info;

		assert_int_equal(cvj_set_features(j, feat), 0);
		snap(m, model);
		for (unsigned k = 0; k < 8; k++) {
			make_txn(k, 3, data, b);
			assert_int_equal(cvj_commit(j, b, 3, NULL, 0), 0);
			model_apply(model, b, 3);
		}
		cvj_close(j);
		j = jopen(m);
		m->writes = 0;
		m->fail_at = f;
		if (cvj_replay(j, &info) == 0 && f < 0)
			total = m->writes;
		cvj_close(j);
		m->fail_at = -1;
		j = jopen(m);
		assert_int_equal(cvj_replay(j, &info), 0);
		snap(m, now);
		assert_memory_equal(now, model, sizeof(now));
		cvj_close(j);
		md_free(m);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_super_roundtrip),
		cmocka_unit_test(test_super_rejects),
		cmocka_unit_test(test_desc_roundtrip),
		cmocka_unit_test(test_revoke_commit),
		cmocka_unit_test(test_escape_and_tag_csum),
		cmocka_unit_test(test_commit_replay),
		cmocka_unit_test(test_revoke),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_bad_data_csum),
		cmocka_unit_test(test_torn_writes),
		cmocka_unit_test(test_replay_interrupted),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
