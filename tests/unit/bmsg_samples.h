/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * bmsg_samples.h - one filled request and one filled reply of every
 * coordinator channel message type (bmsg.h), for the codec's unit test
 * and the fuzz target's seed corpus.  Payload pointers point into the
 * static sample_payload (up to CVB_DATA_MAX bytes).
 */
#ifndef CSVFS_TESTS_BMSG_SAMPLES_H
#define CSVFS_TESTS_BMSG_SAMPLES_H

#include <string.h>

#include "bmsg.h"

static const uint16_t sample_types[] = {
	CVB_HELLO,	 CVB_PING,	CVB_LOOKUP,	 CVB_GETATTR,
	CVB_SETATTR,	 CVB_MKNOD,	CVB_MKDIR,	 CVB_SYMLINK,
	CVB_LINK,	 CVB_UNLINK,	CVB_RMDIR,	 CVB_RENAME,
	CVB_READLINK,	 CVB_READDIR,	CVB_STATFS,	 CVB_GETXATTR,
	CVB_SETXATTR,	 CVB_LISTXATTR, CVB_REMOVEXATTR, CVB_OPEN_REF,
	CVB_CLOSE_REF,	 CVB_MAP,	CVB_ALLOC,	 CVB_FALLOCATE,
	CVB_SET_WRITTEN, CVB_COMMIT,	CVB_READ,	 CVB_WRITE,
	CVB_RECALL,
};
#define N_SAMPLE_TYPES (sizeof(sample_types) / sizeof(sample_types[0]))

static uint8_t sample_payload[CVB_DATA_MAX];

static void sample_fill_payload(void)
{
	for (size_t i = 0; i < sizeof(sample_payload); i++)
		sample_payload[i] = (uint8_t)(i * 7 + 3);
}

static void sample_attr(struct cvb_attr *a, uint64_t ino)
{
	a->ino = ino;
	a->mode = 0100644;
	a->nlink = 2;
	a->uid = 1000;
	a->gid = 100;
	a->rdev = 0x0801;
	a->size = 1ull << 40;
	a->blocks = 12345;
	a->blksize = 4096;
	a->atime = (struct cvb_time){ -5, 1 };
	a->mtime = (struct cvb_time){ 1700000000, 999999999 };
	a->ctime = (struct cvb_time){ 1700000001, 0 };
}

static void sample_request(uint16_t type, struct cvb_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	m->req_id = 0x1122334455667788ull;
	switch (type) {
	case CVB_HELLO:
		m->u.hello.node_id = 3;
		m->u.hello.proto_min = 1;
		m->u.hello.proto_max = 1;
		memset(m->u.hello.volume, 0xab, CVB_UUID_LEN);
		break;
	case CVB_PING:
		m->u.ping = 42;
		break;
	case CVB_GETATTR:
	case CVB_READLINK:
	case CVB_OPEN_REF:
	case CVB_CLOSE_REF:
		m->u.ino.ino = 12;
		break;
	case CVB_LOOKUP:
	case CVB_UNLINK:
	case CVB_RMDIR:
		m->u.name.dir = 2;
		strcpy(m->u.name.name, "vm-disk.qcow2");
		break;
	case CVB_SETATTR:
		m->u.setattr.ino = 13;
		m->u.setattr.to_set = 0x3f;
		sample_attr(&m->u.setattr.attr, 13);
		break;
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
		m->u.create.dir = 2;
		memset(m->u.create.name, 'n', CVB_NAME_MAX);
		m->u.create.mode = type == CVB_MKDIR ? 040755 : 0100600;
		m->u.create.rdev = type == CVB_MKNOD ? 0x0103 : 0;
		m->u.create.cred = (struct cvb_wcred){ 1001, 1002 };
		if (type == CVB_SYMLINK)
			memset(m->u.create.target, 't', CVB_PATH_MAX);
		break;
	case CVB_LINK:
		m->u.link.ino = 14;
		m->u.link.newdir = 15;
		strcpy(m->u.link.newname, "hard");
		break;
	case CVB_RENAME:
		m->u.rename.dir = 2;
		strcpy(m->u.rename.name, "a");
		m->u.rename.newdir = 16;
		strcpy(m->u.rename.newname, "b");
		m->u.rename.flags = 1;
		break;
	case CVB_READDIR:
		m->u.readdir.dir = 2;
		m->u.readdir.cookie = 77;
		m->u.readdir.max = CVB_DIRENTS_MAX;
		break;
	case CVB_GETXATTR:
	case CVB_SETXATTR:
	case CVB_LISTXATTR:
	case CVB_REMOVEXATTR:
		m->u.xattr.ino = 17;
		if (type != CVB_LISTXATTR)
			strcpy(m->u.xattr.name, "user.csvfs.test");
		if (type == CVB_GETXATTR || type == CVB_LISTXATTR)
			m->u.xattr.size = CVB_XATTR_MAX;
		if (type == CVB_SETXATTR) {
			m->u.xattr.flags = 1;
			m->u.xattr.len = CVB_XATTR_MAX;
			m->u.xattr.value = sample_payload;
		}
		break;
	case CVB_MAP:
	case CVB_ALLOC:
		m->u.map = (struct cvb_q_map){ 18, 1 << 20, 64 << 20,
					       CVB_EXTENTS_MAX };
		break;
	case CVB_FALLOCATE:
		m->u.fallocate = (struct cvb_q_fallocate){ 19, 3, 4096, 8192 };
		break;
	case CVB_SET_WRITTEN:
		m->u.written.ino = 20;
		m->u.written.size = 1ull << 33;
		m->u.written.mtime = (struct cvb_time){ 1700000002, 5 };
		break;
	case CVB_READ:
	case CVB_WRITE:
		m->u.io = (struct cvb_q_io){ 21,	   9,
					     1 << 20,	   1ull << 35,
					     CVB_DATA_MAX, NULL };
		if (type == CVB_WRITE)
			m->u.io.data = sample_payload;
		break;
	case CVB_RECALL:
		m->u.recall.ino = 22;
		m->u.recall.gen = 23;
		break;
	default:
		break;
	}
}

static void sample_reply(uint16_t type, struct cvb_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->type = type | CVB_REPLY;
	m->req_id = 99;
	switch (type) {
	case CVB_HELLO:
		m->u.r_hello.version = 1;
		m->u.r_hello.node_id = 1;
		break;
	case CVB_PING:
		m->u.r_ping = 42;
		break;
	case CVB_LOOKUP:
	case CVB_GETATTR:
	case CVB_SETATTR:
	case CVB_MKNOD:
	case CVB_MKDIR:
	case CVB_SYMLINK:
	case CVB_LINK:
		sample_attr(&m->u.r_attr, 30);
		break;
	case CVB_READLINK:
		memset(m->u.r_readlink.target, 'l', CVB_PATH_MAX);
		break;
	case CVB_READDIR:
		m->u.r_readdir.n = CVB_DIRENTS_MAX;
		m->u.r_readdir.eof = 1;
		for (unsigned i = 0; i < CVB_DIRENTS_MAX; i++) {
			struct cvb_dirent *e = &m->u.r_readdir.ent[i];

			e->ino = 100 + i;
			e->next = 200 + i;
			e->dtype = (uint8_t)(i % 16);
			memset(e->name, 'a' + (int)(i % 26), CVB_NAME_MAX);
		}
		break;
	case CVB_STATFS:
		m->u.r_statfs =
			(struct cvb_statfs){ 4096,    4096, 1 << 30, 1 << 29,
					     1 << 28, 1000, 900,     800,
					     0xfeed,  0,    255 };
		break;
	case CVB_GETXATTR:
	case CVB_LISTXATTR:
		m->u.r_xattr.size = CVB_XATTR_MAX;
		m->u.r_xattr.len = CVB_XATTR_MAX;
		m->u.r_xattr.value = sample_payload;
		break;
	case CVB_MAP:
	case CVB_ALLOC:
		m->u.r_map.gen = 7;
		m->u.r_map.n = CVB_EXTENTS_MAX;
		for (unsigned i = 0; i < CVB_EXTENTS_MAX; i++)
			m->u.r_map.ext[i] = (struct cvb_wextent){
				(uint64_t)i << 20, 1 << 20,
				i % 3 ? (uint64_t)(i + 1000) << 20 : 0
			};
		break;
	case CVB_READ:
		m->u.r_io.len = CVB_DATA_MAX;
		m->u.r_io.data = sample_payload;
		break;
	case CVB_WRITE:
		m->u.r_io.len = CVB_DATA_MAX;
		break;
	default:
		break;
	}
}

#endif /* CSVFS_TESTS_BMSG_SAMPLES_H */
