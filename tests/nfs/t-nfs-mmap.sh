#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-csvfs-mmap.sh (shared mappings on three nodes across an ownership
# hand-off: dirty mapped pages written back by the revoke, no stale
# pages) with every node on the nfs backend: nfs-ganesha in the hub
# namespace exports the shared directory and each node mounts nfs://HUB/DIR
# (CV_BACKEND=nfs in cluster/csvfs.sh).  Exits 77 with the reason if it
# cannot run here.
CV_BACKEND=nfs exec "$(dirname "$0")/../cluster/t-csvfs-mmap.sh" "$@"
