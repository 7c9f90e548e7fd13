// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * mq.c - the metadata queue of a block volume: one thread owns the
 * engine (meta.h; libext2fs is single-threaded) and runs the requests
 * that FUSE workers queue to it, one at a time, in arrival order.
 *
 * A request (struct cvb_req, block_i.h) is plain data: the arguments of
 * one meta.h call and room for its answer.  The waiting caller wraps it
 * in a struct cvb_call (its completion) on its own stack.  Requests of
 * other nodes, from the coordinator channel (net.c), are submitted
 * without waiting: their completion function runs on this thread right
 * after the call, before the next request (it answers the node).
 *
 * Commits: a mutating request leaves its changes in the engine's open
 * transaction; the thread commits when its queue runs empty, so a burst
 * of creates is one journal transaction, and at once for COMMIT (fsync,
 * fsyncdir).  ALLOC commits by itself (meta.h).
 *
 * Before the thread is started (csvfs starts it once the daemon has
 * forked; csvfs-admin never does) and after it stops, a call runs on the
 * caller's thread under q->lock, which keeps the calls one at a time.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block_i.h"
#include "clock.h"
#include "log.h"

/* A queued request and its completion (the caller's stack). */
struct cvb_call {
	struct cvb_req *req;
	struct cvb_call *next; /* q->lock */
	bool done;	       /* q->lock */
	pthread_cond_t cond;   /* done became true */
	cvb_mq_done_fn fn;     /* submitted: called instead, then freed */
	void *arg;
};

/* Fill the request's dirent array from the engine's callback. */
struct rd_fill {
	struct cvb_req *r;
};

static int rd_fill_fn(void *arg, const char *name, ino_t ino, unsigned dtype,
		      off_t next)
{
	struct cvb_req *r = ((struct rd_fill *)arg)->r;
	struct cvb_dent *d;

	if (r->n >= r->bufsize)
		return 1;
	d = (struct cvb_dent *)r->buf + r->n;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->ino = ino;
	d->type = dtype;
	d->next = (uint64_t)next;
	r->n++;
	return 0;
}

static bool mutates(enum cvb_op op)
{
	switch (op) {
	case CVB_OP_GETATTR:
	case CVB_OP_LOOKUP:
	case CVB_OP_READLINK:
	case CVB_OP_READDIR:
	case CVB_OP_STATFS:
	case CVB_OP_GETXATTR:
	case CVB_OP_LISTXATTR:
	case CVB_OP_MAP:
	case CVB_OP_COMMIT:
	case CVB_OP_CHECKPOINT:
		return false;
	default:
		return true;
	}
}

/* The calls on names and attributes. */
static int64_t exec_names(struct cvb_meta *m, struct cvb_req *r)
{
	switch (r->op) {
	case CVB_OP_GETATTR:
		return cvb_meta_getattr(m, r->ino, &r->st);
	case CVB_OP_LOOKUP:
		return cvb_meta_lookup(m, r->ino, r->name, &r->st);
	case CVB_OP_SETATTR:
		return cvb_meta_setattr(m, r->ino, &r->attr, r->to_set, &r->st);
	case CVB_OP_MKNOD:
		return cvb_meta_mknod(m, r->ino, r->name, r->mode, r->rdev,
				      &r->cred, &r->st);
	case CVB_OP_MKDIR:
		return cvb_meta_mkdir(m, r->ino, r->name, r->mode, &r->cred,
				      &r->st);
	case CVB_OP_SYMLINK:
		return cvb_meta_symlink(m, r->ino, r->name, r->name2, &r->cred,
					&r->st);
	case CVB_OP_READLINK:
		return cvb_meta_readlink(m, r->ino, r->buf, r->bufsize);
	case CVB_OP_LINK:
		return cvb_meta_link(m, r->ino, r->ino2, r->name2, &r->st);
	case CVB_OP_UNLINK:
		return cvb_meta_unlink(m, r->ino, r->name);
	case CVB_OP_RMDIR:
		return cvb_meta_rmdir(m, r->ino, r->name);
	case CVB_OP_RENAME:
		return cvb_meta_rename(m, r->ino, r->name, r->ino2, r->name2,
				       r->flags);
	case CVB_OP_READDIR: {
		struct rd_fill f = { .r = r };

		r->n = 0;
		return cvb_meta_readdir(m, r->ino, r->off, rd_fill_fn, &f);
	}
	default:
		return -ENOSYS;
	}
}

/* Everything else: space, opens, xattrs, maps, commits. */
static int64_t exec_other(struct cvb_meta *m, struct cvb_req *r)
{
	switch (r->op) {
	case CVB_OP_STATFS:
		return cvb_meta_statfs(m, &r->sv);
	case CVB_OP_OPEN_REF:
		return cvb_meta_open_ref(m, r->ino);
	case CVB_OP_CLOSE_REF:
		return cvb_meta_close_ref(m, r->ino);
	case CVB_OP_GETXATTR:
		return cvb_meta_getxattr(m, r->ino, r->name, r->buf,
					 r->bufsize);
	case CVB_OP_SETXATTR:
		return cvb_meta_setxattr(m, r->ino, r->name, r->buf, r->bufsize,
					 (int)r->flags);
	case CVB_OP_LISTXATTR:
		return cvb_meta_listxattr(m, r->ino, r->buf, r->bufsize);
	case CVB_OP_REMOVEXATTR:
		return cvb_meta_removexattr(m, r->ino, r->name);
	case CVB_OP_MAP:
		return cvb_meta_map(m, r->ino, r->off, r->len, r->ext, r->max,
				    &r->n, &r->gen);
	case CVB_OP_ALLOC:
		return cvb_meta_alloc(m, r->ino, r->off, r->len, r->ext, r->max,
				      &r->n, &r->gen);
	case CVB_OP_FALLOCATE:
		return cvb_meta_fallocate(m, r->ino, r->fmode, r->off, r->len);
	case CVB_OP_SET_WRITTEN:
		return cvb_meta_set_written(m, r->ino, r->size, &r->mtime);
	case CVB_OP_COMMIT:
		return cvb_meta_commit(m);
	case CVB_OP_CHECKPOINT:
		return cvb_meta_checkpoint(m);
	default:
		return exec_names(m, r);
	}
}

static int64_t exec(struct cvb_mq *q, struct cvb_req *r)
{
	if (!q->m)
		return -ENXIO;
	return exec_other(q->m, r);
}

static void commit_now(struct cvb_mq *q)
{
	int rc = cvb_meta_commit(q->m);

	if (rc)
		log_err("block: journal commit failed: %s", strerror(-rc));
	q->commits++;
}

/* An engine call failed reading or writing the LUN: said in the log
 * (the caller gets EIO), at most once a second.  Engine thread only. */
static void log_lun_error(const struct cvb_req *r)
{
	static uint64_t last_ms, missed;
	uint64_t now = cv_now_ms();

	if (last_ms && now - last_ms < 1000) {
		missed++;
		return;
	}
	log_err("block: I/O error on the LUN (request %d, inode %llu; %llu "
		"more since the last report): calls that need it fail with "
		"EIO until it answers",
		(int)r->op, (unsigned long long)r->ino,
		(unsigned long long)missed);
	last_ms = now;
	missed = 0;
}

/* Called with q->lock held; returns with it held. */
static void run_one(struct cvb_mq *q, struct cvb_call *c)
{
	struct cvb_req *r = c->req;
	cvb_mq_done_fn fn = c->fn;
	bool dirty, commit = r->op == CVB_OP_COMMIT;

	pthread_mutex_unlock(&q->lock);
	r->res = exec(q, r);
	if (r->res == -EIO)
		log_lun_error(r);
	dirty = r->res >= 0 && mutates(r->op);
	if (fn) { /* on this thread, before the next request; r may go */
		fn(c->arg, r);
		free(c);
	}
	pthread_mutex_lock(&q->lock);
	q->calls++;
	if (dirty)
		q->dirty = true;
	if (commit)
		q->dirty = false;
	if (!fn) {
		c->done = true;
		pthread_cond_signal(&c->cond);
	}
}

static void *mq_thread(void *arg)
{
	struct cvb_mq *q = arg;
	struct cvb_call *c;

	pthread_mutex_lock(&q->lock);
	while (!q->stop || q->head) {
		c = q->head;
		if (!c && q->dirty) {
			q->dirty = false;
			pthread_mutex_unlock(&q->lock);
			commit_now(q);
			pthread_mutex_lock(&q->lock);
			continue;
		}
		if (!c) {
			pthread_cond_wait(&q->cond, &q->lock);
			continue;
		}
		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		run_one(q, c);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int cvb_mq_init(struct cvb_mq *q)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	return 0;
}

void cvb_mq_destroy(struct cvb_mq *q)
{
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
}

int cvb_mq_start(struct cvb_mq *q)
{
	int rc;

	pthread_mutex_lock(&q->lock);
	q->stop = false;
	rc = -pthread_create(&q->thread, NULL, mq_thread, q);
	q->running = !rc;
	pthread_mutex_unlock(&q->lock);
	return rc;
}

/* Runs what is queued, commits, ends the thread. */
void cvb_mq_stop(struct cvb_mq *q)
{
	pthread_mutex_lock(&q->lock);
	if (!q->running) {
		pthread_mutex_unlock(&q->lock);
		return;
	}
	q->stop = true;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	pthread_join(q->thread, NULL);
	pthread_mutex_lock(&q->lock);
	q->running = false;
	pthread_mutex_unlock(&q->lock);
}

int cvb_mq_submit(struct cvb_mq *q, struct cvb_req *r, cvb_mq_done_fn fn,
		  void *arg)
{
	struct cvb_call *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->req = r;
	c->fn = fn;
	c->arg = arg;
	pthread_mutex_lock(&q->lock);
	if (!q->running || q->stop) {
		pthread_mutex_unlock(&q->lock);
		free(c);
		return -ESHUTDOWN;
	}
	if (q->tail)
		q->tail->next = c;
	else
		q->head = c;
	q->tail = c;
	pthread_cond_signal(&q->cond);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

int64_t cvb_mq_call(struct cvb_mq *q, struct cvb_req *r)
{
	struct cvb_call c = { .req = r };

	pthread_mutex_lock(&q->lock);
	if (!q->running) {
		/* one caller at a time: q->lock is held throughout */
		r->res = exec(q, r);
		if (r->res >= 0 && mutates(r->op) && q->m)
			commit_now(q);
		pthread_mutex_unlock(&q->lock);
		return r->res;
	}
	pthread_cond_init(&c.cond, NULL);
	if (q->tail)
		q->tail->next = &c;
	else
		q->head = &c;
	q->tail = &c;
	pthread_cond_signal(&q->cond);
	while (!c.done)
		pthread_cond_wait(&c.cond, &q->lock);
	pthread_mutex_unlock(&q->lock);
	pthread_cond_destroy(&c.cond);
	return r->res;
}
