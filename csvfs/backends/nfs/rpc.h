/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rpc.h - NFS calls the backend makes through libnfs's raw RPC API
 * (rpc.c): WRITE and COMMIT with the write verifier on NFSv3 and NFSv4,
 * NFSv4 SETATTR and the export root's attributes, and what counts as a
 * transport failure.  Each runs on a pooled context the caller holds.
 */
#ifndef CSVFS_NFS_RPC_H
#define CSVFS_NFS_RPC_H

#include "dirlist.h"
#include "nfs_i.h"

/* Errors that say the server did not answer, not what it answered. */
bool nfs_transport_error(int rc);

int nfs_raw_write(struct be_nfs *p, struct nfs_conn *c, struct nfsfh *fh,
		  uint64_t off, const void *buf, uint32_t len, int stable,
		  struct nfs_wres *res);
int nfs_raw_commit(struct be_nfs *p, struct nfs_conn *c, struct nfsfh *fh,
		   struct nfs_wres *res);
int nfs4_raw_setattr(struct be_nfs *p, struct nfs_conn *c, const char *path,
		     const struct nfs4_sattr *sa);
int nfs4_raw_rootattr(struct be_nfs *p, struct nfs_conn *c, const char *path,
		      struct nfs4_rootattr *out);
/* The whole listing of the directory at path, by NFSv4 READDIR. */
int nfs4_raw_readdir(struct be_nfs *p, struct nfs_conn *c, const char *path,
		     struct dirent_list *out);

#endif /* CSVFS_NFS_RPC_H */
