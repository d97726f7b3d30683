#!/usr/bin/env bash
# vsock sockets across exec, fork and SCM_RIGHTS under libuvsock-preload.so: a python3 server
# hands each connection of port 5000 to `cat` (stdin and stdout, through exec), each of port
# 5002 to a fork()ed child, and each of port 5004 over a unix socket to a worker forked
# before, closing its own copy every time; a real guest checks the echoes byte for byte.
# Then the daemon must hold only the three listeners: every handed-over socket was closed.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init execfork "$@"
fail() {
	echo "FAIL: $*"
	echo "--- server"; cat "$tmp/srv.log" 2>/dev/null || true
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -10 || true
	exit 1
}
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
mkfifo "$tmp/ctl"
LD_PRELOAD=$SHIM timeout 300 python3 "$here/exec_fork_server.py" 2 10 2 <"$tmp/ctl" \
	>"$tmp/srv.log" 2>&1 &
srv=$!
pids+=("$srv")
exec 3>"$tmp/ctl"
wait_for "$tmp/srv.log" "LISTENING" 30 || fail "server never listened"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 300 --log "$tmp/g.log" -- \
	"stream-echo port=5000 sizes=1,100,4096,65536,300000; concurrent port=5002 n=10; stream-echo port=5000 sizes=7,70000; stream-echo port=5004 sizes=1,4096,300000; stream-echo port=5004 sizes=5" \
	>"$tmp/g.out" 2>&1 || fail "guest: $(tail -1 "$tmp/g.out")"
grep -a "UVT RESULT" "$tmp/g.log"
wait_for "$tmp/srv.log" "DONE" 60 || fail "server did not finish"
grep -q "bad=0" "$tmp/srv.log" || fail "a child failed"
echo "ok: 2 connections echoed by cat through exec, 10 by forked children, 2 passed to a worker"
n=$(uvt_host_sockets)
[ "$n" = 3 ] || fail "daemon holds $n host sockets, expected the 3 listeners"
echo "ok: only the three listeners remain in the daemon"
echo >&3
wait "$srv" || fail "server exit status"
echo "1 passed, 0 failed"
