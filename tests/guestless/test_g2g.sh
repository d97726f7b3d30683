#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Guest-to-guest traffic (issue 5 §3): uvsockd forwards packets between guests that share a
# group (--vm ...,group=NAME) and drops the others, as Linux's vhost-vsock drops every packet
# not addressed to the host. Four serving uvsock-guests: 3 and 4 in group "blue" (4 posts
# 4 KiB receive buffers, as Linux's driver, so that 64 KiB packets from 3 are split into
# pieces), 5 in no group, 6 in group "red". Programs run inside the guests with libuvsock.
# Checked:
#  - 3 -> 4 and 4 -> 3: STREAM echoes (256 KiB each, byte for byte) and SEQPACKET echoes
#    (boundaries and MSG_EOR kept across the split pieces);
#  - 3 -> 5, 5 -> 3 and 3 -> 6: the connect times out, and guest 3's bad_dst_cid counter
#    counts the refused REQUESTs; the host still reaches every guest;
#  - the g2g counters (uvsock-ss --guest CID --json) show the forwarded packets and pieces;
#  - guest 4 killed in the middle of a transfer from 3: uvsockd stays up, 3 keeps talking to
#    the host, and a new guest 4 serves 3 again.
set -euo pipefail
UVSOCKD=$1
GUEST=$2
ECHO=$3
HOST=$4
SS=$5
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init g2g
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log; do
		echo "--- $f"
		grep -v VHOST_CONFIG "$f" | tail -15
	done
	exit 1
}
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock,group=blue" \
	--vm "cid=4,socket=$tmp/vm4.sock,group=blue" --vm "cid=5,socket=$tmp/vm5.sock" \
	--vm "cid=6,socket=$tmp/vm6.sock,group=red" || fail "uvsockd not ready"
ts=$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")
[ -S "$ts" ] || fail "no telemetry socket in the log ($ts)"

start_guest() { # start_guest CID [uvsock-guest options]: serving, with an echo inside
	local g=$1
	shift
	"$GUEST" --socket "$tmp/vm$g.sock" --mode serve --control "$tmp/g$g.sock" "$@" \
		>>"$tmp/guest$g.log" 2>&1 &
	eval "gpid$g=\$!"
	pids+=("$!")
}
start_echo() { # start_echo CID
	UVSOCK_CONTROL=$tmp/g$1.sock "$ECHO" --listen 7000 >"$tmp/echo$1.log" 2>&1 &
	eval "epid$1=\$!"
	pids+=("$!")
	wait_for "$tmp/echo$1.log" "listening" 10 || fail "echo in guest $1 not listening"
}
start_guest 3
start_guest 4 --rx-buf 4096
start_guest 5
start_guest 6
for g in 3 4 5 6; do
	uvt_wait_attached "$g" || fail "guest $g not attached"
	start_echo "$g"
done
counter() { # counter CID NAME: a number from uvsock-ss --guest CID --json
	"$SS" --socket "$ts" --guest "$1" --json |
		python3 -c "import json,sys; print(json.load(sys.stdin)['guest']['$2'])"
}
in_guest() { # in_guest CID CMD...: a program inside guest CID
	local g=$1
	shift
	UVSOCK_CONTROL=$tmp/g$g.sock "$@"
}

# --- allowed: 3 <-> 4 (same group), both types, both directions
in_guest 3 "$HOST" client 4 7000 8 >"$tmp/c34.log" 2>&1 || fail "STREAM 3 -> 4"
in_guest 3 "$HOST" client 4 7001 8 seq >"$tmp/c34s.log" 2>&1 || fail "SEQPACKET 3 -> 4"
in_guest 4 "$HOST" client 3 7000 8 >"$tmp/c43.log" 2>&1 || fail "STREAM 4 -> 3"
in_guest 4 "$HOST" client 3 7001 8 seq >"$tmp/c43s.log" 2>&1 || fail "SEQPACKET 4 -> 3"
for f in c34 c34s c43 c43s; do
	[ "$(grep -c '^client ok' "$tmp/$f.log")" = 8 ] || fail "$f: not 8 good connections"
done
echo "ok: guests 3 and 4 (group blue) echo 8 STREAM connections of 256 KiB and 8 SEQPACKET" \
	"connections of 10 messages each way, checked byte for byte and boundary for boundary"
tx3=$(counter 3 g2g_tx_pkts)
bytes3=$(counter 3 g2g_tx_bytes)
pieces4=$(counter 4 g2g_rx_pkts)
tx4=$(counter 4 g2g_tx_pkts)
if [ "$tx3" -eq 0 ] || [ "$tx4" -eq 0 ]; then
	fail "g2g_tx_pkts: 3 sent $tx3, 4 sent $tx4"
fi
# 8 x 256 KiB of STREAM payload at least went from 3 to 4
[ "$bytes3" -ge $((8 * 262144)) ] || fail "g2g_tx_bytes of 3: $bytes3"
# 4 takes 4 KiB buffers: 3's packets of up to 64 KiB arrive in more pieces than packets
[ "$pieces4" -gt "$tx3" ] || fail "guest 4 got $pieces4 pieces for $tx3 packets: no split"
echo "ok: counters: 3 forwarded $tx3 packets ($bytes3 payload bytes), delivered to 4's 4 KiB" \
	"buffers as $pieces4 pieces; 4 forwarded $tx4"

# --- refused: no shared group. The REQUESTs are dropped, the connect times out (Linux).
bad0=$(counter 3 bad_header_bad_dst_cid)
for pair in 3:5 5:3 3:6; do
	from=${pair%:*} to=${pair#*:}
	if in_guest "$from" "$HOST" client "$to" 7000 1 >"$tmp/c$from$to.log" 2>&1; then
		fail "guest $from reached guest $to without a shared group"
	fi
	grep -q "timed out" "$tmp/c$from$to.log" || fail "$from -> $to: $(tail -1 "$tmp/c$from$to.log")"
done
bad1=$(counter 3 bad_header_bad_dst_cid)
[ "$bad1" -gt "$bad0" ] || fail "guest 3's bad_dst_cid did not count ($bad0 -> $bad1)"
[ "$(counter 5 g2g_tx_pkts)" = 0 ] || fail "guest 5 (no group) forwarded packets"
echo "ok: 3 -> 5, 5 -> 3, 3 -> 6 time out (no shared group); guest 3's bad_dst_cid $bad0 -> $bad1"
for g in 3 4 5 6; do
	"$HOST" client "$g" 7000 1 >"$tmp/h$g.log" 2>&1 || fail "host -> guest $g"
done
echo "ok: the host reaches guests 3, 4, 5 and 6 as before"

# --- guest 4 vanishes in the middle of a transfer from 3
in_guest 3 "$HOST" client 4 7000 200 >"$tmp/long.log" 2>&1 &
long=$!
pids+=("$long")
sleep 0.5
kill -9 "$gpid4"
before=$(uvt_attached 4)
sleep 0.5
kill -0 "$dpid" || fail "uvsockd died when guest 4 went away"
kill "$long" 2>/dev/null || true
"$HOST" client 3 7000 2 >"$tmp/h3b.log" 2>&1 || fail "host -> guest 3 after 4 went away"
start_guest 4 --rx-buf 4096
uvt_wait_attached 4 "$before" || fail "guest 4 not attached again"
kill "$epid4" 2>/dev/null || true
start_echo 4
in_guest 3 "$HOST" client 4 7000 4 >"$tmp/c34b.log" 2>&1 || fail "3 -> new 4: $(tail -1 "$tmp/c34b.log")"
echo "ok: guest 4 killed during a transfer from 3: uvsockd up, host <-> 3 works, a new guest 4" \
	"serves 3 again"
echo "1 passed, 0 failed"
