#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Faults (issue 5 §4): a real Linux guest (QEMU, TCG, kernel 6.1) SIGKILLed ROUNDS times under
# traffic, booted again each time on the same vhost-user socket of one uvsockd.
#
# Usage: test_qemu_kills.sh UVSOCKD ECHO HOST [ROUNDS]   (ROUNDS default 3; 100 by hand)
# uvsock-guest and uvsock-perf are taken from ECHO's directory (build/examples), or from
# UVT_GUEST and UVT_PERF. UVT_QK_SECONDS=S starts no round after S seconds (then the end
# checks run as usual): TCG boots take minutes on a loaded machine.
#
# The guest program runs its scenarios one after another, so it is either a client or a
# server when it dies; the rounds take turns (round i is kind (i - 1) mod 3):
#   listen  the guest serves an echo on 7000: the host holds one connection blocked in recv
#           (uvsock-test-host hold, wait-gone) and runs a ping-pong on another (uvsock-perf).
#           Both must end with ECONNRESET: hold prints Linux's sequence (recv ECONNRESET, the
#           first send ECONNRESET, then EPIPE, as tests/guest/test_guest_restart.sh), the
#           ping-pong fails with ECONNRESET on its send or recv.
#   bulk    the guest streams to the host echo (uvsock-echo, 5000) and reads the echo back:
#           traffic both ways; the echo's connection must be released (the daemon's host
#           sockets back to the baseline).
#   reader  the guest reads from the host writer (uvsock-test-host writer, 5002) that writes
#           for ever: the writer, blocked on credit, must fail with ECONNRESET (a send that
#           had written part of its buffer returns the short count and leaves the error for
#           the next send, as Linux keeps sk_err; libuvsock used to lose it: EPIPE).
# Every round first checks that new connections work (cid, a STREAM echo from the guest), and
# the kill-to-end time of the host programs is bounded (UVT_GONE_MAX_S: no hang). After each
# kill uvsockd must log the detach, stay up and hold no host socket beyond the baseline.
#
# Survivors: a userspace guest (uvsock-guest --mode echo, CID 4) on the same daemon all along,
# with a host connection held into it for the whole test (one echo checked per round) and a
# new ping-pong to it across each kill; and uvsockd itself: its open fds, mappings and private
# memory (RssAnon) after round 1 and after the last round, bounded below. At the end a guest
# boots once more and works both ways.
set -euo pipefail
UVSOCKD=$1
ECHO=$2
HOST=$3
ROUNDS=${4:-3}
GUEST=${UVT_GUEST:-$(dirname "$ECHO")/uvsock-guest}
PERF=${UVT_PERF:-$(dirname "$ECHO")/uvsock-perf}
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvt_init qk
rpids=() # this round's background programs, not yet waited for
trap 'for p in "${rpids[@]}"; do kill "$p" 2>/dev/null || true; done; uvt_cleanup' EXIT

# How long a host program may take to end once QEMU is killed: the daemon learns of it when
# the vhost-user socket closes, at once; a hang would be for ever. 10 s leaves room for this
# shared machine under load.
UVT_GONE_MAX_S=10
# Open fds and mappings of uvsockd allowed to grow from round 1 to the last: none. Each round
# ends with the guest detached and the round's host programs gone, so the daemon holds what it
# held after round 1; a guest's vhost-user socket, eventfds or memory regions, or a host
# connection left behind, would be one more per round.
UVT_FD_SLACK=0
UVT_MAPS_SLACK=0
# RssAnon growth allowed (as tests/faults/test_restarts.sh): malloc arenas settle in the first
# rounds, and the kinds of round first run in rounds 2 and 3; a leaked connection, segment or
# guest table per round (>= 64 KiB each) would exceed it over 100 rounds.
UVT_RSS_SLACK_KB=2048
# Boots tried again when the guest kernel's timer check failed and /init never reported: under
# TCG on a loaded machine the check can fail ("IO-APIC + timer doesn't work", a panic in
# apic_intr_mode_init(), or "MP-BIOS bug: 8254 timer not connected to IO-APIC", after which
# the console stays silent). A guest problem, before any scenario; such boots are counted.
UVT_BOOT_RETRIES=2
# What the stream-bulk and host-eof guests ask for: more than they can move before the kill.
UVT_FOREVER=1099511627776

fail() {
	echo "FAIL: $*"
	echo "--- uvsockd (last 30 lines)"
	grep -v VHOST_CONFIG "$tmp/uvsockd.log" | tail -30
	for f in "$tmp"/*.out "$tmp"/*.host.log "$tmp"/g.log; do
		[ -f "$f" ] || continue
		echo "--- $f"
		tail -8 "$f"
	done
	exit 1
}
ms() { echo $(($(date +%s%N) / 1000000)); }
# open fds and mappings, less the segments kept for reuse (an fd and a mapping each)
daemon_fds() {
	local kept
	kept=$(uvt_daemon_kept)
	echo $(($(find "/proc/$dpid/fd" -mindepth 1 -maxdepth 1 | wc -l) - kept))
}
daemon_maps() {
	local kept
	kept=$(uvt_daemon_kept)
	echo $(($(wc -l <"/proc/$dpid/maps") - kept))
}
daemon_rss() { awk '/^RssAnon/ { print $2 }' "/proc/$dpid/status"; }
detached() { grep -c "guest cid 3 detached" "$tmp/uvsockd.log" || true; }
# wait_gone PID: until PID has exited (1 after UVT_GONE_MAX_S).
wait_gone() {
	local _
	for _ in $(seq $((UVT_GONE_MAX_S * 20))); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.05
	done
	return 1
}
# sockets_back: until the daemon holds exactly the baseline's host sockets (1 if not in
# UVT_GONE_MAX_S); n is the last count seen.
sockets_back() {
	local _
	for _ in $(seq $((UVT_GONE_MAX_S * 2))); do
		n=$(uvt_host_sockets)
		[ "$n" = "$base" ] && return 0
		sleep 0.4
	done
	return 1
}
declare -A hw hr
# hold CID PORT: a host program holding a connection into guest CID (uvsock-test-host hold),
# driven through fifos (hold_say); sets hpid. Fails unless it holds the connection.
hold() {
	local w r
	rm -f "$tmp/in$1" "$tmp/out$1"
	mkfifo "$tmp/in$1" "$tmp/out$1"
	"$HOST" hold "$1" "$2" <"$tmp/in$1" >"$tmp/out$1" &
	hpid=$!
	exec {w}>"$tmp/in$1" {r}<"$tmp/out$1"
	hw[$1]=$w
	hr[$1]=$r
	l=$(hold_say "$1" "" 20)
	[ "$l" = held ] || fail "round ${i:-0}: no connection held into guest $1: ${l:-nothing}"
}
# hold_say CID LINE SECONDS: LINE (if not empty) to the program holding CID's connection;
# prints its answer (empty if none within SECONDS).
hold_say() {
	local l=
	[ -z "$2" ] || echo "$2" >&"${hw[$1]}"
	read -r -t "$3" l <&"${hr[$1]}" || true
	echo "$l"
}
# hold_end CID: the program closes its connection and ends.
hold_end() {
	local w=${hw[$1]} r=${hr[$1]}
	l=$(hold_say "$1" close 10)
	[ "$l" = closed ] || fail "round ${i:-0}: the connection held into guest $1 did not close: ${l:-nothing}"
	exec {w}>&- {r}<&-
}
# boot CMD: a guest on vm3.sock running CMD, console in $tmp/g.log; sets gpid.
boot() {
	rm -f "$tmp/g.log"
	bash "$here/run-guest.sh" --kernel 6.1 --pvh --socket "$tmp/vm3.sock" --timeout 3600 \
		--log "$tmp/g.log" -- "$1" >"$tmp/g.out" 2>&1 &
	gpid=$!
	rpids+=("$gpid")
}
# guest_line PATTERN SECONDS: until the guest's console shows PATTERN; fails the round if
# the guest run ends first or a scenario fails.
guest_line() {
	local _
	for _ in $(seq $(($2 * 10))); do
		grep -aq "$1" "$tmp/g.log" 2>/dev/null && return 0
		grep -aq "UVT RESULT .* FAIL" "$tmp/g.log" 2>/dev/null &&
			fail "round $i: $(grep -a "UVT RESULT .* FAIL" "$tmp/g.log")"
		if ! kill -0 "$gpid" 2>/dev/null; then
			rc=0
			wait "$gpid" || rc=$?
			if [ -n "${early_panic_ok:-}" ] && ! grep -aq "UVT INIT" "$tmp/g.log" &&
				grep -aq "IO-APIC + timer\|8254 timer not connected" "$tmp/g.log"; then
				return 2
			fi
			fail "round $i: the guest run ended (status $rc) before '$1'"
		fi
		sleep 0.1
	done
	fail "round $i: no '$1' from the guest within $2 s"
}
# boot_ready CMD: boot a guest running CMD (which starts with a STREAM echo) until that echo
# passed, booting again after a failed timer check (UVT_BOOT_RETRIES; panics counts them).
boot_ready() {
	local try
	for try in $(seq $((UVT_BOOT_RETRIES + 1))); do
		boot "$1"
		rc=0
		early_panic_ok=1 guest_line "UVT RESULT stream-echo PASS" 300 || rc=$?
		[ "$rc" = 0 ] && return 0
		panics=$((panics + 1))
		echo "round $i: the guest kernel's timer check failed:" \
			"$(grep -a -m1 -o "IO-APIC + timer.*\|8254 timer not connected.*" "$tmp/g.log");" \
			"booting again"
	done
	fail "round $i: the guest kernel's timer check failed $try times in a row"
}
panics=0

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" ||
	fail "uvsockd not ready"
"$ECHO" --listen 5000 >"$tmp/echo.host.log" 2>&1 &
pids+=("$!")
"$HOST" writer 5002 "$UVT_FOREVER" >"$tmp/writer.host.log" 2>&1 &
pids+=("$!")
"$GUEST" --socket "$tmp/vm4.sock" --mode echo --listen 5000 --conns 1000000 \
	>"$tmp/survivor.out" 2>&1 &
pids+=("$!")
uvt_wait_attached 4 || fail "the userspace guest (CID 4) not attached"
wait_for "$tmp/echo.host.log" "listening" 10 || fail "host echo not listening"
wait_for "$tmp/writer.host.log" "listening" 10 || fail "host writer not listening"
hold 4 5000
pids+=("$hpid")
# echo (STREAM, SEQPACKET) and writer listeners, the connection held into CID 4
base=$(uvt_host_sockets)
[ "$base" = 4 ] || fail "daemon holds $base host sockets at the start, want 4"
echo "ok: uvsockd up, host echo and writer listening, a connection held into CID 4"

kinds=(listen bulk reader)
gone_max=0
t0=$(date +%s)
rounds=0
for i in $(seq "$ROUNDS"); do
	if [ "${UVT_QK_SECONDS:-0}" -gt 0 ] && [ $(($(date +%s) - t0)) -ge "$UVT_QK_SECONDS" ]; then
		echo "time's up (UVT_QK_SECONDS=$UVT_QK_SECONDS): $rounds of $ROUNDS rounds"
		break
	fi
	kind=${kinds[$(((i - 1) % 3))]}
	rpids=()
	attached=$(uvt_attached 3)
	left=$(detached)
	cmd="cid expect=3; stream-echo port=5000 sizes=1,65536"
	case $kind in
	listen) cmd+="; listen port=7000 n=2 gone=2 timeout=3600" ;;
	bulk) cmd+="; stream-bulk port=5000 bytes=$UVT_FOREVER timeout=3600" ;;
	reader) cmd+="; host-eof port=5002 bytes=$UVT_FOREVER timeout=3600" ;;
	esac
	tb=$(ms)
	boot_ready "$cmd"
	boot_ms=$(($(ms) - tb))
	[ "$(uvt_attached 3)" -gt "$attached" ] || fail "round $i: no attach logged"

	# the traffic to kill the guest under
	case $kind in
	listen)
		guest_line "UVT READY listen 7000" 60
		rm -f "$tmp/pp.out"
		hold 3 7000
		rpids+=("$hpid")
		echo wait-gone >&"${hw[3]}"
		timeout 120 "$PERF" --interval 0.05 pingpong --cid 3 --port 7000 --size 64 \
			--count 1000000000 --seconds 100 >"$tmp/pp.out" 2>&1 &
		ppid=$!
		rpids+=("$ppid")
		wait_for "$tmp/pp.out" "^STATS" 30 ||
			fail "round $i: no ping-pong into the guest: $(tail -1 "$tmp/pp.out")"
		;;
	bulk | reader)
		s=stream-bulk
		[ "$kind" = bulk ] || s="host-eof"
		guest_line "UVT BEGIN $s" 60
		for _ in $(seq 50); do
			[ "$(uvt_host_sockets)" -gt "$base" ] && break
			sleep 0.2
		done
		[ "$(uvt_host_sockets)" -gt "$base" ] || fail "round $i: the guest's $s connection never came"
		sleep 1 # data flowing
		;;
	esac
	# the survivor: a new connection with round trips across the kill
	rm -f "$tmp/spp.out"
	timeout 60 "$PERF" --interval 0 pingpong --cid 4 --port 5000 --size 64 \
		--count 1000000000 --seconds 3 >"$tmp/spp.out" 2>&1 &
	spid=$!
	rpids+=("$spid")
	writer_fails=$(grep -c "writer FAIL" "$tmp/writer.host.log" || true)

	qemu=$(pgrep -f "path=$tmp/vm3.sock" || true)
	[[ $qemu =~ ^[0-9]+$ ]] || fail "round $i: QEMU pid '$qemu'"
	grep -aq "UVT DONE\|UVT RESULT .* FAIL" "$tmp/g.log" && fail "round $i: the guest stopped before the kill"
	tk=$(ms)
	kill -9 "$qemu"

	# the host programs end with Linux's errors, at once
	how=ECONNRESET
	case $kind in
	listen)
		l=$(hold_say 3 "" "$UVT_GONE_MAX_S")
		want="gone Connection reset by peer, send Connection reset by peer, then EPIPE"
		[ "$l" = "$want" ] || fail "round $i: the held connection: '${l:-no answer}', want '$want'"
		wait_gone "$ppid" || fail "round $i: the ping-pong into the guest hangs"
		gone_ms=$(($(ms) - tk))
		rc=0
		wait "$ppid" || rc=$?
		[ "$rc" = 1 ] || fail "round $i: the ping-pong's status is $rc, want 1"
		grep -q "recv: Connection reset by peer\|send: Connection reset by peer" "$tmp/pp.out" ||
			fail "round $i: the ping-pong: $(tail -1 "$tmp/pp.out"), want ECONNRESET"
		hold_end 3
		wait "$hpid" || fail "round $i: hold failed"
		;;
	bulk)
		sockets_back || fail "round $i: the echo's connection not released in $UVT_GONE_MAX_S s" \
			"($n host sockets, want $base)"
		gone_ms=$(($(ms) - tk))
		;;
	reader)
		for _ in $(seq $((UVT_GONE_MAX_S * 20))); do
			[ "$(grep -c "writer FAIL" "$tmp/writer.host.log" || true)" -gt "$writer_fails" ] &&
				break
			sleep 0.05
		done
		gone_ms=$(($(ms) - tk))
		w=$(grep "writer " "$tmp/writer.host.log" | tail -1)
		[ "$(grep -c "writer FAIL" "$tmp/writer.host.log" || true)" -gt "$writer_fails" ] ||
			fail "round $i: the writer did not end in $UVT_GONE_MAX_S s (last: '$w')"
		case $w in
		"writer FAIL error Connection reset by peer after "*) ;;
		*) fail "round $i: the writer: '$w', want ECONNRESET" ;;
		esac
		;;
	esac
	[ "$gone_ms" -gt "$gone_max" ] && gone_max=$gone_ms

	for _ in $(seq $((UVT_GONE_MAX_S * 10))); do
		[ "$(detached)" -gt "$left" ] && break
		sleep 0.1
	done
	[ "$(detached)" -gt "$left" ] || fail "round $i: uvsockd did not log the detach"
	kill -0 "$dpid" 2>/dev/null || fail "round $i: uvsockd died"
	rc=0
	wait "$gpid" || rc=$?
	[ "$rc" = 1 ] || fail "round $i: run-guest.sh status $rc, want 1 (QEMU killed)"
	rc=0
	wait "$spid" || rc=$?
	[ "$rc" = 0 ] || fail "round $i: the ping-pong to the userspace guest: $(tail -2 "$tmp/spp.out")"
	rpids=()
	l=$(hold_say 4 ping 20)
	[ "$l" = "ping ok" ] || fail "round $i: the connection held into CID 4: ${l:-no answer}"
	sockets_back || fail "round $i: $n host sockets after the round, want $base"
	echo "ok: round $i ($kind): booted in $boot_ms ms, killed under traffic; host side ended" \
		"$gone_ms ms later with $how; detached; survivors fine"
	rounds=$i
	if [ "$i" = 1 ]; then
		fds1=$(daemon_fds)
		maps1=$(daemon_maps)
		rss1=$(daemon_rss)
	fi
done
t1=$(date +%s)
fdsn=$(daemon_fds)
mapsn=$(daemon_maps)
rssn=$(daemon_rss)
[ $((fdsn - fds1)) -le $UVT_FD_SLACK ] ||
	fail "uvsockd's open fds: $fds1 after round 1, $fdsn after round $rounds"
[ $((mapsn - maps1)) -le $UVT_MAPS_SLACK ] ||
	fail "uvsockd's mappings: $maps1 after round 1, $mapsn after round $rounds"
[ $((rssn - rss1)) -le $UVT_RSS_SLACK_KB ] ||
	fail "uvsockd's private memory grew from $rss1 to $rssn kB over $rounds rounds"
echo "ok: QEMU SIGKILLed $rounds times under traffic in $((t1 - t0)) s; host programs ended" \
	"with ECONNRESET within $gone_max ms (" \
	"boots again after a failed timer check in the guest: $panics); uvsockd fds $fds1 -> $fdsn, mappings $maps1 -> $mapsn," \
	"RssAnon $rss1 -> $rssn kB"

# a guest after the kills: new connections both ways, a clean power-off
i=final
rpids=()
boot_ready "cid expect=3; stream-echo port=5000 sizes=1,65536,300000; listen port=7000 n=1"
guest_line "UVT READY listen 7000" 300
"$HOST" client 3 7000 1 >"$tmp/client3.out" 2>&1 || fail "host -> guest after the kills"
wait "$gpid" || fail "the guest after the kills: $(tail -1 "$tmp/g.out")"
rpids=()
hold_end 4
timeout 30 "$PERF" --interval 0 pingpong --cid 4 --port 5000 --size 64 --count 1000 \
	>"$tmp/spp.out" 2>&1 || fail "ping-pong with the userspace guest at the end"
base=3
sockets_back || fail "daemon holds $n host sockets at the end, want 3 (the listeners)"
echo "ok: a guest booted after the kills works both ways; the userspace guest too; no host socket left"
echo "1 passed, 0 failed"
