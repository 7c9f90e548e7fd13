// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * point.c - closing a point (store.h): apply the stage, record the
 * point's info and state, drop the stage, prune; and reading a point's
 * info back.
 *
 * points/<point>.info, text:
 *	time <ns>
 *	file <id> <size> <hash kind> <sha-256 hex or -> <name>
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "stage.h"
#include "store.h"

static const struct cvr_file_hash *hash_of(const struct cvr_q_point_end *e,
					   uint64_t id)
{
	for (uint32_t i = 0; e && i < e->nfiles; i++)
		if (e->files[i].file_id == id)
			return &e->files[i];
	return NULL;
}

int rs_write_info(struct rs_group *g, uint64_t point,
		  const struct cvr_q_point_end *e)
{
	size_t cap = 64 + (size_t)g->nfiles * (CVR_NAME_MAX + 128), n;
	char *buf = malloc(cap), name[64], hex[2 * CVR_SHA_LEN + 1];
	int rc;

	if (!buf)
		return -ENOMEM;
	n = (size_t)snprintf(buf, cap, "time %" PRId64 "\n", g->time_ns);
	for (uint32_t i = 0; i < g->nfiles; i++) {
		const struct cvr_file_hash *h = hash_of(e, g->files[i].file_id);
		unsigned kind = h && h->kind == CVR_HASH_FILE ? 1 : 0;

		strcpy(hex, "-");
		for (unsigned j = 0; kind && j < CVR_SHA_LEN; j++)
			snprintf(hex + 2 * j, 3, "%02x", h->sha256[j]);
		n += (size_t)snprintf(buf + n, cap - n,
				      "file %" PRIu64 " %" PRIu64 " %u %s %s\n",
				      g->files[i].file_id, g->files[i].size,
				      kind, hex, g->files[i].name);
	}
	rs_name(name, sizeof(name), "points", point, ".info");
	rc = rs_write_atomic(g->dirfd, name, buf, n);
	free(buf);
	return rc;
}

static int info_line(char *line, struct cvr_file *f, uint8_t *sha,
		     uint8_t *kind)
{
	unsigned long long id, size;
	unsigned k;
	char hex[2 * CVR_SHA_LEN + 1];
	int off = 0;

	if (sscanf(line, "file %llu %llu %u %64s %n", &id, &size, &k, hex,
		   &off) != 4 ||
	    off <= 0 || k > 1 || strlen(line + off) > CVR_NAME_MAX)
		return -EINVAL;
	f->file_id = id;
	f->size = size;
	strcpy(f->name, line + off);
	*kind = (uint8_t)k;
	memset(sha, 0, CVR_SHA_LEN);
	for (unsigned j = 0; k && j < CVR_SHA_LEN; j++) {
		unsigned v;

		if (sscanf(hex + 2 * j, "%2x", &v) != 1)
			return -EINVAL;
		sha[j] = (uint8_t)v;
	}
	return cvr_name_ok(f->name) ? 0 : -EINVAL;
}

int rs_point_files(struct rs_group *g, uint64_t point, struct cvr_file *files,
		   uint32_t *nfiles, uint8_t (*sha)[CVR_SHA_LEN], uint8_t *kind)
{
	char name[64], *buf = NULL, *line, *save = NULL;
	struct stat st;
	int fd, rc = 0;

	*nfiles = 0;
	rs_name(name, sizeof(name), "points", point, ".info");
	fd = openat(g->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || st.st_size > (4 << 20))
		rc = -EINVAL;
	if (!rc && !(buf = malloc((size_t)st.st_size + 1)))
		rc = -ENOMEM;
	if (!rc)
		rc = rs_pread_all(fd, buf, (size_t)st.st_size, 0);
	close(fd);
	if (rc)
		goto out;
	buf[st.st_size] = '\0';
	line = strtok_r(buf, "\n", &save); /* time */
	while (!rc && (line = strtok_r(NULL, "\n", &save))) {
		if (*nfiles == CVR_FILES_MAX) {
			rc = -EINVAL;
			break;
		}
		rc = info_line(line, &files[*nfiles], sha[*nfiles],
			       &kind[*nfiles]);
		(*nfiles)++;
	}
out:
	free(buf);
	return rc;
}

int rs_end(struct rs_group *g, const struct cvr_q_point_end *e, int64_t now_ns,
	   char *err, size_t errlen)
{
	uint64_t point = e->point;
	int rc;

	if (g->stage_fd < 0 || point != g->open_point) {
		snprintf(err, errlen, "point %" PRIu64 " is not open", point);
		return CVR_E_NO_POINT;
	}
	if (e->nops != g->next_op) {
		snprintf(err, errlen,
			 "point %" PRIu64 " has %" PRIu64
			 " operations here, the primary sent %" PRIu64,
			 point, g->next_op, e->nops);
		return CVR_E_OP_ORDER;
	}
	rc = rs_apply_stage(g, e, err, errlen);
	if (rc)
		return rc;
	rc = rs_write_info(g, point, e);
	if (!rc)
		rc = rs_group_add_point(g, point, g->time_ns);
	if (!rc)
		rc = rs_group_save(g);
	if (rc) {
		/* the marker stays: the next lock rolls the point back */
		snprintf(err, errlen, "cannot record point %" PRIu64 ": %s",
			 point, strerror(-rc));
		return CVR_E_STORE;
	}
	if (unlinkat(g->dirfd, "applying", 0) == 0)
		rs_fsync_dir(g->dirfd);
	if (g->npoints == 1) {
		/* the oldest point needs no way back (a first point's record
		 * holds the seeded images' old chunks, if any) */
		char name[64];

		rs_name(name, sizeof(name), "points", point, ".undo");
		unlinkat(g->dirfd, name, 0);
	}
	rs_stage_close(g);
	rs_stage_remove(g, point);
	log_info("group %016" PRIx64 ": point %" PRIu64 " applied", g->id,
		 point);
	if (rs_prune(g, now_ns, err, errlen))
		log_warn("%s", err); /* the point is in: not the sender's */
	return 0;
}
