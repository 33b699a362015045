#!/bin/bash
# csv-quorumd and csvctl on a cluster of three nodes, as an operator sees
# them through "csvctl status" on each node: membership, quorum and SAN
# access; a node's SAN path cut and restored; a node's cluster link cut
# and restored; a stopped daemon; an unprivileged reader; the events a
# subscriber gets. The cluster comes from lab/csv-lab when it works (or,
# without it, from network namespaces, corosync and nbdkit set up here).
# Binaries come from meson in QUORUMD, CSVCTL, MKFS, CSVFS and COORD; the
# lab tool in LAB.
set -u
: "${QUORUMD:?}" "${CSVCTL:?}" "${MKFS:?}"

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (network namespaces)"; exit 77; fi
for t in corosync corosync-quorumtool nbdkit ip nsenter unshare setpriv python3; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done

. "$(dirname "$0")/lib.sh"
secs() { local d=$(($1 / 100000)); printf '%d.%d' $((d / 10)) $((d % 10)); }
now_us() { echo "${EPOCHREALTIME/./}"; }

# The heartbeat and lease the daemons run with (their defaults).
H=500
L=3000

# ---------------------------------------------------------------- the cluster

use_lab=0
if [ "${CSVQ_TEST_OWN_CLUSTER:-0}" != 1 ] && [ -n "${LAB:-}" ] && [ -x "$LAB" ] &&
	"$LAB" --help >/dev/null 2>&1 && [ -n "${CSVFS:-}" ] && [ -n "${COORD:-}" ] && [ -c /dev/fuse ]; then
	use_lab=1
fi

if [ $use_lab = 1 ]; then
	NS_PREFIX=csvlab-n
	BRIDGE=csvlab0
else
	NS_PREFIX=csvq-n
	BRIDGE=csvq0
fi
ns_path() { echo "/run/netns/$NS_PREFIX$1"; }

# Names of a cluster are fixed: wait (bounded) for one that someone else
# brought up to go away; never tear it down.
busy() { ip link show "$BRIDGE" >/dev/null 2>&1 || ip netns list | grep -q "^$NS_PREFIX[0-9]"; }
if busy; then
	echo "a cluster ($BRIDGE) is up already: waiting up to 180 s for it to go away"
	for _ in $(seq 900); do busy || break; sleep 0.2; done
	if busy; then echo "SKIP: a cluster ($BRIDGE) is still up (csv-lab down removes a lab)"; exit 77; fi
fi

work=$(mktemp -d /tmp/csvq-test.XXXXXX)
chmod 755 "$work"
dir=$work/lab
up_started=0
qpids=()
events_pid=
events3_pid=
own_pids=()

own_down() {
	local p i
	for p in "${own_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for i in 1 2 3; do
		[ -s "$work/node$i/nbdkit.pid" ] && kill -KILL "$(cat "$work/node$i/nbdkit.pid")" 2>/dev/null
		[ -e "$(ns_path "$i")" ] && for p in $(ip netns pids "$NS_PREFIX$i" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	sleep 0.3
	for i in 1 2 3; do
		ip netns delete "$NS_PREFIX$i" 2>/dev/null
		ip link delete "csvq-h$i" 2>/dev/null
	done
	ip link delete "$BRIDGE" 2>/dev/null
}

cleanup() {
	local p
	[ -n "$events_pid" ] && kill "$events_pid" 2>/dev/null
	[ -n "$events3_pid" ] && kill "$events3_pid" 2>/dev/null
	for p in "${qpids[@]}"; do [ -n "$p" ] && kill -KILL "$p" 2>/dev/null; done
	if [ "$up_started" = 1 ]; then
		if [ $use_lab = 1 ]; then
			"$LAB" down --dir "$dir" >/dev/null 2>&1
		else
			own_down
		fi
	fi
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Our own cluster, when there is no lab tool: the same shape as the lab
# (DESIGN.md, "Lab cluster"), without mounts.
SUBNET=10.78.0
# shellcheck disable=SC2016
COROSYNC_WRAPPER='mount -t tmpfs -o mode=0755 csvq-run /run || exit 1; exec corosync -f -c "$1"'
own_up() {
	local i j nd
	ip link add "$BRIDGE" type bridge || return 1
	echo 1 >"/proc/sys/net/ipv6/conf/$BRIDGE/disable_ipv6" 2>/dev/null
	ip link set "$BRIDGE" up
	head -c 256 /dev/urandom >"$work/authkey"
	chmod 600 "$work/authkey"
	mkdir -p "$dir"
	"$MKFS" -q -s 256M -N 3 -L vol1 "$dir/vol1.img" >/dev/null || return 1
	for i in 1 2 3; do
		nd=$work/node$i
		mkdir -p "$nd/state"
		ip netns add "$NS_PREFIX$i" || return 1
		ip link add "csvq-h$i" type veth peer name eth0 netns "$NS_PREFIX$i" || return 1
		ip link set "csvq-h$i" master "$BRIDGE" up
		ip -n "$NS_PREFIX$i" link set lo up
		ip -n "$NS_PREFIX$i" addr add "$SUBNET.$i/24" dev eth0
		ip -n "$NS_PREFIX$i" link set eth0 up
		{
			printf 'totem {\n\tversion: 2\n\tcluster_name: csvq\n\ttransport: knet\n\ttoken: 1000\n'
			printf '\tcrypto_cipher: aes256\n\tcrypto_hash: sha256\n\tkeyfile: %s\n}\n' "$work/authkey"
			printf 'nodelist {\n'
			for j in 1 2 3; do
				printf '\tnode {\n\t\tring0_addr: %s\n\t\tnodeid: %s\n\t\tname: node%s\n\t}\n' "$SUBNET.$j" "$j" "$j"
			done
			printf '}\nquorum {\n\tprovider: corosync_votequorum\n}\n'
			printf 'logging {\n\tto_logfile: yes\n\tlogfile: %s\n\tto_stderr: no\n\tto_syslog: no\n}\n' "$nd/corosync.log"
			printf 'system {\n\tstate_dir: %s\n}\n' "$nd/state"
		} >"$nd/corosync.conf"
		setsid nsenter --net="$(ns_path "$i")" -- unshare -m --propagation private -- \
			/bin/sh -c "$COROSYNC_WRAPPER" csvq-corosync "$nd/corosync.conf" </dev/null >>"$nd/corosync.log" 2>&1 &
		own_pids+=($!)
		own_san_on "$i" || return 1
	done
	# Bounded: every corosync quorate with three members.
	local deadline=$(($(now_us) + 30 * 1000000)) ok
	while :; do
		ok=1
		for i in 1 2 3; do
			timeout 5 nsenter --net="$(ns_path "$i")" -- corosync-quorumtool -s 2>/dev/null |
				grep -Eq "^Quorate: +Yes" || ok=0
		done
		[ $ok = 1 ] && return 0
		if [ "$(now_us)" -ge "$deadline" ]; then
			echo "corosync is not quorate with 3 members on every node after 30 s; see $work/nodeI/corosync.log"
			for i in 1 2 3; do tail -5 "$work/node$i/corosync.log" | sed "s/^/    node $i: /"; done
			return 1
		fi
		sleep 0.2
	done
}
own_san_on() {
	local nd=$work/node$1
	rm -f "$nd/san.sock" "$nd/nbdkit.pid"
	nsenter --net="$(ns_path "$1")" -- nbdkit -P "$nd/nbdkit.pid" -U "$nd/san.sock" file file="$dir/vol1.img" \
		</dev/null >>"$nd/nbdkit.log" 2>&1 || return 1
	for _ in $(seq 50); do [ -S "$nd/san.sock" ] && [ -s "$nd/nbdkit.pid" ] && return 0; sleep 0.1; done
	return 1
}
own_san_off() {
	local pid
	pid=$(cat "$work/node$1/nbdkit.pid")
	kill -KILL "$pid"
	for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

san_sock() {
	if [ $use_lab = 1 ]; then echo "$dir/node$1/vol1.sock"; else echo "$work/node$1/san.sock"; fi
}

# Faults, through the lab tool when there is one (as an operator injects
# them), else by hand.
fault() {
	local node=$1 kind=$2
	if [ $use_lab = 1 ]; then
		"$LAB" fault "$node" "$kind" >/dev/null
		return
	fi
	case $kind in
	san-off) own_san_off "$node" ;;
	san-on) own_san_on "$node" ;;
	net-off) ip -n "$NS_PREFIX$node" link set eth0 down ;;
	net-on) ip -n "$NS_PREFIX$node" link set eth0 up ;;
	esac
}

# ---------------------------------------------------------------- the tools alone

"$QUORUMD" --help | grep -q -- "--heartbeat-ms" && pass "csv-quorumd --help" || fail "csv-quorumd --help"
"$CSVCTL" --help | grep -q "status \[--json\]" && pass "csvctl --help" || fail "csvctl --help"
version=$("$MKFS" --version | awk 'NR == 1 {print $NF}')
check "csv-quorumd --version is the project's ($version)" test "$("$QUORUMD" --version)" = "csv-quorumd $version"
check "csvctl --version is the project's" test "$("$CSVCTL" --version)" = "csvctl $version"
"$CSVCTL" frobnicate >/dev/null 2>"$work/err"
check "csvctl with an unknown command: usage error, exit 2" test $? = 2
check "  and it names the command" grep -q "unknown command 'frobnicate'" "$work/err"
"$CSVCTL" >/dev/null 2>&1
check "csvctl without a command: exit 2" test $? = 2
"$CSVCTL" status --bogus >/dev/null 2>&1
check "csvctl status --bogus: exit 2" test $? = 2

# Timings that contradict each other are refused before anything starts,
# with the values named.
"$QUORUMD" --foreground --heartbeat-ms 1500 --lease-ms 3000 --ipc-name csvq-test-x >/dev/null 2>"$work/err"
rc=$?
check "heartbeat 1500 ms with lease 3000 ms is refused (exit $rc)" test $rc = 1
check "  naming both values: $(head -n1 "$work/err")" grep -q "heartbeat 1500 ms.*lease 3000 ms" "$work/err"
"$QUORUMD" --foreground --lease-ms 1000 --token-ms 1500 --heartbeat-ms 300 --ipc-name csvq-test-x >/dev/null 2>"$work/err"
rc=$?
check "lease 1000 ms with token 1500 ms is refused (exit $rc)" test $rc = 1
check "  naming both values: $(head -n1 "$work/err")" grep -q "lease 1000 ms.*token timeout 1500 ms" "$work/err"

# ---------------------------------------------------------------- up

up_started=1
t0=$(now_us)
if [ $use_lab = 1 ]; then
	build=$(dirname "$(dirname "$QUORUMD")")
	if ! "$LAB" up --nodes 3 --lun-size 256M --dir "$dir" --build "$build" --no-quorumd >"$work/up.out" 2>&1; then
		fail "csv-lab up"
		sed 's/^/    /' "$work/up.out"
		exit 1
	fi
	pass "csv-lab up --nodes 3 --lun-size 256M ($(secs $(($(now_us) - t0))) s)"
else
	if ! own_up; then
		fail "setting up three nodes (namespaces, corosync, nbdkit)"
		exit 1
	fi
	pass "three nodes up without csv-lab: namespaces on $BRIDGE, corosync, nbdkit ($(secs $(($(now_us) - t0))) s)"
fi

# One csv-quorumd per node, in the node's network namespace, where it
# reaches that node's corosync; heartbeating through its SAN path.
start_quorumd() {
	local i=$1
	setsid nsenter --net="$(ns_path "$i")" -- "$QUORUMD" --foreground \
		--volume "nbd+unix:///?socket=$(san_sock "$i")" </dev/null >>"$work/quorumd$i.log" 2>&1 &
	qpids[$i]=$!
}

# A command in node N's network namespace; csvctl there.
in_ns() { local n=$1; shift; nsenter --net="$(ns_path "$n")" -- "$@"; }
ctl() { local n=$1; shift; in_ns "$n" "$CSVCTL" "$@"; }

# q NODE EXPR: evaluates a Python expression on node NODE's snapshot (s);
# state(I): node I's state on the volume; summary(): a line for messages.
PYQ='import json, sys
s = json.load(sys.stdin)
def node(i): return [n for n in s["nodes"] if n["id"] == i][0]
def vol(i): return node(i)["volumes"][0]
def state(i): return vol(i)["state"]
def summary():
	return "quorate=%s members=%s lease=%s(%d ms) states=%s" % (s["quorum"]["quorate"], sorted(s["members"]),
		s["lease"]["state"], s["lease"]["remaining_ms"],
		" ".join("%d:%s" % (n["id"], n["volumes"][0]["state"]) for n in s["nodes"]))
print(eval(sys.argv[1]))'
q() { ctl "$1" status --json 2>/dev/null | python3 -c "$PYQ" "$2" 2>/dev/null; }

# wait_q SECONDS WHAT NODE EXPR WANT: polls until EXPR on node NODE's
# snapshot prints WANT; passes with the time since T_FAULT, or fails with
# what the node sees.
waited=
wait_q() {
	local t=$1 what=$2 n=$3 expr=$4 want=$5 got
	local deadline=$(($(now_us) + t * 1000000))
	while :; do
		got=$(q "$n" "$expr")
		if [ "$got" = "$want" ]; then
			waited=$(secs $(($(now_us) - T_FAULT)))
			pass "$what (${waited} s)"
			return 0
		fi
		if [ "$(now_us)" -ge "$deadline" ]; then
			fail "$what: after ${t} s node $n still has $expr = '$got', not '$want'; it sees: $(q "$n" 'summary()')"
			return 1
		fi
		sleep 0.2
	done
}

T_FAULT=$(now_us)
for i in 1 2 3; do start_quorumd "$i"; done
for i in 1 2 3; do
	if ! wait_q 30 "node $i: csv-quorumd serves, 3 members, quorate, every node up on vol1" "$i" \
		'(sorted(s["members"]), s["quorum"]["quorate"], [state(j) for j in (1, 2, 3)])' \
		"([1, 2, 3], True, ['up', 'up', 'up'])"; then
		# Nothing after this can pass: stop here with the logs.
		for f in "$work"/quorumd*.log; do echo "--- $f"; tail -20 "$f"; done
		exit 1
	fi
done
check "node 1: its lease is valid" test "$(q 1 's["lease"]["state"]')" = valid
check "node 1: names from the corosync nodelist" test "$(q 1 '[node(j)["name"] for j in (1, 2, 3)]')" = \
	"['node1', 'node2', 'node3']"
check "node 1: the quorum: expected 3, total 3, quorum 2, options reported" \
	test "$(q 1 '(s["quorum"]["expected_votes"], s["quorum"]["total_votes"], s["quorum"]["quorum"], sorted(s["quorum"]["options"].items()))')" = \
	"(3, 3, 2, [('auto_tie_breaker', False), ('last_man_standing', False), ('two_node', False), ('wait_for_all', False)])"
check "node 1: one vote per node" test "$(q 1 '[node(j)["votes"] for j in (1, 2, 3)]')" = "[1, 1, 1]"
check "node 1: the knet link to node 3 is up" test "$(q 1 '[l["connected"] for l in node(3)["links"]]')" = "[True]"
check "node 1: a write latency for every node (its own, and the others' reports)" \
	test "$(q 1 '[vol(j)["write_latency_ms"] is not None for j in (1, 2, 3)]')" = "[True, True, True]"
check "node 1: the volume by its label, in slot 0 of 3" \
	test "$(q 1 '(s["volumes"][0]["label"], s["volumes"][0]["slot"], s["volumes"][0]["max_nodes"])')" = "('vol1', 0, 3)"
check "node 3 writes into slot 2" test "$(q 3 's["volumes"][0]["slot"]')" = 2

# The readable table.
ctl 2 status >"$work/table" 2>&1
check "csvctl status on node 2: quorate, 3 members" grep -q "^Quorum: *quorate; 3 member(s)" "$work/table"
check "  a line per node and volume with state, SAN, age and latency" \
	grep -Eq "^  3 +node3 +vol1 +up +ok +[0-9]+ ms +[0-9.]+ ms" "$work/table"
check "  this node marked" grep -Eq "^  2 +node2\* +yes +yes" "$work/table"
[ "$failures" -eq 0 ] || { cat "$work/table"; for i in 1 2 3; do echo "--- quorumd$i.log"; tail -20 "$work/quorumd$i.log"; done; }

# A subscriber on node 1 gets the events (unprivileged: reading is open).
in_ns 1 setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$CSVCTL" events --json \
	>"$work/events" 2>"$work/events.err" &
events_pid=$!
# And one on node 3, which is cut off below.
ctl 3 events --json >"$work/events3" 2>"$work/events3.err" &
events3_pid=$!
sleep 1
# Seconds from T_FAULT to the first event in FILE of KIND whose fields
# match (node NODE, "to" TO; "-" matches anything); nothing if none.
event_s() {
	python3 - "$1" "$2" "$3" "$4" "$T_FAULT" <<-'EOF'
		import json, sys
		path, kind, node, to, t0 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) * 1000
		for line in open(path):
		    e = json.loads(line)
		    if e["event"] == kind and e["wall_ns"] >= t0 and (node == "-" or e.get("node") == int(node)) \
		            and (to == "-" or str(e.get("to", e.get("quorate"))) == to):
		        print("%.1f" % ((e["wall_ns"] - t0) / 1e9)); break
	EOF
}
# Node 1's first event for node NODE going to STATE.
event_ms() { event_s "$work/events" san "$1" "$2"; }

# ---------------------------------------------------------------- SAN path of node 3

T_FAULT=$(now_us)
fault 3 san-off
wait_q 10 "san-off: node 1 reports node 3 san-lost" 1 'state(3)' san-lost
t_san_lost=$waited
wait_q 5 "  node 2 too" 2 'state(3)' san-lost
check "  node 3 is still a member on node 1" test "$(q 1 'sorted(s["members"])')" = "[1, 2, 3]"
check "  nodes 1 and 2 stay up" test "$(q 1 '[state(1), state(2)]')" = "['up', 'up']"
check "  node 1 still quorate" test "$(q 1 's["quorum"]["quorate"]')" = True
check "  node 3 reports its own SAN access lost" test "$(q 3 'vol(3)["san"]')" = lost
ev_san_lost=$(event_ms 3 san-lost)
check "  the subscriber on node 1 got the event (after ${ev_san_lost:-?} s)" test -n "$ev_san_lost"

T_FAULT=$(now_us)
fault 3 san-on
wait_q 10 "san-on: node 1 reports node 3 up again" 1 'state(3)' up
t_san_up=$waited
wait_q 5 "  node 2 too" 2 'state(3)' up
ev_san_up=$(event_ms 3 up)
n=$(grep -c "warning: volume .*: cannot open" "$work/quorumd3.log")
check "node 3 logged its failing SAN path once, not at every heartbeat ($n line(s))" test "$n" -ge 1 -a "$n" -le 2

# ---------------------------------------------------------------- cluster link of node 3

T_FAULT=$(now_us)
fault 3 net-off
wait_q 20 "net-off: node 1 reports node 3 partitioned (out of the membership, still heartbeating)" \
	1 'state(3)' partitioned
t_part=$waited
wait_q 5 "  node 2 too" 2 'state(3)' partitioned
for i in 1 2; do
	check "  node $i: quorate with members 1 and 2" \
		test "$(q $i '(s["quorum"]["quorate"], sorted(s["members"]))')" = "(True, [1, 2])"
done
check "  node 1: its knet link to node 3 is down" test "$(q 1 '[l["connected"] for l in node(3)["links"]]')" = "[False]"
wait_q 10 "  node 3: not quorate" 3 's["quorum"]["quorate"]' False
# When node 3 stopped renewing its lease, from how long ago it renewed it.
tb=$(now_us)
age=$(q 3 's["lease"]["renewed_age_ms"]')
ta=$(now_us)
[[ $age =~ ^[0-9]+$ ]] && t_nq=$(secs $(((tb + ta) / 2 - T_FAULT - age * 1000)))
lease3=$(q 3 '(s["lease"]["state"], s["lease"]["remaining_ms"] < 3000)')
case $lease3 in
"('expiring', True)" | "('expired', True)") pass "  node 3: its lease is not renewed: $lease3" ;;
*) fail "  node 3: its lease should be expiring or expired, not $lease3" ;;
esac
wait_q $((L / 1000 + 5)) "  node 3: its lease expires" 3 's["lease"]["state"]' expired
ev_nq=$(event_s "$work/events3" quorum - False)
ev_expiring=$(event_s "$work/events3" lease - expiring)
ev_expired=$(event_s "$work/events3" lease - expired)
check "  node 3's subscriber: quorum lost (${ev_nq:-?} s), lease expiring (${ev_expiring:-?} s), then expired (${ev_expired:-?} s)" \
	test -n "$ev_nq" -a -n "$ev_expiring" -a -n "$ev_expired"
if [ -n "$ev_expiring" ] && [ -n "$ev_expired" ]; then
	d=$(python3 -c "print(round(($ev_expired - $ev_expiring) * 1000))")
	check "  the lease expired a lease ($L ms) after it stopped being renewed: $d ms" \
		test "$d" -ge $((L - 200)) -a "$d" -le $((L + 400))
fi
grep -q "crit: self-fence: this node is not quorate: telling .* to stop all I/O" "$work/quorumd3.log" &&
	grep -q "crit: self-fence: done" "$work/quorumd3.log"
check "  node 3 logged at LOG_CRIT that it stops its I/O, and then that it is fenced" test $? = 0
ev_part=$(event_ms 3 partitioned)

T_FAULT=$(now_us)
fault 3 net-on
for i in 1 2 3; do
	wait_q 30 "net-on: node $i back to 3 members, quorate, every node up" "$i" \
		'(sorted(s["members"]), s["quorum"]["quorate"], [state(j) for j in (1, 2, 3)])' \
		"([1, 2, 3], True, ['up', 'up', 'up'])"
done
t_rejoin=$waited
check "  node 3: its lease is valid again" test "$(q 3 's["lease"]["state"]')" = valid

# ---------------------------------------------------------------- credentials

in_ns 1 setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$CSVCTL" status --json >"$work/nobody.json" 2>&1
check "csvctl status --json as nobody reads the snapshot" \
	test "$(python3 -c "$PYQ" '(s["quorum"]["quorate"], sorted(s["members"]))' <"$work/nobody.json" 2>/dev/null)" = "(True, [1, 2, 3])"
check "  as nobody it may not change anything" \
	test "$(python3 -c "$PYQ" '(s["client"]["uid"], s["client"]["may_change"])' <"$work/nobody.json")" = "(65534, False)"
check "  as root it may" test "$(q 1 '(s["client"]["uid"], s["client"]["may_change"])')" = "(0, True)"
in_ns 1 setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$CSVCTL" status >"$work/nobody.table" 2>&1
check "csvctl status (table) as nobody" grep -q "^Quorum: *quorate" "$work/nobody.table"

# ---------------------------------------------------------------- a stopped daemon

kill -TERM "${qpids[2]}"
for _ in $(seq 50); do kill -0 "${qpids[2]}" 2>/dev/null || break; sleep 0.1; done
check "csv-quorumd of node 2 stopped on SIGTERM" eval '! kill -0 "${qpids[2]}" 2>/dev/null'
wait "${qpids[2]}"
check "  with exit status 0" test $? = 0
qpids[2]=
ctl 2 status >"$work/out" 2>"$work/err"
rc=$?
check "csvctl status on node 2 then exits 1 (exit $rc)" test $rc = 1
check "  saying: $(cat "$work/err")" \
	test "$(cat "$work/err")" = "csvctl: csv-quorumd is not running (no IPC endpoint 'csv-quorumd')"
check "  and prints nothing on stdout" test ! -s "$work/out"
T_FAULT=$(now_us)
wait_q 10 "node 1: node 2 is a member without its daemon" 1 '(node(2)["member"], node(2)["daemon"], state(2), vol(2)["san"])' \
	"(True, False, 'no-daemon', 'stopped')"

# ---------------------------------------------------------------- end

kill "$events_pid" "$events3_pid" 2>/dev/null
wait "$events_pid" "$events3_pid" 2>/dev/null
events_pid=
events3_pid=
check "the subscriber got the san-lost, up and partitioned events of node 3" \
	test -n "$ev_san_lost" -a -n "$ev_san_up" -a -n "$ev_part"
for i in 1 3; do
	kill -TERM "${qpids[$i]}"
	wait "${qpids[$i]}"
	check "csv-quorumd of node $i stopped cleanly" test $? = 0
	qpids[$i]=
done
for i in 1 2 3; do
	check "node $i: no sanitizer report in the log of csv-quorumd" \
		eval '! grep -Eq "runtime error|AddressSanitizer|LeakSanitizer" "$work/quorumd$i.log"'
done

echo "timings (corosync token 1000 ms; heartbeat $H ms, lease $L ms; seconds from the fault, by polling csvctl every 0.2 s / by the event's time):"
echo "  san-off -> san-lost on node 1:     ${t_san_lost:-?} / ${ev_san_lost:-?}"
echo "  san-on  -> up on node 1:           ${t_san_up:-?} / ${ev_san_up:-?}"
echo "  net-off -> partitioned on node 1:  ${t_part:-?} / ${ev_part:-?}"
echo "  net-off -> node 3 not quorate:     ${t_nq:-?} (from its last lease renewal) / ${ev_nq:-?}"
echo "  net-off -> node 3 lease expired:   ${ev_expired:-?}"
echo "  net-on  -> 3 members, all up:      ${t_rejoin:-?}"

if [ "$failures" -ne 0 ]; then
	for f in "$work"/quorumd*.log "$work/events.err"; do [ -f "$f" ] && { echo "--- $f"; tail -30 "$f"; }; done
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
