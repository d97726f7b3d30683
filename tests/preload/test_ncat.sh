#!/usr/bin/env bash
# Unmodified ncat --vsock (nmap's ncat, Debian 7.93) through libuvsock-preload.so and uvsockd,
# against a real Linux guest, in the modes that need no fork:
#  - ncat -l as the guest's STREAM echo server: its stdin and stdout are one FIFO, so whatever
#    it receives goes back out (guest stream-echo, up to 300000 bytes in one go);
#  - ncat -l as the guest's host-eof writer: stdin is 1 MiB of the i%251 pattern, then EOF,
#    which ncat turns into shutdown(SHUT_WR); the guest checks every byte, then sends "bye\n";
#  - ncat -l -k (one process, several connections one after the other) as the FIFO echo for
#    two stream-echo and one 2 MiB stream-bulk connection;
#  - ncat as a client (ncat --vsock 3 7000) of the guest's echo server, five runs of 256 KiB to
#    8 MiB of random bytes out, the same bytes back (cmp).
# The modes that fork (-k with --exec/--sh-exec, -e) are in test_ncat_exec.sh.
# ncat's loops are select()-based. The shim does not emulate POLLOUT yet (the fd always
# selects writable): the listeners write with blocking sends while the guest reads, so they do
# not depend on it, but the client's non-blocking connect does (see the client below).
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init ncat "$@"
passed=0
fail() {
	local f
	echo "FAIL: $*"
	for f in "$tmp"/*.err; do
		[ -s "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }
	done
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -15 || true
	exit 1
}
ok() {
	echo "ok: $*"
	passed=$((passed + 1))
}
command -v ncat >/dev/null || fail "ncat is not installed (scripts/install-deps.sh installs it)"
# wait_exit PID SECONDS: PID's exit status, 124 if it still runs after SECONDS
wait_exit() {
	local _
	for _ in $(seq $(($2 * 10))); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$1" 2>/dev/null && return 124
	wait "$1"
}
sizes=1,100,4096,65536,300000
bulk=2097152
client_runs=(262144 262144 262144 1048576 8388608)

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
# every ncat below runs with LD_PRELOAD=$SHIM: never the kernel's AF_VSOCK
# stdin opened read-write: the FIFO never reports EOF and opening it does not block
mkfifo "$tmp/echo.fifo" "$tmp/echok.fifo"
# shellcheck disable=SC2094 # one FIFO as stdin and stdout: what ncat receives goes back out
LD_PRELOAD=$SHIM ncat --vsock -l 5000 <>"$tmp/echo.fifo" >"$tmp/echo.fifo" 2>"$tmp/echo.err" &
echo_pid=$!
pids+=("$!")
python3 -c 'import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(1 << 20)))' \
	>"$tmp/pattern"
LD_PRELOAD=$SHIM ncat --vsock -l 5002 <"$tmp/pattern" >"$tmp/writer.out" 2>"$tmp/writer.err" &
writer_pid=$!
pids+=("$!")
# shellcheck disable=SC2094
LD_PRELOAD=$SHIM ncat --vsock -l -k 5100 <>"$tmp/echok.fifo" >"$tmp/echok.fifo" \
	2>"$tmp/echok.err" &
echok_pid=$!
pids+=("$!")
sleep 0.3
for p in "$echo_pid" "$writer_pid" "$echok_pid"; do
	kill -0 "$p" 2>/dev/null || fail "an ncat listener exited at start"
done

cmd="stream-echo port=5000 sizes=$sizes; host-eof port=5002 bytes=1048576; "
cmd+="stream-echo port=5100 sizes=$sizes; stream-bulk port=5100 bytes=$bulk; "
cmd+="stream-echo port=5100 sizes=$sizes; listen port=7000 n=${#client_runs[@]}"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 240 --log "$tmp/g.log" -- "$cmd" \
	>"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
wait_for "$tmp/g.log" "UVT READY listen" 200 || fail "guest never reached its listen scenario"

# the guest reports in the order of $cmd; all but listen have ended by now
mapfile -t res < <(grep -a "UVT RESULT" "$tmp/g.log" | sed 's/.*UVT RESULT //')
expect_pass() { # index, what
	[[ ${res[$1]:-} =~ ^[a-z-]+\ PASS ]] || fail "$2: guest ${res[$1]:-(no result)}"
}
expect_pass 0 "ncat -l as echo"
rc=0
wait_exit "$echo_pid" 10 || rc=$?
[ "$rc" -eq 0 ] || fail "ncat -l (echo): exit status $rc (124: still running)"
ok "ncat -l as echo (FIFO): guest ${res[0]}; ncat exited 0"
expect_pass 1 "ncat -l as writer"
wait_exit "$writer_pid" 10 || rc=$?
[ "$rc" -eq 0 ] || fail "ncat -l (writer): exit status $rc (124: still running)"
[ "$(cat "$tmp/writer.out")" = bye ] ||
	fail "ncat -l (writer) received '$(head -c 100 "$tmp/writer.out")'"
ok "ncat -l <1 MiB: guest ${res[1]}; then ncat got 'bye' and exited 0"
for i in 2 3 4; do
	expect_pass "$i" "ncat -l -k as echo"
	ok "ncat -l -k as echo (FIFO), connection $((i - 1)) of 3: guest ${res[$i]}"
done
kill -0 "$echok_pid" 2>/dev/null || fail "ncat -l -k exited"

# client: ncat --vsock 3 7000 five times through the guest's echo, random data, cmp. Each run
# connects anew: ncat's nsock connects non-blocking and waits for writability, so a connecting
# socket that selects writable too early fails the run (send before the connection is up).
nfail=0
for i in "${!client_runs[@]}"; do
	sz=${client_runs[$i]}
	head -c "$sz" /dev/urandom >"$tmp/blob"
	rc=0
	LD_PRELOAD=$SHIM timeout 60 ncat --vsock 3 7000 <"$tmp/blob" >"$tmp/blob.back" \
		2>"$tmp/client$i.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "ncat client run $((i + 1)) ($sz bytes): status $rc: $(cat "$tmp/client$i.err")"
		nfail=$((nfail + 1))
	elif ! cmp -s "$tmp/blob" "$tmp/blob.back"; then
		echo "ncat client run $((i + 1)): $(stat -c %s "$tmp/blob.back") bytes back, differing" \
			"from the $sz sent"
		nfail=$((nfail + 1))
	fi
done
[ "$nfail" -eq 0 ] || fail "ncat client: $nfail of ${#client_runs[@]} runs failed"
ok "ncat --vsock 3 7000: ${#client_runs[@]} runs (256 KiB x3, 1 MiB, 8 MiB) through the guest's" \
	"echo, identical"

wait "$g" || fail "guest: $(tail -1 "$tmp/g.out")"
grep -a "UVT RESULT listen PASS" "$tmp/g.log" || fail "guest listen"
ok "guest listen: served the ${#client_runs[@]} ncat client connections, each ended cleanly"
echo "$passed passed, 0 failed"
