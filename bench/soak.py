# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Soak benchmark for `pymemleak --all` (make soak, as root).

For SOAK_SECONDS (default 300) Python processes of every CPython found keep
starting, churning, leaking a little and exiting, a few at a time, while one
`pymemleak --all` traces them. Every 15 s this prints the tracer's RSS and the
occupancy of its BPF maps; at the end, whether they stayed flat. A report of
figures, never a test: it exits 0 unless the tracer died.
"""
import glob
import re
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.environ.get("PYMEMLEAK") or os.path.join(ROOT, "build", "pymemleak")
SECONDS = int(os.environ.get("SOAK_SECONDS", "300"))
MARK = "pmlsoak%d" % os.getpid()

WORKER = r'''
import os, random, sys, time
keep = []
end = time.time() + float(sys.argv[1])
while time.time() < end:
    scratch = [("x%d" % i) * 10 for i in range(2000)]
    scratch.append({i: str(i) for i in range(500)})
    del scratch
    keep.append(b"k" * random.randint(100, 3000))   # a small leak
    time.sleep(0.01)
'''


def pythons():
    found = []
    for root in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        if root and os.path.isdir(os.path.join(root, "versions")):
            for d in sorted(glob.glob(os.path.join(root, "versions", "3.*"))):
                v = os.path.basename(d).split(".")
                exe = os.path.join(d, "bin", "python3")
                if len(v) == 3 and 8 <= int(v[1]) <= 13 and os.access(exe, os.X_OK):
                    found.append(exe)
            break
    if os.access("/usr/bin/python3.11", os.X_OK):
        found.append("/usr/bin/python3.11")
    return found


def rss_kib(pid):
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return -1
    return -1


TRACER = re.compile(r"tracer: rss (\d+) KiB; maps: allocs (\d+)/\d+, outstanding (\d+)/\d+, "
                    r"stacks (\d+)/\d+, procs (\d+)/\d+")


def last_tracer_line(path):
    """The tool's latest self-report (it prints one per interval with -v)."""
    found = None
    try:
        for line in open(path, errors="replace"):
            m = TRACER.search(line)
            if m:
                found = tuple(int(x) for x in m.groups())
    except OSError:
        pass
    return found


def main():
    if os.geteuid() != 0:
        print("SKIP soak: needs root")
        return 0
    exes = pythons()
    if not exes:
        print("SKIP soak: no CPython 3.8-3.13 found")
        return 0
    tmp = tempfile.mkdtemp(prefix="pymemleak-soak-")
    script = os.path.join(tmp, "worker_%s.py" % MARK)
    open(script, "w").write(WORKER)
    logpath = os.path.join(tmp, "tool.log")
    log = open(logpath, "w")
    tool = subprocess.Popen([TOOL, "--all", "--match", MARK, "-v", "-n", "1", "-i", "5",
                             "--json", os.path.join(tmp, "soak.json")],
                            stdout=log, stderr=subprocess.STDOUT)
    time.sleep(3)
    workers, started, samples = [], 0, []
    t0 = time.time()
    next_sample = t0
    rnd = random.Random(1)
    print("soak: %d s, interpreters: %s" % (SECONDS, ", ".join(exes)))
    print("%6s %6s %9s %10s %10s %10s %8s" % ("t(s)", "procs", "rss(KiB)", "allocs", "outstand",
                                              "stacks", "procs_map"))
    while time.time() - t0 < SECONDS and tool.poll() is None:
        workers = [w for w in workers if w.poll() is None]
        while len(workers) < 4:
            exe = rnd.choice(exes)
            workers.append(subprocess.Popen([exe, script, str(rnd.uniform(1, 6))]))
            started += 1
        if time.time() >= next_sample:
            m = last_tracer_line(logpath) or (-1, -1, -1, -1, -1)
            row = (time.time() - t0, started, rss_kib(tool.pid), m[1], m[2], m[3], m[4])
            samples.append(row)
            print("%6.0f %6d %9d %10d %10d %10d %8d" % row, flush=True)
            next_sample += 15
        time.sleep(0.2)
    for w in workers:
        w.wait()
    tool.send_signal(signal.SIGINT)
    try:
        tool.wait(120)
    except subprocess.TimeoutExpired:
        tool.kill()
    log.close()
    if len(samples) >= 4:
        first = samples[len(samples) // 4]
        last = samples[-1]
        print("soak: %d processes started; tracer RSS %d -> %d KiB (from the first quarter on), "
              "allocs map %d -> %d, outstanding %d -> %d, stacks %d -> %d entries; exit %s"
              % (started, first[2], last[2], first[3], last[3], first[4], last[4], first[5],
                 last[5], tool.returncode))
    print("soak: logs in %s" % tmp)
    return 0 if tool.returncode in (0, 2, -2) else 1


if __name__ == "__main__":
    sys.exit(main())
