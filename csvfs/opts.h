/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * opts.h - command line of the csvfs daemon:
 *
 *	csvfs SOURCE MOUNTPOINT [-f] [-d] [-o opt[,opt...]]
 *
 * Pure parsing (no I/O), so that it is unit-tested on its own.  csvfs's
 * own options are taken out; the FUSE and generic mount options on a
 * whitelist are collected, in order, into fuse_opts for the FUSE session.
 * Anything else is an error: a typo must never silently mount with
 * defaults.
 */
#ifndef CSVFS_OPTS_H
#define CSVFS_OPTS_H

#include <stdbool.h>
#include <stddef.h>

/* uring=: the transport of FUSE requests (fuse_uring.h). */
enum cv_uring_mode {
	CV_URING_OFF = 0, /* /dev/fuse only */
	CV_URING_AUTO,	  /* io_uring when the kernel offers it (default) */
	CV_URING_ON,	  /* the same, and say so loudly when it does not */
};

enum cv_cache_mode {
	CV_CACHE_DIRECT = 0, /* no page cache: VM images, many nodes */
	CV_CACHE_AUTO = 1,   /* page cache, dropped on ownership changes */
};

#define CV_OPTS_FUSE_MAX 1024

struct cv_opts {
	const char *source;	/* argv string */
	const char *mountpoint; /* argv string */
	bool foreground;
	bool debug;
	bool help;
	bool version;
	bool read_only;
	char lockd[256];	/* socket path, or "none" */
	char node[64];		/* expected node name, "" = any */
	char label[64];		/* label for a new volume */
	enum cv_cache_mode cache;
	double attr_timeout;	/* seconds */
	double entry_timeout;	/* seconds */
	unsigned idle_release_ms;
	unsigned acquire_timeout_ms; /* wait for write ownership, then EIO */
	unsigned max_threads;
	bool aio;		/* direct I/O through io_uring (aio=on) */
	enum cv_uring_mode uring; /* FUSE requests over io_uring */
	char fuse_opts[CV_OPTS_FUSE_MAX]; /* comma list for libfuse */
};

/*
 * Returns 0, or 2 (usage error, message in err).  argv is not modified;
 * o keeps pointers into it.
 */
int cv_opts_parse(int argc, char *const argv[], struct cv_opts *o,
		  char *err, size_t errlen);

/* Whether lockd was disabled (lockd=none: single host, no cluster). */
bool cv_opts_no_lockd(const struct cv_opts *o);

#endif /* CSVFS_OPTS_H */
