#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-iscsi-cvfsx.sh - tests/posix/t-cvfsx.sh on a block volume whose LUN
# is a 512 MiB file served by a private tgtd (tgt.sh) and reached as
# iscsi://127.0.0.1:PORT/IQN/1: random buffered, mapped and direct I/O
# against a model, then `e2fsck -fn` of the backing file.

set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/tgt.sh"
[ "$(id -u)" = 0 ] || _notrun "needs root"
D=$(mktemp -d /tmp/csvfs-iscsi.XXXXXX)
cleanup() {
	tgt_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $D" || rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
tgt_start "$D"
truncate -s 512M "$D/lun.img"
tgt_lun 1 iqn.2026-01.org.csvfs.test:cvfsx "$D/lun.img" ||
	{ echo "Bail out! tgtadm could not make the target"; exit 99; }
CV_BACKEND=block CV_BLOCK_SOURCE=$(tgt_url 1) CV_BLOCK_IMG=$D/lun.img \
	"$(dirname "$0")/../posix/t-cvfsx.sh" "$@"
