#!/bin/bash
# fence_csvlab, the lab's fence agent, as a fencing daemon drives it: its
# metadata, list, monitor, status and validate-all; bad parameters; then
# node 3 of a three-node lab fenced off (nothing of it is left alive, nodes
# 1 and 2 keep running and keep using the volume), powered on again, and
# rebooted. The build directory comes from $1, else $BUILD, else from the
# binaries that meson gives in CSVFS; the tools from LAB and AGENT (default:
# lab/ of this source tree).
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
LAB=${LAB:-$src/lab/csv-lab}
AGENT=${AGENT:-$src/lab/fence_csvlab}
build=${1:-${BUILD:-}}
if [ -z "$build" ] && [ -n "${CSVFS:-}" ]; then build=$(dirname "$(dirname "$CSVFS")"); fi
: "${build:?give the build directory as \$1 or in BUILD}"

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
for t in corosync corosync-quorumtool nbdkit ip nsenter; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
for b in csvfs/csvfs csvfs/mkfs.csvfs coordinator/csv-coordinatord; do
	[ -x "$build/$b" ] || { echo "no $build/$b: build first (ninja -C $build)"; exit 1; }
done
# The lab's names are fixed: never tear down a lab that someone else brought up.
if ip link show csvlab0 >/dev/null 2>&1 || ip netns list | grep -q '^csvlab-n'; then
	echo "SKIP: a lab is already up (csv-lab down removes it)"
	exit 77
fi

T_START=${EPOCHREALTIME/./}
work=$(mktemp -d /tmp/csv-fence-test.XXXXXX)
dir=$work/lab
up_started=0
cleanup() {
	[ "$up_started" = 1 ] && "$LAB" down --dir "$dir" >/dev/null 2>&1
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

secs() { local d=$(($1 / 100000)); printf '%d.%d' $((d / 10)) $((d % 10)); }

# agent [ARGS...]: runs the agent (standard input: the caller's); its exit
# status in rc, its standard output in $work/out, its standard error in
# $work/err.
agent() {
	rc=0
	"$AGENT" "$@" >"$work/out" 2>"$work/err" || rc=$?
}
# agent_stdin LINES...: the agent with one key=value line per argument on
# its standard input.
agent_stdin() {
	rc=0
	printf '%s\n' "$@" | "$AGENT" >"$work/out" 2>"$work/err" || rc=$?
}
# What the agent printed, for a failed check.
show() { sed 's/^/    stdout: /' "$work/out"; sed 's/^/    stderr: /' "$work/err"; }
# check_rc WHAT WANT PATTERN: the last run exited WANT and its standard
# output and error match the extended regular expression PATTERN.
check_rc() {
	if [ "$rc" = "$2" ] && cat "$work/out" "$work/err" | grep -Eq -- "$3"; then
		pass "$1"
	else
		fail "$1 (exit status $rc, want $2 and /$3/)"
		show
	fi
}

# "MEMBERS QUORATE" as node I's corosync sees it, e.g. "3 Yes".
view() {
	"$LAB" exec "$1" -- corosync-quorumtool -s 2>/dev/null |
		awk -F: '/^Nodes:/ {gsub(/ /, "", $2); n = $2} /^Quorate:/ {gsub(/ /, "", $2); q = $2} END {print n, q}'
}
# wait_view WANT SECONDS NODE...: waits until every NODE sees WANT.
wait_view() {
	local want=$1 t=$2 i ok
	shift 2
	local deadline=$((${EPOCHREALTIME/./} + t * 1000000))
	while :; do
		ok=1
		for i in "$@"; do [ "$(view "$i")" = "$want" ] || ok=0; done
		[ $ok = 1 ] && return 0
		if [ "${EPOCHREALTIME/./}" -ge "$deadline" ]; then
			for i in "$@"; do echo "    node $i sees: $(view "$i")"; done
			return 1
		fi
		sleep 0.2
	done
}

mnt() { echo "$dir/mnt/node$1/vol1"; }
mounted() { awk -v p="$(mnt "$1")" '$2 == p && $3 ~ /^fuse/ {f = 1} END {exit !f}' /proc/mounts; }
# True when process PID exists and is not a zombie.
alive() { [ -e "/proc/$1" ] && [ "$(sed 's/.*) //; s/ .*//' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
dead() { ! alive "$1"; }
# The live processes in node I's network namespace.
ns_pids() {
	local p
	for p in $(ip netns pids "csvlab-n$1" 2>/dev/null); do alive "$p" && echo "$p"; done
	return 0
}

# ---------------------------------------------------------------- no lab

version=$("$LAB" --version | awk '{print $NF}')
agent -V
check "--version: fence_csvlab $version, as csv-lab's" test "$(cat "$work/out")" = "fence_csvlab $version"
agent --help
check "--help names the actions" grep -q "validate-all" "$work/out"

agent -o metadata
check_rc "metadata exits 0" 0 'resource-agent name="fence_csvlab"'
if command -v xmllint >/dev/null; then
	check "metadata is well-formed XML (xmllint)" xmllint --noout "$work/out"
	names=$(xmllint --xpath '//actions/action/@name' "$work/out" 2>/dev/null | sed 's/name="\([^"]*\)"/\1\n/g' | tr -d ' ' | sort | xargs)
	params=$(xmllint --xpath '//parameters/parameter/@name' "$work/out" 2>/dev/null | sed 's/name="\([^"]*\)"/\1\n/g' | tr -d ' ' | sort | xargs)
else
	check "metadata opens and closes resource-agent" grep -q '^</resource-agent>' "$work/out"
	names=$(sed -n 's/.*<action name="\([^"]*\)".*/\1/p' "$work/out" | sort | xargs)
	params=$(sed -n 's/.*<parameter name="\([^"]*\)".*/\1/p' "$work/out" | sort | xargs)
fi
check "metadata names every action ($names)" \
	test "$names" = "list metadata monitor off on reboot status validate-all"
check "metadata names every parameter ($params)" \
	test "$params" = "action csv_lab lab_dir nodename plug port power_timeout"

agent_stdin action=status plug=node1 "lab_dir=$work/nolab"
check_rc "no lab: status fails, naming the directory" 1 "^fence_csvlab: no lab is up in $work/nolab \(no lab.conf\)"
agent -o monitor --lab-dir "$work/nolab"
check_rc "no lab: monitor fails" 1 "no lab is up in $work/nolab"

# ---------------------------------------------------------------- the lab

up_started=1
t0=${EPOCHREALTIME/./}
if ! "$LAB" up --nodes 3 --lun-size 256M --dir "$dir" --build "$build" >"$work/up.out" 2>&1; then
	fail "csv-lab up"
	sed 's/^/    /' "$work/up.out"
	exit 1
fi
t_up=$(secs $((${EPOCHREALTIME/./} - t0)))
pass "csv-lab up --nodes 3 ($t_up s)"

agent -o list --lab-dir "$dir"
check_rc "list exits 0" 0 "^node1,"
check "list: one line per node" test "$(cut -d, -f1 "$work/out" | xargs)" = "node1 node2 node3"
check "list: the description" grep -qx "node3,node 3 of the csv-lab cluster" "$work/out"
agent -o monitor --lab-dir "$dir"
check_rc "monitor: the lab is up" 0 "monitor: the lab in $dir is up with 3 node"
agent_stdin action=status port=node3 "lab_dir=$dir"
check_rc "status of node3 (port=node3): ON, exit 0" 0 "^Status: ON$"
agent_stdin action=status nodename=3 "lab_dir=$dir"
check_rc "status of 3 (nodename=3): ON, exit 0" 0 "^Status: ON$"
agent --action=STATUS --plug=node3 --lab-dir="$dir"
check_rc "status of node3 (--action=STATUS --plug=node3): ON, exit 0" 0 "^Status: ON$"

# Bad parameters: exit 1, naming the problem.
agent_stdin action=offf plug=node3 "lab_dir=$dir"
check_rc "an unknown action fails" 1 "^fence_csvlab: unknown action 'offf'"
agent_stdin action=off plug=node9 "lab_dir=$dir"
check_rc "an unknown node fails" 1 "^fence_csvlab: unknown node 'node9': the lab has nodes 1 to 3$"
agent -o status -n bogus --lab-dir "$dir"
check_rc "a plug that is no node fails" 1 "unknown node 'bogus'"
agent_stdin action=off "lab_dir=$dir"
check_rc "off without a node fails" 1 "action 'off' needs a node"
agent_stdin action=off plug=node3 "lab_dir=$work/nolab"
check_rc "off with no lab in lab_dir fails" 1 "no lab is up in $work/nolab"
agent -o off -n node3 --lab-dir "$dir" --csv-lab "$work/nothing"
check_rc "off with a missing csv-lab fails" 1 "csv_lab '$work/nothing' is not an executable file"
check "node3 is untouched by the failed calls" test -n "$(ns_pids 3)"

agent_stdin action=validate-all plug=node3 "lab_dir=$dir"
check_rc "validate-all with node3: ok" 0 "validate-all: node3 .*: ok"
agent_stdin action=validate-all "lab_dir=$dir" "delay=5"
check_rc "validate-all without a node (as at configuration): ok, an unknown key warned of" 0 \
	"ignoring the unknown parameter 'delay=5'"
agent_stdin action=validate-all plug=node4 "lab_dir=$dir"
check_rc "validate-all with node4 fails" 1 "unknown node 'node4'"

# A csv-lab that kills nothing: off does not take its word, it sees the
# node alive and fails, naming what is left.
printf '#!/bin/sh\necho "pretends to have done: $*"\n' >"$work/lazy-csv-lab"
chmod +x "$work/lazy-csv-lab"
agent -o off -n node3 --lab-dir "$dir" --csv-lab "$work/lazy-csv-lab" --power-timeout 1
check_rc "off that leaves node3 alive fails, naming what is alive" 1 \
	"off node3: FAILED: still alive after .*SAN path\\(s\\) vol1 nbdkit/[0-9]+; process\\(es\\) .*corosync/"
grep -q "Success" "$work/out" && fail "it printed Success anyway"

# From inside node 3's own namespace, off would kill the agent before it
# could confirm: it refuses, and node 3 runs on.
rc=0
"$LAB" exec 3 -- "$AGENT" -o off -n node3 --lab-dir "$dir" >"$work/out" 2>"$work/err" || rc=$?
check_rc "off of node3 from inside csvlab-n3 is refused" 1 "refusing to fence node3 from inside its own namespace"
check "node3 still has its SAN path" alive "$(cat "$dir/node3/vol1.nbdkit.pid")"

# ---------------------------------------------------------------- off

for i in 1 2; do
	check "vol1 is mounted on node $i" mounted "$i"
done
others=$(ns_pids 1; ns_pids 2)
nbd3=$(cat "$dir/node3/vol1.nbdkit.pid")
check "node3's nbdkit runs before off (pid $nbd3)" alive "$nbd3"

t0=${EPOCHREALTIME/./}
agent_stdin "# csv-quorumd fences node 3" action=off plug=node3 "lab_dir=$dir"
check_rc "off of node3 (key=value on stdin) in $(secs $((${EPOCHREALTIME/./} - t0))) s" 0 "^Success: Powered OFF$"
check "off logs one line of what it did" test "$(grep -c "off node3: done" "$work/err")" = 1
sed 's/^/    /' "$work/err"
agent_stdin action=status plug=node3 "lab_dir=$dir"
check_rc "status of node3: OFF, exit 2" 2 "^Status: OFF$"
check "no process is left in csvlab-n3" test -z "$(ns_pids 3)"
check "node3's nbdkit (pid $nbd3) is dead" dead "$nbd3"
check "node3's mount is detached" eval '! mounted 3'
lost=
for p in $others; do alive "$p" || lost+=" $p"; done
check "nodes 1 and 2 keep every process ($(echo "$others" | wc -w) of them)${lost:+, lost:$lost}" test -z "$lost"
if wait_view "2 Yes" 15 1 2; then pass "nodes 1 and 2: 2 members, quorate"; else fail "nodes 1 and 2 after off"; fi

# The volume, on the nodes that were not fenced.
head -c 1M /dev/urandom >"$work/r1"
check "node1 writes a file on its mount" timeout 30 cp "$work/r1" "$(mnt 1)/while-node3-off"
check "node2 reads it byte-exact" timeout 30 cmp "$work/r1" "$(mnt 2)/while-node3-off"
echo "from node 2" >"$work/r2"
check "node2 writes a file" timeout 30 cp "$work/r2" "$(mnt 2)/from-node2"
check "node1 reads it" timeout 30 cmp "$work/r2" "$(mnt 1)/from-node2"

# A second off of a node that is off succeeds (nothing to kill, verified).
agent -o off -n 3 --lab-dir "$dir"
check_rc "off of node 3 again: success" 0 "^Success: Powered OFF$"

# ---------------------------------------------------------------- on

t0=${EPOCHREALTIME/./}
agent -o on -n node3 --lab-dir "$dir"
check_rc "on of node3 (command line) in $(secs $((${EPOCHREALTIME/./} - t0))) s" 0 "^Success: Powered ON$"
sed 's/^/    /' "$work/err"
agent_stdin action=status plug=node3 "lab_dir=$dir"
check_rc "status of node3: ON again" 0 "^Status: ON$"
if wait_view "3 Yes" 15 1 2 3; then pass "3 members, quorate, on every node"; else fail "membership after on"; fi
check "node3 has its mount back" mounted 3
check "node3 reads what node1 wrote while it was off" timeout 30 cmp "$work/r1" "$(mnt 3)/while-node3-off"

# ---------------------------------------------------------------- reboot

# No action given: reboot, as fence agents default to.
nbd3=$(cat "$dir/node3/vol1.nbdkit.pid")
t0=${EPOCHREALTIME/./}
agent_stdin plug=node3 "lab_dir=$dir"
check_rc "reboot (the default action) of node3 in $(secs $((${EPOCHREALTIME/./} - t0))) s" 0 "^Success: Rebooted$"
check "reboot replaced node3's nbdkit (pid $nbd3 is dead)" dead "$nbd3"
agent_stdin action=status plug=node3 "lab_dir=$dir"
check_rc "status of node3 after reboot: ON" 0 "^Status: ON$"
check "node3 reads the volume after reboot" timeout 30 cmp "$work/r2" "$(mnt 3)/from-node2"

# The logs, while they exist, when something failed.
if [ "$failures" -ne 0 ]; then
	for f in "$dir"/node*/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
fi

# ---------------------------------------------------------------- down

if "$LAB" down --dir "$dir" >"$work/down.out" 2>&1; then
	pass "csv-lab down: $(cat "$work/down.out")"
else
	fail "csv-lab down"; cat "$work/down.out"
fi
up_started=0
check "no csvlab namespace is left" test -z "$(ip netns list | grep csvlab)"
agent -o monitor --lab-dir "$dir"
check_rc "monitor once the lab is down: fails" 1 "no lab is up in $dir"

echo "timings: up $t_up s, the whole test $(secs $((${EPOCHREALTIME/./} - T_START))) s"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
