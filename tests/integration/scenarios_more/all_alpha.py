# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Process A of the whole-host test: a steady leak until told to stop.

Command-line arguments are ignored: suite_more puts a marker there for --all
--match. After "go", every STEP seconds: a little churn and LEAK_PER leaked
bytes objects of LEAK_SIZE (2000) bytes, until "stop" on stdin, then
DONE bytes= count= file= line= (see mcommon.py for the protocol).
"""
import os
import time

import mcommon

LEAK_PER = int(os.environ.get("LEAK_PER", "20"))
# A variable: the compiler folds b"A" * 2000 into one constant object.
SIZE = int(os.environ.get("LEAK_SIZE", "2000"))
STEP = float(os.environ.get("STEP_S", "0.05"))


def alpha_hoard(kept, n):
    for _ in range(n):
        kept.append(b"A" * SIZE)  # LEAK


def main():
    line = mcommon.marker_line(__file__, "LEAK")
    mcommon.ready()
    kept = []
    ring = [None] * 16
    while not mcommon.stop_requested():
        mcommon.churn(ring, 50, len(kept))
        alpha_hoard(kept, LEAK_PER)
        time.sleep(STEP)
    mcommon.done(bytes=len(kept) * (mcommon.BYTES_HDR + SIZE), count=len(kept),
                 file=alpha_hoard.__code__.co_filename, line=line)


main()
