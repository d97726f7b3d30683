#!/usr/bin/env bash
# Unmodified python3 (its own socket module) on AF_VSOCK through libuvsock-preload.so and
# uvsockd, against a real Linux guest: a python echo server serves the guest's STREAM and
# SEQPACKET scenarios, and a python client talks to the guest's echo server. Also: without a
# daemon, socket(AF_VSOCK) fails with EAFNOSUPPORT; other sockets (TCP on loopback) are
# untouched by the shim.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init py "$@"
fail() {
	echo "FAIL: $*"
	echo "--- python server"; cat "$tmp/py.log" 2>/dev/null || true
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -15 || true
	exit 1
}

# no daemon: the errno of a host without vsock, never the kernel's AF_VSOCK
out=$(UVSOCK_CONTROL=$tmp/none.sock LD_PRELOAD=$SHIM python3 -c '
import errno, socket
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    print("created")
except OSError as e:
    print(errno.errorcode[e.errno])') || fail "python without daemon: $out"
[ "$out" = EAFNOSUPPORT ] || fail "socket(AF_VSOCK) without a daemon: $out, want EAFNOSUPPORT"
echo "ok: no daemon -> EAFNOSUPPORT"

# /dev/vsock's IOCTL_VM_SOCKETS_GET_LOCAL_CID answers 2 (the host). The shim opens /dev/null
# instead, so the kernel's vsock device is never touched; refuse to run the check at all if the
# shim does not interpose every open variant.
for sym in open open64 openat openat64 ioctl; do
	nm -D --defined-only "$SHIM" | grep -qE " T $sym\$" || fail "the shim does not export $sym"
done
out=$(LD_PRELOAD=$SHIM python3 -c '
import array, fcntl, os
fd = os.open("/dev/vsock", os.O_RDONLY)
buf = array.array("I", [0]); fcntl.ioctl(fd, 0x7b9, buf, True); os.close(fd)
with open("/dev/vsock", "rb") as f:
    b = array.array("I", [0]); fcntl.ioctl(f.fileno(), 0x7b9, b, True)
print(buf[0], b[0])') || fail "IOCTL_VM_SOCKETS_GET_LOCAL_CID: $out"
[ "$out" = "2 2" ] || fail "IOCTL_VM_SOCKETS_GET_LOCAL_CID answered '$out', want '2 2'"
echo "ok: /dev/vsock IOCTL_VM_SOCKETS_GET_LOCAL_CID -> 2 (os.open and open())"

# other families pass through: a TCP echo on loopback under the shim
out=$(LD_PRELOAD=$SHIM python3 -c '
import socket, threading
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
def serve():
    c, _ = s.accept(); c.sendall(c.recv(100)); c.close()
threading.Thread(target=serve).start()
c = socket.create_connection(s.getsockname()); c.sendall(b"tcp-ok"); print(c.recv(100).decode())') ||
	fail "TCP under the shim: $out"
[ "$out" = tcp-ok ] || fail "TCP under the shim: $out"
echo "ok: TCP on loopback untouched by the shim"

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
LD_PRELOAD=$SHIM python3 "$here/vsock_echo.py" serve 5000 >"$tmp/py.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/py.log" "python echo: listening" 10 || fail "python server did not start"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 300 --log "$tmp/g.log" -- \
	"stream-echo port=5000 sizes=1,100,4096,65536,300000; seq-bounds port=5001; shutwr port=5000; stream-bulk port=5000 bytes=8388608; concurrent port=5000 n=50; listen port=7000 n=2" \
	>"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
wait_for "$tmp/g.log" "UVT READY listen" 240 || fail "guest never reached its listen scenario"
LD_PRELOAD=$SHIM timeout 120 python3 "$here/vsock_echo.py" client 3 7000 || fail "python client"
wait "$g" || fail "guest: $(tail -1 "$tmp/g.out")"
grep -a "UVT RESULT" "$tmp/g.log"
echo "1 passed, 0 failed"
