# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A leak three functions deep amid churn, for the exports and the schema.

After "go": ROUNDS rounds of churn and LEAK_N / ROUNDS leaked bytes objects
of 300-1699 bytes (both allocator layers), then
DONE bytes= count= file= line= function= (the leak: its blocks, its line,
its function's name; see mcommon.py for the protocol).
"""
import os

import mcommon

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "6"))
CHURN = int(os.environ.get("CHURN_N", "2000"))
SIZES = tuple(300 + (i * 7919) % 1400 for i in range(1400))


def hoard_blocks(keep, start, n):
    for i in range(start, start + n):
        keep[i] = b"H" * SIZES[i % 1400]  # LEAK


def middle(keep, start, n):
    hoard_blocks(keep, start, n)


def outer(keep, start, n):
    middle(keep, start, n)


def main():
    line = mcommon.marker_line(__file__, "LEAK")
    want = sum(mcommon.BYTES_HDR + SIZES[i % 1400] for i in range(N))
    mcommon.ready()
    keep = [None] * N
    ring = [None] * 64
    per = N // ROUNDS
    for r in range(ROUNDS):
        mcommon.churn(ring, CHURN, r)
        outer(keep, per * r, per if r < ROUNDS - 1 else N - per * r)
    mcommon.churn(ring, CHURN, ROUNDS)
    mcommon.done(bytes=want, count=N, file=hoard_blocks.__code__.co_filename, line=line,
                 function=hoard_blocks.__code__.co_name)


main()
