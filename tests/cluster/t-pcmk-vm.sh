#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Pacemaker runs a VM on csvfs (README.md "VM high availability"), on
# three nodes with corosync, csvfs-lockd, libvirt and Pacemaker each:
#   - the CIB of the README (crmsh syntax, loaded with crm when crmsh is
#     installed, else the same in XML with cibadmin): a clone of
#     ocf:heartbeat:Filesystem with fstype=fuse.csvfs on every node, a
#     stonith:fence_csvfs device, a VM as ocf:heartbeat:VirtualDomain
#     (allow-migrate) ordered after and colocated with the clone;
#     libvirt's virtlockd keeps its lockspace on the csvfs volume;
#   - the clone starts on all three nodes, the VM on one of them;
#   - the VM's disk lease is cluster-wide: starting the same domain by
#     hand on another node is refused by virtlockd there;
#   - crm_resource --move: Pacemaker live-migrates the VM (VirtualDomain's
#     migrate_to, virsh migrate --live), timed;
#   - the VM's node crashes (SIGKILL to everything on it: pacemaker,
#     corosync, csvfs-lockd, csvfs, libvirt, qemu): Pacemaker fences it
#     through fence_csvfs, which confirms only once csvfs-lockd freed the
#     node's files, and only then starts the VM on a survivor; the time
#     from the crash to the VM running again is measured.
# With CV_GUEST_IMAGE... (tests/cluster/guest.sh, when present) the VM is
# the test guest and "running again" is the guest writing again.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/pcmk.sh"

require_netns
require_corosync
require_csvfs
require_pcmk
require_libvirt
require_cmd qemu-img
require_bin "$CV_LOCKD" "$CV_ADMIN"

VM=vm1
FLOG=fence_csvfs.log

csvfs_setup
pcmk_setup
# Every fence_csvfs run Pacemaker makes is logged with its result (ms).
cat >"$CV_WORK/sbin/fence_csvfs" <<EOF
#!/bin/bash
in=\$(cat)
CSVFS_ADMIN=$CV_ADMIN $top_srcdir/tools/fence_csvfs <<<"\$in"
rc=\$?
echo "\$(date +%s%3N) \$(hostname) \$(echo "\$in" | tr '\n' ' ') rc=\$rc" >>$CV_WORK/$FLOG
exit \$rc
EOF
cluster_start 3
for i in 1 2 3; do node_pcmk_prepare "$i"; done
pcmk_start 3

# ------------------------------------------------------------------------
# The CIB: the csvfs clone first.
# shellcheck disable=SC2016
cat >"$CV_WORK/cib-csvfs.crm" <<EOF
property stonith-enabled=true no-quorum-policy=stop stonith-timeout=120s
rsc_defaults resource-stickiness=100
primitive fence-csvfs stonith:fence_csvfs \\
	params pcmk_host_list="n1 n2 n3" power_timeout=60 \\
	pcmk_off_timeout=90s pcmk_reboot_timeout=90s \\
	op monitor interval=60s
primitive csvfs ocf:csvfs:csvfs \\
	params source="$CV_BACKING" directory="$CV_MNT" csvfs_admin="$CV_ADMIN" \\
	op start timeout=60s op stop timeout=60s \\
	op monitor interval=10s timeout=40s \\
	op monitor interval=30s timeout=40s OCF_CHECK_LEVEL=20
clone csvfs-clone csvfs meta interleave=true
EOF
crm_load() { # FILE: crm configure load update, bounded
	crm_on 1 crm -w configure load update "$1"
}
crm_load "$CV_WORK/cib-csvfs.crm" >"$CV_WORK/crm-1.log" 2>&1 ||
	_fail "crm configure load (csvfs clone) failed: $(cat "$CV_WORK/crm-1.log")"
t=$(now_ms)
wait_for 90 clone_started_on 1 csvfs "n1 n2 n3" ||
	_fail "csvfs clone not started on all nodes: $(crm_on 1 crm_mon -1 2>&1)"
for i in 1 2 3; do node_mounted "$i" || _fail "n$i: no csvfs mount"; done
log "csvfs clone: mounted on n1 n2 n3 by Pacemaker in $(( $(now_ms) - t )) ms"

# ------------------------------------------------------------------------
# The VM: image, domain XML and virtlockd's lockspace on the volume.
node_sh 1 "mkdir -p \$CSV/lockspace && qemu-img create -q -f qcow2 \$CSV/$VM.qcow2 64M" ||
	_fail "n1: cannot create the image on csvfs"
# libvirt after the volume: virtlockd's lockspace directory is on it.
t=$(now_ms)
for i in 1 2 3; do node_start_libvirt "$i"; done
for i in 1 2 3; do libvirt_wait "$i"; done
log "libvirt: up on 3 nodes after $(( $(now_ms) - t )) ms"
cat >"$CV_WORK/$VM.xml" <<EOF
<domain type='qemu'>
  <name>$VM</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' error_policy='stop'/>
      <source file='$CV_MNT/$VM.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF
node_sh 1 "cp \$W/$VM.xml \$CSV/$VM.xml" || _fail "n1: cannot copy the domain XML"
cat >"$CV_WORK/cib-vm.crm" <<EOF
primitive $VM ocf:heartbeat:VirtualDomain \\
	params config="$CV_MNT/$VM.xml" hypervisor="qemu:///system" \\
	migration_transport=tcp migrate_options="--unsafe" \\
	meta allow-migrate=true \\
	op start timeout=90s op stop timeout=90s \\
	op monitor interval=5s timeout=30s \\
	op migrate_to timeout=120s op migrate_from timeout=120s
order $VM-after-csvfs Mandatory: csvfs-clone $VM
colocation $VM-with-csvfs inf: $VM csvfs-clone
EOF
crm_load "$CV_WORK/cib-vm.crm" >"$CV_WORK/crm-2.log" 2>&1 ||
	_fail "crm configure load (VM) failed: $(cat "$CV_WORK/crm-2.log")"
t=$(now_ms)
home=""
for s in $(seq 1 900); do
	home=$(resource_node 1 "$VM") && [ -n "$home" ] && break
	sleep 0.1
done
[ -n "$home" ] || _fail "$VM not started: $(crm_on 1 crm_mon -1 2>&1)"
h=${home#n}
virsh_on "$h" domstate "$VM" | grep -qx running ||
	_fail "$home: libvirt says $VM is not running: $(virsh_on "$h" list --all 2>&1)"
log "$VM: started on $home in $(( $(now_ms) - t )) ms"

# virtlockd: the disk lease lives in $CV_MNT/lockspace, cluster-wide.
lease=$(node_sh "$h" "ls \$CSV/lockspace") || _fail "$home: no lockspace"
[ -n "$lease" ] || _fail "$home: virtlockd made no lease file in the lockspace"
lk=$(admin 1 --json locks "$CV_MNT/lockspace/$(echo "$lease" | head -n1)" 2>&1)
echo "$lk" | jq -e --arg n "$home" 'any(.[]; .node == $n)' >/dev/null ||
	_fail "no cluster-wide lock of $home on the lease file: $lk"
log "virtlockd on $home holds the disk lease (a csvfs POSIX lock): $(echo "$lk" | jq -c '[.[] | {node, type}]')"
o=$(( h % 3 + 1 ))
# Another node's virtlockd would be refused: the same fcntl lock fails there.
lf=$CV_MNT/lockspace/$(echo "$lease" | head -n1)
out=$(node_sh "$o" "python3 -c 'import fcntl, sys; f = open(sys.argv[1], \"r+\"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)' $lf" 2>&1) &&
	_fail "n$o: took the lease lock virtlockd on $home holds"
echo "$out" | grep -q 'Resource temporarily unavailable\|BlockingIOError' ||
	_fail "n$o: lease lock failed, but not as busy: $out"
log "n$o: the lease lock is busy there too (cluster-wide fcntl lock)"
# Starting a second copy by hand there fails.  (libvirt starts QEMU
# paused and acquires the leases when the CPUs start, so QEMU's own image
# lock, cluster-wide as well, refuses it first.)
out=$(virsh_on "$o" create "$CV_MNT/$VM.xml" 2>&1) &&
	_fail "n$o: a second $VM started while $home runs it: $out"
echo "$out" | grep -qi 'lock' ||
	_fail "n$o: second $VM refused, but not by a lock: $out"
log "n$o: second copy of $VM refused: $(echo "$out" | grep -o 'Failed to get "write" lock\|[Ll]ock[a-z ]*busy' | head -n1)"
[ "$(resource_node 1 "$VM")" = "$home" ] || _fail "$VM no longer on $home"

# ------------------------------------------------------------------------
# Planned: crm_resource --move, a live migration.
tgt=$o
t=$(now_ms)
crm_on 1 crm_resource --move --resource "$VM" --node "n$tgt" >/dev/null 2>&1 ||
	_fail "crm_resource --move failed"
for s in $(seq 1 1200); do
	resource_on 1 "$VM" "n$tgt" && break
	sleep 0.1
done
resource_on 1 "$VM" "n$tgt" || _fail "$VM not moved to n$tgt: $(crm_on 1 crm_mon -1 2>&1)"
t_move=$(( $(now_ms) - t ))
grep -q "$VM.*migrate_to" "$(ndir "$h")/pcmk-log/pacemaker.log" ||
	_fail "$VM was moved, but not by a live migration (no migrate_to on $home)"
virsh_on "$tgt" domstate "$VM" | grep -qx running || _fail "n$tgt: $VM not running"
virsh_on "$h" domstate "$VM" >/dev/null 2>&1 && _fail "$home still has $VM"
crm_on 1 crm_resource --clear --resource "$VM" >/dev/null 2>&1
log "BENCH pcmk-move: crm_resource --move $VM $home -> n$tgt (live migration): $t_move ms"

# ------------------------------------------------------------------------
# Unplanned: the VM's node crashes.
home=n$tgt
h=$tgt
surv=$(for i in 1 2 3; do [ "$i" = "$h" ] || printf '%s ' "$i"; done)
s1=${surv%% *}
sleep 2
t_kill=$(now_ms)
node_crash "$h"
log "$home crashed (everything on it killed)"
new=""
for s in $(seq 1 1800); do
	new=$(resource_node "$s1" "$VM") && [ -n "$new" ] && [ "$new" != "$home" ] && break
	new=""
	sleep 0.1
done
[ -n "$new" ] || _fail "$VM not restarted on a survivor: $(crm_on "$s1" crm_mon -1 2>&1)"
t_up=$(now_ms)
n=${new#n}
virsh_on "$n" domstate "$VM" | grep -qx running || _fail "$new: $VM not running"
log "$VM: running on $new $(( t_up - t_kill )) ms after the crash"

# The fence: confirmed by fence_csvfs, after lockd freed the node ...
fence_ok=$(awk -v n="$home" '$0 ~ ("(plug|port|nodename)=" n " ") && / rc=0$/ && /action=(off|reboot)/ { print $1; exit }' "$CV_WORK/$FLOG")
[ -n "$fence_ok" ] || _fail "no successful fence_csvfs off of $home: $(cat "$CV_WORK/$FLOG")"
node_state_is "$n" "$home" down || _fail "lockd on $new does not show $home down"
hist=$(crm_on "$n" stonith_admin --history "$home" 2>&1)
echo "$hist" | grep -qi 'success\|successful' || _fail "no successful fencing of $home in Pacemaker's history: $hist"
# ... and the VM started only after it (libvirt's own start time, ms).
start=$(pnode_exec "$n" sh -c "grep ': starting up' /var/log/libvirt/qemu/$VM.log | tail -n1")
start_ms=$(date -d "$(echo "$start" | sed 's/^\([0-9-]* [0-9:.]*\)+0000.*/\1 UTC/')" +%s%3N)
[ "$start_ms" -ge "$fence_ok" ] ||
	_fail "$VM started on $new at $start_ms, before fence_csvfs confirmed $home at $fence_ok"
log "BENCH pcmk-failover: crash of $home -> fence_csvfs confirmed $(( fence_ok - t_kill )) ms -> qemu started on $new $(( start_ms - t_kill )) ms -> Pacemaker reports it running $(( t_up - t_kill )) ms"
# The survivors' csvfs mounts still work.
node_sh "$n" "qemu-img info -U \$CSV/$VM.qcow2 >/dev/null" || _fail "$new: image unreadable"
_pass
