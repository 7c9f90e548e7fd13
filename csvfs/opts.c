// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * opts.c - parsing of the csvfs command line (see opts.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lkm.h"
#include "opts.h"

/* Options given to libfuse unchanged (flags, then key=value ones). */
static const char *const fuse_flags[] = {
	"allow_other", "allow_root", "default_permissions", "auto_unmount",
	"ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
	"atime", "noatime", "relatime", "strictatime", "nodiratime",
	"sync", "async", "dirsync", NULL,
};
static const char *const fuse_keys[] = {
	"fsname=", "subtype=", "max_read=", "blksize=", NULL,
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return 2;
}

static bool in_list(const char *const *list, const char *opt, bool prefix)
{
	for (; *list; list++) {
		if (prefix ? !strncmp(opt, *list, strlen(*list))
			   : !strcmp(opt, *list))
			return true;
	}
	return false;
}

static int add_fuse(struct cv_opts *o, const char *opt)
{
	size_t len = strlen(o->fuse_opts);
	int n = snprintf(o->fuse_opts + len, sizeof(o->fuse_opts) - len,
			 "%s%s", len ? "," : "", opt);

	return n < 0 || (size_t)n >= sizeof(o->fuse_opts) - len ? -1 : 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 86400)
		return -1;
	*out = v;
	return 0;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int copy_str(char *dst, size_t cap, const char *val)
{
	if (!*val || strlen(val) >= cap)
		return -1;
	strcpy(dst, val);
	return 0;
}

/* One csvfs option: 1 if it was one (0 ok / 2 error in *rc), else 0. */
static int own_opt(struct cv_opts *o, const char *opt, int *rc, char *err,
		   size_t errlen)
{
	const char *eq = strchr(opt, '=');
	const char *val = eq ? eq + 1 : NULL;
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
	char key[32];
	int bad = 0;

	if (klen >= sizeof(key))
		return 0;
	memcpy(key, opt, klen);
	key[klen] = '\0';
	if (!strcmp(key, "lockd"))
		bad = !val || copy_str(o->lockd, sizeof(o->lockd), val);
	else if (!strcmp(key, "node"))
		bad = !val || copy_str(o->node, sizeof(o->node), val);
	else if (!strcmp(key, "label"))
		bad = !val || copy_str(o->label, sizeof(o->label), val);
	else if (!strcmp(key, "cache")) {
		if (val && !strcmp(val, "direct"))
			o->cache = CV_CACHE_DIRECT;
		else if (val && !strcmp(val, "auto"))
			o->cache = CV_CACHE_AUTO;
		else
			bad = 1;
	} else if (!strcmp(key, "attr_timeout"))
		bad = !val || parse_seconds(val, &o->attr_timeout);
	else if (!strcmp(key, "entry_timeout"))
		bad = !val || parse_seconds(val, &o->entry_timeout);
	else if (!strcmp(key, "idle_release_ms"))
		bad = !val || parse_uint(val, 3600000, &o->idle_release_ms);
	else if (!strcmp(key, "acquire_timeout"))
		bad = !val || parse_uint(val, 600000, &o->acquire_timeout_ms) ||
		      o->acquire_timeout_ms == 0;
	else if (!strcmp(key, "aio")) {
		if (val && !strcmp(val, "on"))
			o->aio = true;
		else if (val && !strcmp(val, "off"))
			o->aio = false;
		else
			bad = 1;
	} else if (!strcmp(key, "uring")) {
		if (val && !strcmp(val, "on"))
			o->uring = CV_URING_ON;
		else if (val && !strcmp(val, "auto"))
			o->uring = CV_URING_AUTO;
		else if (val && !strcmp(val, "off"))
			o->uring = CV_URING_OFF;
		else
			bad = 1;
	} else if (!strcmp(key, "max_threads"))
		bad = !val || parse_uint(val, 1024, &o->max_threads) ||
		      o->max_threads == 0;
	else
		return 0;
	*rc = bad ? fail(err, errlen, "invalid value in option '%s'", opt)
		  : 0;
	return 1;
}

static int parse_optlist(struct cv_opts *o, const char *list, char *err,
			 size_t errlen)
{
	char *dup = strdup(list), *save = NULL, *opt;
	int rc = 0;

	if (!dup)
		return fail(err, errlen, "out of memory");
	for (opt = strtok_r(dup, ",", &save); opt && !rc;
	     opt = strtok_r(NULL, ",", &save)) {
		if (own_opt(o, opt, &rc, err, errlen))
			continue;
		if (in_list(fuse_flags, opt, false) ||
		    in_list(fuse_keys, opt, true)) {
			if (!strcmp(opt, "ro"))
				o->read_only = true;
			else if (!strcmp(opt, "rw"))
				o->read_only = false;
			if (add_fuse(o, opt))
				rc = fail(err, errlen, "options too long");
			continue;
		}
		rc = fail(err, errlen, "unknown mount option '%s'", opt);
	}
	free(dup);
	return rc;
}

static void set_defaults(struct cv_opts *o)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->lockd, LKM_DEFAULT_SOCKET);
	o->cache = CV_CACHE_DIRECT;
	o->attr_timeout = 1.0;
	o->entry_timeout = 1.0;
	o->idle_release_ms = 10000;
	o->acquire_timeout_ms = 15000;
	o->max_threads = 64;
	o->aio = true;
	o->uring = CV_URING_AUTO;
}

int cv_opts_parse(int argc, char *const argv[], struct cv_opts *o,
		  char *err, size_t errlen)
{
	int rc;

	set_defaults(o);
	err[0] = '\0';
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-o")) {
			if (++i >= argc)
				return fail(err, errlen, "-o needs options");
			rc = parse_optlist(o, argv[i], err, errlen);
			if (rc)
				return rc;
		} else if (!strncmp(a, "-o", 2)) {
			rc = parse_optlist(o, a + 2, err, errlen);
			if (rc)
				return rc;
		} else if (!strcmp(a, "-f")) {
			o->foreground = true;
		} else if (!strcmp(a, "-d")) {
			o->debug = true;
			o->foreground = true;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			o->help = true;
			return 0;
		} else if (!strcmp(a, "-V") || !strcmp(a, "--version")) {
			o->version = true;
			return 0;
		} else if (a[0] == '-' && a[1]) {
			return fail(err, errlen, "unknown option '%s'", a);
		} else if (!o->source) {
			o->source = a;
		} else if (!o->mountpoint) {
			o->mountpoint = a;
		} else {
			return fail(err, errlen, "unexpected argument '%s'", a);
		}
	}
	if (!o->source || !o->mountpoint)
		return fail(err, errlen, "need SOURCE and MOUNTPOINT");
	return 0;
}

bool cv_opts_no_lockd(const struct cv_opts *o)
{
	return !strcmp(o->lockd, "none");
}
