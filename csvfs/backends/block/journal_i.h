/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to the journal: the journal object and the helpers that
 * journal.c (open, commit, checkpoint) and replay.c share.
 */
#ifndef CSVFS_JOURNAL_I_H
#define CSVFS_JOURNAL_I_H

#include "blkmap.h"
#include "journal.h"

struct cvj_journal {
	struct cvj_dev dev;
	struct cvj_extent *map;
	unsigned nmap;
	struct jb_super sb;
	struct jb_fmt fmt;
	uint8_t *sbblk;		/* journal block 0 as on disk */
	uint8_t *buf;		/* one scratch block */
	uint32_t head, used;	/* see the top of journal.c */
	uint32_t head_seq;	/* sequence of the next transaction */
	struct blkmap pending;	/* committed, not yet home */
	struct cvj_stats st;
	bool needs_replay;	/* the log was non-empty at open */
	int aborted;		/* first error of a failed commit/checkpoint */
};

int cvj_jread(struct cvj_journal *j, uint32_t lblk, void *buf);
int cvj_jwrite(struct cvj_journal *j, uint32_t lblk, const void *buf);
uint32_t cvj_log_next(const struct cvj_journal *j, uint32_t pos);
/* Encode j->sb into block 0, write it and flush. */
int cvj_write_super(struct cvj_journal *j);

#endif
