// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * fuzz_smsg.c - libFuzzer target for the socket message decoder.
 *
 * lockd decodes whatever an authenticated local client sends; clients
 * decode lockd's replies and events.  Any input must be rejected with one
 * of the documented errors or decode, and what decodes must re-encode to
 * exactly the input bytes (the format is canonical; bytes, not structs,
 * are compared, so union padding does not matter).  struct lm_smsg is
 * large, hence static.
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
	static struct lm_smsg m;
	int rc, len;

	rc = lm_smsg_decode(data, size, &m);
	if (rc) {
		if (rc != -EBADMSG && rc != -EPROTO && rc != -EPROTONOSUPPORT)
			abort();
		return 0;
	}
	len = lm_smsg_encode(&m, out, sizeof(out));
	if (len < 0 || (size_t)len != size || memcmp(out, data, size))
		abort();
	(void)lm_smsg_type_name(m.type);
	if (m.type == LM_S_R_NODES)
		for (uint32_t i = 0; i < m.u.r_nodes.n; i++)
			(void)lm_node_state_name(m.u.r_nodes.e[i].state);
	if (m.type == LM_S_R_RESULT)
		(void)lm_strerror(m.u.r_result.status);
	return 0;
}
