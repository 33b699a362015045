#!/bin/bash
# Three csvfs mounts (nodes 1, 2 and 3) of one volume served by
# csv-coordinatord, used at the same time as users would: what one node
# does the others see at once; concurrent creates, renames onto one name
# and O_EXCL creates; a file unlinked on one node while open on another;
# data read back byte-exact through every mount; csv-workload's random
# workload and its appenders checked through other mounts. Then unmount,
# SIGTERM, fsck. Binaries come from meson in CSVFS, MKFS, FSCK, COORD and
# WORKLOAD.
set -u
: "${CSVFS:?}" "${MKFS:?}" "${FSCK:?}" "${COORD:?}" "${WORKLOAD:?}"

if [ ! -c /dev/fuse ]; then echo "SKIP: no /dev/fuse"; exit 77; fi
for t in fusermount3 mountpoint; do
	command -v "$t" >/dev/null || { echo "SKIP: no $t"; exit 77; }
done

work=$(mktemp -d /tmp/csvfs-multimount.XXXXXX)
M1="$work/m1"
M2="$work/m2"
M3="$work/m3"
M=("" "$M1" "$M2" "$M3") # M[n]: the mount of node n
mkdir -p "$M1" "$M2" "$M3"
coord_pid=
cpid=("" "" "" "") # cpid[n]: the client of node n
bg=              # other processes running in the background
cleanup() {
	local m p
	for p in $bg; do kill -9 "$p" 2>/dev/null; done
	for m in "$M1" "$M2" "$M3"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; }
	done
	for p in ${cpid[1]} ${cpid[2]} ${cpid[3]} $coord_pid; do
		if kill -0 "$p" 2>/dev/null; then kill -9 "$p"; wait "$p" 2>/dev/null; fi
	done
	# Never remove through a mount that is still there.
	if grep -qF " $work/" /proc/self/mountinfo; then
		echo "left mounted under $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
. "$(dirname "$0")/lib.sh"
# section TITLE: starts a part of the test, with the time spent so far.
section() { echo "== $1 (at ${SECONDS}s)"; }
# next N: the node after N, of 1 2 3 in a ring.
next() { echo $(($1 % 3 + 1)); }

uuid=3c5b1a0e-7d2f-4e61-9a8b-0f1e2d3c4b5a
img="$work/lun.img"
key="$work/key"
log="$work/coord.log"
"$MKFS" -s 1G -L multimount -U "$uuid" "$img" >/dev/null || { echo "mkfs failed"; exit 1; }
make_key "$key"
port=$(free_port)
start_coordinator "$img" "$port" "$key" "$log" || exit 1
for n in 1 2 3; do
	mount_csvfs "$img" "${M[n]}" "$n" "$port" "$key" "$work/client$n.log"
	rc=$?
	cpid[n]=$mount_pid
	[ "$rc" -eq 0 ] || exit 1
done
pass "three mounts"

# ---- what one node does, the two others see at once -------------------------
section "what one node does, the two others see at once"
mkdir "$M1/vis" || fail "mkdir vis"
for n in 1 2 3; do
	echo "file of node $n" >"${M[n]}/vis/file-$n" && mkdir "${M[n]}/vis/dir-$n" &&
		ln -s "file-$n" "${M[n]}/vis/sym-$n" || fail "create a file, a directory and a symlink on node $n"
	for o in $(next "$n") $(next "$(next "$n")"); do
		check "file of node $n read on node $o" test "$(cat "${M[o]}/vis/file-$n" 2>&1)" = "file of node $n"
		check "directory of node $n seen on node $o" test -d "${M[o]}/vis/dir-$n"
		check "symlink of node $n read on node $o" test "$(readlink "${M[o]}/vis/sym-$n" 2>&1)" = "file-$n"
		check "symlink of node $n followed on node $o" test "$(cat "${M[o]}/vis/sym-$n" 2>&1)" = "file of node $n"
	done
done
chmod 640 "$M1/vis/file-2"
check "chmod on node 1 seen on node 2" test "$(stat -c %a "$M2/vis/file-2")" = 640
check "chmod on node 1 seen on node 3" test "$(stat -c %a "$M3/vis/file-2")" = 640
chmod 701 "$M3/vis/dir-1"
check "chmod of a directory on node 3 seen on node 1" test "$(stat -c %a "$M1/vis/dir-1")" = 701
mv "$M2/vis/file-3" "$M2/vis/dir-1/moved"
for o in 1 3; do
	check "rename on node 2: the old name is gone on node $o" test ! -e "${M[o]}/vis/file-3"
	check "rename on node 2: the new name is read on node $o" \
		test "$(cat "${M[o]}/vis/dir-1/moved" 2>&1)" = "file of node 3"
done
rm "$M3/vis/file-1"
for o in 1 2; do
	check "unlink on node 3: gone on node $o" test ! -e "${M[o]}/vis/file-1"
	check "unlink on node 3: the dangling symlink stays on node $o" test -L "${M[o]}/vis/sym-1"
	check "unlink on node 3: ls on node $o" test "$(ls "${M[o]}/vis" | tr '\n' ' ')" = \
		"dir-1 dir-2 dir-3 file-2 sym-1 sym-2 sym-3 "
done

# ---- concurrent creates in one directory --------------------------------------
section "concurrent creates in one directory"
mkdir "$M2/many"
loops=
for n in 1 2 3; do
	(
		for i in $(seq 200); do : >"${M[n]}/many/node$n-$i" || echo "node $n: create node$n-$i failed"; done
	) >"$work/many$n.err" 2>&1 &
	loops="$loops $!"
done
bg=$loops
wait $loops
bg=
for n in 1 2 3; do
	check "200 creates on node $n: no error" test ! -s "$work/many$n.err" || head -5 "$work/many$n.err"
done
for n in 1 2 3; do for i in $(seq 200); do echo "node$n-$i"; done; done | sort >"$work/many.want"
for n in 1 2 3; do
	ls "${M[n]}/many" | sort >"$work/many.got$n"
	check "node $n lists exactly the 600 names" cmp -s "$work/many.want" "$work/many.got$n" ||
		diff "$work/many.want" "$work/many.got$n" | head -10
	check "ls | wc -l on node $n says 600" test "$(ls "${M[n]}/many" | wc -l)" -eq 600
done

# ---- rename races: two nodes rename two files onto one name at once ---------
section "rename races onto one name"
mkdir "$M1/race"
bad=0
for r in $(seq 100); do
	a=$(((r % 3) + 1)) # the two nodes of this round
	b=$(next "$a")
	echo "A$r" >"${M[a]}/race/src-a" && echo "B$r" >"${M[b]}/race/src-b" || { fail "round $r: setup"; bad=1; break; }
	# mv tries rename(RENAME_NOREPLACE), then rename() if the target exists.
	mv -f -T "${M[a]}/race/src-a" "${M[a]}/race/target" >"$work/ra" 2>&1 &
	pa=$!
	mv -f -T "${M[b]}/race/src-b" "${M[b]}/race/target" >"$work/rb" 2>&1 &
	pb=$!
	bg="$pa $pb"
	wait "$pa"; ra=$?
	wait "$pb"; rb=$?
	bg=
	msg=
	for n in 1 2 3; do
		# What the node lists, and what each listed name holds.
		names=$(ls "${M[n]}/race" 2>&1 | tr '\n' ' ')
		[ "$n" = 1 ] && names1=$names
		[ "$names" != "$names1" ] && msg="$msg; node $n lists '$names', node 1 '$names1'"
		has_a= has_b= got=
		for name in $names; do
			content=$(<"${M[n]}/race/$name") || msg="$msg; node $n lists '$name', which cannot be opened"
			case $name in
			src-a) has_a=1 ;;
			src-b) has_b=1 ;;
			target) got=$content ;;
			esac
		done
		case "$got" in
		"A$r") [ -n "$has_a" ] && msg="$msg; node $n: src-a is still there although the target holds its content" ;;
		"B$r") [ -n "$has_b" ] && msg="$msg; node $n: src-b is still there although the target holds its content" ;;
		*) msg="$msg; node $n: the target holds '$got'" ;;
		esac
		# A source whose rename failed is still there, and the other way round.
		[ "$ra" -ne 0 ] && [ -z "$has_a" ] && msg="$msg; node $n: rename of src-a failed ($(<"$work/ra")) but it is gone"
		[ "$rb" -ne 0 ] && [ -z "$has_b" ] && msg="$msg; node $n: rename of src-b failed ($(<"$work/rb")) but it is gone"
		[ "$ra" -eq 0 ] && [ -n "$has_a" ] && msg="$msg; node $n: rename of src-a succeeded but it is still there"
		[ "$rb" -eq 0 ] && [ -n "$has_b" ] && msg="$msg; node $n: rename of src-b succeeded but it is still there"
	done
	if [ -n "$msg" ]; then
		bad=$((bad + 1))
		[ "$bad" -le 5 ] && echo "    round $r (nodes $a and $b)${msg}"
	fi
	rm -f "$M3/race/target" "$M3/race/src-a" "$M3/race/src-b"
done
check "100 rename races onto one name: one target, with one source's content" test "$bad" -eq 0 ||
	echo "    $bad of 100 rounds went wrong"
check "the race directory is empty afterwards" test -z "$(ls -A "$M2/race")"

# ---- O_EXCL creates of one name on three nodes at once --------------------------
section "O_EXCL creates of one name on three nodes"
mkdir "$M3/excl"
bad=0
for r in $(seq 50); do
	rm -f "$work"/excl.*
	creators=
	for n in 1 2 3; do
		# dd conv=excl opens with O_CREAT|O_EXCL, without a stat first.
		(echo "$n" | dd of="${M[n]}/excl/f$r" conv=excl status=none 2>/dev/null && touch "$work/excl.$n") &
		creators="$creators $!"
	done
	bg=$creators
	wait $creators
	bg=
	winners=$(ls "$work"/excl.* 2>/dev/null | wc -l)
	content=$(cat "$M1/excl/f$r" 2>&1)
	if [ "$winners" -ne 1 ] || [ ! -e "$work/excl.$content" ]; then
		bad=$((bad + 1))
		[ "$bad" -le 5 ] && echo "    round $r: $winners creates succeeded; the file holds '$content'"
	fi
done
check "50 rounds of O_EXCL creates on three nodes: exactly one succeeds each time" test "$bad" -eq 0
check "every node lists the 50 files" test "$(ls "$M1/excl" | wc -l):$(ls "$M2/excl" | wc -l):$(ls "$M3/excl" | wc -l)" = 50:50:50

# ---- data written through one mount reads back through each other -----------
section "data through one mount, read through the others"
mkdir "$M1/data"
head -c 4M /dev/urandom >"$work/r4"
head -c 3M /dev/urandom >"$work/r3"
head -c 777777 /dev/urandom >"$work/odd"
dd if="$work/r4" of="$M1/data/four" bs=128k status=none || fail "dd 4 MiB on node 1"
dd if="$work/r3" of="$M2/data/three" bs=1M status=none || fail "dd 3 MiB on node 2"
cp "$work/odd" "$M3/data/odd" || fail "cp on node 3"
for n in 1 2 3; do
	check "4 MiB from node 1 byte-exact on node $n" cmp "$work/r4" "${M[n]}/data/four"
	check "3 MiB from node 2 byte-exact on node $n" cmp "$work/r3" "${M[n]}/data/three"
	check "777777 bytes from node 3 byte-exact on node $n" cmp "$work/odd" "${M[n]}/data/odd"
done
# Overwrites across cluster boundaries, on two nodes, read on the third.
head -c 10000 /dev/urandom >"$work/patch"
for at in 2:123 3:2000000; do
	dd if="$work/patch" of="${M[${at%%:*}]}/data/four" bs=10000 seek="${at#*:}" oflag=seek_bytes conv=notrunc \
		status=none || fail "overwrite of 10000 bytes at ${at#*:} on node ${at%%:*}"
	dd if="$work/patch" of="$work/r4" bs=10000 seek="${at#*:}" oflag=seek_bytes conv=notrunc status=none
done
check "overwrites on nodes 2 and 3 read back on node 1" cmp "$work/r4" "$M1/data/four"

# ---- unlink on one node of a file open on another -------------------------------
section "unlink on one node of a file open on another"
# Free space of the volume in clusters, from statfs(2) as df shows it,
# through node 1.
free_clusters() { stat -f -c %f "$M1"; }
mkdir "$M1/open"
free0=$(free_clusters)
head -c 8M /dev/urandom >"$work/r8"
cp "$work/r8" "$M1/open/file" || fail "write 8 MiB on node 1"
free1=$(free_clusters)
cs=$(stat -f -c %S "$M1")
check "writing 8 MiB takes about 8 MiB of free space" test $(((free0 - free1) * cs)) -ge $((8 << 20))
# The reader opens the file on node 2, says so, and reads it once told to.
(
	exec 3<"$M2/open/file" || exit 1
	touch "$work/reader.open"
	for _ in $(seq 300); do [ -e "$work/reader.go" ] && break; sleep 0.1; done
	cat <&3 >"$work/reader.out"
) 2>"$work/reader.err" &
reader=$!
bg=$reader
for _ in $(seq 100); do [ -e "$work/reader.open" ] && break; sleep 0.1; done
check "the reader has the file open on node 2" test -e "$work/reader.open"
check "unlink on node 1 of the file open on node 2" rm "$M1/open/file"
for n in 1 2 3; do
	check "the name is gone on node $n" test ! -e "${M[n]}/open/file"
	check "ls on node $n is empty" test -z "$(ls -A "${M[n]}/open")"
done
touch "$work/reader.go"
wait "$reader"
rc=$?
bg=
check "the reader on node 2 read all 8 MiB after the unlink" cmp -s "$work/r8" "$work/reader.out" ||
	echo "    reader exit $rc, read $(stat -c %s "$work/reader.out" 2>/dev/null || echo 0) bytes: $(head -3 "$work/reader.err")"
# After the close, the clusters come back (a few may stay with metadata).
for _ in $(seq 50); do
	free2=$(free_clusters)
	[ $((free0 - free2)) -le 8 ] && break
	sleep 0.1
done
check "df: the space comes back after the reader closes ($free0 clusters free before, $free1 with the file, $free2 now)" \
	test $((free0 - free2)) -le 8

# ---- csv-workload random over the three mounts ---------------------------------
section "csv-workload random over the three mounts"
workload_random() {
	local seed=$1 out="$work/random-$1.out"
	echo "csv-workload random --seed $seed --ops 3000 --workers 3 (replay with this seed)"
	if "$WORKLOAD" random --seed "$seed" --ops 3000 --workers 3 "$M1" "$M2" "$M3" >"$out" 2>&1; then
		pass "csv-workload random, seed $seed: 3000 ops checked through three mounts"
		grep "ops by kind" "$out" | sed 's/^/    /'
	else
		fail "csv-workload random, seed $seed (replay: csv-workload random --seed $seed --ops 3000 --workers 3 M1 M2 M3)"
		grep -v "^progress" "$out" | head -30 | sed 's/^/    /'
	fi
}
workload_random 20261127
workload_random $RANDOM

# ---- appenders on three nodes, verified through another one --------------------
section "appenders, verified through another node"
mkdir "$M1/logs"
for n in 1 2 3; do
	"$WORKLOAD" append --dir "${M[n]}/logs" --records 300 --size 3000 --fsync-every 1 --id "node$n" \
		>"$work/append$n.out" 2>&1 &
	apid[n]=$!
	bg="$bg ${apid[n]}"
done
for n in 1 2 3; do
	wait "${apid[n]}"
	rc=$?
	bg=${bg/ ${apid[n]}/}
	acked=$(grep '^acked ' "$work/append$n.out" | tail -1 | cut -d' ' -f2)
	check "appender on node $n: exit 0, 300 records acknowledged" test "$rc:${acked:-none}" = 0:299 ||
		grep -v '^acked' "$work/append$n.out" | head -5 | sed 's/^/    /'
	o=$(next "$n")
	if "$WORKLOAD" verify --dir "${M[o]}/logs" --id "node$n" --acked "${acked:-299}" >"$work/verify$n.out" 2>&1; then
		pass "the log of node $n verified through node $o"
	else
		fail "the log of node $n verified through node $o"
		sed 's/^/    /' "$work/verify$n.out"
	fi
done

# ---- unmount, stop, check -------------------------------------------------------
section "unmount, stop, fsck"
for n in 1 2 3; do
	check "unmount node $n" fusermount3 -u "${M[n]}"
done
for n in 1 2 3; do
	wait "${cpid[n]}"
	rc=$?
	check "client $n exited 0 after unmount" test "$rc" -eq 0
	if grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$work/client$n.log"; then
		fail "client $n: sanitizer report"
		head -40 "$work/client$n.log"
	fi
	cpid[n]=
done
kill -TERM "$coord_pid"
wait "$coord_pid"
rc=$?
coord_pid=
check "coordinator: SIGTERM, exit 0" test "$rc" -eq 0 || tail -5 "$log"
if grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$log"; then
	fail "coordinator: sanitizer report"
	grep -E -A20 "AddressSanitizer|runtime error|LeakSanitizer" "$log" | head -40
fi
if "$FSCK" -n "$img" >"$work/fsck.out" 2>&1; then pass "fsck -n finds the volume clean"; else
	fail "fsck -n: exit $?"
	sed 's/^/    /' "$work/fsck.out" | head -20
fi

if [ "$failures" -ne 0 ]; then
	for n in 1 2 3; do
		if [ -s "$work/client$n.log" ]; then echo "--- client $n log (last lines)"; tail -20 "$work/client$n.log"; fi
	done
	echo "--- coordinator log (last lines)"
	tail -20 "$log"
fi
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
