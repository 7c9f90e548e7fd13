/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An ext4 (jbd2) journal written and replayed by csvfs, over a block
 * device seen through three callbacks.  One writer per journal: the
 * coordinator node of a block volume.  Not thread-safe; the caller
 * serialises every call on one journal.
 *
 * Life cycle: cvj_open reads the journal superblock; if
 * cvj_needs_recovery, cvj_replay must run before anything else (and
 * before the file system's metadata is trusted).  cvj_commit makes one
 * transaction durable in the log (descriptors and data, flush, commit
 * block, flush); the committed blocks are kept in memory and written
 * home by cvj_checkpoint, which runs by itself when the log is full.
 *
 * Crash safety: a process death at any point leaves a log from which
 * replay applies each transaction whole or not at all: the commit block
 * is written only after everything it covers is flushed, and replay
 * accepts a transaction only with a valid commit block of the expected
 * sequence and tags whose checksums match their blocks.
 *
 * Limits: sequence numbers are compared without 2^32 wraparound; the
 * journal must be internal (inode 8), its blocks given as extents.
 */
#ifndef CSVFS_JOURNAL_H
#define CSVFS_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "jbd2.h"

/* Block I/O on the file system's device, in file-system blocks of
 * blocksize bytes.  Callbacks return 0 or -errno; buffers belong to the
 * caller of the callback and hold count * blocksize bytes. */
struct cvj_dev {
	void *priv;
	uint32_t blocksize;
	int (*read)(void *priv, uint64_t blk, unsigned count, void *buf);
	int (*write)(void *priv, uint64_t blk, unsigned count,
		     const void *buf);
	int (*flush)(void *priv);
};

/* The journal inode's blocks: logical lblk .. lblk+len-1 of the journal
 * live at physical pblk .. pblk+len-1 of the device. */
struct cvj_extent {
	uint64_t lblk;
	uint64_t pblk;
	uint32_t len;
};

/* One block of a transaction: home block number and its new contents
 * (blocksize bytes, owned by the caller, only read). */
struct cvj_block {
	uint64_t home;
	const uint8_t *data;
};

struct cvj_replay_info {
	uint32_t transactions;	/* complete transactions applied */
	uint32_t blocks;	/* blocks written home */
	uint32_t revoked;	/* logged blocks skipped because revoked */
	uint32_t first_seq, next_seq;	/* replayed sequence range */
	int stop;		/* why the scan ended: 0 end of log, or
				 * -EBADMSG a bad checksum / header */
	bool wrapped;		/* the replayed log crossed the journal's end */
	uint32_t log_blocks;	/* log blocks those transactions take */
};

struct cvj_stats {
	uint64_t commits, blocks_logged, checkpoints, blocks_home;
};

struct cvj_journal;

/* Open the journal.  dev and map are copied.  -EOPNOTSUPP for journal
 * features we do not support, -EBADMSG for a corrupt superblock. */
int cvj_open(const struct cvj_dev *dev, const struct cvj_extent *map,
	     unsigned nmap, struct cvj_journal **out);
/* No I/O: what is committed and not checkpointed stays in the log. */
void cvj_close(struct cvj_journal *j);

bool cvj_needs_recovery(const struct cvj_journal *j);
/* The error that stopped the journal (a commit or checkpoint that
 * failed, as jbd2 aborts), 0 while it works: once stopped, every commit
 * fails with it and what reached the log is sorted out by the replay of
 * the next open. */
int cvj_aborted(const struct cvj_journal *j);
const struct jb_super *cvj_super(const struct cvj_journal *j);
/* Log blocks a transaction of nblocks blocks and nrevoke revokes needs. */
uint32_t cvj_txn_size(const struct cvj_journal *j, unsigned nblocks,
		      unsigned nrevoke);
uint32_t cvj_log_size(const struct cvj_journal *j);
void cvj_get_stats(const struct cvj_journal *j, struct cvj_stats *st);

/* Apply the log to the device and mark the journal empty.  info may be
 * NULL.  A log that ends in a torn or corrupt block is not an error:
 * replay stops there (info->stop says so). */
int cvj_replay(struct cvj_journal *j, struct cvj_replay_info *info);

/* What cvj_replay would replay (info as it gives it, log_blocks the
 * part of the log in use), without writing anything: for reports on a
 * journal another process may be writing (then a snapshot). */
int cvj_scan(struct cvj_journal *j, struct cvj_replay_info *info);

/* On an empty journal, turn on incompat features (JB_INCOMPAT_*) as the
 * kernel does at mount: REVOKE, 64BIT for a 64bit file system, CSUM_V3
 * for metadata_csum (with crc32c).  Rewrites the superblock. */
int cvj_set_features(struct cvj_journal *j, uint32_t incompat);

/* Make one transaction durable: blocks written, revokes (home block
 * numbers freed in this transaction, so that older logged copies are
 * not replayed over new data).  A block both written and revoked is
 * written.  -EFBIG if it cannot fit in the log even when empty,
 * -EUCLEAN if the journal needs recovery first. */
int cvj_commit(struct cvj_journal *j, const struct cvj_block *blocks,
	       unsigned n, const uint64_t *revokes, unsigned nrevoke);

/* The newest committed contents of home block blk not yet written home
 * (blocksize bytes owned by the journal, valid until the next commit,
 * checkpoint or close), or NULL. */
const uint8_t *cvj_pending(const struct cvj_journal *j, uint64_t blk);

/* Write every committed block home, flush, mark the journal empty. */
int cvj_checkpoint(struct cvj_journal *j);

#endif
