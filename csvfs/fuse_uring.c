// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuse_uring.c - FUSE requests over io_uring (see fuse_uring.h).
 *
 * Queues: one per possible CPU (the kernel routes a request to the queue
 * of the CPU its task runs on, and only starts using the rings once every
 * possible CPU has a queue), each a thread pinned to that CPU owning one
 * io_uring (SQE128: the FUSE commands carry their arguments in the SQE)
 * and CV_URING_DEPTH entries.  An entry is a header buffer (the request's
 * fuse_in_header, its per-opcode argument, the commit id and payload
 * size) and a page-aligned payload buffer of max_write bytes (names,
 * write data; on the way back the reply's arguments).  The kernel fills
 * an entry and completes its REGISTER or COMMIT_AND_FETCH command; the
 * thread answers with COMMIT_AND_FETCH, which sends the reply and makes
 * the entry wait for the next request in one submission.
 *
 * Fast path, on the queue thread: READ and WRITE of files whose backend
 * gives a descriptor for a plain aligned pread/pwrite (direct files,
 * cv_fs_rw_fd) go to the backing file on the queue's own ring, straight
 * from or into the payload buffer, and the reply is committed from the
 * completion.  A WRITE is admitted first by cv_fs_write_try_begin (the
 * ownership, lease and poisoning checks of every write, and the count of
 * writes in flight a revoke waits for; on a replicated file, its change
 * tracking) and ended at its completion; if
 * admission would have to wait (ownership to be acquired, a revoke under
 * way) the request takes the slow path, where cv_write waits as usual.
 *
 * Slow path, everything else: a worker rebuilds the request as /dev/fuse
 * would have delivered it (in header, per-opcode argument, payload) and
 * runs libfuse's fuse_session_process_buf, so the handlers of fs.c
 * serve it unchanged.  The reply comes back through the session's
 * writev (fuseio.c), which hands it to cv_uring_reply: looked up by its
 * unique in the table of requests on the workers, copied into the
 * entry, and queued for the entry's queue thread (a ring is single
 * issuer), which is woken by an eventfd read kept armed on its ring.
 * Replies must therefore be plain buffers: fuseio.c turns spliced
 * replies off while this transport is in use.
 *
 * Workers: started on demand (a request finds none idle) up to
 * opts->max_threads; a handler may block (a lock wait, an ownership
 * acquire), and the others keep serving.
 *
 * Memory: per queue CV_URING_DEPTH payload buffers of payload_sz (1 MiB)
 * - 32 MiB of address space per CPU, resident only as far as requests
 * have used them.
 *
 * End: when the connection ends the kernel completes every registered
 * entry with an error (-ENOTCONN); cv_uring_stop() waits for the
 * workers, then for each queue's entries still in our hands, and ends
 * the threads; closing a ring cancels what is still registered.
 *
 * Locks: u->lock (the slow list, the worker count, the request table)
 * and q->lock (a queue's list of replies to commit, its flags) are
 * leaves.  A queue's ring, entries' states and counters belong to its
 * thread; an entry on the slow path belongs to the worker holding it
 * until it is queued back with its reply.
 */
#include <errno.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "aio.h"
#include "fs.h"
#include "fuse_uring.h"
#include "log.h"

/* The kernel's io_uring ABI for FUSE (linux/fuse.h 7.42; Debian 12's
 * header predates it). */
#define UR_HDR_IN_OUT 128
#define UR_HDR_OP     128
enum { UR_CMD_REGISTER = 1, UR_CMD_COMMIT_AND_FETCH = 2 };

struct ur_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct ur_req_header {
	char in_out[UR_HDR_IN_OUT];
	char op_in[UR_HDR_OP];
	struct ur_ent_in_out ent;
};

struct ur_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* user_data of a ring's completions: an entry's command (the pointer),
 * its backing I/O (bit 0 set), or the eventfd read (UR_EFD). */
#define UR_IO_TAG 1u
#define UR_EFD	  ((void *)(uintptr_t)2)
#define UR_HASH	  256

struct ur_queue;

struct ur_ent {
	struct ur_req_header hdr; /* registered with the kernel */
	void *payload;		  /* registered, page aligned */
	struct iovec iov[2];
	struct ur_queue *q; /* immutable */
	uint64_t unique;    /* the request held */
	uint64_t commit_id;
	uint64_t fh; /* fast WRITE: admitted on this handle */
	uint32_t opcode;
	bool admitted;	      /* fast WRITE: write_end due */
	struct cv_rep_tok rep; /* fast WRITE: its replication tracking */
	struct ur_ent *next;  /* slow list, or q->done */
	struct ur_ent *hnext; /* u->tab */
};

struct ur_queue {
	struct io_uring ring; /* the thread's alone */
	struct cv_uring *u;
	unsigned qid;
	struct ur_ent *ents;
	pthread_t thread;
	bool thread_ok;
	int efd;
	uint64_t efd_val; /* thread: the armed read's buffer */
	unsigned live;	  /* thread: entries held by the kernel */
	unsigned busy;	  /* thread: entries in our hands */

	pthread_mutex_t lock;
	pthread_cond_t cond; /* lock: start_rc, go, stop */
	struct ur_ent *done; /* lock: replies to commit */
	int start_rc;	     /* lock: 1 until the ring is set up */
	bool go;	     /* lock: INIT answered, register */
	bool stop;	     /* lock: end once busy is 0 */
};

struct cv_uring {
	struct cv_fs *fs;
	int devfd;
	size_t payload_sz;
	unsigned nq;
	struct ur_queue *qs;

	pthread_mutex_t lock;
	pthread_cond_t cond;	  /* lock: slow list, wstop */
	struct ur_ent *slow_head; /* lock: for the workers, oldest first */
	struct ur_ent **slow_tail;
	struct ur_ent *tab[UR_HASH]; /* lock: on the slow path, by unique */
	unsigned workers, idle;	     /* lock */
	unsigned max_workers;	     /* immutable */
	pthread_t *wthreads;	     /* lock: workers of them */
	bool wstop;		     /* lock: workers end when idle */

	atomic_ulong n_fast, n_slow;
};

/* ---- the ring ---- */

static struct io_uring_sqe *get_sqe(struct ur_queue *q)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	memset(sqe, 0, 128); /* SQE128 */
	return sqe;
}

static void prep_cmd(struct ur_queue *q, struct ur_ent *e, unsigned cmd)
{
	struct io_uring_sqe *sqe = get_sqe(q);
	struct ur_cmd_req *req = (struct ur_cmd_req *)sqe->cmd;

	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = q->u->devfd;
	sqe->cmd_op = cmd;
	req->qid = (uint16_t)q->qid;
	if (cmd == UR_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	} else {
		req->commit_id = e->commit_id;
	}
	io_uring_sqe_set_data(sqe, e);
	q->live++;
}

static void arm_efd(struct ur_queue *q)
{
	struct io_uring_sqe *sqe = get_sqe(q);

	io_uring_prep_read(sqe, q->efd, &q->efd_val, sizeof(q->efd_val), 0);
	io_uring_sqe_set_data(sqe, UR_EFD);
}

/* Commit e, whose reply (out header, payload_sz) is in place. */
static void commit(struct ur_ent *e)
{
	e->q->busy--;
	prep_cmd(e->q, e, UR_CMD_COMMIT_AND_FETCH);
}

/* Answer e from its queue thread: error (<= 0), or len bytes of
 * arguments already in the payload. */
static void reply(struct ur_ent *e, int error, size_t len)
{
	struct fuse_out_header *oh = (void *)e->hdr.in_out;

	if (error)
		len = 0;
	oh->unique = e->unique;
	oh->error = error;
	oh->len = (uint32_t)(sizeof(*oh) + len);
	e->hdr.ent.payload_sz = (uint32_t)len;
	commit(e);
}

/* ---- fast path: direct READ and WRITE on the queue's ring ---- */

static void io_done(struct ur_ent *e, int res)
{
	struct fuse_write_out *wo = e->payload;

	if (e->admitted) {
		cv_fs_write_end(e->q->u->fs, e->fh, &e->rep);
		e->admitted = false;
	}
	if (res < 0) {
		reply(e, res, 0);
	} else if (e->opcode == FUSE_WRITE) {
		memset(wo, 0, sizeof(*wo));
		wo->size = (uint32_t)res;
		reply(e, 0, sizeof(*wo));
	} else {
		reply(e, 0, (size_t)res);
	}
}

/* true: taken (submitted or answered); false: for the slow path. */
static bool fast_rw(struct ur_ent *e)
{
	struct cv_uring *u = e->q->u;
	const struct fuse_read_in *ri = (const void *)e->hdr.op_in;
	const struct fuse_write_in *wi = (const void *)e->hdr.op_in;
	struct io_uring_sqe *sqe;
	int fd, rc;

	if (e->opcode == FUSE_READ) {
		if (ri->size > u->payload_sz)
			return false;
		fd = cv_fs_rw_fd(u->fs, ri->fh, (off_t)ri->offset, ri->size,
				 CV_AIO_ALIGN);
		if (fd < 0)
			return false;
		sqe = get_sqe(e->q);
		io_uring_prep_read(sqe, fd, e->payload, ri->size, ri->offset);
	} else {
		/* page-cache writeback (shared mmap) has its own admission */
		if ((wi->write_flags & FUSE_WRITE_CACHE) ||
		    e->hdr.ent.payload_sz < wi->size)
			return false;
		fd = cv_fs_rw_fd(u->fs, wi->fh, (off_t)wi->offset, wi->size,
				 CV_AIO_ALIGN);
		if (fd < 0)
			return false;
		rc = cv_fs_write_try_begin(u->fs, wi->fh, wi->offset, wi->size,
					   &e->rep);
		if (rc == -EAGAIN)
			return false;
		atomic_fetch_add_explicit(&u->n_fast, 1, memory_order_relaxed);
		if (rc) {
			reply(e, rc, 0);
			return true;
		}
		e->fh = wi->fh;
		e->admitted = true;
		sqe = get_sqe(e->q);
		io_uring_prep_write(sqe, fd, e->payload, wi->size, wi->offset);
		io_uring_sqe_set_data(sqe, (void *)((uintptr_t)e | UR_IO_TAG));
		return true;
	}
	io_uring_sqe_set_data(sqe, (void *)((uintptr_t)e | UR_IO_TAG));
	atomic_fetch_add_explicit(&u->n_fast, 1, memory_order_relaxed);
	return true;
}

/* ---- slow path: libfuse on a worker ---- */

static unsigned tab_slot(uint64_t unique)
{
	return (unsigned)((unique ^ (unique >> 17)) % UR_HASH);
}

static void *worker(void *arg);

/* With u->lock held: a worker for one more request, if none is idle. */
static void add_worker(struct cv_uring *u)
{
	if (u->idle || u->workers >= u->max_workers)
		return;
	if (pthread_create(&u->wthreads[u->workers], NULL, worker, u)) {
		if (!u->workers)
			log_err("cannot start a FUSE-over-io_uring worker");
		return;
	}
	u->workers++;
	u->idle++;
}

static void to_slow(struct ur_ent *e)
{
	struct cv_uring *u = e->q->u;
	unsigned s = tab_slot(e->unique);

	atomic_fetch_add_explicit(&u->n_slow, 1, memory_order_relaxed);
	pthread_mutex_lock(&u->lock);
	if (u->wstop) { /* stopping: the workers are gone */
		pthread_mutex_unlock(&u->lock);
		reply(e, -ENOTCONN, 0);
		return;
	}
	e->hnext = u->tab[s];
	u->tab[s] = e;
	e->next = NULL;
	*u->slow_tail = e;
	u->slow_tail = &e->next;
	add_worker(u);
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

/* e as /dev/fuse would have delivered it, to libfuse.  The per-opcode
 * argument's size is what the header's len leaves after the payload. */
static void process(struct cv_uring *u, struct ur_ent *e)
{
	struct fuse_in_header in;
	struct fuse_buf fb = { 0 };
	size_t arg, pl = e->hdr.ent.payload_sz;
	char *buf;

	memcpy(&in, e->hdr.in_out, sizeof(in));
	arg = in.len >= sizeof(in) + pl ? in.len - sizeof(in) - pl : 0;
	if (arg > UR_HDR_OP || in.len < sizeof(in) + pl) {
		log_warn("FUSE over io_uring: request %u: header len %u does "
			 "not fit payload %zu",
			 in.opcode, in.len, pl);
		arg = arg > UR_HDR_OP ? UR_HDR_OP : arg;
	}
	fb.size = sizeof(in) + arg + pl;
	buf = malloc(fb.size);
	if (!buf) {
		struct fuse_out_header oh = { sizeof(oh), -ENOMEM, in.unique };
		struct iovec v = { &oh, sizeof(oh) };
		ssize_t n;

		cv_uring_reply(u, &v, 1, &n);
		return;
	}
	in.len = (uint32_t)fb.size;
	memcpy(buf, &in, sizeof(in));
	memcpy(buf + sizeof(in), e->hdr.op_in, arg);
	memcpy(buf + sizeof(in) + arg, e->payload, pl);
	fb.mem = buf;
	fuse_session_process_buf(u->fs->se, &fb);
	free(buf);
}

static void *worker(void *arg)
{
	struct cv_uring *u = arg;
	struct ur_ent *e;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (!u->slow_head && !u->wstop)
			pthread_cond_wait(&u->cond, &u->lock);
		e = u->slow_head;
		if (!e)
			break; /* wstop and nothing left */
		u->slow_head = e->next;
		if (!u->slow_head)
			u->slow_tail = &u->slow_head;
		u->idle--;
		pthread_mutex_unlock(&u->lock);
		process(u, e);
		pthread_mutex_lock(&u->lock);
		u->idle++;
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

bool cv_uring_reply(struct cv_uring *u, const struct iovec *iov, int count,
		    ssize_t *n)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct ur_ent *e, **p;
	struct ur_queue *q;
	size_t len = 0, room;
	bool kick;

	if (!u || count < 1 || iov[0].iov_len < sizeof(*oh) || !oh->unique)
		return false;
	pthread_mutex_lock(&u->lock);
	for (p = &u->tab[tab_slot(oh->unique)]; *p; p = &(*p)->hnext)
		if ((*p)->unique == oh->unique)
			break;
	e = *p;
	if (e)
		*p = e->hnext;
	pthread_mutex_unlock(&u->lock);
	if (!e)
		return false;
	memcpy(e->hdr.in_out, oh, sizeof(*oh));
	*n = (ssize_t)iov[0].iov_len;
	room = e->q->u->payload_sz;
	for (int k = 1; k < count; k++) {
		size_t c = iov[k].iov_len < room - len ? iov[k].iov_len
						       : room - len;

		memcpy((char *)e->payload + len, iov[k].iov_base, c);
		len += c;
		*n += (ssize_t)iov[k].iov_len;
	}
	((struct fuse_out_header *)(void *)e->hdr.in_out)->len =
		(uint32_t)(sizeof(*oh) + len);
	e->hdr.ent.payload_sz = (uint32_t)len;
	q = e->q;
	pthread_mutex_lock(&q->lock);
	kick = !q->done;
	e->next = q->done;
	q->done = e;
	pthread_mutex_unlock(&q->lock);
	if (kick && eventfd_write(q->efd, 1))
		log_err("FUSE over io_uring: cannot wake queue %u", q->qid);
	return true;
}

/* ---- the queue thread ---- */

static void handle(struct ur_ent *e)
{
	const struct fuse_in_header *in = (const void *)e->hdr.in_out;

	e->q->busy++;
	e->unique = in->unique;
	e->opcode = in->opcode;
	e->commit_id = e->hdr.ent.commit_id;
	if ((e->opcode == FUSE_READ || e->opcode == FUSE_WRITE) && fast_rw(e))
		return;
	to_slow(e);
}

/* Replies the workers queued: commit them (newest first: any order
 * does). */
static void take_done(struct ur_queue *q)
{
	struct ur_ent *e, *next;

	pthread_mutex_lock(&q->lock);
	e = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->lock);
	for (; e; e = next) {
		next = e->next;
		commit(e);
	}
}

static void reap(struct ur_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&q->ring, head, cqe)
	{
		void *d = io_uring_cqe_get_data(cqe);
		struct ur_ent *e =
			(void *)((uintptr_t)d & ~(uintptr_t)UR_IO_TAG);

		n++;
		if (d == UR_EFD) {
			take_done(q);
			arm_efd(q);
			continue;
		}
		if ((uintptr_t)d & UR_IO_TAG) {
			io_done(e, cqe->res);
			continue;
		}
		q->live--;
		if (cqe->res == 0)
			handle(e);
		else if (cqe->res == -EINTR || cqe->res == -EAGAIN)
			prep_cmd(q, e, UR_CMD_REGISTER);
		else if (cqe->res != -ENOTCONN)
			log_warn("FUSE over io_uring: queue %u: entry "
				 "ended: %d",
				 q->qid, cqe->res);
	}
	io_uring_cq_advance(&q->ring, n);
}

static int ring_setup(struct ur_queue *q)
{
	struct io_uring_params p = { 0 };
	cpu_set_t set;
	int rc;

	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	/* an offline CPU cannot be had: the queue still serves */
	(void)sched_setaffinity(0, sizeof(set), &set);
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * CV_URING_DEPTH + 4;
	rc = io_uring_queue_init_params(2 * CV_URING_DEPTH + 2, &q->ring, &p);
	if (rc)
		return rc;
	arm_efd(q);
	return 0;
}

/* Until stopped with nothing in our hands, or every entry ended. */
static void serve(struct ur_queue *q)
{
	bool stop = false;

	for (unsigned k = 0; k < CV_URING_DEPTH; k++)
		prep_cmd(q, &q->ents[k], UR_CMD_REGISTER);
	while (!(stop && !q->busy) && (q->live || q->busy)) {
		io_uring_submit_and_wait(&q->ring, 1);
		reap(q);
		pthread_mutex_lock(&q->lock);
		stop = q->stop;
		pthread_mutex_unlock(&q->lock);
	}
}

static void *queue_thread(void *arg)
{
	struct ur_queue *q = arg;
	int rc = ring_setup(q);
	bool go;

	pthread_mutex_lock(&q->lock);
	q->start_rc = rc;
	pthread_cond_broadcast(&q->cond);
	while (!rc && !q->go && !q->stop)
		pthread_cond_wait(&q->cond, &q->lock);
	go = !rc && q->go;
	pthread_mutex_unlock(&q->lock);
	if (go)
		serve(q);
	if (!rc)
		io_uring_queue_exit(&q->ring);
	return NULL;
}

/* ---- start and stop ---- */

static int queue_init(struct cv_uring *u, struct ur_queue *q, unsigned qid)
{
	q->u = u;
	q->qid = qid;
	q->start_rc = 1;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->efd = eventfd(0, EFD_CLOEXEC);
	if (q->efd < 0)
		return -errno;
	q->ents = calloc(CV_URING_DEPTH, sizeof(*q->ents));
	if (!q->ents)
		return -ENOMEM;
	for (unsigned k = 0; k < CV_URING_DEPTH; k++) {
		struct ur_ent *e = &q->ents[k];

		if (posix_memalign(&e->payload, 4096, u->payload_sz))
			return -ENOMEM;
		e->q = q;
		e->iov[0] = (struct iovec){ &e->hdr, sizeof(e->hdr) };
		e->iov[1] = (struct iovec){ e->payload, u->payload_sz };
	}
	return 0;
}

/* The queue's thread, and its ring set up: 0 or -errno. */
static int queue_run(struct ur_queue *q)
{
	int rc = -pthread_create(&q->thread, NULL, queue_thread, q);

	if (rc)
		return rc;
	q->thread_ok = true;
	pthread_mutex_lock(&q->lock);
	while (q->start_rc == 1)
		pthread_cond_wait(&q->cond, &q->lock);
	rc = q->start_rc;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

static void queue_free(struct ur_queue *q)
{
	if (q->thread_ok) {
		pthread_mutex_lock(&q->lock);
		q->stop = true;
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
		if (q->efd >= 0 && eventfd_write(q->efd, 1))
			log_err("FUSE over io_uring: cannot stop queue %u",
				q->qid);
		pthread_join(q->thread, NULL);
	}
	for (unsigned k = 0; q->ents && k < CV_URING_DEPTH; k++)
		free(q->ents[k].payload);
	free(q->ents);
	if (q->efd >= 0)
		close(q->efd);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
}

static void uring_free(struct cv_uring *u)
{
	unsigned n;

	pthread_mutex_lock(&u->lock);
	u->wstop = true;
	pthread_cond_broadcast(&u->cond);
	pthread_mutex_unlock(&u->lock);
	/* no new workers once wstop (to_slow answers instead); the queues
	 * stop after them, with every reply of the workers queued */
	pthread_mutex_lock(&u->lock);
	n = u->workers;
	pthread_mutex_unlock(&u->lock);
	for (unsigned k = 0; k < n; k++)
		pthread_join(u->wthreads[k], NULL);
	for (unsigned k = 0; k < u->nq; k++)
		queue_free(&u->qs[k]);
	free(u->qs);
	free(u->wthreads);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int cv_uring_start(struct cv_fs *fs, int devfd, size_t payload_sz,
		   struct cv_uring **out)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	struct cv_uring *u = calloc(1, sizeof(*u));
	int rc = -ENOMEM;

	if (!u)
		return -ENOMEM;
	u->fs = fs;
	u->devfd = devfd;
	u->payload_sz = payload_sz;
	u->slow_tail = &u->slow_head;
	u->max_workers = fs->opts->max_threads;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	u->nq = ncpu > 0 ? (unsigned)ncpu : 1;
	u->qs = calloc(u->nq, sizeof(*u->qs));
	u->wthreads = calloc(u->max_workers, sizeof(*u->wthreads));
	if (!u->qs || !u->wthreads)
		goto fail;
	for (unsigned k = 0; k < u->nq; k++)
		u->qs[k].efd = -1;
	for (unsigned k = 0; k < u->nq; k++) {
		rc = queue_init(u, &u->qs[k], k);
		if (!rc)
			rc = queue_run(&u->qs[k]);
		if (rc)
			goto fail;
	}
	*out = u;
	return 0;
fail:
	if (u->qs) {
		uring_free(u);
		return rc;
	}
	free(u->wthreads);
	free(u);
	return rc;
}

void cv_uring_init_done(struct cv_uring *u)
{
	for (unsigned k = 0; k < u->nq; k++) {
		struct ur_queue *q = &u->qs[k];

		pthread_mutex_lock(&q->lock);
		q->go = true;
		pthread_cond_broadcast(&q->cond);
		pthread_mutex_unlock(&q->lock);
	}
}

void cv_uring_stop(struct cv_uring *u)
{
	if (!u)
		return;
	log_info("FUSE over io_uring: %lu reads and writes on the queue "
		 "threads, %lu requests through libfuse",
		 atomic_load(&u->n_fast), atomic_load(&u->n_slow));
	uring_free(u);
}
