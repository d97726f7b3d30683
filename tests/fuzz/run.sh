#!/usr/bin/env bash
# Build the fuzz targets with clang's libFuzzer, ASan and UBSan (meson -Dfuzz=true), then run
# each named target (default: all) for a number of executions, one after the other.
#
#   tests/fuzz/run.sh [-n RUNS] [TARGET...]     (RUNS: default 100000; doc/ROBUSTNESS.md used 10000000)
#
# Each target's new inputs go to $FUZZ_WORK/TARGET/corpus (the committed seeds in
# tests/fuzz/corpus/TARGET are read, never written), its crashes to $FUZZ_WORK/TARGET/ and its
# output to $FUZZ_WORK/TARGET/log. A crash stops the script with libFuzzer's exit status.
# Environment: FUZZ_BUILD (build directory, default build-fuzz), FUZZ_WORK (default
# $FUZZ_BUILD/fuzz-work), FUZZ_ARGS (more libFuzzer options), CC (default clang).
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=100000
if [ "${1:-}" = "-n" ]; then
	runs=$2
	shift 2
fi
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	targets=(ctl pkt_engine sockbuf vhumsg virtq)
fi
build=${FUZZ_BUILD:-build-fuzz}
work=${FUZZ_WORK:-$build/fuzz-work}

if [ ! -f "$build/build.ninja" ]; then
	# UBSan aborts on the first error, so libFuzzer records it as a crash.
	CC=${CC:-clang} meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dc_args=-fno-sanitize-recover=all
fi
ninja -C "$build" "${targets[@]/#/tests/fuzz/fuzz_}"

for t in "${targets[@]}"; do
	mkdir -p "$work/$t/corpus"
	dict=()
	if [ -f "tests/fuzz/$t.dict" ]; then
		dict=(-dict="tests/fuzz/$t.dict")
	fi
	echo "== $t: $runs runs (progress: $work/$t/log)"
	rc=0
	# shellcheck disable=SC2086 # FUZZ_ARGS is a list of options
	nice -n 10 "$build/tests/fuzz/fuzz_$t" -runs="$runs" "${dict[@]}" -print_final_stats=1 \
		-artifact_prefix="$work/$t/" ${FUZZ_ARGS:-} "$work/$t/corpus" "tests/fuzz/corpus/$t" \
		>"$work/$t/log" 2>&1 || rc=$?
	grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|^Done|ERROR|runtime error|Test unit' "$work/$t/log" || true
	if [ "$rc" -ne 0 ]; then
		echo "$t: crashed (exit $rc), see $work/$t/log"
		exit "$rc"
	fi
	echo "$t: corpus $(find "$work/$t/corpus" -type f | wc -l) files"
done
