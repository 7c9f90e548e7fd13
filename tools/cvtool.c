// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cvtool.c - helpers shared by the csvfs tools: path to lock
 * resource through the virtual xattrs csvfs serves, human-readable ages
 * and aligned tables (see cvtool.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "cvtool.h"

/* Read a text xattr into buf (NUL-terminated, trailing newline cut). */
static int read_xattr(const char *path, const char *name, char *buf,
		      size_t len)
{
	ssize_t n = getxattr(path, name, buf, len - 1);

	if (n < 0) {
		if (errno == ENODATA || errno == ENOTSUP || errno == ERANGE)
			return -ENOTSUP;
		return -errno;
	}
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		buf[--n] = '\0';
	return 0;
}

int cv_path_res(const char *path, struct lm_res *res)
{
	char buf[128], *end;
	unsigned long long v;
	int r;

	memset(res, 0, sizeof(*res));
	r = read_xattr(path, CV_XATTR_VOLUME, buf, sizeof(buf));
	if (r < 0)
		return r;
	if (cv_uuid_parse(buf, res->volume) < 0)
		return -ENOTSUP;
	r = read_xattr(path, CV_XATTR_FILEID, buf, sizeof(buf));
	if (r < 0)
		return r;
	errno = 0;
	v = strtoull(buf, &end, 10);
	if (errno || end == buf || *end)
		return -ENOTSUP;
	res->fileid = v;
	return 0;
}

void cv_age_format(int64_t ms, char *out, size_t len)
{
	if (ms < 0)
		snprintf(out, len, "-");
	else if (ms < 1000)
		snprintf(out, len, "%" PRId64 "ms", ms);
	else if (ms < 10000)
		snprintf(out, len, "%.1fs", (double)ms / 1000.0);
	else if (ms < 60000)
		snprintf(out, len, "%" PRId64 "s", ms / 1000);
	else if (ms < 3600000)
		snprintf(out, len, "%" PRId64 "m", ms / 60000);
	else if (ms < 48 * 3600000LL)
		snprintf(out, len, "%" PRId64 "h", ms / 3600000);
	else
		snprintf(out, len, "%" PRId64 "d", ms / 86400000);
}

int cv_table_init(struct cv_table *t, size_t n_cols,
		  const char *const *header)
{
	const char *cells[16];

	memset(t, 0, sizeof(*t));
	if (n_cols > 16)
		return -EINVAL;
	t->n_cols = n_cols;
	t->right = calloc(n_cols, sizeof(*t->right));
	if (!t->right)
		return -ENOMEM;
	for (size_t i = 0; i < n_cols; i++) {
		t->right[i] = header[i][0] == '>';
		cells[i] = header[i] + t->right[i];
	}
	return cv_table_row(t, cells);
}

int cv_table_row(struct cv_table *t, const char *const *cells)
{
	if (t->n_rows == t->cap_rows) {
		size_t cap = t->cap_rows ? t->cap_rows * 2 : 16;
		char **nc = realloc(t->cells, cap * t->n_cols * sizeof(*nc));

		if (!nc)
			return -ENOMEM;
		t->cells = nc;
		t->cap_rows = cap;
	}
	for (size_t i = 0; i < t->n_cols; i++) {
		char *s = strdup(cells[i] ? cells[i] : "-");

		if (!s) {
			while (i-- > 0)
				free(t->cells[t->n_rows * t->n_cols + i]);
			return -ENOMEM;
		}
		t->cells[t->n_rows * t->n_cols + i] = s;
	}
	t->n_rows++;
	return 0;
}

void cv_table_print(const struct cv_table *t, FILE *f)
{
	size_t w[16] = { 0 };

	for (size_t r = 0; r < t->n_rows; r++)
		for (size_t i = 0; i < t->n_cols; i++) {
			size_t l = strlen(t->cells[r * t->n_cols + i]);

			if (l > w[i])
				w[i] = l;
		}
	for (size_t r = 0; r < t->n_rows; r++) {
		for (size_t i = 0; i < t->n_cols; i++) {
			const char *s = t->cells[r * t->n_cols + i];
			bool last = i + 1 == t->n_cols;

			if (t->right[i])
				fprintf(f, "%*s", (int)w[i], s);
			else if (last)
				fputs(s, f);
			else
				fprintf(f, "%-*s", (int)w[i], s);
			fputs(last ? "\n" : "  ", f);
		}
	}
}

void cv_table_free(struct cv_table *t)
{
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t->right);
	memset(t, 0, sizeof(*t));
}
