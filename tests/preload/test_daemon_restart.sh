#!/usr/bin/env bash
# uvsockd killed (SIGKILL) and restarted under a running program (python3 through
# libuvsock-preload.so, tests/preload/restart_client.py): its sockets report EOF and EPIPE,
# a blocked recv returns, accept and socket() fail at once instead of hanging; once the
# daemon is back (same control socket) with a new guest, new sockets work again.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init restart "$@"
fail() {
	echo "FAIL: $*"
	echo "--- program"; cat "$tmp/prog.log" 2>/dev/null || true
	echo "--- daemon"; tail -5 "$tmp/uvsockd.log" 2>/dev/null || true
	echo "--- guest A"; grep -a "UVT" "$tmp/gA.log" 2>/dev/null | tail -5 || true
	echo "--- guest B"; grep -a "UVT" "$tmp/gB.log" 2>/dev/null | tail -8 || true
	exit 1
}
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 200 --log "$tmp/gA.log" -- \
	"listen port=7000 n=1 gone=1" >/dev/null 2>&1 &
pids+=("$!")
wait_for "$tmp/gA.log" "UVT READY listen" 120 || fail "guest A never listened"

mkfifo "$tmp/ctl"
LD_PRELOAD=$SHIM timeout 300 python3 "$here/restart_client.py" <"$tmp/ctl" >"$tmp/prog.log" 2>&1 &
prog=$!
pids+=("$prog")
exec 3>"$tmp/ctl"
wait_for "$tmp/prog.log" "READY1" 60 || fail "program never got ready"
kill -9 "$dpid"
wait "$dpid" 2>/dev/null || true
echo "ok: uvsockd killed under the program"
echo >&3
wait_for "$tmp/prog.log" "DOWN-OK\|FAIL" 60 || fail "program hung with the daemon dead"
grep -q "DOWN-OK" "$tmp/prog.log" || fail "program with the daemon dead"
pkill -9 -f "path=$tmp/vm3.sock" 2>/dev/null || true
sleep 0.5

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd did not start again"
echo "ok: uvsockd restarted on the same control socket"
echo >&3
wait_for "$tmp/prog.log" "LISTENING2\|FAIL" 60 || fail "program never listened again"
grep -q "LISTENING2" "$tmp/prog.log" || fail "program after the restart"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 200 --log "$tmp/gB.log" -- \
	"stream-echo port=6000 sizes=1,100,4096,65536; listen port=7000 n=1" >"$tmp/gB.out" 2>&1 &
gB=$!
pids+=("$gB")
wait "$prog" || fail "program failed after the restart"
wait "$gB" || fail "guest B: $(tail -1 "$tmp/gB.out")"
exec 3>&-
grep "^ok:" "$tmp/prog.log"
grep -a "UVT RESULT" "$tmp/gB.log"
echo "1 passed, 0 failed"
