#!/usr/bin/env python3
"""A host program that lives through a uvsockd restart (run under libuvsock-preload.so).

Phase 1: a connection to the guest's echo (CID 3, port 7000), a listener on port 6000, and a
thread blocked in recv on the connection; prints READY1, then waits for a line on stdin.
The test kills the daemon meanwhile; the line says it is dead. Phase 2 checks what the
program sees of a dead daemon: the blocked recv returns (EOF or reset), send fails with
EPIPE, accept and socket() fail at once. Prints DOWN-OK and waits for a second line: the
daemon is back with a new guest. Phase 3: new sockets work again (serve the guest's
stream-echo on port 6000, then echo 64 KiB through the guest's server on 7000).
"""
import errno
import hashlib
import os
import socket
import sys
import threading
import time

CID = 3


def say(msg):
    print(msg, flush=True)


def fail(msg):
    say("FAIL: " + msg)
    sys.exit(1)


def connect_retry(port, deadline):
    while True:
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        try:
            s.connect((CID, port))
            return s
        except OSError as e:
            s.close()
            if time.monotonic() > deadline:
                fail(f"connect {CID}:{port}: {e}")
            time.sleep(0.2)


def main():
    c = connect_retry(7000, time.monotonic() + 60)
    c.sendall(b"hello")
    got = b""
    while len(got) < 5:
        got += c.recv(5 - len(got))
    if got != b"hello":
        fail(f"echo before the restart: {got!r}")
    lst = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    lst.bind((socket.VMADDR_CID_ANY, 6000))
    lst.listen()
    blocked = {}

    def reader():
        t0 = time.monotonic()
        try:
            blocked["data"] = c.recv(100)
        except OSError as e:
            blocked["err"] = e.errno
        blocked["secs"] = time.monotonic() - t0

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    say("READY1")
    sys.stdin.readline()  # the daemon is dead now

    t.join(10)
    if t.is_alive():
        fail("a recv blocked when the daemon died never returned")
    if blocked.get("data", b"x") != b"" and blocked.get("err") not in (errno.ECONNRESET,):
        fail(f"blocked recv returned {blocked}")
    say(f"ok: blocked recv returned ({blocked}) when the daemon died")
    try:
        c.send(b"x")
        fail("send after the daemon died succeeded")
    except OSError as e:
        if e.errno not in (errno.EPIPE, errno.ECONNRESET):
            fail(f"send after the daemon died: {e}")
    say("ok: send fails with EPIPE")
    if c.recv(10) != b"":
        fail("recv after the daemon died is not EOF")
    say("ok: recv gives EOF")
    lst.settimeout(5)
    t0 = time.monotonic()
    try:
        lst.accept()
        fail("accept succeeded without a daemon")
    except socket.timeout:
        fail("accept on a listener of a dead daemon hung until its timeout")
    except OSError as e:
        if e.errno != errno.ECONNABORTED:
            fail(f"accept on a listener of a dead daemon: {e}")
        say(f"ok: accept fails at once with ECONNABORTED ({time.monotonic() - t0:.2f} s)")
    try:
        socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        fail("socket() succeeded without a daemon")
    except OSError as e:
        if e.errno != errno.EAFNOSUPPORT:
            fail(f"socket() without a daemon: {e}")
    say("ok: socket() fails with EAFNOSUPPORT while the daemon is down")
    c.close()
    lst.close()
    say("DOWN-OK")
    sys.stdin.readline()  # the daemon is back, a new guest is booting

    deadline = time.monotonic() + 120
    while True:
        try:
            lst = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
            break
        except OSError as e:
            if time.monotonic() > deadline:
                fail(f"socket() after the restart: {e}")
            time.sleep(0.2)
    lst.bind((socket.VMADDR_CID_ANY, 6000))
    lst.listen()
    say("LISTENING2")
    lst.settimeout(120)
    conn, peer = lst.accept()
    served = 0
    while True:
        b = conn.recv(65536)
        if not b:
            break
        conn.sendall(b)
        served += len(b)
    conn.close()
    say(f"ok: after the restart, served the guest's echo from {peer} ({served} bytes)")
    c = connect_retry(7000, time.monotonic() + 120)
    blob = os.urandom(65536)
    back = bytearray()

    def pump():
        c.sendall(blob)
        c.shutdown(socket.SHUT_WR)

    threading.Thread(target=pump, daemon=True).start()
    c.settimeout(30)
    while True:
        b = c.recv(65536)
        if not b:
            break
        back += b
    if hashlib.sha256(back).digest() != hashlib.sha256(blob).digest():
        fail(f"echo after the restart differs ({len(back)} bytes back)")
    say("ok: after the restart, 64 KiB through the guest's echo, identical")
    say("UP-OK")


if __name__ == "__main__":
    main()
