// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_rproto.c - libFuzzer target for the replication protocol's
 * decoder (replica/proto.c).
 *
 * csvfs-replicad decodes what any certified primary sends, and the
 * primary decodes the replica's replies; a decoder bug crashes either.
 * Any input must be rejected with one of the documented errors or
 * decode, payload pointers inside the input, lists inside the message;
 * and since the format is canonical, what decodes must encode again to
 * exactly the input bytes, within cvr_msg_bound().  The framing function
 * must agree with the decoder on the length.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cvr_msg *m;
	static uint8_t *out;
	size_t framed;
	int rc, len;

	if (!out && !(out = malloc(CVR_MSG_MAX)))
		abort();
	if (!m && !(m = calloc(1, sizeof(*m))))
		abort();
	rc = cvr_msg_decode(data, size, m);
	if (rc) {
		if (rc != -EBADMSG && rc != -EPROTO && rc != -EPROTONOSUPPORT)
			abort();
		return 0;
	}
	if (cvr_msg_frame(data, size, &framed) || framed != size)
		abort();
	if (m->type == CVR_EXTENT &&
	    (m->u.op.data < data || m->u.op.data + m->u.op.len > data + size))
		abort();
	len = cvr_msg_encode(m, out, CVR_MSG_MAX);
	if (len < 0 || (size_t)len != size || memcmp(out, data, size))
		abort();
	if ((size_t)len > cvr_msg_bound(m))
		abort();
	(void)cvr_msg_type_name(m->type);
	return 0;
}
