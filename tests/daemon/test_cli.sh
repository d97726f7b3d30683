#!/usr/bin/env bash
# uvsockd's command line: --help, refused arguments with clear errors and exit code 2, and
# readiness (the control socket appears only once the daemon serves, and goes on SIGTERM).
set -euo pipefail
D=$1
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
pid=
fail() { echo "FAIL: $*"; exit 1; }
expect_refused() {
	local want=$1; shift
	local out rc=0
	out=$("$D" "$@" 2>&1) || rc=$?
	[ "$rc" = 2 ] || fail "'$*' exited $rc, want 2"
	grep -q -- "$want" <<<"$out" || fail "'$*' said '$out', want '$want'"
	echo "ok: refused $* ($want)"
}
"$D" --help | grep -q -- "--vm cid=N,socket=PATH" || fail "--help lacks --vm"
echo "ok: --help"
expect_refused "at least one --vm" --control "$tmp/c"
expect_refused "reserved" --vm "cid=2,socket=$tmp/a"
expect_refused "reserved" --vm "cid=0,socket=$tmp/a"
expect_refused "reserved" --vm "cid=4294967295,socket=$tmp/a"
expect_refused "given twice" --vm "cid=3,socket=$tmp/a" --vm "cid=3,socket=$tmp/b"
expect_refused "given twice" --vm "cid=3,socket=$tmp/a" --vm "cid=4,socket=$tmp/a"
expect_refused "bad cid" --vm "cid=x,socket=$tmp/a"
expect_refused "unknown key" --vm "cid=3,sock=$tmp/a"
expect_refused "needs cid=N,socket=PATH" --vm "cid=3"
"$D" --vm "cid=3,socket=$tmp/vm3.sock" --vm "cid=4,socket=$tmp/vm4.sock" --control "$tmp/ctl.sock" \
	>"$tmp/log" 2>&1 &
pid=$!
for _ in $(seq 100); do
	[ -S "$tmp/ctl.sock" ] && break
	kill -0 $pid 2>/dev/null || { cat "$tmp/log"; fail "daemon died"; }
	sleep 0.1
done
[ -S "$tmp/ctl.sock" ] || fail "control socket never appeared"
grep -q "uvsockd: ready" "$tmp/log" || fail "no ready line"
{ [ -S "$tmp/vm3.sock" ] && [ -S "$tmp/vm4.sock" ]; } || fail "vhost-user sockets missing"
echo "ok: ready with two guests"
# idle cost: the daemon must sleep when nothing happens
t0=$(awk '{print $14+$15}' /proc/$pid/stat)
sleep 2
t1=$(awk '{print $14+$15}' /proc/$pid/stat)
ticks=$((t1 - t0))
[ "$ticks" -le 10 ] || fail "idle daemon used $ticks clock ticks in 2 s (want <= 10, i.e. 5%)"
echo "ok: idle daemon used $ticks ticks in 2 s"
kill -TERM $pid
wait $pid || fail "daemon exit code $?"
pid=
[ ! -e "$tmp/ctl.sock" ] || fail "control socket left behind"
echo "ok: clean stop"
# With hugepages reserved, the default EAL set-up uses them (and still runs without).
hp=/proc/sys/vm/nr_hugepages
if [ "$(id -u)" = 0 ] && [ -w "$hp" ] && [ "$(cat $hp)" = 0 ]; then
	echo 16 >"$hp" 2>/dev/null || true
	if [ "$(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages 2>/dev/null || echo 0)" -gt 0 ]; then
		"$D" --vm "cid=3,socket=$tmp/h3.sock" --control "$tmp/hctl.sock" >"$tmp/hlog" 2>&1 &
		pid=$!
		for _ in $(seq 100); do [ -S "$tmp/hctl.sock" ] && break; sleep 0.1; done
		used=$(( 16 - $(cat /sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages) ))
		kill -TERM $pid; wait $pid || true
		pid=
		echo 0 >"$hp"
		grep -q "ready: .*, hugepages" "$tmp/hlog" || { cat "$tmp/hlog"; fail "hugepages reserved but not used"; }
		[ "$used" -ge 1 ] || fail "ready line says hugepages but none was taken"
		echo "ok: with hugepages reserved the daemon uses them ($used taken)"
	else
		echo 0 >"$hp"
		echo "note: could not reserve hugepages here; the hugepage path was not exercised"
	fi
fi
echo "1 passed, 0 failed"
