/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * wbuf.h - a node's list of UNSTABLE writes not yet committed under their
 * verifier (wbuf.c).  The caller owns a list it took; putback returns it.
 */
#ifndef CSVFS_NFS_WBUF_H
#define CSVFS_NFS_WBUF_H

#include "nfs_i.h"

int nfs_unc_add(struct be_nfs *p, struct be_node *n, uint64_t off,
		const void *buf, uint32_t len, const char *verf);
struct nfs_extent *nfs_unc_take(struct be_node *n);
void nfs_unc_putback(struct be_node *n, struct nfs_extent *list);
void nfs_unc_free(struct be_nfs *p, struct nfs_extent *list);
bool nfs_unc_all_match(const struct nfs_extent *list, const char *verf);

#endif /* CSVFS_NFS_WBUF_H */
