#!/usr/bin/env bash
# One command for the uvsock benchmark (doc/BENCHMARKS.md): uvsockd with nine userspace
# guests (uvsock-guest: rxonly on CID 3, txonly on CID 4, echo on CID 5, SEQPACKET rxonly on
# CID 6 and txonly on CID 7, rxonly on CIDs 8-11 for 64 connections at once), uvsock-perf
# against them and, in the same invocation, the kernel's local IPC baselines (AF_UNIX
# stream, TCP loopback, memcpy). Each figure is the median of ROUNDS runs. Prints a table
# with ratios, writes OUT/results.csv (every run) and OUT/throughput.svg.
# usage: bench/run.sh [BUILD_DIR] [OUT_DIR] [ROUNDS] [SECONDS]
set -euo pipefail
build=${1:-build}
out=${2:-bench/out}
rounds=${3:-3}
secs=${4:-2}
sizes="64 1024 4096 16384 65536"
g2h_bytes=$((512 * 1024 * 1024))
here=$(cd "$(dirname "$0")" && pwd)
perf=$build/examples/uvsock-perf
guest=$build/examples/uvsock-guest
daemon=$build/pmd/uvsockd
shim=$(cd "$build/preload" && pwd)/libuvsock-preload.so
for b in "$perf" "$guest" "$daemon" "$shim"; do
	[ -x "$b" ] || { echo "missing $b: ninja -C $build first" >&2; exit 1; }
done
mkdir -p "$out"
csv=$out/results.csv
echo "name,size,metric,value" >"$csv"
tmp=$(mktemp -d /tmp/uvsock-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
"$daemon" --vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" \
	--vm "cid=5,socket=$tmp/vm5.sock" --vm "cid=6,socket=$tmp/vm6.sock" \
	--vm "cid=7,socket=$tmp/vm7.sock" --vm "cid=8,socket=$tmp/vm8.sock" \
	--vm "cid=9,socket=$tmp/vm9.sock" --vm "cid=10,socket=$tmp/vm10.sock" \
	--vm "cid=11,socket=$tmp/vm11.sock" --control "$tmp/ctl.sock" >"$tmp/uvsockd.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do [ -S "$tmp/ctl.sock" ] && break; sleep 0.1; done
export UVSOCK_CONTROL=$tmp/ctl.sock
"$guest" --socket "$tmp/vm3.sock" --mode rxonly --listen 5000 --conns 1000000 >"$tmp/g3.log" 2>&1 &
pids+=("$!")
"$guest" --socket "$tmp/vm4.sock" --mode txonly --listen 5000 --conns 1000000 \
	--bytes "$g2h_bytes" >"$tmp/g4.log" 2>&1 &
pids+=("$!")
"$guest" --socket "$tmp/vm5.sock" --mode echo --listen 5000 --conns 1000000 >"$tmp/g5.log" 2>&1 &
pids+=("$!")
"$guest" --socket "$tmp/vm6.sock" --mode rxonly --seqpacket --listen 5000 --conns 1000000 \
	>"$tmp/g6.log" 2>&1 &
pids+=("$!")
"$guest" --socket "$tmp/vm7.sock" --mode txonly --seqpacket --msg-size 64 --listen 5000 \
	--conns 1000000 --bytes $((64 * 1024 * 1024)) >"$tmp/g7.log" 2>&1 &
pids+=("$!")
for c in 8 9 10 11; do
	"$guest" --socket "$tmp/vm$c.sock" --mode rxonly --listen 5000 --conns 1000000 \
		>"$tmp/g$c.log" 2>&1 &
	pids+=("$!")
done
sleep 1

run() { # run ARGS...: one uvsock-perf invocation, results appended to the CSV
	"$perf" --csv "$csv" "$@" >/dev/null
}
run_shim() { # the same through libuvsock-preload.so (plain socket calls): "-libc" results
	LD_PRELOAD=$shim "$perf" --libc --csv "$csv" "$@" >/dev/null
}
for r in $(seq "$rounds"); do
	for s in $sizes; do
		run bulk --cid 3 --port 5000 --dir h2g --size "$s" --seconds "$secs"
		run bulk --cid 4 --port 5000 --dir g2h --size "$s"
		run baseline unix --size "$s" --seconds "$secs"
		run baseline tcp --size "$s" --seconds "$secs"
		run baseline memcpy --size "$s" --seconds 1
	done
	run bulk --seqpacket --cid 6 --port 5000 --dir h2g --size 64 --seconds "$secs"
	run bulk --seqpacket --cid 7 --port 5000 --dir g2h --size 64
	run baseline unix-seqpacket --size 64 --seconds "$secs"
	run pingpong --cid 5 --port 5000 --size 64 --count 20000
	run multi --cid 8 --guests 4 --port 5000 --conns 64 --size 65536 --seconds "$secs"
	run multi --cid 8 --guests 1 --port 5000 --conns 1 --size 65536 --seconds "$secs"
	run_shim bulk --cid 3 --port 5000 --dir h2g --size 65536 --seconds "$secs"
	run_shim bulk --cid 4 --port 5000 --dir g2h --size 65536
	run_shim bulk --seqpacket --cid 6 --port 5000 --dir h2g --size 64 --seconds "$secs"
	run_shim bulk --seqpacket --cid 7 --port 5000 --dir g2h --size 64
	run_shim pingpong --cid 5 --port 5000 --size 64 --count 20000
	run baseline-pingpong unix --size 64 --count 20000
	run pingpong --cid 5 --port 5000 --size 64 --count 20000 --busy
	run baseline-pingpong unix --size 64 --count 20000 --busy
	echo "round $r of $rounds done" >&2
done
python3 "$here/report.py" "$csv" "$out"
