# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""For launch mode: a large leak (~84 MB, so that it dwarfs what the
interpreter's own start-up leaves allocated) amid churn, then os._exit(0).

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
held=<bytes of the leak and the list holding it>
(see common.py for the protocol; run with PML_LAUNCH=1).
"""
import os
import sys

import common

N = int(os.environ.get("LEAK_N", "90000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "6"))
CHURN = int(os.environ.get("CHURN_N", "1500"))


def leak(keep, start, n):
    for i in range(start, start + n):
        keep[i] = b"L" * common.leak_size(i)  # LEAK


def main():
    line = common.marker_line(__file__, "LEAK")
    common.ready()
    keep = [None] * N
    ring = [None] * 64
    per = N // ROUNDS
    for r in range(ROUNDS):
        common.churn(ring, CHURN, r)
        leak(keep, per * r, per if r < ROUNDS - 1 else N - per * r)
    common.churn(ring, CHURN, ROUNDS)
    leaked = common.bytes_expected(0, N)
    common.done(bytes=leaked, count=N, file=leak.__code__.co_filename, line=line,
                held=leaked + sys.getsizeof(keep))


main()
