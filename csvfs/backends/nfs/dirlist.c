// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * dirlist.c - a directory listing as the nfs backend keeps it: the names,
 * file ids and types of one READDIR pass (NFSv3 through libnfs, NFSv4
 * through rpc.c's own READDIR), owned by the open directory.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dirlist.h"
#include "log.h"

static unsigned dtype_of(uint32_t nf3type)
{
	static const unsigned map[] = {
		[1] = DT_REG, [2] = DT_DIR, [3] = DT_BLK, [4] = DT_CHR,
		[5] = DT_LNK, [6] = DT_SOCK, [7] = DT_FIFO,
	};

	return nf3type < 8 ? map[nf3type] : DT_UNKNOWN;
}

void dirent_snap_free(struct dirent_snap *ents, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

void dirent_list_clear(struct dirent_list *l)
{
	dirent_snap_free(l->ents, l->n);
	memset(l, 0, sizeof(*l));
}

/* Append a name of len bytes (not terminated) of type nftype (NF3/NF4). */
int dirent_list_add(struct dirent_list *l, const char *name, size_t len,
		    uint64_t ino, uint32_t nftype)
{
	struct dirent_snap *tmp;

	if (!len || memchr(name, '/', len) || memchr(name, '\0', len)) {
		log_err("nfs: the server listed a name that is none");
		return -EIO;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;

		tmp = realloc(l->ents, cap * sizeof(*tmp));
		if (!tmp)
			return -ENOMEM;
		l->ents = tmp;
		l->cap = cap;
	}
	l->ents[l->n].name = strndup(name, len);
	if (!l->ents[l->n].name)
		return -ENOMEM;
	l->ents[l->n].ino = ino;
	l->ents[l->n].dtype = dtype_of(nftype);
	l->n++;
	return 0;
}
