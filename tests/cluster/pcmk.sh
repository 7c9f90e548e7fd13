# SPDX-License-Identifier: LGPL-2.1-or-later
#
# pcmk.sh - verbs for the scenarios that run Pacemaker and libvirt on the
# nodes of tests/cluster (sourced after common.sh and csvfs.sh).
#
# Each node gets, inside its own mount namespace (common.sh's holder),
# what a real machine would have to itself:
#   - private tmpfs on /var/lib/pacemaker (cib, pengine, blackbox, cores,
#     owned by hacluster:haclient), /var/log/pacemaker, /var/lib/libvirt,
#     /var/log/libvirt, /var/cache/libvirt (/run and /dev/shm are private
#     already: libqb's IPC is abstract sockets, per network namespace, and
#     /dev/shm rings);
#   - a private copy of /etc/libvirt (qemu.conf: lock_manager "lockd",
#     virtlockd's lockspace on the csvfs volume, no cgroups, no security
#     driver) and of /etc/hosts (n1..nN resolve to the node addresses:
#     libvirt migrates to a peer by its node name);
#   - /usr/sbin seen through a read-only overlay whose upper layer holds
#     fence_csvfs (pacemaker-fenced looks for fence_* there) and
#     mount.fuse.csvfs (mount(8) looks for it there), both pointing at
#     this build, and /usr/lib/ocf/resource.d likewise with csvfs/csvfs
#     (the OCF agent ocf:csvfs:csvfs);
#   - its own UTS namespace, host name nI (libvirt and the resource agents
#     ask uname -n), held by a second holder process.
# Every command for node I that needs these goes through pnode_exec (the
# UTS holder's namespaces: mount, net, uts).
#
# Cleanup: pcmk_setup chains onto the EXIT trap (after csvfs.sh's hook):
# every process in a node's network namespace other than its holders is
# killed (pacemakerd and its children, libvirtd, virtlockd, virtlogd,
# qemu, the csvfs daemons Pacemaker started), then the csvfs mount is
# lazily unmounted; common.sh then kills the holders and deletes the
# namespaces.
#
# Environment (besides common.sh's and csvfs.sh's):
#   CV_PCMK_DEBUG=1   PCMK_debug=yes in every node's pacemaker.log

declare -a CV_UTS=()

require_pcmk() {
	require_cmd pacemakerd cibadmin crm_mon crm_resource stonith_admin \
		crm_attribute xmllint
	[ -x /usr/sbin/pacemakerd ] || _notrun "pacemakerd not in /usr/sbin"
	[ -x /usr/lib/ocf/resource.d/heartbeat/Filesystem ] ||
		_notrun "resource-agents (Filesystem) not installed"
	getent passwd hacluster >/dev/null || _notrun "no hacluster user"
	modprobe overlay 2>/dev/null
	grep -qw overlay /proc/filesystems || _notrun "no overlayfs"
}

require_libvirt() {
	require_cmd libvirtd virtlockd virtlogd virsh qemu-system-x86_64
	[ -x /usr/lib/ocf/resource.d/heartbeat/VirtualDomain ] ||
		_notrun "resource-agents (VirtualDomain) not installed"
}

# ------------------------------------------------------------------------
# Set-up and teardown.

# pcmk_setup: the overlay's upper layer and the teardown hook; call after
# csvfs_setup, before cluster_start.
pcmk_setup() {
	local s=$CV_WORK/sbin
	mkdir -p "$s"
	cat >"$s/mount.fuse.csvfs" <<EOF
#!/bin/sh
CSVFS_BIN=$CV_CSVFS exec $top_srcdir/tools/mount.csvfs "\$@"
EOF
	cat >"$s/fence_csvfs" <<EOF
#!/bin/sh
CSVFS_ADMIN=$CV_ADMIN exec $top_srcdir/tools/fence_csvfs "\$@"
EOF
	printf '#!/bin/sh\nCV_WORK=%s exec %s "$@"\n' "$CV_WORK" \
		"$CV_SRCDIR/fence-cvpower.sh" >"$s/fence_cvpower"
	chmod 755 "$s/mount.fuse.csvfs" "$s/fence_csvfs" "$s/fence_cvpower"
	mkdir -p "$CV_WORK/ocf/csvfs"
	ln -s "$top_srcdir/tools/ocf/csvfs" "$CV_WORK/ocf/csvfs/csvfs"
	if ! declare -F _cv_pcmk_destroy >/dev/null; then
		eval "$(declare -f cluster_destroy |
			sed '1s/^cluster_destroy/_cv_pcmk_destroy/')"
		cluster_destroy() {
			local rc=$?
			if [ "$BASHPID" = "$CV_MAINPID" ] &&
				[ "$CV_DESTROYED" = 0 ]; then
				pcmk_teardown
			fi
			(exit "$rc")
			_cv_pcmk_destroy
		}
	fi
}

# node_pids I: every process in node I's network namespace but its holders.
node_pids() {
	local p
	for p in $(ip netns pids "$(ns_of "$1")" 2>/dev/null); do
		[ "$p" = "${CV_HOLDER[$1]:-}" ] || [ "$p" = "${CV_UTS[$1]:-}" ] ||
			echo "$p"
	done
}

# node_crash I: SIGKILL everything running on node I (pacemaker, libvirt,
# qemu, csvfs, lockd, corosync), as a power cut would, until nothing is
# left (bounded).  The holders and the node's mounts stay.
node_crash() {
	local i=$1 n ps
	for n in $(seq 1 50); do
		ps=$(node_pids "$i")
		[ -n "$ps" ] || break
		# shellcheck disable=SC2086
		kill -KILL $ps 2>/dev/null
		sleep 0.05
	done
	wait "${CV_LOCKDPID[$i]:-0}" "${CV_COROSYNC[$i]:-0}" 2>/dev/null
	CV_LOCKDPID[$i]=""
	CV_COROSYNC[$i]=""
}

pcmk_teardown() {
	local i
	for i in $(seq 1 "$CV_NODES"); do
		[ -n "${CV_HOLDER[$i]:-}" ] || continue
		node_crash "$i"
		node_exec "$i" umount -l "$CV_MNT" 2>/dev/null
	done
	for i in "${CV_UTS[@]}"; do _kill_pid "$i"; done
	return 0
}

# ------------------------------------------------------------------------
# The node's private world.

_pnode_hosts() {
	local j
	echo "127.0.0.1 localhost"
	for j in $(seq 1 "$CV_NODES"); do echo "$(addr_of "$j") n$j"; done
}

# _pnode_libvirt_etc I: node I's /etc/libvirt (a copy, then our files).
_pnode_libvirt_etc() {
	local e=$1
	cp -a /etc/libvirt/. "$e/"
	rm -rf "$e/qemu/networks/autostart" "$e/qemu/autostart" "$e/storage/autostart"
	cat >"$e/qemu.conf" <<EOF
# generated by tests/cluster/pcmk.sh
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
lock_manager = "lockd"
EOF
	cat >"$e/qemu-lockd.conf" <<EOF
auto_disk_leases = 1
require_lease_for_disks = 1
file_lockspace_dir = "$CV_MNT/lockspace"
EOF
	cat >"$e/libvirtd.conf" <<EOF
listen_tls = 0
listen_tcp = 1
auth_tcp = "none"
auth_unix_rw = "none"
log_outputs = "3:stderr"
EOF
}

# node_pcmk_prepare I: the private mounts and the UTS holder of node I.
node_pcmk_prepare() {
	local i=$1 d
	d=$(ndir "$i")
	mkdir -p "$d/etc-libvirt" "$d/pcmk-log" "$d/libvirt-log"
	_pnode_hosts >"$d/hosts"
	_pnode_libvirt_etc "$d/etc-libvirt"
	chown hacluster:haclient "$d/pcmk-log"
	node_exec "$i" sh -ec '
		mount -t tmpfs -o mode=750 cv-pcmk /var/lib/pacemaker
		for s in cib pengine blackbox cores; do
			mkdir -m 750 /var/lib/pacemaker/$s
		done
		chown -R hacluster:haclient /var/lib/pacemaker
		mount --bind "$1/pcmk-log" /var/log/pacemaker
		mount -t tmpfs -o mode=755 cv-lv /var/lib/libvirt
		mount --bind "$1/libvirt-log" /var/log/libvirt
		mount -t tmpfs -o mode=755 cv-lvc /var/cache/libvirt
		mount --bind "$1/etc-libvirt" /etc/libvirt
		mount --bind "$1/hosts" /etc/hosts
		mount -t overlay cv-sbin -o "lowerdir=$2:/usr/sbin" /usr/sbin
		mount -t overlay cv-ocf -o "lowerdir=$3:/usr/lib/ocf/resource.d" \
			/usr/lib/ocf/resource.d
		mkdir -p /run/lock /run/resource-agents
	' prepare "$d" "$CV_WORK/sbin" "$CV_WORK/ocf" || _fail "node $i: private mounts failed"
	# nsenter, unshare and sh all exec: $! is the sleep in the new UTS ns
	nsenter -t "${CV_HOLDER[$i]}" -m -n -- unshare -u sh -c \
		'hostname "$1" && exec sleep 100000' uts "n$i" \
		>"$d/uts.log" 2>&1 </dev/null &
	CV_UTS[$i]=$!
	wait_for 5 _uts_ready "$i" || _fail "node $i: no UTS namespace"
}

_uts_ready() {
	[ "$(nsenter -t "${CV_UTS[$1]}" -u hostname 2>/dev/null)" = "n$1" ]
}

# pnode_exec I CMD...: CMD in node I's mount, network and UTS namespaces.
pnode_exec() {
	local i=$1
	shift
	nsenter -t "${CV_UTS[$i]}" -m -n -u -- "$@"
}

# pnode_spawn I LOGFILE CMD...: in the background, pid in CV_SPAWNED.
pnode_spawn() {
	local i=$1 logf=$2
	shift 2
	nsenter -t "${CV_UTS[$i]}" -m -n -u -- "$@" >>"$logf" 2>&1 </dev/null &
	CV_SPAWNED=$!
}

# ------------------------------------------------------------------------
# libvirt.

_libvirt_up() { pnode_exec "$1" timeout 5 virsh -c qemu:///system version; }

# node_start_libvirt I: virtlogd, virtlockd and libvirtd --listen (TCP,
# no auth: migration between the nodes) on node I; libvirt_wait I waits
# for it to answer.
node_start_libvirt() {
	local i=$1 d
	d=$(ndir "$i")
	pnode_spawn "$i" "$d/virtlogd.log" virtlogd
	pnode_spawn "$i" "$d/virtlockd.log" virtlockd
	pnode_spawn "$i" "$d/libvirtd.log" libvirtd --listen
}

# libvirt_start_all N: libvirt on node 1, then on 2..N with node 1's
# QEMU capabilities cache (the probe of every emulator takes most of
# libvirtd's start-up under TCG).
libvirt_start_all() {
	local i
	node_start_libvirt 1
	libvirt_wait 1
	for i in $(seq 2 "$1"); do
		node_exec 1 tar -C /var/cache/libvirt -cf - . |
			node_exec "$i" tar -C /var/cache/libvirt -xf - ||
			_fail "node $i: cannot copy libvirt's cache"
		node_start_libvirt "$i"
	done
	for i in $(seq 2 "$1"); do libvirt_wait "$i"; done
}

libvirt_wait() {
	wait_for 60 _libvirt_up "$1" ||
		_fail "node $1: libvirtd not up: $(tail -n 5 "$(ndir "$1")/libvirtd.log")"
}

# virsh_on I ARGS...: virsh on node I (bounded).
virsh_on() {
	local i=$1
	shift
	pnode_exec "$i" timeout 60 virsh -c qemu:///system "$@"
}

# ------------------------------------------------------------------------
# Pacemaker.

# node_start_pcmk I: pacemakerd (and through it the other daemons) on
# node I, logging to nI/pcmk-log/pacemaker.log.
node_start_pcmk() {
	local i=$1 d dbg=no
	d=$(ndir "$i")
	[ "${CV_PCMK_DEBUG:-0}" = 1 ] && dbg=yes
	pnode_spawn "$i" "$d/pacemakerd.out" env \
		PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none \
		PCMK_debug=$dbg HA_LOGFACILITY=none PATH="$PATH" pacemakerd
	vlog "node $i: pacemakerd pid $CV_SPAWNED"
}

# crm_on I CMD ARGS...: a Pacemaker command line tool on node I (bounded).
crm_on() {
	local i=$1
	shift
	pnode_exec "$i" timeout 30 "$@"
}

# pcmk_status_xml I: crm_mon's status as XML, seen from node I.
pcmk_status_xml() { crm_on "$1" crm_mon -1 --output-as=xml 2>/dev/null; }

# xpath XPATH: evaluate on stdin (string result).
xpath() { xmllint --xpath "$1" - 2>/dev/null; }

# pcmk_online_is I NODES: node I sees a DC and exactly NODES ("n1 n2 ...")
# online.
pcmk_online_is() {
	local x on
	x=$(pcmk_status_xml "$1") || return 1
	echo "$x" | xpath 'string(//current_dc/@present)' | grep -qx true || return 1
	on=$(echo "$x" | xpath '//nodes/node[@online="true"]/@name' |
		sed 's/ *name="\([^"]*\)"/\1\n/g' | grep . | sort | tr '\n' ' ')
	[ "$on" = "$(echo "$2" | tr ' ' '\n' | grep . | sort | tr '\n' ' ')" ]
}

# pcmk_start N: pacemaker on nodes 1..N, all online with a DC.
pcmk_start() {
	local n=$1 i t nodes
	t=$(now_ms)
	nodes=$(for i in $(seq 1 "$n"); do printf 'n%s ' "$i"; done)
	for i in $(seq 1 "$n"); do node_start_pcmk "$i"; done
	for i in $(seq 1 "$n"); do
		wait_for 90 pcmk_online_is "$i" "$nodes" ||
			_fail "node $i: pacemaker not online with $nodes: $(crm_on "$i" crm_mon -1 2>&1 | head -n 20)"
	done
	log "pacemaker: $n nodes online after $(( $(now_ms) - t )) ms"
}

# resource_node I RSC: the node RSC is active on, as node I sees it
# (empty if none or more than one).
resource_node() {
	local x
	x=$(pcmk_status_xml "$1") || return 1
	echo "$x" | xpath "//resources//resource[@id=\"$2\" and @active=\"true\" and @failed=\"false\" and @role=\"Started\"]/node/@name" |
		sed 's/ *name="\([^"]*\)"/\1\n/g' | grep . | sort -u
}

# resource_on I RSC NODE: predicate: RSC started on NODE only.
resource_on() { [ "$(resource_node "$1" "$2")" = "$3" ]; }

# clone_started_on I RSC NODES: every listed node runs an instance of clone
# RSC (a primitive id inside the clone).
clone_started_on() {
	local got
	got=$(resource_node "$1" "$2" | tr '\n' ' ')
	[ "$got" = "$(echo "$3" | tr ' ' '\n' | grep . | sort | tr '\n' ' ')" ]
}

# ------------------------------------------------------------------------
# A power switch for Pacemaker (fence-cvpower.sh as fence_cvpower in the
# nodes' /usr/sbin overlay, put there by pcmk_setup): the namespaces'
# inodes and holders it needs.  Call after node_pcmk_prepare, before
# Pacemaker uses the device.
pcmk_power_agent() {
	local i
	for i in $(seq 1 "$CV_NODES"); do
		stat -L -c %i "/run/netns/$(ns_of "$i")" >"$(ndir "$i")/netns.ino"
		echo "${CV_HOLDER[$i]} ${CV_UTS[$i]:-}" >"$(ndir "$i")/holders"
	done
	: >"$CV_WORK/power.log"
}
