#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Run every cmocka driver given on the command line; fail if any fails.
pass=0; fail=0
for t in "$@"; do
	if "$t"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $t"; fi
done
echo "unit drivers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
