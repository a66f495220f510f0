# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""LEAK_N bytes objects of LEAK_SIZE bytes leaked from one line amid churn.

Over 512 bytes a block goes through libc even on a static LTO build; at 100
it is a pymalloc block, allocated and freed by inlined code there.
After "go" (no handshake with PML_LAUNCH=1): ROUNDS rounds of churn and
LEAK_N / ROUNDS leaked objects, then
DONE bytes= count= file= line= held= held_count=
bytes/count: the leak's blocks; held/held_count: the leak and the list
holding it (see mcommon.py for the protocol).
"""
import os
import sys

import mcommon

N = int(os.environ.get("LEAK_N", "5000"))
SIZE = int(os.environ.get("LEAK_SIZE", "4000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "5"))
CHURN = int(os.environ.get("CHURN_N", "2000"))


def leak(keep, start, n):
    for i in range(start, start + n):
        keep[i] = b"S" * SIZE  # LEAK


def main():
    line = mcommon.marker_line(__file__, "LEAK")
    mcommon.ready()
    keep = [None] * N
    ring = [None] * 64
    per = N // ROUNDS
    for r in range(ROUNDS):
        mcommon.churn(ring, CHURN, r)
        leak(keep, per * r, per if r < ROUNDS - 1 else N - per * r)
    mcommon.churn(ring, CHURN, ROUNDS)
    want = N * (mcommon.BYTES_HDR + SIZE)
    mcommon.done(bytes=want, count=N, file=leak.__code__.co_filename, line=line,
                 held=want + sys.getsizeof(keep), held_count=N + 1)


main()
