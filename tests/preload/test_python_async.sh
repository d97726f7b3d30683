#!/usr/bin/env bash
# Unmodified python3 event loops on AF_VSOCK through libuvsock-preload.so and uvsockd, against
# a real Linux guest: a selectors (epoll) echo server, an asyncio.start_server(sock=...) echo
# server and an asyncio loop.sock_accept/sock_recv/sock_sendall echo server each serve the
# guest's `concurrent` scenario with 100 connections up at once, then its stream-echo (up to
# 300000 bytes in one go). Each server checks the sha256 of every stream it received against
# the guest's own payloads (vsock_async.py regenerates them) and that all 100 connections were
# open together; the guest checks every echo. Then a python SEQPACKET client checks the receive
# flags that vsock_echo.py does not (MSG_PEEK, MSG_TRUNC as an input flag, recvmsg_into,
# MSG_DONTWAIT) against the guest's echo server.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init pyasync "$@"
kinds=(selectors asyncio asyncio-sock)
declare -A port=([selectors]=5000 [asyncio]=5100 [asyncio-sock]=5200) spid=()
sizes=1,100,4096,65536,300000
n=100
passed=0
fail() {
	local k
	echo "FAIL: $*"
	for k in "${kinds[@]}"; do
		echo "--- $k server"; cat "$tmp/$k.log" 2>/dev/null || true
	done
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -15 || true
	exit 1
}
ok() {
	echo "ok: $*"
	passed=$((passed + 1))
}

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
for k in "${kinds[@]}"; do
	LD_PRELOAD=$SHIM python3 "$here/vsock_async.py" "$k" "${port[$k]}" "concurrent:$n" \
		"stream-echo:$sizes" >"$tmp/$k.log" 2>&1 &
	spid[$k]=$!
	pids+=("$!")
done
for k in "${kinds[@]}"; do
	wait_for "$tmp/$k.log" "$k: listening" 10 || fail "$k server did not start"
done
cmd=""
for k in "${kinds[@]}"; do
	cmd+="concurrent port=${port[$k]} n=$n; stream-echo port=${port[$k]} sizes=$sizes; "
done
cmd+="listen port=7000 n=1"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 240 --log "$tmp/g.log" \
	-- "$cmd" >"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
wait_for "$tmp/g.log" "UVT READY listen" 200 || fail "guest never reached its listen scenario"
LD_PRELOAD=$SHIM timeout 60 python3 "$here/vsock_seqflags.py" 3 7001 >"$tmp/seq.log" 2>&1 ||
	{ cat "$tmp/seq.log"; fail "python SEQPACKET flags client"; }
sed 's/^ok: /ok: python SEQPACKET /' "$tmp/seq.log"
ok "python SEQPACKET receive flags against the guest's echo ($(grep -c '^ok:' "$tmp/seq.log") checks)"
wait "$g" || fail "guest: $(tail -1 "$tmp/g.out")"
grep -a "UVT RESULT" "$tmp/g.log"
for k in "${kinds[@]}"; do
	ok "guest concurrent n=$n and stream-echo against the $k server: PASS"
done

# each server has exited by itself once its 101 connections ended, with its verdict
for k in "${kinds[@]}"; do
	for _ in $(seq 100); do
		kill -0 "${spid[$k]}" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "${spid[$k]}" 2>/dev/null && fail "$k server still running after the guest finished"
	wait "${spid[$k]}" || fail "$k server: $(tail -1 "$tmp/$k.log")"
	line=$(grep "^$k: conns=" "$tmp/$k.log") || fail "$k server printed no verdict"
	[[ $line =~ conns=([0-9]+)\ bytes=([0-9]+)\ max_open=([0-9]+)\ payloads=exact$ ]] ||
		fail "$k server: $line"
	[ "${BASH_REMATCH[1]}" -eq $((n + 1)) ] || fail "$k server: ${BASH_REMATCH[1]} connections"
	[ "${BASH_REMATCH[3]}" -ge "$n" ] || fail "$k server: only ${BASH_REMATCH[3]} open at once"
	ok "$k server: ${BASH_REMATCH[1]} connections, ${BASH_REMATCH[3]} open at once," \
		"${BASH_REMATCH[2]} bytes, every payload's sha256 as the guest sent it"
done
echo "$passed passed, 0 failed"
