// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * meta_open.c: opening a volume (superblock and feature check, journal
 * replay, orphan list, start of journaling), closing it clean, and the
 * opens nodes hold on inodes (for unlink of open files).
 */
#include "meta_i.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct feat {
	int kind; /* 0 compat, 1 incompat, 2 ro_compat */
	uint32_t mask;
	const char *name;
};

/* Features csvfs writes correctly (what cvb_format asks mke2fs for,
 * and a few more that change nothing the engine writes). */
#define OK_COMPAT                                                              \
	(EXT3_FEATURE_COMPAT_HAS_JOURNAL | EXT2_FEATURE_COMPAT_EXT_ATTR |      \
	 EXT2_FEATURE_COMPAT_RESIZE_INODE | EXT2_FEATURE_COMPAT_DIR_INDEX |    \
	 EXT4_FEATURE_COMPAT_STABLE_INODES)
#define OK_INCOMPAT                                                            \
	(EXT2_FEATURE_INCOMPAT_FILETYPE | EXT3_FEATURE_INCOMPAT_RECOVER |      \
	 EXT3_FEATURE_INCOMPAT_EXTENTS | EXT4_FEATURE_INCOMPAT_64BIT |         \
	 EXT4_FEATURE_INCOMPAT_FLEX_BG | EXT4_FEATURE_INCOMPAT_CSUM_SEED)
#define OK_RO_COMPAT                                                           \
	(EXT2_FEATURE_RO_COMPAT_SPARSE_SUPER |                                 \
	 EXT2_FEATURE_RO_COMPAT_LARGE_FILE |                                   \
	 EXT4_FEATURE_RO_COMPAT_HUGE_FILE | EXT4_FEATURE_RO_COMPAT_GDT_CSUM |  \
	 EXT4_FEATURE_RO_COMPAT_DIR_NLINK |                                    \
	 EXT4_FEATURE_RO_COMPAT_EXTRA_ISIZE |                                  \
	 EXT4_FEATURE_RO_COMPAT_METADATA_CSUM)

static const struct feat feat_names[] = {
	{ 0, EXT2_FEATURE_COMPAT_DIR_PREALLOC, "dir_prealloc" },
	{ 0, EXT2_FEATURE_COMPAT_IMAGIC_INODES, "imagic_inodes" },
	{ 0, EXT2_FEATURE_COMPAT_LAZY_BG, "lazy_bg" },
	{ 0, EXT2_FEATURE_COMPAT_EXCLUDE_BITMAP, "snapshot_bitmap" },
	{ 0, EXT4_FEATURE_COMPAT_SPARSE_SUPER2, "sparse_super2" },
	{ 0, EXT4_FEATURE_COMPAT_FAST_COMMIT, "fast_commit" },
	{ 0, EXT4_FEATURE_COMPAT_ORPHAN_FILE, "orphan_file" },
	{ 1, EXT2_FEATURE_INCOMPAT_COMPRESSION, "compression" },
	{ 1, EXT3_FEATURE_INCOMPAT_JOURNAL_DEV, "journal_dev" },
	{ 1, EXT2_FEATURE_INCOMPAT_META_BG, "meta_bg" },
	{ 1, EXT4_FEATURE_INCOMPAT_MMP, "mmp" },
	{ 1, EXT4_FEATURE_INCOMPAT_EA_INODE, "ea_inode" },
	{ 1, EXT4_FEATURE_INCOMPAT_DIRDATA, "dirdata" },
	{ 1, EXT4_FEATURE_INCOMPAT_LARGEDIR, "large_dir" },
	{ 1, EXT4_FEATURE_INCOMPAT_INLINE_DATA, "inline_data" },
	{ 1, EXT4_FEATURE_INCOMPAT_ENCRYPT, "encrypt" },
	{ 1, EXT4_FEATURE_INCOMPAT_CASEFOLD, "casefold" },
	{ 2, EXT4_FEATURE_RO_COMPAT_HAS_SNAPSHOT, "snapshot" },
	{ 2, EXT4_FEATURE_RO_COMPAT_QUOTA, "quota" },
	{ 2, EXT4_FEATURE_RO_COMPAT_BIGALLOC, "bigalloc" },
	{ 2, EXT4_FEATURE_RO_COMPAT_REPLICA, "replica" },
	{ 2, EXT4_FEATURE_RO_COMPAT_READONLY, "read-only" },
	{ 2, EXT4_FEATURE_RO_COMPAT_PROJECT, "project" },
	{ 2, EXT4_FEATURE_RO_COMPAT_SHARED_BLOCKS, "shared_blocks" },
	{ 2, EXT4_FEATURE_RO_COMPAT_VERITY, "verity" },
	{ 2, EXT4_FEATURE_RO_COMPAT_ORPHAN_PRESENT, "orphan_present" },
};

/* The first feature csvfs cannot write, named in err: -EOPNOTSUPP. */
static int check_features(const struct ext2_super_block *sb, char *err,
			  size_t errlen)
{
	uint32_t bad[3] = { sb->s_feature_compat & ~OK_COMPAT,
			    sb->s_feature_incompat & ~OK_INCOMPAT,
			    sb->s_feature_ro_compat & ~OK_RO_COMPAT };
	static const char *kinds[3] = { "compat", "incompat", "ro_compat" };

	if (!(sb->s_feature_compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL) ||
	    !sb->s_journal_inum) {
		snprintf(err, errlen,
			 "no internal journal (format it with "
			 "csvfs-admin format)");
		return -EOPNOTSUPP;
	}
	if (!(sb->s_feature_incompat & EXT3_FEATURE_INCOMPAT_EXTENTS)) {
		snprintf(err, errlen, "feature extent missing");
		return -EOPNOTSUPP;
	}
	for (int k = 0; k < 3; k++) {
		if (!bad[k])
			continue;
		for (size_t i = 0; i < sizeof(feat_names) / sizeof(*feat_names);
		     i++)
			if (feat_names[i].kind == k &&
			    (bad[k] & feat_names[i].mask)) {
				snprintf(err, errlen,
					 "ext4 feature %s is not "
					 "supported by csvfs block volumes",
					 feat_names[i].name);
				return -EOPNOTSUPP;
			}
		snprintf(err, errlen, "unknown ext4 %s feature 0x%x", kinds[k],
			 bad[k]);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int jdev_read(void *priv, uint64_t blk, unsigned count, void *buf)
{
	const struct cvj_dev *d = iotxn_dev(((struct cvb_meta *)priv)->t);

	return d->read(d->priv, blk, count, buf);
}

static int jdev_write(void *priv, uint64_t blk, unsigned count, const void *buf)
{
	struct cvb_meta *m = priv;
	const struct cvj_dev *d = iotxn_dev(m->t);

	if (m->opts.before_journal_write)
		m->opts.before_journal_write(m->opts.hook_arg);
	return d->write(d->priv, blk, count, buf);
}

static int jdev_flush(void *priv)
{
	const struct cvj_dev *d = iotxn_dev(((struct cvb_meta *)priv)->t);

	return d->flush(d->priv);
}

static int journal_open(struct cvb_meta *m)
{
	struct cvj_extent *map;
	unsigned n;
	int rc = iotxn_journal_extents(m->fs, &map, &n);

	if (rc)
		return rc;
	m->jdev = (struct cvj_dev){ m, iotxn_blocksize(m->t), jdev_read,
				    jdev_write, jdev_flush };
	rc = cvj_open(&m->jdev, map, n, &m->j);
	free(map);
	return rc;
}

/* The journal replayed when it needs it, needs_recovery off. */
static int recover(struct cvb_meta *m, char *err, size_t errlen)
{
	struct cvj_replay_info info;
	int rc = journal_open(m);

	if (rc) {
		snprintf(err, errlen, "journal: %s", strerror(-rc));
		return rc;
	}
	if (cvj_needs_recovery(m->j)) {
		/* the journal inode itself is never journaled: its map,
		 * read before the replay, stays right */
		ext2fs_free(m->fs);
		m->fs = NULL;
		rc = cvj_replay(m->j, &info);
		if (rc) {
			snprintf(err, errlen, "journal replay: %s",
				 strerror(-rc));
			return rc;
		}
		m->st.replayed = info.transactions;
		if ((rc = cvb_fs_reopen(m)))
			return rc;
	}
	rc = iotxn_fs_stop(m->t, m->fs);
	if (rc)
		snprintf(err, errlen, "superblock: %s", strerror(-rc));
	return rc;
}

/* One orphan: free it (no links) or cut it to its size (links). */
static int orphan_one(struct cvb_meta *m, uint64_t ino, uint64_t *next)
{
	struct ext2_inode_large in;
	int rc = cvb_op_begin(m);

	if (rc)
		return rc;
	rc = cvb_read_inode(m, ino, &in);
	if (!rc) {
		*next = in.i_dtime;
		in.i_dtime = 0;
		rc = cvb_write_inode(m, ino, &in);
	}
	if (!rc && in.i_links_count == 0)
		rc = cvb_free_inode(m, ino);
	else if (!rc && LINUX_S_ISREG(in.i_mode))
		rc = cvb_truncate(m, ino, &in, UINT64_MAX);
	return cvb_op_end(m, rc);
}

static int process_orphans(struct cvb_meta *m)
{
	uint64_t ino = m->fs->super->s_last_orphan, next = 0;
	uint32_t left = m->fs->super->s_inodes_count;
	int rc = cvb_op_begin(m);

	if (rc || !ino)
		return rc ? rc : cvb_op_end(m, 0);
	m->fs->super->s_last_orphan = 0;
	m->sb_dirty = true;
	if ((rc = cvb_op_end(m, 0)))
		return rc;
	while (ino && left--) {
		if (ino < EXT2_FIRST_INO(m->fs->super) ||
		    ino > m->fs->super->s_inodes_count)
			break; /* a broken list ends here, as in e2fsck */
		rc = orphan_one(m, ino, &next);
		if (rc)
			return rc;
		m->st.orphans_done++;
		ino = next;
	}
	return cvb_meta_commit(m);
}

static int meta_alloc(const char *path, const struct cvb_meta_opts *opts,
		      struct cvb_meta **out)
{
	struct cvb_meta *m = calloc(1, sizeof(*m));
	struct timespec now;

	*out = m;
	if (!m)
		return -ENOMEM;
	m->nitab = 4096;
	m->itab = calloc(m->nitab, sizeof(*m->itab));
	m->path = strdup(path);
	if (opts)
		m->opts = *opts;
	/* generations of this run start above any of an earlier one */
	clock_gettime(CLOCK_REALTIME, &now);
	m->gen_base = (uint64_t)now.tv_sec << 24;
	*out = m;
	return m->itab && m->path ? 0 : -ENOMEM;
}

static void meta_free(struct cvb_meta *m)
{
	if (m->fs)
		ext2fs_free(m->fs);
	cvj_close(m->j);
	iotxn_close(m->t);
	for (size_t i = 0; m->itab && i < m->nitab; i++)
		while (m->itab[i]) {
			struct cvb_ino *e = m->itab[i];

			m->itab[i] = e->next;
			free(e);
		}
	free(m->itab);
	free(m->dgroups);
	free(m->gmark);
	free(m->path);
	free(m);
}

static int open_fs(struct cvb_meta *m, char *err, size_t errlen)
{
	int rc = iotxn_open_opts(m->path, m->opts.lun, &m->t);

	if (rc) {
		snprintf(err, errlen,
			 rc == -EINVAL ? "no ext4 superblock (not a formatted "
					 "block volume)"
				       : "%s",
			 strerror(-rc));
		return rc;
	}
	if ((rc = cvb_fs_reopen(m))) {
		snprintf(err, errlen, "ext2fs_open: %s", strerror(-rc));
		return rc;
	}
	return check_features(m->fs->super, err, errlen);
}

int cvb_meta_open(const char *path, const struct cvb_meta_opts *opts,
		  struct cvb_meta **out, char *err, size_t errlen)
{
	struct cvb_meta *m = NULL;
	int rc = meta_alloc(path, opts, &m);

	snprintf(err, errlen, "ok");
	if (!rc)
		rc = open_fs(m, err, errlen);
	if (!rc)
		rc = recover(m, err, errlen);
	if (!rc) {
		m->gmark = calloc(m->fs->group_desc_count, 1);
		rc = m->gmark ? cvb_fs_ready(m) : -ENOMEM;
	}
	if (!rc && (rc = iotxn_fs_start(m->t, m->fs, m->j)))
		snprintf(err, errlen, "start journaling: %s", strerror(-rc));
	if (!rc && (rc = process_orphans(m)))
		snprintf(err, errlen, "orphan list: %s", strerror(-rc));
	if (rc && !m)
		return rc; /* out of memory */
	if (rc) {
		if (m->t)
			iotxn_abort(m->t);
		meta_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

/* Unlinked files still open when the engine closes: no node reaches
 * them any more through it, so they go as at their last close (ext4
 * frees its orphans at unmount the same way); else the orphan list
 * would stay, which e2fsck -n reports. */
static int free_open_orphans(struct cvb_meta *m)
{
	struct ext2_inode_large in;
	int rc = 0;

	for (size_t h = 0; !rc && h < m->nitab; h++)
		for (struct cvb_ino *e = m->itab[h]; !rc && e; e = e->next) {
			if (!e->orphan)
				continue;
			if ((rc = cvb_op_begin(m)))
				break;
			rc = cvb_read_inode(m, e->ino, &in);
			if (!rc)
				rc = cvb_orphan_del(m, e->ino, &in);
			if (!rc)
				rc = cvb_write_inode(m, e->ino, &in);
			if (!rc)
				rc = cvb_free_inode(m, e->ino);
			if (!(rc = cvb_op_end(m, rc)))
				e->orphan = false, e->refs = 0;
		}
	return rc;
}

int cvb_meta_close(struct cvb_meta *m)
{
	int rc;

	if (!m)
		return 0;
	rc = m->fs ? free_open_orphans(m) : -EIO;
	if (!rc)
		rc = cvb_meta_commit(m);
	if (!rc)
		rc = iotxn_fs_stop(m->t, m->fs);
	if (rc)
		iotxn_abort(m->t); /* what is committed stays in the log */
	meta_free(m);
	return rc;
}

int cvb_meta_checkpoint(struct cvb_meta *m)
{
	int rc = cvb_meta_commit(m);

	return rc ? rc : cvj_checkpoint(m->j);
}

/* ---- opens held by nodes ----------------------------------------- */

int cvb_meta_open_ref(struct cvb_meta *m, uint64_t ino)
{
	struct ext2_inode_large in;
	struct cvb_ino *e;
	int rc = cvb_read_inode(m, ino, &in);

	if (rc)
		return rc;
	if (!(e = cvb_ino_get(m, ino, true)))
		return -ENOMEM;
	e->refs++;
	return 0;
}

int cvb_meta_close_ref(struct cvb_meta *m, uint64_t ino)
{
	struct cvb_ino *e = cvb_ino_get(m, ino, false);
	struct ext2_inode_large in;
	int rc;

	if (!e || !e->refs)
		return -EBADF;
	if (--e->refs || !e->orphan)
		return 0;
	if ((rc = cvb_op_begin(m)))
		return rc;
	rc = cvb_read_inode(m, ino, &in);
	if (!rc)
		rc = cvb_orphan_del(m, ino, &in);
	if (!rc)
		rc = cvb_write_inode(m, ino, &in);
	if (!rc)
		rc = cvb_free_inode(m, ino);
	rc = cvb_op_end(m, rc);
	if (!rc)
		e->orphan = false;
	else
		e->refs++; /* still open as far as we know */
	return rc;
}
