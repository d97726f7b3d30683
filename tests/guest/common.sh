# shellcheck shell=bash
# Sourced by the real-guest test scripts and scripts/demo.sh: a scratch directory, process
# clean-up, waiting for a line in a log, and starting uvsockd. Expects UVSOCKD to be set.

# uvt_init NAME: scratch directory $tmp, cleaned up (with every process in pids) on exit.
uvt_init() {
	tmp=$(mktemp -d "/tmp/uvsock-$1.XXXXXX")
	pids=()
	trap uvt_cleanup EXIT
}

uvt_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	# QEMU of guests still running (their vhost-user sockets live in $tmp)
	pkill -9 -f "path=$tmp/" 2>/dev/null || true
	wait 2>/dev/null || true
	uvt_ubsan_check
	rm -rf "$tmp"
}

# In a build with UBSan, a report fails the test even if it came from a program in the
# background: with gcc, UBSan next to ASan writes to the program's stderr whatever log_path
# says, and the logs in $tmp are all there is (scripts/test-sanitizers.sh collects the rest).
uvt_ubsan_check() {
	case ${UVT_SANITIZE:-} in *undefined*) ;; *) return 0 ;; esac
	grep -rIl "runtime error:" "$tmp" >"$tmp.ubsan" 2>/dev/null || {
		rm -f "$tmp.ubsan"
		return 0
	}
	echo "FAIL: UBSan reports in $(tr '\n' ' ' <"$tmp.ubsan")"
	xargs grep -h -A 20 "runtime error:" <"$tmp.ubsan"
	rm -rf "$tmp" "$tmp.ubsan"
	exit 1
}

# wait_for FILE PATTERN SECONDS: until PATTERN appears in FILE; 1 on timeout.
wait_for() {
	local _
	for _ in $(seq $(($3 * 10))); do
		grep -aq "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# uvt_start_daemon [EAL options --] --vm ...: starts uvsockd with its control socket in
# $tmp, waits until it is ready, exports UVSOCK_CONTROL; sets dpid. Returns 1 if not ready.
uvt_start_daemon() {
	"$UVSOCKD" "$@" --control "$tmp/ctl.sock" >"$tmp/uvsockd.log" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	wait_for "$tmp/uvsockd.log" "uvsockd: ready" 10 || return 1
	export UVSOCK_CONTROL=$tmp/ctl.sock
}

# uvt_attached CID: how many times uvsockd has attached the guest with that CID so far.
uvt_attached() {
	grep -c "guest cid $1 attached" "$tmp/uvsockd.log" || true
}

# uvt_wait_attached CID [BEFORE]: until uvsockd has attached that guest more than BEFORE times
# (default 0). A userspace guest's own "listening" line can come before: a host connect then
# fails with ENODEV.
uvt_wait_attached() {
	local _
	for _ in $(seq 100); do
		[ "$(uvt_attached "$1")" -gt "${2:-0}" ] && return 0
		sleep 0.1
	done
	return 1
}

# uvt_dump TRIES PAUSE: have the daemon write its SIGUSR1 dump to $tmp/uvsockd.log and wait
# until it is there (its last line, "host segments ...", appeared once more), looking TRIES
# times PAUSE seconds apart.
uvt_dump() {
	local before
	before=$(grep -c "^host segments" "$tmp/uvsockd.log" || true)
	kill -USR1 "$dpid"
	for _ in $(seq "$1"); do
		[ "$(grep -c "^host segments" "$tmp/uvsockd.log" || true)" -gt "$before" ] && break
		sleep "$2"
	done
}

# uvt_host_sockets: the daemon's count of host sockets, read through its SIGUSR1 dump.
uvt_host_sockets() {
	uvt_dump 50 0.1
	grep "^host sockets" "$tmp/uvsockd.log" | tail -1 | awk '{print $3}'
}

# uvt_daemon_kept: segments the daemon keeps for reuse (lib/uvs_srv.c), each an open fd and a
# mapping that a leak check must not count, read through its SIGUSR1 dump.
uvt_daemon_kept() {
	uvt_dump 50 0.1
	grep "^host segments" "$tmp/uvsockd.log" | tail -1 | sed -n 's/.*; kept \([0-9]*\)$/\1/p'
}

# The host peers of the guest scenarios (tests/guest/README.md), on the native API: echo
# 5000/5001 (uvsock-echo $1), writer 5002, sink 5003, SEQPACKET sink 5004 (uvsock-test-host
# $2). Logs: $tmp/*.host.log.
uvt_host_peers() {
	"$1" --listen 5000 >"$tmp/echo.host.log" 2>&1 &
	pids+=("$!")
	"$2" writer 5002 >"$tmp/writer.host.log" 2>&1 &
	pids+=("$!")
	"$2" sink 5003 2000 >"$tmp/sink.host.log" 2>&1 &
	pids+=("$!")
	"$2" seqsink 5004 1500 >"$tmp/seqsink.host.log" 2>&1 &
	pids+=("$!")
	sleep 0.5
}

# The scenarios every guest runs against uvt_host_peers.
UVT_COMMON="stream-echo port=5000 sizes=1,100,4096,65536,300000; seq-bounds port=5001"
UVT_COMMON+="; connreset port=5999; shutwr port=5000; host-eof port=5002; slow-reader port=5003"
UVT_COMMON+="; seq-credit port=5004; stream-bulk port=5000 bytes=8388608; concurrent port=5000 n=50"

# uvt_host_into_guest CID LOG PID ECHO HOST: once the guest's "listen port=7000" scenario is
# ready (LOG, written by PID), connect from the host: STREAM and SEQPACKET clients that check
# the echo, 4 MiB through uvsock-echo's client compared byte for byte, then a host program
# that is SIGKILLed mid-connection. Log: $tmp/client$CID.host.log. Returns 1 on failure.
uvt_host_into_guest() {
	local cid=$1 log=$2 pid=$3 echo=$4 host=$5 out=$tmp/client$1.host.log
	[ -f "$tmp/blob" ] || head -c 4194304 /dev/urandom >"$tmp/blob"
	for _ in $(seq 3000); do
		grep -aq "UVT READY listen" "$log" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	"$host" client "$cid" 7000 1 >>"$out" 2>&1 || return 1
	"$host" client "$cid" 7001 1 seq >>"$out" 2>&1 || return 1
	# uvsock-echo's client sends from one thread and receives in another, both blocking
	# on one socket
	timeout 120 "$echo" --connect "$cid:7000" <"$tmp/blob" >"$tmp/blob.$cid" 2>>"$out" ||
		{ echo "uvsock-echo client to $cid failed" >>"$out"; return 1; }
	cmp -s "$tmp/blob" "$tmp/blob.$cid" ||
		{ echo "uvsock-echo client to $cid: echo differs" >>"$out"; return 1; }
	echo "uvsock-echo ok: 4 MiB to $cid:7000 and back, identical" >>"$out"
	"$host" die "$cid" 7000 >>"$out" 2>&1 || true
	return 0
}

# uvt_host_peers_ok: the writer and sink saw clean exchanges (else a message, return 1).
uvt_host_peers_ok() {
	grep -q "writer ok" "$tmp/writer.host.log" || { echo "host writer did not see a clean exchange"; return 1; }
	grep -q "sink ok" "$tmp/sink.host.log" || { echo "host sink did not see the pattern"; return 1; }
	if grep -q "FAIL" "$tmp/writer.host.log" "$tmp/sink.host.log"; then
		echo "host peer reported a failure"
		return 1
	fi
}

# uvt_preload SHIM: what LD_PRELOAD must be to run SHIM in any program. In a sanitized build
# (UVT_SAN_PRELOAD, tests/meson.build) the shim needs the sanitizer's runtime loaded before it,
# which a program that is not sanitized itself (python3, timeout) does not do.
uvt_preload() {
	echo "${UVT_SAN_PRELOAD:+$UVT_SAN_PRELOAD }$1"
}

# uvt_rss_bounded: whether the daemon's memory bounds apply. Not in a sanitized build: ASan
# holds freed memory in quarantine (256 MiB) and both sanitizers add shadow memory as the heap
# moves; there LeakSanitizer and the sanitizers' reports check instead.
uvt_rss_bounded() {
	[ -z "${UVT_SANITIZE:-}" ]
}
