# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A known leak amid churn that frees everything it allocates.

Protocol: see common.py; prints "DONE bytes=<expected bytes> count=<expected
count>" (the whole process: the leak and the list holding it).

The leak: LARGE bytes objects of 1000 bytes (1033-byte blocks, through the
raw/libc layer) and SMALL bytes objects of 100 bytes (133-byte pymalloc
blocks), kept in one preallocated list (one 8*N-byte block).
"""
import os

import common

LARGE = int(os.environ.get("LEAK_LARGE", "10000"))
SMALL = int(os.environ.get("LEAK_SMALL", "20000"))
ROUNDS = int(os.environ.get("CHURN_ROUNDS", "30"))
HDR = common.BYTES_HDR  # offsetof(PyBytesObject, ob_sval) + 1: 33 on 64-bit


def churn(n):
    # Allocates and frees: strings, bytes, dicts, lists of both sizes.
    scratch = []
    for i in range(n):
        scratch.append(("churn-%d" % i) * 3)
        scratch.append(b"c" * (600 + i % 900))
        scratch.append({"k": i, "v": [i, i + 1]})
    del scratch


def leak(keep, start, n, size):
    for i in range(start, start + n):
        keep[i] = b"L" * size  # the leaking line


def main():
    common.ready()
    total = LARGE + SMALL
    keep = [None] * total
    per = max(1, LARGE // ROUNDS)
    spr = max(1, SMALL // ROUNDS)
    done_l = done_s = 0
    for r in range(ROUNDS):
        churn(2000)
        n = min(per, LARGE - done_l) if r < ROUNDS - 1 else LARGE - done_l
        leak(keep, done_l, n, 1000)
        done_l += n
        m = min(spr, SMALL - done_s) if r < ROUNDS - 1 else SMALL - done_s
        leak(keep, LARGE + done_s, m, 100)
        done_s += m
    churn(2000)
    expected = LARGE * (1000 + HDR) + SMALL * (100 + HDR) + 8 * total
    common.done(bytes=expected, count=total + 1)


main()
