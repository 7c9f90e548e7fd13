// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_lease.c - this node's lease, the heartbeats, the watchdog, and
 * the fencing of departed nodes (doc/design.md §2.4): the shell part.
 *
 * When the lease is extended or ends, and when the fencer may fence a
 * departed node, is decided by lm_node.c (see its top comment: a
 * heartbeat's send time + lease_timeout; the fencer's wait of
 *     lease_timeout * (1 + drift) + margin (+ watchdog_timeout)
 * after X's last heartbeat delivery, and a confirmed fence command).
 * What stays here is what needs the system: the watchdog device, the
 * fence command's process, and deriving lease_timeout_ms from corosync.
 *
 * Watchdog.  The device is opened when the lease first becomes valid and
 * is kept alive only while the lease is valid: a node whose lockd hangs or
 * whose lease ends for longer than the watchdog timeout resets itself.
 * A clean shutdown disarms it with the magic close ('V').
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/watchdog.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lockd.h"
#include "log.h"

#define NS_PER_MS 1000000ull
#define WD_KEEPALIVE_NS (500 * NS_PER_MS)

static uint64_t wd_last_ns;
/* The device is a stand-in (tests only): keepalives are written, no
 * ioctls.  Allowed only with CSVFS_LOCKD_WATCHDOG_STANDIN=1 in the
 * environment: a regular file or fifo resets nothing. */
static bool wd_standin;

int lockd_lease_init(struct lockd *ld, char *err, size_t errlen)
{
	const char *wd = ld->conf.watchdog_device;

	ld->wd_fd = -1;
	if (wd[0] && access(wd, W_OK) < 0) {
		snprintf(err, errlen, "watchdog_device %s: %s; load a watchdog "
			 "driver (e.g. softdog) or remove the key", wd,
			 strerror(errno));
		return -errno;
	}
	return 0;
}

static int wd_open(struct lockd *ld)
{
	const char *dev = ld->conf.watchdog_device;
	int secs = (int)(ld->conf.watchdog_timeout_ms / 1000), got = 0;

	struct stat sb;

	ld->wd_fd = open(dev, O_WRONLY | O_CLOEXEC);
	if (ld->wd_fd < 0)
		return -errno;
	if (fstat(ld->wd_fd, &sb) == 0 && !S_ISCHR(sb.st_mode)) {
		const char *e = getenv("CSVFS_LOCKD_WATCHDOG_STANDIN");

		if (!e || strcmp(e, "1")) {
			log_err("watchdog %s is not a character device", dev);
			return -ENOTTY;
		}
		wd_standin = true;
		log_warn("watchdog %s is a stand-in (test only): it resets "
			 "nothing, the survivors' wait protects no data", dev);
		return 0;
	}
	if (secs < 1)
		secs = 1;
	/* the device must fire within watchdog_timeout_ms: the survivors
	 * wait no longer than that */
	if (ioctl(ld->wd_fd, WDIOC_SETTIMEOUT, &secs) < 0 ||
	    ioctl(ld->wd_fd, WDIOC_GETTIMEOUT, &got) < 0 ||
	    (uint64_t)got * 1000 > ld->conf.watchdog_timeout_ms) {
		log_err("watchdog %s: cannot set a timeout of at most %u ms "
			"(device has %d s); set watchdog_timeout_ms to a whole "
			"number of seconds the device supports", dev,
			ld->conf.watchdog_timeout_ms, got);
		return -EINVAL;
	}
	log_notice("watchdog %s armed, timeout %d s", dev, got);
	return 0;
}

static void wd_keepalive(struct lockd *ld, uint64_t now)
{
	int dummy = 0;

	if (!ld->conf.watchdog_device[0])
		return;
	if (ld->wd_fd < 0) {
		int ret = wd_open(ld);

		if (ret) {
			log_err("watchdog %s: cannot arm it: %s",
				ld->conf.watchdog_device, strerror(-ret));
			lockd_fatal(ld, "the configured watchdog cannot be "
				    "used");
			return;
		}
	}
	if (now - wd_last_ns < WD_KEEPALIVE_NS)
		return;
	if (wd_standin) {
		if (write(ld->wd_fd, "k", 1) != 1)
			log_warn("watchdog keepalive failed: %s",
				 strerror(errno));
	} else if (ioctl(ld->wd_fd, WDIOC_KEEPALIVE, &dummy) < 0) {
		log_warn("watchdog keepalive failed: %s", strerror(errno));
	}
	wd_last_ns = now;
}

void lockd_lease_fini(struct lockd *ld, bool clean)
{
	ssize_t n;

	if (ld->wd_fd < 0)
		return;
	if (clean) {
		n = write(ld->wd_fd, "V", 1); /* magic close: disarm */
		if (n != 1)
			log_warn("watchdog: magic close failed: the node may "
				 "reset");
	} else {
		log_warn("watchdog left armed: this node resets unless a "
			 "new csvfs-lockd takes it over in time");
	}
	close(ld->wd_fd);
	ld->wd_fd = -1;
}

/* ---- lease ---- */

static uint64_t now_ns(void)
{
	return cv_now_ns();
}

void lockd_lease_confchg(struct lockd *ld, const struct lm_confchg *cc)
{
	lm_node_confchg(ld->node, cc, now_ns());
}

int64_t lockd_heartbeat_age_ms(struct lockd *ld, uint32_t id)
{
	return lm_node_heartbeat_age_ms(ld->node, id, now_ns());
}

void lockd_node_wire(struct lockd *ld, uint32_t id, uint16_t *hb_version,
		     uint32_t *lease_ms)
{
	lm_node_peer_wire(ld->node, id, hb_version, lease_ms);
}

void lockd_lease_end(struct lockd *ld, const char *why)
{
	lm_node_lease_end(ld->node, why, &ld->acts);
	lockd_node_run(ld);
}

void lockd_lease_extended(struct lockd *ld, uint64_t now)
{
	wd_keepalive(ld, now);
}

/*
 * A message this node cannot read.  In a cluster that negotiated its
 * version this happens only around a round: messages a member sent at
 * the old version reach a newcomer that does not speak it (harmless, see
 * lockd_cpg.c), or a node too old or too new for the cluster sends
 * before it learns that it is kept out.  Said once per node and version.
 * lm_node counts it as a heartbeat for the fence timing (it may have
 * been one that extended the sender's lease).
 */
void lockd_undecodable(struct lockd *ld, uint32_t from, const uint8_t *buf,
		       size_t len, int err)
{
	unsigned v = lm_msg_version(buf, len);
	bool first = lm_node_undecodable(ld->node, from, (uint16_t)v,
					 now_ns());

	if (err == -EPROTONOSUPPORT) {
		if (!first)
			return;
		log_notice("node %u sent a cluster message at protocol version "
			   "%u, which this node (%u..%u) does not speak; "
			   "dropped%s", from, v, LM_PROTO_VERSION_MIN,
			   LM_PROTO_VERSION_MAX, v < LM_PROTO_FROZEN ?
			   ": that node runs a csvfs-lockd from before version "
			   "negotiation, upgrade it" : "");
		return;
	}
	log_warn("dropped an undecodable cluster message from node %u (%zu "
		 "bytes, version %u): %s", from, len, v, strerror(-err));
}

void lockd_heartbeat_delivered(struct lockd *ld, uint32_t from,
			       const struct lm_cmsg *m)
{
	lm_node_heartbeat(ld->node, from, m, lockd_tp_quorate(ld), now_ns(),
			  &ld->acts);
	lockd_node_run(ld);
}

/* ---- fencing ---- */

/* The running fence command for node id, or (id 0) the one with pid;
 * pid 0 and id 0: a free slot. */
static struct lockd_fence_child *child_of(struct lockd *ld, uint32_t id,
					  pid_t pid)
{
	for (unsigned i = 0; i < 2 * LM_MAX_NODES; i++) {
		struct lockd_fence_child *f = &ld->fence_children[i];

		if (id ? f->pid && f->id == id : f->pid == pid)
			return f;
	}
	return NULL;
}

static void node_name(struct lockd *ld, uint32_t id, char *buf, size_t len)
{
	struct lm_node_entry e;

	if (lm_state_node(ld->st, id, &e) == 0 && e.name[0])
		snprintf(buf, len, "%s", e.name);
	else
		snprintf(buf, len, "%u", id);
}

/* fork/exec the fence command for a node; never waits.  The slot for its
 * pid is found before the fork: a node has one command at a time. */
static void fence_cmd_start(struct lockd *ld, uint32_t id)
{
	char name[LM_NAME_MAX], script[LOCKD_CMD_MAX + 16];
	struct lockd_fence_child *f = child_of(ld, 0, 0);
	sigset_t all;
	pid_t pid;

	node_name(ld, id, name, sizeof(name));
	snprintf(script, sizeof(script), "%s \"$1\"", ld->conf.fence_command);
	pid = f ? fork() : -1;
	if (pid < 0) {
		log_err("node %s: cannot fork the fence command: %s; retrying "
			"in %d ms", name, f ? strerror(errno) :
			"too many running", LOCKD_FENCE_RETRY_MS);
		lm_node_fence_cmd_done(ld->node, id, 1, now_ns(), &ld->acts);
		return;
	}
	if (pid == 0) {
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		setpgid(0, 0);
		for (int fd = 3; fd < 1024; fd++)
			close(fd);
		execl("/bin/sh", "sh", "-c", script, "csvfs-fence", name,
		      (char *)NULL);
		_exit(127);
	}
	f->id = id;
	f->pid = pid;
	f->started_ns = now_ns();
	log_notice("node %s: running fence command \"%s %s\" (pid %d, "
		   "timeout %u ms)", name, ld->conf.fence_command, name,
		   (int)pid, ld->conf.fence_command_timeout_ms);
}

void lockd_fence_act(struct lockd *ld, const struct lm_node_act *a)
{
	struct lockd_fence_child *f;

	if (a->type == LM_NA_FENCE_CMD) {
		fence_cmd_start(ld, a->node);
		return;
	}
	f = child_of(ld, a->node, 0);
	if (f)
		kill(-f->pid, SIGKILL);
}

void lockd_fence_child_exited(struct lockd *ld)
{
	struct lockd_fence_child *f;
	char name[LM_NAME_MAX];
	int status, result;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		f = child_of(ld, 0, pid);
		if (!f)
			continue;
		f->pid = 0;
		result = WIFEXITED(status) ? WEXITSTATUS(status) :
			 128 + WTERMSIG(status);
		node_name(ld, f->id, name, sizeof(name));
		if (WIFSIGNALED(status))
			log_info("node %s: fence command (pid %d) killed by "
				 "signal %d", name, (int)pid, WTERMSIG(status));
		lm_node_fence_cmd_done(ld->node, f->id, result, now_ns(),
				       &ld->acts);
	}
	lockd_node_run(ld);
}

/* What lm_node decides with, from the configuration. */
static void node_configure(struct lockd *ld)
{
	const struct lockd_conf *c = &ld->conf;
	struct lm_node_conf nc = {
		.self = ld->our_id,
		.lease_ms = c->lease_timeout_ms,
		.heartbeat_ms = lockd_conf_heartbeat_ms(c->lease_timeout_ms),
		.drift_ppm = c->clock_drift_ppm,
		.margin_ms = c->fence_margin_ms,
		.watchdog_ms = c->watchdog_device[0] ? c->watchdog_timeout_ms :
			       0,
		.fence_command = c->fence_command[0] != 0,
		.two_node = ld->two_node_no_qdevice,
		.fence_command_timeout_ms = c->fence_command_timeout_ms,
		.fence_retry_ms = LOCKD_FENCE_RETRY_MS,
		.revoke_timeout_ms = c->revoke_timeout_ms,
		.handoff_idle_ms = c->handoff_idle_ms,
		.sync_chunk = LM_SYNC_CHUNK,
	};

	lm_node_configure(ld->node, &nc);
}

/*
 * A node extends its lease only through heartbeats delivered in a quorate
 * ring, and while corosync detects a failure and forms a new ring nothing
 * is delivered.  A lease shorter than that pause plus one heartbeat period
 * would end on every survivor at every node failure, poisoning every VM
 * disk of the cluster (lockd_conf_lease_min_ms).  An unset
 * lease_timeout_ms is derived from corosync's timeouts; a configured one
 * that is too short is kept but warned about.
 */
void lockd_lease_resolve(struct lockd *ld, uint32_t detection_ms)
{
	uint32_t *lease = &ld->conf.lease_timeout_ms;
	uint32_t need =
		detection_ms ? lockd_conf_lease_min_ms(detection_ms) : 0;

	if (*lease == 0) {
		*lease = lockd_conf_lease_derive(detection_ms);
		if (detection_ms)
			log_notice("lease_timeout_ms = %u (derived from "
				   "corosync's failure detection time of %u "
				   "ms)", *lease, detection_ms);
		else
			log_notice("lease_timeout_ms = %u (default)", *lease);
	} else if (*lease < need) {
		log_warn("lease_timeout_ms = %u is shorter than corosync's "
			 "failure detection time (%u ms: token + consensus) "
			 "plus a heartbeat period: every node failure will end "
			 "the leases of the survivors too and fail their VM "
			 "disks' writes; set it to at least %u or lower "
			 "corosync's token timeout", *lease, detection_ms,
			 need);
	}
	node_configure(ld);
}

void lockd_lease_heartbeat_now(struct lockd *ld)
{
	lm_node_heartbeat_now(ld->node, now_ns());
}

void lockd_lease_tick(struct lockd *ld, uint64_t now)
{
	lm_node_lease_tick(ld->node, now, &ld->acts);
	lockd_node_run(ld);
	if (ld->lease_valid)
		wd_keepalive(ld, now);
}
