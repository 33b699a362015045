#!/bin/bash
# The project's tiny guest (csv-tiny-guest) under QEMU with TCG: it boots,
# reads its parameters and counts; and it keeps counting across a live
# migration between two QEMU processes on this machine, idle with 256 MiB
# and while it dirties 64 MiB of its memory. Prints the time from the start
# of QEMU to the guest's first line, and for each migration the blackout
# seen on the serial lines (their arrival times on the host) with QEMU's
# total time and downtime (query-migrate).
# The image comes from meson in GUEST, or from the build directory given as
# the first argument. Needs qemu-system-x86_64 and python3, no root; QEMU's
# monitors (QMP), serial ports and migrations use unix sockets and FIFOs in
# a temporary directory only.
# shellcheck disable=SC2154 # variables set by eval of the helper's output
set -euo pipefail

if [ -z "${GUEST:-}" ] && [ $# -ge 1 ]; then GUEST=$1/guest/csv-tiny-guest; fi
: "${GUEST:?set GUEST to the csv-tiny-guest image, or give the build directory}"
if ! command -v qemu-system-x86_64 >/dev/null; then
	echo "FAIL: qemu-system-x86_64 is missing: install the Debian package qemu-system-x86 (scripts/install-deps does)"
	exit 1
fi
if ! command -v python3 >/dev/null; then
	echo "FAIL: python3 is missing: install the Debian package python3 (scripts/install-deps does)"
	exit 1
fi
if [ ! -f "$GUEST" ]; then echo "FAIL: no guest image at $GUEST"; exit 1; fi

# What QEMU is asked for (migrate-set-parameters downtime-limit), and the
# longest pause of the ticks that the test accepts: the target of the
# design is under 50 ms for an idle 256 MiB VM; the bound here leaves room
# for a loaded machine, and the times are printed.
DOWNTIME_LIMIT_MS=${DOWNTIME_LIMIT_MS:-50}
BLACKOUT_MAX_MS=${BLACKOUT_MAX_MS:-500}

T_START=${EPOCHREALTIME/./}
work=$(mktemp -d /tmp/csv-guest-test.XXXXXX)
# The processes this test started and has not reaped yet (QEMU and serial
# readers), by pid.
declare -A live qemu_pid stamp_pid vm_mem vm_append
cleanup() {
	local rc=$? p
	[ "$rc" = 0 ] || echo "${failures:-0} failure(s); the test stopped early (exit status $rc)"
	for p in "${!live[@]}"; do kill "$p" 2>/dev/null || :; done
	for p in "${!live[@]}"; do wait "$p" 2>/dev/null || :; done
	rm -rf --one-file-system "$work"
}
trap cleanup EXIT
. "$(dirname "$0")/lib.sh"
helper=$work/guest-helper.py

cat >"$helper" <<'EOF'
"""test-guest.sh's helper: a time-stamping reader of a VM's serial port, a
QMP client (JSON over a unix socket) and the analysis of the serial lines.
Results are printed as shell assignments."""
import json
import os
import re
import shlex
import socket
import sys
import time

TICK = re.compile(r"csv-guest tick (\d+)$")
KNOWN = re.compile(r"csv-guest (started |tick \d+$|dirty-rate \d+MiB/s$|unknown )")


def stamp(fifo, out):
    """Copies the lines that QEMU writes into FIFO to OUT as "TIME L TEXT",
    TIME being the host time of their arrival (seconds since the epoch);
    text left without a newline at the end as "TIME P TEXT". OUT exists
    from before FIFO is opened on."""
    with open(out, "w", buffering=1) as o:
        fd = os.open(fifo, os.O_RDONLY)
        buf = b""
        while True:
            data = os.read(fd, 65536)
            now = time.time()
            if not data:
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                o.write("%.6f L %s\n" % (now, line.decode(errors="replace")))
        if buf:
            o.write("%.6f P %s\n" % (time.time(), buf.decode(errors="replace")))


class QmpError(Exception):
    pass


class Qmp:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.rfile = self.sock.makefile("rb")
        if "QMP" not in self.read():
            raise QmpError("no QMP greeting on " + path)
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.rfile.readline()
        if not line:
            raise QmpError("QEMU closed the QMP connection")
        return json.loads(line)

    def cmd(self, name, args=None):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:  # events come in between and are skipped
            reply = self.read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise QmpError("%s: %s" % (name, reply["error"].get("desc", reply["error"])))


def assign(**values):
    print(" ".join("%s=%s" % (k, shlex.quote(str(v))) for k, v in values.items()))


def migrate(sock, uri, downtime_ms, timeout):
    """Migrates the VM of QMP socket SOCK to URI with a downtime limit and
    no bandwidth limit, and waits until query-migrate says it is over."""
    q = Qmp(sock)
    q.cmd("migrate-set-parameters", {"downtime-limit": int(downtime_ms), "max-bandwidth": 8 << 30})
    t0 = time.time()
    q.cmd("migrate", {"uri": uri})
    while True:
        info = q.cmd("query-migrate")
        status = info.get("status")
        if status in ("completed", "failed", "cancelled"):
            break
        if time.time() - t0 > float(timeout):
            q.cmd("migrate_cancel")
            status = "timed out after %s s" % timeout
            break
        time.sleep(0.01)
    t1 = time.time()
    ram = info.get("ram", {})
    assign(mig_status=status, mig_total_ms=info.get("total-time", -1),
           mig_downtime_ms=info.get("downtime", -1), mig_setup_ms=info.get("setup-time", -1),
           mig_mib=ram.get("transferred", 0) >> 20, mig_passes=ram.get("dirty-sync-count", 0),
           mig_error=info.get("error-desc", ""), mig_t0="%.6f" % t0, mig_t1="%.6f" % t1)
    return 0 if status == "completed" else 1


def records(path):
    with open(path) as f:
        for line in f:
            t, kind, text = (line.rstrip("\n").split(" ", 2) + ["", ""])[:3]
            yield float(t), kind, text


def ticks_of(lines):
    return [(t, int(m.group(1))) for t, text in lines for m in [TICK.match(text)] if m]


def consecutive(ticks):
    return all(b[1] == a[1] + 1 for a, b in zip(ticks, ticks[1:]))


def summary(path):
    """The ticks of one VM's serial lines: first, last, how many, whether
    each is the one before plus one, and how many arrive per second."""
    lines = [(t, text) for t, kind, text in records(path) if kind == "L"]
    ticks = ticks_of(lines)
    span = ticks[-1][0] - ticks[0][0] if len(ticks) > 1 else 0
    assign(first=ticks[0][1] if ticks else 0, last=ticks[-1][1] if ticks else 0,
           count=len(ticks), consecutive=int(consecutive(ticks)),
           per_s=round((len(ticks) - 1) / span) if span else 0,
           started=sum(text.startswith("csv-guest started ") for _, text in lines),
           others=sum(not KNOWN.match(text) for _, text in lines))


def switch(src_path, dst_path, t0, t1):
    """The ticks across a migration from the VM whose serial lines are in
    SRC_PATH to the one of DST_PATH, started at T0 and reported completed at
    T1. A line that the source began and the target ended is joined."""
    src = list(records(src_path))
    dst = list(records(dst_path))
    tail = src.pop()[2] if src and src[-1][1] == "P" else ""
    src_lines = [(t, text) for t, kind, text in src]
    dst_lines = [(t, text) for t, kind, text in dst if kind == "L"]
    if dst_lines:
        dst_lines[0] = (dst_lines[0][0], tail + dst_lines[0][1])
    s, d = ticks_of(src_lines), ticks_of(dst_lines)
    if not s or not d:
        assign(src_last=s[-1][1] if s else 0, dst_first=0, dst_last=0, dst_count=0,
               src_ok=0, dst_ok=0, dst_started=0, others=0, src_after=0, switch_ms=0,
               longest_ms=0, normal_ms=0)
        return
    before = [b[0] - a[0] for a, b in zip(s, s[1:]) if b[0] < float(t0)]
    before.sort()
    both = s + d
    # The pause a user sees: the longest gap between two ticks from the
    # start of the migration to half a second after the target's first.
    window = [(a, b) for a, b in zip(both, both[1:])
              if b[0] >= float(t0) and a[0] <= d[0][0] + 0.5]
    longest = max(b[0] - a[0] for a, b in window)
    assign(src_last=s[-1][1], dst_first=d[0][1], dst_last=d[-1][1], dst_count=len(d),
           src_ok=int(s[0][1] == 1 and consecutive(s)), dst_ok=int(consecutive(d)),
           dst_started=sum(text.startswith("csv-guest started ") for _, text in dst_lines),
           others=sum(not KNOWN.match(text) for _, text in src_lines + dst_lines),
           src_after=sum(t >= d[0][0] for t, _ in s),
           switch_ms="%.1f" % ((d[0][0] - s[-1][0]) * 1000),
           longest_ms="%.1f" % (longest * 1000),
           normal_ms="%.1f" % (before[len(before) // 2] * 1000 if before else 0))


def main(argv):
    cmd = argv[1]
    if cmd == "stamp":
        stamp(argv[2], argv[3])
    elif cmd == "status":
        print(Qmp(argv[2]).cmd("query-status")["status"])
    elif cmd == "migrate":
        try:
            return migrate(*argv[2:6])
        except (OSError, QmpError) as e:
            assign(mig_status="in an error", mig_error=e)
            return 1
    elif cmd == "summary":
        summary(argv[2])
    elif cmd == "switch":
        switch(*argv[2:6])
    else:
        sys.exit("unknown command " + cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
EOF

# Microseconds to milliseconds.
ms() { echo $(($1 / 1000)); }

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
		sleep 0.02
	done
}

# The serial lines of VM NAME, without their times.
lines() { awk '$2 == "L" {sub(/^[^ ]+ L /, ""); print}' "$work/$1.serial"; }
# The number of tick lines of VM NAME so far.
ticks() { grep -c ' L csv-guest tick ' "$work/$1.serial" || :; }
has_ticks() { [ "$(ticks "$1")" -ge "$2" ]; }
# has_line NAME REGEX: whether a serial line of VM NAME matches REGEX (grep).
has_line() { grep -q " L $2" "$work/$1.serial"; }
# matches TEXT PATTERN: whether TEXT matches the glob PATTERN.
# shellcheck disable=SC2053 # PATTERN is a glob
matches() { [[ $1 == $2 ]]; }

# start_vm NAME MEM_MIB APPEND [QEMU-ARGS...]: starts the guest in QEMU as
# VM NAME, its serial port read by a time-stamping reader into NAME.serial,
# its QMP socket NAME.qmp; sets start_us to the time QEMU was started.
start_vm() {
	local name=$1 mem=$2 append=$3
	shift 3
	vm_mem[$name]=$mem
	vm_append[$name]=$append
	mkfifo "$work/$name.fifo"
	python3 "$helper" stamp "$work/$name.fifo" "$work/$name.serial" &
	stamp_pid[$name]=$!
	live[$!]=1
	wait_for "the serial reader of $name starts" 20 test -e "$work/$name.serial"
	start_us=${EPOCHREALTIME/./}
	qemu-system-x86_64 -name "csv-guest-$name" -accel tcg -machine pc -m "$mem" \
		-nodefaults -no-user-config -display none -no-reboot \
		-kernel "$GUEST" -append "$append" \
		-serial "file:$work/$name.fifo" \
		-qmp "unix:$work/$name.qmp,server=on,wait=off" "$@" \
		</dev/null >"$work/$name.log" 2>&1 &
	qemu_pid[$name]=$!
	live[$!]=1
	if ! wait_for "QEMU $name starts" 20 test -S "$work/$name.qmp"; then
		sed 's/^/    /' "$work/$name.log"
		return 1
	fi
}

# stop_vm NAME: ends QEMU of VM NAME, then its serial reader, which writes
# what it still has.
stop_vm() {
	local name=$1 q=${qemu_pid[$1]} r=${stamp_pid[$1]}
	kill "$q" 2>/dev/null || :
	wait "$q" 2>/dev/null || :
	unset "live[$q]"
	for _ in $(seq 100); do
		kill -0 "$r" 2>/dev/null || break
		sleep 0.02
	done
	kill "$r" 2>/dev/null || :
	wait "$r" 2>/dev/null || :
	unset "live[$r]"
}

vm_status() { python3 "$helper" status "$work/$1.qmp"; }

# migrate SRC DST WHAT: starts VM DST like SRC but waiting for an incoming
# migration on a unix socket, migrates SRC to it through SRC's QMP, lets
# DST run, and checks that the guest's counter goes on on DST without a
# reset while SRC stays stopped. Prints the times.
migrate() {
	local src=$1 dst=$2 what=$3 out
	start_vm "$dst" "${vm_mem[$src]}" "${vm_append[$src]}" -incoming "unix:$work/$dst.mig"
	wait_for "$what: the target listens" 20 test -S "$work/$dst.mig"
	if ! out=$(python3 "$helper" migrate "$work/$src.qmp" "unix:$work/$dst.mig" "$DOWNTIME_LIMIT_MS" 120); then
		eval "$out"
		fail "$what: the migration ended ${mig_status:-in an error} ${mig_error:+($mig_error)}"
		return 1
	fi
	eval "$out"
	pass "$what: migrated in $mig_total_ms ms (QEMU's total-time), downtime $mig_downtime_ms ms (limit $DOWNTIME_LIMIT_MS ms), setup $mig_setup_ms ms, $mig_mib MiB sent in $mig_passes passes"
	local base
	base=$(ticks "$dst")
	wait_for "$what: the target counts 250 ticks" 30 has_ticks "$dst" $((base + 250))
	check "$what: the source is stopped (postmigrate)" test "$(vm_status "$src")" = postmigrate
	check "$what: the target runs" test "$(vm_status "$dst")" = running
	stop_vm "$src"
	eval "$(python3 "$helper" switch "$work/$src.serial" "$work/$dst.serial" "$mig_t0" "$mig_t1")"
	check "$what: the source counted from 1 without a gap" test "$src_ok" = 1
	check "$what: the target goes on from the source's last tick ($src_last, then $dst_first)" \
		test "$dst_first" = $((src_last + 1))
	check "$what: the target counts on without a gap (to $dst_last)" test "$dst_ok" = 1
	check "$what: the target did not start the guest again" test "$dst_started" = 0
	check "$what: the source printed no tick after the target's first" test "$src_after" = 0
	check "$what: no unexpected line on either serial port" test "$others" = 0
	pass "$what: blackout $longest_ms ms (the longest gap between ticks from the start of the migration; at the switch $switch_ms ms; ticks come every $normal_ms ms)"
	check "$what: blackout under $BLACKOUT_MAX_MS ms" \
		awk -v b="$longest_ms" -v m="$BLACKOUT_MAX_MS" 'BEGIN {exit !(b < m)}'
	stop_vm "$dst"
}

echo "guest image: $GUEST ($(stat -c %s "$GUEST") bytes); $(qemu-system-x86_64 --version | head -1)"

# 1. It boots, says so with its parameters, and counts.
start_vm a 256 "tick=2"
wait_for "the guest prints its first line" 20 has_line a 'csv-guest started'
first_us=$(awk '$2 == "L" {sub(/\./, "", $1); print $1; exit}' "$work/a.serial")
boot_ms=$(ms $((first_us - start_us)))
check "the first line says it started, with its parameters: $(lines a | head -1)" \
	test "$(lines a | head -1)" = "csv-guest started mem=256MiB tick=2ms dirty=0MiB rate=0MiB/s"
wait_for "the guest counts 250 ticks" 30 has_ticks a 250
eval "$(python3 "$helper" summary "$work/a.serial")"
check "the counter grows from 1 by one a line (to $last)" test "$first $consecutive" = "1 1"
pass "boot: first line $boot_ms ms after QEMU started; $per_s ticks/s (500 asked)"

# 2. Live migration of the idle guest.
migrate a b "idle 256 MiB"

# 3. Parameters: 64 MiB, more to dirty than there is, an unknown name.
start_vm e 64 "dirty=1000 bogus=1"
wait_for "the 64 MiB guest counts 100 ticks" 30 has_ticks e 100
first_line=$(lines e | head -1)
dirty=$(echo "$first_line" | sed -n 's/.* dirty=\([0-9]*\)MiB .*/\1/p')
check "64 MiB: the first line gives the memory and the default tick: $first_line" \
	matches "$first_line" "csv-guest started mem=64MiB tick=10ms dirty=*MiB rate=0MiB/s"
check "64 MiB: dirty=1000 is capped to the memory above 4 MiB ($dirty MiB)" \
	test "${dirty:-0}" -gt 0 -a "${dirty:-0}" -le 60
check "64 MiB: the unknown parameter is reported" test "$(lines e | sed -n 2p)" = "csv-guest unknown bogus=1"
wait_for "64 MiB: the guest dirties memory and says at what rate" 10 \
	has_line e 'csv-guest dirty-rate [1-9][0-9]*MiB/s$'
pass "64 MiB: the guest dirties memory ($(lines e | grep -m1 '^csv-guest dirty-rate' | cut -d' ' -f2-))"
stop_vm e

# 4. Live migration of a guest that dirties 64 MiB over and over.
start_vm c 256 "tick=2 dirty=64"
wait_for "the dirtying guest reports its rate" 30 has_line c 'csv-guest dirty-rate '
check "dirtying: the first line gives dirty=64MiB" \
	test "$(lines c | head -1)" = "csv-guest started mem=256MiB tick=2ms dirty=64MiB rate=0MiB/s"
pass "dirtying: the guest dirties $(lines c | sed -n 's/^csv-guest dirty-rate //p' | tail -1) (a word in each 4 KiB page)"
migrate c d "dirtying 64 MiB"

echo "timings: the whole test $(ms $((${EPOCHREALTIME/./} - T_START))) ms"
echo "$failures failure(s)"
[ "$failures" -eq 0 ]
