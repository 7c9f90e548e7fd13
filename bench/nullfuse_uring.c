// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * nullfuse_uring.c - nullfuse's FUSE-over-io_uring mode (-m uring).
 *
 * Linux 6.14 and later can hand FUSE requests to the daemon through
 * io_uring instead of /dev/fuse reads and writes (module parameter
 * fuse.enable_uring=1, FUSE_OVER_IO_URING in the INIT reply).  The
 * daemon registers, per possible CPU, a queue of entries: each entry is
 * a header buffer (the request's fuse_in_header, its per-opcode
 * argument, and the entry's commit id) and a payload buffer (names,
 * write data; the reply's arguments on the way back).  A request
 * completes the entry's registration (or the previous
 * COMMIT_AND_FETCH) as a completion on the ring of the queue of the CPU
 * the requesting task ran on; the daemon answers with
 * COMMIT_AND_FETCH, which sends the reply and waits for the next
 * request in one submission.
 *
 * Here one thread per CPU, pinned, owns one ring with that CPU's queue
 * and does the backing I/O of its requests on the same ring: the payload
 * buffer is page aligned, so O_DIRECT reads and writes go straight from
 * and into it, no bounce copy.  libfuse 3.14 does not know this
 * transport, so the few opcodes fio needs are answered here directly
 * (lookup, getattr, open, read, write, flush, fsync, release); INIT and
 * FORGET still come through /dev/fuse and libfuse's loop.
 */

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nullfuse.h"

/* The kernel's io_uring ABI for FUSE (linux/fuse.h 7.42); Debian 12's
 * header predates it. */
#define NFU_FLAGS2_OVER_IO_URING (1u << (41 - 32))
#define NFU_HDR_IN_OUT		 128
#define NFU_HDR_OP		 128
enum { NFU_CMD_REGISTER = 1, NFU_CMD_COMMIT_AND_FETCH = 2 };

struct nfu_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct nfu_req_header {
	char in_out[NFU_HDR_IN_OUT];
	char op_in[NFU_HDR_OP];
	struct nfu_ent_in_out ent;
};

struct nfu_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

/* Entries per queue: enough for fio's deepest queue (32) plus the
 * requests of a second process. */
#define NFU_DEPTH 40

struct nfu_queue;

struct nfu_ent {
	struct nfu_req_header hdr; /* registered with the kernel */
	void *payload;		   /* registered, page aligned */
	struct iovec iov[2];
	uint64_t unique;
	uint64_t commit_id;
	uint32_t opcode;
	struct nfu_queue *q;
};

struct nfu_queue {
	struct io_uring ring; /* this queue's thread's alone */
	unsigned qid;
	struct nfu_ent *ents;
	pthread_t thread;
};

static int nfu_devfd = -1;
static size_t nfu_payload_sz;
static pthread_mutex_t nfu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t nfu_cond = PTHREAD_COND_INITIALIZER;
static bool nfu_init_done; /* nfu_lock */

/* Clear a 128-byte SQE (the struct covers the first 64 bytes). */
static void sqe128_clear(struct io_uring_sqe *sqe)
{
	unsigned char *raw = (unsigned char *)(uintptr_t)sqe;

	for (unsigned k = 0; k < 128; k++)
		raw[k] = 0;
}

/* Backing I/O on a queue's ring: user_data is the entry with bit 0 set. */
#define NFU_IO_TAG 1u

static void prep_cmd(struct nfu_queue *q, struct nfu_ent *e, unsigned cmd)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);
	struct nfu_cmd_req *req;

	if (!sqe) {
		io_uring_submit(&q->ring);
		sqe = io_uring_get_sqe(&q->ring);
	}
	sqe128_clear(sqe);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = nfu_devfd;
	sqe->cmd_op = cmd;
	req = (struct nfu_cmd_req *)sqe->cmd;
	req->qid = (uint16_t)q->qid;
	if (cmd == NFU_CMD_REGISTER) {
		sqe->addr = (uint64_t)(uintptr_t)e->iov;
		sqe->len = 2;
	} else {
		req->commit_id = e->commit_id;
	}
	io_uring_sqe_set_data(sqe, e);
}

/* Answer e's request: error (<= 0) and len bytes of arguments already in
 * the payload; then fetch the next request into e. */
static void reply(struct nfu_ent *e, int error, size_t len)
{
	struct fuse_out_header *oh = (void *)e->hdr.in_out;

	if (error)
		len = 0;
	oh->unique = e->unique;
	oh->error = error;
	oh->len = (uint32_t)(sizeof(*oh) + len);
	e->hdr.ent.payload_sz = (uint32_t)len;
	prep_cmd(e->q, e, NFU_CMD_COMMIT_AND_FETCH);
}

static void fill_attr(struct fuse_attr *a, const struct stat *st, uint64_t ino)
{
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

static void do_lookup(struct nfu_ent *e, const struct fuse_in_header *in)
{
	struct fuse_entry_out *out = e->payload;
	char name[256];
	struct stat st;
	int rc;

	/* the name is the payload, NUL-terminated */
	snprintf(name, sizeof(name), "%s", (const char *)e->payload);
	rc = in->nodeid == FUSE_ROOT_ID ? nf_lookup_name(name, &st) : -ENOENT;
	if (rc) {
		reply(e, rc, 0);
		return;
	}
	memset(out, 0, sizeof(*out));
	out->nodeid = st.st_ino;
	fill_attr(&out->attr, &st, st.st_ino);
	reply(e, 0, sizeof(*out));
}

static void do_getattr(struct nfu_ent *e, const struct fuse_in_header *in)
{
	struct fuse_attr_out *out = e->payload;
	struct stat st;
	int rc = nf_stat_ino(in->nodeid, &st);

	if (rc) {
		reply(e, rc, 0);
		return;
	}
	memset(out, 0, sizeof(*out));
	fill_attr(&out->attr, &st, in->nodeid);
	reply(e, 0, sizeof(*out));
}

static void do_open(struct nfu_ent *e, const struct fuse_in_header *in)
{
	const struct fuse_open_in *oi = (const void *)e->hdr.op_in;
	struct fuse_open_out *out = e->payload;
	int fd = nf_open_ino(in->nodeid, (int)oi->flags);

	if (fd < 0) {
		reply(e, fd, 0);
		return;
	}
	memset(out, 0, sizeof(*out));
	out->fh = (uint64_t)fd;
	out->open_flags = FOPEN_DIRECT_IO | NF_FOPEN_PARALLEL_DIRECT_WRITES;
	reply(e, 0, sizeof(*out));
}

/* READ and WRITE: the backing I/O on this ring, straight from or into
 * the payload; the reply goes from its completion (io_done). */
static void do_rw(struct nfu_ent *e, bool write)
{
	const struct fuse_read_in *ri = (const void *)e->hdr.op_in;
	const struct fuse_write_in *wi = (const void *)e->hdr.op_in;
	struct io_uring_sqe *sqe = io_uring_get_sqe(&e->q->ring);

	if (!sqe) {
		io_uring_submit(&e->q->ring);
		sqe = io_uring_get_sqe(&e->q->ring);
	}
	sqe128_clear(sqe);
	if (write)
		io_uring_prep_write(sqe, (int)wi->fh, e->payload, wi->size,
				    wi->offset);
	else
		io_uring_prep_read(sqe, (int)ri->fh, e->payload, ri->size,
				   ri->offset);
	io_uring_sqe_set_data(sqe, (void *)((uintptr_t)e | NFU_IO_TAG));
}

static void io_done(struct nfu_ent *e, int res)
{
	struct fuse_write_out *wo = e->payload;

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

static void handle(struct nfu_ent *e)
{
	const struct fuse_in_header *in = (const void *)e->hdr.in_out;
	const struct fuse_release_in *rel = (const void *)e->hdr.op_in;
	const struct fuse_fsync_in *fs = (const void *)e->hdr.op_in;

	static atomic_flag said = ATOMIC_FLAG_INIT;

	if (!atomic_flag_test_and_set(&said)) /* once: the mode took */
		fprintf(stderr, "nullfuse: requests arrive over io_uring\n");
	e->unique = in->unique;
	e->opcode = in->opcode;
	e->commit_id = e->hdr.ent.commit_id;
	switch (in->opcode) {
	case FUSE_LOOKUP:
		do_lookup(e, in);
		break;
	case FUSE_GETATTR:
		do_getattr(e, in);
		break;
	case FUSE_OPEN:
		do_open(e, in);
		break;
	case FUSE_READ:
	case FUSE_WRITE:
		do_rw(e, in->opcode == FUSE_WRITE);
		break;
	case FUSE_FLUSH:
		reply(e, 0, 0);
		break;
	case FUSE_FSYNC:
		reply(e, fsync((int)fs->fh) ? -errno : 0, 0);
		break;
	case FUSE_RELEASE:
		close((int)rel->fh);
		reply(e, 0, 0);
		break;
	default:
		reply(e, -ENOSYS, 0);
		break;
	}
}

/* One pass over the completions; false once the connection is gone. */
static bool reap(struct nfu_queue *q)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	bool live = true;

	io_uring_for_each_cqe(&q->ring, head, cqe)
	{
		uintptr_t d = (uintptr_t)io_uring_cqe_get_data(cqe);
		struct nfu_ent *e = (void *)(d & ~(uintptr_t)NFU_IO_TAG);

		n++;
		if (d & NFU_IO_TAG)
			io_done(e, cqe->res);
		else if (cqe->res == 0)
			handle(e);
		else if (cqe->res == -EINTR || cqe->res == -EAGAIN)
			prep_cmd(q, e, NFU_CMD_REGISTER);
		else
			live = false; /* -ENOTCONN: unmounted */
	}
	io_uring_cq_advance(&q->ring, n);
	return live;
}

static int queue_setup(struct nfu_queue *q, unsigned qid)
{
	q->qid = qid;
	q->ents = calloc(NFU_DEPTH, sizeof(*q->ents));
	if (!q->ents)
		return -ENOMEM;
	for (unsigned k = 0; k < NFU_DEPTH; k++) {
		struct nfu_ent *e = &q->ents[k];

		if (posix_memalign(&e->payload, 4096, nfu_payload_sz))
			return -ENOMEM;
		e->q = q;
		e->iov[0] = (struct iovec){ &e->hdr, sizeof(e->hdr) };
		e->iov[1] = (struct iovec){ e->payload, nfu_payload_sz };
	}
	return 0;
}

/* On the queue's thread: a SINGLE_ISSUER ring belongs to the task that
 * creates it. */
static int ring_setup(struct nfu_queue *q)
{
	struct io_uring_params p = { 0 };

	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * NFU_DEPTH;
	return io_uring_queue_init_params(2 * NFU_DEPTH, &q->ring, &p);
}

static void *queue_thread(void *arg)
{
	struct nfu_queue *q = arg;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(q->qid, &set);
	if (!getenv("NULLFUSE_NOPIN"))
		sched_setaffinity(0, sizeof(set), &set);
	if (ring_setup(q)) {
		perror("nullfuse: io_uring (SQE128) set-up");
		exit(1);
	}
	pthread_mutex_lock(&nfu_lock);
	while (!nfu_init_done)
		pthread_cond_wait(&nfu_cond, &nfu_lock);
	pthread_mutex_unlock(&nfu_lock);
	for (unsigned k = 0; k < NFU_DEPTH; k++)
		prep_cmd(q, &q->ents[k], NFU_CMD_REGISTER);
	do
		io_uring_submit_and_wait(&q->ring, 1);
	while (reap(q));
	return NULL;
}

uint32_t nf_uring_init_flags2(void)
{
	return NFU_FLAGS2_OVER_IO_URING;
}

void nf_uring_init_done(void)
{
	pthread_mutex_lock(&nfu_lock);
	nfu_init_done = true;
	pthread_cond_broadcast(&nfu_cond);
	pthread_mutex_unlock(&nfu_lock);
}

int nf_uring_start(int devfd, size_t max_payload)
{
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	struct nfu_queue *qs;
	int rc;

	nfu_devfd = devfd;
	nfu_payload_sz = max_payload;
	qs = calloc((size_t)ncpu, sizeof(*qs));
	if (!qs)
		return -ENOMEM;
	for (long c = 0; c < ncpu; c++) {
		rc = queue_setup(&qs[c], (unsigned)c);
		if (!rc)
			rc = -pthread_create(&qs[c].thread, NULL, queue_thread,
					     &qs[c]);
		if (rc)
			return rc;
	}
	return 0;
}
