// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * iotxn io_manager (see iotxn.h).  Byte ranges from libext2fs, in
 * whatever channel block size it set, are cut into file-system blocks;
 * in journaled mode each touched block is copied into the transaction
 * map (read first when only part of it is written), so a transaction is
 * always a set of whole home blocks.
 */
#include "iotxn.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkmap.h"
#include "lun.h"

#define EXT4_SB_OFFSET 1024
#define EXT4_SB_LOG_BLOCK_SIZE 24
#define EXT4_SB_MAGIC_OFF 56
#define EXT4_MAGIC 0xEF53

struct iotxn {
	char *path;
	struct cvb_lun *lun;	/* the LUN, buffered (path) or iSCSI */
	uint32_t bs;		/* file-system block size */
	struct cvj_dev dev;
	struct cvj_journal *j;	/* NULL: direct mode */
	struct blkmap txn;	/* blocks written in the open transaction */
	uint64_t *revokes;
	unsigned nrevokes, caprevokes;
	/* Savepoint (iotxn_savepoint): the contents each block had in the
	 * transaction before its first change since, in undo; blocks the
	 * transaction did not hold then, in fresh (1-byte buffers). */
	bool saving;
	struct blkmap undo, fresh;
	unsigned save_nrevokes;
	struct iotxn *next;	/* registry, protected by reg_lock */
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct iotxn *reg_head;	/* protected by reg_lock */

static int pio(struct cvb_lun *l, bool wr, void *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = wr ? cvb_lun_pwrite(l, buf, len, off)
			       : cvb_lun_pread(l, buf, len, off);

		if (n < 0)
			return (int)n;
		if (n == 0) {
			if (wr)
				return -EIO;
			memset(buf, 0, len);	/* past the end of an image */
			return 0;
		}
		buf = (uint8_t *)buf + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

static int dev_read(void *priv, uint64_t blk, unsigned count, void *buf)
{
	struct iotxn *t = priv;

	return pio(t->lun, false, buf, (size_t)count * t->bs, blk * t->bs);
}

static int dev_write(void *priv, uint64_t blk, unsigned count,
		     const void *buf)
{
	struct iotxn *t = priv;

	return pio(t->lun, true, (void *)(uintptr_t)buf, (size_t)count * t->bs,
		   blk * t->bs);
}

static int dev_flush(void *priv)
{
	struct iotxn *t = priv;

	return cvb_lun_flush(t->lun);
}

static int read_fs_blocksize(struct cvb_lun *l, uint32_t *bs)
{
	uint8_t sb[1024];
	uint32_t lg;
	int rc = pio(l, false, sb, sizeof(sb), EXT4_SB_OFFSET);

	if (rc)
		return rc;
	if ((sb[EXT4_SB_MAGIC_OFF] | sb[EXT4_SB_MAGIC_OFF + 1] << 8) !=
	    EXT4_MAGIC)
		return -EINVAL;
	memcpy(&lg, sb + EXT4_SB_LOG_BLOCK_SIZE, 4);	/* little-endian */
	if (lg > 6)
		return -EINVAL;
	*bs = 1024u << lg;
	return 0;
}

int iotxn_open(const char *path, struct iotxn **out)
{
	return iotxn_open_opts(path, NULL, out);
}

int iotxn_open_opts(const char *path, const struct cvb_lun_opts *o,
		    struct iotxn **out)
{
	struct iotxn *t = calloc(1, sizeof(*t));
	char err[256];
	int rc;

	if (!t)
		return -ENOMEM;
	rc = cvb_lun_open(path, CVB_LUN_BUFFERED, o, &t->lun, err, sizeof(err));
	if (rc) {
		if (cvb_lun_is_iscsi(path))
			fprintf(stderr, "csvfs: %s\n", err);
		free(t);
		return rc;
	}
	t->path = strdup(path);
	rc = t->path ? read_fs_blocksize(t->lun, &t->bs) : -ENOMEM;
	if (rc) {
		cvb_lun_close(t->lun);
		free(t->path);
		free(t);
		return rc;
	}
	t->dev = (struct cvj_dev){ t, t->bs, dev_read, dev_write, dev_flush };
	blkmap_init(&t->txn, t->bs);
	blkmap_init(&t->undo, t->bs);
	blkmap_init(&t->fresh, 1);
	pthread_mutex_lock(&reg_lock);
	t->next = reg_head;
	reg_head = t;
	pthread_mutex_unlock(&reg_lock);
	*out = t;
	return 0;
}

void iotxn_close(struct iotxn *t)
{
	struct iotxn **pp;

	if (!t)
		return;
	pthread_mutex_lock(&reg_lock);
	for (pp = &reg_head; *pp; pp = &(*pp)->next)
		if (*pp == t) {
			*pp = t->next;
			break;
		}
	pthread_mutex_unlock(&reg_lock);
	blkmap_free(&t->txn);
	blkmap_free(&t->undo);
	blkmap_free(&t->fresh);
	free(t->revokes);
	cvb_lun_close(t->lun);
	free(t->path);
	free(t);
}

struct cvb_lun *iotxn_lun(const struct iotxn *t)
{
	return t->lun;
}

uint32_t iotxn_blocksize(const struct iotxn *t)
{
	return t->bs;
}

const struct cvj_dev *iotxn_dev(const struct iotxn *t)
{
	return &t->dev;
}

void iotxn_set_journal(struct iotxn *t, struct cvj_journal *j)
{
	t->j = j;
}

unsigned iotxn_dirty(const struct iotxn *t)
{
	unsigned n = 0;

	for (size_t i = 0; i < t->txn.n; i++)
		n += t->txn.ents[i].data != NULL;
	return n;
}

/* Newest contents of fs block blk not on the device, or NULL. */
static const uint8_t *overlay(const struct iotxn *t, uint64_t blk)
{
	const uint8_t *d = blkmap_find(&t->txn, blk);

	if (!d && t->j)
		d = cvj_pending(t->j, blk);
	return d;
}

static int txn_read(struct iotxn *t, uint64_t off, size_t len, uint8_t *buf)
{
	int rc = pio(t->lun, false, buf, len, off);

	if (rc || !t->j)
		return rc;
	for (uint64_t b = off / t->bs; b * t->bs < off + len; b++) {
		const uint8_t *d = overlay(t, b);
		uint64_t s = b * t->bs > off ? b * t->bs : off;
		uint64_t e = (b + 1) * t->bs < off + len ? (b + 1) * t->bs :
							   off + len;

		if (d)
			memcpy(buf + (s - off), d + (s - b * t->bs), e - s);
	}
	return 0;
}

/* Before the first change of block b since the savepoint: remember what
 * the transaction held for it.  -ENOMEM when it cannot. */
static int save_block(struct iotxn *t, uint64_t b)
{
	const uint8_t *cur;
	uint8_t *d;
	int added;

	if (!t->saving || blkmap_find(&t->undo, b) || blkmap_find(&t->fresh, b))
		return 0;
	cur = blkmap_find(&t->txn, b);
	d = blkmap_get_or_add(cur ? &t->undo : &t->fresh, b, &added);
	if (!d)
		return -ENOMEM;
	if (cur)
		memcpy(d, cur, t->bs);
	return 0;
}

/* The transaction's copy of block b, filled from what a read would see
 * when it is new. */
static uint8_t *txn_block(struct iotxn *t, uint64_t b, bool whole)
{
	int added;
	uint8_t *d;
	const uint8_t *old;

	if (save_block(t, b))
		return NULL;
	d = blkmap_get_or_add(&t->txn, b, &added);

	if (!d || !added || whole)
		return d;
	old = t->j ? cvj_pending(t->j, b) : NULL;
	if (old)
		memcpy(d, old, t->bs);
	else if (dev_read(t, b, 1, d)) {
		blkmap_drop(&t->txn, b);
		return NULL;
	}
	return d;
}

static int txn_write(struct iotxn *t, uint64_t off, size_t len,
		     const uint8_t *buf)
{
	if (!t->j)
		return pio(t->lun, true, (void *)(uintptr_t)buf, len, off);
	for (uint64_t b = off / t->bs; b * t->bs < off + len; b++) {
		uint64_t s = b * t->bs > off ? b * t->bs : off;
		uint64_t e = (b + 1) * t->bs < off + len ? (b + 1) * t->bs :
							   off + len;
		uint8_t *d = txn_block(t, b, e - s == t->bs);

		if (!d)
			return -EIO;
		memcpy(d + (s - b * t->bs), buf + (s - off), e - s);
	}
	return 0;
}

int iotxn_revoke(struct iotxn *t, uint64_t blk)
{
	if (t->nrevokes == t->caprevokes) {
		unsigned cap = t->caprevokes ? 2 * t->caprevokes : 64;
		uint64_t *r = realloc(t->revokes, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		t->revokes = r;
		t->caprevokes = cap;
	}
	if (save_block(t, blk))
		return -ENOMEM;
	t->revokes[t->nrevokes++] = blk;
	blkmap_drop(&t->txn, blk);
	return 0;
}

int iotxn_commit(struct iotxn *t)
{
	struct cvj_block *blocks;
	unsigned n = 0;
	int rc;

	if (!t->j)
		return -EINVAL;
	blocks = calloc(t->txn.n ? t->txn.n : 1, sizeof(*blocks));
	if (!blocks)
		return -ENOMEM;
	for (size_t i = 0; i < t->txn.n; i++)
		if (t->txn.ents[i].data)
			blocks[n++] = (struct cvj_block){ t->txn.ents[i].blk,
							  t->txn.ents[i].data };
	rc = cvj_commit(t->j, blocks, n, t->revokes, t->nrevokes);
	free(blocks);
	if (!rc)
		iotxn_abort(t);	/* committed: the journal has them now */
	return rc;
}

void iotxn_abort(struct iotxn *t)
{
	blkmap_clear(&t->txn);
	t->nrevokes = 0;
	iotxn_release(t);
}

void iotxn_savepoint(struct iotxn *t)
{
	blkmap_clear(&t->undo);
	blkmap_clear(&t->fresh);
	t->save_nrevokes = t->nrevokes;
	t->saving = true;
}

bool iotxn_changed(const struct iotxn *t)
{
	return t->saving && (t->undo.n || t->fresh.n ||
			     t->nrevokes != t->save_nrevokes);
}

void iotxn_release(struct iotxn *t)
{
	blkmap_clear(&t->undo);
	blkmap_clear(&t->fresh);
	t->saving = false;
}

int iotxn_rollback(struct iotxn *t)
{
	int added, rc = 0;

	if (!t->saving)
		return -EINVAL;
	for (size_t i = 0; i < t->fresh.n; i++)
		if (t->fresh.ents[i].data)
			blkmap_drop(&t->txn, t->fresh.ents[i].blk);
	for (size_t i = 0; i < t->undo.n; i++) {
		uint8_t *d;

		if (!t->undo.ents[i].data)
			continue;
		d = blkmap_get_or_add(&t->txn, t->undo.ents[i].blk, &added);
		if (!d) {
			rc = -ENOMEM;
			continue;
		}
		memcpy(d, t->undo.ents[i].data, t->bs);
	}
	t->nrevokes = t->save_nrevokes;
	iotxn_release(t);
	return rc;
}

/* ---- the io_manager ---------------------------------------------- */

static struct iotxn *find_registered(const char *name)
{
	struct iotxn *t;

	pthread_mutex_lock(&reg_lock);
	/* libext2fs cuts "name?options" (an iscsi:// source's) at '?' and
	 * gives the options to set_option, which takes "fencing" as the
	 * LUN layer's */
	for (t = reg_head; t; t = t->next)
		if (!strncmp(t->path, name, strcspn(t->path, "?")) &&
		    !name[strcspn(t->path, "?")])
			break;
	pthread_mutex_unlock(&reg_lock);
	return t;
}

static errcode_t io_open(const char *name, int flags, io_channel *channel)
{
	struct iotxn *t = find_registered(name);
	io_channel ch;

	(void)flags;
	if (!t)
		return EXT2_ET_BAD_DEVICE_NAME;
	ch = calloc(1, sizeof(*ch));
	if (!ch)
		return EXT2_ET_NO_MEMORY;
	ch->name = strdup(name);
	if (!ch->name) {
		free(ch);
		return EXT2_ET_NO_MEMORY;
	}
	ch->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	ch->manager = iotxn_io_manager;
	ch->block_size = 1024;
	ch->refcount = 1;
	ch->private_data = t;
	*channel = ch;
	return 0;
}

static errcode_t io_close(io_channel ch)
{
	if (--ch->refcount > 0)
		return 0;
	free(ch->name);
	free(ch);
	return 0;
}

static errcode_t io_set_blksize(io_channel ch, int blksize)
{
	if (blksize <= 0)
		return EXT2_ET_INVALID_ARGUMENT;
	ch->block_size = blksize;
	return 0;
}

static size_t io_len(io_channel ch, int count)
{
	return count < 0 ? (size_t)-(long)count :
			   (size_t)count * (size_t)ch->block_size;
}

static errcode_t io_read64(io_channel ch, unsigned long long block,
			   int count, void *data)
{
	int rc = txn_read(ch->private_data, block * (uint64_t)ch->block_size,
			  io_len(ch, count), data);

	return rc ? (errcode_t)-rc : 0;
}

static errcode_t io_write64(io_channel ch, unsigned long long block,
			    int count, const void *data)
{
	int rc = txn_write(ch->private_data, block * (uint64_t)ch->block_size,
			   io_len(ch, count), data);

	return rc ? (errcode_t)-rc : 0;
}

static errcode_t io_read(io_channel ch, unsigned long block, int count,
			 void *data)
{
	return io_read64(ch, block, count, data);
}

static errcode_t io_write(io_channel ch, unsigned long block, int count,
			  const void *data)
{
	return io_write64(ch, block, count, data);
}

static errcode_t io_write_byte(io_channel ch, unsigned long offset,
			       int count, const void *data)
{
	int rc;

	if (count < 0)
		return EXT2_ET_INVALID_ARGUMENT;
	rc = txn_write(ch->private_data, offset, (size_t)count, data);
	return rc ? (errcode_t)-rc : 0;
}

/* In journaled mode durability comes from iotxn_commit, not flush. */
static errcode_t io_flush(io_channel ch)
{
	struct iotxn *t = ch->private_data;

	return t->j ? 0 : (errcode_t)-dev_flush(t);
}

static errcode_t io_set_option(io_channel ch, const char *opt,
			       const char *arg)
{
	(void)ch;
	(void)arg;
	return strcmp(opt, "fencing") ? EXT2_ET_INVALID_ARGUMENT : 0;
}

static struct struct_io_manager iotxn_mgr = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "csvfs journal transaction I/O manager",
	.open = io_open,
	.close = io_close,
	.set_blksize = io_set_blksize,
	.read_blk = io_read,
	.write_blk = io_write,
	.flush = io_flush,
	.write_byte = io_write_byte,
	.set_option = io_set_option,
	.read_blk64 = io_read64,
	.write_blk64 = io_write64,
};

io_manager iotxn_io_manager = &iotxn_mgr;

/* ---- the file system's side of the journal ---------------------- */

struct ext_walk {
	struct cvj_extent *map;
	unsigned n, cap;
	int err;
};

static int ext_add(ext2_filsys fs, blk64_t *blocknr, e2_blkcnt_t blockcnt,
		   blk64_t ref_blk, int ref_offset, void *priv)
{
	struct ext_walk *w = priv;
	struct cvj_extent *last = w->n ? &w->map[w->n - 1] : NULL;

	(void)fs;
	(void)ref_blk;
	(void)ref_offset;
	if (blockcnt < 0)
		return 0;
	if (last && last->lblk + last->len == (uint64_t)blockcnt &&
	    last->pblk + last->len == *blocknr && last->len < UINT32_MAX) {
		last->len++;
		return 0;
	}
	if (w->n == w->cap) {
		unsigned cap = w->cap ? 2 * w->cap : 16;
		struct cvj_extent *m = realloc(w->map, cap * sizeof(*m));

		if (!m) {
			w->err = -ENOMEM;
			return BLOCK_ABORT;
		}
		w->map = m;
		w->cap = cap;
	}
	w->map[w->n++] = (struct cvj_extent){ (uint64_t)blockcnt, *blocknr, 1 };
	return 0;
}

int iotxn_journal_extents(ext2_filsys fs, struct cvj_extent **map,
			  unsigned *n)
{
	struct ext_walk w = { 0 };
	ext2_ino_t ino = fs->super->s_journal_inum;
	errcode_t err;

	if (!ext2fs_has_feature_journal(fs->super) || !ino)
		return -ENOENT;
	err = ext2fs_block_iterate3(fs, ino, BLOCK_FLAG_READ_ONLY |
				    BLOCK_FLAG_DATA_ONLY, NULL, ext_add, &w);
	if (err || w.err || !w.n) {
		free(w.map);
		return w.err ? w.err : -EIO;
	}
	*map = w.map;
	*n = w.n;
	return 0;
}

uint32_t iotxn_journal_features(ext2_filsys fs)
{
	uint32_t f = JB_INCOMPAT_REVOKE;

	if (ext2fs_has_feature_64bit(fs->super))
		f |= JB_INCOMPAT_64BIT;
	if (ext2fs_has_feature_metadata_csum(fs->super))
		f |= JB_INCOMPAT_CSUM_V3;
	return f;
}

/* Write the superblock (only: MASTER_SB_ONLY and nothing else dirty
 * beyond what ext2fs_flush always writes) in direct mode. */
static int write_super_direct(struct iotxn *t, ext2_filsys fs)
{
	struct cvj_journal *j = t->j;
	errcode_t err;

	t->j = NULL;
	fs->flags |= EXT2_FLAG_MASTER_SB_ONLY;
	ext2fs_mark_super_dirty(fs);
	err = ext2fs_flush(fs);
	t->j = j;
	return err ? -EIO : 0;
}

int iotxn_fs_start(struct iotxn *t, ext2_filsys fs, struct cvj_journal *j)
{
	int rc;

	if (cvj_needs_recovery(j))
		return -EUCLEAN;
	rc = cvj_set_features(j, iotxn_journal_features(fs));
	if (rc)
		return rc;
	ext2fs_set_feature_journal_needs_recovery(fs->super);
	t->j = NULL;
	rc = write_super_direct(t, fs);
	if (!rc)
		t->j = j;
	return rc;
}

int iotxn_fs_stop(struct iotxn *t, ext2_filsys fs)
{
	int rc;

	if (t->j) {
		rc = cvj_checkpoint(t->j);
		if (rc)
			return rc;
		t->j = NULL;
	}
	if (!ext2fs_has_feature_journal_needs_recovery(fs->super))
		return 0;
	ext2fs_clear_feature_journal_needs_recovery(fs->super);
	return write_super_direct(t, fs);
}
