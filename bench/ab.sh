#!/usr/bin/env bash
# One workload on two builds, alternating in one invocation (doc/BENCHMARKS.md): for each
# round and each build, that build's uvsockd with one uvsock-guest (CID 5) and that build's
# uvsock-perf for SECONDS. Each build runs its own daemon, guest and library, so builds with
# different control protocols compare too. Prints every run, the medians and B / A.
# WORKLOAD (and the figure compared):
#   connrate   socket, connect, one byte echoed, close, in a loop (connections per second)
#   h2g        64 KiB writes from the host to an rxonly guest (bytes per second)
#   g2h        64 KiB packets from a txonly guest to the host program (bytes per second)
#   pingpong   64-byte round trips with an echo guest (p50 in microseconds; lower is better)
# usage: bench/ab.sh BUILD_A BUILD_B WORKLOAD [ROUNDS] [SECONDS]   (SECONDS: whole seconds)
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
if [ $# -lt 3 ] || [ "$1" = --help ]; then
	sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
builds=("$1" "$2")
work=$3
rounds=${4:-5}
secs=${5:-2}
case $work in
connrate | h2g | g2h | pingpong) ;;
*)
	echo "ab.sh: unknown workload '$work' (connrate, h2g, g2h, pingpong)" >&2
	exit 2
	;;
esac
case $rounds$secs in
*[!0-9]* | '')
	echo "ab.sh: ROUNDS and SECONDS are whole numbers" >&2
	exit 2
	;;
esac
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
results=$(mktemp /tmp/uvsock-ab.XXXXXX)
trap 'rm -f "$results"' EXIT

one_run() { # one_run BUILD: prints the workload's figure
	(
		bench_init "$1"
		bench_daemon 5
		case $work in
		connrate)
			bench_guest 5 --mode echo
			args=(connrate --echo --seconds "$secs")
			metric=conns_per_s
			;;
		h2g)
			bench_guest 5 --mode rxonly
			args=(bulk --dir h2g --size 65536 --seconds "$secs")
			metric=bytes_per_s
			;;
		g2h)
			# the guest sends a fixed amount: what SECONDS take at about 4 GB/s, g2h's
			# speed here (doc/BENCHMARKS.md)
			bench_guest 5 --mode txonly --bytes $((secs * 4096 * 1024 * 1024))
			args=(bulk --dir g2h --size 65536)
			metric=bytes_per_s
			;;
		pingpong)
			bench_guest 5 --mode echo
			args=(pingpong --size 64 --count 20000 --seconds "$secs")
			metric=p50_us
			;;
		esac
		"$perf" --interval 0 "${args[@]}" --cid 5 --port 5000 |
			sed -n "s/^RESULT .* $metric=\([0-9.e+-]*\).*/\1/p" | head -1
	)
}

for r in $(seq "$rounds"); do
	for i in 0 1; do
		v=$(one_run "${builds[$i]}") || true
		[ -n "$v" ] || { echo "ab.sh: no result from ${builds[$i]} (round $r)" >&2; exit 1; }
		echo "round $r ${builds[$i]} $v"
		echo "$i $v" >>"$results"
	done
done
python3 - "$results" "$work" "${builds[@]}" <<'PY'
import statistics, sys
runs = {0: [], 1: []}
for line in open(sys.argv[1]):
    i, v = line.split()
    runs[int(i)].append(float(v))
a, b = (statistics.median(runs[i]) for i in (0, 1))
ratio = f"{b / a:.2f}" if a > 0 else "inf"
print(f"{sys.argv[2]}: median A ({sys.argv[3]}): {a:.4g}  B ({sys.argv[4]}): {b:.4g}  "
      f"B/A: {ratio}")
PY
