# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A leak made without the GIL: a worker thread calls leaky.lose_nogil(n)
(PyMem_RawMalloc with the GIL released) while the main thread, holding the
GIL, churns in 'churner'. The tool must never put these blocks under the
churner's Python stack: under the native caller alone (no_gil, or no_pystate
when no thread holds the GIL), or under the worker's own line, whose frames
only the worker can change.

The worker waits, after each round, until the churner has completed another
pass, so the two overlap by construction.

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
ext=<leaky's file> churner=<name of the churning function> passes=<churn passes>
(see common.py for the protocol; PML_EXT_DIR names leaky's directory).
"""
import os
import sys
import threading
import time

import common

sys.path.insert(0, os.environ["PML_EXT_DIR"])
import leaky  # noqa: E402

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "12"))
CHURN = int(os.environ.get("CHURN_N", "1500"))


def worker(passes, finished):
    per = N // ROUNDS
    for r in range(ROUNDS):
        for i in range(per * r, per * (r + 1) if r < ROUNDS - 1 else N):
            leaky.lose_nogil(common.leak_size(i))  # LEAK
        seen = passes[0]
        while passes[0] == seen:
            time.sleep(0.001)
    finished.set()


def churner(ring, passes, finished):
    while not finished.is_set():
        common.churn(ring, CHURN, passes[0] % 97)
        passes[0] += 1


def main():
    line = common.marker_line(__file__, "LEAK")
    ring = [None] * 64
    passes = [0]
    finished = threading.Event()
    w = threading.Thread(target=worker, args=(passes, finished), name="nogil-leaker")
    common.ready()
    w.start()
    churner(ring, passes, finished)
    w.join()
    common.done(bytes=common.raw_expected(0, N), count=N, file=worker.__code__.co_filename,
                line=line, ext=leaky.__file__, churner=churner.__code__.co_name,
                passes=passes[0])


main()
