#!/usr/bin/env bash
# shellcheck disable=SC2034,SC2154 # variables set in tests/guest/common.sh
# The README's main job: builds everything, starts uvsockd, boots a real Linux guest under
# QEMU against it, and shows a host program and the guest exchanging STREAM and SEQPACKET
# messages in both directions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build >/dev/null
UVSOCKD=build/pmd/uvsockd
# shellcheck source=tests/guest/common.sh disable=SC2034,SC2154
. tests/guest/common.sh
uvt_init demo
echo "== starting uvsockd (guest CID 3 on $tmp/vm3.sock)"
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || { cat "$tmp/uvsockd.log"; exit 1; }
grep "uvsockd:" "$tmp/uvsockd.log"
echo "== host: uvsock-echo --listen 5000 (STREAM 5000, SEQPACKET 5001)"
build/examples/uvsock-echo --listen 5000 >"$tmp/echo.log" 2>&1 &
pids+=("$!")
sleep 0.3
echo "== booting a Debian 6.1 guest under QEMU (TCG); the guest connects to the host, then listens on 7000/7001"
bash tests/guest/run-guest.sh --socket "$tmp/vm3.sock" --timeout 300 -- \
	"cid expect=3; stream-echo port=5000 sizes=1,100,65536,300000; seq-bounds port=5001; listen port=7000 n=2" \
	>"$tmp/guest.log" 2>&1 &
guest=$!
pids+=("$guest")
for _ in $(seq 600); do grep -q "UVT READY listen" "$tmp/guest.log" 2>/dev/null && break; sleep 0.1; done
echo "== guest -> host (the guest's own checks):"
grep -a "UVT RESULT" "$tmp/guest.log" | sed 's/^/guest: /'
echo "== host -> guest: STREAM to 3:7000"
printf 'hello from the host over STREAM\n' | build/examples/uvsock-echo --connect 3:7000 | sed 's/^/host got back: /'
echo "== host -> guest: SEQPACKET to 3:7001"
printf 'one SEQPACKET message from the host\n' | build/examples/uvsock-echo --connect 3:7001 --seqpacket | sed 's/^/host got back: /'
echo "== uvsockd's counters (kill -USR1): packets, bytes, drops by reason"
kill -USR1 "$dpid"
sleep 0.3
sed -n '/^guest cid/,/^host sockets/p' "$tmp/uvsockd.log" | sed 's/^/uvsockd: /'
rc=0
wait "$guest" || rc=$?
grep -a "UVT RESULT listen\|UVT DONE" "$tmp/guest.log" | sed 's/^/guest: /'
[ "$rc" = 0 ] && echo "== demo finished: all exchanges verified" || echo "== demo FAILED (guest log: see above)"
exit "$rc"
