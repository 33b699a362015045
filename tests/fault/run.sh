#!/bin/bash
# The node-failure fault-injection suite: a three-node lab with csv-quorumd
# and csv-rmd, one volume, and on every node a writer that appends
# checksummed, numbered records with an fsync each, plus a shell that
# creates, renames and removes files. Each scenario injects its faults
# while they run, lets the cluster recover, and checks what a user would:
# no acknowledged record is missing or damaged, no application saw an error
# (except where a process of its own node was killed), at no moment did two
# nodes run a coordinator of the volume, the epoch only grew, and a node
# cut off from the cluster completed no write after its lease had run out.
# At the end fsck.csvfs finds the volume clean. Each scenario prints the
# longest pause of a writer and the time until the faulted node's I/O went
# through the coordinator, where it should.
#
#   run.sh [SCENARIO...]          the scenarios named (default: the CI set)
#   run.sh --all                  every scenario
#   run.sh --random SEED [--steps N]  N faults drawn from SEED (the same
#                                 scenarios in the same order for a seed)
#   run.sh --list                 the scenarios
#   --fence-agent                 the lab's fence agent fences a lost node too
#                                 (default: its acknowledgement or its lease's
#                                 expiry only)
# FAULT_HOLD (seconds a fault lasts, 8), FAULT_SETTLE (seconds of load
# after the recovery, 4) and FAULT_KEEP=1 (keep the logs, as a failed run
# does) tune a run.
#
# Binaries come from meson in CSVFS, COORD, QUORUMD, RMD, CSVCTL, WORKLOAD,
# FSCK, and the lab tool in LAB; run by hand, they are taken from the build
# directory BUILD (default: build/ of this checkout).
set -u

SCENARIOS="kill-coord kill-client net-off-coord net-off-client san-off-client san-errors-client san-hang-client
san-off-coord san-errors-coord san-hang-coord san-off-all kill-csvfs kill-coordinatord kill-quorumd
kill-corosync flap fenced-return move redirect"
CI_SET="kill-coord kill-client net-off-coord san-off-client san-errors-coord san-off-all kill-coordinatord flap move
redirect"

usage() {
	sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'
}

random_seed= steps=6 picked=() fence_agent=
while [ $# -gt 0 ]; do
	case $1 in
	--list) echo $SCENARIOS | tr ' ' '\n'; exit 0 ;;
	--all) picked=($SCENARIOS); shift ;;
	--random) random_seed=${2:?--random needs a seed}; shift 2 ;;
	--steps) steps=${2:?--steps needs a number}; shift 2 ;;
	--fence-agent) fence_agent=--fence-agent; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
	*)
		[[ " $(echo $SCENARIOS) " == *" $1 "* ]] || { echo "run.sh: no scenario '$1' (see --list)" >&2; exit 2; }
		picked+=("$1"); shift ;;
	esac
done
[ -n "$random_seed" ] && ! [[ $random_seed =~ ^[0-9]+$ ]] && { echo "run.sh: --random needs a number" >&2; exit 2; }
[[ $steps =~ ^[0-9]+$ ]] || { echo "run.sh: --steps needs a number" >&2; exit 2; }
[ ${#picked[@]} -gt 0 ] || [ -n "$random_seed" ] || picked=($CI_SET)

src=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$src/build}
: "${CSVFS:=$BUILD/csvfs/csvfs}" "${COORD:=$BUILD/coordinator/csv-coordinatord}" "${QUORUMD:=$BUILD/quorum/csv-quorumd}"
: "${RMD:=$BUILD/resource-mgr/csv-rmd}" "${CSVCTL:=$BUILD/cli/csvctl}" "${WORKLOAD:=$BUILD/tests/csv-workload}"
: "${FSCK:=$BUILD/csvfs/fsck.csvfs}" "${LAB:=$src/lab/csv-lab}"
for b in "$CSVFS" "$COORD" "$QUORUMD" "$RMD" "$CSVCTL" "$WORKLOAD" "$FSCK" "$LAB"; do
	[ -x "$b" ] || { echo "run.sh: $b is not built (build with: meson setup build && ninja -C build)" >&2; exit 2; }
done

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
for t in corosync corosync-quorumtool nbdkit ip nsenter python3 bc; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
if ip link show csvlab0 >/dev/null 2>&1 || ip netns list | grep -q '^csvlab-n'; then
	echo "SKIP: a lab is already up (csv-lab down removes it)"
	exit 77
fi

work=$(mktemp -d /tmp/csv-fault.XXXXXX)
dir=$work/lab
sampler_pid=
cleanup() {
	[ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null
	stop_load 2>/dev/null
	# FAULT_KEEP=1, or a failure, keeps the nodes' logs and the test's files.
	if [ "${FAULT_KEEP:-0}" = 1 ] || [ "${failures:-0}" != 0 ]; then
		mkdir -p "$work.kept"
		find "$work" -maxdepth 1 -type f -exec cp {} "$work.kept/" \;
		for d in "$dir"/node*; do
			mkdir -p "$work.kept/${d##*/}"
			find "$d" -name '*.log' -exec cp {} "$work.kept/${d##*/}/" \;
		done
		echo "logs kept in $work.kept"
	fi
	"$LAB" down --dir "$dir" >/dev/null 2>&1
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/../lib.sh"

build=$(dirname "$(dirname "$CSVFS")")
NODES=3
LEASE_MS=3000
MARGIN_MS=500
# How long a fault lasts before it is removed, in seconds.
HOLD=${FAULT_HOLD:-8}
# How long after the recovery the load goes on.
SETTLE=${FAULT_SETTLE:-4}

now() { echo "${EPOCHREALTIME}"; }
node_dir() { echo "$dir/node$1"; }
mnt() { echo "$dir/mnt/node$1/vol1"; }
csvctl() { "$LAB" exec "${CTL_NODE:-1}" -- "$CSVCTL" "$@"; }

# The node whose coordinator of vol1 runs now, from the process table of
# each node's namespace ("" when none).
coord_node() {
	local n p
	for ((n = 1; n <= NODES; n++)); do
		for p in $(ip netns pids "csvlab-n$n" 2>/dev/null); do
			[[ $(cat "/proc/$p/comm" 2>/dev/null) == csv-coordinato* ]] && { echo "$n"; return; }
		done
	done
}
# A node other than $1 (and $2).
other_node() {
	local n
	for ((n = 1; n <= NODES; n++)); do [ "$n" != "$1" ] && [ "$n" != "${2:-}" ] && { echo "$n"; return; }; done
}

# ---------------------------------------------------------------- the sampler

# Every 100 ms: the nodes that run a live (not zombie) coordinator of the
# volume, and the pid of each, in $work/coords ("TIME NODE:PID ..."), from
# one pass over /proc per sample.
start_sampler() {
	python3 - "$NODES" >"$work/coords" 2>/dev/null <<-'EOF' &
	import os, sys, time
	nodes = int(sys.argv[1])
	ns = {}
	for n in range(1, nodes + 1):
	    try:
	        ns[os.stat("/run/netns/csvlab-n%d" % n).st_ino] = n
	    except OSError:
	        pass
	while True:
	    t = time.time()
	    found = []
	    for pid in os.listdir("/proc"):
	        if not pid.isdigit():
	            continue
	        try:
	            with open("/proc/%s/stat" % pid) as f:
	                st = f.read()
	            comm = st[st.index("(") + 1:st.rindex(")")]
	            state = st[st.rindex(")") + 2]
	            if not comm.startswith("csv-coordinato") or state in "ZX":
	                continue
	            n = ns.get(os.stat("/proc/%s/ns/net" % pid).st_ino)
	            if n:
	                found.append("%d:%s" % (n, pid))
	        except (OSError, ValueError):
	            continue
	    print("%.3f %s" % (t, " ".join(sorted(found))), flush=True)
	    time.sleep(0.1)
	EOF
	sampler_pid=$!
}

# ---------------------------------------------------------------- the load

# Starts, on every node in $load_nodes, a writer (records of 3000 bytes,
# an fsync each) and a metadata churn; their outputs go to $work/S.
start_load() {
	local s=$1 n
	load_nodes=${2:-$(seq -s ' ' 1 $NODES)}
	load_pids=()
	for n in $load_nodes; do
		mkdir -p "$(mnt "$n")/$s"
		"$LAB" exec "$n" -- "$WORKLOAD" append --dir "$(mnt "$n")/$s" --id "w$n" --records 10000000 --size 3000 \
			>"$work/$s.w$n" 2>&1 &
		load_pids+=($!)
		disown $!
		"$LAB" exec "$n" -- bash -c '
			d=$1/churn$2; mkdir -p "$d" || exit 1; i=0
			while [ ! -e "$3" ]; do
				i=$((i + 1))
				echo "$i" >"$d/new" && mv "$d/new" "$d/f$i" && rm -f "$d/f$((i - 1))" &&
					echo "ok $i $EPOCHREALTIME" || echo "error $i $EPOCHREALTIME"
				sleep 0.1
			done' churn "$(mnt "$n")/$s" "$n" "$work/$s.stop" >"$work/$s.c$n" 2>&1 &
		load_pids+=($!)
		disown $!
	done
}

stop_load() {
	local s=${1:-} p
	[ -n "$s" ] && touch "$work/$s.stop"
	for p in "${load_pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for _ in $(seq 50); do
		local any=0
		for p in "${load_pids[@]}"; do kill -0 "$p" 2>/dev/null && any=1; done
		[ $any = 0 ] && break
		sleep 0.2
	done
	for p in "${load_pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	load_pids=()
}

last_acked() { awk '$1 == "acked" { a = $2 } END { print (a == "" ? -1 : a) }' "$1"; }
# The longest pause between two acknowledgements from FROM on, in seconds.
longest_gap() {
	awk -v from="$2" '$1 == "acked" && $3 >= from - 2 { if (p) { g = $3 - p; if (g > m) m = g } p = $3 }
		END { printf "%.2f", m }' "$1"
}
# Acknowledgements inside (A, B), host seconds.
acks_between() { awk -v a="$2" -v b="$3" '$1 == "acked" && $3 > a && $3 < b { n++ } END { print n + 0 }' "$1"; }
# The first acknowledgement after T, host seconds ("" none).
first_ack_after() { awk -v t="$2" '$1 == "acked" && $3 > t { print $3; exit }' "$1"; }

# ---------------------------------------------------------------- checks

# check_scenario S FAULT_TIME DEAD_NODES ERROR_OK_NODES FAULTED_NODE: the
# checks after scenario S. Writers of DEAD_NODES died with their node (no
# exit checked); errors of ERROR_OK_NODES' applications are expected. The
# longest pause of the writers is in scenario_gap, that of FAULTED_NODE's
# writer apart in faulted_gap.
check_scenario() {
	local s=$1 t_fault=$2 dead=" $3 " errok=" $4 " faulted=$5 n reader acked gap maxgap=0 f
	faulted_gap=
	reader=$(for n in $load_nodes; do [[ $dead == *" $n "* ]] || { echo "$n"; break; }; done)
	for n in $load_nodes; do
		f=$work/$s.w$n
		acked=$(last_acked "$f")
		if [[ $dead != *" $n "* ]] && [[ $errok != *" $n "* ]]; then
			check "$s: the writer of node $n saw no error" eval '! grep -q "^error" "$f"' ||
				{ grep -m3 "^error" "$f"; echo "node $n's csvfs log ends with:"
				  tail -8 "$dir/node$n/vol1.client.log"; } | sed 's/^/    /'
			check "$s: the churn of node $n saw no error" eval '! grep -q "^error" "$work/$s.c$n"' ||
				grep -m3 "^error" "$work/$s.c$n" | sed 's/^/    /'
		fi
		if "$WORKLOAD" verify --dir "$(mnt "$reader")/$s" --id "w$n" --acked "$acked" >"$work/$s.v$n" 2>&1; then
			pass "$s: the $((acked + 1)) acknowledged records of node $n are intact (read on node $reader)"
		else
			fail "$s: acknowledged records of node $n (read on node $reader)"
			sed 's/^/    /' "$work/$s.v$n" | head -5
		fi
		if [[ $dead != *" $n "* ]]; then
			gap=$(longest_gap "$f" "$t_fault")
			if [ "$n" = "$faulted" ]; then
				faulted_gap=$gap
			else
				maxgap=$(echo "if ($gap > $maxgap) $gap else $maxgap" | bc)
			fi
		fi
	done
	# Two coordinators at once, in any sample?
	local two
	two=$(awk -v from="$t_fault" '$1 >= from - 3 { delete seen; c = 0; for (i = 2; i <= NF; i++) { split($i, a, ":"); if (!(a[1] in seen)) { seen[a[1]] = 1; c++ } }
		if (c > 1) { print; exit } }' "$work/coords")
	check "$s: never two nodes with a coordinator of the volume" test -z "$two" || echo "    $two"
	scenario_gap=$maxgap
}

# The epochs the coordinators served, in the order they started, must grow.
check_epochs() {
	local pids p n e prev=0 ok=1 list=
	pids=$(awk '{ for (i = 2; i <= NF; i++) print $i }' "$work/coords" | awk '!seen[$0]++')
	for p in $pids; do
		n=${p%%:*}
		e=$(grep -h "csv-coordinatord\[${p#*:}\]: .*serving on" "$dir/node$n/rmd/vol1.coordinator.log" 2>/dev/null |
			sed -n 's/.*epoch \([0-9]*\).*/\1/p' | head -1)
		[ -n "$e" ] || continue
		list+="${list:+ }$e@$n"
		[ "$e" -gt "$prev" ] || ok=0
		prev=$e
	done
	check "the epoch only grew, one per coordinator start ($list)" test "$ok" = 1
}

# wait_state SECONDS COMMAND...: waits until COMMAND succeeds.
wait_state() {
	local t=$1 end
	shift
	end=$(echo "$(now) + $t" | bc)
	while ! "$@" 2>/dev/null; do
		[ "$(echo "$(now) > $end" | bc)" = 1 ] && return 1
		sleep 0.2
	done
}
# The volume runs, on some node other than $1 if given.
running_off() {
	local c
	c=$(CTL_NODE=${2:-1} csvctl volume list --json | python3 -c '
import json, sys
v = json.load(sys.stdin)[0]
print(v["holder"] if v["phase"] == "running" else "")')
	[ -n "$c" ] && [ "$c" != "${1:-0}" ]
}
# Scenario S's writer and churn have each completed an operation on every node.
load_runs() {
	local n
	for n in $load_nodes; do
		grep -q "^acked" "$work/$1.w$n" && grep -q "^ok" "$work/$1.c$n" || return 1
	done
}
# Every node is quorate again with all members.
all_back() {
	local n
	for ((n = 1; n <= NODES; n++)); do
		"$LAB" exec "$n" -- corosync-quorumtool -s 2>/dev/null | grep -q "^Nodes: *$NODES$" || return 1
	done
}
# The fence state of node T as csv-quorumd on node N reports it.
fence_of() {
	"$LAB" exec "$1" -- "$CSVCTL" status --json 2>/dev/null | python3 -c '
import json, sys
for n in json.load(sys.stdin)["nodes"]:
    if n["id"] == int(sys.argv[1]):
        print((n["fence"] or {"state": "self"})["state"])' "$2"
}
# Node N's access to the volume as csv-rmd reports it.
access_of() {
	csvctl volume state vol1 --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
for n in v["nodes"]:
    if n["id"] == int(sys.argv[1]):
        print(n["access"])' "$1"
}

# Every member node's access is paused, the reason saying that no node
# sees the LUN.
all_paused() {
	csvctl volume state vol1 --json | python3 -c '
import json, sys
nodes = json.load(sys.stdin)["nodes"]
sys.exit(not nodes or any(n["access"] != "paused" or "no node sees" not in n["reason"] for n in nodes))'
}
# wait_fenced S V: waits until the node of the checks counts node V fenced,
# its time in t_fenced ("" when it does not).
wait_fenced() {
	local fenced_node=$2  # eval runs inside wait_state, where $2 is not this
	t_fenced=
	if wait_state 30 eval '[ "$(fence_of "$CTL_NODE" "$fenced_node")" = fenced ]'; then
		t_fenced=$(now)
	else
		fail "$1: node $CTL_NODE counts node $2 fenced"
	fi
}
# no_write_after_fence S V T1: node V's writer completed no write between
# the time the others counted it fenced and T1.
no_write_after_fence() {
	[ -n "$t_fenced" ] || return 0
	local late
	late=$(acks_between "$work/$1.w$2" "$t_fenced" "$3")
	check "$1: node $2 completed no write once the others counted it fenced ($late)" test "$late" = 0
}

# ---------------------------------------------------------------- scenarios

table=()
# record S WHAT: a row of the table printed at the end.
record() { table+=("$(printf '%-18s %-44s %7s s  %s' "$1" "$2" "$scenario_gap" "${3:-}")"); }

# run_scenario S: runs scenario S.
run_scenario() {
	local sc=$1 s=$1 c o t0 t1 dead= errok= extra= tr= v= i=1
	# A scenario that runs again gets files of its own: S.2, S.3...
	while [ -e "$work/$s.stop" ]; do s=$sc.$((++i)); done
	c=$(coord_node)
	[ -n "$c" ] || { fail "$s: no coordinator runs before the scenario"; return; }
	o=$(other_node "$c")
	CTL_NODE=$(other_node "$c" "$o")  # neither the coordinator's node nor the client node of the fault
	echo "--- $s (coordinator on node $c)"
	start_load "$s"
	wait_state 20 load_runs "$s" || fail "$s: the load runs on every node before the fault"
	sleep 1
	t0=$(now)
	case $sc in
	kill-coord | kill-client)
		v=$c
		[ "$sc" = kill-client ] && v=$o
		"$LAB" fault "$v" kill >/dev/null
		dead=$v
		if [ "$sc" = kill-coord ]; then
			check "$s: the volume runs on a survivor" wait_state 40 running_off "$c" "$CTL_NODE"
		fi
		sleep "$HOLD"
		"$LAB" fault "$v" restart >/dev/null || fail "$s: restart of node $v"
		;;
	net-off-coord | net-off-client | fenced-return)
		v=$c
		[ "$sc" != net-off-coord ] && v=$o
		"$LAB" fault "$v" net-off >/dev/null
		[ "$sc" = net-off-coord ] &&
			{ check "$s: the volume runs on a node of the majority" wait_state 40 running_off "$c" "$CTL_NODE" ; }
		wait_fenced "$s" "$v"
		# The fence agent kills every process of the node, its writer too.
		[ -n "$fence_agent" ] && dead=$v
		if [ "$sc" = fenced-return ] && [ -z "$fence_agent" ]; then
			wait_state 30 eval '"$LAB" exec "$v" -- "$CSVCTL" status | grep -q "this node is FENCED"' ||
				fail "$s: node $v fenced itself"
		fi
		sleep "$HOLD"
		t1=$(now)
		no_write_after_fence "$s" "$v" "$t1"
		"$LAB" fault "$v" net-on >/dev/null
		[ -n "$fence_agent" ] && "$LAB" fault "$v" restart >/dev/null
		check "$s: node $v is back in the cluster" wait_state 40 all_back
		[ -z "$fence_agent" ] && check "$s: node $v's writer goes on" wait_state 30 eval \
			'[ -n "$(first_ack_after "$work/$s.w$v" "$(now)")" ] || [ -n "$(first_ack_after "$work/$s.w$v" "$t1")" ]'
		;;
	san-off-client | san-errors-client | san-hang-client | san-off-coord | san-errors-coord | san-hang-coord)
		local kind=${sc%-*}
		v=$c
		[[ $sc == *-client ]] && v=$o
		"$LAB" fault "$v" "$kind" >/dev/null
		if [[ $sc == *-coord ]]; then
			check "$s: the volume moves to a node that sees the LUN" wait_state 40 running_off "$c" "$CTL_NODE"
		fi
		if wait_state 20 eval '[ "$(access_of "$v")" = block-redirected ]'; then
			tr=$(echo "$(now) - $t0" | bc | cut -c1-5)
			pass "$s: node $v's I/O goes through the coordinator after $tr s"
		elif [[ $sc == *-coord ]]; then
			pass "$s: node $v's I/O did not need redirection (it ran the coordinator)"
		else
			fail "$s: node $v's I/O goes through the coordinator"
		fi
		sleep "$HOLD"
		case $kind in
		san-off) "$LAB" fault "$v" san-on >/dev/null ;;
		san-errors) "$LAB" fault "$v" san-errors-off >/dev/null ;;
		san-hang) "$LAB" fault "$v" san-hang-off >/dev/null ;;
		esac
		check "$s: node $v's I/O is direct again" wait_state 30 eval '[ "$(access_of "$v")" = direct ]'
		;;
	san-off-all)
		for ((n = 1; n <= NODES; n++)); do "$LAB" fault "$n" san-off >/dev/null; done
		check "$s: csvctl shows every node paused, since no node sees the LUN" wait_state 20 all_paused ||
			csvctl volume state vol1 | sed 's/^/    /'
		sleep "$HOLD"
		for ((n = 1; n <= NODES; n++)); do "$LAB" fault "$n" san-on >/dev/null; done
		check "$s: the volume runs again" wait_state 40 running_off "" "$CTL_NODE"
		;;
	kill-csvfs)
		v=$o
		kill -KILL "$(cat "$(node_dir "$o")/vol1.client.pid")"
		errok=$o
		sleep "$HOLD"
		"$LAB" fault "$o" restart >/dev/null || fail "$s: remount on node $o"
		;;
	kill-coordinatord)
		v=$c
		kill -KILL "$(cat "$(node_dir "$c")/rmd/vol1.coordinator.pid")"
		check "$s: a coordinator serves again" wait_state 40 running_off "" "$CTL_NODE"
		sleep "$HOLD"
		;;
	kill-quorumd)
		v=$c
		kill -KILL "$(cat "$(node_dir "$c")/quorumd.pid")"
		sleep "$HOLD"
		"$LAB" fault "$c" restart >/dev/null || fail "$s: restart of csv-quorumd on node $c"
		check "$s: the volume runs" wait_state 40 running_off "" "$CTL_NODE"
		;;
	kill-corosync)
		v=$o
		kill -KILL "$(cat "$(node_dir "$o")/corosync.pid")"
		wait_fenced "$s" "$v"
		[ -n "$fence_agent" ] && dead=$v
		sleep "$HOLD"
		no_write_after_fence "$s" "$v" "$(now)"
		"$LAB" fault "$o" restart >/dev/null || fail "$s: restart of corosync on node $o"
		check "$s: node $o is back in the cluster" wait_state 40 all_back
		;;
	flap)
		v=$o
		for _ in 1 2 3; do
			"$LAB" fault "$o" net-off >/dev/null
			sleep 1
			"$LAB" fault "$o" net-on >/dev/null
			sleep 2
		done
		check "$s: node $o is back in the cluster" wait_state 40 all_back
		;;
	redirect)
		check "$s: csvctl volume redirect vol1 on" eval \
			'"$LAB" exec "$CTL_NODE" -- "$CSVCTL" volume redirect vol1 on --wait 20 >"$work/redir.out" 2>&1' ||
			sed 's/^/    /' "$work/redir.out"
		for ((n = 1; n <= NODES; n++)); do
			check "$s: node $n's I/O all goes through the coordinator" wait_state 10 eval \
				'[ "$(access_of "$n")" = fs-redirected ]'
		done
		sleep "$HOLD"
		check "$s: csvctl volume redirect vol1 off --json" eval \
			'"$LAB" exec "$CTL_NODE" -- "$CSVCTL" volume redirect vol1 off --wait 20 --json >"$work/redir.out"' ||
			sed 's/^/    /' "$work/redir.out"
		check "$s: ... its last JSON line is the volume, not redirected" eval \
			'tail -n 1 "$work/redir.out" | python3 -c "import json, sys; v = json.load(sys.stdin); sys.exit(v[\"redirect\"])"'
		for ((n = 1; n <= NODES; n++)); do
			check "$s: node $n's I/O is direct again" wait_state 10 eval '[ "$(access_of "$n")" = direct ]'
		done
		;;
	move)
		local to=$o
		check "$s: csvctl volume move vol1 --to $to" eval \
			'"$LAB" exec "$CTL_NODE" -- "$CSVCTL" volume move vol1 --to "$to" --wait 40 >"$work/move.out" 2>&1' ||
			sed 's/^/    /' "$work/move.out"
		extra="moved $(echo "$(now) - $t0" | bc | cut -c1-5) s"
		check "$s: the coordinator runs on node $to" test "$(coord_node)" = "$to"
		;;
	esac
	# Whatever the fault left, the node is whole again (restart is
	# idempotent), then the load runs on a while.
	for ((n = 1; n <= NODES; n++)); do "$LAB" fault "$n" restart >/dev/null 2>&1; done
	wait_state 40 all_back || fail "$s: every node is back in the cluster"
	wait_state 40 running_off "" "$CTL_NODE" || fail "$s: the volume runs after the scenario"
	sleep "$SETTLE"
	stop_load "$s"
	check_scenario "$s" "$t0" "$dead" "$errok" "$v"
	local note=
	[ -n "$faulted_gap" ] && note="node $v (faulted): ${faulted_gap} s"
	[ -n "$tr" ] && note+="; csvctl shows it redirected after $tr s"
	record "$s" "coordinator was on node $c${extra:+; $extra}" "$note"
}

# ---------------------------------------------------------------- main

if ! "$LAB" up --dir "$dir" --build "$build" --lun-size 512M $fence_agent >"$work/up.out" 2>&1; then
	fail "csv-lab up"
	sed 's/^/    /' "$work/up.out"
	exit 1
fi
pass "csv-lab up: three nodes, csv-rmd places the coordinator of vol1 on node $(coord_node)"
start_sampler

if [ -n "$random_seed" ]; then
	echo "random run: seed $random_seed, $steps steps (replay: $0 --random $random_seed --steps $steps)"
	RANDOM=$random_seed
	all=($SCENARIOS)
	for ((i = 0; i < steps; i++)); do picked+=("${all[RANDOM % ${#all[@]}]}"); done
	echo "scenarios: ${picked[*]}"
fi
for s in "${picked[@]}"; do run_scenario "$s"; done

# ---------------------------------------------------------------- the admin CLI
echo "--- csvctl and csv-rmd"
CTL_NODE=1
check "csvctl node list: $NODES members, all quorate" eval '[ "$(csvctl node list --json | python3 -c "
import json, sys
print(sum(1 for n in json.load(sys.stdin) if n[\"member\"] and n[\"quorate\"]))")" = "$NODES" ]'
check "csvctl volume move to an unknown node is refused, naming it" eval \
	'! csvctl volume move vol1 --to 9 >"$work/m9.out" 2>&1 && grep -q "9" "$work/m9.out"'
check "csvctl volume move by a user outside the admin group is refused" eval \
	'! "$LAB" exec 1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$CSVCTL" volume move vol1 --to 2 \
		>"$work/mperm.out" 2>&1 && grep -q "root or" "$work/mperm.out"' || sed 's/^/    /' "$work/mperm.out"
check "csvctl volume state reads as any user" eval \
	'"$LAB" exec 1 -- setpriv --reuid=65534 --regid=65534 --clear-groups "$CSVCTL" volume state vol1 >/dev/null'
# Every csv-rmd restarts: the cluster remembers its placements (moves).
moves_before=$(csvctl volume list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["moves"])')
for ((n = 1; n <= NODES; n++)); do kill -TERM "$(cat "$(node_dir "$n")/rmd.pid")" 2>/dev/null; done
for _ in $(seq 50); do [ -z "$(coord_node)" ] && break; sleep 0.2; done
for ((n = 1; n <= NODES; n++)); do "$LAB" fault "$n" restart >/dev/null 2>&1; done
if wait_state 60 running_off "" 1; then
	moves_after=$(csvctl volume list --json | python3 -c 'import json, sys; print(json.load(sys.stdin)[0]["moves"])')
	check "after every csv-rmd restarted, the volume runs and its history is kept ($moves_before -> $moves_after moves)" \
		test "$moves_after" -gt "$moves_before"
else
	fail "the volume runs after every csv-rmd restarted"
fi

kill "$sampler_pid" 2>/dev/null
wait "$sampler_pid" 2>/dev/null
sampler_pid=
check_epochs

# Offline: every client and csv-rmd stops (the coordinator checkpoints),
# then fsck.csvfs reads the LUN.
for ((n = 1; n <= NODES; n++)); do
	p=$(cat "$(node_dir "$n")/vol1.client.pid" 2>/dev/null) && kill "$p" 2>/dev/null
done
sleep 1
for ((n = 1; n <= NODES; n++)); do
	p=$(cat "$(node_dir "$n")/rmd.pid" 2>/dev/null) && kill "$p" 2>/dev/null
done
for _ in $(seq 50); do [ -z "$(coord_node)" ] && break; sleep 0.2; done
lun=$(awk -F= '$1 == "LAB_LUN_DIR" {print $2}' "$dir/lab.conf")/vol1.img
if "$FSCK" "$lun" >"$work/fsck.out" 2>&1; then
	pass "fsck.csvfs finds the volume clean"
else
	fail "fsck.csvfs finds the volume clean"
	sed 's/^/    /' "$work/fsck.out" | head -20
fi

echo
echo "scenario           what                                         longest pause of the writers"
echo "                                                                (others)  (faulted node; its redirection)"
for row in "${table[@]}"; do echo "$row"; done
echo "targets (DESIGN.md): coordinator failover pause under 3 s; SAN path loss to redirected I/O under 1 s"
fenced_by="its own acknowledgement or its lease's expiry"
[ -n "$fence_agent" ] && fenced_by="the lab's fence agent, $fenced_by"
echo "corosync token 1000 ms, heartbeat 500 ms, lease $LEASE_MS ms; a lost node is fenced by $fenced_by"
[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
