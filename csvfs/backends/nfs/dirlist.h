/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dirlist.h - the entries of one directory listing (dirlist.c).  The list
 * owns its names; dirent_list_clear() frees them.
 */
#ifndef CSVFS_NFS_DIRLIST_H
#define CSVFS_NFS_DIRLIST_H

#include <stddef.h>
#include <stdint.h>

/* One name of a directory snapshot: d_ino is the server's fileid. */
struct dirent_snap {
	char *name;
	uint64_t ino;
	unsigned dtype;
};

/* A directory listing being read (nfs.c keeps one per open directory). */
struct dirent_list {
	struct dirent_snap *ents;
	size_t n, cap;
};

void dirent_snap_free(struct dirent_snap *ents, size_t n);
void dirent_list_clear(struct dirent_list *l);
/* Append a name of len bytes (not terminated) of type nftype (NF3/NF4:
 * the same numbers); -EIO for a name that is none, -ENOMEM. */
int dirent_list_add(struct dirent_list *l, const char *name, size_t len,
		    uint64_t ino, uint32_t nftype);

#endif /* CSVFS_NFS_DIRLIST_H */
