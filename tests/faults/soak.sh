#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Soak (issue 5 §4): for SECONDS (default 60; the recorded run is 3600), mixed traffic between
# host programs and programs inside a userspace guest, with many connections opening and
# closing, every byte checked:
#  - STREAM clients (uvsock-test-host client: 8 connections of 256 KiB of the pattern, echoed
#    by uvsock-echo inside the guest, compared byte for byte) in a loop;
#  - SEQPACKET clients (the same with messages of 1..64 KiB, boundaries and MSG_EOR checked);
#  - bursts of short connections (uvsock-perf connrate --echo, one byte each).
# Every client run must succeed (nothing lost, reordered or corrupted), and uvsockd's private
# memory (RssAnon: heap and tables; the connections' shared segments come and go with them and
# are counted as fds), sampled every few seconds, must stay flat: the last sample at most
# SOAK_RSS_SLACK_KB above the first one taken after a warm-up; its open fds likewise.
# usage: soak.sh UVSOCKD GUEST PERF ECHO HOST [SECONDS]
set -euo pipefail
UVSOCKD=$1
GUEST=$2
PERF=$3
ECHO=$4
HOST=$5
secs=${6:-${SOAK_SECONDS:-60}}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init soak
# Warm-up before the first RSS sample: malloc arenas and the daemon's tables reach their size.
SOAK_WARMUP_S=10
# RSS growth allowed after the warm-up: a leak of one connection's state per second would
# pass 2 MiB within the hour.
SOAK_RSS_SLACK_KB=2048
fail() {
	echo "FAIL: $*"
	# uvsockd's counters (drops by reason, queue state) for the diagnosis
	kill -USR1 "$dpid" 2>/dev/null && sleep 1
	for f in "$tmp"/*.log; do
		echo "--- $f"
		grep -v VHOST_CONFIG "$f" | grep -v "^client ok" | tail -40
	done
	exit 1
}
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
"$GUEST" --socket "$tmp/vm3.sock" --mode serve --control "$tmp/g3.sock" >"$tmp/guest.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/guest.log" "serving programs" 10 || fail "guest not serving"
uvt_wait_attached 3 || fail "guest not attached"
UVSOCK_CONTROL=$tmp/g3.sock "$ECHO" --listen 7000 >"$tmp/echo.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/echo.log" "listening" 10 || fail "echo in the guest not listening"
rss() { awk '/^RssAnon/ { print $2 }' "/proc/$dpid/status"; }
# open fds, less the segments kept for reuse (an fd each)
fds() {
	local kept
	kept=$(uvt_daemon_kept)
	echo $(($(find "/proc/$dpid/fd" -mindepth 1 -maxdepth 1 | wc -l) - kept))
}

loop() { # loop NAME CMD...: run CMD again and again until the end; count runs, stop at a failure
	local name=$1 n=0
	shift
	while [ "$(date +%s)" -lt "$end" ]; do
		if ! "$@" >>"$tmp/$name.log" 2>&1; then
			echo "FAILED after $n runs" >>"$tmp/$name.log"
			return 1
		fi
		n=$((n + 1))
	done
	echo "RUNS $n" >>"$tmp/$name.log"
}
start=$(date +%s)
end=$((start + secs))
loop stream "$HOST" client 3 7000 8 &
l1=$!
loop seqpacket "$HOST" client 3 7001 8 seq &
l2=$!
loop connrate "$PERF" --interval 0 connrate --cid 3 --port 7000 --echo --seconds 2 &
l3=$!
pids+=("$l1" "$l2" "$l3")
rss0='' fds0='' rssmax=0
while [ "$(date +%s)" -lt "$end" ]; do
	sleep 2
	kill -0 "$dpid" || fail "uvsockd died"
	r=$(rss)
	if [ -z "$rss0" ] && [ $(($(date +%s) - start)) -ge $SOAK_WARMUP_S ]; then
		rss0=$r
		fds0=$(fds)
	fi
	[ "$r" -gt "$rssmax" ] && rssmax=$r
	echo "$(($(date +%s) - start)) $r" >>"$tmp/rss.samples"
done
for l in "$l1" "$l2" "$l3"; do wait "$l" || fail "a client loop failed"; done
sleep 1 # the last connections' close sequences
rss1=$(rss)
fds1=$(fds)
runs() { sed -n 's/^RUNS //p' "$tmp/$1.log"; }
ok=$(grep -c "^client ok" "$tmp/stream.log" "$tmp/seqpacket.log" | awk -F: '{ s += $2 } END { print s }')
conns=$(sed -n 's/^RESULT uvsock-connrate size=[0-9]* conns_per_s=\([0-9.e+]*\)$/\1/p' "$tmp/connrate.log" |
	awk '{ s += $1 * 2 } END { printf "%d", s }')
[ -n "$rss0" ] || fail "the run ended before the warm-up did"
if uvt_rss_bounded && [ $((rss1 - rss0)) -gt $SOAK_RSS_SLACK_KB ]; then
	fail "uvsockd's private memory grew from $rss0 to $rss1 kB after the warm-up"
fi
[ "$fds1" -le "$fds0" ] || fail "uvsockd's open fds grew from $fds0 to $fds1"
echo "ok: soak $secs s: $(runs stream) STREAM and $(runs seqpacket) SEQPACKET client runs" \
	"($ok checked connections), $(runs connrate) connrate bursts (~$conns connections);" \
	"uvsockd private memory $rss0 -> $rss1 kB after the warm-up (max $rssmax), fds $fds0 -> $fds1"
echo "1 passed, 0 failed"
