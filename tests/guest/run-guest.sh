#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Boot a small real Linux guest under QEMU (TCG) and run uvsock-gtest scenarios in it.
#
# Usage:
#   run-guest.sh [--kernel 6.1|6.12] (--socket PATH | --no-device) [--mem MB] [--timeout SEC]
#                [--log FILE] [--device-opts OPTS] [--pvh] -- "SCENARIO args; SCENARIO args; ..."
#
#   --kernel SERIES     guest kernel series (default 6.1); fetched/unpacked on first use
#   --socket PATH       vhost-user socket of the device (uvsockd); QEMU connects to it and gets
#                       -device vhost-user-vsock-pci,chardev=...
#   --no-device         no vsock device (only vsock_loopback, CID 1): for the selftest
#   --mem MB            guest RAM (default 256), memfd-backed with share=on
#   --timeout SEC       whole-run deadline, boot included (default 300); QEMU is killed after it
#   --log FILE          also write the console there (default: $UVT_CACHE/logs/<unique>.log)
#   --device-opts OPTS  appended to the -device option, e.g. ",seqpacket=off"
#   --maxmem MB         allow memory hotplug up to MB (2 slots), for tests that add memory
#   --qmp PATH          QMP control socket (server) for the test to drive QEMU
#   --pvh               boot the uncompressed vmlinux through QEMU's PVH entry instead of the
#                       bzImage (skips the in-guest decompression: about 2.5 s less per boot
#                       with the xz-compressed 6.1 kernel; extracted once into the cache)
#
# The console is streamed line by line to stdout and to the log. The run stops at "UVT DONE"
# (QEMU then powers off by itself; it is killed if it does not within 10 s). Exit status:
#   0  UVT DONE reported fail=0 and every scenario printed a PASS RESULT line
#   1  a scenario failed, or the guest timed out / panicked / stopped without UVT DONE
#   2  usage or setup error (missing tools, kernel, ...)
# Several runs may execute at the same time (temporary files are per run).
#
# Environment: UVT_CACHE (default <this dir>/cache), QEMU (default qemu-system-x86_64).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${UVT_CACHE:-$here/cache}
qemu_bin=${QEMU:-qemu-system-x86_64}

series=6.1
socket=
nodevice=0
mem=256
timeout=300
log=
devopts=
pvh=0
maxmem=
qmp=

usage() {
	sed -n '4,/^$/p' "${BASH_SOURCE[0]}" | sed -n 's/^# \{0,1\}//p' >&2
	exit 2
}

die() {
	echo "run-guest: error: $*" >&2
	exit 2
}

while [[ $# -gt 0 ]]; do
	case $1 in
	--kernel) series=${2:?--kernel needs a value}; shift 2 ;;
	--socket) socket=${2:?--socket needs a path}; shift 2 ;;
	--no-device) nodevice=1; shift ;;
	--mem) mem=${2:?--mem needs a value}; shift 2 ;;
	--timeout) timeout=${2:?--timeout needs a value}; shift 2 ;;
	--log) log=${2:?--log needs a file}; shift 2 ;;
	--device-opts) devopts=${2:?--device-opts needs a value}; shift 2 ;;
	--pvh) pvh=1; shift ;;
	--maxmem) maxmem=${2:?--maxmem needs a value}; shift 2 ;;
	--qmp) qmp=${2:?--qmp needs a socket path}; shift 2 ;;
	--) shift; break ;;
	-h | --help) usage ;;
	*) echo "run-guest: unknown option '$1'" >&2; usage ;;
	esac
done
[[ $# -eq 1 ]] || die "expected exactly one command string after --, e.g. -- \"selftest\""
cmd=$1

if [[ -n $socket && $nodevice -eq 1 ]]; then
	die "--socket and --no-device are exclusive"
fi
if [[ -z $socket && $nodevice -eq 0 ]]; then
	die "give --socket PATH (device) or --no-device"
fi
[[ $mem =~ ^[0-9]+$ && $mem -ge 64 ]] || die "--mem wants a number of MiB >= 64"
[[ $timeout =~ ^[0-9]+$ && $timeout -ge 1 ]] || die "--timeout wants seconds"
if [[ -n $socket && ! -S $socket ]]; then
	die "vhost-user socket $socket does not exist (start uvsockd first)"
fi

for tool in "$qemu_bin" base64 flock mkfifo; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' not found (qemu-system-x86 and coreutils are installed by the install script)"
done

# Count the scenarios the guest must report: non-empty ';'-separated parts.
expected=0
IFS=';' read -r -a parts <<<"$cmd"
for p in "${parts[@]}"; do
	[[ -n ${p//[[:space:]]/} ]] && expected=$((expected + 1))
done
[[ $expected -gt 0 ]] || die "empty scenario list"

mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# Kernel (fetch on first use).
envf=$cache/kernels/$series.env
if [[ ! -f $envf ]]; then
	UVT_CACHE=$cache "$here/fetch-kernels.sh" "$series" >/dev/null ||
		die "could not fetch kernel series $series"
fi
[[ -f $envf ]] || die "kernel series $series is not available (see fetch-kernels.sh)"
# shellcheck source=/dev/null
source "$envf"
[[ -f $UVT_VMLINUZ && -d $UVT_MODDIR ]] ||
	die "$envf points to missing files; remove it and rerun fetch-kernels.sh"

# Initramfs for this kernel (rebuilt when the program, the scripts or the kernel changed).
initrd=$cache/initramfs/$UVT_KVER.cpio.gz
stale() {
	[[ ! -f $initrd || $here/uvsock-gtest.c -nt $initrd || $here/build-initramfs.sh -nt $initrd ||
		$envf -nt $initrd ]]
}
if stale; then
	exec 9>"$cache/.build.lock"
	flock 9
	if stale; then
		UVT_CACHE=$cache UVT_BUILD_LOCK_HELD=1 "$here/build-initramfs.sh" "$UVT_MODDIR" \
			"$initrd" || die "building the initramfs failed"
	fi
	exec 9>&-
fi

# Uncompressed vmlinux (ELF with a PVH entry note) next to the bzImage, made once.
extract_vmlinux() {
	local out magic off tmp unpack
	out=$(dirname "$UVT_VMLINUZ")/vmlinux-$UVT_KVER
	if [[ ! -s $out ]]; then
		tmp=$(mktemp "$out.XXXXXX")
		for magic in '\xfd7zXZ\x00' '\x28\xb5\x2f\xfd' '\x1f\x8b\x08'; do
			off=$(LC_ALL=C grep -obUaP "$magic" "$UVT_VMLINUZ" | head -n1 | cut -d: -f1 || true)
			[[ -n $off ]] || continue
			case $magic in
			*7zXZ*) unpack=(xz -dc --single-stream) ;;
			*b5*) unpack=(zstd -dcq) ;;
			*) unpack=(gzip -dc) ;;
			esac
			tail -c +$((off + 1)) "$UVT_VMLINUZ" | "${unpack[@]}" >"$tmp" 2>/dev/null || true
			[[ $(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ') == 7f454c46 ]] && break
		done
		if [[ $(head -c 4 "$tmp" | od -An -tx1 | tr -d ' ') != 7f454c46 ]]; then
			rm -f "$tmp"
			die "could not extract an ELF vmlinux from $UVT_VMLINUZ for --pvh"
		fi
		chmod 644 "$tmp"
		mv -f "$tmp" "$out"
	fi
	echo "$out"
}

# Per-run temporary files.
tmpdir=$(mktemp -d "${TMPDIR:-/tmp}/uvt-guest.XXXXXX")
if [[ -z $log ]]; then
	mkdir -p "$cache/logs"
	log=$cache/logs/$(date +%Y%m%d-%H%M%S)-$series-$$.log
fi
mkdir -p "$(dirname "$log")"
: >"$log"
qpid=

# shellcheck disable=SC2317 # called through the EXIT trap
cleanup() {
	if [[ -n $qpid ]] && kill -0 "$qpid" 2>/dev/null; then
		kill -KILL "$qpid" 2>/dev/null || true
		wait "$qpid" 2>/dev/null || true
	fi
	rm -rf "$tmpdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

enc=$(printf '%s' "$cmd" | base64 -w0)
append="console=ttyS0 quiet panic=-1 uvt.cmd=$enc"
[[ ${#append} -lt 2000 ]] || die "command too long for the kernel command line (${#append} bytes)"

kernel_img=$UVT_VMLINUZ
if [[ $pvh -eq 1 ]]; then
	kernel_img=$(extract_vmlinux)
fi

# As in shared/doc/real-guest.md (the team's notes), plus "-nic none" (no default NIC, no iPXE option ROM).
# shellcheck disable=SC2054 # the commas are QEMU's, not array separators
qemu_args=(
	-accel tcg -machine q35 -cpu max -smp 1 -m "${mem}M${maxmem:+,slots=2,maxmem=${maxmem}M}"
	-object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -numa node,memdev=mem
	-kernel "$kernel_img" -initrd "$initrd" -append "$append"
	-nographic -no-reboot -nic none
)
if [[ -n $qmp ]]; then
	qemu_args+=(-qmp "unix:$qmp,server=on,wait=off")
fi
if [[ -n $socket ]]; then
	qemu_args+=(-chardev "socket,id=uvt0,path=$socket"
		-device "vhost-user-vsock-pci,chardev=uvt0$devopts")
fi

fifo=$tmpdir/console
mkfifo "$fifo"
start=$(date +%s%N)
deadline=$((start / 1000000000 + timeout))
{
	echo "run-guest: kernel $UVT_KPKG ($UVT_KDEBVER), $([[ -n $socket ]] &&
		echo "device $socket" || echo "no device"), timeout ${timeout}s"
	echo "run-guest: command: $cmd"
} | tee -a "$log"
"$qemu_bin" "${qemu_args[@]}" </dev/null >"$fifo" 2>&1 &
qpid=$!
exec 8<"$fifo"

done_line=
panic=0
npass=0
nfail=0
failed=()
timed_out=0
while :; do
	now=$(date +%s)
	left=$((deadline - now))
	if [[ $left -le 0 ]]; then
		timed_out=1
		break
	fi
	if IFS= read -r -t "$left" -u 8 line; then
		line=${line//$'\r'/}
		printf '%s\n' "$line"
		printf '%s\n' "$line" >>"$log"
		case $line in
		*"UVT RESULT "*)
			name=${line#*UVT RESULT }
			name=${name%% *}
			verdict=${line#*UVT RESULT "$name" }
			verdict=${verdict%% *}
			if [[ $verdict == PASS ]]; then
				npass=$((npass + 1))
			else
				nfail=$((nfail + 1))
				failed+=("$name")
			fi
			;;
		*"UVT DONE "*)
			done_line=${line#*UVT DONE }
			break
			;;
		*"Kernel panic"*)
			panic=1
			;;
		esac
	else
		rc=$?
		if [[ $rc -gt 128 ]]; then
			timed_out=1
		fi
		break
	fi
done
end=$(date +%s%N)
wall_ms=$(((end - start) / 1000000))

# Let the guest power off by itself after UVT DONE; kill QEMU otherwise.
qrc=
if [[ -n $done_line ]]; then
	for _ in $(seq 100); do
		kill -0 "$qpid" 2>/dev/null || break
		# Drain console output (the "UVT INIT finished" line, power-off messages).
		while IFS= read -r -t 0.1 -u 8 line; do
			line=${line//$'\r'/}
			printf '%s\n' "$line"
			printf '%s\n' "$line" >>"$log"
		done || true
	done
fi
if kill -0 "$qpid" 2>/dev/null; then
	kill -KILL "$qpid" 2>/dev/null || true
fi
wait "$qpid" 2>/dev/null && qrc=0 || qrc=$?
qpid=
exec 8<&-

verdict_fail() {
	echo "run-guest: FAIL: $* (kernel $UVT_KVER, ${wall_ms} ms, log $log)" | tee -a "$log" >&2
	exit 1
}

if [[ -z $done_line ]]; then
	if [[ $timed_out -eq 1 ]]; then
		verdict_fail "timeout: no UVT DONE within ${timeout}s ($npass pass, $nfail fail so far)"
	elif [[ $panic -eq 1 ]]; then
		verdict_fail "guest kernel panic before UVT DONE"
	else
		verdict_fail "QEMU exited (status $qrc) without a UVT DONE line"
	fi
fi
if [[ ! $done_line =~ ^pass=([0-9]+)\ fail=([0-9]+) ]]; then
	verdict_fail "malformed DONE line '$done_line'"
fi
dpass=${BASH_REMATCH[1]}
dfail=${BASH_REMATCH[2]}
if [[ $nfail -gt 0 || $dfail -ne 0 ]]; then
	verdict_fail "$((nfail > dfail ? nfail : dfail)) scenario(s) failed: ${failed[*]:-?}"
fi
if [[ $npass -ne $expected || $dpass -ne $expected ]]; then
	verdict_fail "expected $expected PASS results, saw $npass RESULT PASS lines and DONE pass=$dpass"
fi
echo "run-guest: PASS: $npass/$expected scenarios, kernel $UVT_KVER, ${wall_ms} ms (log $log)" |
	tee -a "$log" >&2
exit 0
