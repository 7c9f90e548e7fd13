/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * jbd2 on-disk codec: the journal superblock, descriptor blocks with
 * their block tags, revoke blocks and commit blocks of ext4's journal,
 * written from the published format (Documentation/filesystems/ext4/
 * journal.rst).  Pure: no I/O, no clock, no allocation.  Everything on
 * disk is big-endian; the conversions live in jbd2.c alone.
 *
 * Buffers: every function works on a caller-owned block buffer of
 * fmt->blocksize bytes (the superblock functions on JB_SB_SIZE bytes).
 * Encoders write only into the buffer they are given; decoders only
 * read it, check every length against the buffer size and return
 * -EBADMSG for anything malformed (bad magic, type, sizes, checksum),
 * -EOPNOTSUPP for a valid journal using a feature we cannot honour.
 *
 * Supported: superblock v2 (and v1 for reading), INCOMPAT_REVOKE,
 * INCOMPAT_64BIT, INCOMPAT_CSUM_V2 and CSUM_V3 with crc32c.  Refused:
 * ASYNC_COMMIT, FAST_COMMIT (and any fast-commit area), COMPAT_CHECKSUM
 * (v1 crc32 commit checksums) and unknown incompat bits.
 */
#ifndef CSVFS_JBD2_H
#define CSVFS_JBD2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JB_MAGIC 0xC03B3998u
#define JB_SB_SIZE 1024u	/* bytes of the superblock we checksum */
#define JB_HDR_SIZE 12u		/* magic, type, sequence */
#define JB_TAIL_SIZE 4u		/* block tail checksum (csum v2/v3) */
#define JB_UUID_SIZE 16u
#define JB_MIN_BLOCKSIZE 1024u
#define JB_MAX_BLOCKSIZE 65536u

enum jb_blocktype {
	JB_DESCRIPTOR = 1,
	JB_COMMIT = 2,
	JB_SB_V1 = 3,
	JB_SB_V2 = 4,
	JB_REVOKE = 5,
};

#define JB_COMPAT_CHECKSUM 0x1u
#define JB_INCOMPAT_REVOKE 0x1u
#define JB_INCOMPAT_64BIT 0x2u
#define JB_INCOMPAT_ASYNC_COMMIT 0x4u
#define JB_INCOMPAT_CSUM_V2 0x8u
#define JB_INCOMPAT_CSUM_V3 0x10u
#define JB_INCOMPAT_FAST_COMMIT 0x20u
#define JB_INCOMPAT_SUPPORTED \
	(JB_INCOMPAT_REVOKE | JB_INCOMPAT_64BIT | JB_INCOMPAT_CSUM_V2 | \
	 JB_INCOMPAT_CSUM_V3)

#define JB_CSUM_CRC32C 4u

/* Tag flags. */
#define JB_FLAG_ESCAPE 0x1u
#define JB_FLAG_SAME_UUID 0x2u
#define JB_FLAG_DELETED 0x4u
#define JB_FLAG_LAST_TAG 0x8u

/* The fields of the journal superblock we use; the rest of the 1 KiB
 * (s_users, padding) is left as it is on disk by jb_super_encode. */
struct jb_super {
	uint32_t blocktype;	/* JB_SB_V1 or JB_SB_V2 */
	uint32_t blocksize;
	uint32_t maxlen;	/* blocks in the journal, superblock included */
	uint32_t first;		/* first log block */
	uint32_t sequence;	/* first transaction expected at start */
	uint32_t start;		/* first log block of the log, 0 = empty */
	int32_t err;		/* s_errno */
	uint32_t compat, incompat, ro_compat;
	uint8_t uuid[JB_UUID_SIZE];
	uint32_t nr_users;
	uint32_t max_transaction, max_trans_data;
	uint8_t csum_type;
	uint32_t num_fc_blocks;
	uint32_t checksum;	/* as read; recomputed on encode */
};

/* What the block codecs need to know about one journal. */
struct jb_fmt {
	uint32_t blocksize;
	uint32_t incompat;
	uint8_t uuid[JB_UUID_SIZE];
	uint32_t csum_seed;	/* crc32c(~0, uuid) when csum v2/v3 */
};

/* One block tag of a descriptor block. */
struct jb_tag {
	uint64_t blocknr;	/* home block number on the file system */
	uint32_t flags;		/* JB_FLAG_*; encoders set SAME_UUID/LAST */
	uint32_t csum;		/* crc32c of the logged block (v2: low 16) */
};

int jb_super_decode(const uint8_t *buf, size_t len, struct jb_super *sb);
/* Encode sb into buf (JB_SB_SIZE bytes holding the old superblock, so
 * the fields this codec does not model are kept) and set its checksum
 * when csum v2/v3 is on. */
int jb_super_encode(const struct jb_super *sb, uint8_t *buf, size_t len);
int jb_fmt_init(struct jb_fmt *fmt, const struct jb_super *sb);

bool jb_has_csum(const struct jb_fmt *fmt);
size_t jb_tag_bytes(const struct jb_fmt *fmt);
/* Most tags one descriptor block holds (the first carries the UUID). */
unsigned jb_desc_capacity(const struct jb_fmt *fmt);
/* Size of the tags array a decoder needs for any valid descriptor. */
unsigned jb_desc_max_tags(const struct jb_fmt *fmt);
/* Most block numbers one revoke block holds (also enough to decode). */
unsigned jb_revoke_capacity(const struct jb_fmt *fmt);

/* Read the common header: 0, or -ENOENT if the block does not start
 * with the jbd2 magic (a data block or free space), -EBADMSG if short. */
int jb_header_decode(const uint8_t *buf, size_t len, uint32_t *type,
		     uint32_t *seq);

/* Checksum of one logged block (as written in the log, i.e. escaped). */
uint32_t jb_block_csum(const struct jb_fmt *fmt, uint32_t seq,
		       const uint8_t *data);
bool jb_tag_csum_ok(const struct jb_fmt *fmt, const struct jb_tag *tag,
		    uint32_t seq, const uint8_t *data);

/* A data block that starts with the magic is logged with those 4 bytes
 * zeroed and JB_FLAG_ESCAPE on its tag; replay puts the magic back. */
bool jb_needs_escape(const uint8_t *data);
void jb_escape(uint8_t *data);
void jb_unescape(uint8_t *data);

int jb_desc_encode(const struct jb_fmt *fmt, uint32_t seq,
		   const struct jb_tag *tags, unsigned n, uint8_t *buf);
/* Decode at most max tags into tags; *n gets the count. */
int jb_desc_decode(const struct jb_fmt *fmt, const uint8_t *buf,
		   size_t len, uint32_t *seq, struct jb_tag *tags,
		   unsigned max, unsigned *n);

int jb_revoke_encode(const struct jb_fmt *fmt, uint32_t seq,
		     const uint64_t *blocks, unsigned n, uint8_t *buf);
int jb_revoke_decode(const struct jb_fmt *fmt, const uint8_t *buf,
		     size_t len, uint32_t *seq, uint64_t *blocks,
		     unsigned max, unsigned *n);

int jb_commit_encode(const struct jb_fmt *fmt, uint32_t seq, uint64_t sec,
		     uint32_t nsec, uint8_t *buf);
int jb_commit_decode(const struct jb_fmt *fmt, const uint8_t *buf,
		     size_t len, uint32_t *seq, uint64_t *sec,
		     uint32_t *nsec);

#endif
