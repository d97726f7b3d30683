#!/usr/bin/env bash
# Idle cost (issue 4): uvsockd with GUESTS userspace guests (uvsock-guest in echo mode, no
# QEMU) and CONNS open idle connections spread over them (uvsock-perf hold), measured over
# SECONDS: the CPU time uvsockd used (utime + stime from /proc), as a share of one core.
# Also the guests' own cost, for information.
# usage: bench/idle.sh [BUILD_DIR] [GUESTS] [CONNS] [SECONDS]
# shellcheck source-path=SCRIPTDIR
set -euo pipefail
build=${1:-build}
guests=${2:-8}
conns=${3:-100}
secs=${4:-10}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
bench_init "$build"
cids=()
for i in $(seq "$guests"); do cids+=($((i + 2))); done
bench_daemon "${cids[@]}"
gpids=()
for c in "${cids[@]}"; do
	bench_guest "$c" --mode echo
	gpids+=("$gpid")
done
sleep 1
"$perf" hold --cid 3 --guests "$guests" --port 5000 --conns "$conns" \
	--seconds $((secs + 4)) >"$tmp/hold.log" 2>&1 &
pids+=("$!")
for _ in $(seq 100); do grep -q HELD "$tmp/hold.log" && break; sleep 0.1; done
grep -q HELD "$tmp/hold.log" || { cat "$tmp/hold.log"; exit 1; }
sleep 1 # let the connections settle
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
d0=$(ticks "$dpid")
g0=0
for p in "${gpids[@]}"; do g0=$((g0 + $(ticks "$p"))); done
sleep "$secs"
d1=$(ticks "$dpid")
g1=0
for p in "${gpids[@]}"; do g1=$((g1 + $(ticks "$p"))); done
awk -v d=$((d1 - d0)) -v g=$((g1 - g0)) -v hz="$hz" -v s="$secs" -v n="$guests" -v c="$conns" \
	'BEGIN { printf "idle: %d guests, %d connections, %d s: uvsockd %.2f%% of a core (%d ticks of 1/%d s); the %d guests together %.2f%%\n", n, c, s, 100 * d / hz / s, d, hz, n, 100 * g / hz / s }'
