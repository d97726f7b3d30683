#!/usr/bin/env bash
# One command for the uvsock benchmark (doc/BENCHMARKS.md): uvsockd with twelve userspace
# guests (uvsock-guest: rxonly on CID 3, txonly on CID 4, echo on CID 5, SEQPACKET rxonly on
# CID 6 and txonly on CID 7, rxonly on CIDs 8-11 for 64 connections at once, rxonly and
# txonly with 4 MiB buffers on CIDs 12 and 13, and CID 14 serving programs for the
# end-to-end rows: uvsock-perf sink and source and uvsock-echo inside it), uvsock-perf
# against them and, in the same invocation, the kernel's local IPC baselines (AF_UNIX
# stream, TCP loopback, memcpy; with 4 MiB buffers too). Each figure is the median of ROUNDS
# runs. Prints tables with ratios, writes OUT/results.csv (every run) and OUT/throughput.svg.
# usage: bench/run.sh [BUILD_DIR] [OUT_DIR] [ROUNDS] [SECONDS]
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
build=${1:-build}
out=${2:-bench/out}
rounds=${3:-3}
secs=${4:-2}
sizes="64 1024 4096 16384 65536"
g2h_bytes=$((512 * 1024 * 1024))
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
bench_init "$build"
mkdir -p "$out"
csv=$out/results.csv
echo "name,size,metric,value" >"$csv"
bench_daemon 3 4 5 6 7 8 9 10 11 12 13 14
bench_guest 3 --mode rxonly
bench_guest 4 --mode txonly --bytes "$g2h_bytes"
bench_guest 5 --mode echo
bench_guest 6 --mode rxonly --seqpacket
bench_guest 7 --mode txonly --seqpacket --msg-size 64 --bytes $((64 * 1024 * 1024))
for c in 8 9 10 11; do bench_guest "$c" --mode rxonly; done
buf=$((4 * 1024 * 1024))
bench_guest 12 --mode rxonly --buf-size "$buf"
bench_guest 13 --mode txonly --bytes "$g2h_bytes"
# end to end: programs inside guest 14, reached through its own control socket
"$guest" --socket "$tmp/vm14.sock" --mode serve --control "$tmp/g14.sock" >"$tmp/g14.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do [ -S "$tmp/g14.sock" ] && break; sleep 0.1; done
UVSOCK_CONTROL=$tmp/g14.sock "$perf" sink --port 6000 >"$tmp/sink.log" 2>&1 &
pids+=("$!")
UVSOCK_CONTROL=$tmp/g14.sock "$perf" source --port 6001 --bytes "$g2h_bytes" >"$tmp/source.log" 2>&1 &
pids+=("$!")
UVSOCK_CONTROL=$tmp/g14.sock "$(dirname "$perf")/uvsock-echo" --listen 6002 >"$tmp/echo.log" 2>&1 &
pids+=("$!")
sleep 1

run() { # run ARGS...: one uvsock-perf invocation, results appended to the CSV
	"$perf" --interval 0 --csv "$csv" "$@" >/dev/null
}
run_shim() { # the same through libuvsock-preload.so (plain socket calls): "-libc" results
	LD_PRELOAD=$shim "$perf" --interval 0 --libc --csv "$csv" "$@" >/dev/null
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
	# larger buffers on both sides: uvsock's credit, the kernel sockets' SO_SNDBUF/SO_RCVBUF
	run --tag buf4m --buf-size "$buf" bulk --cid 12 --port 5000 --dir h2g --size 65536 --seconds "$secs"
	run --tag buf4m --buf-size "$buf" bulk --cid 13 --port 5000 --dir g2h --size 65536
	run --tag buf4m --buf-size "$buf" baseline unix --size 65536 --seconds "$secs"
	run --tag buf4m --buf-size "$buf" baseline tcp --size 65536 --seconds "$secs"
	# end to end: host program to a program inside guest 14 and back
	run --tag e2e bulk --cid 14 --port 6000 --dir h2g --size 65536 --seconds "$secs"
	run --tag e2e bulk --cid 14 --port 6001 --dir g2h --size 65536
	run --tag e2e pingpong --cid 14 --port 6002 --size 64 --count 20000
	run --tag e2e pingpong --cid 14 --port 6002 --size 64 --count 20000 --busy
	# connections per second (one byte echoed on each)
	run connrate --cid 5 --port 5000 --seconds "$secs" --echo
	run baseline-connrate unix --seconds "$secs" --echo
	run baseline-connrate tcp --seconds "$secs" --echo
	echo "round $r of $rounds done" >&2
done
python3 "$here/report.py" "$csv" "$out"
