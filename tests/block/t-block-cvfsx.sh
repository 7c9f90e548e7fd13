#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-block-cvfsx.sh - tests/posix/t-cvfsx.sh (random buffered, mapped,
# O_DIRECT, truncate and fallocate operations checked against a model,
# and mapped writes against ownership and a lost lease) on a block volume
# over an image file, this node its coordinator; e2fsck -fn of the image
# clean at the end.  Exits 77 with the reason if it cannot run here.
CV_BACKEND=block exec "$(dirname "$0")/../posix/t-cvfsx.sh" "$@"
