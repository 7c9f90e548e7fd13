#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# build-guest.sh - the test guest of tests/vm: a kernel and an initramfs,
# made from Debian packages only, cached in the build tree.
#
#   build-guest.sh [CACHE_DIR]     (default $top_builddir/tests/vm/guest)
#
# The kernel is the newest /boot/vmlinuz-VERSION of Debian's
# linux-image-amd64 whose /lib/modules/VERSION has virtio_blk; the
# initramfs holds
#   /init           vmio.c (this folder) linked with -static: the guest's
#                   whole user space (see the comment at its top);
#   /modules/*.ko   virtio_pci, virtio_blk and what they depend on (from
#                   modules.dep), decompressed; /modules.list: load order;
#   /bin/busybox    busybox-static with /bin/sh, for boots by hand with
#                   rdinit=/bin/sh.
# Outputs CACHE_DIR/kernel (see kernel() below), CACHE_DIR/initramfs.gz
# and CACHE_DIR/stamp.
# The stamp records what went in (kernel, modules, vmio.c, busybox, this
# script); when it matches, nothing is rebuilt (one stat per input), so
# every VM test calls this first.  Builds of one cache dir are serialized
# by a flock on CACHE_DIR.lock and land by rename, never half-written.
#
# Packages (scripts/setup-deps): linux-image-amd64, busybox-static, cpio,
# gcc and libc6-dev (static libc).  Exit 0 and prints CACHE_DIR on
# success; 1 with the reason otherwise.
set -eu

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir/build}"
cache=${1:-$top_builddir/tests/vm/guest}
CC=${VMIO_CC:-gcc}

die() { echo "build-guest: $*" >&2; exit 1; }

# find_kernel: the newest kernel with its virtio_blk module installed.
find_kernel() {
	local k v best=""
	for k in /boot/vmlinuz-*; do
		[ -f "$k" ] || continue
		v=${k#/boot/vmlinuz-}
		ls "/lib/modules/$v/kernel/drivers/block/virtio_blk.ko"* \
			>/dev/null 2>&1 || continue
		best=$v
	done
	[ -n "$best" ] ||
		die "no Debian kernel with virtio modules: apt-get install linux-image-amd64 (scripts/setup-deps)"
	echo "$best"
}

# mod_path VERSION NAME: the module file of NAME (relative to its dir).
mod_path() {
	awk -v n="$2" -F: '{ f = $1; sub(/.*\//, "", f); sub(/\.ko.*/, "", f);
		gsub(/-/, "_", f); if (f == n) { print $1; exit } }' \
		"/lib/modules/$1/modules.dep"
}

# mod_order VERSION NAMES...: module paths, dependencies first.
mod_order() {
	local v=$1 m
	shift
	for m in "$@"; do
		_mod_visit "$v" "$(mod_path "$v" "$m")"
	done
}
declare -A _seen=()
_mod_visit() {
	local v=$1 p=$2 d
	[ -n "$p" ] || die "module not found in /lib/modules/$v/modules.dep"
	[ -z "${_seen[$p]:-}" ] || return 0
	_seen[$p]=1
	for d in $(awk -v p="$p:" '$1 == p { $1 = ""; print; exit }' \
		"/lib/modules/$v/modules.dep"); do
		_mod_visit "$v" "$d"
	done
	echo "$p"
}

# stamp VERSION MODULES...: one line per input, with size and mtime.
stamp() {
	local v=$1 f
	shift
	for f in "/boot/vmlinuz-$v" "/boot/config-$v" "$here/vmio.c" "$here/build-guest.sh" \
		/bin/busybox "$@"; do
		[ -e "$f" ] || continue
		stat -L -c '%n %s %Y' "$f"
	done
}

# build VERSION STAGE MODULES...: the initramfs tree in STAGE.
build() {
	local v=$1 st=$2 m base
	shift 2
	mkdir -p "$st/root/modules" "$st/root/bin" "$st/root/dev"
	"$CC" -static -O2 -Wall -Wextra -Werror -o "$st/root/init" \
		"$here/vmio.c" || die "cannot link vmio.c -static (libc6-dev)"
	: >"$st/root/modules.list"
	for m in "$@"; do
		base=$(basename "$m")
		case $base in
		*.ko.xz) xz -dc "$m" >"$st/root/modules/${base%.xz}" ;;
		*.ko.zst) zstd -qdc "$m" >"$st/root/modules/${base%.zst}" ;;
		*.ko.gz) gzip -dc "$m" >"$st/root/modules/${base%.gz}" ;;
		*) cp "$m" "$st/root/modules/$base" ;;
		esac
		echo "/modules/${base%.ko*}.ko" >>"$st/root/modules.list"
	done
	if [ -x /bin/busybox ]; then
		cp /bin/busybox "$st/root/bin/busybox"
		ln -s busybox "$st/root/bin/sh"
	fi
	(cd "$st/root" && find . -print0 | LC_ALL=C sort -z |
		cpio --null -o -H newc --owner=0:0 --quiet) |
		gzip -6 >"$st/initramfs.gz" || die "cpio/gzip failed"
	kernel "$v" "$st/kernel"
}

# kernel VERSION OUT: the kernel QEMU boots.  Debian's bzImage holds an
# xz-compressed vmlinux that, under TCG, takes longer to unpack than the
# rest of the boot; a kernel built with CONFIG_PVH boots that vmlinux
# (an ELF with a PVH entry note) directly, so it is unpacked here once.
# Otherwise the bzImage itself.
kernel() {
	local v=$1 out=$2 z=/boot/vmlinuz-$1 off
	if grep -q '^CONFIG_PVH=y' "/boot/config-$v" 2>/dev/null &&
		grep -q '^CONFIG_KERNEL_XZ=y' "/boot/config-$v" &&
		off=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$z" | head -n 1 |
			cut -d: -f1) && [ -n "$off" ]; then
		tail -c +$(( off + 1 )) "$z" | xz -dcq --single-stream \
			>"$out" 2>/dev/null
		[ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = 177ELF ] &&
			return 0
	fi
	cp "$z" "$out"
}

main() {
	local v mods want st
	command -v cpio >/dev/null || die "cpio not installed (scripts/setup-deps)"
	v=$(find_kernel)
	mapfile -t mods < <(mod_order "$v" virtio_pci virtio_blk |
		sed "s|^|/lib/modules/$v/|")
	[ "${#mods[@]}" -ge 2 ] || die "virtio modules of $v not resolved"
	want=$(stamp "$v" "${mods[@]}")
	mkdir -p "$(dirname "$cache")"
	exec 9>"$cache.lock"
	flock 9
	if [ -f "$cache/stamp" ] && [ "$(cat "$cache/stamp")" = "$want" ] &&
		[ -f "$cache/kernel" ] && [ -f "$cache/initramfs.gz" ]; then
		echo "$cache"
		return 0
	fi
	st=$(mktemp -d "$cache.new.XXXXXX")
	trap 'rm -rf "$st"' EXIT
	build "$v" "$st" "${mods[@]}"
	echo "$want" >"$st/stamp"
	rm -rf "$st/root" "$cache"
	chmod 755 "$st"
	mv "$st" "$cache"
	trap - EXIT
	echo "build-guest: kernel $v, modules: ${mods[*]##*/}," \
		"initramfs $(stat -c %s "$cache/initramfs.gz") bytes" >&2
	echo "$cache"
}

main
