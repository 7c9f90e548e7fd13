// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * test_chan.c - the coordinator channel (csvfs/backends/block/chan*.c)
 * with real TLS over loopback, in one process or two (fork).
 *
 * A small stand-in for the metadata engine answers requests from two
 * worker threads (so replies come back out of order and from threads
 * other than the connection's), or holds them unanswered.  Scenarios:
 * the key's derivation; handshake with the right key; refusal of a
 * wrong key, another volume's key, a TLS client with no key and a
 * non-TLS peer, each with the log saying why; 8 threads x 1000
 * concurrent requests matched; a server that stops answering
 * (ETIMEDOUT, then a new server on the port and the client reconnects);
 * a stopped (SIGSTOP) coordinator noticed by the keep-alive; recall
 * round trips; a peer killed mid-message on either side; 1 MiB
 * payloads both ways.  Finally the round-trip latency of a small
 * request and the throughput of 1 MiB messages are measured and printed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>

#include "chan.h"
#include "chan_i.h"
#include "clock.h"
#include "log.h"

#define NODE_SRV   1
#define NODE_CLI   2
#define PATTERN(i) ((uint8_t)((i)*7 + 3))

static char dir[] = "/tmp/test_chan.XXXXXX";
static char keypath[64], keypath2[64];
static const uint8_t vol1[CVB_UUID_LEN] = { 1, 2,  3,  4,  5,  6,  7,  8,
					    9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t vol2[CVB_UUID_LEN] = { 9 };
static struct cvb_chan_key key, key_other_authkey, key_other_volume;
static uint8_t *pattern;

/* A child still alive when its test failed half-way; killed in the
 * group's teardown so that none outlives the test program. */
static pid_t stray_child;

static const struct cvb_chan_times fast = {
	.connect_ms = 2000,
	.keepalive_ms = 200,
	.dead_ms = 1000,
	.backoff_min_ms = 20,
	.backoff_max_ms = 200,
};

/* ------------------------------------------------------------------------
 * The stand-in engine.
 */
#define ENG_QMAX 8192
struct eng {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cvb_srv_req *q[ENG_QMAX];
	unsigned qhead, qlen;
	bool hold; /* keep requests unanswered in held[] */
	struct cvb_srv_req *held[64];
	unsigned nheld;
	bool stop;
	pthread_t thr[2];
	atomic_int writes, ups, downs;
};

static void eng_answer(struct cvb_srv_req *req)
{
	const struct cvb_msg *q = cvb_srv_req_msg(req);
	struct cvb_msg *r = calloc(1, sizeof(*r));
	int st = 0;

	switch (q->type) {
	case CVB_GETATTR:
		r->u.r_attr.ino = q->u.ino.ino;
		r->u.r_attr.mode = 0100644;
		r->u.r_attr.uid = cvb_srv_req_node(req);
		break;
	case CVB_LOOKUP:
		st = strcmp(q->u.name.name, "missing") ? 0 : -ENOENT;
		r->u.r_attr.ino = 1000;
		break;
	case CVB_WRITE:
		for (uint32_t i = 0; i < q->u.io.len && !st; i++)
			if (q->u.io.data[i] != PATTERN(i))
				st = -EIO;
		r->u.r_io.len = q->u.io.len;
		break;
	case CVB_READ:
		r->u.r_io.len = q->u.io.len;
		r->u.r_io.data = pattern;
		break;
	default:
		break;
	}
	cvb_srv_reply(req, st, r);
	free(r);
}

static void *eng_worker(void *arg)
{
	struct eng *e = arg;
	struct cvb_srv_req *req;

	pthread_mutex_lock(&e->lock);
	for (;;) {
		while (!e->qlen && !e->stop)
			pthread_cond_wait(&e->cond, &e->lock);
		if (!e->qlen)
			break;
		req = e->q[e->qhead];
		e->qhead = (e->qhead + 1) % ENG_QMAX;
		e->qlen--;
		pthread_mutex_unlock(&e->lock);
		eng_answer(req);
		pthread_mutex_lock(&e->lock);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

static void eng_handler(void *arg, struct cvb_srv_req *req)
{
	struct eng *e = arg;

	if (cvb_srv_req_msg(req)->type == CVB_WRITE)
		atomic_fetch_add(&e->writes, 1);
	pthread_mutex_lock(&e->lock);
	if (e->hold && e->nheld < 64) {
		e->held[e->nheld++] = req;
	} else {
		if (e->qlen >= ENG_QMAX)
			abort();
		e->q[(e->qhead + e->qlen) % ENG_QMAX] = req;
		e->qlen++;
		pthread_cond_signal(&e->cond);
	}
	pthread_mutex_unlock(&e->lock);
}

static void eng_node(void *arg, uint32_t node, bool up)
{
	struct eng *e = arg;

	(void)node;
	atomic_fetch_add(up ? &e->ups : &e->downs, 1);
}

static struct eng *eng_start(void)
{
	struct eng *e = calloc(1, sizeof(*e));

	pthread_mutex_init(&e->lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	for (int i = 0; i < 2; i++)
		assert_int_equal(
			pthread_create(&e->thr[i], NULL, eng_worker, e), 0);
	return e;
}

/* Answer what is held, stop the workers once the queue is empty. */
static void eng_stop(struct eng *e)
{
	pthread_mutex_lock(&e->lock);
	e->hold = false;
	for (unsigned i = 0; i < e->nheld; i++)
		cvb_srv_reply(e->held[i], -EIO, NULL);
	e->nheld = 0;
	e->stop = true;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
	for (int i = 0; i < 2; i++)
		pthread_join(e->thr[i], NULL);
	free(e);
}

static struct cvb_srv *srv_start(struct eng *e, uint16_t port)
{
	struct cvb_srv_opts o = {
		.host = "127.0.0.1",
		.port = port,
		.key = &key,
		.node_id = NODE_SRV,
		.handler = eng_handler,
		.node_event = eng_node,
		.arg = e,
		.times = fast,
	};
	struct cvb_srv *srv = NULL;

	assert_int_equal(cvb_srv_start(&o, &srv), 0);
	return srv;
}

/* ------------------------------------------------------------------------
 * Client helpers.
 */
struct cli_seen {
	atomic_int recalls, resets;
	atomic_ullong last_ino;
	atomic_int recall_sleep_ms; /* a node slow to drop its map */
};

static void on_recall(void *arg, uint64_t ino, uint64_t gen)
{
	struct cli_seen *s = arg;

	(void)gen;
	usleep((useconds_t)atomic_load(&s->recall_sleep_ms) * 1000);
	atomic_store(&s->last_ino, ino);
	atomic_fetch_add(&s->recalls, 1);
}

static void on_reset(void *arg)
{
	atomic_fetch_add(&((struct cli_seen *)arg)->resets, 1);
}

static struct cvb_cli *cli_open(uint16_t port, const struct cvb_chan_key *k,
				uint32_t node, struct cli_seen *seen)
{
	struct cvb_cli_opts o = {
		.host = "127.0.0.1",
		.port = port,
		.key = k,
		.node_id = node,
		.recall = on_recall,
		.reset = on_reset,
		.arg = seen,
		.times = fast,
	};
	struct cvb_cli *cl = NULL;

	assert_int_equal(cvb_cli_open(&o, &cl), 0);
	return cl;
}

static int getattr(struct cvb_cli *cl, uint64_t ino, int timeout_ms,
		   struct cvb_msg *rep)
{
	struct cvb_msg q = { .type = CVB_GETATTR };

	q.u.ino.ino = ino;
	return cvb_cli_call(cl, &q, rep, NULL, timeout_ms);
}

static bool log_has(const char *needle)
{
	size_t cap = cv_log_ring_size();
	char *buf = malloc(cap + 1);
	size_t n = cv_log_ring_read(buf, cap);
	bool found;

	buf[n] = '\0';
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

/* Wait up to ms for the log to say needle. */
static bool log_wait(const char *needle, int ms)
{
	for (int i = 0; i < ms / 20; i++) {
		if (log_has(needle))
			return true;
		usleep(20000);
	}
	return log_has(needle);
}

static bool wait_connected(struct cvb_cli *cl, bool want, int ms)
{
	for (int i = 0; i < ms / 10; i++) {
		if (cvb_cli_connected(cl, NULL, NULL, 0) == want)
			return true;
		usleep(10000);
	}
	return false;
}

/* ------------------------------------------------------------------------
 * Keys.
 */
static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

static int setup(void **state)
{
	uint8_t authkey[128], other[128];
	char err[256];

	(void)state;
	cv_log_init("test_chan", true, LOG_WARNING);
	if (!mkdtemp(dir))
		return -1;
	snprintf(keypath, sizeof(keypath), "%s/authkey", dir);
	snprintf(keypath2, sizeof(keypath2), "%s/authkey2", dir);
	for (int i = 0; i < 128; i++) {
		authkey[i] = (uint8_t)(i * 31 + 1);
		other[i] = authkey[i];
	}
	other[127] ^= 1; /* one bit apart */
	write_file(keypath, authkey, sizeof(authkey));
	write_file(keypath2, other, sizeof(other));
	if (cvb_chan_key_load(keypath, vol1, &key, err, sizeof(err)) ||
	    cvb_chan_key_load(keypath2, vol1, &key_other_authkey, err,
			      sizeof(err)) ||
	    cvb_chan_key_load(keypath, vol2, &key_other_volume, err,
			      sizeof(err)))
		return -1;
	pattern = malloc(CVB_DATA_MAX);
	for (size_t i = 0; i < CVB_DATA_MAX; i++)
		pattern[i] = PATTERN(i);
	/* SIGPIPE stays fatal: the channel must never raise it */
	signal(SIGPIPE, SIG_DFL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (stray_child > 0) {
		kill(stray_child, SIGKILL);
		waitpid(stray_child, NULL, 0);
	}
	unlink(keypath);
	unlink(keypath2);
	rmdir(dir);
	free(pattern);
	return 0;
}

static void test_key(void **state)
{
	struct cvb_chan_key k;
	char err[256], path[96];

	(void)state;
	assert_int_equal(cvb_chan_key_load(keypath, vol1, &k, err, sizeof(err)),
			 0);
	assert_memory_equal(k.psk, key.psk, sizeof(k.psk));
	assert_string_equal(k.identity,
			    "csvfs-vol-0102030405060708090a0b0c0d0e0f10");
	assert_memory_not_equal(key.psk, key_other_authkey.psk,
				sizeof(key.psk));
	assert_memory_not_equal(key.psk, key_other_volume.psk, sizeof(key.psk));
	snprintf(path, sizeof(path), "%s/none", dir);
	assert_int_equal(cvb_chan_key_load(path, vol1, &k, err, sizeof(err)),
			 -ENOKEY);
	assert_non_null(strstr(err, path));
	write_file(path, "", 0);
	assert_int_equal(cvb_chan_key_load(path, vol1, &k, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "empty"));
	unlink(path);
}

/* ------------------------------------------------------------------------
 * Handshakes.
 */
static void test_handshake(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(cvb_srv_port(srv), &key, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));
	struct cvb_msg q = { .type = CVB_LOOKUP };
	uint32_t ids[4];

	(void)state;
	assert_int_equal(getattr(cl, 77, 3000, rep), 0);
	assert_int_equal(rep->type, CVB_GETATTR | CVB_REPLY);
	assert_int_equal(rep->u.r_attr.ino, 77);
	assert_int_equal(rep->u.r_attr.uid, NODE_CLI); /* HELLO's node id */
	assert_true(cvb_cli_connected(cl, NULL, NULL, 0));
	assert_int_equal(cvb_srv_nodes(srv, ids, 4), 1);
	assert_int_equal(ids[0], NODE_CLI);
	/* the engine's errors come back as the call's result */
	q.u.name.dir = 2;
	strcpy(q.u.name.name, "missing");
	assert_int_equal(cvb_cli_call(cl, &q, rep, NULL, 3000), -ENOENT);
	/* a request that does not encode never leaves */
	q.u.name.name[0] = '\0';
	assert_int_equal(cvb_cli_call(cl, &q, rep, NULL, 3000), -EINVAL);
	assert_int_equal(atomic_load(&e->ups), 1);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* A client whose key is refused: its calls fail with -EKEYREJECTED and
 * both logs say why. */
static void refused(const struct cvb_chan_key *k, const char *srv_says)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(cvb_srv_port(srv), k, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));
	char why[800];
	int err = 0;

	assert_int_equal(getattr(cl, 1, 800, rep), -EKEYREJECTED);
	assert_false(cvb_cli_connected(cl, &err, why, sizeof(why)));
	assert_int_equal(err, -EKEYREJECTED);
	assert_non_null(strstr(why, "refused this node's key"));
	assert_true(log_wait(srv_says, 2000));
	assert_true(log_has("cannot reach coordinator 127.0.0.1"));
	assert_int_equal(atomic_load(&e->ups), 0);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

static void test_wrong_key(void **state)
{
	(void)state;
	refused(&key_other_authkey, "refused: the peer's key does not match");
}

static void test_other_volume(void **state)
{
	(void)state;
	refused(&key_other_volume,
		"refused: the peer's key is for "
		"'csvfs-vol-09000000000000000000000000000000', not this "
		"volume");
}

/* A TLS 1.3 client without any PSK, and a peer that does not speak TLS. */
static void test_no_key(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	uint64_t deadline = cv_now_ms() + 3000;
	char err[320], buf[64];
	SSL *ssl;
	int fd;

	(void)state;
	/* the vanilla peers below are not ours: they may get SIGPIPE */
	signal(SIGPIPE, SIG_IGN);
	fd = cvb_tcp_connect("127.0.0.1", cvb_srv_port(srv), deadline, err,
			     sizeof(err));
	assert_true(fd >= 0);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	assert_int_not_equal(
		cvb_tls_handshake(ssl, false, deadline, err, sizeof(err)), 0);
	SSL_free(ssl);
	close(fd);
	SSL_CTX_free(ctx);
	assert_true(
		log_wait("refused: the peer offered no pre-shared key", 2000));
	/* not TLS at all */
	fd = cvb_tcp_connect("127.0.0.1", cvb_srv_port(srv), deadline, err,
			     sizeof(err));
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
	{
		struct pollfd p = { .fd = fd, .events = POLLIN };

		assert_int_equal(poll(&p, 1, 3000), 1);
		while (read(fd, buf, sizeof(buf)) > 0)
			;
	}
	close(fd);
	assert_true(
		log_wait("offered no pre-shared key (not a csvfs node of "
			 "this cluster?) (error:0A00009C:SSL routines::http "
			 "request)",
			 2000));
	assert_int_equal(atomic_load(&e->ups), 0);
	signal(SIGPIPE, SIG_DFL);
	cvb_srv_stop(srv);
	eng_stop(e);
}

/* ------------------------------------------------------------------------
 * Many threads on one connection.
 */
#define THREADS 8
#define CALLS	1000

struct worker {
	struct cvb_cli *cl;
	unsigned idx;
	int bad;
};

static void *call_worker(void *arg)
{
	struct worker *w = arg;
	struct cvb_msg *rep = malloc(sizeof(*rep));

	for (unsigned i = 0; i < CALLS; i++) {
		uint64_t ino = (uint64_t)w->idx << 32 | i;

		if (getattr(w->cl, ino, 10000, rep) || rep->u.r_attr.ino != ino)
			w->bad++;
	}
	free(rep);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(cvb_srv_port(srv), &key, NODE_CLI, &seen);
	struct worker w[THREADS];
	pthread_t thr[THREADS];

	(void)state;
	for (unsigned i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ .cl = cl, .idx = i + 1 };
		assert_int_equal(
			pthread_create(&thr[i], NULL, call_worker, &w[i]), 0);
	}
	for (unsigned i = 0; i < THREADS; i++) {
		pthread_join(thr[i], NULL);
		assert_int_equal(w[i].bad, 0);
	}
	assert_int_equal(atomic_load(&seen.resets), 0); /* one connection */
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
}

/* ------------------------------------------------------------------------
 * A server that stops answering, then another one on the same port.
 */
static void test_timeout_reconnect(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	uint16_t port = cvb_srv_port(srv);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(port, &key, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));
	uint64_t t0;
	int err;

	(void)state;
	assert_int_equal(getattr(cl, 5, 3000, rep), 0);
	pthread_mutex_lock(&e->lock);
	e->hold = true;
	pthread_mutex_unlock(&e->lock);
	t0 = cv_now_ms();
	assert_int_equal(getattr(cl, 6, 300, rep), -ETIMEDOUT);
	assert_true(cv_now_ms() - t0 >= 300 && cv_now_ms() - t0 < 1000);
	assert_int_equal(getattr(cl, 7, 300, rep), -ETIMEDOUT);
	/* keep-alives still flow: the connection outlives dead_ms */
	usleep(1500 * 1000);
	assert_true(cvb_cli_connected(cl, NULL, NULL, 0));
	assert_int_equal(atomic_load(&seen.resets), 0);
	/* the coordinator goes; the held requests' late replies go nowhere */
	cvb_srv_stop(srv);
	eng_stop(e);
	assert_true(wait_connected(cl, false, 2000));
	assert_true(log_wait("connection to coordinator 127.0.0.1 port", 1000));
	assert_int_equal(atomic_load(&seen.resets), 1);
	/* nobody listens: calls say so */
	assert_int_equal(getattr(cl, 8, 300, rep), -ECONNREFUSED);
	assert_false(cvb_cli_connected(cl, &err, NULL, 0));
	assert_int_equal(err, -ECONNREFUSED);
	/* a new coordinator on the same port: the client is back */
	e = eng_start();
	srv = srv_start(e, port);
	assert_int_equal(getattr(cl, 9, 3000, rep), 0);
	assert_int_equal(rep->u.r_attr.ino, 9);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* ------------------------------------------------------------------------
 * Two processes: a coordinator in a child.
 */
struct child {
	pid_t pid;
	uint16_t port;
};

/* The child runs a server of its own and reports its port. */
static struct child fork_server(void)
{
	struct child c = { 0 };
	int p[2];

	assert_int_equal(pipe(p), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		struct eng *e = eng_start();
		struct cvb_srv *srv = srv_start(e, 0);
		uint16_t port = cvb_srv_port(srv);

		close(p[0]);
		if (write(p[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		for (;;)
			pause(); /* until killed */
	}
	close(p[1]);
	stray_child = c.pid;
	assert_int_equal(read(p[0], &c.port, sizeof(c.port)), sizeof(c.port));
	close(p[0]);
	return c;
}

static void reap_child(struct child *c)
{
	int status;

	kill(c->pid, SIGKILL);
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	stray_child = 0;
}

/* A coordinator that stops dead (SIGSTOP): calls time out, the
 * keep-alive drops the connection within dead_ms, a new coordinator on
 * the port is found. */
static void test_dead_peer(void **state)
{
	struct child c = fork_server();
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(c.port, &key, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));
	struct cvb_srv *srv;
	struct eng *e;
	uint64_t t0;
	int status;

	(void)state;
	assert_int_equal(getattr(cl, 1, 3000, rep), 0);
	kill(c.pid, SIGSTOP);
	assert_int_equal(waitpid(c.pid, &status, WUNTRACED), c.pid);
	assert_true(WIFSTOPPED(status)); /* stopped, not just signalled */
	t0 = cv_now_ms();
	assert_int_equal(getattr(cl, 2, 300, rep), -ETIMEDOUT);
	assert_true(wait_connected(cl, false, 3000));
	/* noticed after dead_ms (1000) of silence, well within seconds */
	assert_true(cv_now_ms() - t0 < 2500);
	assert_true(log_has("nothing received for"));
	assert_int_equal(atomic_load(&seen.resets), 1);
	reap_child(&c);
	e = eng_start();
	srv = srv_start(e, c.port);
	assert_int_equal(getattr(cl, 3, 3000, rep), 0);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* ------------------------------------------------------------------------
 * Recall.
 */
static void test_recall(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	struct cli_seen s1 = { 0 }, s2 = { 0 };
	struct cvb_cli *c1 = cli_open(cvb_srv_port(srv), &key, 11, &s1);
	struct cvb_cli *c2 = cli_open(cvb_srv_port(srv), &key, 12, &s2);
	struct cvb_msg *rep = malloc(sizeof(*rep));

	(void)state;
	assert_int_equal(getattr(c1, 1, 3000, rep), 0);
	assert_int_equal(getattr(c2, 1, 3000, rep), 0);
	for (int i = 0; i < 100; i++) {
		assert_int_equal(cvb_srv_recall(srv, 11, 500 + i, 3, 2000), 0);
		assert_int_equal(atomic_load(&s1.last_ino), 500 + i);
	}
	assert_int_equal(cvb_srv_recall(srv, 12, 42, 3, 2000), 0);
	assert_int_equal(atomic_load(&s1.recalls), 100);
	assert_int_equal(atomic_load(&s2.recalls), 1);
	assert_int_equal(atomic_load(&s2.last_ino), 42);
	/* every node at once */
	assert_int_equal(cvb_srv_recall_all(srv, 900, 4, 2000), 0);
	assert_int_equal(atomic_load(&s1.last_ino), 900);
	assert_int_equal(atomic_load(&s2.last_ino), 900);
	/* one slow node: the recall times out, the other one answered */
	atomic_store(&s2.recall_sleep_ms, 600);
	assert_int_equal(cvb_srv_recall_all(srv, 901, 5, 300), -ETIMEDOUT);
	assert_int_equal(atomic_load(&s1.last_ino), 901);
	assert_true(log_wait("recall of the map of inode 901 from node 12 "
			     "(127.0.0.1:",
			     1000));
	usleep(400 * 1000); /* its late ack finds no waiter */
	atomic_store(&s2.recall_sleep_ms, 0);
	assert_int_equal(atomic_load(&s2.last_ino), 901);
	assert_int_equal(cvb_srv_recall_all(srv, 902, 6, 2000), 0);
	/* a node without a connection */
	assert_int_equal(cvb_srv_recall(srv, 13, 1, 1, 500), -ENOTCONN);
	cvb_cli_close(c2);
	assert_int_equal(cvb_srv_recall(srv, 12, 1, 1, 2000), -ENOTCONN);
	/* the same node again replaces its connection */
	c2 = cli_open(cvb_srv_port(srv), &key, 11, &s2);
	assert_int_equal(getattr(c2, 1, 3000, rep), 0);
	assert_true(log_wait("node 11 connected again", 1000));
	assert_true(wait_connected(c1, false, 2000));
	assert_int_equal(cvb_srv_recall(srv, 11, 77, 1, 2000), 0);
	assert_int_equal(atomic_load(&s2.last_ino), 77);
	cvb_cli_close(c1);
	cvb_cli_close(c2);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* ------------------------------------------------------------------------
 * Peers killed mid-message.
 */

/* Handshake and HELLO on fd as node, with the raw helpers. */
/* Handshake and a HELLO of node for vol speaking lo..hi, with the raw
 * helpers; *status is the coordinator's answer. */
static SSL *raw_hello(SSL_CTX *ctx, int fd, uint32_t node, const uint8_t *vol,
		      uint16_t lo, uint16_t hi, int *status)
{
	struct cvb_psk_seen seen = { .key = &key };
	uint64_t deadline = cv_now_ms() + 3000;
	struct cvb_msg m = { .type = CVB_HELLO };
	uint8_t *buf = NULL;
	size_t len;
	char err[320];
	SSL *ssl = SSL_new(ctx);

	cvb_ssl_set_sock(ssl, fd);
	SSL_set_app_data(ssl, &seen);
	if (cvb_tls_handshake(ssl, false, deadline, err, sizeof(err)))
		goto fail;
	SSL_set_app_data(ssl, NULL);
	m.u.hello = (struct cvb_q_hello){ .node_id = node,
					  .proto_min = lo,
					  .proto_max = hi };
	memcpy(m.u.hello.volume, vol, CVB_UUID_LEN);
	if (cvb_encode_alloc(&m, &buf, &len) ||
	    cvb_tls_write_all(ssl, buf, len, deadline))
		goto fail;
	free(buf);
	buf = NULL;
	if (cvb_tls_read_msg(ssl, &buf, &len, deadline) ||
	    cvb_msg_decode(buf, len, &m))
		goto fail;
	*status = m.status;
	free(buf);
	return ssl;
fail:
	free(buf);
	SSL_free(ssl);
	return NULL;
}

static SSL *raw_client(SSL_CTX *ctx, int fd, uint32_t node)
{
	int status = -1;
	SSL *ssl = raw_hello(ctx, fd, node, vol1, 1, 1, &status);

	if (ssl && status) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

/* HELLO refused: versions that do not meet, another volume's uuid. */
static void test_hello_refused(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	SSL_CTX *ctx = cvb_tls_ctx(false);
	char err[320];
	int fd, status;
	SSL *ssl;

	(void)state;
	for (int i = 0; i < 2; i++) {
		fd = cvb_tcp_connect("127.0.0.1", cvb_srv_port(srv),
				     cv_now_ms() + 3000, err, sizeof(err));
		assert_true(fd >= 0);
		ssl = raw_hello(ctx, fd, 45, i ? vol2 : vol1, i ? 1 : 2,
				i ? 1 : 3, &status);
		assert_non_null(ssl);
		assert_int_equal(status, i ? -ESTALE : -EPROTONOSUPPORT);
		SSL_free(ssl);
		close(fd);
	}
	assert_true(log_wait("refused: node 45 speaks versions 2..3, this "
			     "coordinator 1..1",
			     1000));
	assert_true(log_wait("refused: node 45 asks for another volume", 1000));
	assert_int_equal(atomic_load(&e->ups), 0);
	SSL_CTX_free(ctx);
	cvb_srv_stop(srv);
	eng_stop(e);
}

/* An authenticated node that sends nonsense is cut off, alone. */
static void test_bad_message(void **state)
{
	static const uint8_t hdr[2][CVB_HDR_LEN] = {
		/* magic, version 1, type 99, length 24 */
		{ 'C', 'V', 'B', 'M', 1, 0, 99, 0, 24 },
		/* a length over CVB_MSG_MAX */
		{ 'C', 'V', 'B', 'M', 1, 0, CVB_GETATTR, 0, 0, 0, 0x20 },
	};
	static const char *const says[2] = {
		"sent a bad unknown message (24 bytes)",
		"not a channel message (Bad message)",
	};
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	SSL_CTX *ctx = cvb_tls_ctx(false);
	struct cli_seen seen = { 0 };
	struct cvb_msg *rep = malloc(sizeof(*rep));
	struct cvb_cli *cl;
	char err[320];
	uint8_t *junk = NULL;
	size_t jlen;
	SSL *ssl;
	int fd, rc = 0;

	(void)state;
	for (int i = 0; i < 2; i++) {
		fd = cvb_tcp_connect("127.0.0.1", cvb_srv_port(srv),
				     cv_now_ms() + 3000, err, sizeof(err));
		assert_true(fd >= 0);
		ssl = raw_client(ctx, fd, 44);
		assert_non_null(ssl);
		assert_int_equal(cvb_tls_write_all(ssl, hdr[i], CVB_HDR_LEN,
						   cv_now_ms() + 3000),
				 0);
		assert_true(log_wait(says[i], 2000));
		/* the coordinator hung up (after a keep-alive or two) */
		for (int n = 0; n < 10; n++) {
			rc = cvb_tls_read_msg(ssl, &junk, &jlen,
					      cv_now_ms() + 3000);
			free(junk);
			junk = NULL;
			if (rc)
				break;
		}
		assert_int_not_equal(rc, 0);
		SSL_free(ssl);
		close(fd);
	}
	cl = cli_open(cvb_srv_port(srv), &key, NODE_CLI, &seen);
	assert_int_equal(getattr(cl, 4, 3000, rep), 0);
	cvb_cli_close(cl);
	SSL_CTX_free(ctx);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* A coordinator on every address takes IPv4 and IPv6 (where the
 * host has it) clients. */
static void test_any_address(void **state)
{
	struct cvb_srv_opts o = {
		.key = &key,
		.node_id = NODE_SRV,
		.handler = eng_handler,
		.node_event = eng_node,
		.times = fast,
	};
	struct eng *e = eng_start();
	struct cvb_srv *srv = NULL;
	struct cli_seen seen = { 0 };
	struct cvb_cli_opts co = {
		.port = 0,
		.key = &key,
		.node_id = NODE_CLI,
		.arg = &seen,
		.times = fast,
	};
	struct cvb_msg *rep = malloc(sizeof(*rep));
	const char *hosts[2] = { "127.0.0.1", "::1" };
	struct cvb_cli *cl;

	(void)state;
	o.arg = e;
	assert_int_equal(cvb_srv_start(&o, &srv), 0);
	co.port = cvb_srv_port(srv);
	for (int i = 0; i < 2; i++) {
		char err[320];
		int fd;

		co.host = hosts[i];
		fd = cvb_tcp_connect(hosts[i], co.port, cv_now_ms() + 1000, err,
				     sizeof(err));
		if (fd < 0) { /* no IPv6 here */
			assert_int_equal(i, 1);
			continue;
		}
		close(fd);
		assert_int_equal(cvb_cli_open(&co, &cl), 0);
		assert_int_equal(getattr(cl, 3, 3000, rep), 0);
		cvb_cli_close(cl);
	}
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* The coordinator moves: the client follows. */
static void test_retarget(void **state)
{
	struct eng *ea = eng_start(), *eb = eng_start();
	struct cvb_srv *a = srv_start(ea, 0), *b = srv_start(eb, 0);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(cvb_srv_port(a), &key, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));

	(void)state;
	assert_int_equal(getattr(cl, 1, 3000, rep), 0);
	assert_int_equal(atomic_load(&ea->ups), 1);
	assert_int_equal(cvb_cli_retarget(cl, "127.0.0.1", cvb_srv_port(b)), 0);
	assert_int_equal(getattr(cl, 2, 3000, rep), 0);
	assert_int_equal(atomic_load(&eb->ups), 1);
	assert_true(wait_connected(cl, true, 100));
	assert_int_equal(atomic_load(&seen.resets), 1);
	cvb_cli_close(cl);
	cvb_srv_stop(a);
	cvb_srv_stop(b);
	assert_int_equal(atomic_load(&ea->downs), 1);
	eng_stop(ea);
	eng_stop(eb);
	free(rep);
}

/* A node dies with half a 1 MiB write sent: the coordinator drops that
 * connection only, never hands the half message on, serves the rest. */
static void test_client_killed_mid_message(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	uint16_t port = cvb_srv_port(srv);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl;
	struct cvb_msg *rep = malloc(sizeof(*rep));
	pid_t pid;
	int status;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		SSL_CTX *ctx = cvb_tls_ctx(false);
		char err[320];
		int fd = cvb_tcp_connect("127.0.0.1", port, cv_now_ms() + 3000,
					 err, sizeof(err));
		struct cvb_msg w = { .type = CVB_WRITE, .req_id = 9 };
		uint8_t *buf;
		size_t len;
		SSL *ssl = raw_client(ctx, fd, 33);

		if (!ssl)
			_exit(2);

		w.u.io = (struct cvb_q_io){ .ino = 5,
					    .len = CVB_DATA_MAX,
					    .data = pattern };
		if (cvb_encode_alloc(&w, &buf, &len) ||
		    cvb_tls_write_all(ssl, buf, len / 2, cv_now_ms() + 3000))
			_exit(5);
		usleep(200 * 1000); /* let it reach the coordinator */
		raise(SIGKILL);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	assert_true(log_wait("connection of node 33 (127.0.0.1:", 3000));
	assert_true(log_wait("mid-message (", 1000));
	assert_int_equal(atomic_load(&e->writes), 0);
	cl = cli_open(port, &key, NODE_CLI, &seen);
	assert_int_equal(getattr(cl, 4, 3000, rep), 0);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* The child: a coordinator made of the raw helpers that answers a read
 * with half of its 1 MiB reply and dies. */
static void half_reply_server(int lfd)
{
	struct cvb_psk_seen seen = { .key = &key };
	SSL_CTX *ctx = cvb_tls_ctx(true);
	uint64_t deadline = cv_now_ms() + 5000;
	struct cvb_msg m, r = { .type = CVB_HELLO | CVB_REPLY };
	uint8_t *buf;
	size_t len;
	char err[320];
	int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
	SSL *ssl = SSL_new(ctx);

	cvb_ssl_set_sock(ssl, fd);
	SSL_set_app_data(ssl, &seen);
	if (fd < 0 || cvb_tls_handshake(ssl, true, deadline, err, sizeof(err)))
		_exit(2);
	if (cvb_tls_read_msg(ssl, &buf, &len, deadline) ||
	    cvb_msg_decode(buf, len, &m))
		_exit(3);
	r.req_id = m.req_id;
	r.u.r_hello = (struct cvb_r_hello){ 1, NODE_SRV };
	if (cvb_encode_alloc(&r, &buf, &len) ||
	    cvb_tls_write_all(ssl, buf, len, deadline))
		_exit(4);
	do { /* skip keep-alives up to the read */
		if (cvb_tls_read_msg(ssl, &buf, &len, deadline) ||
		    cvb_msg_decode(buf, len, &m))
			_exit(5);
	} while (m.type != CVB_READ);
	r = (struct cvb_msg){ .type = CVB_READ | CVB_REPLY,
			      .req_id = m.req_id };
	r.u.r_io = (struct cvb_r_io){ CVB_DATA_MAX, pattern };
	if (cvb_encode_alloc(&r, &buf, &len) ||
	    cvb_tls_write_all(ssl, buf, len / 2, deadline))
		_exit(6);
	usleep(100 * 1000);
	raise(SIGKILL);
}

static void test_server_killed_mid_message(void **state)
{
	struct cli_seen seen = { 0 };
	struct cvb_msg q = { .type = CVB_READ }, *rep = malloc(sizeof(*rep));
	struct cvb_srv *srv;
	struct cvb_cli *cl;
	struct eng *e;
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sa);
	uint8_t *rbuf = NULL;
	uint64_t t0;
	pid_t pid;
	int lfd, status, one = 1;

	(void)state;
	sa.sin_addr.s_addr = htonl(0x7f000001);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	/* the port is taken over later, maybe before FIN_WAIT ends */
	assert_int_equal(
		setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)),
		0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		half_reply_server(lfd);
	close(lfd);
	cl = cli_open(ntohs(sa.sin_port), &key, NODE_CLI, &seen);
	q.u.io = (struct cvb_q_io){ .ino = 5, .len = CVB_DATA_MAX };
	t0 = cv_now_ms();
	assert_int_equal(cvb_cli_call(cl, &q, rep, &rbuf, 5000), -ECONNRESET);
	assert_true(cv_now_ms() - t0 < 2000); /* not the call's timeout */
	assert_null(rbuf);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(log_wait("mid-message (", 1000));
	assert_true(wait_connected(cl, false, 1000));
	assert_int_equal(atomic_load(&seen.resets), 1);
	/* a real coordinator takes the port over */
	e = eng_start();
	srv = srv_start(e, ntohs(sa.sin_port));
	assert_int_equal(getattr(cl, 6, 3000, rep), 0);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

/* ------------------------------------------------------------------------
 * Largest payloads, and the measurements.
 */
static int io_call(struct cvb_cli *cl, uint16_t type, struct cvb_msg *rep,
		   uint8_t **rbuf)
{
	struct cvb_msg q = { .type = type };

	q.u.io = (struct cvb_q_io){ .ino = 5, .off = 0, .len = CVB_DATA_MAX };
	if (type == CVB_WRITE)
		q.u.io.data = pattern;
	return cvb_cli_call(cl, &q, rep, rbuf, 10000);
}

static void test_max_payload(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(cvb_srv_port(srv), &key, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));
	struct cvb_msg q = { .type = CVB_WRITE };
	uint8_t *rbuf = NULL;

	(void)state;
	assert_int_equal(io_call(cl, CVB_WRITE, rep, NULL), 0);
	assert_int_equal(rep->u.r_io.len, CVB_DATA_MAX);
	assert_int_equal(io_call(cl, CVB_READ, rep, &rbuf), 0);
	assert_non_null(rbuf);
	assert_int_equal(rep->u.r_io.len, CVB_DATA_MAX);
	assert_memory_equal(rep->u.r_io.data, pattern, CVB_DATA_MAX);
	free(rbuf);
	/* one byte more does not leave this node */
	q.u.io = (struct cvb_q_io){ .ino = 5,
				    .len = CVB_DATA_MAX + 1,
				    .data = pattern };
	assert_int_equal(cvb_cli_call(cl, &q, rep, NULL, 1000), -EINVAL);
	assert_int_equal(atomic_load(&e->writes), 1);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

#define LAT_N 5000
#define MB_N  200

static void test_measure(void **state)
{
	struct eng *e = eng_start();
	struct cvb_srv *srv = srv_start(e, 0);
	struct cli_seen seen = { 0 };
	struct cvb_cli *cl = cli_open(cvb_srv_port(srv), &key, NODE_CLI, &seen);
	struct cvb_msg *rep = malloc(sizeof(*rep));
	uint64_t *lat = malloc(LAT_N * sizeof(*lat)), t0, wr_ns, rd_ns;
	uint8_t *rbuf;

	(void)state;
	assert_int_equal(getattr(cl, 1, 3000, rep), 0);
	for (int i = 0; i < LAT_N; i++) {
		t0 = cv_now_ns();
		assert_int_equal(getattr(cl, (uint64_t)i, 3000, rep), 0);
		lat[i] = cv_now_ns() - t0;
	}
	qsort(lat, LAT_N, sizeof(*lat), cmp_u64);
	t0 = cv_now_ns();
	for (int i = 0; i < MB_N; i++)
		assert_int_equal(io_call(cl, CVB_WRITE, rep, NULL), 0);
	wr_ns = cv_now_ns() - t0;
	t0 = cv_now_ns();
	for (int i = 0; i < MB_N; i++) {
		assert_int_equal(io_call(cl, CVB_READ, rep, &rbuf), 0);
		free(rbuf);
	}
	rd_ns = cv_now_ns() - t0;
	printf("# channel over loopback TLS (this build's flags): getattr "
	       "round trip p50 %.1f us, p99 %.1f us (%d calls); 1 MiB "
	       "writes %.0f MiB/s, 1 MiB reads %.0f MiB/s (%d each, one "
	       "at a time)\n",
	       lat[LAT_N / 2] / 1e3, lat[LAT_N * 99 / 100] / 1e3, LAT_N,
	       MB_N / (wr_ns / 1e9), MB_N / (rd_ns / 1e9), MB_N);
	free(lat);
	cvb_cli_close(cl);
	cvb_srv_stop(srv);
	eng_stop(e);
	free(rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_handshake),
		cmocka_unit_test(test_wrong_key),
		cmocka_unit_test(test_other_volume),
		cmocka_unit_test(test_no_key),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_timeout_reconnect),
		cmocka_unit_test(test_dead_peer),
		cmocka_unit_test(test_recall),
		cmocka_unit_test(test_client_killed_mid_message),
		cmocka_unit_test(test_server_killed_mid_message),
		cmocka_unit_test(test_bad_message),
		cmocka_unit_test(test_hello_refused),
		cmocka_unit_test(test_retarget),
		cmocka_unit_test(test_any_address),
		cmocka_unit_test(test_max_payload),
		cmocka_unit_test(test_measure),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
