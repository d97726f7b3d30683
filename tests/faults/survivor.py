#!/usr/bin/env python3
"""A host program that lives through many uvsockd restarts (run under libuvsock-preload.so).

For each line "go" on stdin: connect to the guest's echo (CID 3, port 5000; retried while the
daemon or the guest is coming up), check an echo, print "OK <n> fds=<open fds> " and wait in
recv until the connection ends (the test kills the daemon meanwhile), then print
"DOWN <n> <how>" (eof, or the error's name) and what a send and a new socket give then.
"""
import errno
import os
import socket
import sys
import time

DEADLINE_S = 20


def fds():
    return len(os.listdir("/proc/self/fd"))


def connect():
    end = time.monotonic() + DEADLINE_S
    while True:
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        try:
            s.connect((3, 5000))
            return s
        except OSError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def main():
    n = 0
    for line in sys.stdin:
        if line.strip() != "go":
            continue
        n += 1
        s = connect()
        s.sendall(b"ping %d" % n)
        got = b""
        while len(got) < len(b"ping %d" % n):
            got += s.recv(100)
        if got != b"ping %d" % n:
            print("FAIL echo %r" % got, flush=True)
            return 1
        print("OK %d fds=%d" % (n, fds()), flush=True)
        s.settimeout(DEADLINE_S)
        try:
            how = "eof" if s.recv(100) == b"" else "data"
        except OSError as e:
            how = errno.errorcode.get(e.errno, str(e.errno))
        try:
            s.send(b"x")
            after = "send ok"
        except OSError as e:
            after = "send " + errno.errorcode.get(e.errno, str(e.errno))
        try:
            socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM).close()
            after += ", socket ok"
        except OSError as e:
            after += ", socket " + errno.errorcode.get(e.errno, str(e.errno))
        s.close()
        print("DOWN %d %s, %s" % (n, how, after), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
