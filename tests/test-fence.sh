#!/bin/bash
# Fencing as a user of the lab sees it. Three nodes: a node cut off from
# the cluster network stops its I/O before its lease runs out (a writer
# there pauses, without an error, and goes on after the link returns),
# while the other two stay quorate and count it fenced; a killed node is
# counted fenced once its lease has expired; with the lab's fence agent, a
# cut-off node is fenced by the agent. Two nodes with the disk witness: a
# cut link leaves exactly one quorate side, and a killed node leaves the
# other quorate. Quorum options of corosync.conf (last_man_standing,
# auto_tie_breaker) are reported and followed. Prints the time from each
# fault to each state.
# Binaries come from meson in CSVFS, COORD, QUORUMD, CSVCTL; the tool in LAB.
set -u
: "${CSVFS:?}" "${COORD:?}" "${QUORUMD:?}" "${CSVCTL:?}" "${LAB:?}"

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
for t in corosync corosync-quorumtool nbdkit ip nsenter python3; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
if ip link show csvlab0 >/dev/null 2>&1 || ip netns list | grep -q '^csvlab-n'; then
	echo "SKIP: a lab is already up (csv-lab down removes it)"
	exit 77
fi

work=$(mktemp -d /tmp/csv-fence-test.XXXXXX)
dir=$work/lab
writer_pid=
writer_stop=
cleanup() {
	[ -n "$writer_pid" ] && kill "$writer_pid" 2>/dev/null
	"$LAB" down --dir "$dir" >/dev/null 2>&1
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

build=$(dirname "$(dirname "$CSVFS")")
# Lease and margin of csv-quorumd's defaults (csv-quorumd(8)).
LEASE_MS=3000
MARGIN_MS=500

now_us() { echo "${EPOCHREALTIME/./}"; }
ms_since() { echo $((($(now_us) - $1) / 1000)); }

up() {
	if ! "$LAB" up --dir "$dir" --build "$build" --lun-size 256M "$@" >"$work/up.out" 2>&1; then
		fail "csv-lab up $*"
		sed 's/^/    /' "$work/up.out"
		for f in "$dir"/node*/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
		exit 1
	fi
	pass "csv-lab up $*"
}
down() { "$LAB" down --dir "$dir" >/dev/null 2>&1 || fail "csv-lab down"; }

# "MEMBERS QUORATE" as node I's corosync sees it, e.g. "3 Yes".
view() {
	"$LAB" exec "$1" -- corosync-quorumtool -s 2>/dev/null |
		awk -F: '/^Nodes:/ {gsub(/ /, "", $2); n = $2} /^Quorate:/ {gsub(/ /, "", $2); q = $2} END {print n, q}'
}

# fence_of NODE TARGET: "STATE BY" of TARGET as csvctl on NODE reports it.
fence_of() {
	"$LAB" exec "$1" -- "$CSVCTL" status --json 2>/dev/null | python3 -c '
import json, sys
t = int(sys.argv[1])
try:
    s = json.load(sys.stdin)
except ValueError:
    print("no-answer -"); sys.exit(0)
for n in s["nodes"]:
    if n["id"] == t:
        f = n["fence"] or {"state": "self", "by": "-"}
        print(f["state"], f["by"])
' "$2"
}

# wait_for SECONDS WANT COMMAND...: waits until COMMAND prints WANT; sets
# waited_ms. Returns 1 (with what it printed last) when it does not.
wait_for() {
	local t=$1 want=$2 t0 got
	shift 2
	t0=$(now_us)
	while :; do
		got=$("$@")
		[ "$got" = "$want" ] && break
		if [ "$(ms_since "$t0")" -ge $((t * 1000)) ]; then
			echo "    still '$got', not '$want'"
			return 1
		fi
		sleep 0.1
	done
	waited_ms=$(ms_since "$t0")
}

# A writer on node N: appends a numbered line and fsyncs, every 50 ms,
# logging the host time of each completion (or the error) to $work/wN. It
# stops between two writes once $work/wN.stop exists.
start_writer() {
	local n=$1
	writer_stop=$work/w$n.stop
	rm -f "$writer_stop"
	python3 - "$dir/mnt/node$n/vol1/writer$n" "$work/w$n" <<-'EOF' &
	import os, sys, time
	path, log = sys.argv[1], sys.argv[2]
	with open(log, "w", buffering=1) as out:
	    i = 0
	    while not os.path.exists(log + ".stop"):
	        i += 1
	        try:
	            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
	            os.write(fd, b"%08d\n" % i)
	            os.fsync(fd)
	            os.close(fd)
	            out.write("%d %.3f\n" % (i, time.time()))
	        except OSError as e:
	            out.write("ERROR %d %s\n" % (i, e))
	        time.sleep(0.05)
	EOF
	writer_pid=$!
}
# Stops the writer between two writes (killing it only if it hangs), so
# that every line in its file was acknowledged.
stop_writer() {
	touch "$writer_stop"
	for _ in $(seq 100); do kill -0 "$writer_pid" 2>/dev/null || break; sleep 0.1; done
	kill "$writer_pid" 2>/dev/null
	wait "$writer_pid" 2>/dev/null
	writer_pid=
}
# records_ok FILE LAST: FILE holds exactly the records 1..LAST, in order;
# prints what differs when it does not.
records_ok() {
	awk -v last="$2" '{ if ($0 != sprintf("%08d", NR)) { printf "    line %d is \"%s\"\n", NR, $0; bad = 1; exit } }
		END { if (!bad && NR != last) { printf "    %d lines, %d acknowledged\n", NR, last; bad = 1 } exit bad }' "$1"
}

# The longest pause between completions in the writer's log, and whether
# a write completed inside [FROM, TO] (host seconds).
writer_gap() { awk '$1 != "ERROR" {if (p) {g = $2 - p; if (g > m) m = g} p = $2} END {printf "%.2f", m}' "$1"; }
writes_between() { awk -v a="$2" -v b="$3" '$1 != "ERROR" && $2 > a && $2 < b {n++} END {print n + 0}' "$1"; }

# The parts to run (all by default): three, agent, two, options.
PARTS=" ${FENCE_PARTS:-three agent two options} "

# "PHASE NODE" of VM NAME as csvctl on node N reports it.
vm_where() {
	"$LAB" exec "$1" -- "$CSVCTL" vm list --json 2>/dev/null | python3 -c '
import json, sys
for v in json.load(sys.stdin):
    if v["name"] == sys.argv[1]:
        print(v["phase"], v["node"])' "$2"
}

# ---------------------------------------------------------- three nodes
if [[ $PARTS == *" three "* ]]; then
up --nodes 3

# A VM of the tiny guest on node 3, when the lab runs VMs: csv-vmagent
# holds the lease, so the node's self-fence kills its QEMU.
vm=
if "$LAB" status | grep -q 'csv-vmagent: running' && [ -f "$build/guest/csv-tiny-guest" ]; then
	echo '{"name": "fvm", "vcpus": 1, "memory_mb": 64, "kernel": "csv-tiny-guest", "append": "tick=20"}' >"$work/fvm.json"
	if "$LAB" exec 1 -- "$CSVCTL" vm create "$work/fvm.json" >/dev/null &&
		"$LAB" exec 1 -- "$CSVCTL" vm start fvm --to 3 --wait 60 >/dev/null &&
		[ "$(qemu_nodes fvm)" = 3 ]; then
		vm=fvm
		pass "VM fvm runs on node 3"
	else
		fail "VM fvm starts on node 3"
	fi
else
	echo "no VM in this part: the lab runs no csv-vmagent, or the tiny guest is not built"
fi

# A writer on node 3, then its cluster link goes down.
start_writer 3
sleep 1
vmagent_from=$(($(stat -c %s "$dir/node3/vmagent.log" 2>/dev/null || echo 0) + 1))
t_cut=$(date +%s.%N)
t0=$(now_us)
"$LAB" fault 3 net-off >/dev/null || fail "fault 3 net-off"
if wait_for 20 "fenced acknowledged" fence_of 1 3; then
	t_fenced=$waited_ms
	pass "net-off of node 3: node 1 counts it fenced by its acknowledgement after $t_fenced ms"
else
	fail "node 3 fenced after net-off"
fi
check "nodes 1 and 2 stay quorate with 2 members" test "$(view 1) $(view 2)" = "2 Yes 2 Yes"
check "node 3 alone is not quorate" test "$(view 3)" = "1 No"
check "node 2 agrees that node 3 is fenced" test "$(fence_of 2 3)" = "fenced acknowledged"
check "csvctl on node 3 says it is fenced" eval \
	'"$LAB" exec 3 -- "$CSVCTL" status | grep -q "this node is FENCED"'
check "node 3's csvfs stopped its I/O" grep -q "self-fence: no I/O in flight" "$dir/node3/vol1.client.log"
if [ -n "$vm" ]; then
	check "node 3's csv-vmagent killed its QEMU when the node fenced itself" eval \
		'tail -c +"$vmagent_from" "$dir/node3/vmagent.log" | grep -q "self-fence: .*killed the 1 QEMU"'
	tail -c +"$vmagent_from" "$dir/node3/vmagent.log" | grep "self-fence" | sed 's/^/    /'
	check "no QEMU of fvm is left on node 3" eval '[[ " $(qemu_nodes fvm) " != *" 3 "* ]]'
	if wait_for 30 yes eval 'vm_where 1 fvm | grep -q "^running [12]$" && echo yes'; then
		pass "fvm runs on node $(vm_where 1 fvm | cut -d' ' -f2) $waited_ms ms after node 3 was counted fenced"
	else
		fail "fvm runs on node 1 or 2"
	fi
	check "fvm has a QEMU on one node only ($(qemu_nodes fvm))" test "$(qemu_nodes fvm | wc -w)" = 1
fi
# Nothing of node 3 reaches the volume once its lease can have run out.
sleep 3
t_on=$(date +%s.%N)
late=$(writes_between "$work/w3" "$(echo "$t_cut + ($LEASE_MS - $MARGIN_MS) / 1000" | bc -l)" "$t_on")
check "node 3 completed no write between its lease's end and net-on ($late)" test "$late" = 0
"$LAB" fault 3 net-on >/dev/null || fail "fault 3 net-on"
t0=$(now_us)
if wait_for 20 "3 Yes" view 3 && wait_for 20 "none none" fence_of 1 3 &&
	wait_for 20 "valid" eval '"$LAB" exec 3 -- "$CSVCTL" status | awk "/^Lease:/ {print \$2}" | tr -d ,'; then
	pass "net-on: node 3 is a member again with a valid lease, not fenced ($(ms_since "$t0") ms)"
else
	fail "node 3 back after net-on"
fi
n_before=$(grep -vc ERROR "$work/w3")
sleep 2
stop_writer
n_after=$(grep -vc ERROR "$work/w3")
check "node 3's writer goes on after net-on ($n_before -> $n_after writes)" test "$n_after" -gt "$n_before"
check "node 3's writer saw no error" eval '! grep -q ERROR "$work/w3"'
pause=$(writer_gap "$work/w3")
pass "node 3's writer paused ${pause} s while fenced, without an error"
last=$(awk '$1 != "ERROR" {n = $1} END {print n}' "$work/w3")
check "every acknowledged record of node 3 is in the file, as node 1 reads it ($last)" \
	records_ok "$dir/mnt/node1/vol1/writer3" "$last"

# A killed node: dead, then fenced once its lease has expired.
t0=$(now_us)
"$LAB" fault 3 kill >/dev/null || fail "fault 3 kill"
if wait_for 20 "pending none" fence_of 1 3; then
	t_lost=$(ms_since "$t0")
	pass "kill of node 3: node 1 waits for its fence after $t_lost ms"
else
	fail "node 3 pending after kill"
fi
if wait_for 20 "fenced lease-expired" fence_of 1 3; then
	t_kill=$(ms_since "$t0")
	pass "kill of node 3: fenced by its lease's expiry $t_kill ms after the kill"
	# From its loss to its fence, as node 1 recorded them.
	span=$("$LAB" exec 1 -- "$CSVCTL" status --json | python3 -c '
import json, sys
f = [n["fence"] for n in json.load(sys.stdin)["nodes"] if n["id"] == 3][0]
print(f["lost_age_ms"] - f["fenced_age_ms"])')
	check "not before the lease and its margin after its loss ($span ms >= $((LEASE_MS + MARGIN_MS)) ms)" \
		test "$span" -ge $((LEASE_MS + MARGIN_MS))
else
	fail "node 3 fenced after kill"
fi
"$LAB" fault 3 restart >/dev/null || fail "fault 3 restart"
if wait_for 20 "none none" fence_of 1 3; then pass "restart: node 3 is back, not fenced"; else fail "node 3 back"; fi
check "node 3 reads the volume after its restart" test -s "$dir/mnt/node3/vol1/writer3"
down
fi

# ---------------------------------------------- three nodes, fence agent
if [[ $PARTS == *" agent "* ]]; then
up --nodes 3 --fence-agent
# Cut off: node 3 fences itself, and the agent powers it off.
t0=$(now_us)
"$LAB" fault 3 net-off >/dev/null || fail "fault 3 net-off"
if wait_for 20 "fenced" eval 'fence_of 1 3 | cut -d" " -f1'; then
	pass "net-off of node 3 with the fence agent: fenced ($(fence_of 1 3 | cut -d' ' -f2)) after $(ms_since "$t0") ms"
else
	fail "node 3 fenced after net-off"
fi
if wait_for 20 "" eval 'ip netns pids csvlab-n3 | head -c1'; then
	pass "the agent left node 3 no process ($(ms_since "$t0") ms after the fault)"
else
	fail "node 3's processes after the agent"
fi
check "node 1 logged the agent's confirmation" grep -q "fence of node 3: the agent .* confirmed action=off" \
	"$dir/node1/quorumd.log"
"$LAB" fault 3 net-on >/dev/null
"$LAB" fault 3 restart >/dev/null 2>&1 || fail "fault 3 restart after the agent"
wait_for 30 "none none" fence_of 1 3 || fail "node 3 back after the agent"
# Killed: the agent confirms its fence before its lease could expire.
t0=$(now_us)
"$LAB" fault 3 kill >/dev/null || fail "fault 3 kill"
if wait_for 20 "fenced agent" fence_of 1 3; then
	pass "kill of node 3 with the fence agent: fenced by the agent after $(ms_since "$t0") ms"
else
	fail "node 3 fenced by the agent"
fi
check "nodes 1 and 2 stay quorate with 2 members" test "$(view 1) $(view 2)" = "2 Yes 2 Yes"
down
fi

# ------------------------------------------------ two nodes, disk witness
if [[ $PARTS == *" two "* ]]; then
up --nodes 2
check "two nodes: corosync counts the disk witness as its quorum device" eval \
	'"$LAB" exec 1 -- corosync-quorumtool -s | grep -q "csv-disk-witness"'
check "two nodes: no two_node option (the witness breaks ties)" eval \
	'! "$LAB" exec 1 -- corosync-quorumtool -s | grep -q "2Node"'
holder=$("$LAB" exec 1 -- "$CSVCTL" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["witness"]["holder"])')
other=$((3 - holder))
pass "node $holder holds the witness"
for cut in "$other" "$holder"; do
	"$LAB" fault "$cut" net-off >/dev/null || fail "fault $cut net-off"
	keep=$holder
	if wait_for 20 "1 Yes 1 No" eval 'echo "$(view "$keep") $(view "$((3 - keep))")"'; then
		pass "net-off of node $cut: only node $keep (the witness holder) is quorate (${waited_ms} ms)"
	else
		fail "net-off of node $cut: one quorate side"
	fi
	"$LAB" fault "$cut" net-on >/dev/null || fail "fault $cut net-on"
	if wait_for 30 "2 Yes 2 Yes" eval 'echo "$(view 1) $(view 2)"'; then
		pass "net-on of node $cut: both nodes quorate again (${waited_ms} ms)"
	else
		fail "net-on of node $cut"
		tail -20 "$dir"/node*/corosync.log
	fi
	wait_for 30 "none none" fence_of "$keep" "$((3 - keep))" || fail "node $((3 - keep)) unfenced"
done
# A killed non-holder: the holder stays quorate throughout.
"$LAB" fault "$other" kill >/dev/null || fail "fault $other kill"
ok=1
for _ in $(seq 40); do [ "$(view "$holder")" = "1 Yes" ] && break; [ "$(view "$holder" | cut -d' ' -f2)" = Yes ] || ok=0; sleep 0.1; done
check "kill of node $other: node $holder stays quorate" test "$ok" = 1 -a "$(view "$holder")" = "1 Yes"
if ! out=$("$LAB" fault "$other" restart 2>&1); then
	fail "fault $other restart"
	echo "$out"
	for f in "$dir"/node*/rmd.log; do echo "--- $f"; tail -n 15 "$f"; done
fi
wait_for 30 "2 Yes 2 Yes" eval 'echo "$(view 1) $(view 2)"' || fail "node $other back"
# A killed holder: the other takes the witness and is quorate again.
t0=$(now_us)
"$LAB" fault "$holder" kill >/dev/null || fail "fault $holder kill"
if wait_for 30 "1 Yes" view "$other" && [ "$(ms_since "$t0")" -gt 0 ]; then
	# The first answers may still be the old membership: wait for the witness.
	wait_for 30 "$other" eval '"$LAB" exec "$other" -- "$CSVCTL" status --json | python3 -c "import json,sys; print(json.load(sys.stdin)[\"witness\"][\"holder\"])"' &&
		wait_for 30 "1 Yes" view "$other" &&
		pass "kill of node $holder: node $other takes the witness and is quorate $(ms_since "$t0") ms after the kill" ||
		fail "node $other takes the witness"
else
	fail "node $other quorate after the kill of the holder"
fi
check "node $other counts node $holder fenced" wait_for 20 "fenced lease-expired" fence_of "$other" "$holder"
check "node $other's lease is valid again" eval \
	'"$LAB" exec "$other" -- "$CSVCTL" status | grep -q "^Lease: *valid"'
down
fi
# ---------------------------------------------- three nodes, quorum options
# votequorum's options as the operator sets them in corosync.conf: csv-quorumd
# reports them and follows votequorum's verdict. With last_man_standing
# (window 1 s) and auto_tie_breaker, a node's loss lowers the expected votes
# to 2; then the loss of a second node leaves node 1 (the lowest id) quorate
# alone, with a valid lease, counting both fenced.
if [[ $PARTS == *" options "* ]]; then
up --nodes 3 --quorum-option wait_for_all=1 --quorum-option last_man_standing=1 \
	--quorum-option last_man_standing_window=1000 --quorum-option auto_tie_breaker=1
# The options set, and the expected votes, as csvctl on node N reports them.
options_of() {
	"$LAB" exec "$1" -- "$CSVCTL" status --json | python3 -c '
import json, sys
q = json.load(sys.stdin)["quorum"]
print(" ".join(k for k, v in sorted(q["options"].items()) if v))'
}
expected_of() {
	"$LAB" exec "$1" -- "$CSVCTL" status --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["quorum"]["expected_votes"])'
}
for i in 1 2 3; do
	check "node $i: csvctl status reports the options of corosync.conf" \
		test "$(options_of "$i")" = "auto_tie_breaker last_man_standing wait_for_all"
done
"$LAB" exec 1 -- "$CSVCTL" status | grep "^Options:" | sed 's/^/    /'
t0=$(now_us)
"$LAB" fault 3 kill >/dev/null || fail "fault 3 kill"
if wait_for 30 2 expected_of 1; then
	pass "node 3 killed: last_man_standing lowers the expected votes to 2 ($(ms_since "$t0") ms)"
else
	fail "expected votes 2 after node 3's loss"
fi
check "node 1 counts node 3 fenced" wait_for 30 "fenced lease-expired" fence_of 1 3
t0=$(now_us)
"$LAB" fault 2 kill >/dev/null || fail "fault 2 kill"
if wait_for 30 "1 Yes" view 1; then
	pass "node 2 killed too: node 1 alone stays quorate (auto_tie_breaker, lowest id) ($(ms_since "$t0") ms)"
else
	fail "node 1 alone quorate"
fi
check "node 1's csvctl status: quorate, its lease valid" eval \
	'"$LAB" exec 1 -- "$CSVCTL" status | grep -q "^Lease: *valid" &&
	 "$LAB" exec 1 -- "$CSVCTL" status | grep -q "^Quorum: *quorate"'
check "node 1 counts node 2 fenced" wait_for 30 "fenced lease-expired" fence_of 1 2
check "node 1 still writes to the volume" eval 'echo alone >"$dir/mnt/node1/vol1/alone" && sync "$dir/mnt/node1/vol1/alone"'
down
fi

echo "corosync token 1000 ms (token_coefficient 0), heartbeat 500 ms, lease $LEASE_MS ms"

echo "$failures failure(s)"
[ "$failures" = 0 ]
