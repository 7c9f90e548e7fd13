// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * rpc.c - NFS WRITE and COMMIT with the write verifier, through libnfs's
 * raw RPC API; the per-node list of uncommitted writes that makes fsync
 * durable is wbuf.c.
 *
 * libnfs's nfs_pwrite() sends UNSTABLE WRITEs and nfs_fsync() a COMMIT,
 * on NFSv3 and on NFSv4 alike, but neither looks at the write verifier,
 * so a server that restarts between the two loses the data and the
 * COMMIT still succeeds (RFC 1813 3.3.7, 3.3.21; RFC 7530 16.36.4).  The
 * backend therefore writes through the raw RPC API, keeps a copy of
 * every UNSTABLE write until a COMMIT returns the verifier it was written
 * under, and rewrites the copies FILE_SYNC when it does not
 * (nfs.c decides when).
 *
 * NFSv4 WRITE and COMMIT are COMPOUNDs: PUTFH and the operation.  A
 * WRITE carries the anonymous stateid (all zeroes, RFC 7530 9.1.4.3), so
 * it does not depend on libnfs's open state, which does not survive a
 * server restart.  libnfs 4.0 leaves the NFSv4 rsize and wsize at 0, so
 * the backend asks for the export root's maxread and maxwrite itself.
 *
 * NFSv4 directories are read here too (READDIR), because libnfs 4.0's
 * nfs_opendir() gets them wrong on NFSv4: it never fills in the entries'
 * inode numbers (heap garbage becomes d_ino, and readdir(3) drops an
 * entry whose d_ino happens to be 0), copies names as C strings though
 * XDR does not terminate them, sends a zero cookie verifier with every
 * continuation (a server that checks verifiers refuses all listings
 * longer than one reply) and does not ask for rdattr_error (one entry
 * whose attributes cannot be read fails the whole listing).
 *
 * The raw calls run on a pooled context the caller has locked, drive its
 * socket with poll() and rpc_service() until the reply, and give up after
 * the backend's RPC timeout plus a second, so no call waits longer.  A
 * call given up on leaves its state to the callback, which libnfs runs
 * (status CANCEL) when the dropped context is destroyed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "rpc.h" /* <nfsc/libnfs.h> first: the raw headers need it */
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs-raw-nfs4.h>
#include "log.h"

#define NFS4_MAX_LOOKUPS 64 /* path components of the export root */
#define NFS4_WRITE_PIECE 3072 /* data bytes per NFSv4 WRITE (see below) */
#define NFS4_READDIR_MAX (64 * 1024) /* maxcount of one READDIR reply */
#define NFS4_READDIR_PASSES 8 /* listings begun again after BAD_COOKIE */

/*
 * libnfs 4.0 returns its private struct nfs_fh from nfs_get_fh() for use
 * with the raw calls but does not install its definition; this is it
 * (include/libnfs-private.h), the same for NFSv3 and NFSv4.  A length
 * outside 1..NFS3_FHSIZE (NFS4_FHSIZE) means the layout changed: the call
 * fails rather than sending garbage.
 */
struct be_nfs_fh_layout {
	int len;
	char *val;
};

struct raw_call {
	bool done;	 /* the callback ran */
	bool abandoned;	 /* the caller gave up: the callback frees */
	int status;	 /* RPC_STATUS_* */
	int err;	 /* the NFS status of the reply as 0 or -errno */
	struct nfs_wres res;
	u_int nops;	 /* NFSv4: operations in the COMPOUND */
	struct nfs4_rootattr root; /* NFSv4 GETATTR of the export root */
	struct rdir_pass *rd;	   /* NFSv4 READDIR: the pass it serves */
};

/* One pass over a directory by NFSv4 READDIRs, filled by readdir4_cb. */
struct rdir_pass {
	struct dirent_list *out;
	uint64_t cookie;		/* the last entry's: continue there */
	char verf[NFS4_VERIFIER_SIZE];	/* the last reply's verifier */
	bool eof;
	u_int nents;			/* entries in the last reply */
	int nfs4_status;		/* of the last COMPOUND */
	u_int fhlen;			/* the directory's handle (GETFH) */
	char fh[NFS4_FHSIZE];
};

/* libnfs's errno of an nfsstat3 or nfsstat4, as -errno */
static int neg(int e)
{
	return e > 0 ? -e : e;
}

/* Errors that say the server did not answer, not what it answered. */
bool nfs_transport_error(int rc)
{
	switch (-rc) {
	case EIO: case EFAULT: case EINTR: case ETIMEDOUT: case ENOTCONN:
	case ECONNRESET: case ECONNREFUSED: case EPIPE: case EHOSTUNREACH:
	case ENETUNREACH: case EAGAIN:
		return true;
	default:
		return false;
	}
}

/*
 * The common head of an RPC answer: free an abandoned call, else record
 * the RPC status and the NFS one (err, valid when status is SUCCESS).
 * True when the NFS result can be read.
 */
static bool answer_ok(struct raw_call *call, int status, int err)
{
	if (call->abandoned) {
		free(call);
		return false;
	}
	call->done = true;
	call->status = status;
	if (status != RPC_STATUS_SUCCESS)
		return false;
	call->err = err;
	return err == 0;
}

static void write_cb(struct rpc_context *rpc, int status, void *data,
		     void *priv)
{
	struct raw_call *call = priv;
	WRITE3res *r = data;

	/* data is the result only when status is RPC_STATUS_SUCCESS */
	if (!answer_ok(call, status,
		       status != RPC_STATUS_SUCCESS || r->status == NFS3_OK
			       ? 0 : neg(nfsstat3_to_errno((int)r->status))))
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
		      status != RPC_STATUS_SUCCESS || r->status == NFS3_OK
			      ? 0 : neg(nfsstat3_to_errno((int)r->status))))
		memcpy(call->res.verf, r->COMMIT3res_u.resok.verf,
		       NFS_VERF_SIZE);
}

/*
 * Copy the result of operation idx of call's NFSv4 COMPOUND to op
 * (libnfs decodes the result array with 4-byte alignment only, hence the
 * copy).  Returns 0, or the -errno of the COMPOUND's status (that of the
 * first failing operation), -EIO if it came back short.
 */
static int compound_op(const struct raw_call *call, void *data, int status,
		       u_int idx, nfs_resop4 *op)
{
	COMPOUND4res *r = data;
	u_int nops = call->nops;

	if (status != RPC_STATUS_SUCCESS || call->abandoned)
		return 0;
	if (r->status != NFS4_OK)
		return neg(nfsstat4_to_errno((int)r->status));
	if (r->resarray.resarray_len != nops || idx >= nops)
		return -EIO;
	memcpy(op, (char *)r->resarray.resarray_val + idx * sizeof(*op),
	       sizeof(*op));
	return 0;
}

static int compound_last(const struct raw_call *call, void *data,
			 int status, nfs_resop4 *op)
{
	return compound_op(call, data, status, call->nops - 1, op);
}

static void write4_cb(struct rpc_context *rpc, int status, void *data,
		      void *priv)
{
	struct raw_call *call = priv;
	nfs_resop4 op;
	int err = compound_last(call, data, status, &op);

	if (!answer_ok(call, status, err))
		return;
	call->res.count = op.nfs_resop4_u.opwrite.WRITE4res_u.resok4.count;
	call->res.committed =
		op.nfs_resop4_u.opwrite.WRITE4res_u.resok4.committed;
	memcpy(call->res.verf,
	       op.nfs_resop4_u.opwrite.WRITE4res_u.resok4.writeverf,
	       NFS_VERF_SIZE);
}

static void commit4_cb(struct rpc_context *rpc, int status, void *data,
		       void *priv)
{
	struct raw_call *call = priv;
	nfs_resop4 op;
	int err = compound_last(call, data, status, &op);

	if (answer_ok(call, status, err))
		memcpy(call->res.verf,
		       op.nfs_resop4_u.opcommit.COMMIT4res_u.resok4.writeverf,
		       NFS_VERF_SIZE);
}

static void setattr4_cb(struct rpc_context *rpc, int status, void *data,
			void *priv)
{
	struct raw_call *call = priv;
	nfs_resop4 op;

	answer_ok(call, status, compound_last(call, data, status, &op));
}

/* Big-endian unsigned of size bytes at v + *at, if within len. */
static bool attr_uint(const unsigned char *v, u_int len, u_int *at,
		      u_int size, uint64_t *out)
{
	u_int i;

	if (*at + size > len)
		return false;
	for (*out = 0, i = 0; i < size; i++)
		*out = *out << 8 | v[*at + i];
	*at += size;
	return true;
}

/*
 * GETATTR of lease_time (bit 10, uint32), maxread (30) and maxwrite (31,
 * uint64 each): the values come in bit order, only those the server gives.
 */
static void rootattr4_cb(struct rpc_context *rpc, int status, void *data,
		      void *priv)
{
	struct raw_call *call = priv;
	const fattr4 *a;
	const unsigned char *v;
	u_int len, at = 0;
	uint32_t mask = 0;
	uint64_t x = 0;
	nfs_resop4 op;
	int err = compound_last(call, data, status, &op);

	if (!answer_ok(call, status, err))
		return;
	a = &op.nfs_resop4_u.opgetattr.GETATTR4res_u.resok4.obj_attributes;
	v = (const unsigned char *)a->attr_vals.attrlist4_val;
	len = a->attr_vals.attrlist4_len;
	if (a->attrmask.bitmap4_len >= 1)
		memcpy(&mask, a->attrmask.bitmap4_val, sizeof(mask));
	if ((mask & 1u << FATTR4_LEASE_TIME) &&
	    !attr_uint(v, len, &at, 4, &x))
		goto bad;
	call->root.lease_s = mask & 1u << FATTR4_LEASE_TIME ? (uint32_t)x : 0;
	if ((mask & 1u << FATTR4_MAXREAD) &&
	    !attr_uint(v, len, &at, 8, &call->root.maxread))
		goto bad;
	if ((mask & 1u << FATTR4_MAXWRITE) &&
	    !attr_uint(v, len, &at, 8, &call->root.maxwrite))
		goto bad;
	return;
bad:
	call->err = -EIO;
}

/*
 * type (bit 1, uint32), rdattr_error (11, uint32) and fileid (20, uint64)
 * of one READDIR entry: the values come in bit order, only those the
 * server gives.  All three are in the first bitmap word and asked for
 * alone, so a value of any other attribute before them is an error.
 */
static int entry4_attrs(const fattr4 *a, uint32_t *type, uint64_t *fileid,
			uint32_t *rderr)
{
	const unsigned char *v =
		(const unsigned char *)a->attr_vals.attrlist4_val;
	u_int len = a->attr_vals.attrlist4_len, at = 0, bit;
	uint32_t mask = a->attrmask.bitmap4_len ? a->attrmask.bitmap4_val[0]
						: 0;
	uint64_t x;

	*type = 0;
	*rderr = 0;
	for (bit = 0; bit <= FATTR4_FILEID; bit++) {
		if (!(mask & 1u << bit))
			continue;
		if (bit != FATTR4_TYPE && bit != FATTR4_RDATTR_ERROR &&
		    bit != FATTR4_FILEID)
			return -EIO;
		if (!attr_uint(v, len, &at, bit == FATTR4_FILEID ? 8 : 4, &x))
			return -EIO;
		if (bit == FATTR4_TYPE)
			*type = (uint32_t)x;
		else if (bit == FATTR4_RDATTR_ERROR)
			*rderr = (uint32_t)x;
		else
			*fileid = x;
	}
	/* without a fileid there is no d_ino to give */
	return *rderr || mask & 1u << FATTR4_FILEID ? 0 : -EIO;
}

/*
 * Take one READDIR reply's entries.  An entry whose attributes the server
 * could not read (rdattr_error: removed while being listed, a junction)
 * is left out, as a name removed before the listing reached it.
 */
static int readdir4_take(struct rdir_pass *rd, const READDIR4resok *ok)
{
	const entry4 *next;
	entry4 ent, *e = &ent;
	uint32_t type, rderr;
	uint64_t ino = 0;
	int rc;

	memcpy(rd->verf, ok->cookieverf, NFS4_VERIFIER_SIZE);
	rd->eof = ok->reply.eof;
	rd->nents = 0;
	for (next = ok->reply.entries; next; next = e->nextentry) {
		/* libnfs aligns what it decodes to 4 bytes only */
		memcpy(&ent, next, sizeof(ent));
		rd->cookie = e->cookie;
		rd->nents++;
		rc = entry4_attrs(&e->attrs, &type, &ino, &rderr);
		if (rc) {
			log_err("nfs: READDIR entry without a file id or with "
				"attributes not asked for");
			return rc;
		}
		if (rderr) {
			int err = neg(nfsstat4_to_errno((int)rderr));

			log_debug("nfs: READDIR: %.*s left out (%s)",
				  (int)e->name.utf8string_len,
				  e->name.utf8string_val, strerror(-err));
			continue;
		}
		rc = dirent_list_add(rd->out, e->name.utf8string_val,
				     e->name.utf8string_len, ino, type);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * A READDIR COMPOUND: PUTROOTFH, LOOKUPs, GETFH, READDIR for the first
 * reply of a pass (the handle is kept), PUTFH, READDIR for the others.
 */
static void readdir4_cb(struct rpc_context *rpc, int status, void *data,
			void *priv)
{
	struct raw_call *call = priv;
	COMPOUND4res *r = data;
	nfs_resop4 op, fhop;
	bool first = !call->abandoned && !call->rd->fhlen;
	int err = compound_last(call, data, status, &op);
	nfs_fh4 *fh;

	if (status == RPC_STATUS_SUCCESS && !call->abandoned)
		call->rd->nfs4_status = (int)r->status;
	if (!err && first)
		err = compound_op(call, data, status, call->nops - 2, &fhop);
	if (!answer_ok(call, status, err))
		return;
	if (first) {
		fh = &fhop.nfs_resop4_u.opgetfh.GETFH4res_u.resok4.object;
		if (!fh->nfs_fh4_len || fh->nfs_fh4_len > NFS4_FHSIZE) {
			call->err = -EIO;
			return;
		}
		memcpy(call->rd->fh, fh->nfs_fh4_val, fh->nfs_fh4_len);
		call->rd->fhlen = fh->nfs_fh4_len;
	}
	call->err = readdir4_take(
		call->rd, &op.nfs_resop4_u.opreaddir.READDIR4res_u.resok4);
}

/*
 * Serve the context until call is answered or the deadline passes.
 * Returns 0 (call->done) or -errno; on error the call is abandoned and
 * the caller must not touch it again.
 */
static int raw_wait(struct be_nfs *p, struct rpc_context *rpc,
		    struct raw_call *call)
{
	uint64_t deadline = cv_now_ms() + (uint64_t)p->timeout_ms + 1000;
	int rc = 0;

	while (!call->done) {
		struct pollfd pfd = {
			.fd = rpc_get_fd(rpc),
			.events = (short)rpc_which_events(rpc),
		};
		uint64_t now = cv_now_ms();
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
	else
		rc = call->err;
	if (!rc && res)
		*res = call->res;
	free(call);
	return rc;
}

static struct raw_call *raw_new(void)
{
	return calloc(1, sizeof(struct raw_call));
}

/* The bytes of libnfs's handle of an open file (max: the version's). */
static int fh_bytes(struct nfsfh *fh, int max, u_int *len, char **val)
{
	struct be_nfs_fh_layout *l = (void *)nfs_get_fh(fh);

	if (!l || l->len <= 0 || l->len > max) {
		log_err("nfs: libnfs file handle has an unknown layout "
			"(length %d): cannot write", l ? l->len : -1);
		return -EIO;
	}
	*len = (u_int)l->len;
	*val = l->val;
	return 0;
}

static int fh3_of(struct nfsfh *fh, nfs_fh3 *out)
{
	return fh_bytes(fh, NFS3_FHSIZE, &out->data.data_len,
			&out->data.data_val);
}

/* Send a COMPOUND of nops operations and wait for call's answer. */
static int compound_wait(struct be_nfs *p, struct rpc_context *rpc,
			 rpc_cb cb, nfs_argop4 *ops, u_int nops,
			 struct raw_call *call)
{
	COMPOUND4args args = {
		.minorversion = 0,
		.argarray = { .argarray_len = nops, .argarray_val = ops },
	};

	call->nops = nops;
	if (rpc_nfs4_compound_async(rpc, cb, &args, call)) {
		free(call);
		return -EIO;
	}
	return raw_wait(p, rpc, call);
}

/* Forget a call: free it if answered, else leave it to its callback. */
static void raw_drop(struct raw_call *call)
{
	if (call->done)
		free(call);
	else
		call->abandoned = true;
}

/*
 * Queue one WRITE piece (ops[1] says where and what); *out receives the
 * call.  Returns 0 or -errno (nothing queued).
 */
static int write4_queue(struct rpc_context *rpc, nfs_argop4 *ops,
			struct raw_call **out)
{
	COMPOUND4args args = {
		.argarray = { .argarray_len = 2, .argarray_val = ops },
	};
	struct raw_call *call = raw_new();

	if (!call)
		return -ENOMEM;
	call->nops = 2;
	if (rpc_nfs4_compound_async(rpc, write4_cb, &args, call)) {
		log_err("nfs: cannot queue an NFSv4 WRITE: %s",
			rpc_get_error(rpc));
		free(call);
		return -EIO;
	}
	*out = call;
	return 0;
}

/*
 * Wait for the queued pieces in order and sum them up: the bytes written
 * from the first without a gap, the weakest committed and the verifier.
 * Pieces under different verifiers mean the server restarted in between:
 * -ECONNRESET, so the caller retries the whole WRITE on a new connection.
 */
static int write4_collect(struct be_nfs *p, struct rpc_context *rpc,
			  struct raw_call **calls, u_int n, uint32_t piece,
			  struct nfs_wres *res)
{
	struct nfs_wres r;
	uint32_t done = 0;
	int rc = 0;
	u_int i;

	for (i = 0; i < n && !rc; i++) {
		rc = raw_wait(p, rpc, calls[i]);
		if (rc)
			break; /* raw_wait abandoned it */
		rc = raw_result(calls[i], &r);
		if (rc)
			break;
		if (!i) {
			*res = r;
		} else if (memcmp(r.verf, res->verf, NFS_VERF_SIZE)) {
			log_warn("nfs: the write verifier changed within one "
				 "WRITE: the server restarted; writing again");
			rc = -ECONNRESET;
			break;
		}
		if (r.committed < res->committed)
			res->committed = r.committed;
		done += r.count;
		if (r.count < piece)
			break; /* short: what follows would leave a gap */
	}
	while (++i < n)
		raw_drop(calls[i]);
	res->count = done;
	return done && !nfs_transport_error(rc) ? 0 : rc;
}

/*
 * NFSv4 WRITE of len bytes at off.  libnfs 4.0 encodes a COMPOUND into a
 * buffer of about 4 KiB whatever its size (its own nfs_pwrite fails on
 * larger NFSv4 writes), so the data goes as pieces of NFS4_WRITE_PIECE
 * bytes, all queued at once, then awaited in order.  Each piece is PUTFH
 * and WRITE with the anonymous stateid.
 */
static int nfs4_raw_write(struct be_nfs *p, struct nfs_conn *c,
			  struct nfsfh *fh, uint64_t off, const void *buf,
			  uint32_t len, int stable, struct nfs_wres *res)
{
	struct rpc_context *rpc = nfs_get_rpc_context(c->nfs);
	nfs_argop4 ops[2] = {
		{ .argop = OP_PUTFH },
		{ .argop = OP_WRITE },
	};
	WRITE4args *w = &ops[1].nfs_argop4_u.opwrite;
	u_int n = (len + NFS4_WRITE_PIECE - 1) / NFS4_WRITE_PIECE, queued;
	struct raw_call **calls;
	int rc;

	rc = fh_bytes(fh, NFS4_FHSIZE,
		      &ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_len,
		      &ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_val);
	if (rc)
		return rc;
	calls = calloc(n ? n : 1, sizeof(*calls));
	if (!calls)
		return -ENOMEM;
	/* stateid left all zeroes: the anonymous stateid */
	w->stable = (stable_how4)stable;
	for (queued = 0; queued < n; queued++) {
		uint32_t at = queued * NFS4_WRITE_PIECE;

		w->offset = off + at;
		w->data.data_len = len - at < NFS4_WRITE_PIECE
					   ? len - at : NFS4_WRITE_PIECE;
		w->data.data_val = (char *)buf + at;
		rc = write4_queue(rpc, ops, &calls[queued]);
		if (rc)
			break;
	}
	if (queued)
		rc = write4_collect(p, rpc, calls, queued, NFS4_WRITE_PIECE,
				    res);
	free(calls);
	return rc ? rc : (int)res->count;
}

static int nfs4_raw_commit(struct be_nfs *p, struct nfs_conn *c,
			   struct nfsfh *fh, struct nfs_wres *res)
{
	nfs_argop4 ops[2] = {
		{ .argop = OP_PUTFH },
		{ .argop = OP_COMMIT }, /* offset 0, count 0: the whole file */
	};
	struct raw_call *call;
	int rc;

	rc = fh_bytes(fh, NFS4_FHSIZE,
		      &ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_len,
		      &ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_val);
	if (rc)
		return rc;
	call = raw_new();
	if (!call)
		return -ENOMEM;
	rc = compound_wait(p, nfs_get_rpc_context(c->nfs), commit4_cb, ops, 2,
			   call);
	return rc ? rc : raw_result(call, res);
}

/*
 * NFSv4: lease time, maxread and maxwrite of the export root at path, by
 * PUTROOTFH, one LOOKUP per component and GETATTR.  A value the server
 * does not give is left 0.
 */
int nfs4_raw_rootattr(struct be_nfs *p, struct nfs_conn *c, const char *path,
		      struct nfs4_rootattr *out)
{
	nfs_argop4 ops[NFS4_MAX_LOOKUPS + 2] = { { .argop = OP_PUTROOTFH } };
	uint32_t mask = 1u << FATTR4_LEASE_TIME | 1u << FATTR4_MAXREAD |
			1u << FATTR4_MAXWRITE;
	char *copy = strdup(path), *comp, *save;
	struct raw_call *call;
	u_int n = 1;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (comp = strtok_r(copy, "/", &save); comp && !rc;
	     comp = strtok_r(NULL, "/", &save)) {
		if (n > NFS4_MAX_LOOKUPS) {
			rc = -ENAMETOOLONG;
			break;
		}
		ops[n].argop = OP_LOOKUP;
		ops[n].nfs_argop4_u.oplookup.objname.utf8string_len =
			(u_int)strlen(comp);
		ops[n++].nfs_argop4_u.oplookup.objname.utf8string_val = comp;
	}
	ops[n].argop = OP_GETATTR;
	ops[n].nfs_argop4_u.opgetattr.attr_request.bitmap4_len = 1;
	ops[n++].nfs_argop4_u.opgetattr.attr_request.bitmap4_val = &mask;
	call = rc ? NULL : raw_new();
	if (!rc && !call)
		rc = -ENOMEM;
	if (!rc)
		rc = compound_wait(p, nfs_get_rpc_context(c->nfs),
				   rootattr4_cb, ops, n, call);
	if (!rc) {
		*out = call->root;
		rc = raw_result(call, NULL);
	}
	free(copy);
	return rc;
}

/* Put a big-endian unsigned of size bytes at *at. */
static void attr_put(char *v, u_int *at, u_int size, uint64_t x)
{
	for (u_int i = 0; i < size; i++)
		v[*at + i] = (char)(x >> 8 * (size - 1 - i));
	*at += size;
}

/* An XDR string of the decimal id (NFSv4 numeric owner, RFC 7530 5.9). */
static void attr_put_id(char *v, u_int *at, unsigned id)
{
	char num[16];
	u_int len = (u_int)snprintf(num, sizeof(num), "%u", id);

	attr_put(v, at, 4, len);
	memset(v + *at, 0, (len + 3) & ~3u);
	memcpy(v + *at, num, len);
	*at += (len + 3) & ~3u;
}

static void attr_put_time(char *v, u_int *at, const struct timespec *ts)
{
	attr_put(v, at, 4, SET_TO_CLIENT_TIME4);
	attr_put(v, at, 8, (uint64_t)ts->tv_sec);
	attr_put(v, at, 4, (uint64_t)ts->tv_nsec);
}

/*
 * NFSv4 SETATTR of the object at path below the export root, by
 * PUTROOTFH, LOOKUPs and SETATTR with the anonymous stateid.  libnfs 4.0
 * OPENs the object for its own SETATTR, which fails on a directory.
 */
int nfs4_raw_setattr(struct be_nfs *p, struct nfs_conn *c, const char *path,
		     const struct nfs4_sattr *sa)
{
	nfs_argop4 ops[NFS4_MAX_LOOKUPS + 2] = { { .argop = OP_PUTROOTFH } };
	uint32_t mask[2] = { 0, 0 };
	char *copy = NULL, *comp, *save, vals[128];
	SETATTR4args *sargs;
	struct raw_call *call;
	u_int n = 1, at = 0;
	int rc = 0;

	if (asprintf(&copy, "%s/%s", p->export_path, path) < 0)
		return -ENOMEM;
	for (comp = strtok_r(copy, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		if (n > NFS4_MAX_LOOKUPS) {
			free(copy);
			return -ENAMETOOLONG;
		}
		ops[n].argop = OP_LOOKUP;
		ops[n].nfs_argop4_u.oplookup.objname.utf8string_len =
			(u_int)strlen(comp);
		ops[n++].nfs_argop4_u.oplookup.objname.utf8string_val = comp;
	}
	/* values in attribute number order */
	if (sa->mode >= 0) {
		mask[1] |= 1u << (FATTR4_MODE - 32);
		attr_put(vals, &at, 4, (uint64_t)sa->mode);
	}
	if (sa->uid >= 0) {
		mask[1] |= 1u << (FATTR4_OWNER - 32);
		attr_put_id(vals, &at, (unsigned)sa->uid);
	}
	if (sa->gid >= 0) {
		mask[1] |= 1u << (FATTR4_OWNER_GROUP - 32);
		attr_put_id(vals, &at, (unsigned)sa->gid);
	}
	if (sa->times) {
		mask[1] |= 1u << (FATTR4_TIME_ACCESS_SET - 32) |
			   1u << (FATTR4_TIME_MODIFY_SET - 32);
		attr_put_time(vals, &at, &sa->atime);
		attr_put_time(vals, &at, &sa->mtime);
	}
	ops[n].argop = OP_SETATTR;
	sargs = &ops[n++].nfs_argop4_u.opsetattr; /* stateid: anonymous */
	sargs->obj_attributes.attrmask.bitmap4_len = 2;
	sargs->obj_attributes.attrmask.bitmap4_val = mask;
	sargs->obj_attributes.attr_vals.attrlist4_len = at;
	sargs->obj_attributes.attr_vals.attrlist4_val = vals;
	call = raw_new();
	if (!call)
		rc = -ENOMEM;
	if (!rc)
		rc = compound_wait(p, nfs_get_rpc_context(c->nfs), setattr4_cb,
				   ops, n, call);
	if (!rc)
		rc = raw_result(call, NULL);
	free(copy);
	return rc;
}

/* LOOKUP operations for the components of path (modified) from ops[*n]. */
static int lookup_ops(char *path, nfs_argop4 *ops, u_int *n)
{
	char *comp, *save;

	for (comp = strtok_r(path, "/", &save); comp;
	     comp = strtok_r(NULL, "/", &save)) {
		if (*n > NFS4_MAX_LOOKUPS)
			return -ENAMETOOLONG;
		ops[*n].argop = OP_LOOKUP;
		ops[*n].nfs_argop4_u.oplookup.objname.utf8string_len =
			(u_int)strlen(comp);
		ops[(*n)++].nfs_argop4_u.oplookup.objname.utf8string_val = comp;
	}
	return 0;
}

/* The READDIR operation continuing rd (cookie 0, zero verifier: start). */
static void readdir4_op(nfs_argop4 *op, const struct rdir_pass *rd,
			uint32_t *mask)
{
	READDIR4args *a = &op->nfs_argop4_u.opreaddir;

	memset(op, 0, sizeof(*op));
	op->argop = OP_READDIR;
	a->cookie = rd->cookie;
	memcpy(a->cookieverf, rd->verf, NFS4_VERIFIER_SIZE);
	a->dircount = NFS4_READDIR_MAX / 4;
	a->maxcount = NFS4_READDIR_MAX;
	a->attr_request.bitmap4_len = 1;
	a->attr_request.bitmap4_val = mask;
}

static int readdir4_call(struct be_nfs *p, struct nfs_conn *c,
			 nfs_argop4 *ops, u_int n, struct rdir_pass *rd)
{
	struct raw_call *call = raw_new();
	int rc;

	if (!call)
		return -ENOMEM;
	call->rd = rd;
	rd->nfs4_status = NFS4_OK;
	rc = compound_wait(p, nfs_get_rpc_context(c->nfs), readdir4_cb, ops,
			   n, call);
	return rc ? rc : raw_result(call, NULL);
}

/*
 * One pass over the directory at path, from its first entry to EOF, each
 * READDIR continuing at the last entry's cookie with the verifier of the
 * reply that gave it.  Returns 0, 1 when the server refused to continue
 * (BAD_COOKIE, NOT_SAME: the directory changed, its cookies are void),
 * or -errno.
 */
static int readdir4_pass(struct be_nfs *p, struct nfs_conn *c,
			 const char *path, struct dirent_list *out)
{
	nfs_argop4 ops[NFS4_MAX_LOOKUPS + 3] = { { .argop = OP_PUTROOTFH } };
	uint32_t mask = 1u << FATTR4_TYPE | 1u << FATTR4_RDATTR_ERROR |
			1u << FATTR4_FILEID;
	struct rdir_pass rd = { .out = out };
	char *copy = NULL;
	u_int n = 1;
	int rc;

	if (asprintf(&copy, "%s/%s", p->export_path, path) < 0)
		return -ENOMEM;
	rc = lookup_ops(copy, ops, &n);
	if (!rc) {
		ops[n++].argop = OP_GETFH;
		readdir4_op(&ops[n++], &rd, &mask);
	}
	while (!rc) {
		rc = readdir4_call(p, c, ops, n, &rd);
		if (rc || rd.eof)
			break;
		if (!rd.nents) {
			log_err("nfs: readdir %s: the server gave an empty "
				"reply before the end", path);
			rc = -EIO;
			break;
		}
		memset(&ops[0], 0, sizeof(ops[0]));
		ops[0].argop = OP_PUTFH;
		ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_len = rd.fhlen;
		ops[0].nfs_argop4_u.opputfh.object.nfs_fh4_val = rd.fh;
		readdir4_op(&ops[1], &rd, &mask);
		n = 2;
	}
	free(copy);
	if (rc && (rd.nfs4_status == NFS4ERR_BAD_COOKIE ||
		   rd.nfs4_status == NFS4ERR_NOT_SAME))
		return 1;
	return rc;
}

/*
 * NFSv4: the entries of the directory at path below the export root into
 * out (emptied first).  A listing the server will not continue because
 * the directory changed under it is begun again, a few times; after that
 * -EBUSY (not a transport error: the context stays).
 */
int nfs4_raw_readdir(struct be_nfs *p, struct nfs_conn *c, const char *path,
		     struct dirent_list *out)
{
	int pass, rc;

	for (pass = 0; pass < NFS4_READDIR_PASSES; pass++) {
		dirent_list_clear(out);
		rc = readdir4_pass(p, c, path, out);
		if (rc <= 0)
			return rc;
		log_debug("nfs: readdir %s: the directory changed during the "
			  "listing (cookie verifier); reading it again", path);
	}
	dirent_list_clear(out);
	log_warn("nfs: readdir %s: the directory changed during each of %d "
		 "listings; giving up", path, pass);
	return -EBUSY;
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
	int rc;

	if (p->version == 4)
		return nfs4_raw_write(p, c, fh, off, buf, len, stable, res);
	rc = fh3_of(fh, &args.file);
	if (rc)
		return rc;
	call = raw_new();
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
	int rc;

	if (p->version == 4)
		return nfs4_raw_commit(p, c, fh, res);
	rc = fh3_of(fh, &args.file);
	if (rc)
		return rc;
	call = raw_new();
	if (!call)
		return -ENOMEM;
	if (rpc_nfs3_commit_async(rpc, commit_cb, &args, call)) {
		free(call);
		return -EIO;
	}
	rc = raw_wait(p, rpc, call);
	return rc ? rc : raw_result(call, res);
}
