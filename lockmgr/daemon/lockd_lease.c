// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_lease.c - this node's lease, the heartbeats, the watchdog, and
 * the fencing of departed nodes (doc/design.md §2.4).
 *
 * Lease.  A heartbeat (LM_C_HEARTBEAT, seq) is multicast every
 * lease_timeout/8 (conf.h); its send time (CLOCK_MONOTONIC) is remembered
 * by seq.  When our own heartbeat is delivered back while the table is
 * ready and the quorum view is quorate for the same ring id as the CPG
 * totem ring, the lease is extended to send time + lease_timeout.  The
 * send time, not the delivery time, is what makes this safe: the
 * survivors measure from the delivery of our last heartbeat, which came
 * after its send.
 *
 * Fencing.  Each node's latest heartbeat delivery is recorded on our own
 * clock (nodes never heard from: when we first saw them absent, which is
 * never before our start).  X's lease cannot outlive that delivery by more
 * than lease_timeout of X's clock, so the fencer may fence X once
 *     now - delivery >= lease_timeout * (1 + drift) + margin
 * (+ watchdog_timeout when watchdogs are configured), and, if a fence
 * command is configured, after it exited 0 for X.
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
	ld->hb_next_ns = cv_now_ns();
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

/* ---- per-node records ---- */

static struct lockd_node_rec *rec_get(struct lockd *ld, uint32_t id)
{
	struct lockd_node_rec *r;

	for (unsigned i = 0; i < ld->n_nodes; i++)
		if (ld->nodes[i].id == id)
			return &ld->nodes[i];
	if (ld->n_nodes == sizeof(ld->nodes) / sizeof(ld->nodes[0]))
		return NULL;
	r = &ld->nodes[ld->n_nodes++];
	memset(r, 0, sizeof(*r));
	r->id = id;
	r->last_hb_ns = cv_now_ns(); /* conservative: not before now */
	r->fence_result = -1;
	return r;
}

void lockd_node_seen_absent(struct lockd *ld, uint32_t id)
{
	rec_get(ld, id);
}

int64_t lockd_heartbeat_age_ms(struct lockd *ld, uint32_t id)
{
	for (unsigned i = 0; i < ld->n_nodes; i++)
		if (ld->nodes[i].id == id && ld->nodes[i].hb_seen)
			return (int64_t)((cv_now_ns() -
					  ld->nodes[i].last_hb_ns) / NS_PER_MS);
	return -1;
}

/* ---- lease ---- */

void lockd_lease_end(struct lockd *ld, const char *why)
{
	if (!ld->lease_valid)
		return;
	ld->lease_valid = false;
	log_err("lease ended: %s; writes on this node stop until it is "
		"renewed", why);
	lockd_push_lease(ld, NULL);
	lockd_lease_lost_all(ld);
}

/*
 * A FENCING node's heartbeats neither extend its lease nor delay its
 * fence.  Race without this: X's lockd is restarted (or X flaps out and
 * back within the lease); X left holding files, so it is FENCING, and
 * rejoins at once.  If its new heartbeats pushed its fence back, the
 * fencer would wait for as long as X lives and X's files would stay
 * blocked forever; if they extended its lease, an old process of X could
 * keep writing past the fence.  Both sides read X's state from the
 * replicated table at the same point of the order, so X stops extending
 * exactly when the fencer stops counting: X's lease then cannot outlive
 * the last heartbeat the fencer counted by more than lease_timeout.
 */
static bool node_fencing(struct lockd *ld, uint32_t id)
{
	struct lm_node_entry e;

	return lm_state_node(ld->st, id, &e) == 0 &&
	       e.state == LM_NODE_FENCING;
}

static bool table_quorate(struct lockd *ld)
{
	struct lm_status_info si;

	lm_state_status(ld->st, &si);
	return si.quorate;
}

void lockd_node_wire(struct lockd *ld, uint32_t id, uint16_t *hb_version,
		     uint32_t *lease_ms)
{
	*hb_version = 0;
	*lease_ms = 0;
	for (unsigned i = 0; i < ld->n_nodes; i++) {
		if (ld->nodes[i].id == id) {
			*hb_version = ld->nodes[i].hb_version;
			*lease_ms = ld->nodes[i].hb_lease_ms;
		}
	}
}

/*
 * A message this node cannot read.  In a cluster that negotiated its
 * version this happens only around a round: messages a member sent at
 * the old version reach a newcomer that does not speak it (harmless, see
 * lockd_cpg.c), or a node too old or too new for the cluster sends
 * before it learns that it is kept out.  Said once per node and version.
 *
 * It may be a heartbeat that extended the sender's lease (a sender always
 * reads its own), so it counts as one for the fence timing: the fencer
 * then waits from a delivery at least as late as the sender's last
 * heartbeat, never from an earlier one.
 */
void lockd_undecodable(struct lockd *ld, uint32_t from, const uint8_t *buf,
		       size_t len, int err)
{
	struct lockd_node_rec *r = rec_get(ld, from);
	unsigned v = lm_msg_version(buf, len);

	if (r && !node_fencing(ld, from)) {
		r->last_hb_ns = cv_now_ns();
		r->hb_seen = true;
	}

	if (err == -EPROTONOSUPPORT) {
		if (r && r->bad_version == v)
			return;
		if (r)
			r->bad_version = (uint16_t)v;
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

/*
 * The fencer waits for a departed node's lease by its own lease_timeout:
 * a node whose lease is longer could still write when it is fenced.
 * Version 3 heartbeats carry the sender's lease, so this can be told.
 */
static void check_peer_lease(struct lockd *ld, struct lockd_node_rec *r,
			     const struct lm_c_heartbeat *hb)
{
	r->hb_lease_ms = hb->lease_timeout_ms;
	if (r->lease_warned || hb->lease_timeout_ms <=
	    ld->conf.lease_timeout_ms)
		return;
	r->lease_warned = true;
	log_warn("node %u's lease is %u ms, longer than this node's %u ms: "
		 "a fence by this node could come before its lease ends; set "
		 "the same lease_timeout_ms on every node", r->id,
		 hb->lease_timeout_ms, ld->conf.lease_timeout_ms);
}

void lockd_heartbeat_delivered(struct lockd *ld, uint32_t from,
			       const struct lm_cmsg *m)
{
	uint64_t now = cv_now_ns(), deadline, seq = m->u.heartbeat.seq;
	struct lockd_node_rec *r = rec_get(ld, from);
	bool fencing = node_fencing(ld, from);

	if (r && !fencing) {
		r->last_hb_ns = now;
		r->hb_seen = true;
	}
	if (r) {
		r->hb_version = m->version;
		r->hb_lease_ms = 0;
		if (m->version >= 3)
			check_peer_lease(ld, r, &m->u.heartbeat);
	}
	if (from != ld->our_id || seq == 0 || seq > ld->hb_seq ||
	    ld->hb_seq - seq >= LOCKD_HB_SLOTS)
		return;
	/*
	 * The lease proves membership of the quorate partition, which a
	 * state transfer does not change: it is extended while the table
	 * syncs too.  Otherwise a node that flaps in and out makes every
	 * member resync at each rejoin, and the survivors' leases ran out
	 * between the transfers and the ring re-formations.  A node that
	 * merges back from a minority lost its lease and every ownership
	 * when it lost quorum; a valid lease gives it nothing to write
	 * until new grants, which need the transfer done.
	 */
	if (!table_quorate(ld) || !lockd_tp_quorate(ld) || fencing)
		return;
	deadline = ld->hb_send_ns[seq % LOCKD_HB_SLOTS] +
		   ld->conf.lease_timeout_ms * NS_PER_MS;
	if (deadline <= now)
		return; /* delivered too late to be of use */
	if (ld->lease_valid && deadline <= ld->lease_deadline_ns)
		return;
	if (!ld->lease_valid)
		log_notice("lease valid (heartbeat %llu delivered after %llu "
			   "ms)", (unsigned long long)seq,
			   (unsigned long long)((now - ld->hb_send_ns[seq %
				LOCKD_HB_SLOTS]) / NS_PER_MS));
	ld->lease_valid = true;
	ld->lease_deadline_ns = deadline;
	lockd_push_lease(ld, NULL);
	wd_keepalive(ld, now);
}

static void heartbeat_send(struct lockd *ld, uint64_t now)
{
	struct lm_cmsg m = { .type = LM_C_HEARTBEAT };
	uint64_t period_ms;

	m.u.heartbeat.seq = ++ld->hb_seq;
	/* travels only at version 3 and later (lm_proto.h) */
	m.u.heartbeat.lease_timeout_ms = ld->conf.lease_timeout_ms;
	ld->hb_send_ns[ld->hb_seq % LOCKD_HB_SLOTS] = now;
	lockd_send(ld, &m);
	period_ms = lockd_conf_heartbeat_ms(ld->conf.lease_timeout_ms);
	ld->hb_next_ns = now + period_ms * NS_PER_MS;
}

/* ---- fencing ---- */

static struct lockd_node_rec *rec_by_pid(struct lockd *ld, pid_t pid)
{
	for (unsigned i = 0; i < ld->n_nodes; i++)
		if (ld->nodes[i].fence_pid == pid)
			return &ld->nodes[i];
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

/* fork/exec the fence command for a node; never waits. */
static void fence_cmd_start(struct lockd *ld, struct lockd_node_rec *r)
{
	char name[LM_NAME_MAX], script[LOCKD_CMD_MAX + 16];
	sigset_t all;
	pid_t pid;

	node_name(ld, r->id, name, sizeof(name));
	snprintf(script, sizeof(script), "%s \"$1\"", ld->conf.fence_command);
	pid = fork();
	if (pid < 0) {
		log_err("node %s: cannot fork the fence command: %s; retrying "
			"in %d ms", name, strerror(errno),
			LOCKD_FENCE_RETRY_MS);
		r->fence_failed_ns = cv_now_ns();
		r->fence_result = 1;
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
	r->fence_pid = pid;
	r->fence_started_ns = cv_now_ns();
	r->fence_result = -1;
	log_notice("node %s: running fence command \"%s %s\" (pid %d, "
		   "timeout %u ms)", name, ld->conf.fence_command, name,
		   (int)pid, ld->conf.fence_command_timeout_ms);
}

void lockd_fence_child_exited(struct lockd *ld)
{
	struct lockd_node_rec *r;
	char name[LM_NAME_MAX];
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		r = rec_by_pid(ld, pid);
		if (!r)
			continue;
		r->fence_pid = 0;
		node_name(ld, r->id, name, sizeof(name));
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			r->fence_result = 0;
			log_notice("node %s: fence command confirmed the fence "
				   "after %llu ms", name, (unsigned long long)
				   ((cv_now_ns() - r->fence_started_ns) /
				    NS_PER_MS));
			continue;
		}
		r->fence_result = WIFEXITED(status) ? WEXITSTATUS(status) :
				  128 + WTERMSIG(status);
		r->fence_failed_ns = cv_now_ns();
		log_err("node %s: fence command failed (%s %d); its files stay "
			"blocked; retrying in %d ms - check the fence agent",
			name, WIFEXITED(status) ? "exit status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) :
			WTERMSIG(status), LOCKD_FENCE_RETRY_MS);
	}
}

void lockd_fenced(struct lockd *ld, uint32_t id)
{
	struct lockd_node_rec *r = rec_get(ld, id);
	char name[LM_NAME_MAX];

	node_name(ld, id, name, sizeof(name));
	log_notice("node %s (id %u) fenced: its files may be granted again",
		   name, id);
	if (!r)
		return;
	r->fence_sent_ns = 0;
	r->fence_result = -1;
	if (r->fence_pid > 0)
		kill(-r->fence_pid, SIGKILL);
}

/* True once the fence command (if any) confirmed X's fence. */
static bool fence_cmd_ok(struct lockd *ld, struct lockd_node_rec *r,
			 uint64_t now)
{
	uint64_t timeout = ld->conf.fence_command_timeout_ms * NS_PER_MS;

	if (!ld->conf.fence_command[0] || r->fence_result == 0)
		return true;
	if (r->fence_pid > 0) {
		if (now - r->fence_started_ns >= timeout) {
			log_err("node %u: fence command timed out after %u ms; "
				"killing it", r->id,
				ld->conf.fence_command_timeout_ms);
			kill(-r->fence_pid, SIGKILL);
		}
		return false;
	}
	if (r->fence_result > 0 &&
	    now - r->fence_failed_ns < LOCKD_FENCE_RETRY_MS * NS_PER_MS)
		return false;
	fence_cmd_start(ld, r);
	return false;
}

static void fence_one(struct lockd *ld, uint32_t id, uint64_t now)
{
	struct lockd_node_rec *r = rec_get(ld, id);
	uint64_t need = lockd_conf_fence_wait_ms(&ld->conf), waited;
	uint64_t resend = ld->conf.lease_timeout_ms * NS_PER_MS / 2;
	struct lm_cmsg m = { .type = LM_C_FENCE };
	char name[LM_NAME_MAX];

	if (!r)
		return;
	waited = (now - r->last_hb_ns) / NS_PER_MS;
	if (waited < need)
		return;
	if (!fence_cmd_ok(ld, r, now))
		return;
	/*
	 * A FENCE delivered while the table is not ready is ignored
	 * (lm_state.h); under ring churn that can happen to every copy.
	 * Send again at once when a new ready period began since.
	 */
	if (r->fence_sent_ns && r->fence_sent_gen == ld->ready_gen &&
	    now - r->fence_sent_ns < resend)
		return;
	node_name(ld, id, name, sizeof(name));
	log_notice("fencing node %s (id %u): %s %llu ms ago >= %llu ms "
		   "(lease %u ms, drift %u ppm, margin %u ms, watchdog %u "
		   "ms)%s", name, id, r->hb_seen ? "last heartbeat" :
		   "absent since", (unsigned long long)waited,
		   (unsigned long long)need, ld->conf.lease_timeout_ms,
		   ld->conf.clock_drift_ppm, ld->conf.fence_margin_ms,
		   ld->conf.watchdog_device[0] ?
		   ld->conf.watchdog_timeout_ms : 0,
		   ld->conf.fence_command[0] ? ", fence command confirmed" :
		   "");
	m.u.fence.target = id;
	lockd_send(ld, &m);
	r->fence_sent_ns = now;
	r->fence_sent_gen = ld->ready_gen;
}

static void fence_check(struct lockd *ld, uint64_t now)
{
	uint32_t ids[2 * LM_MAX_NODES];
	size_t n;

	if (!ld->ready || lm_state_fencer(ld->st) != ld->our_id)
		return;
	n = lm_state_fence_pending(ld->st, ids, 2 * LM_MAX_NODES);
	if (n > 2 * LM_MAX_NODES)
		n = 2 * LM_MAX_NODES;
	for (size_t i = 0; i < n; i++)
		if (ids[i] != ld->our_id)
			fence_one(ld, ids[i], now);
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
}

void lockd_lease_heartbeat_now(struct lockd *ld)
{
	ld->hb_next_ns = cv_now_ns();
}

void lockd_lease_tick(struct lockd *ld, uint64_t now)
{
	if (now >= ld->hb_next_ns)
		heartbeat_send(ld, now);
	if (ld->lease_valid && now >= ld->lease_deadline_ns)
		lockd_lease_end(ld, "no heartbeat of this node was delivered "
				"in a quorate ring in time");
	if (ld->lease_valid)
		wd_keepalive(ld, now);
	fence_check(ld, now);
}
