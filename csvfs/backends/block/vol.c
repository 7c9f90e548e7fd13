// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vol.c - a block volume's set-up: open and check the LUN (init), become
 * its coordinator (claim), start and stop the engine's thread, the
 * volume record (.csvfs/volume inside the ext4 volume) and the making of
 * a new volume (mkfs).
 *
 * Coordinator exclusivity: at most one engine per LUN, ever.  Through
 * csvfs-lockd the claim keeps the ownership of file id CVB_COORD_FILEID
 * (ext4 inode 1, the bad-blocks inode, never a user's file) for the
 * life of the mount, taken only if no other node has it: a second node
 * is refused, told which node is the coordinator.  On every mount, with
 * or without lockd, an exclusive OFD lock on the LUN also keeps a second
 * csvfs (or csvfs-admin format) on this host away from it.
 *
 * The volume record is read before the claim (csvfs's lockd hello names
 * the volume): the engine is not open yet, so it is read with a
 * read-only libext2fs open of the LUN.  The record is written once, when
 * the volume is made, and never changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "iotxn.h"
#include "lun.h"
#include "vol_i.h"
#include "volume.h"

#define SB_OFFSET    1024
#define SB_MAGIC_OFF 0x38
#define EXT4_MAGIC   0xEF53

static struct cvb_vol *vol(struct backend *be)
{
	return be->priv;
}

/* ---- the LUN ------------------------------------------------------------ */

/* Does the LUN hold an ext2/3/4 superblock?  0, -EMEDIUMTYPE, -errno. */
static int check_sb(struct cvb_lun *l)
{
	void *buf;
	const uint8_t *sb;
	ssize_t n;
	int rc = 0;

	if (posix_memalign(&buf, CVB_ALIGN_MAX, 4096))
		return -ENOMEM;
	n = cvb_lun_pread(l, buf, 4096, 0);
	if (n != 4096) {
		rc = n < 0 ? (int)n : -EMEDIUMTYPE;
	} else {
		sb = (const uint8_t *)buf + SB_OFFSET;
		if ((sb[SB_MAGIC_OFF] | sb[SB_MAGIC_OFF + 1] << 8) !=
		    EXT4_MAGIC)
			rc = -EMEDIUMTYPE;
	}
	free(buf);
	return rc;
}

static int open_lun(struct cvb_vol *b, char *why, size_t cap)
{
	int rc = cvb_lun_open(b->path, 0, NULL, &b->lun, why, cap);

	if (rc)
		return rc;
	b->dio_align = cvb_lun_align(b->lun);
	b->dev = cvb_lun_dev(b->lun);
	b->lun_size = cvb_lun_size(b->lun);
	return 0;
}

int cvb_vol_init(struct backend *be, const char *source)
{
	struct cvb_vol *b = calloc(1, sizeof(*b));
	int rc = -ENOMEM;

	if (!b)
		return -ENOMEM;
	b->path = strdup(source);
	if (!b->path)
		goto fail;
	cvb_mq_init(&b->q);
	pthread_mutex_init(&b->itab_lock, NULL);
	rc = -pthread_key_create(&b->bounce_key, free);
	if (rc)
		goto fail;
	be->priv = b;
	rc = open_lun(b, be->why, sizeof(be->why));
	if (!rc)
		rc = check_sb(b->lun);
	if (rc == -EMEDIUMTYPE)
		snprintf(be->why, sizeof(be->why),
			 "%s holds no ext4 file "
			 "system: make it a csvfs volume with csvfs-admin "
			 "format %s%s (which erases it)",
			 source,
			 cvb_lun_is_iscsi(source) ? "" : "block:", source);
	if (rc) {
		cvb_vol_destroy(be);
		return rc;
	}
	return 0;
fail:
	free(b->path);
	free(b);
	return rc;
}

/* ---- the engine ------------------------------------------------------- */

/* The LUN refused one of our writes for good (lun.h): both handles
 * lost, csvfs told once. */
static void vol_lost(void *arg, const char *why)
{
	struct cvb_vol *b = arg;

	if (atomic_exchange(&b->lost, true))
		return;
	cvb_lun_set_lost(b->lun, why);
	if (b->q.m)
		cvb_lun_set_lost(cvb_meta_lun(b->q.m), why);
	if (b->cl.lost)
		b->cl.lost(b->cl.lost_arg, why);
}

/*
 * SCSI-3 persistent reservations, where the LUN has them: this node's
 * key (lockd's node id, and the claim's epoch as the incarnation) is
 * registered on the data path's I_T nexus (the engine registers its own
 * before it writes), and the LUN reserved write exclusive, registrants
 * only, unless it already is.  Another node's fencer removes our key
 * with PREEMPT; we never register again by ourselves.
 */
static int claim_pr(struct cvb_vol *b, const struct be_cluster *cl, char *err,
		    size_t errlen)
{
	struct cvb_pr_state st;
	uint32_t inc = (uint32_t)b->claim_epoch;
	uint64_t key;
	int rc;

	if ((cvb_lun_caps(b->lun) & CVB_LUN_CAP_ISCSI) &&
	    !(cvb_lun_caps(b->lun) & CVB_LUN_CAP_PR))
		fprintf(stderr,
			"csvfs: %s: fencing by lease only (fencing=lease): no "
			"persistent reservation protects the LUN\n",
			b->path);
	if (!cl || !(cvb_lun_caps(b->lun) & CVB_LUN_CAP_PR))
		return 0; /* no cluster: csvfs-admin writing the record */
	key = cvb_pr_key(cl->node_id, inc ? inc : (uint32_t)getpid());
	rc = cvb_pr_register(b->lun, key);
	if (!rc && !(rc = cvb_pr_read(b->lun, &st)) && !st.reserved)
		rc = cvb_pr_reserve(b->lun, key, CVB_PR_WE_RO);
	if (rc == -EOPNOTSUPP)
		snprintf(err, errlen,
			 "%s: the target has no SCSI-3 persistent "
			 "reservations; to run on leases alone, add "
			 "?fencing=lease to the source",
			 b->path);
	else if (rc)
		snprintf(err, errlen,
			 "%s: persistent reservation (key %016llx): %s",
			 b->path, (unsigned long long)key, strerror(-rc));
	if (rc)
		return rc;
	b->pr_key = key;
	cvb_lun_on_lost(b->lun, vol_lost, b);
	return 0;
}

static int open_engine(struct cvb_vol *b, char *err, size_t errlen)
{
	struct cvb_lun_opts lo = { .pr_key = b->pr_key };
	struct cvb_meta_opts o = { .recall = cvb_net_recall,
				   .recall_arg = b,
				   .lun = &lo };
	struct cvb_meta *m;
	char why[256] = "";
	int rc;

	rc = cvb_meta_open(b->path, &o, &m, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "cannot open the block volume %s: %s",
			 b->path, why[0] ? why : strerror(-rc));
		return rc;
	}
	b->q.m = m;
	if (b->pr_key)
		cvb_lun_on_lost(cvb_meta_lun(m), vol_lost, b);
	return 0;
}

/* Taken by another node: -EAGAIN, its name in holder. */
static int claim_lockd(struct cvb_vol *b, const struct be_cluster *cl,
		       char *holder, size_t cap, char *err, size_t errlen)
{
	int rc;

	rc = cl->try_own(cl->arg, CVB_COORD_FILEID, &b->claim_epoch, holder,
			 cap);
	if (rc == -EAGAIN)
		return rc;
	if (rc) {
		snprintf(err, errlen,
			 "cannot become the coordinator of %s "
			 "through csvfs-lockd: %s",
			 b->path, holder[0] ? holder : strerror(-rc));
		return rc;
	}
	b->cl = *cl;
	b->lockd_owned = true;
	return 0;
}

/* Another node coordinates: mount as its client when the cluster can
 * say who is alive (cl->owner), else refuse naming it. */
static int claim_client(struct cvb_vol *b, const struct be_cluster *cl,
			const char *holder, char *err, size_t errlen)
{
	int rc;

	if (!cl->owner) {
		snprintf(err, errlen,
			 "block volume %s is already served by its "
			 "coordinator, node %s",
			 b->path, holder);
		return -EBUSY;
	}
	rc = cvb_net_claim_client(b, cl, holder, err, errlen);
	if (!rc)
		b->claimed = true;
	return rc;
}

static void unclaim_lockd(struct cvb_vol *b)
{
	if (b->lockd_owned && b->cl.release)
		b->cl.release(b->cl.arg, CVB_COORD_FILEID, b->claim_epoch);
	b->lockd_owned = false;
}

int cvb_vol_claim(struct backend *be, const struct be_cluster *cl, char *err,
		  size_t errlen)
{
	struct cvb_vol *b = vol(be);
	char holder[256] = "";
	int rc;

	if (b->claimed)
		return 0;
	if (cl && cl->try_own) {
		rc = claim_lockd(b, cl, holder, sizeof(holder), err, errlen);
		if (rc == -EAGAIN)
			return claim_client(b, cl, holder, err, errlen);
		if (rc)
			return rc;
	}
	rc = cvb_lun_lock(b->lun);
	if (rc == -EAGAIN)
		snprintf(err, errlen,
			 "%s is in use by another csvfs on this "
			 "host (its coordinator) or by csvfs-admin",
			 b->path);
	else if (rc)
		snprintf(err, errlen, "cannot lock %s: %s", b->path,
			 strerror(-rc));
	if (!rc) {
		if (cl)
			b->cl = *cl; /* lost, lost_arg too */
		rc = claim_pr(b, cl, err, errlen);
	}
	if (!rc)
		rc = open_engine(b, err, errlen);
	if (rc) {
		unclaim_lockd(b);
		return rc;
	}
	if (cl && cl->node && cl->node[0])
		snprintf(b->coordinator, sizeof(b->coordinator), "%s",
			 cl->node);
	else
		gethostname(b->coordinator, sizeof(b->coordinator) - 1);
	b->claimed = true;
	return 0;
}

/* A call that needs the engine without a claim (csvfs-admin). */
static int claim_here(struct backend *be)
{
	char err[sizeof(be->why)];
	int rc = cvb_vol_claim(be, NULL, err, sizeof(err));

	if (rc)
		snprintf(be->why, sizeof(be->why), "%s", err);
	return rc;
}

int cvb_vol_start(struct backend *be)
{
	struct cvb_vol *b = vol(be);
	int rc = 0;

	if (!b->client)
		rc = cvb_mq_start(&b->q);
	if (!rc && b->claimed)
		rc = cvb_net_start(b, b->cl.node ? b->cl.node : b->coordinator);
	return rc;
}

/* Every file is closed: commit, check-point, close the engine, and only
 * then let the coordinator role go.  A client closes its channel and
 * its mount's liveness file id. */
void cvb_vol_stop(struct backend *be)
{
	struct cvb_vol *b = vol(be);
	int rc;

	if (!b || !b->claimed)
		return;
	if (b->client) {
		cvb_net_stop(b);
		b->claimed = false;
		return;
	}
	cvb_mq_stop(&b->q); /* nodes' requests queued: answered */
	cvb_net_stop(b);
	pthread_mutex_lock(&b->q.lock);
	rc = cvb_meta_close(b->q.m);
	b->q.m = NULL;
	pthread_mutex_unlock(&b->q.lock);
	if (rc)
		fprintf(stderr, "csvfs: closing the block volume %s: %s\n",
			b->path, strerror(-rc));
	unclaim_lockd(b);
	b->claimed = false;
}

void cvb_vol_destroy(struct backend *be)
{
	struct cvb_vol *b = vol(be);

	if (!b)
		return;
	cvb_vol_stop(be);
	cvb_lun_close(b->lun); /* drops the host lock */
	pthread_key_delete(b->bounce_key);
	pthread_mutex_destroy(&b->itab_lock);
	cvb_mq_destroy(&b->q);
	free(b->path);
	free(b);
	be->priv = NULL;
}

ssize_t cvb_vol_coordinator(struct cvb_vol *b, void *buf, size_t size)
{
	size_t len = strlen(b->coordinator);

	if (!size)
		return (ssize_t)len;
	if (len > size)
		return -ERANGE;
	memcpy(buf, b->coordinator, len);
	return (ssize_t)len;
}

/* ---- the volume record ------------------------------------------------ */

/* Read-only, without the engine: libext2fs's own reader, O_DIRECT so
 * that no page cache of this host hides what another wrote. */
int cvb_vol_peek(const char *path, const char *name, char *buf, size_t cap)
{
	char where[64];
	ext2_filsys fs;
	ext2_ino_t ino;
	ext2_file_t f;
	unsigned int got = 0;
	errcode_t e;
	int rc = 0;

	struct iotxn *t = NULL;

	snprintf(where, sizeof(where), "%s/%s", CV_META_DIR, name);
	if (cvb_lun_is_iscsi(path)) { /* no page cache on that path */
		if (iotxn_open(path, &t))
			return -EIO;
		e = ext2fs_open2(path, NULL, EXT2_FLAG_64BITS, 0, 0,
				 iotxn_io_manager, &fs);
	} else {
		e = ext2fs_open2(path, NULL,
				 EXT2_FLAG_64BITS | EXT2_FLAG_DIRECT_IO, 0, 0,
				 unix_io_manager, &fs);
		if (e) /* a file system without O_DIRECT: one host anyway */
			e = ext2fs_open2(path, NULL, EXT2_FLAG_64BITS, 0, 0,
					 unix_io_manager, &fs);
	}
	if (e) {
		if (t)
			iotxn_close(t);
		return -EIO;
	}
	e = ext2fs_namei(fs, EXT2_ROOT_INO, EXT2_ROOT_INO, where, &ino);
	if (e == EXT2_ET_FILE_NOT_FOUND)
		rc = -ENOENT;
	else if (e)
		rc = -EUCLEAN;
	if (!rc && ext2fs_file_open(fs, ino, 0, &f))
		rc = -EIO;
	if (!rc) {
		if (ext2fs_file_read(f, buf, (unsigned)cap - 1, &got))
			rc = -EIO;
		ext2fs_file_close(f);
	}
	ext2fs_close_free(&fs);
	if (t)
		iotxn_close(t);
	if (!rc)
		buf[got] = '\0';
	return rc;
}

/* Through the engine and the data path (the coordinator's view). */
static int read_record(struct backend *be, char *buf, size_t cap)
{
	struct cvb_vol *b = vol(be);
	struct cvb_req r = { .op = CVB_OP_LOOKUP,
			     .ino = CVB_ROOT_INO,
			     .name = CV_META_DIR };
	struct cvb_inode *ci;
	ssize_t n;
	int rc;

	rc = (int)cvb_mq_call(&b->q, &r);
	if (rc)
		return rc;
	if (!S_ISDIR(r.st.st_mode))
		return -EUCLEAN;
	r.ino = (uint64_t)r.st.st_ino;
	r.name = CV_VOLREC_NAME;
	rc = (int)cvb_mq_call(&b->q, &r);
	if (rc)
		return rc;
	ci = cvb_inode_get(b, (uint64_t)r.st.st_ino);
	if (!ci)
		return -ENOMEM;
	cvb_io_overlay(ci, &r.st);
	n = cvb_io_read(b, ci, buf, cap - 1, 0);
	cvb_inode_put(b, ci);
	if (n < 0)
		return (int)n;
	buf[n] = '\0';
	return 0;
}

int cvb_vol_read(struct backend *be, struct cv_volrec *rec)
{
	struct cvb_vol *b = vol(be);
	char buf[512];
	int rc;

	if (b->claimed && !b->client)
		rc = read_record(be, buf, sizeof(buf));
	else
		rc = cvb_vol_peek(b->path, CV_VOLREC_NAME, buf, sizeof(buf));
	if (!rc)
		rc = cv_volrec_parse(buf, rec);
	if (!rc) {
		memcpy(b->uuid, rec->uuid, sizeof(b->uuid));
		b->have_uuid = true;
	}
	return rc;
}

/* .csvfs in the root, made if missing (root's, 0755). */
static int meta_dir(struct cvb_vol *b, uint64_t *ino)
{
	struct cvb_req r = { .op = CVB_OP_MKDIR,
			     .ino = CVB_ROOT_INO,
			     .name = CV_META_DIR,
			     .mode = 0755 };
	int rc = (int)cvb_mq_call(&b->q, &r);

	if (rc == -EEXIST) {
		r.op = CVB_OP_LOOKUP;
		rc = (int)cvb_mq_call(&b->q, &r);
		if (!rc && !S_ISDIR(r.st.st_mode))
			rc = -EUCLEAN; /* .csvfs is not ours */
	}
	if (!rc)
		*ino = (uint64_t)r.st.st_ino;
	return rc;
}

/* A new file name in dir holding buf, its size pushed. */
static int write_file(struct cvb_vol *b, uint64_t dir, const char *name,
		      const char *buf, size_t len, uint64_t *ino)
{
	struct cvb_req r = { .op = CVB_OP_MKNOD,
			     .ino = dir,
			     .name = name,
			     .mode = S_IFREG | 0644 };
	struct cvb_inode *ci;
	ssize_t n;
	int rc = (int)cvb_mq_call(&b->q, &r);

	if (rc)
		return rc;
	*ino = (uint64_t)r.st.st_ino;
	ci = cvb_inode_get(b, *ino);
	if (!ci)
		return -ENOMEM;
	cvb_io_overlay(ci, &r.st);
	n = cvb_io_write(b, ci, buf, len, 0);
	rc = n < 0 ? (int)n : (size_t)n < len ? -EIO : 0;
	if (!rc)
		rc = cvb_lun_flush(b->lun);
	if (!rc)
		rc = cvb_io_push(b, ci);
	cvb_inode_put(b, ci);
	return rc;
}

/*
 * Atomic, as for the dir backend: written under a temporary name, then
 * linked to its final name (EEXIST if there is one), the temporary name
 * removed either way, all committed before returning.
 */
int cvb_vol_create(struct backend *be, const struct cv_volrec *rec)
{
	struct cvb_vol *b = vol(be);
	struct cvb_req r = { 0 };
	char buf[512], tmp[64];
	uint64_t dir, ino;
	int len, rc = 0;

	if (!b->claimed)
		rc = claim_here(be);
	if (!rc && b->client)
		rc = -EROFS; /* made by the coordinator only */
	len = cv_volrec_format(rec, buf, sizeof(buf));
	if (!rc && len < 0)
		rc = len;
	if (!rc)
		rc = meta_dir(b, &dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", CV_VOLREC_NAME,
		 (long)getpid());
	if (!rc)
		rc = write_file(b, dir, tmp, buf, (size_t)len, &ino);
	if (rc)
		return rc;
	r = (struct cvb_req){ .op = CVB_OP_LINK,
			      .ino = ino,
			      .ino2 = dir,
			      .name2 = CV_VOLREC_NAME };
	rc = (int)cvb_mq_call(&b->q, &r);
	r = (struct cvb_req){ .op = CVB_OP_UNLINK, .ino = dir, .name = tmp };
	cvb_mq_call(&b->q, &r);
	r = (struct cvb_req){ .op = CVB_OP_COMMIT };
	if (!rc)
		rc = (int)cvb_mq_call(&b->q, &r);
	if (!rc) {
		memcpy(b->uuid, rec->uuid, sizeof(b->uuid));
		b->have_uuid = true;
	}
	return rc;
}

/* Rewrite an existing file's first len bytes in place (its size kept),
 * straight to the LUN. */
static int rewrite(struct cvb_vol *b, uint64_t ino, const char *buf, size_t len)
{
	struct cvb_inode *ci = cvb_inode_get(b, ino);
	struct cvb_req r = { .op = CVB_OP_GETATTR, .ino = ino };
	ssize_t n;
	int rc;

	if (!ci)
		return -ENOMEM;
	rc = (int)cvb_mq_call(&b->q, &r);
	if (!rc && (uint64_t)r.st.st_size != len)
		rc = -EUCLEAN;
	if (!rc) {
		cvb_io_overlay(ci, &r.st);
		n = cvb_io_write(b, ci, buf, len, 0);
		rc = n < 0 ? (int)n : (size_t)n < len ? -EIO : 0;
	}
	if (!rc)
		rc = cvb_lun_flush(b->lun);
	if (!rc)
		rc = cvb_io_push(b, ci);
	cvb_inode_put(b, ci);
	return rc;
}

int cvb_vol_publish(struct cvb_vol *b, const char *name, const char *buf,
		    size_t len)
{
	struct cvb_req r = { .op = CVB_OP_LOOKUP, .name = name };
	uint64_t dir, ino;
	int rc = meta_dir(b, &dir);

	r.ino = dir;
	if (!rc)
		rc = (int)cvb_mq_call(&b->q, &r);
	if (!rc)
		return rewrite(b, (uint64_t)r.st.st_ino, buf, len);
	if (rc != -ENOENT)
		return rc;
	rc = write_file(b, dir, name, buf, len, &ino);
	r = (struct cvb_req){ .op = CVB_OP_CHECKPOINT };
	if (!rc)
		rc = (int)cvb_mq_call(&b->q, &r);
	return rc;
}

/* ---- a new volume ----------------------------------------------------- */

/* What the first blocks of the LUN hold, or NULL when they look unused. */
static const char *probe(struct cvb_lun *l)
{
	uint8_t *buf;
	const char *what = NULL;

	if (posix_memalign((void **)&buf, CVB_ALIGN_MAX, 65536 + 4096))
		return "unreadable data";
	if (cvb_lun_pread(l, buf, 65536 + 4096, 0) != 65536 + 4096) {
		what = NULL; /* too small to hold anything of ours */
	} else if ((buf[SB_OFFSET + SB_MAGIC_OFF] |
		    buf[SB_OFFSET + SB_MAGIC_OFF + 1] << 8) == EXT4_MAGIC) {
		what = "an ext2/3/4 file system";
	} else if (!memcmp(buf, "XFSB", 4)) {
		what = "an XFS file system";
	} else if (!memcmp(buf + 65536 + 64, "_BHRfS_M", 8)) {
		what = "a btrfs file system";
	} else if (!memcmp(buf + 512, "EFI PART", 8) ||
		   (buf[510] == 0x55 && buf[511] == 0xaa)) {
		what = "a partition table or boot sector";
	} else if (!memcmp(buf + 4096 - 10, "SWAPSPACE2", 10)) {
		what = "swap space";
	}
	free(buf);
	return what;
}

int cvb_vol_mkfs(const char *source, const char *label, bool force, char *err,
		 size_t errlen)
{
	struct cvb_lun *l;
	const char *what;
	int rc;

	rc = cvb_lun_open(source, 0, NULL, &l, err, errlen);
	if (rc)
		return rc;
	rc = cvb_lun_lock(l);
	if (rc) {
		snprintf(err, errlen,
			 "%s is in use by a csvfs mount on this "
			 "host: unmount it first",
			 source);
		goto out;
	}
	what = probe(l);
	if (what && !force) {
		snprintf(err, errlen,
			 "%s already holds %s: nothing written "
			 "(--force erases it)",
			 source, what);
		rc = -EEXIST;
		goto out;
	}
	if (cvb_lun_caps(l) & CVB_LUN_CAP_FD)
		rc = cvb_format(source, label, err, errlen);
	else
		rc = cvb_format_lun(l, label, err, errlen);
out:
	cvb_lun_close(l);
	return rc;
}
