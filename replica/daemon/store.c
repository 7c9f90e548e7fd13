// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * store.c - the replica store's groups: state, locking, crash recovery
 * and retention (store.h).  Applying points and undo records is in
 * apply.c, the stage of an unfinished point in stage.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "clock.h"
#include "log.h"
#include "store.h"

#define STATE_MAGIC "csvfs-replica-group 1"
#define STATE_MAX   (1u << 20)

/* ------------------------------------------------------------------------
 * Helpers.
 */
void rs_name(char *buf, size_t len, const char *dir, uint64_t id,
	     const char *suffix)
{
	snprintf(buf, len, "%s%s%016" PRIx64 "%s", dir ? dir : "",
		 dir ? "/" : "", id, suffix ? suffix : "");
}

int rs_fsync_dir(int dirfd)
{
	return fsync(dirfd) ? -errno : 0;
}

int rs_pread_all(int fd, void *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p = (uint8_t *)p + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

int rs_pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p = (const uint8_t *)p + n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Write name in dirfd whole or not at all: tmp, fsync, rename, fsync. */
int rs_write_atomic(int dirfd, const char *name, const void *p, size_t len)
{
	char tmp[128];
	int fd, rc;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	rc = rs_pwrite_all(fd, p, len, 0);
	if (!rc && fsync(fd))
		rc = -errno;
	close(fd);
	if (!rc && renameat(dirfd, tmp, dirfd, name))
		rc = -errno;
	if (!rc)
		rc = rs_fsync_dir(dirfd);
	if (rc)
		unlinkat(dirfd, tmp, 0);
	return rc;
}

/* Read a small file whole, NUL-terminated; *buf malloc'ed. */
static int read_small(int dirfd, const char *name, char **buf, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	int rc = 0;

	*buf = NULL;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out;
	}
	if (st.st_size > STATE_MAX) {
		rc = -EFBIG;
		goto out;
	}
	*buf = malloc((size_t)st.st_size + 1);
	if (!*buf) {
		rc = -ENOMEM;
		goto out;
	}
	rc = rs_pread_all(fd, *buf, (size_t)st.st_size, 0);
	(*buf)[st.st_size] = '\0';
	*len = (size_t)st.st_size;
	if (rc) {
		free(*buf);
		*buf = NULL;
	}
out:
	close(fd);
	return rc;
}

static int hex_parse(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -EINVAL;
		out[i] = (uint8_t)v;
	}
	return 0;
}

static void hex_put(char *s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
}

/* ------------------------------------------------------------------------
 * The store.
 */
static int store_id(struct rs_store *s)
{
	char *buf = NULL, hex[2 * CVR_ID_LEN + 2];
	size_t len;
	int rc = read_small(s->dirfd, "replica-id", &buf, &len);

	if (!rc) {
		rc = len >= 2 * CVR_ID_LEN ? hex_parse(buf, s->id, CVR_ID_LEN)
					   : -EINVAL;
		free(buf);
		return rc;
	}
	if (rc != -ENOENT)
		return rc;
	if (RAND_bytes(s->id, CVR_ID_LEN) != 1)
		return -EIO;
	hex_put(hex, s->id, CVR_ID_LEN);
	hex[2 * CVR_ID_LEN] = '\n';
	return rs_write_atomic(s->dirfd, "replica-id", hex, 2 * CVR_ID_LEN + 1);
}

int rs_store_open(const char *dir, struct rs_store *s, char *err, size_t errlen)
{
	int rc;

	memset(s, 0, sizeof(*s));
	s->dirfd = s->groupsfd = -1;
	rt_policy_default(&s->policy);
	if (mkdir(dir, 0700) && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errlen, "cannot create the store %s: %s", dir,
			 strerror(errno));
		return rc;
	}
	s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->dirfd < 0 ||
	    (mkdirat(s->dirfd, "groups", 0700) && errno != EEXIST)) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the store %s: %s", dir,
			 strerror(errno));
		goto fail;
	}
	s->groupsfd =
		openat(s->dirfd, "groups", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->groupsfd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s/groups: %s", dir,
			 strerror(errno));
		goto fail;
	}
	rc = store_id(s);
	if (rc) {
		snprintf(err, errlen, "cannot read or create %s/replica-id: %s",
			 dir, strerror(-rc));
		goto fail;
	}
	s->dir = strdup(dir);
	if (!s->dir) {
		rc = -ENOMEM;
		goto fail;
	}
	return 0;
fail:
	rs_store_close(s);
	return rc;
}

void rs_store_close(struct rs_store *s)
{
	if (s->groupsfd >= 0)
		close(s->groupsfd);
	if (s->dirfd >= 0)
		close(s->dirfd);
	s->groupsfd = s->dirfd = -1;
	free(s->dir);
	s->dir = NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int rs_store_groups(struct rs_store *s, uint64_t **ids, size_t *n)
{
	int fd = dup(s->groupsfd);
	DIR *d;
	struct dirent *e;
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -errno;
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		char *end;
		uint64_t id = strtoull(e->d_name, &end, 16);

		if (strlen(e->d_name) != 16 || *end || !id)
			continue;
		if (*n == cap) {
			uint64_t *p =
				realloc(*ids, (cap = cap * 2 + 8) * sizeof(*p));

			if (!p) {
				closedir(d);
				return -ENOMEM;
			}
			*ids = p;
		}
		(*ids)[(*n)++] = id;
	}
	closedir(d);
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_u64);
	return 0;
}

/* ------------------------------------------------------------------------
 * Groups.
 */
int rs_group_open(struct rs_store *s, uint64_t id, struct rs_group **out)
{
	struct rs_group *g = calloc(1, sizeof(*g));
	char name[32];
	int rc;

	*out = NULL;
	if (!g)
		return -ENOMEM;
	g->store = s;
	g->id = id;
	g->dirfd = g->lockfd = g->stage_fd = -1;
	g->files = calloc(CVR_FILES_MAX, sizeof(*g->files));
	if (!g->files) {
		rc = -ENOMEM;
		goto fail;
	}
	rs_name(name, sizeof(name), NULL, id, NULL);
	if (mkdirat(s->groupsfd, name, 0700) && errno != EEXIST)
		goto fail_errno;
	g->dirfd =
		openat(s->groupsfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (g->dirfd < 0)
		goto fail_errno;
	if ((mkdirat(g->dirfd, "images", 0700) && errno != EEXIST) ||
	    (mkdirat(g->dirfd, "points", 0700) && errno != EEXIST) ||
	    (mkdirat(g->dirfd, "stage", 0700) && errno != EEXIST))
		goto fail_errno;
	g->lockfd =
		openat(g->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (g->lockfd < 0)
		goto fail_errno;
	*out = g;
	return 0;
fail_errno:
	rc = -errno;
fail:
	rs_group_close(g);
	return rc;
}

void rs_group_close(struct rs_group *g)
{
	if (!g)
		return;
	if (g->locked)
		rs_group_unlock(g);
	if (g->stage_fd >= 0)
		close(g->stage_fd);
	if (g->lockfd >= 0)
		close(g->lockfd);
	if (g->dirfd >= 0)
		close(g->dirfd);
	free(g->points);
	free(g->files);
	free(g);
}

uint64_t rs_group_last(const struct rs_group *g)
{
	return g->npoints ? g->points[g->npoints - 1].point : 0;
}

int rs_group_add_point(struct rs_group *g, uint64_t point, int64_t time_ns)
{
	struct rs_point *p = realloc(g->points, (g->npoints + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	g->points = p;
	if (g->npoints && point <= p[g->npoints - 1].point)
		return -EINVAL;
	p[g->npoints++] = (struct rs_point){ point, time_ns };
	return 0;
}

static int parse_line(struct rs_group *g, const char *line)
{
	char hex[2 * CVR_ID_LEN + 1];
	unsigned long long a;
	long long t;
	unsigned promoted;

	if (sscanf(line, "primary %32s", hex) == 1)
		return hex_parse(hex, g->primary, CVR_ID_LEN);
	if (sscanf(line, "peer %127s", g->peer) == 1)
		return 0;
	if (sscanf(line, "generation %llu", &a) == 1) {
		g->generation = a;
		return 0;
	}
	if (sscanf(line, "promoted %u", &promoted) == 1) {
		g->promoted = promoted != 0;
		return 0;
	}
	if (sscanf(line, "failover_point %llu", &a) == 1) {
		g->failover_point = a;
		return 0;
	}
	if (sscanf(line, "point %llu %lld", &a, &t) == 2)
		return rs_group_add_point(g, a, t);
	return -EINVAL;
}

static int state_load(struct rs_group *g)
{
	char *buf, *line, *save = NULL;
	size_t len;
	int rc = read_small(g->dirfd, "state", &buf, &len);

	g->npoints = 0;
	g->exists = false;
	g->promoted = false;
	g->failover_point = 0;
	g->generation = 0;
	g->peer[0] = '\0';
	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	line = strtok_r(buf, "\n", &save);
	if (!line || strcmp(line, STATE_MAGIC)) {
		free(buf);
		return -EINVAL;
	}
	while (!rc && (line = strtok_r(NULL, "\n", &save)))
		rc = parse_line(g, line);
	free(buf);
	g->exists = !rc;
	return rc;
}

int rs_group_save(struct rs_group *g)
{
	size_t cap = 512 + g->npoints * 48, n;
	char *buf = malloc(cap), hex[2 * CVR_ID_LEN + 1];
	int rc;

	if (!buf)
		return -ENOMEM;
	hex_put(hex, g->primary, CVR_ID_LEN);
	n = (size_t)snprintf(buf, cap,
			     STATE_MAGIC "\nprimary %s\npeer %s\n"
					 "generation %" PRIu64 "\npromoted %d\n"
					 "failover_point %" PRIu64 "\n",
			     hex, g->peer[0] ? g->peer : "-", g->generation,
			     g->promoted, g->failover_point);
	for (size_t i = 0; i < g->npoints && n < cap; i++)
		n += (size_t)snprintf(buf + n, cap - n,
				      "point %" PRIu64 " %" PRId64 "\n",
				      g->points[i].point, g->points[i].time_ns);
	rc = n < cap ? rs_write_atomic(g->dirfd, "state", buf, n) : -EOVERFLOW;
	free(buf);
	if (!rc)
		g->exists = true;
	return rc;
}

/* ------------------------------------------------------------------------
 * Recovery, under the lock.
 */

/* An "applying" marker: roll back unless the state has the point. */
static int recover_apply(struct rs_group *g)
{
	char *buf;
	size_t len;
	unsigned long long p;
	int rc = read_small(g->dirfd, "applying", &buf, &len);

	if (rc == -ENOENT)
		return 0;
	if (rc)
		return rc;
	rc = sscanf(buf, "%llu", &p) == 1 ? 0 : -EINVAL;
	free(buf);
	if (rc)
		return rc;
	if (rs_group_last(g) != p) {
		log_warn("group %016" PRIx64 ": point %llu was being applied "
			 "when the replica stopped; rolling its images back to "
			 "point %" PRIu64,
			 g->id, p, rs_group_last(g));
		rc = rs_undo_rollback(g, p);
		if (rc)
			return rc;
	}
	if (unlinkat(g->dirfd, "applying", 0) && errno != ENOENT)
		return -errno;
	return rs_fsync_dir(g->dirfd);
}

static void drop_from_list(struct rs_group *g, size_t i)
{
	memmove(&g->points[i], &g->points[i + 1],
		(g->npoints - i - 1) * sizeof(*g->points));
	g->npoints--;
}

static void unlink_point(struct rs_group *g, uint64_t point)
{
	char name[64];

	rs_name(name, sizeof(name), "points", point, ".info");
	unlinkat(g->dirfd, name, 0);
	rs_name(name, sizeof(name), "points", point, ".undo");
	unlinkat(g->dirfd, name, 0);
}

/*
 * Every retained point's undo record must restore its predecessor in
 * the list.  One that restores an older point shows an interrupted
 * prune (the merge was done, the state not yet written): finish it.
 * One that is missing cuts the history there.
 */
static void cut_before(struct rs_group *g, size_t i, const char *why)
{
	log_warn("group %016" PRIx64 ": point %" PRIu64 " %s; dropping the "
		 "%zu older points",
		 g->id, g->points[i].point, why, i);
	while (i--) {
		unlink_point(g, g->points[0].point);
		drop_from_list(g, 0);
	}
}

static int recover_chain(struct rs_group *g, bool *changed)
{
	size_t i = g->npoints;

	while (i-- > 1) {
		uint64_t to = 0;
		int rc = rs_undo_restores_to(g, g->points[i].point, &to);

		if (rc && rc != -ENOENT)
			return rc;
		while (!rc && g->points[i - 1].point > to) {
			unlink_point(g, g->points[i - 1].point);
			drop_from_list(g, i - 1);
			*changed = true;
			if (--i == 0)
				return 0;
		}
		if (rc || g->points[i - 1].point != to) {
			cut_before(g, i,
				   rc ? "has no undo record"
				      : "restores an unknown point");
			*changed = true;
			return 0;
		}
	}
	return 0;
}

static int recover(struct rs_group *g)
{
	bool changed = false;
	int rc = recover_apply(g);

	if (!rc)
		rc = recover_chain(g, &changed);
	if (!rc && changed)
		rc = rs_group_save(g);
	return rc;
}

int rs_group_lock(struct rs_group *g, int timeout_ms, char *err, size_t errlen)
{
	uint64_t deadline = cv_now_ms() + (uint64_t)timeout_ms;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int rc;

	while (flock(g->lockfd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			rc = -errno;
			snprintf(err, errlen,
				 "cannot lock group %016" PRIx64 ": %s", g->id,
				 strerror(errno));
			return rc;
		}
		if (cv_now_ms() >= deadline) {
			snprintf(err, errlen,
				 "group %016" PRIx64 " is busy (another "
				 "csvfs-replicad command holds it)",
				 g->id);
			return -EBUSY;
		}
		nanosleep(&ts, NULL);
	}
	g->locked = true;
	rc = state_load(g);
	if (!rc)
		rc = recover(g);
	if (rc) {
		snprintf(err, errlen,
			 "group %016" PRIx64 ": cannot load or recover its "
			 "state: %s",
			 g->id, strerror(-rc));
		rs_group_unlock(g);
	}
	return rc;
}

void rs_group_unlock(struct rs_group *g)
{
	flock(g->lockfd, LOCK_UN);
	g->locked = false;
}

/* ------------------------------------------------------------------------
 * Retention.
 */

/* Drop point i (not the newest): merge its undo record into its
 * successor's, or, for the oldest, delete the successor's. */
static int drop_point(struct rs_group *g, size_t i)
{
	uint64_t p = g->points[i].point, next = g->points[i + 1].point;
	char name[64];
	int rc;

	if (i == 0) {
		drop_from_list(g, 0);
		rc = rs_group_save(g);
		if (rc)
			return rc;
		unlink_point(g, p);
		rs_name(name, sizeof(name), "points", next, ".undo");
		unlinkat(g->dirfd, name, 0);
		return 0;
	}
	rc = rs_undo_merge(g, p, next);
	if (rc)
		return rc;
	drop_from_list(g, i);
	rc = rs_group_save(g);
	if (!rc)
		unlink_point(g, p);
	return rc;
}

int rs_prune(struct rs_group *g, int64_t now_ns, char *err, size_t errlen)
{
	int64_t *t = calloc(g->npoints + 1, sizeof(*t));
	bool *keep = calloc(g->npoints + 1, sizeof(*keep));
	size_t n = g->npoints, i;
	int rc = 0;

	if (!t || !keep) {
		rc = -ENOMEM;
		goto out;
	}
	for (i = 0; i < n; i++)
		t[i] = g->points[i].time_ns;
	rt_select(&g->store->policy, t, n, now_ns, keep);
	/* from the newest down: indices below i stay valid */
	for (i = n; i-- > 0;) {
		if (keep[i])
			continue;
		uint64_t point = g->points[i].point;

		rc = drop_point(g, i);
		if (rc) {
			snprintf(err, errlen,
				 "group %016" PRIx64 ": cannot drop point "
				 "%" PRIu64 ": %s",
				 g->id, point, strerror(-rc));
			break;
		}
		log_info("group %016" PRIx64 ": dropped point %" PRIu64
			 " (retention policy)",
			 g->id, point);
	}
out:
	free(t);
	free(keep);
	return rc;
}

uint64_t rs_point_bytes(struct rs_group *g, uint64_t point)
{
	char name[64];
	struct stat st;

	rs_name(name, sizeof(name), "points", point, ".undo");
	return fstatat(g->dirfd, name, &st, 0) ? 0 : (uint64_t)st.st_size;
}
