#!/bin/bash
# Block-level redirection: a csvfs client reaches the LUN through its own
# nbdkit SAN path; the coordinator through another. When the client's path
# returns I/O errors, or disappears, its reads, writes and fsyncs go through
# the coordinator and the application sees no error; when the path heals,
# the client goes back to direct I/O.
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
make_key "$key"
port=$(free_port)
"$MKFS" -s 512M -L redirect "$img" >/dev/null || { echo "mkfs failed"; exit 1; }

# The client's SAN path.
start_san() {
	rm -f "$sock"
	nbdkit --foreground --unix "$sock" --filter=error file "$img" error-rate=100% error-file="$errors" \
		>>"$work/nbdkit.log" 2>&1 &
	nbd_pid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.1; done
	echo "nbdkit did not start:"; cat "$work/nbdkit.log"
	return 1
}
start_san || exit 1
start_coordinator "$img" "$port" "$key" "$work/coord.log" || exit 1
mount_csvfs "nbd+unix:///?socket=$sock" "$A" 1 "$port" "$key" "$work/client.log" || exit 1

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

fusermount3 -u "$A" && pass "unmount" || fail "unmount"
for _ in $(seq 100); do kill -0 "$mount_pid" 2>/dev/null || break; sleep 0.1; done
kill -TERM "$coord_pid"
wait "$coord_pid" 2>/dev/null
coord_pid=
if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "fsck.csvfs finds the volume clean"; else
	fail "fsck.csvfs:"; sed 's/^/    /' "$work/fsck.out"; fi

[ $failures = 0 ] || { echo "$failures check(s) failed"; exit 1; }
echo "all checks passed"
