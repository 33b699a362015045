#!/bin/bash
# mount(8) and fstab through the mount.csvfs helper, as an operator uses
# them: mount -t csvfs, a private fstab file (mount -T) with an NBD URI when
# nbdkit is there, -o ro, the options that the helper drops, and the
# mistakes it must reject without leaving a mount or a process behind.
# Then umount, SIGTERM to the coordinator, fsck.
# Binaries come from meson in CSVFS, MOUNT_CSVFS, MKFS, FSCK and COORD.
# mount(8) runs /sbin/mount.csvfs: the test links it to MOUNT_CSVFS for its
# duration when there is none, and skips when there is another one.
set -u
: "${CSVFS:?}" "${MOUNT_CSVFS:?}" "${MKFS:?}" "${FSCK:?}" "${COORD:?}"

if [ "$(id -u)" != 0 ]; then echo "SKIP: mount(8) of a csvfs volume needs root"; exit 77; fi
if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
for t in mount umount findmnt python3; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done
helper=/sbin/mount.csvfs
if [ -e "$helper" ] || [ -L "$helper" ]; then
	if [ "$(readlink -f "$helper")" != "$(readlink -f "$MOUNT_CSVFS")" ]; then
		echo "SKIP: $helper exists and is not the helper of this build ($(readlink -f "$helper"))"
		exit 77
	fi
fi

# mount(8) hands the helper canonical paths: so does the test.
work=$(realpath "$(mktemp -d /tmp/csvfs-mount.XXXXXX)")
A="$work/a"
B="$work/b"
C="$work/c"
D="$work/d"
mkdir -p "$A" "$B" "$C" "$D"
pid= nbdpid= own_link=
# Sanitizer reports of the clients, which daemonize with stderr on
# /dev/null, go to files.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$work/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$work/sanitizer"

# Prints the mount points under $work from the kernel's table (a FUSE mount
# whose client died cannot be stat'ed).
mounts_here() { awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo; }
# Prints the pids of the csvfs clients serving DIR (argv: csvfs SPEC DIR ...).
client_pids() {
	local p a
	for p in /proc/[0-9]*; do
		mapfile -d '' -t a 2>/dev/null <"$p/cmdline" || continue
		if [ "${#a[@]}" -ge 3 ] && [ "${a[0]##*/}" = csvfs ] && [ "${a[2]}" = "$1" ]; then
			echo "${p#/proc/}"
		fi
	done
}
sanitizer_reports() { ls "$work"/sanitizer.* 2>/dev/null; }

cleanup() {
	local m p
	for m in "$A" "$B" "$C" "$D"; do
		for p in $(client_pids "$m"); do kill -9 "$p" 2>/dev/null; done
	done
	for m in $(mounts_here | sort -r); do
		timeout 10 umount "$m" 2>/dev/null || timeout 10 umount -l "$m" 2>/dev/null
	done
	for p in $pid $nbdpid; do
		if kill -0 "$p" 2>/dev/null; then kill -9 "$p"; wait "$p" 2>/dev/null; fi
	done
	if [ -n "$own_link" ] && [ "$(readlink "$helper")" = "$MOUNT_CSVFS" ]; then rm -f "$helper"; fi
	for f in $(sanitizer_reports); do echo "--- $f"; head -40 "$f"; done
	if [ -z "$(mounts_here)" ]; then rm -rf "$work"; else echo "left mounted: $(mounts_here)"; fi
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

if [ ! -e "$helper" ]; then
	ln -s "$MOUNT_CSVFS" "$helper" || { echo "cannot create $helper"; exit 1; }
	own_link=1
fi

uuid=01234567-89ab-cdef-0123-456789abcdef
img="$work/lun.img"
key="$work/key"
log="$work/coord.log"
"$MKFS" -s 256M -L mounttest -U "$uuid" "$img" >/dev/null || { echo "mkfs failed"; exit 1; }
make_key "$key"
port=$(free_port)
opts="coordinator=127.0.0.1:$port,keyfile=$key"

"$COORD" --lun "$img" --listen "127.0.0.1:$port" --keyfile "$key" --node-id 1 --foreground >>"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	grep -q "serving on" "$log" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
grep -q "serving on" "$log" || { echo "the daemon did not start:"; tail -20 "$log"; exit 1; }

# run CMD...: runs it with a time limit; its output in $work/out, its
# status in $rc.
run() { timeout 60 "$@" >"$work/out" 2>&1; rc=$?; }
show() { sed 's/^/    /' "$work/out"; }
# mounted_ok WHAT DIR: the last command mounted DIR as fuse.csvfs, served
# by one client whose pid it puts in $pids; stops the test otherwise, since
# what follows would write into DIR itself.
mounted_ok() {
	if [ "$rc" -eq 0 ]; then pass "$1: exit 0"; else fail "$1: exit $rc"; show; fi
	local t
	t=$(findmnt -n -o FSTYPE --mountpoint "$2")
	if [ "$t" = fuse.csvfs ]; then pass "$1: findmnt shows fuse.csvfs"; else
		fail "$1: findmnt shows '$t' on $2"; exit 1; fi
	pids=$(client_pids "$2")
	check "$1: one csvfs client serves it" test "$(echo $pids | wc -w)" = 1
}
is_mounted() { awk -v d="$1" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; }
# gone PID...: true once none of them runs (a zombie counts as gone), within 10 s.
gone() {
	local p i alive
	for i in $(seq 100); do
		alive=0
		for p in "$@"; do
			[ -r "/proc/$p/stat" ] && [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" != Z ] && alive=1
		done
		[ "$alive" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
# unmounted_ok WHAT DIR PIDS: umount DIR is clean and its client exits.
unmounted_ok() {
	run umount "$2"
	if [ "$rc" -eq 0 ]; then pass "$1: umount"; else fail "$1: umount: exit $rc"; show; fi
	check "$1: no longer mounted" eval '! is_mounted "$2"'
	check "$1: the client exited" gone $3
}
# errno_of OP PATH: what a write-like operation gets (OK or an errno name).
errno_of() {
	timeout 30 python3 - "$@" <<'EOF'
import errno, os, sys
op, path = sys.argv[1], sys.argv[2]
try:
    if op == "create":
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    elif op == "append":
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b"x")
        os.close(fd)
    elif op == "mkdir":
        os.mkdir(path)
    elif op == "unlink":
        os.unlink(path)
    print("OK")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
EOF
}
# nothing_left WHAT DIR: no mount on DIR and no client for it.
nothing_left() {
	check "$1: nothing mounted" eval '! is_mounted "$2"'
	check "$1: no client left" test -z "$(client_pids "$2")"
}

# --- mount -t csvfs
run mount -t csvfs "$img" "$A" -o "$opts,node=1"
mounted_ok "mount -t csvfs" "$A"
head -c 1M /dev/urandom >"$work/r1"
check "a file written there" timeout 30 cp "$work/r1" "$A/data"
check "reads back byte-exact" timeout 30 cmp "$work/r1" "$A/data"
check "df sees the volume" timeout 30 df "$A" >/dev/null
unmounted_ok "mount -t csvfs" "$A" "$pids"

# --- a line of a private fstab, mounted by its mount point.
spec="$img"
if command -v nbdkit >/dev/null; then
	# The LUN as the fstab example has it: an NBD URI.
	sock="$work/san.sock"
	nbdkit -f -U "$sock" file "$img" >"$work/nbdkit.log" 2>&1 &
	nbdpid=$!
	for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
	[ -S "$sock" ] && spec="nbd+unix:///?socket=$sock" || { echo "nbdkit did not start:"; cat "$work/nbdkit.log"; }
else
	echo "no nbdkit: the fstab line names the image file"
fi
printf '# a csvfs volume, mounted by the network stage\n%s %s csvfs _netdev,noauto,%s,node=2 0 0\n' \
	"$spec" "$B" "$opts" >"$work/fstab"
run mount -T "$work/fstab" "$B"
mounted_ok "fstab line ($spec)" "$B"
check "fstab: the file of the first mount reads back" timeout 30 cmp "$work/r1" "$B/data"
timeout 30 bash -c 'echo "from fstab" >"$1"' - "$B/note"
check "fstab: a new file reads back" test "$(timeout 30 cat "$B/note" 2>&1)" = "from fstab"
unmounted_ok "fstab" "$B" "$pids"

# --- read-only
run mount -t csvfs -o "ro,$opts,node=3" "$img" "$C"
mounted_ok "mount -o ro" "$C"
check "ro: the kernel has the mount read-only" \
	eval 'findmnt -n -o VFS-OPTIONS --mountpoint "$C" | tr , "\n" | grep -qx ro'
check "ro: files read" timeout 30 cmp "$work/r1" "$C/data"
for op in "create $C/new" "append $C/data" "mkdir $C/newdir" "unlink $C/note"; do
	e=$(errno_of $op)
	check "ro: ${op%% *} fails with EROFS (got $e)" test "$e" = EROFS
done
msg=$( (timeout 30 bash -c 'echo x >"$1"' - "$C/new") 2>&1 )
check "ro: the shell says so" grep -q "Read-only file system" <<<"$msg"
check "ro: nothing was changed" eval 'timeout 30 cmp "$work/r1" "$C/data" && test ! -e "$C/new"'
unmounted_ok "ro" "$C" "$pids"

# --- the helper run directly: what it drops, -v, -s, -n, -r, -f.
dropped='defaults,auto,noauto,_netdev,nofail,user,users,owner,group,comment="a,b",x-test.opt=1,X-test,rw'
run "$MOUNT_CSVFS" -s -n -v "$img" "$D" -o "$dropped,$opts,node=4"
mounted_ok "mount.csvfs -v with mount(8) and fstab options" "$D"
client_real=$(readlink -f "$(dirname "$(readlink -f "$MOUNT_CSVFS")")/csvfs")
check "-v: runs the csvfs next to the helper" test "$client_real" = "$(readlink -f "$CSVFS")"
check "-v: prints the command, those options dropped" \
	grep -qxF "mount.csvfs: $(dirname "$(readlink -f "$MOUNT_CSVFS")")/csvfs $img $D -o subtype=csvfs,$opts,node=4" "$work/out"
check "the volume is readable" timeout 30 cmp "$work/r1" "$D/data"
unmounted_ok "mount.csvfs -v" "$D" "$pids"

run "$MOUNT_CSVFS" -r "$img" "$D" -o "rw,$opts,node=4"
mounted_ok "mount.csvfs -r" "$D"
e=$(errno_of create "$D/new")
check "-r: create fails with EROFS (got $e)" test "$e" = EROFS
unmounted_ok "mount.csvfs -r" "$D" "$pids"

run "$MOUNT_CSVFS" -f -v "$img" "$D" -o "$opts,node=4"
check "-f: exit 0 (exit $rc)" test "$rc" -eq 0
check "-f: shows what it would run" grep -q " -o subtype=csvfs,$opts,node=4\$" "$work/out"
nothing_left "-f" "$D"

# --- mistakes: each one fails, says what is wrong, and leaves nothing.
run mount -t csvfs "$img" "$D" -o "keyfile=$key,node=5"
check "no coordinator=: exit 1 (exit $rc)" test "$rc" -eq 1
check "no coordinator=: the message names it" grep -q "coordinator=" "$work/out" || show
nothing_left "no coordinator=" "$D"

run mount -t csvfs "$img" "$D" -o "coordinator=127.0.0.1:$port,node=5"
check "no keyfile=: exit 1 (exit $rc)" test "$rc" -eq 1
check "no keyfile=: the message names it" grep -q "keyfile=" "$work/out" || show
nothing_left "no keyfile=" "$D"

run mount -t csvfs "$img" "$work/nowhere" -o "$opts,node=5"
check "no mount point: non-zero exit (exit $rc)" test "$rc" -ne 0
check "no mount point: the message names it" grep -q "$work/nowhere.*does not exist" "$work/out" || show
check "no mount point: nothing created" test ! -e "$work/nowhere"
run "$MOUNT_CSVFS" "$img" "$work/nowhere" -o "$opts,node=5"
check "mount.csvfs, no mount point: exit 1 (exit $rc)" test "$rc" -eq 1
run "$MOUNT_CSVFS" "$img" "$key" -o "$opts,node=5"
check "mount.csvfs, a file as mount point: exit 1 (exit $rc)" test "$rc" -eq 1
check "a file as mount point: the message says so" grep -q "not a directory" "$work/out" || show

dead=$(free_port)
run mount -t csvfs "$img" "$D" -o "coordinator=127.0.0.1:$dead,keyfile=$key,node=5"
check "coordinator not answering: exit 32 (exit $rc)" test "$rc" -eq 32
check "coordinator not answering: the client's message names it" \
	grep -q "cannot connect to coordinator 127.0.0.1:$dead" "$work/out" || show
nothing_left "coordinator not answering" "$D"

run "$MOUNT_CSVFS"
check "mount.csvfs without SPEC and DIR: exit 1 (exit $rc)" test "$rc" -eq 1
check "without SPEC and DIR: the message says so" grep -q "SPEC and a mount point DIR" "$work/out" || show
run "$MOUNT_CSVFS" "$img" -o "$opts"
check "mount.csvfs without DIR: exit 1 (exit $rc)" test "$rc" -eq 1
run "$MOUNT_CSVFS" --bogus "$img" "$D" -o "$opts"
check "an unknown option: exit 1 (exit $rc)" test "$rc" -eq 1
nothing_left "mistakes" "$D"

# --- --help and --version
run "$MOUNT_CSVFS" --help
check "--help: exit 0" test "$rc" -eq 0
check "--help: usage and the needed options" \
	eval 'grep -q "^Usage: mount.csvfs SPEC DIR" "$work/out" && grep -q "coordinator=HOST:PORT" "$work/out"'
run "$MOUNT_CSVFS" --version
check "--version: exit 0" test "$rc" -eq 0
check "--version: names the program and version" grep -qE "^mount\.csvfs \(csvfs-cluster\) [0-9]+\." "$work/out"

# --- stop, check.
check "nothing left mounted" test -z "$(mounts_here)"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" -eq 0 ] && pass "SIGTERM: exit 0" || { fail "SIGTERM: exit $rc"; tail -5 "$log"; }
if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "fsck -n finds the volume clean"; else
	fail "fsck -n: exit $?"; sed 's/^/    /' "$work/fsck.out" | head -20; fi
check "no sanitizer report" test -z "$(sanitizer_reports)"

echo "--- daemon log (last lines)"; tail -10 "$log"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
