#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# t-meta-big.sh - the extent paths of the block metadata engine past
# block 2^31, where libext2fs 1.47.0's own punch overflows: on a 16 TiB
# sparse image (4 KiB blocks, so 2^32 blocks; a few hundred MiB really
# used), mtool big writes through the LUN around block 2^31 and reads the
# bytes back at the mapped places, punches blocks 2^31-1 and 2^31,
# truncates into block 2^31, allocates the last granule below 2^32
# blocks (and gets EFBIG past it), fallocates across 2^31, checks
# e2fsck -fn with those extents in place, and frees it all.  The image
# ends with e2fsck -fn clean.
set -u
. "$(dirname "$0")/../tap.sh"
. "$(dirname "$0")/common.sh"
block_setup t-meta-big
MTOOL=$top_builddir/tests/block/mtool
[ -x "$MTOOL" ] || _notrun "mtool not built"

truncate -s 16T big.img || _notrun "no 16 TiB sparse file here"
# cvb_format's features; lazy inode tables and few inodes, so that the
# sparse image stays small (cvb_format writes every inode table)
mke2fs -q -F -t ext4 -b 4096 -N 65536 \
	-O none,has_journal,ext_attr,resize_inode,dir_index,filetype,extent,64bit,flex_bg,sparse_super,large_file,huge_file,dir_nlink,extra_isize,metadata_csum \
	-E lazy_itable_init=1,lazy_journal_init=1 big.img >mkfs.out 2>&1 ||
	_notrun "mke2fs of a 16 TiB image: $(tail -1 mkfs.out)"
if "$MTOOL" big big.img >big.out 2>&1; then
	ok "big: $(grep -c '^ok' big.out) checks"
else
	grep -v '^ok' big.out; bad "big"
fi
t "big: e2fsck -fn clean" bash -c "e2fsck -fn big.img >fsck.out 2>&1 || { cat fsck.out; exit 1; }"
echo "# $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
