# Shared by the integration test scripts: source it after setting -u.

failures=0
# Records a failed check with its description.
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# Records a passed check.
pass() { echo "ok: $*"; }

# Prints a TCP port on 127.0.0.1 that is free now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Writes a new random cluster key to FILE, readable by root only.
make_key() {
	head -c 64 /dev/urandom >"$1"
	chmod 600 "$1"
}
