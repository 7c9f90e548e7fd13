// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * jbd2 on-disk codec (see jbd2.h).  Offsets follow the journal format
 * description in the kernel documentation; every read of a field is
 * preceded by a length check against the caller's buffer, so the
 * decoders can be fed arbitrary bytes (tests/fuzz/fuzz_jbd2.c does).
 */
#include "jbd2.h"

#include <errno.h>
#include <string.h>

#include "crc32c.h"

/* Superblock field offsets. */
#define SB_BLOCKSIZE 0x0C
#define SB_MAXLEN 0x10
#define SB_FIRST 0x14
#define SB_SEQUENCE 0x18
#define SB_START 0x1C
#define SB_ERRNO 0x20
#define SB_COMPAT 0x24
#define SB_INCOMPAT 0x28
#define SB_RO_COMPAT 0x2C
#define SB_UUID 0x30
#define SB_NR_USERS 0x40
#define SB_MAX_TRANS 0x48
#define SB_MAX_TRANS_DATA 0x4C
#define SB_CSUM_TYPE 0x50
#define SB_NUM_FC 0x54
#define SB_CHECKSUM 0xFC

/* Commit block field offsets. */
#define CB_CSUM 0x10
#define CB_SEC 0x30
#define CB_NSEC 0x38

/* Revoke block: header, r_count, records. */
#define RV_COUNT 0x0C
#define RV_RECORDS 0x10

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24;
	p[1] = v >> 16;
	p[2] = v >> 8;
	p[3] = v;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8;
	p[1] = v;
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, v >> 32);
	put32(p + 4, (uint32_t)v);
}

static void put_header(uint8_t *p, uint32_t type, uint32_t seq)
{
	put32(p, JB_MAGIC);
	put32(p + 4, type);
	put32(p + 8, seq);
}

static const uint8_t zero4[4];

/* crc32c of len bytes at buf with the 4 bytes at hole taken as zero. */
static uint32_t csum_with_hole(uint32_t seed, const uint8_t *buf, size_t len,
			       size_t hole)
{
	uint32_t c = cv_crc32c(seed, buf, hole);

	c = cv_crc32c(c, zero4, 4);
	return cv_crc32c(c, buf + hole + 4, len - hole - 4);
}

static bool blocksize_ok(uint32_t bs)
{
	return bs >= JB_MIN_BLOCKSIZE && bs <= JB_MAX_BLOCKSIZE &&
	       (bs & (bs - 1)) == 0;
}

static void super_read_fields(const uint8_t *buf, struct jb_super *sb)
{
	memset(sb, 0, sizeof(*sb));
	sb->blocktype = get32(buf + 4);
	sb->blocksize = get32(buf + SB_BLOCKSIZE);
	sb->maxlen = get32(buf + SB_MAXLEN);
	sb->first = get32(buf + SB_FIRST);
	sb->sequence = get32(buf + SB_SEQUENCE);
	sb->start = get32(buf + SB_START);
	sb->err = (int32_t)get32(buf + SB_ERRNO);
	if (sb->blocktype != JB_SB_V2)
		return;
	sb->compat = get32(buf + SB_COMPAT);
	sb->incompat = get32(buf + SB_INCOMPAT);
	sb->ro_compat = get32(buf + SB_RO_COMPAT);
	memcpy(sb->uuid, buf + SB_UUID, JB_UUID_SIZE);
	sb->nr_users = get32(buf + SB_NR_USERS);
	sb->max_transaction = get32(buf + SB_MAX_TRANS);
	sb->max_trans_data = get32(buf + SB_MAX_TRANS_DATA);
	sb->csum_type = buf[SB_CSUM_TYPE];
	sb->num_fc_blocks = get32(buf + SB_NUM_FC);
	sb->checksum = get32(buf + SB_CHECKSUM);
}

/* Features we cannot honour are -EOPNOTSUPP, contradictions -EBADMSG. */
static int super_check_features(const struct jb_super *sb)
{
	uint32_t v23 = sb->incompat & (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3);

	if (sb->incompat & ~JB_INCOMPAT_SUPPORTED)
		return -EOPNOTSUPP;	/* async commit, fast commit, unknown */
	if (v23 == (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3))
		return -EBADMSG;
	if ((sb->compat & JB_COMPAT_CHECKSUM) && !v23)
		return -EOPNOTSUPP;	/* v1 crc32 commit checksums */
	if (v23 && sb->csum_type != JB_CSUM_CRC32C)
		return -EOPNOTSUPP;
	if (sb->nr_users > 1)
		return -EOPNOTSUPP;	/* external journal shared by several */
	return 0;
}

static uint32_t super_csum(const uint8_t *buf)
{
	return csum_with_hole(0xffffffffu, buf, JB_SB_SIZE, SB_CHECKSUM);
}

int jb_super_decode(const uint8_t *buf, size_t len, struct jb_super *sb)
{
	int rc;

	if (len < JB_SB_SIZE || get32(buf) != JB_MAGIC)
		return -EBADMSG;
	super_read_fields(buf, sb);
	if (sb->blocktype != JB_SB_V1 && sb->blocktype != JB_SB_V2)
		return -EBADMSG;
	if (!blocksize_ok(sb->blocksize) || sb->first < 1 ||
	    sb->first >= sb->maxlen)
		return -EBADMSG;
	if (sb->start && (sb->start < sb->first || sb->start >= sb->maxlen))
		return -EBADMSG;
	rc = super_check_features(sb);
	if (rc)
		return rc;
	if ((sb->incompat & (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3)) &&
	    super_csum(buf) != sb->checksum)
		return -EBADMSG;
	return 0;
}

int jb_super_encode(const struct jb_super *sb, uint8_t *buf, size_t len)
{
	if (len < JB_SB_SIZE || !blocksize_ok(sb->blocksize) ||
	    sb->blocktype != JB_SB_V2)
		return -EINVAL;
	put_header(buf, JB_SB_V2, 0);
	put32(buf + SB_BLOCKSIZE, sb->blocksize);
	put32(buf + SB_MAXLEN, sb->maxlen);
	put32(buf + SB_FIRST, sb->first);
	put32(buf + SB_SEQUENCE, sb->sequence);
	put32(buf + SB_START, sb->start);
	put32(buf + SB_ERRNO, (uint32_t)sb->err);
	put32(buf + SB_COMPAT, sb->compat);
	put32(buf + SB_INCOMPAT, sb->incompat);
	put32(buf + SB_RO_COMPAT, sb->ro_compat);
	memcpy(buf + SB_UUID, sb->uuid, JB_UUID_SIZE);
	put32(buf + SB_NR_USERS, sb->nr_users);
	put32(buf + SB_MAX_TRANS, sb->max_transaction);
	put32(buf + SB_MAX_TRANS_DATA, sb->max_trans_data);
	buf[SB_CSUM_TYPE] = sb->csum_type;
	put32(buf + SB_NUM_FC, sb->num_fc_blocks);
	put32(buf + SB_CHECKSUM, 0);
	if (sb->incompat & (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3))
		put32(buf + SB_CHECKSUM, super_csum(buf));
	return 0;
}

int jb_fmt_init(struct jb_fmt *fmt, const struct jb_super *sb)
{
	int rc = super_check_features(sb);

	if (rc)
		return rc;
	if (!blocksize_ok(sb->blocksize))
		return -EINVAL;
	memset(fmt, 0, sizeof(*fmt));
	fmt->blocksize = sb->blocksize;
	fmt->incompat = sb->incompat;
	memcpy(fmt->uuid, sb->uuid, JB_UUID_SIZE);
	fmt->csum_seed = cv_crc32c(0xffffffffu, sb->uuid, JB_UUID_SIZE);
	return 0;
}

bool jb_has_csum(const struct jb_fmt *fmt)
{
	return fmt->incompat & (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3);
}

static bool has_64bit(const struct jb_fmt *fmt)
{
	return fmt->incompat & JB_INCOMPAT_64BIT;
}

size_t jb_tag_bytes(const struct jb_fmt *fmt)
{
	size_t sz = 8;		/* blocknr, csum16, flags16 */

	if (fmt->incompat & JB_INCOMPAT_CSUM_V3)
		return 16;	/* blocknr, flags32, high, csum32 */
	if (fmt->incompat & JB_INCOMPAT_CSUM_V2)
		sz += 2;	/* v2 tags carry 2 unused bytes */
	if (has_64bit(fmt))
		sz += 4;
	return sz;
}

static size_t tail_bytes(const struct jb_fmt *fmt)
{
	return jb_has_csum(fmt) ? JB_TAIL_SIZE : 0;
}

unsigned jb_desc_capacity(const struct jb_fmt *fmt)
{
	size_t space = fmt->blocksize - JB_HDR_SIZE - tail_bytes(fmt);
	size_t tb = jb_tag_bytes(fmt);

	return 1 + (unsigned)((space - tb - JB_UUID_SIZE) / tb);
}

unsigned jb_desc_max_tags(const struct jb_fmt *fmt)
{
	return (unsigned)((fmt->blocksize - JB_HDR_SIZE) / jb_tag_bytes(fmt));
}

unsigned jb_revoke_capacity(const struct jb_fmt *fmt)
{
	size_t rec = has_64bit(fmt) ? 8 : 4;

	return (unsigned)((fmt->blocksize - RV_RECORDS - tail_bytes(fmt)) /
			  rec);
}

int jb_header_decode(const uint8_t *buf, size_t len, uint32_t *type,
		     uint32_t *seq)
{
	if (len < JB_HDR_SIZE)
		return -EBADMSG;
	if (get32(buf) != JB_MAGIC)
		return -ENOENT;
	*type = get32(buf + 4);
	*seq = get32(buf + 8);
	return 0;
}

uint32_t jb_block_csum(const struct jb_fmt *fmt, uint32_t seq,
		       const uint8_t *data)
{
	uint8_t s[4];

	put32(s, seq);
	return cv_crc32c(cv_crc32c(fmt->csum_seed, s, 4), data,
			 fmt->blocksize);
}

bool jb_tag_csum_ok(const struct jb_fmt *fmt, const struct jb_tag *tag,
		    uint32_t seq, const uint8_t *data)
{
	uint32_t c;

	if (!jb_has_csum(fmt))
		return true;
	c = jb_block_csum(fmt, seq, data);
	if (fmt->incompat & JB_INCOMPAT_CSUM_V3)
		return c == tag->csum;
	return (c & 0xffff) == (tag->csum & 0xffff);
}

bool jb_needs_escape(const uint8_t *data)
{
	return get32(data) == JB_MAGIC;
}

void jb_escape(uint8_t *data)
{
	memset(data, 0, 4);
}

void jb_unescape(uint8_t *data)
{
	put32(data, JB_MAGIC);
}

/* Checksum in the last 4 bytes of a descriptor or revoke block. */
static void tail_csum_set(const struct jb_fmt *fmt, uint8_t *buf)
{
	size_t hole = fmt->blocksize - JB_TAIL_SIZE;

	if (jb_has_csum(fmt))
		put32(buf + hole, csum_with_hole(fmt->csum_seed, buf,
						 fmt->blocksize, hole));
}

static bool tail_csum_ok(const struct jb_fmt *fmt, const uint8_t *buf)
{
	size_t hole = fmt->blocksize - JB_TAIL_SIZE;

	if (!jb_has_csum(fmt))
		return true;
	return get32(buf + hole) ==
	       csum_with_hole(fmt->csum_seed, buf, fmt->blocksize, hole);
}

static void tag_write(const struct jb_fmt *fmt, uint8_t *p,
		      const struct jb_tag *t, uint32_t flags)
{
	put32(p, (uint32_t)t->blocknr);
	if (fmt->incompat & JB_INCOMPAT_CSUM_V3) {
		put32(p + 4, flags);
		put32(p + 8, has_64bit(fmt) ? (uint32_t)(t->blocknr >> 32) : 0);
		put32(p + 12, t->csum);
		return;
	}
	put16(p + 4, jb_has_csum(fmt) ? (uint16_t)t->csum : 0);
	put16(p + 6, (uint16_t)flags);
	if (has_64bit(fmt))
		put32(p + 8, (uint32_t)(t->blocknr >> 32));
}

static void tag_read(const struct jb_fmt *fmt, const uint8_t *p,
		     struct jb_tag *t)
{
	t->blocknr = get32(p);
	if (fmt->incompat & JB_INCOMPAT_CSUM_V3) {
		t->flags = get32(p + 4);
		if (has_64bit(fmt))
			t->blocknr |= (uint64_t)get32(p + 8) << 32;
		t->csum = get32(p + 12);
		return;
	}
	t->csum = get16(p + 4);
	t->flags = get16(p + 6);
	if (has_64bit(fmt))
		t->blocknr |= (uint64_t)get32(p + 8) << 32;
}

int jb_desc_encode(const struct jb_fmt *fmt, uint32_t seq,
		   const struct jb_tag *tags, unsigned n, uint8_t *buf)
{
	size_t tb = jb_tag_bytes(fmt), off = JB_HDR_SIZE;

	if (n == 0 || n > jb_desc_capacity(fmt))
		return -EINVAL;
	memset(buf, 0, fmt->blocksize);
	put_header(buf, JB_DESCRIPTOR, seq);
	for (unsigned i = 0; i < n; i++) {
		uint32_t fl = tags[i].flags & (JB_FLAG_ESCAPE | JB_FLAG_DELETED);

		if (i > 0)
			fl |= JB_FLAG_SAME_UUID;
		if (i == n - 1)
			fl |= JB_FLAG_LAST_TAG;
		if (!has_64bit(fmt) && tags[i].blocknr >> 32)
			return -ERANGE;
		tag_write(fmt, buf + off, &tags[i], fl);
		off += tb;
		if (i == 0) {
			memcpy(buf + off, fmt->uuid, JB_UUID_SIZE);
			off += JB_UUID_SIZE;
		}
	}
	tail_csum_set(fmt, buf);
	return 0;
}

/* Walk the tags as the format defines them: a tag without SAME_UUID is
 * followed by 16 bytes of UUID; LAST_TAG or the end of the block ends
 * the list. */
static int desc_walk(const struct jb_fmt *fmt, const uint8_t *buf,
		     struct jb_tag *tags, unsigned max, unsigned *n)
{
	size_t tb = jb_tag_bytes(fmt), off = JB_HDR_SIZE;
	size_t end = fmt->blocksize - tail_bytes(fmt);
	unsigned cnt = 0;

	while (off + tb <= end) {
		struct jb_tag t;

		tag_read(fmt, buf + off, &t);
		off += tb;
		if (!(t.flags & JB_FLAG_SAME_UUID)) {
			if (off + JB_UUID_SIZE > end)
				return -EBADMSG;
			off += JB_UUID_SIZE;
		}
		if (cnt >= max)
			return -EBADMSG;
		tags[cnt++] = t;
		if (t.flags & JB_FLAG_LAST_TAG)
			break;
	}
	if (cnt == 0)
		return -EBADMSG;
	*n = cnt;
	return 0;
}

int jb_desc_decode(const struct jb_fmt *fmt, const uint8_t *buf,
		   size_t len, uint32_t *seq, struct jb_tag *tags,
		   unsigned max, unsigned *n)
{
	uint32_t type;
	int rc;

	if (len < fmt->blocksize)
		return -EBADMSG;
	rc = jb_header_decode(buf, len, &type, seq);
	if (rc)
		return rc == -ENOENT ? -EBADMSG : rc;
	if (type != JB_DESCRIPTOR || !tail_csum_ok(fmt, buf))
		return -EBADMSG;
	return desc_walk(fmt, buf, tags, max, n);
}

int jb_revoke_encode(const struct jb_fmt *fmt, uint32_t seq,
		     const uint64_t *blocks, unsigned n, uint8_t *buf)
{
	size_t rec = has_64bit(fmt) ? 8 : 4, off = RV_RECORDS;

	if (n == 0 || n > jb_revoke_capacity(fmt))
		return -EINVAL;
	memset(buf, 0, fmt->blocksize);
	put_header(buf, JB_REVOKE, seq);
	for (unsigned i = 0; i < n; i++, off += rec) {
		if (rec == 8)
			put64(buf + off, blocks[i]);
		else if (blocks[i] >> 32)
			return -ERANGE;
		else
			put32(buf + off, (uint32_t)blocks[i]);
	}
	put32(buf + RV_COUNT, (uint32_t)off);
	tail_csum_set(fmt, buf);
	return 0;
}

int jb_revoke_decode(const struct jb_fmt *fmt, const uint8_t *buf,
		     size_t len, uint32_t *seq, uint64_t *blocks,
		     unsigned max, unsigned *n)
{
	size_t rec = has_64bit(fmt) ? 8 : 4;
	uint32_t type, count;
	unsigned cnt = 0;

	if (len < fmt->blocksize || jb_header_decode(buf, len, &type, seq))
		return -EBADMSG;
	if (type != JB_REVOKE || !tail_csum_ok(fmt, buf))
		return -EBADMSG;
	count = get32(buf + RV_COUNT);
	if (count < RV_RECORDS || count > fmt->blocksize - tail_bytes(fmt) ||
	    (count - RV_RECORDS) % rec)
		return -EBADMSG;
	for (size_t off = RV_RECORDS; off < count; off += rec) {
		if (cnt >= max)
			return -EBADMSG;
		blocks[cnt++] = rec == 8 ? get64(buf + off) : get32(buf + off);
	}
	*n = cnt;
	return 0;
}

int jb_commit_encode(const struct jb_fmt *fmt, uint32_t seq, uint64_t sec,
		     uint32_t nsec, uint8_t *buf)
{
	memset(buf, 0, fmt->blocksize);
	put_header(buf, JB_COMMIT, seq);
	put64(buf + CB_SEC, sec);
	put32(buf + CB_NSEC, nsec);
	if (jb_has_csum(fmt))
		put32(buf + CB_CSUM, csum_with_hole(fmt->csum_seed, buf,
						    fmt->blocksize, CB_CSUM));
	return 0;
}

int jb_commit_decode(const struct jb_fmt *fmt, const uint8_t *buf,
		     size_t len, uint32_t *seq, uint64_t *sec,
		     uint32_t *nsec)
{
	uint32_t type;

	if (len < fmt->blocksize || jb_header_decode(buf, len, &type, seq))
		return -EBADMSG;
	if (type != JB_COMMIT)
		return -EBADMSG;
	if (jb_has_csum(fmt) &&
	    get32(buf + CB_CSUM) != csum_with_hole(fmt->csum_seed, buf,
						   fmt->blocksize, CB_CSUM))
		return -EBADMSG;
	*sec = get64(buf + CB_SEC);
	*nsec = get32(buf + CB_NSEC);
	return 0;
}
