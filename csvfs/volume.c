// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * volume.c - what every backend shares: the text form of the volume record
 * (.csvfs/volume) and the parsing of a mount SOURCE into a backend.
 *
 * The record is a small text file so that an administrator can read it:
 *
 *	csvfs-volume
 *	format=1
 *	uuid=6f1c...-...
 *	label=vmstore
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "volume.h"

void cv_uuid_unparse(const uint8_t uuid[16], char out[CV_UUID_STR_LEN])
{
	static const char hex[] = "0123456789abcdef";
	char *p = out;

	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[uuid[i] >> 4];
		*p++ = hex[uuid[i] & 15];
	}
	*p = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cv_uuid_parse(const char *s, uint8_t uuid[16])
{
	int i = 0;

	while (i < 16) {
		int hi, lo;

		if ((i == 4 || i == 6 || i == 8 || i == 10) && *s == '-')
			s++;
		hi = hexval(s[0]);
		lo = hi < 0 ? -1 : hexval(s[1]);
		if (lo < 0)
			return -EINVAL;
		uuid[i++] = (uint8_t)(hi << 4 | lo);
		s += 2;
	}
	return *s ? -EINVAL : 0;
}

int cv_volrec_format(const struct cv_volrec *rec, char *buf, size_t cap)
{
	char u[CV_UUID_STR_LEN];
	int n;

	if (strpbrk(rec->label, "\n\r"))
		return -EINVAL;
	cv_uuid_unparse(rec->uuid, u);
	n = snprintf(buf, cap, "csvfs-volume\nformat=%u\nuuid=%s\nlabel=%s\n",
		     rec->format_version, u, rec->label);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	return n;
}

int cv_volrec_parse(const char *buf, struct cv_volrec *rec)
{
	const char *p = buf;
	bool have_uuid = false, have_fmt = false;

	memset(rec, 0, sizeof(*rec));
	if (strncmp(p, "csvfs-volume\n", 13))
		return -EUCLEAN;
	p += 13;
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[160];

		if (len >= sizeof(line))
			return -EUCLEAN;
		memcpy(line, p, len);
		line[len] = '\0';
		if (!strncmp(line, "format=", 7)) {
			rec->format_version = (unsigned)strtoul(line + 7,
								NULL, 10);
			have_fmt = true;
		} else if (!strncmp(line, "uuid=", 5)) {
			if (cv_uuid_parse(line + 5, rec->uuid))
				return -EUCLEAN;
			have_uuid = true;
		} else if (!strncmp(line, "label=", 6)) {
			size_t l = strlen(line + 6);

			if (l >= sizeof(rec->label))
				return -EUCLEAN;
			memcpy(rec->label, line + 6, l + 1);
		}
		p += len + (eol ? 1 : 0);
	}
	return have_uuid && have_fmt ? 0 : -EUCLEAN;
}

int backend_parse_source(const char *source, const struct backend_ops **ops,
			 const char **rest)
{
	if (!strncmp(source, "nfs://", 6)) {
		*ops = &be_nfs_ops;
		*rest = source; /* libnfs parses the whole URL */
		return 0;
	}
	if (!strncmp(source, "block:", 6))
		return -EPROTONOSUPPORT;
	if (!strncmp(source, "dir:", 4))
		source += 4;
	if (source[0] != '/')
		return -EINVAL;
	*ops = &be_dir_ops;
	*rest = source;
	return 0;
}
