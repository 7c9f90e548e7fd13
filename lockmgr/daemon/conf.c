// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * conf.c - parser of csvfs.conf for csvfs-lockd.
 *
 * Table-driven: each key names its section, type, range and the field it
 * fills, so that the parser, the defaults and csvfs.conf(5) stay in step.
 * Errors name file:line and what was expected, and parsing stops at the
 * first one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "lm_node.h"
#include "log.h"

#define CONF_FILE_MAX (1024 * 1024)

enum conf_type {
	CT_STR,	      /* string; size = field size */
	CT_MS,	      /* milliseconds, [min, max] */
	CT_TRANSPORT, /* corosync | standalone */
	CT_DRIFT,     /* ppm, or a percentage with "%" */
	CT_LEVEL,     /* log level name */
	CT_PATH,      /* absolute path or "" */
};

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	size_t off;
	size_t size;
	uint64_t min;
	uint64_t max;
};

#define F(field) offsetof(struct lockd_conf, field), \
	sizeof(((struct lockd_conf *)0)->field)

static const struct conf_key conf_keys[] = {
	{ "cluster", "transport", CT_TRANSPORT, F(transport), 0, 0 },
	{ "cluster", "node", CT_STR, F(node), 0, 0 },
	{ "cluster", "cluster_name", CT_STR, F(cluster_name), 0, 0 },
	{ "cluster", "socket", CT_PATH, F(socket), 0, 0 },
	{ "cluster", "socket_group", CT_STR, F(socket_group), 0, 0 },
	{ "cluster", "state_dir", CT_PATH, F(state_dir), 0, 0 },
	{ "cluster", "lease_timeout_ms", CT_MS, F(lease_timeout_ms), 400,
	  600000 },
	{ "cluster", "clock_drift_ppm", CT_DRIFT, F(clock_drift_ppm), 0,
	  100000 },
	{ "cluster", "fence_margin_ms", CT_MS, F(fence_margin_ms), 0, 600000 },
	{ "cluster", "fence_command", CT_STR, F(fence_command), 0, 0 },
	{ "cluster", "fence_command_timeout_ms", CT_MS,
	  F(fence_command_timeout_ms), 100, 3600000 },
	{ "cluster", "watchdog_device", CT_PATH, F(watchdog_device), 0, 0 },
	{ "cluster", "watchdog_timeout_ms", CT_MS, F(watchdog_timeout_ms), 1000,
	  600000 },
	{ "cluster", "revoke_timeout_ms", CT_MS, F(revoke_timeout_ms), 100,
	  3600000 },
	{ "cluster", "handoff_idle_ms", CT_MS, F(handoff_idle_ms), 100,
	  86400000 },
	{ "cluster", "shutdown_timeout_ms", CT_MS, F(shutdown_timeout_ms), 0,
	  600000 },
	{ "log", "level", CT_LEVEL, F(log_level), 0, 0 },
};

#define N_KEYS (sizeof(conf_keys) / sizeof(conf_keys[0]))

void lockd_conf_defaults(struct lockd_conf *c)
{
	memset(c, 0, sizeof(*c));
	c->transport = LOCKD_TRANSPORT_COROSYNC;
	snprintf(c->socket, sizeof(c->socket), "%s", LM_SOCKET_DEFAULT);
	snprintf(c->state_dir, sizeof(c->state_dir), "%s",
		 LOCKD_DEFAULT_STATE_DIR);
	c->lease_timeout_ms = 0; /* derived from corosync: lockd_lease_resolve */
	c->clock_drift_ppm = 10000; /* 1 % */
	c->fence_margin_ms = 500;
	c->fence_command_timeout_ms = 60000;
	c->watchdog_timeout_ms = 10000;
	c->revoke_timeout_ms = 10000;
	c->handoff_idle_ms = 60000;
	c->shutdown_timeout_ms = 5000;
	c->log_level = LOG_NOTICE;
}

const char *lockd_transport_name(enum lockd_transport t)
{
	switch (t) {
	case LOCKD_TRANSPORT_COROSYNC:
		return "corosync";
	case LOCKD_TRANSPORT_STANDALONE:
		return "standalone";
	}
	return "unknown";
}

uint32_t lockd_conf_heartbeat_ms(uint32_t lease_ms)
{
	uint32_t hb = lease_ms / LOCKD_HB_PER_LEASE;

	return hb ? hb : 1;
}

uint32_t lockd_conf_lease_min_ms(uint32_t detection_ms)
{
	uint64_t pause = (uint64_t)detection_ms + LOCKD_LEASE_SLACK_MS;
	uint64_t lease;

	/*
	 * The least lease with lease - heartbeat_ms(lease) >= pause: the
	 * heartbeat period rounds down, so ceil(pause * N / (N - 1)) may be
	 * a ms or two above it.
	 */
	lease = (pause * LOCKD_HB_PER_LEASE + LOCKD_HB_PER_LEASE - 2) /
		(LOCKD_HB_PER_LEASE - 1);
	while (lease > LOCKD_HB_PER_LEASE &&
	       lease - 1 - (lease - 1) / LOCKD_HB_PER_LEASE >= pause)
		lease--;
	return lease > UINT32_MAX ? UINT32_MAX : (uint32_t)lease;
}

uint32_t lockd_conf_lease_derive(uint32_t detection_ms)
{
	uint64_t lease;

	if (!detection_ms)
		return LOCKD_LEASE_STANDALONE_MS;
	lease = lockd_conf_lease_min_ms(detection_ms);
	if (lease < LOCKD_LEASE_MIN_AUTO_MS)
		lease = LOCKD_LEASE_MIN_AUTO_MS;
	lease = (lease + 99) / 100 * 100;
	return lease > UINT32_MAX ? UINT32_MAX : (uint32_t)lease;
}

uint64_t lockd_conf_fence_wait_ms(const struct lockd_conf *c)
{
	/* the fencer's arithmetic lives with its decision (lm_node.c) */
	return lm_node_fence_wait_ms(c->lease_timeout_ms, c->clock_drift_ppm,
				     c->fence_margin_ms, c->watchdog_device[0] ?
				     c->watchdog_timeout_ms : 0);
}

static int parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long n;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = n;
	return 0;
}

/* "10000" (ppm) or "1%" / "0.5%" (percent, up to 4 decimals). */
static int parse_drift(const char *v, uint64_t *ppm)
{
	size_t len = strlen(v);
	uint64_t whole = 0, frac = 0, scale = 10000;
	const char *p = v;

	if (len == 0 || v[len - 1] != '%')
		return parse_u64(v, ppm);
	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		whole = whole * 10 + (uint64_t)(*p++ - '0');
		if (whole > 100)
			return -EINVAL;
	}
	if (*p == '.') {
		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			if (scale == 1)
				return -EINVAL;
			scale /= 10;
			frac += (uint64_t)(*p++ - '0') * scale;
		}
	}
	if (*p != '%' || p[1])
		return -EINVAL;
	*ppm = whole * 10000 + frac;
	return 0;
}

static int set_value(struct lockd_conf *c, const struct conf_key *k,
		     const char *v, char *why, size_t whylen)
{
	char *field = (char *)c + k->off;
	uint64_t n;
	int level;

	switch (k->type) {
	case CT_PATH:
		if (v[0] && v[0] != '/') {
			snprintf(why, whylen, "must be an absolute path");
			return -EINVAL;
		}
		/* fall through */
	case CT_STR:
		if (strlen(v) >= k->size) {
			snprintf(why, whylen, "longer than %zu characters",
				 k->size - 1);
			return -EINVAL;
		}
		memcpy(field, v, strlen(v) + 1);
		return 0;
	case CT_MS:
	case CT_DRIFT:
		if ((k->type == CT_MS ? parse_u64(v, &n) : parse_drift(v, &n))) {
			snprintf(why, whylen, "%s", k->type == CT_MS ?
				 "expected a number of milliseconds" :
				 "expected parts per million or a percentage "
				 "such as 1%");
			return -EINVAL;
		}
		if (n < k->min || n > k->max) {
			snprintf(why, whylen, "out of range [%llu, %llu]",
				 (unsigned long long)k->min,
				 (unsigned long long)k->max);
			return -EINVAL;
		}
		*(uint32_t *)(void *)field = (uint32_t)n;
		return 0;
	case CT_TRANSPORT:
		if (strcmp(v, "corosync") == 0)
			c->transport = LOCKD_TRANSPORT_COROSYNC;
		else if (strcmp(v, "standalone") == 0)
			c->transport = LOCKD_TRANSPORT_STANDALONE;
		else {
			snprintf(why, whylen,
				 "expected \"corosync\" or \"standalone\"");
			return -EINVAL;
		}
		return 0;
	case CT_LEVEL:
		level = cv_log_level_parse(v);
		if (level < 0) {
			snprintf(why, whylen, "expected one of error, warning, "
				 "notice, info, debug");
			return -EINVAL;
		}
		c->log_level = level;
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Cut a comment: "#" at the start or after whitespace. */
static void cut_comment(char *s)
{
	for (char *p = s; *p; p++) {
		if (*p == '#' && (p == s || p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

struct parse_ctx {
	struct lockd_conf *c;
	const char *fname;
	unsigned line;
	char section[32];
	bool seen[N_KEYS];
	char *err;
	size_t errlen;
};

#define perr(p, fmt, ...) \
	snprintf((p)->err, (p)->errlen, "%s:%u: " fmt, (p)->fname, \
		 (p)->line, ##__VA_ARGS__)

static int parse_section(struct parse_ctx *p, char *s)
{
	size_t len = strlen(s);
	char *name;

	if (s[len - 1] != ']') {
		perr(p, "section header without closing \"]\"");
		return -EINVAL;
	}
	s[len - 1] = '\0';
	name = trim(s + 1);
	if (strcmp(name, "cluster") && strcmp(name, "log")) {
		perr(p, "unknown section [%s] (known: [cluster], [log])", name);
		return -EINVAL;
	}
	snprintf(p->section, sizeof(p->section), "%s", name);
	return 0;
}

static int parse_pair(struct parse_ctx *p, char *s)
{
	char *eq = strchr(s, '=');
	char *key, *val, why[128];
	size_t i;

	if (!eq) {
		perr(p, "expected \"key = value\" or \"[section]\"");
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(s);
	val = trim(eq + 1);
	if (!p->section[0]) {
		perr(p, "key \"%s\" before any [section]", key);
		return -EINVAL;
	}
	for (i = 0; i < N_KEYS; i++)
		if (!strcmp(conf_keys[i].section, p->section) &&
		    !strcmp(conf_keys[i].name, key))
			break;
	if (i == N_KEYS) {
		perr(p, "unknown key \"%s\" in [%s] (see csvfs.conf(5))", key,
		     p->section);
		return -EINVAL;
	}
	if (p->seen[i]) {
		perr(p, "duplicate key \"%s\" in [%s]", key, p->section);
		return -EINVAL;
	}
	p->seen[i] = true;
	if (set_value(p->c, &conf_keys[i], val, why, sizeof(why))) {
		perr(p, "bad value \"%s\" for %s: %s", val, key, why);
		return -EINVAL;
	}
	return 0;
}

int lockd_conf_parse(struct lockd_conf *c, const char *text,
		     const char *fname, char *err, size_t errlen)
{
	struct parse_ctx p = { .c = c, .fname = fname, .err = err,
			       .errlen = errlen };
	const char *pos = text;
	char buf[2048];
	int ret;

	while (*pos) {
		const char *nl = strchr(pos, '\n');
		size_t len = nl ? (size_t)(nl - pos) : strlen(pos);
		char *s;

		p.line++;
		if (len >= sizeof(buf)) {
			perr(&p, "line longer than %zu characters",
			     sizeof(buf) - 1);
			return -EINVAL;
		}
		memcpy(buf, pos, len);
		buf[len] = '\0';
		pos += len + (nl ? 1 : 0);
		cut_comment(buf);
		s = trim(buf);
		if (!*s)
			continue;
		ret = *s == '[' ? parse_section(&p, s) : parse_pair(&p, s);
		if (ret)
			return ret;
	}
	return 0;
}

static int read_file(const char *path, char **text, char *err, size_t errlen)
{
	struct stat sb;
	ssize_t n;
	char *buf;
	int fd, saverr;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) == 0 && S_ISCHR(sb.st_mode)) {
		close(fd); /* /dev/null: an empty configuration */
		*text = strdup("");
		return *text ? 0 : -ENOMEM;
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > CONF_FILE_MAX) {
		snprintf(err, errlen, "%s: not a regular file of at most %d "
			 "bytes", path, CONF_FILE_MAX);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)sb.st_size);
	saverr = errno;
	close(fd);
	if (n < 0) {
		free(buf);
		return -saverr;
	}
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n) {
		snprintf(err, errlen, "%s: contains a NUL byte", path);
		free(buf);
		return -EINVAL;
	}
	*text = buf;
	return 0;
}

int lockd_conf_load(struct lockd_conf *c, const char *path, bool must_exist,
		    char *err, size_t errlen)
{
	char *text = NULL;
	int ret;

	err[0] = '\0';
	ret = read_file(path, &text, err, errlen);
	if (ret == -ENOENT && !must_exist) {
		snprintf(err, errlen, "%s: not found, using the defaults",
			 path);
		return -ENOENT;
	}
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "cannot read %s: %s", path,
				 strerror(-ret));
		return ret == -ENOENT ? -EINVAL : ret;
	}
	ret = lockd_conf_parse(c, text, path, err, errlen);
	free(text);
	return ret;
}
