// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * replica.c - the sending side of asynchronous replication inside csvfs:
 * configuration and state files on the volume, the write path's hooks,
 * the activity log's I/O, hand-offs and the user.csvfs.replica control
 * attribute (replica.h; the replication thread is replica_ship.c).
 *
 * Grace periods.  A file becomes replicated while it may be being
 * written (enabled here or on another node).  Its tracker must see every
 * write whose data the initial full copy might miss, so the thread that
 * enables it bumps r->gen (open files resolve their tracker again), then
 * flips r->phase and waits until no request that entered under the old
 * phase is still running (r->inside[old] == 0).  A request enters by
 * counting itself in inside[phase] and checking the phase did not move
 * meanwhile (otherwise it counts itself again under the new one).  Only
 * then is the whole file marked for the initial copy: any write not
 * tracked ended before, and the copy reads its data.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "inode.h"
#include "log.h"
#include "replica_i.h"

/* ---- files on the volume ---- */

static struct backend *be_of(struct cv_rep *r)
{
	return &r->fs->be;
}

/* .csvfs/replica, created if need be and create (r->lock held). */
static int dir_locked(struct cv_rep *r, bool create)
{
	const struct backend_ops *ops = be_of(r)->ops;
	struct cv_cred cred = { 0, 0 };
	struct be_node *root = NULL, *meta = NULL, *dir = NULL;
	struct stat st;
	int rc;

	if (r->dir)
		return 0;
	rc = ops->root(be_of(r), &root, &st);
	if (!rc)
		rc = ops->lookup(be_of(r), root, CV_META_DIR, &meta, &st);
	if (!rc)
		rc = ops->lookup(be_of(r), meta, REP_DIR, &dir, &st);
	if (rc == -ENOENT && meta && create) {
		rc = ops->mkdir(be_of(r), meta, REP_DIR, 0700, &cred, &dir,
				&st);
		if (rc == -EEXIST)
			rc = ops->lookup(be_of(r), meta, REP_DIR, &dir, &st);
	}
	if (!rc)
		r->dir = dir;
	if (meta)
		ops->node_put(be_of(r), meta);
	if (root)
		ops->node_put(be_of(r), root);
	return rc;
}

/* Only what writes the configuration creates the directory: a mount of
 * a volume nobody replicates leaves no trace. */
static int dir_get(struct cv_rep *r, bool create, struct be_node **out)
{
	int rc;

	pthread_mutex_lock(&r->lock);
	rc = dir_locked(r, create);
	*out = r->dir;
	pthread_mutex_unlock(&r->lock);
	return rc;
}

int rep_dir(struct cv_rep *r, struct be_node **out)
{
	return dir_get(r, true, out);
}

#define REP_FILE_MAX ((size_t)64 << 20)

int rep_read_file(struct cv_rep *r, const char *name, char **buf, size_t *len)
{
	const struct backend_ops *ops = be_of(r)->ops;
	struct be_node *dir, *node = NULL;
	struct be_file *file = NULL;
	struct stat st;
	char *b = NULL;
	ssize_t n = 0;
	int rc = dir_get(r, false, &dir);

	if (!rc)
		rc = ops->lookup(be_of(r), dir, name, &node, &st);
	if (!rc && (size_t)st.st_size > REP_FILE_MAX)
		rc = -EFBIG;
	if (!rc)
		rc = ops->open(be_of(r), node, O_RDONLY, &file);
	if (!rc && !(b = malloc((size_t)st.st_size + 1)))
		rc = -ENOMEM;
	while (!rc && (size_t)n < (size_t)st.st_size) {
		ssize_t k = ops->read(be_of(r), file, b + n,
				      (size_t)st.st_size - (size_t)n, n);

		if (k < 0)
			rc = (int)k;
		else if (!k)
			break;
		else
			n += k;
	}
	if (file)
		ops->release(be_of(r), file);
	if (node)
		ops->node_put(be_of(r), node);
	if (rc) {
		free(b);
		return rc;
	}
	b[n] = 0;
	*buf = b;
	*len = (size_t)n;
	return 0;
}

/* Write name whole and durably: a temporary, fsynced, renamed over. */
int rep_write_file(struct cv_rep *r, const char *name, const void *buf,
		   size_t len)
{
	const struct backend_ops *ops = be_of(r)->ops;
	struct cv_cred cred = { 0, 0 };
	struct be_node *dir, *node = NULL;
	struct be_file *file = NULL;
	struct stat st;
	char tmp[300];
	size_t done = 0;
	int rc = rep_dir(r, &dir);

	snprintf(tmp, sizeof(tmp), "%s.%d.%lx.tmp", name, (int)getpid(),
		 (unsigned long)pthread_self());
	if (!rc)
		rc = ops->create(be_of(r), dir, tmp, 0600, O_WRONLY | O_TRUNC,
				 &cred, &node, &st, &file);
	while (!rc && done < len) {
		ssize_t k = ops->write(be_of(r), file, (const char *)buf + done,
				       len - done, (off_t)done);

		if (k <= 0)
			rc = k < 0 ? (int)k : -EIO;
		else
			done += (size_t)k;
	}
	if (!rc)
		rc = ops->fsync(be_of(r), file, 0);
	if (file)
		ops->release(be_of(r), file);
	if (node)
		ops->node_put(be_of(r), node);
	if (!rc)
		rc = ops->rename(be_of(r), dir, tmp, dir, name, 0);
	if (rc && node)
		ops->unlink(be_of(r), dir, tmp);
	return rc;
}

static void file_name(char *buf, size_t cap, uint64_t fileid, const char *ext)
{
	snprintf(buf, cap, "%016" PRIx64 ".%s", fileid, ext);
}

/* ---- the activity log (rt callbacks, under the tracker's al_lock) ---- */

static int al_open(struct cv_rep_file *f)
{
	const struct backend_ops *ops = be_of(f->r)->ops;
	struct be_node *dir, *node = NULL;
	struct stat st;
	char name[64];
	int rc = rep_dir(f->r, &dir);

	if (f->al)
		return 0;
	file_name(name, sizeof(name), f->fileid, "al");
	if (!rc)
		rc = ops->lookup(be_of(f->r), dir, name, &node, &st);
	if (!rc)
		rc = ops->open(be_of(f->r), node, O_WRONLY, &f->al);
	if (!rc)
		f->al_size = (uint64_t)st.st_size / RT_AL_REC * RT_AL_REC;
	if (node)
		ops->node_put(be_of(f->r), node);
	return rc;
}

static int al_append(void *arg, const uint64_t *exts, size_t n)
{
	struct cv_rep_file *f = arg;
	const struct backend_ops *ops = be_of(f->r)->ops;
	size_t len = n * RT_AL_REC;
	uint8_t *buf = malloc(len);
	ssize_t k;
	int rc;

	if (!buf)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct rt_al_rec rec = { .type = RT_AL_EXT, .a = exts[i] };

		rt_al_encode(&rec, buf + i * RT_AL_REC);
	}
	rc = al_open(f);
	if (!rc) {
		k = ops->write(be_of(f->r), f->al, buf, len, (off_t)f->al_size);
		rc = k == (ssize_t)len ? 0 : k < 0 ? (int)k : -EIO;
	}
	if (!rc)
		rc = ops->fsync(be_of(f->r), f->al, 1);
	if (!rc)
		f->al_size += len;
	free(buf);
	return rc;
}

static int al_rewrite(void *arg, uint64_t epoch, const uint64_t *exts, size_t n)
{
	struct cv_rep_file *f = arg;
	size_t len = (n + 1) * RT_AL_REC;
	struct rt_al_rec rec = { .type = RT_AL_HDR,
				 .a = epoch,
				 .b = f->fileid };
	uint8_t *buf = malloc(len);
	char name[64];
	int rc;

	if (!buf)
		return -ENOMEM;
	rt_al_encode(&rec, buf);
	for (size_t i = 0; i < n; i++) {
		rec = (struct rt_al_rec){ .type = RT_AL_EXT, .a = exts[i] };
		rt_al_encode(&rec, buf + (i + 1) * RT_AL_REC);
	}
	file_name(name, sizeof(name), f->fileid, "al");
	rc = rep_write_file(f->r, name, buf, len);
	free(buf);
	if (f->al) {
		be_of(f->r)->ops->release(be_of(f->r), f->al);
		f->al = NULL;
	}
	if (!rc)
		rc = al_open(f);
	return rc;
}

/* The file's size, or 0. */
static uint64_t size_of(struct cv_rep_file *f)
{
	struct cv_inode *ino = atomic_load(&f->ino);
	struct stat st;

	if (!ino || be_of(f->r)->ops->getattr(be_of(f->r), ino->node, &st))
		return 0;
	return (uint64_t)st.st_size;
}

/*
 * What earlier owners left: the hand-off bitmap if it is the newest
 * word (written by the owner of the log's epoch, or later), else every
 * extent the log names; and the whole file while its first full copy
 * is not shipped.
 */
static int al_load(void *arg, struct rt_bits *g)
{
	struct cv_rep_file *f = arg;
	uint64_t al_epoch = 0, bm_epoch = 0, fid;
	struct rt_bits al = { 0 }, bm = { 0 };
	bool have_al = false, have_bm = false, initial;
	char name[64], *buf;
	size_t len;
	int rc;

	file_name(name, sizeof(name), f->fileid, "al");
	rc = rep_read_file(f->r, name, &buf, &len);
	if (!rc) {
		have_al =
			!rt_al_parse((uint8_t *)buf, len, &al_epoch, &fid, &al);
		free(buf);
	}
	file_name(name, sizeof(name), f->fileid, "bm");
	rc = rep_read_file(f->r, name, &buf, &len);
	if (!rc) {
		have_bm = !rt_bm_decode((uint8_t *)buf, len, &bm_epoch, &bm);
		free(buf);
	}
	rc = 0;
	if (have_bm && (!have_al || bm_epoch >= al_epoch))
		rc = rt_bits_or(g, &bm);
	else if (have_al)
		rc = rt_bits_or(g, &al);
	pthread_mutex_lock(&f->r->lock);
	initial = f->initial;
	pthread_mutex_unlock(&f->r->lock);
	if (!rc && initial) {
		uint64_t size = size_of(f);

		if (size)
			rc = rt_bits_set_range(g, 0,
					       (size - 1) >> RT_GRANULE_SHIFT);
	}
	if (have_al || have_bm)
		log_info("replica: file %016" PRIx64 ": %llu granules left "
			 "to ship by earlier owners",
			 f->fileid, (unsigned long long)rt_bits_count(g));
	rt_bits_free(&al);
	rt_bits_free(&bm);
	return rc;
}

bool rep_pending(struct cv_rep_file *f)
{
	struct rt_bits b = { 0 };
	bool any = !al_load(f, &b) && rt_bits_next(&b, 0) != UINT64_MAX;

	rt_bits_free(&b);
	return any;
}

static const struct rt_ops rep_rt_ops = {
	.al_append = al_append,
	.al_rewrite = al_rewrite,
	.load = al_load,
};

/* ---- configuration ---- */

static uint64_t group_id(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const char *p = name; *p; p++) {
		h ^= (unsigned char)*p;
		h *= 0x100000001b3ull;
	}
	return h ? h : 1;
}

/* The group of that name (r->lock held), created empty if new. */
struct rep_group *rep_group_get(struct cv_rep *r, const char *name)
{
	struct rep_group *g;

	for (unsigned i = 0; i < r->ngroups; i++)
		if (!strcmp(r->groups[i]->name, name))
			return r->groups[i];
	if (r->ngroups == REP_GROUPS || strlen(name) >= REP_GROUP_MAX)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	snprintf(g->name, sizeof(g->name), "%s", name);
	g->id = group_id(name);
	g->interval_s = REP_INTERVAL_DEF;
	g->port = 7789;
	pthread_mutex_init(&g->mu, NULL);
	pthread_cond_init(&g->cond, NULL);
	r->groups[r->ngroups++] = g;
	return g;
}

static struct cv_rep_file *find_file(struct cv_rep *r, uint64_t fileid)
{
	for (struct cv_rep_file *f = r->files; f; f = f->next)
		if (f->fileid == fileid)
			return f;
	return NULL;
}

/* The file's entry (r->lock held), created if new. */
static struct cv_rep_file *file_get(struct cv_rep *r, uint64_t fileid)
{
	struct cv_rep_file *f = find_file(r, fileid);

	if (f)
		return f;
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->fileid = fileid;
	f->r = r;
	if (rt_new(&rep_rt_ops, f, &f->t)) {
		free(f);
		return NULL;
	}
	f->next = r->files;
	r->files = f;
	return f;
}

/* One "key=value" of a configuration text; false if not that key. */
static bool kv(const char *line, const char *key, const char **val)
{
	size_t n = strlen(key);

	if (strncmp(line, key, n) || line[n] != '=')
		return false;
	*val = line + n + 1;
	return true;
}

static void copy_val(char *dst, size_t cap, const char *v)
{
	snprintf(dst, cap, "%s", v);
}

/* Apply one key=value to a group (r->lock held): 0 or -EINVAL. */
static int group_kv(struct rep_group *g, const char *line)
{
	const char *v;
	char *end;

	if (kv(line, "interval", &v)) {
		unsigned long s = strtoul(v, &end, 10);

		if (*end || s < REP_INTERVAL_MIN || s > REP_INTERVAL_MAX)
			return -EINVAL;
		g->interval_s = (unsigned)s;
	} else if (kv(line, "rpo", &v)) {
		g->rpo_s = (unsigned)strtoul(v, &end, 10);
	} else if (kv(line, "target", &v)) {
		const char *c = strrchr(v, ':');

		if (!c || c == v || (size_t)(c - v) >= sizeof(g->host))
			return -EINVAL;
		snprintf(g->host, sizeof(g->host), "%.*s", (int)(c - v), v);
		g->port = (unsigned)strtoul(c + 1, &end, 10);
		if (*end || !g->port || g->port > 65535)
			return -EINVAL;
	} else if (kv(line, "ca", &v)) {
		copy_val(g->ca, sizeof(g->ca), v);
	} else if (kv(line, "cert", &v)) {
		copy_val(g->cert, sizeof(g->cert), v);
	} else if (kv(line, "key", &v)) {
		copy_val(g->key, sizeof(g->key), v);
	} else if (kv(line, "hook", &v)) {
		copy_val(g->hook, sizeof(g->hook), v);
	} else {
		return -EINVAL;
	}
	return 0;
}

/* Split text (modified) into lines or words; fn on each non-empty one. */
static int each_item(char *text, const char *seps,
		     int (*fn)(void *, const char *), void *arg)
{
	char *save = NULL, *it;
	int rc = 0;

	for (it = strtok_r(text, seps, &save); it && !rc;
	     it = strtok_r(NULL, seps, &save))
		rc = fn(arg, it);
	return rc;
}

static int group_line(void *arg, const char *line)
{
	return group_kv(arg, line);
}

struct file_conf {
	char group[REP_GROUP_MAX];
	char name[REP_NAME_MAX];
	bool initial;
};

static int file_line(void *arg, const char *line)
{
	struct file_conf *c = arg;
	const char *v;

	if (kv(line, "group", &v))
		copy_val(c->group, sizeof(c->group), v);
	else if (kv(line, "name", &v))
		copy_val(c->name, sizeof(c->name), v);
	else if (kv(line, "initial", &v))
		c->initial = !strcmp(v, "1");
	return 0;
}

int rep_file_conf_write(struct cv_rep *r, struct cv_rep_file *f)
{
	char name[64], *text;
	int n, rc;

	pthread_mutex_lock(&r->lock);
	n = asprintf(&text, "group=%s\nname=%s\ninitial=%d\n",
		     atomic_load(&f->g)->name, f->name, f->initial ? 1 : 0);
	pthread_mutex_unlock(&r->lock);
	if (n < 0)
		return -ENOMEM;
	file_name(name, sizeof(name), f->fileid, "conf");
	rc = rep_write_file(r, name, text, (size_t)n);
	free(text);
	return rc;
}

static int group_conf_write(struct cv_rep *r, struct rep_group *g)
{
	char name[REP_GROUP_MAX + 16], *text;
	int n, rc;

	pthread_mutex_lock(&r->lock);
	n = asprintf(&text,
		     "interval=%u\nrpo=%u\ntarget=%s:%u\nca=%s\ncert=%s\n"
		     "key=%s\nhook=%s\n",
		     g->interval_s, g->rpo_s, g->host, g->port, g->ca, g->cert,
		     g->key, g->hook);
	pthread_mutex_unlock(&r->lock);
	if (n < 0)
		return -ENOMEM;
	snprintf(name, sizeof(name), "g-%s.conf", g->name);
	rc = rep_write_file(r, name, text, (size_t)n);
	free(text);
	return rc;
}

/* ---- the scan of .csvfs/replica ---- */

struct scan {
	char (*names)[80];
	size_t n, cap;
};

static int scan_entry(void *arg, const char *name, ino_t ino, unsigned dtype,
		      off_t next)
{
	struct scan *s = arg;

	(void)ino;
	(void)dtype;
	(void)next;
	if (strlen(name) >= 80 || !strstr(name, ".conf") ||
	    strstr(name, ".tmp"))
		return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		char(*v)[80] = realloc(s->names, cap * sizeof(*v));

		if (!v)
			return 0;
		s->names = v;
		s->cap = cap;
	}
	snprintf(s->names[s->n++], 80, "%s", name);
	return 0;
}

static int list_confs(struct cv_rep *r, struct scan *s)
{
	const struct backend_ops *ops = be_of(r)->ops;
	struct be_node *dir;
	struct be_dir *d;
	int rc = dir_get(r, false, &dir);

	if (!rc)
		rc = ops->opendir(be_of(r), dir, &d);
	if (rc)
		return rc;
	rc = ops->readdir(be_of(r), d, 0, scan_entry, s);
	ops->releasedir(be_of(r), d);
	return rc;
}

static void scan_group(struct cv_rep *r, const char *fname)
{
	char gname[REP_GROUP_MAX], *text;
	size_t len, n = strlen(fname) - 2 - 5;
	struct rep_group *g;

	if (n == 0 || n >= sizeof(gname) ||
	    rep_read_file(r, fname, &text, &len))
		return;
	snprintf(gname, sizeof(gname), "%.*s", (int)n, fname + 2);
	pthread_mutex_lock(&r->lock);
	g = rep_group_get(r, gname);
	if (g)
		each_item(text, "\n", group_line, g);
	pthread_mutex_unlock(&r->lock);
	free(text);
}

/* A file's conf: its entry if it names a group, *fresh if it was not
 * enabled (it is not yet: the caller enables it). */
static struct cv_rep_file *scan_file(struct cv_rep *r, const char *fname,
				     bool *fresh)
{
	struct file_conf c = { .initial = false };
	struct cv_rep_file *f;
	struct rep_group *g;
	char *text, *end;
	size_t len;
	uint64_t id = strtoull(fname, &end, 16);

	*fresh = false;
	if (strcmp(end, ".conf") || rep_read_file(r, fname, &text, &len))
		return NULL;
	each_item(text, "\n", file_line, &c);
	free(text);
	pthread_mutex_lock(&r->lock);
	g = c.group[0] ? rep_group_get(r, c.group) : NULL;
	f = g ? file_get(r, id) : NULL;
	if (f) {
		*fresh = !atomic_load(&f->enabled);
		if (*fresh)
			atomic_store(&f->g, g);
		copy_val(f->name, sizeof(f->name), c.name);
		f->initial = c.initial;
	}
	pthread_mutex_unlock(&r->lock);
	return f;
}

static bool listed(const struct scan *s, uint64_t fileid)
{
	char want[64];

	file_name(want, sizeof(want), fileid, "conf");
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], want))
			return true;
	return false;
}

/*
 * Read the configuration from the volume: groups, then files; files
 * whose conf is gone are disabled.  A file newly enabled is tracked
 * from the end of the grace period on, and loaded again then, which
 * marks it whole for its first copy (al_load, initial): see the file
 * header.
 */
int rep_scan(struct cv_rep *r)
{
	struct cv_rep_file *fresh[64];
	struct scan s = { 0 };
	size_t nfresh = 0;
	bool changed = false;
	int rc = list_confs(r, &s);

	if (rc)
		return rc;
	for (size_t i = 0; i < s.n; i++)
		if (!strncmp(s.names[i], "g-", 2))
			scan_group(r, s.names[i]);
	pthread_mutex_lock(&r->lock);
	for (struct cv_rep_file *f = r->files; f; f = f->next)
		if (!listed(&s, f->fileid) &&
		    atomic_exchange(&f->enabled, false))
			changed = true;
	pthread_mutex_unlock(&r->lock);
	for (size_t i = 0; i < s.n && nfresh < 64; i++) {
		struct cv_rep_file *f;
		bool is_new;

		if (!strncmp(s.names[i], "g-", 2))
			continue;
		f = scan_file(r, s.names[i], &is_new);
		if (f && is_new) {
			atomic_store(&f->enabled, true);
			fresh[nfresh++] = f;
		}
	}
	free(s.names);
	if (changed || nfresh) {
		atomic_fetch_add(&r->gen, 1);
		rep_grace(r);
	}
	for (size_t i = 0; i < nfresh; i++) {
		rt_unload(fresh[i]->t);
		log_notice("replica: file %016" PRIx64 " (%s) is replicated",
			   fresh[i]->fileid, fresh[i]->name);
	}
	return 0;
}

/* ---- the write path ---- */

void rep_grace(struct cv_rep *r)
{
	unsigned old = atomic_fetch_add(&r->phase, 1) & 1;

	/* bounded: a request in flight ends within acquire_timeout plus
	 * its I/O; past 60 s the enable goes on (and says so) */
	for (int i = 0; atomic_load(&r->inside[old]); i++) {
		if (i == 60000) {
			log_warn("replica: writes still running 60 s after "
				 "a file was enabled; going on");
			break;
		}
		usleep(1000);
	}
}

static unsigned enter(struct cv_rep *r)
{
	for (;;) {
		unsigned p = atomic_load(&r->phase) & 1;

		atomic_fetch_add(&r->inside[p], 1);
		if ((atomic_load(&r->phase) & 1) == p)
			return p;
		atomic_fetch_sub(&r->inside[p], 1);
	}
}

static struct cv_rep_file *resolve(struct cv_rep *r, struct cv_rep_slot *s,
				   uint64_t fileid)
{
	unsigned gen = atomic_load(&r->gen);
	struct cv_rep_file *f;

	if (atomic_load_explicit(&s->gen, memory_order_acquire) == gen) {
		f = atomic_load_explicit(&s->f, memory_order_relaxed);
		return f && atomic_load(&f->enabled) ? f : NULL;
	}
	pthread_mutex_lock(&r->lock);
	f = find_file(r, fileid);
	pthread_mutex_unlock(&r->lock);
	atomic_store_explicit(&s->f, f, memory_order_relaxed);
	atomic_store_explicit(&s->gen, gen, memory_order_release);
	return f && atomic_load(&f->enabled) ? f : NULL;
}

static void pin(struct cv_rep *r, struct cv_rep_file *f, struct cv_inode *ino)
{
	struct cv_inode *none = NULL;

	if (atomic_load(&f->ino) || !ino)
		return;
	cv_inode_pin(&r->fs->itab, ino);
	if (!atomic_compare_exchange_strong(&f->ino, &none, ino))
		cv_inode_put(&r->fs->itab, ino);
}

/* Wait out a point being frozen, then count the request in. */
static int group_enter(struct rep_group *g, bool nowait)
{
	int rc = 0;

	pthread_mutex_lock(&g->mu);
	while (g->hold && !nowait)
		pthread_cond_wait(&g->cond, &g->mu);
	if (g->hold)
		rc = -EAGAIN;
	else
		g->inflight++;
	pthread_mutex_unlock(&g->mu);
	return rc;
}

static void group_exit(struct rep_group *g)
{
	pthread_mutex_lock(&g->mu);
	if (!--g->inflight && g->hold)
		pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->mu);
}

static void cbw_put(struct rep_group *g, struct rep_cbw *c)
{
	unsigned b =
		(unsigned)((c->fileid ^ c->granule * 31) % REP_CBW_BUCKETS);

	pthread_mutex_lock(&g->mu);
	if (g->cbw_bytes + c->len > REP_CBW_MAX_BYTES) {
		g->cbw_full = true;
		free(c);
	} else {
		c->next = g->cbw[b];
		g->cbw[b] = c;
		g->cbw_bytes += c->len;
	}
	pthread_mutex_unlock(&g->mu);
}

struct rep_cbw *rep_cbw_find(struct rep_group *g, uint64_t fileid,
			     uint64_t granule)
{
	unsigned b = (unsigned)((fileid ^ granule * 31) % REP_CBW_BUCKETS);
	struct rep_cbw *c;

	pthread_mutex_lock(&g->mu);
	for (c = g->cbw[b]; c; c = c->next)
		if (c->fileid == fileid && c->granule == granule)
			break;
	pthread_mutex_unlock(&g->mu);
	return c;
}

void rep_cbw_clear(struct rep_group *g)
{
	pthread_mutex_lock(&g->mu);
	for (unsigned b = 0; b < REP_CBW_BUCKETS; b++)
		while (g->cbw[b]) {
			struct rep_cbw *c = g->cbw[b];

			g->cbw[b] = c->next;
			free(c);
		}
	g->cbw_bytes = 0;
	g->cbw_full = false;
	pthread_mutex_unlock(&g->mu);
}

/*
 * Copy aside the frozen granules of [off, off+len) not shipped yet,
 * before the request changes them (the shipper claims a granule under
 * the same lock, so each is either read by it or copied here).
 */
static int copy_aside(struct cv_rep *r, struct cv_rep_file *f,
		      struct rep_group *g, struct be_file *file, uint64_t off,
		      uint64_t len)
{
	uint64_t g0 = off >> RT_GRANULE_SHIFT;
	uint64_t g1 = (off + len - 1) >> RT_GRANULE_SHIFT;
	int rc = 0;

	rt_cbw_lock(f->t);
	for (uint64_t gi = g0; gi <= g1 && !rc; gi++) {
		struct rep_cbw *c;
		ssize_t n;

		if (!rt_claim_frozen(f->t, gi))
			continue;
		c = malloc(sizeof(*c) + RT_GRANULE);
		if (!c) {
			rc = -ENOMEM;
			break;
		}
		n = be_of(r)->ops->read(be_of(r), file, c->data, RT_GRANULE,
					(off_t)(gi << RT_GRANULE_SHIFT));
		if (n < 0) {
			rc = (int)n;
			free(c);
			break;
		}
		c->fileid = f->fileid;
		c->granule = gi;
		c->len = (size_t)n;
		cbw_put(g, c);
		rt_count_cbw(f->t);
	}
	rt_cbw_unlock(f->t);
	if (rc) {
		/* the point cannot be one instant any more */
		pthread_mutex_lock(&g->mu);
		g->cbw_full = true;
		pthread_mutex_unlock(&g->mu);
	}
	return 0;
}

int cv_rep_begin(struct cv_rep *r, struct cv_rep_slot *slot, uint64_t fileid,
		 struct cv_inode *ino, struct be_file *file, uint64_t epoch,
		 uint64_t off, uint64_t len, bool nowait,
		 struct cv_rep_tok *tok)
{
	struct cv_rep_file *f;
	struct rep_group *g;
	int rc;

	tok->f = NULL;
	tok->g = NULL;
	if (!r)
		return 0;
	tok->phase = enter(r);
	f = resolve(r, slot, fileid);
	if (!f)
		return 0;
	g = atomic_load(&f->g);
	rc = group_enter(g, nowait);
	if (rc)
		goto out;
	pin(r, f, ino);
	rc = nowait ? rt_write_fast(f->t, epoch, off, len)
		    : rt_write(f->t, epoch, off, len);
	if (rc == RT_CBW)
		rc = nowait ? -EAGAIN : copy_aside(r, f, g, file, off, len);
	if (rc < 0) {
		group_exit(g);
		goto out;
	}
	tok->f = f;
	tok->g = g;
	return 0;
out:
	if (rc == -EAGAIN && !nowait)
		rc = -EIO;
	if (rc != -EAGAIN)
		log_err("replica: file %016" PRIx64 ": change tracking failed "
			"(%s): write refused",
			fileid, strerror(-rc));
	atomic_fetch_sub(&r->inside[tok->phase], 1);
	return rc;
}

void cv_rep_end(struct cv_rep *r, struct cv_rep_tok *tok)
{
	if (!r)
		return;
	if (tok->g)
		group_exit(tok->g);
	atomic_fetch_sub(&r->inside[tok->phase], 1);
	tok->f = NULL;
	tok->g = NULL;
}

/*
 * A planned hand-off (or last close): the granules not shipped go to
 * the volume for the next owner, and a point being shipped that holds
 * this file is abandoned (the next owner may change it at once).
 */
void cv_rep_handoff(struct cv_rep *r, uint64_t fileid)
{
	struct cv_rep_file *f;
	struct rt_bits b = { 0 };
	struct rep_group *g;
	uint64_t epoch;
	uint8_t *buf;
	size_t len;
	char name[64];
	int rc;

	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	f = find_file(r, fileid);
	pthread_mutex_unlock(&r->lock);
	if (!f || rt_handoff_bits(f->t, &b, &epoch))
		return;
	if (epoch == RT_EPOCH_NONE) {
		rt_bits_free(&b);
		return;
	}
	g = atomic_load(&f->g);
	pthread_mutex_lock(&g->mu);
	if (g->shipping)
		g->aborted = true;
	pthread_mutex_unlock(&g->mu);
	rc = rt_bm_encode(&b, epoch, &buf, &len);
	if (!rc) {
		file_name(name, sizeof(name), fileid, "bm");
		rc = rep_write_file(r, name, buf, len);
		free(buf);
	}
	if (rc)
		log_warn("replica: file %016" PRIx64 ": hand-off bitmap not "
			 "written (%s); the next owner ships what the "
			 "activity log names",
			 fileid, strerror(-rc));
	else
		log_info("replica: file %016" PRIx64 ": %llu granules not "
			 "shipped handed off (epoch %llu)",
			 fileid, (unsigned long long)rt_bits_count(&b),
			 (unsigned long long)epoch);
	rt_bits_free(&b);
	rt_unload(f->t);
}

/* ---- user.csvfs.replica ---- */

struct enable_req {
	struct rep_group *g; /* r->lock held while parsing */
	char group[REP_GROUP_MAX];
	char name[REP_NAME_MAX];
	char lines[16][REP_PATH_MAX + 16];
	unsigned nlines;
	bool off;
};

static int enable_word(void *arg, const char *w)
{
	struct enable_req *q = arg;
	const char *v;

	if (!strcmp(w, "off"))
		q->off = true;
	else if (kv(w, "group", &v))
		copy_val(q->group, sizeof(q->group), v);
	else if (kv(w, "name", &v))
		copy_val(q->name, sizeof(q->name), v);
	else if (q->nlines < 16 && strlen(w) < sizeof(q->lines[0]))
		copy_val(q->lines[q->nlines++], sizeof(q->lines[0]), w);
	else
		return -EINVAL;
	return 0;
}

static bool group_name_ok(const char *n)
{
	if (!*n)
		return false;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= 'A' && *n <= 'Z') ||
		      (*n >= '0' && *n <= '9') || *n == '-' || *n == '_' ||
		      *n == '.'))
			return false;
	return true;
}

static int disable(struct cv_rep *r, uint64_t fileid)
{
	const struct backend_ops *ops = be_of(r)->ops;
	static const char *const ext[] = { "conf", "bm", "al" };
	struct be_node *dir;
	char name[64];
	int rc = rep_dir(r, &dir);

	for (unsigned i = 0; !rc && i < 3; i++) {
		file_name(name, sizeof(name), fileid, ext[i]);
		rc = ops->unlink(be_of(r), dir, name);
		if (rc == -ENOENT)
			rc = i ? 0 : -ENODATA;
	}
	if (!rc)
		rc = rep_scan(r);
	return rc;
}

/* Apply the group's settings of q (r->lock not held) and write it. */
static int enable_group(struct cv_rep *r, struct enable_req *q)
{
	struct rep_group *g;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	g = rep_group_get(r, q->group);
	if (!g)
		rc = -ENOSPC;
	for (unsigned i = 0; !rc && i < q->nlines; i++)
		rc = group_kv(g, q->lines[i]);
	pthread_mutex_unlock(&r->lock);
	if (!rc)
		rc = group_conf_write(r, g);
	q->g = g;
	return rc;
}

static int enable_file(struct cv_rep *r, struct cv_inode *ino,
		       struct enable_req *q)
{
	struct cv_rep_file *f;
	int rc = 0;

	pthread_mutex_lock(&r->lock);
	f = file_get(r, (uint64_t)ino->ino);
	if (!f)
		rc = -ENOMEM;
	else if (atomic_load(&f->enabled) && atomic_load(&f->g) != q->g)
		rc = -EBUSY; /* disable first */
	if (!rc) {
		if (!atomic_load(&f->enabled)) {
			atomic_store(&f->g, q->g);
			f->initial = true;
		}
		if (q->name[0])
			copy_val(f->name, sizeof(f->name), q->name);
		else if (!f->name[0])
			snprintf(f->name, sizeof(f->name), "%016" PRIx64,
				 f->fileid);
	}
	pthread_mutex_unlock(&r->lock);
	if (!rc)
		rc = rep_file_conf_write(r, f);
	if (!rc) {
		pin(r, f, ino);
		rc = rep_scan(r);
	}
	return rc;
}

int cv_rep_xattr_set(struct cv_rep *r, struct cv_inode *ino, const char *value,
		     size_t size)
{
	struct enable_req *q;
	struct stat st;
	char *text;
	int rc;

	if (!r)
		return -EOPNOTSUPP;
	q = calloc(1, sizeof(*q));
	text = strndup(value, size);
	if (!q || !text) {
		free(q);
		free(text);
		return -ENOMEM;
	}
	rc = each_item(text, " \t\n", enable_word, q);
	if (!rc)
		rc = be_of(r)->ops->getattr(be_of(r), ino->node, &st);
	if (!rc && q->off)
		rc = S_ISREG(st.st_mode) ? disable(r, (uint64_t)ino->ino)
					 : -EINVAL;
	else if (!rc && !group_name_ok(q->group))
		rc = -EINVAL;
	else if (!rc && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		rc = -EINVAL;
	else if (!rc)
		rc = enable_group(r, q);
	if (!rc && !q->off && S_ISREG(st.st_mode))
		rc = enable_file(r, ino, q);
	free(text);
	free(q);
	return rc;
}

/* The group's last point as the shipper left it on the volume. */
static void read_status(struct cv_rep *r, struct rep_group *g, uint64_t *point,
			int64_t *time_ns)
{
	char name[REP_GROUP_MAX + 16], *text, *p;
	size_t len;

	*point = 0;
	*time_ns = 0;
	snprintf(name, sizeof(name), "g-%s.st", g->name);
	if (rep_read_file(r, name, &text, &len))
		return;
	if ((p = strstr(text, "last_point=")))
		*point = strtoull(p + 11, NULL, 10);
	if ((p = strstr(text, "last_time_ns=")))
		*time_ns = strtoll(p + 13, NULL, 10);
	free(text);
}

static int64_t now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int cv_rep_xattr_get(struct cv_rep *r, struct cv_inode *ino, char *buf,
		     size_t cap)
{
	struct cv_rep_file *f;
	struct rep_group *g;
	struct rt_stats st;
	uint64_t point, points, failures, bytes, hold, hold_max, hold_sum;
	uint64_t holds;
	int64_t t_ns, age, lag;
	bool pending;
	unsigned interval, rpo;
	char err[256], name[REP_NAME_MAX];
	int n;

	if (!r)
		return -EOPNOTSUPP;
	pthread_mutex_lock(&r->lock);
	f = find_file(r, (uint64_t)ino->ino);
	if (!f || !atomic_load(&f->enabled)) {
		pthread_mutex_unlock(&r->lock);
		return -ENODATA;
	}
	g = atomic_load(&f->g);
	interval = g->interval_s;
	rpo = g->rpo_s ? g->rpo_s : 2 * g->interval_s;
	copy_val(name, sizeof(name), f->name);
	pthread_mutex_unlock(&r->lock);
	rt_stats(f->t, &st);
	pthread_mutex_lock(&g->mu);
	points = g->points;
	failures = g->failures;
	bytes = g->bytes;
	hold = g->hold_us;
	hold_max = g->hold_us_max;
	hold_sum = g->hold_us_sum;
	holds = g->holds;
	copy_val(err, sizeof(err), g->last_err);
	pthread_mutex_unlock(&g->mu);
	read_status(r, g, &point, &t_ns);
	age = t_ns ? (now_real_ns() - t_ns) / 1000000000 : -1;
	/* how old the oldest change not yet at the replica may be: the
	 * last point's age, or 0 when nothing is left to ship */
	if (st.epoch != RT_EPOCH_NONE)
		pending = st.dirty || st.frozen;
	else
		pending = rep_pending(f);
	lag = !pending && t_ns ? 0 : age;
	n = snprintf(
		buf, cap,
		"group=%s group_id=%llu name=%s interval=%u rpo=%u "
		"last_point=%llu "
		"age=%lld lag=%lld alarm=%d dirty=%llu frozen=%llu hot=%llu "
		"al_writes=%llu cbw=%llu points=%llu failures=%llu "
		"bytes=%llu hold_us=%llu hold_us_max=%llu hold_us_sum=%llu "
		"holds=%llu tracking=%d last_error=%s",
		g->name, (unsigned long long)g->id, name, interval, rpo,
		(unsigned long long)point, (long long)age, (long long)lag,
		lag < 0 || lag > (int64_t)rpo, (unsigned long long)st.dirty,
		(unsigned long long)st.frozen, (unsigned long long)st.hot,
		(unsigned long long)st.al_writes, (unsigned long long)st.cbw,
		(unsigned long long)points, (unsigned long long)failures,
		(unsigned long long)bytes, (unsigned long long)hold,
		(unsigned long long)hold_max, (unsigned long long)hold_sum,
		(unsigned long long)holds, st.epoch != RT_EPOCH_NONE,
		err[0] ? err : "-");
	return n < 0 || (size_t)n >= cap ? -ERANGE : n;
}

/* ---- life cycle ---- */

int cv_rep_new(struct cv_fs *fs, struct cv_rep **out)
{
	struct cv_rep *r = calloc(1, sizeof(*r));
	int rc;

	if (!r)
		return -ENOMEM;
	r->fs = fs;
	atomic_init(&r->gen, 1);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	rc = rep_scan(r);
	if (rc && rc != -ENOENT)
		log_warn("replica: configuration not read (%s); retried",
			 strerror(-rc));
	*out = r;
	return 0;
}

int cv_rep_start(struct cv_rep *r)
{
	int rc = pthread_create(&r->thread, NULL, rep_thread, r);

	if (rc)
		return -rc;
	r->running = true;
	return 0;
}

void cv_rep_stop(struct cv_rep *r)
{
	if (!r || !r->running)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->running = false;
}

void cv_rep_free(struct cv_rep *r)
{
	if (!r)
		return;
	while (r->files) {
		struct cv_rep_file *f = r->files;
		struct cv_inode *ino = atomic_load(&f->ino);

		r->files = f->next;
		if (f->al)
			be_of(r)->ops->release(be_of(r), f->al);
		if (ino)
			cv_inode_put(&r->fs->itab, ino);
		rt_free(f->t);
		free(f);
	}
	for (unsigned i = 0; i < r->ngroups; i++) {
		rep_cbw_clear(r->groups[i]);
		pthread_mutex_destroy(&r->groups[i]->mu);
		pthread_cond_destroy(&r->groups[i]->cond);
		free(r->groups[i]);
	}
	if (r->dir)
		be_of(r)->ops->node_put(be_of(r), r->dir);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}
