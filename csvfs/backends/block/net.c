// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * net.c - the coordinator channel (chan.h) wired into the block backend.
 *
 * On the coordinator: a channel server, started with the engine's
 * thread; each request of another node becomes the struct cvb_req a
 * local FUSE worker would queue (mq.c), submitted without waiting, and
 * its answer goes back from the engine's thread.  Every node that
 * fetched a map of a file (MAP, ALLOC) is noted as a holder of it; the
 * engine's recall hook (cvb_net_recall) drops this node's map, then
 * recalls it from every holder and waits for their acknowledgements.  A
 * holder that does not acknowledge (no connection, or no answer) may
 * still write through its map: the recall then waits until lockd shows
 * that node's mount gone (the node's liveness file id, below, free:
 * unmounted, or dead and fenced, its lease expired), re-sending the
 * recall in case it comes back; after CVB_NET_GONE_MS it fails -EIO
 * (and the engine's operation with it: nothing is freed).
 *
 * On every other node (a client): every metadata call goes to the
 * coordinator (cvb_call); data stays direct on the LUN (bio.c).  RECALL
 * drops the file's map and waits for its I/O to drain before the
 * acknowledgement; a lost connection drops every map before any caller
 * hears of it.  The client keeps, through lockd, the ownership of its
 * liveness file id CVB_NODE_FILEID(node id) for the life of the mount.
 *
 * Where the coordinator is: lockd names it (the owner of file id
 * CVB_COORD_FILEID); the coordinator writes its addresses and port into
 * .csvfs/coordinator on the volume (one 4 KiB block of file data,
 * rewritten in place with O_DIRECT at every claim; the file's inode is
 * checkpointed home when first made), which a client reads with a
 * read-only O_DIRECT libext2fs open of the LUN, and trusts only when the
 * node it names is lockd's owner of CVB_COORD_FILEID.
 *
 * Node ids on the channel: a 32-bit hash of the node's name (never 0).
 *
 * Threads: holders are touched on the engine's thread only (the
 * completion of a node's request, and the recall hook).  The client's
 * recall and reset callbacks run on its channel I/O thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ext2fs/ext2fs.h>

#include "chan.h"
#include "log.h"
#include "vol_i.h"
#include "volume.h"

#define CVB_NET_CALL_MS	  60000	 /* a metadata call */
#define CVB_NET_LONG_MS	  300000 /* fallocate, commit: may zero much */
#define CVB_NET_RECALL_MS 5000	 /* one node's acknowledgement */
#define CVB_NET_GONE_MS	  120000 /* a silent holder's mount must go */
#define CVB_NET_FIND_MS	  20000	 /* the coordinator's record */
#define CVB_NET_PROBE_MS  10000	 /* the first call, at mount */
#define CVB_NET_ADDRS	  8
#define CVB_HOLD_SLOTS	  256
#define CVB_COORD_REC	  "coordinator"
#define CVB_COORD_RECLEN  4096

/* (ino, node): node fetched a map of ino (engine thread only). */
struct holder {
	uint64_t ino;
	uint32_t node;
	struct holder *next;
};

struct cvb_net {
	struct cvb_chan_key key;
	uint32_t self; /* this node's id */
	/* coordinator */
	struct cvb_srv *srv;
	struct holder *hold[CVB_HOLD_SLOTS];
	/* client */
	struct cvb_cli *cli;
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	struct stat root; /* before the channel's threads start */
	uint64_t live_epoch;
	bool live_owned;
};

/* A node's request on the coordinator, until answered. */
struct job {
	struct cvb_req r;
	struct cvb_srv_req *sreq;
	struct cvb_vol *b;
	void *buf;	/* dirents, extents, xattr or link buffer */
	uint32_t xsize; /* GETXATTR, LISTXATTR: the size asked */
};

uint32_t cvb_node_id(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 16777619u;
	return h ? h : 1;
}

/* ---- requests <-> messages ------------------------------------------- */

static const uint16_t op_type[] = {
	[CVB_OP_GETATTR] = CVB_GETATTR,
	[CVB_OP_LOOKUP] = CVB_LOOKUP,
	[CVB_OP_SETATTR] = CVB_SETATTR,
	[CVB_OP_MKNOD] = CVB_MKNOD,
	[CVB_OP_MKDIR] = CVB_MKDIR,
	[CVB_OP_SYMLINK] = CVB_SYMLINK,
	[CVB_OP_READLINK] = CVB_READLINK,
	[CVB_OP_LINK] = CVB_LINK,
	[CVB_OP_UNLINK] = CVB_UNLINK,
	[CVB_OP_RMDIR] = CVB_RMDIR,
	[CVB_OP_RENAME] = CVB_RENAME,
	[CVB_OP_READDIR] = CVB_READDIR,
	[CVB_OP_STATFS] = CVB_STATFS,
	[CVB_OP_OPEN_REF] = CVB_OPEN_REF,
	[CVB_OP_CLOSE_REF] = CVB_CLOSE_REF,
	[CVB_OP_GETXATTR] = CVB_GETXATTR,
	[CVB_OP_SETXATTR] = CVB_SETXATTR,
	[CVB_OP_LISTXATTR] = CVB_LISTXATTR,
	[CVB_OP_REMOVEXATTR] = CVB_REMOVEXATTR,
	[CVB_OP_MAP] = CVB_MAP,
	[CVB_OP_ALLOC] = CVB_ALLOC,
	[CVB_OP_FALLOCATE] = CVB_FALLOCATE,
	[CVB_OP_SET_WRITTEN] = CVB_SET_WRITTEN,
	[CVB_OP_COMMIT] = CVB_COMMIT,
};

static int type_op(uint16_t type)
{
	for (unsigned i = 0; i < sizeof(op_type) / sizeof(op_type[0]); i++)
		if (op_type[i] && op_type[i] == type)
			return (int)i;
	return -1;
}

static void copy_name(char *dst, const char *src, size_t cap)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static void time_to(struct cvb_time *t, const struct timespec *ts)
{
	t->sec = ts->tv_sec;
	t->nsec = (uint32_t)ts->tv_nsec;
}

/* Names and attributes of r into m (client). */
static void enc_names(const struct cvb_req *r, struct cvb_msg *m)
{
	switch (r->op) {
	case CVB_OP_LOOKUP:
	case CVB_OP_UNLINK:
	case CVB_OP_RMDIR:
		m->u.name.dir = r->ino;
		copy_name(m->u.name.name, r->name, sizeof(m->u.name.name));
		break;
	case CVB_OP_SETATTR:
		m->u.setattr.ino = r->ino;
		m->u.setattr.to_set = (uint32_t)r->to_set;
		cvb_attr_from_stat(&m->u.setattr.attr, &r->attr);
		break;
	case CVB_OP_MKNOD:
	case CVB_OP_MKDIR:
	case CVB_OP_SYMLINK:
		m->u.create.dir = r->ino;
		copy_name(m->u.create.name, r->name, sizeof(m->u.create.name));
		m->u.create.mode = r->mode;
		m->u.create.rdev = r->rdev;
		m->u.create.cred.uid = r->cred.uid;
		m->u.create.cred.gid = r->cred.gid;
		if (r->op == CVB_OP_SYMLINK)
			copy_name(m->u.create.target, r->name2,
				  sizeof(m->u.create.target));
		break;
	case CVB_OP_LINK:
		m->u.link.ino = r->ino;
		m->u.link.newdir = r->ino2;
		copy_name(m->u.link.newname, r->name2,
			  sizeof(m->u.link.newname));
		break;
	case CVB_OP_RENAME:
		m->u.rename.dir = r->ino;
		copy_name(m->u.rename.name, r->name, sizeof(m->u.rename.name));
		m->u.rename.newdir = r->ino2;
		copy_name(m->u.rename.newname, r->name2,
			  sizeof(m->u.rename.newname));
		m->u.rename.flags = r->flags;
		break;
	default:
		break;
	}
}

static uint32_t clamp32(uint64_t v, uint32_t max)
{
	return v > max ? max : (uint32_t)v;
}

/* The request r as a message m (client). */
static void enc_req(const struct cvb_req *r, struct cvb_msg *m)
{
	m->type = op_type[r->op];
	switch (r->op) {
	case CVB_OP_GETATTR:
	case CVB_OP_READLINK:
	case CVB_OP_OPEN_REF:
	case CVB_OP_CLOSE_REF:
		m->u.ino.ino = r->ino;
		break;
	case CVB_OP_READDIR:
		m->u.readdir.dir = r->ino;
		m->u.readdir.cookie = r->off;
		m->u.readdir.max = clamp32(r->bufsize, CVB_DIRENTS_MAX);
		break;
	case CVB_OP_GETXATTR:
	case CVB_OP_SETXATTR:
	case CVB_OP_LISTXATTR:
	case CVB_OP_REMOVEXATTR:
		m->u.xattr.ino = r->ino;
		copy_name(m->u.xattr.name, r->name, sizeof(m->u.xattr.name));
		if (r->op == CVB_OP_SETXATTR) {
			m->u.xattr.flags = r->flags;
			m->u.xattr.len = (uint32_t)r->bufsize;
			m->u.xattr.value = r->buf;
		} else if (r->op != CVB_OP_REMOVEXATTR) {
			m->u.xattr.size = clamp32(r->bufsize, CVB_XATTR_MAX);
		}
		break;
	case CVB_OP_MAP:
	case CVB_OP_ALLOC:
		m->u.map.ino = r->ino;
		m->u.map.off = r->off;
		m->u.map.len = r->len;
		m->u.map.max = clamp32(r->max, CVB_EXTENTS_MAX);
		break;
	case CVB_OP_FALLOCATE:
		m->u.fallocate.ino = r->ino;
		m->u.fallocate.mode = (uint32_t)r->fmode;
		m->u.fallocate.off = r->off;
		m->u.fallocate.len = r->len;
		break;
	case CVB_OP_SET_WRITTEN:
		m->u.written.ino = r->ino;
		m->u.written.size = r->size;
		time_to(&m->u.written.mtime, &r->mtime);
		break;
	default:
		enc_names(r, m);
	}
}

/* The reply m into r's answer (client); returns r->res. */
static int64_t dec_rep(struct cvb_req *r, const struct cvb_msg *m)
{
	switch (r->op) {
	case CVB_OP_READLINK: {
		size_t n = strlen(m->u.r_readlink.target);

		if (n > r->bufsize)
			n = r->bufsize;
		memcpy(r->buf, m->u.r_readlink.target, n);
		return (int64_t)n;
	}
	case CVB_OP_READDIR: {
		struct cvb_dent *d = r->buf;

		r->n = m->u.r_readdir.n < r->bufsize ? m->u.r_readdir.n
						     : (unsigned)r->bufsize;
		for (unsigned i = 0; i < r->n; i++) {
			d[i].ino = m->u.r_readdir.ent[i].ino;
			d[i].next = m->u.r_readdir.ent[i].next;
			d[i].type = m->u.r_readdir.ent[i].dtype;
			copy_name(d[i].name, m->u.r_readdir.ent[i].name,
				  sizeof(d[i].name));
		}
		return 0;
	}
	case CVB_OP_STATFS:
		cvb_statfs_to(&m->u.r_statfs, &r->sv);
		return 0;
	case CVB_OP_GETXATTR:
	case CVB_OP_LISTXATTR:
		if (!r->bufsize)
			return m->u.r_xattr.size;
		if (m->u.r_xattr.len > r->bufsize)
			return -ERANGE;
		memcpy(r->buf, m->u.r_xattr.value, m->u.r_xattr.len);
		return m->u.r_xattr.len;
	case CVB_OP_MAP:
	case CVB_OP_ALLOC:
		r->gen = m->u.r_map.gen;
		r->n = m->u.r_map.n < r->max ? m->u.r_map.n : r->max;
		for (unsigned i = 0; i < r->n; i++)
			r->ext[i] =
				(struct cvb_extent){ m->u.r_map.ext[i].off,
						     m->u.r_map.ext[i].len,
						     m->u.r_map.ext[i].phys };
		return 0;
	case CVB_OP_LOOKUP:
	case CVB_OP_GETATTR:
	case CVB_OP_SETATTR:
	case CVB_OP_MKNOD:
	case CVB_OP_MKDIR:
	case CVB_OP_SYMLINK:
	case CVB_OP_LINK:
		cvb_attr_to_stat(&m->u.r_attr, &r->st);
		return 0;
	default:
		return 0;
	}
}

/* ---- the client's calls ------------------------------------------------ */

static bool reads_only(enum cvb_op op)
{
	return op == CVB_OP_GETATTR || op == CVB_OP_LOOKUP ||
	       op == CVB_OP_READLINK || op == CVB_OP_READDIR ||
	       op == CVB_OP_STATFS || op == CVB_OP_GETXATTR ||
	       op == CVB_OP_LISTXATTR || op == CVB_OP_MAP;
}

/* A channel failure as the file system's caller sees it. */
static int chan_errno(int rc)
{
	switch (rc) {
	case -ECONNRESET:
	case -ENOTCONN:
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EKEYREJECTED:
	case -ESHUTDOWN:
	case -EPROTO:
	case -EBADMSG:
		return -EIO;
	default:
		return rc;
	}
}

/* Send r, wait up to ms (0: the op's default); the channel's error in
 * *chan_rc (when not NULL). */
static int64_t remote_call(struct cvb_cli *cli, struct cvb_req *r, int ms,
			   int *chan_rc)
{
	struct cvb_msg *q = calloc(2, sizeof(*q));
	struct cvb_msg *p = q + 1;
	uint8_t *rbuf = NULL;
	int rc = -ENOMEM;

	if (!ms)
		ms = r->op == CVB_OP_FALLOCATE || r->op == CVB_OP_COMMIT
			     ? CVB_NET_LONG_MS
			     : CVB_NET_CALL_MS;
	if (!q)
		return r->res = -ENOMEM;
	for (int tries = 0; tries < 3; tries++) {
		memset(q, 0, 2 * sizeof(*q));
		enc_req(r, q);
		rc = cvb_cli_call(cli, q, p, &rbuf, ms);
		if ((rc != -ECONNRESET && rc != -ENOTCONN) ||
		    !reads_only(r->op))
			break;
		free(rbuf);
		rbuf = NULL;
	}
	r->res = rc ? chan_errno(rc) : dec_rep(r, p);
	if (chan_rc)
		*chan_rc = rc;
	free(rbuf);
	free(q);
	return r->res;
}

int64_t cvb_call(struct cvb_vol *b, struct cvb_req *r)
{
	struct cvb_net *n = b->net;

	if (!b->client)
		return cvb_mq_call(&b->q, r);
	if (!n->cli) { /* before start: the root's attributes only */
		if (r->op == CVB_OP_GETATTR && r->ino == CVB_ROOT_INO) {
			r->st = n->root;
			return r->res = 0;
		}
		return r->res = -EIO;
	}
	return remote_call(n->cli, r, 0, NULL);
}

/* ---- the coordinator's side ------------------------------------------- */

static unsigned hslot(uint64_t ino)
{
	return (unsigned)((ino * 0x9e3779b97f4a7c15ull) >> 56) % CVB_HOLD_SLOTS;
}

/* -ENOMEM: the map must not be given (no recall would reach it). */
static int hold_note(struct cvb_net *n, uint64_t ino, uint32_t node)
{
	struct holder *h;

	for (h = n->hold[hslot(ino)]; h; h = h->next)
		if (h->ino == ino && h->node == node)
			return 0;
	h = malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct holder){ ino, node, n->hold[hslot(ino)] };
	n->hold[hslot(ino)] = h;
	return 0;
}

static void hold_free_all(struct cvb_net *n)
{
	for (unsigned i = 0; i < CVB_HOLD_SLOTS; i++)
		while (n->hold[i]) {
			struct holder *h = n->hold[i];

			n->hold[i] = h->next;
			free(h);
		}
}

/* The request part of a node's message into j->r; -errno refuses it. */
static int job_names(struct job *j, const struct cvb_msg *m)
{
	struct cvb_req *r = &j->r;

	switch (m->type) {
	case CVB_LOOKUP:
	case CVB_UNLINK:
	case CVB_RMDIR:
		r->ino = m->u.name.dir;
		r->name = m->u.name.name;
		return 0;
	case CVB_SETATTR:
		r->ino = m->u.setattr.ino;
		r->to_set = (int)m->u.setattr.to_set;
		cvb_attr_to_stat(&m->u.setattr.attr, &r->attr);
		return 0;
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
		r->ino = m->u.create.dir;
		r->name = m->u.create.name;
		r->name2 = m->u.create.target;
		r->mode = m->u.create.mode;
		r->rdev = (dev_t)m->u.create.rdev;
		r->cred.uid = m->u.create.cred.uid;
		r->cred.gid = m->u.create.cred.gid;
		return 0;
	case CVB_LINK:
		r->ino = m->u.link.ino;
		r->ino2 = m->u.link.newdir;
		r->name2 = m->u.link.newname;
		return 0;
	case CVB_RENAME:
		r->ino = m->u.rename.dir;
		r->name = m->u.rename.name;
		r->ino2 = m->u.rename.newdir;
		r->name2 = m->u.rename.newname;
		r->flags = m->u.rename.flags;
		return 0;
	default:
		return -EOPNOTSUPP; /* READ, WRITE: no redirected I/O yet */
	}
}

static int job_xattr(struct job *j, const struct cvb_msg *m)
{
	struct cvb_req *r = &j->r;

	r->ino = m->u.xattr.ino;
	r->name = m->u.xattr.name;
	if (m->type == CVB_SETXATTR) {
		r->buf = (void *)m->u.xattr.value;
		r->bufsize = m->u.xattr.len;
		r->flags = m->u.xattr.flags;
	} else if (m->type == CVB_GETXATTR || m->type == CVB_LISTXATTR) {
		j->xsize = m->u.xattr.size;
		j->buf = malloc(CVB_XATTR_MAX);
		r->buf = j->buf;
		r->bufsize = j->xsize;
		if (!j->buf)
			return -ENOMEM;
	}
	return 0;
}

static int job_from(struct job *j, const struct cvb_msg *m)
{
	struct cvb_req *r = &j->r;
	int op = type_op(m->type);

	if (op < 0)
		return -EOPNOTSUPP;
	r->op = (enum cvb_op)op;
	switch (m->type) {
	case CVB_GETATTR:
	case CVB_OPEN_REF:
	case CVB_CLOSE_REF:
		r->ino = m->u.ino.ino;
		return 0;
	case CVB_READLINK:
		r->ino = m->u.ino.ino;
		r->bufsize = CVB_PATH_MAX;
		return (r->buf = j->buf = malloc(CVB_PATH_MAX + 1)) ? 0
								    : -ENOMEM;
	case CVB_READDIR:
		r->ino = m->u.readdir.dir;
		r->off = m->u.readdir.cookie;
		r->bufsize = m->u.readdir.max;
		j->buf = calloc(CVB_DIRENTS_MAX, sizeof(struct cvb_dent));
		r->buf = j->buf;
		return j->buf ? 0 : -ENOMEM;
	case CVB_STATFS:
	case CVB_COMMIT:
		return 0;
	case CVB_GETXATTR:
	case CVB_SETXATTR:
	case CVB_LISTXATTR:
	case CVB_REMOVEXATTR:
		return job_xattr(j, m);
	case CVB_MAP:
	case CVB_ALLOC:
		r->ino = m->u.map.ino;
		r->off = m->u.map.off;
		r->len = m->u.map.len;
		r->max = m->u.map.max;
		j->buf = calloc(CVB_EXTENTS_MAX, sizeof(struct cvb_extent));
		r->ext = j->buf;
		return j->buf ? 0 : -ENOMEM;
	case CVB_FALLOCATE:
		r->ino = m->u.fallocate.ino;
		r->fmode = (int)m->u.fallocate.mode;
		r->off = m->u.fallocate.off;
		r->len = m->u.fallocate.len;
		return 0;
	case CVB_SET_WRITTEN:
		r->ino = m->u.written.ino;
		r->size = m->u.written.size;
		r->mtime.tv_sec = (time_t)m->u.written.mtime.sec;
		r->mtime.tv_nsec = (long)m->u.written.mtime.nsec;
		return 0;
	default:
		return job_names(j, m);
	}
}

/* The answer r as the reply's body (r->res >= 0). */
static void rep_from(struct job *j, struct cvb_msg *p)
{
	struct cvb_req *r = &j->r;

	switch (r->op) {
	case CVB_OP_READLINK: {
		size_t len = (size_t)r->res;

		memcpy(p->u.r_readlink.target, r->buf, len);
		p->u.r_readlink.target[len] = '\0';
		break;
	}
	case CVB_OP_READDIR: {
		const struct cvb_dent *d = r->buf;

		p->u.r_readdir.n = r->n;
		p->u.r_readdir.eof = r->n < r->bufsize;
		for (unsigned i = 0; i < r->n; i++) {
			p->u.r_readdir.ent[i].ino = d[i].ino;
			p->u.r_readdir.ent[i].next = d[i].next;
			p->u.r_readdir.ent[i].dtype = (uint8_t)d[i].type;
			copy_name(p->u.r_readdir.ent[i].name, d[i].name,
				  sizeof(p->u.r_readdir.ent[i].name));
		}
		break;
	}
	case CVB_OP_STATFS:
		cvb_statfs_from(&p->u.r_statfs, &r->sv);
		break;
	case CVB_OP_GETXATTR:
	case CVB_OP_LISTXATTR:
		p->u.r_xattr.size = (uint32_t)r->res;
		p->u.r_xattr.len = j->xsize ? (uint32_t)r->res : 0;
		p->u.r_xattr.value = j->buf;
		break;
	case CVB_OP_MAP:
	case CVB_OP_ALLOC:
		p->u.r_map.gen = r->gen;
		p->u.r_map.n = r->n;
		for (unsigned i = 0; i < r->n; i++)
			p->u.r_map.ext[i] = (struct cvb_wextent){
				r->ext[i].off, r->ext[i].len, r->ext[i].phys
			};
		break;
	case CVB_OP_LOOKUP:
	case CVB_OP_GETATTR:
	case CVB_OP_SETATTR:
	case CVB_OP_MKNOD:
	case CVB_OP_MKDIR:
	case CVB_OP_SYMLINK:
	case CVB_OP_LINK:
		cvb_attr_from_stat(&p->u.r_attr, &r->st);
		break;
	default:
		break;
	}
}

static void job_free(struct job *j)
{
	free(j->buf);
	free(j);
}

/* On the engine's thread, right after the call: note the holder,
 * answer the node. */
static void job_done(void *arg, struct cvb_req *r)
{
	struct job *j = arg;
	struct cvb_msg *p = NULL;
	int status = r->res < 0 ? (int)r->res : 0;

	if (!status && (r->op == CVB_OP_MAP || r->op == CVB_OP_ALLOC))
		status = hold_note(j->b->net, r->ino, r->node);
	if (!status) {
		p = calloc(1, sizeof(*p));
		if (p)
			rep_from(j, p);
		else
			status = -ENOMEM;
	}
	cvb_srv_reply(j->sreq, status, p);
	free(p);
	job_free(j);
}

/* A node's request (on its connection's thread): to the engine. */
static void srv_handler(void *arg, struct cvb_srv_req *sreq)
{
	struct cvb_vol *b = arg;
	struct job *j = calloc(1, sizeof(*j));
	int rc = -ENOMEM;

	if (j) {
		j->b = b;
		j->sreq = sreq;
		rc = job_from(j, cvb_srv_req_msg(sreq));
		j->r.node = cvb_srv_req_node(sreq);
	}
	if (!rc)
		rc = cvb_mq_submit(&b->q, &j->r, job_done, j);
	if (rc) {
		cvb_srv_reply(sreq, rc, NULL);
		if (j)
			job_free(j);
	}
}

static void srv_node_event(void *arg, uint32_t node, bool up)
{
	log_info("block: node %08x %s the coordinator channel", node,
		 up ? "joined" : "left");
}

/* Is node's mount gone (lockd: its liveness file id free)? */
static bool node_gone(struct cvb_vol *b, uint32_t node)
{
	char name[256] = "";
	uint64_t epoch = 0;

	if (!b->cl.owner)
		return false;
	if (b->cl.owner(b->cl.arg, CVB_NODE_FILEID(node), name, sizeof(name),
			&epoch))
		return false; /* lockd does not answer: not known */
	return !name[0];
}

/* Recall ino from node; a silent node must be known gone first. */
static int recall_node(struct cvb_vol *b, uint32_t node, uint64_t ino)
{
	struct timespec t0, now, nap = { 0, 200 * 1000 * 1000 };
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		rc = cvb_srv_recall(b->net->srv, node, ino, 0,
				    CVB_NET_RECALL_MS);
		if (!rc)
			return 0;
		if (node_gone(b, node)) {
			log_info("block: node %08x did not acknowledge the "
				 "recall of inode %llu (%s) but its mount is "
				 "gone in lockd",
				 node, (unsigned long long)ino, strerror(-rc));
			return 0;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - t0.tv_sec > CVB_NET_GONE_MS / 1000)
			break;
		nanosleep(&nap, NULL);
	}
	log_err("block: node %08x holds a map of inode %llu, does not "
		"acknowledge its recall (%s) and is not known gone after %d s: "
		"the blocks stay allocated",
		node, (unsigned long long)ino, strerror(-rc),
		CVB_NET_GONE_MS / 1000);
	return -EIO;
}

int cvb_net_recall(void *arg, uint64_t ino)
{
	struct cvb_vol *b = arg;
	struct cvb_net *n = b->net;
	struct holder **pp;
	int rc = cvb_io_recall(b, ino);

	if (rc || !n || !n->srv)
		return rc;
	for (pp = &n->hold[hslot(ino)]; *pp;) {
		struct holder *h = *pp;

		if (h->ino != ino) {
			pp = &h->next;
			continue;
		}
		rc = recall_node(b, h->node, ino);
		if (rc)
			return rc;
		*pp = h->next;
		free(h);
	}
	return 0;
}

/* ---- where the coordinator is ------------------------------------------ */

/* This node's addresses, space separated (up, not loopback, not v6
 * link-local). */
static void my_addrs(char *out, size_t cap)
{
	struct ifaddrs *ifa, *i;
	size_t len = 0;
	unsigned k = 0;

	out[0] = '\0';
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i && k < CVB_NET_ADDRS; i = i->ifa_next) {
		char a[INET6_ADDRSTRLEN];
		const void *p;

		if (!i->ifa_addr || !(i->ifa_flags & IFF_UP) ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		if (i->ifa_addr->sa_family == AF_INET) {
			p = &((struct sockaddr_in *)i->ifa_addr)->sin_addr;
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			const struct in6_addr *a6 =
				&((struct sockaddr_in6 *)i->ifa_addr)
					 ->sin6_addr;
			if (IN6_IS_ADDR_LINKLOCAL(a6))
				continue;
			p = a6;
		} else {
			continue;
		}
		if (!inet_ntop(i->ifa_addr->sa_family, p, a, sizeof(a)))
			continue;
		len += (size_t)snprintf(out + len, cap - len, "%s%s",
					k ? " " : "", a);
		if (len >= cap) {
			out[0] = '\0';
			break;
		}
		k++;
	}
	freeifaddrs(ifa);
}

/* The record's text: what a client parses (parse_record). */
static int format_record(struct cvb_vol *b, char *buf, size_t cap)
{
	char addrs[CVB_NET_ADDRS * (INET6_ADDRSTRLEN + 1)];
	int len;

	my_addrs(addrs, sizeof(addrs));
	if (!addrs[0])
		return -EADDRNOTAVAIL;
	memset(buf, 0, cap);
	len = snprintf(buf, cap,
		       "csvfs-coordinator 1\nnode %s\nepoch %llu\nport %u\n"
		       "addr %s\n",
		       b->coordinator, (unsigned long long)b->claim_epoch,
		       cvb_srv_port(b->net->srv), addrs);
	return len > 0 && (size_t)len < cap ? 0 : -ENAMETOOLONG;
}

/* Start the server and publish where it is. */
static int start_server(struct cvb_vol *b)
{
	struct cvb_net *n = b->net;
	struct cvb_srv_opts o = {
		.key = &n->key,
		.node_id = n->self,
		.handler = srv_handler,
		.node_event = srv_node_event,
		.arg = b,
	};
	char *rec;
	int rc;

	rc = cvb_srv_start(&o, &n->srv);
	if (rc) {
		log_err("block: cannot start the coordinator channel: %s",
			strerror(-rc));
		return rc;
	}
	rec = calloc(1, CVB_COORD_RECLEN);
	rc = rec ? format_record(b, rec, CVB_COORD_RECLEN) : -ENOMEM;
	if (!rc)
		rc = cvb_vol_publish(b, CVB_COORD_REC, rec, CVB_COORD_RECLEN);
	if (rc)
		log_err("block: cannot publish the coordinator's address in "
			"%s/%s: %s; other nodes cannot mount",
			CV_META_DIR, CVB_COORD_REC, strerror(-rc));
	else
		log_notice("block: coordinator channel on port %u; other "
			   "nodes may mount %s",
			   cvb_srv_port(n->srv), b->path);
	free(rec);
	return 0; /* this node serves its own mount either way */
}

/* ---- a client: find the coordinator ------------------------------------ */

struct coord_rec {
	char node[256];
	uint16_t port;
	char addr[CVB_NET_ADDRS][INET6_ADDRSTRLEN];
	unsigned naddr;
};

static int parse_record(const char *buf, struct coord_rec *c)
{
	const char *l = buf;
	unsigned port = 0;

	memset(c, 0, sizeof(*c));
	if (strncmp(l, "csvfs-coordinator 1\n", 20))
		return -EUCLEAN;
	for (; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		if (!strncmp(l, "node ", 5))
			sscanf(l + 5, "%255s", c->node);
		else if (!strncmp(l, "port ", 5))
			sscanf(l + 5, "%u", &port);
		else if (!strncmp(l, "addr ", 5)) {
			const char *a = l + 5;
			int used = 0;

			while (c->naddr < CVB_NET_ADDRS &&
			       sscanf(a, "%45s%n", c->addr[c->naddr], &used) ==
				       1) {
				c->naddr++;
				a += used;
			}
		}
	}
	if (!c->node[0] || !port || port > 65535 || !c->naddr)
		return -EUCLEAN;
	c->port = (uint16_t)port;
	return 0;
}

/* Does a local interface share addr's network?  (v4: its netmask) */
static bool on_my_net(const char *addr)
{
	struct ifaddrs *ifa, *i;
	struct in_addr a;
	bool yes = false;

	if (inet_pton(AF_INET, addr, &a) != 1 || getifaddrs(&ifa))
		return false;
	for (i = ifa; i && !yes; i = i->ifa_next) {
		const struct sockaddr_in *s, *mk;

		if (!i->ifa_addr || !i->ifa_netmask ||
		    i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK))
			continue;
		s = (const struct sockaddr_in *)i->ifa_addr;
		mk = (const struct sockaddr_in *)i->ifa_netmask;
		yes = ((s->sin_addr.s_addr ^ a.s_addr) & mk->sin_addr.s_addr) ==
		      0;
	}
	freeifaddrs(ifa);
	return yes;
}

/* The record names holder: pick an address. */
static int find_coordinator(struct cvb_vol *b, const char *holder, char *why,
			    size_t cap)
{
	struct cvb_net *n = b->net;
	struct timespec nap = { 0, 200 * 1000 * 1000 };
	struct coord_rec c;
	char *buf = malloc(CVB_COORD_RECLEN + 1);
	int rc = -ENOMEM;

	for (int ms = 0; buf && ms < CVB_NET_FIND_MS; ms += 200) {
		rc = cvb_vol_peek(b->path, CVB_COORD_REC, buf,
				  CVB_COORD_RECLEN + 1);
		if (!rc)
			rc = parse_record(buf, &c);
		if (!rc && strcmp(c.node, holder))
			rc = -ESTALE; /* the coordinator has not written yet */
		if (!rc)
			break;
		nanosleep(&nap, NULL);
	}
	free(buf);
	if (rc) {
		snprintf(why, cap,
			 "cannot find where the coordinator of %s (node %s) "
			 "listens: %s/%s %s",
			 b->path, holder, CV_META_DIR, CVB_COORD_REC,
			 rc == -ESTALE ? "names another node" : strerror(-rc));
		return rc;
	}
	snprintf(n->host, sizeof(n->host), "%s", c.addr[0]);
	for (unsigned i = 0; i < c.naddr; i++)
		if (on_my_net(c.addr[i])) {
			snprintf(n->host, sizeof(n->host), "%s", c.addr[i]);
			break;
		}
	n->port = c.port;
	return 0;
}

static void cli_recall(void *arg, uint64_t ino, uint64_t gen)
{
	(void)gen;
	cvb_io_recall(arg, ino);
}

static void cli_reset(void *arg)
{
	struct cvb_vol *b = arg;

	pthread_mutex_lock(&b->itab_lock);
	for (unsigned i = 0; i < CVB_ITAB_SIZE; i++)
		for (struct cvb_inode *ci = b->itab[i]; ci; ci = ci->next)
			cvb_map_drop(ci);
	pthread_mutex_unlock(&b->itab_lock);
}

static int open_client(struct cvb_vol *b)
{
	struct cvb_net *n = b->net;
	struct cvb_cli_opts o = {
		.host = n->host,
		.port = n->port,
		.key = &n->key,
		.node_id = n->self,
		.recall = cli_recall,
		.reset = cli_reset,
		.arg = b,
	};

	return cvb_cli_open(&o, &n->cli);
}

/* The root's attributes through the channel: the path works. */
static int probe(struct cvb_vol *b, char *why, size_t cap)
{
	struct cvb_req r = { .op = CVB_OP_GETATTR, .ino = CVB_ROOT_INO };
	int rc = open_client(b);
	char err[160] = "";

	if (rc)
		return rc;
	remote_call(b->net->cli, &r, CVB_NET_PROBE_MS, &rc);
	if (!rc)
		rc = (int)r.res;
	if (rc) {
		cvb_cli_connected(b->net->cli, NULL, err, sizeof(err));
		snprintf(why, cap,
			 "cannot reach the coordinator of %s, node %s at "
			 "%s port %u: %s%s%s",
			 b->path, b->coordinator, b->net->host, b->net->port,
			 strerror(-rc), err[0] ? ": " : "", err);
	} else {
		b->net->root = r.st;
	}
	cvb_cli_close(b->net->cli);
	b->net->cli = NULL;
	return rc;
}

static int load_key(struct cvb_vol *b, char *why, size_t cap)
{
	char err[256] = "";
	int rc;

	if (!b->have_uuid) {
		snprintf(why, cap, "%s: no volume record", b->path);
		return -ENOENT;
	}
	rc = cvb_chan_key_load(NULL, b->uuid, &b->net->key, err, sizeof(err));
	if (rc)
		snprintf(why, cap, "%s", err);
	return rc;
}

static int net_new(struct cvb_vol *b, const char *node)
{
	if (!b->net)
		b->net = calloc(1, sizeof(*b->net));
	if (!b->net)
		return -ENOMEM;
	b->net->self = cvb_node_id(node);
	return 0;
}

int cvb_net_claim_client(struct cvb_vol *b, const struct be_cluster *cl,
			 const char *holder, char *why, size_t cap)
{
	char other[256];
	int rc = net_new(b, cl->node);

	if (!rc)
		rc = load_key(b, why, cap);
	if (rc)
		return rc;
	rc = cl->try_own(cl->arg, CVB_NODE_FILEID(b->net->self),
			 &b->net->live_epoch, other, sizeof(other));
	if (rc) {
		snprintf(why, cap,
			 "cannot register this node's mount of %s in "
			 "csvfs-lockd: %s",
			 b->path, rc == -EAGAIN ? other : strerror(-rc));
		return rc == -EAGAIN ? -EBUSY : rc;
	}
	b->cl = *cl;
	b->net->live_owned = true;
	snprintf(b->coordinator, sizeof(b->coordinator), "%s", holder);
	rc = find_coordinator(b, holder, why, cap);
	if (!rc)
		rc = probe(b, why, cap);
	if (rc) {
		cvb_net_stop(b);
		return rc;
	}
	b->client = true;
	return 0;
}

int cvb_net_start(struct cvb_vol *b, const char *node)
{
	char why[256];
	int rc;

	if (b->client)
		return open_client(b);
	if (!b->lockd_owned)
		return 0; /* no cluster: no other node to serve */
	rc = net_new(b, node);
	if (!rc && load_key(b, why, sizeof(why))) {
		log_warn("block: no coordinator channel (%s): other nodes "
			 "cannot mount %s",
			 why, b->path);
		return 0;
	}
	return rc ? rc : start_server(b);
}

void cvb_net_stop(struct cvb_vol *b)
{
	struct cvb_net *n = b->net;

	if (!n)
		return;
	if (n->cli)
		cvb_cli_close(n->cli);
	n->cli = NULL;
	if (n->srv)
		cvb_srv_stop(n->srv);
	n->srv = NULL;
	if (n->live_owned && b->cl.release)
		b->cl.release(b->cl.arg, CVB_NODE_FILEID(n->self),
			      n->live_epoch);
	n->live_owned = false;
	hold_free_all(n);
	free(n);
	b->net = NULL;
}
