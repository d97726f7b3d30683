#!/usr/bin/env python3
"""Event-driven python3 echo servers on AF_VSOCK (STREAM), unmodified, under libuvsock-preload.so.

  vsock_async.py KIND PORT EXPECT...

KIND is one of
  selectors     one thread: selectors.DefaultSelector (epoll), non-blocking listener and
                connections, partial sends kept and flushed on EVENT_WRITE
  asyncio       asyncio.start_server(sock=<a bound AF_VSOCK socket>), StreamReader/Writer
  asyncio-sock  asyncio low level: loop.sock_accept, loop.sock_recv, loop.sock_sendall

EXPECT names the guest scenarios that will connect, in uvsock-gtest's own terms, so the server
can check every byte it received (it regenerates the guest's pseudo-random payloads):
  concurrent:N       N connections, connection i sends 1 + (i*7919 mod 3000) bytes of seed
                     0xc0c0+i (uvsock-gtest.c, sc_concurrent)
  stream-echo:S1,S2  one connection sending S1 bytes of seed 0x5e00, then S2 of 0x5e01, ...

The server echoes everything back, closes each connection at its EOF, and exits once as many
connections as expected have ended: status 0 and the line
  "<kind>: conns=N bytes=B max_open=M payloads=exact" iff the multiset of received streams
(sha256) equals the expected one; status 1 with the reason otherwise. It prints
"<kind>: listening on <addr>" when ready.
"""
import asyncio
import collections
import hashlib
import selectors
import socket
import sys

M64 = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def gen(seed, length):
    """uvsock-gtest's gen_fill(seed, 0, buf, length)."""
    base = (seed * 0x100000001B3) & M64
    words = ((length + 7) // 8)
    out = b"".join(splitmix64((base + w) & M64).to_bytes(8, "little") for w in range(words))
    return out[:length]


def expected_digests(specs):
    digests = []
    for spec in specs:
        name, _, arg = spec.partition(":")
        if name == "concurrent":
            for i in range(int(arg)):
                digests.append(hashlib.sha256(gen(0xC0C0 + i, 1 + (i * 7919) % 3000)).digest())
        elif name == "stream-echo":
            h = hashlib.sha256()
            for i, size in enumerate(int(s) for s in arg.split(",")):
                h.update(gen(0x5E00 + i, size))
            digests.append(h.digest())
        else:
            raise SystemExit(f"unknown EXPECT {spec!r}")
    return digests


class Tally:
    """Connections served: what each one sent (sha256), how many were open at once."""

    def __init__(self, kind, want):
        self.kind = kind
        self.want = collections.Counter(want)
        self.nwant = len(want)
        self.got = collections.Counter()
        self.ended = 0
        self.open = 0
        self.max_open = 0
        self.bytes = 0
        self.errors = []

    def opened(self):
        self.open += 1
        self.max_open = max(self.max_open, self.open)

    def closed(self, digest, nbytes, error=None):
        self.open -= 1
        self.ended += 1
        self.bytes += nbytes
        self.got[digest] += 1
        if error is not None:
            self.errors.append(error)

    def done(self):
        return self.ended >= self.nwant

    def verdict(self):
        head = f"{self.kind}: conns={self.ended} bytes={self.bytes} max_open={self.max_open}"
        if self.errors:
            print(f"{head} FAIL: {len(self.errors)} connection errors, first: {self.errors[0]}")
            return 1
        if self.got != self.want:
            missing = sum((self.want - self.got).values())
            extra = sum((self.got - self.want).values())
            print(f"{head} FAIL: {missing} expected payloads missing, {extra} unexpected")
            return 1
        print(f"{head} payloads=exact", flush=True)
        return 0


def listener(port):
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    s.bind((socket.VMADDR_CID_ANY, port))
    s.listen(128)
    return s


def ready(kind, sock):
    print(f"{kind}: listening on {sock.getsockname()}", flush=True)


def serve_selectors(port, tally):
    sel = selectors.DefaultSelector()
    lsock = listener(port)
    lsock.setblocking(False)
    sel.register(lsock, selectors.EVENT_READ, None)
    ready("selectors", lsock)

    class Conn:
        def __init__(self, sock):
            self.sock = sock
            self.hash = hashlib.sha256()
            self.nbytes = 0
            self.out = bytearray()
            self.eof = False

    def finish(c, error=None):
        sel.unregister(c.sock)
        c.sock.close()
        tally.closed(c.hash.digest(), c.nbytes, error)

    while not tally.done():
        for key, events in sel.select(timeout=1.0):
            if key.data is None:
                while True:
                    try:
                        sock, _ = lsock.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sel.register(sock, selectors.EVENT_READ, Conn(sock))
                    tally.opened()
                continue
            c = key.data
            try:
                if events & selectors.EVENT_READ and not c.eof:
                    try:
                        data = c.sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        c.eof = True
                    elif data:
                        c.hash.update(data)
                        c.nbytes += len(data)
                        c.out += data
                if c.out:
                    try:
                        n = c.sock.send(c.out)
                        del c.out[:n]
                    except BlockingIOError:
                        pass
            except OSError as e:
                finish(c, f"{type(e).__name__}: {e}")
                continue
            if c.eof and not c.out:
                finish(c)
                continue
            # wait for writability only while output is pending; stop reading meanwhile once
            # a lot is queued (backpressure towards the guest)
            want = selectors.EVENT_WRITE if c.out else 0
            if not c.eof and len(c.out) < (1 << 20):
                want |= selectors.EVENT_READ
            sel.modify(c.sock, want, c)
    sel.close()
    lsock.close()


async def serve_asyncio(port, tally):
    finished = asyncio.Event()

    async def handle(reader, writer):
        tally.opened()
        h = hashlib.sha256()
        nbytes = 0
        error = None
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                h.update(data)
                nbytes += len(data)
                writer.write(data)
                await writer.drain()
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        tally.closed(h.digest(), nbytes, error)
        if tally.done():
            finished.set()

    lsock = listener(port)
    server = await asyncio.start_server(handle, sock=lsock, backlog=128)
    ready("asyncio", lsock)
    async with server:
        await finished.wait()


async def serve_asyncio_sock(port, tally):
    loop = asyncio.get_running_loop()
    finished = asyncio.Event()
    lsock = listener(port)
    lsock.setblocking(False)
    ready("asyncio-sock", lsock)

    async def handle(sock):
        h = hashlib.sha256()
        nbytes = 0
        error = None
        try:
            while True:
                data = await loop.sock_recv(sock, 65536)
                if not data:
                    break
                h.update(data)
                nbytes += len(data)
                await loop.sock_sendall(sock, data)
        except OSError as e:
            error = f"{type(e).__name__}: {e}"
        sock.close()
        tally.closed(h.digest(), nbytes, error)
        if tally.done():
            finished.set()

    tasks = set()

    async def accept_loop():
        while True:
            sock, _ = await loop.sock_accept(lsock)
            sock.setblocking(False)
            tally.opened()
            t = asyncio.create_task(handle(sock))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    acceptor = asyncio.create_task(accept_loop())
    waiter = asyncio.create_task(finished.wait())
    await asyncio.wait({acceptor, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if acceptor.done():
        acceptor.result()  # raises what killed the accept loop
    acceptor.cancel()
    lsock.close()


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("selectors", "asyncio", "asyncio-sock"):
        print(__doc__)
        return 2
    kind, port = sys.argv[1], int(sys.argv[2])
    tally = Tally(kind, expected_digests(sys.argv[3:]))
    if kind == "selectors":
        serve_selectors(port, tally)
    elif kind == "asyncio":
        asyncio.run(serve_asyncio(port, tally))
    else:
        asyncio.run(serve_asyncio_sock(port, tally))
    return tally.verdict()


if __name__ == "__main__":
    sys.exit(main())
