/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * json.h - a small streaming JSON writer for the csvfs tools.
 *
 * Output is pretty-printed (two-space indent) and always valid: strings
 * are escaped per RFC 8259 (quote, backslash, control characters as
 * \uXXXX; bytes >= 0x80 are passed through, so UTF-8 stays UTF-8).  The
 * writer tracks nesting itself, so callers only say what comes next:
 *
 *	json_obj_begin(j);
 *	json_key(j, "node"); json_str(j, "n1");
 *	json_obj_end(j);
 *
 * Not thread-safe: one writer per output stream.
 */
#ifndef CSVFS_JSON_H
#define CSVFS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH]; /* no element yet at this depth */
	bool after_key;		    /* a key was written, value next */
};

void json_init(struct json *j, FILE *f);
void json_obj_begin(struct json *j);
void json_obj_end(struct json *j);
void json_arr_begin(struct json *j);
void json_arr_end(struct json *j);
void json_key(struct json *j, const char *key);
void json_str(struct json *j, const char *s); /* NULL writes null */
void json_int(struct json *j, int64_t v);
void json_uint(struct json *j, uint64_t v);
void json_bool(struct json *j, bool v);
void json_null(struct json *j);
/* Ends the document with a newline. */
void json_finish(struct json *j);

/* Convenience: key and value in one call. */
void json_kstr(struct json *j, const char *key, const char *s);
void json_kint(struct json *j, const char *key, int64_t v);
void json_kuint(struct json *j, const char *key, uint64_t v);
void json_kbool(struct json *j, const char *key, bool v);
void json_knull(struct json *j, const char *key);

#endif /* CSVFS_JSON_H */
