// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * apply.c - applying a staged point to the replica images atomically,
 * and the undo records that roll a crash back and materialise older
 * points (store.h).
 *
 * An undo record (points/<point>.undo), little endian:
 *
 *	u32 magic RS_UNDO_MAGIC	u32 nfiles	u64 point	u64 restores_to
 *	u64 0
 *	nfiles x { u64 file_id, u64 size, u64 flags (1: the file existed) }
 *	entries: { u64 file_id, u64 offset, u64 len, len bytes }
 *
 * It turns the images of `point` back into those of `restores_to`:
 * set every listed file to its old size, write the entries in reverse
 * order (so where a point changed a range twice, the first record, read
 * before any change, wins), set the sizes again (entries of a merged
 * record may reach past an older, shorter size).  The entries hold the
 * old bytes of every range the point's operations touch, clipped to the
 * old size, and of what a shrinking size cuts off.  Merging the record
 * of a dropped point K into its successor S: K's table first (its sizes
 * are the older), then K's entries, then S's: applied in reverse, K's
 * bytes win.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "lm_cur.h"
#include "log.h"
#include "stage.h"
#include "store.h"
#include "tls.h"

#define RS_UNDO_MAGIC 0x55525643u /* "CVRU" */
#define UNDO_HDR      32
#define UNDO_FILE     24
#define UNDO_ENT      24
#define CHUNK	      (1u << 20)

struct undo_file {
	uint64_t file_id;
	uint64_t size;
	uint64_t flags;
};

struct undo_hdr {
	uint32_t nfiles;
	uint64_t point, restores_to;
	struct undo_file files[CVR_FILES_MAX];
	uint64_t entries; /* offset of the first entry */
};

/* An image of the point being applied, or an output file. */
struct img {
	uint64_t file_id;
	int fd;
	uint64_t orig; /* size before the point */
	bool existed;
};

/* ------------------------------------------------------------------------
 * Reading and writing records.
 */
static int hdr_read(int fd, struct undo_hdr *h)
{
	uint8_t b[UNDO_HDR], f[UNDO_FILE];
	int rc = rs_pread_all(fd, b, sizeof(b), 0);

	if (rc)
		return rc == -ENODATA ? -EBADMSG : rc;
	if (lm_get_le(b, 4) != RS_UNDO_MAGIC ||
	    lm_get_le(b + 4, 4) > CVR_FILES_MAX)
		return -EBADMSG;
	h->nfiles = (uint32_t)lm_get_le(b + 4, 4);
	h->point = lm_get_le(b + 8, 8);
	h->restores_to = lm_get_le(b + 16, 8);
	for (uint32_t i = 0; i < h->nfiles; i++) {
		rc = rs_pread_all(fd, f, sizeof(f),
				  UNDO_HDR + (uint64_t)i * UNDO_FILE);
		if (rc)
			return rc == -ENODATA ? -EBADMSG : rc;
		h->files[i].file_id = lm_get_le(f, 8);
		h->files[i].size = lm_get_le(f + 8, 8);
		h->files[i].flags = lm_get_le(f + 16, 8);
	}
	h->entries = UNDO_HDR + (uint64_t)h->nfiles * UNDO_FILE;
	return 0;
}

static int hdr_write(int fd, const struct undo_hdr *h)
{
	uint8_t b[UNDO_HDR] = { 0 }, f[UNDO_FILE];
	int rc;

	lm_put_le(b, RS_UNDO_MAGIC, 4);
	lm_put_le(b + 4, h->nfiles, 4);
	lm_put_le(b + 8, h->point, 8);
	lm_put_le(b + 16, h->restores_to, 8);
	rc = rs_pwrite_all(fd, b, sizeof(b), 0);
	for (uint32_t i = 0; i < h->nfiles && !rc; i++) {
		lm_put_le(f, h->files[i].file_id, 8);
		lm_put_le(f + 8, h->files[i].size, 8);
		lm_put_le(f + 16, h->files[i].flags, 8);
		rc = rs_pwrite_all(fd, f, sizeof(f),
				   UNDO_HDR + (uint64_t)i * UNDO_FILE);
	}
	return rc;
}

static int undo_open(struct rs_group *g, uint64_t point, int flags)
{
	char name[64];
	int fd;

	rs_name(name, sizeof(name), "points", point, ".undo");
	fd = openat(g->dirfd, name, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

int rs_undo_restores_to(struct rs_group *g, uint64_t point, uint64_t *to)
{
	struct undo_hdr *h = malloc(sizeof(*h));
	int fd = undo_open(g, point, O_RDONLY), rc;

	if (!h) {
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	rc = fd < 0 ? fd : hdr_read(fd, h);
	if (!rc)
		*to = h->restores_to;
	if (fd >= 0)
		close(fd);
	free(h);
	return rc;
}

/* Copy len bytes from in at ioff to out at ooff. */
static int copy_bytes(int in, uint64_t ioff, int out, uint64_t ooff,
		      uint64_t len, uint8_t *buf)
{
	while (len) {
		size_t n = len > CHUNK ? CHUNK : (size_t)len;
		int rc = rs_pread_all(in, buf, n, ioff);

		if (!rc)
			rc = rs_pwrite_all(out, buf, n, ooff);
		if (rc)
			return rc;
		ioff += n;
		ooff += n;
		len -= n;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * Applying an undo record to a set of files.
 */
typedef int (*fd_of_fn)(void *ctx, uint64_t file_id);

static int set_sizes(const struct undo_hdr *h, fd_of_fn fd_of, void *ctx)
{
	for (uint32_t i = 0; i < h->nfiles; i++) {
		int fd = fd_of(ctx, h->files[i].file_id);
		uint64_t size = h->files[i].flags & 1 ? h->files[i].size : 0;

		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			return fd;
		if (ftruncate(fd, (off_t)size))
			return -errno;
	}
	return 0;
}

/* The entries' offsets, in order; *offs malloc'ed. */
static int entry_index(int ufd, uint64_t start, uint64_t **offs, size_t *n)
{
	struct stat st;
	uint8_t e[UNDO_ENT];
	uint64_t pos = start;
	size_t cap = 0;

	*offs = NULL;
	*n = 0;
	if (fstat(ufd, &st))
		return -errno;
	while (pos < (uint64_t)st.st_size) {
		int rc = rs_pread_all(ufd, e, sizeof(e), pos);

		if (rc)
			return rc == -ENODATA ? -EBADMSG : rc;
		if (*n == cap) {
			uint64_t *p = realloc(*offs, (cap = cap * 2 + 64) *
							     sizeof(*p));

			if (!p)
				return -ENOMEM;
			*offs = p;
		}
		(*offs)[(*n)++] = pos;
		pos += UNDO_ENT + lm_get_le(e + 16, 8);
	}
	return pos == (uint64_t)st.st_size ? 0 : -EBADMSG;
}

static int undo_apply(int ufd, fd_of_fn fd_of, void *ctx)
{
	struct undo_hdr *h = malloc(sizeof(*h));
	uint8_t *buf = malloc(CHUNK), e[UNDO_ENT];
	uint64_t *offs = NULL;
	size_t n = 0;
	int rc = !h || !buf ? -ENOMEM : hdr_read(ufd, h);

	if (!rc)
		rc = set_sizes(h, fd_of, ctx);
	if (!rc)
		rc = entry_index(ufd, h->entries, &offs, &n);
	while (!rc && n--) {
		int fd;

		rc = rs_pread_all(ufd, e, sizeof(e), offs[n]);
		if (rc)
			break;
		fd = fd_of(ctx, lm_get_le(e, 8));
		if (fd == -ENOENT)
			continue;
		if (fd < 0) {
			rc = fd;
			break;
		}
		rc = copy_bytes(ufd, offs[n] + UNDO_ENT, fd,
				lm_get_le(e + 8, 8), lm_get_le(e + 16, 8), buf);
	}
	if (!rc)
		rc = set_sizes(h, fd_of, ctx);
	free(offs);
	free(buf);
	free(h);
	return rc;
}

/* ------------------------------------------------------------------------
 * Image sets.
 */
struct imgset {
	struct img *v;
	uint32_t n;
};

static int imgset_fd(void *ctx, uint64_t file_id)
{
	struct imgset *s = ctx;

	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].file_id == file_id)
			return s->v[i].fd;
	return -ENOENT;
}

static void imgset_close(struct imgset *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].fd >= 0)
			close(s->v[i].fd);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static int imgset_sync(struct imgset *s)
{
	for (uint32_t i = 0; i < s->n; i++)
		if (s->v[i].fd >= 0 && fsync(s->v[i].fd))
			return -errno;
	return 0;
}

/* Open (creating) the images of ids[0..n), noting what existed. */
static int imgset_open(struct rs_group *g, struct imgset *s,
		       const uint64_t *ids, uint32_t n)
{
	char name[64];
	struct stat st;

	s->v = calloc(n ? n : 1, sizeof(*s->v));
	s->n = 0;
	if (!s->v)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct img *m = &s->v[s->n++];

		m->file_id = ids[i];
		rs_name(name, sizeof(name), "images", ids[i], ".img");
		m->existed = !fstatat(g->dirfd, name, &st, 0);
		m->fd = openat(g->dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC,
			       0600);
		if (m->fd < 0 || fstat(m->fd, &st))
			return -errno;
		m->orig = m->existed ? (uint64_t)st.st_size : 0;
	}
	return 0;
}

int rs_undo_rollback(struct rs_group *g, uint64_t point)
{
	struct undo_hdr *h = malloc(sizeof(*h));
	struct imgset s = { 0 };
	uint64_t ids[CVR_FILES_MAX];
	char name[64];
	int ufd = undo_open(g, point, O_RDONLY), rc;

	rc = !h ? -ENOMEM : ufd < 0 ? ufd : hdr_read(ufd, h);
	if (rc == -ENOENT || rc == -EBADMSG) {
		/* no whole record: the marker was never written after it,
		 * so the images were not touched */
		rc = 0;
		goto out;
	}
	for (uint32_t i = 0; !rc && i < h->nfiles; i++)
		ids[i] = h->files[i].file_id;
	if (!rc)
		rc = imgset_open(g, &s, ids, h->nfiles);
	if (!rc)
		rc = undo_apply(ufd, imgset_fd, &s);
	if (!rc)
		rc = imgset_sync(&s);
	for (uint32_t i = 0; !rc && i < h->nfiles; i++)
		if (!(h->files[i].flags & 1)) {
			rs_name(name, sizeof(name), "images",
				h->files[i].file_id, ".img");
			unlinkat(g->dirfd, name, 0);
		}
out:
	if (!rc) {
		rs_name(name, sizeof(name), "points", point, ".undo");
		unlinkat(g->dirfd, name, 0);
		rs_name(name, sizeof(name), "points", point, ".info");
		unlinkat(g->dirfd, name, 0);
		rc = rs_fsync_dir(g->dirfd);
	}
	imgset_close(&s);
	if (ufd >= 0)
		close(ufd);
	free(h);
	return rc;
}

/* ------------------------------------------------------------------------
 * Merging the undo record of a dropped point into its successor's.
 */
static void merge_tables(struct undo_hdr *m, const struct undo_hdr *k,
			 const struct undo_hdr *s)
{
	*m = *k;
	m->point = s->point;
	for (uint32_t i = 0; i < s->nfiles; i++) {
		bool dup = false;

		for (uint32_t j = 0; j < k->nfiles && !dup; j++)
			dup = k->files[j].file_id == s->files[i].file_id;
		if (!dup && m->nfiles < CVR_FILES_MAX)
			m->files[m->nfiles++] = s->files[i];
	}
	m->entries = UNDO_HDR + (uint64_t)m->nfiles * UNDO_FILE;
}

static int merge_write(int out, int kfd, const struct undo_hdr *k, int sfd,
		       const struct undo_hdr *s, const struct undo_hdr *m)
{
	uint8_t *buf = malloc(CHUNK);
	struct stat ks, ss;
	int rc = buf ? hdr_write(out, m) : -ENOMEM;

	if (!rc && (fstat(kfd, &ks) || fstat(sfd, &ss)))
		rc = -errno;
	if (!rc)
		rc = copy_bytes(kfd, k->entries, out, m->entries,
				(uint64_t)ks.st_size - k->entries, buf);
	if (!rc)
		rc = copy_bytes(sfd, s->entries, out,
				m->entries + (uint64_t)ks.st_size - k->entries,
				(uint64_t)ss.st_size - s->entries, buf);
	if (!rc && fsync(out))
		rc = -errno;
	free(buf);
	return rc;
}

int rs_undo_merge(struct rs_group *g, uint64_t older, uint64_t newer)
{
	struct undo_hdr *h = calloc(3, sizeof(*h));
	int kfd = undo_open(g, older, O_RDONLY);
	int sfd = undo_open(g, newer, O_RDONLY);
	char tmp[64], name[64];
	int out = -1, rc;

	rc = !h ? -ENOMEM : kfd < 0 ? kfd : sfd < 0 ? sfd : 0;
	if (!rc)
		rc = hdr_read(kfd, &h[0]);
	if (!rc)
		rc = hdr_read(sfd, &h[1]);
	if (rc)
		goto out;
	merge_tables(&h[2], &h[0], &h[1]);
	rs_name(tmp, sizeof(tmp), "points", newer, ".undo.tmp");
	rs_name(name, sizeof(name), "points", newer, ".undo");
	out = openat(g->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		     0600);
	if (out < 0) {
		rc = -errno;
		goto out;
	}
	rc = merge_write(out, kfd, &h[0], sfd, &h[1], &h[2]);
	if (!rc && renameat(g->dirfd, tmp, g->dirfd, name))
		rc = -errno;
	if (!rc)
		rc = rs_fsync_dir(g->dirfd);
out:
	if (out >= 0)
		close(out);
	if (rc)
		unlinkat(g->dirfd, tmp, 0);
	if (kfd >= 0)
		close(kfd);
	if (sfd >= 0)
		close(sfd);
	free(h);
	return rc;
}

/* ------------------------------------------------------------------------
 * Applying a staged point.
 */
struct apply {
	struct rs_group *g;
	struct imgset imgs;
	uint8_t *data;	/* CVR_DATA_MAX */
	uint8_t *chunk; /* CHUNK */
	int ufd;
	uint64_t uoff; /* next entry's offset */
};

static struct img *img_of(struct apply *a, uint64_t file_id)
{
	for (uint32_t i = 0; i < a->imgs.n; i++)
		if (a->imgs.v[i].file_id == file_id)
			return &a->imgs.v[i];
	return NULL;
}

/* Save the old bytes of [off, off + len) of m, clipped to its old size. */
static int undo_range(struct apply *a, const struct img *m, uint64_t off,
		      uint64_t len)
{
	uint64_t end = off + len < off ? UINT64_MAX : off + len;
	uint8_t e[UNDO_ENT];

	if (end > m->orig)
		end = m->orig;
	while (off < end) {
		uint64_t n = end - off > CHUNK ? CHUNK : end - off;
		int rc;

		lm_put_le(e, m->file_id, 8);
		lm_put_le(e + 8, off, 8);
		lm_put_le(e + 16, n, 8);
		rc = rs_pwrite_all(a->ufd, e, sizeof(e), a->uoff);
		if (!rc)
			rc = copy_bytes(m->fd, off, a->ufd, a->uoff + UNDO_ENT,
					n, a->chunk);
		if (rc)
			return rc;
		a->uoff += UNDO_ENT + n;
		off += n;
	}
	return 0;
}

static int undo_of_rec(struct apply *a, const struct rs_rec *r)
{
	struct img *m = img_of(a, r->file_id);

	if (!m)
		return -EINVAL;
	if (r->type == CVR_TRUNCATE)
		return r->offset < m->orig ? undo_range(a, m, r->offset,
							m->orig - r->offset)
					   : 0;
	return undo_range(a, m, r->offset, r->len);
}

static int undo_build(struct apply *a, uint64_t point, uint64_t restores_to)
{
	struct rs_group *g = a->g;
	struct undo_hdr *h = calloc(1, sizeof(*h));
	uint64_t pos = 0;
	struct rs_rec r;
	int rc = h ? 0 : -ENOMEM;

	for (uint32_t i = 0; !rc && i < a->imgs.n; i++)
		h->files[h->nfiles++] =
			(struct undo_file){ a->imgs.v[i].file_id,
					    a->imgs.v[i].orig,
					    a->imgs.v[i].existed ? 1 : 0 };
	if (!rc) {
		h->point = point;
		h->restores_to = restores_to;
		rc = hdr_write(a->ufd, h);
		a->uoff = UNDO_HDR + (uint64_t)h->nfiles * UNDO_FILE;
	}
	while (!rc && !(rc = rs_rec_next(g->stage_fd, &pos, &r, a->data)))
		rc = undo_of_rec(a, &r);
	if (rc == -ENOENT)
		rc = 0;
	/* what the point's final sizes cut off */
	for (uint32_t i = 0; !rc && i < g->nfiles; i++) {
		struct img *m = img_of(a, g->files[i].file_id);

		if (g->files[i].size < m->orig)
			rc = undo_range(a, m, g->files[i].size,
					m->orig - g->files[i].size);
	}
	if (!rc && fsync(a->ufd))
		rc = -errno;
	free(h);
	return rc;
}

static int punch(int fd, uint64_t off, uint64_t len, uint8_t *zeros)
{
	struct stat st;
	uint64_t end;

	if (fstat(fd, &st))
		return -errno;
	end = off + len > (uint64_t)st.st_size ? (uint64_t)st.st_size
					       : off + len;
	if (off >= end)
		return 0;
	if (!fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		       (off_t)off, (off_t)(end - off)))
		return 0;
	memset(zeros, 0, CHUNK);
	while (off < end) {
		size_t n = end - off > CHUNK ? CHUNK : (size_t)(end - off);
		int rc = rs_pwrite_all(fd, zeros, n, off);

		if (rc)
			return rc;
		off += n;
	}
	return 0;
}

static int do_rec(struct apply *a, const struct rs_rec *r)
{
	struct img *m = img_of(a, r->file_id);

	if (!m)
		return -EINVAL;
	switch (r->type) {
	case CVR_EXTENT:
		return rs_pwrite_all(m->fd, a->data, r->len, r->offset);
	case CVR_TRUNCATE:
		return ftruncate(m->fd, (off_t)r->offset) ? -errno : 0;
	default:
		return punch(m->fd, r->offset, r->len, a->chunk);
	}
}

/*
 * Fault injection for the crash tests: CSVFS_REPLICAD_FAULT=apply:N makes
 * the daemon kill itself (SIGKILL, no clean-up) after writing N records
 * of a point into the images, between the undo record and the state.
 */
static uint64_t fault_after(void)
{
	const char *f = getenv("CSVFS_REPLICAD_FAULT");
	unsigned long long n;

	return f && sscanf(f, "apply:%llu", &n) == 1 ? n : 0;
}

static int images_apply(struct apply *a)
{
	struct rs_group *g = a->g;
	uint64_t pos = 0, done = 0, die = fault_after();
	struct rs_rec r;
	int rc;

	while (!(rc = rs_rec_next(g->stage_fd, &pos, &r, a->data))) {
		if ((rc = do_rec(a, &r)))
			return rc;
		if (die && ++done == die) {
			log_warn("CSVFS_REPLICAD_FAULT: killed mid-apply");
			raise(SIGKILL);
		}
	}
	if (rc != -ENOENT)
		return rc;
	for (uint32_t i = 0; i < g->nfiles; i++)
		if (ftruncate(img_of(a, g->files[i].file_id)->fd,
			      (off_t)g->files[i].size))
			return -errno;
	return imgset_sync(&a->imgs);
}

static int file_sha(int fd, uint8_t out[CVR_SHA_LEN], uint8_t *buf)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	struct stat st;
	uint64_t off = 0;
	int rc = 0;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		rc = -ENOMEM;
	if (!rc && fstat(fd, &st))
		rc = -errno;
	while (!rc && off < (uint64_t)st.st_size) {
		size_t n = (uint64_t)st.st_size - off > CHUNK
				   ? CHUNK
				   : (size_t)((uint64_t)st.st_size - off);

		rc = rs_pread_all(fd, buf, n, off);
		if (!rc && !EVP_DigestUpdate(ctx, buf, n))
			rc = -EIO;
		off += n;
	}
	if (!rc && !EVP_DigestFinal_ex(ctx, out, NULL))
		rc = -EIO;
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* The SHA-256 of a file's extent data in this point, in op order. */
static int extents_sha(struct apply *a, uint64_t file_id,
		       uint8_t out[CVR_SHA_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t pos = 0;
	struct rs_rec r;
	int rc =
		ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;

	while (!rc && !(rc = rs_rec_next(a->g->stage_fd, &pos, &r, a->data)))
		if (r.type == CVR_EXTENT && r.file_id == file_id &&
		    !EVP_DigestUpdate(ctx, a->data, r.len))
			rc = -EIO;
	if (rc == -ENOENT)
		rc = EVP_DigestFinal_ex(ctx, out, NULL) ? 0 : -EIO;
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* Check the END's hashes: extents before applying (after: 0), files
 * after. */
static int check_hashes(struct apply *a, const struct cvr_q_point_end *e,
			bool after, char *err, size_t errlen)
{
	uint8_t sha[CVR_SHA_LEN];

	for (uint32_t i = 0; i < e->nfiles; i++) {
		const struct cvr_file_hash *f = &e->files[i];
		struct img *m = img_of(a, f->file_id);
		int rc = 0;

		if (!m) {
			snprintf(err, errlen,
				 "hash of file %" PRIu64 ", not in the point",
				 f->file_id);
			return -EINVAL;
		}
		if (f->kind == (after ? CVR_HASH_FILE : CVR_HASH_EXTENTS))
			rc = after ? file_sha(m->fd, sha, a->chunk)
				   : extents_sha(a, f->file_id, sha);
		else
			continue;
		if (rc) {
			snprintf(err, errlen,
				 "cannot hash file %" PRIu64 ": %s", f->file_id,
				 strerror(-rc));
			return CVR_E_STORE;
		}
		if (memcmp(sha, f->sha256, CVR_SHA_LEN)) {
			snprintf(err, errlen,
				 "file %" PRIu64 ": SHA-256 of the %s does not "
				 "match the primary's",
				 f->file_id, after ? "whole file" : "extents");
			return CVR_E_HASH;
		}
	}
	return 0;
}

static void apply_free(struct apply *a)
{
	imgset_close(&a->imgs);
	if (a->ufd >= 0)
		close(a->ufd);
	free(a->data);
	free(a->chunk);
}

/* Undo record, then the marker: from here a crash rolls back. */
static int write_undo(struct apply *a, uint64_t point, uint64_t last)
{
	struct rs_group *g = a->g;
	char tmp[64], name[64], mark[32];
	int rc;

	rs_name(tmp, sizeof(tmp), "points", point, ".undo.tmp");
	rs_name(name, sizeof(name), "points", point, ".undo");
	a->ufd = openat(g->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
			0600);
	if (a->ufd < 0)
		return -errno;
	rc = undo_build(a, point, last);
	if (!rc && renameat(g->dirfd, tmp, g->dirfd, name))
		rc = -errno;
	if (!rc)
		rc = rs_fsync_dir(g->dirfd);
	if (rc) {
		unlinkat(g->dirfd, tmp, 0);
		return rc;
	}
	snprintf(mark, sizeof(mark), "%" PRIu64 "\n", point);
	return rs_write_atomic(g->dirfd, "applying", mark, strlen(mark));
}

int rs_apply_stage(struct rs_group *g, const struct cvr_q_point_end *e,
		   char *err, size_t errlen)
{
	struct apply a = { .g = g, .ufd = -1 };
	uint64_t ids[CVR_FILES_MAX], point = g->open_point;
	int rc = 0;

	a.data = malloc(CVR_DATA_MAX);
	a.chunk = malloc(CHUNK);
	if (!a.data || !a.chunk)
		rc = -ENOMEM;
	if (!rc && fsync(g->stage_fd))
		rc = -errno;
	for (uint32_t i = 0; i < g->nfiles; i++)
		ids[i] = g->files[i].file_id;
	if (!rc)
		rc = imgset_open(g, &a.imgs, ids, g->nfiles);
	if (rc) {
		snprintf(err, errlen, "cannot open the images: %s",
			 strerror(-rc));
		rc = CVR_E_STORE;
		goto out;
	}
	rc = check_hashes(&a, e, false, err, errlen);
	if (rc)
		goto out;
	rc = write_undo(&a, point, rs_group_last(g));
	if (rc) {
		snprintf(err, errlen, "cannot write the undo record: %s",
			 strerror(-rc));
		rc = CVR_E_STORE;
		goto out;
	}
	rc = images_apply(&a);
	if (rc)
		snprintf(err, errlen, "cannot write the images: %s",
			 strerror(-rc));
	if (!rc)
		rc = check_hashes(&a, e, true, err, errlen);
	if (rc) {
		/* the previous point stays: roll back now, or (if that fails
		 * too) at the next lock, from the marker */
		if (!rs_undo_rollback(g, point))
			unlinkat(g->dirfd, "applying", 0);
		rc = rc < 0 && rc > -4096 ? CVR_E_STORE : rc;
	}
out:
	apply_free(&a);
	return rc;
}

/* ------------------------------------------------------------------------
 * Materialising a point.
 */
static int mkdirs(int dirfd, const char *name)
{
	char path[CVR_NAME_MAX + 16];

	snprintf(path, sizeof(path), "%s", name);
	for (char *p = strchr(path, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		if (mkdirat(dirfd, path, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return 0;
}

/* Copy the data of in to out, holes stay holes; a reflink where the
 * file system shares extents (btrfs, xfs), which makes a test failover's
 * copy of a large disk instant. */
static int copy_sparse(int in, int out, uint8_t *buf)
{
	struct stat st;
	off_t data = 0, hole;
	int rc = 0;

	if (ioctl(out, FICLONE, in) == 0)
		return 0;
	if (fstat(in, &st) || ftruncate(out, 0) || ftruncate(out, st.st_size))
		return -errno;
	while (!rc && data < st.st_size) {
		data = lseek(in, data, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : -errno;
		hole = lseek(in, data, SEEK_HOLE);
		if (hole < 0)
			return -errno;
		rc = copy_bytes(in, (uint64_t)data, out, (uint64_t)data,
				(uint64_t)(hole - data), buf);
		data = hole;
	}
	return rc;
}

struct mat {
	struct imgset out;
	struct cvr_file *files;
	uint8_t (*sha)[CVR_SHA_LEN];
	uint8_t *kind;
	uint32_t nfiles;
	uint8_t *buf;
	int destfd;
};

static int mat_open(struct rs_group *g, struct mat *m)
{
	char tmp[CVR_NAME_MAX + 16], img[64];
	int rc = 0;

	m->out.v = calloc(m->nfiles, sizeof(*m->out.v));
	if (!m->out.v)
		return -ENOMEM;
	for (uint32_t i = 0; i < m->nfiles && !rc; i++) {
		struct img *o = &m->out.v[m->out.n++];
		int in;

		o->file_id = m->files[i].file_id;
		snprintf(tmp, sizeof(tmp), "%s.cvr-tmp", m->files[i].name);
		rc = mkdirs(m->destfd, tmp);
		o->fd = rc ? -1
			   : openat(m->destfd, tmp,
				    O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
				    0644);
		if (!rc && o->fd < 0)
			rc = -errno;
		rs_name(img, sizeof(img), "images", o->file_id, ".img");
		in = rc ? -1 : openat(g->dirfd, img, O_RDONLY | O_CLOEXEC);
		if (!rc && in < 0)
			rc = errno == ENOENT ? 0 : -errno; /* an empty file */
		if (!rc && in >= 0)
			rc = copy_sparse(in, o->fd, m->buf);
		if (in >= 0)
			close(in);
	}
	return rc;
}

static int mat_finish(struct mat *m, char *err, size_t errlen)
{
	char tmp[CVR_NAME_MAX + 16];
	uint8_t sha[CVR_SHA_LEN];

	for (uint32_t i = 0; i < m->nfiles; i++) {
		int fd = m->out.v[i].fd;

		if (ftruncate(fd, (off_t)m->files[i].size) || fsync(fd))
			return -errno;
		if (m->kind[i] != CVR_HASH_FILE)
			continue;
		if (file_sha(fd, sha, m->buf) ||
		    memcmp(sha, m->sha[i], CVR_SHA_LEN)) {
			snprintf(err, errlen,
				 "%s: the materialised file's SHA-256 is not "
				 "the primary's",
				 m->files[i].name);
			return CVR_E_HASH;
		}
	}
	for (uint32_t i = 0; i < m->nfiles; i++) {
		snprintf(tmp, sizeof(tmp), "%s.cvr-tmp", m->files[i].name);
		if (renameat(m->destfd, tmp, m->destfd, m->files[i].name))
			return -errno;
	}
	return fsync(m->destfd) ? -errno : 0;
}

static void mat_free(struct mat *m, bool failed)
{
	char tmp[CVR_NAME_MAX + 16];

	for (uint32_t i = 0; failed && i < m->out.n; i++) {
		snprintf(tmp, sizeof(tmp), "%s.cvr-tmp", m->files[i].name);
		unlinkat(m->destfd, tmp, 0);
	}
	imgset_close(&m->out);
	if (m->destfd >= 0)
		close(m->destfd);
	free(m->files);
	free(m->sha);
	free(m->kind);
	free(m->buf);
}

static int mat_alloc(struct mat *m, const char *dest)
{
	memset(m, 0, sizeof(*m));
	m->destfd = -1;
	m->files = calloc(CVR_FILES_MAX, sizeof(*m->files));
	m->sha = calloc(CVR_FILES_MAX, sizeof(*m->sha));
	m->kind = calloc(CVR_FILES_MAX, 1);
	m->buf = malloc(CHUNK);
	if (!m->files || !m->sha || !m->kind || !m->buf)
		return -ENOMEM;
	if (mkdir(dest, 0755) && errno != EEXIST)
		return -errno;
	m->destfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return m->destfd < 0 ? -errno : 0;
}

int rs_materialise(struct rs_group *g, uint64_t point, const char *dest,
		   char *err, size_t errlen)
{
	struct mat m;
	size_t k = 0;
	int rc;

	while (k < g->npoints && g->points[k].point != point)
		k++;
	if (k == g->npoints) {
		snprintf(err, errlen,
			 "group %016" PRIx64 " has no point %" PRIu64
			 " (list them with the points command)",
			 g->id, point);
		return -ENOENT;
	}
	rc = mat_alloc(&m, dest);
	if (!rc)
		rc = rs_point_files(g, point, m.files, &m.nfiles, m.sha,
				    m.kind);
	if (!rc)
		rc = mat_open(g, &m);
	for (size_t j = g->npoints; !rc && j-- > k + 1;) {
		int ufd = undo_open(g, g->points[j].point, O_RDONLY);

		rc = ufd < 0 ? ufd : undo_apply(ufd, imgset_fd, &m.out);
		if (ufd >= 0)
			close(ufd);
	}
	if (!rc)
		rc = mat_finish(&m, err, errlen);
	if (rc < 0 && rc > -4096)
		snprintf(err, errlen,
			 "cannot materialise point %" PRIu64 " into %s: %s",
			 point, dest, strerror(-rc));
	mat_free(&m, rc != 0);
	return rc;
}

/* ------------------------------------------------------------------------
 * Seeding: hashes of an image's chunks, and an image put in place from a
 * copy before the first point.
 */
static int chunk_sha(int fd, uint64_t off, uint64_t len, uint64_t size,
		     uint8_t out[CVR_SHA_LEN], uint8_t *buf)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint64_t end = off + len > size ? size : off + len;
	int rc =
		ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) ? 0 : -ENOMEM;

	while (!rc && off < end) {
		size_t n = end - off > CHUNK ? CHUNK : (size_t)(end - off);

		rc = rs_pread_all(fd, buf, n, off);
		if (!rc && !EVP_DigestUpdate(ctx, buf, n))
			rc = -EIO;
		off += n;
	}
	if (!rc && !EVP_DigestFinal_ex(ctx, out, NULL))
		rc = -EIO;
	EVP_MD_CTX_free(ctx);
	return rc;
}

int rs_image_hashes(struct rs_group *g, const struct cvr_q_hashes *q,
		    uint8_t (*sha)[CVR_SHA_LEN], uint64_t *size)
{
	uint8_t *buf = malloc(CHUNK);
	char name[64];
	struct stat st;
	int fd, rc = 0;

	*size = 0;
	if (!buf)
		return -ENOMEM;
	rs_name(name, sizeof(name), "images", q->file_id, ".img");
	fd = openat(g->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno != ENOENT)
		rc = -errno;
	if (!rc && fd >= 0 && fstat(fd, &st))
		rc = -errno;
	if (!rc && fd >= 0)
		*size = (uint64_t)st.st_size;
	for (uint32_t i = 0; !rc && i < q->count; i++)
		rc = chunk_sha(fd, q->offset + (uint64_t)i * q->chunk, q->chunk,
			       *size, sha[i], buf);
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

int rs_seed(struct rs_group *g, uint64_t file_id, const char *src, char *err,
	    size_t errlen)
{
	uint8_t *buf = malloc(CHUNK);
	char tmp[64], name[64];
	int in = -1, out = -1, rc = 0;

	if (g->npoints) {
		snprintf(err, errlen,
			 "group %016" PRIx64 " has points already: seeding is "
			 "for an initial copy only",
			 g->id);
		rc = -EEXIST;
		goto out;
	}
	rs_name(tmp, sizeof(tmp), "images", file_id, ".img.tmp");
	rs_name(name, sizeof(name), "images", file_id, ".img");
	in = open(src, O_RDONLY | O_CLOEXEC);
	out = openat(g->dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		     0600);
	rc = !buf ? -ENOMEM : in < 0 || out < 0 ? -errno : 0;
	if (!rc)
		rc = copy_sparse(in, out, buf);
	if (!rc && fsync(out))
		rc = -errno;
	if (!rc && renameat(g->dirfd, tmp, g->dirfd, name))
		rc = -errno;
	if (!rc)
		rc = rs_fsync_dir(g->dirfd);
	if (rc && rc != -EEXIST)
		snprintf(err, errlen,
			 "cannot seed file %" PRIu64 " from %s: %s", file_id,
			 src, strerror(-rc));
out:
	if (rc)
		unlinkat(g->dirfd, tmp, 0);
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	free(buf);
	return rc;
}
