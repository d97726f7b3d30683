#!/usr/bin/env bash
# The test suites again on sanitized builds (doc/ROBUSTNESS.md, "Sanitizers"): build-asan
# (AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer) and build-tsan
# (ThreadSanitizer), both with gcc. scripts/test.sh runs this after the plain build's suites;
# by hand: bash scripts/test-sanitizers.sh [asan|tsan ...].
#
# Any sanitizer report fails the run, wherever it came from: every report goes to a file under
# BUILD/san-logs (log_path), and a report there after the suites is a failure even if the test
# that caused it passed (a daemon's leak report at its exit, for instance, comes after the test
# script has checked everything else). Reports also make the program exit with an error
# (halt_on_error; UBSan built with -fno-sanitize-recover=all). gcc's UBSan next to ASan writes
# to stderr whatever log_path says: the test scripts look for its reports in their logs
# (tests/guest/common.sh, uvt_ubsan_check).
#
# The real-guest suites (guest, preload: QEMU under TCG) stay with the plain build: they test
# QEMU's and the guest kernel's side more than ours, and take minutes each. The valgrind suite
# cannot run sanitized binaries; ASan covers it. Lint is not code.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

# Suites for each build, and why (times: doc/ROBUSTNESS.md, "Sanitizers"):
#  - sanitizers: the self-test, that each sanitizer's checks are live and fatal.
#  - unit, fuzz: every lib/ module and every corpus input, seconds.
#  - daemon: uvsockd under a sanitizer with programs on the native API and the policy.
#  - guestless: the daemon with userspace guests in every traffic mode, the guest scenarios
#    (threads, fork, the shim in sanitized programs and in python3), uvsock-perf, telemetry.
#  - faults (ASan only): kills and restarts, with fewer rounds (SAN_ROUNDS_*), and the 30 s
#    soak. Under TSan they take over five minutes and add no thread not already in guestless.
# The hostile suite (about 5 minutes, with throughput ratios that a sanitized daemon, several
# times slower, does not meet) stays with the plain build; its inputs are fuzzed with ASan.
ASAN_SUITES=(sanitizers unit fuzz daemon guestless faults)
# The fuzz replays are single-threaded: nothing for TSan.
TSAN_SUITES=(sanitizers unit daemon guestless)
# Fewer fault rounds than the plain build's 100 and 20: each round is slower under a
# sanitizer, and what a round exercises is the same every time.
SAN_ROUNDS_GUEST=${SAN_ROUNDS_GUEST:-10}
SAN_ROUNDS_DAEMON=${SAN_ROUNDS_DAEMON:-3}

builds=("$@")
[ ${#builds[@]} -gt 0 ] || builds=(asan tsan)

# setup NAME SANITIZE: configures build-NAME once (gcc, whose sanitizer runtimes come with
# build-essential; clang would need the shim's runtime found differently).
setup() {
	local dir=build-$1 san=$2
	if [ ! -f "$dir/build.ninja" ]; then
		CC=gcc meson setup "$dir" -Db_sanitize="$san" -Db_lundef=false \
			-Dc_args=-fno-sanitize-recover=all
	fi
	ninja -C "$dir"
}

# check_logs DIR: fails if any sanitizer wrote a report.
# check_logs DIR: print every report in DIR; 1 if any is a report. A file that holds nothing
# but LeakSanitizer's notices that it could not stop one of a process's threads for its exit
# check (a thread exiting at that moment: "Running thread N was not suspended", "Unable to get
# registers from thread N") is printed but is no report: a leak it then finds anyway is
# reported in the same file, and fails the run.
check_logs() {
	local f found=0
	for f in "$1"/*; do
		[ -e "$f" ] || continue
		if ! grep -Evq '^==[0-9]+==(Running thread [0-9]+ was not suspended\. False leaks are possible\.|Unable to get registers from thread [0-9]+\.)$' "$f"; then
			echo "=== LeakSanitizer notice (not a report) $f"
			cat "$f"
			continue
		fi
		found=1
		echo "=== sanitizer report $f"
		cat "$f"
	done
	return $found
}

run() {
	local name=$1 san suites logs rc=0 t0
	case $name in
	asan) san=address,undefined suites=("${ASAN_SUITES[@]}") ;;
	tsan) san=thread suites=("${TSAN_SUITES[@]}") ;;
	*) echo "test-sanitizers: unknown build $name (asan, tsan)" >&2; return 2 ;;
	esac
	t0=$(date +%s)
	setup "$name" "$san"
	logs=$root/build-$name/san-logs
	rm -rf "$logs"
	# world-writable: some tests run programs as nobody
	mkdir -p "$logs"
	chmod 1777 "$logs"
	local supp=$root/tests/sanitizers args=()
	for s in "${suites[@]}"; do args+=(--suite "$s"); done
	ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:log_path=$logs/asan" \
		LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
		UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan" \
		TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$logs/tsan:suppressions=$supp/tsan.supp:print_suppressions=0" \
		ROUNDS_GUEST=$SAN_ROUNDS_GUEST ROUNDS_DAEMON=$SAN_ROUNDS_DAEMON \
		meson test -C "build-$name" --print-errorlogs "${args[@]}" || rc=1
	check_logs "$logs" || { echo "test-sanitizers: $name: sanitizer reports above"; rc=1; }
	echo "test-sanitizers: $name (${suites[*]}): $([ $rc = 0 ] && echo passed || echo FAILED)" \
		"in $(($(date +%s) - t0)) s"
	return $rc
}

rc=0
for b in "${builds[@]}"; do
	run "$b" || rc=1
done
exit $rc
