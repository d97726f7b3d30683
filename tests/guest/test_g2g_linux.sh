#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Guest-to-guest traffic between two real Linux guests of one group (--vm ...,group=NAME):
# CID 3 runs Debian's 6.1 kernel and serves STREAM echo on 7000 and SEQPACKET echo on 7001
# (the `listen` scenario); CID 4 runs the 6.12 series and, once 3 listens, runs the STREAM
# scenarios against CID 3 instead of the host: stream-echo (1 B to 300000 B), stream-bulk
# (4 MiB, FNV-checked) and concurrent (20 connections), then seq-bounds on 7001 (message
# boundaries, MSG_EOR, MSG_TRUNC): 23 connections, which guest 3 must all see end cleanly. Linux's drivers post 4 KiB receive buffers and send up to
# 64 KiB, so uvsockd must split packets; each side's driver checks the source CID. Guest 5
# (a userspace guest in no group) must not reach guest 3 (its connect times out).
set -euo pipefail
UVSOCKD=$1
GUEST=$2
HOST=$3
SS=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvt_init g2gl
fail() {
	echo "FAIL: $*"
	echo "--- uvsockd (last 40 lines)"; grep -v VHOST_CONFIG "$tmp/uvsockd.log" | tail -40
	for f in "$tmp"/*.log "$tmp"/*.out; do echo "--- $f"; grep -a "UVT\|FAIL\|error" "$f" | tail -20; done
	exit 1
}
uvt_start_daemon -l 0 --no-huge -m 64 --file-prefix="uvtg2g$$" -- \
	--vm "cid=3,socket=$tmp/vm3.sock,group=blue" --vm "cid=4,socket=$tmp/vm4.sock,group=blue" \
	--vm "cid=5,socket=$tmp/vm5.sock" || fail "uvsockd did not become ready"

bash "$here/run-guest.sh" --kernel 6.1 --socket "$tmp/vm3.sock" --timeout 400 --log "$tmp/g3.log" -- \
	"cid expect=3; listen port=7000 n=23 timeout=300" >"$tmp/g3.out" 2>&1 &
g3=$!
pids+=("$g3")
for _ in $(seq 600); do
	grep -aq "UVT READY listen" "$tmp/g3.log" 2>/dev/null && break
	kill -0 "$g3" 2>/dev/null || fail "guest 3 ended before listening"
	sleep 0.2
done
grep -aq "UVT READY listen" "$tmp/g3.log" || fail "guest 3 never listened"

# a guest outside the group: refused, as any guest-to-guest packet without a group
"$GUEST" --socket "$tmp/vm5.sock" --mode serve --control "$tmp/g5.sock" >"$tmp/guest5.log" 2>&1 &
pids+=("$!")
uvt_wait_attached 5 || fail "guest 5 not attached"
if UVSOCK_CONTROL=$tmp/g5.sock "$HOST" client 3 7000 1 >"$tmp/c53.log" 2>&1; then
	fail "guest 5 (no group) reached guest 3"
fi
grep -q "timed out" "$tmp/c53.log" || fail "5 -> 3: $(tail -1 "$tmp/c53.log")"
echo "ok: guest 5 (no group) cannot reach guest 3: $(tail -1 "$tmp/c53.log")"

bash "$here/run-guest.sh" --kernel 6.12 --socket "$tmp/vm4.sock" --timeout 400 --log "$tmp/g4.log" -- \
	"cid expect=4; stream-echo cid=3 port=7000; stream-bulk cid=3 port=7000 bytes=4194304; concurrent cid=3 port=7000 n=20; seq-bounds cid=3 port=7001" \
	>"$tmp/g4.out" 2>&1 || true
grep -a "UVT RESULT" "$tmp/g4.log" | sed 's/^/cid 4 (6.12) -> cid 3 (6.1): /'
grep -aq "UVT DONE pass=5 fail=0" "$tmp/g4.log" || fail "guest 4's scenarios against guest 3"
ts=$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")
fwd=$("$SS" --socket "$ts" --guest 3 --json |
	python3 -c "import json,sys; g=json.load(sys.stdin)['guest']; print(g['g2g_tx_pkts'], g['g2g_rx_pkts'])")
echo "guest 3: forwarded $fwd (g2g_tx_pkts, g2g_rx_pkts)"
if [ "${fwd%% *}" -eq 0 ] || [ "${fwd##* }" -eq 0 ]; then
	fail "no forwarded packets counted ($fwd)"
fi
wait "$g3" || true
grep -a "UVT RESULT" "$tmp/g3.log" | sed 's/^/cid 3 (6.1): /'
grep -aq "UVT RESULT listen PASS" "$tmp/g3.log" || fail "guest 3's listener"
echo "ok: two Linux guests of one group: STREAM and SEQPACKET scenarios between them"
echo "1 passed, 0 failed"
