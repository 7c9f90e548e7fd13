/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lm_cur.h - the cursor every csvfs-lockd codec walks with (private).
 *
 * A walker describes a layout once and works in both directions: with
 * out set it writes each field, with in set it reads it, so encoder and
 * decoder cannot drift apart.  The first overrun is remembered in err
 * (-ENOSPC writing, -EBADMSG reading) and turns every later step into a
 * no-op, so walkers need not check after each field; a field not read
 * keeps its value.  Integers are little endian; this header is the one
 * place that converts them.  Used by the message codecs (lm_proto.c) and
 * the state-transfer snapshot (lockmgr/core/lm_snap.c).
 */
#ifndef CSVFS_LM_CUR_H
#define CSVFS_LM_CUR_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct lm_cur {
	uint8_t *out;
	const uint8_t *in;
	size_t cap;	  /* bytes at out or in */
	size_t off;	  /* next byte */
	int err;
	unsigned version; /* messages: walkers add fields by it */
};

static inline void lm_put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t lm_get_le(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static inline bool cur_enc(const struct lm_cur *c)
{
	return c->out != NULL;
}

static inline size_t cur_left(const struct lm_cur *c)
{
	return c->cap - c->off;
}

/* Reserve n bytes at the cursor; false (and err set) if they do not fit. */
static inline bool cur_take(struct lm_cur *c, size_t n, size_t *at)
{
	if (c->err)
		return false;
	if (n > cur_left(c)) {
		c->err = cur_enc(c) ? -ENOSPC : -EBADMSG;
		return false;
	}
	*at = c->off;
	c->off += n;
	return true;
}

/* An unsigned integer of n bytes.  *v is only written when decoding. */
static inline void x_uint(struct lm_cur *c, uint64_t *v, size_t n)
{
	size_t at;

	if (!cur_take(c, n, &at))
		return;
	if (cur_enc(c))
		lm_put_le(c->out + at, *v, n);
	else
		*v = lm_get_le(c->in + at, n);
}

#define LM_X_UINT(name, type, n)                                               \
	static inline void name(struct lm_cur *c, type *v)                     \
	{                                                                      \
		uint64_t t = (uint64_t)*v;                                     \
		x_uint(c, &t, n);                                              \
		if (!cur_enc(c))                                               \
			*v = (type)t;                                          \
	}
LM_X_UINT(x_u8, uint8_t, 1)
LM_X_UINT(x_u16, uint16_t, 2)
LM_X_UINT(x_u32, uint32_t, 4)
LM_X_UINT(x_u64, uint64_t, 8)
/* Signed fields travel as their two's complement bit pattern. */
LM_X_UINT(x_s32, int32_t, 4)
LM_X_UINT(x_s64, int64_t, 8)
#undef LM_X_UINT

/* Raw bytes of a fixed-size array. */
static inline void x_raw(struct lm_cur *c, void *p, size_t n)
{
	size_t at;

	if (!cur_take(c, n, &at))
		return;
	if (cur_enc(c))
		memcpy(c->out + at, p, n);
	else
		memcpy(p, c->in + at, n);
}

#endif /* CSVFS_LM_CUR_H */
