#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Real Linux guest against uvsockd: boots Debian's kernel under QEMU (TCG) with
# (and, midway, reloads the guest's driver: device reset, rings stopped and started again)
# vhost-user-vsock-pci, host side is uvsock-echo on the native API. Scenarios are those of
# tests/guest/README.md; the script fails if any fails.
set -euo pipefail
UVSOCKD=$1
ECHO=$2
KERNEL=${3:-6.1}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvt_init guest
uvt_start_daemon -l 0 --no-huge -m 64 --file-prefix="uvt$$" --log-level=user1:debug -- \
	--vm "cid=3,socket=$tmp/vm3.sock" || { cat "$tmp/uvsockd.log"; echo "uvsockd did not become ready"; exit 1; }
"$ECHO" --listen 5000 >"$tmp/echo.log" 2>&1 &
pids+=("$!")
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
