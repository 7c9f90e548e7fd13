// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Journal replay (see journal.h).  Three steps, as the format requires:
 * scan the log from s_start for complete transactions of consecutive
 * sequence numbers (a transaction counts only once its commit block and
 * every logged block check out), gather the revoke records of those
 * transactions, then write every logged block home in log order unless
 * a revoke of the same or a later transaction covers it.  The scan
 * stops, without error, at the first block that is not the expected
 * next header or fails its checksum: that is where the writer died.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "journal_i.h"

struct rp_item {
	uint64_t home;
	uint32_t logpos, seq, flags;
	uint32_t csum;
};

struct rp_rev {
	uint64_t blk;
	uint32_t seq;
};

struct rp_scan {
	struct rp_item *items;
	size_t nitems, capitems;
	struct rp_rev *revs;
	size_t nrevs, caprevs;
	struct jb_tag *tags;	/* jb_desc_max_tags entries */
	uint64_t *rblocks;	/* jb_revoke_capacity entries */
	uint32_t pos, seq, budget;
	uint32_t wrap_seq;	/* first transaction that wrapped, 0 none */
};

static int push_item(struct rp_scan *s, const struct jb_tag *t,
		     uint32_t pos, uint32_t seq)
{
	if (s->nitems == s->capitems) {
		size_t cap = s->capitems ? 2 * s->capitems : 256;
		struct rp_item *n = realloc(s->items, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->items = n;
		s->capitems = cap;
	}
	s->items[s->nitems++] = (struct rp_item){ t->blocknr, pos, seq,
						  t->flags, t->csum };
	return 0;
}

static int push_rev(struct rp_scan *s, uint64_t blk, uint32_t seq)
{
	if (s->nrevs == s->caprevs) {
		size_t cap = s->caprevs ? 2 * s->caprevs : 256;
		struct rp_rev *n = realloc(s->revs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		s->revs = n;
		s->caprevs = cap;
	}
	s->revs[s->nrevs++] = (struct rp_rev){ blk, seq };
	return 0;
}

/* Advance the scan position; false once the whole log has been walked
 * (a log cannot hold more than itself). */
static bool scan_step(struct cvj_journal *j, struct rp_scan *s)
{
	uint32_t next = cvj_log_next(j, s->pos);

	if (next < s->pos && !s->wrap_seq)
		s->wrap_seq = s->seq;
	s->pos = next;
	return s->budget-- > 0;
}

static int scan_desc(struct cvj_journal *j, struct rp_scan *s)
{
	unsigned n;
	uint32_t seq;
	int rc = jb_desc_decode(&j->fmt, j->buf, j->dev.blocksize, &seq,
				s->tags, jb_desc_max_tags(&j->fmt), &n);

	if (rc)
		return rc;
	for (unsigned i = 0; i < n; i++) {
		if (!scan_step(j, s))
			return -EBADMSG;
		rc = push_item(s, &s->tags[i], s->pos, s->seq);
		if (rc)
			return rc;
	}
	return 0;
}

static int scan_revoke(struct cvj_journal *j, struct rp_scan *s)
{
	unsigned n;
	uint32_t seq;
	int rc = jb_revoke_decode(&j->fmt, j->buf, j->dev.blocksize, &seq,
				  s->rblocks, jb_revoke_capacity(&j->fmt), &n);

	for (unsigned i = 0; !rc && i < n; i++)
		rc = push_rev(s, s->rblocks[i], s->seq);
	return rc;
}

/* Every block logged since item `from` matches its tag checksum. */
static int check_data(struct cvj_journal *j, struct rp_scan *s, size_t from)
{
	for (size_t i = from; i < s->nitems; i++) {
		struct jb_tag t = { .csum = s->items[i].csum };
		int rc = cvj_jread(j, s->items[i].logpos, j->buf);

		if (rc)
			return rc;
		if (!jb_tag_csum_ok(&j->fmt, &t, s->seq, j->buf))
			return -EBADMSG;
	}
	return 0;
}

/* One block of the transaction s->seq at s->pos: 1 when it was the
 * commit block, 0 to go on, -ENOENT at a clean end of the log. */
static int scan_block(struct cvj_journal *j, struct rp_scan *s,
		      size_t first_item)
{
	uint32_t type, seq, nsec;
	uint64_t sec;
	int rc = cvj_jread(j, s->pos, j->buf);

	if (rc)
		return rc;
	rc = jb_header_decode(j->buf, j->dev.blocksize, &type, &seq);
	if (rc || seq != s->seq)
		return -ENOENT;
	switch (type) {
	case JB_DESCRIPTOR:
		rc = scan_desc(j, s);
		break;
	case JB_REVOKE:
		rc = scan_revoke(j, s);
		break;
	case JB_COMMIT:
		rc = jb_commit_decode(&j->fmt, j->buf, j->dev.blocksize, &seq,
				      &sec, &nsec);
		if (!rc)
			rc = check_data(j, s, first_item);
		if (!rc)
			rc = 1;
		break;
	default:
		return -ENOENT;
	}
	if (rc >= 0 && !scan_step(j, s))
		return -EBADMSG;
	return rc;
}

/* Scan one transaction: 1 if complete, else what ended the log (0 for a
 * clean end, -EBADMSG for a bad block); items and revokes of an
 * incomplete transaction are forgotten. */
static int scan_txn(struct cvj_journal *j, struct rp_scan *s)
{
	size_t items = s->nitems, revs = s->nrevs;
	uint32_t pos = s->pos;
	int rc;

	do
		rc = scan_block(j, s, items);
	while (rc == 0);
	if (rc == 1) {
		s->seq++;
		return 1;
	}
	s->nitems = items;
	s->nrevs = revs;
	s->pos = pos;
	return rc == -ENOENT ? 0 : rc;
}

static int rev_cmp(const void *a, const void *b)
{
	const struct rp_rev *x = a, *y = b;

	if (x->blk != y->blk)
		return x->blk < y->blk ? -1 : 1;
	return x->seq < y->seq ? 1 : (x->seq > y->seq ? -1 : 0);
}

/* Revoked: a revoke record of the block in this or a later transaction
 * (revs sorted by block, highest sequence first). */
static bool revoked(const struct rp_scan *s, const struct rp_item *it)
{
	size_t lo = 0, hi = s->nrevs;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (s->revs[mid].blk < it->home)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < s->nrevs && s->revs[lo].blk == it->home &&
	       s->revs[lo].seq >= it->seq;
}

static int apply(struct cvj_journal *j, struct rp_scan *s,
		 struct cvj_replay_info *info)
{
	if (s->nrevs)
		qsort(s->revs, s->nrevs, sizeof(*s->revs), rev_cmp);
	for (size_t i = 0; i < s->nitems; i++) {
		const struct rp_item *it = &s->items[i];
		int rc;

		if (revoked(s, it)) {
			info->revoked++;
			continue;
		}
		rc = cvj_jread(j, it->logpos, j->buf);
		if (rc)
			return rc;
		if (it->flags & JB_FLAG_ESCAPE)
			jb_unescape(j->buf);
		rc = j->dev.write(j->dev.priv, it->home, 1, j->buf);
		if (rc)
			return rc;
		info->blocks++;
	}
	return j->dev.flush(j->dev.priv);
}

static int scan_all(struct cvj_journal *j, struct rp_scan *s,
		    struct cvj_replay_info *info)
{
	int rc;

	s->pos = j->sb.start;
	s->seq = j->sb.sequence;
	s->budget = cvj_log_size(j);
	info->first_seq = s->seq;
	while ((rc = scan_txn(j, s)) == 1)
		info->transactions++;
	info->next_seq = s->seq;
	info->log_blocks = s->pos >= j->sb.start
				   ? s->pos - j->sb.start
				   : s->pos + cvj_log_size(j) - j->sb.start;
	info->wrapped = s->wrap_seq && s->wrap_seq < s->seq;
	if (rc == -EBADMSG) {
		info->stop = rc;
		rc = 0;
	}
	return rc;
}

/* The journal is empty again; its next transaction gets a sequence
 * number past any transaction the scan may have half-seen, so no stale
 * block of it can ever pass for part of a new one. */
static int close_log(struct cvj_journal *j, uint32_t next_seq)
{
	j->sb.start = 0;
	j->sb.sequence = next_seq + 1;
	j->head = j->sb.first;
	j->head_seq = j->sb.sequence;
	j->used = 0;
	return cvj_write_super(j);
}

/* Scan the log (apply_it: and write it home, then mark it empty). */
static int replay(struct cvj_journal *j, struct cvj_replay_info *info,
		  bool apply_it)
{
	struct cvj_replay_info dummy;
	struct rp_scan s = { 0 };
	int rc = -ENOMEM;

	if (!info)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	if (!j->needs_replay)
		return 0;
	s.tags = calloc(jb_desc_max_tags(&j->fmt), sizeof(*s.tags));
	s.rblocks = calloc(jb_revoke_capacity(&j->fmt), sizeof(*s.rblocks));
	if (!s.tags || !s.rblocks)
		goto out;
	rc = scan_all(j, &s, info);
	if (!apply_it)
		goto out;
	if (!rc)
		rc = apply(j, &s, info);
	if (!rc)
		rc = close_log(j, info->next_seq);
	if (!rc)
		j->needs_replay = false;
out:
	free(s.items);
	free(s.revs);
	free(s.tags);
	free(s.rblocks);
	return rc;
}

int cvj_replay(struct cvj_journal *j, struct cvj_replay_info *info)
{
	return replay(j, info, true);
}

int cvj_scan(struct cvj_journal *j, struct cvj_replay_info *info)
{
	return replay(j, info, false);
}
