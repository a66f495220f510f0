# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A bounded cache that fills fast and then stays flat, next to a slow
steady leak from another line: a leak, not a cache, must rank first by growth.

After "go", every STEP seconds until "stop" on stdin: put FILL_PER entries
of CACHE_OBJ bytes into the cache until its SLOTS are full (about 8 MB in a
about 2 s; then "PLATEAU" is printed), REPLACE entries after that (the
cache churns inside its bound), and leak LEAK_PER blocks of LEAK_OBJ bytes
(about 200 KB/s) from another line. Then
DONE cache_file= cache_line= cache_bytes= leak_file= leak_line= leak_bytes=
(see mcommon.py for the protocol).
"""
import os
import time

import mcommon

SLOTS = int(os.environ.get("CACHE_SLOTS", "2000"))
CACHE_OBJ = int(os.environ.get("CACHE_OBJ", "4000"))
REPLACE = int(os.environ.get("CACHE_REPLACE", "20"))
LEAK_OBJ = int(os.environ.get("LEAK_OBJ", "1000"))
LEAK_PER = int(os.environ.get("LEAK_PER", "10"))
STEP = float(os.environ.get("STEP_S", "0.05"))
FILL_PER = int(os.environ.get("FILL_PER", "50"))


def cache_put(cache, i):
    cache[i % SLOTS] = b"C" * CACHE_OBJ  # CACHE


def leak(kept, n):
    for _ in range(n):
        kept.append(b"L" * LEAK_OBJ)  # LEAK


def main():
    cache_line = mcommon.marker_line(__file__, "CACHE")
    leak_line = mcommon.marker_line(__file__, "LEAK")
    mcommon.ready()
    cache = [None] * SLOTS
    kept = []
    k = 0
    plateau = False
    while not mcommon.stop_requested():
        # Filling and churning go through the same call sites: one stack.
        for _ in range(FILL_PER if k < SLOTS else REPLACE):
            cache_put(cache, k)
            k += 1
        if k >= SLOTS and not plateau:
            plateau = True
            mcommon.say("PLATEAU")
        leak(kept, LEAK_PER)
        time.sleep(STEP)
    mcommon.done(cache_file=cache_put.__code__.co_filename, cache_line=cache_line,
                 cache_bytes=SLOTS * (mcommon.BYTES_HDR + CACHE_OBJ),
                 leak_file=leak.__code__.co_filename, leak_line=leak_line,
                 leak_bytes=len(kept) * (mcommon.BYTES_HDR + LEAK_OBJ))


main()
