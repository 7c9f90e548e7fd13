// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * lockd_client.c - the local client socket of csvfs-lockd.
 *
 * A non-blocking SOCK_SEQPACKET unix socket, one message per packet
 * (lm_proto.h).  Peers are authenticated by SO_PEERCRED (root, or a member
 * of socket_group) when they say hello; the first message must be
 * LM_S_HELLO, whose range of client protocol versions must meet ours: the
 * reply names the version used on this connection from then on.  A malformed or oversized message
 * closes that client: nothing it sent reaches the lock table.
 *
 * Replies and events that the socket cannot take at once are queued per
 * client (bounded) and sent when it becomes writable.  A client is never
 * freed while the loop may still use it: failures mark it dead and
 * lockd_client_sweep() closes it between events.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lockd.h"
#include "log.h"

static int mkdir_p(const char *dir)
{
	char path[LOCKD_PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* Refuse to start if another lockd answers; remove a stale socket. */
static int check_old_socket(const struct sockaddr_un *sa, char *err,
			    size_t errlen)
{
	struct stat sb;
	int fd, ret;

	if (lstat(sa->sun_path, &sb) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(sb.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket; remove "
			 "it or choose another socket path", sa->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	ret = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (ret == 0) {
		snprintf(err, errlen, "another csvfs-lockd answers on %s; stop "
			 "it first or use another --socket", sa->sun_path);
		return -EADDRINUSE;
	}
	log_info("removing stale socket %s", sa->sun_path);
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int lockd_client_init(struct lockd *ld, char *err, size_t errlen)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dir[LOCKD_PATH_MAX], *slash;
	int ret;

	lk_init(&ld->clients);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", ld->conf.socket);
	snprintf(dir, sizeof(dir), "%s", ld->conf.socket);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = '\0';
		ret = mkdir_p(dir);
		if (ret) {
			snprintf(err, errlen, "cannot create %s: %s", dir,
				 strerror(-ret));
			return ret;
		}
	}
	ret = check_old_socket(&sa, err, errlen);
	if (ret) {
		if (!err[0])
			snprintf(err, errlen, "socket %s: %s", sa.sun_path,
				 strerror(-ret));
		return ret;
	}
	ld->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK |
			       SOCK_CLOEXEC, 0);
	if (ld->listen_fd >= 0 &&
	    bind(ld->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		ld->socket_bound = true;
	if (ld->listen_fd < 0 || !ld->socket_bound ||
	    chmod(sa.sun_path, 0666) < 0 || listen(ld->listen_fd, 64) < 0 ||
	    lockd_epoll_add(ld, ld->listen_fd, EPOLLIN, TAG_LISTEN) < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot listen on %s: %s", sa.sun_path,
			 strerror(errno));
		return ret;
	}
	return 0;
}

void lockd_client_stop_listening(struct lockd *ld)
{
	if (ld->listen_fd < 0)
		return;
	epoll_ctl(ld->epfd, EPOLL_CTL_DEL, ld->listen_fd, NULL);
	close(ld->listen_fd);
	ld->listen_fd = -1;
}

struct lockd_client *lockd_client_by_id(struct lockd *ld, unsigned id)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->clients) {
		struct lockd_client *c =
			lk_entry(p, struct lockd_client, link);

		if (c->id == id)
			return c;
	}
	return NULL;
}

static void client_close(struct lockd *ld, struct lockd_client *c)
{
	epoll_ctl(ld->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	lockd_res_client_gone(ld, c);
	lockd_mounts_client_gone(ld, c);
	while (c->outq) {
		struct lockd_out *o = c->outq;

		c->outq = o->next;
		free(o);
	}
	lk_del(&c->link);
	ld->n_clients--;
	log_info("client %u (pid %d, %s) disconnected", c->id, (int)c->pid,
		 c->label[0] ? c->label : "no label");
	free(c);
}

void lockd_client_sweep(struct lockd *ld)
{
	struct lockd_link *p, *t;

	lk_for_each_safe(p, t, &ld->clients) {
		struct lockd_client *c =
			lk_entry(p, struct lockd_client, link);

		if (c->dead)
			client_close(ld, c);
	}
}

void lockd_client_fini(struct lockd *ld)
{
	struct lockd_link *p, *t;

	if (!ld->clients.next)
		return;
	lockd_client_stop_listening(ld);
	lk_for_each_safe(p, t, &ld->clients)
		client_close(ld, lk_entry(p, struct lockd_client, link));
	if (ld->socket_bound && unlink(ld->conf.socket) < 0 &&
	    errno != ENOENT)
		log_warn("cannot remove socket %s: %s", ld->conf.socket,
			 strerror(errno));
}

void lockd_client_accept(struct lockd *ld)
{
	struct lockd_client *c;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;

	while ((fd = accept4(ld->listen_fd, NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (ld->n_clients >= LOCKD_CLIENT_MAX ||
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
		    !(c = calloc(1, sizeof(*c)))) {
			log_warn("refused a client: %s", ld->n_clients >=
				 LOCKD_CLIENT_MAX ? "too many clients" :
				 strerror(errno));
			close(fd);
			continue;
		}
		c->fd = fd;
		c->id = ++ld->next_client_id;
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->gid = cred.gid;
		lk_add_tail(&ld->clients, &c->link);
		ld->n_clients++;
		if (lockd_epoll_add(ld, fd, EPOLLIN, TAG_CLIENT_BASE + c->id)) {
			c->dead = true;
			continue;
		}
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		log_warn("accept on %s failed: %s", ld->conf.socket,
			 strerror(errno));
}

/* ---- sending ---- */

static void want_out(struct lockd *ld, struct lockd_client *c, bool on)
{
	if (lockd_epoll_mod(ld, c->fd, EPOLLIN | (on ? EPOLLOUT : 0),
			    TAG_CLIENT_BASE + c->id))
		c->dead = true;
}

static void client_send_raw(struct lockd *ld, struct lockd_client *c,
			    const uint8_t *buf, size_t len)
{
	struct lockd_out *o;
	ssize_t n;

	if (c->dead)
		return;
	if (!c->outq) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n == (ssize_t)len)
			return;
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
			c->dead = true;
			return;
		}
	}
	if (c->outq_len >= LOCKD_CLIENT_QMAX) {
		log_warn("client %u (pid %d) does not read its replies (%u "
			 "queued): disconnecting it", c->id, (int)c->pid,
			 c->outq_len);
		c->dead = true;
		return;
	}
	o = malloc(sizeof(*o) + len);
	if (!o) {
		c->dead = true;
		return;
	}
	o->next = NULL;
	o->len = len;
	memcpy(o->buf, buf, len);
	if (c->outq_tail)
		c->outq_tail->next = o;
	else
		c->outq = o;
	c->outq_tail = o;
	if (c->outq_len++ == 0)
		want_out(ld, c, true);
}

static void client_flush(struct lockd *ld, struct lockd_client *c)
{
	struct lockd_out *o;
	ssize_t n;

	while ((o = c->outq)) {
		n = send(c->fd, o->buf, o->len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n != (ssize_t)o->len) {
			c->dead = true;
			return;
		}
		c->outq = o->next;
		if (!c->outq)
			c->outq_tail = NULL;
		c->outq_len--;
		free(o);
	}
	want_out(ld, c, false);
}

void lockd_client_push(struct lockd *ld, struct lockd_client *c,
		       const struct lm_smsg *m)
{
	uint8_t *buf = malloc(LM_MSG_MAX);
	int len;

	if (!buf) {
		c->dead = true;
		return;
	}
	len = lm_smsg_encode_v(m, c->version, buf, LM_MSG_MAX);
	if (len < 0)
		log_err("cannot encode a %s message: %s; this is a bug",
			lm_smsg_type_name(m->type), strerror(-len));
	else
		client_send_raw(ld, c, buf, (size_t)len);
	free(buf);
}

void lockd_client_reply(struct lockd *ld, struct lockd_client *c,
			uint32_t seq, int32_t status, uint64_t epoch)
{
	struct lm_smsg m = { .type = LM_S_R_RESULT, .seq = seq };

	if (!c)
		return;
	m.u.r_result.status = status;
	m.u.r_result.epoch = epoch;
	lockd_client_push(ld, c, &m);
}

void lockd_push_volume(struct lockd *ld, uint16_t type,
		       const struct lm_res *res, uint64_t epoch,
		       uint32_t owner)
{
	struct lm_smsg m = { .type = type };
	struct lockd_link *p, *t;

	m.u.ev_file.fileid = res->fileid;
	m.u.ev_file.epoch = epoch;
	m.u.ev_file.owner = owner;
	lk_for_each_safe(p, t, &ld->clients) {
		struct lockd_client *c =
			lk_entry(p, struct lockd_client, link);

		if (c->hello_done && c->kind == LM_CLIENT_CSVFS &&
		    !memcmp(c->volume, res->volume, LM_VOLUME_LEN))
			lockd_client_push(ld, c, &m);
	}
}

void lockd_push_lease(struct lockd *ld, struct lockd_client *only)
{
	struct lm_smsg m = { .type = LM_S_EV_LEASE };
	struct lockd_link *p, *t;

	m.u.ev_lease.valid = ld->lease_valid;
	m.u.ev_lease.deadline_ns = ld->lease_valid ? ld->lease_deadline_ns : 0;
	if (only) {
		lockd_client_push(ld, only, &m);
		return;
	}
	lk_for_each_safe(p, t, &ld->clients) {
		struct lockd_client *c =
			lk_entry(p, struct lockd_client, link);

		if (c->hello_done && c->kind == LM_CLIENT_CSVFS)
			lockd_client_push(ld, c, &m);
	}
}

/* ---- receiving ---- */

static void client_recv(struct lockd *ld, struct lockd_client *c)
{
	uint8_t *buf = malloc(LM_MSG_MAX);
	struct lm_smsg *m = malloc(sizeof(*m));
	ssize_t n;
	int ret;

	if (!buf || !m) {
		log_err("out of memory reading from client %u", c->id);
		c->dead = true;
		goto out;
	}
	while (!c->dead && !ld->exit_now) {
		n = recv(c->fd, buf, LM_MSG_MAX, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) { /* 0: peer closed */
			c->dead = true;
			break;
		}
		if (n > LM_MSG_MAX) {
			log_warn("client %u (pid %d): message of %zd bytes is "
				 "over the %d byte limit; disconnecting it",
				 c->id, (int)c->pid, n, LM_MSG_MAX);
			c->dead = true;
			break;
		}
		ret = lm_smsg_decode(buf, (size_t)n, m);
		if (ret == -EPROTONOSUPPORT && !c->hello_done) {
			log_warn("client %u (pid %d) speaks client protocol "
				 "%u, this csvfs-lockd %u..%u: disconnecting "
				 "it; upgrade %s", c->id, (int)c->pid,
				 lm_msg_version(buf, (size_t)n),
				 LM_CLIENT_VERSION_MIN, LM_CLIENT_VERSION_MAX,
				 lm_msg_version(buf, (size_t)n) <
						 LM_CLIENT_VERSION_MIN ?
					 "the client (csvfs, csvfs-admin)" :
					 "csvfs-lockd");
			c->dead = true;
			break;
		}
		if (ret) {
			log_warn("client %u (pid %d): malformed message (%zd "
				 "bytes): %s; disconnecting it", c->id,
				 (int)c->pid, n, strerror(-ret));
			c->dead = true;
			break;
		}
		lockd_serve(ld, c, m);
	}
out:
	free(buf);
	free(m);
}

void lockd_client_io(struct lockd *ld, struct lockd_client *c,
		     uint32_t events)
{
	if (events & EPOLLIN)
		client_recv(ld, c);
	if (!c->dead && (events & EPOLLOUT))
		client_flush(ld, c);
	if (!c->dead && (events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLIN))
		c->dead = true;
}
