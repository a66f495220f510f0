# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Two busy threads at once: 'leaker' leaks, 'churner' allocates and frees.

They overlap by construction, not by timing: the churner starts first; the
leaker, after each of its rounds, waits until the churner has completed
another churn pass; the churner stops only once the leaker is done.

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
churner=<name of the churning thread's function> passes=<churn passes>
(see common.py for the protocol).
"""
import os
import threading
import time

import common

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "12"))
CHURN = int(os.environ.get("CHURN_N", "1500"))


def churner(ring, passes, stop):
    while not stop.is_set():
        common.churn(ring, CHURN, passes[0] % 97)
        passes[0] += 1


def leaker(keep, passes):
    per = N // ROUNDS
    for r in range(ROUNDS):
        for i in range(per * r, per * (r + 1) if r < ROUNDS - 1 else N):
            keep[i] = b"L" * common.leak_size(i)  # LEAK
        seen = passes[0]
        while passes[0] == seen:
            time.sleep(0.001)  # give the GIL to the churner until it completes a pass


def main():
    line = common.marker_line(__file__, "LEAK")
    keep = [None] * N
    ring = [None] * 64
    passes = [0]
    stop = threading.Event()
    c = threading.Thread(target=churner, args=(ring, passes, stop), name="churner")
    l = threading.Thread(target=leaker, args=(keep, passes), name="leaker")
    common.ready()
    c.start()
    while passes[0] == 0:
        time.sleep(0.001)
    l.start()
    l.join()
    stop.set()
    c.join()
    common.done(bytes=common.bytes_expected(0, N), count=N, file=leaker.__code__.co_filename,
                line=line, churner=churner.__code__.co_name, passes=passes[0])


main()
