#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Ownership moving back and forth while a VM's direct I/O is in flight
# (the io_uring path, csvfs/aio.c): every revoke on n1 arrives with up to
# 32 asynchronous writes and 4 synchronous ones of n1 submitted and not
# yet complete, and must wait for them (doc/design.md §2.3: revoke = wait for
# in-flight writes + fsync + answer).
#   n1: fio, O_DIRECT, random 4 KiB writes over the first half of the
#       disk with a checksum in every block, then verified: libaio at
#       iodepth 32 over its first 4 MiB (QEMU aio=native), and 4 threads
#       of blocking pwrite, 1 MiB each, over the next 4 MiB (QEMU
#       aio=threads: their writes reach csvfs side by side); each part
#       written 64 times (or until 100 s);
#   n2: meanwhile writes the second half one 4 KiB block at a time with
#       O_DIRECT and fsync, each write taking ownership away from n1 (and
#       n1's next write takes it back);
# then: fio's verify passes on n1 (no write of n1 lost, torn or reordered
# by the hand-offs), n2 reads the same bytes as the backing file; n2's
# blocks are all
# there, on every node and in the backing file; no write failed (a
# poisoned handle would give EIO); no node reports ownership lost; the
# epoch grew by one per n2 write and by one more for at least half of
# them (n1 took the file back before n2's next write: fio pauses between
# its write and verify passes, so not before every one); owners and
# tables agree.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"

require_netns
require_corosync
require_csvfs
require_cmd fio
require_bin "$CV_LOCKD" "$CV_ADMIN"

csvfs_setup
cluster_start 3
csvfs_mount_all 3

F=vm-direct.img
case ",${CV_CSVFS_OPTS:-}," in
*,uring=on,*)
	for i in 1 2; do
		grep -q "FUSE requests: over io_uring" "$(ndir "$i")/csvfs.log" ||
			_fail "n$i: uring=on, but requests do not come over io_uring"
	done
	log "requests over io_uring on n1 and n2" ;;
esac
HALF=$(( 8 * 1024 * 1024 ))
NB=40 # n2's writes: hand-offs to n2, and as many back to n1

node_sh 1 "dd if=/dev/zero of=\$CSV/$F bs=1M count=16 oflag=direct conv=fsync status=none" ||
	_fail "n1: creating $F failed"

FIO="fio --filename=\$CSV/$F --bs=4k --direct=1 --verify=crc32c \
	--group_reporting --verify_fatal=1 --randseed=7 --rw=randwrite --loops=64 \
	--name=aio --offset=0 --size=$(( HALF / 2 )) --ioengine=libaio \
	--iodepth=32 \
	--name=threads --new_group --offset=$(( HALF / 2 )) --size=$(( HALF / 8 )) \
	--offset_increment=$(( HALF / 8 )) --numjobs=4 --ioengine=psync"
node_exec 1 env CSV="$CV_MNT" timeout -k 2 120 bash -c \
	"$FIO --output=\$0" "$(ndir 1)/fio.out" >/dev/null 2>&1 &
FIO_PID=$!
CV_EXTRA_PIDS+=("$FIO_PID")
wait_for 10 csv_owner_is 2 "$F" n1 || _fail "n2 does not see n1 own $F"
e0=$(csv_epoch 2 "$F")

t=$(now_ms)
for k in $(seq 1 $NB); do
	node_sh 2 "printf 'n2 write %-22s\n' $k | dd of=\$CSV/$F bs=4096 \
		seek=$(( HALF / 4096 + k )) count=1 conv=sync,notrunc,fsync \
		oflag=direct status=none" ||
		_fail "n2: write $k failed (during n1's direct I/O)"
	kill -0 "$FIO_PID" 2>/dev/null || break
done
n2_done=$k
dt=$(( $(now_ms) - t ))
running=no
kill -0 "$FIO_PID" 2>/dev/null && running=yes
log "n2: $n2_done writes in $dt ms, each taking $F from n1 (n1's fio still running at the end: $running)"
[ "$n2_done" -ge 10 ] || _fail "fio on n1 ended after $n2_done of n2's writes: too few hand-offs under load"

wait "$FIO_PID"
rc=$?
[ "$rc" = 0 ] ||
	_fail "n1: fio (writes, then verify) failed with $rc: $(grep -i -m3 -e err -e verify "$(ndir 1)/fio.out")"
log "n1: fio wrote the first half and verified it; IOPS of libaio write, verify, threads write, verify: $(grep -o 'IOPS=[^,]*' "$(ndir 1)/fio.out" | head -n 4 | tr '\n' ' ')"

sum2=$(node_sh 2 "dd if=\$CSV/$F bs=1M count=8 iflag=direct status=none | md5sum")
sumb=$(dd if="$CV_BACKING/$F" bs=1M count=8 status=none | md5sum)
[ "$sum2" = "$sumb" ] || _fail "n2 reads n1's half differently from the backing file"
log "n2 reads n1's half as the backing file has it"

for k in $(seq 1 "$n2_done"); do
	for i in 1 2 3; do
		got=$(node_sh "$i" "dd if=\$CSV/$F bs=4096 skip=$(( HALF / 4096 + k )) count=1 iflag=direct status=none | head -c 31" | tr -d '\0')
		[ "$got" = "$(printf 'n2 write %-22s' "$k")" ] ||
			_fail "n$i: n2's write $k reads '$got'"
	done
	got=$(dd if="$CV_BACKING/$F" bs=4096 skip=$(( HALF / 4096 + k )) count=1 status=none | head -c 31 | tr -d '\0')
	[ "$got" = "$(printf 'n2 write %-22s' "$k")" ] ||
		_fail "backing file: n2's write $k reads '$got'"
done
log "n2's $n2_done blocks read back on every node and in the backing file"

for i in 1 2; do
	! grep -q -i -e 'ownership lost' -e poison "$(ndir "$i")/csvfs.log" ||
		_fail "n$i: $(grep -m1 -i -e 'ownership lost' -e poison "$(ndir "$i")/csvfs.log")"
done
# a last write through a handle kept open: the owner and epoch to check
node_shell_start w1 1
node_shell w1 "exec 3<>\$CSV/$F && wblk n1 0 fsync" ||
	_fail "n1: a last write failed: $SH_OUT"
wait_for 5 csv_owner_is 3 "$F" n1 || _fail "n3 does not see n1 own $F at the end"
assert_csv_owner "$F" n1 1 2 3
[ "$CSV_EPOCH" -ge $(( e0 + n2_done + n2_done / 2 )) ] ||
	_fail "epoch $e0 -> $CSV_EPOCH: fewer hand-offs than n2's $n2_done writes imply"
log "epoch $e0 -> $CSV_EPOCH over n2's $n2_done writes, $(grep -c 'revoke asked' "$(ndir 1)/lockd.log") of them revoking n1"
node_shell w1 "exec 3>&-" || _fail "n1: close failed: $SH_OUT"
assert_csv_tables_identical
_pass
