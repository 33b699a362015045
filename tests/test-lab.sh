#!/bin/bash
# The lab cluster as a user drives it: csv-lab up brings up three nodes
# with two volumes (network namespaces, corosync, nbdkit SAN paths,
# csv-quorumd, csv-rmd placing the two coordinators on two nodes, csvfs
# mounted on every node); then membership, the shared volumes, the network
# isolation, faults of the cluster link, of a SAN path and of a whole node,
# status, and down, after which nothing of the lab is left; the same after
# an up stopped half-way.
# Binaries come from meson in CSVFS, MKFS, FSCK and COORD; the tool in LAB.
set -u
: "${CSVFS:?}" "${MKFS:?}" "${FSCK:?}" "${COORD:?}" "${LAB:?}"

if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root"; exit 77; fi
for t in corosync corosync-quorumtool nbdkit ip nsenter; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
# The lab's names are fixed: never tear down a lab that someone else brought up.
if ip link show csvlab0 >/dev/null 2>&1 || ip netns list | grep -q '^csvlab-n'; then
	echo "SKIP: a lab is already up (csv-lab down removes it)"
	exit 77
fi

T_START=${EPOCHREALTIME/./}
work=$(mktemp -d /tmp/csv-lab-test.XXXXXX)
dir=$work/lab
up_started=0
cleanup() {
	[ "$up_started" = 1 ] && "$LAB" down --dir "$dir" >/dev/null 2>&1
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

# Microseconds to seconds with one decimal.
secs() { local d=$(($1 / 100000)); printf '%d.%d' $((d / 10)) $((d % 10)); }

# "MEMBERS QUORATE" as node I's corosync sees it, e.g. "3 Yes".
view() {
	"$LAB" exec "$1" -- corosync-quorumtool -s 2>/dev/null |
		awk -F: '/^Nodes:/ {gsub(/ /, "", $2); n = $2} /^Quorate:/ {gsub(/ /, "", $2); q = $2} END {print n, q}'
}

# wait_view WANT SECONDS NODE...: waits until every NODE sees WANT; sets
# waited to the seconds it took. Fails with what each node sees.
wait_view() {
	local want=$1 t=$2 i ok
	shift 2
	local t0=${EPOCHREALTIME/./}
	local deadline=$((t0 + t * 1000000))
	while :; do
		ok=1
		for i in "$@"; do [ "$(view "$i")" = "$want" ] || ok=0; done
		[ $ok = 1 ] && break
		if [ "${EPOCHREALTIME/./}" -ge "$deadline" ]; then
			for i in "$@"; do echo "    node $i sees: $(view "$i")"; done
			return 1
		fi
		sleep 0.2
	done
	waited=$(secs $((${EPOCHREALTIME/./} - t0)))
}

mnt() { echo "$dir/mnt/node$1/vol${2:-1}"; }
mounted() { awk -v p="$(mnt "$1" "${2:-1}")" '$2 == p && $3 ~ /^fuse/ {f = 1} END {exit !f}' /proc/mounts; }

# The tool's own options.
"$LAB" --help | grep -q "fault NODE KIND" && pass "--help" || fail "--help"
"$LAB" fault --help | grep -q "san-errors-off" && pass "fault --help" || fail "fault --help"
version=$("$MKFS" --version | awk 'NR == 1 {print $NF}')
check "--version is the project's ($version)" test "$("$LAB" --version)" = "csv-lab $version"
check "down with no lab up says so and exits 0" eval '"$LAB" down --dir "$dir" | grep -q "no lab is up"'

# The binaries of this build: their build directory.
build=$(dirname "$(dirname "$CSVFS")")
if [ "$(realpath "$build/coordinator/csv-coordinatord")" != "$(realpath "$COORD")" ]; then
	echo "the binaries are not in one meson build directory: $CSVFS, $COORD"
	exit 1
fi

# Up.
up_started=1
t0=${EPOCHREALTIME/./}
if ! "$LAB" up --nodes 3 --volumes 2 --lun-size 512M --dir "$dir" --build "$build" >"$work/up.out" 2>&1; then
	fail "csv-lab up"
	sed 's/^/    /' "$work/up.out"
	for f in "$dir"/node*/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
	exit 1
fi
t_up=$(secs $((${EPOCHREALTIME/./} - t0)))
pass "csv-lab up --nodes 3 --volumes 2 --lun-size 512M (${t_up} s)"
grep -q "csv-lab down" "$work/up.out" && pass "up prints how to tear down" || fail "up summary"

# A second lab is refused while this one is up, and this one is untouched.
if "$LAB" up --nodes 2 --dir "$work/second" --build "$build" >"$work/up2.out" 2>&1; then
	fail "a second up is refused"
else
	grep -q "already up" "$work/up2.out" && pass "a second up is refused: $(head -n1 "$work/up2.out")" ||
		{ fail "a second up: unclear message"; cat "$work/up2.out"; }
fi
check "the first lab still has node 1 quorate with 3" test "$(view 1)" = "3 Yes"

# Membership: every node quorate with three members.
for i in 1 2 3; do check "node $i is quorate with 3 members" test "$(view "$i")" = "3 Yes"; done
# csv-quorumd runs on every node: csvctl there reports the cluster.
for i in 1 2 3; do
	check "csvctl status on node $i: quorate, 3 members, both volumes up on every node" sh -c \
		"'$LAB' exec $i -- '$build/cli/csvctl' status --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s[\"quorum\"][\"quorate\"] and len(s[\"members\"]) == 3 and
	all(len(n[\"volumes\"]) == 2 and all(v[\"state\"] == \"up\" for v in n[\"volumes\"])
	    for n in s[\"nodes\"]) else 1)'"
done

# The volumes on every node; a file written on node 1 is read on node 3.
for i in 1 2 3; do check "vol1 and vol2 are mounted on node $i" eval 'mounted "$i" 1 && mounted "$i" 2'; done
# csv-rmd spreads the coordinators: vol1 and vol2 on two nodes.
holders=$("$LAB" exec 1 -- "$build/cli/csvctl" volume list --json | python3 -c '
import json, sys
print(" ".join(str(v["holder"]) for v in json.load(sys.stdin) if v["phase"] == "running"))')
check "csv-rmd runs the coordinators of vol1 and vol2 on two nodes ($holders)" \
	eval '[ "$(wc -w <<<"$holders")" = 2 ] && [ "$(tr " " "\n" <<<"$holders" | sort -u | wc -l)" = 2 ]'
echo "on vol2" >"$(mnt 2 2)/from-node2" && pass "write on vol2 on node 2" || fail "write on vol2 on node 2"
check "node 3 reads it on vol2, and vol1 does not have it" eval \
	'[ "$(cat "$(mnt 3 2)/from-node2")" = "on vol2" ] && [ ! -e "$(mnt 3)/from-node2" ]'
head -c 1M /dev/urandom >"$work/r1"
cp "$work/r1" "$(mnt 1)/from-node1" && pass "write 1 MiB on node 1" || fail "write on node 1"
check "node 3 reads it byte-exact" cmp "$work/r1" "$(mnt 3)/from-node1"
mkdir "$(mnt 2)/dir2" && pass "mkdir on node 2" || fail "mkdir on node 2"
check "node 1 sees the directory of node 2" test -d "$(mnt 1)/dir2"

# The network: addresses only inside the namespaces.
addr2=$("$LAB" exec 2 -- ip -o addr)
check "node 2 has 10.77.0.2 in its namespace" grep -q "inet 10.77.0.2/24" <<<"$addr2"
check "the host has no address on csvlab0" test -z "$(ip -o addr show dev csvlab0)"
check "the host has no 10.77.0.x address" eval '! ip -o addr | grep -q "inet 10\.77\.0\."'
check "the host has no route to 10.77.0.0/24" test -z "$(ip route show 10.77.0.0/24)"

# Cluster link of node 3 down: nodes 1 and 2 stay quorate with 2.
out=$("$LAB" fault 3 net-off) && [ -n "$out" ] && pass "fault 3 net-off: $out" || fail "fault 3 net-off"
if wait_view "2 Yes" 10 1 2; then pass "nodes 1 and 2: 2 members, quorate ($waited s)"; else fail "nodes 1 and 2 after net-off"; fi
check "node 3 alone is not quorate" test "$(view 3)" = "1 No"
out=$("$LAB" fault 3 net-on) && pass "fault 3 net-on: $out" || fail "fault 3 net-on"
if wait_view "3 Yes" 15 1 2 3; then pass "net-on: 3 members on every node again ($waited s)"; else fail "after net-on"; fi
check "node 3 still reads the volume" cmp "$work/r1" "$(mnt 3)/from-node1"

# A stalled SAN path of node 3: a read there completes through the
# coordinator once the I/O timeout (2 s) has passed. (Before the errors
# below: a client that redirects its I/O after a failed path would not
# touch its path for a while.)
head -c 256K /dev/urandom >"$work/r3"
cp "$work/r3" "$(mnt 1)/stalled" || fail "write on node 1"
out=$("$LAB" fault 3 san-hang) && pass "fault 3 san-hang: $out" || fail "fault 3 san-hang"
check "a read on node 3 completes through the coordinator while its path stalls" \
	timeout 15 cmp "$work/r3" "$(mnt 3)/stalled"
check "node 2 reads it meanwhile (the stall is node 3's path only)" cmp "$work/r3" "$(mnt 2)/stalled"
out=$("$LAB" fault 3 san-hang-off) && pass "fault 3 san-hang-off: $out" || fail "fault 3 san-hang-off"
check "node 3 reads it once resumed" timeout 10 cmp "$work/r3" "$(mnt 3)/stalled"

# I/O errors on node 2's SAN path. A file written on node 1 and never read
# on node 2 is not in node 2's page cache, so node 2 reads it from the LUN.
head -c 1M /dev/urandom >"$work/r2"
cp "$work/r2" "$(mnt 1)/uncached" || fail "write on node 1"
out=$("$LAB" fault 2 san-errors) && pass "fault 2 san-errors: $out" || fail "fault 2 san-errors"
# Its SAN path failing, node 2 reads through the coordinator (block-level
# redirection), and writes too; the application sees no error.
check "node 2 reads the uncached file through the coordinator (redirected I/O)" \
	sh -c "cat '$(mnt 2)/uncached' >'$work/read2' && cmp '$work/r2' '$work/read2'"
check "node 2 writes a file through the coordinator" cp "$work/r2" "$(mnt 2)/redirected"
check "node 1 reads it byte-exact" cmp "$work/r2" "$(mnt 1)/redirected"
check "node 3 reads it meanwhile (the fault is node 2's path only)" cmp "$work/r2" "$(mnt 3)/uncached"
out=$("$LAB" fault 2 san-errors-off) && pass "fault 2 san-errors-off: $out" || fail "fault 2 san-errors-off"
check "node 2 reads it byte-exact once healed" cmp "$work/r2" "$(mnt 2)/uncached"

# Node 2 killed: nodes 1 and 3 stay quorate with 2; restart brings it back.
out=$("$LAB" fault 2 kill) && pass "fault 2 kill: $out" || fail "fault 2 kill"
check "nothing runs in node 2's namespace" test -z "$(ip netns pids csvlab-n2)"
check "node 2's mount is gone" eval '! mounted 2'
if wait_view "2 Yes" 10 1 3; then pass "nodes 1 and 3: 2 members, quorate ($waited s)"; else fail "nodes 1 and 3 after kill"; fi
check "node 1 still writes" cp "$work/r3" "$(mnt 1)/after-kill"
out=$("$LAB" fault 2 restart) && pass "fault 2 restart: $out" || fail "fault 2 restart"
if wait_view "3 Yes" 15 1 2 3; then pass "restart: 3 members on every node again ($waited s)"; else fail "after restart"; fi
check "node 2 has its mount back" mounted 2
check "node 2 reads what node 1 wrote while it was down" cmp "$work/r3" "$(mnt 2)/after-kill"
echo "back" >"$(mnt 2)/from-node2"
check "node 3 reads what node 2 wrote" test "$(cat "$(mnt 3)/from-node2" 2>&1)" = back

# Node 3's SAN path killed and started again on the same socket.
sock3=$dir/node3/vol1.sock
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
nbd_hello() {
	"$py" - "$1" <<-'EOF' 2>/dev/null
		import socket, sys
		s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])
		sys.exit(0 if s.recv(8) == b"NBDMAGIC" else 1)
	EOF
}
out=$("$LAB" fault 3 san-off) && pass "fault 3 san-off: $out" || fail "fault 3 san-off"
check "node 3's SAN socket refuses connections" eval '! nbd_hello "$sock3"'
out=$("$LAB" fault 3 san-on) && pass "fault 3 san-on: $out" || fail "fault 3 san-on"
check "node 3's SAN socket serves NBD again" nbd_hello "$sock3"

# Status names every node and what it runs.
"$LAB" status >"$work/status.out" 2>&1
for i in 1 2 3; do check "status shows node $i" grep -q "^node $i (10.77.0.$i" "$work/status.out"; done
check "status shows the quorum" grep -q "quorate, 3 member" "$work/status.out"
check "status shows the coordinator running" grep -q "coordinator on node 1 .*running" "$work/status.out"

# The logs, while they exist, when something failed.
if [ "$failures" -ne 0 ]; then
	for f in "$work/up.out" "$dir"/node*/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -15 "$f"; }; done
fi

# Down: nothing of the lab is left.
t0=${EPOCHREALTIME/./}
if "$LAB" down --dir "$dir" >"$work/down.out" 2>&1; then
	pass "csv-lab down ($(secs $((${EPOCHREALTIME/./} - t0))) s): $(cat "$work/down.out")"
else
	fail "csv-lab down"; cat "$work/down.out"
fi
up_started=0
check "no csvlab namespace is left" test -z "$(ip netns list | grep csvlab)"
check "no csvlab link is left" test -z "$(ip -o link show | grep csvlab)"
check "no process of the lab is left" test -z "$(pgrep -f -- "$dir/")"
check "no mount of the lab is left" eval '! grep -q " $dir/" /proc/mounts'
check "the state directory is gone" test ! -e "$dir"
check "a second down says no lab is up" eval '"$LAB" down --dir "$dir" | grep -q "no lab is up"'

# An up stopped half-way, once its nodes' corosync runs: with SIGTERM it
# tears down what it made itself; after SIGKILL, down does.
# lab_left: what of a lab is left ("" nothing).
lab_left() {
	ip netns list | grep -q csvlab && echo "a namespace"
	ip -o link show | grep -q csvlab && echo "a link"
	pgrep -f -- "$dir/" >/dev/null && echo "a process"
	grep -q " $dir/" /proc/mounts && echo "a mount"
}
for sig in TERM KILL; do
	up_started=1
	"$LAB" up --nodes 3 --lun-size 512M --dir "$dir" --build "$build" >"$work/up-$sig.out" 2>&1 &
	up_pid=$!
	for _ in $(seq 300); do
		[ -n "$(ip netns pids csvlab-n3 2>/dev/null)" ] && break
		sleep 0.1
	done
	if ! kill -0 "$up_pid" 2>/dev/null; then
		fail "up was still running when node 3's corosync started (SIG$sig)"
		sed 's/^/    /' "$work/up-$sig.out"
	fi
	kill -"$sig" "$up_pid" 2>/dev/null
	wait "$up_pid" 2>/dev/null
	if [ "$sig" = TERM ]; then
		check "an up stopped with SIGTERM tears down what it made" test -z "$(lab_left)" ||
			{ echo "    left: $(lab_left | paste -sd ' ')"; tail -3 "$work/up-$sig.out" | sed 's/^/    /'; }
		grep -q "interrupted" "$work/up-$sig.out" && pass "... and says it was interrupted" ||
			fail "an up stopped with SIGTERM says it was interrupted"
	fi
	"$LAB" down --dir "$dir" >"$work/down-$sig.out" 2>&1 ||
		{ fail "down after an up stopped with SIG$sig"; sed 's/^/    /' "$work/down-$sig.out"; }
	up_started=0
	check "after an up stopped with SIG$sig and down, nothing of the lab is left" test -z "$(lab_left)" ||
		echo "    left: $(lab_left | paste -sd ' ')"
done

echo "timings: up ${t_up} s, the whole test $(secs $((${EPOCHREALTIME/./} - T_START))) s"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
