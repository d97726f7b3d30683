#!/usr/bin/env python3
"""Echo servers that hand vsock connections to other processes (run under the shim).

Port 5000: each connection becomes stdin and stdout of `cat`, started by exec (the inetd /
ncat --exec pattern): cat is an unmodified program that inherited the socket across exec.
Port 5002: each connection is served by a fork()ed child while the parent closes its copy
and goes on accepting (the socat fork / preforking pattern).
Port 5004: each connection is passed with SCM_RIGHTS to a worker forked at startup, before
the connection existed (the worker's shim takes the received fd in as a vsock socket).
Usage: exec_fork_server.py N_EXEC N_FORK N_PASS
"""
import os
import select
import socket
import subprocess
import sys


def listener(port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.bind((socket.VMADDR_CID_ANY, port))
    s.listen(16)
    return s


def echo(conn):
    while True:
        d = conn.recv(65536)
        if not d:
            break
        conn.sendall(d)
    conn.close()


def worker(chan, n):
    """Serve n connections received over chan (SCM_RIGHTS), one after the other."""
    for _ in range(n):
        _, fds, _, _ = socket.recv_fds(chan, 16, 1)
        conn = socket.socket(fileno=fds[0])
        if conn.family != socket.AF_VSOCK:
            print(f"FAIL: passed fd is family {conn.family}", flush=True)
            os._exit(1)
        echo(conn)
    os._exit(0)


def main():
    n_exec, n_fork, n_pass = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    chan, wchan = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    wpid = os.fork()
    if wpid == 0:
        chan.close()
        worker(wchan, n_pass)
    wchan.close()
    a, b, c = listener(5000), listener(5002), listener(5004)
    print("LISTENING", flush=True)
    procs, kids, passed = [], [wpid], 0
    while len(procs) < n_exec or len(kids) < n_fork + 1 or passed < n_pass:
        r, _, _ = select.select([a, b, c], [], [], 120)
        if not r:
            print("FAIL: no connection for 120 s", flush=True)
            sys.exit(1)
        if a in r:
            conn, _ = a.accept()
            procs.append(subprocess.Popen(["cat"], stdin=conn, stdout=conn))
            conn.close()
        if b in r:
            conn, _ = b.accept()
            pid = os.fork()
            if pid == 0:
                a.close()
                b.close()
                c.close()
                echo(conn)
                os._exit(0)
            conn.close()
            kids.append(pid)
        if c in r:
            conn, _ = c.accept()
            socket.send_fds(chan, [b"c"], [conn.fileno()])
            conn.close()
            passed += 1
    bad = 0
    for p in procs:
        if p.wait(120) != 0:
            bad += 1
    for pid in kids:
        _, st = os.waitpid(pid, 0)
        if st != 0:
            bad += 1
    print(f"served exec={len(procs)} fork={len(kids) - 1} passed={passed} bad={bad}",
          flush=True)
    print("DONE", flush=True)
    sys.stdin.readline()  # keep the listeners until the test has counted sockets
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
