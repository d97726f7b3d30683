#!/usr/bin/env bash
# Unmodified ncat --vsock (Debian 7.93) through libuvsock-preload.so and uvsockd, in the
# listen modes that fork, as the echo server of a real Linux guest's STREAM scenarios:
#  - ncat -l -e /bin/cat: one connection; ncat forks cat with two pipes and relays between
#    the socket and the pipes itself (the vsock socket is used only by ncat, but cat inherits
#    it across fork and exec);
#  - ncat -l -k --sh-exec "tee /dev/null": every connection is accepted by the parent, which
#    forks; the child relays that socket to the command while the parent closes its copy and
#    accepts the next one (guest stream-echo, a 2 MiB stream-bulk, stream-echo again, then 8
#    concurrent connections, i.e. 8 children at once: ncat listens with a backlog of 10).
#    Not cat here: ncat's relay moves 8 KiB per direction per select() round with blocking
#    pipe writes, and cat holds up to 128 KiB read from its stdin until it has written it
#    all, so a peer that keeps sending (stream-bulk) deadlocks ncat against cat with both
#    pipes full, whatever the socket (tee works in 8 KiB steps, like the relay).
# The guest checks every echo byte for byte. Each mode's scenarios are reported separately.
# Not used: the guest's shutwr, since ncat's relay (netexec) ends the connection as soon as it
# reads EOF from the socket, before the command's output came back (so with a kernel socket too).
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init ncatx "$@"
passed=0
failed=()
ncat_pids=()
# ncat -k forks a child per connection (and each child runs sh and cat): end them all, by pid
kill_tree() {
	local c
	for c in $(pgrep -P "$1" || true); do kill_tree "$c"; done
	kill "$1" 2>/dev/null || true
}
cleanup() {
	local p
	for p in "${ncat_pids[@]}"; do kill_tree "$p"; done
	uvt_cleanup
}
trap cleanup EXIT
fail() {
	local f
	echo "FAIL: $*"
	for f in "$tmp"/*.err; do
		[ -s "$f" ] && { echo "--- $(basename "$f")"; cat "$f"; }
	done
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -15 || true
	exit 1
}
command -v ncat >/dev/null || fail "ncat is not installed (scripts/install-deps.sh installs it)"
sizes=1,100,4096,65536,300000

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
# every ncat runs with the shim: never the kernel's AF_VSOCK
LD_PRELOAD=$SHIM ncat --vsock -l 5000 -e /bin/cat </dev/null >/dev/null 2>"$tmp/exec.err" &
exec_pid=$!
ncat_pids+=("$!")
LD_PRELOAD=$SHIM ncat --vsock -l -k 5100 --sh-exec "tee /dev/null" </dev/null >/dev/null \
	2>"$tmp/keep.err" &
keep_pid=$!
ncat_pids+=("$!")
sleep 0.3
kill -0 "$exec_pid" 2>/dev/null || fail "ncat -l -e exited at start"
kill -0 "$keep_pid" 2>/dev/null || fail "ncat -l -k --sh-exec exited at start"

# per scenario: the mode it tests (the guest reports them in this order)
modes=("ncat -l -e /bin/cat" "ncat -l -k --sh-exec tee" "ncat -l -k --sh-exec tee"
	"ncat -l -k --sh-exec tee" "ncat -l -k --sh-exec tee")
cmd="stream-echo port=5000 sizes=$sizes timeout=30; "
cmd+="stream-echo port=5100 sizes=$sizes timeout=30; "
cmd+="stream-bulk port=5100 bytes=2097152 timeout=30; "
cmd+="stream-echo port=5100 sizes=$sizes timeout=30; concurrent port=5100 n=8 timeout=30"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 240 --log "$tmp/g.log" -- "$cmd" \
	>"$tmp/g.out" 2>&1 || true
mapfile -t results < <(grep -a "UVT RESULT" "$tmp/g.log" | sed 's/.*UVT RESULT //')
for i in "${!modes[@]}"; do
	r=${results[$i]:-"(no result: guest stopped)"}
	if [[ $r =~ ^[a-z-]+\ PASS ]]; then
		echo "ok: ${modes[$i]}: guest $r"
		passed=$((passed + 1))
	else
		echo "FAIL: ${modes[$i]}: guest $r"
		failed+=("${modes[$i]}: ${r%% *}")
	fi
done

# ncat -l -e exits once its connection ended; ncat -k keeps listening
rc=0
for _ in $(seq 50); do
	kill -0 "$exec_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$exec_pid" 2>/dev/null; then
	failed+=("ncat -l -e still running after its connection")
else
	wait "$exec_pid" || rc=$?
	if [ "$rc" -ne 0 ]; then
		failed+=("ncat -l -e exited with status $rc")
	else
		echo "ok: ncat -l -e /bin/cat exited 0 after its connection"
		passed=$((passed + 1))
	fi
fi
if kill -0 "$keep_pid" 2>/dev/null; then
	echo "ok: ncat -l -k --sh-exec still listening"
	passed=$((passed + 1))
else
	failed+=("ncat -l -k --sh-exec exited")
fi
if [ ${#failed[@]} -gt 0 ]; then
	fail "${#failed[@]} check(s): $(printf '%s; ' "${failed[@]}")"
fi
echo "$passed passed, 0 failed"
