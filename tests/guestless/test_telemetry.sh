#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# uvsockd's counters through DPDK telemetry, read with tools/uvsock-ss: the listing shows every
# live connection (more than one reply page) and listener with the right addresses and byte
# counts; a guest's counters move with its traffic and count a refused connect by reason; bad
# parameters are refused.
set -euo pipefail
UVSOCKD=$1
GUEST=$2
PERF=$3
ECHO=$4
SS=$5
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init tel
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log "$tmp"/*.out; do
		[ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
	done
	exit 1
}
# Default EAL options: the telemetry socket is the daemon's own (uvsockd-<pid>).
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" ||
	fail "uvsockd not ready"
ts=$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")
[ -S "$ts" ] || fail "no telemetry socket in the log ($ts)"
"$GUEST" --socket "$tmp/vm3.sock" --mode echo --listen 5000 --conns 1000 >"$tmp/g3.log" 2>&1 &
pids+=("$!")
wait_for "$tmp/g3.log" "listening on 5000" 10 || fail "guest 3 not listening"
uvt_wait_attached 3 || fail "guest 3 not attached"
"$ECHO" --listen 6000 >"$tmp/echo.log" 2>&1 &
pids+=("$!")
# 40 connections: more than one page (32) of /uvsock/conns. Held until killed below (300 s
# is only a backstop): the checks in between took over 30 s under TSan on a loaded machine.
"$PERF" hold --cid 3 --guests 1 --port 5000 --conns 40 --seconds 300 >"$tmp/hold.log" 2>&1 &
hold=$!
pids+=("$hold")
wait_for "$tmp/hold.log" "HELD 40 connections" 20 || fail "hold did not open 40 connections"

"$SS" --socket "$ts" -a >"$tmp/ss.out" || fail "uvsock-ss -a"
cat "$tmp/ss.out"
n=$(grep -c '^ESTAB  *stream .* 3:5000 ' "$tmp/ss.out" || true)
[ "$n" = 40 ] || fail "listing: $n established connections to 3:5000, want 40"
grep -Eq '^LISTEN +stream .* \*:6000 ' "$tmp/ss.out" || fail "no STREAM listener on 6000"
grep -Eq '^LISTEN +seqpacket .* \*:6001 ' "$tmp/ss.out" || fail "no SEQPACKET listener on 6001"
"$SS" --socket "$ts" -l >"$tmp/ssl.out"
if [ "$(grep -c '^LISTEN' "$tmp/ssl.out")" != 2 ] || grep -q '^ESTAB' "$tmp/ssl.out"; then
	fail "-l lists more than the two listeners"
fi
"$SS" --socket "$ts" >"$tmp/ssd.out"
! grep -q '^LISTEN' "$tmp/ssd.out" || fail "the default listing shows listeners"
echo "ok: listing: 40 connections over two pages, 2 listeners, filters"

# every connection echoed one byte each way (uvsock-perf hold's check)
"$SS" --socket "$ts" --json >"$tmp/ss.json"
python3 - "$tmp/ss.json" <<'EOF' || fail "JSON listing"
import json, sys
d = json.load(open(sys.argv[1]))
est = [c for c in d["connections"] if c["state"] == "established"]
assert len(est) == 40, len(est)
assert all(c["rx_bytes"] == 1 and c["tx_bytes"] == 1 for c in est), est[0]
assert all(c["app"] == "open" and c["peer"] == "3:5000" for c in est)
assert len({c["local"] for c in est}) == 40, "local ports not distinct"
assert d["stats"]["connections"] == 40 and d["stats"]["guests_running"] == 1, d["stats"]
print("ok: JSON: 40 connections, 1 byte each way, distinct ports; totals agree")
EOF

# guest counters: traffic moves them; a connect to a port nobody listens on is a counted drop
"$SS" --socket "$ts" --guest 3 --json >"$tmp/g3a.json"
"$GUEST" --socket "$tmp/vm4.sock" --mode rxonly --connect 5999 >"$tmp/g4.log" 2>&1 &&
	fail "guest 4's connect to a port nobody listens on succeeded"
"$SS" --socket "$ts" --guest 4 --json >"$tmp/g4.json"
python3 - "$tmp/g3a.json" "$tmp/g4.json" <<'EOF' || fail "guest counters"
import json, sys
g3 = json.load(open(sys.argv[1]))["guest"]
g4 = json.load(open(sys.argv[2]))["guest"]
assert g3["state"] == "running" and g3["connections"] == 40, g3
assert g3["rx_pkts"] >= 80 and g3["tx_pkts"] >= 80, g3  # REQUEST/RESPONSE and 1 byte each
assert g3["rx_bytes"] == 40 and g3["tx_bytes"] == 40, g3
assert g3["rxq_size"] == 128 and g3["txq_size"] == 128, g3
assert g4["drop_no_conn_rst"] >= 1, g4
assert all(g4[k] == 0 for k in g4 if k.startswith("bad_")), g4
print("ok: guest counters: bytes and packets of 40 connections; guest 4's refused connect "
      f"counted as drop_no_conn_rst ({g4['drop_no_conn_rst']})")
EOF

# refusals: unknown guest, bad parameter
if "$SS" --socket "$ts" --guest 99 >"$tmp/bad.out" 2>&1; then fail "--guest 99 answered"; fi
grep -q "no answer" "$tmp/bad.out" || fail "no error for an unknown guest"
if "$SS" --socket /nonexistent >"$tmp/bad2.out" 2>&1; then fail "a missing socket answered"; fi
grep -q "not a uvsockd telemetry socket" "$tmp/bad2.out" || fail "no error for a missing socket"
echo "ok: unknown guest and missing socket refused with a message"

# the connections go away with the program: listing follows
kill "$hold"
for _ in $(seq 50); do
	"$SS" --socket "$ts" >"$tmp/ssd.out"
	grep -q '^ESTAB' "$tmp/ssd.out" || break
	sleep 0.2
done
! grep -q '^ESTAB' "$tmp/ssd.out" || fail "connections still listed after the program died"
echo "ok: the listing empties when the program dies"
# nor does it leave segments kept for reuse: no other program may have them (uvs_srv.c,
# "Segment reuse"), and wiping them for nobody would cost the dying program's every page
# (the program's control connection and its anchors close at once, in any order: a segment
# kept before the daemon saw the former goes when it does)
for _ in $(seq 25); do
	"$SS" --socket "$ts" --json >"$tmp/ssk.json"
	kept=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["stats"]["segments_kept"])' \
		"$tmp/ssk.json") || fail "no segments_kept in the JSON stats"
	[ "$kept" = 0 ] && break
	sleep 0.2
done
[ "$kept" = 0 ] || fail "$kept segments kept for a program that died"
echo "ok: no segment kept for a program that died"
echo "1 passed, 0 failed"
