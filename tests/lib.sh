# Shared by the integration test scripts: source it after setting -u.

failures=0
# Records a failed check with its description.
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# Records a passed check.
pass() { echo "ok: $*"; }
# check WHAT COMMAND...: runs COMMAND and records WHAT as passed or failed
# (returning 1 then, for a caller that adds details).
check() { local what=$1; shift; if "$@"; then pass "$what"; else fail "$what"; return 1; fi; }

# Prints a TCP port on 127.0.0.1 that is free now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Writes a new random cluster key to FILE, readable by root only.
make_key() {
	head -c 64 /dev/urandom >"$1"
	chmod 600 "$1"
}

# start_coordinator LUN PORT KEYFILE LOG: starts csv-coordinatord ($COORD)
# as node 1 on 127.0.0.1:PORT, in the foreground and in the background (its
# pid in $coord_pid), logging to LOG, and waits until it serves. Returns 1,
# with the end of LOG, when it does not start.
start_coordinator() {
	local lun=$1 port=$2 key=$3 log=$4
	"$COORD" --lun "$lun" --listen "127.0.0.1:$port" --keyfile "$key" --node-id 1 --foreground >>"$log" 2>&1 &
	coord_pid=$!
	for _ in $(seq 100); do
		grep -q "serving on" "$log" 2>/dev/null && return 0
		kill -0 "$coord_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "the coordinator did not start:"; tail -20 "$log" | sed 's/^/    /'
	return 1
}

# mount_csvfs LUN DIR NODE PORT KEYFILE LOG [OPTIONS]: mounts LUN on DIR as
# node NODE with the csvfs client ($CSVFS) of the coordinator on
# 127.0.0.1:PORT (and the mount OPTIONS, comma-separated), in the foreground
# and in the background (its pid in $mount_pid), logging to LOG, and waits
# until the mount is there. Returns 1, with LOG, when it is not.
mount_csvfs() {
	local lun=$1 dir=$2 node=$3 port=$4 key=$5 log=$6 extra=${7:+,$7}
	"$CSVFS" "$lun" "$dir" -f -o "coordinator=127.0.0.1:$port,keyfile=$key,node=$node$extra" >"$log" 2>&1 &
	mount_pid=$!
	for _ in $(seq 100); do
		mountpoint -q "$dir" && return 0
		kill -0 "$mount_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "csvfs node $node did not mount on $dir:"; sed 's/^/    /' "$log"
	return 1
}

# The lab nodes (of the three first) where a QEMU of VM NAME lives, as
# "2" or "1 3" (none: ""), from the processes of each node's namespace.
qemu_nodes() {
	local i p out=
	for i in 1 2 3; do
		for p in $(ip netns pids "csvlab-n$i" 2>/dev/null); do
			[ "$(cat "/proc/$p/comm" 2>/dev/null)" = qemu-system-x86 ] || continue
			grep -qaF "/run/csvlab/n$i/$1.qmp" "/proc/$p/cmdline" 2>/dev/null && out+="${out:+ }$i"
		done
	done
	echo "$out"
}
