// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_jbd2.c - libFuzzer target for the jbd2 codec
 * (csvfs/backends/block/jbd2.c).
 *
 * Replay reads whatever is in the log, so every decoder must accept or
 * reject (-EBADMSG, -ENOENT, -EOPNOTSUPP) any bytes without crashing or
 * reading outside them.  The first input byte picks the tag layout and
 * block size; when its top bit is set, the target writes a correct
 * checksum into the block first (the fuzzer would never find one), so
 * that the parsing behind the checksum gets fuzzed too.  Whatever
 * decodes must encode again to the same values (round trip).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "jbd2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t layouts[8] = {
	0, JB_INCOMPAT_64BIT, JB_INCOMPAT_CSUM_V2,
	JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_64BIT, JB_INCOMPAT_CSUM_V3,
	JB_INCOMPAT_CSUM_V3 | JB_INCOMPAT_64BIT, JB_INCOMPAT_REVOKE,
	JB_INCOMPAT_CSUM_V3 | JB_INCOMPAT_64BIT | JB_INCOMPAT_REVOKE,
};

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

/* The checksum the codec expects at hole, seeded as it would be. */
static void fix_csum(uint8_t *b, size_t len, size_t hole, uint32_t seed)
{
	if (hole + 4 > len)
		return;
	memset(b + hole, 0, 4);
	put32(b + hole, cv_crc32c(seed, b, len));
}

static void fix_block(const struct jb_fmt *f, uint8_t *b, size_t len)
{
	uint32_t type, seq;

	if (jb_header_decode(b, len, &type, &seq) || len < f->blocksize)
		return;
	if (type == JB_DESCRIPTOR || type == JB_REVOKE)
		fix_csum(b, f->blocksize, f->blocksize - 4, f->csum_seed);
	else if (type == JB_COMMIT)
		fix_csum(b, f->blocksize, 0x10, f->csum_seed);
	else if (type == JB_SB_V2)
		fix_csum(b, JB_SB_SIZE, 0xFC, 0xffffffffu);
}

static void check_desc(const struct jb_fmt *f, const uint8_t *b, size_t len)
{
	unsigned max = jb_desc_max_tags(f), n, n2;
	struct jb_tag *t = calloc(max, sizeof(*t)), *t2 = calloc(max, sizeof(*t2));
	uint8_t *enc = malloc(f->blocksize);
	uint32_t seq, seq2;
	int rc = jb_desc_decode(f, b, len, &seq, t, max, &n);

	if (rc && rc != -EBADMSG)
		abort();
	if (!rc && n <= jb_desc_capacity(f) &&
	    jb_desc_encode(f, seq, t, n, enc) == 0) {
		if (jb_desc_decode(f, enc, f->blocksize, &seq2, t2, max, &n2) ||
		    n2 != n || seq2 != seq)
			abort();
		for (unsigned i = 0; i < n; i++)
			if (t2[i].blocknr != t[i].blocknr ||
			    (t2[i].flags ^ t[i].flags) & JB_FLAG_ESCAPE ||
			    (jb_has_csum(f) && t2[i].csum != t[i].csum))
				abort();
	}
	free(t);
	free(t2);
	free(enc);
}

static void check_revoke(const struct jb_fmt *f, const uint8_t *b, size_t len)
{
	unsigned max = jb_revoke_capacity(f), n, n2;
	uint64_t *r = calloc(max, sizeof(*r)), *r2 = calloc(max, sizeof(*r2));
	uint8_t *enc = malloc(f->blocksize);
	uint32_t seq, seq2;
	int rc = jb_revoke_decode(f, b, len, &seq, r, max, &n);

	if (rc && rc != -EBADMSG)
		abort();
	if (!rc && n && jb_revoke_encode(f, seq, r, n, enc) == 0 &&
	    (jb_revoke_decode(f, enc, f->blocksize, &seq2, r2, max, &n2) ||
	     n2 != n || seq2 != seq || memcmp(r, r2, n * sizeof(*r))))
		abort();
	free(r);
	free(r2);
	free(enc);
}

static void check_super(const uint8_t *b, size_t len)
{
	struct jb_super sb, sb2;
	uint8_t enc[JB_SB_SIZE];
	int rc = jb_super_decode(b, len, &sb);

	if (rc && rc != -EBADMSG && rc != -EOPNOTSUPP)
		abort();
	if (rc || sb.blocktype != JB_SB_V2)
		return;
	memcpy(enc, b, JB_SB_SIZE);
	if (jb_super_encode(&sb, enc, sizeof(enc)) ||
	    jb_super_decode(enc, sizeof(enc), &sb2) ||
	    memcmp(&sb, &sb2, offsetof(struct jb_super, checksum)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct jb_super sb = { .blocktype = JB_SB_V2, .nr_users = 1 };
	struct jb_fmt f;
	uint32_t seq, nsec;
	uint64_t sec;
	uint8_t *b;

	if (size < 1)
		return 0;
	sb.blocksize = data[0] & 0x40 ? 4096 : 1024;
	sb.incompat = layouts[data[0] & 7];
	sb.csum_type = JB_CSUM_CRC32C;
	memset(sb.uuid, data[0], sizeof(sb.uuid));
	if (jb_fmt_init(&f, &sb))
		abort();
	/* an exact-size heap copy: ASan sees any overread */
	b = malloc(size - 1 ? size - 1 : 1);
	memcpy(b, data + 1, size - 1);
	if (data[0] & 0x80)
		fix_block(&f, b, size - 1);
	check_super(b, size - 1);
	check_desc(&f, b, size - 1);
	check_revoke(&f, b, size - 1);
	if (jb_commit_decode(&f, b, size - 1, &seq, &sec, &nsec) == 0 &&
	    size - 1 < f.blocksize)
		abort();
	free(b);
	return 0;
}
