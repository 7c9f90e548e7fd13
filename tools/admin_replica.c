// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * admin_replica.c - csvfs-admin replica (admin_replica.h).
 *
 *   replica enable PATH... --group G --target HOST:PORT --ca F --cert F
 *                          --key F [--interval D] [--rpo D] [--hook CMD]
 *   replica disable PATH...
 *   replica status [PATH...]      exit 1 if a file's RPO alarm is up
 *   replica metrics PATH...       Prometheus text
 *
 * A directory stands for the regular files in it (not hidden ones); its
 * name is the default group.  Everything goes through setxattr/getxattr
 * of user.csvfs.replica on the mount: csvfs writes the configuration to
 * the volume, where every node's csvfs reads it.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "admin_replica.h"

#define XATTR "user.csvfs.replica"
#define MIN_S 5
#define MAX_S 86400

long admin_duration(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || v < 0)
		return -1;
	if (!strcmp(end, "") || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	return -1;
}

/* The files a path stands for: itself, or a directory's regular files. */
struct flist {
	char **p;
	size_t n, cap;
};

static int add(struct flist *l, const char *path)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		char **v = realloc(l->p, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		l->p = v;
		l->cap = cap;
	}
	l->p[l->n] = strdup(path);
	return l->p[l->n++] ? 0 : -ENOMEM;
}

static void flist_free(struct flist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->p[i]);
	free(l->p);
}

static int expand(const char *path, struct flist *l)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	char buf[4096];
	int rc = 0;

	if (stat(path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return add(l, path);
	d = opendir(path);
	if (!d)
		return -errno;
	while (!rc && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(buf, sizeof(buf), "%s/%s", path, e->d_name);
		if (!stat(buf, &st) && S_ISREG(st.st_mode))
			rc = add(l, buf);
	}
	closedir(d);
	return rc;
}

static int enable_value(const struct admin_replica_opts *o, const char *path,
			char *buf, size_t cap)
{
	char tmp[4096], gname[256];
	long iv = o->interval ? admin_duration(o->interval) : 30;
	long rpo = o->rpo ? admin_duration(o->rpo) : 0;
	int n;

	if (iv < MIN_S || iv > MAX_S) {
		fprintf(stderr, "csvfs-admin: --interval must be 5s..24h\n");
		return -EINVAL;
	}
	if (rpo < 0) {
		fprintf(stderr, "csvfs-admin: bad --rpo\n");
		return -EINVAL;
	}
	snprintf(tmp, sizeof(tmp), "%s", path);
	snprintf(gname, sizeof(gname), "%s",
		 o->group ? o->group : basename(dirname(tmp)));
	snprintf(tmp, sizeof(tmp), "%s", path);
	n = snprintf(buf, cap, "group=%s interval=%ld rpo=%ld name=%s%s%s",
		     gname, iv, rpo, basename(tmp), o->target ? " target=" : "",
		     o->target ? o->target : "");
	if (o->ca)
		n += snprintf(buf + n, cap - (size_t)n, " ca=%s", o->ca);
	if (o->cert)
		n += snprintf(buf + n, cap - (size_t)n, " cert=%s", o->cert);
	if (o->key)
		n += snprintf(buf + n, cap - (size_t)n, " key=%s", o->key);
	if (o->hook)
		n += snprintf(buf + n, cap - (size_t)n, " hook=%s", o->hook);
	return n < (int)cap ? 0 : -E2BIG;
}

/* Report one file's outcome (text, or an element of the JSON array). */
static void report(struct json *j, const char *path, int rc, bool disable)
{
	if (j) {
		json_obj_begin(j);
		json_kstr(j, "path", path);
		json_kbool(j, "ok", !rc);
		if (rc)
			json_kstr(j, "error", strerror(-rc));
		json_obj_end(j);
	}
	if (rc)
		fprintf(stderr, "csvfs-admin: %s: %s\n", path, strerror(-rc));
	else if (!j)
		printf("%s: replication %s\n", path,
		       disable ? "disabled" : "enabled");
}

/* j: JSON output, or NULL. */
static int cmd_enable(const struct admin_replica_opts *o, struct json *j,
		      int argc, char **argv, bool disable)
{
	int status = 0;

	if (j)
		json_arr_begin(j);
	for (int i = 0; i < argc; i++) {
		struct flist l = { 0 };
		char val[8192];
		int rc = expand(argv[i], &l);

		if (rc)
			report(j, argv[i], rc, disable);
		for (size_t k = 0; !rc && k < l.n; k++) {
			if (disable)
				snprintf(val, sizeof(val), "off");
			else
				rc = enable_value(o, l.p[k], val, sizeof(val));
			if (!rc && setxattr(l.p[k], XATTR, val, strlen(val), 0))
				rc = -errno;
			report(j, l.p[k], rc, disable);
		}
		if (rc)
			status = 1;
		flist_free(&l);
	}
	if (j) {
		json_arr_end(j);
		json_finish(j);
	}
	return status;
}

/* The words "k=v" of one file's state; 0 or -errno (-ENODATA: not
 * replicated). */
static int state_of(const char *path, char *buf, size_t cap)
{
	ssize_t n = getxattr(path, XATTR, buf, cap - 1);

	if (n < 0)
		return errno == ENODATA ? -ENODATA : -errno;
	buf[n] = 0;
	return 0;
}

static const char *get(const char *state, const char *key, char *out,
		       size_t cap)
{
	size_t kl = strlen(key);

	for (const char *p = state; p && *p;) {
		const char *end = strchr(p, ' ');

		if (!strncmp(p, key, kl) && p[kl] == '=') {
			size_t len = end ? (size_t)(end - p - (long)kl - 1)
					 : strlen(p + kl + 1);

			if (!strcmp(key, "last_error"))
				len = strlen(p + kl + 1);
			snprintf(out, cap, "%.*s", (int)len, p + kl + 1);
			return out;
		}
		p = end ? end + 1 : NULL;
	}
	snprintf(out, cap, "-");
	return out;
}

static const char *const num_keys[] = {
	"group_id",    "interval",    "rpo",	  "last_point", "age",
	"lag",	       "dirty",	      "frozen",	  "hot",	"al_writes",
	"cbw",	       "points",      "failures", "bytes",	"hold_us",
	"hold_us_max", "hold_us_sum", "holds",
};

static void status_json(struct json *j, const char *path, const char *st)
{
	char v[1024];

	json_obj_begin(j);
	json_kstr(j, "path", path);
	json_kstr(j, "group", get(st, "group", v, sizeof(v)));
	json_kstr(j, "name", get(st, "name", v, sizeof(v)));
	for (size_t i = 0; i < sizeof(num_keys) / sizeof(num_keys[0]); i++) {
		get(st, num_keys[i], v, sizeof(v));
		json_key(j, num_keys[i]);
		if ((!strcmp(num_keys[i], "age") ||
		     !strcmp(num_keys[i], "lag")) &&
		    v[0] == '-')
			json_null(j);
		else
			json_int(j, strtoll(v, NULL, 10));
	}
	json_kbool(j, "rpo_alarm",
		   !strcmp(get(st, "alarm", v, sizeof(v)), "1"));
	json_kbool(j, "tracking",
		   !strcmp(get(st, "tracking", v, sizeof(v)), "1"));
	get(st, "last_error", v, sizeof(v));
	if (!strcmp(v, "-"))
		json_knull(j, "last_error");
	else
		json_kstr(j, "last_error", v);
	json_obj_end(j);
}

static void status_line(const char *path, const char *st)
{
	char g[256], p[32], a[32], l[32], r[32], al[8], d[32], f[32], e[1024];
	char age[40], lag[40], rpo[40];

	get(st, "age", a, sizeof(a));
	get(st, "lag", l, sizeof(l));
	if (a[0] == '-')
		snprintf(age, sizeof(age), "never");
	else
		snprintf(age, sizeof(age), "%ss", a);
	if (l[0] == '-')
		snprintf(lag, sizeof(lag), "-");
	else
		snprintf(lag, sizeof(lag), "%ss", l);
	snprintf(rpo, sizeof(rpo), "%ss", get(st, "rpo", r, sizeof(r)));
	printf("%-30s %-12s %8s %8s %8s %6s %5s %8s %6s %s\n", path,
	       get(st, "group", g, sizeof(g)),
	       get(st, "last_point", p, sizeof(p)), age, lag, rpo,
	       !strcmp(get(st, "alarm", al, sizeof(al)), "1") ? "ALARM" : "ok",
	       get(st, "dirty", d, sizeof(d)),
	       get(st, "failures", f, sizeof(f)),
	       get(st, "last_error", e, sizeof(e)));
}

static void metrics_of(const char *path, const char *st)
{
	static const char *const m[][2] = {
		{ "age", "csvfs_replica_last_point_age_seconds" },
		{ "lag", "csvfs_replica_lag_seconds" },
		{ "alarm", "csvfs_replica_rpo_alarm" },
		{ "last_point", "csvfs_replica_last_point" },
		{ "dirty", "csvfs_replica_dirty_granules" },
		{ "frozen", "csvfs_replica_frozen_granules" },
		{ "points", "csvfs_replica_points_total" },
		{ "failures", "csvfs_replica_failures_total" },
		{ "bytes", "csvfs_replica_bytes_total" },
		{ "cbw", "csvfs_replica_copy_before_write_total" },
		{ "al_writes", "csvfs_replica_activity_log_writes_total" },
		{ "hold_us", "csvfs_replica_barrier_hold_last_microseconds" },
		{ "hold_us_max",
		  "csvfs_replica_barrier_hold_max_microseconds" },
		{ "hold_us_sum",
		  "csvfs_replica_barrier_hold_microseconds_sum" },
		{ "holds", "csvfs_replica_barrier_holds_total" },
	};
	char g[256], v[64];

	get(st, "group", g, sizeof(g));
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		get(st, m[i][0], v, sizeof(v));
		if (v[0] == '-')
			continue;
		printf("%s{path=\"%s\",group=\"%s\"} %s\n", m[i][1], path, g,
		       v);
	}
}

static int cmd_status(bool json, struct json *j, int argc, char **argv,
		      bool metrics)
{
	struct flist l = { 0 };
	char st[4096], al[8];
	int status = 0, rc = 0;

	for (int i = 0; !rc && i < argc; i++)
		rc = expand(argv[i], &l);
	if (rc) {
		fprintf(stderr, "csvfs-admin: %s\n", strerror(-rc));
		flist_free(&l);
		return 1;
	}
	if (json && !metrics)
		json_arr_begin(j);
	else if (!metrics)
		printf("%-30s %-12s %8s %8s %8s %6s %5s %8s %6s %s\n", "PATH",
		       "GROUP", "POINT", "AGE", "LAG", "RPO", "ALARM", "DIRTY",
		       "FAILS", "LAST_ERROR");
	for (size_t k = 0; k < l.n; k++) {
		rc = state_of(l.p[k], st, sizeof(st));
		if (rc == -ENODATA)
			continue;
		if (rc) {
			fprintf(stderr, "csvfs-admin: %s: %s\n", l.p[k],
				strerror(-rc));
			status = 1;
			continue;
		}
		if (!strcmp(get(st, "alarm", al, sizeof(al)), "1"))
			status = 1;
		if (metrics)
			metrics_of(l.p[k], st);
		else if (json)
			status_json(j, l.p[k], st);
		else
			status_line(l.p[k], st);
	}
	if (json && !metrics) {
		json_arr_end(j);
		json_finish(j);
	}
	flist_free(&l);
	return status;
}

int admin_replica(const struct admin_replica_opts *o, bool json, struct json *j,
		  int argc, char **argv)
{
	const char *sub = argc ? argv[0] : "";

	if (!strcmp(sub, "enable") && argc > 1) {
		if (!o->target || !o->ca || !o->cert || !o->key) {
			fprintf(stderr, "csvfs-admin: replica enable needs "
					"--target, --ca, --cert and --key\n");
			return 2;
		}
		return cmd_enable(o, json ? j : NULL, argc - 1, argv + 1,
				  false);
	}
	if (!strcmp(sub, "disable") && argc > 1)
		return cmd_enable(o, json ? j : NULL, argc - 1, argv + 1, true);
	if (!strcmp(sub, "status") && argc > 1)
		return cmd_status(json, j, argc - 1, argv + 1, false);
	if (!strcmp(sub, "metrics") && argc > 1)
		return cmd_status(json, j, argc - 1, argv + 1, true);
	fprintf(stderr, "csvfs-admin: usage: csvfs-admin replica "
			"enable|disable|status|metrics PATH...\n");
	return 2;
}
