// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd.c - csvfs-lockd main: options, configuration, daemon set-up, the
 * epoll loop, signals, and the one place where cluster inputs are applied
 * to the replicated lock table (lockd_deliver, lockd_confchg) and its
 * events handed to the router (lockd_res.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lockd.h"
#include "lockd_epoch.h"
#include "log.h"

static const struct option long_opts[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "config", required_argument, NULL, 'c' },
	{ "standalone", no_argument, NULL, 'S' },
	{ "socket", required_argument, NULL, 's' },
	{ "state-dir", required_argument, NULL, 'd' },
	{ "node", required_argument, NULL, 'n' },
	{ "log-level", required_argument, NULL, 'l' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

struct lockd_opts {
	bool foreground;
	bool standalone;
	const char *conf;
	const char *socket;
	const char *state_dir;
	const char *node;
	int log_level; /* -1: from the configuration */
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: csvfs-lockd [-f] [-c FILE] [--standalone] [--socket PATH]\n"
		"                   [--state-dir DIR] [--node NAME]\n"
		"                   [--log-level LEVEL]\n"
		"  -f, --foreground   stay in the foreground, log to stderr\n"
		"  -c, --config FILE  configuration (default %s, or $%s)\n"
		"  --standalone       single node, no corosync\n"
		"  --socket PATH      client socket (default from the "
		"configuration, or $%s)\n"
		"  --state-dir DIR    epoch high-water mark (default from the "
		"configuration, or $%s)\n"
		"  --node NAME        this node's name (or $%s)\n"
		"  --log-level LEVEL  error, warning, notice, info or debug\n",
		LOCKD_DEFAULT_CONF, LOCKD_CONF_ENV, LM_SOCKET_ENV,
		LOCKD_STATE_DIR_ENV, LOCKD_NODE_ENV);
}

int lockd_epoll_add(struct lockd *ld, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	if (epoll_ctl(ld->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	return 0;
}

int lockd_epoll_mod(struct lockd *ld, int fd, uint32_t events, uint64_t tag)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	if (epoll_ctl(ld->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* Leave at once with status 1: the table cannot be trusted any more, or
 * the cluster engine is gone.  Clients see the connection break, which
 * ends their lease; the other nodes fence us like a crashed node. */
void lockd_fatal(struct lockd *ld, const char *why)
{
	log_err("%s; exiting: the other nodes will fence this node like a "
		"crashed one, restart csvfs-lockd to rejoin", why);
	if (ld->lease_valid)
		lockd_lease_end(ld, why);
	ld->exit_now = true;
	ld->exit_code = 1;
}

static void route_events(struct lockd *ld)
{
	/* events may queue messages (lockd_send) but never re-apply */
	for (size_t i = 0; i < ld->evq.n && !ld->exit_now; i++)
		lockd_route_event(ld, &ld->evq.ev[i]);
	lm_evq_reset(&ld->evq);
}

/* ---- epoch high-water mark (lockd_epoch.h) ---- */

/*
 * Read the reservation at start.  A missing file is a first start (or a
 * wiped node): 0, since the hellos of the other nodes carry theirs.  A
 * corrupt one stops us: guessing could hand out epochs again.
 */
static int epoch_init(struct lockd *ld, char *err, size_t errlen)
{
	const char *dir = ld->conf.state_dir;
	int ret;

	if (!dir[0]) {
		snprintf(err, errlen, "state_dir is empty: set it to a "
			 "directory on local persistent storage");
		return -EINVAL;
	}
	ret = lockd_epoch_prepare(dir, err, errlen);
	if (ret)
		return ret;
	ret = lockd_epoch_read(dir, &ld->epoch_reserved, err, errlen);
	if (ret == -ENOENT) {
		log_info("no epoch high-water mark in %s yet: starting from "
			 "0, the cluster's hellos carry the rest", dir);
		ret = 0;
	} else if (!ret) {
		log_info("epoch high-water mark %llu read from %s",
			 (unsigned long long)ld->epoch_reserved, dir);
	}
	if (ret)
		return ret;
	/* prove now that renewals can be written, not at the first grant */
	return lockd_epoch_write(dir, ld->epoch_reserved, err, errlen);
}

/*
 * After an apply, before its events reach any client: move the durable
 * reservation ahead of the table epoch when it came close.  A failed
 * renewal is fatal only once the epoch has passed the reservation (a
 * grant above it could reach a client); until then the next apply tries
 * again.  Returns -1 when fatal.
 */
static int epoch_persist(struct lockd *ld)
{
	struct lm_status_info si;
	uint64_t next;
	char err[512];

	lm_state_status(ld->st, &si);
	next = lockd_epoch_next_reservation(si.epoch, ld->epoch_reserved);
	if (!next)
		return 0;
	if (lockd_epoch_write(ld->conf.state_dir, next, err, sizeof(err))) {
		if (si.epoch <= ld->epoch_reserved) {
			if (!ld->epoch_warned)
				log_warn("epoch high-water mark not renewed: "
					 "%s; retrying", err);
			ld->epoch_warned = true;
			return 0;
		}
		log_err("epoch %llu passed the durable high-water mark: %s",
			(unsigned long long)si.epoch, err);
		lockd_fatal(ld, "cannot persist the epoch high-water mark");
		return -1;
	}
	if (ld->epoch_warned)
		log_notice("epoch high-water mark renewed again");
	ld->epoch_warned = false;
	log_debug("epoch high-water mark %llu (table epoch %llu)",
		  (unsigned long long)next, (unsigned long long)si.epoch);
	ld->epoch_reserved = next;
	return 0;
}

void lockd_deliver(struct lockd *ld, uint32_t from, const uint8_t *buf,
		   size_t len)
{
	struct lm_cmsg m;
	int ret;

	if (ld->exit_now)
		return;
	ret = lm_cmsg_decode(buf, len, &m);
	if (ret) {
		lockd_undecodable(ld, from, buf, len, ret);
		return;
	}
	if (m.type == LM_C_HEARTBEAT) {
		lockd_heartbeat_delivered(ld, from, &m);
		return;
	}
	if (m.type == LM_C_MOUNT) {
		lockd_mounts_delivered(ld, from, &m.u.mount);
		return;
	}
	if (m.type == LM_C_QUORUM)
		log_debug("node %u: corosync decided %s for ring %u.%llu",
			  from, m.u.quorum.quorate ? "quorate" : "not quorate",
			  m.u.quorum.ring.nodeid,
			  (unsigned long long)m.u.quorum.ring.seq);
	ld->in_apply = true;
	ret = lm_state_apply_msg(ld->st, from, &m, &ld->evq);
	ld->in_apply = false;
	if (ret) {
		lockd_fatal(ld, ret == -ENOMEM ?
			    "out of memory applying a cluster message" :
			    "applying a cluster message failed");
		return;
	}
	if (epoch_persist(ld))
		return;
	route_events(ld);
	lockd_node_applied(ld);
}

void lockd_confchg(struct lockd *ld, const struct lm_confchg *cc)
{
	struct lm_status_info st;
	int ret;

	if (ld->exit_now)
		return;
	lockd_lease_confchg(ld, cc);
	lockd_mounts_confchg(ld, cc);
	/* chunks of an older transfer round are useless now */
	lockd_drop_queued_sync(ld);
	ld->in_apply = true;
	ret = lm_state_apply_confchg(ld->st, cc, &ld->evq);
	ld->in_apply = false;
	if (ret) {
		lockd_fatal(ld, "out of memory applying a membership change");
		return;
	}
	if (epoch_persist(ld))
		return;
	route_events(ld);
	lockd_node_applied(ld);
	/*
	 * Any membership change during a transfer restarts it (lm_state.h),
	 * so every member answers every change that leaves the table
	 * syncing - not only changes with joins.
	 */
	lm_state_status(ld->st, &st);
	if (st.syncing)
		lockd_tp_send_hello(ld, cc);
	/* the change made the table forget every quorum decision */
	ld->quorum_resend = true;
	lockd_tp_send_quorum(ld);
	/*
	 * Heartbeats multicast while the ring was re-forming may be lost;
	 * prove membership of the new ring at once rather than a heartbeat
	 * period later, or a lease that outlasts failure detection by less
	 * than a period runs out on the survivors.
	 */
	lockd_lease_heartbeat_now(ld);
}

void lockd_ring(struct lockd *ld, const struct lm_ring *ring)
{
	int ret;

	if (ld->exit_now)
		return;
	ld->in_apply = true;
	ret = lm_state_apply_ring(ld->st, ring, &ld->evq);
	ld->in_apply = false;
	if (ret) {
		lockd_fatal(ld, "applying a new corosync ring failed");
		return;
	}
	route_events(ld);
	lockd_node_applied(ld);
	ld->quorum_resend = true;
	lockd_tp_send_quorum(ld);
}

/* ---- signals ---- */

static int signals_init(struct lockd *ld)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	ld->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (ld->sigfd < 0)
		return -errno;
	return lockd_epoll_add(ld, ld->sigfd, EPOLLIN, TAG_SIGNAL);
}

static void reload(struct lockd *ld)
{
	struct lockd_conf c;
	char err[512];
	int ret;

	lockd_conf_defaults(&c);
	ret = lockd_conf_load(&c, ld->conf_path, false, err, sizeof(err));
	if (ret && ret != -ENOENT) {
		log_err("SIGHUP: configuration not reloaded: %s; fix it, the "
			"running values stay", err);
		return;
	}
	if (c.log_level != ld->conf.log_level) {
		ld->conf.log_level = c.log_level;
		cv_log_set_level(c.log_level);
	}
	log_notice("SIGHUP: log level reloaded from %s; other keys take "
		   "effect at the next start", ld->conf_path);
}

static void start_stop(struct lockd *ld, const char *why)
{
	unsigned n;

	if (ld->stopping) {
		log_warn("%s again during shutdown: exiting at once", why);
		ld->exit_now = true;
		return;
	}
	ld->stopping = true;
	ld->stop_deadline_ns = cv_now_ns() +
		(uint64_t)ld->conf.shutdown_timeout_ms * 1000000ull;
	lockd_client_stop_listening(ld);
	n = lockd_release_all(ld);
	log_notice("%s: shutting down, giving up %u ownership(s) (at most "
		   "%u ms)", why, n, ld->conf.shutdown_timeout_ms);
}

static void signal_read(struct lockd *ld)
{
	struct signalfd_siginfo si;

	while (read(ld->sigfd, &si, sizeof(si)) == sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			start_stop(ld, si.ssi_signo == SIGTERM ? "SIGTERM" :
				   "SIGINT");
			break;
		case SIGHUP:
			reload(ld);
			break;
		case SIGCHLD:
			lockd_fence_child_exited(ld);
			break;
		}
	}
}

/* ---- timer ---- */

static int timer_init(struct lockd *ld)
{
	struct itimerspec its = {
		.it_interval = { 0, LOCKD_TICK_MS * 1000000L },
		.it_value = { 0, LOCKD_TICK_MS * 1000000L },
	};

	ld->timerfd = timerfd_create(CLOCK_MONOTONIC,
				     TFD_NONBLOCK | TFD_CLOEXEC);
	if (ld->timerfd < 0)
		return -errno;
	if (timerfd_settime(ld->timerfd, 0, &its, NULL) < 0)
		return -errno;
	return lockd_epoll_add(ld, ld->timerfd, EPOLLIN, TAG_TIMER);
}

static void tick(struct lockd *ld)
{
	uint64_t expirations, now = cv_now_ns();

	if (read(ld->timerfd, &expirations, sizeof(expirations)) < 0 &&
	    errno != EAGAIN)
		log_debug("timerfd read: %s", strerror(errno));
	lockd_lease_tick(ld, now);
	lockd_res_tick(ld, now);
	lockd_tp_tick(ld, now);
	if (ld->stopping && (lockd_res_settled(ld) ||
			     now >= ld->stop_deadline_ns)) {
		if (!lockd_res_settled(ld))
			log_warn("shutdown: some releases were not delivered "
				 "within %u ms; the other nodes fence this "
				 "node for what it still owns",
				 ld->conf.shutdown_timeout_ms);
		ld->exit_now = true;
	}
}

/* ---- loop ---- */

static void dispatch(struct lockd *ld, const struct epoll_event *ev)
{
	uint64_t tag = ev->data.u64;
	struct lockd_client *c;

	switch (tag) {
	case TAG_SIGNAL:
		signal_read(ld);
		return;
	case TAG_TIMER:
		tick(ld);
		return;
	case TAG_LISTEN:
		lockd_client_accept(ld);
		return;
	case TAG_CPG:
	case TAG_QUORUM:
	case TAG_VOTEQUORUM:
		lockd_tp_dispatch(ld, tag, ev->events);
		return;
	}
	c = lockd_client_by_id(ld, (unsigned)(tag - TAG_CLIENT_BASE));
	if (c) /* else closed earlier in this batch */
		lockd_client_io(ld, c, ev->events);
}

static int run(struct lockd *ld)
{
	struct epoll_event evs[64];

	lockd_flush(ld);
	while (!ld->exit_now) {
		int n = epoll_wait(ld->epfd, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_err("epoll_wait failed: %s", strerror(errno));
			return 1;
		}
		for (int i = 0; i < n && !ld->exit_now; i++) {
			dispatch(ld, &evs[i]);
			lockd_client_sweep(ld);
			lockd_flush(ld);
		}
	}
	return ld->exit_code;
}

/* ---- set-up ---- */

static int parse_opts(int argc, char **argv, struct lockd_opts *o)
{
	int c;

	memset(o, 0, sizeof(*o));
	o->log_level = -1;
	while ((c = getopt_long(argc, argv, "fc:h", long_opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'c':
			o->conf = optarg;
			break;
		case 'S':
			o->standalone = true;
			break;
		case 's':
			o->socket = optarg;
			break;
		case 'd':
			o->state_dir = optarg;
			break;
		case 'n':
			o->node = optarg;
			break;
		case 'l':
			o->log_level = cv_log_level_parse(optarg);
			if (o->log_level < 0) {
				fprintf(stderr, "csvfs-lockd: bad log level "
					"\"%s\": use error, warning, notice, "
					"info or debug\n", optarg);
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("csvfs-lockd %s\n", PACKAGE_VERSION);
			exit(0);
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "csvfs-lockd: unexpected argument \"%s\"\n",
			argv[optind]);
		usage(stderr);
		return 2;
	}
	return 0;
}

/* Options and environment override the file. */
static int set_overrides(struct lockd *ld, const struct lockd_opts *o,
			 char *err, size_t errlen)
{
	const char *sock = o->socket ? o->socket : getenv(LM_SOCKET_ENV);
	const char *node = o->node ? o->node : getenv(LOCKD_NODE_ENV);
	const char *sdir = o->state_dir ? o->state_dir :
			   getenv(LOCKD_STATE_DIR_ENV);
	struct lockd_conf *c = &ld->conf;

	if (o->standalone)
		c->transport = LOCKD_TRANSPORT_STANDALONE;
	if (sock && *sock) {
		if (sock[0] != '/' || strlen(sock) >= sizeof(c->socket)) {
			snprintf(err, errlen, "socket path \"%s\" must be "
				 "absolute and shorter than %zu characters",
				 sock, sizeof(c->socket));
			return -EINVAL;
		}
		snprintf(c->socket, sizeof(c->socket), "%s", sock);
	}
	if (sdir && *sdir) {
		if (sdir[0] != '/' || strlen(sdir) >= sizeof(c->state_dir)) {
			snprintf(err, errlen, "state directory \"%s\" must be "
				 "absolute and shorter than %zu characters",
				 sdir, sizeof(c->state_dir));
			return -EINVAL;
		}
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", sdir);
	}
	if (node && *node) {
		if (strlen(node) >= sizeof(c->node)) {
			snprintf(err, errlen, "node name \"%s\" is longer than "
				 "%zu characters", node, sizeof(c->node) - 1);
			return -EINVAL;
		}
		snprintf(c->node, sizeof(c->node), "%s", node);
	}
	if (o->log_level >= 0)
		c->log_level = o->log_level;
	return 0;
}

static int load_config(struct lockd *ld, const struct lockd_opts *o,
		       char *err, size_t errlen)
{
	const char *env = getenv(LOCKD_CONF_ENV);
	bool must = true;
	struct group *gr;
	int ret;

	ld->conf_path = o->conf ? o->conf : (env && *env) ? env : NULL;
	if (!ld->conf_path) {
		ld->conf_path = LOCKD_DEFAULT_CONF;
		must = false;
	}
	lockd_conf_defaults(&ld->conf);
	ret = lockd_conf_load(&ld->conf, ld->conf_path, must, err, errlen);
	if (ret && ret != -ENOENT)
		return ret;
	ret = set_overrides(ld, o, err, errlen);
	if (ret)
		return ret;
	ld->socket_gid = (gid_t)-1;
	if (ld->conf.socket_group[0]) {
		gr = getgrnam(ld->conf.socket_group);
		if (!gr) {
			snprintf(err, errlen, "%s: socket_group \"%s\" is not a "
				 "known group", ld->conf_path,
				 ld->conf.socket_group);
			return -EINVAL;
		}
		ld->socket_gid = gr->gr_gid;
	}
	return 0;
}

/*
 * Fork into the background.  The parent waits on a pipe until the child
 * is serving (a 0 byte) or failed (its one-line reason), so that the exit
 * status of `csvfs-lockd` tells whether the daemon started.
 */
static int daemonize(int *notify_fd)
{
	char buf[600];
	int pfd[2], devnull;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(pfd[1]);
		n = read(pfd[0], buf, sizeof(buf) - 1);
		if (n == 1 && buf[0] == '\0')
			_exit(0);
		if (n <= 0)
			snprintf(buf, sizeof(buf), "daemon exited during "
				 "start-up; see the system log");
		else
			buf[n] = '\0';
		fprintf(stderr, "csvfs-lockd: %s\n", buf);
		_exit(1);
	}
	close(pfd[0]);
	setsid();
	if (chdir("/") < 0)
		return -errno;
	umask(022);
	devnull = open("/dev/null", O_RDWR);
	if (devnull >= 0) {
		dup2(devnull, 0);
		dup2(devnull, 1);
		dup2(devnull, 2);
		if (devnull > 2)
			close(devnull);
	}
	*notify_fd = pfd[1];
	return 0;
}

static void notify_parent(int *fd, const char *err)
{
	ssize_t n;

	if (*fd < 0)
		return;
	if (err)
		n = write(*fd, err, strlen(err));
	else
		n = write(*fd, "", 1);
	(void)n;
	close(*fd);
	*fd = -1;
}

static int setup(struct lockd *ld, char *err, size_t errlen)
{
	int ret;

	ld->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (ld->epfd < 0) {
		snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
		return -errno;
	}
	ret = signals_init(ld);
	if (!ret)
		ret = timer_init(ld);
	if (ret) {
		snprintf(err, errlen, "signal or timer set-up: %s",
			 strerror(-ret));
		return ret;
	}
	ld->st = lm_state_new();
	if (!ld->st) {
		snprintf(err, errlen, "out of memory for the lock table");
		return -ENOMEM;
	}
	lm_evq_init(&ld->evq);
	if (lockd_res_init(ld)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	ret = epoch_init(ld, err, errlen);
	if (ret)
		return ret;
	ret = lockd_client_init(ld, err, errlen);
	if (ret)
		return ret;
	ret = lockd_lease_init(ld, err, errlen);
	if (ret)
		return ret;
	return lockd_tp_init(ld, err, errlen);
}

static void teardown(struct lockd *ld)
{
	lockd_tp_fini(ld);
	lockd_client_fini(ld);
	lockd_lease_fini(ld, ld->exit_code == 0);
	lockd_res_fini(ld);
	lockd_mounts_fini(ld);
	if (ld->st)
		lm_state_free(ld->st);
	lm_evq_free(&ld->evq);
	if (ld->timerfd >= 0)
		close(ld->timerfd);
	if (ld->sigfd >= 0)
		close(ld->sigfd);
	if (ld->epfd >= 0)
		close(ld->epfd);
}

int main(int argc, char **argv)
{
	static struct lockd lockd; /* big: keep it off the stack */
	struct lockd *ld = &lockd;
	struct lockd_opts o;
	char err[600];
	int notify_fd = -1, ret;

	ret = parse_opts(argc, argv, &o);
	if (ret)
		return ret;
	ld->epfd = ld->sigfd = ld->timerfd = ld->listen_fd = ld->wd_fd = -1;
	ld->start_ns = cv_now_ns();
	ld->foreground = o.foreground;
	cv_log_init("csvfs-lockd", true, LOG_NOTICE);
	if (load_config(ld, &o, err, sizeof(err))) {
		fprintf(stderr, "csvfs-lockd: %s\n", err);
		return 1;
	}
	if (!o.foreground && daemonize(&notify_fd)) {
		fprintf(stderr, "csvfs-lockd: cannot daemonize: %s\n",
			strerror(errno));
		return 1;
	}
	cv_log_init("csvfs-lockd", o.foreground, ld->conf.log_level);
	ret = setup(ld, err, sizeof(err));
	if (ret) {
		log_err("cannot start: %s", err);
		notify_parent(&notify_fd, err);
		teardown(ld);
		return 1;
	}
	log_notice("started: node %s (id %u), cluster %s, transport %s, "
		   "socket %s, lease %u ms, state %s", ld->node_name,
		   ld->our_id, ld->cluster_name,
		   lockd_transport_name(ld->conf.transport), ld->conf.socket,
		   ld->conf.lease_timeout_ms, ld->conf.state_dir);
	notify_parent(&notify_fd, NULL);
	ret = run(ld);
	teardown(ld);
	if (ret == 0)
		log_notice("stopped cleanly");
	return ret;
}
