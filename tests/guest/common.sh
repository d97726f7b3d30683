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
	rm -rf "$tmp"
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

# uvt_host_sockets: the daemon's count of host sockets, read through its SIGUSR1 dump.
uvt_host_sockets() {
	local before
	before=$(grep -c "^host sockets" "$tmp/uvsockd.log" || true)
	kill -USR1 "$dpid"
	for _ in $(seq 50); do
		[ "$(grep -c "^host sockets" "$tmp/uvsockd.log" || true)" -gt "$before" ] && break
		sleep 0.1
	done
	grep "^host sockets" "$tmp/uvsockd.log" | tail -1 | awk '{print $3}'
}
