#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-nfs-verifier4.sh - t-nfs-verifier.sh over NFSv4 (version=4): fsync
# after a server restart rewrites the UNSTABLE writes the server lost.
# Exits 77 with the reason if it cannot run here.
CV_NFS_VERSION=4 exec "$(dirname "$0")/t-nfs-verifier.sh" "$@"
