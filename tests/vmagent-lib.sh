# Shared by test-vmagent.sh and test-vmagent-ops.sh, which run csv-vmagent
# without the lab. Source it after set -euo pipefail as
#	. "$(dirname "$0")/vmagent-lib.sh" NAME TOOL...
# It wants the programs from meson in VMAGENT, CLIENT (test-vmagent-client)
# and GUEST (csv-tiny-guest), and exits 77 when a TOOL is missing. It makes
# the work directory $work (/tmp/NAME.XXXXXX) with the VM directory $vms
# that the agents share, names their IPC endpoints $ipc-AGENT (ipc is
# NAME-PID), and on exit kills what the test started and any QEMU that
# outlived its agent, then removes $work. It sources lib.sh.
# shellcheck shell=bash
# shellcheck disable=SC2034 # variables used by the tests that source this

test_name=$1
shift
: "${VMAGENT:?set VMAGENT to csv-vmagent}" "${CLIENT:?set CLIENT to test-vmagent-client}"
: "${GUEST:?set GUEST to the csv-tiny-guest image}"
for t in "$@"; do
	if ! command -v "$t" >/dev/null; then
		echo "SKIP: $t is missing (scripts/install-deps installs it)"
		exit 77
	fi
done
if [ ! -f "$GUEST" ]; then echo "FAIL: no guest image at $GUEST"; exit 1; fi

T_START=${EPOCHREALTIME/./}
work=$(mktemp -d "/tmp/$test_name.XXXXXX")
chmod 755 "$work"
vms=$work/vms
mkdir "$vms"
ipc=$test_name-$$
# The processes the test started and has not reaped (agents, the serial
# stamper), and every QEMU pid an agent reported.
declare -A live agent_pid
cleanup() {
	local rc=$? p
	if [ "$rc" != 0 ]; then
		echo "${failures:-0} failure(s); the test stopped early (exit status $rc)"
		for p in "$work"/agent-*.log; do [ -f "$p" ] && { echo "--- $p"; tail -n 30 "$p"; }; done
	fi
	for p in "${!live[@]}"; do kill "$p" 2>/dev/null || :; done
	for p in "${!live[@]}"; do wait "$p" 2>/dev/null || :; done
	# The QEMUs die with their agents; any that did not is killed here.
	if [ -f "$work/qemu.pids" ]; then
		while read -r p; do
			if grep -qs "$work" "/proc/$p/cmdline"; then
				echo "a QEMU (pid $p) outlived its agent: killed"
				kill -9 "$p" 2>/dev/null || :
			fi
		done < <(sort -u "$work/qemu.pids")
	fi
	# The libqb blackbox of an agent that did not exit by itself.
	for p in "${agent_pid[@]}"; do rm -f "/dev/shm/qb-csv-vmagent-$p-blackbox-data" "/dev/shm/qb-csv-vmagent-$p-blackbox-header"; done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# wait_for WHAT SECONDS COMMAND...: waits until COMMAND succeeds; fails WHAT
# after SECONDS.
wait_for() {
	local what=$1 secs=$2 deadline=$((${EPOCHREALTIME/./} + $2 * 1000000))
	shift 2
	until "$@"; do
		if [ "${EPOCHREALTIME/./}" -ge "$deadline" ]; then
			fail "$what (waited $secs s)"
			return 1
		fi
		sleep 0.05
	done
}

# req AGENT REQUEST [JSON]: sends a request to agent AGENT (a, b, ...); the
# reply in $out, the client's exit status (0, or the errno) in $rc.
req() {
	local agent=$1
	shift
	rc=0
	out=$("$CLIENT" --ipc-name "$ipc-$agent" "$@" 2>"$work/client.err") || rc=$?
}

# js JSON EXPR: prints the Python expression EXPR of the JSON text (as d).
js() { python3 -c 'import json, sys; d = json.loads(sys.argv[1]); v = eval(sys.argv[2]); print("" if v is None else v)' "$1" "$2"; }

# vm AGENT NAME EXPR: EXPR of VM NAME (as v) in agent AGENT's LIST; ""
# when the agent does not list it. Records the pids of QEMU.
vm() {
	req "$1" list
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
with open(sys.argv[4], "a") as f:
    f.writelines("%d\n" % v["pid"] for v in d["vms"] if v["pid"])
v = next((v for v in d["vms"] if v["name"] == sys.argv[2]), None)
r = None if v is None else eval(sys.argv[3])
print("" if r is None else r)' "$out" "$2" "$3" "$work/qemu.pids"
}
# rc_has RC WANT TEXT PART: whether RC is WANT and TEXT contains PART.
rc_has() { [ "$1" = "$2" ] && [[ $3 == *"$4"* ]]; }
# matches TEXT PATTERN: whether TEXT matches the glob PATTERN.
# shellcheck disable=SC2053 # PATTERN is a glob
matches() { [[ $1 == $2 ]]; }
state_is() { [ "$(vm "$1" "$2" 'v["state"]')" = "$3" ]; }

# The serial output of VM NAME on agent AGENT.
serial() { echo "$work/run-$1/$2.serial"; }
# The last tick of a serial file (0 before the first).
last_tick() { { grep -ao 'csv-guest tick [0-9]*' "$1" 2>/dev/null || :; } | tail -n 1 | awk 'END {print $3 + 0}'; }
first_tick() { { grep -ao 'csv-guest tick [0-9]*' "$1" 2>/dev/null || :; } | head -n 1 | awk 'END {print $3 + 0}'; }
ticks_past() { [ "$(last_tick "$1")" -ge "$2" ]; }
started_lines() { grep -ac 'csv-guest started' "$1" 2>/dev/null || :; }

# start_agent NAME NODE: starts csv-vmagent in the foreground as node NODE
# with IPC endpoint $ipc-NAME and run directory run-NAME; returns 1, with
# its log, when it does not serve.
start_agent() {
	local name=$1 node=$2
	"$VMAGENT" --vm-dir "$vms" --run-dir "$work/run-$name" --ipc-name "$ipc-$name" --node-id "$node" \
		--foreground >>"$work/agent-$name.log" 2>&1 &
	agent_pid[$name]=$!
	live[$!]=1
	if ! wait_for "agent $name (node $node) serves its IPC endpoint" 20 agent_up "$name"; then
		sed 's/^/    /' "$work/agent-$name.log"
		return 1
	fi
}
agent_up() { "$CLIENT" --ipc-name "$ipc-$1" --timeout-ms 2000 list >/dev/null 2>&1; }

# finish: the test's last word: its time and its failures, with the end of
# each agent's log when there are some; returns 1 then.
finish() {
	local f
	echo "timings: the whole test $(((${EPOCHREALTIME/./} - T_START) / 1000)) ms"
	echo "$failures failure(s)"
	if [ "$failures" -ne 0 ]; then
		for f in "$work"/agent-*.log; do echo "--- $f"; tail -n 40 "$f"; done
	fi
	[ "$failures" -eq 0 ]
}
