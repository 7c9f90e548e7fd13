// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_info.c: cvb_lun_info, a read-only look at a block volume's LUN
 * (size, free space, journal state) for reports.  It opens the file
 * system with libext2fs's own unix io_manager read-only, with O_DIRECT
 * so that the blocks a running coordinator writes with O_DIRECT show,
 * and walks the journal's log with the replay scanner without applying
 * it (cvj_scan).  Nothing is written and no lock is taken: a coordinator
 * may be committing at the same time, so the answer is a snapshot.
 */
#include "meta_i.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The journal's device: reads through the file system's channel. */
static int jr_read(void *priv, uint64_t blk, unsigned count, void *buf)
{
	ext2_filsys fs = priv;

	return cvb_err(io_channel_read_blk64(fs->io, blk, (int)count, buf));
}

static int jr_write(void *priv, uint64_t blk, unsigned count, const void *buf)
{
	(void)priv, (void)blk, (void)count, (void)buf;
	return -EROFS;
}

static int jr_flush(void *priv)
{
	(void)priv;
	return 0;
}

static int journal_info(ext2_filsys fs, struct cvb_lun_info *info, char *err,
			size_t errlen)
{
	struct cvj_dev dev = { fs, fs->blocksize, jr_read, jr_write, jr_flush };
	struct cvj_replay_info ri;
	struct cvj_journal *j = NULL;
	struct cvj_extent *map = NULL;
	unsigned n;
	int rc = iotxn_journal_extents(fs, &map, &n);

	if (!rc)
		rc = cvj_open(&dev, map, n, &j);
	if (!rc)
		rc = cvj_scan(j, &ri);
	if (rc) {
		snprintf(err, errlen, "journal: %s", strerror(-rc));
		goto out;
	}
	info->journal_size = (uint64_t)cvj_super(j)->maxlen * fs->blocksize;
	info->journal_used = (uint64_t)ri.log_blocks * fs->blocksize;
	info->journal_txns = ri.transactions;
	info->journal_seq =
		cvj_needs_recovery(j) ? ri.first_seq : cvj_super(j)->sequence;
	if (cvj_needs_recovery(j))
		info->needs_recovery = true;
out:
	if (j)
		cvj_close(j);
	free(map);
	return rc;
}

int cvb_lun_info(const char *path, struct cvb_lun_info *info, char *err,
		 size_t errlen)
{
	ext2_filsys fs = NULL;
	errcode_t e;
	int rc;

	memset(info, 0, sizeof(*info));
	e = ext2fs_open2(path, NULL, EXT2_FLAG_64BITS | EXT2_FLAG_DIRECT_IO, 0,
			 0, unix_io_manager, &fs);
	if (e) {
		rc = e == EXT2_ET_BAD_MAGIC ? -EINVAL : cvb_err(e);
		snprintf(err, errlen, "%s: %s", path,
			 rc == -EINVAL ? "no ext4 file system" : strerror(-rc));
		return rc;
	}
	info->blocksize = fs->blocksize;
	info->size = ext2fs_blocks_count(fs->super) * fs->blocksize;
	info->free = ext2fs_free_blocks_count(fs->super) * fs->blocksize;
	info->inodes = fs->super->s_inodes_count;
	info->free_inodes = fs->super->s_free_inodes_count;
	memcpy(info->label, fs->super->s_volume_name, 16);
	info->label[16] = '\0';
	info->needs_recovery =
		ext2fs_has_feature_journal_needs_recovery(fs->super);
	if (!ext2fs_has_feature_journal(fs->super) ||
	    !fs->super->s_journal_inum || fs->super->s_journal_dev) {
		snprintf(err, errlen, "%s: no internal journal", path);
		rc = -EOPNOTSUPP;
	} else {
		rc = journal_info(fs, info, err, errlen);
	}
	ext2fs_close_free(&fs);
	return rc;
}
