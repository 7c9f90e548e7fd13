#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-ownership.sh - the 3-node ownership scenario of
# cluster/t-csvfs-ownership.sh with every node on the nfs backend: the
# shared backing directory is exported by nfs-ganesha in the hub network
# namespace and each node mounts nfs://HUB/DIR (CV_BACKEND=nfs in
# cluster/csvfs.sh).  Exits 77 with the reason if it cannot run here.
CV_BACKEND=nfs exec "$(dirname "$0")/../cluster/t-csvfs-ownership.sh" "$@"
