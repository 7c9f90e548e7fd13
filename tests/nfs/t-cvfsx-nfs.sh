#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-cvfsx-nfs.sh - t-cvfsx.sh (random buffered, mapped, O_DIRECT,
# truncate and fallocate operations checked against a model, and mapped
# writes against ownership and a lost lease) on the nfs backend, against a
# private nfs-ganesha (NFSv3; CV_NFS_VERSION=4 for v4).  Exits 77 with
# the reason if it cannot run here.
CV_BACKEND=nfs exec "$(dirname "$0")/../posix/t-cvfsx.sh" "$@"
