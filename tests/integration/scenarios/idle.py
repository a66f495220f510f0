# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A Python process that does nothing until told: READY, then waits for a
line on stdin and leaves. IDLE_EXIT=normal leaves through sys.exit (full
finalization), otherwise os._exit. Runs on CPython 3.6 and later, so that
unsupported versions can be offered to the tool too.
"""
import os
import sys

import common

common.ready()
# Something to see in a periodic report while we wait.
junk = [b"i" * (100 + i) for i in range(int(os.environ.get("IDLE_ALLOCS", "0")))]
if os.environ.get("IDLE_EXIT") == "normal":
    sys.exit(0)
common.done(count=len(junk))
