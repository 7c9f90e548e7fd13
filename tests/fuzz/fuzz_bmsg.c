// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_bmsg.c - libFuzzer target for the coordinator channel's decoder
 * (csvfs/backends/block/bmsg.c).
 *
 * Messages come from other nodes (or anyone who got past TLS with a
 * stolen key); a decoder bug there crashes the coordinator of a volume.
 * Any input must be rejected with one of the documented errors or
 * decode, payload pointers inside the input; and since the format is
 * canonical, what decodes must encode again to exactly the input bytes.
 * The framing function must agree with the decoder on the length.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_payload(const uint8_t *p, uint32_t len, const uint8_t *data,
			  size_t size)
{
	if (len && (p < data || p + len > data + size))
		abort();
}

static void check_payloads(const struct cvb_msg *m, const uint8_t *data,
			   size_t size)
{
	unsigned type = m->type & ~CVB_REPLY;

	if (m->status)
		return;
	if (!(m->type & CVB_REPLY) && type == CVB_SETXATTR)
		check_payload(m->u.xattr.value, m->u.xattr.len, data, size);
	if (!(m->type & CVB_REPLY) && type == CVB_WRITE)
		check_payload(m->u.io.data, m->u.io.len, data, size);
	if (m->type & CVB_REPLY &&
	    (type == CVB_GETXATTR || type == CVB_LISTXATTR))
		check_payload(m->u.r_xattr.value, m->u.r_xattr.len, data, size);
	if (m->type & CVB_REPLY && type == CVB_READ)
		check_payload(m->u.r_io.data, m->u.r_io.len, data, size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cvb_msg m;
	static uint8_t *out;
	size_t framed;
	int rc, len;

	if (!out && !(out = malloc(CVB_MSG_MAX)))
		abort();
	rc = cvb_msg_decode(data, size, &m);
	if (rc) {
		if (rc != -EBADMSG && rc != -EPROTO && rc != -EPROTONOSUPPORT)
			abort();
		return 0;
	}
	if (cvb_msg_frame(data, size, &framed) || framed != size)
		abort();
	check_payloads(&m, data, size);
	len = cvb_msg_encode(&m, out, CVB_MSG_MAX);
	if (len < 0 || (size_t)len != size || memcmp(out, data, size))
		abort();
	if ((size_t)len > cvb_msg_bound(&m))
		abort();
	(void)cvb_msg_type_name(m.type);
	return 0;
}
