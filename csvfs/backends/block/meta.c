// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta.c: the metadata engine's life cycle (open with feature check,
 * replay and orphan processing; close), its transactions (operations
 * staged group by group, commit) and the inode helpers the other meta_*
 * files share.  See meta.h for the contract and meta_i.h for the
 * operation protocol.
 *
 * Why not ext2fs_flush: it writes every group's descriptor and, once a
 * bitmap is dirty, every group's bitmaps, so a transaction would grow
 * with the volume.  libext2fs tells us through its allocation callbacks
 * which blocks change owner; inode accounting goes through
 * cvb_inode_stats.  Those groups, and only those, are written with
 * their checksums at the end of each operation.
 */
#include "meta_i.h"
#include "lun.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

int cvb_err(errcode_t e)
{
	if (e == 0)
		return 0;
	if (e < 256 && e > 0)
		return -(int)e; /* errno from the io_manager */
	switch (e) {
	case EXT2_ET_NO_MEMORY:
		return -ENOMEM;
	case EXT2_ET_BLOCK_ALLOC_FAIL:
	case EXT2_ET_INODE_ALLOC_FAIL:
	case EXT2_ET_DIR_NO_SPACE:
	case EXT2_ET_EA_NO_SPACE:
	case EXT2_ET_INLINE_DATA_NO_SPACE:
		return -ENOSPC;
	case EXT2_ET_EA_KEY_NOT_FOUND:
		return -ENODATA;
	case EXT2_ET_FILE_NOT_FOUND:
		return -ENOENT;
	case EXT2_ET_NO_DIRECTORY:
		return -ENOTDIR;
	case EXT2_ET_FILE_TOO_BIG:
		return -EFBIG;
	case EXT2_ET_RO_FILSYS:
		return -EROFS;
	case EXT2_ET_UNIMPLEMENTED:
	case EXT2_ET_OP_NOT_SUPPORTED:
		return -EOPNOTSUPP;
	case EXT2_ET_EA_BAD_NAME_LEN:
		return -ERANGE;
	case EXT2_ET_INVALID_ARGUMENT:
		return -EINVAL;
	default:
		if (getenv("CVB_DEBUG")) /* com_err's error_message() names it
					  */
			fprintf(stderr, "cvb: libext2fs error %ld\n", (long)e);
		return -EIO;
	}
}

/* ---- per-inode memory ------------------------------------------- */

struct cvb_ino *cvb_ino_get(struct cvb_meta *m, uint64_t ino, bool add)
{
	size_t h =
		(size_t)((ino * 0x9E3779B97F4A7C15ull) >> 40) & (m->nitab - 1);
	struct cvb_ino *e;

	for (e = m->itab[h]; e; e = e->next)
		if (e->ino == ino)
			return e;
	if (!add || !(e = calloc(1, sizeof(*e))))
		return NULL;
	e->ino = ino;
	e->gen = m->gen_base;
	e->next = m->itab[h];
	m->itab[h] = e;
	return e;
}

uint64_t cvb_gen(struct cvb_meta *m, uint64_t ino)
{
	struct cvb_ino *e = cvb_ino_get(m, ino, false);

	return e ? e->gen : m->gen_base;
}

void cvb_gen_bump(struct cvb_meta *m, uint64_t ino)
{
	struct cvb_ino *e = cvb_ino_get(m, ino, true);

	if (e)
		e->gen++;
	else
		m->gen_base++; /* no memory: every inode's goes up */
}

int cvb_recall(struct cvb_meta *m, uint64_t ino)
{
	return m->opts.recall ? m->opts.recall(m->opts.recall_arg, ino) : 0;
}

/* ---- dirty groups and staging ------------------------------------ */

static void mark_group(struct cvb_meta *m, dgrp_t g)
{
	m->fs_touched = true;
	if (g >= m->fs->group_desc_count || m->gmark[g])
		return;
	if (m->ndgroups == m->capdgroups) {
		uint32_t cap = m->capdgroups ? 2 * m->capdgroups : 64;
		uint32_t *d = realloc(m->dgroups, cap * sizeof(*d));

		if (!d) {
			m->cb_err = -ENOMEM;
			return;
		}
		m->dgroups = d;
		m->capdgroups = cap;
	}
	m->gmark[g] = 1;
	m->dgroups[m->ndgroups++] = g;
}

static void on_block(ext2_filsys fs, blk64_t blk, int inuse)
{
	struct cvb_meta *m = fs->priv_data;
	int rc;

	mark_group(m, ext2fs_group_of_blk2(fs, blk));
	if (inuse >= 0)
		return;
	/* A freed metadata block may have older copies in the log: revoke
	 * it so that replay never writes them over its next owner; and it
	 * is not zeroed for file data before the free commits. */
	m->data_freed = true;
	if ((rc = iotxn_revoke(m->t, blk)))
		m->cb_err = rc;
}

/* libext2fs 1.47.0 calls the range callback with the end of the range
 * and a count of 0, so the engine does not use it: every range it
 * frees or allocates goes through here. */
void cvb_range_stats(struct cvb_meta *m, uint64_t blk, uint32_t num, int inuse,
		     bool journaled)
{
	dgrp_t g, last;
	int rc;

	if (!num)
		return;
	ext2fs_block_alloc_stats_range(m->fs, blk, num, inuse);
	last = ext2fs_group_of_blk2(m->fs, blk + num - 1);
	for (g = ext2fs_group_of_blk2(m->fs, blk); g <= last; g++)
		mark_group(m, g);
	if (inuse < 0)
		m->data_freed = true;
	if (inuse >= 0 || !journaled)
		return; /* file data: never journaled */
	for (uint32_t i = 0; i < num; i++)
		if ((rc = iotxn_revoke(m->t, blk + i)))
			m->cb_err = rc;
}

/* Blocks libext2fs frees by ranges itself (ext2fs_punch of a directory
 * or symlink): marked and revoked beforehand. */
static int pre_free(ext2_filsys fs, blk64_t *b, e2_blkcnt_t cnt, blk64_t ref,
		    int off, void *priv)
{
	struct cvb_meta *m = priv;
	int rc;

	(void)cnt, (void)ref, (void)off;
	mark_group(m, ext2fs_group_of_blk2(fs, *b));
	m->data_freed = true;
	if ((rc = iotxn_revoke(m->t, *b)))
		m->cb_err = rc;
	return 0;
}

int cvb_pre_free_all(struct cvb_meta *m, uint64_t ino)
{
	errcode_t e =
		ext2fs_block_iterate3(m->fs, (ext2_ino_t)ino,
				      BLOCK_FLAG_READ_ONLY, NULL, pre_free, m);

	return e ? cvb_err(e) : m->cb_err;
}

void cvb_inode_stats(struct cvb_meta *m, uint64_t ino, int inuse, int isdir)
{
	ext2fs_inode_alloc_stats2(m->fs, (ext2_ino_t)ino, inuse, isdir);
	mark_group(m, (dgrp_t)((ino - 1) / m->fs->super->s_inodes_per_group));
}

void cvb_mark_ino(struct cvb_meta *m, uint64_t ino)
{
	mark_group(m, (dgrp_t)((ino - 1) / m->fs->super->s_inodes_per_group));
	m->sb_dirty = true;
}

static int write_block_bitmap(struct cvb_meta *m, dgrp_t g, uint8_t *buf)
{
	ext2_filsys fs = m->fs;
	uint32_t cpg = EXT2_CLUSTERS_PER_GROUP(fs->super);
	blk64_t first = ext2fs_group_first_block2(fs, g);
	blk64_t n = ext2fs_group_last_block2(fs, g) - first + 1;
	errcode_t e;

	if (ext2fs_bg_flags_test(fs, g, EXT2_BG_BLOCK_UNINIT))
		return 0;
	memset(buf, 0xff, fs->blocksize);
	e = ext2fs_get_block_bitmap_range2(fs->block_map, first, n, buf);
	for (blk64_t b = n; !e && b < (blk64_t)fs->blocksize * 8; b++)
		ext2fs_set_bit((unsigned)b, buf); /* past the end */
	if (!e)
		e = ext2fs_block_bitmap_csum_set(fs, g, (char *)buf, cpg / 8);
	if (!e)
		e = io_channel_write_blk64(
			fs->io, ext2fs_block_bitmap_loc(fs, g), 1, buf);
	return cvb_err(e);
}

static int write_inode_bitmap(struct cvb_meta *m, dgrp_t g, uint8_t *buf)
{
	ext2_filsys fs = m->fs;
	uint32_t ipg = fs->super->s_inodes_per_group;
	errcode_t e;

	if (ext2fs_bg_flags_test(fs, g, EXT2_BG_INODE_UNINIT))
		return 0;
	memset(buf, 0xff, fs->blocksize);
	e = ext2fs_get_inode_bitmap_range2(fs->inode_map, (uint64_t)g * ipg + 1,
					   ipg, buf);
	if (!e)
		e = ext2fs_inode_bitmap_csum_set(fs, g, (char *)buf, ipg / 8);
	if (!e)
		e = io_channel_write_blk64(
			fs->io, ext2fs_inode_bitmap_loc(fs, g), 1, buf);
	return cvb_err(e);
}

/* Bitmaps and descriptors of the dirty groups, then the superblock. */
static int stage(struct cvb_meta *m)
{
	ext2_filsys fs = m->fs;
	uint32_t dpb = EXT2_DESC_PER_BLOCK(fs->super);
	uint8_t *buf = malloc(fs->blocksize);
	int64_t last_db = -1;
	int rc = buf ? m->cb_err : -ENOMEM;

	for (uint32_t i = 0; !rc && i < m->ndgroups; i++) {
		dgrp_t g = m->dgroups[i];

		rc = write_block_bitmap(m, g, buf);
		if (!rc)
			rc = write_inode_bitmap(m, g, buf);
		ext2fs_group_desc_csum_set(fs, g);
	}
	for (uint32_t i = 0; !rc && i < m->ndgroups; i++) {
		uint32_t db = m->dgroups[i] / dpb;

		if ((int64_t)db == last_db)
			continue;
		last_db = db;
		rc = cvb_err(io_channel_write_blk64(
			fs->io,
			ext2fs_descriptor_block_loc2(
				fs, fs->super->s_first_data_block, db),
			1,
			(char *)fs->group_desc + (size_t)db * fs->blocksize));
	}
	if (!rc && (m->ndgroups || m->sb_dirty)) {
		ext2fs_superblock_csum_set(fs, fs->super);
		rc = cvb_err(io_channel_write_byte(fs->io, SUPERBLOCK_OFFSET,
						   SUPERBLOCK_SIZE, fs->super));
	}
	free(buf);
	return rc;
}

static void clear_dirty(struct cvb_meta *m)
{
	for (uint32_t i = 0; i < m->ndgroups; i++)
		m->gmark[m->dgroups[i]] = 0;
	m->ndgroups = 0;
	m->sb_dirty = false;
	m->cb_err = 0;
	m->fs_touched = false;
	/* everything is written by stage(): ext2fs_flush must not */
	m->fs->flags &= ~(EXT2_FLAG_DIRTY | EXT2_FLAG_BB_DIRTY |
			  EXT2_FLAG_IB_DIRTY | EXT2_FLAG_CHANGED);
}

/* EXT2_FLAG_SKIP_MMP: a read-write open would otherwise start multiple
 * mount protection, writing the MMP block before the feature check
 * refuses the volume (mmp is not supported: nothing here rewrites that
 * block every few seconds). */
int cvb_fs_reopen(struct cvb_meta *m)
{
	errcode_t e = ext2fs_open2(
		m->path, NULL,
		EXT2_FLAG_RW | EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP, 0, 0,
		iotxn_io_manager, &m->fs);

	if (e)
		return e == EXT2_ET_BAD_MAGIC ? -EINVAL : cvb_err(e);
	m->fs->flags |= EXT2_FLAG_MASTER_SB_ONLY;
	m->fs->priv_data = m;
	return 0;
}

/* Bitmaps in memory and the allocation callbacks set. */
int cvb_fs_ready(struct cvb_meta *m)
{
	errcode_t e = ext2fs_read_bitmaps(m->fs);

	if (e)
		return cvb_err(e);
	ext2fs_set_block_alloc_stats_callback(m->fs, on_block, NULL);
	return 0;
}

/* libext2fs's memory may hold changes the rollback undid: start over
 * from what the transaction now holds. */
static int reload(struct cvb_meta *m)
{
	int rc;

	ext2fs_free(m->fs);
	m->fs = NULL;
	m->st.reloads++;
	rc = cvb_fs_reopen(m);
	return rc ? rc : cvb_fs_ready(m);
}

int cvb_op_begin(struct cvb_meta *m)
{
	if (!m->fs)
		return -EIO; /* a reload failed: the volume is gone */
	/* A commit failed (the LUN gave an error): nothing more can be made
	 * durable, so no change is taken, as ext4 turns read-only after a
	 * journal abort.  The next open replays what reached the log. */
	if (m->j && cvj_aborted(m->j))
		return -EIO;
	iotxn_savepoint(m->t);
	clear_dirty(m);
	m->in_op = true;
	return 0;
}

int cvb_op_end(struct cvb_meta *m, int rc)
{
	m->in_op = false;
	if (!rc)
		rc = stage(m);
	if (!rc) {
		iotxn_release(m->t);
		clear_dirty(m);
		m->st.ops++;
		m->pending_ops++;
		/* keep transactions well inside the log */
		if (iotxn_dirty(m->t) > cvj_log_size(m->j) / 8)
			return cvb_meta_commit(m);
		return 0;
	}
	m->st.failed_ops++;
	if (getenv("CVB_DEBUG"))
		fprintf(stderr, "cvb: operation failed: %s\n", strerror(-rc));
	if (m->fs_touched || iotxn_changed(m->t)) {
		int rr = iotxn_rollback(m->t);

		if (m->fs_touched || rr)
			rr = rr ? rr : reload(m);
		else
			rr = cvb_err(ext2fs_flush_icache(m->fs));
		if (rr)
			return rr; /* m->fs NULL: every call fails */
	} else {
		iotxn_release(m->t);
	}
	clear_dirty(m);
	return rc;
}

int cvb_meta_commit(struct cvb_meta *m)
{
	unsigned n = iotxn_dirty(m->t);
	int rc;

	if (!m->pending_ops)
		return 0;
	/* zeroed data before the map naming it */
	rc = cvb_lun_flush(iotxn_lun(m->t));
	if (!rc)
		rc = iotxn_commit(m->t);
	if (rc)
		return rc;
	m->pending_ops = 0;
	m->data_freed = false;
	m->st.commits++;
	m->st.txn_blocks += n;
	m->st.last_txn_blocks = n;
	if (n > m->st.max_txn_blocks)
		m->st.max_txn_blocks = n;
	return 0;
}

void cvb_meta_get_stats(const struct cvb_meta *m, struct cvb_meta_stats *st)
{
	*st = m->st;
}

/* ---- zeroing data on the LUN ------------------------------------- */

int cvb_zero_dev(struct cvb_meta *m, uint64_t off, uint64_t len)
{
	if (!len)
		return 0;
	m->pending_ops++; /* the next commit syncs the zeroes */
	return cvb_lun_zero(iotxn_lun(m->t), off, len);
}

struct cvb_lun *cvb_meta_lun(struct cvb_meta *m)
{
	return iotxn_lun(m->t);
}
