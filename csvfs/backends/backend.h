/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h - the storage interface behind the csvfs FUSE layer.
 *
 * A backend turns file system operations into I/O on shared storage: a
 * POSIX directory (dir/dir.c), an NFS export through libnfs (nfs/), later
 * a shared block device.  The FUSE layer (fs.c) only ever talks to an ops
 * table, so a new backend plugs in without touching it.
 *
 * Handles are backend-private and opaque here:
 *   struct be_node  one file system object (what a FUSE inode refers to);
 *                   stays valid across renames of that object, freed by
 *                   node_put;
 *   struct be_file  one open file (what a FUSE file handle refers to),
 *                   freed by release;
 *   struct be_dir   one open directory stream, freed by releasedir.
 *
 * Conventions: every op returns 0 (or a byte count / offset where said)
 * or -errno, with errno values as a local ext4 would give them.  Names
 * are single path components; a backend never resolves a path outside its
 * root.  Every struct stat filled by a backend carries the backend's
 * stable file id in st_ino (the lock manager's resource key) and its
 * device in st_dev.  Ops may be called from many threads at once; a
 * backend protects its own handles.
 *
 * Buffers: the caller owns every buffer passed in; results are copied into
 * caller buffers.  Handles returned through out pointers belong to the
 * caller until the matching put/release.
 */
#ifndef CSVFS_BACKEND_H
#define CSVFS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>

struct be_node;
struct be_file;
struct be_dir;

/* Name of the hidden directory holding the volume record. */
#define CV_META_DIR ".csvfs"
#define CV_VOLREC_NAME "volume"
#define CV_FORMAT_VERSION 1
#define CV_LABEL_MAX 64

/* The volume record: identity of a csvfs volume on its storage. */
struct cv_volrec {
	uint8_t uuid[16];
	char label[CV_LABEL_MAX];
	unsigned format_version;
};

/* Who asks, for ownership of created objects. */
struct cv_cred {
	uid_t uid;
	gid_t gid;
};

/* setattr: which fields of attr to apply. */
enum {
	CV_SET_MODE = 1 << 0,
	CV_SET_UID = 1 << 1,
	CV_SET_GID = 1 << 2,
	CV_SET_SIZE = 1 << 3,
	CV_SET_ATIME = 1 << 4,
	CV_SET_MTIME = 1 << 5,
	CV_SET_ATIME_NOW = 1 << 6,
	CV_SET_MTIME_NOW = 1 << 7,
};

/*
 * readdir callback: one entry with its cookie (the offset that continues
 * after it).  Returns non-zero to stop (buffer full): the entry was not
 * consumed and the next readdir at this entry's predecessor cookie
 * returns it again.
 */
typedef int (*be_dirent_fn)(void *arg, const char *name, ino_t ino,
			    unsigned dtype, off_t next);

/*
 * What the cluster offers a backend that must be the only user of its
 * storage on behalf of all nodes (a block volume's coordinator): given
 * to claim by the FUSE layer.  try_own and release are NULL on a mount
 * without a lock manager.
 */
struct be_cluster {
	const char *node; /* this node's name */
	/* Exclusive ownership of fileid on this volume, without waiting
	 * for (or revoking) another node's: 0 and *epoch; -EAGAIN with the
	 * holder's node name in holder; or -errno. */
	int (*try_own)(void *arg, uint64_t fileid, uint64_t *epoch,
		       char *holder, size_t cap);
	int (*release)(void *arg, uint64_t fileid, uint64_t epoch);
	/* The current owner of fileid: its node name ("" when free) and
	 * epoch; -errno when the lock manager does not answer. */
	int (*owner)(void *arg, uint64_t fileid, char *name, size_t cap,
		     uint64_t *epoch);
	void *arg;
	uint32_t node_id; /* lockd's node id (0: none) */
	/* The storage took this node's write access away (an iSCSI
	 * reservation preempted): every file this node has open for writing
	 * is poisoned.  From any thread; NULL: nothing to tell. */
	void (*lost)(void *arg, const char *why);
	void *lost_arg;
};

struct backend;

struct backend_ops {
	const char *name;

	/* Set-up and teardown; source is what follows "dir:" etc. */
	int (*init)(struct backend *be, const char *source);
	void (*destroy)(struct backend *be);

	/* Volume record: -ENOENT if none; create gives -EEXIST if one
	 * exists (the caller then reads it). */
	int (*vol_read)(struct backend *be, struct cv_volrec *rec);
	int (*vol_create)(struct backend *be, const struct cv_volrec *rec);
	/*
	 * Optional, for storage that needs a file system of csvfs's making
	 * before it holds a volume record (block): create it on the part
	 * of SOURCE init would get.  -EEXIST, with nothing written, when
	 * the storage already holds one and force is false.
	 */
	int (*mkfs)(const char *source, const char *label, bool force,
		    char *err, size_t errlen);
	/*
	 * Optional: take the storage for this node (a block volume's
	 * coordinator role) after init and vol_read, before any other op;
	 * err says why not (for instance which node has it).  stop gives
	 * it back (before the lock manager connection closes); start
	 * starts the backend's threads once the daemon has forked.
	 */
	int (*claim)(struct backend *be, const struct be_cluster *cl,
		     char *err, size_t errlen);
	int (*start)(struct backend *be);
	void (*stop)(struct backend *be);

	int (*root)(struct backend *be, struct be_node **out,
		    struct stat *st);
	int (*lookup)(struct backend *be, struct be_node *parent,
		      const char *name, struct be_node **out,
		      struct stat *st);
	void (*node_put)(struct backend *be, struct be_node *node);

	int (*getattr)(struct backend *be, struct be_node *node,
		       struct stat *st);
	/* file may be NULL; on success st holds the new attributes. */
	int (*setattr)(struct backend *be, struct be_node *node,
		       struct be_file *file, const struct stat *attr,
		       int to_set, struct stat *st);

	/*
	 * flags: the open(2) flags asked for.  With O_DIRECT a backend
	 * bypasses its host's page cache too where its storage allows it,
	 * and accepts any alignment of buffer, offset and length.
	 */
	int (*open)(struct backend *be, struct be_node *node, int flags,
		    struct be_file **out);
	int (*create)(struct backend *be, struct be_node *parent,
		      const char *name, mode_t mode, int flags,
		      const struct cv_cred *cred, struct be_node **node,
		      struct stat *st, struct be_file **out);
	/* Return bytes read / written. */
	ssize_t (*read)(struct backend *be, struct be_file *file, void *buf,
			size_t size, off_t off);
	ssize_t (*write)(struct backend *be, struct be_file *file,
			 const void *buf, size_t size, off_t off);
	/*
	 * Optional: a file descriptor the caller may splice size bytes at
	 * off from (a plain read of the fd gives the file's data), or -1:
	 * then use read, with a page-aligned buffer where the caller can.
	 * A direct (O_DIRECT) file gives -1: splicing it saves no copy.
	 */
	int (*file_fd)(struct backend *be, struct be_file *file, off_t off,
		       size_t size);
	/*
	 * Optional: a file descriptor on which a plain pread or pwrite of
	 * size bytes at off, from a buffer aligned to buf_align, is exactly
	 * what read or write would do, so that the caller may submit it
	 * asynchronously; or -1: then use read or write.  Only files whose
	 * I/O sleeps on the device (direct files) need give one.
	 */
	int (*aio_fd)(struct backend *be, struct be_file *file, off_t off,
		      size_t size, unsigned buf_align);
	/*
	 * Optional, for storage where the file's data lives elsewhere on a
	 * descriptor (block: the LUN): as aio_fd, but the pread or pwrite
	 * goes to *dev_off on the returned descriptor.  A descriptor given
	 * pins the range's mapping until aio_done is called with the
	 * result of that one request (exactly once).
	 */
	int (*aio_map)(struct backend *be, struct be_file *file, off_t off,
		       size_t size, unsigned buf_align, bool write,
		       off_t *dev_off);
	void (*aio_done)(struct backend *be, struct be_file *file, bool write,
			 off_t off, size_t size, ssize_t res);
	int (*flush)(struct backend *be, struct be_file *file);
	int (*fsync)(struct backend *be, struct be_file *file, int datasync);
	int (*fallocate)(struct backend *be, struct be_file *file, int mode,
			 off_t off, off_t len);
	/* SEEK_DATA / SEEK_HOLE; returns the offset. */
	off_t (*lseek)(struct backend *be, struct be_file *file, off_t off,
		       int whence);
	void (*release)(struct backend *be, struct be_file *file);
	/* Flush an object to stable storage without an open handle. */
	int (*sync_node)(struct backend *be, struct be_node *node);

	int (*mkdir)(struct backend *be, struct be_node *parent,
		     const char *name, mode_t mode,
		     const struct cv_cred *cred, struct be_node **out,
		     struct stat *st);
	int (*mknod)(struct backend *be, struct be_node *parent,
		     const char *name, mode_t mode, dev_t rdev,
		     const struct cv_cred *cred, struct be_node **out,
		     struct stat *st);
	int (*symlink)(struct backend *be, const char *target,
		       struct be_node *parent, const char *name,
		       const struct cv_cred *cred, struct be_node **out,
		       struct stat *st);
	int (*link)(struct backend *be, struct be_node *node,
		    struct be_node *newparent, const char *newname,
		    struct stat *st);
	int (*unlink)(struct backend *be, struct be_node *parent,
		      const char *name);
	int (*rmdir)(struct backend *be, struct be_node *parent,
		     const char *name);
	int (*rename)(struct backend *be, struct be_node *parent,
		      const char *name, struct be_node *newparent,
		      const char *newname, unsigned flags);
	/* Returns the length (not NUL-terminated). */
	ssize_t (*readlink)(struct backend *be, struct be_node *node,
			    char *buf, size_t size);

	int (*opendir)(struct backend *be, struct be_node *node,
		       struct be_dir **out);
	int (*readdir)(struct backend *be, struct be_dir *dir, off_t off,
		       be_dirent_fn fn, void *arg);
	int (*fsyncdir)(struct backend *be, struct be_dir *dir,
			int datasync);
	void (*releasedir)(struct backend *be, struct be_dir *dir);

	int (*statfs)(struct backend *be, struct be_node *node,
		      struct statvfs *st);

	/* size 0: return the length needed. */
	ssize_t (*getxattr)(struct backend *be, struct be_node *node,
			    const char *name, void *buf, size_t size);
	int (*setxattr)(struct backend *be, struct be_node *node,
			const char *name, const void *value, size_t size,
			int flags);
	ssize_t (*listxattr)(struct backend *be, struct be_node *node,
			     char *buf, size_t size);
	int (*removexattr)(struct backend *be, struct be_node *node,
			   const char *name);
};

/* A backend instance: its ops and its private state. */
struct backend {
	const struct backend_ops *ops;
	void *priv;
	char why[512]; /* init: what is wrong with the storage, or "" */
};

/* The backends' ops tables (one folder each under csvfs/backends/). */
extern const struct backend_ops be_dir_ops;
extern const struct backend_ops be_nfs_ops;
extern const struct backend_ops be_block_ops;

/*
 * The registry (registry.c): SOURCE ("/abs/dir", "dir:/abs/dir",
 * "nfs://...") to the ops table and the part the backend parses.  Returns
 * 0, -EINVAL (not a SOURCE csvfs knows) or -EPROTONOSUPPORT (a backend
 * not built into this csvfs, or not available yet), with the reason for
 * the user in err.
 */
int backend_lookup(const char *source, const struct backend_ops **ops,
		   const char **rest, char *err, size_t errlen);
/* backend_lookup(), then the backend's init(): be->ops set on success. */
int backend_open(struct backend *be, const char *source, char *err,
		 size_t errlen);

#endif /* CSVFS_BACKEND_H */
