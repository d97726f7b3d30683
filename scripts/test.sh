#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test suite; then
# the sanitizer builds (ASan+UBSan, TSan) run the suites that fit (scripts/test-sanitizers.sh,
# doc/ROBUSTNESS.md). UVSOCK_SKIP_SANITIZERS=1 leaves those out, for a quick local run only:
# CI (.ci/run) always runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build
fi
ninja -C build
# A failure in one phase does not stop the other: one run reports everything.
rc=0
meson test -C build --print-errorlogs || rc=1
if [ "${UVSOCK_SKIP_SANITIZERS:-0}" = 1 ]; then
	echo "test: sanitizer builds skipped (UVSOCK_SKIP_SANITIZERS=1)"
else
	bash scripts/test-sanitizers.sh || rc=1
fi
exit $rc
