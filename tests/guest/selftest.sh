#!/bin/bash
# SPDX-License-Identifier: BSD-3-Clause
#
# Validate the guest test program against Linux itself: boot each available guest kernel without
# a vsock device and run "selftest" (every client scenario against uvsock-gtest's own reference
# servers over vsock_loopback, CID 1) plus the "cid" ioctl check.
#
# Usage: selftest.sh [SERIES...]     (default: every series fetch-kernels.sh can provide)
# Exit status 0 only if every kernel passed. Needs no uvsockd.
#
# Environment: UVT_CACHE (default <this dir>/cache).

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${UVT_CACHE:-$here/cache}
export UVT_CACHE=$cache

series=("$@")
if [[ ${#series[@]} -eq 0 ]]; then
	series=(6.1 6.12)
fi

# Fetch what is missing; a series the archive does not have is reported and skipped.
"$here/fetch-kernels.sh" "${series[@]}" >/dev/null || {
	echo "selftest: error: no guest kernel available" >&2
	exit 2
}

# Without a vsock device, Linux reports vsock_loopback's CID 1 as the local CID (6.1 and 6.12).
cmd="cid expect=1; selftest"

results=()
rc=0
for s in "${series[@]}"; do
	if [[ ! -f $cache/kernels/$s.env ]]; then
		echo "selftest: kernel series $s not available, skipped" >&2
		results+=("$s SKIPPED (not in the reachable archive)")
		continue
	fi
	t0=$(date +%s%N)
	if "$here/run-guest.sh" --kernel "$s" --no-device --timeout 400 -- "$cmd"; then
		verdict=PASS
	else
		verdict=FAIL
		rc=1
	fi
	t1=$(date +%s%N)
	results+=("$s $verdict ($(((t1 - t0) / 1000000)) ms boot+test+poweroff wall time)")
done

echo "selftest summary:"
for r in "${results[@]}"; do
	echo "  kernel $r"
done
exit "$rc"
