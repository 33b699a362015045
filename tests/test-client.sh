#!/bin/bash
# Two csvfs mounts (nodes 1 and 2) of one volume served by csv-coordinatord:
# what one node does, the other sees at once; data written through one
# reads back byte-exact through the other. Then unmount, SIGTERM, fsck.
# Binaries come from meson in CSVFS, MKFS, FSCK and COORD.
set -u
: "${CSVFS:?}" "${MKFS:?}" "${FSCK:?}" "${COORD:?}"

if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
command -v fusermount3 >/dev/null || { echo "SKIP: no fusermount3"; exit 77; }

work=$(mktemp -d /tmp/csvfs-client.XXXXXX)
A="$work/a"
B="$work/b"
mkdir -p "$A" "$B"
pid= pa= pb=
cleanup() {
	for m in "$A" "$B"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; }
	done
	for p in $pa $pb; do
		if kill -0 "$p" 2>/dev/null; then kill -9 "$p"; wait "$p" 2>/dev/null; fi
	done
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; wait "$pid" 2>/dev/null; fi
	rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"

uuid=89abcdef-0123-4567-89ab-cdef01234567
img="$work/lun.img"
key="$work/key"
log="$work/coord.log"
"$MKFS" -s 256M -L clienttest -U "$uuid" "$img" >/dev/null || { echo "mkfs failed"; exit 1; }
make_key "$key"
port=$(free_port)

"$COORD" --lun "$img" --listen "127.0.0.1:$port" --keyfile "$key" --node-id 1 --foreground >>"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	grep -q "serving on" "$log" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.1
done
grep -q "serving on" "$log" || { echo "the daemon did not start:"; tail -20 "$log"; exit 1; }

"$CSVFS" --help | grep -q "coordinator=HOST:PORT" && pass "--help" || fail "--help"
"$CSVFS" --version | grep -q "csvfs 0\." && pass "--version" || fail "--version"

# mount DIR NODE: starts a client in the foreground, in the background
# (its pid in $mpid), and waits until the mount is there.
mount_one() {
	local dir=$1 node=$2
	"$CSVFS" "$img" "$dir" -f -o "coordinator=127.0.0.1:$port,keyfile=$key,node=$node,allow_other" \
		>"$work/client$node.log" 2>&1 &
	mpid=$!
	for _ in $(seq 100); do
		mountpoint -q "$dir" && return 0
		kill -0 "$mpid" 2>/dev/null || break
		sleep 0.1
	done
	echo "csvfs node $node did not mount:"; sed 's/^/    /' "$work/client$node.log"
	return 1
}
mount_one "$A" 1 || exit 1
pa=$mpid
mount_one "$B" 2 || exit 1
pb=$mpid
pass "two mounts"

# Namespace.
mkdir "$A/dir" && pass "mkdir on A" || fail "mkdir on A"
check "the directory is seen on B" test -d "$B/dir"
echo "hello from A" >"$A/dir/hello"
check "echo on A, cat on B" test "$(cat "$B/dir/hello" 2>&1)" = "hello from A"
echo "more" >>"$B/dir/hello"
check "append on B, cat on A" test "$(cat "$A/dir/hello" 2>&1)" = "$(printf 'hello from A\nmore')"
check "ls on B lists the file" test "$(ls "$B/dir")" = "hello"

# Data: 1 MiB and 5 MiB of random bytes, 64 KiB at a time.
head -c 1M /dev/urandom >"$work/r1"
head -c 5M /dev/urandom >"$work/r5"
dd if="$work/r1" of="$A/dir/one" bs=64k status=none && pass "dd 1 MiB on A" || fail "dd 1 MiB on A"
dd if="$work/r5" of="$A/dir/five" bs=64k status=none && pass "dd 5 MiB on A" || fail "dd 5 MiB on A"
check "1 MiB reads back byte-exact on B" cmp "$work/r1" "$B/dir/one"
check "5 MiB reads back byte-exact on B" cmp "$work/r5" "$B/dir/five"
check "and on A" cmp "$work/r5" "$A/dir/five"
check "stat size on B is 5 MiB" test "$(stat -c %s "$B/dir/five")" = 5242880
# An overwrite in the middle, not cluster-aligned.
printf 'XYZ' | dd of="$B/dir/one" bs=1 seek=100001 conv=notrunc status=none
printf 'XYZ' | dd of="$work/r1" bs=1 seek=100001 conv=notrunc status=none
check "overwrite of 3 bytes on B seen on A" cmp "$work/r1" "$A/dir/one"

# Rename, remove, links.
mv "$B/dir/hello" "$B/dir/renamed"
check "rename on B: new name seen on A" test -f "$A/dir/renamed"
check "rename on B: old name gone on A" test ! -e "$A/dir/hello"
rm "$A/dir/renamed"
check "rm on A: gone on B" test ! -e "$B/dir/renamed"
ln -s ../dir/one "$A/dir/sym"
check "ln -s on A, readlink on B" test "$(readlink "$B/dir/sym")" = "../dir/one"
check "the symlink resolves on B" cmp "$work/r1" "$B/dir/sym"
ln "$A/dir/one" "$A/dir/hard"
check "hard link seen on B with 2 links" test "$(stat -c %h "$B/dir/hard")" = 2

# Truncate.
truncate -s 1000 "$A/dir/five"
check "truncate on A: size 1000 on B" test "$(stat -c %s "$B/dir/five")" = 1000
check "truncate keeps the first bytes" cmp -n 1000 "$work/r5" "$B/dir/five"
truncate -s 70000 "$B/dir/five"
check "extend on B: size 70000 on A" test "$(stat -c %s "$A/dir/five")" = 70000
check "the extension reads as zeros" cmp -s <(tail -c 69000 "$A/dir/five") <(head -c 69000 /dev/zero)

# Extended attributes (python3: setfattr may be missing).
xattr() { python3 -c "$1" "${@:2}" 2>&1; }
xattr 'import os,sys; os.setxattr(sys.argv[1], "user.color", b"blue")' "$A/dir/one"
check "setxattr on A, getxattr on B" test "$(xattr 'import os,sys; print(os.getxattr(sys.argv[1], "user.color").decode())' "$B/dir/one")" = blue
check "listxattr on B" test "$(xattr 'import os,sys; print(",".join(os.listxattr(sys.argv[1])))' "$B/dir/one")" = user.color
xattr 'import os,sys; os.removexattr(sys.argv[1], "user.color")' "$B/dir/one"
check "removexattr on B, gone on A" test "$(xattr 'import os,sys; print(os.listxattr(sys.argv[1]))' "$A/dir/one")" = "[]"
chmod 600 "$A/dir/one"
check "chmod on A, mode on B" test "$(stat -c %a "$B/dir/one")" = 600
check "df sees the volume" df "$A" >/dev/null

# Preallocation, holes, SEEK_DATA and SEEK_HOLE.
fallocate -l 4M "$A/dir/pre" && pass "fallocate 4 MiB on A" || fail "fallocate 4 MiB on A"
check "the size is 4 MiB on B" test "$(stat -c %s "$B/dir/pre" 2>&1)" = 4194304
check "preallocated bytes read as zeros on B" cmp -n 4194304 "$B/dir/pre" /dev/zero
dd if="$work/r1" of="$A/dir/pre" bs=64k count=16 seek=16 conv=notrunc status=none
fallocate -p -o 1M -l 512K "$B/dir/pre" && pass "punch a hole on B" || fail "punch a hole on B"
check "the hole reads as zeros on A" cmp -s <(dd if="$A/dir/pre" bs=64k skip=16 count=8 status=none) \
	<(head -c 524288 /dev/zero)
check "the data after the hole is still there on A" cmp -s <(dd if="$A/dir/pre" bs=64k skip=24 count=8 \
	status=none) <(dd if="$work/r1" bs=64k skip=8 count=8 status=none)
printf 'tail' | dd of="$A/dir/sparse" bs=1 seek=$((8 << 20)) status=none
seek() { python3 -c 'import os,sys; f=os.open(sys.argv[1],os.O_RDONLY); print(os.lseek(f,int(sys.argv[2]),int(sys.argv[3])))' "$@" 2>&1; }
check "SEEK_DATA on B finds the data at 8 MiB" test "$(seek "$B/dir/sparse" 0 3)" = $((8 << 20))
check "SEEK_HOLE on B finds the hole at 0" test "$(seek "$B/dir/sparse" 0 4)" = 0
check "SEEK_HOLE on B past the data is the end" test "$(seek "$B/dir/sparse" $((8 << 20)) 4)" = $(((8 << 20) + 4))

# O_DIRECT, as QEMU with cache=none.
dd if="$work/r5" of="$A/dir/direct" bs=1M oflag=direct status=none && pass "O_DIRECT write on A" ||
	fail "O_DIRECT write on A"
check "O_DIRECT read on B is byte-exact" cmp <(dd if="$B/dir/direct" bs=1M iflag=direct status=none) "$work/r5"

# A file unlinked on A while open on B lives until B closes it.
exec 3<"$B/dir/direct"
rm "$A/dir/direct"
check "unlinked on A: the name is gone on B" test ! -e "$B/dir/direct"
check "B still reads the whole file through its open descriptor" cmp <(cat <&3) "$work/r5"
exec 3<&-

# POSIX ACLs: granted on A, enforced on B; inherited from a default ACL.
if command -v setfacl >/dev/null; then
	chmod 755 "$work"  # other users reach the mounts
	echo secret >"$A/dir/acl"
	chmod 600 "$A/dir/acl"
	check "without an ACL, nobody cannot read on B" sh -c "! su nobody -s /bin/sh -c \"cat '$B/dir/acl'\" 2>/dev/null"
	setfacl -m u:nobody:r "$A/dir/acl"
	check "setfacl on A lets nobody read on B" test "$(su nobody -s /bin/sh -c "cat '$B/dir/acl'" 2>&1)" = secret
	setfacl -x u:nobody "$A/dir/acl"
	check "setfacl -x on A: nobody is refused on B again" sh -c "! su nobody -s /bin/sh -c \"cat '$B/dir/acl'\" 2>/dev/null"
	mkdir "$A/dir/inherit"
	setfacl -d -m u:nobody:rw "$A/dir/inherit"
	echo x >"$A/dir/inherit/new"
	check "a new file inherits the default ACL" sh -c "getfacl -c '$B/dir/inherit/new' | grep -q '^user:nobody:rw'"
	rm -rf "$A/dir/acl" "$A/dir/inherit"
else
	echo "SKIP: ACL checks (no setfacl)"
fi

rm -f "$A/dir/one" "$A/dir/hard" "$A/dir/five" "$A/dir/sym" "$A/dir/pre" "$A/dir/sparse"
rmdir "$B/dir" && pass "rmdir on B" || fail "rmdir on B"
check "rmdir on B: gone on A" test ! -e "$A/dir"

# Unmount, stop, check.
fusermount3 -u "$A" && pass "unmount A" || fail "unmount A"
fusermount3 -u "$B" && pass "unmount B" || fail "unmount B"
for n in 1 2; do
	if [ "$n" = 1 ]; then p=$pa; else p=$pb; fi
	wait "$p"; rc=$?
	[ "$rc" -eq 0 ] && pass "client $n exited 0 after unmount" || fail "client $n: exit $rc"
	if grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$work/client$n.log"; then
		fail "client $n: sanitizer report"; head -40 "$work/client$n.log"
	fi
done
pa= pb=
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" -eq 0 ] && pass "SIGTERM: exit 0" || { fail "SIGTERM: exit $rc"; tail -5 "$log"; }
if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "fsck -n finds the volume clean"; else
	fail "fsck -n: exit $?"; sed 's/^/    /' "$work/fsck.out" | head -20; fi

for n in 1 2; do
	if [ -s "$work/client$n.log" ]; then echo "--- client $n log"; tail -20 "$work/client$n.log"; fi
done
echo "--- daemon log (last lines)"; tail -10 "$log"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
