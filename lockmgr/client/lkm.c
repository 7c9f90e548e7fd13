// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lkm.c - liblockmgr: the client side of the csvfs-lockd socket protocol.
 *
 * One connection (struct lkm_client) is a SOCK_SEQPACKET socket to lockd.
 * Every request gets the next sequence number and a struct lkm_call in the
 * client's table; lockd echoes the number in the reply, which completes
 * the call.  Pushed events carry sequence 0.
 *
 * Who reads the socket (leader/follower): after lkm_start_events() the
 * library's reader thread reads everything, completes calls and runs the
 * event handler.  Before that, a waiting call reads the socket itself: the
 * first waiter takes the reader role (c->reading), completes whatever
 * replies arrive (its own or other threads') and drops events; the others
 * sleep on c->cond until their reply is in or the role is free.  Both modes
 * share dispatch(), so a reply is handled the same way whoever read it.
 *
 * Timeouts: a call that times out is removed from the table, except an
 * acquire or a SETW plock: lockd may still grant it, so lkm sends
 * LM_S_CANCEL for its seq and keeps the call as "abandoned" until its
 * late reply (LM_ERR_CANCELED, or a grant) arrives and is dropped.  A grant
 * that wins the race with the cancel is undone by lockd itself when the
 * cancel arrives (lockd_res.c): undoing it here too could, for a plock,
 * unlock a range the caller locked again after the timeout.
 *
 * Lock order: c->lock only; it is never held across a blocking syscall or
 * the event handler.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "lkm.h"
#include "lm_proto.h"

#define LKM_CALL_TIMEOUT_MS 10000 /* queries and admin calls */
#define LKM_CANCEL_TIMEOUT_MS 1000
#define LKM_REQ_MAX 1024 /* every request encodes into less */

struct lkm_call {
	struct lkm_call *next;	/* in c->calls, protected by c->lock */
	uint32_t seq;
	uint16_t want;		/* expected reply type */
	bool done;		/* protected by c->lock */
	bool abandoned;		/* caller gave up; dispatch() owns it */
	int err;		/* transport error when done, else 0 */
	int32_t status;		/* wire status of the reply */
	struct lm_smsg *req;	/* the request */
	struct lm_smsg *rep;	/* single replies: a copy */
	size_t esize;		/* batch entry size; 0 = single reply */
	void *v;		/* batch entries, malloc'd */
	size_t n;
	size_t cap;
};

struct lkm_client {
	int fd;
	struct lkm_server_info info;	/* set once by lkm_connect */
	uint16_t version;		/* chosen at the hello, then fixed */

	pthread_mutex_t lock;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC; any change below */
	uint32_t next_seq;		/* protected by lock */
	struct lkm_call *calls;		/* protected by lock */
	bool reading;			/* a caller holds the reader role */
	bool events_on;			/* the reader thread owns reading */
	bool broken;			/* protected by lock */
	bool closing;			/* protected by lock */

	/* Receive buffers: used only by whoever holds the reader role. */
	uint8_t *rbuf;
	struct lm_smsg *rmsg;

	pthread_t reader;
	lkm_event_fn fn;		/* set before the reader starts */
	void *fn_arg;
};

/* The break event passed to the handler. */
static const struct lkm_event lkm_break_ev = { .type = LKM_EV_BROKEN };

/* The public form of an event lockd pushed (same type numbers). */
static void event_of(const struct lm_smsg *m, struct lkm_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->type = (enum lkm_event_type)m->type;
	if (m->type == LM_S_EV_LEASE) {
		ev->lease_valid = m->u.ev_lease.valid;
		ev->lease_deadline_ns = m->u.ev_lease.deadline_ns;
		return;
	}
	ev->fileid = m->u.ev_file.fileid;
	ev->epoch = m->u.ev_file.epoch;
	ev->owner = m->u.ev_file.owner;
}

/* ---------------------------------------------------------------- time */

static void deadline_set(struct timespec *d, int timeout_ms)
{
	*d = cv_deadline_ms((uint64_t)timeout_ms);
}

/* Milliseconds left before d (0 when past); -1 for no deadline. */
static int deadline_left_ms(const struct timespec *d)
{
	int64_t ms;

	if (!d)
		return -1;
	ms = cv_ms_left(d);
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* -------------------------------------------------------------- socket */

static int send_msg(struct lkm_client *c, const struct lm_smsg *m,
		    const struct timespec *deadline)
{
	uint8_t buf[LKM_REQ_MAX];
	struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
	int len, r;

	len = lm_smsg_encode_v(m, c->version, buf, sizeof(buf));
	if (len < 0)
		return len;
	for (;;) {
		if (send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT) == len)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return errno == EPIPE ? -ECONNRESET : -errno;
		r = poll(&pfd, 1, deadline_left_ms(deadline));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
}

/* Read and decode one message into c->rmsg; caller holds the reader
 * role.  -ETIMEDOUT when the deadline passed, -ECONNRESET on EOF. */
static int recv_msg(struct lkm_client *c, const struct timespec *deadline)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
	ssize_t len;
	int r;

	for (;;) {
		len = recv(c->fd, c->rbuf, LM_MSG_MAX, MSG_DONTWAIT | MSG_TRUNC);
		if (len == 0)
			return -ECONNRESET;
		if (len > LM_MSG_MAX)
			return -EPROTO;
		if (len > 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		r = poll(&pfd, 1, deadline_left_ms(deadline));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0 && errno != EINTR)
			return -errno;
	}
	r = lm_smsg_decode(c->rbuf, len, c->rmsg);
	return r < 0 ? -EPROTO : 0;
}

/* ------------------------------------------------------------ dispatch */

static void call_free(struct lkm_call *call)
{
	if (!call)
		return;
	free(call->req);
	free(call->rep);
	free(call->v);
	free(call);
}

static void call_unlink(struct lkm_client *c, struct lkm_call *call)
{
	struct lkm_call **pp;

	for (pp = &c->calls; *pp; pp = &(*pp)->next) {
		if (*pp == call) {
			*pp = call->next;
			call->next = NULL;
			return;
		}
	}
}

/* Entries of a batched reply; false for other types. */
static bool batch_view(const struct lm_smsg *m, const void **e, uint32_t *n,
		       bool *more, int32_t *status)
{
	switch (m->type) {
	case LM_S_R_NODES:
		*e = m->u.r_nodes.e;
		*n = m->u.r_nodes.n;
		*more = m->u.r_nodes.more;
		*status = m->u.r_nodes.status;
		return true;
	case LM_S_R_OWNERS:
		*e = m->u.r_owners.e;
		*n = m->u.r_owners.n;
		*more = m->u.r_owners.more;
		*status = m->u.r_owners.status;
		return true;
	case LM_S_R_LOCKS:
		*e = m->u.r_locks.e;
		*n = m->u.r_locks.n;
		*more = m->u.r_locks.more;
		*status = m->u.r_locks.status;
		return true;
	case LM_S_R_VOLUMES:
		*e = m->u.r_volumes.e;
		*n = m->u.r_volumes.n;
		*more = m->u.r_volumes.more;
		*status = m->u.r_volumes.status;
		return true;
	case LM_S_R_LOG:
		*e = m->u.r_log.e;
		*n = m->u.r_log.n;
		*more = m->u.r_log.more;
		*status = m->u.r_log.status;
		return true;
	default:
		return false;
	}
}

/* Append a batch; true when the call is complete. */
static bool batch_add(struct lkm_call *call, const struct lm_smsg *m)
{
	const void *e = NULL;
	uint32_t n = 0;
	bool more = false;
	int32_t status = 0;
	void *nv;

	batch_view(m, &e, &n, &more, &status);
	if (status != 0) {
		call->status = status;
		return true;
	}
	if (n == 0)
		return !more;
	if (call->n + n > call->cap) {
		size_t cap = call->cap ? call->cap * 2 : LM_BATCH_MAX;

		while (cap < call->n + n)
			cap *= 2;
		nv = realloc(call->v, cap * call->esize);
		if (!nv) {
			call->err = -ENOMEM;
			return true;
		}
		call->v = nv;
		call->cap = cap;
	}
	memcpy((char *)call->v + call->n * call->esize, e, n * call->esize);
	call->n += n;
	return !more;
}

static int32_t reply_status(const struct lm_smsg *m)
{
	switch (m->type) {
	case LM_S_R_HELLO:
		return m->u.r_hello.status;
	case LM_S_R_RESULT:
		return m->u.r_result.status;
	case LM_S_R_GETLK:
		return m->u.r_getlk.status;
	case LM_S_R_STATUS:
		return m->u.r_status.status;
	case LM_S_R_METRICS:
		return m->u.r_metrics.status;
	default:
		return -EPROTO;
	}
}

/* Requests lockd may still grant after the caller gave up: canceled. */
static bool is_cancelable(const struct lm_smsg *req)
{
	if (req->type == LM_S_ACQUIRE)
		return true;
	return req->type == LM_S_PLOCK && req->u.plock.op == LM_PL_SETW;
}

/* Hand a reply (not an event) to its call; under c->lock. */
static void dispatch(struct lkm_client *c, const struct lm_smsg *m)
{
	struct lkm_call *call;
	const void *e;
	uint32_t n;
	bool more, done = true;
	int32_t st;

	for (call = c->calls; call; call = call->next)
		if (call->seq == m->seq)
			break;
	if (!call)
		return; /* late reply of a call that timed out */
	if (call->abandoned) {
		call_unlink(c, call);
		call_free(call);
		return;
	}
	if (call->esize && batch_view(m, &e, &n, &more, &st)) {
		if (m->type == call->want)
			done = batch_add(call, m);
		else
			call->err = -EPROTO;
	} else if (m->type == call->want || m->type == LM_S_R_RESULT) {
		call->status = reply_status(m);
		if (call->rep)
			memcpy(call->rep, m, sizeof(*m));
	} else {
		call->err = -EPROTO;
	}
	if (done) {
		call->done = true;
		call_unlink(c, call);
		pthread_cond_broadcast(&c->cond);
	}
}

/* The connection is gone: fail every waiting call; under c->lock. */
static void set_broken(struct lkm_client *c)
{
	struct lkm_call *call, *next;

	c->broken = true;
	for (call = c->calls; call; call = next) {
		next = call->next;
		call->next = NULL;
		if (call->abandoned) {
			call_free(call);
			continue;
		}
		call->done = true;
		call->err = -ECONNRESET;
	}
	c->calls = NULL;
	pthread_cond_broadcast(&c->cond);
}

static void *reader_main(void *arg)
{
	struct lkm_client *c = arg;
	bool closing;

	for (;;) {
		if (recv_msg(c, NULL) < 0)
			break;
		if (c->rmsg->seq == 0 && c->rmsg->type >= LM_S_EV_LEASE) {
			struct lkm_event ev;

			event_of(c->rmsg, &ev);
			c->fn(&ev, c->fn_arg);
			continue;
		}
		pthread_mutex_lock(&c->lock);
		dispatch(c, c->rmsg);
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_lock(&c->lock);
	closing = c->closing;
	set_broken(c);
	pthread_mutex_unlock(&c->lock);
	if (!closing)
		c->fn(&lkm_break_ev, c->fn_arg);
	return NULL;
}

/* ---------------------------------------------------------------- calls */

static int cond_wait_until(struct lkm_client *c, const struct timespec *d)
{
	if (!d)
		return -pthread_cond_wait(&c->cond, &c->lock);
	return -pthread_cond_timedwait(&c->cond, &c->lock, d);
}

/* Take the reader role for one message; called and returns with c->lock
 * held.  Events read here are dropped (no handler yet). */
static int read_as_leader(struct lkm_client *c, const struct timespec *d)
{
	int r;

	c->reading = true;
	pthread_mutex_unlock(&c->lock);
	r = recv_msg(c, d);
	pthread_mutex_lock(&c->lock);
	c->reading = false;
	if (r == 0 && c->rmsg->seq != 0)
		dispatch(c, c->rmsg);
	else if (r < 0 && r != -ETIMEDOUT)
		set_broken(c);
	pthread_cond_broadcast(&c->cond);
	return r;
}

/* Wait until call is done; 0 or -ETIMEDOUT / -ECONNRESET. */
static int wait_call(struct lkm_client *c, struct lkm_call *call,
		     const struct timespec *d)
{
	int r = 0;

	pthread_mutex_lock(&c->lock);
	while (!call->done && !c->broken) {
		if (c->events_on || c->reading)
			r = cond_wait_until(c, d);
		else
			r = read_as_leader(c, d);
		if (r == -ETIMEDOUT)
			break;
		r = 0;
	}
	if (call->done)
		r = call->err;
	else if (r == -ETIMEDOUT && is_cancelable(call->req))
		call->abandoned = true; /* dispatch() frees it */
	else
		call_unlink(c, call);
	if (!call->done && c->broken)
		r = -ECONNRESET;
	pthread_mutex_unlock(&c->lock);
	return r;
}

static struct lkm_call *call_new(uint16_t type, uint16_t want, size_t esize,
				 bool want_copy)
{
	struct lkm_call *call = calloc(1, sizeof(*call));

	if (!call)
		return NULL;
	call->req = calloc(1, sizeof(*call->req));
	if (want_copy)
		call->rep = calloc(1, sizeof(*call->rep));
	if (!call->req || (want_copy && !call->rep)) {
		call_free(call);
		return NULL;
	}
	call->req->type = type;
	call->want = want;
	call->esize = esize;
	return call;
}

static void send_cancel(struct lkm_client *c, uint32_t seq)
{
	struct lm_smsg *m = calloc(1, sizeof(*m));
	struct timespec d;

	if (!m)
		return;
	m->type = LM_S_CANCEL;
	m->u.cancel.seq = seq;
	pthread_mutex_lock(&c->lock);
	m->seq = c->next_seq++;
	if (c->next_seq == 0)
		c->next_seq = 1;
	pthread_mutex_unlock(&c->lock);
	deadline_set(&d, LKM_CANCEL_TIMEOUT_MS);
	send_msg(c, m, &d);
	free(m);
}

/*
 * Send call->req and wait for its reply.  Returns 0 with call->status /
 * call->rep / call->v filled, or -errno; on -ETIMEDOUT of a grant request
 * the call now belongs to dispatch() (*call set to NULL).
 */
static int do_call(struct lkm_client *c, struct lkm_call **callp,
		   int timeout_ms)
{
	struct lkm_call *call = *callp;
	struct timespec dl, *d = NULL;
	uint32_t seq;
	int r;

	if (timeout_ms >= 0) {
		deadline_set(&dl, timeout_ms);
		d = &dl;
	}
	pthread_mutex_lock(&c->lock);
	if (c->broken) {
		pthread_mutex_unlock(&c->lock);
		return -ECONNRESET;
	}
	seq = c->next_seq++;
	if (c->next_seq == 0)
		c->next_seq = 1;
	call->seq = call->req->seq = seq;
	call->next = c->calls;
	c->calls = call;
	pthread_mutex_unlock(&c->lock);

	r = send_msg(c, call->req, d);
	if (r < 0) {
		pthread_mutex_lock(&c->lock);
		call_unlink(c, call);
		pthread_mutex_unlock(&c->lock);
		return r;
	}
	r = wait_call(c, call, d);
	if (r == -ETIMEDOUT && call->abandoned) {
		*callp = NULL;
		send_cancel(c, seq);
	}
	return r;
}

/* One request, one status: 0 or -status (or -errno of the transport). */
static int simple_call(struct lkm_client *c, struct lkm_call *call,
		       int timeout_ms, uint64_t *epoch)
{
	int r;

	r = do_call(c, &call, timeout_ms);
	if (r == 0 && call->status != 0)
		r = call->status > 0 ? -call->status : call->status;
	if (r == 0 && epoch && call->rep)
		*epoch = call->rep->u.r_result.epoch;
	call_free(call);
	return r;
}

/* ------------------------------------------------------------- connect */

static int open_socket(const char *path, const struct timespec *d, int *fdp)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	socklen_t len = sizeof(int);
	int fd, err = 0;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	while (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		if (err == EINTR)
			continue;
		if (err == EAGAIN && deadline_left_ms(d) > 0) {
			usleep(5000); /* listen backlog full: retry */
			continue;
		}
		if (err != EINPROGRESS)
			goto fail;
		pfd = (struct pollfd){ .fd = fd, .events = POLLOUT };
		if (poll(&pfd, 1, deadline_left_ms(d)) == 0) {
			err = ETIMEDOUT;
			goto fail;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err)
			goto fail;
		break;
	}
	*fdp = fd;
	return 0;
fail:
	close(fd);
	return -err;
}

static int client_new(struct lkm_client **out)
{
	struct lkm_client *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->next_seq = 1;
	c->rbuf = malloc(LM_MSG_MAX);
	c->rmsg = calloc(1, sizeof(*c->rmsg));
	if (!c->rbuf || !c->rmsg) {
		free(c->rbuf);
		free(c->rmsg);
		free(c);
		return -ENOMEM;
	}
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = c;
	return 0;
}

void lkm_proto_refusal(char *buf, size_t len, unsigned lockd_min,
		       unsigned lockd_max, unsigned client_min,
		       unsigned client_max)
{
	snprintf(buf, len, "csvfs-lockd speaks client protocol %u..%u, this "
		 "client %u..%u: upgrade %s", lockd_min, lockd_max, client_min,
		 client_max, client_max < lockd_min ? "this client" :
		 "csvfs-lockd");
}

/* Why the hello failed, for lkm_connect_err(). */
static void hello_error(const struct lkm_call *call, int r, char *err,
			size_t errlen)
{
	const struct lm_s_r_hello *rh = &call->rep->u.r_hello;

	if (!err || !errlen)
		return;
	if (r == -EPROTONOSUPPORT && call->rep->type == LM_S_R_HELLO) {
		lkm_proto_refusal(err, errlen, rh->proto_min, rh->proto_max,
				  LM_CLIENT_VERSION_MIN,
				  LM_CLIENT_VERSION_MAX);
	} else if (r == -ECONNRESET) {
		/* what a csvfs-lockd from before version negotiation does
		 * with a hello it cannot read */
		snprintf(err, errlen, "csvfs-lockd closed the connection at "
			 "the hello: it may be older than this client (client "
			 "protocol %u..%u); upgrade csvfs-lockd",
			 LM_CLIENT_VERSION_MIN, LM_CLIENT_VERSION_MAX);
	} else {
		snprintf(err, errlen, "%s", lkm_strerror(r));
	}
}

static int say_hello(struct lkm_client *c, const struct lkm_hello *hello,
		     int timeout_ms, char *err, size_t errlen)
{
	struct lkm_call *call;
	struct lm_s_hello *h;
	struct lm_s_r_hello *rh;
	int r;

	call = call_new(LM_S_HELLO, LM_S_R_HELLO, 0, true);
	if (!call)
		return -ENOMEM;
	h = &call->req->u.hello;
	h->proto_min = LM_CLIENT_VERSION_MIN;
	h->proto_max = LM_CLIENT_VERSION_MAX;
	h->kind = hello ? hello->kind : LM_CLIENT_ADMIN;
	h->pid = (uint32_t)getpid();
	if (hello) {
		memcpy(h->volume, hello->volume, LM_VOLUME_LEN);
		if (hello->label)
			strncpy(h->label, hello->label, LM_PATH_MAX - 1);
		if (hello->vol_label)
			strncpy(h->vol_label, hello->vol_label,
				LM_NAME_MAX - 1);
		if (hello->source)
			strncpy(h->source, hello->source, LM_PATH_MAX - 1);
	}
	r = do_call(c, &call, timeout_ms);
	if (r == 0 && call->status != 0)
		r = call->status > 0 ? -call->status : call->status;
	if (r == 0 && call->rep->type != LM_S_R_HELLO)
		r = -EPROTO;
	if (r == 0 && (call->rep->u.r_hello.version < LM_CLIENT_VERSION_MIN ||
		       call->rep->u.r_hello.version > LM_CLIENT_VERSION_MAX))
		r = -EPROTO; /* lockd chose what we never offered */
	if (r)
		hello_error(call, r, err, errlen);
	if (r == 0) {
		rh = &call->rep->u.r_hello;
		c->version = (uint16_t)rh->version;
		c->info.node_id = rh->node_id;
		memcpy(c->info.node_name, rh->node_name, LM_NAME_MAX);
		memcpy(c->info.cluster_name, rh->cluster_name, LM_NAME_MAX);
		c->info.node_name[LM_NAME_MAX - 1] = '\0';
		c->info.cluster_name[LM_NAME_MAX - 1] = '\0';
	}
	call_free(call);
	return r;
}

int lkm_connect(const char *path, const struct lkm_hello *hello,
		int timeout_ms, struct lkm_client **out)
{
	return lkm_connect_err(path, hello, timeout_ms, out, NULL, 0);
}

int lkm_connect_err(const char *path, const struct lkm_hello *hello,
		    int timeout_ms, struct lkm_client **out, char *err,
		    size_t errlen)
{
	struct lkm_client *c;
	struct timespec dl;
	int r;

	*out = NULL;
	if (!path || !*path)
		path = getenv(LKM_SOCKET_ENV);
	if (!path || !*path)
		path = LKM_DEFAULT_SOCKET;
	if (timeout_ms < 0)
		timeout_ms = INT32_MAX;
	deadline_set(&dl, timeout_ms);

	r = client_new(&c);
	if (r < 0)
		return r;
	r = open_socket(path, &dl, &c->fd);
	if (r < 0) {
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, lkm_strerror(r));
		goto fail;
	}
	r = say_hello(c, hello, deadline_left_ms(&dl), err, errlen);
	if (r < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	lkm_close(c);
	return r;
}

void lkm_close(struct lkm_client *c)
{
	bool join;

	if (!c)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = true;
	join = c->events_on && c->fn;
	pthread_mutex_unlock(&c->lock);
	if (c->fd >= 0)
		shutdown(c->fd, SHUT_RDWR); /* wakes the reader thread */
	if (join)
		pthread_join(c->reader, NULL);
	pthread_mutex_lock(&c->lock);
	set_broken(c);
	pthread_mutex_unlock(&c->lock);
	if (c->fd >= 0)
		close(c->fd);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c->rbuf);
	free(c->rmsg);
	free(c);
}

const struct lkm_server_info *lkm_server(const struct lkm_client *c)
{
	return &c->info;
}

int lkm_start_events(struct lkm_client *c, lkm_event_fn fn, void *arg)
{
	int r = 0;

	if (!fn)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->events_on) {
		r = -EALREADY;
		goto out;
	}
	if (c->broken) {
		r = -ECONNRESET;
		goto out;
	}
	c->events_on = true; /* no caller takes the reader role from now */
	while (c->reading)
		pthread_cond_wait(&c->cond, &c->lock);
	c->fn = fn;
	c->fn_arg = arg;
	r = -pthread_create(&c->reader, NULL, reader_main, c);
	if (r < 0) {
		c->events_on = false;
		c->fn = NULL;
		pthread_cond_broadcast(&c->cond);
	}
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* ----------------------------------------------------------- ownership */

int lkm_acquire(struct lkm_client *c, uint64_t fileid, uint32_t flags,
		int timeout_ms, uint64_t *epoch)
{
	struct lkm_call *call;

	call = call_new(LM_S_ACQUIRE, LM_S_R_RESULT, 0, true);
	if (!call)
		return -ENOMEM;
	call->req->u.acquire.fileid = fileid;
	call->req->u.acquire.flags = flags;
	return simple_call(c, call, timeout_ms, epoch);
}

int lkm_acquire_cancel(struct lkm_client *c, uint64_t fileid)
{
	struct lkm_call *call;
	uint32_t seq = 0;

	pthread_mutex_lock(&c->lock);
	for (call = c->calls; call && !seq; call = call->next)
		if (!call->done && !call->abandoned &&
		    call->req->type == LM_S_ACQUIRE &&
		    call->req->u.acquire.fileid == fileid)
			seq = call->seq;
	pthread_mutex_unlock(&c->lock);
	if (!seq)
		return -ENOENT;
	send_cancel(c, seq);
	return 0;
}

int lkm_release(struct lkm_client *c, uint64_t fileid, uint64_t epoch,
		int timeout_ms)
{
	struct lkm_call *call;

	call = call_new(LM_S_RELEASE, LM_S_R_RESULT, 0, false);
	if (!call)
		return -ENOMEM;
	call->req->u.release.fileid = fileid;
	call->req->u.release.epoch = epoch;
	return simple_call(c, call, timeout_ms, NULL);
}

int lkm_release_async(struct lkm_client *c, uint64_t fileid, uint64_t epoch)
{
	struct lm_smsg *m = calloc(1, sizeof(*m));
	struct timespec d;
	int r;

	if (!m)
		return -ENOMEM;
	m->type = LM_S_RELEASE;
	m->u.release.fileid = fileid;
	m->u.release.epoch = epoch;
	pthread_mutex_lock(&c->lock);
	r = c->broken ? -ECONNRESET : 0;
	m->seq = c->next_seq++;
	if (c->next_seq == 0)
		c->next_seq = 1;
	pthread_mutex_unlock(&c->lock);
	if (r == 0) {
		deadline_set(&d, LKM_CALL_TIMEOUT_MS);
		r = send_msg(c, m, &d);
	}
	free(m);
	return r;
}

/* --------------------------------------------------------------- locks */

static void fill_plock(struct lm_smsg *m, const struct lkm_plock *req)
{
	m->u.plock.fileid = req->fileid;
	m->u.plock.space = req->space;
	m->u.plock.op = req->op;
	m->u.plock.type = req->type;
	m->u.plock.owner = req->owner;
	m->u.plock.start = req->start;
	m->u.plock.end = req->end;
	m->u.plock.pid = req->pid;
}

int lkm_plock(struct lkm_client *c, const struct lkm_plock *req,
	      int timeout_ms)
{
	struct lkm_call *call;

	call = call_new(LM_S_PLOCK, LM_S_R_RESULT, 0, false);
	if (!call)
		return -ENOMEM;
	fill_plock(call->req, req);
	return simple_call(c, call, timeout_ms, NULL);
}

int lkm_getlk(struct lkm_client *c, const struct lkm_plock *req,
	      struct lm_lock_entry *conflict)
{
	struct lkm_call *call;
	int r;

	call = call_new(LM_S_GETLK, LM_S_R_GETLK, 0, true);
	if (!call)
		return -ENOMEM;
	fill_plock(call->req, req);
	r = do_call(c, &call, LKM_CALL_TIMEOUT_MS);
	if (r == 0 && call->status != 0)
		r = call->status > 0 ? -call->status : call->status;
	if (r == 0 && call->rep->type != LM_S_R_GETLK)
		r = -EPROTO;
	if (r == 0 && call->rep->u.r_getlk.found) {
		if (conflict)
			*conflict = call->rep->u.r_getlk.conflict;
		r = 1;
	}
	call_free(call);
	return r;
}

/* ------------------------------------------------------------- queries */

int lkm_status(struct lkm_client *c, struct lm_s_r_status *out)
{
	struct lkm_call *call;
	int r;

	call = call_new(LM_S_QUERY, LM_S_R_STATUS, 0, true);
	if (!call)
		return -ENOMEM;
	call->req->u.query.what = LM_QUERY_STATUS;
	r = do_call(c, &call, LKM_CALL_TIMEOUT_MS);
	if (r == 0 && call->status != 0)
		r = call->status > 0 ? -call->status : call->status;
	if (r == 0 && call->rep->type != LM_S_R_STATUS)
		r = -EPROTO;
	if (r == 0)
		*out = call->rep->u.r_status;
	call_free(call);
	return r;
}

static int batch_query(struct lkm_client *c, uint32_t what, uint16_t want,
		       size_t esize, const struct lm_res *filter, void **v,
		       size_t *n)
{
	struct lkm_call *call;
	int r;

	*v = NULL;
	*n = 0;
	call = call_new(LM_S_QUERY, want, esize, false);
	if (!call)
		return -ENOMEM;
	call->req->u.query.what = what;
	if (filter) {
		call->req->u.query.has_res = 1;
		call->req->u.query.res = *filter;
	}
	r = do_call(c, &call, LKM_CALL_TIMEOUT_MS);
	if (r == 0 && call->status != 0)
		r = call->status > 0 ? -call->status : call->status;
	if (r == 0) {
		*v = call->v;
		*n = call->n;
		call->v = NULL;
	}
	call_free(call);
	return r;
}

int lkm_nodes(struct lkm_client *c, struct lm_node_entry **v, size_t *n)
{
	return batch_query(c, LM_QUERY_NODES, LM_S_R_NODES, sizeof(**v), NULL,
			   (void **)v, n);
}

int lkm_owners(struct lkm_client *c, const struct lm_res *filter,
	       struct lm_owner_entry **v, size_t *n)
{
	return batch_query(c, LM_QUERY_OWNERS, LM_S_R_OWNERS, sizeof(**v),
			   filter, (void **)v, n);
}

int lkm_locks(struct lkm_client *c, const struct lm_res *filter,
	      struct lm_lock_entry **v, size_t *n)
{
	return batch_query(c, LM_QUERY_LOCKS, LM_S_R_LOCKS, sizeof(**v),
			   filter, (void **)v, n);
}

int lkm_volumes(struct lkm_client *c, struct lm_volume_entry **v, size_t *n)
{
	return batch_query(c, LM_QUERY_VOLUMES, LM_S_R_VOLUMES, sizeof(**v),
			   NULL, (void **)v, n);
}

int lkm_log(struct lkm_client *c, char **text, size_t *len)
{
	char *v;
	size_t n;
	int r;

	r = batch_query(c, LM_QUERY_LOG, LM_S_R_LOG, 1, NULL, (void **)&v,
			&n);
	if (r)
		return r;
	*text = realloc(v, n + 1); /* NUL-terminated for the caller */
	if (!*text) {
		free(v);
		return -ENOMEM;
	}
	(*text)[n] = '\0';
	*len = n;
	return 0;
}

int lkm_metrics(struct lkm_client *c, struct lm_s_r_metrics *out)
{
	struct lkm_call *call;
	int r;

	call = call_new(LM_S_QUERY, LM_S_R_METRICS, 0, true);
	if (!call)
		return -ENOMEM;
	call->req->u.query.what = LM_QUERY_METRICS;
	r = do_call(c, &call, LKM_CALL_TIMEOUT_MS);
	if (r == 0 && call->status != 0)
		r = call->status > 0 ? -call->status : call->status;
	if (r == 0 && call->rep->type != LM_S_R_METRICS)
		r = -EPROTO;
	if (r == 0)
		*out = call->rep->u.r_metrics;
	call_free(call);
	return r;
}

/* --------------------------------------------------------------- admin */

static int admin_call(struct lkm_client *c, uint32_t op,
		      const struct lm_res *res, const char *node)
{
	struct lkm_call *call;

	if (node && strlen(node) >= LM_NAME_MAX)
		return -LM_ERR_NONODE;
	call = call_new(LM_S_ADMIN, LM_S_R_RESULT, 0, false);
	if (!call)
		return -ENOMEM;
	call->req->u.admin.op = op;
	if (res)
		call->req->u.admin.res = *res;
	if (node)
		strcpy(call->req->u.admin.node, node);
	return simple_call(c, call, LKM_CALL_TIMEOUT_MS, NULL);
}

int lkm_handoff(struct lkm_client *c, const struct lm_res *res,
		const char *node)
{
	if (!res)
		return -EINVAL;
	return admin_call(c, LM_ADMIN_HANDOFF, res, node);
}

int lkm_drain(struct lkm_client *c, const char *node)
{
	return admin_call(c, LM_ADMIN_DRAIN, NULL, node);
}

int lkm_resume(struct lkm_client *c, const char *node)
{
	return admin_call(c, LM_ADMIN_RESUME, NULL, node);
}

const char *lkm_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err >= LM_ERR_BASE && err <= LM_ERR_MAX)
		return lm_strerror(err);
	return strerror(err);
}
