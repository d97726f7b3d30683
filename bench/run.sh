#!/usr/bin/env bash
# One command for the uvsock benchmark (doc/BENCHMARKS.md): uvsockd with nine userspace
# guests (uvsock-guest: rxonly on CID 3, txonly on CID 4, echo on CID 5, SEQPACKET rxonly on
# CID 6 and txonly on CID 7, rxonly on CIDs 8-11 for 64 connections at once), uvsock-perf
# against them and, in the same invocation, the kernel's local IPC baselines (AF_UNIX
# stream, TCP loopback, memcpy). Each figure is the median of ROUNDS runs. Prints a table
# with ratios, writes OUT/results.csv (every run) and OUT/throughput.svg.
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
bench_daemon 3 4 5 6 7 8 9 10 11
bench_guest 3 --mode rxonly
bench_guest 4 --mode txonly --bytes "$g2h_bytes"
bench_guest 5 --mode echo
bench_guest 6 --mode rxonly --seqpacket
bench_guest 7 --mode txonly --seqpacket --msg-size 64 --bytes $((64 * 1024 * 1024))
for c in 8 9 10 11; do bench_guest "$c" --mode rxonly; done
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
