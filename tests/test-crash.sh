#!/bin/bash
# Crashes under load, on two csvfs mounts of one volume:
#  1. kill -9 of csv-coordinatord at random moments while writers append
#     fsync'd records and a shell renames and removes files; the coordinator
#     comes back, the clients reconnect, and the writers see a pause, never
#     an error.
#  2. a power cut at the block layer: the LUN is served by nbdkit with a
#     write-back cache that only a flush empties, and nbdkit, the
#     coordinator and the clients are all killed at once, losing every
#     write that was not flushed.
# After each: every fsync'd record is there and intact, every acknowledged
# rename is there, and fsck.csvfs finds the volume clean.
# Binaries from meson: CSVFS, MKFS, FSCK, COORD, WORKLOAD.
set -u
: "${CSVFS:?}" "${MKFS:?}" "${FSCK:?}" "${COORD:?}" "${WORKLOAD:?}"

if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
command -v fusermount3 >/dev/null || { echo "SKIP: no fusermount3"; exit 77; }

work=$(mktemp -d /tmp/csvfs-crash.XXXXXX)
A="$work/a"
B="$work/b"
mkdir -p "$A" "$B"
coord_pid= nbd_pid= pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	for m in "$A" "$B"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; }
	done
	for p in $coord_pid $nbd_pid; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

seed=${CRASH_SEED:-$RANDOM}
echo "seed $seed (CRASH_SEED=$seed replays the kill times)"
RANDOM=$seed

img="$work/lun.img"
key="$work/key"
# Each start of the coordinator logs to a file of its own.
starts=0
coord() {
	starts=$((starts + 1))
	log="$work/coord$starts.log"
	start_coordinator "$1" "$port" "$key" "$log"
}
make_key "$key"
port=$(free_port)

# Waits until every pid given has exited, up to 60 s; 1 if one has not.
wait_gone() {
	for _ in $(seq 600); do
		local alive=0
		for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && return 0
		sleep 0.1
	done
	return 1
}

# The last record each writer was told was durable.
last_acked() { awk '$1 == "acked" { a = $2 } END { print (a == "" ? -1 : a) }' "$1"; }

# Starts two appenders (one per mount) and a shell that renames and removes
# files on mount A, logging each acknowledged rename.
start_load() {
	mkdir -p "$A/logs" "$A/churn"
	pids=()
	"$WORKLOAD" append --dir "$A/logs" --id wa --records 1000000 --size 700 >"$work/wa.out" 2>&1 &
	pids+=($!)
	"$WORKLOAD" append --dir "$B/logs" --id wb --records 1000000 --size 3000 >"$work/wb.out" 2>&1 &
	pids+=($!)
	(
		i=0
		while :; do
			echo "$i" >"$A/churn/new$i" && mv "$A/churn/new$i" "$A/churn/done$i" && echo "$i" >>"$work/renamed"
			[ $((i % 3)) = 0 ] && rm -f "$A/churn/done$((i - 3))"
			i=$((i + 1))
		done
	) 2>>"$work/churn.err" &
	pids+=($!)
}

# Stops the load and checks what it was told: no errors, every fsync'd
# record and every acknowledged rename there (read through mount which).
check_load() {
	local what=$1 other=$2
	kill -TERM "${pids[@]}" 2>/dev/null
	wait_gone "${pids[@]}" || fail "$what: the load did not stop"
	local ea eb
	ea=$(last_acked "$work/wa.out")
	eb=$(last_acked "$work/wb.out")
	echo "    writers acknowledged records 0..$ea and 0..$eb"
	[ "$ea" -ge 10 ] && [ "$eb" -ge 10 ] && pass "$what: the writers made progress" ||
		fail "$what: the writers made no progress ($ea, $eb)"
	if [ -n "${3:-}" ]; then
		! grep -q '^error' "$work/wa.out" "$work/wb.out" && pass "$what: no writer saw an error" ||
			{ fail "$what: a writer saw an error"; grep -h '^error' "$work/wa.out" "$work/wb.out" | head -5; }
		[ ! -s "$work/churn.err" ] && pass "$what: no rename or remove failed" ||
			{ fail "$what: the renames saw errors"; head -5 "$work/churn.err"; }
	fi
	"$WORKLOAD" verify --dir "$other/logs" --id wa --acked "$ea" >"$work/va.out" 2>&1 &&
		pass "$what: every fsync'd record of writer A is intact" ||
		{ fail "$what: writer A lost records"; sed 's/^/    /' "$work/va.out"; }
	"$WORKLOAD" verify --dir "$other/logs" --id wb --acked "$eb" >"$work/vb.out" 2>&1 &&
		pass "$what: every fsync'd record of writer B is intact" ||
		{ fail "$what: writer B lost records"; sed 's/^/    /' "$work/vb.out"; }
	local last missing=0
	last=$(tail -n 1 "$work/renamed" 2>/dev/null)
	if [ -n "$last" ]; then
		for i in $(seq $((last > 2 ? last - 2 : 0)) "$last"); do
			[ -e "$other/churn/done$i" ] || missing=$((missing + 1))
		done
	fi
	[ -n "$last" ] && [ $missing = 0 ] && pass "$what: the last acknowledged renames are there (up to $last)" ||
		fail "$what: acknowledged renames are missing ($missing of the last three, last '$last')"
}

unmount_all() {
	for m in "$A" "$B"; do
		mountpoint -q "$m" && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m"; }
	done
}

fsck_clean() {
	if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "$1: fsck.csvfs finds the volume clean"
	else fail "$1: fsck.csvfs:"; sed 's/^/    /' "$work/fsck.out" | head -30; fi
}

# ---- 1. kill -9 of the coordinator under load ---------------------------------

"$MKFS" -s 1G -L crashtest "$img" >/dev/null || { echo "mkfs failed"; exit 1; }
coord "$img" || exit 1
mount_csvfs "$img" "$A" 1 "$port" "$key" "$work/client1.log" || exit 1
pa=$mount_pid
mount_csvfs "$img" "$B" 2 "$port" "$key" "$work/client2.log" || exit 1
pb=$mount_pid
start_load
for round in 1 2 3; do
	sleep "$((RANDOM % 3)).$((RANDOM % 10))"
	kill -9 "$coord_pid"
	wait "$coord_pid" 2>/dev/null
	sleep "0.$((RANDOM % 10))"
	coord "$img" || { fail "restart $round"; exit 1; }
done
sleep 2
check_load "coordinator killed 3 times" "$B" strict
grep -q "reconnected to coordinator" "$work/client1.log" && grep -q "reconnected" "$work/client2.log" &&
	pass "both clients reconnected" || fail "the clients did not report reconnecting"
unmount_all
wait_gone "$pa" "$pb" || fail "a client did not exit after unmount"
kill -TERM "$coord_pid"
wait "$coord_pid" 2>/dev/null
fsck_clean "after the kills"

# ---- 2. power cut at the block layer ----------------------------------------------

if ! command -v nbdkit >/dev/null; then
	echo "SKIP (part 2): no nbdkit"
else
	rm -f "$img" "$work/renamed" "$work/churn.err"
	"$MKFS" -s 1G -L crashtest "$img" >/dev/null || { echo "mkfs failed"; exit 1; }
	sock="$work/san.sock"
	# One SAN for every node: a write-back cache in front of the file,
	# emptied only by a flush, so that killing nbdkit drops what no flush
	# made durable.
	nbdkit --foreground --unix "$sock" --filter=cache file "$img" cache=writeback \
		>"$work/nbdkit.log" 2>&1 &
	nbd_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	uri="nbd+unix:///?socket=$sock"
	port=$(free_port)
	coord "$uri" || exit 1
	mount_csvfs "$uri" "$A" 1 "$port" "$key" "$work/client1.log" || exit 1
	pa=$mount_pid
	mount_csvfs "$uri" "$B" 2 "$port" "$key" "$work/client2.log" || exit 1
	pb=$mount_pid
	start_load
	sleep "$((2 + RANDOM % 3)).$((RANDOM % 10))"
	# The power cut: everything at once.
	kill -9 "$nbd_pid" "$coord_pid" "$pa" "$pb" "${pids[@]}" 2>/dev/null
	wait 2>/dev/null
	nbd_pid= coord_pid=
	for m in "$A" "$B"; do fusermount3 -uz "$m" 2>/dev/null; done
	pass "power cut under load"

	# Back up: the coordinator replays the journal of the file itself.
	coord "$img" || exit 1
	grep -q "journal replayed" "$log" && pass "the journal was replayed" || fail "no journal replay after the cut"
	mount_csvfs "$img" "$A" 1 "$port" "$key" "$work/client1.log" || exit 1
	pa=$mount_pid
	pids=()
	check_load "power cut" "$A"
	unmount_all
	wait_gone "$pa" || fail "the client did not exit after unmount"
	kill -TERM "$coord_pid"
	wait "$coord_pid" 2>/dev/null
	coord_pid=
	fsck_clean "after the power cut"
fi

[ $failures = 0 ] || { echo "$failures check(s) failed (seed $seed)"; exit 1; }
echo "all checks passed"
