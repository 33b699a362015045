#!/bin/bash
# The command-line tools as a user meets them: mkfs.csvfs, fsck.csvfs and
# csvfs-inspect on image files. Paths to the binaries come from meson in
# MKFS, FSCK and INSPECT.
set -u
: "${MKFS:?}" "${FSCK:?}" "${INSPECT:?}"

work=$(mktemp -d /tmp/csvfs-tools.XXXXXX)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"
out="$work/out"

# expect STATUS DESCRIPTION -- COMMAND...: runs COMMAND, output in $out.
expect() {
	local want=$1 what=$2
	shift 3
	"$@" >"$out" 2>&1
	local got=$?
	if [ "$got" -ne "$want" ]; then
		fail "$what: exit $got, expected $want"
		sed 's/^/    /' "$out" | head -20
		return 1
	fi
	pass "$what"
}

# contains TEXT DESCRIPTION: the last output holds TEXT.
contains() {
	if grep -qF -- "$1" "$out"; then pass "$2"; else fail "$2: no '$1' in:"; sed 's/^/    /' "$out" | head -20; fi
}

for bin in "$MKFS" "$FSCK" "$INSPECT"; do
	name=$(basename "$bin")
	expect 0 "$name --help" -- "$bin" --help && contains "Usage:" "$name --help shows usage"
	expect 0 "$name --version" -- "$bin" --version && contains "0." "$name --version shows the version"
	expect 16 "$name rejects an unknown option" -- "$bin" --no-such-option
done

img="$work/lun.img"
expect 16 "mkfs without a device" -- "$MKFS"
expect 16 "mkfs rejects a cluster size of 3000" -- "$MKFS" -c 3000 "$img" && contains "3000" "the message names the value"
expect 16 "mkfs rejects 0 nodes" -- "$MKFS" -N 0 "$img"
expect 16 "mkfs rejects 65 nodes" -- "$MKFS" -N 65 "$img"
expect 16 "mkfs rejects a label of 65 bytes" -- "$MKFS" -L "$(printf 'x%.0s' $(seq 65))" "$img"
expect 16 "mkfs rejects a bad UUID" -- "$MKFS" -U not-a-uuid "$img"
expect 1 "mkfs of a missing file without -s" -- "$MKFS" "$work/missing.img" && contains "missing.img" "the message names the file"
truncate -s 100K "$work/tiny.img"
expect 1 "mkfs of a 100 KiB file" -- "$MKFS" "$work/tiny.img" && contains "too small" "the message says it is too small"

expect 0 "mkfs -n prints a layout and writes nothing" -- "$MKFS" -n -s 64M "$img" && contains "Journal:" "the layout is printed"
[ ! -e "$img" ] && pass "mkfs -n did not create the file" || fail "mkfs -n created the file"

expect 0 "mkfs -s 64M -L lab" -- "$MKFS" -s 64M -L lab -N 8 -U 01234567-89ab-cdef-0123-456789abcdef "$img"
contains "01234567-89ab-cdef-0123-456789abcdef" "mkfs prints the UUID it was given"
expect 0 "fsck -n of a new volume" -- "$FSCK" -n "$img" && contains "2 directories" "fsck counts root and lost+found"
expect 0 "fsck -y of a new volume changes nothing" -- "$FSCK" -y "$img"
expect 0 "inspect header" -- "$INSPECT" "$img" header && contains "lab" "the header shows the label"
contains "8 node slots" "the header shows the node slots"
expect 0 "inspect ls /" -- "$INSPECT" "$img" ls / && contains "lost+found" "the root holds lost+found"
expect 0 "inspect record /lost+found" -- "$INSPECT" "$img" record /lost+found && contains "directory" "lost+found is a directory"
expect 0 "inspect record 0" -- "$INSPECT" "$img" record 0 && contains "Runs:" "record 0 maps the MFT"
expect 0 "inspect free" -- "$INSPECT" "$img" free && contains "free clusters" "the free-space map has totals"
expect 0 "inspect journal" -- "$INSPECT" "$img" journal && contains "not needed" "a new journal needs no replay"
expect 0 "inspect nodes" -- "$INSPECT" "$img" nodes && contains "heartbeat of node slot 7" "every node slot is listed"
expect 1 "inspect of a missing path" -- "$INSPECT" "$img" ls /nope && contains "No such file" "the message says so"
expect 16 "inspect of an unknown command" -- "$INSPECT" "$img" frobnicate && contains "frobnicate" "the message names it"
expect 16 "inspect ls without a path" -- "$INSPECT" "$img" ls

expect 1 "mkfs refuses an existing csvfs volume" -- "$MKFS" "$img" && contains "csvfs volume" "the message names what it found"
expect 0 "mkfs -f formats it anyway" -- "$MKFS" -q -f "$img"

if command -v mkfs.ext4 >/dev/null; then
	ext="$work/ext4.img"
	truncate -s 64M "$ext"
	mkfs.ext4 -q -F "$ext"
	expect 1 "mkfs refuses an ext4 filesystem" -- "$MKFS" "$ext" && contains "ext4" "the message names ext4"
	expect 0 "mkfs -f over ext4" -- "$MKFS" -q -f "$ext"
	if blkid -p "$ext" 2>/dev/null | grep -q ext4; then fail "the ext4 signature survived"; else pass "the ext4 signature is gone"; fi
	expect 0 "fsck -n after formatting over ext4" -- "$FSCK" -n "$ext"
fi
if command -v sfdisk >/dev/null; then
	pt="$work/pt.img"
	truncate -s 64M "$pt"
	echo 'label: gpt' | sfdisk -q "$pt" >/dev/null 2>&1
	expect 1 "mkfs refuses a partition table" -- "$MKFS" "$pt" && contains "gpt partition table" "the message names the table"
fi

expect 8 "fsck of a file that is not a volume" -- "$FSCK" -n "$work/tiny.img"
expect 16 "fsck -n -y together" -- "$FSCK" -n -y "$img"
expect 8 "fsck of a missing file" -- "$FSCK" -n "$work/missing.img"

# Damage: zero the primary header, then the first record bitmap block.
dd if=/dev/zero of="$img" bs=4096 count=1 conv=notrunc status=none
expect 4 "fsck -n finds a destroyed header" -- "$FSCK" -n "$img" && contains "block 0" "the report names block 0"
expect 1 "fsck -y restores it from the backup" -- "$FSCK" -y "$img"
expect 0 "fsck -n is clean after the repair" -- "$FSCK" -n "$img"
rbitmap=$("$INSPECT" "$img" header | awk '/^record bitmap/ {print $3}')
printf '\xff' | dd of="$img" bs=1 seek=$((rbitmap * 4096 + 100)) conv=notrunc status=none
expect 4 "fsck -n finds a damaged record bitmap block" -- "$FSCK" -n "$img" && contains "block $rbitmap" "the report names the block"
expect 1 "fsck -y rewrites it" -- "$FSCK" -y "$img"
expect 0 "fsck -n is clean after the repair" -- "$FSCK" -n "$img"

# A sparse 1 TiB LUN: mkfs writes only metadata.
big="$work/big.img"
start=$(date +%s.%N)
expect 0 "mkfs of a sparse 1 TiB file" -- "$MKFS" -q -s 1T "$big"
end=$(date +%s.%N)
used_kib=$(du -k "$big" | cut -f1)
echo "info: mkfs of 1 TiB took $(echo "$end - $start" | bc) s and wrote $used_kib KiB"
[ "$used_kib" -lt $((64 * 1024)) ] && pass "1 TiB format wrote under 64 MiB" || fail "1 TiB format wrote $used_kib KiB"
start=$(date +%s.%N)
expect 0 "fsck -n of the 1 TiB volume" -- "$FSCK" -n "$big"
end=$(date +%s.%N)
echo "info: fsck -n of 1 TiB took $(echo "$end - $start" | bc) s"

echo "$failures failure(s)"
[ "$failures" -eq 0 ]
