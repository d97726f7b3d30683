#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# The real-guest scenario suite without QEMU: two uvsock-guest instances (CID 3 and 4) on one
# uvsockd serve programs "inside" them through their own control sockets, and the guest
# scenario program (tests/guest/uvsock-gtest.c, host build) runs in each through
# libuvsock-preload.so against the same host peers as tests/guest/test_two_guests.sh: echo
# 5000/5001, writer 5002, sink 5003, SEQPACKET sink 5004. Every scenario of
# tests/guest/README.md except driver-reload (no guest kernel) runs, STREAM and SEQPACKET,
# both guests at once; then the host connects into each guest (STREAM, SEQPACKET, 4 MiB echo,
# a host program SIGKILLed mid-connection); then unmodified Python (tests/preload/vsock_echo.py)
# as a server in one guest and as a client in the other. Afterwards uvsockd must hold only the five
# listeners and each uvsock-guest no socket at all.
set -euo pipefail
UVSOCKD=$1
GUEST=$2
GTEST=$3
SHIM=$4
ECHO=$5
HOST=$6
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init scen
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do
		echo "--- $f"
		grep -v VHOST_CONFIG "$f" | tail -30
	done
	exit 1
}
[ -f "$SHIM" ] || fail "no shim at $SHIM"
SHIM=$(uvt_preload "$SHIM")

uvt_start_daemon -l 0 --no-huge -m 64 --file-prefix="uvtsc$$" -- \
	--vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" ||
	fail "uvsockd did not become ready"
for g in 3 4; do
	"$GUEST" --socket "$tmp/vm$g.sock" --mode serve --control "$tmp/guest$g.sock" \
		>"$tmp/guest$g.log" 2>&1 &
	eval "gpid$g=\$!"
	pids+=("$!")
done
for g in 3 4; do
	wait_for "$tmp/guest$g.log" "serving programs on" 10 || fail "uvsock-guest $g not serving"
	uvt_wait_attached "$g" || fail "uvsock-guest $g not attached"
done
uvt_host_peers "$ECHO" "$HOST"

# The host build refuses to run without the shim (the kernel's AF_VSOCK is never touched).
if UVSOCK_CONTROL=$tmp/guest3.sock "$GTEST" cid expect=3 >"$tmp/noshim.out" 2>&1; then
	fail "uvsock-gtest-shim ran without the shim"
fi
grep -q "runs only under libuvsock-preload.so" "$tmp/noshim.out" || fail "no refusal message"
echo "ok: the scenario program refuses to run without the shim"

run_in_guest() { # run_in_guest CID OTHER: the scenarios as a program in guest CID
	UVSOCK_CONTROL=$tmp/guest$1.sock LD_PRELOAD=$SHIM timeout 300 "$GTEST" run \
		"cid expect=$1; $UVT_COMMON; isolate cid=$2 port=5000; listen port=7000 n=4 gone=1" \
		>"$tmp/g$1.log" 2>&1
}
run_in_guest 3 4 &
g3=$!
pids+=("$g3")
run_in_guest 4 3 &
g4=$!
pids+=("$g4")

# host -> guest: once each guest's program listens, both types, then a host program that dies
rc3=0 rc4=0
uvt_host_into_guest 3 "$tmp/g3.log" $g3 "$ECHO" "$HOST" || rc3=$?
uvt_host_into_guest 4 "$tmp/g4.log" $g4 "$ECHO" "$HOST" || rc4=$?
wait $g3 || rc3=1
wait $g4 || rc4=1
grep -a "UVT RESULT" "$tmp/g3.log" | sed 's/^/cid 3: /'
grep -a "UVT RESULT" "$tmp/g4.log" | sed 's/^/cid 4: /'
cat "$tmp"/client*.host.log
[ "$rc3" = 0 ] || fail "guest 3: $(tail -1 "$tmp/g3.log")"
[ "$rc4" = 0 ] || fail "guest 4: $(tail -1 "$tmp/g4.log")"
for g in 3 4; do
	grep -q "UVT DONE pass=12 fail=0" "$tmp/g$g.log" ||
		fail "guest $g: not all 12 scenarios passed: $(grep 'UVT DONE' "$tmp/g$g.log")"
done
why=$(uvt_host_peers_ok) || fail "$why"

# Segment reuse through libuvsock (lib/uvs_srv.c, "Segment reuse"): a program in guest 3 (on
# uvsock-guest's server, the daemon's code) gets its closed connection's segment back, and
# does not once it forked (a child still maps it).
for mode in nofork fork; do
	UVSOCK_CONTROL=$tmp/guest3.sock timeout 60 "$HOST" reuse 2 5000 "$mode" 10 \
		>>"$tmp/reuse.log" 2>&1 || fail "segment reuse ($mode): $(tail -1 "$tmp/reuse.log")"
	tail -1 "$tmp/reuse.log"
done
# fork() tells the daemon first, but waits at most about a second (UVS_FORK_NOTICE_TIMEOUT_MS)
# for one that does not answer: a program in guest 3 with a connection forks while guest 3's
# uvsock-guest is stopped.
mkfifo "$tmp/hold.in"
UVSOCK_CONTROL=$tmp/guest3.sock timeout 60 "$HOST" hold 2 5000 <"$tmp/hold.in" \
	>"$tmp/forkhold.log" 2>&1 &
hp=$!
pids+=("$hp")
exec 7>"$tmp/hold.in"
wait_for "$tmp/forkhold.log" "held" 20 || fail "fork notice: no connection held"
kill -STOP "$gpid3"
echo fork >&7
wait_for "$tmp/forkhold.log" "forked in" 10 || { kill -CONT "$gpid3"; fail "fork() hung on a stopped daemon"; }
kill -CONT "$gpid3"
echo close >&7
exec 7>&-
wait "$hp" || fail "fork notice: the holding program failed: $(tail -1 "$tmp/forkhold.log")"
ms=$(sed -n 's/^forked in \([0-9]*\) ms$/\1/p' "$tmp/forkhold.log")
if [ "${ms:-0}" -lt 900 ] || [ "$ms" -ge 3000 ]; then
	fail "fork() with a stopped daemon took ${ms:-?} ms, want about 1000"
fi
echo "ok: fork() with a stopped daemon returned in $ms ms"

# Unmodified Python in the guest and on the host, both through the shim: a server in guest 3
# with a host client, a host server with a client in guest 4 (STREAM and SEQPACKET each).
PY=$here/../preload/vsock_echo.py
UVSOCK_CONTROL=$tmp/guest3.sock LD_PRELOAD=$SHIM python3 "$PY" serve 8000 >"$tmp/pyg.log" 2>&1 &
pyg=$!
pids+=("$pyg")
LD_PRELOAD=$SHIM python3 "$PY" serve 8100 >"$tmp/pyh.log" 2>&1 &
pyh=$!
pids+=("$pyh")
# listening, however long python3 takes to start on a loaded machine (seconds under ASan)
wait_for "$tmp/pyg.log" "python echo: listening" 60 || fail "python: no server in guest 3"
wait_for "$tmp/pyh.log" "python echo: listening" 60 || fail "python: no server on the host"
LD_PRELOAD=$SHIM timeout 60 python3 "$PY" client 3 8000 >"$tmp/pyc3.log" 2>&1 ||
	fail "python: host client to a python server in guest 3"
UVSOCK_CONTROL=$tmp/guest4.sock LD_PRELOAD=$SHIM timeout 60 python3 "$PY" client 2 8100 \
	>"$tmp/pyc4.log" 2>&1 || fail "python: client in guest 4 to a python server on the host"
kill "$pyg" "$pyh"
wait "$pyg" "$pyh" 2>/dev/null || true
echo "ok: python under the shim, server in the guest and on the host, STREAM and SEQPACKET"

# Nothing leaked on either side, and no close sequence left waiting: the daemon holds the five
# listeners within 2 s (both ends closing at once answer each other with RST, as Linux does;
# before that fix, sockets lingered for the 8 s close timeout); each uvsock-guest holds none.
for i in $(seq 4); do
	n=$(uvt_host_sockets)
	[ "$n" = 5 ] && break
	sleep 0.5
done
echo "uvsockd: $n host sockets after $((i / 2)) s"
[ "$n" = 5 ] || fail "uvsockd holds $n host sockets, want 5 (the listeners)"
for g in 3 4; do
	eval "kill -TERM \$gpid$g"
	wait_for "$tmp/guest$g.log" "socket(s) open at exit" 10 || fail "uvsock-guest $g did not stop"
	grep -q "^uvsock-guest: 0 socket(s) open at exit" "$tmp/guest$g.log" ||
		fail "uvsock-guest $g: $(grep 'open at exit' "$tmp/guest$g.log")"
done
echo "guestless scenarios: 12 scenarios in each of two uvsock-guests, host -> guest, no leak"
echo "1 passed, 0 failed"
