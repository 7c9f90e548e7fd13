/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h - one logging function for csvfs daemons and tools.
 *
 * Level policy:
 *   ERR     something failed that an operator must act on (lost quorum,
 *           fenced, backend gone, write refused past the lease);
 *   WARNING an unusual event handled automatically (peer left, retry);
 *   NOTICE  state changes an operator wants in the journal (membership,
 *           grants moving by hand-off, drain, fence done);
 *   INFO    per-operation facts useful when reading a timeline (grants,
 *           releases, client connects);
 *   DEBUG   everything else; always kept in the in-memory ring buffer even
 *           when not printed, so `csvfs-admin` can dump recent history.
 *
 * Messages go to stderr (foreground) or syslog, prefixed by the thin
 * context macros below so that grep by file id or node works.
 */
#ifndef CSVFS_LOG_H
#define CSVFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

void cv_log_init(const char *ident, bool to_stderr, int level);
void cv_log_set_level(int level);
int cv_log_level_parse(const char *name); /* "debug".. or -1 */
void cv_log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void cv_vlog(int level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Copy the debug ring (whole lines, oldest first, every level) into buf;
 * returns the bytes written.  csvfs-admin log shows lockd's. */
size_t cv_log_ring_size(void);
size_t cv_log_ring_read(char *buf, size_t cap);

#define log_err(...) cv_log(LOG_ERR, __VA_ARGS__)
#define log_warn(...) cv_log(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) cv_log(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) cv_log(LOG_INFO, __VA_ARGS__)
#define log_debug(...) cv_log(LOG_DEBUG, __VA_ARGS__)

/* Context: a resource (file id) and a node. */
#define log_res(level, fileid, fmt, ...) \
	cv_log(level, "file %llu: " fmt, (unsigned long long)(fileid), \
	       ##__VA_ARGS__)
#define log_node(level, id, fmt, ...) \
	cv_log(level, "node %u: " fmt, (unsigned)(id), ##__VA_ARGS__)

#endif /* CSVFS_LOG_H */
