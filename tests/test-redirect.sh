#!/bin/bash
# Block-level redirection: a csvfs client reaches the LUN through its own
# nbdkit SAN path; the coordinator through another. When the client's path
# returns I/O errors, disappears, or stalls (nbdkit's pause filter), its
# reads, writes and fsyncs go through the coordinator and the application
# sees no error; when the path heals, the client goes back to direct I/O.
# A write that stalled lands late, when the path goes on: an overwrite of
# its range meanwhile must wait for it, or the late write would undo it.
# When the coordinator loses the LUN too (every path gone), I/O pauses: it
# goes on without an error when the SAN returns within reconnect_timeout,
# and fails with EIO past it, losing nothing written before.
# Binaries from meson: CSVFS, MKFS, FSCK, COORD.
set -u
: "${CSVFS:?}" "${MKFS:?}" "${FSCK:?}" "${COORD:?}"

if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
command -v fusermount3 >/dev/null || { echo "SKIP: no fusermount3"; exit 77; }
command -v nbdkit >/dev/null || { echo "SKIP: no nbdkit"; exit 77; }

work=$(mktemp -d /tmp/csvfs-redirect.XXXXXX)
A="$work/a"
mkdir -p "$A"
coord_pid= nbd_pid= mount_pid=
cleanup() {
	mountpoint -q "$A" 2>/dev/null && { fusermount3 -u "$A" 2>/dev/null || fusermount3 -uz "$A" 2>/dev/null; }
	for p in $mount_pid $coord_pid $nbd_pid; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

img="$work/lun.img"
key="$work/key"
sock="$work/san.sock"
errors="$work/san-errors"  # while it exists, every I/O of the path fails
pause="$work/san-pause.sock"  # the pause filter's control socket
make_key "$key"
port=$(free_port)
"$MKFS" -s 512M -L redirect "$img" >/dev/null || { echo "mkfs failed"; exit 1; }

# The client's SAN path, under the pause filter when nbdkit has it (1.22).
if nbdkit --filter=pause null --dump-plugin >/dev/null 2>&1; then
	pause_args=(--filter=pause "pause-control=$pause")
else
	pause_args=()
	echo "nbdkit has no pause filter: the stalled-path case is skipped"
fi
start_san() {
	rm -f "$sock" "$pause"
	nbdkit --foreground --unix "$sock" --filter=error "${pause_args[@]:0:1}" file "$img" error-rate=100% \
		error-file="$errors" "${pause_args[@]:1}" >>"$work/nbdkit.log" 2>&1 &
	nbd_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
	echo "nbdkit did not start:"; cat "$work/nbdkit.log"
	return 1
}
# Sends p (pause: requests the path reads from now on wait) or r (resume)
# to the pause filter, and waits for its answer.
pause_ctl() {
	local py=python3 ack
	[ -x /usr/bin/python3 ] && py=/usr/bin/python3
	ack=$("$py" - "$pause" "$1" <<-'EOF' 2>&1
		import socket, sys
		s = socket.socket(socket.AF_UNIX)
		s.settimeout(10)
		s.connect(sys.argv[1])
		s.sendall(sys.argv[2].encode())
		print(s.recv(1).decode())
	EOF
	)
	[ "$ack" = "${1^^}" ] || { echo "the pause filter did not acknowledge '$1': $ack"; return 1; }
}
# Seconds since $1 (an $EPOCHREALTIME), to a tenth.
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# Waits up to 10 s for the client to say N times that its path works again.
wait_direct() {
	for _ in $(seq 100); do
		[ "$(grep -c "works again: direct I/O" "$work/client.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
start_san || exit 1
start_coordinator "$img" "$port" "$key" "$work/coord.log" || exit 1
# How long I/O waits for a coordinator before EIO (default 120 s).
RECONNECT_S=6
mount_csvfs "nbd+unix:///?socket=$sock" "$A" 1 "$port" "$key" "$work/client.log" "reconnect_timeout=$RECONNECT_S" ||
	exit 1

head -c 3M /dev/urandom >"$work/r3"
head -c 2M /dev/urandom >"$work/r2"
cp "$work/r3" "$A/before" && sync && pass "written on the direct path" || fail "write on the direct path"

# I/O errors on the path.
touch "$errors"
check "errors on the path: a read is byte-exact" cmp "$work/r3" "$A/before"
check "errors on the path: a new file is written" cp "$work/r2" "$A/during-errors"
check "errors on the path: fsync works" dd if="$work/r2" of="$A/during-errors" bs=64k conv=notrunc,fsync status=none
check "errors on the path: it reads back byte-exact" cmp "$work/r2" "$A/during-errors"
grep -q "I/O goes through the coordinator" "$work/client.log" && pass "the client says it redirects" ||
	fail "the client did not report redirecting"
rm -f "$errors"
sleep 2.5  # the next probe of the path
cp "$work/r3" "$A/after-errors" && pass "written after the path healed" || fail "write after the path healed"
grep -q "works again: direct I/O" "$work/client.log" && pass "the client went back to direct I/O" ||
	fail "the client did not go back to direct I/O"

# The path disappears (nbdkit killed), then comes back.
kill -9 "$nbd_pid"
wait "$nbd_pid" 2>/dev/null
check "path gone: a read is byte-exact" cmp "$work/r3" "$A/after-errors"
check "path gone: a write and fsync work" dd if="$work/r2" of="$A/during-loss" bs=64k conv=fsync status=none
check "path gone: it reads back byte-exact" cmp "$work/r2" "$A/during-loss"
start_san || exit 1
sleep 2.5
cp "$work/r2" "$A/after-loss" && pass "written after the path came back" || fail "write after the path came back"
check "every file reads back byte-exact" sh -c "cmp '$work/r3' '$A/before' && cmp '$work/r2' '$A/during-errors' &&
	cmp '$work/r3' '$A/after-errors' && cmp '$work/r2' '$A/during-loss' && cmp '$work/r2' '$A/after-loss'"
[ "$(grep -c "works again: direct I/O" "$work/client.log")" -ge 2 ] && pass "direct I/O again after the loss" ||
	fail "the client did not go back to direct I/O after the loss"

# The path stalls: every request it reads waits (the pause filter), as on
# a hung target. The first I/O times out (io_timeout, 2 s by default) and
# is done again through the coordinator; the next go there at once.
if [ ${#pause_args[@]} -gt 0 ]; then
	head -c 1M /dev/urandom >"$work/h1"
	head -c 1M /dev/urandom >"$work/h2"
	directs=$(grep -c "works again: direct I/O" "$work/client.log")
	pause_ctl p || exit 1
	t0=$EPOCHREALTIME
	check "path stalled: a write and fsync work" \
		dd if="$work/h1" of="$A/during-hang" bs=64k conv=fsync status=none
	t_write=$(since "$t0")
	t1=$EPOCHREALTIME
	check "path stalled: a read is byte-exact" cmp "$work/r3" "$A/before"
	t_read=$(since "$t1")
	echo "path stalled: from the stall to a redirected write + fsync of 1 MiB: $t_write s; a read of 3 MiB then: $t_read s"
	awk -v t="$t_write" 'BEGIN { exit !(t < 6) }' && pass "redirected within 6 s of the stall" ||
		fail "the write took $t_write s to be redirected"
	grep -q "stalled for [0-9]* ms: I/O goes through the coordinator" "$work/client.log" &&
		pass "the client says its path stalled" || fail "the client did not report the stalled path"
	check "path stalled: it reads back byte-exact" cmp "$work/h1" "$A/during-hang"

	# The first 64 KiB of during-hang were written on the path and are
	# still with the paused server. An overwrite must not be acknowledged
	# before that write lands (or fails), or it would be undone by it.
	t2=$EPOCHREALTIME
	dd if="$work/h2" of="$A/during-hang" bs=64k conv=notrunc,fsync status=none &
	ow_pid=$!
	sleep 1.5
	if kill -0 "$ow_pid" 2>/dev/null; then pass "an overwrite of the stalled range waits for it"; else
		fail "an overwrite of the stalled range was done while the stalled write may still land"; fi
	grep -q "wait until its server has answered it" "$work/client.log" &&
		pass "the client says why the overwrite waits" || fail "the client did not say why the overwrite waits"
	pause_ctl r || exit 1
	wait "$ow_pid" && pass "the overwrite is done once the path goes on ($(since "$t2") s)" ||
		fail "the overwrite failed"
	check "after the stall: the overwrite reads back" cmp "$work/h2" "$A/during-hang"
	grep -q "none is in doubt any more" "$work/client.log" && pass "the stalled write was answered" ||
		fail "the client did not report the stalled write answered"
	wait_direct $((directs + 1)) && pass "direct I/O again after the stall" ||
		fail "the client did not go back to direct I/O after the stall"
	check "after the stall, on the path: the overwrite reads back" cmp "$work/h2" "$A/during-hang"
	check "after the stall, on the path: O_DIRECT reads it back" \
		sh -c "dd if='$A/during-hang' iflag=direct bs=64k status=none | cmp '$work/h2' -"
fi

# Every path gone: the client's (nbdkit killed) and the coordinator's (it
# ends, as one whose LUN fails does, and cannot start again meanwhile).
san_down() {
	kill -9 "$nbd_pid" "$coord_pid" 2>/dev/null
	wait "$nbd_pid" "$coord_pid" 2>/dev/null
}
restarts=0
san_up() {
	restarts=$((restarts + 1))
	start_san && start_coordinator "$img" "$port" "$key" "$work/coord.$restarts.log"
}
head -c 1M /dev/urandom >"$work/o1"
san_down
t0=$EPOCHREALTIME
dd if="$work/o1" of="$A/during-outage" bs=64k conv=fsync status=none 2>"$work/dd.err" &
dd_pid=$!
sleep 3
if kill -0 "$dd_pid" 2>/dev/null; then pass "no path anywhere: a write and fsync wait (3 s)"; else
	fail "no path anywhere: the write did not wait: $(cat "$work/dd.err")"; fi
san_up || exit 1
if wait "$dd_pid"; then
	pass "the SAN back after $(since "$t0") s: the write is done, without an error"
else
	fail "the write failed although the SAN came back within reconnect_timeout: $(cat "$work/dd.err")"
fi
check "it reads back byte-exact" cmp "$work/o1" "$A/during-outage"
san_down
t0=$EPOCHREALTIME
if dd if="$work/o1" of="$A/past-limit" bs=64k conv=fsync status=none 2>"$work/dd.err"; then
	fail "no path for longer than reconnect_timeout: the write succeeded"
else
	took=$(since "$t0")
	grep -q "Input/output error" "$work/dd.err" &&
		pass "no path for longer than reconnect_timeout ($RECONNECT_S s): the write fails with EIO after $took s" ||
		fail "the write failed, but not with EIO: $(cat "$work/dd.err")"
	awk -v t="$took" -v l="$RECONNECT_S" 'BEGIN { exit !(t >= l - 0.5) }' &&
		pass "... not before reconnect_timeout" || fail "the write failed after $took s, before $RECONNECT_S s"
fi
san_up || exit 1
check "after the outage, every file written before reads back byte-exact" sh -c "cmp '$work/r3' '$A/before' &&
	cmp '$work/r2' '$A/during-loss' && cmp '$work/o1' '$A/during-outage'"
check "after the outage, a write and fsync work" dd if="$work/o1" of="$A/after-outage" bs=64k conv=fsync status=none
check "... and read back byte-exact" cmp "$work/o1" "$A/after-outage"

fusermount3 -u "$A" && pass "unmount" || fail "unmount"
for _ in $(seq 100); do kill -0 "$mount_pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$coord_pid"
wait "$coord_pid" 2>/dev/null
coord_pid=
if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "fsck.csvfs finds the volume clean"; else
	fail "fsck.csvfs:"; sed 's/^/    /' "$work/fsck.out"; fi

[ $failures = 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
