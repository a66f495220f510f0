#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# `make bench`: overhead of pymemleak vs no tracing and tracemalloc, every ratio
# measured in this one run. Needs root; driven by Debian's python3 (any works).
cd "$(dirname "$0")/.." || exit 1
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP bench: pymemleak loads BPF programs: run as root (sudo make bench)"
	exit 0
fi
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ -z "$PY" ]; then
	echo "SKIP bench: no python3 to run the driver"
	exit 0
fi
exec "$PY" bench/bench.py "$@"
