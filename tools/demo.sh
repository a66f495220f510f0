#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# `make demo`: start the bundled leaking service under pymemleak for a few
# seconds and show the report. Prefers the distribution's python3 (the case
# most servers run); any CPython 3.8-3.13 works.
cd "$(dirname "$0")/.." || exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "demo: pymemleak loads BPF programs: run as root (sudo make demo)" >&2
	exit 3
fi
PY=""
for c in /usr/bin/python3 /usr/bin/python3.11 "$(command -v python3 || true)"; do
	if [ -n "$c" ] && [ -x "$c" ]; then
		PY=$c
		break
	fi
done
if [ -z "$PY" ]; then
	echo "demo: no python3 found (apt-get install python3.11)" >&2
	exit 2
fi
echo "demo: build/pymemleak -i 3 -d 9 -n 3 -- $PY tools/demo_app.py"
exec build/pymemleak -i 3 -d 9 -n 3 -- "$PY" tools/demo_app.py
