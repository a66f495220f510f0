# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Integration tests: real Python processes with known leaks, the real tool.

Run as root by tests/integration/run.sh. Every test prints one line, PASS,
FAIL or SKIP with the detail or reason; the last line counts them. Optional
arguments select tests whose name contains every one of them, e.g.
`harness.py stack_ 3.12`; PYMEMLEAK=/path/to/pymemleak tests another binary;
PML_IT_KEEP=1 keeps the tools' logs and JSON even when everything passed.

Scenarios (tests/integration/scenarios) compute and print their own expected
numbers and leaking line (see common.py for the protocol), so nothing here
depends on a CPython version's object sizes. Timeouts exist only to turn a
hang into a FAIL; no assertion depends on how long anything took.
"""
import glob
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# PYMEMLEAK=path tests another build of the tool.
TOOL = os.environ.get("PYMEMLEAK") or os.path.join(ROOT, "build", "pymemleak")
SCEN = os.path.join(ROOT, "tests", "integration", "scenarios")
EXT_SRC = os.path.join(ROOT, "tests", "integration", "ext", "leaky.c")
OUT = tempfile.mkdtemp(prefix="pymemleak-it-")

# Generous limits against hangs only.
START_TIMEOUT = 60
RUN_TIMEOUT = 300
STOP_TIMEOUT = 90

# Tests that fail because of a tool bug reported to the lead: name prefix ->
# what is wrong. They still FAIL (the suite must show them); the note says why.
KNOWN_BUGS = {}

results = {"passed": 0, "failed": 0, "skipped": 0}
selection = []
children = []
started = set()  # pids of every process we started


class Failure(Exception):
    pass


class Skip(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Failure(why)


def say(kind, name, why=""):
    key = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[kind]
    results[key] += 1
    print("%s %s%s" % (kind, name, ": " + why if why else ""), flush=True)


def known_bug(name):
    for prefix, what in KNOWN_BUGS.items():
        if name.startswith(prefix):
            return what
    return None


def selected(name):
    return all(s in name for s in selection)


def run_test(name, fn, *args):
    """Run fn(*args): it returns the PASS detail, or raises Failure/Skip."""
    if not selected(name):
        return
    start = time.time()
    bug = known_bug(name)
    try:
        kind, why = "PASS", fn(*args) or ""
        if bug:
            why += " (listed in KNOWN_BUGS: fixed?)"
    except Skip as e:
        kind, why = "SKIP", str(e)
    except Failure as e:
        kind, why = "FAIL", str(e) + (" [known tool bug: %s]" % bug if bug else "")
    except Exception as e:  # a harness defect or an unexpected report shape
        tb = traceback.extract_tb(sys.exc_info()[2])[-1]
        kind, why = "FAIL", "harness error %s: %s (line %d)" % (type(e).__name__, e, tb.lineno)
    finally:
        reap_children()
    if kind == "FAIL":
        others = foreign_tools()
        if others:
            why += " [meanwhile, not ours: %s]" % "; ".join(others)
    # The time is information for whoever keeps the suite fast, never asserted.
    say(kind, name, "%s [%.1f s]" % (why, time.time() - start) if kind != "SKIP" else why)


def foreign_tools():
    """pymemleak processes this harness did not start: on a shared host they
    can interfere (an --all run probes every process of a binary)."""
    found = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/comm") as f:
                if f.read().strip() != "pymemleak":
                    continue
            with open(d + "/cmdline", "rb") as f:
                args = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        pid = int(os.path.basename(d))
        if pid not in started:
            found.append("%d %s" % (pid, args[:120]))
    return found[:3]


def reap_children():
    """Kill whatever a test started and left running (our own children only)."""
    while children:
        p = children.pop()
        if p.poll() is None:
            p.kill()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


def spawn(cmd, **kw):
    p = subprocess.Popen(cmd, **kw)
    children.append(p)
    started.add(p.pid)
    return p


def slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def tail(path, n=3):
    try:
        with open(path, errors="replace") as f:
            lines = [l.rstrip() for l in f if l.strip()]
    except OSError:
        return ""
    return " | ".join(lines[-n:])


# ---------------------------------------------------------------- interpreters


def pyenv_root():
    """$(pyenv root), else $PYENV_ROOT or ~/.pyenv; None when absent."""
    exe = shutil.which("pyenv") or next((p for p in ("/root/.pyenv/bin/pyenv",)
                                         if os.access(p, os.X_OK)), None)
    if exe:
        try:
            out = subprocess.run([exe, "root"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, timeout=30,
                                 universal_newlines=True).stdout.strip()
            if out and os.path.isdir(os.path.join(out, "versions")):
                return out
        except (OSError, subprocess.SubprocessError):
            pass
    for cand in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")):
        if cand and os.path.isdir(os.path.join(cand, "versions")):
            return cand
    return None


def pyenv_versions(lo, hi):
    """(name, exe, minor) of pyenv CPythons 3.lo-3.hi, oldest first."""
    root = pyenv_root()
    found = []
    if not root:
        return found
    for d in glob.glob(os.path.join(root, "versions", "3.*")):
        m = re.match(r"3\.(\d+)\.(\d+)$", os.path.basename(d))
        exe = os.path.join(d, "bin", "python3")
        if m and lo <= int(m.group(1)) <= hi and os.access(exe, os.X_OK):
            found.append((int(m.group(1)), int(m.group(2)), "pyenv-" + os.path.basename(d),
                          exe))
    return [(name, exe, minor) for minor, _, name, exe in sorted(found)]


def interpreters():
    """(name, exe, kind) for every CPython 3.8-3.13 here; kind shared|static."""
    found = [(name, exe, "shared") for name, exe, _ in pyenv_versions(8, 13)]
    if os.access("/usr/bin/python3.11", os.X_OK):
        found.append(("debian-3.11", "/usr/bin/python3.11", "static"))
    return found


def any_python():
    """One supported interpreter for the tests that need just one."""
    for name, exe, minor in reversed(pyenv_versions(8, 13)):
        if minor == 12:
            return name, exe
    pys = pyenv_versions(8, 13)
    if pys:
        return pys[-1][:2]
    if os.access("/usr/bin/python3.11", os.X_OK):
        return "debian-3.11", "/usr/bin/python3.11"
    return None


# ------------------------------------------------------------------- processes


def target_env(extra=None):
    e = dict(os.environ)
    for k in ("PYTHONMALLOC", "PML_LAUNCH", "PYTHONPATH", "PYTHONSTARTUP"):
        e.pop(k, None)
    e["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the source tree
    e.update(extra or {})
    return e


def parse_done(line):
    """'DONE k=v ...' -> dict, numbers as int."""
    out = {}
    for item in line.split()[1:]:
        k, _, v = item.partition("=")
        out[k] = int(v) if re.match(r"-?\d+$", v) else v
    return out


def wait_for(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Target:
    """A scenario run by one interpreter in attach mode (see common.py).

    With -S: no site module, so nothing installed in an interpreter's
    site-packages (.pth files run at start-up) changes what a scenario
    allocates. (-I would do more, but also drop PYTHONMALLOC.)"""

    def __init__(self, name, exe, script, env=None, args=None):
        self.err_path = os.path.join(OUT, slug(name) + ".target.err")
        self.err = open(self.err_path, "w")
        self.buf = b""
        self.p = spawn([exe, "-S", os.path.join(SCEN, script)] + list(args or []),
                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                       env=target_env(env))
        ready = self._line("READY", START_TIMEOUT)
        check(ready, "scenario %s did not start: %s" % (script, tail(self.err_path)))
        self.pid = int(ready.split()[1])

    def _line(self, prefix, timeout):
        """Next stdout line starting with prefix; None at EOF or timeout.
        Unbuffered reads: a line already in a stdio buffer would never
        wake select()."""
        end = time.time() + timeout
        fd = self.p.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text.startswith(prefix):
                    return text
            left = end - time.time()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buf += chunk

    def send(self):
        try:
            self.p.stdin.write(b"go\n")
            self.p.stdin.flush()
        except OSError:
            pass

    def go(self):
        """Let the scenario run; its DONE fields."""
        self.send()
        done = self._line("DONE", RUN_TIMEOUT)
        check(done, "scenario did not finish: %s" % tail(self.err_path))
        return parse_done(done)

    def finish(self):
        try:
            self.p.stdin.close()  # EOF ends every wait of the protocol
        except OSError:
            pass
        try:
            self.p.wait(15)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.err.close()


class Tool:
    """pymemleak with stdout/stderr in files (no pipe to fill and block it)."""

    def __init__(self, name, args, json_path=None, quiet=True, env=None, prefix=None):
        base = os.path.join(OUT, slug(name))
        self.out_path, self.err_path = base + ".out", base + ".err"
        self.json_path = json_path
        cmd = list(prefix or []) + [TOOL] + (["-q"] if quiet else [])
        cmd += (["--json", json_path] if json_path else []) + args
        self.cmd = cmd
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.p = spawn(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           env=target_env(env))
        self.rc = None

    def stdout(self):
        with open(self.out_path, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err_path, errors="replace") as f:
            return f.read()

    def wait_attached(self):
        ok = wait_for(lambda: "pymemleak: tracing pid" in self.stderr() or
                      self.p.poll() is not None, START_TIMEOUT)
        check(ok and self.p.poll() is None,
              "tool did not attach (exit %s): %s" % (self.p.poll(), tail(self.err_path)))

    def wait(self, timeout=RUN_TIMEOUT):
        try:
            self.rc = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure("tool still running after %d s (hang?): %s" %
                          (timeout, tail(self.err_path)))
        return self.rc

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            self.rc = self.p.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            raise Failure("tool did not stop on SIGINT: %s" % tail(self.err_path))
        return self.rc

    def doc(self):
        try:
            with open(self.json_path) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            raise Failure("bad JSON %s: %s" % (self.json_path, e))
        check(d.get("version") == 1 and d.get("processes"),
              "JSON without version 1 or processes: %.200s" % json.dumps(d))
        return d

    def proc(self, pid=None):
        procs = self.doc()["processes"]
        if pid is None:
            check(len(procs) == 1, "JSON has %d processes, want 1" % len(procs))
            return procs[0]
        for p in procs:
            if p["pid"] == pid:
                return p
        raise Failure("pid %d not in the JSON" % pid)


def json_path(name):
    path = os.path.join(OUT, slug(name) + ".json")
    if os.path.lexists(path):
        os.unlink(path)
    return path


def trace_attached(name, exe, script, env=None, args=None):
    """Start a scenario, attach the tool, run it, stop the tool.
    Returns (DONE fields, process JSON, tool)."""
    t = Target(name, exe, script, env)
    # Rank by bytes: the default growth ranking depends on how many intervals fit.
    tool = Tool(name, ["-p", str(t.pid), "--sort", "bytes"] + (args or []), json_path(name))
    tool.wait_attached()
    done = t.go()
    rc = tool.stop()
    t.finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    return done, tool.proc(t.pid), tool


# ------------------------------------------------------------------ assertions


def within(got, want, pct):
    return want > 0 and abs(got - want) <= want * pct / 100.0


def churn_lines():
    """{(file, line)} of every scenario line marked '# CHURN'."""
    found = set()
    for path in glob.glob(os.path.join(SCEN, "*.py")):
        with open(path) as f:
            for no, text in enumerate(f, 1):
                if text.rstrip().endswith("# CHURN"):
                    found.add((os.path.realpath(path), no))
    return found


def real(path):
    return os.path.realpath(path) if path.startswith("/") else path


def describe(st):
    fr = st.get("frames") or []
    where = " <- ".join("%s:%s %s" % (os.path.basename(f["file"]), f["line"], f["function"])
                        for f in fr[:3]) or "no frames"
    return "%d B/%d [%s] native %s%s" % (st["bytes"], st["count"], where,
                                         ",".join(st.get("native") or []) or "-",
                                         " flags " + ",".join(st["flags"]) if st.get("flags")
                                         else "")


def check_marker(done, tag="LEAK"):
    """The scenario's own line number must point at its marker (scenario sanity)."""
    with open(done["file"]) as f:
        lines = f.read().splitlines()
    ok = 0 < done["line"] <= len(lines) and lines[done["line"] - 1].rstrip().endswith("# " + tag)
    check(ok, "scenario bug: %s:%s is not the '# %s' line" % (done["file"], done["line"], tag))


def check_leak_top(proc, done, pct=5, clean_top=5):
    """The leaking line is frames[0] of the top stack, with bytes and count
    within pct %, and no churn line is in any frame of the top clean_top."""
    check_marker(done)
    stacks = proc.get("stacks") or []
    check(stacks, "no stacks in the report (outstanding %d B)" % proc["outstanding_bytes"])
    top = stacks[0]
    fr = top.get("frames") or []
    check(fr and real(fr[0]["file"]) == real(done["file"]) and fr[0]["line"] == done["line"],
          "top stack is not %s:%d: %s; next: %s" %
          (os.path.basename(done["file"]), done["line"], describe(top),
           "; ".join(describe(s) for s in stacks[1:3]) or "none"))
    check(within(top["bytes"], done["bytes"], pct) and within(top["count"], done["count"], pct),
          "top stack holds %d B in %d, want %d B in %d (+-%d%%)" %
          (top["bytes"], top["count"], done["bytes"], done["count"], pct))
    churn = churn_lines()
    for rank, st in enumerate(stacks[:clean_top], 1):
        for f in st.get("frames") or []:
            check((real(f["file"]), f["line"]) not in churn,
                  "churn line %s:%d in stack #%d: %s" %
                  (os.path.basename(f["file"]), f["line"], rank, describe(st)))
    return top


# ----------------------------------------------------------------------- tests


def test_attach_basic(name, exe, kind):
    """-p PID on a known leak amid churn: totals within 2% (shared builds),
    'partial' on Debian's static LTO build."""
    # The same leak with a third of the default churn: as telling, faster.
    done, proc, _ = trace_attached(name, exe, "leak_basic.py", {"CHURN_ROUNDS": "10"})
    got_b, got_n = proc["outstanding_bytes"], proc["outstanding_count"]
    want_b, want_n = done["bytes"], done["count"]
    verdict = proc["coverage"]["verdict"]
    detail = "bytes %d want %d, count %d want %d, verdict %s" % (got_b, want_b, got_n, want_n,
                                                                  verdict)
    check(proc["exited"] is False, "exited is %r for a live process" % proc["exited"])
    if kind == "static":
        check(verdict == "partial", "static LTO build must be partial: " + detail)
        return detail
    check(verdict == "complete", "verdict not complete: %s (%s)" %
          (verdict, proc["coverage"]["reason"]))
    check(within(got_b, want_b, 2) and within(got_n, want_n, 2), detail)
    return detail


def test_launch_basic(name, exe, kind):
    """-- PY scenario: the leak is the top stack, complete, totals balanced."""
    # -S as for Target: start-up allocations must not depend on site-packages.
    tool = Tool(name, ["--sort", "bytes", "--", exe, "-S", os.path.join(SCEN, "launch_leak.py")],
                json_path(name),
                env={"PML_LAUNCH": "1"})
    rc = tool.wait()
    err = tool.stderr()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    m = re.search(r"^DONE .*$", tool.stdout(), re.M)
    check(m, "scenario printed no DONE line (stdout %s)" % tool.out_path)
    done = parse_done(m.group(0))
    proc = tool.proc()
    said_malloc = "PYTHONMALLOC=malloc" in err
    if kind == "static":
        check(said_malloc, "no PYTHONMALLOC=malloc notice on stderr: %s" % tail(tool.err_path))
    else:
        check(not said_malloc, "PYTHONMALLOC=malloc forced on a shared build")
    verdict = proc["coverage"]["verdict"]
    check(verdict == "complete", "verdict %s (%s)" % (verdict, proc["coverage"]["reason"]))
    top = check_leak_top(proc, done)
    # What start-up leaves allocated is small next to the leak and its list.
    check(within(proc["outstanding_bytes"], done["held"], 5),
          "totals %d B, want the scenario's %d B +-5%% (allocs %d, frees %d)" %
          (proc["outstanding_bytes"], done["held"], proc["coverage"]["allocs"],
           proc["coverage"]["frees"]))
    return "top %s:%d %d B want %d, totals %d B want %d, verdict %s%s" % (
        os.path.basename(done["file"]), done["line"], top["bytes"], done["bytes"],
        proc["outstanding_bytes"], done["held"], verdict,
        ", PYTHONMALLOC=malloc" if said_malloc else "")


def test_stack(name, exe, script, env=None):
    """A leak amid churn: its line is frames[0] of the top stack, +-5%."""
    done, proc, _ = trace_attached(name, exe, script, env)
    top = check_leak_top(proc, done)
    check(proc["coverage"]["verdict"] == "complete", "verdict %s (%s)" %
          (proc["coverage"]["verdict"], proc["coverage"]["reason"]))
    return "top %s:%d %d B want %d, %d stacks" % (os.path.basename(done["file"]), done["line"],
                                                   top["bytes"], done["bytes"],
                                                   len(proc["stacks"]))


def test_alloc_swap(name, exe, allocator):
    """Attach to a process started with PYTHONMALLOC=<allocator>: the tool
    must notice the swapped allocator and still see every allocation."""
    done, proc, _ = trace_attached(name, exe, "leak_main.py", {"PYTHONMALLOC": allocator})
    cov = proc["coverage"]
    check(cov["verdict"] == "complete", "verdict %s (%s)" % (cov["verdict"], cov["reason"]))
    top = check_leak_top(proc, done)
    return "top %s:%d %d B want %d, complete (%s)" % (
        os.path.basename(done["file"]), done["line"], top["bytes"], done["bytes"], cov["reason"])


def test_launch_user_allocator(name, exe):
    """Launching a static build whose environment already sets PYTHONMALLOC:
    the user's choice stands, and the verdict must then be honest (partial)."""
    tool = Tool(name, ["--sort", "bytes", "--", exe, "-S", os.path.join(SCEN, "launch_leak.py")],
                json_path(name), env={"PML_LAUNCH": "1", "PYTHONMALLOC": "pymalloc"})
    rc = tool.wait()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    check("PYTHONMALLOC=malloc" not in tool.stderr(),
          "overrode the user's PYTHONMALLOC: %s" % tail(tool.err_path))
    cov = tool.proc()["coverage"]
    check(cov["verdict"] == "partial",
          "verdict %s with the inlined pymalloc at work (%s)" % (cov["verdict"], cov["reason"]))
    return "PYTHONMALLOC=pymalloc kept, verdict partial (%s)" % cov["reason"]


def build_ext(name, exe):
    """Build leaky.c for exe into a fresh directory; returns the directory."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise Skip("no C compiler to build %s" % EXT_SRC)
    inc = subprocess.run([exe, "-c", "import sysconfig; print(sysconfig.get_paths()['include'])"],
                         stdout=subprocess.PIPE, universal_newlines=True, timeout=60).stdout.strip()
    check(os.path.isfile(os.path.join(inc, "Python.h")), "no Python.h under %r" % inc)
    d = os.path.join(OUT, "ext-" + slug(name))
    os.makedirs(d, exist_ok=True)
    r = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-g", "-Wall", "-Werror", "-I" + inc,
                        EXT_SRC, "-o", os.path.join(d, "leaky.so")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    check(r.returncode == 0, "cannot build leaky.c: %s" % r.stdout.strip()[-300:])
    return d


def test_stack_cext(name, exe):
    d = build_ext(name, exe)
    done, proc, _ = trace_attached(name, exe, "leak_cext.py", {"PML_EXT_DIR": d})
    top = check_leak_top(proc, done)
    native = " ".join(top.get("native") or [])
    check("leaky" in native, "native caller does not name the extension: %r (want %s)" %
          (native, os.path.basename(done["ext"])))
    return "top %s:%d %d B want %d, native %s" % (os.path.basename(done["file"]), done["line"],
                                                  top["bytes"], done["bytes"], native)


def test_cext_nogil(name, exe):
    """PyMem_RawMalloc without the GIL while another thread holds it: every
    block is accounted for, and none is under the GIL holder's stack; each
    stack holding them is native-only (no_gil/no_pystate) or the calling
    thread's own line (its frames cannot change while it is in C)."""
    d = build_ext(name, exe)
    done, proc, _ = trace_attached(name, exe, "leak_nogil.py", {"PML_EXT_DIR": d},
                                   args=["-n", "100000"])
    check_marker(done)
    stacks = proc.get("stacks") or []
    fn = done["churner"]
    for rank, st in enumerate(stacks, 1):
        on_churner = any(f["function"] == fn for f in st.get("frames") or [])
        check(not (on_churner and st["bytes"] > done["bytes"] / 100.0),
              "stack #%d on the GIL holder's churner holds %d B > 1%% of the leak: %s" %
              (rank, st["bytes"], describe(st)))
    mine = [s for s in stacks if "leaky" in " ".join(s.get("native") or [])]
    held = {"native-only": 0, "own line": 0}
    flags = set()
    for st in mine:
        fr = st.get("frames") or []
        if not fr:
            f = set(st.get("flags") or []) & {"no_gil", "no_pystate"}
            check(f, "native-only stack without no_gil/no_pystate: %s" % describe(st))
            flags |= f
            held["native-only"] += st["bytes"]
        else:
            check(real(fr[0]["file"]) == real(done["file"]) and fr[0]["line"] == done["line"],
                  "a no-GIL block is under someone else's line: %s" % describe(st))
            held["own line"] += st["bytes"]
    total = sum(held.values())
    check(within(total, done["bytes"], 5),
          "stacks with leaky as native caller hold %d B, want %d +-5%%; top: %s" %
          (total, done["bytes"], describe(stacks[0]) if stacks else "none"))
    return "%d B want %d: %d B native-only (%s), %d B on the worker's own line" % (
        total, done["bytes"], held["native-only"], ",".join(sorted(flags)) or "-",
        held["own line"])


def test_two_threads(name, exe):
    """One thread leaks while another churns: nothing of the leak lands on
    the churner, the leaker's line ranks first."""
    done, proc, _ = trace_attached(name, exe, "two_threads.py", args=["-n", "100000"])
    top = check_leak_top(proc, done)
    limit = done["bytes"] / 100.0
    fn = done["churner"]
    for rank, st in enumerate(proc["stacks"], 1):
        on_churner = any(f["function"] == fn or f["function"].endswith("." + fn)
                         for f in st.get("frames") or [])
        check(not (on_churner and st["bytes"] > limit),
              "stack #%d on the churner holds %d B > 1%% of the leak: %s" %
              (rank, st["bytes"], describe(st)))
    return "top %s:%d %d B want %d, churn passes %d" % (
        os.path.basename(done["file"]), done["line"], top["bytes"], done["bytes"],
        done["passes"])


# --- bad input


def idle_target(name, exe, env=None):
    return Target(name, exe, "idle.py", env)


def check_one_error_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    check(len(lines) == 1 and lines[0].startswith("pymemleak: "),
          "want one stderr line starting 'pymemleak: ', got %r" % err[-300:])


def run_once(name, args, json_file=None, timeout=120, prefix=None):
    tool = Tool(name, args, json_file, quiet=True, prefix=prefix)
    rc = tool.wait(timeout)
    return rc, tool.stdout(), tool.stderr()


def free_pid():
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            top = int(f.read())
    except (OSError, ValueError):
        top = 32768
    for pid in range(top - 1, 1, -1):
        if not os.path.exists("/proc/%d" % pid):
            return pid
    raise Failure("no unused pid found")


def test_no_such_pid(name):
    pid = free_pid()
    rc, _, err = run_once(name, ["-p", str(pid)])
    check(rc == 2, "exit %d, want 2: %r" % (rc, err[-200:]))
    check_one_error_line(err)
    return "pid %d: exit 2, %s" % (pid, err.strip())


def test_no_such_pid_json(name):
    """A run that fails before tracing leaves no empty --json file behind
    (it is not JSON, and it makes the next identical run fail 'file exists')."""
    pid = free_pid()
    path = json_path(name)
    rc, _, err = run_once(name, ["-p", str(pid)], path)
    check(rc == 2, "exit %d, want 2: %r" % (rc, err[-200:]))
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
        try:
            json.loads(text)
        except ValueError:
            raise Failure("left %s behind, %d bytes, not JSON" % (path, len(text)))
    return "exit 2, %s" % ("no file left" if not os.path.exists(path) else "valid JSON left")


def test_not_python(name):
    sleeper = spawn(["sleep", "100"])
    rc, _, err = run_once(name, ["-p", str(sleeper.pid), "-d", "5"])
    check(rc == 2, "exit %d, want 2: %r" % (rc, err[-200:]))
    check_one_error_line(err)
    return "exit 2, %s" % err.strip()


def test_unsupported(name, exe):
    t = idle_target(name, exe)
    rc, _, err = run_once(name, ["-p", str(t.pid), "-d", "5"])
    t.finish()
    check(rc == 2, "exit %d, want 2: %r" % (rc, err[-200:]))
    check("unsupported" in err, "stderr does not say unsupported: %r" % err[-200:])
    return "exit 2, %s" % err.strip()


def with_idle(name, fn):
    py = any_python()
    if not py:
        raise Skip("no CPython 3.8-3.13 to be the target")
    t = idle_target(name, py[1])
    try:
        return fn(t)
    finally:
        t.finish()


def test_json_no_dir(name):
    path = os.path.join(OUT, "no-such-dir", "r.json")

    def body(t):
        rc, _, err = run_once(name, ["-p", str(t.pid), "-d", "2"], path)
        check(rc == 1, "exit %d, want 1: %r" % (rc, err[-200:]))
        check(not os.path.lexists(os.path.dirname(path)), "the directory was created")
        return "exit 1, %s" % err.strip()
    return with_idle(name, body)


def test_json_exists(name):
    path = json_path(name)
    with open(path, "w") as f:
        f.write("precious\n")

    def body(t):
        rc, _, err = run_once(name, ["-p", str(t.pid), "-d", "2"], path)
        check(rc == 1, "exit %d, want 1: %r" % (rc, err[-200:]))
        with open(path) as f:
            check(f.read() == "precious\n", "existing file changed")
        return "exit 1, file untouched, %s" % err.strip()
    return with_idle(name, body)


def test_json_symlink(name, force):
    victim = os.path.join(OUT, slug(name) + ".victim")
    link = json_path(name)
    if force:
        with open(victim, "w") as f:
            f.write("precious\n")
    elif os.path.lexists(victim):
        os.unlink(victim)
    os.symlink(victim, link)

    def body(t):
        args = ["-p", str(t.pid), "-d", "2"] + (["--force"] if force else [])
        rc, _, err = run_once(name, args, link)
        check(rc == 1, "exit %d, want 1: %r" % (rc, err[-200:]))
        check(os.path.islink(link), "the symlink was replaced")
        if force:
            with open(victim) as f:
                check(f.read() == "precious\n", "the symlink's target was written")
        else:
            check(not os.path.lexists(victim), "the dangling symlink's target was created")
        return "exit 1, target untouched, %s" % err.strip()
    return with_idle(name, body)


def test_usage(name, args):
    rc, out, err = run_once(name, args, timeout=60)
    check(rc == 1, "exit %d, want 1: %r" % (rc, (err or out)[-200:]))
    check(err.strip(), "exit 1 without a word on stderr")
    return "exit 1, %s" % err.strip().splitlines()[0]


def test_unprivileged(name):
    setpriv = shutil.which("setpriv")
    if not setpriv:
        raise Skip("no setpriv (util-linux) to drop privileges")

    def body(t):
        rc, _, err = run_once(name, ["-p", str(t.pid), "-d", "2"],
                              prefix=[setpriv, "--reuid=65534", "--regid=65534",
                                      "--clear-groups"])
        if rc in (126, 127) and err.startswith("setpriv"):
            raise Skip("user nobody cannot run %s: %s" % (TOOL, err.strip()))
        check(rc == 3, "exit %d, want 3: %r" % (rc, err[-200:]))
        check("CAP_BPF" in err, "stderr does not name CAP_BPF: %r" % err[-200:])
        return "exit 3, %s" % err.strip()
    return with_idle(name, body)


def test_target_exits(name):
    """The only -p target exits mid-trace: the tool ends by itself, exit 2,
    JSON says exited."""
    py = any_python()
    if not py:
        raise Skip("no CPython 3.8-3.13 to be the target")
    t = idle_target(name, py[1], {"IDLE_EXIT": "normal", "IDLE_ALLOCS": "1000"})
    tool = Tool(name, ["-p", str(t.pid), "-d", "30"], json_path(name))
    tool.wait_attached()
    t.send()  # the target allocates a little, then exits
    rc = tool.wait(STOP_TIMEOUT)
    t.finish()
    err = tool.stderr()
    check(rc == 2, "exit %d, want 2: %s" % (rc, tail(tool.err_path)))
    check("exited" in err, "stderr does not report the exit: %s" % tail(tool.err_path))
    d = tool.doc()
    proc = tool.proc(t.pid)
    check(proc["exited"] is True, "JSON exited is %r" % proc["exited"])
    check(d["duration_s"] < 30, "ran the whole -d 30 (%.1f s): the exit did not end it" %
          d["duration_s"])
    return "exit 2 after %.1f s, exited=true" % d["duration_s"]


def test_multi_pid(name, pys):
    """One tool, two -p targets of different CPython versions (different
    frame layouts) leaking at once: each process's own leak line ranks
    first in its own report."""
    targets = [Target("%s.%s" % (name, pyname), exe, "leak_main.py") for pyname, exe in pys]
    args = []
    for t in targets:
        args += ["-p", str(t.pid)]
    tool = Tool(name, args + ["--sort", "bytes"], json_path(name))
    tool.wait_attached()
    check(wait_for(lambda: tool.stderr().count("pymemleak: tracing pid") == len(targets),
                   START_TIMEOUT), "tool did not attach to every target: %s" %
          tail(tool.err_path))
    for t in targets:
        t.send()  # both run at once
    dones = []
    for t in targets:
        done = t._line("DONE", RUN_TIMEOUT)
        check(done, "scenario did not finish: %s" % tail(t.err_path))
        dones.append(parse_done(done))
    rc = tool.stop()
    for t in targets:
        t.finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    out = []
    for (pyname, _), t, done in zip(pys, targets, dones):
        proc = tool.proc(t.pid)
        try:
            top = check_leak_top(proc, done)
        except Failure as e:
            raise Failure("%s (pid %d): %s" % (pyname, t.pid, e))
        out.append("%s %d B" % (pyname, top["bytes"]))
    return "top stacks right in each: " + ", ".join(out)


def test_concurrent_all(name, exe):
    """A second tool traces a process while a `pymemleak --all --match` runs
    on the host: --all puts its interpreter probes (int3s) into every process
    of that binary, traced or not; the second tool must still attach and find
    the leak."""
    tag = "pmlit%dx%d" % (os.getpid(), int(time.time()))
    other = Target(name + ".all-target", exe, "idle.py", args=[tag])
    every = Tool(name + ".all", ["--all", "--match", tag, "-d", "300"])
    try:
        # At the first scan ("tracing N Python processes") or later ("tracing pid N").
        traced = r"tracing ([1-9]\d* Python process|pid \d+)"
        check(wait_for(lambda: re.search(traced, every.stderr()) or
                       every.p.poll() is not None, START_TIMEOUT) and every.p.poll() is None,
              "the --all tool did not start tracing its one match: %s" % tail(every.err_path))
        done, proc, _ = trace_attached(name, exe, "leak_main.py")
        top = check_leak_top(proc, done)
    finally:
        every.stop()
        other.finish()
    check(every.rc == 0, "the --all tool exited %d: %s" % (every.rc, tail(every.err_path)))
    return "beside --all: top %s:%d %d B want %d" % (os.path.basename(done["file"]),
                                                     done["line"], top["bytes"], done["bytes"])


def test_older_than(name):
    py = any_python()
    if not py:
        raise Skip("no CPython 3.8-3.13 to be the target")
    done, proc, _ = trace_attached(name + ".control", py[1], "leak_main.py")
    top = check_leak_top(proc, done)
    done, proc, _ = trace_attached(name, py[1], "leak_main.py", args=["--older-than", "3600"])
    check(not proc["stacks"] and proc["outstanding_bytes"] == 0,
          "--older-than 3600 still shows %d B in %d stacks, first %s" %
          (proc["outstanding_bytes"], len(proc["stacks"]),
           describe(proc["stacks"][0]) if proc["stacks"] else "-"))
    return "%s: without: top %d B; --older-than 3600: no stacks, 0 B" % (py[0], top["bytes"])


def test_periodic(name):
    py = any_python()
    if not py:
        raise Skip("no CPython 3.8-3.13 to be the target")
    t = idle_target(name, py[1])
    tool = Tool(name, ["-p", str(t.pid), "-i", "1", "-d", "3"], quiet=False)
    rc = tool.wait(STOP_TIMEOUT)
    t.finish()
    out = tool.stdout()
    periodic = len(re.findall(r"^periodic report at ", out, re.M))
    final = len(re.findall(r"^final report at ", out, re.M))
    check(rc == 0, "exit %d: %s" % (rc, tail(tool.err_path)))
    check(periodic >= 2 and final == 1,
          "%d periodic and %d final report headers, want >= 2 and 1" % (periodic, final))
    check(out.rfind("final report at ") > out.rfind("periodic report at "),
          "the final report is not last")
    return "%d periodic reports, then the final one" % periodic


# ------------------------------------------------------------------------ main


def main():
    selection.extend(sys.argv[1:])
    if os.geteuid() != 0:
        say("SKIP", "integration", "needs root (run: sudo make integration)")
        return finish()
    if not os.access(TOOL, os.X_OK):
        say("FAIL", "integration", "no %s (run make)" % TOOL)
        return finish()
    interps = interpreters()
    pys = pyenv_versions(8, 13)
    if not interps:
        say("SKIP", "integration", "no CPython 3.8-3.13 found")
    for name, exe, kind in interps:
        run_test("attach_basic[%s]" % name, test_attach_basic, "attach_basic[%s]" % name, exe,
                 kind)
    for name, exe, kind in interps:
        run_test("launch_basic[%s]" % name, test_launch_basic, "launch_basic[%s]" % name, exe,
                 kind)

    stack_tests = [("stack_main", "leak_main.py"), ("stack_thread", "leak_thread.py"),
                   ("stack_asyncio", "leak_asyncio.py")]
    if not pys:
        why = "no pyenv CPython 3.8-3.13 (%s)" % ("no pyenv" if not pyenv_root() else
                                                  "none installed under $(pyenv root)")
        for t in [t for t, _ in stack_tests] + ["stack_cext", "two_threads", "cext_nogil"]:
            if selected(t):
                say("SKIP", t, why)
    for name, exe, _ in pys:
        for test, script in stack_tests:
            tname = "%s[%s]" % (test, name)
            run_test(tname, test_stack, tname, exe, script)
        tname = "stack_cext[%s]" % name
        run_test(tname, test_stack_cext, tname, exe)
    for name, exe, _ in pys:
        tname = "two_threads[%s]" % name
        run_test(tname, test_two_threads, tname, exe)
    for name, exe, _ in pys:
        tname = "cext_nogil[%s]" % name
        run_test(tname, test_cext_nogil, tname, exe)

    for name, exe, kind in interps:
        tname = "alloc_swap.malloc[%s]" % name
        run_test(tname, test_alloc_swap, tname, exe, "malloc")
    for name, exe, minor in pys:
        if minor >= 13:
            tname = "alloc_swap.mimalloc[%s]" % name
            run_test(tname, test_alloc_swap, tname, exe, "mimalloc")
    for name, exe, kind in interps:
        if kind == "static":
            tname = "launch_user_allocator[%s]" % name
            run_test(tname, test_launch_user_allocator, tname, exe)

    if len(pys) >= 2:
        pair = [pys[0][:2], pys[-1][:2]]
        tname = "multi_pid[%s+%s]" % (pair[0][0], pair[1][0])
        run_test(tname, test_multi_pid, tname, pair)
    elif selected("multi_pid"):
        say("SKIP", "multi_pid", "needs two pyenv CPythons 3.8-3.13")

    for name, exe, kind in interps:
        if kind == "static" or name == (any_python() or ("",))[0]:
            tname = "concurrent_all[%s]" % name
            run_test(tname, test_concurrent_all, tname, exe)

    run_test("bad_input.no_such_pid", test_no_such_pid, "bad_input.no_such_pid")
    run_test("bad_input.no_such_pid_json", test_no_such_pid_json, "bad_input.no_such_pid_json")
    run_test("bad_input.not_python", test_not_python, "bad_input.not_python")
    old = pyenv_versions(6, 7)
    for name, exe, _ in old:
        tname = "bad_input.unsupported[%s]" % name
        run_test(tname, test_unsupported, tname, exe)
    if not old and selected("bad_input.unsupported"):
        say("SKIP", "bad_input.unsupported", "no pyenv CPython 3.6 or 3.7 installed")
    run_test("bad_input.json_no_dir", test_json_no_dir, "bad_input.json_no_dir")
    run_test("bad_input.json_exists", test_json_exists, "bad_input.json_exists")
    run_test("bad_input.json_symlink", test_json_symlink, "bad_input.json_symlink", True)
    run_test("bad_input.json_dangling_symlink", test_json_symlink,
             "bad_input.json_dangling_symlink", False)
    for tname, args in (("no_args", []), ("bad_duration", ["-p", "1", "-d", "abc"]),
                        ("zero_duration", ["-p", "1", "-d", "0"]),
                        ("unknown_option", ["-p", "1", "--bogus"]),
                        ("pid_and_command", ["-p", "1", "--", "true"])):
        tname = "bad_input.usage_" + tname
        run_test(tname, test_usage, tname, args)
    run_test("bad_input.unprivileged", test_unprivileged, "bad_input.unprivileged")
    run_test("bad_input.target_exits", test_target_exits, "bad_input.target_exits")
    run_test("older_than", test_older_than, "older_than")
    run_test("periodic", test_periodic, "periodic")
    return finish()


def finish():
    if results["failed"] or os.environ.get("PML_IT_KEEP"):
        print("(tool logs and JSON of this run: %s)" % OUT)
    else:
        shutil.rmtree(OUT, ignore_errors=True)
    print("integration: %d passed, %d failed, %d skipped" % (results["passed"], results["failed"],
                                                             results["skipped"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
