#!/usr/bin/env python3
"""Python's own socket module on AF_VSOCK, unmodified, run under libuvsock-preload.so.

  vsock_echo.py serve PORT       STREAM echo on PORT and SEQPACKET echo on PORT+1 (threads,
                                 many connections; SEQPACKET keeps boundaries and MSG_EOR)
  vsock_echo.py client CID PORT  STREAM to CID:PORT and SEQPACKET to CID:PORT+1: send data,
                                 check the echo (boundaries and MSG_EOR for SEQPACKET);
                                 exit 0 if all matched
"""
import hashlib
import os
import socket
import sys
import threading

SEQ_MAX = 300 * 1024


def echo_stream(conn):
    with conn:
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)


def echo_seq(conn):
    with conn:
        while True:
            data, _, flags, _ = conn.recvmsg(SEQ_MAX)
            if not data:
                return
            conn.sendmsg([data], [], socket.MSG_EOR if flags & socket.MSG_EOR else 0)


def serve(port):
    def loop(sock, handler):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=handler, args=(conn,), daemon=True).start()

    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.bind((socket.VMADDR_CID_ANY, port))
    s.listen(128)
    q = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    q.bind((socket.VMADDR_CID_ANY, port + 1))
    q.listen(128)
    print(f"python echo: listening on {s.getsockname()} and {q.getsockname()}", flush=True)
    threading.Thread(target=loop, args=(q, echo_seq), daemon=True).start()
    loop(s, echo_stream)


def client(cid, port):
    blob = os.urandom(1 << 20)
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.connect((cid, port))
    assert s.getpeername() == (cid, port), s.getpeername()

    def sender():
        s.sendall(blob)
        s.shutdown(socket.SHUT_WR)

    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    t.join()
    s.close()
    if hashlib.sha256(got).digest() != hashlib.sha256(blob).digest():
        print(f"FAIL: STREAM echo of 1 MiB differs ({len(got)} bytes back)")
        return 1
    print("python client: STREAM 1 MiB echoed, sha256 identical")

    q = socket.socket(socket.AF_VSOCK, socket.SOCK_SEQPACKET)
    q.connect((cid, port + 1))
    for size in (1, 100, 4096, 65536, 200000):
        for eor in (0, socket.MSG_EOR):
            msg = os.urandom(size)
            q.sendmsg([msg], [], eor)
            data, _, flags, _ = q.recvmsg(SEQ_MAX)
            if data != msg or bool(flags & socket.MSG_EOR) != bool(eor) or flags & socket.MSG_TRUNC:
                print(f"FAIL: SEQPACKET message of {size} (eor {bool(eor)}): "
                      f"got {len(data)} bytes, flags {flags:#x}")
                return 1
    # truncation: a 100-byte message into a 10-byte buffer
    q.sendmsg([b"x" * 100], [], socket.MSG_EOR)
    data, _, flags, _ = q.recvmsg(10)
    if len(data) != 10 or not flags & socket.MSG_TRUNC:
        print(f"FAIL: truncated receive gave {len(data)} bytes, flags {flags:#x}")
        return 1
    q.close()
    print("python client: SEQPACKET boundaries, MSG_EOR and MSG_TRUNC as Linux")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif len(sys.argv) == 4 and sys.argv[1] == "client":
        sys.exit(client(int(sys.argv[2]), int(sys.argv[3])))
    else:
        print(__doc__)
        sys.exit(2)
