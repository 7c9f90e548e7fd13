// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_lkm.c - liblockmgr against a real csvfs-lockd.
 *
 * Starts `csvfs-lockd -f --standalone` on a socket in a private temporary
 * directory ($top_builddir/lockmgr/csvfs-lockd; the test is skipped, exit
 * 77, when it is not built) and exercises every lkm call: connect errors
 * and hello, acquire/release with growing epochs, ownership shared by two
 * clients of the node and revoked by a drain (revoke events, NOWAIT, a
 * timed-out acquire canceled in lockd),
 * byte-range and flock locks (SET, conflict, SETW woken by an unlock,
 * GETLK), the queries including replies split into several batches, the
 * admin calls and their errors, lease events on the event thread, and
 * finally lockd killed under a waiting call: the handler gets the break
 * event and the call fails with -ECONNRESET.
 *
 * lockd is started with PR_SET_PDEATHSIG, so it dies with the test even
 * when an assertion or a sanitizer aborts the process.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "lkm.h"
#include "lm_proto.h" /* the fake lockd below speaks the wire */

#define TMO 5000
#define LEASE_MS 2000

static char tmpdir[64];
static char sock_path[128];
static char lockd_bin[4096];
static pid_t lockd_pid = -1;

static const uint8_t vol[LM_VOLUME_LEN] = {
	0x5c, 0x3f, 0x0a, 0x9e, 0x7d, 0x41, 0x4b, 0x2a,
	0x9c, 0x11, 0x2f, 0x6e, 0x8d, 0x0b, 0x4a, 0x17,
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ lockd */

static void write_conf(const char *path)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "[cluster]\ntransport = standalone\nnode = t1\n"
		   "socket = %s\nstate_dir = %s/state\nlease_timeout_ms = %d\n"
		   "[log]\nlevel = debug\n", sock_path, tmpdir, LEASE_MS);
	fclose(f);
}

static void spawn_lockd(void)
{
	char conf[160], logf[160];
	int fd;

	snprintf(conf, sizeof(conf), "%s/csvfs.conf", tmpdir);
	snprintf(logf, sizeof(logf), "%s/lockd.log", tmpdir);
	write_conf(conf);
	lockd_pid = fork();
	assert_true(lockd_pid >= 0);
	if (lockd_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(logf, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(lockd_bin, lockd_bin, "-f", "--standalone", "-c", conf,
		      "--socket", sock_path, (char *)NULL);
		_exit(127);
	}
}

/* Connect as a tool until lockd answers and is ready. */
static void wait_lockd_ready(void)
{
	struct lm_s_r_status st = { 0 };
	struct lkm_client *c = NULL;
	int64_t t0 = now_ms();
	int r = -1;

	while (now_ms() - t0 < 15000) {
		if (waitpid(lockd_pid, NULL, WNOHANG) == lockd_pid)
			fail_msg("csvfs-lockd exited at start; see %s/lockd.log",
				 tmpdir);
		if (!c && lkm_connect(sock_path, NULL, 1000, &c) < 0)
			c = NULL;
		if (c) {
			r = lkm_status(c, &st);
			if (r == 0 && st.ready)
				break;
		}
		usleep(20000);
	}
	assert_non_null(c);
	assert_int_equal(r, 0);
	assert_true(st.ready);
	lkm_close(c);
}

static void stop_lockd(void)
{
	int64_t t0 = now_ms();

	if (lockd_pid <= 0)
		return;
	kill(lockd_pid, SIGTERM);
	while (waitpid(lockd_pid, NULL, WNOHANG) == 0) {
		if (now_ms() - t0 > 5000) {
			kill(lockd_pid, SIGKILL);
			waitpid(lockd_pid, NULL, 0);
			break;
		}
		usleep(10000);
	}
	lockd_pid = -1;
}

static int group_setup(void **state)
{
	spawn_lockd();
	wait_lockd_ready();
	return 0;
}

static int group_teardown(void **state)
{
	stop_lockd();
	return 0;
}

/* ---------------------------------------------------- event recorder */

#define MAX_EV 512

struct rec_ev {
	uint16_t type;
	uint64_t fileid;
	uint64_t epoch;
	uint8_t valid;
};

struct recorder {
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct rec_ev ev[MAX_EV];
	size_t n;
	struct lkm_client *c;
	bool auto_release; /* answer revokes like csvfs */
};

static void rec_init(struct recorder *r, struct lkm_client *c, bool auto_rel)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->c = c;
	r->auto_release = auto_rel;
}

static void on_event(const struct lkm_event *ev, void *arg)
{
	struct recorder *r = arg;
	struct rec_ev e = { .type = ev->type };

	if (ev->type == LKM_EV_LEASE) {
		e.valid = ev->lease_valid;
	} else if (ev->type != LKM_EV_BROKEN) {
		e.fileid = ev->fileid;
		e.epoch = ev->epoch;
	}
	if (ev->type == LKM_EV_REVOKE && r->auto_release)
		lkm_release_async(r->c, e.fileid, e.epoch);
	pthread_mutex_lock(&r->m);
	if (r->n < MAX_EV)
		r->ev[r->n++] = e;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->m);
}

/* Wait for an event of type (and fileid unless ~0); true if seen. */
static bool rec_wait(struct recorder *r, uint16_t type, uint64_t fileid,
		     int ms, struct rec_ev *out)
{
	int64_t t0 = now_ms();
	bool found = false;

	pthread_mutex_lock(&r->m);
	while (!found) {
		for (size_t i = 0; i < r->n && !found; i++) {
			if (r->ev[i].type != type ||
			    (fileid != ~0ull && r->ev[i].fileid != fileid))
				continue;
			found = true;
			if (out)
				*out = r->ev[i];
		}
		if (found || now_ms() - t0 >= ms)
			break;
		pthread_mutex_unlock(&r->m);
		usleep(5000);
		pthread_mutex_lock(&r->m);
	}
	pthread_mutex_unlock(&r->m);
	return found;
}

static struct lkm_client *connect_csvfs(const char *label)
{
	struct lkm_hello h = { .kind = LM_CLIENT_CSVFS, .label = label };
	struct lkm_client *c = NULL;

	memcpy(h.volume, vol, sizeof(vol));
	assert_int_equal(lkm_connect(sock_path, &h, TMO, &c), 0);
	assert_non_null(c);
	return c;
}

static struct lkm_client *connect_admin(void)
{
	struct lkm_hello h = { .kind = LM_CLIENT_ADMIN, .label = "test" };
	struct lkm_client *c = NULL;

	assert_int_equal(lkm_connect(sock_path, &h, TMO, &c), 0);
	return c;
}

/* ------------------------------------------------------------ tests */

static void test_connect_errors(void **state)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct lkm_client *c = NULL;
	char path[sizeof(sa.sun_path) - 8];
	int fd;

	snprintf(path, sizeof(path), "%s/absent.sock", tmpdir);
	assert_int_equal(lkm_connect(path, NULL, 1000, &c), -ENOENT);
	assert_null(c);

	/* A socket nobody listens on. */
	snprintf(path, sizeof(path), "%s/dead.sock", tmpdir);
	memcpy(sa.sun_path, path, sizeof(path));
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(lkm_connect(path, NULL, 1000, &c), -ECONNREFUSED);
	close(fd);
	unlink(path);

	/* The environment names the socket when the caller does not. */
	setenv(LKM_SOCKET_ENV, sock_path, 1);
	assert_int_equal(lkm_connect(NULL, NULL, TMO, &c), 0);
	lkm_close(c);
	unsetenv(LKM_SOCKET_ENV);

	assert_string_equal(lkm_strerror(-ENOENT), strerror(ENOENT));
	assert_non_null(lkm_strerror(-LM_ERR_NONODE));
	assert_string_not_equal(lkm_strerror(-LM_ERR_NONODE),
				lkm_strerror(-LM_ERR_NOQUORUM));
}

static void test_hello(void **state)
{
	struct lkm_client *c = connect_csvfs("hello");
	const struct lkm_server_info *si = lkm_server(c);

	char why[200];

	assert_string_equal(si->node_name, "t1");
	assert_true(si->node_id != 0);
	lkm_close(c);
	/* what a refused client prints */
	lkm_proto_refusal(why, sizeof(why), 1, 2, 3, 3);
	assert_string_equal(why, "csvfs-lockd speaks client protocol 1..2, "
				 "this client 3..3: upgrade csvfs-lockd");
	lkm_proto_refusal(why, sizeof(why), 3, 4, 2, 2);
	assert_string_equal(why, "csvfs-lockd speaks client protocol 3..4, "
				 "this client 2..2: upgrade this client");
}

static void test_acquire_release(void **state)
{
	struct lkm_client *c = connect_csvfs("acq");
	uint64_t e1 = 0, e2 = 0, e3 = 0;

	assert_int_equal(lkm_acquire(c, 1, 0, TMO, &e1), 0);
	assert_true(e1 > 0);
	/* Acquiring what we own is idempotent. */
	assert_int_equal(lkm_acquire(c, 1, 0, TMO, &e2), 0);
	assert_int_equal(e2, e1);
	assert_int_equal(lkm_release(c, 1, e1 + 100, TMO), -LM_ERR_NOTOWNER);
	assert_int_equal(lkm_release(c, 1, e1, TMO), 0);
	assert_int_equal(lkm_release(c, 1, e1, TMO), -LM_ERR_NOTOWNER);
	assert_int_equal(lkm_acquire(c, 1, 0, TMO, &e3), 0);
	assert_true(e3 > e1);
	assert_int_equal(lkm_release(c, 1, e3, TMO), 0);
	lkm_close(c);
}

/*
 * EX ownership belongs to the node; lockd shares it among the node's
 * clients (holders).  A revoke (here from a drain, in a cluster from
 * another node's acquire) goes to every holder, and the node gives the
 * file up when the last holder released it.
 */
static void test_shared_and_revoke(void **state)
{
	struct lkm_client *a = connect_csvfs("a"), *b = connect_csvfs("b");
	struct lkm_client *c = connect_csvfs("c"), *adm = connect_admin();
	static struct recorder ra; /* outlives a failed assertion */
	struct lm_res res = { .fileid = 2 };
	struct lm_owner_entry *v;
	struct rec_ev ev;
	uint64_t ea = 0, eb = 0, ec = 0;
	size_t n;

	memcpy(res.volume, vol, sizeof(vol));
	rec_init(&ra, a, false);
	assert_int_equal(lkm_start_events(a, on_event, &ra), 0);
	assert_int_equal(lkm_start_events(a, on_event, &ra), -EALREADY);
	assert_int_equal(lkm_acquire(a, 2, 0, TMO, &ea), 0);
	assert_int_equal(lkm_acquire(b, 2, 0, TMO, &eb), 0);
	assert_int_equal(eb, ea);
	assert_int_equal(lkm_release(b, 2, eb, TMO), 0);

	/* Drain: a is asked to give the file up. */
	assert_int_equal(lkm_drain(adm, NULL), 0);
	assert_true(rec_wait(&ra, LKM_EV_REVOKE, 2, TMO, &ev));
	assert_int_equal(ev.epoch, ea);
	/* While it is being revoked, NOWAIT fails at once... */
	assert_int_equal(lkm_acquire(c, 2, LM_ACQ_NOWAIT, TMO, &ec), -EAGAIN);
	/* ...and a waiting acquire that times out is canceled in lockd. */
	assert_int_equal(lkm_acquire(c, 2, 0, 300, &ec), -ETIMEDOUT);
	assert_int_equal(lkm_release(a, 2, ea, TMO), 0);
	usleep(200000);
	assert_int_equal(lkm_owners(adm, &res, &v, &n), 0);
	if (n > 0)
		assert_int_equal(v[0].owner, 0);
	free(v);
	assert_int_equal(lkm_resume(adm, NULL), 0);
	/* c's connection still works after the canceled call. */
	assert_int_equal(lkm_acquire(c, 2, 0, TMO, &ec), 0);
	assert_true(ec > ea);
	assert_int_equal(lkm_release(c, 2, ec, TMO), 0);
	lkm_close(a);
	lkm_close(b);
	lkm_close(c);
	lkm_close(adm);
}

/* A failed test must not leave the node draining for the next ones. */
static int resume_node(void **state)
{
	struct lkm_client *adm = NULL;

	if (lkm_connect(sock_path, NULL, TMO, &adm) == 0) {
		lkm_resume(adm, NULL);
		lkm_close(adm);
	}
	return 0;
}

struct setw_arg {
	struct lkm_client *c;
	struct lkm_plock p;
	int ret;
	int64_t done_ms;
};

static void *setw_thread(void *arg)
{
	struct setw_arg *s = arg;

	s->ret = lkm_plock(s->c, &s->p, TMO);
	s->done_ms = now_ms();
	return NULL;
}

static void test_plock(void **state)
{
	struct lkm_client *a = connect_csvfs("a"), *b = connect_csvfs("b");
	struct lkm_plock wa = { .fileid = 4, .space = LM_SPACE_POSIX,
				.op = LM_PL_SET, .type = LM_LK_WRITE,
				.owner = 11, .start = 0, .end = 99, .pid = 1 };
	struct lkm_plock rb = wa;
	struct lm_lock_entry ce;
	struct setw_arg s;
	pthread_t th;
	int64_t t_unlock;

	rb.owner = 22;
	rb.type = LM_LK_READ;
	rb.start = 50;
	rb.end = 60;
	rb.pid = 2;
	assert_int_equal(lkm_plock(a, &wa, TMO), 0);
	assert_int_equal(lkm_plock(b, &rb, TMO), -EAGAIN);
	assert_int_equal(lkm_getlk(b, &rb, &ce), 1);
	assert_int_equal(ce.type, LM_LK_WRITE);
	assert_int_equal(ce.owner, 11);
	assert_int_equal(ce.start, 0);
	assert_int_equal(ce.end, 99);
	/* No conflict with one's own lock, nor outside the range. */
	assert_int_equal(lkm_getlk(a, &wa, NULL), 0);
	rb.start = 100;
	rb.end = LM_OFFSET_MAX;
	assert_int_equal(lkm_getlk(b, &rb, NULL), 0);
	rb.start = 50;
	rb.end = 60;

	/* SETW waits until the unlock. */
	s = (struct setw_arg){ .c = b, .p = rb, .ret = 1 };
	s.p.op = LM_PL_SETW;
	assert_int_equal(pthread_create(&th, NULL, setw_thread, &s), 0);
	usleep(200000);
	assert_int_equal(s.ret, 1);
	wa.op = LM_PL_UNLOCK;
	wa.type = LM_LK_UNLOCK;
	t_unlock = now_ms();
	assert_int_equal(lkm_plock(a, &wa, TMO), 0);
	pthread_join(th, NULL);
	assert_int_equal(s.ret, 0);
	assert_true(s.done_ms >= t_unlock);

	/* Now a's write lock conflicts with b's read lock. */
	wa.op = LM_PL_SET;
	wa.type = LM_LK_WRITE;
	assert_int_equal(lkm_getlk(a, &wa, &ce), 1);
	assert_int_equal(ce.owner, 22);
	assert_int_equal(ce.type, LM_LK_READ);
	assert_int_equal(lkm_plock(a, &wa, TMO), -EAGAIN);
	rb.op = LM_PL_UNLOCK;
	rb.type = LM_LK_UNLOCK;
	assert_int_equal(lkm_plock(b, &rb, TMO), 0);
	assert_int_equal(lkm_getlk(a, &wa, NULL), 0);

	/* flock is a separate space. */
	wa.space = LM_SPACE_FLOCK;
	assert_int_equal(lkm_plock(a, &wa, TMO), 0);
	rb.space = LM_SPACE_FLOCK;
	rb.op = LM_PL_SET;
	rb.type = LM_LK_READ;
	assert_int_equal(lkm_plock(b, &rb, TMO), -EAGAIN);
	lkm_close(a); /* a's locks go with its connection */
	usleep(200000);
	assert_int_equal(lkm_plock(b, &rb, TMO), 0);
	lkm_close(b);
}

static void test_queries(void **state)
{
	struct lkm_client *c = connect_csvfs("q"), *adm = connect_admin();
	struct lm_s_r_status st;
	struct lm_node_entry *nodes;
	struct lm_owner_entry *ow;
	struct lm_lock_entry *lk;
	struct lm_res res = { .fileid = 1000 };
	struct lkm_plock p = { .fileid = 1000, .op = LM_PL_SET,
			       .type = LM_LK_READ, .owner = 5, .end = 9 };
	const int nfiles = 3 * LM_BATCH_MAX + 7; /* several batches */
	uint64_t ep[3 * LM_BATCH_MAX + 7];
	size_t n, mine = 0;

	memcpy(res.volume, vol, sizeof(vol));
	for (int i = 0; i < nfiles; i++)
		assert_int_equal(lkm_acquire(c, 1000 + i, 0, TMO, &ep[i]), 0);
	assert_int_equal(lkm_plock(c, &p, TMO), 0);

	assert_int_equal(lkm_status(adm, &st), 0);
	assert_true(st.quorate && st.ready && !st.syncing);
	assert_int_equal(st.n_members, 1);
	assert_int_equal(st.members[0], lkm_server(adm)->node_id);
	assert_string_equal(st.node_name, "t1");
	assert_int_equal(st.transport, 2);
	assert_true(st.n_resources >= (uint64_t)nfiles);
	assert_true(st.n_clients >= 2);
	assert_int_equal(st.lease_timeout_ms, LEASE_MS);

	assert_int_equal(lkm_nodes(adm, &nodes, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(nodes[0].name, "t1");
	assert_int_equal(nodes[0].state, LM_NODE_UP);
	assert_true(nodes[0].member);
	assert_true(nodes[0].n_owned >= (uint32_t)nfiles);
	free(nodes);

	assert_int_equal(lkm_owners(adm, NULL, &ow, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (ow[i].res.fileid >= 1000 &&
		    ow[i].res.fileid < 1000 + (uint64_t)nfiles &&
		    ow[i].owner == lkm_server(adm)->node_id)
			mine++;
	assert_int_equal(mine, nfiles);
	free(ow);

	assert_int_equal(lkm_owners(adm, &res, &ow, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ow[0].res.fileid, 1000);
	assert_int_equal(ow[0].epoch, ep[0]);
	assert_memory_equal(ow[0].res.volume, vol, sizeof(vol));
	free(ow);

	assert_int_equal(lkm_locks(adm, &res, &lk, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(lk[0].owner, 5);
	assert_int_equal(lk[0].end, 9);
	assert_int_equal(lk[0].type, LM_LK_READ);
	free(lk);

	for (int i = 0; i < nfiles; i++)
		assert_int_equal(lkm_release(c, 1000 + i, ep[i], TMO), 0);
	lkm_close(c);
	lkm_close(adm);
}

static void test_admin(void **state)
{
	struct lkm_client *adm = connect_admin(), *c = connect_csvfs("adm");
	struct lm_res res = { .fileid = 5 };
	struct lm_node_entry *nodes;
	uint64_t e = 0;
	size_t n;

	memcpy(res.volume, vol, sizeof(vol));
	assert_int_equal(lkm_handoff(adm, &res, "nosuchnode"), -LM_ERR_NONODE);
	assert_int_equal(lkm_drain(adm, "nosuchnode"), -LM_ERR_NONODE);
	assert_int_equal(lkm_resume(adm, "nosuchnode"), -LM_ERR_NONODE);
	assert_int_equal(lkm_handoff(adm, NULL, "t1"), -EINVAL);

	/* Drain this node: no new grants until resume. */
	assert_int_equal(lkm_drain(adm, NULL), 0);
	assert_int_equal(lkm_nodes(adm, &nodes, &n), 0);
	assert_int_equal(n, 1);
	assert_true(nodes[0].draining);
	free(nodes);
	assert_int_equal(lkm_acquire(c, 5, 0, TMO, &e), -LM_ERR_DRAINING);
	assert_int_equal(lkm_handoff(adm, &res, "t1"), -LM_ERR_DRAINING);
	assert_int_equal(lkm_resume(adm, ""), 0);
	assert_int_equal(lkm_acquire(c, 5, 0, TMO, &e), 0);
	assert_int_equal(lkm_release(c, 5, e, TMO), 0);
	lkm_close(c);
	lkm_close(adm);
}

static void test_lease_events(void **state)
{
	struct lkm_client *c = connect_csvfs("lease");
	static struct recorder r;
	struct rec_ev ev;

	rec_init(&r, c, false);
	assert_int_equal(lkm_start_events(c, on_event, &r), 0);
	/* Calls still work with the reader thread. */
	assert_int_equal(lkm_acquire(c, 6, 0, TMO, &ev.epoch), 0);
	assert_int_equal(lkm_release(c, 6, ev.epoch, TMO), 0);
	assert_true(rec_wait(&r, LKM_EV_LEASE, ~0ull, 2 * LEASE_MS, &ev));
	assert_int_equal(ev.valid, 1);
	lkm_close(c);
}

static void *setw_forever(void *arg)
{
	struct setw_arg *s = arg;

	s->ret = lkm_plock(s->c, &s->p, -1);
	return NULL;
}

/* Last: kills lockd under a waiting call. */
static void test_lockd_killed(void **state)
{
	struct lkm_client *a = connect_csvfs("a"), *b = connect_csvfs("b");
	static struct recorder rb;
	struct lkm_plock w = { .fileid = 7, .space = LM_SPACE_FLOCK,
			       .op = LM_PL_SET, .type = LM_LK_WRITE,
			       .owner = 1, .end = LM_OFFSET_MAX };
	struct setw_arg s = { .c = b, .p = w, .ret = 1 };
	uint64_t e = 0;
	pthread_t th;

	rec_init(&rb, b, false);
	assert_int_equal(lkm_start_events(b, on_event, &rb), 0);
	assert_int_equal(lkm_acquire(a, 7, 0, TMO, &e), 0);
	assert_int_equal(lkm_plock(a, &w, TMO), 0);
	s.p.owner = 2;
	s.p.op = LM_PL_SETW;
	assert_int_equal(pthread_create(&th, NULL, setw_forever, &s), 0);
	usleep(200000);
	assert_int_equal(s.ret, 1); /* waiting for a's flock */

	kill(lockd_pid, SIGKILL);
	waitpid(lockd_pid, NULL, 0);
	lockd_pid = -1;
	pthread_join(th, NULL);
	assert_int_equal(s.ret, -ECONNRESET);
	assert_true(rec_wait(&rb, 0, ~0ull, TMO, NULL));
	assert_int_equal(lkm_acquire(b, 8, 0, TMO, &e), -ECONNRESET);
	/* Without an event thread the break shows on the next call. */
	assert_int_equal(lkm_release(a, 7, e, TMO), -ECONNRESET);
	lkm_close(a);
	lkm_close(b);
}

/* ------------------------------------------------------ bad input */

static int raw_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(sock_path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Read until lockd closes the connection (0) or 5 s pass (-1); any
 * replies before the close are decoded into *last when last != NULL. */
static int wait_closed(int fd, struct lm_smsg *last)
{
	static uint8_t buf[LM_MSG_MAX + 16];
	ssize_t n;

	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return 0;
		if (n < 0)
			return errno == ECONNRESET ? 0 : -1;
		if (last)
			assert_int_equal(lm_smsg_decode(buf, (size_t)n, last),
					 0);
	}
}

/* A hello with header version `version` offering client versions
 * min..max. */
static size_t encode_hello(uint8_t *buf, size_t cap, uint32_t version,
			   uint32_t min, uint32_t max)
{
	struct lm_smsg *m = calloc(1, sizeof(*m));
	int len;

	assert_non_null(m);
	m->type = LM_S_HELLO;
	m->seq = 1;
	m->u.hello.proto_min = min;
	m->u.hello.proto_max = max;
	m->u.hello.kind = LM_CLIENT_CSVFS;
	memcpy(m->u.hello.volume, vol, LM_VOLUME_LEN);
	len = lm_smsg_encode(m, buf, cap);
	assert_true(len > 0);
	/* the version field of the header (bytes 4-5, little endian) */
	buf[4] = (uint8_t)version;
	buf[5] = (uint8_t)(version >> 8);
	free(m);
	return (size_t)len;
}

/*
 * Malformed, oversized, out-of-order and foreign-version messages: each
 * costs its sender the connection, never the daemon or its table.
 */
static void test_bad_input(void **state)
{
	static uint8_t buf[LM_MSG_MAX + 4096];
	struct lm_smsg *reply = calloc(1, sizeof(*reply));
	struct lm_s_r_status before, after;
	struct lkm_client *admin = connect_admin();
	size_t len;
	int fd;

	assert_non_null(reply);
	assert_int_equal(lkm_status(admin, &before), 0);

	/* garbage instead of a hello */
	fd = raw_connect();
	memset(buf, 0xa5, 64);
	assert_int_equal(send(fd, buf, 64, 0), 64);
	assert_int_equal(wait_closed(fd, NULL), 0);
	close(fd);

	/* a message longer than any the protocol allows */
	fd = raw_connect();
	memset(buf, 0, sizeof(buf));
	if (send(fd, buf, sizeof(buf), 0) >= 0)
		assert_int_equal(wait_closed(fd, NULL), 0);
	close(fd);

	/* a hello of a client from before version negotiation (header
	 * version 1): closed */
	fd = raw_connect();
	len = encode_hello(buf, sizeof(buf), 1, 1, 1);
	assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
	reply->type = 0;
	assert_int_equal(wait_closed(fd, reply), 0);
	assert_int_equal(reply->type, 0);
	close(fd);

	/* ranges that miss lockd's, above and below: refused with lockd's
	 * range in the reply, then closed */
	for (int k = 0; k < 2; k++) {
		uint32_t v = k ? LM_CLIENT_VERSION_MAX + 1 :
				 LM_CLIENT_VERSION_MIN - 1;

		fd = raw_connect();
		len = encode_hello(buf, sizeof(buf), LM_PROTO_FROZEN, v, v);
		assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
		reply->type = 0;
		assert_int_equal(wait_closed(fd, reply), 0);
		assert_int_equal(reply->type, LM_S_R_HELLO);
		assert_int_equal(reply->u.r_hello.status, EPROTONOSUPPORT);
		assert_int_equal(reply->u.r_hello.version, 0);
		assert_int_equal(reply->u.r_hello.proto_min,
				 LM_CLIENT_VERSION_MIN);
		assert_int_equal(reply->u.r_hello.proto_max,
				 LM_CLIENT_VERSION_MAX);
		close(fd);
	}

	/* a wider range: lockd picks the highest it speaks */
	fd = raw_connect();
	len = encode_hello(buf, sizeof(buf), LM_PROTO_FROZEN, 1,
			   LM_CLIENT_VERSION_MAX + 7);
	assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
	{
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		assert_true(n > 0);
		assert_int_equal(lm_smsg_decode(buf, (size_t)n, reply), 0);
	}
	assert_int_equal(reply->type, LM_S_R_HELLO);
	assert_int_equal(reply->u.r_hello.status, 0);
	assert_int_equal(reply->u.r_hello.version, LM_CLIENT_VERSION_MAX);
	close(fd);

	/* a request before the hello */
	fd = raw_connect();
	{
		struct lm_smsg *q = calloc(1, sizeof(*q));
		int n;

		assert_non_null(q);
		q->type = LM_S_QUERY;
		q->seq = 7;
		q->u.query.what = LM_QUERY_STATUS;
		n = lm_smsg_encode(q, buf, sizeof(buf));
		assert_true(n > 0);
		assert_int_equal(send(fd, buf, (size_t)n, 0), n);
		free(q);
	}
	assert_int_equal(wait_closed(fd, NULL), 0);
	close(fd);

	/* a good hello, then a truncated acquire */
	fd = raw_connect();
	len = encode_hello(buf, sizeof(buf), LM_PROTO_FROZEN,
			   LM_CLIENT_VERSION_MIN, LM_CLIENT_VERSION_MAX);
	assert_int_equal(send(fd, buf, len, 0), (ssize_t)len);
	assert_true(recv(fd, buf, sizeof(buf), 0) > 0); /* hello reply */
	{
		struct lm_smsg *q = calloc(1, sizeof(*q));
		int n;

		assert_non_null(q);
		q->type = LM_S_ACQUIRE;
		q->seq = 2;
		q->u.acquire.fileid = 77;
		n = lm_smsg_encode(q, buf, sizeof(buf));
		assert_true(n > 4);
		assert_int_equal(send(fd, buf, (size_t)n - 3, 0), n - 3);
		free(q);
	}
	assert_int_equal(wait_closed(fd, NULL), 0);
	close(fd);

	/*
	 * A peer that is neither root nor in socket_group: refused by lockd's
	 * SO_PEERCRED check (the socket is 0666; the directory is opened up
	 * for the moment so that the file system does not refuse first).
	 */
	assert_int_equal(chmod(tmpdir, 0711), 0);
	{
		pid_t pid = fork();
		int st;

		assert_true(pid >= 0);
		if (pid == 0) {
			struct lkm_client *c = NULL;
			int r;

			if (setgid(65534) || setuid(65534))
				_exit(2);
			r = lkm_connect(sock_path, NULL, TMO, &c);
			_exit(r == -EACCES ? 0 : 1);
		}
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 0);
	}
	assert_int_equal(chmod(tmpdir, 0700), 0);

	/* the daemon still serves, and nothing reached the table */
	assert_int_equal(lkm_status(admin, &after), 0);
	assert_true(after.ready);
	assert_int_equal(after.digest, before.digest);
	assert_int_equal(after.version, before.version);
	lkm_close(admin);
	free(reply);
}

static void cleanup_tmpdir(void)
{
	char cmd[128];

	if (!tmpdir[0] || getenv("LKM_TEST_KEEP"))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_lkm: could not remove %s\n", tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_errors),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_acquire_release),
		cmocka_unit_test_teardown(test_shared_and_revoke, resume_node),
		cmocka_unit_test(test_plock),
		cmocka_unit_test(test_queries),
		cmocka_unit_test_teardown(test_admin, resume_node),
		cmocka_unit_test(test_lease_events),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_lockd_killed),
	};
	const char *top = getenv("top_builddir");
	int rc;

	snprintf(lockd_bin, sizeof(lockd_bin), "%s/lockmgr/csvfs-lockd",
		 top ? top : "..");
	if (access(lockd_bin, X_OK) != 0) {
		printf("test_lkm: skipped: %s is not built (set top_builddir)\n",
		       lockd_bin);
		return 77;
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_lkm.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("test_lkm: mkdtemp");
		return 99;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/lockd.sock", tmpdir);
	signal(SIGPIPE, SIG_IGN);
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	stop_lockd();
	if (rc)
		fprintf(stderr, "test_lkm: lockd log kept in %s/lockd.log\n",
			tmpdir);
	else
		cleanup_tmpdir();
	return rc;
}
