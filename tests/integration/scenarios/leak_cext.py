# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A leak through a C extension: leaky.lose(n) PyMem_RawMalloc's n bytes,
touches them and drops the pointer (tests/integration/ext/leaky.c, built by
the harness into the directory named by PML_EXT_DIR).

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
(see common.py for the protocol).
"""
import os
import sys

import common

sys.path.insert(0, os.environ["PML_EXT_DIR"])
import leaky  # noqa: E402

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "6"))
CHURN = int(os.environ.get("CHURN_N", "3000"))


def leak(start, n):
    for i in range(start, start + n):
        leaky.lose(common.leak_size(i))  # LEAK


def main():
    line = common.marker_line(__file__, "LEAK")
    common.ready()
    ring = [None] * 64
    per = N // ROUNDS
    for r in range(ROUNDS):
        common.churn(ring, CHURN, r)
        leak(per * r, per if r < ROUNDS - 1 else N - per * r)
    common.churn(ring, CHURN, ROUNDS)
    common.done(bytes=common.raw_expected(0, N), count=N, file=leak.__code__.co_filename,
                line=line, ext=leaky.__file__)


main()
