#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Integration tests need root and a Python to drive them (Debian's python3).
cd "$(dirname "$0")/../.." || exit 1
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ -z "$PY" ]; then
	echo "SKIP integration: no python3 to run the harness"
	exit 0
fi
exec "$PY" tests/integration/harness.py "$@"
