#!/usr/bin/env bash
# Unmodified socat through libuvsock-preload.so: as a VSOCK-LISTEN echo server (PIPE) for a
# real guest's STREAM scenarios, and as a VSOCK-CONNECT client that sends 8 MiB to the
# guest's echo server and gets the same bytes back. 8 MiB is far more than every buffer on
# the way holds: socat's single-threaded select() loop only gets through if the fd stops
# selecting writable when the send ring is full (the filler), as a kernel socket does.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init socat "$@"
fail() {
	echo "FAIL: $*"
	echo "--- socat server"; cat "$tmp/socat.log" 2>/dev/null || true
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -15 || true
	exit 1
}
command -v socat >/dev/null || fail "socat is not installed (scripts/install-deps.sh installs it)"
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
# socat serves one connection at a time without 'fork' (fork is not supported by the shim yet)
LD_PRELOAD=$SHIM socat VSOCK-LISTEN:5000,reuseaddr PIPE >"$tmp/socat.log" 2>&1 &
pids+=("$!")
sleep 0.3
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 300 --log "$tmp/g.log" -- \
	"stream-echo port=5000 sizes=1,100,4096,65536,300000; listen port=7000 n=1" >"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
wait_for "$tmp/g.log" "UVT READY listen" 240 || fail "guest never reached its listen scenario"
head -c 8388608 /dev/urandom >"$tmp/blob"
LD_PRELOAD=$SHIM timeout 60 socat -t 5 - VSOCK-CONNECT:3:7000 <"$tmp/blob" >"$tmp/blob.back" ||
	fail "socat client"
cmp -s "$tmp/blob" "$tmp/blob.back" || fail "socat client: echo differs"
echo "ok: socat VSOCK-CONNECT: 8 MiB to the guest and back, identical"
wait "$g" || fail "guest: $(tail -1 "$tmp/g.out")"
grep -a "UVT RESULT" "$tmp/g.log"
echo "1 passed, 0 failed"
