# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Overhead of pymemleak against no tracing and tracemalloc, measured in one run.

Run as root by bench/run.sh (`make bench`). For each interpreter found, every
mode runs the same allocation-heavy loop (bench/workload.py); repetitions are
interleaved (rep 1 of every mode, then rep 2, ...) so that drift on the
machine touches all modes alike, and the median of the repetitions is kept.
Modes without pymemleak (no tracing, tracemalloc) run 3 times per round: they
take milliseconds, and the untraced one is every ratio's denominator.

Only the timed hot loop counts, never interpreter or tool start-up. Events are
the allocations + frees pymemleak saw in the loop: in launch mode the count of
an empty run (0 iterations; start-up is alike in every pymemleak mode) is
subtracted, in attach mode the tool only sees the loop. Every row of a
launch-mode table is divided by the same event count, so count-only (which
counts probe hits) and tracemalloc rows compare per allocation or free too.

A sample that another tracer probed is redone: the workload reports whether
its own memory map holds the kernel's uprobe area (an untraced run must not),
and a `pymemleak --all` elsewhere on the host would probe every run.

Environment: BENCH_ITERS (loop iterations, default 20000: the whole bench
then takes about four to six minutes), BENCH_REPS (default 3), BENCH_ONLY
(comma-separated substrings of setup names).
This is a report: timings are never asserted. Exit status 1 only when a run
crashed or produced no result.
"""
import glob
import json
import os
import platform
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILT = os.path.join(ROOT, "build", "pymemleak")
# Runs use a copy taken at start: a rebuild during the bench must not mix versions.
TOOL = os.path.join(ROOT, "bench", "out", "pymemleak")
WORKLOAD = os.path.join(ROOT, "bench", "workload.py")
OUT = os.path.join(ROOT, "bench", "out")
ITERS = int(os.environ.get("BENCH_ITERS", "20000"))
REPS = int(os.environ.get("BENCH_REPS", "3"))
ONLY = [s for s in os.environ.get("BENCH_ONLY", "").split(",") if s]
PLAIN_SAMPLES = 3
PROBED_RETRIES = 4
PATIENCE = 180  # seconds, over the whole bench, spent waiting out other tracers
RUN_TIMEOUT = 600

# (key, label, how): how is "plain", "malloc" (PYTHONMALLOC=malloc), "tm1",
# "tm16" (python -X tracemalloc=N) or a list of pymemleak flags.
NONE = ("none", "no tracing", "plain")
NONE_MALLOC = ("none-malloc", "no tracing, PYTHONMALLOC=malloc", "malloc")
COUNT = ("count", "count-only probes at entries", ["--count-only"])
ENTRY = ("entry", "pymemleak --no-pystacks --no-placement", ["--no-pystacks", "--no-placement"])
PLACED = ("placed", "pymemleak --no-pystacks", ["--no-pystacks"])
FULL = ("full", "pymemleak (Python stacks)", [])
TM1 = ("tm1", "python -X tracemalloc=1", "tm1")
TM16 = ("tm16", "python -X tracemalloc=16", "tm16")

failures = []
probed = []  # samples another tracer probed (redone)
suspect = []  # probed samples kept: retries or patience spent
patience = {"left": PATIENCE}


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def clean_env(extra=None):
    """The caller's environment minus anything that changes CPython's allocator."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(extra or {})
    return env


def pyenv_root():
    for cand in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        if cand and os.path.isdir(os.path.join(cand, "versions")):
            return cand
    return None


def pyenv_python(minor):
    """Newest pyenv CPython 3.minor, or None."""
    root = pyenv_root()
    if not root:
        return None
    best = None
    for d in glob.glob(os.path.join(root, "versions", "3.%d.*" % minor)):
        m = re.match(r"3\.%d\.(\d+)$" % minor, os.path.basename(d))
        exe = os.path.join(d, "bin", "python3")
        if m and os.access(exe, os.X_OK) and (not best or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), os.path.basename(d), exe)
    return best[1:] if best else None


def setups():
    """(name, title, exe, kind, modes) in run order; kind is launch, debian or attach."""
    found, skipped = [], []
    for minor in (12, 8, 13):
        py = pyenv_python(minor)
        if not py:
            skipped.append("pyenv CPython 3.%d: not installed" % minor)
            continue
        ver, exe = py
        found.append(("pyenv-" + ver, "CPython %s (pyenv, shared libpython), launch mode" % ver,
                      exe, "launch", [NONE, COUNT, ENTRY, PLACED, FULL, TM1, TM16]))
    deb = "/usr/bin/python3.11"
    if os.access(deb, os.X_OK):
        found.append(("debian-3.11-launch",
                      "Debian %s (static LTO, stripped), launch mode: the tool sets "
                      "PYTHONMALLOC=malloc" % deb, deb, "debian",
                      [NONE_MALLOC, NONE, COUNT, ENTRY, PLACED, FULL, TM1, TM16]))
        found.append(("debian-3.11-attach",
                      "Debian %s (static LTO, stripped), attach mode (-p on a running "
                      "process, pymalloc)" % deb, deb, "attach",
                      [NONE, COUNT, ENTRY, PLACED, FULL]))
    else:
        skipped.append("Debian %s: not installed" % deb)
    if ONLY:
        found = [s for s in found if any(o in s[0] for o in ONLY)]
    return found, skipped


def loop_time(text):
    """Seconds from the workload's "LOOP <seconds> <iterations>" line, or None."""
    for line in text.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] == "LOOP":
            return float(f[1])
    return None


def uprobed(text):
    """Whether the workload reported the kernel's uprobe area in its maps."""
    return "UPROBES 1" in text.splitlines()


def coverage(json_path):
    """(allocs, frees, verdict) from a pymemleak JSON report, or None."""
    try:
        with open(json_path) as f:
            doc = json.load(f)
        cov = doc["processes"][0]["coverage"]
        return int(cov["allocs"]), int(cov["frees"]), str(cov["verdict"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def run_plain(exe, how, iters):
    """Untraced or tracemalloc run: (loop seconds, None, probed) or an error string."""
    args, env = [exe], clean_env()
    if how == "malloc":
        env["PYTHONMALLOC"] = "malloc"
    elif how in ("tm1", "tm16"):
        args += ["-X", "tracemalloc=" + how[2:]]
    try:
        p = subprocess.run(args + [WORKLOAD, str(iters)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True, env=env,
                           timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timed out after %d s" % RUN_TIMEOUT
    t = loop_time(p.stdout)
    if p.returncode != 0 or t is None:
        return "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:])
    return t, None, uprobed(p.stdout)


def json_path_for(name, key, iters, rep):
    return os.path.join(OUT, "json", "%s-%s-%d-%d.json" % (name, key, iters, rep))


def run_launch(name, key, exe, flags, iters, rep):
    """pymemleak -- exe workload: (loop seconds, coverage, False) or an error string."""
    jpath = json_path_for(name, key, iters, rep)
    cmd = [TOOL, "-q", "--force", "--json", jpath] + flags + ["--", exe, WORKLOAD, str(iters)]
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, env=clean_env(), timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "timed out after %d s" % RUN_TIMEOUT
    t, cov = loop_time(p.stdout), coverage(jpath)
    if p.returncode != 0 or t is None or cov is None:
        return "exit %d: %s" % (p.returncode, p.stderr.strip()[-300:])
    return t, cov, False


class Lines:
    """Lines of a child's stdout pipe, read so that every wait can time out
    (select on a buffered file object would miss lines already buffered)."""

    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.buf = b""

    def next_with(self, prefix, timeout):
        """Fields of the next line starting with prefix, or None."""
        end = time.time() + timeout
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(prefix):
                    return text.split()
            left = end - time.time()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_file(proc, path, needle, timeout):
    """Wait until the file proc writes its stderr to shows needle."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if needle in read_text(path):
            return True
        time.sleep(0.05)
    return False


def stop(proc, sig):
    """Stop a process this script started and reap it; returns its exit status.
    Generous timeout: detaching uprobes waits for RCU grace periods."""
    if proc.poll() is None:
        proc.send_signal(sig)
    try:
        return proc.wait(RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def run_attach(name, key, exe, flags, iters, rep):
    """Target waits for "go"; pymemleak -p attaches first unless flags is None."""
    target = subprocess.Popen([exe, WORKLOAD, str(iters), "--wait"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0,
                              env=clean_env())
    out = Lines(target.stdout)
    tool = None
    jpath = json_path_for(name, key, iters, rep)
    epath = jpath[:-len(".json")] + ".stderr"
    try:
        ready = out.next_with("READY", 30)
        if not ready:
            return "target did not start"
        if flags is not None:
            # stderr to a file: a pipe nobody reads during the loop could fill and stall it.
            with open(epath, "w") as err:
                tool = subprocess.Popen([TOOL, "-q", "--force", "--json", jpath] + flags +
                                        ["-p", ready[1]], stdout=subprocess.DEVNULL,
                                        stderr=err)
            if not wait_file(tool, epath, "tracing pid", 60):
                return "tool did not attach: " + read_text(epath).strip()[-300:]
        target.stdin.write(b"go\n")
        done = out.next_with("LOOP", RUN_TIMEOUT)
        if not done:
            return "target did not finish the loop"
        if tool is None:
            probes = out.next_with("UPROBES", 30)
            return float(done[1]), None, bool(probes and probes[1] == "1")
        # Stop the tool while the target still lives: it sees the loop only.
        rc = stop(tool, signal.SIGINT)
        tool = None
        cov = coverage(jpath)
        if rc != 0 or cov is None:
            return "tool exit %d: %s" % (rc, read_text(epath).strip()[-300:])
        return float(done[1]), cov, False
    finally:
        if tool is not None:
            stop(tool, signal.SIGINT)
        try:
            target.stdin.write(b"exit\n")
            target.stdin.close()  # EOF: a target still waiting for "go" runs and ends
        except OSError:
            pass
        try:
            target.wait(10)
        except subprocess.TimeoutExpired:
            target.kill()
            target.wait()


def measure(setup, mode, iters, rep):
    name, _, exe, kind, _ = setup
    key, _, how = mode
    if kind == "attach":
        return run_attach(name, key, exe, how if isinstance(how, list) else None, iters, rep)
    if isinstance(how, list):
        return run_launch(name, key, exe, how, iters, rep)
    return run_plain(exe, how, iters)


def median(xs):
    return statistics.median(xs) if xs else None


def foreign_tracers():
    """Pids of `pymemleak --all` runs on the host (ours run with -p or --, never
    --all). Seen here: while one runs, even with a --match that excludes our
    processes, they carry uprobes, so any of them makes a sample suspect."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read(4096).decode(errors="replace").split("\0")
        except OSError:
            continue
        if os.path.basename(args[0]) == "pymemleak" and "--all" in args:
            pids.append(int(d))
    return pids


def pause(seconds):
    """Sleep out of the bench's shared patience; False once it is spent."""
    seconds = min(seconds, patience["left"])
    if seconds <= 0:
        return False
    time.sleep(seconds)
    patience["left"] -= seconds
    return True


def wait_quiet():
    """Wait (within the patience left) for foreign tracers to end."""
    said = False
    while True:
        pids = foreign_tracers()
        if not pids:
            return
        if not said:
            log("waiting for `pymemleak --all` (pid %s) to end: it probes our runs too" %
                ", ".join(str(p) for p in pids))
            said = True
        if not pause(1):
            return


def run_mode(setup, mode, rep, startup, res):
    """One measurement of one mode, appended to res; failures are recorded."""
    name, _, _, kind, _ = setup
    key, label, _ = mode
    dirty = False
    for attempt in range(1, PROBED_RETRIES + 1):
        # Let whatever probed the last attempt finish; no retry once patience is spent.
        if attempt > 1 and not pause(2 * attempt):
            break
        wait_quiet()
        wall = time.time()
        r = measure(setup, mode, ITERS, rep)
        wall = time.time() - wall
        # A sample that another tracer probed (seen by the workload itself when
        # untraced, or a global tracer still running after it) is redone.
        dirty = not isinstance(r, str) and (r[2] or bool(foreign_tracers()))
        if not dirty:
            break
        probed.append("%s %s rep %d" % (name, label, rep))
        log("%s rep %d %s: probed by another tracer (attempt %d)" % (name, rep, label, attempt))
    if dirty:
        suspect.append("%s %s rep %d" % (name, label, rep))
    if isinstance(r, str):
        failures.append("%s %s rep %d: %s" % (name, label, rep, r))
        log("%s rep %d %s: FAILED %s" % (name, rep, label, r))
        return
    t, cov, _ = r
    res[key]["t"].append(t)
    if cov and key != "count" and kind != "attach":
        cov = (cov[0] - startup[0], cov[1] - startup[1], cov[2]) if startup else None
    if cov:
        res[key]["cov"].append(cov)
    seen = ""
    if key == "count" and r[1]:
        seen = "  %d probe hits" % r[1][0]
    elif cov:
        seen = "  %d allocs %d frees %s" % cov
    log("%s rep %d/%d %-40s loop %8.4f s, run %5.1f s%s" % (name, rep, REPS, label, t, wall,
                                                           seen))


def bench_setup(setup):
    """Runs every mode REPS times, interleaved: {key: {"t": [...], "cov": [...]}}."""
    name, _, exe, kind, modes = setup
    res = {m[0]: {"t": [], "cov": []} for m in modes}
    # An empty run: start-up events to subtract in launch mode (the same in every
    # pymemleak mode, so once), and a warm page cache for everything after.
    startup = None
    if kind != "attach":
        r = run_launch(name, "empty", exe, FULL[2], 0, 0)
        if isinstance(r, str):
            failures.append("%s empty run: %s" % (name, r))
            log("%s: empty run failed: %s" % (name, r))
        else:
            startup = r[1]
    for rep in range(1, REPS + 1):
        for mode in modes:
            # Runs without pymemleak take milliseconds and are every ratio's
            # denominator: PLAIN_SAMPLES of them per round steady the median.
            for _ in range(1 if isinstance(mode[2], list) else PLAIN_SAMPLES):
                run_mode(setup, mode, rep, startup, res)
    return res


def fmt_ratio(t, base):
    if t is None or not base:
        return "-"
    r = t / base
    return "%.2fx" % r if r < 10 else "%.1fx" % r if r < 100 else "%.0fx" % r


def fmt_time(t):
    return "-" if t is None else "%.4f s" % t if t < 10 else "%.2f s" % t


def spread(ts):
    """Interquartile range over median: one stray sample of nine does not swamp it."""
    if len(ts) < 2 or not median(ts):
        return "-"
    q1, _, q3 = statistics.quantiles(ts, n=4, method="inclusive")
    return "%.0f%%" % (100.0 * (q3 - q1) / median(ts))


def events_of(entry):
    """Median (allocs, frees, events, verdict) seen by the tool, or None."""
    covs = entry["cov"]
    if not covs:
        return None
    a = int(median([c[0] for c in covs]))
    f = int(median([c[1] for c in covs]))
    return a, f, a + f, covs[-1][2]


def table(setup, res):
    """Lines of the report for one setup."""
    name, title, exe, kind, modes = setup
    med = {k: median(v["t"]) for k, v in res.items()}
    # Tool modes compare with the allocator they run on: Debian's launch mode
    # traces PYTHONMALLOC=malloc, tracemalloc runs on plain pymalloc.
    base = med.get("none-malloc" if kind == "debian" else "none")
    loop_ev = events_of(res["full"]) if "full" in res else None
    lines = [title]
    if loop_ev:
        lines[0] += ":"
        if loop_ev[3] != "complete":
            rate = ", coverage %s: per event seen, not per event made" % loop_ev[3]
        else:
            rate = ", %.1f M/s untraced" % (loop_ev[2] / base / 1e6) if base else ""
        lines.append("  loop: %d allocations + %d frees seen by pymemleak%s" %
                     (loop_ev[0], loop_ev[1], rate))
    hdr = "  %-40s %10s %6s %9s" % ("mode", "loop", "iqr", "slowdown")
    if kind == "debian":
        hdr += " %11s" % "vs pymalloc"
    hdr += " %9s" % "us/event"
    if kind == "attach":
        hdr += "  %-9s %9s %9s" % ("coverage", "allocs", "frees")
    lines.append(hdr)
    for key, label, how in modes:
        t = med.get(key)
        row = "  %-40s %10s %6s %9s" % (label, fmt_time(t), spread(res[key]["t"]),
                                         fmt_ratio(t, base))
        own = base
        if kind == "debian":
            row += " %11s" % fmt_ratio(t, med.get("none"))
            own = med.get("none") if key.startswith(("tm", "none")) else base
        # One denominator for every row: the loop's events as pymemleak saw them,
        # so rows compare per allocation or free, whatever each mode counts. In
        # attach mode each row has its own (count-only: its probe hits), since
        # there the modes do not probe the same sites.
        ev = events_of(res[key]) if kind == "attach" else loop_ev
        if key not in ("none", "none-malloc") and ev and ev[2] > 0 and t is not None and own:
            row += " %9.2f" % ((t - own) * 1e6 / ev[2])
        else:
            row += " %9s" % "-"
        if kind == "attach" and key == "count" and res[key]["cov"]:
            row += "  %-9s %9d %9s" % ("hits", events_of(res[key])[0], "-")
        elif kind == "attach" and ev and isinstance(how, list):
            row += "  %-9s %9d %9d" % (ev[3], ev[0], ev[1])
        lines.append(row.rstrip())
    if kind == "attach":
        lines.append("  (count-only probes the allocator's function entries only, not the inlined "
                     "sites: its us/event is per probe hit)")
    if kind == "debian":
        lines.append("  (pymemleak rows trace PYTHONMALLOC=malloc: slowdown is theirs; no tracing "
                     "and tracemalloc rows run on pymalloc: vs pymalloc is theirs)")
    full, placed = loop_ev, events_of(res["placed"]) if "placed" in res else None
    if kind == "attach":
        full = events_of(res["full"]) if "full" in res else None
    if full and placed and full[0] > 0 and None not in (med.get("full"), med.get("placed")):
        d = med["full"] - med["placed"]
        lines.append("  stack walk (pymemleak minus --no-pystacks): %+.2f us per allocation, "
                     "%+.2f us per event" % (d * 1e6 / full[0], d * 1e6 / full[2]))
    return lines


def main():
    if os.geteuid() != 0:
        print("SKIP bench: pymemleak loads BPF programs: run as root (sudo make bench)")
        return 0
    if not os.access(BUILT, os.X_OK):
        print("bench: no %s (run make)" % os.path.relpath(BUILT, ROOT))
        return 1
    os.makedirs(os.path.join(OUT, "json"), exist_ok=True)
    shutil.copy2(BUILT, TOOL)
    version = subprocess.run([TOOL, "--version"], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
    found, skipped = setups()
    for s in skipped:
        print("SKIP %s" % s)
    start = time.time()
    head = ["pymemleak bench: %d iterations of bench/workload.py per run; median of %d "
            "interleaved runs per mode (%d for modes without pymemleak)" %
            (ITERS, REPS, REPS * PLAIN_SAMPLES),
            "%s; host: Linux %s, %s, %d CPUs; %s" % (version, platform.release(),
                                                     platform.machine(), os.cpu_count() or 0,
                                                     time.strftime("%Y-%m-%d %H:%M:%S")),
            "loop = the timed hot loop only (median); iqr = interquartile range / median; "
            "slowdown = loop / untraced loop;",
            "us/event = (loop - untraced loop) / (allocations + frees pymemleak saw in the "
            "loop), the same denominator for every row of a launch-mode table"]
    body, raw = [], {}
    for setup in found:
        log("%s: %s" % (setup[0], setup[1]))
        res = bench_setup(setup)
        raw[setup[0]] = res
        body += [""] + table(setup, res)
    body += ["", "total bench time %.0f s" % (time.time() - start)]
    with open(os.path.join(OUT, "runs.json"), "w") as f:
        json.dump(raw, f, indent=1)
    if probed:
        body += ["samples probed by another tracer on the host and redone: %d" % len(probed)]
    if suspect:
        body += ["samples probed by another tracer and kept (retries spent): %d (%s)" %
                 (len(suspect), "; ".join(suspect[:4]) + (" ..." if len(suspect) > 4 else ""))]
    if failures:
        body += ["", "FAILED runs (%d):" % len(failures)] + ["  " + f for f in failures]
    text = "\n".join(head + [("SKIP " + s) for s in skipped] + body) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(OUT, "results.txt"), "w") as f:
        f.write(text)
    print("bench: table written to %s" % os.path.relpath(os.path.join(OUT, "results.txt"),
                                                         ROOT))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
