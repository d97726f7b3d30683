#!/usr/bin/env bash
# What libuvsock-preload.so costs calls on fds that are not vsock sockets: runs
# bench/shim_overhead.c ROUNDS times without and with the shim, alternating (same machine, same
# invocation), and prints the median nanoseconds per operation and the ratio with/without.
# usage: bench/shim-overhead.sh [BUILD_DIR] [ROUNDS] [N]
set -euo pipefail
build=${1:-build}
rounds=${2:-7}
n=${3:-200000}
bin=$build/bench/uvsock-shim-overhead
shim=$(cd "$build/preload" && pwd)/libuvsock-preload.so
if [ ! -x "$bin" ] || [ ! -f "$shim" ]; then
	echo "build first: ninja -C $build" >&2
	exit 1
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for _ in $(seq "$rounds"); do
	"$bin" "$n" | sed 's/^/without /' >>"$out"
	LD_PRELOAD=$shim "$bin" "$n" | sed 's/^/with /' >>"$out"
done
median() { # median of the values of mode $1, test $2
	awk -v m="$1" -v t="$2" '$1 == m && $2 == t { print $3 }' "$out" | sort -n |
		awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
printf "%-8s %14s %14s %8s\n" test "without ns/op" "with ns/op" ratio
for t in pipe unix sockopt; do
	a=$(median without "$t")
	b=$(median with "$t")
	awk -v t="$t" -v a="$a" -v b="$b" 'BEGIN { printf "%-8s %14.1f %14.1f %8.3f\n", t, a, b, b / a }'
done
echo "($rounds rounds of $n operations each, medians; $(nproc) cores, $(uname -r))"
