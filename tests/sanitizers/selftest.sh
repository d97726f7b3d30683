#!/usr/bin/env bash
# A sanitized build's checks are live and fatal: san_selftest commits each deliberate error the
# build's sanitizers (UVT_SANITIZE) should catch, and must stop there with a report and a
# failing status. Run by meson in sanitized builds (suite 'sanitizers').
set -euo pipefail
BIN=$1
SAN=${UVT_SANITIZE:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
[ -n "$SAN" ] || fail "not a sanitized build (UVT_SANITIZE unset)"

# expect CASE REPORT [MAY_CONTINUE]: "san_selftest CASE" fails, its report (in a log directory
# of its own, so that scripts/test-sanitizers.sh does not count it) says REPORT, and it did
# not print "continued" unless MAY_CONTINUE (a leak is found at exit).
# UBSAN_OPTIONS asks to recover: only -fno-sanitize-recover=all at build time can stop it.
expect() {
	local what=$1 want=$2 rc=0 out reports
	rm -f "$tmp"/log*
	out=$(ASAN_OPTIONS="${ASAN_OPTIONS:-}:log_path=$tmp/log" \
		TSAN_OPTIONS="${TSAN_OPTIONS:-}:log_path=$tmp/log" \
		UBSAN_OPTIONS="${UBSAN_OPTIONS:-}:halt_on_error=0:log_path=$tmp/log" \
		"$BIN" "$what" 2>&1) || rc=$?
	[ "$rc" != 0 ] || fail "$what: exit status 0 ($out)"
	if [ -z "${3:-}" ] && grep -q "^continued" <<<"$out"; then
		fail "$what: went on after the error (status $rc)"
	fi
	# the report is in the log directory, or on stderr for gcc's UBSan beside ASan (read
	# whole: with pipefail, cat | grep -q can fail when grep stops reading early)
	reports=$(cat "$tmp"/log* 2>/dev/null || true)
	grep -q "$want" <<<"$reports
$out" || fail "$what: no report saying '$want' (status $rc: $out)"
	echo "ok: $what stopped with status $rc: $want"
}

case $SAN in *address*)
	expect heap-overflow "heap-buffer-overflow"
	expect leak "detected memory leaks" may-continue
	;;
esac
case $SAN in *undefined*) expect signed-overflow "signed integer overflow" ;; esac
case $SAN in *thread*) expect race "data race" ;; esac
echo "1 passed, 0 failed"
