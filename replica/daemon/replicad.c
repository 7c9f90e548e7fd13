// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * replicad.c - csvfs-replicad: the replica site's daemon and its
 * failover commands.
 *
 *	csvfs-replicad [options]			serve (TLS 1.3)
 *	csvfs-replicad [--store DIR] groups		list groups
 *	csvfs-replicad [--store DIR] points GROUP	list a group's points
 *	csvfs-replicad [--store DIR] materialise GROUP POINT DEST
 *	csvfs-replicad [--store DIR] promote GROUP [POINT]	stop following
 *	csvfs-replicad [--store DIR] seed GROUP FILE-ID SRC	initial image
 *
 * The daemon accepts connections and serves each in its own thread
 * (session.c) up to max_sessions; everything it stores is in store.h's
 * layout.  The commands work on the same store, next to a running
 * daemon: they take the group's lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "replicad.h"
#include "tls.h"

#define DEFAULT_STORE "/var/lib/csvfs-replica"
#define DEFAULT_ETC   CSVFS_SYSCONFDIR "/csvfs/replica/"

static volatile sig_atomic_t stopping, reloading;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reloading = 1;
	else
		stopping = 1;
}

/* ------------------------------------------------------------------------
 * The allow-list: "sha256 HEX" or "cn NAME" lines, # comments.
 */
static int push(char ***v, size_t *n, const char *s)
{
	char **p = realloc(*v, (*n + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	*v = p;
	p[*n] = strdup(s);
	if (!p[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int allow_line(struct rd_allow *a, char *line)
{
	char kind[16], val[256];
	size_t k;

	if (sscanf(line, "%15s %255[^\n]", kind, val) != 2)
		return -EINVAL;
	if (!strcmp(kind, "sha256")) {
		size_t o = 0;

		for (k = 0; val[k]; k++) /* accept openssl's AA:BB:... too */
			if (val[k] != ':')
				val[o++] = (char)(val[k] >= 'A' && val[k] <= 'F'
							  ? val[k] + 32
							  : val[k]);
		val[o] = '\0';
		if (o != 64 || strspn(val, "0123456789abcdef") != 64)
			return -EINVAL;
		return push(&a->fpr, &a->nfpr, val);
	}
	if (!strcmp(kind, "cn"))
		return push(&a->cn, &a->ncn, val);
	return -EINVAL;
}

int rd_allow_load(const char *path, struct rd_allow *a, char *err,
		  size_t errlen)
{
	FILE *f = fopen(path, "re");
	char line[512];
	unsigned no = 0;
	int rc = 0;

	memset(a, 0, sizeof(*a));
	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "cannot read the allow-list %s: %s", path,
			 strerror(errno));
		return rc;
	}
	while (!rc && fgets(line, sizeof(line), f)) {
		char *p = line + strspn(line, " \t");

		no++;
		if (*p == '#' || *p == '\n' || !*p)
			continue;
		rc = allow_line(a, p);
		if (rc)
			snprintf(
				err, errlen,
				"%s line %u: expected \"sha256 <fingerprint>\" "
				"or \"cn <name>\"",
				path, no);
	}
	fclose(f);
	if (rc)
		rd_allow_free(a);
	return rc;
}

void rd_allow_free(struct rd_allow *a)
{
	for (size_t i = 0; i < a->nfpr; i++)
		free(a->fpr[i]);
	for (size_t i = 0; i < a->ncn; i++)
		free(a->cn[i]);
	free(a->fpr);
	free(a->cn);
	memset(a, 0, sizeof(*a));
}

bool rd_allowed(const struct rd_allow *a, const char *fpr, const char *cn)
{
	for (size_t i = 0; i < a->nfpr; i++)
		if (!strcmp(a->fpr[i], fpr))
			return true;
	for (size_t i = 0; cn[0] && i < a->ncn; i++)
		if (!strcmp(a->cn[i], cn))
			return true;
	return false;
}

/* ------------------------------------------------------------------------
 * Serving.
 */
struct conn {
	struct rd_daemon *d;
	int fd;
	char peer[80];
};

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct rd_daemon *d = c->d;

	rd_session(d, c->fd, c->peer);
	pthread_mutex_lock(&d->lock);
	d->sessions--;
	pthread_mutex_unlock(&d->lock);
	free(c);
	return NULL;
}

static int listen_on(const struct rd_conf *conf)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE },
			*res;
	char serv[8];
	int fd, one = 1, g;

	snprintf(serv, sizeof(serv), "%u", conf->port);
	g = getaddrinfo(conf->listen_host, serv, &hints, &res);
	if (g) {
		log_err("cannot resolve %s: %s", conf->listen_host,
			gai_strerror(g));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 16)) {
		log_err("cannot listen on %s port %u: %s",
			conf->listen_host ? conf->listen_host : "*", conf->port,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static void peer_name(const struct sockaddr_storage *sa, char *buf, size_t len)
{
	char host[64] = "?", port[8] = "?";

	getnameinfo((const struct sockaddr *)sa, sizeof(*sa), host,
		    sizeof(host), port, sizeof(port),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	snprintf(buf, len, "%s port %s", host, port);
}

static void accept_one(struct rd_daemon *d, int lfd)
{
	struct sockaddr_storage sa;
	socklen_t sl = sizeof(sa);
	struct conn *c;
	pthread_t t;
	pthread_attr_t attr;
	int fd = accept4(lfd, (struct sockaddr *)&sa, &sl,
			 SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	pthread_mutex_lock(&d->lock);
	if (d->sessions >= d->conf.max_sessions) {
		pthread_mutex_unlock(&d->lock);
		log_warn("refusing a connection: %u sessions already",
			 d->conf.max_sessions);
		close(fd);
		return;
	}
	d->sessions++;
	pthread_mutex_unlock(&d->lock);
	c = calloc(1, sizeof(*c));
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (c) {
		c->d = d;
		c->fd = fd;
		peer_name(&sa, c->peer, sizeof(c->peer));
	}
	if (!c || pthread_create(&t, &attr, conn_thread, c)) {
		log_err("cannot start a session thread");
		close(fd);
		free(c);
		pthread_mutex_lock(&d->lock);
		d->sessions--;
		pthread_mutex_unlock(&d->lock);
	}
	pthread_attr_destroy(&attr);
}

/* SIGHUP: read the allow-list again; a bad file keeps the old one.
 * Sessions already admitted go on. */
static void reload_allow(struct rd_daemon *d)
{
	struct rd_allow fresh, old;
	char err[512];

	reloading = 0;
	if (rd_allow_load(d->conf.allow_file, &fresh, err, sizeof(err))) {
		log_err("%s; keeping the allow-list in use", err);
		return;
	}
	pthread_mutex_lock(&d->lock);
	old = d->allow;
	d->allow = fresh;
	pthread_mutex_unlock(&d->lock);
	rd_allow_free(&old);
	log_notice("allow-list %s reloaded: %zu fingerprints, %zu names",
		   d->conf.allow_file, fresh.nfpr, fresh.ncn);
}

static int serve(struct rd_daemon *d)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct pollfd p;
	int lfd = listen_on(&d->conf);

	if (lfd < 0)
		return 1;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_notice("serving store %s on port %u", d->conf.store, d->conf.port);
	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (!stopping) {
		if (reloading)
			reload_allow(d);
		if (poll(&p, 1, 500) > 0)
			accept_one(d, lfd);
	}
	close(lfd);
	log_notice("stopping");
	return 0;
}

/* ------------------------------------------------------------------------
 * Commands.
 */
static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	errno = 0;
	*v = strtoull(s, &end, 0);
	return errno || end == s || *end ? -EINVAL : 0;
}

static int cmd_groups(struct rs_store *st)
{
	uint64_t *ids;
	size_t n;
	int rc = rs_store_groups(st, &ids, &n);

	if (rc) {
		fprintf(stderr, "csvfs-replicad: cannot list groups: %s\n",
			strerror(-rc));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		printf("%" PRIu64 "\n", ids[i]);
	free(ids);
	return 0;
}

static int with_group(struct rs_store *st, const char *gs, bool create,
		      struct rs_group **g)
{
	uint64_t id;
	char err[512], name[32];
	struct stat sb;
	int rc;

	if (parse_u64(gs, &id) || !id) {
		fprintf(stderr, "csvfs-replicad: bad group %s\n", gs);
		return -EINVAL;
	}
	rs_name(name, sizeof(name), NULL, id, NULL);
	if (!create && fstatat(st->groupsfd, name, &sb, 0)) {
		fprintf(stderr, "csvfs-replicad: no group %s in %s\n", gs,
			st->dir);
		return -ENOENT;
	}
	rc = rs_group_open(st, id, g);
	if (rc) {
		fprintf(stderr, "csvfs-replicad: group %s: %s\n", gs,
			strerror(-rc));
		return rc;
	}
	rc = rs_group_lock(*g, 60000, err, sizeof(err));
	if (!rc && !create && !(*g)->exists) {
		snprintf(err, sizeof(err), "no group %s in %s", gs, st->dir);
		rc = -ENOENT;
	}
	if (rc) {
		fprintf(stderr, "csvfs-replicad: %s\n", err);
		rs_group_close(*g);
		*g = NULL;
	}
	return rc;
}

static void print_points(struct rs_group *g, bool json)
{
	if (json)
		printf("{\"group\": %" PRIu64 ", \"generation\": %" PRIu64
		       ", \"promoted\": %s, \"failover_point\": %" PRIu64
		       ", \"points\": [",
		       g->id, g->generation, g->promoted ? "true" : "false",
		       g->failover_point);
	for (size_t i = 0; i < g->npoints; i++) {
		const struct rs_point *p = &g->points[i];
		time_t t = (time_t)(p->time_ns / 1000000000);
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		if (json)
			printf("%s{\"point\": %" PRIu64
			       ", \"time_ns\": %" PRId64
			       ", \"time\": \"%s\", \"undo_bytes\": %" PRIu64
			       "}",
			       i ? ", " : "", p->point, p->time_ns, when,
			       rs_point_bytes(g, p->point));
		else
			printf("%" PRIu64 "\t%s\t%" PRIu64 "\n", p->point, when,
			       rs_point_bytes(g, p->point));
	}
	if (json)
		printf("]}\n");
}

/* Failed over: no more points from the primary; remember the point the
 * new primary started from (default the last), the common point of a
 * later failback. */
static int promote_group(struct rs_group *g, const char *ps, char *err,
			 size_t errlen)
{
	uint64_t point = rs_group_last(g);
	size_t i = 0;
	int rc;

	if (ps && parse_u64(ps, &point)) {
		snprintf(err, errlen, "bad point %s", ps);
		return -EINVAL;
	}
	while (i < g->npoints && g->points[i].point != point)
		i++;
	if (point && i == g->npoints) {
		snprintf(err, errlen,
			 "group %016" PRIx64 " has no point %" PRIu64, g->id,
			 point);
		return -ENOENT;
	}
	g->promoted = true;
	g->failover_point = point;
	rc = rs_group_save(g);
	if (rc)
		snprintf(err, errlen, "cannot save the state: %s",
			 strerror(-rc));
	return rc;
}

static int cmd_group(struct rs_store *st, int argc, char **argv, bool json)
{
	struct rs_group *g;
	const char *cmd = argv[0];
	bool three = !strcmp(cmd, "materialise") || !strcmp(cmd, "seed");
	bool promote = !strcmp(cmd, "promote");
	uint64_t point;
	char err[512] = "";
	int rc;

	if (argc != (three ? 4 : 2) && !(promote && argc == 3))
		return 2;
	if (with_group(st, argv[1], !strcmp(cmd, "seed"), &g))
		return 1;
	if (!strcmp(cmd, "points")) {
		print_points(g, json);
		rc = 0;
	} else if (promote) {
		rc = promote_group(g, argc == 3 ? argv[2] : NULL, err,
				   sizeof(err));
	} else if (parse_u64(argv[2], &point)) {
		snprintf(err, sizeof(err), "bad %s %s",
			 cmd[0] == 's' ? "file id" : "point", argv[2]);
		rc = -EINVAL;
	} else if (!strcmp(cmd, "seed")) {
		rc = rs_seed(g, point, argv[3], err, sizeof(err));
	} else {
		rc = rs_materialise(g, point, argv[3], err, sizeof(err));
	}
	if (rc)
		fprintf(stderr, "csvfs-replicad: %s\n", err);
	rs_group_close(g);
	return rc ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * Options.
 */
static void usage(FILE *f)
{
	fprintf(f,
		"usage: csvfs-replicad [-f] [--store DIR] [--listen HOST] "
		"[--port N]\n"
		"           [--cert PEM] [--key PEM] [--ca PEM] [--allow "
		"FILE]\n"
		"           [--retain all=1h,hourly=1d,daily=7d] "
		"[--idle-timeout MS]\n"
		"           [--max-sessions N] [--log-level LEVEL]\n"
		"       csvfs-replicad [--store DIR] groups\n"
		"       csvfs-replicad [--store DIR] [--json] points GROUP\n"
		"       csvfs-replicad [--store DIR] materialise GROUP POINT "
		"DEST\n"
		"       csvfs-replicad [--store DIR] promote GROUP [POINT]\n"
		"       csvfs-replicad [--store DIR] seed GROUP FILE-ID SRC\n");
}

enum {
	O_STORE = 256,
	O_LISTEN,
	O_PORT,
	O_CERT,
	O_KEY,
	O_CA,
	O_ALLOW,
	O_RETAIN,
	O_IDLE,
	O_MAXS,
	O_LOG,
	O_JSON
};

static const struct option longopts[] = {
	{ "foreground", no_argument, NULL, 'f' },
	{ "store", required_argument, NULL, O_STORE },
	{ "listen", required_argument, NULL, O_LISTEN },
	{ "port", required_argument, NULL, O_PORT },
	{ "cert", required_argument, NULL, O_CERT },
	{ "key", required_argument, NULL, O_KEY },
	{ "ca", required_argument, NULL, O_CA },
	{ "allow", required_argument, NULL, O_ALLOW },
	{ "retain", required_argument, NULL, O_RETAIN },
	{ "idle-timeout", required_argument, NULL, O_IDLE },
	{ "max-sessions", required_argument, NULL, O_MAXS },
	{ "log-level", required_argument, NULL, O_LOG },
	{ "json", no_argument, NULL, O_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

struct opts {
	bool foreground, json;
	int level;
	const char *retain;
};

static int parse_opt(int c, struct rd_conf *conf, struct opts *o)
{
	uint64_t v = 0;

	switch (c) {
	case 'f':
		o->foreground = true;
		break;
	case O_STORE:
		conf->store = optarg;
		break;
	case O_LISTEN:
		conf->listen_host = optarg;
		break;
	case O_PORT:
		if (parse_u64(optarg, &v) || !v || v > 65535)
			return -EINVAL;
		conf->port = (uint16_t)v;
		break;
	case O_CERT:
		conf->cert = optarg;
		break;
	case O_KEY:
		conf->key = optarg;
		break;
	case O_CA:
		conf->ca = optarg;
		break;
	case O_ALLOW:
		conf->allow_file = optarg;
		break;
	case O_RETAIN:
		o->retain = optarg;
		break;
	case O_IDLE:
		if (parse_u64(optarg, &v) || v < 100 || v > 86400000)
			return -EINVAL;
		conf->idle_ms = (int)v;
		break;
	case O_MAXS:
		if (parse_u64(optarg, &v) || !v || v > 4096)
			return -EINVAL;
		conf->max_sessions = (unsigned)v;
		break;
	case O_LOG:
		o->level = cv_log_level_parse(optarg);
		return o->level < 0 ? -EINVAL : 0;
	case O_JSON:
		o->json = true;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

static void conf_default(struct rd_conf *c)
{
	const char *env = getenv("CSVFS_REPLICA_STORE");

	*c = (struct rd_conf){
		.store = env ? env : DEFAULT_STORE,
		.port = CVR_DEFAULT_PORT,
		.cert = DEFAULT_ETC "replica.pem",
		.key = DEFAULT_ETC "replica.key",
		.ca = DEFAULT_ETC "ca.pem",
		.allow_file = DEFAULT_ETC "allow",
		.handshake_ms = 10000,
		.idle_ms = 300000,
		.lock_ms = 20000,
		.max_sessions = 64,
	};
}

/* Wait up to 2 s for the sessions to end; how many are left. */
static unsigned sessions_drain(struct rd_daemon *d)
{
	unsigned left = 0;

	for (int i = 0; i < 200; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		pthread_mutex_lock(&d->lock);
		left = d->sessions;
		pthread_mutex_unlock(&d->lock);
		if (!left)
			break;
		nanosleep(&ts, NULL);
	}
	return left;
}

static int run_daemon(struct rd_daemon *d, bool foreground)
{
	char err[512];
	int rc;

	if (rd_allow_load(d->conf.allow_file, &d->allow, err, sizeof(err))) {
		log_err("%s", err);
		return 1;
	}
	d->ctx = cvr_tls_ctx(true, d->conf.cert, d->conf.key, d->conf.ca, err,
			     sizeof(err));
	if (!d->ctx) {
		log_err("%s", err);
		rd_allow_free(&d->allow);
		return 1;
	}
	if (!foreground && daemon(0, 0)) {
		log_err("cannot become a daemon: %s", strerror(errno));
		rc = 1;
	} else {
		rc = serve(d);
	}
	if (sessions_drain(d)) {
		/* a session still runs (blocked up to its idle time-out):
		 * leave what it may use to the process's exit */
		log_notice("exiting with sessions open; their primaries will "
			   "resume");
		exit(rc);
	}
	SSL_CTX_free(d->ctx);
	rd_allow_free(&d->allow);
	return rc;
}

int main(int argc, char **argv)
{
	static struct rd_daemon d;
	struct opts o = { .level = LOG_INFO };
	char err[512];
	int c, rc;

	conf_default(&d.conf);
	while ((c = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return 0;
		}
		if (parse_opt(c, &d.conf, &o)) {
			usage(stderr);
			return 2;
		}
	}
	cv_log_init("csvfs-replicad", o.foreground || optind < argc, o.level);
	if (rs_store_open(d.conf.store, &d.store, err, sizeof(err))) {
		fprintf(stderr, "csvfs-replicad: %s\n", err);
		return 1;
	}
	if (o.retain && rt_policy_parse(&d.store.policy, o.retain)) {
		fprintf(stderr,
			"csvfs-replicad: bad --retain %s (expected "
			"all=S,hourly=S,daily=S; suffixes s m h d)\n",
			o.retain);
		rs_store_close(&d.store);
		return 2;
	}
	pthread_mutex_init(&d.lock, NULL);
	if (optind == argc)
		rc = run_daemon(&d, o.foreground);
	else if (!strcmp(argv[optind], "groups") && optind + 1 == argc)
		rc = cmd_groups(&d.store);
	else if (!strcmp(argv[optind], "points") ||
		 !strcmp(argv[optind], "materialise") ||
		 !strcmp(argv[optind], "seed") ||
		 !strcmp(argv[optind], "promote"))
		rc = cmd_group(&d.store, argc - optind, argv + optind, o.json);
	else
		rc = 2;
	if (rc == 2)
		usage(stderr);
	rs_store_close(&d.store);
	return rc;
}
