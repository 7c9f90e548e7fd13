// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_cmsg.c - libFuzzer target for the cluster message decoder.
 *
 * Cluster messages come from other nodes over CPG; a decoder bug there
 * is a cluster-wide crash.  Any input must be rejected with one of the
 * documented errors or decode; and since the format is canonical, what
 * decodes must re-encode to exactly the input bytes (comparing bytes
 * rather than structs avoids union padding).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lm_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[LM_MSG_MAX];
	struct lm_cmsg m;
	int rc, len;

	rc = lm_cmsg_decode(data, size, &m);
	if (rc) {
		if (rc != -EBADMSG && rc != -EPROTO && rc != -EPROTONOSUPPORT)
			abort();
		return 0;
	}
	if (m.type == LM_C_SYNC_DATA &&
	    (m.u.sync_data.data < data ||
	     m.u.sync_data.data + m.u.sync_data.len > data + size))
		abort();
	len = lm_cmsg_encode(&m, out, sizeof(out));
	if (len < 0 || (size_t)len != size || memcmp(out, data, size))
		abort();
	(void)lm_cmsg_type_name(m.type);
	return 0;
}
