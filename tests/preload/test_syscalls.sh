#!/usr/bin/env bash
# "No system call per message on a busy connection": a C program (busy_client.c) writes
# 65536 messages of 64 bytes to a real guest's echo server through libuvsock-preload.so while
# another thread reads and checks the echo; strace counts every system call of the program.
# They must be fewer than a tenth of the messages (sends alone would be 65536 with a kernel
# socket, and as many receives again).
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init syscalls "$@"
CLIENT=$3
MSGS=65536
fail() {
	echo "FAIL: $*"
	echo "--- client"; cat "$tmp/client.log" 2>/dev/null || true
	echo "--- strace"; cat "$tmp/strace.txt" 2>/dev/null || true
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -5 || true
	exit 1
}
command -v strace >/dev/null || fail "strace is not installed (scripts/install-deps.sh installs it)"
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 200 --log "$tmp/g.log" -- \
	"listen port=7000 n=1" >"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
wait_for "$tmp/g.log" "UVT READY listen" 120 || fail "guest never listened"
# LD_PRELOAD for the traced program only (-E), not for strace itself
timeout 120 strace -f -c -o "$tmp/strace.txt" -E "LD_PRELOAD=$SHIM" \
	"$CLIENT" 3 7000 "$MSGS" 64 >"$tmp/client.log" 2>&1 || fail "client failed"
cat "$tmp/client.log"
calls=$(awk '$NF == "total" { print $(NF - 2) }' "$tmp/strace.txt")
[ -n "$calls" ] || fail "no strace summary"
echo "system calls: $calls for $MSGS messages sent and echoed"
grep -E "sendto|recvfrom|poll|futex|sendmsg|recvmsg" "$tmp/strace.txt" || true
[ "$calls" -lt $((MSGS / 10)) ] || fail "$calls system calls for $MSGS messages"
echo "ok: $calls system calls for $MSGS messages (limit $((MSGS / 10)))"
wait "$g" || fail "guest: $(tail -1 "$tmp/g.out")"
echo "1 passed, 0 failed"
