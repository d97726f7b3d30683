#!/usr/bin/env bash
# Installs every Debian 12 package that uvsock's build, demo and tests need. Idempotent; run as root.
set -euo pipefail

PKGS=(
	build-essential pkg-config meson ninja-build
	dpdk-dev libdpdk-dev libnuma-dev libcmocka-dev
	qemu-system-x86 busybox-static
	python3 socat ncat strace
	clang-format shellcheck git util-linux valgrind
)

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: run as root (apt-get install)" >&2
	exit 1
fi
missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
	echo "install-deps: all packages present"
	exit 0
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
