#!/usr/bin/env bash
# A short smoke run of every uvsock-perf mode (the benchmark itself is bench/run.sh, not part
# of the test command): bulk both ways, ping-pong and connection rate against uvsock-guest in
# rxonly, txonly and echo, through the native API and through libuvsock-preload.so (--libc),
# and each kernel baseline. Every run must print its RESULT lines with a positive
# value (a count of credit stalls may be 0); bench/report.py must turn them into tables and a
# plot. Runs with --interval must print STATS lines with positive rates while they run. The
# interactive mode is driven through a pipe: runs started and stopped, bad commands survived.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
UVSOCKD=$1
GUEST=$2
PERF=$3
SHIM=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init perfsmoke
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do echo "--- $f"; tail -5 "$f"; done
	exit 1
}
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" \
	--vm "cid=5,socket=$tmp/vm5.sock" --vm "cid=6,socket=$tmp/vm6.sock" \
	--vm "cid=7,socket=$tmp/vm7.sock" --vm "cid=8,socket=$tmp/vm8.sock" \
	--vm "cid=9,socket=$tmp/vm9.sock" --vm "cid=10,socket=$tmp/vm10.sock" \
	--vm "cid=11,socket=$tmp/vm11.sock" ||
	fail "uvsockd not ready"
"$GUEST" --socket "$tmp/vm3.sock" --mode rxonly --listen 5000 --conns 100 >"$tmp/g3.log" 2>&1 &
pids+=("$!")
"$GUEST" --socket "$tmp/vm4.sock" --mode txonly --listen 5000 --conns 100 \
	--bytes 16777216 >"$tmp/g4.log" 2>&1 &
pids+=("$!")
"$GUEST" --socket "$tmp/vm5.sock" --mode echo --listen 5000 --conns 100 >"$tmp/g5.log" 2>&1 &
pids+=("$!")
"$GUEST" --socket "$tmp/vm6.sock" --mode rxonly --seqpacket --listen 5000 --conns 100 \
	>"$tmp/g6.log" 2>&1 &
pids+=("$!")
"$GUEST" --socket "$tmp/vm7.sock" --mode txonly --seqpacket --msg-size 64 --listen 5000 \
	--conns 100 --bytes 640000 >"$tmp/g7.log" 2>&1 &
pids+=("$!")
# connection rate: many short connections
"$GUEST" --socket "$tmp/vm8.sock" --mode echo --listen 5000 --conns 1000000 >"$tmp/g8.log" 2>&1 &
pids+=("$!")
"$GUEST" --socket "$tmp/vm9.sock" --mode rxonly --seqpacket --listen 5000 --conns 1000000 \
	>"$tmp/g9.log" 2>&1 &
pids+=("$!")
# --dir both: a g2h stream that outlasts the run
"$GUEST" --socket "$tmp/vm10.sock" --mode txonly --listen 5000 --conns 100 \
	--bytes 1099511627776 >"$tmp/g10.log" 2>&1 &
pids+=("$!")
# end to end: programs inside a serving guest (sink, source) are the bulk runs' peers
"$GUEST" --socket "$tmp/vm11.sock" --mode serve --control "$tmp/g11.sock" >"$tmp/g11.log" 2>&1 &
pids+=("$!")
for g in 3 4 5 6 7 8 9 10; do
	wait_for "$tmp/g$g.log" "listening on 5000" 10 || fail "guest $g not listening"
	uvt_wait_attached "$g" || fail "guest $g not attached"
done
wait_for "$tmp/g11.log" "serving programs" 10 || fail "guest 11 not serving"
uvt_wait_attached 11 || fail "guest 11 not attached"
UVSOCK_CONTROL=$tmp/g11.sock "$PERF" sink --port 6000 --buf-size 1048576 >"$tmp/sink.log" 2>&1 &
pids+=("$!")
UVSOCK_CONTROL=$tmp/g11.sock "$PERF" source --port 6001 --bytes 8388608 >"$tmp/source.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/sink.log" "listening on 6000" 10 || fail "sink not listening"
wait_for "$tmp/source.log" "listening on 6001" 10 || fail "source not listening"
csv=$tmp/results.csv
echo "name,size,metric,value" >"$csv"
check() { # check NAME ARGS...: run uvsock-perf, expect RESULT lines for NAME with values > 0
	local name=$1
	shift
	timeout 60 "$PERF" --csv "$csv" "$@" >"$tmp/perf.log" 2>&1 || fail "uvsock-perf $*"
	grep -q "^RESULT $name " "$tmp/perf.log" || fail "no RESULT for $name"
	if awk '$1 == "RESULT" { split($4, kv, "=");
		if (kv[1] == "stalls" ? kv[2] + 0 < 0 : kv[2] + 0 <= 0) bad = 1 }
		END { exit !bad }' "$tmp/perf.log"; then
		fail "$name: a value is not positive"
	fi
	echo "ok: $name: $(grep "^RESULT" "$tmp/perf.log" | cut -d' ' -f4 | tr '\n' ' ')"
}
# stats_check MIN FIELD...: the last run printed at least MIN STATS lines, every one has every
# FIELD (as FIELD=value), and in at least MIN of them its value is above 0 (on a loaded machine
# an interval can pass with nothing done, or fall after the workers ended)
stats_check() {
	local min=$1 n f
	shift
	n=$(grep -c '^STATS t=' "$tmp/perf.log" || true)
	[ "$n" -ge "$min" ] || fail "$n STATS lines, expected at least $min"
	for f in "$@"; do
		if awk -v f="$f" -v min="$min" '$1 == "STATS" { v = "";
			for (i = 2; i <= NF; i++) if (index($i, f "=") == 1) v = substr($i, length(f) + 2)
			if (v == "") bad = 1; else if (v + 0 > 0) good++ }
			END { exit !(bad || good < min) }' "$tmp/perf.log"; then
			fail "STATS: $f missing or not positive: $(grep '^STATS' "$tmp/perf.log" | head -3)"
		fi
	done
	echo "ok: $n STATS lines with $* > 0"
}
check uvsock-h2g bulk --cid 3 --port 5000 --dir h2g --seconds 0.3
grep -Eq "^RESULT uvsock-h2g size=65536 stalls=[0-9]+$" "$tmp/perf.log" || fail "no stalls result"
# live statistics: 1.5 s with a line every 0.5 s (the last may fall after the end)
check uvsock-h2g bulk --cid 3 --port 5000 --dir h2g --seconds 1.5 --interval 0.5
stats_check 2 msgs/s Gbit/s
grep '^STATS' "$tmp/perf.log" | grep -vEq ' stalls=[0-9]+$' && fail "STATS without stalls="
# with uvsockd's telemetry socket: the guests' drops in each line (none from a sane guest)
ts=$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")
check uvsock-h2g bulk --cid 3 --port 5000 --dir h2g --seconds 1.2 --interval 0.5 --telemetry "$ts"
n=$(grep -cE '^STATS .* stalls=[0-9]+ drops=0$' "$tmp/perf.log" || true)
[ "$n" -ge 2 ] || fail "STATS with --telemetry: $(grep '^STATS' "$tmp/perf.log" | head -2)"
check uvsock-h2g bulk --cid 3 --port 5000 --dir h2g --seconds 0.6 --interval 0.5 \
	--telemetry /nonexistent
grep -q "no answer: no drops in STATS" "$tmp/perf.log" || fail "no warning for a bad --telemetry"
grep '^STATS' "$tmp/perf.log" | grep -q 'drops=' && fail "drops= without telemetry"
echo "ok: STATS with --telemetry: drops=0 from uvsockd; a bad socket is reported"
check uvsock-h2g --interval 0 bulk --cid 3 --port 5000 --dir h2g --seconds 0.6
grep -q '^STATS' "$tmp/perf.log" && fail "STATS lines with --interval 0"
check uvsock-pingpong pingpong --cid 5 --port 5000 --size 64 --count 1000000 --seconds 1 \
	--interval 0.3
stats_check 2 rtt/s p50_us
[ -f "$SHIM" ] || fail "no shim at $SHIM"
SHIM=$(uvt_preload "$SHIM")
LD_PRELOAD=$SHIM check uvsock-h2g-libc --libc bulk --cid 3 --port 5000 --dir h2g --seconds 0.3
check uvsock-g2h bulk --cid 4 --port 5000 --dir g2h
check uvsock-pingpong pingpong --cid 5 --port 5000 --size 64 --count 200
check uvsock-pingpong-busy pingpong --cid 5 --port 5000 --size 64 --count 200 --busy
check unix-stream baseline unix --seconds 0.2
check unix-seqpacket baseline unix-seqpacket --seconds 0.2
check tcp-loopback baseline tcp --seconds 0.2
check memcpy baseline memcpy --seconds 0.2
check unix-pingpong baseline-pingpong unix --size 64 --count 200
check uvsock-seq-h2g bulk --seqpacket --cid 6 --port 5000 --dir h2g --size 64 --seconds 0.3
check uvsock-seq-g2h bulk --seqpacket --cid 7 --port 5000 --dir g2h --size 64
check uvsock-h2g-x4 multi --cid 3 --guests 1 --port 5000 --conns 4 --seconds 1 --interval 0.3
stats_check 2 msgs/s Gbit/s
check uvsock-bidir bulk --dir both --cid 3 --cid2 10 --port 5000 --seconds 1 --interval 0.3
for n in uvsock-bidir-h2g uvsock-bidir-g2h; do
	grep -q "^RESULT $n size=65536 bytes_per_s=" "$tmp/perf.log" || fail "no $n"
done
awk '$1 == "RESULT" && $4 ~ /^bytes_per_s=/ { split($4, kv, "="); v[$2] = kv[2] }
	END { d = v["uvsock-bidir"] - v["uvsock-bidir-h2g"] - v["uvsock-bidir-g2h"];
		exit !(d * d < 1e-6 * v["uvsock-bidir"] * v["uvsock-bidir"]) }' "$tmp/perf.log" ||
	fail "bidir: the sum is not h2g + g2h"
grep -q "g2h stream ended" "$tmp/perf.log" && fail "bidir: the g2h stream ended early"
stats_check 2 msgs/s Gbit/s h2g_Gbit/s g2h_Gbit/s
"$PERF" bulk --dir both --cid 3 --port 5000 >"$tmp/perf.log" 2>&1 && fail "both without --cid2"
# --json: an array of {name, size, metric, value}, the same results as the CSV rows
"$PERF" --json "$tmp/r.json" --csv "$tmp/j.csv" --interval 0 bulk --dir both --cid 3 --cid2 10 \
	--port 5000 --seconds 0.3 >"$tmp/perf.log" 2>&1 || fail "uvsock-perf --json"
python3 - "$tmp/r.json" "$tmp/j.csv" <<'EOF' || fail "--json: $(cat "$tmp/r.json")"
import csv, json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, list), d
assert {(x["name"], x["metric"]) for x in d} == {("uvsock-bidir-h2g", "bytes_per_s"),
    ("uvsock-bidir-h2g", "stalls"), ("uvsock-bidir-g2h", "bytes_per_s"),
    ("uvsock-bidir", "bytes_per_s")}, d
for x in d:
    assert sorted(x) == ["metric", "name", "size", "value"] and x["size"] == 65536, x
    assert x["value"] > 0 or x["metric"] == "stalls" and x["value"] == 0, x
rows = [(r[0], int(r[1]), r[2], float(r[3])) for r in csv.reader(open(sys.argv[2]))]
assert rows == [(x["name"], x["size"], x["metric"], float(x["value"])) for x in d], rows
EOF
"$PERF" --json "$tmp/r.json" connrate --cid 99 --port 5000 >"$tmp/perf.log" 2>&1 &&
	fail "connrate to a CID without a guest"
python3 -c 'import json, sys; assert json.load(open(sys.argv[1])) == []' "$tmp/r.json" ||
	fail "--json of a failed run: $(cat "$tmp/r.json")"
echo "ok: --json"
check uvsock-connrate connrate --cid 8 --port 5000 --seconds 1.2 --interval 0.3
stats_check 2 conns/s
grep -q "^RESULT uvsock-connrate size=0 conns_per_s=" "$tmp/perf.log" || fail "connrate result"
check uvsock-connrate connrate --cid 8 --port 5000 --seconds 0.3 --echo
grep -q "^RESULT uvsock-connrate size=1 " "$tmp/perf.log" || fail "connrate --echo result"
check uvsock-connrate-x2 connrate --cid 8 --port 5000 --seconds 0.3 --echo --conns 2
check uvsock-seq-connrate connrate --seqpacket --cid 9 --port 5000 --seconds 0.3
LD_PRELOAD=$SHIM check uvsock-connrate-libc --libc connrate --cid 8 --port 5000 --seconds 0.3 \
	--echo
check unix-connrate baseline-connrate unix --seconds 0.3 --echo
check unix-seq-connrate baseline-connrate unix --seqpacket --seconds 0.3 --echo
check tcp-connrate baseline-connrate tcp --seconds 0.3 --echo
check tcp-connrate baseline-connrate tcp --seconds 1 --interval 0.3
stats_check 2 conns/s
"$PERF" baseline-connrate tcp --seqpacket >"$tmp/perf.log" 2>&1 && fail "tcp --seqpacket taken"
# interactive: bulk started, looked at, stopped; a bad command and a bad value in between
{
	printf 'set mode bulk\nset size 4096\nstart\n'
	sleep 1
	printf 'show stats\nfrobnicate\nset size 0\nshow stats\nstop\nquit\n'
} | timeout 30 "$PERF" interactive --cid 3 --port 5000 >"$tmp/i.log" 2>&1 ||
	fail "interactive: exit status $?"
grep -q "^error: unknown command 'frobnicate'" "$tmp/i.log" || fail "interactive: no error line"
grep -q "^error: '0' is not a value for size" "$tmp/i.log" || fail "interactive: set size 0"
[ "$(grep -c '^stats: bytes=' "$tmp/i.log")" = 2 ] || fail "interactive: not two show stats"
if awk '/^stats: / { split($2, kv, "="); if (kv[2] + 0 <= 0) bad = 1 } END { exit !bad }' \
	"$tmp/i.log"; then
	fail "interactive: bytes not positive"
fi
grep -Eq '^RESULT uvsock-h2g size=4096 bytes_per_s=[1-9]' "$tmp/i.log" || fail "interactive: stop"
echo "ok: interactive bulk: $(grep '^stats:' "$tmp/i.log" | tail -1)"
# ping-pong and connrate; the input ends while connrate runs: it is stopped, exit status 0.
# Each runs until "show stats" shows its first round trip or connection: on a loaded machine,
# and in a sanitized build, that can take seconds. shown_stats PATTERN: asks for the stats
# every 0.5 s until a stats line matches (up to 30 s; the checks below then fail).
shown_stats() {
	local _
	for _ in $(seq 60); do
		printf 'show stats\n'
		sleep 0.5
		grep -Eq "^stats: $1" "$tmp/i.log" && return 0
	done
	return 0
}
{
	printf 'set mode pingpong\nset cid 5\nset size 64\nstart\n'
	shown_stats 'bytes=[1-9][0-9]* round_trips=[1-9]'
	printf 'stop\nset mode connrate\nset cid 8\nset echo on\nstart\n'
	shown_stats 'connections=[1-9]'
} | timeout 90 "$PERF" -i --port 5000 >"$tmp/i.log" 2>&1 || fail "interactive: exit status $?"
grep -Eq '^stats: bytes=[1-9][0-9]* round_trips=[1-9][0-9]* .* p50_us=[0-9.]+ p99_us=' \
	"$tmp/i.log" || fail "interactive: ping-pong stats"
grep -q '^RESULT uvsock-pingpong size=64 p999_us=' "$tmp/i.log" || fail "interactive: ping-pong"
grep -Eq '^stats: connections=[1-9]' "$tmp/i.log" || fail "interactive: connrate stats"
grep -Eq '^RESULT uvsock-connrate size=1 conns_per_s=[1-9]' "$tmp/i.log" ||
	fail "interactive: connrate not stopped at the end of input"
grep -q '^error' "$tmp/i.log" && fail "interactive: $(grep '^error' "$tmp/i.log")"
echo "ok: interactive ping-pong and connrate, stopped at the end of input"
timeout 60 "$PERF" hold --cid 5 --guests 1 --port 5000 --conns 10 --seconds 0.2 \
	>"$tmp/hold.log" 2>&1 || fail "uvsock-perf hold"
grep -q "^HELD 10 connections" "$tmp/hold.log" || fail "hold: no HELD line"
echo "ok: hold: 10 idle connections opened, checked, held, closed"
# message boundaries: the guest counted 64-byte messages, the host 10000 of them
grep -Eq "rxonly: connection .* ok: rx ([0-9]+) bytes \(([0-9]+) messages\)" "$tmp/g6.log" ||
	fail "SEQPACKET rxonly guest: no result"
read -r b m < <(sed -En 's/.*ok: rx ([0-9]+) bytes \(([0-9]+) messages\).*/\1 \2/p' "$tmp/g6.log")
[ "$b" = $((m * 64)) ] || fail "SEQPACKET h2g: $b bytes in $m messages, not 64 each"
echo "ok: SEQPACKET h2g: $m messages of 64 bytes, boundaries kept"
grep -q "txonly: connection .* ok" "$tmp/g7.log" || fail "SEQPACKET txonly guest"
check uvsock-h2g-e2e --tag e2e bulk --cid 11 --port 6000 --dir h2g --seconds 0.3 --buf-size 1048576
check uvsock-g2h-e2e --tag e2e bulk --cid 11 --port 6001 --dir g2h
sleep 0.2 # the source hears back from its last connection
if grep -q "a connection:" "$tmp/sink.log" "$tmp/source.log"; then
	fail "sink or source: $(grep 'a connection' "$tmp/sink.log" "$tmp/source.log")"
fi
echo "ok: end to end: sink and source inside a serving guest, bulk both ways, --buf-size, --tag"
check unix-stream-buf baseline unix --seconds 0.2 --buf-size 4194304 --tag buf
python3 "$here/../../bench/report.py" "$csv" "$tmp" >"$tmp/report.md" || fail "report.py"
grep -q "| 65536 |" "$tmp/report.md" || fail "report table"
grep -q "<polyline" "$tmp/throughput.svg" || fail "no plot"
echo "ok: report table and plot"
echo "1 passed, 0 failed"
