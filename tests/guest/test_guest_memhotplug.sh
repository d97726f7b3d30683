#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Guest memory changing under a running device: while the host holds a connection to the
# guest, memory is hot-plugged through QMP, so QEMU sends SET_MEM_TABLE to a running
# uvsockd (DPDK then unmaps the old regions without destroy_device). The daemon must pause,
# remap and resume: the held connection keeps working and the guest then runs the echo
# scenarios (which use buffers anywhere in the new memory table).
set -euo pipefail
UVSOCKD=$1
ECHO=$2
HOST=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvt_init hp
fail() {
	echo "FAIL: $*"
	echo "--- uvsockd"; grep -v "VHOST_CONFIG.*read message\|VHOST_CONFIG.*vring" "$tmp/uvsockd.log" | tail -30
	echo "--- guest"; tail -15 "$tmp/g.log" 2>/dev/null || true
	echo "--- qmp"; cat "$tmp/qmp.out" 2>/dev/null || true
	exit 1
}
command -v socat >/dev/null || fail "socat is needed (scripts/install-deps.sh installs it)"

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
"$ECHO" --listen 5000 >"$tmp/echo.out" 2>&1 &
pids+=("$!")

bash "$here/run-guest.sh" --kernel 6.1 --socket "$tmp/vm3.sock" --maxmem 1024 --qmp "$tmp/qmp.sock" \
	--timeout 300 --log "$tmp/g.log" -- \
	"listen port=7000 n=1 timeout=200; stream-echo port=5000 sizes=1,4096,65536,300000; seq-bounds port=5001; stream-bulk port=5000 bytes=8388608" \
	>"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
wait_for "$tmp/g.log" "UVT READY listen" 120 || fail "guest never listened"
wait_for "$tmp/uvsockd.log" "guest cid 3 attached" 5 || fail "guest not attached"

mkfifo "$tmp/in" "$tmp/out"
"$HOST" hold 3 7000 <"$tmp/in" >"$tmp/out" &
pids+=("$!")
exec 13>"$tmp/in" 23<"$tmp/out"
read -r -t 20 l <&23 || true
[ "${l:-}" = held ] || fail "could not hold a connection to the guest: ${l:-nothing}"
echo "ok: connection held"

before=$(grep -c "paused for vhost-user request 5" "$tmp/uvsockd.log" || true)
{
	printf '%s\n' '{"execute":"qmp_capabilities"}'
	sleep 0.3
	printf '%s\n' '{"execute":"object-add","arguments":{"qom-type":"memory-backend-memfd","id":"hp1","size":134217728,"share":true}}'
	sleep 0.3
	printf '%s\n' '{"execute":"device_add","arguments":{"driver":"pc-dimm","id":"dimm1","memdev":"hp1"}}'
	sleep 1
} | socat -t 5 - "UNIX-CONNECT:$tmp/qmp.sock" >"$tmp/qmp.out" 2>&1 || fail "QMP conversation failed"
grep -q '"error"' "$tmp/qmp.out" && fail "QEMU refused the hotplug"
wait_for "$tmp/uvsockd.log" "resumed after vhost-user request 5" 10 ||
	fail "no SET_MEM_TABLE reached the running daemon (or it never resumed)"
after=$(grep -c "paused for vhost-user request 5" "$tmp/uvsockd.log" || true)
[ "$after" -gt "$before" ] || fail "the daemon was not paused for SET_MEM_TABLE"
echo "ok: SET_MEM_TABLE on the running device: paused, remapped, resumed"

for _ in 1 2 3; do
	echo ping >&13
	read -r -t 20 l <&23 || true
	[ "${l:-}" = "ping ok" ] || fail "held connection after the remap: ${l:-no answer}"
done
echo "ok: held connection still echoes"
echo close >&13
wait $g || fail "guest: $(tail -1 "$tmp/g.out")"
grep -a "UVT RESULT" "$tmp/g.log"
echo "1 passed, 0 failed"
