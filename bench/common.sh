# shellcheck shell=bash
# Sourced by the benchmark scripts: the binaries of a build, a scratch directory cleaned up
# with every process started (pids), uvsockd with userspace guests.

# bench_init BUILD: sets perf, guest, daemon, shim; checks they exist; tmp, pids, cleanup.
bench_init() {
	perf=$1/examples/uvsock-perf
	guest=$1/examples/uvsock-guest
	daemon=$1/pmd/uvsockd
	shim=$(cd "$1/preload" && pwd)/libuvsock-preload.so
	local b
	for b in "$perf" "$guest" "$daemon" "$shim"; do
		[ -e "$b" ] || { echo "missing $b: ninja -C $1 first" >&2; exit 1; }
	done
	tmp=$(mktemp -d /tmp/uvsock-bench.XXXXXX)
	pids=()
	trap bench_cleanup EXIT
}

bench_cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}

# bench_daemon CID...: uvsockd with a guest socket $tmp/vmCID.sock per CID; sets dpid,
# exports UVSOCK_CONTROL once the control socket is there.
bench_daemon() {
	local vms=() c
	for c in "$@"; do vms+=(--vm "cid=$c,socket=$tmp/vm$c.sock"); done
	"$daemon" "${vms[@]}" --control "$tmp/ctl.sock" >"$tmp/uvsockd.log" 2>&1 &
	dpid=$!
	pids+=("$dpid")
	for _ in $(seq 100); do [ -S "$tmp/ctl.sock" ] && break; sleep 0.1; done
	export UVSOCK_CONTROL=$tmp/ctl.sock
}

# bench_guest CID ARGS...: uvsock-guest on CID's socket, listening on 5000 for ever; sets gpid.
bench_guest() {
	local c=$1
	shift
	"$guest" --socket "$tmp/vm$c.sock" --listen 5000 --conns 1000000 "$@" >"$tmp/g$c.log" 2>&1 &
	gpid=$!
	pids+=("$gpid")
	# its "listening" can come before uvsockd has attached it (a connect: ENODEV)
	for _ in $(seq 100); do
		grep -q "guest cid $c attached" "$tmp/uvsockd.log" && break
		sleep 0.1
	done
}
