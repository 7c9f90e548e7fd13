// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * nfs_model - two ways to share libnfs between threads, measured with the
 * same request stream against a real NFS server (printed, not pass/fail).
 *
 * A libnfs context is not thread-safe.  The nfs backend keeps a pool of
 * contexts, each used by one FUSE worker at a time under its mutex with
 * the synchronous calls (csvfs/backends/nfs/conn.c).  The alternative is a
 * service thread that owns a context and drives the asynchronous calls,
 * so the requests of many workers are in flight together on one TCP
 * connection.  This program runs both:
 *
 *   pool     THREADS client threads, CONNS contexts; a thread tries the
 *            context it was given first (thread i gets i % CONNS), then
 *            any free one, then waits for its own, as csvfs does;
 *            nfs_pread() / nfs_pwrite().
 *   service  THREADS client threads queue requests to CONNS service
 *            threads (thread i to service i % CONNS), each owning one
 *            context: an eventfd wakes it, it submits with
 *            nfs_pread_async() / nfs_pwrite_async(), polls the context's
 *            socket and completes each request through the waiting
 *            thread's condition variable.
 *
 *	nfs_model -u nfs://SERVER/EXPORT?version=3 -m pool|service
 *		  -t THREADS -c CONNS -w randread|randwrite|seqread|seqwrite
 *		  -s SIZE_MB -d SECONDS [-f FILE] [-b BLOCK] [-T TIMEOUT_MS]
 *
 * FILE (default nfs_model.dat, relative to the export) must exist with at
 * least SIZE_MB MiB; it is read and overwritten, never extended.  Random
 * workloads use 4 KiB blocks anywhere in the file, sequential ones 1 MiB
 * blocks, each thread in its own stripe of the file (from its start,
 * wrapping).  Every thread's offsets come from a generator seeded by the
 * thread's index, so both models see the same stream.  Writes are
 * UNSTABLE WRITEs with no COMMIT: a COMMIT would cost both models alike.
 *
 * One line of results on stdout, key=value: operations per second, MiB/s,
 * latency median and p99 as the client thread saw it, and the process's
 * CPU time and context switches per operation.  Any failed or short call
 * ends the run at once with a message and exit status 1: a run with a
 * failed call has no figure worth printing.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <nfsc/libnfs.h>

#define KIB	    ((uint64_t)1024)
#define MIB	    ((uint64_t)1024 * 1024)
#define SVC_POLL_MS 100 /* nfs_service(0) at least this often: timeouts */
#define TCP_SYNCNT  3	/* connect gives up after about 15 s */

enum model { MODEL_POOL, MODEL_SERVICE };
enum op { OP_READ, OP_WRITE };

struct opts {
	const char *url;
	const char *file;
	enum model model;
	int threads;
	int conns;
	const char *workload;
	enum op op;
	bool sequential;
	uint64_t size;	/* bytes of FILE used */
	uint64_t block; /* bytes per request */
	int seconds;
	int timeout_ms;
};

/* One mounted context with the file open on it. */
struct conn {
	pthread_mutex_t lock; /* pool: held by the one thread using nfs */
	struct nfs_context *nfs;
	struct nfsfh *fh;
};

/*
 * A request handed to a service thread.  Each client thread has one,
 * reused for every request it makes, with its buffer.  The service
 * thread fills result, and for a read the buffer, then sets done under
 * lock and signals cond after unlocking: the request outlives the
 * signal, so the woken thread need not wait for the lock the signaller
 * still holds.  A late signal only wakes the next wait early, and the
 * loop on done absorbs it.
 */
struct svc_req {
	enum op op;
	uint64_t off;
	uint64_t len;
	char *buf;
	int result;	 /* bytes, or -errno */
	char error[160]; /* libnfs's message when result < 0 */
	bool done;	 /* protected by lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct svc_req *next; /* protected by svc->qlock */
};

/*
 * A service thread and its queue.  Lock order: svc->qlock is never held
 * while taking a request's lock, nor the other way round.
 */
struct svc {
	struct conn *conn; /* used by this service thread only */
	pthread_t thread;
	int efd; /* eventfd: the queue went non-empty, or stop */
	pthread_mutex_t qlock;
	struct svc_req *head, *tail; /* protected by qlock */
	atomic_bool stop;	     /* set once every client has stopped */
};

struct client {
	struct bench *b;
	int idx;
	pthread_t thread;
	uint64_t rng;
	uint64_t next_off; /* sequential: next offset in the stripe */
	uint64_t stripe_start, stripe_len;
	char *buf;
	double *lat; /* seconds per request, nlat of them */
	size_t nlat, cap;
	uint64_t bytes;
	struct svc_req req; /* service model: the request in flight */
};

struct bench {
	struct opts o;
	struct conn *conns;	/* o.conns of them */
	struct svc *svcs;	/* service model: o.conns of them */
	struct client *clients; /* o.threads of them */
	pthread_barrier_t start;
	atomic_bool stop;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A failed call mid-run: say what failed and end the run at once. */
static __attribute__((noreturn, format(printf, 1, 2))) void
fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("nfs_model: FAILED: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(EXIT_FAILURE);
}

/* xorshift64*: cheap, and the same sequence for the same seed. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* The next request of a client thread's stream: its offset. */
static uint64_t next_offset(struct client *cl)
{
	const struct opts *o = &cl->b->o;
	uint64_t off;

	if (!o->sequential)
		return (rng_next(&cl->rng) % (o->size / o->block)) * o->block;
	off = cl->next_off;
	cl->next_off += o->block;
	if (cl->next_off + o->block > cl->stripe_start + cl->stripe_len)
		cl->next_off = cl->stripe_start;
	return off;
}

static void record(struct client *cl, double seconds)
{
	if (cl->nlat == cl->cap) {
		size_t cap = cl->cap ? cl->cap * 2 : 4096;
		double *v = realloc(cl->lat, cap * sizeof(*v));

		if (!v)
			fail("out of memory for latency samples");
		cl->lat = v;
		cl->cap = cap;
	}
	cl->lat[cl->nlat++] = seconds;
}

/* ------------------------------------------------------------ contexts */

/* Mount the export on a new context and open FILE on it.  0 or -errno. */
static int conn_open(const struct opts *o, struct conn *c)
{
	struct nfs_stat_64 st;
	struct nfs_url *url;
	char path[1024];
	int rc;

	c->nfs = nfs_init_context();
	if (!c->nfs)
		return -ENOMEM;
	url = nfs_parse_url_dir(c->nfs, o->url);
	if (!url) {
		fprintf(stderr, "nfs_model: cannot parse %s: %s\n", o->url,
			nfs_get_error(c->nfs));
		rc = -EINVAL;
		goto err_ctx;
	}
	nfs_set_timeout(c->nfs, o->timeout_ms);
	nfs_set_tcp_syncnt(c->nfs, TCP_SYNCNT);
	nfs_set_autoreconnect(c->nfs, 0);
	rc = nfs_mount(c->nfs, url->server, url->path);
	if (rc) {
		fprintf(stderr, "nfs_model: cannot mount %s:%s: %s\n",
			url->server, url->path, nfs_get_error(c->nfs));
		goto err_url;
	}
	snprintf(path, sizeof(path), "/%s", o->file);
	rc = nfs_open(c->nfs, path, O_RDWR, &c->fh);
	if (rc) {
		fprintf(stderr,
			"nfs_model: cannot open %s on %s: %s (the "
			"file must exist)\n",
			path, o->url, nfs_get_error(c->nfs));
		goto err_url;
	}
	rc = nfs_fstat64(c->nfs, c->fh, &st);
	if (rc || st.nfs_size < o->size) {
		fprintf(stderr,
			"nfs_model: %s is %s; it must have %" PRIu64 " MiB\n",
			path, rc ? nfs_get_error(c->nfs) : "smaller",
			o->size / MIB);
		rc = rc ? rc : -EINVAL;
		goto err_fh;
	}
	nfs_destroy_url(url);
	pthread_mutex_init(&c->lock, NULL);
	return 0;

err_fh:
	nfs_close(c->nfs, c->fh);
err_url:
	nfs_destroy_url(url);
err_ctx:
	nfs_destroy_context(c->nfs);
	c->nfs = NULL;
	return rc;
}

static void conn_close(struct conn *c)
{
	if (!c->nfs)
		return;
	if (nfs_close(c->nfs, c->fh))
		fprintf(stderr, "nfs_model: close: %s\n",
			nfs_get_error(c->nfs));
	nfs_destroy_context(c->nfs);
	pthread_mutex_destroy(&c->lock);
	c->nfs = NULL;
}

/* ---------------------------------------------------------------- pool */

/* The calling thread's own context if free, else any free, else its own. */
static struct conn *pool_get(struct bench *b, int mine)
{
	int i;

	for (i = 0; i < b->o.conns; i++) {
		struct conn *c = &b->conns[(mine + i) % b->o.conns];

		if (!pthread_mutex_trylock(&c->lock))
			return c;
	}
	pthread_mutex_lock(&b->conns[mine].lock);
	return &b->conns[mine];
}

static void pool_io(struct client *cl, uint64_t off)
{
	const struct opts *o = &cl->b->o;
	struct conn *c = pool_get(cl->b, cl->idx % o->conns);
	int rc;

	if (o->op == OP_READ)
		rc = nfs_pread(c->nfs, c->fh, off, o->block, cl->buf);
	else
		rc = nfs_pwrite(c->nfs, c->fh, off, o->block, cl->buf);
	if (rc != (int)o->block)
		fail("%s of %" PRIu64 " bytes at %" PRIu64 ": %s",
		     o->op == OP_READ ? "nfs_pread" : "nfs_pwrite", o->block,
		     off, rc < 0 ? nfs_get_error(c->nfs) : "short transfer");
	pthread_mutex_unlock(&c->lock);
}

/* ------------------------------------------------------------- service */

static void svc_wake(struct svc *s)
{
	uint64_t one = 1;

	if (write(s->efd, &one, sizeof(one)) != sizeof(one))
		fail("eventfd write: %s", strerror(errno));
}

/* Client side: queue the request, wait until the service completes it. */
static void svc_io(struct client *cl, uint64_t off)
{
	const struct opts *o = &cl->b->o;
	struct svc *s = &cl->b->svcs[cl->idx % o->conns];
	struct svc_req *r = &cl->req;
	bool was_empty;

	r->off = off;
	r->done = false; /* no one else looks at r until it is queued */
	r->next = NULL;
	pthread_mutex_lock(&s->qlock);
	was_empty = !s->head;
	if (s->tail)
		s->tail->next = r;
	else
		s->head = r;
	s->tail = r;
	pthread_mutex_unlock(&s->qlock);
	/* a non-empty queue has a wake-up pending for it already */
	if (was_empty)
		svc_wake(s);
	pthread_mutex_lock(&r->lock);
	while (!r->done)
		pthread_cond_wait(&r->cond, &r->lock);
	pthread_mutex_unlock(&r->lock);
	if (r->result != (int)o->block)
		fail("%s of %" PRIu64 " bytes at %" PRIu64 ": %s",
		     o->op == OP_READ ? "nfs_pread_async" : "nfs_pwrite_async",
		     o->block, off,
		     r->result < 0 ? r->error : "short transfer");
}

/* libnfs callback, on the service thread: hand the result back. */
static void svc_done(int status, struct nfs_context *nfs, void *data,
		     void *priv)
{
	struct svc_req *r = priv;

	(void)nfs;
	if (status < 0)
		snprintf(r->error, sizeof(r->error), "%s",
			 data ? (const char *)data : strerror(-status));
	else if (r->op == OP_READ && status > 0)
		memcpy(r->buf, data,
		       (size_t)status < r->len ? (size_t)status : r->len);
	r->result = status;
	pthread_mutex_lock(&r->lock);
	r->done = true;
	pthread_mutex_unlock(&r->lock);
	pthread_cond_signal(&r->cond);
}

/* Take everything queued and submit it; the callbacks complete it. */
static void svc_submit(struct svc *s)
{
	struct svc_req *r, *next;
	struct conn *c = s->conn;
	int rc;

	pthread_mutex_lock(&s->qlock);
	r = s->head;
	s->head = s->tail = NULL;
	pthread_mutex_unlock(&s->qlock);
	for (; r; r = next) {
		next = r->next;
		if (r->op == OP_READ)
			rc = nfs_pread_async(c->nfs, c->fh, r->off, r->len,
					     svc_done, r);
		else
			rc = nfs_pwrite_async(c->nfs, c->fh, r->off, r->len,
					      r->buf, svc_done, r);
		if (rc)
			fail("queueing %s at %" PRIu64 ": %s",
			     r->op == OP_READ ? "nfs_pread_async"
					      : "nfs_pwrite_async",
			     r->off, nfs_get_error(c->nfs));
	}
}

/*
 * The service loop: wait on the eventfd and the context's socket; new
 * requests are submitted as soon as they arrive, replies are read as
 * they come, in whatever order.  nfs_service() with no events on an idle
 * poll lets libnfs time out RPCs that get no answer.  Ends once stop is
 * set: by then every client has had its answers.
 */
static void *svc_main(void *arg)
{
	struct svc *s = arg;
	struct nfs_context *nfs = s->conn->nfs;

	while (!atomic_load(&s->stop)) {
		struct pollfd pfd[2] = {
			{ .fd = s->efd, .events = POLLIN },
			{ .fd = nfs_get_fd(nfs),
			  .events = (short)nfs_which_events(nfs) },
		};
		uint64_t cnt;
		int n = poll(pfd, 2, SVC_POLL_MS);

		if (n < 0 && errno != EINTR)
			fail("poll: %s", strerror(errno));
		if (n <= 0 || pfd[1].revents)
			if (nfs_service(nfs, n > 0 ? pfd[1].revents : 0) < 0)
				fail("nfs_service: %s", nfs_get_error(nfs));
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			if (read(s->efd, &cnt, sizeof(cnt)) != sizeof(cnt))
				fail("eventfd read: %s", strerror(errno));
			svc_submit(s);
		}
	}
	return NULL;
}

static int svc_start(struct svc *s, struct conn *c)
{
	int rc;

	s->conn = c;
	s->efd = eventfd(0, EFD_CLOEXEC);
	if (s->efd < 0)
		return -errno;
	pthread_mutex_init(&s->qlock, NULL);
	rc = pthread_create(&s->thread, NULL, svc_main, s);
	if (rc) {
		pthread_mutex_destroy(&s->qlock);
		close(s->efd);
		return -rc;
	}
	return 0;
}

static void svc_stop(struct svc *s)
{
	atomic_store(&s->stop, true);
	svc_wake(s);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->qlock);
	close(s->efd);
}

/* ------------------------------------------------------------- clients */

static void *client_main(void *arg)
{
	struct client *cl = arg;
	struct bench *b = cl->b;

	pthread_barrier_wait(&b->start);
	while (!atomic_load_explicit(&b->stop, memory_order_relaxed)) {
		uint64_t off = next_offset(cl);
		double t0 = now_s();

		if (b->o.model == MODEL_POOL)
			pool_io(cl, off);
		else
			svc_io(cl, off);
		record(cl, now_s() - t0);
		cl->bytes += b->o.block;
	}
	return NULL;
}

static int client_init(struct bench *b, struct client *cl, int idx)
{
	const struct opts *o = &b->o;

	cl->b = b;
	cl->idx = idx;
	cl->rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(idx + 1);
	cl->stripe_len = o->size / (uint64_t)o->threads / o->block * o->block;
	cl->stripe_start = cl->stripe_len * (uint64_t)idx;
	cl->next_off = cl->stripe_start;
	if (o->sequential && cl->stripe_len < o->block) {
		fprintf(stderr,
			"nfs_model: %" PRIu64 " MiB is too small for "
			"%d sequential streams of %" PRIu64 " KiB\n",
			o->size / MIB, o->threads, o->block / KIB);
		return -EINVAL;
	}
	cl->buf = malloc(o->block);
	if (!cl->buf)
		return -ENOMEM;
	cl->req = (struct svc_req){ .op = o->op,
				    .len = o->block,
				    .buf = cl->buf };
	pthread_mutex_init(&cl->req.lock, NULL);
	pthread_cond_init(&cl->req.cond, NULL);
	/* something other than zeros, so nothing can skip the data */
	for (uint64_t i = 0; i < o->block; i++)
		cl->buf[i] = (char)(i * 131 + (uint64_t)idx);
	return 0;
}

/* ------------------------------------------------------------- results */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double rusage_cpu_s(const struct rusage *ru)
{
	return (double)ru->ru_utime.tv_sec + ru->ru_utime.tv_usec / 1e6 +
	       (double)ru->ru_stime.tv_sec + ru->ru_stime.tv_usec / 1e6;
}

static int report(struct bench *b, double secs, const struct rusage *r0,
		  const struct rusage *r1)
{
	const struct opts *o = &b->o;
	uint64_t bytes = 0;
	size_t n = 0, k = 0;
	double *all, cpu;
	long csw;
	int i;

	for (i = 0; i < o->threads; i++)
		n += b->clients[i].nlat;
	if (n == 0) {
		fprintf(stderr, "nfs_model: no request completed\n");
		return -EIO;
	}
	all = malloc(n * sizeof(*all));
	if (!all)
		return -ENOMEM;
	for (i = 0; i < o->threads; i++) {
		memcpy(all + k, b->clients[i].lat,
		       b->clients[i].nlat * sizeof(*all));
		k += b->clients[i].nlat;
		bytes += b->clients[i].bytes;
	}
	qsort(all, n, sizeof(*all), cmp_double);
	cpu = rusage_cpu_s(r1) - rusage_cpu_s(r0);
	csw = (r1->ru_nvcsw - r0->ru_nvcsw) + (r1->ru_nivcsw - r0->ru_nivcsw);
	printf("model=%s threads=%d conns=%d workload=%s block=%" PRIu64
	       " ops=%zu secs=%.2f ops_s=%.0f mib_s=%.1f p50_us=%.0f "
	       "p99_us=%.0f cpu_us_op=%.1f csw_op=%.2f\n",
	       o->model == MODEL_POOL ? "pool" : "service", o->threads,
	       o->conns, o->workload, o->block, n, secs, (double)n / secs,
	       (double)bytes / MIB / secs, all[n / 2] * 1e6,
	       all[n * 99 / 100] * 1e6, cpu * 1e6 / (double)n,
	       (double)csw / (double)n);
	free(all);
	return 0;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *f)
{
	fputs("usage: nfs_model -u nfs://SERVER/EXPORT?version=3 "
	      "-m pool|service -t THREADS -c CONNS\n"
	      "                 -w randread|randwrite|seqread|seqwrite "
	      "-s SIZE_MB -d SECONDS\n"
	      "                 [-f FILE] [-b BLOCK_KIB] [-T TIMEOUT_MS]\n",
	      f);
}

static int set_workload(struct opts *o, const char *w)
{
	if (!strcmp(w, "randread") || !strcmp(w, "randwrite"))
		o->sequential = false;
	else if (!strcmp(w, "seqread") || !strcmp(w, "seqwrite"))
		o->sequential = true;
	else
		return -EINVAL;
	o->op = strstr(w, "read") ? OP_READ : OP_WRITE;
	o->workload = w;
	if (!o->block)
		o->block = o->sequential ? MIB : 4 * KIB;
	return 0;
}

static int parse_opts(struct opts *o, int argc, char **argv)
{
	const char *workload = NULL, *model = NULL;
	int c;

	*o = (struct opts){ .file = "nfs_model.dat",
			    .threads = 4,
			    .conns = 4,
			    .seconds = 5,
			    .timeout_ms = 10000 };
	while ((c = getopt(argc, argv, "u:m:t:c:w:s:d:f:b:T:h")) != -1) {
		switch (c) {
		case 'u':
			o->url = optarg;
			break;
		case 'm':
			model = optarg;
			break;
		case 't':
			o->threads = atoi(optarg);
			break;
		case 'c':
			o->conns = atoi(optarg);
			break;
		case 'w':
			workload = optarg;
			break;
		case 's':
			o->size = strtoull(optarg, NULL, 10) * MIB;
			break;
		case 'd':
			o->seconds = atoi(optarg);
			break;
		case 'f':
			o->file = optarg;
			break;
		case 'b':
			o->block = strtoull(optarg, NULL, 10) * KIB;
			break;
		case 'T':
			o->timeout_ms = atoi(optarg);
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_SUCCESS);
		default:
			return -EINVAL;
		}
	}
	if (optind != argc || !o->url || !model || !workload || !o->size)
		return -EINVAL;
	if (!strcmp(model, "pool"))
		o->model = MODEL_POOL;
	else if (!strcmp(model, "service"))
		o->model = MODEL_SERVICE;
	else
		return -EINVAL;
	if (set_workload(o, workload))
		return -EINVAL;
	if (o->threads < 1 || o->threads > 1024 || o->conns < 1 ||
	    o->conns > 64 || o->seconds < 1 || o->timeout_ms < 100 ||
	    o->block == 0 || o->block > 16 * MIB || o->size < o->block)
		return -EINVAL;
	return 0;
}

/* Start the clients, let them run SECONDS, stop them, print. */
static int run(struct bench *b)
{
	struct rusage r0, r1;
	double t0, secs;
	int i, n, rc;

	for (n = 0; n < b->o.threads; n++) {
		rc = pthread_create(&b->clients[n].thread, NULL, client_main,
				    &b->clients[n]);
		if (rc) {
			/* the barrier counts on every client: none can go */
			fprintf(stderr, "nfs_model: pthread_create: %s\n",
				strerror(rc));
			exit(EXIT_FAILURE);
		}
	}
	getrusage(RUSAGE_SELF, &r0);
	t0 = now_s();
	pthread_barrier_wait(&b->start);
	sleep((unsigned)b->o.seconds);
	atomic_store(&b->stop, true);
	for (i = 0; i < n; i++)
		pthread_join(b->clients[i].thread, NULL);
	secs = now_s() - t0;
	getrusage(RUSAGE_SELF, &r1);
	return report(b, secs, &r0, &r1);
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	int i, nconn = 0, nsvc = 0, ncl = 0, rc;

	if (parse_opts(&b.o, argc, argv)) {
		usage(stderr);
		return 2;
	}
	b.conns = calloc((size_t)b.o.conns, sizeof(*b.conns));
	b.svcs = calloc((size_t)b.o.conns, sizeof(*b.svcs));
	b.clients = calloc((size_t)b.o.threads, sizeof(*b.clients));
	rc = -ENOMEM;
	if (!b.conns || !b.svcs || !b.clients)
		goto out;
	for (; nconn < b.o.conns; nconn++)
		if ((rc = conn_open(&b.o, &b.conns[nconn])))
			goto out_conns;
	for (; ncl < b.o.threads; ncl++)
		if ((rc = client_init(&b, &b.clients[ncl], ncl)))
			goto out_clients;
	if (b.o.model == MODEL_SERVICE)
		for (; nsvc < b.o.conns; nsvc++)
			if ((rc = svc_start(&b.svcs[nsvc], &b.conns[nsvc])))
				goto out_svcs;
	pthread_barrier_init(&b.start, NULL, (unsigned)b.o.threads + 1);
	rc = run(&b);
	pthread_barrier_destroy(&b.start);
out_svcs:
	for (i = 0; i < nsvc; i++)
		svc_stop(&b.svcs[i]);
out_clients:
	for (i = 0; i < ncl; i++) {
		pthread_cond_destroy(&b.clients[i].req.cond);
		pthread_mutex_destroy(&b.clients[i].req.lock);
		free(b.clients[i].buf);
		free(b.clients[i].lat);
	}
out_conns:
	for (i = 0; i < nconn; i++)
		conn_close(&b.conns[i]);
out:
	free(b.clients);
	free(b.svcs);
	free(b.conns);
	if (rc)
		fprintf(stderr, "nfs_model: %s\n", strerror(-rc));
	return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
