# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Allocation-heavy loop for bench/run.sh.

Usage: workload.py ITERATIONS [--wait]

Each iteration allocates small objects (str, dict, list, tuple, bytes, int)
and, every 8th iteration, a bytes object larger than 512 bytes (served by the
raw layer, not pymalloc). Objects are kept in a ring of recent slots, so they
die RING iterations later, like a service's working set, not at once.

The ring is filled once before timing: the timed loop starts in steady state
(arenas mapped, as many frees as allocations) and only the hot loop is timed:
"LOOP <seconds> <iterations>" on stdout. Then "UPROBES 1" if the process
carries the kernel's uprobe area, else "UPROBES 0": an untraced run showing 1
was probed after all, by some other tool on the host.

With --wait the script prints "READY <pid>" after the warm-up and waits for a
line on stdin before the loop (so a tracer can attach first), and for another
after it (so the tracer can be stopped while the process is still alive).
"""
import os
import sys
import time

RING = 2048


def churn(ring, start, n):
    big = b"B" * 700
    for i in range(start, start + n):
        s = "key-%d" % i
        d = {"id": i, "name": s, "tags": [s, i]}
        t = (i, s, d)
        b = s.encode() + b"-payload"
        if i & 7 == 0:
            b = big + b
        ring[i & (RING - 1)] = [t, b, d]


def uprobed():
    try:
        with open("/proc/self/maps") as f:
            return any(line.rstrip().endswith("[uprobes]") for line in f)
    except OSError:
        return False


def main():
    n = int(sys.argv[1])
    wait = "--wait" in sys.argv[2:]
    ring = [None] * RING
    churn(ring, 0, RING)
    if wait:
        print("READY %d" % os.getpid(), flush=True)
        sys.stdin.readline()
    t0 = time.perf_counter()
    churn(ring, RING, n)
    dt = time.perf_counter() - t0
    print("LOOP %.6f %d" % (dt, n))
    print("UPROBES %d" % uprobed(), flush=True)
    if wait:
        sys.stdin.readline()


main()
