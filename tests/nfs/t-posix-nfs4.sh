#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-posix-nfs4.sh - t-posix-nfs.sh over NFSv4 (nfs://...?version=4): the
# same POSIX suite, "nfs" profile, start-up failures, archives and qemu
# images.  Exits 77 with the reason if it cannot run here.
CV_NFS_VERSION=4 exec "$(dirname "$0")/t-posix-nfs.sh" "$@"
