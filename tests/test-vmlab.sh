#!/bin/bash
# VM roles in the lab cluster, as an operator drives them with csvctl: a
# three-node lab (csv-vmagent on every node, the lab's fence agent) where
# VMs of the tiny guest are created, started (placed by memory,
# anti-affinity and priority), stopped, live- and quick-migrated, a
# migration that fails midway leaves the VM on its source, a node is
# drained and resumed with failback, an operator group may start and stop
# only its VM, and a node that runs VMs is killed: each of its VMs runs
# again on a survivor, exactly once, and the time from the kill is printed.
# At every step no VM has a QEMU on two nodes. The programs come from
# meson: CSVCTL (csvctl), LAB (csv-lab), BUILD (the build directory).
set -u

: "${CSVCTL:?set CSVCTL to csvctl}" "${LAB:?set LAB to csv-lab}" "${BUILD:?set BUILD to the build directory}"
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
for t in corosync nbdkit ip nsenter qemu-system-x86_64 python3 groupadd setpriv; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
# The lab's names are fixed: never tear down a lab that someone else brought up.
if ip link show csvlab0 >/dev/null 2>&1 || ip netns list | grep -q '^csvlab-n'; then
	echo "SKIP: a lab is already up (csv-lab down removes it)"
	exit 77
fi

T_START=${EPOCHREALTIME/./}
work=$(mktemp -d /tmp/csv-vmlab-test.XXXXXX)
dir=$work/lab
opgroup=csvvmtest$$
up_started=0
cleanup() {
	local rc=$?
	if [ "$rc" != 0 ] || [ "${failures:-0}" != 0 ]; then
		for f in "$dir"/node*/rmd.log "$dir"/node*/vmagent.log; do
			[ -f "$f" ] && { echo "--- $f"; tail -n 25 "$f"; }
		done
	fi
	[ "$up_started" = 1 ] && "$LAB" down --dir "$dir" >/dev/null 2>&1
	groupdel "$opgroup" 2>/dev/null
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }
secs() { local d=$(($1 / 100000)); printf '%d.%d' $((d / 10)) $((d % 10)); }

# csvctl on node I (in its namespace, where its daemons' IPC is).
ctl() { local i=$1; shift; "$LAB" exec "$i" -- "$CSVCTL" "$@"; }

# FIELD of VM NAME in csv-rmd's state, as node 1 sees it ("" for null).
vm_field() {
	ctl 1 vm list --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        x = v.get(sys.argv[2])
        print("" if x is None else x)' "$1" "$2"
}
vm_is() { [ "$(vm_field "$1" phase) $(vm_field "$1" node)" = "$2 $3" ]; }
# wait_for WHAT SECONDS COMMAND...: waits until COMMAND succeeds, records it.
wait_for() {
	local what=$1 t=$2 t0=${EPOCHREALTIME/./}
	shift 2
	while ! "$@"; do
		if [ $(($(ms_since "$t0") / 1000)) -ge "$t" ]; then
			fail "$what (not within $t s)"
			return 1
		fi
		sleep 0.1
	done
	pass "$what ($(ms_since "$t0") ms)"
}
# Every VM has a QEMU on at most one node, and it is the node of the state
# when it runs.
check_once() {
	local vm n bad=
	for vm in "$@"; do
		n=$(qemu_nodes "$vm")
		[ "$(wc -w <<<"$n")" -le 1 ] || bad+=" $vm on nodes $n;"
		if [ "$(vm_field "$vm" phase)" = running ] && [ "$n" != "$(vm_field "$vm" node)" ]; then
			bad+=" $vm runs on node(s) '$n', the state says node $(vm_field "$vm" node);"
		fi
	done
	check "every VM runs on exactly one node ($*)${bad:+:$bad}" test -z "$bad"
}
serial() { echo "/run/csvlab/n$1/$2.serial"; }
last_tick() { { grep -ao 'csv-guest tick [0-9]*' "$1" 2>/dev/null || :; } | tail -n 1 | awk 'END {print $3 + 0}'; }
first_tick() { { grep -ao 'csv-guest tick [0-9]*' "$1" 2>/dev/null || :; } | head -n 1 | awk 'END {print $3 + 0}'; }
started_lines() { local n; n=$(grep -ac 'csv-guest started' "$1" 2>/dev/null); echo "${n:-0}"; }

# define NAME PRIORITY [EXTRA JSON]: writes the definition of a tiny guest.
define() {
	printf '{"name": "%s", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest", "append": "tick=20", "priority": %s%s}\n' \
		"$1" "$2" "${3:+, $3}" >"$work/$1.json"
}

# ---------------------------------------------------------------- up

up_started=1
t0=${EPOCHREALTIME/./}
if ! "$LAB" up --nodes 3 --lun-size 512M --fence-agent --vm-memory 400 --dir "$dir" --build "$BUILD" \
	>"$work/up.out" 2>&1; then
	fail "csv-lab up"
	sed 's/^/    /' "$work/up.out"
	exit 1
fi
pass "csv-lab up --nodes 3 --fence-agent --vm-memory 400 ($(secs $((${EPOCHREALTIME/./} - t0))) s)"
check "csv-vmagent runs on every node" test "$("$LAB" status | grep -c 'csv-vmagent: running')" = 3

# ---------------------------------------------------------------- create, start

define vm1 30
define vm2 20 '"anti_affinity": {"class": "web", "hard": true}'
define vm3 10 '"anti_affinity": {"class": "web", "hard": true}, "migration": "quick"'
groupadd "$opgroup" && gid=$(getent group "$opgroup" | cut -d: -f3)
define vm4 5 "\"operators\": [\"$opgroup\"]"
for vm in vm1 vm2 vm3; do
	check "vm create $vm --start" ctl 1 vm create "$work/$vm.json" --start --wait 60
done
check "vm create vm4 (not started)" ctl 2 vm create "$work/vm4.json"
check "a second vm create vm1 is refused" eval '! ctl 1 vm create "$work/vm1.json" 2>"$work/err"'
check "... naming the VM that exists ($(head -c 120 "$work/err"))" grep -q "vm1" "$work/err"
echo '{"name": "bad", "vcpus": 0, "memory_mb": 64, "kernel": "csv-tiny-guest"}' >"$work/bad.json"
check "a definition with vcpus 0 is refused" eval '! ctl 1 vm create "$work/bad.json" 2>"$work/err"'
check "... naming the field ($(head -c 120 "$work/err"))" grep -q "vcpus" "$work/err"
for vm in vm1 vm2 vm3; do wait_for "$vm runs" 30 test "$(vm_field $vm phase)" = running; done
n1=$(vm_field vm1 node) n2=$(vm_field vm2 node) n3=$(vm_field vm3 node)
pass "placed: vm1 on node $n1, vm2 on node $n2, vm3 on node $n3"
check "vm2 and vm3 (hard anti-affinity) run on different nodes" test "$n2" != "$n3"
check "each of the three runs on its own node (by free memory)" test "$(printf '%s\n' "$n1" "$n2" "$n3" | sort -u | wc -l)" = 3
check_once vm1 vm2 vm3 vm4
check "the guest of vm1 counts on node $n1" test "$(last_tick "$(serial "$n1" vm1)")" -gt 0
check "vm list shows the four VMs" test "$(ctl 1 vm list | grep -c '^vm[1-4] ')" = 4

# ---------------------------------------------------------------- operators

asop() { local i=$1; shift; "$LAB" exec "$i" -- setpriv --reuid 65534 --regid "$gid" --clear-groups "$CSVCTL" "$@"; }
asnobody() { local i=$1; shift; "$LAB" exec "$i" -- setpriv --reuid 65534 --regid 65534 --clear-groups "$CSVCTL" "$@"; }
check "an operator of vm4's group starts vm4" asop 1 vm start vm4 --wait 30
check "vm4 runs" test "$(vm_field vm4 phase)" = running
check "the operator may not stop vm1" eval '! asop 1 vm stop vm1 2>"$work/err"'
check "... told who may ($(head -c 160 "$work/err"))" grep -q "operator" "$work/err"
check "the operator may not drain a node" eval '! asop 1 node drain 3 2>/dev/null'
check "anyone else may not stop vm4" eval '! asnobody 1 vm stop vm4 2>/dev/null'
check "the operator stops vm4 (power off)" asop 1 vm stop vm4 --force --wait 40
check "vm4 is stopped, no QEMU of it anywhere" test "$(vm_field vm4 phase)/$(qemu_nodes vm4)" = "stopped/"
check "vm remove vm4" ctl 1 vm remove vm4
check "vm4 is gone from the state" test -z "$(vm_field vm4 name)"

# ---------------------------------------------------------------- live migration

src=$(vm_field vm1 node)
to=$((src % 3 + 1))
before=$(last_tick "$(serial "$src" vm1)")
t0=${EPOCHREALTIME/./}
check "vm migrate vm1 --to $to --live" ctl 1 vm migrate vm1 --to "$to" --live --wait 120
mig_ms=$(ms_since "$t0")
wait_for "vm1 runs on node $to" 10 vm_is vm1 running "$to"
sleep 0.5
check "vm1 counts on on node $to from node $src's last tick, not started again" \
	test "$(first_tick "$(serial "$to" vm1)") $(started_lines "$(serial "$to" vm1)")" = \
	"$(($(last_tick "$(serial "$src" vm1)") + 1)) 0"
check "the counter grew past $before" test "$(last_tick "$(serial "$to" vm1)")" -gt "$before"
pass "live migration of vm1 node $src -> $to: $mig_ms ms as csvctl waited; recorded: $(ctl 1 vm list --json | python3 -c '
import json, sys
m = [v for v in json.load(sys.stdin) if v["name"] == "vm1"][0]["last_migration"]
print("total %s ms, downtime %s ms, %s" % (m["total_ms"], m["downtime_ms"] if m["downtime_ms"] is not None else "-", m["result"]))')"
check_once vm1 vm2 vm3

# ---------------------------------------------------------------- a disk hot added and removed

n=$(vm_field vm1 node)
other=$((n % 3 + 1))
vmdir=$dir/mnt/node$n/vol1/vms
truncate -s 16M "$vmdir/vm1-data.raw"
check "vm disk add from node $other, where vm1 does not run, is refused" \
	eval '! ctl "$other" vm disk add vm1 vm1-data.raw 2>"$work/err"'
check "... naming the node that runs it ($(head -c 160 "$work/err"))" grep -q "node$n\|node $n" "$work/err"
if ctl "$n" vm disk add vm1 vm1-data.raw --json >"$work/disk.json" 2>"$work/err"; then
	disk_id=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$work/disk.json")
	pass "vm disk add vm1 vm1-data.raw on node $n: $disk_id"
else
	fail "vm disk add vm1 vm1-data.raw on node $n: $(cat "$work/err")"
	disk_id=none
fi
check "vm1's definition on the volume has the disk" grep -q "vm1-data.raw" "$vmdir/vm1.json"
check "a missing disk file is refused" eval '! ctl "$n" vm disk add vm1 no-such-disk.raw 2>/dev/null'
check "vm disk remove vm1 $disk_id" ctl "$n" vm disk remove vm1 "$disk_id"
check "vm1's definition no longer has it" eval '! grep -q "vm1-data.raw" "$vmdir/vm1.json"'
check "vm1 still runs on node $n" vm_is vm1 running "$n"

# ---------------------------------------------------------------- quick migration

src=$(vm_field vm3 node)
to=$(for i in 1 2 3; do [ "$i" != "$src" ] && [ "$i" != "$(vm_field vm2 node)" ] && echo "$i"; done | head -n1)
t0=${EPOCHREALTIME/./}
check "vm migrate vm3 --to $to --quick" ctl 1 vm migrate vm3 --to "$to" --quick --wait 120
wait_for "vm3 runs on node $to" 10 vm_is vm3 running "$to"
sleep 0.5
check "vm3 counts on on node $to from where it was saved, not started again" \
	test "$(first_tick "$(serial "$to" vm3)") $(started_lines "$(serial "$to" vm3)")" = \
	"$(($(last_tick "$(serial "$src" vm3)") + 1)) 0"
pass "quick migration of vm3 node $src -> $to: $(ms_since "$t0") ms"
other=$(vm_field vm2 node)
check "a migration that breaks hard anti-affinity is refused" \
	eval '! ctl 1 vm migrate vm3 --to "$other" --live 2>"$work/err"'
check "... naming the class ($(head -c 160 "$work/err"))" grep -q "web" "$work/err"
check_once vm1 vm2 vm3

# ---------------------------------------------------------------- a migration that fails midway

# A guest that dirties 150 MiB of its memory as fast as it can: its live
# migration takes seconds (QEMU throttles it until it converges), and its
# target's QEMU is killed a second after it appeared, in the middle of it.
printf '{"name": "vmbusy", "vcpus": 1, "memory_mb": 160, "kernel": "csv-tiny-guest", "append": "tick=20 dirty=150"}\n' \
	>"$work/vmbusy.json"
check "vm create vmbusy --start" ctl 1 vm create "$work/vmbusy.json" --start --wait 60
src=$(vm_field vmbusy node)
to=$((src % 3 + 1))
ctl 1 vm migrate vmbusy --to "$to" --live --wait 0 >/dev/null 2>&1
t0=${EPOCHREALTIME/./}
until [ -n "$(qemu_nodes vmbusy | tr ' ' '\n' | grep -x "$to")" ] || [ "$(ms_since "$t0")" -ge 30000 ]; do sleep 0.02; done
sleep 1
for p in $(ip netns pids "csvlab-n$to"); do
	grep -qaF "/run/csvlab/n$to/vmbusy.qmp" "/proc/$p/cmdline" 2>/dev/null && kill -9 "$p" &&
		pass "the target's QEMU (node $to, pid $p) killed $(ms_since "$t0") ms after it appeared"
done
wait_for "vmbusy runs on on its source node $src" 60 vm_is vmbusy running "$src"
check "the state says the migration failed ($(vm_field vmbusy reason))" eval 'vm_field vmbusy reason | grep -q "failed"'
tick=$(last_tick "$(serial "$src" vmbusy)")
sleep 1
check_once vmbusy vm1 vm2 vm3
check "vmbusy counts on on node $src (tick $tick, then $(last_tick "$(serial "$src" vmbusy)"))" \
	test "$(last_tick "$(serial "$src" vmbusy)")" -gt "$tick"
check "vm stop vmbusy --force" ctl 1 vm stop vmbusy --force --wait 60
check "vm remove vmbusy" ctl 1 vm remove vmbusy

# ---------------------------------------------------------------- drain and resume

drained=$(vm_field vm1 node)
on_it=$(for vm in vm1 vm2 vm3; do [ "$(vm_field $vm node)" = "$drained" ] && echo "$vm"; done | xargs)
t0=${EPOCHREALTIME/./}
check "node drain $drained (it runs: $on_it)" ctl 1 node drain "$drained" --wait 180
pass "drain of node $drained: $(ms_since "$t0") ms"
check "node $drained is paused" eval 'ctl 1 node list | grep -E "^$drained " | grep -q paused'
for vm in vm1 vm2 vm3; do
	check "$vm runs, not on node $drained" test "$(vm_field $vm phase)" = running -a "$(vm_field $vm node)" != "$drained"
done
check_once vm1 vm2 vm3
check "drain again changes nothing" ctl 1 node drain "$drained" --wait 10
check "vm stop vm2 (power off)" ctl 1 vm stop vm2 --force --wait 60
check "vm start vm2 --to the paused node is refused" eval '! ctl 1 vm start vm2 --to "$drained" 2>"$work/err"'
check "... saying why ($(head -c 160 "$work/err"))" grep -q "paused" "$work/err"
check "vm start vm2" ctl 1 vm start vm2 --wait 60
check "node resume $drained --failback" ctl 1 node resume "$drained" --failback --wait 120
for vm in $on_it; do wait_for "$vm is back on node $drained" 60 vm_is "$vm" running "$drained"; done
check "node $drained is active" eval 'ctl 1 node list | grep -E "^$drained " | grep -q active'
check_once vm1 vm2 vm3

# ---------------------------------------------------------------- stop and start

t0=${EPOCHREALTIME/./}
check "vm stop vm3 (ACPI shutdown, which the tiny guest ignores: powered off after 30 s)" ctl 1 vm stop vm3 --wait 60
pass "vm stop vm3 took $(ms_since "$t0") ms"
check "vm3 is stopped, no QEMU of it" test "$(vm_field vm3 phase)/$(qemu_nodes vm3)" = "stopped/"
check "vm start vm3" ctl 1 vm start vm3 --wait 60
check_once vm1 vm2 vm3

# ---------------------------------------------------------------- a node dies

victim=$(vm_field vm1 node)
lost=$(for vm in vm1 vm2 vm3; do [ "$(vm_field $vm node)" = "$victim" ] && echo "$vm"; done | xargs)
all_elsewhere() {
	local vm
	for vm in $lost; do
		[ "$(vm_field "$vm" phase)" = running ] && [ "$(vm_field "$vm" node)" != "$victim" ] &&
			[ -n "$(qemu_nodes "$vm")" ] || return 1
	done
}
# When each lost VM's guest says it started on a survivor: its serial
# output there, polled every 20 ms. What an earlier run of the VM left on
# the survivors goes first (no QEMU of these VMs runs there).
for vm in $lost; do for i in 1 2 3; do [ "$i" = "$victim" ] || rm -f "$(serial "$i" "$vm")"; done; done
started_elsewhere() {
	local vm i ok
	for vm in $lost; do
		ok=0
		for i in 1 2 3; do
			[ "$i" != "$victim" ] && [ "$(started_lines "$(serial "$i" "$vm")")" -gt 0 ] && ok=1
		done
		[ $ok = 1 ] || return 1
	done
}
t0=${EPOCHREALTIME/./}
kill_at=$(date +%T.%3N)
"$LAB" fault "$victim" kill >/dev/null && pass "node $victim killed at $kill_at (it ran: $lost)"
until started_elsewhere; do [ "$(ms_since "$t0")" -lt 60000 ] || break; sleep 0.02; done
if started_elsewhere; then
	pass "from the kill of node $victim to its VMs' guests ($lost) started on survivors: $(ms_since "$t0") ms (target 5000 ms)"
else
	fail "the VMs of node $victim ($lost) did not start on a survivor within 60 s"
fi
# The survivors' view, from a node that lives.
live=$((victim % 3 + 1))
vm_field() {
	ctl "$live" vm list --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        x = v.get(sys.argv[2])
        print("" if x is None else x)' "$1" "$2"
}
wait_for "csv-rmd says every VM of node $victim runs on a survivor" 60 all_elsewhere
# The failover as the survivors' logs tell it (times with milliseconds).
echo "    killed at $kill_at; then:"
grep -hE "node $victim \(node$victim\) is (lost|fenced)|fence of node $victim: the agent" "$dir/node$live/quorumd.log" |
	tail -n 3 | sed 's/^/    /'
for vm in $lost; do
	grep -hE "vm $vm: (waiting-fence|starting on|node .* reports it running)" "$dir/node$live/rmd.log" | tail -n 3 |
		sed 's/^/    /'
done
check_once vm1 vm2 vm3
for vm in $lost; do
	n=$(vm_field "$vm" node)
	check "$vm started afresh on node $n (the guest says it started)" test "$(started_lines "$(serial "$n" "$vm")")" -ge 1
done
"$LAB" fault "$victim" restart >/dev/null && pass "node $victim restarted"
wait_for "node $victim is active and in the group again" 60 eval 'ctl "$live" node list | grep -E "^$victim " | grep -q "yes"'
check_once vm1 vm2 vm3

# ---------------------------------------------------------------- down

# The logs, while they exist, when something failed.
if [ "$failures" -ne 0 ]; then
	for f in "$dir"/node*/rmd.log "$dir"/node*/vmagent.log; do
		[ -f "$f" ] && { echo "--- $f"; grep -E "vm|VM" "$f" | tail -n 60; }
	done
fi
if "$LAB" down --dir "$dir" >"$work/down.out" 2>&1; then pass "csv-lab down: $(cat "$work/down.out")"; else fail "csv-lab down"; fi
up_started=0
check "no QEMU of the lab is left" test -z "$(pgrep -f "/run/csvlab/" | xargs)"
echo "the whole test: $(secs $((${EPOCHREALTIME/./} - T_START))) s"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
