# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A leak inside an asyncio task, interleaved with a churning task.

DONE bytes=<leaked bytes> count=<leaked blocks> file=<co_filename> line=<leaking line>
(see common.py for the protocol).
"""
import asyncio
import os

import common

N = int(os.environ.get("LEAK_N", "6000"))
ROUNDS = int(os.environ.get("LEAK_ROUNDS", "6"))
CHURN = int(os.environ.get("CHURN_N", "3000"))


async def leaker(keep):
    per = N // ROUNDS
    for r in range(ROUNDS):
        for i in range(per * r, per * (r + 1) if r < ROUNDS - 1 else N):
            keep[i] = b"L" * common.leak_size(i)  # LEAK
        await asyncio.sleep(0)


async def churner(ring):
    for r in range(ROUNDS + 1):
        common.churn(ring, CHURN, r)
        await asyncio.sleep(0)


async def run(keep, ring):
    # Two tasks that take turns at every await.
    tasks = [asyncio.ensure_future(churner(ring)), asyncio.ensure_future(leaker(keep))]
    await asyncio.gather(*tasks)


def main():
    line = common.marker_line(__file__, "LEAK")
    common.ready()
    keep = [None] * N
    ring = [None] * 64
    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(keep, ring))
    loop.close()
    common.done(bytes=common.bytes_expected(0, N), count=N, file=leaker.__code__.co_filename,
                line=line)


main()
