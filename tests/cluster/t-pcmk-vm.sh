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
# The VM is the test guest of tests/vm (a kernel and an initramfs whose
# init writes verifiable blocks, vmio.c) under TCG;
# its serial console, appended to by every instance on every node, says
# which writes are durable.  After the crash the restarted guest must
# write again; then it is stopped and booted once more with everything
# acknowledged so far: nothing acknowledged may be lost.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/csvfs.sh"
. "$(dirname "$0")/pcmk.sh"
. "$(dirname "$0")/../vm/vm.sh"

require_netns
require_corosync
require_csvfs
require_pcmk
require_libvirt
require_qemu
require_bin "$CV_LOCKD" "$CV_ADMIN"

VM=vm1
FLOG=fence_csvfs.log

csvfs_setup
vm_setup
pcmk_setup
CON=$CV_WORK/$VM.console    # the guest's serial console, every instance
: >"$CON"
VM_CONSOLES[g]=$CON         # for vm.sh's vm_acked / vm_boot
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
node_sh 1 "mkdir -p \$CSV/lockspace && qemu-img create -q -f qcow2 \$CSV/$VM.qcow2 8M" ||
	_fail "n1: cannot create the image on csvfs"
# libvirt after the volume: virtlockd's lockspace directory is on it.
t=$(now_ms)
libvirt_start_all 3
log "libvirt: up on 3 nodes after $(( $(now_ms) - t )) ms"
cat >"$CV_WORK/$VM.xml" <<EOF
<domain type='qemu'>
  <name>$VM</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$VM_GUEST/kernel</kernel>
    <initrd>$VM_GUEST/initramfs.gz</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet vmio.pace=20 vmio.flush=8 vmio.verify=unknown</cmdline>
  </os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none' io='native' error_policy='stop'/>
      <source file='$CV_MNT/$VM.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='file'>
      <source path='$CON' append='on'/>
      <target port='0'/>
    </serial>
  </devices>
</domain>
EOF
node_sh 1 "cp \$W/$VM.xml \$CSV/$VM.xml" || _fail "n1: cannot copy the domain XML"
cat >"$CV_WORK/cib-vm.crm" <<EOF
primitive $VM ocf:heartbeat:VirtualDomain \\
	params config="$CV_MNT/$VM.xml" hypervisor="qemu:///system" \\
	migration_transport=tcp migrate_options="--unsafe" force_stop=true \\
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
# vm_where I: VM's node as node I sees it, in WHERE; fails if none.
vm_where() { WHERE=$(resource_node "$1" "$VM") && [ -n "$WHERE" ]; }
wait_for 90 vm_where 1 && home=$WHERE
[ -n "$home" ] || _fail "$VM not started: $(crm_on 1 crm_mon -1 2>&1)"
h=${home#n}
virsh_on "$h" domstate "$VM" | grep -qx running ||
	_fail "$home: libvirt says $VM is not running: $(virsh_on "$h" list --all 2>&1)"
log "$VM: started on $home in $(( $(now_ms) - t )) ms"
con_acks() { tr -d '\r' <"$CON" | grep -a -c 'VMIO ACK '; }
# con_wait_ack GEN N TIMEOUT_S: the console shows write N of GEN durable
con_wait_ack() {
	local deadline=$(( $(now_ms) + $3 * 1000 ))
	until tr -d '\r' <"$CON" | grep -a -q "VMIO ACK gen=$1 seq=\([0-9]*\)" &&
		[ "$(con_last "$1")" -ge "$2" ]; do
		[ "$(now_ms)" -ge "$deadline" ] && return 1
		sleep 0.05
	done
}
con_last() { # GEN: last acknowledged seq of GEN (-1: none)
	local x
	x=$(tr -d '\r' <"$CON" | sed -n "s/.*VMIO ACK gen=$1 seq=\([0-9]*\).*/\1/p" | tail -n1)
	echo "${x:--1}"
}
con_gen() { tr -d '\r' <"$CON" | sed -n 's/.*VMIO GEN gen=\([0-9]*\).*/\1/p' | tail -n1; }
wait_for 120 sh -c "tr -d '\r' <'$CON' | grep -a -q 'VMIO GEN gen='" ||
	_fail "$VM: the guest did not boot: $(tail -c 2000 "$CON")"
g1=$(con_gen)
con_wait_ack "$g1" 8 60 || _fail "$VM: guest gen $g1 not writing: $(tail -c 2000 "$CON")"
log "$VM: guest on $home writes (gen $g1), $(( $(now_ms) - t )) ms after the start"

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
wait_for 120 resource_on 1 "$VM" "n$tgt"
resource_on 1 "$VM" "n$tgt" || _fail "$VM not moved to n$tgt: $(crm_on 1 crm_mon -1 2>&1)"
t_move=$(( $(now_ms) - t ))
grep -q "$VM.*migrate_to" "$(ndir "$h")/pcmk-log/pacemaker.log" ||
	_fail "$VM was moved, but not by a live migration (no migrate_to on $home)"
virsh_on "$tgt" domstate "$VM" | grep -qx running || _fail "n$tgt: $VM not running"
virsh_on "$h" domstate "$VM" >/dev/null 2>&1 && _fail "$home still has $VM"
crm_on 1 crm_resource --clear --resource "$VM" >/dev/null 2>&1
s0=$(con_last "$g1")
con_wait_ack "$g1" $(( s0 + 16 )) 60 ||
	_fail "$VM: guest stopped writing after the migration (last gen $g1 seq $(con_last "$g1"))"
[ "$(con_gen)" = "$g1" ] || _fail "$VM: guest rebooted during the migration (gen $(con_gen))"
dt=$(virsh_on "$tgt" domjobinfo "$VM" --completed 2>/dev/null |
	sed -n 's/^Total downtime: *\([0-9]*\) *ms.*/\1 ms/p')
log "$VM: guest keeps writing on n$tgt, same boot (gen $g1, seq $s0 -> $(con_last "$g1")); QEMU downtime ${dt:-unknown}"
log "BENCH pcmk-move: crm_resource --move $VM $home -> n$tgt (live migration, guest writing): $t_move ms, downtime ${dt:-unknown}"

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
moved_off() { vm_where "$1" && [ "$WHERE" != "$home" ]; }
wait_for 180 moved_off "$s1" && new=$WHERE
[ -n "$new" ] || _fail "$VM not restarted on a survivor: $(crm_on "$s1" crm_mon -1 2>&1)"
t_up=$(now_ms)
n=${new#n}
virsh_on "$n" domstate "$VM" | grep -qx running || _fail "$new: $VM not running"
log "$VM: running on $new $(( t_up - t_kill )) ms after the crash"
g2=$(( g1 + 1 ))
con_wait_ack "$g2" 0 120 || _fail "$VM: the restarted guest does not write: $(tail -c 2000 "$CON")"
t_write=$(now_ms)
tr -d '\r' <"$CON" | grep -a "VMIO VERIFY " | tail -n1 | grep -q 'result=ok' ||
	_fail "$VM: the restarted guest's verify failed: $(tr -d '\r' <"$CON" | grep -a 'VMIO VERIFY\|VMIO BAD' | tail -n 5)"
log "$VM: guest on $new writes again (gen $g2) $(( t_write - t_kill )) ms after the crash"

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
log "BENCH pcmk-failover: crash of $home -> fence_csvfs confirmed $(( fence_ok - t_kill )) ms -> qemu started on $new $(( start_ms - t_kill )) ms -> Pacemaker reports it running $(( t_up - t_kill )) ms -> guest writes again $(( t_write - t_kill )) ms"

# The full verify: Pacemaker stops the VM (the guest is cut off mid-write,
# as at a crash); one more boot checks every write acknowledged on the
# console, over all generations, is on the disk.
# (force_stop=true in the CIB: the test guest ignores ACPI shutdown, so
# VirtualDomain's graceful stop would wait out its timeout.)
crm_on "$n" crm_resource --resource "$VM" --set-parameter target-role --meta \
	--parameter-value Stopped >/dev/null 2>&1 || _fail "cannot stop $VM"
vm_running_on() { # I: libvirt on node I runs the domain
	[ "$(virsh_on "$1" domstate "$VM" 2>/dev/null | head -n1)" = running ]
}
vm_stopped() { [ -z "$(resource_node "$n" "$VM")" ] && ! vm_running_on "$n"; }
wait_for 120 vm_stopped
vm_running_on "$n" && _fail "$VM not stopped: $(virsh_on "$n" list --all 2>&1)"
vm_boot g "$n" "$VM.qcow2" "vmio.verify=only"
vm_wait_exit "$VM_LAST" 60 || vm_fail "$VM_LAST" "verify-only boot did not power off"
# the crash killed QEMU mid-write: leaked clusters (exit 3) are space,
# not data; corruption (exit 2) fails
rc=0
node_sh "$n" "qemu-img check -q \$CSV/$VM.qcow2" || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || _fail "qemu-img check failed (exit $rc)"
log "$VM: every acknowledged write found ($(vm_acked g)); qemu-img check: no corruption (exit $rc)"
_pass
