#!/usr/bin/env bash
# The C checklist (tests/preload/checklist.c, preload-design.md section 7) through
# libuvsock-preload.so against a real Linux guest: the program listens first (the guest's
# `concurrent` scenarios connect to it), then works as a client of the guest's echo server
# (`listen`). The guest's scenario string comes from the program itself (--guest-cmd), so
# the connection counts on both sides always agree.
# Arguments: uvsockd path, shim path, checklist binary path.
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvp_init checklist "$@"
CHECKLIST=$3
shown=0
fail() {
	echo "FAIL: $*"
	[ "$shown" = 1 ] || { echo "--- checklist"; cat "$tmp/chk.out" 2>/dev/null || true; }
	echo "--- guest"; grep -a "UVT" "$tmp/g.log" 2>/dev/null | tail -15 || true
	exit 1
}
[ -x "$CHECKLIST" ] || fail "no checklist program at $CHECKLIST"
# never without the shim: the program itself refuses to run without it, too
cmd=$(LD_PRELOAD=$SHIM "$CHECKLIST" --guest-cmd) || fail "checklist --guest-cmd: $cmd"
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
start=$(date +%s)
LD_PRELOAD=$SHIM "$CHECKLIST" 3 >"$tmp/chk.out" 2>&1 &
chk=$!
pids+=("$chk")
wait_for "$tmp/chk.out" "^# listening" 10 || fail "the checklist program did not start listening"
bash "$guest/run-guest.sh" --socket "$tmp/vm3.sock" --timeout 300 --log "$tmp/g.log" -- \
	"$cmd" >"$tmp/g.out" 2>&1 &
g=$!
pids+=("$g")
# the checklist's lines as they come; tail ends with the program
tail -n +1 -f --pid="$chk" "$tmp/chk.out"
shown=1
rc=0
wait "$chk" || rc=$?
# the guest ends its listen scenario once the program's last connection is closed
wait_for "$tmp/g.log" "UVT DONE" 30 || fail "the guest did not finish within 30 s of the program"
grc=0
wait "$g" || grc=$?
grep -a "UVT RESULT" "$tmp/g.log" || true
echo "# total $(($(date +%s) - start)) s"
[ "$grc" = 0 ] || fail "guest: $(tail -1 "$tmp/g.out")"
[ "$rc" = 0 ] || { echo "FAIL: checklist exit status $rc"; exit 1; }
