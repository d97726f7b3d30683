#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Two real guests on one uvsockd at once: CID 3 runs Debian's 6.1 kernel, CID 4 the 6.12
# series. Each runs the guest scenarios of tests/guest/README.md against host peers on the
# native API (echo 5000/5001, writer 5002, sink 5003, SEQPACKET sink 5004), tries to reach the other guest (must
# fail: isolation), then serves connections from the host: a STREAM and a SEQPACKET client
# that check the echo, and a host program that is SIGKILLed mid-connection. Afterwards the
# daemon must hold only the five listening host sockets (nothing leaked).
set -euo pipefail
UVSOCKD=$1
ECHO=$2
HOST=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=common.sh
. "$here/common.sh"
uvt_init 2g
fail() {
	echo "FAIL: $*"
	echo "--- uvsockd (packet trace, last 60 lines)"; grep -v VHOST_CONFIG "$tmp/uvsockd.log" | tail -60
	for f in "$tmp"/*.host.log; do echo "--- $f"; cat "$f"; done
	exit 1
}

uvt_start_daemon -l 0 --no-huge -m 64 --file-prefix="uvt2g$$" --log-level=user1:debug -- \
	--vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" ||
	fail "uvsockd did not become ready"
uvt_host_peers "$ECHO" "$HOST"

bash "$here/run-guest.sh" --kernel 6.1 --socket "$tmp/vm3.sock" --timeout 400 --log "$tmp/g3.log" -- \
	"cid expect=3; $UVT_COMMON; isolate cid=4 port=5000; listen port=7000 n=4 gone=1" >"$tmp/g3.out" 2>&1 &
g3=$!
pids+=("$g3")
bash "$here/run-guest.sh" --kernel 6.12 --socket "$tmp/vm4.sock" --timeout 400 --log "$tmp/g4.log" -- \
	"cid expect=4; $UVT_COMMON; isolate cid=3 port=5000; listen port=7000 n=4 gone=1" >"$tmp/g4.out" 2>&1 &
g4=$!
pids+=("$g4")

# host -> guest: once each guest listens, both types, then a host program that dies
rc3=0 rc4=0
uvt_host_into_guest 3 "$tmp/g3.log" $g3 "$ECHO" "$HOST" || rc3=$?
uvt_host_into_guest 4 "$tmp/g4.log" $g4 "$ECHO" "$HOST" || rc4=$?
wait $g3 || rc3=1
wait $g4 || rc4=1
grep -a "UVT RESULT" "$tmp/g3.log" | sed 's/^/cid 3 (6.1):  /'
grep -a "UVT RESULT" "$tmp/g4.log" | sed 's/^/cid 4 (6.12): /'
cat "$tmp"/client*.host.log
[ "$rc3" = 0 ] || fail "guest 3 (6.1): $(tail -1 "$tmp/g3.out")"
[ "$rc4" = 0 ] || fail "guest 4 (6.12): $(tail -1 "$tmp/g4.out")"
why=$(uvt_host_peers_ok) || fail "$why"

# Both guests are gone: only the 5 listeners may remain (no leaked socket or segment).
sleep 0.5
n=$(uvt_host_sockets)
[ "$n" = 5 ] || fail "daemon holds $n host sockets, want 5 (the listeners)"
grep "drop bad_dst\|bad_pkt bad_dst" "$tmp/uvsockd.log" || true
echo "two guests: all scenarios passed, isolation held, no leak"
echo "1 passed, 0 failed"
