#!/bin/bash
# csv-vmagent's operations beyond start, stop and live migration, as a user
# sees them, without the lab: two agents on this machine (nodes 1 and 2)
# share one VM directory, as test-vmagent.sh does, and a third (node 3) runs
# with a file size limit, so that saving a VM's state fails on it.
#  - DEFINE and UNDEFINE: a good definition with every optional field, bad
#    fields refused naming the field, one that exists, one replaced; no
#    UNDEFINE of a VM that runs;
#  - quick migration: SAVE on node 1, START with "restore" on node 2: the
#    tiny guest's counter goes on from where it was saved, no reboot; the
#    saved file is gone once it runs; a save that fails leaves the VM
#    running, without a file;
#  - cpu_compat: the guest's CPU is limited to the cpu_features given;
#  - disks added to and removed from a running VM: QEMU holds the file and
#    LIST shows it, the definition has it, then not; a missing file, a bad
#    format and a disk attached twice are refused; a definition that cannot
#    be written rolls the add back;
#  - checkpoints on a VM with a small qcow2 disk: take, list, apply (the
#    counter goes back), delete; a VM without qcow2 is refused.
# The programs come from meson in VMAGENT, CLIENT and GUEST, as for
# test-vmagent.sh. Needs qemu-system-x86_64, qemu-img and python3 (exit 77
# without them).
# shellcheck disable=SC2154 # variables set by eval of the helper's output
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=vmagent-lib.sh
. "$(dirname "$0")/vmagent-lib.sh" csv-vmagent-ops qemu-system-x86_64 qemu-img python3

# ---- helpers (and those of vmagent-lib.sh) --------------------------------------

# jf FILE EXPR: EXPR of the JSON file FILE (as d).
jf() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); v = eval(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }
# is_reason AGENT NAME STATE PART: VM NAME is in STATE, its reason has PART.
is_reason() { [ "$(vm "$1" "$2" 'v["state"]')" = "$3" ] && [[ $(vm "$1" "$2" 'v["reason"]') == *"$4"* ]]; }
err_of() { js "$out" 'd.get("error", d.get("message", ""))'; }
# holds PID FILE: whether process PID has FILE open.
holds() { ls -l "/proc/$1/fd" 2>/dev/null | grep -q -- "-> $2\$"; }
cmdline() { tr '\0' ' ' <"/proc/$1/cmdline"; }
define_file() { printf '%s\n' "$2" >"$vms/$1.json"; }

cp "$GUEST" "$vms/csv-tiny-guest"
start_agent a 1
start_agent b 2
# Node 3 may write files of 8 MiB at most (SIGXFSZ ignored: a write past
# it fails with EFBIG): room for libqb's shared memory, not for the saved
# state of a VM that has dirtied 40 MiB.
(ulimit -f 8192; trap '' XFSZ; exec "$VMAGENT" --vm-dir "$vms" --run-dir "$work/run-c" --ipc-name "$ipc-c" \
	--node-id 3 --foreground >>"$work/agent-c.log" 2>&1) &
agent_pid[c]=$!
live[$!]=1
wait_for "agent c (node 3, file size limit) serves its IPC endpoint" 20 agent_up c
pass "three agents up; $(grep -o 'accelerator: [A-Z]*' "$work/agent-a.log" | head -n 1)"

# ---- 1. DEFINE and UNDEFINE ----------------------------------------------------------

full='{"name": "vmq", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest", "append": "tick=10",
 "anti_affinity": {"class": "web", "hard": true}, "restart": {"max": 3, "period_s": 600, "expire_s": 3600},
 "failback": "22-06", "migration": "quick", "cpu_compat": true, "operators": ["csvadmin"],
 "nics": [{"mac": "52:54:00:12:34:56"}]}'
req a define "{\"definition\": $full}"
check "DEFINE vmq with every optional field: $(err_of)" test "$rc" = 0
check "the reply names it, and $vms/vmq.json is the definition" \
	test "$(js "$out" 'd["name"]') $(jf "$vms/vmq.json" 'd["failback"] + " " + d["nics"][0]["mac"]')" = "vmq 22-06 52:54:00:12:34:56"
check "no temporary file is left in the VM directory" test -z "$(find "$vms" -name '*.tmp*')"
req a define "{\"definition\": $full}"
check "DEFINE of vmq again: EEXIST ($(err_of))" test "$rc" = 17
req a define "{\"definition\": ${full/\"vcpus\": 1/\"vcpus\": 2}, \"replace\": true}"
check "DEFINE with \"replace\": true replaces it" test "$rc $(jf "$vms/vmq.json" 'd["vcpus"]')" = "0 2"
req a define "{\"definition\": $full, \"replace\": true}"
bad_define() {
	local what=$1 text=$2 field=$3
	req a define "{\"definition\": $text}"
	check "DEFINE with $what: EINVAL naming \"$field\" ($(err_of))" rc_has "$rc" 22 "$(err_of)" "\"$field\""
	check "  and nothing written" test ! -e "$vms/$(js "$text" 'd["name"]').json"
}
base='"vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest"'
bad_define "restart.max 101" "{\"name\": \"bad1\", $base, \"restart\": {\"max\": 101}}" restart.max
bad_define "a multicast MAC" "{\"name\": \"bad2\", $base, \"nics\": [{\"mac\": \"01:00:5e:00:00:01\"}]}" "nics[0].mac"
bad_define "failback 25-06" "{\"name\": \"bad3\", $base, \"failback\": \"25-06\"}" failback
bad_define "a missing kernel" "{\"name\": \"bad4\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"nope\"}" kernel
req a undefine '{"name": "ghost"}'
check "UNDEFINE of a VM without a definition: ENOENT ($(err_of))" test "$rc" = 2
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	rc=0; out=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- "$CLIENT" --ipc-name "$ipc-a" \
		undefine '{"name": "vmq"}' 2>&1) || rc=$?
	check "uid 65534 may not UNDEFINE: EPERM" test "$rc" = 1 -a -e "$vms/vmq.json"
fi

# ---- 2. cpu_compat, quick migration node 1 -> node 2 -----------------------------------

req a list
flags=$(js "$out" 'd["cpu"]["flags"]')
check "LIST gives this node's CPU: $(js "$out" 'd["cpu"]["vendor"] + ", " + d["cpu"]["model"]'), $(wc -w <<<"$flags") flags, sorted" \
	test -n "$flags" -a "$flags" = "$(tr ' ' '\n' <<<"$flags" | LC_ALL=C sort | xargs)"
# The cluster's set: this node's flags without lahf_lm, which qemu64 has.
features=$(tr ' ' '\n' <<<"$flags" | grep -vx 'lahf_lm' | xargs)
req a start "{\"name\": \"vmq\", \"cpu_features\": \"$features\"}"
check "START vmq on node 1 with cpu_features: $(err_of)" test "$rc" = 0
pid=$(vm a vmq 'v["pid"]')
args=$(cmdline "$pid")
check "its CPU is limited: qemu64 (TCG) or host (KVM), lahf_lm turned off" \
	matches "$args" "* -cpu *-lahf-lm*"
check "its NIC: virtio-net-pci, MAC 52:54:00:12:34:56, on a user network with restrict=on" \
	matches "$args" "*-netdev user,id=net0,restrict=on -device virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56,*"
check "every VM has the virtio-scsi controller scsi0" matches "$args" "*-device virtio-scsi-pci,id=scsi0*"
req a undefine '{"name": "vmq"}'
check "UNDEFINE of a VM that runs here: EBUSY ($(err_of))" test "$rc" = 16
wait_for "vmq counts on node 1" 20 ticks_past "$(serial a vmq)" 30
req a save '{"name": "vmq"}'
check "SAVE vmq: $(err_of)" test "$rc" = 0
st=$(vm a vmq 'v["state"]')
check "LIST: saving (or stopped already): $st" test "$st" = saving -o "${st#stopp}" != "$st"
wait_for "vmq is stopped on node 1 once saved" 30 state_is a vmq stopped
reason=$(vm a vmq 'v["reason"]')
check "the reason names the file: $reason" test "$reason" = "saved to $vms/vmq.state"
check "$vms/vmq.state is there ($(stat -c %s "$vms/vmq.state" 2>/dev/null) bytes), no temporary file" \
	test -s "$vms/vmq.state" -a -z "$(find "$vms" -name '*.tmp*')"
saved=$(last_tick "$(serial a vmq)")
t0=${EPOCHREALTIME/./}
req b start "{\"name\": \"vmq\", \"restore\": true, \"cpu_features\": \"$features\"}"
check "START vmq on node 2 with \"restore\": $(err_of) ($(((${EPOCHREALTIME/./} - t0) / 1000)) ms)" test "$rc" = 0
wait_for "vmq counts on node 2" 20 ticks_past "$(serial b vmq)" $((saved + 20))
check "node 2 goes on from the tick saved on node 1 ($saved, then $(first_tick "$(serial b vmq)")), without a reboot" \
	test "$(first_tick "$(serial b vmq)") $(started_lines "$(serial b vmq)")" = "$((saved + 1)) 0"
check "the saved state is removed once the VM runs" test ! -e "$vms/vmq.state"
check "LIST on node 2: running, restored: $(vm b vmq 'v["reason"]')" state_is b vmq running
req a start '{"name": "vmq", "restore": true}'
check "START with \"restore\" and no saved state: ENOENT ($(err_of))" rc_has "$rc" 2 "$(err_of)" "no saved state"

# A save that fails (node 3 may not write the file): the VM runs on.
define_file vmf '{"name": "vmf", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest",
 "append": "tick=20 dirty=40 rate=40"}'
req c start '{"name": "vmf"}'
check "START vmf on node 3: $(err_of)" test "$rc" = 0
wait_for "vmf counts on node 3, having dirtied 40 MiB" 20 ticks_past "$(serial c vmf)" 75
req c save '{"name": "vmf"}'
check "SAVE vmf on node 3 is accepted ($(err_of))" test "$rc" = 0
wait_for "vmf is running again after the failed save" 30 \
	is_reason c vmf "running" "failed"
pass "the reason says why: $(vm c vmf 'v["reason"]')"
check "no saved state, not even a partial one, is left" test -z "$(find "$vms" -name 'vmf.state*')"
base_tick=$(last_tick "$(serial c vmf)")
wait_for "vmf counts on after the failed save" 10 ticks_past "$(serial c vmf)" $((base_tick + 10))

# ---- 3. disks added to and removed from a running VM -----------------------------------

truncate -s 8M "$vms/d1.raw" "$vms/d2.raw"
pid=$(vm b vmq 'v["pid"]')
req b disk-add '{"name": "vmq", "file": "d1.raw", "format": "raw"}'
check "DISK_ADD d1.raw to vmq on node 2: $(err_of)" test "$rc" = 0
id=$(js "$out" 'd.get("id", "")')
check "its id is disk0 (vmq had no disk), LIST shows it" \
	test "$id $(vm b vmq '" ".join(x["id"] + "=" + x["file"] for x in v["disks"])')" = "disk0 disk0=$vms/d1.raw"
check "QEMU holds the file" holds "$pid" "$vms/d1.raw"
check "the definition has it" test "$(jf "$vms/vmq.json" '[x["file"] for x in d["disks"]]')" = "['d1.raw']"
req b disk-add '{"name": "vmq", "file": "d1.raw", "format": "raw"}'
check "DISK_ADD of it again: EEXIST ($(err_of))" test "$rc" = 17
req b disk-add '{"name": "vmq", "file": "missing.raw", "format": "raw"}'
check "DISK_ADD of a missing file: EINVAL naming it ($(err_of))" rc_has "$rc" 22 "$(err_of)" "missing.raw"
req b disk-add '{"name": "vmq", "file": "d2.raw", "format": "vmdk"}'
check "DISK_ADD with format vmdk: EINVAL" test "$rc" = 22
req a disk-add '{"name": "vmq", "file": "d2.raw", "format": "raw"}'
check "DISK_ADD to a VM that does not run on this node: EINVAL ($(err_of))" test "$rc" = 22
# A definition that cannot be rewritten: the disk is attached, then
# detached again.
cp "$vms/vmq.json" "$work/vmq.json.good"
echo '{"name": "vmq",' >"$vms/vmq.json"
req b disk-add '{"name": "vmq", "file": "d2.raw", "format": "raw"}'
check "DISK_ADD when the definition is broken fails, naming the step: $(err_of)" \
	rc_has "$rc" 22 "$(err_of)" "updating the definition failed"
check "  and says the disk was detached again" rc_has 0 0 "$(err_of)" "detached again"
check "  QEMU no longer holds d2.raw, LIST does not show it" \
	sh -c '! ls -l /proc/$1/fd | grep -q d2.raw && [ "$2" = 1 ]' _ "$pid" "$(vm b vmq 'len(v["disks"])')"
cp "$work/vmq.json.good" "$vms/vmq.json"
req b disk-remove '{"name": "vmq", "id": "disk7"}'
check "DISK_REMOVE of an unknown disk: ENOENT ($(err_of))" test "$rc" = 2
req b disk-remove '{"name": "vmq", "id": "disk0"}'
check "DISK_REMOVE disk0: $(err_of)" test "$rc" = 0
check "LIST shows no disk, QEMU does not hold d1.raw" \
	sh -c '[ "$1" = 0 ] && ! ls -l /proc/$2/fd | grep -q d1.raw' _ "$(vm b vmq 'len(v["disks"])')" "$pid"
check "the definition has no disk" test "$(jf "$vms/vmq.json" 'd.get("disks")')" = "[]"
base_tick=$(last_tick "$(serial b vmq)")
wait_for "vmq counts on" 10 ticks_past "$(serial b vmq)" $((base_tick + 10))

# ---- 4. checkpoints --------------------------------------------------------------------

req b checkpoint '{"name": "vmq", "op": "take", "checkpoint": "cp1"}'
check "CHECKPOINT on a VM without qcow2: EOPNOTSUPP ($(err_of))" \
	rc_has "$rc" 95 "$(err_of)" "checkpoints need a qcow2 disk (vmq has none)"
qemu-img create -q -f qcow2 "$vms/vmc.qcow2" 16M
define_file vmc '{"name": "vmc", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest", "append": "tick=10",
 "disks": [{"file": "vmc.qcow2", "format": "qcow2"}]}'
req a start '{"name": "vmc"}'
check "START vmc (a qcow2 disk) on node 1" test "$rc" = 0
wait_for "vmc counts" 20 ticks_past "$(serial a vmc)" 20
req a checkpoint '{"name": "vmc", "op": "list"}'
check "CHECKPOINT list: none yet" test "$rc $out" = '0 {"checkpoints":[]}'
at_take=$(last_tick "$(serial a vmc)")
req a checkpoint '{"name": "vmc", "op": "take", "checkpoint": "cp1"}'
check "CHECKPOINT take cp1 (at tick $at_take): $(err_of)" test "$rc" = 0
req a checkpoint '{"name": "vmc", "op": "list"}'
check "list: cp1 with its date and state size: $(js "$out" 'd["checkpoints"]')" \
	test "$(js "$out" '[(c["name"], len(c["date"]), c["vm_state_mb"] > 0) for c in d["checkpoints"]]')" = "[('cp1', 20, True)]"
req a checkpoint '{"name": "vmc", "op": "take", "checkpoint": "cp1"}'
check "take cp1 again: EEXIST" test "$rc" = 17
wait_for "vmc counts on" 20 ticks_past "$(serial a vmc)" $((at_take + 100))
before=$(last_tick "$(serial a vmc)")
size=$(stat -c %s "$(serial a vmc)")
req a checkpoint '{"name": "vmc", "op": "apply", "checkpoint": "cp1"}'
check "CHECKPOINT apply cp1 (at tick $before): $(err_of)" test "$rc" = 0
sleep 0.5
# The lowest tick printed since, on a whole line (the guest may have been
# paused in the middle of one): it counts on from the checkpoint.
after=$(tail -c +"$((size + 1))" "$(serial a vmc)" | grep -ax 'csv-guest tick [0-9]*' | awk '{print $3}' | sort -n | head -n 1)
check "the counter went back: tick ${after:-none} after the apply; $at_take when cp1 was taken, $before before the apply" \
	test "${after:-0}" -gt "$at_take" -a "${after:-0}" -lt "$((before - 50))"
check "vmc is running" state_is a vmc running
req a checkpoint '{"name": "vmc", "op": "apply", "checkpoint": "nope"}'
check "apply of an unknown checkpoint: ENOENT" test "$rc" = 2
req a checkpoint '{"name": "vmc", "op": "delete", "checkpoint": "cp1"}'
check "CHECKPOINT delete cp1: $(err_of)" test "$rc" = 0
req a checkpoint '{"name": "vmc", "op": "list"}'
check "list: none again" test "$rc $out" = '0 {"checkpoints":[]}'

# ---- 5. the end ------------------------------------------------------------------------

req b kill '{"name": "vmq"}'
wait_for "vmq is stopped on node 2" 10 state_is b vmq stopped
req b undefine '{"name": "vmq"}'
check "UNDEFINE vmq once stopped: $(err_of)" test "$rc" = 0 -a ! -e "$vms/vmq.json"
for n in a b c; do kill -TERM "${agent_pid[$n]}"; done
for n in a b c; do
	rc=0
	wait "${agent_pid[$n]}" || rc=$?
	unset "live[${agent_pid[$n]}]"
	check "agent $n exits 0 on SIGTERM" test "$rc" = 0
done
check "no agent reported a sanitizer error" sh -c '! grep -q "Sanitizer" "$@"' _ "$work"/agent-*.log

finish
