#!/usr/bin/env python3
"""Medians, ratios and a throughput plot from bench/run.sh's results.csv.

usage: report.py RESULTS_CSV OUT_DIR  -> prints Markdown tables, writes OUT_DIR/throughput.svg
"""
import csv
import statistics
import sys
from collections import defaultdict


def main():
    path, out = sys.argv[1], sys.argv[2]
    runs = defaultdict(list)
    with open(path) as f:
        for row in csv.DictReader(f):
            runs[(row["name"], int(row["size"]), row["metric"])].append(float(row["value"]))
    med = {k: statistics.median(v) for k, v in runs.items()}
    n = max(len(v) for v in runs.values())
    sizes = sorted({k[1] for k in med if k[2] == "bytes_per_s"})
    cols = ["uvsock-h2g", "uvsock-g2h", "unix-stream", "tcp-loopback", "memcpy"]
    print(f"Throughput, MB/s (medians of {n} runs)\n")
    print("| write size | " + " | ".join(cols) + " | h2g / unix | g2h / unix |")
    print("|---" * (len(cols) + 3) + "|")
    for s in sizes:
        v = {c: med.get((c, s, "bytes_per_s")) for c in cols}
        cells = [f"{v[c] / 1e6:.0f}" if v[c] else "-" for c in cols]
        r1 = v["uvsock-h2g"] / v["unix-stream"] if v["uvsock-h2g"] and v["unix-stream"] else 0
        r2 = v["uvsock-g2h"] / v["unix-stream"] if v["uvsock-g2h"] and v["unix-stream"] else 0
        print(f"| {s} | " + " | ".join(cells) + f" | {r1:.2f} | {r2:.2f} |")
    seq = {k: med.get((k, 64, "msgs_per_s")) for k in ("uvsock-seq-h2g", "uvsock-seq-g2h", "unix-seqpacket")}
    if all(seq.values()):
        print("\nSEQPACKET, 64-byte messages, messages/s\n")
        print("| uvsock h2g | uvsock g2h | AF_UNIX SEQPACKET | h2g / unix | g2h / unix |")
        print("|---|---|---|---|---|")
        u = seq["unix-seqpacket"]
        print(f"| {seq['uvsock-seq-h2g']:.0f} | {seq['uvsock-seq-g2h']:.0f} | {u:.0f} | "
              f"{seq['uvsock-seq-h2g'] / u:.2f} | {seq['uvsock-seq-g2h'] / u:.2f} |")
    print("\nPing-pong round trip, 64 bytes, µs (medians of the runs' percentiles)\n")
    print("| | p50 | p99 | p99.9 | p50 / unix |")
    print("|---|---|---|---|---|")
    for mode in ("", "-busy"):
        u = [med.get((f"uvsock-pingpong{mode}", 64, m)) for m in ("p50_us", "p99_us", "p999_us")]
        b = [med.get((f"unix-pingpong{mode}", 64, m)) for m in ("p50_us", "p99_us", "p999_us")]
        if None in u or None in b:
            continue
        name = "busy polling" if mode else "sleeping"
        print(f"| uvsock, {name} | {u[0]:.1f} | {u[1]:.1f} | {u[2]:.1f} | {u[0] / b[0]:.2f} |")
        print(f"| AF_UNIX, {name} | {b[0]:.1f} | {b[1]:.1f} | {b[2]:.1f} | 1.00 |")
    one, many = med.get(("uvsock-h2g-x1", 65536, "bytes_per_s")), med.get(("uvsock-h2g-x64", 65536, "bytes_per_s"))
    if one and many:
        print("\nMany connections: h2g, 64 KiB writes, MB/s\n")
        print("| 1 connection, 1 guest | 64 connections over 4 guests | 64 / 1 |")
        print("|---|---|---|")
        print(f"| {one / 1e6:.0f} | {many / 1e6:.0f} | {many / one:.2f} |")
    big = {k: med.get((k, 65536, "bytes_per_s")) for k in
           ("uvsock-h2g-buf4m", "uvsock-g2h-buf4m", "unix-stream-buf4m", "tcp-loopback-buf4m")}
    if all(big.values()):
        u = big["unix-stream-buf4m"]
        print("\n4 MiB buffers on both sides (uvsock: SO_VM_SOCKETS_BUFFER_SIZE, the guest's "
              "and the program's; kernel: SO_SNDBUF/SO_RCVBUF), 64 KiB writes, MB/s\n")
        print("| uvsock h2g | uvsock g2h | AF_UNIX stream | TCP loopback | h2g / unix | g2h / unix |")
        print("|---|---|---|---|---|---|")
        print(f"| {big['uvsock-h2g-buf4m'] / 1e6:.0f} | {big['uvsock-g2h-buf4m'] / 1e6:.0f} | "
              f"{u / 1e6:.0f} | {big['tcp-loopback-buf4m'] / 1e6:.0f} | "
              f"{big['uvsock-h2g-buf4m'] / u:.2f} | {big['uvsock-g2h-buf4m'] / u:.2f} |")
    e2e = {k: med.get((k, 65536, "bytes_per_s")) for k in ("uvsock-h2g-e2e", "uvsock-g2h-e2e")}
    if all(e2e.values()):
        dev = {k: med.get((k, 65536, "bytes_per_s")) for k in ("uvsock-h2g", "uvsock-g2h")}
        print("\nEnd to end (host program to a program inside uvsock-guest, through both "
              "control sockets) against device only (guest in rxonly/txonly), 64 KiB\n")
        print("| | end to end | device only | e2e / device |")
        print("|---|---|---|---|")
        for d in ("h2g", "g2h"):
            a, b = e2e[f"uvsock-{d}-e2e"], dev[f"uvsock-{d}"]
            print(f"| {d}, MB/s | {a / 1e6:.0f} | {b / 1e6:.0f} | {a / b:.2f} |" if b else "")
        for mode, label in (("", "sleeping"), ("-busy", "busy polling")):
            a = med.get((f"uvsock-pingpong{mode}-e2e", 64, "p50_us"))
            b = med.get((f"uvsock-pingpong{mode}", 64, "p50_us"))
            if a and b:
                print(f"| ping-pong 64 B p50, {label}, µs | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    conn = {k: med.get((k, 1, "conns_per_s")) for k in
            ("uvsock-connrate", "unix-connrate", "tcp-connrate")}
    if all(conn.values()):
        print("\nConnections per second (socket, connect, one byte echoed, close)\n")
        print("| uvsock | AF_UNIX | TCP loopback | uvsock / unix |")
        print("|---|---|---|---|")
        print(f"| {conn['uvsock-connrate']:.0f} | {conn['unix-connrate']:.0f} | "
              f"{conn['tcp-connrate']:.0f} | {conn['uvsock-connrate'] / conn['unix-connrate']:.3f} |")
    rows = [("h2g 64 KiB, bytes/s", "uvsock-h2g", 65536, "bytes_per_s"),
            ("g2h 64 KiB, bytes/s", "uvsock-g2h", 65536, "bytes_per_s"),
            ("SEQPACKET h2g 64 B, messages/s", "uvsock-seq-h2g", 64, "msgs_per_s"),
            ("SEQPACKET g2h 64 B, messages/s", "uvsock-seq-g2h", 64, "msgs_per_s"),
            ("ping-pong 64 B p50, µs (lower is better)", "uvsock-pingpong", 64, "p50_us")]
    shim = [(label, med.get((n, s, m)), med.get((n + "-libc", s, m))) for label, n, s, m in rows]
    if any(b for _, _, b in shim):
        print("\nThrough libuvsock-preload.so (plain socket calls) against the native API\n")
        print("| | native | shim | shim / native |")
        print("|---|---|---|---|")
        for label, a, b in shim:
            if a and b:
                print(f"| {label} | {a:.4g} | {b:.4g} | {b / a:.2f} |")
    svg(out + "/throughput.svg", sizes, cols, med)


def svg(path, sizes, cols, med):
    """Throughput against write size, log-log, one line per series."""
    import math
    w, h, m = 720, 420, 60
    vals = [med[(c, s, "bytes_per_s")] for c in cols for s in sizes if (c, s, "bytes_per_s") in med]
    lo, hi = math.log10(min(vals) / 2), math.log10(max(vals) * 2)
    x = lambda s: m + (w - 2 * m) * (math.log2(s) - math.log2(sizes[0])) / max(1, math.log2(sizes[-1]) - math.log2(sizes[0]))
    y = lambda v: h - m - (h - 2 * m) * (math.log10(v) - lo) / (hi - lo)
    colors = ["#d62728", "#ff7f0e", "#1f77b4", "#2ca02c", "#7f7f7f"]
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
             f'<rect width="{w}" height="{h}" fill="white"/>',
             f'<text x="{w / 2}" y="20" text-anchor="middle">Throughput against write size (MB/s, log scales)</text>',
             f'<line x1="{m}" y1="{h - m}" x2="{w - m}" y2="{h - m}" stroke="black"/>',
             f'<line x1="{m}" y1="{m}" x2="{m}" y2="{h - m}" stroke="black"/>']
    for s in sizes:
        parts.append(f'<text x="{x(s):.0f}" y="{h - m + 16}" text-anchor="middle">{s}</text>')
    for e in range(math.ceil(lo), math.floor(hi) + 1):
        parts.append(f'<text x="{m - 6}" y="{y(10 ** e) + 4:.0f}" text-anchor="end">{10 ** e / 1e6:g}</text>')
        parts.append(f'<line x1="{m}" y1="{y(10 ** e):.0f}" x2="{w - m}" y2="{y(10 ** e):.0f}" stroke="#ddd"/>')
    for i, c in enumerate(cols):
        pts = [(x(s), y(med[(c, s, "bytes_per_s")])) for s in sizes if (c, s, "bytes_per_s") in med]
        if not pts:
            continue
        parts.append(f'<polyline fill="none" stroke="{colors[i]}" stroke-width="2" points="' +
                     " ".join(f"{a:.0f},{b:.0f}" for a, b in pts) + '"/>')
        parts.append(f'<text x="{w - m + 4}" y="{m + 16 * i}" fill="{colors[i]}">{c}</text>')
    parts.append(f'<text x="{w / 2}" y="{h - 16}" text-anchor="middle">bytes per write</text></svg>')
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
