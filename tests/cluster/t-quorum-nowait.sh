#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# A node without quorum does not hang its writers:
#   n3 is cut off from n1 and n2 (its table is not quorate), and a file
#   that n3 does not own is written on n3 with O_DIRECT:
#   A. `timeout 2 dd ... oflag=direct`: SIGTERM ends dd within the bound
#      (csvfs honours the FUSE interrupt and cancels the acquire);
#   B. plain dd: fails with EIO after acquire_timeout (3 s here), and
#      csvfs's log names the file and the reason (not quorate);
#   C. after the heal the same write succeeds on n3.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_cmd iptables
require_csvfs
require_bin "$CV_LOCKD" "$CV_ADMIN"

CV_CSVFS_OPTS=acquire_timeout=3000
csvfs_setup
cluster_start 3
csvfs_mount_all 3

node_exec 1 dd if=/dev/zero of="$CV_MNT/vm.img" bs=64k count=16 \
	oflag=direct status=none || _fail "n1 cannot write"
fid=$(stat -c %i "$CV_BACKING/vm.img")

partition "3" "1 2"
_n3_not_quorate() { [ "$(status_field 3 .quorate)" = false ]; }
wait_for 20 _n3_not_quorate || _fail "n3's table stayed quorate"
log "n3 is not quorate: $(admin 3 status | grep -E '^quorum|^q\. source')"

# A. timeout 2 dd: ended by SIGTERM within the bound.
t=$(now_ms)
node_exec 3 timeout 2 dd if=/dev/zero of="$CV_MNT/vm.img" bs=4k count=1 \
	oflag=direct conv=notrunc status=none 2>"$CV_WORK/dd-a.err" &
p=$!
wait_for 6 _pid_gone "$p" || { kill -KILL "$p"; _fail "timeout 2 dd did not return within 6 s"; }
wait "$p"; rc=$?
el=$(( $(now_ms) - t ))
log "A: timeout 2 dd returned after $el ms (rc $rc: $(cat "$CV_WORK/dd-a.err"))"
[ "$rc" != 0 ] || _fail "A: dd wrote without quorum"
[ "$el" -lt 4000 ] || _fail "A: SIGTERM took $el ms to end dd"

# B. plain dd: EIO after acquire_timeout, a log line naming file and reason.
t=$(now_ms)
node_exec 3 timeout 30 dd if=/dev/zero of="$CV_MNT/vm.img" bs=4k count=1 \
	oflag=direct conv=notrunc status=none 2>"$CV_WORK/dd-b.err"
rc=$?
el=$(( $(now_ms) - t ))
log "B: dd returned after $el ms (rc $rc: $(cat "$CV_WORK/dd-b.err"))"
[ "$rc" = 1 ] || _fail "B: dd did not fail (rc $rc)"
grep -q 'Input/output error' "$CV_WORK/dd-b.err" || _fail "B: not EIO"
[ "$el" -ge 2900 ] && [ "$el" -lt 8000 ] || _fail "B: EIO after $el ms, not about 3 s"
grep -E "file $fid: .*(no write ownership|refused)" "$(ndir 3)/csvfs.log" |
	grep -q 'not quorate' ||
	_fail "B: csvfs's log does not name file $fid and the reason: $(tail -n 5 "$(ndir 3)/csvfs.log")"
log "B: $(grep -E "file $fid: no write ownership" "$(ndir 3)/csvfs.log" | tail -n 1)"

# C. quorum back: the write works.
heal
cluster_wait_ready 3
node_exec 3 timeout 30 dd if=/dev/zero of="$CV_MNT/vm.img" bs=4k count=1 \
	oflag=direct conv=notrunc status=none || _fail "C: n3 cannot write after the heal"
assert_tables_identical
_pass
