#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""Write the seed corpus of each fuzz target: a few valid scenarios in each target's input
language (the action encoding described at the top of tests/fuzz/fuzz_<target>.c), so that
fuzzing starts from connections, chains and messages that work instead of finding them first.

    python3 tests/fuzz/gen_corpus.py [OUTDIR]    (default: tests/fuzz/corpus)

Seeds are named seed-*; regression inputs found by fuzzing (crash-*, named after what they
found) sit next to them and are never rewritten by this script. If a target's encoding changes,
change its section here and regenerate.
"""
import os
import struct
import sys


def u8(v):
    return struct.pack("<B", v & 0xFF)


def u16(v):
    return struct.pack("<H", v & 0xFFFF)


def u32(v):
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v):
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


# --- pkt_engine -------------------------------------------------------------------------

(P_PKT, P_RAW, P_DRAIN, P_CLOSE, P_SHUTDOWN, P_CONSUME, P_WRITE, P_ACCEPT, P_CONNECT, P_LISTEN,
 P_BUFSIZE, P_QUIRK, P_ABORT, P_TICK, P_DETACH) = range(15)
STREAM, SEQPACKET = 1, 2
REQUEST, RESPONSE, RST, SHUTDOWN, RW, CREDIT_UPDATE, CREDIT_REQUEST = range(1, 8)
EOM, EOR = 1, 2


def lport(i):
    """port_sel() byte for listener port 1234 + i."""
    return u8(i << 2 | 1)


def gport(i):
    """port_sel() byte for guest port 5000 + i."""
    return u8(i << 2 | 2)


def pkt(typ, op, dst=lport(0), src=gport(0), flags=0, length=0, peer=0):
    """A compact guest packet between explicit ports (usual credit fields, one segment)."""
    b = u8(P_PKT) + u8(1 | peer << 2) + u8(op << 2 | typ) + dst + src + u8(flags)
    b += u8(0) + u8(0)  # buf_alloc 256 KiB, fwd_cnt 0
    if op == RW:
        b += u16(length)
    return b + u8(0) + u8(0)  # payload == len, one segment


def pkt_to(sock, op, flags=0, length=0):
    """A compact guest packet to socket number sock, from the guest's end of it."""
    b = u8(P_PKT) + u8(sock << 3) + u8(op << 2) + u8(flags) + u8(0) + u8(0)
    if op == RW:
        b += u16(length)
    return b + u8(0) + u8(0)


def drain(peer=0, room=0, cnt=0):
    """room: 0 a 4 KiB buffer, 1 a 64 KiB one; cnt 0: until nothing is pending."""
    return u8(P_DRAIN) + u8(peer | room << 1) + u8(cnt) + u8(0)


def consume(sock, n):
    return u8(P_CONSUME) + u8(sock) + u32(n)


def write(sock, n):
    """n odd: the message carries EOR."""
    return u8(P_WRITE) + u8(sock) + u16(n)


def pkt_engine_seeds():
    backlog = u8(4) + u8(4)
    # 0 and 1 are the listeners; accepted and created sockets follow in order
    stream = (backlog + pkt(STREAM, REQUEST) + drain() + u8(P_ACCEPT) + u8(0)
              + pkt(STREAM, RW, length=100) + consume(2, 100) + write(2, 3000) + drain()
              + pkt(STREAM, CREDIT_REQUEST) + drain() + pkt(STREAM, SHUTDOWN, flags=1)
              + u8(P_CLOSE) + u8(2) + drain() + pkt(STREAM, RST) + drain())
    seqpacket = (backlog + pkt(SEQPACKET, REQUEST, dst=lport(1)) + drain()
                 + u8(P_ACCEPT) + u8(1)
                 + pkt(SEQPACKET, RW, dst=lport(1), flags=EOM | EOR, length=50)
                 + pkt(SEQPACKET, RW, dst=lport(1), length=30)
                 + pkt(SEQPACKET, RW, dst=lport(1), flags=EOM, length=20) + consume(2, 100)
                 + write(2, 201) + write(2, 64) + drain(room=1) + drain()
                 + pkt(SEQPACKET, SHUTDOWN, dst=lport(1), flags=3) + drain()
                 + u8(P_CLOSE) + u8(2) + drain())
    # the host connects to guest port 5001; the guest answers and both send
    connect = (backlog + u8(P_CONNECT) + u8(0) + gport(1) + drain() + pkt_to(2, RESPONSE)
               + pkt_to(2, RW, length=700) + write(2, 5000) + drain() + consume(2, 700)
               + drain() + u8(P_SHUTDOWN) + u8(2) + u8(2) + drain() + pkt_to(2, SHUTDOWN, 3)
               + drain())
    # a connect that times out, one refused (SEQPACKET to the guest without it), a close
    # that the guest never answers
    timeouts = (backlog + u8(P_CONNECT) + u8(2) + gport(2) + u8(P_CONNECT) + u8(6) + gport(2)
                + drain(peer=1) + u8(P_TICK) + u8(1) + pkt(STREAM, REQUEST) + drain()
                + u8(P_ACCEPT) + u8(0) + u8(P_CLOSE) + u8(4) + drain() + u8(P_TICK) + u8(2)
                + drain())
    # headers as they come: every parse error once, then an RST for no connection
    hdr = u64(3) + u64(2) + u32(5000) + u32(1234) + u32(10) + u16(STREAM) + u16(RW)
    hdr += u32(0) + u32(65536) + u32(0)
    raw = backlog + u8(P_RAW) + u8(0) + u16(5) + hdr + u8(0)  # len over buffer
    raw += u8(P_RAW) + u8(0) + u16(10) + hdr[:8] + u64(7) + hdr[16:] + u8(0)  # bad dst
    raw += u8(P_RAW) + u8(0) + u16(10) + hdr + u8(1) + u16(20)  # fine, two segments
    raw += drain()
    # a guest with connections in every state goes away and comes back
    detach = (backlog + pkt(STREAM, REQUEST) + u8(P_CONNECT) + u8(0) + gport(3)
              + pkt(SEQPACKET, REQUEST, dst=lport(1), src=gport(4)) + drain()
              + u8(P_DETACH) + u8(0) + pkt(STREAM, REQUEST) + drain() + u8(P_ACCEPT) + u8(0))
    # credit: a small buffer, a guest that overruns it, a socket layer that refuses payload
    credit = (backlog + pkt(STREAM, REQUEST) + drain() + u8(P_ACCEPT) + u8(0)
              + u8(P_BUFSIZE) + u8(2) + u8(3 | 4 << 2) + drain()
              + pkt(STREAM, RW, length=3000) + pkt(STREAM, RW, length=3000) + drain()
              + pkt(STREAM, REQUEST, src=gport(1)) + drain() + u8(P_QUIRK) + u8(3) + u8(1)
              + pkt(STREAM, RW, src=gport(1), length=10) + drain())
    return {"stream": stream, "seqpacket": seqpacket, "connect": connect,
            "timeouts": timeouts, "raw": raw, "detach": detach, "credit": credit}


# --- virtq ------------------------------------------------------------------------------

(V_DESC, V_INDIRECT, V_WRITE, V_POST, V_AVAIL_IDX, V_AVAIL_FLAGS, V_POP, V_PUSH, V_PUBLISH,
 V_NOTIFY, V_UNPOP, V_TRANSLATE) = range(12)
NEXT, WRITE, INDIRECT = 1, 2, 4


def at(k):
    """Region selector: at guest physical k * 64 KiB."""
    return k << 2 | 1


def vq_setup(log2, indirect=False, regions=((at(0), 0x2000), (at(1), 0x4000))):
    """Queue of 2^log2 entries; regions as (selector, size); 0 as selector: right after the
    previous region. Device and guest indexes start at 0."""
    b = u8(log2 | (0x80 if indirect else 0)) + u8(len(regions) - 1)
    for sel, size in regions:
        b += u8(sel) + u16(size)
    return b + u16(0) + u16(0)


def gpa(region, off):
    """gpa_sel(): offset off (< the region's size) into region."""
    return u8(region << 2) + u16(off)


def vlen(n):
    """len_sel(): n bytes."""
    return u8(n << 2) if n < 64 else u8(1) + u16(n)


def desc(index, where, n, flags, nxt=0):
    b = u8(V_DESC) + where + vlen(n) + u8(flags)
    if flags & INDIRECT:
        b += u8(0)
    return b + u16(nxt) + u16(index)


def post(*heads):
    b = u8(V_POST) + u8(len(heads) - 1)
    for h in heads:
        b += u8(0) + u8(h)
    return b


def pop(n=1):
    return u8(V_POP) + u8(n - 1)


def virtq_seeds():
    # header and a writable buffer, as a guest's rx/tx packet; used and published
    simple = (vq_setup(4) + desc(0, gpa(1, 0), 44, NEXT, 1) + desc(1, gpa(1, 0x100), 4096, WRITE)
              + post(0) + pop() + u8(V_PUSH) + u8(1) + u32(4140) + u8(V_PUBLISH)
              + u8(V_NOTIFY) + u8(1) + post(1) + pop() + u8(V_UNPOP) + pop())
    # an indirect table of two entries in region 1
    indirect = (vq_setup(4, indirect=True) + desc(0, gpa(1, 0x1000), 32, INDIRECT)
                + u8(V_INDIRECT) + gpa(1, 0x1000) + gpa(1, 0x2000) + vlen(44) + u8(NEXT)
                + u16(1) + u8(V_INDIRECT) + gpa(1, 0x1010) + gpa(1, 0x3000) + vlen(1000)
                + u8(WRITE) + u16(0) + post(0) + pop())
    # a loop, a bad next, a readable after a writable
    bad = (vq_setup(3) + desc(0, gpa(1, 0), 8, NEXT, 1) + desc(1, gpa(1, 8), 8, NEXT, 0)
           + desc(2, gpa(1, 0), 8, NEXT, 9) + desc(3, gpa(1, 0), 8, WRITE | NEXT, 4)
           + desc(4, gpa(1, 0), 8, 0) + post(0, 2, 3) + pop(3) + u8(V_AVAIL_IDX) + u16(100)
           + pop())
    # a buffer across the boundary between regions 0 and 1 (contiguous in guest memory)
    # gpa_sel() case 1: 3 bytes before the end of region 0 ((0x31 >> 2) % 3 == 0)
    cross = (vq_setup(2, regions=((at(0), 0x1000), (0, 0x1000), (at(2), 0x800)))
             + desc(0, u8(0x31), 256, WRITE) + post(0) + pop() + u8(V_TRANSLATE)
             + gpa(2, 0x10) + vlen(16))
    return {"simple": simple, "indirect": indirect, "bad": bad, "cross": cross}


# --- sockbuf ----------------------------------------------------------------------------

S_PUT, S_SEND, S_WRITE, S_READ, S_APP_IDX, S_APP_DATA, S_DEV_IDX, S_DEV_DATA = range(8)


def sb_setup(seq, log2):
    return u8((1 if seq else 0) | (log2 - 3) << 1) + u8(0)


def put(n, flags=0):
    return u8(S_PUT) + u16(n) + u8(flags) + u8(0)


def send(max_):
    """Peek at most max_ bytes and take all of them."""
    return u8(S_SEND) + u16(max_ - 1) + u8(0) + u16(0) + u8(0)


def app_write(n, eor=False):
    """Write (the rest of) a message of n bytes."""
    return u8(S_WRITE) + u16(n - 1 | (0x8000 if eor else 0)) + u8(0)


def app_read(cap):
    return u8(S_READ) + u16(cap) + u8(1) + u8(0)


def sockbuf_seeds():
    stream = (sb_setup(False, 12) + put(1000) + put(3000) + app_read(2500) + app_read(4096)
              + app_write(3000) + send(1000) + send(4096) + app_write(4096) + send(65535))
    seq = (sb_setup(True, 12) + put(100) + put(50, EOM | EOR) + put(10, EOM) + app_read(200)
           + app_read(5) + app_write(300, eor=True) + app_write(5000) + send(100) + send(4096)
           + send(4096) + send(4096))
    hostile = (sb_setup(True, 12) + app_write(100) + u8(S_APP_DATA) + u8(1) + u16(0) + u8(8)
               + u32(5000) + u32(1) + send(4096) + u8(S_APP_IDX) + u8(0) + u8(3) + u32(99999)
               + put(10, EOM))
    return {"stream": stream, "seqpacket": seq, "hostile": hostile}


# --- ctl --------------------------------------------------------------------------------

(C_REQ, C_RAW, C_CLIENT, C_ANCHOR, C_SWRITE, C_SREAD, C_SPOKE, C_GPKT, C_GDRAIN, C_GTICK,
 C_GDETACH, C_PIPE) = range(12)
HELLO, SOCKET, BIND, LISTEN, CONNECT, ACCEPT, SHUT, SETOPT, GETOPT, GETNAME, CLOSE, NOTIFY, \
    ATTACH, FORK = range(1, 15)
# indexes into val32()'s table
K = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 7, "AF_VSOCK": 8, 1023: 9, 1024: 10,
     1234: 11, 5000: 12, "VERSION": 13, "ANY": 14, 64: 15, 4096: 16}


def req_fields(op, sock=None, a=0, b=0, val=0, fd=0):
    """sock: the index of an id this program was given, or None for 0."""
    idsel = 0x86 if sock is None else sock << 3  # 0x86: "case 3" with the 0x80 bit: id 0
    return u8(op - 1) + u8(op) + u8(idsel) + u8(K[a]) + u8(K[b]) + u8(val) + u8(fd)


def req(op, sock=None, a=0, b=0, val=0, client=0, fd=0):
    return u8(C_REQ) + u8(client) + req_fields(op, sock, a, b, val, fd)


def pipe(*elements, client=0):
    """Requests (req_fields()) and anchor closes (close_anchor()) sent before the server runs."""
    return u8(C_PIPE) + u8(client) + u8(len(elements) - 2) + b"".join(elements)


def close_anchor(i):
    return u8(i << 2 | 3)


def gpkt(slot, op, flags=0, length=0, typ=0):
    b = u8(C_GPKT) + u8(slot << 1) + u8(op << 1 | typ) + u8(0) + u8(flags) + u8(0) + u8(0)
    if op == RW:
        b += u16(length)
    return b


def ctl_seeds():
    hello = req(HELLO, a="VERSION")
    # a listener on 1234: a guest connects, the program accepts, data both ways, close
    listen = (hello + req(SOCKET, a=1) + req(BIND, sock=0, a="ANY", b=1234)
              + req(LISTEN, sock=0, a=4) + gpkt(0, REQUEST) + u8(C_GDRAIN) + u8(0)
              + req(ACCEPT, sock=0) + gpkt(1, RW, length=1000) + u8(C_SREAD) + u8(0)
              + u16(4096) + u8(2) + u8(C_SWRITE) + u8(0) + u16(3000) + u8(1 << 2)
              + u8(C_GDRAIN) + u8(0) + req(SHUT, sock=1, a=2) + u8(C_GDRAIN) + u8(0)
              + u8(C_ANCHOR) + u8(1 << 3 | 7) + gpkt(1, RST) + req(CLOSE, sock=1)
              + u8(C_ANCHOR) + u8(0 << 3 | 7))
    # the program connects to guest 3 port 5000, the guest answers, SEQPACKET data, options
    connect = (hello + req(SOCKET, a=2) + req(SETOPT, sock=0, a="AF_VSOCK", b=0, val=4)
               + req(GETOPT, sock=0, a="AF_VSOCK", b=6) + req(CONNECT, sock=0, a=3, b=5000)
               + u8(C_GDRAIN) + u8(0) + gpkt(0, RESPONSE) + gpkt(0, RW, flags=3, length=77)
               + u8(C_SREAD) + u8(0) + u16(100) + u8(2) + req(GETNAME, sock=0)
               + u8(C_ANCHOR) + u8(0) + u8(C_ANCHOR) + u8(4) + u8(C_GDRAIN) + u8(0)
               + u8(C_GTICK) + u8(3))
    # a second program attaches to the first one's socket with its anchor, a bad request
    attach = (hello + req(SOCKET, a=1) + u8(C_CLIENT) + u8(1) + req(HELLO, a="VERSION", client=1)
              + req(ATTACH, client=1, fd=1) + req(BIND, sock=0, client=1, a="ANY", b=1024)
              + u8(C_RAW) + u8(1) + u8(5) + b"\x01\x00\x00\x00\x00" + u8(C_CLIENT) + u8(1)
              + req(CONNECT, sock=0, a=7, b=1))
    # requests queued back to back: the program closes its socket between two of them, so the
    # server reads the CLOSE before it sees the hang-up
    pipelined = (hello + req(SOCKET, a=1) + req(SOCKET, a=2)
                 + pipe(u8(0) + req_fields(HELLO, a="VERSION"), close_anchor(0),
                        u8(0) + req_fields(CLOSE, sock=0), u8(0) + req_fields(GETNAME, sock=1),
                        u8(0) + req_fields(NOTIFY, sock=1, a=7)))
    # segment reuse: a connection's segment, written by the program, goes to its next one
    # (wiped), not to another program's; after the program forks, to nobody's
    def conn_cycle(sock, n, client=0, fork=False):
        """sock: the program's n-th id; n: the segment's and anchor's place in all of them"""
        return (req(SOCKET, a=1, client=client)
                + req(CONNECT, sock=sock, a=3, b=5000, client=client)
                + u8(C_GDRAIN) + u8(0) + gpkt(0, RESPONSE) + gpkt(0, RW, length=500)
                + u8(C_SWRITE) + u8(n) + u16(3000) + u8(1 << 2) + u8(C_GDRAIN) + u8(0)
                + (req(FORK, client=client) if fork else b"")
                + u8(C_ANCHOR) + u8(n << 3 | 7) + u8(C_GDRAIN) + u8(0) + gpkt(0, RST))
    reuse = (hello + conn_cycle(0, 0) + conn_cycle(1, 1) + u8(C_CLIENT) + u8(1)
             + req(HELLO, a="VERSION", client=1) + conn_cycle(0, 2, client=1)
             + conn_cycle(2, 3, fork=True) + conn_cycle(3, 4))
    return {"listen": listen, "connect": connect, "attach": attach, "pipelined": pipelined,
            "reuse": reuse}


# --- vhumsg ------------------------------------------------------------------------------
# One message: request selector (index into fuzz_vhumsg.c's requests[]; 0x80 | ... for a raw
# u32), flags selector (bit 0-1: 0 version 1, 1 with NEED_REPLY; bit 2: a payload built for
# the request; bit 3: a raw size), descriptors (count, then kind and size selector each),
# then the payload's own bytes.
VHU_REQ = {1: 0, 2: 1, 3: 2, 4: 3, 5: 4, 8: 5, 9: 6, 10: 7, 11: 8, 12: 9, 13: 10, 14: 11,
           15: 12, 16: 13, 17: 14, 18: 15, 24: 16}
FD_OTHER, FD_FILE, FD_EVENTFD = range(3)


def vmsg(req, fds=(), built=b"", raw=None, need_reply=False):
    """fds: (kind, size selector byte) pairs; built: the build_payload() input; raw: bytes
    sent as they are (a raw payload instead of a built one)."""
    b = u8(VHU_REQ[req])
    flags = 1 if need_reply else 0
    if raw is None:
        flags |= 4
    b += u8(flags) + u8(len(fds))
    for kind, sel in fds:
        b += u8(kind) + u8(sel)
    if raw is None:
        return b + built
    return b + u16(len(raw)) + raw


def mem1():
    # one region of 1 MiB (size selector 0 | 8 << 2: 1 << 20) at MEM_UADDR, offset 0, file 1 MiB
    return vmsg(5, fds=[(FD_FILE, 8 << 2)],
                built=u8(1) + u64(0) + u8(8 << 2) + u8(0) + u16(0) + u8(0))


def vring(q, num_log2, off_desc):
    # NUM (selector: index q, 1 << num_log2), ADDR inside memory, KICK, CALL, ENABLE
    return (vmsg(8, built=u8((num_log2 << 2) | q))
            + vmsg(9, built=u8(q) + u8(0) + u16(off_desc) + u8(0) + u16(off_desc + 0x100)
                   + u8(0) + u16(off_desc + 0x200))
            + vmsg(12, fds=[(FD_EVENTFD, 0)], built=u16(q))
            + vmsg(13, fds=[(FD_EVENTFD, 0)], built=u16(q))
            + vmsg(18, built=u8((0 << 2) | q)))


def vhumsg_seeds():
    hello = (vmsg(3, raw=b"") + vmsg(1, raw=b"") + vmsg(2, raw=u64(1 << 32))
             + vmsg(15, raw=b"") + vmsg(16, raw=u64(0x208)))
    attach = hello + mem1() + vring(0, 7, 0) + vring(1, 7, 0x1000)
    # then a larger ring under the same addresses, and a smaller memory table
    grow = attach + vmsg(8, built=u8((15 << 2) | 1)) + vmsg(
        5, fds=[(FD_FILE, 4 << 2)], built=u8(1) + u64(0) + u8(4 << 2) + u8(0) + u16(0) + u8(0))
    # refusals: a short SET_VRING_NUM, a region past its file, a pipe as call fd
    bad = (hello + vmsg(8, raw=u32(0)) + vmsg(5, fds=[(FD_FILE, 1)], built=u8(1) + u64(0)
                                               + u8(8 << 2) + u8(0) + u16(0) + u8(0))
           + vmsg(13, fds=[(FD_OTHER, 0)], built=u16(0)))
    return {"attach": attach, "grow": grow, "bad": bad}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    targets = {"pkt_engine": pkt_engine_seeds(), "virtq": virtq_seeds(),
               "sockbuf": sockbuf_seeds(), "ctl": ctl_seeds(), "vhumsg": vhumsg_seeds()}
    for target, seeds in targets.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
    print("wrote", sum(len(s) for s in targets.values()), "seeds under", out)


if __name__ == "__main__":
    main()
