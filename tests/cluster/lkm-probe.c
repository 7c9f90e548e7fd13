// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lkm-probe - a scriptable csvfs-lockd client for cluster scenarios.
 *
 *	lkm-probe [--socket PATH] --volume UUID [--label L] [--auto-release]
 *		  [--all-lease]
 *
 * Connects like a csvfs mount of the volume (LM_CLIENT_CSVFS), starts the
 * event thread, then reads one command per line on stdin and prints one
 * result line per command on stdout, flushed, starting with "ok " or
 * "err " and the command's name, so shell tests can grep for them:
 *
 *	acquire FILEID [TIMEOUT_MS] [nowait]
 *		ok acquire F epoch=E ms=T | err acquire F ENAME ms=T
 *	release FILEID			(with the epoch it holds)
 *	plock FILEID set|setw|unlock read|write START END|eof OWNER [TMO]
 *	flock FILEID set|setw|unlock read|write OWNER [TIMEOUT_MS]
 *	getlk FILEID read|write START END|eof OWNER
 *		ok getlk F none | ok getlk F type=T node=N owner=O pid=P ...
 *	owner FILEID		ok owner F owner=ID epoch=E waiters=W
 *	status			ok status node=N id=I quorate=Q ready=R ...
 *	held			ok held F:E F:E ...
 *	sleep MS		ok sleep MS
 *	wait-event revoke|lost|lease|granted|owner|released FILEID|- TMO_MS
 *		ok wait-event TYPE F epoch=E ms=T | err wait-event ... timeout
 *	hold			waits until stdin closes (or SIGTERM)
 *	quit
 *
 * Events are printed as they arrive ("event revoke F epoch=E", "event
 * lost F epoch=E", "event granted F epoch=E", "event owner F owner=ID
 * epoch=E", "event lease valid=V remaining_ms=R" when validity changes or
 * always with --all-lease, "event disconnected").  wait-event matches an
 * event not yet matched by an earlier wait-event, including ones that
 * arrived before it was issued.  With --auto-release every revoke is
 * answered by releasing the file, as csvfs does after flushing, and
 * "event released F epoch=E" printed.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cvtool.h"
#include "lkm.h"

#define MAX_HELD 4096
#define MAX_LOG 4096

enum { EVK_REVOKE, EVK_LOST, EVK_LEASE, EVK_GRANTED, EVK_OWNER,
       EVK_RELEASED, EVK_BREAK };
static const char *const evk_names[] = { "revoke", "lost", "lease",
					 "granted", "owner", "released",
					 "disconnected" };

struct logged_ev {
	int kind;
	uint64_t fileid;
	uint64_t epoch;
	bool matched;
};

struct held {
	uint64_t fileid;
	uint64_t epoch;
};

/* All below protected by lock; cond signals a new event. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond;
static struct logged_ev evlog[MAX_LOG];
static size_t n_evlog;
static struct held held[MAX_HELD];
static size_t n_held;
static int lease_valid = -1;

/* Set once before the event thread starts. */
static struct lkm_client *client;
static bool auto_release;
static bool all_lease;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One line to stdout, flushed; from any thread. */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	va_list ap;

	flockfile(stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	funlockfile(stdout);
}

static const char *errname(int err)
{
	static const struct { int e; const char *n; } names[] = {
		{ EAGAIN, "EAGAIN" }, { ETIMEDOUT, "ETIMEDOUT" },
		{ ECONNRESET, "ECONNRESET" }, { ECONNREFUSED, "ECONNREFUSED" },
		{ ENOENT, "ENOENT" }, { EACCES, "EACCES" }, { EPERM, "EPERM" },
		{ EINVAL, "EINVAL" }, { EDEADLK, "EDEADLK" },
		{ ENOMEM, "ENOMEM" }, { EBUSY, "EBUSY" }, { EPROTO, "EPROTO" },
		{ ENOLCK, "ENOLCK" },
		{ LM_ERR_NOQUORUM, "NOQUORUM" }, { LM_ERR_SYNCING, "SYNCING" },
		{ LM_ERR_DRAINING, "DRAINING" }, { LM_ERR_FENCING, "FENCING" },
		{ LM_ERR_NOTOWNER, "NOTOWNER" }, { LM_ERR_NONODE, "NONODE" },
		{ LM_ERR_NOTMEMBER, "NOTMEMBER" },
		{ LM_ERR_SHUTDOWN, "SHUTDOWN" }, { LM_ERR_LEASE, "LEASE" },
		{ LM_ERR_CANCELED, "CANCELED" }, { LM_ERR_TIMEDOUT, "TIMEDOUT" },
		{ LM_ERR_LOST, "LOST" },
	};
	static __thread char buf[16];

	if (err < 0)
		err = -err;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].e == err)
			return names[i].n;
	snprintf(buf, sizeof(buf), "E%d", err);
	return buf;
}

/* ------------------------------------------------------- held table */

static void held_set(uint64_t fileid, uint64_t epoch)
{
	for (size_t i = 0; i < n_held; i++)
		if (held[i].fileid == fileid) {
			held[i].epoch = epoch;
			return;
		}
	if (n_held < MAX_HELD)
		held[n_held++] = (struct held){ fileid, epoch };
}

/* Epoch held for fileid and forget it; 0 when not held. */
static uint64_t held_take(uint64_t fileid)
{
	uint64_t e;

	for (size_t i = 0; i < n_held; i++)
		if (held[i].fileid == fileid) {
			e = held[i].epoch;
			held[i] = held[--n_held];
			return e;
		}
	return 0;
}

static uint64_t held_get(uint64_t fileid)
{
	for (size_t i = 0; i < n_held; i++)
		if (held[i].fileid == fileid)
			return held[i].epoch;
	return 0;
}

/* ----------------------------------------------------------- events */

static void log_ev(int kind, uint64_t fileid, uint64_t epoch)
{
	if (n_evlog == MAX_LOG) { /* drop the oldest */
		memmove(evlog, evlog + 1, (MAX_LOG - 1) * sizeof(evlog[0]));
		n_evlog--;
	}
	evlog[n_evlog++] = (struct logged_ev){ kind, fileid, epoch, false };
	pthread_cond_broadcast(&cond);
}

static void on_lease(const struct lkm_event *ev)
{
	struct timespec ts;
	int64_t rem = -1;

	if (ev->lease_valid) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rem = ((int64_t)ev->lease_deadline_ns -
		       ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec)) /
		      1000000;
	}
	log_ev(EVK_LEASE, 0, ev->lease_valid);
	if (all_lease || lease_valid != ev->lease_valid)
		out("event lease valid=%u remaining_ms=%" PRId64,
		    ev->lease_valid, rem);
	lease_valid = ev->lease_valid;
}

static void on_revoke(uint64_t fileid, uint64_t epoch)
{
	uint64_t e;
	int r;

	out("event revoke %" PRIu64 " epoch=%" PRIu64, fileid, epoch);
	log_ev(EVK_REVOKE, fileid, epoch);
	if (!auto_release)
		return;
	e = held_take(fileid);
	if (!e)
		e = epoch;
	r = lkm_release_async(client, fileid, e);
	if (r < 0) {
		out("event release-failed %" PRIu64 " %s", fileid, errname(r));
		return;
	}
	out("event released %" PRIu64 " epoch=%" PRIu64, fileid, e);
	log_ev(EVK_RELEASED, fileid, e);
}

static void on_event(const struct lkm_event *ev, void *arg)
{
	const struct lkm_event *f = ev;

	pthread_mutex_lock(&lock);
	switch (ev->type) {
	case LKM_EV_BROKEN:
		out("event disconnected");
		log_ev(EVK_BREAK, 0, 0);
		break;
	case LKM_EV_LEASE:
		on_lease(ev);
		break;
	case LKM_EV_REVOKE:
		on_revoke(f->fileid, f->epoch);
		break;
	case LKM_EV_GRANTED:
		held_set(f->fileid, f->epoch);
		out("event granted %" PRIu64 " epoch=%" PRIu64, f->fileid,
		    f->epoch);
		log_ev(EVK_GRANTED, f->fileid, f->epoch);
		break;
	case LKM_EV_LOST:
		held_take(f->fileid);
		out("event lost %" PRIu64 " epoch=%" PRIu64, f->fileid,
		    f->epoch);
		log_ev(EVK_LOST, f->fileid, f->epoch);
		break;
	case LKM_EV_OWNER:
		out("event owner %" PRIu64 " owner=%" PRIu32 " epoch=%" PRIu64,
		    f->fileid, f->owner, f->epoch);
		log_ev(EVK_OWNER, f->fileid, f->epoch);
		break;
	default:
		out("event unknown type=%u", ev->type);
	}
	pthread_mutex_unlock(&lock);
}

/* --------------------------------------------------------- commands */

static bool parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s)
		return false;
	if (strcmp(s, "eof") == 0) {
		*v = LM_OFFSET_MAX;
		return true;
	}
	errno = 0;
	*v = strtoull(s, &end, 0);
	return !errno && !*end;
}

static int parse_int(const char *s, int dflt)
{
	return s ? atoi(s) : dflt;
}

static void cmd_acquire(char **a, int n)
{
	uint64_t fid, epoch = 0;
	uint32_t flags = 0;
	int64_t t0 = now_ms();
	int r, tmo = -1;

	if (n < 2 || !parse_u64(a[1], &fid)) {
		out("err acquire usage");
		return;
	}
	for (int i = 2; i < n; i++) {
		if (strcmp(a[i], "nowait") == 0)
			flags |= LM_ACQ_NOWAIT;
		else
			tmo = atoi(a[i]);
	}
	r = lkm_acquire(client, fid, flags, tmo, &epoch);
	if (r < 0) {
		out("err acquire %" PRIu64 " %s ms=%" PRId64, fid, errname(r),
		    now_ms() - t0);
		return;
	}
	pthread_mutex_lock(&lock);
	held_set(fid, epoch);
	pthread_mutex_unlock(&lock);
	out("ok acquire %" PRIu64 " epoch=%" PRIu64 " ms=%" PRId64, fid, epoch,
	    now_ms() - t0);
}

static void cmd_release(char **a, int n)
{
	uint64_t fid, epoch;
	int64_t t0 = now_ms();
	int r;

	if (n < 2 || !parse_u64(a[1], &fid)) {
		out("err release usage");
		return;
	}
	pthread_mutex_lock(&lock);
	epoch = held_get(fid);
	pthread_mutex_unlock(&lock);
	if (n > 2)
		parse_u64(a[2], &epoch);
	r = lkm_release(client, fid, epoch, 10000);
	if (r < 0) {
		out("err release %" PRIu64 " %s ms=%" PRId64, fid, errname(r),
		    now_ms() - t0);
		return;
	}
	pthread_mutex_lock(&lock);
	held_take(fid);
	pthread_mutex_unlock(&lock);
	out("ok release %" PRIu64 " epoch=%" PRIu64 " ms=%" PRId64, fid, epoch,
	    now_ms() - t0);
}

static bool parse_op(const char *s, uint8_t *op)
{
	if (!s)
		return false;
	if (strcmp(s, "set") == 0)
		*op = LM_PL_SET;
	else if (strcmp(s, "setw") == 0)
		*op = LM_PL_SETW;
	else if (strcmp(s, "unlock") == 0)
		*op = LM_PL_UNLOCK;
	else if (strcmp(s, "cancel") == 0)
		*op = LM_PL_CANCEL;
	else
		return false;
	return true;
}

static bool parse_type(const char *s, uint8_t *type)
{
	if (!s)
		return false;
	if (strcmp(s, "read") == 0)
		*type = LM_LK_READ;
	else if (strcmp(s, "write") == 0)
		*type = LM_LK_WRITE;
	else
		return false;
	return true;
}

/* plock F op type START END OWNER [TMO] / flock F op type OWNER [TMO] */
static void cmd_plock(char **a, int n, bool flock)
{
	struct lkm_plock p = { .space = flock ? LM_SPACE_FLOCK
					      : LM_SPACE_POSIX,
			       .pid = (uint32_t)getpid(),
			       .end = LM_OFFSET_MAX };
	int64_t t0 = now_ms();
	int base = flock ? 4 : 6, r;

	if (n < base + 1 || !parse_u64(a[1], &p.fileid) ||
	    !parse_op(a[2], &p.op) || !parse_type(a[3], &p.type) ||
	    (!flock && (!parse_u64(a[4], &p.start) ||
			!parse_u64(a[5], &p.end))) ||
	    !parse_u64(a[base], &p.owner)) {
		out("err %s usage", a[0]);
		return;
	}
	if (p.op == LM_PL_UNLOCK)
		p.type = LM_LK_UNLOCK;
	r = lkm_plock(client, &p, parse_int(n > base + 1 ? a[base + 1] : NULL,
					    -1));
	if (r < 0)
		out("err %s %" PRIu64 " %s %s ms=%" PRId64, a[0], p.fileid,
		    a[2], errname(r), now_ms() - t0);
	else
		out("ok %s %" PRIu64 " %s ms=%" PRId64, a[0], p.fileid, a[2],
		    now_ms() - t0);
}

static void cmd_getlk(char **a, int n)
{
	struct lkm_plock p = { .space = LM_SPACE_POSIX,
			       .pid = (uint32_t)getpid() };
	struct lm_lock_entry e;
	int r;

	if (n < 6 || !parse_u64(a[1], &p.fileid) ||
	    !parse_type(a[2], &p.type) || !parse_u64(a[3], &p.start) ||
	    !parse_u64(a[4], &p.end) || !parse_u64(a[5], &p.owner)) {
		out("err getlk usage");
		return;
	}
	r = lkm_getlk(client, &p, &e);
	if (r < 0)
		out("err getlk %" PRIu64 " %s", p.fileid, errname(r));
	else if (r == 0)
		out("ok getlk %" PRIu64 " none", p.fileid);
	else
		out("ok getlk %" PRIu64 " type=%s node=%" PRIu32
		    " owner=%" PRIu64 " pid=%" PRIu32 " start=%" PRIu64
		    " end=%" PRIu64, p.fileid,
		    e.type == LM_LK_WRITE ? "write" : "read", e.node, e.owner,
		    e.pid, e.start, e.end);
}

static void cmd_owner(char **a, int n, const uint8_t *volume)
{
	struct lm_res res;
	struct lm_owner_entry *v;
	size_t nv;
	int r;

	memcpy(res.volume, volume, LM_VOLUME_LEN);
	if (n < 2 || !parse_u64(a[1], &res.fileid)) {
		out("err owner usage");
		return;
	}
	r = lkm_owners(client, &res, &v, &nv);
	if (r < 0) {
		out("err owner %" PRIu64 " %s", res.fileid, errname(r));
		return;
	}
	if (nv == 0)
		out("ok owner %" PRIu64 " owner=0 epoch=0 waiters=0",
		    res.fileid);
	else
		out("ok owner %" PRIu64 " owner=%" PRIu32 " epoch=%" PRIu64
		    " waiters=%" PRIu32 " revoking=%u", res.fileid, v[0].owner,
		    v[0].epoch, v[0].n_waiters, v[0].revoking);
	free(v);
}

static void cmd_status(void)
{
	struct lm_s_r_status s;
	int r = lkm_status(client, &s);

	if (r < 0) {
		out("err status %s", errname(r));
		return;
	}
	out("ok status node=%s id=%" PRIu32 " quorate=%u ready=%u syncing=%u"
	    " members=%" PRIu32 " epoch=%" PRIu64 " version=%" PRIu64
	    " digest=%016" PRIx64 " resources=%" PRIu64 " locks=%" PRIu64
	    " lease_ms=%" PRId64, s.node_name, s.node_id, s.quorate, s.ready,
	    s.syncing, s.n_members, s.epoch, s.version, s.digest,
	    s.n_resources, s.n_locks, s.lease_remaining_ms);
}

static void cmd_held(void)
{
	char buf[4096];
	size_t off = 0;

	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < n_held && off < sizeof(buf) - 48; i++)
		off += snprintf(buf + off, sizeof(buf) - off,
				" %" PRIu64 ":%" PRIu64, held[i].fileid,
				held[i].epoch);
	pthread_mutex_unlock(&lock);
	buf[off] = '\0';
	out("ok held%s", buf);
}

static int ev_kind(const char *s)
{
	for (size_t i = 0; i < sizeof(evk_names) / sizeof(evk_names[0]); i++)
		if (strcmp(s, evk_names[i]) == 0)
			return (int)i;
	return -1;
}

static struct logged_ev *find_ev(int kind, bool any, uint64_t fid)
{
	for (size_t i = 0; i < n_evlog; i++) {
		struct logged_ev *e = &evlog[i];

		if (!e->matched && e->kind == kind && (any || e->fileid == fid))
			return e;
	}
	return NULL;
}

static void cmd_wait_event(char **a, int n)
{
	struct logged_ev *e = NULL;
	struct timespec dl;
	int64_t t0 = now_ms();
	uint64_t fid = 0;
	bool any;
	int kind, tmo;

	if (n < 4 || (kind = ev_kind(a[1])) < 0) {
		out("err wait-event usage");
		return;
	}
	any = strcmp(a[2], "-") == 0 || kind == EVK_LEASE;
	if (!any && !parse_u64(a[2], &fid)) {
		out("err wait-event usage");
		return;
	}
	tmo = atoi(a[3]);
	clock_gettime(CLOCK_MONOTONIC, &dl);
	dl.tv_sec += tmo / 1000;
	dl.tv_nsec += (long)(tmo % 1000) * 1000000L;
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&lock);
	while (!(e = find_ev(kind, any, fid)))
		if (pthread_cond_timedwait(&cond, &lock, &dl) == ETIMEDOUT)
			break;
	if (!e)
		e = find_ev(kind, any, fid);
	if (e)
		e->matched = true;
	pthread_mutex_unlock(&lock);
	if (e)
		out("ok wait-event %s %" PRIu64 " epoch=%" PRIu64
		    " ms=%" PRId64, a[1], e->fileid, e->epoch, now_ms() - t0);
	else
		out("err wait-event %s %s timeout ms=%" PRId64, a[1], a[2],
		    now_ms() - t0);
}

/* Returns false on quit. */
static bool run_line(char *line, const uint8_t *volume)
{
	char *a[16], *save = NULL;
	int n = 0;

	for (char *t = strtok_r(line, " \t\r\n", &save); t && n < 16;
	     t = strtok_r(NULL, " \t\r\n", &save))
		a[n++] = t;
	if (n == 0 || a[0][0] == '#')
		return true;
	if (strcmp(a[0], "acquire") == 0)
		cmd_acquire(a, n);
	else if (strcmp(a[0], "release") == 0)
		cmd_release(a, n);
	else if (strcmp(a[0], "plock") == 0)
		cmd_plock(a, n, false);
	else if (strcmp(a[0], "flock") == 0)
		cmd_plock(a, n, true);
	else if (strcmp(a[0], "getlk") == 0)
		cmd_getlk(a, n);
	else if (strcmp(a[0], "owner") == 0)
		cmd_owner(a, n, volume);
	else if (strcmp(a[0], "status") == 0)
		cmd_status();
	else if (strcmp(a[0], "held") == 0)
		cmd_held();
	else if (strcmp(a[0], "wait-event") == 0)
		cmd_wait_event(a, n);
	else if (strcmp(a[0], "sleep") == 0) {
		usleep((useconds_t)parse_int(n > 1 ? a[1] : NULL, 0) * 1000);
		out("ok sleep %s", n > 1 ? a[1] : "0");
	} else if (strcmp(a[0], "hold") == 0) {
		out("ok hold");
		while (getchar() != EOF)
			;
		return false;
	} else if (strcmp(a[0], "quit") == 0) {
		return false;
	} else {
		out("err %s unknown-command", a[0]);
	}
	return true;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: lkm-probe [--socket PATH] --volume UUID "
		   "[--label L] [--auto-release] [--all-lease]\n"
		   "  commands on stdin, one per line; see the source "
		   "header\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "volume", required_argument, NULL, 'v' },
		{ "label", required_argument, NULL, 'l' },
		{ "auto-release", no_argument, NULL, 'a' },
		{ "all-lease", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lkm_hello hello = { .kind = LM_CLIENT_CSVFS,
				   .label = "lkm-probe" };
	const char *sock = NULL;
	bool have_volume = false;
	pthread_condattr_t ca;
	char *line = NULL;
	size_t cap = 0;
	int ch, r;

	while ((ch = getopt_long(argc, argv, "s:v:l:aLh", opts, NULL)) != -1) {
		switch (ch) {
		case 's':
			sock = optarg;
			break;
		case 'v':
			if (cv_uuid_parse(optarg, hello.volume) < 0) {
				fprintf(stderr, "lkm-probe: bad UUID %s\n",
					optarg);
				return 2;
			}
			have_volume = true;
			break;
		case 'l':
			hello.label = optarg;
			break;
		case 'a':
			auto_release = true;
			break;
		case 'L':
			all_lease = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!have_volume) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&cond, &ca);

	r = lkm_connect(sock, &hello, 5000, &client);
	if (r < 0) {
		out("err connect %s %s", errname(r), lkm_strerror(r));
		return 1;
	}
	r = lkm_start_events(client, on_event, NULL);
	if (r < 0) {
		out("err events %s", errname(r));
		lkm_close(client);
		return 1;
	}
	out("ok connect node=%s id=%" PRIu32, lkm_server(client)->node_name,
	    lkm_server(client)->node_id);
	while (getline(&line, &cap, stdin) > 0)
		if (!run_line(line, hello.volume))
			break;
	free(line);
	lkm_close(client);
	return 0;
}
