#!/usr/bin/env bash
# Style and layering checks (part of the test command, suite 'lint'):
# - clang-format clean (the repo's .clang-format);
# - lib/ and tests' shared code include no DPDK header; only pmd/ does;
# - fallible functions return negative errno values, not -1 (DPDK callbacks excepted, marked);
# - lib/ writes nothing to stdout/stderr and sets no errno except at the libc edge;
# - shell scripts are shellcheck-clean; Python tools parse.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
files=$(git ls-files '*.c' '*.h')
# shellcheck disable=SC2086 # one word per file
if ! clang-format --dry-run --Werror $files 2>/tmp/uvsock-lint.$$; then
	head -20 /tmp/uvsock-lint.$$
	echo "lint: clang-format differences (run: clang-format -i \$(git ls-files '*.c' '*.h'))"
	fail=1
fi
rm -f /tmp/uvsock-lint.$$
if grep -n '#include <rte_' lib/*.[ch] preload/*.c examples/*.c tests/unit/*.c tests/host/*.c; then
	echo "lint: DPDK header outside pmd/"
	fail=1
fi
if grep -n 'return -1;' lib/*.c pmd/*.c | grep -v "DPDK"; then
	echo "lint: 'return -1;' in lib/ or pmd/: return a negative errno"
	fail=1
fi
if grep -nE '\b(f?printf|puts|perror)\(' lib/*.c; then
	echo "lint: lib/ must not print"
	fail=1
fi
if grep -nE '\berrno = ' lib/*.c pmd/*.c | grep -v 'errno = 0;'; then
	echo "lint: errno is set only at the libc edge (preload/, issue 3), never in lib/ or pmd/"
	fail=1
fi
scripts=$(git ls-files '*.sh')
# shellcheck disable=SC2086 # one word per file
if ! shellcheck -x $scripts; then
	echo "lint: shellcheck findings"
	fail=1
fi
# Python tools compile (syntax) without writing bytecode into the tree.
for py in tools/uvsock-ss $(git ls-files '*.py'); do
	if ! python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' "$py"; then
		echo "lint: $py does not parse"
		fail=1
	fi
done
if [ "$fail" = 0 ]; then
	echo "lint: $(wc -w <<<"$files") files clean"
	echo "1 passed, 0 failed"
fi
exit $fail
