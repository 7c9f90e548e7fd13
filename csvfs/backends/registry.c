// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * registry.c - the backends this csvfs knows, by SOURCE prefix.
 *
 * This table is the one place that maps a mount SOURCE to a backend and
 * the one place that words what is wrong with a SOURCE: csvfs (mount) and
 * csvfs-admin (format) both come here.  Adding a backend is a folder
 * under csvfs/backends/ with its ops table, a line here and, if it needs
 * a library, a configure switch.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"

struct backend_entry {
	const char *prefix;	       /* what SOURCE starts with */
	const char *name;	       /* the backend's name in messages */
	const struct backend_ops *ops; /* NULL: not built into this csvfs */
	bool whole_source;	       /* init() gets the prefix too (URLs) */
	const char *missing;	       /* why ops is NULL: what to do */
};

#ifdef CSVFS_HAVE_NFS
#define NFS_OPS (&be_nfs_ops)
#else
#define NFS_OPS NULL
#endif

#ifdef CSVFS_HAVE_BLOCK
#define BLOCK_OPS (&be_block_ops)
#else
#define BLOCK_OPS NULL
#endif

/* iscsi:// is a block volume on an iSCSI LUN (block/lun_iscsi.c) */
#if defined(CSVFS_HAVE_BLOCK) && defined(CSVFS_HAVE_ISCSI)
#define ISCSI_OPS (&be_block_ops)
#else
#define ISCSI_OPS NULL
#endif

static const struct backend_entry backends[] = {
	{ .prefix = "nfs://",
	  .name = "nfs",
	  .ops = NFS_OPS,
	  .whole_source = true,
	  .missing = "this csvfs was built without it: install the Debian "
		     "package libnfs-dev and configure with --enable-nfs" },
	{ .prefix = "dir:", .name = "dir", .ops = &be_dir_ops },
	{ .prefix = "block:",
	  .name = "block",
	  .ops = BLOCK_OPS,
	  .missing =
		  "this csvfs was built without it: install the Debian "
		  "package libext2fs-dev and configure with --enable-block" },
	{ .prefix = "iscsi://",
	  .name = "iscsi",
	  .ops = ISCSI_OPS,
	  .whole_source = true,
	  .missing = "this csvfs was built without it: install the Debian "
		     "packages libext2fs-dev and libiscsi-dev and configure "
		     "with --enable-block --enable-iscsi" },
};

#define SOURCE_FORMS                                                           \
	"an absolute directory, dir:/dir, nfs://server/export or "             \
	"block:/dev/... (a LUN or an image file) or "                          \
	"iscsi://portal[:port]/target-iqn/lun"

static const struct backend_entry *entry_of(const char *source)
{
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (!strncmp(source, backends[i].prefix,
			     strlen(backends[i].prefix)))
			return &backends[i];
	return NULL;
}

int backend_lookup(const char *source, const struct backend_ops **ops,
		   const char **rest, char *err, size_t errlen)
{
	const struct backend_entry *e = entry_of(source);

	if (!e && source[0] == '/')
		e = entry_of("dir:"); /* a bare path is a directory */
	else if (!e) {
		snprintf(err, errlen, "%s: SOURCE must be %s", source,
			 SOURCE_FORMS);
		return -EINVAL;
	}
	if (!e->ops) {
		snprintf(err, errlen, "%s: the %s backend is not available: %s",
			 source, e->name, e->missing);
		return -EPROTONOSUPPORT;
	}
	*rest = source;
	if (!e->whole_source && !strncmp(source, e->prefix, strlen(e->prefix)))
		*rest = source + strlen(e->prefix);
	if (!e->whole_source && (*rest)[0] != '/') {
		snprintf(err, errlen, "%s: SOURCE must be %s", source,
			 SOURCE_FORMS);
		return -EINVAL;
	}
	*ops = e->ops;
	return 0;
}

int backend_open(struct backend *be, const char *source, char *err,
		 size_t errlen)
{
	const struct backend_ops *ops;
	const char *rest;
	int rc;

	rc = backend_lookup(source, &ops, &rest, err, errlen);
	if (rc)
		return rc;
	be->ops = ops;
	be->why[0] = '\0';
	rc = ops->init(be, rest);
	if (rc && be->why[0]) {
		snprintf(err, errlen, "cannot use %s: %s", source, be->why);
		be->ops = NULL;
	} else if (rc) {
		snprintf(err, errlen, "cannot use %s: %s", source,
			 strerror(-rc));
		be->ops = NULL;
	}
	return rc;
}
