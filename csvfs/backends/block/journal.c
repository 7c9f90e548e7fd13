// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The jbd2 journal of a csvfs block volume (see journal.h): open,
 * replay, commit and checkpoint over the block callbacks, with the
 * on-disk encoding left to jbd2.c.
 *
 * The log is the circular range [s_first, s_maxlen) of journal blocks.
 * tail is the first block of the oldest transaction not yet written
 * home (s_start on disk while the log is non-empty), head the next free
 * block; used counts the blocks in between, so a full log and an empty
 * one are told apart without giving up a block.
 */
#include "journal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal_i.h"

/* Physical block of journal block lblk, or 0 when outside the map. */
static uint64_t jmap(const struct cvj_journal *j, uint64_t lblk)
{
	for (unsigned i = 0; i < j->nmap; i++) {
		const struct cvj_extent *e = &j->map[i];

		if (lblk >= e->lblk && lblk - e->lblk < e->len)
			return e->pblk + (lblk - e->lblk);
	}
	return 0;
}

int cvj_jread(struct cvj_journal *j, uint32_t lblk, void *buf)
{
	uint64_t p = jmap(j, lblk);

	return p ? j->dev.read(j->dev.priv, p, 1, buf) : -EIO;
}

int cvj_jwrite(struct cvj_journal *j, uint32_t lblk, const void *buf)
{
	uint64_t p = jmap(j, lblk);

	return p ? j->dev.write(j->dev.priv, p, 1, buf) : -EIO;
}

uint32_t cvj_log_next(const struct cvj_journal *j, uint32_t pos)
{
	return pos + 1 >= j->sb.maxlen ? j->sb.first : pos + 1;
}

uint32_t cvj_log_size(const struct cvj_journal *j)
{
	return j->sb.maxlen - j->sb.first;
}

int cvj_write_super(struct cvj_journal *j)
{
	int rc = jb_super_encode(&j->sb, j->sbblk, j->dev.blocksize);

	if (!rc)
		rc = cvj_jwrite(j, 0, j->sbblk);
	if (!rc)
		rc = j->dev.flush(j->dev.priv);
	return rc;
}

static bool map_covers(const struct cvj_journal *j)
{
	for (uint32_t l = 0; l < j->sb.maxlen; l++)
		if (!jmap(j, l))
			return false;
	return true;
}

static int open_super(struct cvj_journal *j)
{
	int rc = cvj_jread(j, 0, j->sbblk);

	if (rc)
		return rc;
	rc = jb_super_decode(j->sbblk, j->dev.blocksize, &j->sb);
	if (rc)
		return rc;
	if (j->sb.blocktype != JB_SB_V2)
		return -EOPNOTSUPP;
	if (j->sb.blocksize != j->dev.blocksize)
		return -EINVAL;
	if (!map_covers(j))
		return -EINVAL;
	rc = jb_fmt_init(&j->fmt, &j->sb);
	j->head = j->sb.first;
	j->used = 0;
	j->head_seq = j->sb.sequence;
	j->needs_replay = j->sb.start != 0;
	return rc;
}

int cvj_open(const struct cvj_dev *dev, const struct cvj_extent *map,
	     unsigned nmap, struct cvj_journal **out)
{
	struct cvj_journal *j = calloc(1, sizeof(*j));
	int rc = -ENOMEM;

	if (!j)
		return -ENOMEM;
	j->dev = *dev;
	j->nmap = nmap;
	j->map = calloc(nmap ? nmap : 1, sizeof(*map));
	j->sbblk = malloc(dev->blocksize);
	j->buf = malloc(dev->blocksize);
	if (!j->map || !j->sbblk || !j->buf)
		goto fail;
	memcpy(j->map, map, nmap * sizeof(*map));
	blkmap_init(&j->pending, dev->blocksize);
	rc = open_super(j);
	if (rc)
		goto fail;
	*out = j;
	return 0;
fail:
	cvj_close(j);
	return rc;
}

void cvj_close(struct cvj_journal *j)
{
	if (!j)
		return;
	blkmap_free(&j->pending);
	free(j->map);
	free(j->sbblk);
	free(j->buf);
	free(j);
}

bool cvj_needs_recovery(const struct cvj_journal *j)
{
	return j->needs_replay;
}

int cvj_aborted(const struct cvj_journal *j)
{
	return j->aborted;
}

const struct jb_super *cvj_super(const struct cvj_journal *j)
{
	return &j->sb;
}

void cvj_get_stats(const struct cvj_journal *j, struct cvj_stats *st)
{
	*st = j->st;
}

const uint8_t *cvj_pending(const struct cvj_journal *j, uint64_t blk)
{
	return blkmap_find(&j->pending, blk);
}

int cvj_set_features(struct cvj_journal *j, uint32_t incompat)
{
	struct jb_super sb = j->sb;
	int rc;

	if (j->needs_replay || j->used || j->sb.start)
		return -EBUSY;
	sb.incompat |= incompat;
	if (incompat & JB_INCOMPAT_CSUM_V3)
		sb.incompat &= ~JB_INCOMPAT_CSUM_V2;
	if (sb.incompat & (JB_INCOMPAT_CSUM_V2 | JB_INCOMPAT_CSUM_V3)) {
		sb.compat &= ~JB_COMPAT_CHECKSUM;
		sb.csum_type = JB_CSUM_CRC32C;
	}
	rc = jb_fmt_init(&j->fmt, &sb);
	if (rc) {
		jb_fmt_init(&j->fmt, &j->sb);
		return rc;
	}
	j->sb = sb;
	return cvj_write_super(j);
}

uint32_t cvj_txn_size(const struct cvj_journal *j, unsigned nblocks,
		      unsigned nrevoke)
{
	unsigned dcap = jb_desc_capacity(&j->fmt);
	unsigned rcap = jb_revoke_capacity(&j->fmt);

	return (nblocks + dcap - 1) / dcap + nblocks +
	       (nrevoke + rcap - 1) / rcap + 1;
}

/* Write one logged block at head and advance head. */
static int log_put(struct cvj_journal *j, uint32_t *head, const void *buf)
{
	int rc = cvj_jwrite(j, *head, buf);

	*head = cvj_log_next(j, *head);
	return rc;
}

/* One descriptor block for blocks[0..n) followed by their (escaped)
 * copies.  The tag checksum covers the block as logged. */
static int log_desc_chunk(struct cvj_journal *j, uint32_t *head,
			  const struct cvj_block *blocks, unsigned n,
			  struct jb_tag *tags, uint8_t *copy)
{
	uint32_t bs = j->dev.blocksize, seq = j->head_seq;
	uint32_t dpos = *head;
	int rc;

	*head = cvj_log_next(j, *head);	/* the descriptor goes last */
	for (unsigned i = 0; i < n; i++) {
		memcpy(copy, blocks[i].data, bs);
		tags[i].blocknr = blocks[i].home;
		tags[i].flags = 0;
		if (jb_needs_escape(copy)) {
			jb_escape(copy);
			tags[i].flags = JB_FLAG_ESCAPE;
		}
		tags[i].csum = jb_block_csum(&j->fmt, seq, copy);
		rc = log_put(j, head, copy);
		if (rc)
			return rc;
	}
	rc = jb_desc_encode(&j->fmt, seq, tags, n, copy);
	return rc ? rc : cvj_jwrite(j, dpos, copy);
}

static int log_blocks(struct cvj_journal *j, uint32_t *head,
		      const struct cvj_block *blocks, unsigned n)
{
	unsigned cap = jb_desc_capacity(&j->fmt);
	struct jb_tag *tags = calloc(cap, sizeof(*tags));
	int rc = tags ? 0 : -ENOMEM;

	for (unsigned i = 0; !rc && i < n; i += cap)
		rc = log_desc_chunk(j, head, blocks + i,
				    n - i < cap ? n - i : cap, tags, j->buf);
	free(tags);
	return rc;
}

static bool written_in(const struct cvj_block *blocks, unsigned n,
		       uint64_t blk)
{
	for (unsigned i = 0; i < n; i++)
		if (blocks[i].home == blk)
			return true;
	return false;
}

static int log_revokes(struct cvj_journal *j, uint32_t *head,
		       const struct cvj_block *blocks, unsigned n,
		       const uint64_t *revokes, unsigned nrev)
{
	unsigned cap = jb_revoke_capacity(&j->fmt), k = 0;
	uint64_t *rec = calloc(cap, sizeof(*rec));
	int rc = rec ? 0 : -ENOMEM;

	for (unsigned i = 0; !rc && i <= nrev; i++) {
		if (i < nrev && !written_in(blocks, n, revokes[i]))
			rec[k++] = revokes[i];
		if (k && (k == cap || i == nrev)) {
			rc = jb_revoke_encode(&j->fmt, j->head_seq, rec, k,
					      j->buf);
			if (!rc)
				rc = log_put(j, head, j->buf);
			k = 0;
		}
	}
	free(rec);
	return rc;
}

static int log_commit_block(struct cvj_journal *j, uint32_t *head)
{
	struct timespec ts;
	int rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	rc = jb_commit_encode(&j->fmt, j->head_seq, (uint64_t)ts.tv_sec,
			      (uint32_t)ts.tv_nsec, j->buf);
	return rc ? rc : log_put(j, head, j->buf);
}

/* Keep the committed contents for reads and for the checkpoint. */
static int remember(struct cvj_journal *j, const struct cvj_block *blocks,
		    unsigned n, const uint64_t *revokes, unsigned nrev)
{
	for (unsigned i = 0; i < nrev; i++)
		if (!written_in(blocks, n, revokes[i]))
			blkmap_drop(&j->pending, revokes[i]);
	for (unsigned i = 0; i < n; i++) {
		int added;
		uint8_t *d = blkmap_get_or_add(&j->pending, blocks[i].home,
					       &added);

		if (!d)
			return -ENOMEM;
		memcpy(d, blocks[i].data, j->dev.blocksize);
	}
	return 0;
}

/* The first transaction after an empty log points s_start at it before
 * anything is logged, as jbd2 does, so that the superblock never names
 * a log whose older part is already overwritten. */
static int open_log(struct cvj_journal *j)
{
	if (j->sb.start)
		return 0;
	j->sb.start = j->head;
	j->sb.sequence = j->head_seq;
	return cvj_write_super(j);
}

int cvj_commit(struct cvj_journal *j, const struct cvj_block *blocks,
	       unsigned n, const uint64_t *revokes, unsigned nrev)
{
	uint32_t need = cvj_txn_size(j, n, nrev), head;
	int rc;

	if (j->aborted)
		return j->aborted;
	if (j->needs_replay)
		return -EUCLEAN;
	if (need > cvj_log_size(j))
		return -EFBIG;
	if (n == 0 && nrev == 0)
		return 0;
	if (j->used + need > cvj_log_size(j)) {
		rc = cvj_checkpoint(j);
		if (rc)
			return rc;
	}
	rc = open_log(j);
	head = j->head;
	if (!rc)
		rc = log_blocks(j, &head, blocks, n);
	if (!rc)
		rc = log_revokes(j, &head, blocks, n, revokes, nrev);
	if (!rc)
		rc = j->dev.flush(j->dev.priv);
	if (!rc)
		rc = log_commit_block(j, &head);
	if (!rc)
		rc = j->dev.flush(j->dev.priv);
	if (rc) {
		/* Like jbd2, stop on a failed commit: what reached the log
		 * is sorted out by replay after a reopen. */
		j->aborted = rc;
		return rc;
	}
	j->head = head;
	j->used += need;
	j->head_seq++;
	j->st.commits++;
	j->st.blocks_logged += n;
	return remember(j, blocks, n, revokes, nrev);
}

int cvj_checkpoint(struct cvj_journal *j)
{
	const struct blkmap *p = &j->pending;
	int rc = 0;

	if (j->aborted)
		return j->aborted;
	if (j->needs_replay)
		return -EUCLEAN;
	if (!j->used && !j->sb.start)
		return 0;
	for (size_t i = 0; !rc && i < p->n; i++) {
		if (!p->ents[i].data)
			continue;	/* revoked since it was logged */
		rc = j->dev.write(j->dev.priv, p->ents[i].blk, 1,
				  p->ents[i].data);
		j->st.blocks_home++;
	}
	if (!rc)
		rc = j->dev.flush(j->dev.priv);
	j->sb.start = 0;
	j->sb.sequence = j->head_seq;
	if (!rc)
		rc = cvj_write_super(j);
	if (rc) {
		j->aborted = rc;
		return rc;
	}
	j->used = 0;
	j->st.checkpoints++;
	blkmap_clear(&j->pending);
	return 0;
}
