#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# uvsockd with few file descriptors (RLIMIT_NOFILE 256), and a host program that takes every
# socket it can (issue 5: a host program must not reach what it should not). The daemon keeps
# fds for its guests out of the programs' reach (UVSD_FD_PER_GUEST): while the program holds
# all its sockets, new programs are refused at once with ENOBUFS (not left waiting), the daemon
# stays idle (it spun at 100% of a CPU once its fd table was full), the guest can attach again,
# and a guest's connection to a full host is reset and counted. Once the program exits,
# everything works again and the daemon's fds are back to what they were. A program at its own
# fd limit gets EMFILE from socket(), as from Linux. Last, the daemon with its usual limit: a
# program gets exactly the sockets the start-up line announces (or 65536).
set -euo pipefail
UVSOCKD=$1
GUEST=$2
SHIM=$3
SS=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init fds
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -8 "$f"; }; done
	exit 1
}
# The daemon's limit: low enough to reach in a second, and it cannot raise it (hard limit).
# The programs keep theirs.
cat >"$tmp/uvsockd-256" <<WRAP
#!/bin/sh
ulimit -n 256
exec "$UVSOCKD" "\$@"
WRAP
chmod +x "$tmp/uvsockd-256"
REAL_UVSOCKD=$UVSOCKD
UVSOCKD=$tmp/uvsockd-256
NEW_PROGRAMS=6
# How long a refused socket() may take (a daemon that cannot accept leaves it waiting for ever).
REFUSAL_MS=2000
daemon_fds() { find "/proc/$dpid/fd" -mindepth 1 -maxdepth 1 | wc -l; }
# no_host_sockets_left: within 10 s, the daemon has no host socket (a program's exit reaches it
# through its anchors' hang-ups).
no_host_sockets_left() {
	local _
	for _ in $(seq 100); do
		[ "$(uvt_host_sockets)" = 0 ] && return 0
		sleep 0.1
	done
	return 1
}
daemon_ticks() { awk '{print $14 + $15}' "/proc/$dpid/stat"; }
stat_of() {
	"$SS" --socket "$ts" --json |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"][sys.argv[1]])' "$1"
}
start_guest() {
	local before
	before=$(uvt_attached 3)
	"$GUEST" --socket "$tmp/vm3.sock" --mode echo --listen 5000 --conns 1000 \
		>"$tmp/guest$1.log" 2>&1 &
	gpid=$!
	pids+=("$gpid")
	uvt_wait_attached 3 "$before"
}
# echo_once LOG: a program connects to the guest's echo and gets its line back.
echo_once() {
	LD_PRELOAD=$(uvt_preload "$SHIM") timeout 30 python3 -c '
import socket
s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
s.connect((3, 5000)); s.sendall(b"ping\n"); print(s.recv(100).decode().strip())' >"$1" 2>&1 &&
		grep -q ping "$1"
}

uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd not ready"
ts=$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")
max=$(sed -n 's/^uvsockd: host sockets: at most \([0-9]*\) .*/\1/p' "$tmp/uvsockd.log")
[[ -n "$max" && "$max" -ge 16 ]] || fail "no usable 'host sockets: at most' line (max '$max')"
start_guest 1 || fail "guest not attached"
echo_once "$tmp/echo1.out" || fail "no echo before the test"
fds_before=$(daemon_fds)
echo "ok: uvsockd under RLIMIT_NOFILE 256: at most $max host sockets; $fds_before fds open"

# The hog: every socket it can get, one of them connected to the guest, 20 of them listening.
cat >"$tmp/hog.py" <<'EOF'
import errno, os, socket, sys, time
socks = []
try:
    while True:
        socks.append(socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM))
except OSError as e:
    err = e.errno
socks[0].connect((3, 5000))
for i, s in enumerate(socks[1:21]):
    s.bind((socket.VMADDR_CID_ANY, 9000 + i))
    s.listen()
print("holding %d sockets; refused with %s" % (len(socks), errno.errorcode[err]), flush=True)
# once told, it takes what it can again (the fds a departed guest left), then holds on
while not os.path.exists(sys.argv[1] + ".grab"):
    time.sleep(0.1)
more = 0
try:
    while True:
        socks.append(socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM))
        more += 1
except OSError as e:
    print("grabbed %d more; refused with %s" % (more, errno.errorcode[e.errno]), flush=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.1)
EOF
LD_PRELOAD=$(uvt_preload "$SHIM") python3 "$tmp/hog.py" "$tmp/hog.stop" >"$tmp/hog.out" 2>&1 &
hog=$!
pids+=("$hog")
wait_for "$tmp/hog.out" "holding" 20 || fail "the hog did not get its sockets"
read -r held refused_with < <(sed -n 's/^holding \([0-9]*\) sockets; refused with \(.*\)/\1 \2/p' "$tmp/hog.out")
[ "$refused_with" = ENOBUFS ] || fail "the hog's last socket() failed with $refused_with, want ENOBUFS"
[[ "$held" -ge $((max - 2)) && "$held" -le "$max" ]] ||
	fail "the hog held $held sockets, want about $max"
echo "ok: one program took $held sockets, then socket() failed with ENOBUFS"

# New programs are refused at once, and the daemon stays idle meanwhile.
t0=$(daemon_ticks)
start=$(date +%s%N)
slowest=0
for i in $(seq "$NEW_PROGRAMS"); do
	# the call is timed, not the program (a sanitizer's exit checks can take seconds)
	LD_PRELOAD=$(uvt_preload "$SHIM") timeout 60 python3 -c '
import socket, time
t = time.monotonic()
try:
    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    print("got a socket", flush=True)
except OSError as e:
    print("refused: %s in %d ms" % (e.strerror, (time.monotonic() - t) * 1000), flush=True)
' >"$tmp/new$i.out" 2>&1 || fail "program $i: $(cat "$tmp/new$i.out")"
	took=$(sed -n 's/^refused: No buffer space available in \([0-9]*\) ms$/\1/p' "$tmp/new$i.out")
	[ -n "$took" ] || fail "program $i: $(cat "$tmp/new$i.out")"
	[ "$took" -lt "$REFUSAL_MS" ] || fail "program $i: refused only after $took ms"
	[ "$took" -gt "$slowest" ] && slowest=$took
done
ms=$((($(date +%s%N) - start) / 1000000))
sleep 2
busy=$(($(daemon_ticks) - t0))
hz=$(getconf CLK_TCK)
# idle, a daemon polls a little (tens of ms over these seconds); spinning, it took them all
[ "$busy" -lt $((hz * (ms / 1000 + 2) / 4)) ] ||
	fail "uvsockd used $busy ticks of CPU in $((ms / 1000 + 2)) s while out of fds (spinning)"
n=$(stat_of ctl_refused_nofd)
[ "$n" -ge "$NEW_PROGRAMS" ] || fail "ctl_refused_nofd is $n, want >= $NEW_PROGRAMS"
echo "ok: $NEW_PROGRAMS new programs refused with ENOBUFS (each within $slowest ms; $ms ms in all);" \
	"the daemon used $busy of" \
	"$hz ticks a second meanwhile; ctl_refused_nofd $n"

# The guest goes away, the program grabs what it can once more, and the guest attaches again:
# the fds it needs were never the programs' to take.
kill "$gpid"
wait "$gpid" 2>/dev/null || true
touch "$tmp/hog.stop.grab"
wait_for "$tmp/hog.out" "grabbed" 20 || fail "the hog did not try again"
more=$(sed -n 's/^grabbed \([0-9]*\) more.*/\1/p' "$tmp/hog.out")
[ "$more" = 0 ] || fail "the hog got $more more sockets after the guest left"
start_guest 2 || fail "the guest could not attach again while host programs held every socket"
echo "ok: the guest left, the program got no more sockets, and the guest attached again"

# A guest connecting to the full host is reset, and counted.
full0=$(stat_of sockets_refused_full)
if timeout 10 "$GUEST" --socket "$tmp/vm3.sock" --mode txonly --connect 9000 --bytes 100 \
	>"$tmp/gconn.log" 2>&1; then
	fail "a guest connected to the full host"
fi
grep -q "Connection reset by peer" "$tmp/gconn.log" || fail "guest connect: $(tail -2 "$tmp/gconn.log")"
full1=$(stat_of sockets_refused_full)
[ "$full1" -gt "$full0" ] || fail "sockets_refused_full did not rise ($full0 -> $full1)"
echo "ok: a guest's connection to the full host reset (sockets_refused_full $full0 -> $full1)"

# The program exits: everything works again, and the daemon's fds are back.
touch "$tmp/hog.stop"
wait "$hog" || fail "the hog failed: $(cat "$tmp/hog.out")"
start_guest 3 || fail "the guest could not attach after the hog"
echo_once "$tmp/echo2.out" || fail "no echo after the hog exited"
no_host_sockets_left || fail "host sockets left after the hog"
kept=$(uvt_daemon_kept)
fds_after=$(daemon_fds)
[ "$fds_after" -le $((fds_before + kept)) ] ||
	fail "uvsockd has $fds_after fds, $fds_before before (+$kept kept segments)"
echo "ok: after the program exited, new programs work and the daemon's fds are back" \
	"($fds_after, $fds_before before, $kept kept segments)"

# fill NOFILE OUT: a program with RLIMIT_NOFILE NOFILE opens sockets until refused and writes
# "COUNT ERRNO" to OUT.
cat >"$tmp/fill.py" <<'EOF'
import errno, socket
socks = []
try:
    while True:
        socks.append(socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM))
except OSError as e:
    print(len(socks), errno.errorcode[e.errno])
EOF
fill() {
	(
		ulimit -n "$1"
		LD_PRELOAD=$(uvt_preload "$SHIM") python3 "$tmp/fill.py"
	) >"$2" 2>&1 || fail "the program filling sockets failed: $(cat "$2")"
}

# A program out of its own fds: EMFILE, as Linux says, and the daemon frees what it made.
fill 40 "$tmp/emfile.out"
read -r got err <"$tmp/emfile.out"
[ "$err" = EMFILE ] || fail "fd-limited program: $(cat "$tmp/emfile.out")"
no_host_sockets_left || fail "host sockets left after the fd-limited program"
echo "ok: a program at its own fd limit: EMFILE after $got sockets; nothing left in the daemon"

# The daemon with the limit it takes itself (the hard limit, or more with CAP_SYS_RESOURCE):
# every socket it announces, then ENOBUFS.
kill "$dpid"
wait "$dpid" 2>/dev/null || true
UVSOCKD=$REAL_UVSOCKD
uvt_start_daemon --vm "cid=3,socket=$tmp/vm3.sock" || fail "uvsockd (usual limit) not ready"
max=$(sed -n 's/^uvsockd: host sockets: at most \([0-9]*\) .*/\1/p' "$tmp/uvsockd.log")
max=${max:-65536}
want=ENOBUFS
if [ "$(ulimit -Hn)" -lt $((2 * max + 100)) ]; then
	want=EMFILE # this program runs out of fds first (two a socket)
fi
fill "$(ulimit -Hn)" "$tmp/big.out"
read -r got err <"$tmp/big.out"
[ "$err" = "$want" ] || fail "the big program: $(cat "$tmp/big.out"), want $want"
[ "$want" = EMFILE ] || [ "$got" = "$max" ] || fail "the big program got $got sockets, want $max"
no_host_sockets_left || fail "host sockets left after the big program"
echo "ok: usual limit: one program got $got sockets, then $err (at most $max announced);" \
	"all freed when it exited"
echo "1 passed, 0 failed"
