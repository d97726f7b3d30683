#!/usr/bin/env python3
"""SEQPACKET receive flags from unmodified python3 under libuvsock-preload.so.

  vsock_seqflags.py CID PORT    (PORT: a SEQPACKET echo, e.g. the guest's listen port + 1)

What vsock_echo.py's client does not already check: MSG_PEEK (alone and with MSG_TRUNC),
recv_into with MSG_TRUNC returning the real length, recvmsg_into scattering one message over
two buffers, MSG_DONTWAIT on an empty socket (EAGAIN), and that each of these leaves the next
message intact. Prints "ok: ..." per check; exit 0 iff all passed.
"""
import os
import socket
import sys

EOR = socket.MSG_EOR
TRUNC = socket.MSG_TRUNC


def main(cid, port):
    q = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    q.connect((cid, port))
    fails = []

    def check(cond, what):
        print(("ok: " if cond else "FAIL: ") + what, flush=True)
        if not cond:
            fails.append(what)

    def echo(msg):
        q.sendmsg([msg], [], EOR)

    # MSG_PEEK leaves the message queued; the real receive gets it whole
    msg = os.urandom(100)
    echo(msg)
    data, _, flags, _ = q.recvmsg(4096, 0, socket.MSG_PEEK)
    check(data == msg and flags & EOR and not flags & TRUNC,
          f"recvmsg MSG_PEEK: {len(data)} bytes, flags {flags:#x} (want 100, MSG_EOR)")
    data, _, flags, _ = q.recvmsg(4096)
    check(data == msg and flags & EOR, f"recvmsg after peek: {len(data)} bytes, flags {flags:#x}")

    # MSG_PEEK | MSG_TRUNC into a small buffer: the real length, message still queued
    msg = os.urandom(100)
    echo(msg)
    buf = bytearray(10)
    n = q.recv_into(buf, 10, socket.MSG_PEEK | TRUNC)
    check(n == 100 and buf == msg[:10], f"recv_into(10, MSG_PEEK|MSG_TRUNC) -> {n} (want 100)")
    # MSG_TRUNC alone: the real length, the rest of the message dropped
    buf = bytearray(10)
    n = q.recv_into(buf, 10, TRUNC)
    check(n == 100 and buf == msg[:10], f"recv_into(10, MSG_TRUNC) -> {n} (want 100)")

    # the next message is intact, scattered over two buffers by recvmsg_into
    msg = os.urandom(100)
    echo(msg)
    a, b = bytearray(30), bytearray(100)
    n, _, flags, _ = q.recvmsg_into([a, b])
    check(n == 100 and bytes(a) + bytes(b[:70]) == msg and flags & EOR and not flags & TRUNC,
          f"recvmsg_into([30, 100]) -> {n} bytes, flags {flags:#x}")

    # nothing queued: MSG_DONTWAIT gives EAGAIN, and the socket still works afterwards
    try:
        q.recv(100, socket.MSG_DONTWAIT)
        check(False, "recv(MSG_DONTWAIT) on an empty socket returned data")
    except BlockingIOError:
        check(True, "recv(MSG_DONTWAIT) on an empty socket -> EAGAIN")
    msg = os.urandom(5000)
    echo(msg)
    data, _, flags, _ = q.recvmsg(65536)
    check(data == msg and flags & EOR, f"last message: {len(data)} bytes, flags {flags:#x}")

    check(q.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET,
          "SO_TYPE is SOCK_SEQPACKET")
    q.close()
    return 1 if fails else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(int(sys.argv[1]), int(sys.argv[2])))
