// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * log.c - logging to stderr or syslog, plus an in-memory debug ring.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"

#define RING_SIZE (256 * 1024)

static struct {
	pthread_mutex_t lock; /* protects everything below */
	bool to_stderr;
	int level;
	char ident[32];
	char ring[RING_SIZE];
	size_t ring_pos;  /* next byte to write */
	bool ring_full;
} lg = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.to_stderr = true,
	.level = LOG_NOTICE,
	.ident = "csvfs",
};

void cv_log_init(const char *ident, bool to_stderr, int level)
{
	pthread_mutex_lock(&lg.lock);
	snprintf(lg.ident, sizeof(lg.ident), "%s", ident);
	lg.to_stderr = to_stderr;
	lg.level = level;
	pthread_mutex_unlock(&lg.lock);
	if (!to_stderr)
		openlog(lg.ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void cv_log_set_level(int level)
{
	pthread_mutex_lock(&lg.lock);
	lg.level = level;
	pthread_mutex_unlock(&lg.lock);
}

int cv_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
		{ "err", LOG_ERR },	    { "error", LOG_ERR },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "notice", LOG_NOTICE },   { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcasecmp(name, names[i].name) == 0)
			return names[i].level;
	return -1;
}

static const char *level_tag(int level)
{
	switch (level) {
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* Append one line to the ring; called with lg.lock held. */
static void ring_append(const char *line, size_t len)
{
	while (len > 0) {
		size_t room = RING_SIZE - lg.ring_pos;
		size_t n = len < room ? len : room;

		memcpy(lg.ring + lg.ring_pos, line, n);
		lg.ring_pos += n;
		line += n;
		len -= n;
		if (lg.ring_pos == RING_SIZE) {
			lg.ring_pos = 0;
			lg.ring_full = true;
		}
	}
}

void cv_vlog(int level, const char *fmt, va_list ap)
{
	char msg[1024];
	char line[1100];
	char stamp[32];
	struct timespec ts;
	struct tm tm;
	int n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
	n = snprintf(line, sizeof(line), "%s.%03ld %s %s: %s\n", stamp,
		     ts.tv_nsec / 1000000, lg.ident, level_tag(level), msg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;

	pthread_mutex_lock(&lg.lock);
	ring_append(line, (size_t)n);
	if (level <= lg.level) {
		if (lg.to_stderr)
			fputs(line, stderr);
		else
			syslog(level, "%s", msg);
	}
	pthread_mutex_unlock(&lg.lock);
}

void cv_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	cv_vlog(level, fmt, ap);
	va_end(ap);
}

size_t cv_log_ring_size(void)
{
	return RING_SIZE;
}

size_t cv_log_ring_read(char *buf, size_t cap)
{
	size_t out = 0;

	pthread_mutex_lock(&lg.lock);
	if (lg.ring_full) {
		/* The oldest line was partly overwritten: start after it. */
		size_t at = lg.ring_pos, n;
		const char *nl = memchr(lg.ring + at, '\n', RING_SIZE - at);

		at = nl ? (size_t)(nl - lg.ring) + 1 : RING_SIZE;
		n = RING_SIZE - at;
		if (n > cap)
			n = cap;
		memcpy(buf, lg.ring + at, n);
		out = n;
	}
	if (out < cap) {
		size_t n = lg.ring_pos < cap - out ? lg.ring_pos : cap - out;

		memcpy(buf + out, lg.ring, n);
		out += n;
	}
	pthread_mutex_unlock(&lg.lock);
	return out;
}
