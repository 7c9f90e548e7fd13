/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * conf.h - the configuration of csvfs-lockd (/etc/csvfs/csvfs.conf).
 *
 * The file is made of "[section]" headers and "key = value" lines; "#"
 * starts a comment (at the start of a line, or after whitespace).  Every
 * key has a default (lockd_conf_defaults), documented in csvfs.conf(5).
 * An unknown section or key, a duplicate key or a value out of range is an
 * error naming file:line: the daemon never starts with a configuration it
 * does not fully understand.
 *
 * The parser does no I/O besides reading the file, and resolves nothing
 * (group names, corosync node names): lockd.c does that after parsing.
 */
#ifndef CSVFS_CONF_H
#define CSVFS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lm_proto.h"

#define LOCKD_DEFAULT_CONF CSVFS_SYSCONFDIR "/csvfs/csvfs.conf"
#define LOCKD_CONF_ENV "CSVFS_CONF"
#define LOCKD_NODE_ENV "CSVFS_NODE"
#define LOCKD_DEFAULT_STATE_DIR "/var/lib/csvfs"
#define LOCKD_STATE_DIR_ENV "CSVFS_LOCKD_STATE_DIR"

#define LOCKD_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define LOCKD_CMD_MAX 1024
#define LOCKD_DIR_MAX 256 /* state_dir */

enum lockd_transport {
	LOCKD_TRANSPORT_COROSYNC = 1, /* values as lm_s_r_status.transport */
	LOCKD_TRANSPORT_STANDALONE = 2,
};

struct lockd_conf {
	/* [cluster] */
	enum lockd_transport transport;
	char node[LM_NAME_MAX];	      /* "" = ask corosync, else host name */
	char cluster_name[LM_NAME_MAX]; /* "" = corosync's, else "csvfs" */
	char socket[LOCKD_PATH_MAX];
	char socket_group[LM_NAME_MAX]; /* "" = root only */
	char state_dir[LOCKD_DIR_MAX];  /* epoch high-water mark */
	uint32_t lease_timeout_ms;
	uint32_t clock_drift_ppm;
	uint32_t fence_margin_ms;
	char fence_command[LOCKD_CMD_MAX]; /* "" = none */
	uint32_t fence_command_timeout_ms;
	char watchdog_device[LOCKD_PATH_MAX]; /* "" = none */
	uint32_t watchdog_timeout_ms;
	uint32_t revoke_timeout_ms;
	uint32_t handoff_idle_ms;
	uint32_t shutdown_timeout_ms;
	/* [log] */
	int log_level; /* LOG_ERR .. LOG_DEBUG */
};

/* Fill every field with its documented default. */
void lockd_conf_defaults(struct lockd_conf *c);

/*
 * Parse text (NUL-terminated) on top of the values already in c; fname
 * names the source in error messages.  Returns 0, or -EINVAL with a
 * one-line "fname:line: what is wrong" in err.
 */
int lockd_conf_parse(struct lockd_conf *c, const char *text,
		     const char *fname, char *err, size_t errlen);

/*
 * Read and parse path.  A missing file is an error only if must_exist
 * (a path given by option or environment); otherwise the defaults stay.
 * Returns 0, -ENOENT (missing, not required: err says so), or -errno /
 * -EINVAL with err filled.
 */
int lockd_conf_load(struct lockd_conf *c, const char *path, bool must_exist,
		    char *err, size_t errlen);

/* Time a survivor waits after a node's last heartbeat before fencing it:
 * lease * (1 + drift) + margin (+ watchdog timeout with a watchdog). */
uint64_t lockd_conf_fence_wait_ms(const struct lockd_conf *c);

/*
 * Heartbeats are multicast every lease / LOCKD_HB_PER_LEASE.  A node's
 * lease runs from the send time of its last heartbeat delivered in a
 * quorate ring, so a pause in deliveries of up to
 *     lease * (1 - 1 / LOCKD_HB_PER_LEASE)
 * (corosync detecting a lost node and forming a new ring; a merge that
 * fails half-way) costs the survivors nothing.  A period of an eighth
 * leaves seven eighths of the lease to ride such pauses out for one small
 * message per node every lease/8.
 */
#define LOCKD_HB_PER_LEASE 8

/* The heartbeat period of a lease, in ms (at least 1). */
uint32_t lockd_conf_heartbeat_ms(uint32_t lease_ms);

/*
 * The shortest lease that rides out corosync's failure detection and
 * ring forming (detection_ms: token + consensus as corosync computes them)
 * plus LOCKD_LEASE_SLACK_MS, with one heartbeat period on top: a lease
 * shorter than this ends on every survivor at every node failure.
 */
#define LOCKD_LEASE_SLACK_MS 750
uint32_t lockd_conf_lease_min_ms(uint32_t detection_ms);

/*
 * The lease lockd uses when lease_timeout_ms is unset: the minimum above
 * (at least LOCKD_LEASE_MIN_AUTO_MS), rounded up to 100 ms; without
 * corosync (detection_ms 0, standalone) LOCKD_LEASE_STANDALONE_MS.
 */
#define LOCKD_LEASE_MIN_AUTO_MS	  2000
#define LOCKD_LEASE_STANDALONE_MS 4000
uint32_t lockd_conf_lease_derive(uint32_t detection_ms);

const char *lockd_transport_name(enum lockd_transport t);

#endif /* CSVFS_CONF_H */
