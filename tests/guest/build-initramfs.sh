#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Build the guest initramfs for the real-guest tests.
#
# Usage: build-initramfs.sh KERNEL_DIR OUT
#
#   KERNEL_DIR  an unpacked linux-image package (the directory holding lib/modules/<ver>/, as made
#               by fetch-kernels.sh), or a module directory lib/modules/<ver>/ itself
#   OUT         the gzip'ed newc cpio to write (replaced atomically)
#
# Contents: static busybox + one symlink per applet, the virtio/vsock modules (dependencies
# resolved from each module's .modinfo, built-in ones skipped, compressed ones unpacked), the static
# test program uvsock-gtest (compiled into $UVT_CACHE/bin when its source is newer), and /init:
# mount proc/sys/devtmpfs, insmod, decode uvt.cmd= (base64) from /proc/cmdline, run
# "uvsock-gtest run <cmd>", poweroff -f.
#
# Environment: UVT_CACHE (default <this dir>/cache), CC (default gcc).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${UVT_CACHE:-$here/cache}
cc=${CC:-gcc}
src=$here/uvsock-gtest.c

# Load order from shared/doc/real-guest.md (the team's notes), plus vsock_loopback; dependencies missing from this list are
# inserted before their users, built-in modules are skipped.
want_modules=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci vsock
	vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport vsock_loopback)

die() {
	echo "build-initramfs: error: $*" >&2
	exit 1
}

[[ $# -eq 2 ]] || die "usage: build-initramfs.sh KERNEL_DIR OUT"
kdir=$1
out=$2

for tool in "$cc" readelf gzip flock find; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (install gcc, binutils, gzip)"
done
busybox=/bin/busybox
[[ -x $busybox ]] || die "$busybox not found: install the busybox-static package"
if readelf -l "$busybox" 2>/dev/null | grep -q 'program interpreter'; then
	die "$busybox is dynamically linked: install the busybox-static package"
fi
[[ -f $src ]] || die "missing $src"

# Module directory.
if [[ -d $kdir/kernel ]]; then
	moddir=$kdir
else
	shopt -s nullglob
	dirs=("$kdir"/lib/modules/*/)
	shopt -u nullglob
	[[ ${#dirs[@]} -eq 1 ]] ||
		die "$kdir: expected exactly one lib/modules/<version>/ (found ${#dirs[@]})"
	moddir=${dirs[0]%/}
fi
[[ -d $moddir/kernel ]] || die "$moddir has no kernel/ subdirectory"
kver=$(basename "$moddir")

mkdir -p "$cache/bin"
cache=$(cd "$cache" && pwd)

if [[ ${UVT_BUILD_LOCK_HELD:-0} != 1 ]]; then
	exec 9>"$cache/.build.lock"
	flock 9
fi

# 1. The static test program (rebuilt when the source or this script is newer).
prog=$cache/bin/uvsock-gtest
if [[ ! -x $prog || $src -nt $prog || ${BASH_SOURCE[0]} -nt $prog ]]; then
	echo "build-initramfs: compiling $(basename "$src")" >&2
	"$cc" -static -O2 -pthread -std=gnu11 -Wall -Wextra -Wshadow -Wstrict-prototypes \
		-Wmissing-prototypes -Wpointer-arith -Wwrite-strings -Wvla \
		-o "$prog.tmp.$$" "$src" || die "compiling $src failed"
	mv -f "$prog.tmp.$$" "$prog"
fi
if readelf -l "$prog" | grep -q 'program interpreter'; then
	die "$prog is not static (is libc6-dev's libc.a installed?)"
fi

root=$(mktemp -d "${TMPDIR:-/tmp}/uvt-initramfs.XXXXXX")
tmp_out=
trap 'rm -rf "$root" ${tmp_out:+"$tmp_out"}' EXIT

# 2. busybox and its applets.
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,etc,root,lib/modules}
cp "$busybox" "$root/bin/busybox"
links=()
while read -r applet; do
	[[ -n $applet && $applet != bin/busybox ]] || continue
	links+=("$root/$applet")
done < <("$busybox" --list-full)
# One process for all links (forks are slow on some VMs); perl-base is Essential in Debian.
if command -v perl >/dev/null 2>&1; then
	perl -e 'for (@ARGV) { -l $_ or symlink("/bin/busybox", $_) or die "$_: $!\n" }' \
		"${links[@]}" || die "creating applet links failed"
else
	for l in "${links[@]}"; do
		[[ -L $l ]] || ln -s /bin/busybox "$l"
	done
fi
if [[ $(id -u) -eq 0 ]]; then
	mknod -m 600 "$root/dev/console" c 5 1
	mknod -m 666 "$root/dev/null" c 1 3
fi

# 3. Modules, dependencies first.
declare -A modpath=() builtin=() placed=()
while IFS= read -r f; do
	name=${f##*/}
	name=${name%%.ko*}
	modpath[${name//-/_}]=$f
done < <(find "$moddir/kernel" \( -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' \
	-o -name '*.ko.gz' \) -print)
if [[ -f $moddir/modules.builtin ]]; then
	while IFS= read -r f; do
		name=${f##*/}
		name=${name%.ko}
		builtin[${name//-/_}]=1
	done <"$moddir/modules.builtin"
fi

order=()
place_module() {
	local name=$1 src_ko dst deps dep
	[[ -z ${placed[$name]:-} ]] || return 0
	placed[$name]=1
	if [[ -n ${builtin[$name]:-} ]]; then
		return 0
	fi
	src_ko=${modpath[$name]:-}
	[[ -n $src_ko ]] || die "module $name is neither in $moddir/kernel nor built in"
	dst=$root/lib/modules/$name.ko
	case $src_ko in
	*.ko.xz) xz -dc "$src_ko" >"$dst" || die "xz -d $src_ko failed (install xz-utils)" ;;
	*.ko.zst) zstd -qdc "$src_ko" >"$dst" || die "zstd -d $src_ko failed (install zstd)" ;;
	*.ko.gz) gzip -dc "$src_ko" >"$dst" || die "gzip -d $src_ko failed" ;;
	*) cp "$src_ko" "$dst" ;;
	esac
	deps=$(readelf -p .modinfo "$dst" | sed -n 's/.*\] *depends=//p')
	for dep in ${deps//,/ }; do
		place_module "${dep//-/_}"
	done
	order+=("$name")
}
for m in "${want_modules[@]}"; do
	place_module "$m"
done
printf '%s\n' "${order[@]}" >"$root/etc/uvt-modules"

# 4. Test program and /init.
cp "$prog" "$root/bin/uvsock-gtest"
cat >"$root/init" <<'EOF'
#!/bin/sh
# /init of the uvsock real-guest initramfs (generated by tests/guest/build-initramfs.sh)
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "UVT INIT kernel $(uname -r) uptime $(cut -d' ' -f1 /proc/uptime)s"
for m in $(cat /etc/uvt-modules); do
	insmod "/lib/modules/$m.ko" || echo "UVT INIT insmod $m failed"
done
[ -c /dev/vsock ] || echo "UVT INIT /dev/vsock missing"
enc=$(sed -n 's/.*uvt\.cmd=\([^ ]*\).*/\1/p' /proc/cmdline)
cmd=""
if [ -z "$enc" ]; then
	echo "UVT INIT no uvt.cmd= on the kernel command line"
elif ! cmd=$(echo "$enc" | base64 -d); then
	echo "UVT INIT uvt.cmd= is not valid base64"
	cmd=""
fi
echo "UVT INIT modules loaded, uptime $(cut -d' ' -f1 /proc/uptime)s"
/bin/uvsock-gtest run "$cmd"
echo "UVT INIT finished rc=$? uptime $(cut -d' ' -f1 /proc/uptime)s"
sleep 0.3 # let the console drain before the power goes
poweroff -f
EOF
chmod 755 "$root/init"

# 5. Pack (busybox cpio: no cpio package needed).
mkdir -p "$(dirname "$out")"
tmp_out=$(mktemp "$(dirname "$out")/.initramfs.XXXXXX")
(cd "$root" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$tmp_out" ||
	die "packing the initramfs failed"
chmod 644 "$tmp_out"
mv -f "$tmp_out" "$out"
echo "build-initramfs: $out (kernel $kver, modules: ${order[*]})" >&2
