# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A leak in the main thread, one function deep, amid churn.

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
(see common.py for the protocol). N and ROUNDS come from the environment.
"""
import os

import common

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "6"))
CHURN = int(os.environ.get("CHURN_N", "3000"))


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
        n = per if r < ROUNDS - 1 else N - per * r
        leak(keep, per * r, n)
    common.churn(ring, CHURN, ROUNDS)
    common.done(bytes=common.bytes_expected(0, N), count=N, file=leak.__code__.co_filename,
                line=line)


main()
