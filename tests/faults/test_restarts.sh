#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Faults (issue 5 §4): a guest killed with SIGKILL 100 times under traffic, and uvsockd killed
# with SIGKILL 20 times under a host program that lives through it all.
#  - Guest kills: each time a host program is in a ping-pong with the guest (uvsock-guest, a
#    vhost-user front-end as QEMU is; the real-QEMU case is tests/guest/test_guest_restart.sh).
#    The program must end at once with ECONNRESET (as Linux's vhost-vsock reports a guest that
#    went away), the daemon must detach the guest, and afterwards a new guest on the same
#    socket must work. uvsockd's open fds must be exactly what they were after the first
#    round, and its private memory (RssAnon) may grow by at most UVT_RSS_SLACK_KB.
#  - Daemon kills: one python3 program (through libuvsock-preload.so) connects to the guest's
#    echo each round; when the daemon dies its blocked recv ends (EOF), send gives EPIPE and a
#    new socket EAFNOSUPPORT; with the daemon back, it connects again. Its open fds must be the
#    same in round 20 as in round 1.
# ROUNDS_GUEST and ROUNDS_DAEMON override the counts (the test command runs 100 and 20).
set -euo pipefail
UVSOCKD=$1
GUEST=$2
PERF=$3
SHIM=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init faults
SHIM=$(uvt_preload "$SHIM")
rounds_guest=${ROUNDS_GUEST:-100}
rounds_daemon=${ROUNDS_DAEMON:-20}
# RSS growth allowed over the guest rounds: malloc arenas settle in the first rounds; a leak of
# a connection, segment or guest mapping per round (>= 64 KiB each) would exceed it.
UVT_RSS_SLACK_KB=2048
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do echo "--- $f"; grep -v VHOST_CONFIG "$f" | tail -8; done
	exit 1
}
# open fds, less the segments kept for reuse (an fd each)
daemon_fds() {
	local kept
	kept=$(uvt_daemon_kept)
	echo $(($(find "/proc/$dpid/fd" -mindepth 1 -maxdepth 1 | wc -l) - kept))
}
# private memory (heap, tables): the connections' shared segments come and go with them
daemon_rss() { awk '/^RssAnon/ { print $2 }' "/proc/$dpid/status"; }
detached() { grep -c "guest cid 3 detached" "$tmp/uvsockd.log" || true; }

# --- the guest, killed under traffic ---
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
t0=$(date +%s)
for i in $(seq "$rounds_guest"); do
	before=$(uvt_attached 3)
	gone=$(detached)
	"$GUEST" --socket "$tmp/vm3.sock" --mode echo --listen 5000 --conns 1000000 \
		>"$tmp/guest.log" 2>&1 &
	g=$!
	uvt_wait_attached 3 "$before" || fail "round $i: guest not attached"
	rm -f "$tmp/perf.log" # (the background job's redirection truncates it only later)
	timeout 20 "$PERF" --interval 0.05 pingpong --cid 3 --port 5000 --size 64 \
		--count 1000000 --seconds 60 >"$tmp/perf.log" 2>&1 &
	p=$!
	# kill it mid-traffic: once round trips are flowing (a STATS line)
	wait_for "$tmp/perf.log" "^STATS" 10 || fail "round $i: no traffic: $(tail -1 "$tmp/perf.log")"
	kill -9 "$g"
	wait "$g" 2>/dev/null || true
	rc=0
	wait "$p" || rc=$?
	[ "$rc" = 1 ] || fail "round $i: the program's status is $rc (124: it hung), want 1"
	grep -q "recv: Connection reset by peer\|send: Connection reset by peer" "$tmp/perf.log" ||
		fail "round $i: $(tail -1 "$tmp/perf.log"), want ECONNRESET"
	for _ in $(seq 50); do [ "$(detached)" -gt "$gone" ] && break; sleep 0.1; done
	[ "$(detached)" -gt "$gone" ] || fail "round $i: the daemon did not detach the guest"
	if [ "$i" = 1 ]; then
		fds1=$(daemon_fds)
		rss1=$(daemon_rss)
	fi
done
t1=$(date +%s)
fdsn=$(daemon_fds)
rssn=$(daemon_rss)
[ "$fdsn" = "$fds1" ] || fail "uvsockd's open fds: $fds1 after round 1, $fdsn after $rounds_guest"
if uvt_rss_bounded && [ $((rssn - rss1)) -gt $UVT_RSS_SLACK_KB ]; then
	fail "uvsockd's private memory grew from $rss1 to $rssn kB over $rounds_guest rounds"
fi
kill -0 "$dpid" || fail "uvsockd died"
before=$(uvt_attached 3)
"$GUEST" --socket "$tmp/vm3.sock" --mode echo --listen 5000 --conns 1000000 >"$tmp/guest.log" 2>&1 &
pids+=("$!")
uvt_wait_attached 3 "$before" || fail "the last guest not attached"
timeout 30 "$PERF" --interval 0 pingpong --cid 3 --port 5000 --size 64 --count 1000 \
	>"$tmp/perf.log" 2>&1 || fail "ping-pong with a new guest after the kills"
echo "ok: guest SIGKILLed $rounds_guest times under ping-pong in $((t1 - t0)) s: ECONNRESET at once" \
	"each time, detached; uvsockd fds $fds1 -> $fdsn, RssAnon $rss1 -> $rssn kB; a new guest works"

# --- the daemon, killed under a host program ---
mkfifo "$tmp/in"
LD_PRELOAD=$SHIM timeout 600 python3 "$here/survivor.py" <"$tmp/in" >"$tmp/survivor.log" 2>&1 &
prog=$!
pids+=("$prog")
exec 3>"$tmp/in"
for i in $(seq "$rounds_daemon"); do
	echo go >&3
	wait_for "$tmp/survivor.log" "^OK $i " 30 || fail "daemon round $i: no connection"
	kill -9 "$dpid"
	wait "$dpid" 2>/dev/null || true
	wait_for "$tmp/survivor.log" "^DOWN $i " 10 || fail "daemon round $i: the program hangs"
	grep -q "^DOWN $i eof, send EPIPE, socket EAFNOSUPPORT$" "$tmp/survivor.log" ||
		fail "daemon round $i: $(grep "^DOWN $i " "$tmp/survivor.log")"
	pkill -9 -f "socket $tmp/vm3.sock" || true
	uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "daemon round $i: not ready"
	"$GUEST" --socket "$tmp/vm3.sock" --mode echo --listen 5000 --conns 1000000 \
		>"$tmp/guest.log" 2>&1 &
	pids+=("$!")
	uvt_wait_attached 3 || fail "daemon round $i: guest not attached"
done
echo go >&3
wait_for "$tmp/survivor.log" "^OK $((rounds_daemon + 1)) " 30 || fail "no connection after the last restart"
f1=$(sed -n 's/^OK 1 fds=\([0-9]*\)$/\1/p' "$tmp/survivor.log")
fn=$(sed -n "s/^OK $((rounds_daemon + 1)) fds=\\([0-9]*\\)\$/\\1/p" "$tmp/survivor.log")
if [ -z "$f1" ] || [ "$f1" != "$fn" ]; then
	fail "the program's open fds: $f1 in round 1, $fn after $rounds_daemon restarts"
fi
exec 3>&-
echo "ok: uvsockd SIGKILLed $rounds_daemon times under a program: EOF, EPIPE, EAFNOSUPPORT each" \
	"time, then new connections; the program's fds $f1 -> $fn"
echo "1 passed, 0 failed"
