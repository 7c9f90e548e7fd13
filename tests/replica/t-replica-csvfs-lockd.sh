#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
# t-replica-csvfs.sh with a standalone csvfs-lockd: epochs, hand-offs.
CSVFS_REP_MODE=lockd exec "$(dirname "$0")/t-replica-csvfs.sh" "$@"
