#!/usr/bin/env bash
# Connections per second of two builds, alternating in one invocation (doc/BENCHMARKS.md):
# for each round and each build, that build's uvsockd with one uvsock-guest in echo mode
# (CID 5) and that build's `uvsock-perf connrate --echo` (socket, connect, one byte echoed,
# close) for SECONDS. Each build runs its own daemon, guest and library, so builds with
# different control protocols compare too. Prints every run, the medians and B / A.
# usage: bench/ab-connrate.sh BUILD_A BUILD_B [ROUNDS] [SECONDS]
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
if [ $# -lt 2 ] || [ "$1" = --help ]; then
	sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
builds=("$1" "$2")
rounds=${3:-5}
secs=${4:-2}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
results=$(mktemp /tmp/uvsock-ab.XXXXXX)
trap 'rm -f "$results"' EXIT

one_run() { # one_run BUILD: prints connections per second
	(
		bench_init "$1"
		bench_daemon 5
		bench_guest 5 --mode echo
		"$perf" --interval 0 connrate --cid 5 --port 5000 --seconds "$secs" --echo |
			sed -n 's/^RESULT .*conns_per_s=\([0-9.e+]*\).*/\1/p'
	)
}

for r in $(seq "$rounds"); do
	for i in 0 1; do
		v=$(one_run "${builds[$i]}")
		[ -n "$v" ] || { echo "no result from ${builds[$i]}" >&2; exit 1; }
		echo "round $r ${builds[$i]} $v"
		echo "$i $v" >>"$results"
	done
done
python3 - "$results" "${builds[@]}" <<'EOF'
import statistics, sys
runs = {0: [], 1: []}
for line in open(sys.argv[1]):
    i, v = line.split()
    runs[int(i)].append(float(v))
a, b = (statistics.median(runs[i]) for i in (0, 1))
print(f"median A ({sys.argv[2]}): {a:.0f}/s  B ({sys.argv[3]}): {b:.0f}/s  B/A: {b / a:.2f}")
EOF
