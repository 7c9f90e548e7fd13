// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lun_iscsi.c - iscsi://portal[:port]/target-iqn/lun through libiscsi.
 *
 * One libiscsi context per handle, owned by the handle's I/O thread: a
 * libiscsi context is not thread-safe, so callers only queue a request
 * (struct isc_req, on their stack) and wait for it; the I/O thread
 * issues the SCSI commands asynchronously, polls the socket and an
 * eventfd, and completes requests from libiscsi's callbacks.
 *
 * Time-outs are ours: each request has a deadline; one that passes, or a
 * socket error, drops the whole session (iscsi_destroy_context cancels
 * every command in flight, and the target aborts the tasks of a session
 * that is reinstated), logs why, and fails what was in flight with -EIO
 * (the expired request -ETIMEDOUT).  The next request logs in again,
 * with the same initiator name and ISID, which is the same I_T nexus: a
 * registration made on it is still there.  libiscsi's own reconnection
 * is off, since it logs in with a fresh random ISID.
 *
 * ISID: the "random" format with a fixed value, this process's id and a
 * per-handle qualifier, so two processes (or two handles) with the same
 * initiator name never share an I_T nexus: a second login with the same
 * ISID would reinstate, i.e. kill, the other's session.
 *
 * Initiator name: CSVFS_ISCSI_INITIATOR from the environment, else
 * /etc/iscsi/initiatorname.iscsi, else iqn.2004-10.org.csvfs:<hostname>.
 * Two nodes must have different names (their registrations are told
 * apart by the I_T nexus).
 */
#include "lun_i.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

#define ISC_CHUNK      (1024u * 1024u) /* largest command */
#define ISC_RETRIES    5	       /* unit attentions, busy */
#define ISC_TIMEOUT_MS 15000
#define ISC_CONNECT_MS 5000
#define ISC_ZERO_CHUNK (8u * 1024u * 1024u)

enum isc_kind { ISC_READ, ISC_WRITE, ISC_SYNC, ISC_WSAME, ISC_PRO, ISC_PRI };

struct isc_req {
	enum isc_kind kind;
	uint64_t lba;
	uint32_t nblk;
	void *buf; /* READ: destination; WRITE, WSAME: source */
	uint32_t len;
	int sa; /* PR service action */
	unsigned type;
	uint64_t key, sakey;
	struct cvb_pr_state *pr;
	/* the I/O thread's */
	struct isc *s;
	struct scsi_task *task;
	int64_t deadline;
	unsigned tries;
	bool expired;
	struct isc_req *next;
	/* the answer (done under s->lock) */
	int rc;
	bool done;
};

struct isc {
	struct cvb_lun l; /* first: a struct cvb_lun * is a struct isc * */
	char *portal, *target, *initiator;
	int lun;
	uint32_t isid_rnd;
	uint16_t isid_q;
	unsigned timeout_ms, connect_ms;
	int efd; /* wakes the I/O thread */
	pthread_t thread;
	pthread_mutex_t lock;	  /* protects queue, stop, every done */
	pthread_cond_t done_cond; /* some request is done */
	struct isc_req *queue, *qtail;
	bool stop;
	bool running;		 /* the I/O thread exists in this process */
	struct isc *next_handle; /* handles_lock: every open handle */
	pthread_mutex_t rmw;	 /* unaligned writes, one at a time */
	/* the I/O thread's alone */
	struct iscsi_context *ctx;
	struct isc_req *inflight; /* issued, not completed */
	struct isc_req *retry;	  /* to issue again */
	bool registered;	  /* a PR key of ours is on the nexus */
	bool lease_only;	  /* immutable: ?fencing=lease */
	atomic_bool no_wsame;	  /* the target has no WRITE SAME */
	int conn_status;	  /* connect: 1 pending, 0 ok, -errno */
	char conn_err[256];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct isc *isc_of(struct cvb_lun *l)
{
	return (struct isc *)l;
}

/* ---- the I/O thread: sessions ------------------------------------------ */

static void connect_cb(struct iscsi_context *ctx, int status, void *data,
		       void *priv)
{
	struct isc *s = priv;

	(void)data;
	if (s->conn_status != 1)
		return; /* the second call: the connection failed later */
	if (status == SCSI_STATUS_GOOD) {
		s->conn_status = 0;
		return;
	}
	snprintf(s->conn_err, sizeof(s->conn_err), "%s", iscsi_get_error(ctx));
	s->conn_status = -EIO;
}

static struct iscsi_context *new_context(struct isc *s)
{
	struct iscsi_context *ctx = iscsi_create_context(s->initiator);

	if (!ctx)
		return NULL;
	iscsi_set_targetname(ctx, s->target);
	iscsi_set_session_type(ctx, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(ctx, ISCSI_HEADER_DIGEST_NONE_CRC32C);
	iscsi_set_noautoreconnect(ctx, 1);
	iscsi_set_isid_random(ctx, s->isid_rnd, s->isid_q);
	iscsi_set_timeout(ctx, 0); /* our deadlines (isc_login, submit) */
	return ctx;
}

/* Log in (connect, login, TEST UNIT READY) within connect_ms. */
static int isc_login(struct isc *s)
{
	int64_t end = now_ms() + s->connect_ms;
	struct pollfd p;

	s->ctx = new_context(s);
	if (!s->ctx)
		return -ENOMEM;
	s->conn_status = 1;
	s->conn_err[0] = '\0';
	if (iscsi_full_connect_async(s->ctx, s->portal, s->lun, connect_cb,
				     s)) {
		snprintf(s->conn_err, sizeof(s->conn_err), "%s",
			 iscsi_get_error(s->ctx));
		s->conn_status = -EIO;
	}
	while (s->conn_status == 1) {
		int64_t left = end - now_ms();

		if (left <= 0) {
			snprintf(s->conn_err, sizeof(s->conn_err),
				 "no answer from %s within %u ms", s->portal,
				 s->connect_ms);
			s->conn_status = -ETIMEDOUT;
			break;
		}
		p = (struct pollfd){ .fd = iscsi_get_fd(s->ctx),
				     .events = (short)iscsi_which_events(
					     s->ctx) };
		if (poll(&p, 1, left > 100 ? 100 : (int)left) < 0 &&
		    errno != EINTR)
			break;
		if (iscsi_service(s->ctx, p.revents) < 0 &&
		    s->conn_status == 1) {
			snprintf(s->conn_err, sizeof(s->conn_err), "%s",
				 iscsi_get_error(s->ctx));
			s->conn_status = -EIO;
		}
	}
	if (s->conn_status) {
		iscsi_destroy_context(s->ctx);
		s->ctx = NULL;
		return s->conn_status == 1 ? -EIO : s->conn_status;
	}
	iscsi_set_timeout(s->ctx, 0); /* deadlines are ours */
	return 0;
}

/* Drop the session: in-flight commands are cancelled (their callbacks
 * run now) and fail. */
static void isc_drop(struct isc *s, const char *why)
{
	if (!s->ctx)
		return;
	fprintf(stderr, "csvfs: %s: iSCSI session dropped: %s\n", s->l.source,
		why);
	iscsi_destroy_context(s->ctx);
	s->ctx = NULL;
}

/* ---- the I/O thread: commands ------------------------------------------ */

static void complete(struct isc *s, struct isc_req *r, int rc)
{
	pthread_mutex_lock(&s->lock);
	r->rc = rc;
	r->done = true;
	pthread_cond_broadcast(&s->done_cond);
	pthread_mutex_unlock(&s->lock);
}

static void unlink_inflight(struct isc *s, struct isc_req *r)
{
	struct isc_req **pp = &s->inflight;

	while (*pp && *pp != r)
		pp = &(*pp)->next;
	if (*pp)
		*pp = r->next;
	r->next = NULL;
}

/* 0, or -EIO when the answer does not decode. */
static int pr_in_result(struct isc_req *r, struct scsi_task *task)
{
	if (r->sa == SCSI_PERSISTENT_RESERVE_READ_KEYS) {
		struct scsi_persistent_reserve_in_read_keys *k =
			scsi_datain_unmarshall(task);

		if (!k)
			return -EIO;
		r->pr->generation = k->prgeneration;
		r->pr->nkeys = 0;
		for (int i = 0; i < k->num_keys && i < CVB_PR_MAX_KEYS; i++)
			r->pr->keys[r->pr->nkeys++] = k->keys[i];
	} else {
		struct scsi_persistent_reserve_in_read_reservation *v =
			scsi_datain_unmarshall(task);

		if (!v)
			return -EIO;
		r->pr->reserved = v->reserved;
		r->pr->holder = v->reservation_key;
		r->pr->type = v->pr_type;
	}
	return 0;
}

/* What a CHECK CONDITION means for r: 0 to retry, or -errno. */
static int sense_rc(struct isc *s, struct isc_req *r, struct scsi_task *t)
{
	int ascq = t->sense.ascq;
	char why[160];

	if (t->sense.key == SCSI_SENSE_UNIT_ATTENTION) {
		if (ascq == 0x2a03 || ascq == 0x2a04 || ascq == 0x2a05) {
			if (!s->registered)
				return 0; /* not ours to lose: retry */
			snprintf(why, sizeof(why),
				 "unit attention %02X/%02X: %s", ascq >> 8,
				 ascq & 0xff,
				 ascq == 0x2a03	  ? "reservations preempted"
				 : ascq == 0x2a04 ? "reservations released"
						  : "registrations preempted");
			cvb_lun_set_lost(&s->l, why);
			return -EIO;
		}
		return 0;
	}
	if (t->sense.key == SCSI_SENSE_ILLEGAL_REQUEST &&
	    (r->kind == ISC_PRO || r->kind == ISC_PRI ||
	     r->kind == ISC_WSAME) &&
	    (ascq == 0x2000 || ascq == 0x2400 || ascq == 0x2600))
		return -EOPNOTSUPP; /* no such command, field or value */
	fprintf(stderr, "csvfs: %s: SCSI command failed: %s, %s\n", s->l.source,
		scsi_sense_key_str(t->sense.key), scsi_sense_ascq_str(ascq));
	return -EIO;
}

static int status_rc(struct isc *s, struct isc_req *r, int status,
		     struct scsi_task *t)
{
	switch (status) {
	case SCSI_STATUS_GOOD:
		return r->kind == ISC_PRI ? pr_in_result(r, t) : 0;
	case SCSI_STATUS_CHECK_CONDITION:
		return sense_rc(s, r, t);
	case SCSI_STATUS_BUSY:
	case SCSI_STATUS_TASK_SET_FULL:
		return 0;
	case SCSI_STATUS_RESERVATION_CONFLICT:
		if (r->kind == ISC_PRO || r->kind == ISC_PRI || !s->registered)
			return -EBUSY; /* someone else's reservation */
		cvb_lun_set_lost(&s->l, "RESERVATION CONFLICT on a write");
		return -EIO;
	default:
		return r->expired ? -ETIMEDOUT : -EIO;
	}
}

static void cmd_cb(struct iscsi_context *ctx, int status, void *data,
		   void *priv)
{
	struct isc_req *r = priv;
	struct scsi_task *t = data;
	struct isc *s = r->s;
	int rc = status_rc(s, r, status, t);

	unlink_inflight(s, r);
	if (t)
		scsi_free_scsi_task(t);
	r->task = NULL;
	if (rc == 0 && status != SCSI_STATUS_GOOD && ++r->tries < ISC_RETRIES) {
		r->next = s->retry;
		s->retry = r;
		return;
	}
	if (rc == 0 && status != SCSI_STATUS_GOOD)
		rc = -EIO;
	if (!rc && r->kind == ISC_PRO) {
		if (r->sa ==
		    SCSI_PERSISTENT_RESERVE_REGISTER_AND_IGNORE_EXISTING_KEY)
			s->registered = r->sakey != 0;
	}
	complete(s, r, rc);
}

static struct scsi_task *issue_pr_out(struct isc *s, struct isc_req *r)
{
	struct scsi_persistent_reserve_out_basic p = {
		.reservation_key = r->key,
		.service_action_reservation_key = r->sakey,
	};

	return iscsi_persistent_reserve_out_task(
		s->ctx, s->lun, r->sa, SCSI_PERSISTENT_RESERVE_SCOPE_LU,
		(int)r->type, &p, cmd_cb, r);
}

static struct scsi_task *issue(struct isc *s, struct isc_req *r)
{
	struct scsi_task *t = NULL;
	int bs = (int)s->l.block;

	switch (r->kind) {
	case ISC_READ:
		t = iscsi_read16_task(s->ctx, s->lun, r->lba, r->len, bs, 0, 0,
				      0, 0, 0, cmd_cb, r);
		if (t && scsi_task_add_data_in_buffer(t, (int)r->len, r->buf)) {
			iscsi_scsi_cancel_task(s->ctx, t);
			return NULL;
		}
		break;
	case ISC_WRITE:
		t = iscsi_write16_task(s->ctx, s->lun, r->lba, r->buf, r->len,
				       bs, 0, 0, 0, 0, 0, cmd_cb, r);
		break;
	case ISC_SYNC:
		t = iscsi_synchronizecache16_task(s->ctx, s->lun, 0, 0, 0, 0,
						  cmd_cb, r);
		break;
	case ISC_WSAME:
		t = iscsi_writesame16_task(s->ctx, s->lun, r->lba, r->buf,
					   r->len, r->nblk, 0, 0, 0, 0, cmd_cb,
					   r);
		break;
	case ISC_PRO:
		t = issue_pr_out(s, r);
		break;
	case ISC_PRI:
		t = iscsi_persistent_reserve_in_task(s->ctx, s->lun, r->sa,
						     8192, cmd_cb, r);
		break;
	}
	return t;
}

/* Issue r, logging in first if there is no session. */
static void start(struct isc *s, struct isc_req *r)
{
	int rc = 0;

	if (!s->ctx && (rc = isc_login(s)))
		fprintf(stderr, "csvfs: %s: iSCSI login failed: %s\n",
			s->l.source, s->conn_err);
	if (rc) {
		complete(s, r, -EIO);
		return;
	}
	r->next = s->inflight;
	s->inflight = r;
	r->task = issue(s, r);
	if (!r->task) {
		unlink_inflight(s, r);
		complete(s, r, -ENOMEM);
	}
}

/* Requests past their deadline: drop the session (it fails them all). */
static void check_deadlines(struct isc *s)
{
	int64_t now = now_ms();
	bool late = false;

	for (struct isc_req *r = s->inflight; r; r = r->next)
		if (now > r->deadline)
			late = r->expired = true;
	if (late)
		isc_drop(s, "a command timed out");
}

static struct isc_req *take_queue(struct isc *s, bool *stop)
{
	struct isc_req *q;
	uint64_t v;

	if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		perror("csvfs: iSCSI eventfd");
	pthread_mutex_lock(&s->lock);
	q = s->queue;
	s->queue = s->qtail = NULL;
	*stop = s->stop;
	pthread_mutex_unlock(&s->lock);
	return q;
}

static void run_once(struct isc *s, bool *stop)
{
	struct pollfd p[2] = { { .fd = s->efd, .events = POLLIN },
			       { .fd = -1 } };
	struct isc_req *q = take_queue(s, stop), *r;

	while ((r = s->retry)) {
		s->retry = r->next;
		start(s, r);
	}
	while ((r = q)) {
		q = r->next;
		start(s, r);
	}
	if (s->ctx) {
		p[1].fd = iscsi_get_fd(s->ctx);
		p[1].events = (short)iscsi_which_events(s->ctx);
	}
	if (poll(p, 2, 100) < 0 && errno != EINTR)
		return;
	if (s->ctx && iscsi_service(s->ctx, p[1].revents) < 0) {
		char why[300];

		snprintf(why, sizeof(why), "%s", iscsi_get_error(s->ctx));
		isc_drop(s, why);
	}
	check_deadlines(s);
}

static void *io_thread(void *arg)
{
	struct isc *s = arg;
	bool stop = false;

	while (!stop || s->inflight || s->retry)
		run_once(s, &stop);
	if (s->ctx) {
		iscsi_set_timeout(s->ctx, 2); /* a gone target: give up */
		iscsi_logout_sync(s->ctx);
		iscsi_destroy_context(s->ctx);
		s->ctx = NULL;
	}
	return NULL;
}

/* ---- callers ------------------------------------------------------------ */

/*
 * csvfs opens the volume, then forks to become a daemon
 * (fuse_daemonize): the child has the sessions (the sockets and
 * libiscsi's state, idle: nothing is in flight while the main thread
 * forks) but not the I/O threads.  The child's first request starts a
 * new one.
 */
static pthread_mutex_t handles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct isc *handles; /* protected by handles_lock */
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_child(void)
{
	pthread_mutex_init(&handles_lock, NULL);
	for (struct isc *s = handles; s; s = s->next_handle) {
		pthread_mutex_init(&s->lock, NULL);
		pthread_mutex_init(&s->rmw, NULL);
		pthread_cond_init(&s->done_cond, NULL);
		s->running = false;
	}
}

static void install_atfork(void)
{
	pthread_atfork(NULL, NULL, after_fork_child);
}

static void handle_add(struct isc *s)
{
	pthread_once(&atfork_once, install_atfork);
	pthread_mutex_lock(&handles_lock);
	s->next_handle = handles;
	handles = s;
	pthread_mutex_unlock(&handles_lock);
}

static void handle_del(struct isc *s)
{
	struct isc **pp;

	pthread_mutex_lock(&handles_lock);
	for (pp = &handles; *pp && *pp != s; pp = &(*pp)->next_handle)
		;
	if (*pp)
		*pp = s->next_handle;
	pthread_mutex_unlock(&handles_lock);
}

/* Under s->lock: the I/O thread runs (started if not). */
static int ensure_thread(struct isc *s)
{
	int rc;

	if (s->running)
		return 0;
	rc = -pthread_create(&s->thread, NULL, io_thread, s);
	if (!rc)
		s->running = true;
	return rc;
}

static int submit(struct isc *s, struct isc_req *r)
{
	uint64_t one = 1;
	int rc;

	r->s = s;
	r->deadline = now_ms() + s->timeout_ms;
	r->done = false;
	r->next = NULL;
	pthread_mutex_lock(&s->lock);
	rc = ensure_thread(s);
	if (rc) {
		pthread_mutex_unlock(&s->lock);
		return rc;
	}
	if (s->qtail)
		s->qtail->next = r;
	else
		s->queue = r;
	s->qtail = r;
	pthread_mutex_unlock(&s->lock);
	if (write(s->efd, &one, sizeof(one)) < 0)
		return -errno;
	pthread_mutex_lock(&s->lock);
	while (!r->done)
		pthread_cond_wait(&s->done_cond, &s->lock);
	pthread_mutex_unlock(&s->lock);
	return r->rc;
}

/* Whole blocks: [lba, lba + len/bs), in chunks of ISC_CHUNK. */
static int blocks_io(struct isc *s, bool wr, void *buf, size_t len,
		     uint64_t lba)
{
	uint32_t bs = s->l.block;

	while (len) {
		uint32_t n = len < ISC_CHUNK ? (uint32_t)len : ISC_CHUNK;
		struct isc_req r = { .kind = wr ? ISC_WRITE : ISC_READ,
				     .lba = lba,
				     .buf = buf,
				     .len = n };
		int rc = submit(s, &r);

		if (rc)
			return rc;
		buf = (char *)buf + n;
		len -= n;
		lba += n / bs;
	}
	return 0;
}

/* A byte range through whole blocks: the covering blocks read, patched
 * (writes) and written. */
static int unaligned_io(struct isc *s, bool wr, void *buf, size_t len,
			uint64_t off)
{
	uint32_t bs = s->l.block;
	uint64_t first = off / bs, end = (off + len + bs - 1) / bs;
	size_t span = (size_t)(end - first) * bs;
	char *tmp = malloc(span);
	int rc;

	if (!tmp)
		return -ENOMEM;
	if (wr)
		pthread_mutex_lock(&s->rmw);
	rc = blocks_io(s, false, tmp, span, first);
	if (!rc && wr) {
		memcpy(tmp + (off - first * bs), buf, len);
		rc = blocks_io(s, true, tmp, span, first);
	} else if (!rc) {
		memcpy(buf, tmp + (off - first * bs), len);
	}
	if (wr)
		pthread_mutex_unlock(&s->rmw);
	free(tmp);
	return rc;
}

static ssize_t isc_io(struct cvb_lun *l, bool wr, void *buf, size_t len,
		      uint64_t off)
{
	struct isc *s = isc_of(l);
	uint32_t bs = l->block;
	int rc;

	if (off >= l->size)
		return 0;
	if (len > l->size - off)
		len = (size_t)(l->size - off);
	if (off % bs || len % bs)
		rc = unaligned_io(s, wr, buf, len, off);
	else
		rc = blocks_io(s, wr, buf, len, off / bs);
	return rc ? rc : (ssize_t)len;
}

static ssize_t isc_pread(struct cvb_lun *l, void *buf, size_t len, uint64_t off)
{
	return isc_io(l, false, buf, len, off);
}

static ssize_t isc_pwrite(struct cvb_lun *l, const void *buf, size_t len,
			  uint64_t off)
{
	/* the write path only reads buf */
	return isc_io(l, true, (void *)(uintptr_t)buf, len, off);
}

static int isc_flush(struct cvb_lun *l)
{
	struct isc_req r = { .kind = ISC_SYNC };

	return submit(isc_of(l), &r);
}

static const uint8_t zero_buf[65536];

/* Zeroes written over [off, off + len), any alignment. */
static int zero_written(struct cvb_lun *l, uint64_t off, uint64_t len)
{
	while (len) {
		size_t m =
			len < sizeof(zero_buf) ? (size_t)len : sizeof(zero_buf);
		ssize_t w =
			isc_io(l, true, (void *)(uintptr_t)zero_buf, m, off);

		if (w <= 0)
			return w < 0 ? (int)w : -EIO;
		off += (uint64_t)w;
		len -= (uint64_t)w;
	}
	return 0;
}

/* WRITE SAME(16) of a zero block over the whole blocks, where the
 * target has it (remembered when it has not); zeroes written elsewhere
 * and otherwise. */
static int isc_zero(struct cvb_lun *l, uint64_t off, uint64_t len)
{
	struct isc *s = isc_of(l);
	uint32_t bs = l->block;
	uint64_t a = (off + bs - 1) / bs * bs, b = (off + len) / bs * bs;
	int rc = 0;

	if (a >= b || atomic_load(&s->no_wsame))
		return zero_written(l, off, len);
	if (a > off && (rc = zero_written(l, off, a - off)))
		return rc;
	if (off + len > b && (rc = zero_written(l, b, off + len - b)))
		return rc;
	for (uint64_t p = a; p < b && !rc;) {
		uint64_t n = b - p < ISC_ZERO_CHUNK ? b - p : ISC_ZERO_CHUNK;
		struct isc_req r = { .kind = ISC_WSAME,
				     .lba = p / bs,
				     .nblk = (uint32_t)(n / bs),
				     .buf = (void *)(uintptr_t)zero_buf,
				     .len = bs };

		rc = submit(s, &r);
		if (rc == -EOPNOTSUPP) {
			atomic_store(&s->no_wsame, true);
			rc = zero_written(l, p, b - p);
			break;
		}
		p += n;
	}
	return rc;
}

static int isc_pr_out(struct cvb_lun *l, int sa, unsigned type, uint64_t key,
		      uint64_t sakey)
{
	struct isc_req r = { .kind = ISC_PRO,
			     .sa = sa,
			     .type = type,
			     .key = key,
			     .sakey = sakey };

	return submit(isc_of(l), &r);
}

static int isc_pr_read(struct cvb_lun *l, struct cvb_pr_state *st)
{
	struct isc_req k = { .kind = ISC_PRI,
			     .pr = st,
			     .sa = SCSI_PERSISTENT_RESERVE_READ_KEYS };
	struct isc_req v = { .kind = ISC_PRI,
			     .pr = st,
			     .sa = SCSI_PERSISTENT_RESERVE_READ_RESERVATION };
	int rc = submit(isc_of(l), &k);

	return rc ? rc : submit(isc_of(l), &v);
}

static void isc_close(struct cvb_lun *l);

static const struct cvb_lun_ops isc_ops = {
	.pread = isc_pread,
	.pwrite = isc_pwrite,
	.flush = isc_flush,
	.zero = isc_zero,
	.close = isc_close,
	.pr_out = isc_pr_out,
	.pr_read = isc_pr_read,
};

/* ---- open and close ------------------------------------------------------ */

static void isc_close(struct cvb_lun *l)
{
	struct isc *s = isc_of(l);
	uint64_t one = 1;

	handle_del(s);
	if (s->running && s->registered && !atomic_load(&l->lost) &&
	    !atomic_load(&l->pr_keep) &&
	    isc_pr_out(l, CVB_PRO_REGISTER_IGNORE, 0, 0, 0))
		fprintf(stderr,
			"csvfs: %s: cannot withdraw our reservation "
			"key\n",
			l->source);
	if (s->running) {
		pthread_mutex_lock(&s->lock);
		s->stop = true;
		pthread_mutex_unlock(&s->lock);
		if (write(s->efd, &one, sizeof(one)) < 0)
			perror("csvfs: iSCSI eventfd");
		pthread_join(s->thread, NULL);
	}
	if (s->efd >= 0)
		close(s->efd);
	if (s->ctx)
		iscsi_destroy_context(s->ctx);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->rmw);
	pthread_cond_destroy(&s->done_cond);
	free(s->portal);
	free(s->target);
	free(s->initiator);
	/* cvb_lun_close frees the rest, s included */
}

static char *initiator_name(const struct cvb_lun_opts *o)
{
	const char *env = getenv("CSVFS_ISCSI_INITIATOR");
	char line[300], host[256] = "localhost";
	FILE *f;

	if (o && o->initiator && o->initiator[0])
		return strdup(o->initiator);
	if (env && env[0])
		return strdup(env);
	f = fopen("/etc/iscsi/initiatorname.iscsi", "re");
	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "InitiatorName=", 14)) {
			line[strcspn(line, "\r\n")] = '\0';
			fclose(f);
			return strdup(line + 14);
		}
	}
	if (f)
		fclose(f);
	gethostname(host, sizeof(host) - 1);
	snprintf(line, sizeof(line), "iqn.2004-10.org.csvfs:%s", host);
	return strdup(line);
}

/*
 * iscsi://portal[:port]/target-iqn/lun[?fencing=pr|lease], without user
 * or password.  fencing=lease: never use persistent reservations (a
 * target without them; the lease alone fences).
 */
static int parse_url(struct isc *s, const char *whole, char *err, size_t errlen)
{
	char url[1024], *q, *end;
	const char *p = url + 8, *slash, *last;
	long lun;

	snprintf(url, sizeof(url), "%s", whole);
	if ((q = strchr(url, '?'))) {
		*q++ = '\0';
		if (!strcmp(q, "fencing=lease")) {
			s->lease_only = true;
		} else if (strcmp(q, "fencing=pr")) {
			snprintf(err, errlen,
				 "%s: unknown option '%s' (fencing=pr or "
				 "fencing=lease)",
				 whole, q);
			return -EINVAL;
		}
	}
	slash = strchr(p, '/');

	last = slash ? strrchr(slash + 1, '/') : NULL;
	if (!slash || slash == p || !last || last == slash + 1 || !last[1] ||
	    strchr(p, '@')) {
		snprintf(err, errlen,
			 "%s: an iSCSI source is "
			 "iscsi://portal[:port]/target-iqn/lun",
			 url);
		return -EINVAL;
	}
	errno = 0;
	lun = strtol(last + 1, &end, 10);
	if (*end || errno || lun < 0 || lun > 16383) {
		snprintf(err, errlen, "%s: LUN '%s' is not a number 0..16383",
			 url, last + 1);
		return -EINVAL;
	}
	s->lun = (int)lun;
	s->portal = strndup(p, (size_t)(slash - p));
	s->target = strndup(slash + 1, (size_t)(last - slash - 1));
	return s->portal && s->target ? 0 : -ENOMEM;
}

/* READ CAPACITY(16), on the caller's thread before the I/O thread. */
static int read_capacity(struct isc *s, char *err, size_t errlen)
{
	struct scsi_task *t = iscsi_readcapacity16_sync(s->ctx, s->lun);
	struct scsi_readcapacity16 *rc16 = NULL;

	if (t && t->status == SCSI_STATUS_GOOD)
		rc16 = scsi_datain_unmarshall(t);
	if (!rc16 || !rc16->block_length || rc16->block_length > 4096 ||
	    (rc16->block_length & (rc16->block_length - 1))) {
		snprintf(err, errlen,
			 "iscsi://%s/%s: LUN %d is not a disk this csvfs "
			 "can use (READ CAPACITY: %s)",
			 s->portal, s->target, s->lun,
			 t && t->status == SCSI_STATUS_CHECK_CONDITION
				 ? scsi_sense_ascq_str(t->sense.ascq)
				 : iscsi_get_error(s->ctx));
		if (t)
			scsi_free_scsi_task(t);
		return -ENXIO;
	}
	s->l.block = rc16->block_length;
	s->l.size = (rc16->returned_lba + 1) * rc16->block_length;
	scsi_free_scsi_task(t);
	return 0;
}

/* A TCP connection to the portal within connect_ms, so that an
 * unreachable portal is named as such (0 or -errno). */
static int probe_portal(struct isc *s)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char host[256], *c;
	const char *port = "3260";
	struct pollfd p = { .events = POLLOUT };
	socklen_t sl = sizeof(int);
	int rc, soerr = 0;

	snprintf(host, sizeof(host), "%s", s->portal);
	if (host[0] == '[' && (c = strchr(host, ']'))) {
		*c = '\0';
		if (c[1] == ':')
			port = c + 2;
		memmove(host, host + 1, strlen(host));
	} else if ((c = strrchr(host, ':'))) {
		*c = '\0';
		port = c + 1;
	}
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(s->conn_err, sizeof(s->conn_err), "%s",
			 gai_strerror(rc));
		return -EHOSTUNREACH;
	}
	p.fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
		      0);
	rc = p.fd < 0 ? -errno : 0;
	if (!rc && connect(p.fd, ai->ai_addr, ai->ai_addrlen))
		rc = -errno;
	if (rc == -EINPROGRESS) {
		rc = poll(&p, 1, (int)s->connect_ms);
		rc = rc < 0 ? -errno : rc == 0 ? -ETIMEDOUT : 0;
		if (!rc && !getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &soerr, &sl))
			rc = -soerr;
	}
	if (rc)
		snprintf(s->conn_err, sizeof(s->conn_err), "%s", strerror(-rc));
	if (p.fd >= 0)
		close(p.fd);
	freeaddrinfo(ai);
	return rc;
}

static int login_first(struct isc *s, char *err, size_t errlen)
{
	int rc = probe_portal(s);

	if (rc) {
		snprintf(err, errlen, "iSCSI portal %s unreachable: %s",
			 s->portal, s->conn_err);
		return -EHOSTUNREACH;
	}
	rc = isc_login(s);
	if (rc)
		snprintf(err, errlen,
			 "iSCSI login to %s at %s (LUN %d) failed: %s",
			 s->target, s->portal, s->lun, s->conn_err);
	if (!rc) {
		iscsi_set_timeout(s->ctx, (int)(s->timeout_ms + 999) / 1000);
		rc = read_capacity(s, err, errlen);
		iscsi_set_timeout(s->ctx, 0);
	}
	if (rc == -ETIMEDOUT || (rc && !s->ctx))
		return -EHOSTUNREACH;
	return rc;
}

static int isc_setup(struct isc *s, const char *url,
		     const struct cvb_lun_opts *o, char *err, size_t errlen)
{
	static atomic_uint opened;
	int rc;

	s->timeout_ms = o && o->timeout_ms ? o->timeout_ms : ISC_TIMEOUT_MS;
	s->connect_ms = o && o->connect_ms ? o->connect_ms : ISC_CONNECT_MS;
	s->isid_rnd = (uint32_t)getpid() & 0xffffff;
	s->isid_q = (uint16_t)(atomic_fetch_add(&opened, 1) + 1);
	rc = parse_url(s, url, err, errlen);
	if (!rc && !(s->initiator = initiator_name(o)))
		rc = -ENOMEM;
	if (!rc)
		rc = login_first(s, err, errlen);
	if (rc)
		return rc;
	s->l.align = s->l.block;
	s->l.dev = (dev_t)cvb_lun_hash(url);
	s->l.caps = CVB_LUN_CAP_ISCSI | (s->lease_only ? 0 : CVB_LUN_CAP_PR);
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->efd < 0)
		return -errno;
	handle_add(s);
	pthread_mutex_lock(&s->lock);
	rc = ensure_thread(s);
	pthread_mutex_unlock(&s->lock);
	return rc;
}

int cvb_iscsi_open(const char *url, unsigned flags,
		   const struct cvb_lun_opts *o, struct cvb_lun **out,
		   char *err, size_t errlen)
{
	struct isc *s = calloc(1, sizeof(*s));
	int rc;

	(void)flags;
	if (!s)
		return -ENOMEM;
	s->l.fd = s->l.lockfd = s->efd = -1;
	s->l.ops = &isc_ops;
	pthread_mutex_init(&s->l.lost_lock, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->rmw, NULL);
	pthread_cond_init(&s->done_cond, NULL);
	s->l.source = strdup(url);
	rc = s->l.source ? isc_setup(s, url, o, err, errlen) : -ENOMEM;
	if (!rc && o && o->pr_key && !s->lease_only &&
	    (rc = cvb_pr_register(&s->l, o->pr_key)))
		snprintf(err, errlen,
			 "%s: cannot register the reservation key %016llx: %s",
			 url, (unsigned long long)o->pr_key, strerror(-rc));
	if (rc) {
		cvb_lun_close(&s->l);
		return rc;
	}
	*out = &s->l;
	return 0;
}
