#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Download and unpack Debian 12 guest kernels for the real-guest tests.
#
# Usage: fetch-kernels.sh [--update] [SERIES...]      (default: 6.1 6.12)
#
#   6.1   the package that Debian 12's linux-image-amd64 depends on
#   6.12  the package that linux-image-6.12-amd64 depends on (Debian 12 ships 6.12 as
#         linux-image-6.12.*+deb12-amd64 in bookworm(-security))
#
# Idempotent: a series whose kernel is already unpacked and recorded is taken as is, without asking
# apt (fast, works offline). --update asks apt again and fetches a newer package if there is one.
# For each series it writes $UVT_CACHE/kernels/<series>.env (sourceable by bash):
#   UVT_KSERIES UVT_KPKG UVT_KDEBVER UVT_KVER UVT_VMLINUZ UVT_MODDIR
# A series that is not available in the reachable archive is reported and skipped; the exit
# status is nonzero only if no requested series could be provided.
#
# Environment: UVT_CACHE (default: <this dir>/cache).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${UVT_CACHE:-$here/cache}

die() {
	echo "fetch-kernels: error: $*" >&2
	exit 1
}

note() {
	echo "fetch-kernels: $*" >&2
}

for tool in apt-get apt-cache dpkg-deb flock; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "'$tool' not found (this script needs a Debian system with apt and dpkg)"
done

mkdir -p "$cache/debs" "$cache/kernels"
cache=$(cd "$cache" && pwd)

# Serialise concurrent runs (two run-guest.sh at once).
exec 9>"$cache/.fetch.lock"
flock 9

updated=0

# Print the candidate version of a package, empty if apt has none.
candidate() {
	apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# Make sure apt's lists know package $1; run apt-get update once if they do not.
ensure_lists() {
	if [[ -n $(candidate "$1") ]]; then
		return 0
	fi
	if [[ $updated -eq 0 ]]; then
		note "apt has no candidate for $1, running apt-get update"
		apt-get update -qq >&2 || die "apt-get update failed"
		updated=1
	fi
	[[ -n $(candidate "$1") ]]
}

# Series -> "meta-package regex" (the meta package depends on the concrete image package).
series_spec() {
	case $1 in
	6.1) echo 'linux-image-amd64 ^linux-image-6\.1\.[0-9]+-[0-9]+-amd64$' ;;
	6.12) echo 'linux-image-6.12-amd64 ^linux-image-6\.12\.[0-9]+\+deb12-amd64$' ;;
	*) return 1 ;;
	esac
}

# Resolve series -> concrete linux-image package name (empty if unavailable).
resolve_pkg() {
	local series=$1 meta pat pkg
	read -r meta pat <<<"$(series_spec "$series")"
	if ensure_lists "$meta"; then
		pkg=$(apt-cache depends "$meta" 2>/dev/null |
			awk '$1 == "Depends:" { print $2 }' | grep -E "$pat" | head -n1 || true)
		if [[ -n $pkg ]]; then
			echo "$pkg"
			return 0
		fi
	fi
	# No meta package: take the highest versioned concrete package apt knows.
	apt-cache search --names-only "${pat}" 2>/dev/null | awk '{ print $1 }' |
		sort -V | tail -n1
}

# True if $1.env exists and points to an unpacked kernel.
recorded() {
	local envf=$cache/kernels/$1.env
	[[ -f $envf ]] || return 1
	(
		# shellcheck source=/dev/null
		source "$envf"
		[[ -f $UVT_VMLINUZ && -d $UVT_MODDIR && -f $cache/kernels/$UVT_KPKG/.complete ]]
	)
}

fetch_one() {
	local series=$1 pkg ver deb dest kver vmlinuz moddir envf tmp
	if [[ $update -eq 0 ]] && recorded "$series"; then
		(
			# shellcheck source=/dev/null
			source "$cache/kernels/$series.env"
			echo "$series $UVT_KPKG $UVT_VMLINUZ $UVT_MODDIR"
		)
		return 0
	fi
	pkg=$(resolve_pkg "$series")
	if [[ -z $pkg ]]; then
		note "no linux-image package for series $series in the reachable archive; skipped"
		return 1
	fi
	ver=$(candidate "$pkg")
	[[ -n $ver ]] || ensure_lists "$pkg" || {
		note "$pkg has no installable candidate; skipped"
		return 1
	}
	ver=$(candidate "$pkg")
	dest=$cache/kernels/$pkg
	envf=$cache/kernels/$series.env

	if [[ ! -f $dest/.complete ]]; then
		deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" -print | sort -V | tail -n1)
		if [[ -z $deb ]]; then
			note "downloading $pkg ($ver)"
			(cd "$cache/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) ||
				die "apt-get download $pkg=$ver failed"
			deb=$(find "$cache/debs" -maxdepth 1 -name "${pkg}_*.deb" -print |
				sort -V | tail -n1)
			[[ -n $deb ]] || die "apt-get download reported success but no ${pkg}_*.deb"
		fi
		note "unpacking $(basename "$deb")"
		tmp=$(mktemp -d "$cache/kernels/.unpack.XXXXXX")
		dpkg-deb -x "$deb" "$tmp" || {
			rm -rf "$tmp"
			die "dpkg-deb -x $deb failed"
		}
		rm -rf "$dest"
		mv "$tmp" "$dest"
		dpkg-deb -f "$deb" Version >"$dest/.complete"
	fi

	vmlinuz=$(find "$dest/boot" -maxdepth 1 -name 'vmlinuz-*' -print | head -n1)
	[[ -n $vmlinuz ]] || die "$pkg: no boot/vmlinuz-* in $dest"
	kver=${vmlinuz##*/vmlinuz-}
	moddir=$dest/lib/modules/$kver
	[[ -d $moddir ]] || die "$pkg: no module directory $moddir"

	tmp=$(mktemp "$cache/kernels/.env.XXXXXX")
	{
		echo "# written by fetch-kernels.sh"
		printf 'UVT_KSERIES=%q\n' "$series"
		printf 'UVT_KPKG=%q\n' "$pkg"
		printf 'UVT_KDEBVER=%q\n' "$(cat "$dest/.complete")"
		printf 'UVT_KVER=%q\n' "$kver"
		printf 'UVT_VMLINUZ=%q\n' "$vmlinuz"
		printf 'UVT_MODDIR=%q\n' "$moddir"
	} >"$tmp"
	chmod 644 "$tmp"
	# Keep the old file (and its mtime, which run-guest.sh compares) if nothing changed.
	if [[ -f $envf ]] && cmp -s "$tmp" "$envf"; then
		rm -f "$tmp"
	else
		mv "$tmp" "$envf"
	fi
	note "$series: $pkg kernel $kver -> $envf"
	echo "$series $pkg $vmlinuz $moddir"
}

update=0
if [[ ${1:-} == --update ]]; then
	update=1
	shift
fi
series_list=("$@")
for s in "${series_list[@]}"; do
	series_spec "$s" >/dev/null || die "unknown kernel series '$s' (known: 6.1 6.12)"
done
if [[ ${#series_list[@]} -eq 0 ]]; then
	series_list=(6.1 6.12)
fi

ok=0
for s in "${series_list[@]}"; do
	if fetch_one "$s"; then
		ok=$((ok + 1))
	fi
done
[[ $ok -gt 0 ]] || die "no guest kernel available for: ${series_list[*]}"
