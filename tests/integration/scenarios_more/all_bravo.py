# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Process B of the whole-host test: leaks for LEAK_SECONDS, then exits
(os._exit, the leak never freed) without waiting to be told.

Command-line arguments are ignored: suite_more puts a marker there for --all
--match. After "go", every STEP seconds: a little churn and LEAK_PER leaked
bytes objects of LEAK_SIZE (3000) bytes, for LEAK_SECONDS (4) seconds, then
DONE bytes= count= file= line= (see mcommon.py for the protocol).
"""
import os
import time

import mcommon

LEAK_PER = int(os.environ.get("LEAK_PER", "10"))
# A variable: the compiler folds b"A" * 2000 into one constant object.
SIZE = int(os.environ.get("LEAK_SIZE", "3000"))
STEP = float(os.environ.get("STEP_S", "0.05"))
SECONDS = float(os.environ.get("LEAK_SECONDS", "4"))


def bravo_hoard(kept, n):
    for _ in range(n):
        kept.append(b"B" * SIZE)  # LEAK


def main():
    line = mcommon.marker_line(__file__, "LEAK")
    mcommon.ready()
    kept = []
    ring = [None] * 16
    end = time.monotonic() + SECONDS
    while time.monotonic() < end:
        mcommon.churn(ring, 50, len(kept))
        bravo_hoard(kept, LEAK_PER)
        time.sleep(STEP)
    mcommon.done(wait=False, bytes=len(kept) * (mcommon.BYTES_HDR + SIZE), count=len(kept),
                 file=bravo_hoard.__code__.co_filename, line=line)


main()
