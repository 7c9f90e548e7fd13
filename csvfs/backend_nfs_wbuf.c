// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * backend_nfs_wbuf.c - NFSv3 WRITE and COMMIT with the write verifier, and
 * the per-node list of uncommitted writes that makes fsync durable.
 *
 * libnfs's nfs_pwrite() sends UNSTABLE WRITEs and nfs_fsync() a COMMIT,
 * but neither looks at the write verifier, so a server that restarts
 * between the two loses the data and the COMMIT still succeeds (RFC 1813
 * 3.3.7, 3.3.21).  The backend therefore writes through the raw RPC API,
 * keeps a copy of every UNSTABLE write until a COMMIT returns the
 * verifier it was written under, and rewrites the copies FILE_SYNC when
 * it does not (backend_nfs.c decides when).
 *
 * The raw calls run on a pooled context the caller has locked, drive its
 * socket with poll() and rpc_service() until the reply, and give up after
 * the backend's RPC timeout plus a second, so no call waits longer.  A
 * call given up on leaves its state to the callback, which libnfs runs
 * (status CANCEL) when the dropped context is destroyed.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend_nfs.h" /* <nfsc/libnfs.h> first: the raw headers need it */
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>
#include "../lockmgr/log.h"

/*
 * libnfs 4.0 returns its private struct nfs_fh from nfs_get_fh() for use
 * with the raw calls but does not install its definition; this is it
 * (include/libnfs-private.h).  A length outside 1..NFS3_FHSIZE means the
 * layout changed: the call fails rather than sending garbage.
 */
struct be_nfs_fh_layout {
	int len;
	char *val;
};

struct raw_call {
	bool done;	 /* the callback ran */
	bool abandoned;	 /* the caller gave up: the callback frees */
	int status;	 /* RPC_STATUS_* */
	int nfsstat;	 /* nfsstat3 of the reply */
	struct nfs_wres res;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The common head of an RPC answer: free an abandoned call, else record
 * the RPC and NFS status.  True when the NFS result (res) can be read.
 */
static bool answer_ok(struct raw_call *call, int status, int nfsstat)
{
	if (call->abandoned) {
		free(call);
		return false;
	}
	call->done = true;
	call->status = status;
	if (status != RPC_STATUS_SUCCESS)
		return false;
	call->nfsstat = nfsstat;
	return nfsstat == NFS3_OK;
}

static void write_cb(struct rpc_context *rpc, int status, void *data,
		     void *priv)
{
	struct raw_call *call = priv;
	WRITE3res *r = data;

	/* data is the result only when status is RPC_STATUS_SUCCESS */
	if (!answer_ok(call, status,
		       status == RPC_STATUS_SUCCESS ? (int)r->status : 0))
		return;
	call->res.count = r->WRITE3res_u.resok.count;
	call->res.committed = r->WRITE3res_u.resok.committed;
	memcpy(call->res.verf, r->WRITE3res_u.resok.verf, NFS_VERF_SIZE);
}

static void commit_cb(struct rpc_context *rpc, int status, void *data,
		      void *priv)
{
	struct raw_call *call = priv;
	COMMIT3res *r = data;

	if (answer_ok(call, status,
		      status == RPC_STATUS_SUCCESS ? (int)r->status : 0))
		memcpy(call->res.verf, r->COMMIT3res_u.resok.verf,
		       NFS_VERF_SIZE);
}

/*
 * Serve the context until call is answered or the deadline passes.
 * Returns 0 (call->done) or -errno; on error the call is abandoned and
 * the caller must not touch it again.
 */
static int raw_wait(struct be_nfs *p, struct rpc_context *rpc,
		    struct raw_call *call)
{
	uint64_t deadline = mono_ms() + (uint64_t)p->timeout_ms + 1000;
	int rc = 0;

	while (!call->done) {
		struct pollfd pfd = {
			.fd = rpc_get_fd(rpc),
			.events = (short)rpc_which_events(rpc),
		};
		uint64_t now = mono_ms();
		int n;

		if (now >= deadline) {
			rc = -ETIMEDOUT;
			break;
		}
		n = poll(&pfd, 1, deadline - now < 100 ? (int)(deadline - now)
						       : 100);
		if (n < 0 && errno != EINTR) {
			rc = -errno;
			break;
		}
		if (rpc_service(rpc, n > 0 ? pfd.revents : 0) < 0 &&
		    !call->done) {
			rc = -EIO;
			break;
		}
	}
	if (rc)
		call->abandoned = true;
	return rc;
}

/* The result of a finished call as 0 or -errno; frees it. */
static int raw_result(struct raw_call *call, struct nfs_wres *res)
{
	int rc = 0;

	if (call->status == RPC_STATUS_TIMEOUT)
		rc = -ETIMEDOUT;
	else if (call->status != RPC_STATUS_SUCCESS)
		rc = -EIO;
	else if (call->nfsstat != NFS3_OK)
		rc = nfsstat3_to_errno(call->nfsstat);
	if (rc > 0)
		rc = -rc;
	if (!rc)
		*res = call->res;
	free(call);
	return rc;
}

static int fh3_of(struct nfsfh *fh, nfs_fh3 *out)
{
	struct be_nfs_fh_layout *l = (void *)nfs_get_fh(fh);

	if (!l || l->len <= 0 || l->len > NFS3_FHSIZE) {
		log_err("nfs: libnfs file handle has an unknown layout "
			"(length %d): cannot write", l ? l->len : -1);
		return -EIO;
	}
	out->data.data_len = (u_int)l->len;
	out->data.data_val = l->val;
	return 0;
}

/*
 * One WRITE of len bytes at off with the given stable_how on context c
 * (locked by the caller).  Returns the bytes written or -errno; res
 * receives how the server committed them and its verifier.
 */
int nfs_raw_write(struct be_nfs *p, struct nfs_conn *c, struct nfsfh *fh,
		  uint64_t off, const void *buf, uint32_t len, int stable,
		  struct nfs_wres *res)
{
	struct rpc_context *rpc = nfs_get_rpc_context(c->nfs);
	struct WRITE3args args = {
		.offset = off,
		.count = len,
		.stable = (stable_how)stable,
		.data = { .data_len = len, .data_val = (char *)buf },
	};
	struct raw_call *call;
	int rc = fh3_of(fh, &args.file);

	if (rc)
		return rc;
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	if (rpc_nfs3_write_async(rpc, write_cb, &args, call)) {
		free(call);
		return -EIO;
	}
	rc = raw_wait(p, rpc, call);
	if (rc)
		return rc;
	rc = raw_result(call, res);
	return rc ? rc : (int)res->count;
}

/* COMMIT the whole file; res->verf receives the server's verifier. */
int nfs_raw_commit(struct be_nfs *p, struct nfs_conn *c, struct nfsfh *fh,
		   struct nfs_wres *res)
{
	struct rpc_context *rpc = nfs_get_rpc_context(c->nfs);
	struct COMMIT3args args = { .offset = 0, .count = 0 };
	struct raw_call *call;
	int rc = fh3_of(fh, &args.file);

	if (rc)
		return rc;
	call = calloc(1, sizeof(*call));
	if (!call)
		return -ENOMEM;
	if (rpc_nfs3_commit_async(rpc, commit_cb, &args, call)) {
		free(call);
		return -EIO;
	}
	rc = raw_wait(p, rpc, call);
	return rc ? rc : raw_result(call, res);
}

/* ---- uncommitted writes of a node ------------------------------------- */

/* Keep a copy of an UNSTABLE write of n.  Returns 0 or -ENOMEM. */
int nfs_unc_add(struct be_nfs *p, struct be_node *n, uint64_t off,
		const void *buf, uint32_t len, const char *verf)
{
	struct nfs_extent *e = malloc(sizeof(*e) + len);

	if (!e)
		return -ENOMEM;
	e->next = NULL;
	e->off = off;
	e->len = len;
	memcpy(e->verf, verf, NFS_VERF_SIZE);
	memcpy(e->data, buf, len);
	pthread_mutex_lock(&n->unc_lock);
	*n->unc_tail = e;
	n->unc_tail = &e->next;
	pthread_mutex_unlock(&n->unc_lock);
	atomic_fetch_add(&p->unc_bytes, len);
	return 0;
}

/* Detach n's list of uncommitted writes (the caller owns it). */
struct nfs_extent *nfs_unc_take(struct be_node *n)
{
	struct nfs_extent *list;

	pthread_mutex_lock(&n->unc_lock);
	list = n->unc;
	n->unc = NULL;
	n->unc_tail = &n->unc;
	pthread_mutex_unlock(&n->unc_lock);
	return list;
}

/* Put a taken list back in front of writes queued since (still older). */
void nfs_unc_putback(struct be_node *n, struct nfs_extent *list)
{
	struct nfs_extent *last;

	if (!list)
		return;
	for (last = list; last->next; last = last->next)
		;
	pthread_mutex_lock(&n->unc_lock);
	last->next = n->unc;
	if (!n->unc)
		n->unc_tail = &last->next;
	n->unc = list;
	pthread_mutex_unlock(&n->unc_lock);
}

void nfs_unc_free(struct be_nfs *p, struct nfs_extent *list)
{
	struct nfs_extent *e;

	while ((e = list)) {
		list = e->next;
		atomic_fetch_sub(&p->unc_bytes, e->len);
		free(e);
	}
}

/* True if every write in list was made under verifier verf. */
bool nfs_unc_all_match(const struct nfs_extent *list, const char *verf)
{
	for (; list; list = list->next)
		if (memcmp(list->verf, verf, NFS_VERF_SIZE))
			return false;
	return true;
}
