#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-iscsi-posix.sh - t-block-posix.sh on an iSCSI LUN: a private tgtd
# (tgt.sh) serves a 1 GiB file as LUN 1, csvfs mounts it as
# iscsi://127.0.0.1:PORT/IQN/1 through libiscsi, and every check of the
# block suite runs on it, ending with `e2fsck -fn` of the backing file.
# Bad sources first: a wrong IQN, a LUN that does not exist, an
# unreachable portal, each refused with a sentence that says which.
# Needs root, /dev/fuse and tgt; exits 77 with the reason otherwise.

set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/tgt.sh"
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../.." && pwd)}
ADMIN=$top_builddir/tools/csvfs-admin
CSVFS=$top_builddir/csvfs/csvfs
[ "$(id -u)" = 0 ] || _notrun "needs root"
[ -x "$ADMIN" ] || _notrun "$ADMIN not built"
"$ADMIN" format iscsi://127.0.0.1/x/1 2>&1 | grep -q 'built without' &&
	_notrun "csvfs built without iSCSI (libiscsi-dev)"

D=$(mktemp -d /tmp/csvfs-iscsi.XXXXXX)
cleanup() {
	tgt_stop
	[ "${CV_KEEP:-0}" = 1 ] && echo "# kept $D" || rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 99' INT TERM
tgt_start "$D"
truncate -s 1G "$D/lun.img"
tgt_lun 1 iqn.2026-01.org.csvfs.test:posix "$D/lun.img" ||
	{ echo "Bail out! tgtadm could not make the target"; exit 99; }
URL=$(tgt_url 1)
BASE=iscsi://127.0.0.1:$TGT_PORT

refused() { # WHAT SOURCE PATTERN
	"$ADMIN" format "$2" >"$D/err" 2>&1
	local rc=$?
	t "$1 refused ($(head -1 "$D/err"))" \
		bash -c "[ $rc != 0 ] && grep -q '$3' '$D/err'"
}
refused "a wrong IQN" "$BASE/iqn.2026-01.org.csvfs.test:nope/1" \
	'Target not found'
refused "LUN 7, which does not exist" \
	"$BASE/iqn.2026-01.org.csvfs.test:posix/7" 'LOGICAL_UNIT_NOT_SUPPORTED'
refused "LUN 0, the target's controller" \
	"$BASE/iqn.2026-01.org.csvfs.test:posix/0" 'not a disk'
refused "an unreachable portal" "iscsi://127.0.0.1:1/iqn.x:y/1" \
	'unreachable: Connection refused'
refused "a source without a LUN" "$BASE/iqn.2026-01.org.csvfs.test:posix" \
	'iscsi://portal\[:port\]/target-iqn/lun'
W2=$(mktemp -d /tmp/csvfs-iscsi-m.XXXXXX)
"$CSVFS" "$BASE/iqn.2026-01.org.csvfs.test:nope/1" "$W2" -o lockd=none \
	>"$D/err" 2>&1
rc=$?
rmdir "$W2"
t "csvfs on a wrong IQN exits 1 naming it ($(head -1 "$D/err"))" \
	bash -c "[ $rc = 1 ] && grep -q 'nope' '$D/err'"

CV_BLOCK_SOURCE=$URL CV_BLOCK_IMG=$D/lun.img \
	"$(dirname "$0")/t-block-posix.sh"
rc=$?
t "t-block-posix.sh over iSCSI passed" test $rc = 0
echo "# $PASS passed, $FAIL failed"
[ $FAIL = 0 ] || exit 1
exit 0
