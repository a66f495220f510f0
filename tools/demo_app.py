# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A small "service" with a leak, for `make demo`.

Each request is parsed, rendered and thrown away (churn). Two caches keep
data: a bounded one that evicts (not a leak) and a session table that
nothing ever cleans up (the leak: about 1.3 KiB a request).
"""
import collections
import json
import time

SESSIONS = {}                       # never pruned
RECENT = collections.OrderedDict()  # bounded: the last 200 requests


def parse(raw):
    return json.loads(raw)


def render(req):
    rows = ["<tr><td>%s</td><td>%d</td></tr>" % (k, len(str(v))) for k, v in req.items()]
    return "<table>%s</table>" % "".join(rows)


def remember_session(req):
    # The bug: a session per request, kept forever.
    SESSIONS[req["id"]] = {"user": req["user"], "history": [req["path"]] * 8,
                           "token": ("%032x" % req["id"]) * 32}


def remember_recent(req, page):
    RECENT[req["id"]] = page
    while len(RECENT) > 200:
        RECENT.popitem(last=False)


def handle(i):
    raw = json.dumps({"id": i, "user": "user%d" % (i % 50), "path": "/item/%d" % i,
                      "args": list(range(i % 20))})
    req = parse(raw)
    page = render(req)
    remember_recent(req, page)
    remember_session(req)
    return len(page)


def main():
    i = 0
    end = time.time() + 60
    while time.time() < end:
        for _ in range(200):
            handle(i)
            i += 1
        time.sleep(0.01)


if __name__ == "__main__":
    main()
