# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What the scenarios share: the protocol with the harness, leak sizes, churn.

Protocol, attach mode (the default): print "READY <pid>", wait for a line on
stdin (the tool is attached by then), run, print "DONE key=value ...", wait
for a line on stdin, leave with os._exit(0).
Launch mode (PML_LAUNCH=1, the tool started us): no handshake; run, print
DONE, leave with os._exit(0) at once.

os._exit skips interpreter finalization, which would free module globals
and with them the leak. Runs unchanged on CPython 3.8-3.13.
"""
import os
import sys

LAUNCH = os.environ.get("PML_LAUNCH") == "1"
# sizeof(PyBytesObject) up to ob_sval plus the trailing NUL: 33 on 64-bit.
BYTES_HDR = sys.getsizeof(b"")


def ready():
    if LAUNCH:
        return
    print("READY %d" % os.getpid(), flush=True)
    sys.stdin.readline()


def done(**fields):
    """Report the expected numbers, then stay alive until told (attach mode)."""
    print("DONE " + " ".join("%s=%s" % kv for kv in sorted(fields.items())), flush=True)
    if not LAUNCH:
        sys.stdin.readline()
    os._exit(0)


def marker_line(path, tag):
    """Line number of the line of path ending with the comment '# <tag>'."""
    with open(path) as f:
        for no, text in enumerate(f, 1):
            if text.rstrip().endswith("# " + tag):
                return no
    raise SystemExit("scenario bug: no '# %s' marker in %s" % (tag, path))


# 200-1599 bytes: with the bytes header, about a fifth of the blocks fit
# pymalloc (<= 512) and the rest go through the raw layer. A table made
# before the tool attaches: computing sizes in the loops would allocate ints
# (above 256) and slow every scenario down under tracing.
LEAK_SIZES = tuple(200 + (i * 7919) % 1400 for i in range(1400))
CHURN_SIZES = tuple(24 + (i * 37) % 2000 for i in range(2000))
CHURN_REPS = tuple(1 + i % 150 for i in range(150))


def leak_size(i):
    return LEAK_SIZES[i % 1400]


def bytes_expected(start, n):
    """Bytes held by b"L" * leak_size(i) for i in [start, start + n)."""
    return sum(BYTES_HDR + leak_size(i) for i in range(start, start + n))


def raw_expected(start, n):
    """Bytes held by leak_size(i)-byte raw blocks for i in [start, start + n)."""
    return sum(leak_size(i) for i in range(start, start + n))


def churn(ring, n, seed=0):
    """Allocate and free about 3n blocks of 24-2100 bytes (bytes and str, both
    allocator layers), at most len(ring) alive at once; returns with
    everything freed.

    Only types without a free list (bytes, str, large ints): a dict, list,
    tuple or float freed into its type's free list stays allocated as far as
    the allocator can tell, and would show as a small 'leak' of this line.
    """
    size = len(ring)
    sizes, reps = CHURN_SIZES, CHURN_REPS
    for i in range(n):
        ring[i % size] = b"c" * sizes[(i + seed) % 2000]  # CHURN
        ring[-1 - i % size] = ("churn-%d-" % i) * reps[i % 150]  # CHURN
    for j in range(size):
        ring[j] = None
