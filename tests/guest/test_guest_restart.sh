#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# A guest that goes away: two guests on one uvsockd, the host holds a connection to each;
# QEMU of guest 3 is killed with SIGKILL. The host's connection to guest 3 must end as Linux's
# vhost-vsock reports a guest that went away (sk_err ECONNRESET: recv gives it, the first send
# too, then EPIPE), the one to guest 4 must keep working, and guest 3,
# booted again on the same socket, must work as before. No host socket may leak.
set -euo pipefail
UVSOCKD=$1
ECHO=$2
HOST=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvt_init rs
fail() {
	echo "FAIL: $*"
	echo "--- uvsockd (last 40 lines)"; grep -v VHOST_CONFIG "$tmp/uvsockd.log" | tail -40
	for f in "$tmp"/*.out; do echo "--- $f"; tail -5 "$f"; done
	exit 1
}
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" ||
	fail "uvsockd not ready"
"$ECHO" --listen 5000 >"$tmp/echo.out" 2>&1 &
pids+=("$!")

bash "$here/run-guest.sh" --kernel 6.1 --socket "$tmp/vm3.sock" --timeout 300 --log "$tmp/g3a.log" -- \
	"listen port=7000 n=1 timeout=200" >"$tmp/g3a.out" 2>&1 &
g3a=$!
pids+=("$g3a")
bash "$here/run-guest.sh" --kernel 6.1 --socket "$tmp/vm4.sock" --timeout 300 --log "$tmp/g4.log" -- \
	"listen port=7000 n=1 timeout=200" >"$tmp/g4.out" 2>&1 &
g4=$!
pids+=("$g4")
wait_for "$tmp/g3a.log" "UVT READY listen" 120 || fail "guest 3 never listened"
wait_for "$tmp/g4.log" "UVT READY listen" 120 || fail "guest 4 never listened"

# two host programs holding a connection each, driven through fifos
for g in 3 4; do
	mkfifo "$tmp/in$g" "$tmp/out$g"
	"$HOST" hold $g 7000 <"$tmp/in$g" >"$tmp/out$g" &
	pids+=($!)
done
exec 13>"$tmp/in3" 14>"$tmp/in4" 23<"$tmp/out3" 24<"$tmp/out4"
read -r -t 20 l3 <&23 || true
read -r -t 20 l4 <&24 || true
[ "${l3:-}" = held ] || fail "host could not hold a connection to guest 3: ${l3:-nothing}"
[ "${l4:-}" = held ] || fail "host could not hold a connection to guest 4: ${l4:-nothing}"
echo "ok: host holds a connection to each guest"

pkill -9 -f "path=$tmp/vm3.sock" || fail "no QEMU for guest 3"
echo "wait-gone" >&13
read -r -t 40 l3 <&23 || true
want="gone Connection reset by peer, send Connection reset by peer, then EPIPE"
[ "${l3:-}" = "$want" ] || fail "connection to the killed guest: '${l3:-no answer}', want '$want'"
echo "ok: killed guest 3 -> host sees ECONNRESET (recv, and the first send), then EPIPE"
echo "close" >&13
wait_for "$tmp/uvsockd.log" "guest cid 3 detached" 10 || fail "daemon did not notice guest 3 left"

echo "ping" >&14
read -r -t 20 l4 <&24 || true
[ "${l4:-}" = "ping ok" ] || fail "guest 4 disturbed: ${l4:-no answer}"
echo "ok: guest 4 untouched"

wait $g3a 2>/dev/null || true
bash "$here/run-guest.sh" --kernel 6.1 --socket "$tmp/vm3.sock" --timeout 300 --log "$tmp/g3b.log" -- \
	"cid expect=3; stream-echo port=5000 sizes=1,65536,300000; listen port=7000 n=1" >"$tmp/g3b.out" 2>&1 &
g3b=$!
pids+=("$g3b")
wait_for "$tmp/g3b.log" "UVT READY listen" 120 || fail "restarted guest 3 never listened"
"$HOST" client 3 7000 1 >"$tmp/client3.out" 2>&1 || fail "host -> restarted guest 3: $(cat "$tmp/client3.out")"
wait $g3b || fail "restarted guest 3: $(tail -1 "$tmp/g3b.out")"
echo "ok: guest 3 restarted on the same socket and works both ways"

echo "close" >&14
read -r -t 10 l4 <&24 || true
wait $g4 || fail "guest 4: $(tail -1 "$tmp/g4.out")"
echo "ok: guest 4 passed"

sleep 0.5
n=$(uvt_host_sockets)
[ "$n" = 2 ] || fail "daemon holds $n host sockets, want 2 (the echo listeners)"
echo "ok: no leaked host socket"
echo "1 passed, 0 failed"
