#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR disable=SC2034,SC2154
# Host-side access control (issue 5 §3): --policy says which users may listen on which ports
# and connect to which guests, refusals are EACCES with a log line and a counter; ports below
# 1024 need root or CAP_NET_BIND_SERVICE; --control-mode/--control-owner set the control
# socket's permissions, and a program that may not open it cannot use vsock at all. Programs
# run as nobody (setpriv) against userspace guests; a bad policy file stops the daemon at start.
# A socket quota (sockets rules) refuses a user's sockets past it, made or accepted.
set -euo pipefail
UVSOCKD=$1
GUEST=$2
ECHO=$3
SS=$4
SHIM=$5
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../guest/common.sh
. "$here/../guest/common.sh"
uvt_init policy
fail() {
	echo "FAIL: $*"
	for f in "$tmp"/*.log "$tmp"/*.out; do [ -f "$f" ] && { echo "--- $f"; tail -8 "$f"; }; done
	exit 1
}
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

cat >"$tmp/policy" <<'POL'
# root may do anything; nobody may listen on 7000-7001 and 1000-1001 (the latter also needs
# CAP_NET_BIND_SERVICE) and reach guest 3 only, through its group
listen  root     *
connect root     *
listen  nobody   7000-7001
listen  65534    1000-1001
connect @nogroup 3
POL
uvt_start_daemon --policy "$tmp/policy" --vm "cid=3,socket=$tmp/vm3.sock" \
	--vm "cid=4,socket=$tmp/vm4.sock" || fail "uvsockd not ready"
for g in 3 4; do
	before=$(uvt_attached "$g")
	"$GUEST" --socket "$tmp/vm$g.sock" --mode echo --listen 5000 --conns 100 >"$tmp/g$g.log" 2>&1 &
	pids+=("$!")
	uvt_wait_attached "$g" "$before" || fail "guest $g not attached"
done
chmod 755 "$tmp" # nobody must reach the control socket in it

# listen: allowed port, refused port, privileged port without and with the capability
as_nobody "$ECHO" --listen 7000 >"$tmp/l7000.out" 2>&1 &
pids+=("$!")
wait_for "$tmp/l7000.out" "listening" 10 || fail "nobody could not listen on 7000 (allowed)"
if as_nobody timeout 10 "$ECHO" --listen 7002 >"$tmp/l7002.out" 2>&1; then
	fail "nobody listened on 7002"
fi
grep -q "Permission denied" "$tmp/l7002.out" || fail "7002: not EACCES"
if as_nobody timeout 10 "$ECHO" --listen 1000 >"$tmp/l1000.out" 2>&1; then
	fail "nobody listened on privileged port 1000 without CAP_NET_BIND_SERVICE"
fi
grep -q "Permission denied" "$tmp/l1000.out" || fail "1000: not EACCES"
as_nobody --inh-caps +net_bind_service --ambient-caps +net_bind_service \
	"$ECHO" --listen 1000 >"$tmp/l1000cap.out" 2>&1 &
pids+=("$!")
wait_for "$tmp/l1000cap.out" "listening" 10 ||
	fail "nobody with CAP_NET_BIND_SERVICE could not listen on 1000"
"$ECHO" --listen 9000 >"$tmp/l9000.out" 2>&1 &
pids+=("$!")
wait_for "$tmp/l9000.out" "listening" 10 || fail "root could not listen on 9000"
echo "ok: listen: allowed, refused (EACCES), privileged port only with CAP_NET_BIND_SERVICE"

# connect: guest 3 through nobody's group, guest 4 refused; root reaches both
echo hello >"$tmp/in"
as_nobody timeout 20 "$ECHO" --connect 3:5000 <"$tmp/in" >"$tmp/c3.out" 2>&1 ||
	fail "nobody could not connect to guest 3"
grep -q hello "$tmp/c3.out" || fail "nobody: no echo from guest 3"
if as_nobody timeout 20 "$ECHO" --connect 4:5000 <"$tmp/in" >"$tmp/c4.out" 2>&1; then
	fail "nobody connected to guest 4"
fi
grep -q "Permission denied" "$tmp/c4.out" || fail "guest 4: not EACCES"
timeout 20 "$ECHO" --connect 4:5000 <"$tmp/in" >"$tmp/c4root.out" 2>&1 || fail "root to guest 4"
grep -q hello "$tmp/c4root.out" || fail "root: no echo from guest 4"
echo "ok: connect: guest 3 allowed by group, guest 4 refused (EACCES), root both"

# every refusal is logged with who and what, and counted
grep -q "uid 65534 (pid [0-9]*): listen on port 7002 refused by the policy" "$tmp/uvsockd.log" ||
	fail "no log line for the refused listen"
grep -q "uid 65534 (pid [0-9]*): connect to CID 4 refused by the policy" "$tmp/uvsockd.log" ||
	fail "no log line for the refused connect"
ts=$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")
n=$("$SS" --socket "$ts" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["ctl_refused_policy"])')
[ "$n" = 2 ] || fail "ctl_refused_policy is $n, want 2 (7002, CID 4; port 1000 is the kernel rule)"
echo "ok: refusals logged and counted (ctl_refused_policy $n)"
for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

# socket quotas: nobody may hold 3 sockets (made or accepted), root has no quota
cat >"$tmp/quota" <<'POL'
listen  *      7000
connect *      *
sockets nobody 3
POL
uvt_start_daemon --policy "$tmp/quota" --vm "cid=3,socket=$tmp/vmq.sock" ||
	fail "uvsockd (quota) not ready"
cat >"$tmp/quota.py" <<'PY'
import errno, select, socket, time
def sock():
    return socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
l = sock()
l.bind((socket.VMADDR_CID_ANY, 7000))
l.listen()
x, y = sock(), sock()
try:
    sock()
    print("socket: allowed", flush=True)
except OSError as e:
    print("socket:", errno.errorcode[e.errno], flush=True)
print("ready", flush=True)
select.select([l], [], [], 20)
try:
    l.accept()
    print("accept: allowed", flush=True)
except OSError as e:
    print("accept:", errno.errorcode[e.errno], flush=True)
x.close()
for _ in range(50):  # until the daemon has seen the close
    try:
        c, addr = l.accept()
        break
    except OSError:
        time.sleep(0.1)
print("accepted from", addr[0], flush=True)
n = 0
while True:  # the guest's bytes, then its shutdown; it wants their count back
    b = c.recv(65536)
    if not b:
        break
    n += len(b)
c.sendall(b"%d\n" % n)
c.close()
PY
as_nobody env LD_PRELOAD="$(uvt_preload "$SHIM")" timeout 30 python3 "$tmp/quota.py" \
	>"$tmp/quota.out" 2>&1 &
qpid=$!
wait_for "$tmp/quota.out" "ready" 20 || fail "quota: the program did not get ready"
"$GUEST" --socket "$tmp/vmq.sock" --mode txonly --connect 7000 --bytes 1000 >"$tmp/gq.log" 2>&1 ||
	fail "quota: the guest's connection failed"
wait "$qpid" || fail "quota: the program failed"
grep -q "^socket: ENOBUFS" "$tmp/quota.out" || fail "quota: 4th socket: $(cat "$tmp/quota.out")"
grep -q "^accept: ENOBUFS" "$tmp/quota.out" || fail "quota: accept: $(cat "$tmp/quota.out")"
grep -q "^accepted from 3" "$tmp/quota.out" || fail "quota: no accept after a close"
n=$("$SS" --socket "$(sed -n 's/^uvsockd: telemetry \([^ ]*\) .*/\1/p' "$tmp/uvsockd.log")" --json |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["stats"]["sockets_refused_quota"])')
[ "$n" = 2 ] || fail "sockets_refused_quota is $n, want 2"
grep -q "uid 65534 (pid [0-9]*): socket refused: the user holds its quota" "$tmp/uvsockd.log" ||
	fail "no log line for the quota"
LD_PRELOAD=$(uvt_preload "$SHIM") timeout 20 python3 -c '
import socket
s = [socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) for _ in range(10)]' ||
	fail "root could not hold 10 sockets"
echo "ok: quota: nobody's 4th socket and an accept past 3 refused (ENOBUFS, counted 2, logged)," \
	"an accept after a close works; root has none"
kill "$dpid"
wait "$dpid" 2>/dev/null || true

# the control socket's permissions: root only
uvt_start_daemon --control-mode 0600 --control-owner root:root --vm "cid=3,socket=$tmp/vm3.sock" ||
	fail "uvsockd (0600) not ready"
[ "$(stat -c '%a %U %G' "$tmp/ctl.sock")" = "600 root root" ] ||
	fail "control socket is $(stat -c '%a %U %G' "$tmp/ctl.sock")"
if as_nobody timeout 10 "$ECHO" --listen 7000 >"$tmp/l0600.out" 2>&1; then
	fail "nobody used a 0600 root control socket"
fi
grep -q "Address family not supported" "$tmp/l0600.out" || fail "0600: not EAFNOSUPPORT"
"$ECHO" --listen 7000 >"$tmp/l0600root.out" 2>&1 &
pids+=("$!")
wait_for "$tmp/l0600root.out" "listening" 10 || fail "root could not use the 0600 socket"
echo "ok: --control-mode 0600 --control-owner root:root: nobody cannot reach the daemon, root can"

# a bad policy stops the daemon at start, saying where
printf 'listen root *\nlisten nosuchuser_xyz 5000\n' >"$tmp/bad"
if "$UVSOCKD" --policy "$tmp/bad" --vm "cid=3,socket=$tmp/vmx.sock" --control "$tmp/x.sock" \
	>"$tmp/bad.out" 2>&1; then
	fail "uvsockd started with a bad policy"
fi
grep -q "line 2: no such user or group" "$tmp/bad.out" || fail "bad policy: $(cat "$tmp/bad.out")"
echo "ok: a bad policy file is refused at start with its line"
echo "1 passed, 0 failed"
