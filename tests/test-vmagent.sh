#!/bin/bash
# csv-vmagent as a user sees it, without the lab: two agents on this
# machine (nodes 1 and 2, each with its own IPC endpoint and run
# directory) share one VM directory, which stands in for the shared
# volume. The project's tiny guest starts and counts on its serial port;
# bad definitions are refused naming the field; a second start, an unknown
# VM and a caller who is not root are refused; a migration to a port where
# nobody listens fails and the VM runs on; a live migration from node 1 to
# node 2 keeps the counter going without a reset (the blackout seen on the
# serial lines, and QEMU's times, are printed), and back; STOP, KILL, a
# QEMU that crashes, a disk that another node's VM holds, and the agent
# killed or stopped: no VM is left behind.
# The programs come from meson in VMAGENT, CLIENT (test-vmagent-client)
# and GUEST (csv-tiny-guest). Needs qemu-system-x86_64 and python3 (exit
# 77 without them); root only for the check of an unprivileged caller.
# shellcheck disable=SC2154 # variables set by eval of the helper's output
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=vmagent-lib.sh
. "$(dirname "$0")/vmagent-lib.sh" csv-vmagent-test qemu-system-x86_64 python3

# The downtime limit asked of QEMU, and the longest pause of the ticks that
# the test accepts (the design's target is 50 ms; a loaded machine needs
# room, and the times are printed).
DOWNTIME_LIMIT_MS=${DOWNTIME_LIMIT_MS:-50}
BLACKOUT_MAX_MS=${BLACKOUT_MAX_MS:-500}

# ---- helpers (and those of vmagent-lib.sh) --------------------------------------

# is AGENT NAME EXPR VALUE: whether EXPR of VM NAME is VALUE.
is() { [ "$(vm "$1" "$2" "$3")" = "$4" ]; }
alive() { kill -0 "$1" 2>/dev/null; }
gone() { ! alive "$1"; }

# define NAME JSON: writes the definition of VM NAME.
define() { printf '%s\n' "$2" >"$vms/$1.json"; }

# ---- the VMs ------------------------------------------------------------------

cp "$GUEST" "$vms/csv-tiny-guest"
truncate -s 32M "$vms/vm1.raw"
# vm1: the VM that migrates, 256 MiB like the design's target, a disk on
# the "volume"; a tick every 10 ms, so that the blackout is seen to 10 ms.
define vm1 '{"name": "vm1", "vcpus": 1, "memory_mb": 256, "kernel": "csv-tiny-guest", "append": "tick=10",
 "disks": [{"file": "vm1.raw", "format": "raw"}], "priority": 1, "preferred_nodes": [1, 2]}'
# vm2 and vm3: small, no disk, the kernel by an absolute path.
define vm2 "{\"name\": \"vm2\", \"vcpus\": 1, \"memory_mb\": 64, \"kernel\": \"$vms/csv-tiny-guest\", \"append\": \"tick=50\"}"
define vm3 "{\"name\": \"vm3\", \"vcpus\": 2, \"memory_mb\": 64, \"kernel\": \"$vms/csv-tiny-guest\"}"

echo "$("$VMAGENT" --version); $(qemu-system-x86_64 --version | head -n 1)"
rc=0; help=$("$VMAGENT" --help) || rc=$?
check "--help exits 0 and names --vm-dir" rc_has "$rc" 0 "$help" "--vm-dir DIR"
rc=0; "$VMAGENT" --run-dir "$work/x" >/dev/null 2>"$work/noopt.err" || rc=$?
check "without --vm-dir it refuses to start, saying so (exit $rc: $(head -n 1 "$work/noopt.err"))" \
	rc_has "$rc" 1 "$(cat "$work/noopt.err")" "--vm-dir is required"

start_agent a 1
start_agent b 2
accel=$(grep -o 'accelerator: [A-Z]*' "$work/agent-a.log" | head -n 1)
pass "two agents up (nodes 1 and 2), one VM directory; $accel"
req a list
check "LIST: node 1, the VM directory, no VM yet" \
	test "$(js "$out" '(d["node_id"], d["vm_dir"], len(d["vms"]))')" = "(1, '$vms', 0)"

# 1. Bad definitions, unknown VMs.
bad() {
	local name=$1 text=$2 expect=$3
	printf '%s\n' "$text" >"$vms/$name.json"
	req a start "{\"name\": \"$name\"}"
	local err
	err=$(js "$out" 'd.get("error", "")')
	check "a bad definition ($name) is refused with EINVAL, naming $expect: $err" rc_has "$rc" 22 "$err" "$expect"
	check "$name is not listed" test -z "$(vm a "$name" 'v["state"]')"
}
bad badvcpus '{"name": "badvcpus", "vcpus": 0, "memory_mb": 64, "kernel": "csv-tiny-guest"}' '"vcpus"'
bad badmem '{"name": "badmem", "vcpus": 1, "memory_mb": 8, "kernel": "csv-tiny-guest"}' '"memory_mb"'
bad badname '{"name": "other", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest"}' '"name"'
bad badkernel '{"name": "badkernel", "vcpus": 1, "memory_mb": 64, "kernel": "no-such-kernel"}' '"kernel"'
bad badformat '{"name": "badformat", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest",
 "disks": [{"file": "vm1.raw", "format": "vmdk"}]}' '"disks[0].format"'
bad baddisk '{"name": "baddisk", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest",
 "disks": [{"file": "missing.raw", "format": "raw"}]}' '"disks[0].file"'
bad badfield '{"name": "badfield", "vcpus": 1, "memory": 64, "kernel": "csv-tiny-guest"}' '"memory"'
bad badjson '{"name": "badjson", "vcpus": 1,' 'not JSON'
req a start '{"name": "ghost"}'
check "START of a VM without a definition: ENOENT ($(js "$out" 'd["error"]'))" test "$rc" = 2
req a stop '{"name": "ghost"}'
check "STOP of a VM this agent never ran: ENOENT" test "$rc" = 2
req a migrate '{"name": "ghost", "host": "127.0.0.1", "port": 1}'
check "MIGRATE of a VM this agent never ran: ENOENT" test "$rc" = 2
req a start '{"name": "../vms/vm1"}'
check "a name with a slash is refused: EINVAL" test "$rc" = 22
req a start '{}'
check "START without a name: EINVAL" test "$rc" = 22

# 2. vm1 starts on node 1 and counts.
t0=${EPOCHREALTIME/./}
req a start '{"name": "vm1"}'
check "START vm1 on node 1: $out" test "$rc" = 0
start_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
check "LIST: vm1 running on node 1" state_is a vm1 running
pid1=$(vm a vm1 'v["pid"]')
check "LIST gives QEMU's pid ($pid1), which runs" alive "$pid1"
args=$(tr '\0' ' ' <"/proc/$pid1/cmdline")
check "QEMU has the disk with cache=none on a virtio-scsi controller, -machine q35" \
	matches "$args" "*-machine q35 *-device virtio-scsi-pci,id=scsi0 -drive file=$vms/vm1.raw,format=raw,*,cache=none,aio=threads -device scsi-hd,drive=disk0,*"
wait_for "vm1 counts 100 ticks on its serial port" 30 ticks_past "$(serial a vm1)" 100
check "the serial port says it started once, with its parameters: $(head -n 1 "$(serial a vm1)")" \
	test "$(head -n 1 "$(serial a vm1)")" = "csv-guest started mem=256MiB tick=10ms dirty=0MiB rate=0MiB/s"
pass "vm1 runs: START answered in $start_ms ms, tick $(last_tick "$(serial a vm1)") now"
req a start '{"name": "vm1"}'
check "a second START: EEXIST ($(js "$out" 'd["error"]'))" test "$rc" = 17

# 3. Its disk is held: node 2 cannot run it at the same time.
req b start '{"name": "vm1"}'
err=$(js "$out" 'd.get("error", "")')
check "START of vm1 on node 2 while node 1 runs it fails (EIO) on the disk's lock: $err" rc_has "$rc" 5 "$err" lock
check "node 2 lists vm1 failed, with QEMU's reason" state_is b vm1 failed
wait_for "vm1 still counts on node 1" 10 ticks_past "$(serial a vm1)" $(($(last_tick "$(serial a vm1)") + 20))

# 4. An unprivileged caller may LIST, not change.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	nobody() { rc=0; out=$(setpriv --reuid=65534 --regid=65534 --clear-groups -- "$CLIENT" --ipc-name "$ipc-a" "$@" 2>&1) || rc=$?; }
	nobody list
	check "uid 65534 may LIST (and sees vm1)" rc_has "$rc" 0 "$out" '"name":"vm1"'
	nobody start '{"name": "vm2"}'
	check "uid 65534 may not START: EPERM ($(js "$out" 'd["error"]'))" test "$rc" = 1
	nobody kill '{"name": "vm1"}'
	check "uid 65534 may not KILL: EPERM" test "$rc" = 1
	check "vm1 runs on" state_is a vm1 running
	check "vm2 was not started" test -z "$(vm a vm2 'v["state"]')"
else
	echo "(not root: the check of an unprivileged caller is skipped)"
fi

# 5. A migration to a port where nobody listens fails; vm1 runs on.
dead_port=$(free_port)
req a migrate "{\"name\": \"vm1\", \"host\": \"127.0.0.1\", \"port\": $dead_port, \"timeout_s\": 20}"
check "MIGRATE to 127.0.0.1:$dead_port, where nobody listens, is accepted or refused at once (rc $rc: $out)" \
	test "$rc" = 0 -o "$rc" = 5
wait_for "vm1 is running again on node 1 after the failed migration" 30 \
	is a vm1 'v["state"] + " " + (v["migration"] or {}).get("status", "none")' "running failed"
pass "the reason says so: $(vm a vm1 'v["reason"]')"
base=$(last_tick "$(serial a vm1)")
wait_for "vm1 counts on on node 1" 10 ticks_past "$(serial a vm1)" $((base + 50))
check "it is the same QEMU" test "$(vm a vm1 'v["pid"]')" = "$pid1"

# 6. Live migration of vm1 from node 1 to node 2.
cat >"$work/stamp.py" <<'EOF'
"""Follows the serial files given (QEMU writes them) and writes each line
that appears as "TIME INDEX L TEXT" (TIME: host seconds at arrival, INDEX:
which file); a line left unfinished at the end as "TIME INDEX P TEXT".
Polls every millisecond until SIGTERM; creates OUT.ready once it runs."""
import os, signal, sys, time
out = open(sys.argv[1], "w", buffering=1)
paths = sys.argv[2:]
pos = [os.path.getsize(p) if os.path.exists(p) else 0 for p in paths]
part = [b""] * len(paths)
running = True
def stop(*_):
    global running
    running = False
signal.signal(signal.SIGTERM, stop)
open(sys.argv[1] + ".ready", "w").close()
while running:
    for i, p in enumerate(paths):
        try:
            with open(p, "rb") as f:
                f.seek(pos[i])
                data = f.read()
        except FileNotFoundError:
            continue
        if not data:
            continue
        now = time.time()
        pos[i] += len(data)
        *lines, part[i] = (part[i] + data).split(b"\n")
        for line in lines:
            out.write("%.6f %d L %s\n" % (now, i, line.decode(errors="replace")))
    time.sleep(0.001)
for i in range(len(paths)):
    if part[i]:
        out.write("%.6f %d P %s\n" % (time.time(), i, part[i].decode(errors="replace")))
EOF
cat >"$work/switch.py" <<'EOF'
"""The ticks across a migration from file 0 to file 1 of the stamps in
argv[1], started at argv[2] (seconds): printed as shell assignments."""
import re, sys
TICK = re.compile(r"csv-guest tick (\d+)$")
recs = [l.rstrip("\n").split(" ", 3) for l in open(sys.argv[1])]
recs = [(float(t), int(i), k, (x + [""])[0]) for t, i, k, *x in recs]
t0 = float(sys.argv[2])
src = [(t, s) for t, i, k, s in recs if i == 0]
tail = [s for t, i, k, s in recs if i == 0 and k == "P"]
dst = [(t, s) for t, i, k, s in recs if i == 1 and k == "L"]
if tail and dst:
    src = [(t, s) for t, i, k, s in recs if i == 0 and k == "L"]
    dst[0] = (dst[0][0], tail[0] + dst[0][1])
def ticks(lines):
    return [(t, int(m.group(1))) for t, s in lines for m in [TICK.match(s)] if m]
s, d = ticks(src), ticks(dst)
def ok(x):
    return int(all(b[1] == a[1] + 1 for a, b in zip(x, x[1:])))
if not s or not d:
    print("src_last=%d dst_first=0 dst_last=0 src_ok=0 dst_ok=0 src_after=0 longest_ms=0 switch_ms=0 normal_ms=0"
          % (s[-1][1] if s else 0))
    sys.exit(0)
both = s + d
window = [(a, b) for a, b in zip(both, both[1:]) if b[0] >= t0 and a[0] <= d[0][0] + 0.5]
pre = [x for x in s if x[0] < t0]
normal = (pre[-1][0] - pre[0][0]) / (len(pre) - 1) if len(pre) > 1 else 0
print("src_last=%d dst_first=%d dst_last=%d src_ok=%d dst_ok=%d src_after=%d longest_ms=%.1f switch_ms=%.1f "
      "normal_ms=%.1f" % (s[-1][1], d[0][1], d[-1][1], ok(s), ok(d), sum(t >= d[0][0] for t, _ in s),
                          max(b[0] - a[0] for a, b in window) * 1000, (d[0][0] - s[-1][0]) * 1000,
                          normal * 1000))
EOF
req b incoming '{"name": "vm1", "port": 0}'
port=$(js "$out" 'd.get("port", 0)')
check "INCOMING vm1 on node 2 with port 0: QEMU listens on port $port ($(js "$out" 'd.get("message", d.get("error"))'))" \
	test "$rc" = 0 -a "${port:-0}" -gt 0
check "LIST: vm1 incoming on node 2" state_is b vm1 incoming
check "nothing runs in vm1 on node 2 yet" test "$(last_tick "$(serial b vm1)")" = 0
python3 "$work/stamp.py" "$work/stamps" "$(serial a vm1)" "$(serial b vm1)" &
stamper=$!
live[$stamper]=1
wait_for "the serial stamper runs" 20 test -e "$work/stamps.ready"
sleep 0.5  # ticks before the migration, for their normal period
mig_t0=$EPOCHREALTIME
t0=${EPOCHREALTIME/./}
req a migrate "{\"name\": \"vm1\", \"host\": \"127.0.0.1\", \"port\": $port, \"downtime_ms\": $DOWNTIME_LIMIT_MS}"
check "MIGRATE vm1 from node 1 to 127.0.0.1:$port: $out" test "$rc" = 0
# The source's QEMU exits once the migration completed: waited for without
# starting processes, which would take CPU from the two QEMUs while the
# guest is paused, and lengthen its pause.
wait_for "node 1's QEMU of vm1 exits after the migration" 60 gone "$pid1"
agent_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
wait_for "node 1 shows vm1 stopped after the migration" 10 state_is a vm1 stopped
reason=$(vm a vm1 'v["reason"]')
check "node 1 says why: $reason" test "$reason" = "migrated to 127.0.0.1:$port"
mig=$(vm a vm1 'v["migration"]')
eval "$(vm a vm1 '"mig_status=%s mig_total=%s mig_down=%s mig_mb=%s" % tuple(v["migration"][k] for k in ("status", "total_ms", "downtime_ms", "transferred_mb"))')"
check "LIST on node 1: the migration completed ($mig)" test "$mig_status" = completed
wait_for "node 2 shows vm1 running" 10 state_is b vm1 running
pid2=$(vm b vm1 'v["pid"]')
base=$(last_tick "$(serial b vm1)")
wait_for "vm1 counts 100 more ticks on node 2" 30 ticks_past "$(serial b vm1)" $((base + 100))
kill "$stamper"
wait "$stamper" || :
unset "live[$stamper]"
eval "$(python3 "$work/switch.py" "$work/stamps" "$mig_t0")"
check "node 1 counted without a gap up to the switch (to $src_last)" test "$src_ok" = 1
check "node 2 goes on from node 1's last tick ($src_last, then $dst_first)" test "$dst_first" = $((src_last + 1))
check "node 2 counts on without a gap (to $dst_last)" test "$dst_ok" = 1
check "node 2 did not start the guest again" test "$(started_lines "$(serial b vm1)")" = 0
check "node 1 printed no tick after node 2's first" test "$src_after" = 0
pass "live migration node 1 -> node 2: blackout $longest_ms ms (the longest gap between ticks from the MIGRATE on; at the switch $switch_ms ms; ticks came every $normal_ms ms on average before); QEMU: total $mig_total ms, downtime $mig_down ms (limit $DOWNTIME_LIMIT_MS ms), $mig_mb MiB sent; from MIGRATE to the exit of the source's QEMU: $agent_ms ms"
check "blackout under $BLACKOUT_MAX_MS ms" awk -v b="$longest_ms" -v m="$BLACKOUT_MAX_MS" 'BEGIN {exit !(b < m)}'

# 7. And back to node 1, on a port given.
port=$(free_port)
req a incoming "{\"name\": \"vm1\", \"port\": $port}"
check "INCOMING vm1 on node 1 on port $port (vm1 is stopped there): $(js "$out" 'd.get("port")')" \
	test "$rc" = 0 -a "$(js "$out" 'd.get("port")')" = "$port"
req b migrate "{\"name\": \"vm1\", \"host\": \"127.0.0.1\", \"port\": $port}"
check "MIGRATE vm1 from node 2 back to node 1" test "$rc" = 0
wait_for "node 1 shows vm1 running again" 60 state_is a vm1 running
wait_for "node 2 shows vm1 stopped (migrated)" 10 state_is b vm1 stopped
check "node 2's QEMU of vm1 is gone" gone "$pid2"
b_last=$(last_tick "$(serial b vm1)")
wait_for "vm1 counts on node 1 again" 30 ticks_past "$(serial a vm1)" $((b_last + 50))
check "node 1 goes on from node 2's last tick ($b_last, then $(first_tick "$(serial a vm1)")), not started again" \
	test "$(first_tick "$(serial a vm1)") $(started_lines "$(serial a vm1)")" = "$((b_last + 1)) 0"
pid1=$(vm a vm1 'v["pid"]')

# 8. STOP: the tiny guest has no ACPI, so it is powered off at the timeout.
t0=${EPOCHREALTIME/./}
req a stop '{"name": "vm1", "timeout_s": 1}'
check "STOP vm1 with a 1 s timeout: $(js "$out" 'd.get("message", d.get("error"))')" test "$rc" = 0
st=$(vm a vm1 'v["state"]')
check "LIST: vm1 stopping (or stopped already, on a slow machine): $st" matches "$st" "stopp[ie][nd]*"
wait_for "vm1 is stopped" 10 state_is a vm1 stopped
stop_ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
reason=$(vm a vm1 'v["reason"]')
check "after the timeout, not before ($stop_ms ms): $reason" \
	rc_has "$((stop_ms >= 1000))" 1 "$reason" "did not shut down in 1 s"
check "its QEMU is gone" gone "$pid1"
check "LIST still shows it, pid null" test "$(vm a vm1 'v["pid"]')" = ""
req a stop '{"name": "vm1"}'
check "STOP of a stopped VM says so: $(js "$out" 'd.get("message")')" test "$rc" = 0

# 9. KILL.
req b start '{"name": "vm2"}'
check "START vm2 on node 2" test "$rc" = 0
pid=$(vm b vm2 'v["pid"]')
wait_for "vm2 counts" 20 ticks_past "$(serial b vm2)" 5
t0=${EPOCHREALTIME/./}
req b kill '{"name": "vm2"}'
check "KILL vm2: $(js "$out" 'd.get("message", d.get("error"))')" test "$rc" = 0
wait_for "vm2 is stopped" 5 state_is b vm2 stopped
pass "KILL to stopped in LIST: $(((${EPOCHREALTIME/./} - t0) / 1000)) ms ($(vm b vm2 'v["reason"]'))"
check "its QEMU is gone" gone "$pid"

# 10. A QEMU that dies is seen failed.
req a start '{"name": "vm3"}'
check "START vm3 on node 1" test "$rc" = 0
pid=$(vm a vm3 'v["pid"]')
kill -9 "$pid"
wait_for "vm3 is failed after its QEMU was killed" 5 state_is a vm3 failed
reason=$(vm a vm3 'v["reason"]')
check "the reason says how: $reason" rc_has 0 0 "$reason" "killed by signal 9"

# 11. An agent that is killed leaves no VM behind (a node's power loss).
req b start '{"name": "vm2"}'
check "START vm2 on node 2 again" test "$rc" = 0
pid=$(vm b vm2 'v["pid"]')
kill -9 "${agent_pid[b]}"
wait "${agent_pid[b]}" 2>/dev/null || :
unset "live[${agent_pid[b]}]"
wait_for "node 2's QEMU of vm2 dies with its killed agent" 5 gone "$pid"

# 12. An agent that is asked to stop powers its VMs off and exits 0.
req a start '{"name": "vm2"}'
check "START vm2 on node 1" test "$rc" = 0
pid=$(vm a vm2 'v["pid"]')
kill -TERM "${agent_pid[a]}"
rc=0
wait "${agent_pid[a]}" || rc=$?
unset "live[${agent_pid[a]}]"
check "SIGTERM: agent 1 exits 0" test "$rc" = 0
check "its QEMU of vm2 is gone" gone "$pid"
check "it said so" grep -q "powering off 1 VM(s)" "$work/agent-a.log"
check "no QEMU of this test is left" test -z "$(pgrep -f -- "-name guest=vm[0-9] .*$work/" || :)"
check "no agent reported a sanitizer error" sh -c '! grep -q "Sanitizer" "$@"' _ "$work"/agent-*.log

finish
