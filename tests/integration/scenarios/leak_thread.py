# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A leak in a threading.Thread worker amid churn in the same worker.

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
(see common.py for the protocol).
"""
import os
import threading

import common

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "6"))
CHURN = int(os.environ.get("CHURN_N", "3000"))


def worker(keep):
    ring = [None] * 64
    per = N // ROUNDS
    for r in range(ROUNDS):
        common.churn(ring, CHURN, r)
        for i in range(per * r, per * (r + 1) if r < ROUNDS - 1 else N):
            keep[i] = b"L" * common.leak_size(i)  # LEAK
    common.churn(ring, CHURN, ROUNDS)


def main():
    line = common.marker_line(__file__, "LEAK")
    common.ready()
    keep = [None] * N
    t = threading.Thread(target=worker, args=(keep,), name="leaker")
    t.start()
    t.join()
    common.done(bytes=common.bytes_expected(0, N), count=N, file=worker.__code__.co_filename,
                line=line)


main()
