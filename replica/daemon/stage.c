// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * stage.c - an unfinished point as it arrives (store.h): its file list
 * (stage/<point>.begin) and its operations appended as records
 * (stage/<point>.ops), so that an interrupted transfer resumes where the
 * replica's disk left it, and the images are not touched before the
 * point is complete and verified.
 *
 * An operation record: a 104-byte header, little endian, then the data
 * of an extent:
 *
 *	u32 magic RS_OPS_MAGIC	u32 type	u64 op		u64 file_id
 *	u64 offset		u64 len		u8 data_sha[32]
 *	u8 head_sha[32]		SHA-256 of the 72 bytes before it
 *
 * Records are not fsynced one by one: after a crash the valid prefix
 * (header hash, op numbers in sequence, extent data matching its hash)
 * is what the replica holds, and the resume position says so.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lm_cur.h"
#include "log.h"
#include "stage.h"
#include "store.h"
#include "tls.h"

static void rec_encode(uint8_t h[RS_REC_LEN], const struct rs_rec *r)
{
	lm_put_le(h, RS_OPS_MAGIC, 4);
	lm_put_le(h + 4, r->type, 4);
	lm_put_le(h + 8, r->op, 8);
	lm_put_le(h + 16, r->file_id, 8);
	lm_put_le(h + 24, r->offset, 8);
	lm_put_le(h + 32, r->len, 8);
	memcpy(h + 40, r->sha, CVR_SHA_LEN);
	cvr_sha256(h, 72, h + 72);
}

static int rec_decode(const uint8_t h[RS_REC_LEN], struct rs_rec *r)
{
	uint8_t sha[CVR_SHA_LEN];

	cvr_sha256(h, 72, sha);
	if (lm_get_le(h, 4) != RS_OPS_MAGIC || memcmp(sha, h + 72, 32))
		return -EBADMSG;
	r->type = (uint32_t)lm_get_le(h + 4, 4);
	r->op = lm_get_le(h + 8, 8);
	r->file_id = lm_get_le(h + 16, 8);
	r->offset = lm_get_le(h + 24, 8);
	r->len = lm_get_le(h + 32, 8);
	memcpy(r->sha, h + 40, CVR_SHA_LEN);
	if (r->type != CVR_EXTENT && r->type != CVR_TRUNCATE &&
	    r->type != CVR_PUNCH)
		return -EBADMSG;
	if (r->type == CVR_EXTENT && (!r->len || r->len > CVR_DATA_MAX))
		return -EBADMSG;
	return 0;
}

int rs_rec_next(int fd, uint64_t *pos, struct rs_rec *r, uint8_t *data)
{
	uint8_t h[RS_REC_LEN];
	uint8_t sha[CVR_SHA_LEN];
	int rc = rs_pread_all(fd, h, sizeof(h), *pos);

	if (rc)
		return rc == -ENODATA ? -ENOENT : rc;
	rc = rec_decode(h, r);
	if (rc)
		return rc;
	if (r->type == CVR_EXTENT) {
		rc = rs_pread_all(fd, data, r->len, *pos + RS_REC_LEN);
		if (rc)
			return rc == -ENODATA ? -EBADMSG : rc;
		cvr_sha256(data, r->len, sha);
		if (memcmp(sha, r->sha, CVR_SHA_LEN))
			return -EBADMSG;
	}
	*pos += RS_REC_LEN + (r->type == CVR_EXTENT ? r->len : 0);
	return 0;
}

/* The valid prefix of the ops file: its op count; the rest is cut. */
static int scan_ops(int fd, uint64_t *nops)
{
	uint8_t *data = malloc(CVR_DATA_MAX);
	uint64_t pos = 0;
	struct rs_rec r;
	int rc;

	*nops = 0;
	if (!data)
		return -ENOMEM;
	while (!(rc = rs_rec_next(fd, &pos, &r, data)) && r.op == *nops)
		(*nops)++;
	free(data);
	if (rc && rc != -ENOENT && rc != -EBADMSG)
		return rc;
	if (!rc) /* an op out of sequence: cut before it */
		pos -= RS_REC_LEN + (r.type == CVR_EXTENT ? r.len : 0);
	return ftruncate(fd, (off_t)pos) ? -errno : 0;
}

/* ------------------------------------------------------------------------
 * The .begin file.
 */
static int begin_write(struct rs_group *g, const struct cvr_q_point_begin *b,
		       int64_t time_ns)
{
	size_t cap = 128 + (size_t)b->nfiles * (CVR_NAME_MAX + 64), n;
	char *buf = malloc(cap), name[64];
	int rc;

	if (!buf)
		return -ENOMEM;
	n = (size_t)snprintf(buf, cap,
			     "point %" PRIu64 "\nbase %" PRIu64
			     "\ntime %" PRId64 "\n",
			     b->point, b->base_point, time_ns);
	for (uint32_t i = 0; i < b->nfiles; i++)
		n += (size_t)snprintf(buf + n, cap - n,
				      "file %" PRIu64 " %" PRIu64 " %s\n",
				      b->files[i].file_id, b->files[i].size,
				      b->files[i].name);
	rs_name(name, sizeof(name), "stage", b->point, ".begin");
	rc = rs_write_atomic(g->dirfd, name, buf, n);
	free(buf);
	return rc;
}

static int begin_line(struct rs_group *g, char *line)
{
	unsigned long long a, b;
	long long t;
	int off = 0;

	if (sscanf(line, "point %llu", &a) == 1)
		g->open_point = a;
	else if (sscanf(line, "base %llu", &a) == 1)
		g->base_point = a;
	else if (sscanf(line, "time %lld", &t) == 1)
		g->time_ns = t;
	else if (sscanf(line, "file %llu %llu %n", &a, &b, &off) == 2 &&
		 off > 0 && g->nfiles < CVR_FILES_MAX &&
		 strlen(line + off) <= CVR_NAME_MAX) {
		struct cvr_file *f = &g->files[g->nfiles++];

		f->file_id = a;
		f->size = b;
		strcpy(f->name, line + off);
		if (!cvr_name_ok(f->name))
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	return 0;
}

static int begin_read(struct rs_group *g, uint64_t point)
{
	char name[64], *buf, *line, *save = NULL;
	int fd, rc;
	struct stat st;

	rs_name(name, sizeof(name), "stage", point, ".begin");
	fd = openat(g->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size > (1 << 20)) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	rc = buf ? rs_pread_all(fd, buf, (size_t)st.st_size, 0) : -ENOMEM;
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[st.st_size] = '\0';
	g->nfiles = 0;
	g->open_point = 0;
	for (line = strtok_r(buf, "\n", &save); line && !rc;
	     line = strtok_r(NULL, "\n", &save))
		rc = begin_line(g, line);
	free(buf);
	if (!rc && (g->open_point != point || !g->nfiles))
		rc = -EINVAL;
	return rc;
}

/* ------------------------------------------------------------------------
 * The stage of a session.
 */

/* The unfinished point on disk, if any (the newest .begin). */
int rs_stage_peek(struct rs_group *g, uint64_t *point, uint64_t *next_op)
{
	int rc;

	*point = *next_op = 0;
	rc = rs_stage_find(g, point);
	if (rc || !*point)
		return rc;
	rc = rs_stage_open(g, *point);
	if (!rc)
		*next_op = g->next_op;
	return rc;
}

int rs_stage_open(struct rs_group *g, uint64_t point)
{
	char name[64];
	int rc;

	if (g->stage_fd >= 0 && g->open_point == point)
		return 0;
	rs_stage_close(g);
	rc = begin_read(g, point);
	if (rc)
		return rc;
	rs_name(name, sizeof(name), "stage", point, ".ops");
	g->stage_fd = openat(g->dirfd, name,
			     O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (g->stage_fd < 0)
		return -errno;
	rc = scan_ops(g->stage_fd, &g->next_op);
	if (rc)
		rs_stage_close(g);
	return rc;
}

void rs_stage_close(struct rs_group *g)
{
	if (g->stage_fd >= 0)
		close(g->stage_fd);
	g->stage_fd = -1;
	g->open_point = 0;
	g->next_op = 0;
}

void rs_stage_remove(struct rs_group *g, uint64_t point)
{
	char name[64];

	rs_name(name, sizeof(name), "stage", point, ".ops");
	unlinkat(g->dirfd, name, 0);
	rs_name(name, sizeof(name), "stage", point, ".begin");
	unlinkat(g->dirfd, name, 0);
	rs_fsync_dir(g->dirfd);
}

static int check_begin(struct rs_group *g, const struct cvr_q_point_begin *b,
		       char *err, size_t errlen)
{
	uint64_t last = rs_group_last(g);

	if (g->promoted) {
		snprintf(err, errlen,
			 "group %016" PRIx64 " was failed over at the replica "
			 "site; it takes no more points",
			 g->id);
		return CVR_E_SPLIT_BRAIN;
	}
	if (b->point == last && last) {
		snprintf(err, errlen, "point %" PRIu64 " is applied already",
			 b->point);
		return -EALREADY;
	}
	if (b->point < last || (b->base_point && b->base_point != last)) {
		snprintf(err, errlen,
			 "point %" PRIu64 " on base %" PRIu64
			 ", but the replica's last point is %" PRIu64,
			 b->point, b->base_point, last);
		return CVR_E_BASE;
	}
	return 0;
}

/*
 * Whether the open stage is the point b begins again (the same instant:
 * time, base and files), so that its staged operations are b's.  A
 * primary that lost its pending point (its node crashed mid-transfer)
 * begins a point of the same number at another instant, with other
 * data: resuming that would mix the two.
 */
static bool same_begin(const struct rs_group *g,
		       const struct cvr_q_point_begin *b, int64_t time_ns)
{
	if (g->time_ns != time_ns || g->base_point != b->base_point ||
	    g->nfiles != b->nfiles)
		return false;
	for (uint32_t i = 0; i < b->nfiles; i++)
		if (g->files[i].file_id != b->files[i].file_id ||
		    g->files[i].size != b->files[i].size)
			return false;
	return true;
}

int rs_begin(struct rs_group *g, const struct cvr_q_point_begin *b,
	     uint64_t *next_op, char *err, size_t errlen)
{
	uint64_t old = 0;
	int64_t t = b->time_ns;
	int rc = check_begin(g, b, err, errlen);

	if (rc)
		return rc;
	if (g->npoints && t < g->points[g->npoints - 1].time_ns)
		t = g->points[g->npoints - 1].time_ns; /* times ascend */
	rc = rs_stage_find(g, &old);
	if (!rc && old == b->point && !rs_stage_open(g, old)) {
		if (same_begin(g, b, t)) {
			*next_op = g->next_op;
			return 0;
		}
		log_info("group %016" PRIx64 ": point %" PRIu64
			 " begun again at another instant: its staged "
			 "operations are dropped",
			 g->id, old);
	}
	if (old) {
		rs_stage_close(g);
		rs_stage_remove(g, old);
		log_info("group %016" PRIx64 ": point %" PRIu64
			 " abandoned by the primary",
			 g->id, old);
	}
	rc = begin_write(g, b, t);
	if (!rc)
		rc = rs_stage_open(g, b->point);
	if (rc) {
		snprintf(err, errlen, "cannot stage point %" PRIu64 ": %s",
			 b->point, strerror(-rc));
		return CVR_E_STORE;
	}
	*next_op = g->next_op;
	return 0;
}

static bool has_file(const struct rs_group *g, uint64_t id)
{
	for (uint32_t i = 0; i < g->nfiles; i++)
		if (g->files[i].file_id == id)
			return true;
	return false;
}

int rs_op(struct rs_group *g, unsigned type, const struct cvr_q_op *q,
	  char *err, size_t errlen)
{
	struct rs_rec r = { .type = type,
			    .op = q->op,
			    .file_id = q->file_id,
			    .offset = q->offset,
			    .len = q->len };
	uint8_t h[RS_REC_LEN];
	struct iovec iov[2] = { { h, sizeof(h) },
				{ (void *)q->data,
				  type == CVR_EXTENT ? q->len : 0 } };
	ssize_t n;

	if (g->stage_fd < 0 || q->point != g->open_point) {
		snprintf(err, errlen, "point %" PRIu64 " is not open",
			 q->point);
		return CVR_E_NO_POINT;
	}
	if (q->op != g->next_op) {
		snprintf(err, errlen, "op %" PRIu64 ", expected %" PRIu64,
			 q->op, g->next_op);
		return CVR_E_OP_ORDER;
	}
	if (!has_file(g, q->file_id)) {
		snprintf(err, errlen,
			 "file %" PRIu64 " is not in point %" PRIu64,
			 q->file_id, q->point);
		return -ENOENT;
	}
	if (type == CVR_EXTENT) {
		cvr_sha256(q->data, q->len, r.sha);
		if (memcmp(r.sha, q->sha256, CVR_SHA_LEN)) {
			snprintf(err, errlen,
				 "extent at %" PRIu64 " of file %" PRIu64
				 ": SHA-256 mismatch",
				 q->offset, q->file_id);
			return CVR_E_HASH;
		}
	}
	rec_encode(h, &r);
	n = writev(g->stage_fd, iov, 2);
	if (n != (ssize_t)(iov[0].iov_len + iov[1].iov_len)) {
		snprintf(err, errlen, "cannot stage op %" PRIu64 ": %s", q->op,
			 n < 0 ? strerror(errno) : "short write");
		scan_ops(g->stage_fd, &g->next_op); /* cut what was written */
		return CVR_E_STORE;
	}
	g->next_op++;
	return 0;
}

int rs_stage_find(struct rs_group *g, uint64_t *point)
{
	int fd = openat(g->dirfd, "stage", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;
	struct dirent *e;

	*point = 0;
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	while ((e = readdir(d))) {
		char *end;
		uint64_t p = strtoull(e->d_name, &end, 16);

		if (strlen(e->d_name) == 22 && !strcmp(end, ".begin") &&
		    p > *point)
			*point = p;
	}
	closedir(d);
	return 0;
}
