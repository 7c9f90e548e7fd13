/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bmsg.h - wire messages of a block volume's coordinator channel.
 *
 * Every node's csvfs asks the volume's coordinator for metadata (one
 * request per call of meta.h) and, when it has no path to the LUN, for
 * redirected data I/O; the coordinator asks map holders to drop a map
 * (recall).  All of it travels as these messages over chan.h's TLS
 * connection.  Every message starts with a 24-byte header, little
 * endian:
 *
 *	u32 magic	CVB_MAGIC
 *	u16 version	CVB_VERSION_MIN..CVB_VERSION_MAX (HELLO: always 1)
 *	u16 type	enum cvb_msg_type, | CVB_REPLY for the reply
 *	u32 length	whole message, header included, <= CVB_MSG_MAX
 *	s32 status	replies: 0 or -errno (Linux numbers, >= -4095);
 *			requests: 0
 *	u64 req_id	chosen by the sender of the request, echoed in the
 *			reply; each side numbers its own requests
 *
 * Requests go both ways: a node sends metadata and I/O requests, the
 * coordinator sends RECALL; PING goes both ways.  A reply whose status
 * is not 0 has no body.  Bodies are the fields of the structs below in
 * order: integers little endian, names and paths as u16 length then the
 * bytes (no NUL), payloads as u32 length then the bytes, lists as u32
 * count then the entries.  Byte order is converted only in the cursor
 * (lockmgr/proto/lm_cur.h, shared with lockd's codecs).
 *
 * Decoders are total: any input decodes into a fully set struct or is
 * rejected with -EBADMSG (truncated, trailing bytes, a length or count
 * over the limits below, a name with NUL or '/', an empty name, bad
 * values), -EPROTO (bad magic, unknown type) or -EPROTONOSUPPORT (a
 * version this build does not speak).  They never read outside the
 * input.  The format is canonical: encode(decode(x)) == x.
 *
 * Buffers: payload pointers of a decoded message (data, value, list)
 * point into the buffer given to the decoder, which must outlive them;
 * the encoder copies them.  Pure: no I/O, no allocation, no clock.
 */
#ifndef CSVFS_BLOCK_BMSG_H
#define CSVFS_BLOCK_BMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#define CVB_MAGIC	  0x4d425643u /* "CVBM" */
#define CVB_HDR_LEN	  24
#define CVB_VERSION_MIN	  1
#define CVB_VERSION_MAX	  1
#define CVB_VERSION_HELLO 1 /* HELLO's layout is frozen at this one */

#define CVB_NAME_MAX	255	   /* entry and xattr names, bytes */
#define CVB_PATH_MAX	4095	   /* symlink targets, bytes */
#define CVB_XATTR_MAX	65536	   /* xattr values and lists, bytes */
#define CVB_EXTENTS_MAX 256	   /* extents per map reply */
#define CVB_DIRENTS_MAX 64	   /* entries per readdir reply */
#define CVB_DATA_MAX	(1u << 20) /* redirected I/O payload, bytes */
#define CVB_MSG_MAX	(CVB_DATA_MAX + 4096) /* no message is longer */
#define CVB_UUID_LEN	16

#define CVB_REPLY 0x8000u

enum cvb_msg_type {
	CVB_HELLO = 1, /* node -> coordinator, first message */
	CVB_PING = 2,  /* keep-alive, both ways */

	CVB_LOOKUP = 10,
	CVB_GETATTR = 11,
	CVB_SETATTR = 12,
	CVB_MKNOD = 13,
	CVB_MKDIR = 14,
	CVB_SYMLINK = 15,
	CVB_LINK = 16,
	CVB_UNLINK = 17,
	CVB_RMDIR = 18,
	CVB_RENAME = 19,
	CVB_READLINK = 20,
	CVB_READDIR = 21,
	CVB_STATFS = 22,

	CVB_GETXATTR = 30,
	CVB_SETXATTR = 31,
	CVB_LISTXATTR = 32,
	CVB_REMOVEXATTR = 33,

	CVB_OPEN_REF = 40,
	CVB_CLOSE_REF = 41,
	CVB_MAP = 42,
	CVB_ALLOC = 43,
	CVB_FALLOCATE = 44,
	CVB_SET_WRITTEN = 45,
	CVB_COMMIT = 46, /* cvb_meta_commit: fsync of anything */

	CVB_READ = 50, /* redirected I/O */
	CVB_WRITE = 51,

	CVB_RECALL = 60, /* coordinator -> node: drop the map of ino */
};

struct cvb_time {
	int64_t sec;
	uint32_t nsec; /* < 1000000000 */
};

/* struct stat as it travels (cvb_attr_from_stat / cvb_attr_to_stat). */
struct cvb_attr {
	uint64_t ino;
	uint32_t mode;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint64_t rdev;
	uint64_t size;
	uint64_t blocks; /* 512-byte units */
	uint32_t blksize;
	struct cvb_time atime, mtime, ctime;
};

struct cvb_statfs {
	uint64_t bsize, frsize, blocks, bfree, bavail;
	uint64_t files, ffree, favail, fsid, flag;
	uint32_t namemax;
};

struct cvb_wcred {
	uint32_t uid;
	uint32_t gid;
};

struct cvb_wextent { /* struct cvb_extent of meta.h */
	uint64_t off;
	uint64_t len;
	uint64_t phys;
};

struct cvb_dirent {
	uint64_t ino;
	uint64_t next; /* cookie that continues after this entry */
	uint8_t dtype; /* DT_*, < 16 */
	char name[CVB_NAME_MAX + 1];
};

/* Requests. */
struct cvb_q_hello {
	uint32_t node_id;	       /* corosync node id of the sender */
	uint16_t proto_min, proto_max; /* versions the sender speaks */
	uint8_t volume[CVB_UUID_LEN];  /* the volume it means */
};
struct cvb_q_ino { /* getattr, readlink, open_ref, close_ref */
	uint64_t ino;
};
struct cvb_q_name { /* lookup, unlink, rmdir */
	uint64_t dir;
	char name[CVB_NAME_MAX + 1];
};
struct cvb_q_setattr {
	uint64_t ino;
	uint32_t to_set; /* CV_SET_* */
	struct cvb_attr attr;
};
struct cvb_q_create { /* mknod, mkdir (rdev 0), symlink (target) */
	uint64_t dir;
	char name[CVB_NAME_MAX + 1];
	uint32_t mode;
	uint64_t rdev;
	struct cvb_wcred cred;
	char target[CVB_PATH_MAX + 1]; /* symlink only */
};
struct cvb_q_link {
	uint64_t ino, newdir;
	char newname[CVB_NAME_MAX + 1];
};
struct cvb_q_rename {
	uint64_t dir;
	char name[CVB_NAME_MAX + 1];
	uint64_t newdir;
	char newname[CVB_NAME_MAX + 1];
	uint32_t flags; /* 0, RENAME_NOREPLACE or RENAME_EXCHANGE */
};
struct cvb_q_readdir {
	uint64_t dir, cookie;
	uint32_t max; /* 1..CVB_DIRENTS_MAX */
};
struct cvb_q_xattr { /* getxattr, setxattr, listxattr, removexattr */
	uint64_t ino;
	char name[CVB_NAME_MAX + 1]; /* not for listxattr */
	uint32_t size;		     /* get/list: caller's buffer (0: ask) */
	uint32_t flags;		     /* set: XATTR_CREATE / XATTR_REPLACE */
	uint32_t len;		     /* set: value bytes */
	const uint8_t *value;	     /* set */
};
struct cvb_q_map { /* map, alloc */
	uint64_t ino, off, len;
	uint32_t max; /* 1..CVB_EXTENTS_MAX */
};
struct cvb_q_fallocate {
	uint64_t ino;
	uint32_t mode;
	uint64_t off, len;
};
struct cvb_q_written {
	uint64_t ino, size;
	struct cvb_time mtime;
};
struct cvb_q_io { /* read, write */
	uint64_t ino;
	uint64_t gen;	     /* map generation the sender mapped with */
	uint64_t off;	     /* file offset */
	uint64_t phys;	     /* LUN offset from that map, 0: a hole */
	uint32_t len;	     /* <= CVB_DATA_MAX */
	const uint8_t *data; /* write only */
};
struct cvb_q_recall {
	uint64_t ino, gen;
};

/* Replies. */
struct cvb_r_hello {
	uint16_t version; /* chosen for the connection */
	uint32_t node_id; /* the coordinator's */
};
struct cvb_r_readlink {
	char target[CVB_PATH_MAX + 1];
};
struct cvb_r_readdir {
	uint32_t n;
	uint8_t eof;
	struct cvb_dirent ent[CVB_DIRENTS_MAX];
};
struct cvb_r_xattr {   /* getxattr, listxattr */
	uint32_t size; /* the attribute's (list's) whole size */
	uint32_t len;  /* bytes returned: 0 (size asked) or size */
	const uint8_t *value;
};
struct cvb_r_map {
	uint64_t gen;
	uint32_t n;
	struct cvb_wextent ext[CVB_EXTENTS_MAX];
};
struct cvb_r_io {
	uint32_t len; /* read: bytes (short at EOF); write: bytes written */
	const uint8_t *data; /* read only */
};

struct cvb_msg {
	uint16_t type;	  /* enum cvb_msg_type, | CVB_REPLY */
	uint16_t version; /* set by the decoder; encoder: 0 = MAX */
	int32_t status;	  /* replies */
	uint64_t req_id;
	union {
		struct cvb_q_hello hello;
		uint64_t ping;
		struct cvb_q_ino ino;
		struct cvb_q_name name;
		struct cvb_q_setattr setattr;
		struct cvb_q_create create;
		struct cvb_q_link link;
		struct cvb_q_rename rename;
		struct cvb_q_readdir readdir;
		struct cvb_q_xattr xattr;
		struct cvb_q_map map;
		struct cvb_q_fallocate fallocate;
		struct cvb_q_written written;
		struct cvb_q_io io;
		struct cvb_q_recall recall;

		struct cvb_r_hello r_hello;
		uint64_t r_ping;
		struct cvb_attr r_attr; /* lookup .. link */
		struct cvb_r_readlink r_readlink;
		struct cvb_r_readdir r_readdir;
		struct cvb_statfs r_statfs;
		struct cvb_r_xattr r_xattr;
		struct cvb_r_map r_map;
		struct cvb_r_io r_io;
	} u;
};

/*
 * Encode m into buf (cap bytes); returns the length or -EINVAL (a value
 * a decoder would refuse, unknown type) or -ENOSPC.  cvb_msg_bound(m)
 * bytes are always enough.
 */
int cvb_msg_encode(const struct cvb_msg *m, uint8_t *buf, size_t cap);
size_t cvb_msg_bound(const struct cvb_msg *m);
/* Decode a whole message of len bytes (see above for errors). */
int cvb_msg_decode(const uint8_t *buf, size_t len, struct cvb_msg *m);
/*
 * From the first CVB_HDR_LEN bytes of a stream: the whole message's
 * length in *msglen, or -EPROTO (not our magic) or -EBADMSG (a length
 * under the header or over CVB_MSG_MAX).  For framing a byte stream.
 */
int cvb_msg_frame(const uint8_t *hdr, size_t len, size_t *msglen);
/* The req_id and type of a framed message (no other check). */
void cvb_msg_peek(const uint8_t *hdr, uint64_t *req_id, uint16_t *type);

const char *cvb_msg_type_name(unsigned type); /* "unknown" if so */
bool cvb_msg_type_known(unsigned type);	      /* without CVB_REPLY */

void cvb_attr_from_stat(struct cvb_attr *a, const struct stat *st);
void cvb_attr_to_stat(const struct cvb_attr *a, struct stat *st);
void cvb_statfs_from(struct cvb_statfs *w, const struct statvfs *st);
void cvb_statfs_to(const struct cvb_statfs *w, struct statvfs *st);

#endif /* CSVFS_BLOCK_BMSG_H */
