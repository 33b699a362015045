#!/bin/bash
# csv-coordinatord as an operator runs it: on a fresh image, served to the
# wire-protocol test client, killed with -9 and restarted (journal replay),
# stopped with SIGTERM; then fsck. Binaries come from meson in MKFS, FSCK,
# COORD and CLIENT.
set -u
: "${MKFS:?}" "${FSCK:?}" "${COORD:?}" "${CLIENT:?}"

work=$(mktemp -d /tmp/csvfs-coord.XXXXXX)
pid=
cleanup() {
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

uuid=01234567-89ab-cdef-0123-456789abcdef
img="$work/lun.img"
key="$work/key"
log="$work/coord.log"
"$MKFS" -s 64M -L coordtest -U "$uuid" "$img" >/dev/null || { echo "mkfs failed"; exit 1; }
make_key "$key"

port=$(free_port)

# start: runs the daemon in the background and waits until it listens.
start() {
	local skip
	skip=$(wc -l <"$log" 2>/dev/null || echo 0)
	"$COORD" --lun "$img" --listen "127.0.0.1:$port" --keyfile "$key" --node-id 1 --foreground >>"$log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		tail -n +"$((skip + 1))" "$log" 2>/dev/null | grep -q "serving on" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	fail "the daemon did not start:"; sed 's/^/    /' "$log" | tail -20
	return 1
}
client() { "$CLIENT" "$1" 127.0.0.1 "$port" "$key" "$uuid"; }

# Refusals: exit 1 and a message naming the problem.
expect_refusal() {
	local what=$1 text=$2
	shift 2
	"$@" >"$work/out" 2>&1
	local rc=$?
	if [ "$rc" -eq 1 ] && grep -qF -- "$text" "$work/out"; then pass "$what"; else
		fail "$what: exit $rc, expected 1 and '$text'"; sed 's/^/    /' "$work/out" | head; fi
}
cp "$key" "$work/openkey"; chmod 644 "$work/openkey"
expect_refusal "a key file others can read is refused" "openkey" \
	"$COORD" --lun "$img" --listen "127.0.0.1:$port" --keyfile "$work/openkey" --foreground
head -c 8M /dev/zero >"$work/zero.img"
expect_refusal "a damaged volume is refused" "zero.img" \
	"$COORD" --lun "$work/zero.img" --listen "127.0.0.1:$port" --keyfile "$key" --foreground
"$COORD" --help | grep -q "Usage:" && pass "--help" || fail "--help"
"$COORD" --version | grep -q "0\." && pass "--version" || fail "--version"

start || exit 1
expect_refusal "a second daemon on the same address is refused" "127.0.0.1:$port" \
	"$COORD" --lun "$img" --listen "127.0.0.1:$port" --keyfile "$key" --foreground

if client ops >"$work/ops.out" 2>&1; then pass "client operations"; else fail "client operations:"; fi
sed 's/^/    /' "$work/ops.out"
grep -q "connection closed: .*malformed" "$log" && pass "the log names the malformed frame" ||
	fail "no log line for the malformed frame"
grep -q "volume coordtest ($uuid): 127.0.0.1:[0-9]* (node 2)" "$log" && pass "log lines name the volume and the peer" ||
	fail "log lines do not name the volume and the peer"

if client persist >"$work/p.out" 2>&1; then pass "acknowledged operations"; else fail "persist:"; sed 's/^/    /' "$work/p.out"; fi
kill -9 "$pid"; wait "$pid" 2>/dev/null; pid=
pass "killed with -9"
start || exit 1
grep -q "journal replayed: [1-9][0-9]* transactions" "$log" && pass "the journal was replayed at restart" ||
	{ fail "no journal replay in the log:"; tail -5 "$log"; }
if client verify >"$work/v.out" 2>&1; then pass "every acknowledged change survived"; else fail "verify:"; sed 's/^/    /' "$work/v.out"; fi

# A second coordinator of the volume takes a newer epoch: the first stops
# at once (exit 3), writing nothing more; the second serves.
first=$pid
port2=$port
port=$(free_port)
start || exit 1
for _ in $(seq 50); do kill -0 "$first" 2>/dev/null || break; sleep 0.1; done
wait "$first"; rc=$?
[ "$rc" -eq 3 ] && pass "the superseded coordinator stopped with status 3" ||
	{ fail "the superseded coordinator: exit $rc"; kill -9 "$first" 2>/dev/null; }
grep -q "took the volume with epoch 3 (this coordinator has 2): stopping at once" "$log" &&
	pass "its log names the new epoch" || fail "no log line for the new epoch"
if client verify >"$work/v2.out" 2>&1; then pass "the new coordinator serves every change"; else
	fail "verify on the new coordinator:"; sed 's/^/    /' "$work/v2.out"; fi

kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" -eq 0 ] && pass "SIGTERM: exit 0" || { fail "SIGTERM: exit $rc"; tail -5 "$log"; }
grep -q "journal checkpointed" "$log" && pass "checkpoint at shutdown" || fail "no checkpoint at shutdown"
if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "fsck -n finds the volume clean"; else
	fail "fsck -n: exit $?"; sed 's/^/    /' "$work/fsck.out" | head -20; fi

echo "--- daemon log (last lines)"; tail -15 "$log"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
