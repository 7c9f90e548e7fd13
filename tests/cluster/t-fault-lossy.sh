#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-fault-handoffs with 20% packet loss (tc netem) on every node's link
# during the hand-offs, on 10 files.  Skipped (77, with the reason) where
# the kernel has no sch_netem.
CV_NETEM_LOSS=${CV_NETEM_LOSS:-20} CV_FILES=${CV_FILES:-10} \
	exec bash "$(dirname "$0")/t-fault-handoffs.sh" "$@"
