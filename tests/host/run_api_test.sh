#!/usr/bin/env bash
# Starts uvsockd (guest CID 3 configured, no guest attached) and runs the native-API test
# against it, then checks that an unprivileged program cannot bind a port below 1024.
set -euo pipefail
UVSOCKD=$1
TEST=$2
ECHO=$3
tmp=$(mktemp -d /tmp/uvsock-api.XXXXXX)
chmod 755 "$tmp"
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
"$UVSOCKD" --vm "cid=3,socket=$tmp/vm3.sock" --control "$tmp/ctl.sock" >"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 100); do [ -S "$tmp/ctl.sock" ] && break; sleep 0.1; done
[ -S "$tmp/ctl.sock" ] || { cat "$tmp/log"; echo "uvsockd not ready"; exit 1; }
export UVSOCK_CONTROL=$tmp/ctl.sock
"$TEST"
if [ -z "${UVT_SANITIZE:-}" ] && command -v valgrind >/dev/null; then
	# the same again under valgrind: no use after free in close races, no leaks of note (a
	# sanitized build, UVT_SANITIZE, checks the same with its own runtime instead)
	valgrind -q --error-exitcode=9 "$TEST" >"$tmp/vg.out" 2>&1 || { cat "$tmp/vg.out"; echo "FAIL: valgrind"; exit 1; }
	echo "ok: test_api clean under valgrind"
fi
if [ "$(id -u)" = 0 ]; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$ECHO" --listen 1001 2>&1) && {
		echo "FAIL: an unprivileged program could listen on port 1001"
		exit 1
	}
	grep -q "Permission denied" <<<"$out" || { echo "FAIL: want EACCES, got: $out"; exit 1; }
	echo "ok: unprivileged bind of port 1001 refused (EACCES)"
fi
kill -0 $pid || { echo "FAIL: uvsockd died"; cat "$tmp/log"; exit 1; }
