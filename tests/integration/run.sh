#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Integration suites: real CPython processes, the real tool, as root.
# Each suite prints PASS/FAIL/SKIP lines and a last "NAME: N passed, N
# failed, N skipped" line; this sums them into one closing line.
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ -z "$PY" ]; then
	echo "SKIP integration: no python3 to run the suites"
	echo "integration: 0 passed, 0 failed, 1 skipped"
	exit 0
fi
pass=0; fail=0; skip=0; rc=0
for suite in tests/integration/harness.py tests/integration/suite_more.py; do
	[ -f "$suite" ] || continue
	out=$(mktemp)
	"$PY" "$suite" "$@" | tee "$out"
	st=$?
	# the suite's own exit status is lost in the pipe: read its closing line
	line=$(grep -E '^[a-z_]+: [0-9]+ passed, [0-9]+ failed' "$out" | tail -1)
	if [ -z "$line" ]; then
		echo "FAIL $suite: no closing line (crashed?)"
		fail=$((fail + 1))
	else
		p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
		f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
		s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
		pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + ${s:-0}))
	fi
	rm -f "$out"
	: "$st"
done
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ] || rc=1
exit $rc
