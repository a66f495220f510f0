# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What the suite_more scenarios share: the protocol with suite_more.py,
marker lines, churn.

Attach mode (the default): print "READY <pid>", wait for "go" on stdin (the
tool is attached by then), run, print "DONE key=value ...", wait for a line
(or EOF) on stdin, leave with os._exit(0). Scenarios that run until told
poll stdin for "stop" between steps (stop_requested). Launch mode
(PML_LAUNCH=1, the tool started us): no handshake, DONE, os._exit(0) at once.

os._exit skips interpreter finalization, which would free what module
globals hold, the leak with them. Runs unchanged on CPython 3.8-3.13.
"""
import os
import select
import sys

LAUNCH = os.environ.get("PML_LAUNCH") == "1"
# sizeof(PyBytesObject) up to ob_sval plus the trailing NUL: 33 on 64-bit.
BYTES_HDR = sys.getsizeof(b"")

# Built before the tool attaches: computing sizes in the loops would allocate
# ints and slow every traced loop down.
CHURN_SIZES = tuple(24 + (i * 37) % 2000 for i in range(2000))
CHURN_REPS = tuple(1 + i % 150 for i in range(150))


def say(line):
    print(line, flush=True)


def ready():
    if LAUNCH:
        return
    say("READY %d" % os.getpid())
    sys.stdin.readline()


def stop_requested():
    """True once suite_more sent a line (or closed stdin); never blocks."""
    if LAUNCH:
        return False
    r, _, _ = select.select([sys.stdin], [], [], 0)
    if not r:
        return False
    sys.stdin.readline()
    return True


def done(wait=True, **fields):
    """Report the expected numbers, then stay alive until told (attach mode,
    wait): the leak is still held while the tool takes its final report."""
    say("DONE " + " ".join("%s=%s" % kv for kv in sorted(fields.items())))
    if wait and not LAUNCH:
        sys.stdin.readline()
    os._exit(0)


def marker_line(path, tag):
    """Line number of the line of path ending with the comment '# <tag>'."""
    with open(path) as f:
        for no, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + tag):
                return no
    raise SystemExit("scenario bug: no '# %s' marker in %s" % (tag, path))


def churn(ring, n, seed=0):
    """Allocate and free about 2n blocks of 24-2100 bytes (bytes and str, so
    both allocator layers), at most len(ring) alive at once; returns with
    everything freed. Only types without a free list: a freed dict or float
    kept in its type's free list looks like a small leak of this line."""
    size = len(ring)
    sizes, reps = CHURN_SIZES, CHURN_REPS
    for i in range(n):
        ring[i % size] = b"c" * sizes[(i + seed) % 2000]  # CHURN
        ring[-1 - i % size] = ("churn-%d-" % i) * reps[i % 150]  # CHURN
    for j in range(size):
        ring[j] = None
