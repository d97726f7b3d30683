#!/usr/bin/env bash
# Real Linux guest against uvsockd: boots Debian's kernel under QEMU (TCG) with
# (and, midway, reloads the guest's driver: device reset, rings stopped and started again)
# vhost-user-vsock-pci, host side is uvsock-echo on the native API. Scenarios are those of
# tests/guest/README.md; the script fails if any fails.
set -euo pipefail
UVSOCKD=$1
ECHO=$2
KERNEL=${3:-6.1}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/uvsock-guest.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
"$UVSOCKD" -l 0 --no-huge -m 64 --file-prefix="uvt$$" --log-level=user1:debug -- \
	--vm "cid=3,socket=$tmp/vm3.sock" --control "$tmp/ctl.sock" >"$tmp/uvsockd.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -S "$tmp/ctl.sock" ] && break; sleep 0.1; done
[ -S "$tmp/ctl.sock" ] || { cat "$tmp/uvsockd.log"; echo "uvsockd did not become ready"; exit 1; }
UVSOCK_CONTROL=$tmp/ctl.sock "$ECHO" --listen 5000 >"$tmp/echo.log" 2>&1 &
pids+=($!)
sleep 0.3
rc=0
bash "$here/run-guest.sh" --kernel "$KERNEL" --socket "$tmp/vm3.sock" --timeout 300 -- \
	"cid expect=3; stream-echo port=5000 sizes=1,100,4096,65536,300000; seq-bounds port=5001; connreset port=6000; shutwr port=5000; stream-bulk port=5000 bytes=8388608; concurrent port=5000 n=50; driver-reload; cid expect=3; stream-echo port=5000 sizes=1,65536,300000; seq-bounds port=5001" ||
	rc=$?
if [ "$rc" != 0 ]; then
	echo "--- uvsockd log (packet trace)"; grep -v VHOST_CONFIG "$tmp/uvsockd.log" | tail -80
	echo "--- uvsock-echo log"; cat "$tmp/echo.log"
fi
exit "$rc"
