// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * cvmap.c - keep a file mapped MAP_SHARED and act on the mapping on
 * command, for the scenarios that check mapped I/O against ownership
 * (a lost lease, another node taking the file).
 *
 *	cvmap FILE LEN
 *
 * Opens FILE read-write, maps its first LEN bytes shared (the file must
 * be that long), prints "mapped", then reads commands from stdin, one a
 * line, and answers each with one line, flushed:
 *	w OFF TEXT	copy TEXT into the mapping at OFF (no msync): "ok"
 *	s		msync(MS_SYNC) of the whole mapping: "ok" or "error: ..."
 *	r OFF LEN	the LEN bytes at OFF in the mapping, as text ("." for
 *			bytes that are not printable)
 *	q		unmap, close, exit 0 ("bye")
 * Exit status: 0 after q or end of input, 1 if the file cannot be mapped,
 * 2 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static unsigned char *map;
static size_t maplen;

static void reply(const char *s)
{
	printf("%s\n", s);
	fflush(stdout);
}

static void cmd_write(char *arg)
{
	char *text;
	size_t off = strtoul(arg, &text, 0), n;

	while (*text == ' ')
		text++;
	n = strlen(text);
	if (off > maplen || n > maplen - off) {
		reply("error: outside the mapping");
		return;
	}
	memcpy(map + off, text, n);
	reply("ok");
}

static void cmd_read(char *arg)
{
	char *end;
	size_t off = strtoul(arg, &end, 0), n = strtoul(end, NULL, 0);

	if (off > maplen || n > maplen - off) {
		reply("error: outside the mapping");
		return;
	}
	for (size_t k = 0; k < n; k++) {
		unsigned char c = map[off + k];

		putchar(c >= 0x20 && c < 0x7f ? c : '.');
	}
	reply("");
}

static void cmd_sync(void)
{
	char msg[128];

	if (msync(map, maplen, MS_SYNC)) {
		snprintf(msg, sizeof(msg), "error: %s", strerror(errno));
		reply(msg);
	} else {
		reply("ok");
	}
}

int main(int argc, char **argv)
{
	char line[4096];
	int fd;

	if (argc != 3)
		return fprintf(stderr, "usage: cvmap FILE LEN\n"), 2;
	maplen = strtoul(argv[2], NULL, 0);
	fd = open(argv[1], O_RDWR);
	if (fd < 0 || !maplen) {
		fprintf(stderr, "cvmap: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	map = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		fprintf(stderr, "cvmap: mmap %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	reply("mapped");
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'w')
			cmd_write(line + 1);
		else if (line[0] == 'r')
			cmd_read(line + 1);
		else if (line[0] == 's')
			cmd_sync();
		else if (line[0] == 'q')
			break;
		else
			reply("error: unknown command");
	}
	munmap(map, maplen);
	close(fd);
	reply("bye");
	return 0;
}
