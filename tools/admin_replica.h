/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * admin_replica.h - csvfs-admin replica: enable, disable, status and
 * metrics of asynchronous replication, through the mounted files'
 * user.csvfs.replica attribute (csvfs answers it; doc/design.md §3.9).
 */
#ifndef CSVFS_TOOLS_ADMIN_REPLICA_H
#define CSVFS_TOOLS_ADMIN_REPLICA_H

#include <stdbool.h>

#include "json.h"

/* Options of "replica enable" (NULL: not given). */
struct admin_replica_opts {
	const char *group, *target, *interval, *rpo, *hook;
	const char *ca, *cert, *key;
};

/* argv: the subcommand and its paths.  Returns the exit status. */
int admin_replica(const struct admin_replica_opts *o, bool json, struct json *j,
		  int argc, char **argv);

/* "30", "30s", "5m", "2h", "1d" in seconds, or -1. */
long admin_duration(const char *s);

#endif /* CSVFS_TOOLS_ADMIN_REPLICA_H */
