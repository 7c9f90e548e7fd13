// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * volume.c - what every backend shares: the text form of the volume record
 * (.csvfs/volume) and the creation of a volume on a SOURCE.
 *
 * cv_volume_format() is what both csvfs (first mount) and `csvfs-admin
 * format` use to give a backend its record, so the two cannot differ.
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
#include <sys/random.h>

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

int cv_volrec_new(struct cv_volrec *rec, const char *label)
{
	memset(rec, 0, sizeof(*rec));
	if (strlen(label) >= sizeof(rec->label) || strpbrk(label, "\n\r"))
		return -EINVAL;
	rec->format_version = CV_FORMAT_VERSION;
	if (getrandom(rec->uuid, sizeof(rec->uuid), 0) != sizeof(rec->uuid))
		return -EIO;
	/* RFC 4122 version 4 (random), variant 1 */
	rec->uuid[6] = (uint8_t)((rec->uuid[6] & 0x0f) | 0x40);
	rec->uuid[8] = (uint8_t)((rec->uuid[8] & 0x3f) | 0x80);
	snprintf(rec->label, sizeof(rec->label), "%s", label);
	return 0;
}

int cv_volume_format(const char *source, const char *label, bool force,
		     struct cv_volrec *rec, char *err, size_t errlen)
{
	const struct backend_ops *ops;
	struct backend be = { 0 };
	const char *rest;
	int rc;

	rc = backend_lookup(source, &ops, &rest, err, errlen);
	if (rc)
		return rc;
	rc = cv_volrec_new(rec, label);
	if (rc) {
		snprintf(err, errlen, "label '%s': at most %d characters, "
			 "one line", label, CV_LABEL_MAX - 1);
		return rc;
	}
	if (ops->mkfs) {
		rc = ops->mkfs(rest, label, force, err, errlen);
		if (rc)
			return rc;
	}
	rc = backend_open(&be, source, err, errlen);
	if (rc)
		return rc;
	rc = be.ops->vol_create(&be, rec);
	if (rc == -EEXIST || rc == -EUCLEAN)
		snprintf(err, errlen, "%s already holds a csvfs volume record "
			 "(%s/%s); nothing changed", source, CV_META_DIR,
			 CV_VOLREC_NAME);
	else if (rc && be.why[0])
		snprintf(err, errlen, "cannot create the volume record in "
			 "%s: %s", source, be.why);
	else if (rc)
		snprintf(err, errlen, "cannot create the volume record in "
			 "%s/%s: %s", source, CV_META_DIR, strerror(-rc));
	be.ops->destroy(&be);
	return rc;
}
