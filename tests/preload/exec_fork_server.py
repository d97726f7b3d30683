#!/usr/bin/env python3
"""Echo servers that hand vsock connections to other processes (run under the shim).

Port 5000: each connection becomes stdin and stdout of `cat`, started by exec (the inetd /
ncat --exec pattern): cat is an unmodified program that inherited the socket across exec.
Port 5002: each connection is served by a fork()ed child while the parent closes its copy
and goes on accepting (the socat fork / preforking pattern).
Usage: exec_fork_server.py N_EXEC N_FORK
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


def main():
    n_exec, n_fork = int(sys.argv[1]), int(sys.argv[2])
    a, b = listener(5000), listener(5002)
    print("LISTENING", flush=True)
    procs, kids = [], []
    while len(procs) < n_exec or len(kids) < n_fork:
        r, _, _ = select.select([a, b], [], [], 120)
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
                while True:
                    d = conn.recv(65536)
                    if not d:
                        break
                    conn.sendall(d)
                conn.close()
                os._exit(0)
            conn.close()
            kids.append(pid)
    bad = 0
    for p in procs:
        if p.wait(120) != 0:
            bad += 1
    for pid in kids:
        _, st = os.waitpid(pid, 0)
        if st != 0:
            bad += 1
    print(f"served exec={len(procs)} fork={len(kids)} bad={bad}", flush=True)
    print("DONE", flush=True)
    sys.stdin.readline()  # keep the listeners until the test has counted sockets
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
