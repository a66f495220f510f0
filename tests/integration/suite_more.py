# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""More integration tests: growth ranking, the JSON schema, the exports,
Debian's static LTO build, the whole host.

Run as root with Debian's /usr/bin/python3 (standard library only). Every
test prints one line, PASS, FAIL or SKIP with the detail or reason; the last
line counts them; the exit status is 1 when a test failed. Optional
arguments select tests whose name contains every one of them, e.g.
`suite_more.py growth 3.8`; PYMEMLEAK=/path/to/pymemleak tests another
binary; PML_IT_KEEP=1 keeps the logs and outputs even when everything passed.

Scenarios (tests/integration/scenarios_more, protocol in mcommon.py) compute
and print their own expected numbers and leak lines. Attaching is slow on
some machines: a scenario starts its measured phase only once the tool said
it traces the process, and waits are counted in the tool's own periodic
reports, not in seconds. Timeouts only turn a hang into a FAIL.
"""
import glob
import json
import os
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ElementTree

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.environ.get("PYMEMLEAK") or os.path.join(ROOT, "build", "pymemleak")
SCEN = os.path.join(ROOT, "tests", "integration", "scenarios_more")
SVG_BROWSER = os.path.join(ROOT, "tests", "integration", "svg_browser.py")
SCHEMA_CHECK = os.path.join(ROOT, "tests", "unit", "check_json_schema.py")
SCHEMA = os.path.join(ROOT, "tests", "unit", "fixtures", "report.schema.json")
DEBIAN_PY = "/usr/bin/python3.11"
OUT = tempfile.mkdtemp(prefix="pymemleak-more-")

# Generous limits against hangs only.
START_TIMEOUT = 90
RUN_TIMEOUT = 300
STOP_TIMEOUT = 120

# Tests that fail because of a tool bug reported to the lead: name prefix ->
# what is wrong. They still FAIL; the note says why.
KNOWN_BUGS = {}

results = {"passed": 0, "failed": 0, "skipped": 0}
selection = []
children = []
# Every JSON report a test of this run wrote, for json_schema.
reports = []


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


def selected(name):
    return all(s in name for s in selection)


def run_test(name, fn, *args):
    """Run fn(name, *args): it returns the PASS detail, or raises Failure/Skip."""
    if not selected(name):
        return
    start = time.time()
    bug = next((what for prefix, what in KNOWN_BUGS.items() if name.startswith(prefix)), None)
    try:
        kind, why = "PASS", fn(name, *args) or ""
        if bug:
            why += " (listed in KNOWN_BUGS: fixed?)"
    except Skip as e:
        kind, why = "SKIP", str(e)
    except Failure as e:
        kind, why = "FAIL", str(e) + (" [known tool bug: %s]" % bug if bug else "")
    except Exception as e:  # a suite defect or an unexpected report shape
        tb = traceback.extract_tb(sys.exc_info()[2])[-1]
        kind, why = "FAIL", "suite error %s: %s (line %d)" % (type(e).__name__, e, tb.lineno)
    finally:
        reap_children()
    # The time is for whoever keeps the suite fast, never asserted.
    say(kind, name, "%s [%.1f s]" % (why, time.time() - start) if kind != "SKIP" else why)


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


def wait_for(pred, timeout, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def out_path(name, suffix):
    path = os.path.join(OUT, slug(name) + suffix)
    if os.path.lexists(path):
        os.unlink(path)
    return path


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
    for cand in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        if cand and os.path.isdir(os.path.join(cand, "versions")):
            return cand
    return None


PYENV_ROOT = pyenv_root()


def pyenv(minor):
    """(name, exe) of the newest pyenv CPython 3.minor, or None."""
    if not PYENV_ROOT:
        return None
    best = None
    for d in glob.glob(os.path.join(PYENV_ROOT, "versions", "3.%d.*" % minor)):
        m = re.match(r"3\.%d\.(\d+)$" % minor, os.path.basename(d))
        exe = os.path.join(d, "bin", "python3")
        if m and os.access(exe, os.X_OK) and (not best or int(m.group(1)) > best[0]):
            best = (int(m.group(1)), "pyenv-" + os.path.basename(d), exe)
    return best[1:] if best else None


def need_pyenv(minor):
    py = pyenv(minor)
    if not py:
        raise Skip("no pyenv CPython 3.%d (%s)" % (minor, "no pyenv" if not PYENV_ROOT else
                                                     "not under %s/versions" % PYENV_ROOT))
    return py


def need_debian():
    if not os.access(DEBIAN_PY, os.X_OK):
        raise Skip("no %s (Debian's static LTO CPython)" % DEBIAN_PY)
    return "debian-3.11", DEBIAN_PY


# ------------------------------------------------------------------- processes


def target_env(extra=None):
    e = dict(os.environ)
    for k in ("PYTHONMALLOC", "PML_LAUNCH", "PYTHONPATH", "PYTHONSTARTUP"):
        e.pop(k, None)
    e["PYTHONDONTWRITEBYTECODE"] = "1"  # no __pycache__ in the source tree
    e.update(extra or {})
    return e


def parse_done(line):
    """'DONE k=v ...' -> dict, integers as int."""
    out = {}
    for item in line.split()[1:]:
        k, _, v = item.partition("=")
        out[k] = int(v) if re.match(r"-?\d+$", v) else v
    return out


class Target:
    """A scenario in attach mode (protocol in scenarios_more/mcommon.py)."""

    def __init__(self, name, exe, script, env=None, args=None):
        self.script = os.path.join(SCEN, script)
        self.err_path = out_path(name, "." + os.path.splitext(script)[0] + ".err")
        self.err = open(self.err_path, "w")
        self.p = spawn([exe, self.script] + (args or []), stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=self.err, universal_newlines=True,
                       env=target_env(env))
        ready = self.line("READY", START_TIMEOUT)
        check(ready, "scenario %s did not start: %s" % (script, tail(self.err_path)))
        self.pid = int(ready.split()[1])

    def line(self, prefix, timeout=RUN_TIMEOUT):
        """Next stdout line starting with prefix; None at EOF or timeout."""
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([self.p.stdout], [], [], max(0.0, end - time.time()))
            if not r:
                break
            text = self.p.stdout.readline()
            if not text:
                return None
            if text.startswith(prefix):
                return text
        return None

    def send(self, word="go"):
        try:
            self.p.stdin.write(word + "\n")
            self.p.stdin.flush()
        except OSError:
            pass

    def done(self, timeout=RUN_TIMEOUT):
        text = self.line("DONE", timeout)
        check(text, "scenario %s did not finish: %s" %
              (os.path.basename(self.script), tail(self.err_path)))
        return parse_done(text)

    def finish(self):
        try:
            self.p.stdin.close()  # EOF ends every wait of the protocol
        except OSError:
            pass
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.err.close()


class Tool:
    """pymemleak with stdout/stderr in files (no pipe to fill and block it)."""

    def __init__(self, name, args, json_path=None, env=None):
        base = os.path.join(OUT, slug(name))
        self.out_path, self.err_path = base + ".out", base + ".err"
        self.json_path = json_path
        cmd = [TOOL] + (["--json", json_path] if json_path else []) + args
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

    def reports(self):
        """Periodic reports printed so far (stdout is flushed after each)."""
        return len(re.findall(r"^periodic report at ", self.stdout(), re.M))

    def wait_stderr(self, pattern, what):
        """Wait for a stderr line matching pattern while the tool runs."""
        found = []

        def seen():
            m = re.search(pattern, self.stderr(), re.M)
            if m:
                found.append(m)
            return m or self.p.poll() is not None
        wait_for(seen, START_TIMEOUT)
        check(found and self.p.poll() is None, "tool did not say it %s (exit %s): %s" %
              (what, self.p.poll(), tail(self.err_path)))
        return found[0]

    def wait_attached(self, pid):
        return self.wait_stderr(r"^pymemleak: tracing pid %d\b" % pid, "traces pid %d" % pid)

    def wait_reports(self, n):
        """Wait until n periodic reports are out; how many there are."""
        ok = wait_for(lambda: self.reports() >= n or self.p.poll() is not None, RUN_TIMEOUT)
        got = self.reports()
        check(ok and got >= n, "%d periodic reports, waited for %d (exit %s): %s" %
              (got, n, self.p.poll(), tail(self.err_path)))
        return got

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
        reports.append(self.json_path)
        check(d.get("version") == 1 and isinstance(d.get("processes"), list),
              "JSON without version 1 or processes: %.200s" % json.dumps(d))
        return d

    def proc(self, pid):
        for p in self.doc()["processes"]:
            if p["pid"] == pid:
                return p
        raise Failure("pid %d not in the JSON" % pid)


# ------------------------------------------------------------------ assertions


def within(got, want, pct):
    return want > 0 and abs(got - want) <= want * pct / 100.0


def real(path):
    return os.path.realpath(path) if path.startswith("/") else path


def at(frame, path, line):
    return real(frame["file"]) == real(path) and frame["line"] == line


def top_is(st, path, line):
    fr = st.get("frames") or []
    return bool(fr) and at(fr[0], path, line)


def describe(st):
    fr = st.get("frames") or []
    where = " <- ".join("%s:%s %s" % (os.path.basename(f["file"]), f["line"], f["function"])
                        for f in fr[:3]) or "no frames"
    return "%d B/%d [%s] growth %s%s" % (st["bytes"], st["count"], where,
                                         st.get("growth_bytes_per_s"),
                                         " flags " + ",".join(st["flags"]) if st.get("flags")
                                         else "")


def check_marker(path, line, tag="LEAK"):
    """The scenario's own line number must point at its marker (scenario sanity)."""
    with open(path) as f:
        lines = f.read().splitlines()
    check(0 < line <= len(lines) and lines[line - 1].rstrip().endswith("# " + tag),
          "scenario bug: %s:%s is not the '# %s' line" % (path, line, tag))


def line_bytes(proc, path, line):
    """Bytes and count of the stacks whose innermost frame is path:line."""
    mine = [s for s in proc.get("stacks") or [] if top_is(s, path, line)]
    return sum(s["bytes"] for s in mine), sum(s["count"] for s in mine)


def check_top(proc, path, line, what="leak"):
    stacks = proc.get("stacks") or []
    check(stacks, "no stacks in the report (outstanding %d B)" % proc["outstanding_bytes"])
    check(top_is(stacks[0], path, line),
          "top stack (ranking %s) is not the %s line %s:%d: %s; next: %s" %
          (proc.get("ranking"), what, os.path.basename(path), line, describe(stacks[0]),
           "; ".join(describe(s) for s in stacks[1:3]) or "none"))
    return stacks[0]


# ------------------------------------------------------------ growth_plateau


def test_growth_plateau(name, minor):
    """A cache that filled and stays flat holds more bytes than a slow steady
    leak, yet the leak ranks first by growth; by bytes the cache does."""
    pyname, exe = need_pyenv(minor)
    # Growth: at least 8 full intervals after the plateau, the whole window.
    t = Target(name, exe, "plateau.py")
    path = out_path(name, ".json")
    tool = Tool(name, ["-p", str(t.pid), "-i", "1"], path)
    tool.wait_attached(t.pid)
    t.send()
    check(t.line("PLATEAU"), "scenario never filled its cache: %s" % tail(t.err_path))
    tool.wait_reports(tool.reports() + 9)
    rc = tool.stop()
    t.send("stop")
    done = t.done()
    t.finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    check_marker(done["leak_file"], done["leak_line"], "LEAK")
    check_marker(done["cache_file"], done["cache_line"], "CACHE")
    proc = tool.proc(t.pid)
    check(proc["ranking"] == "growth", "ranking %r after %d intervals, want growth" %
          (proc["ranking"], tool.reports()))
    top = check_top(proc, done["leak_file"], done["leak_line"])
    cache_b, _ = line_bytes(proc, done["cache_file"], done["cache_line"])
    check(within(cache_b, done["cache_bytes"], 2),
          "cache line holds %d B, want %d +-2%%" % (cache_b, done["cache_bytes"]))
    check(cache_b > top["bytes"], "scenario too weak: the cache (%d B) does not hold more than "
          "the leak (%d B)" % (cache_b, top["bytes"]))
    growth = "leak first by growth (%d B, %.0f B/s, fit %.2f) over cache %d B" % (
        top["bytes"], top["growth_bytes_per_s"], top["growth_fit"], cache_b)

    # Bytes: the cache ranks first.
    bname = name + ".sort_bytes"
    t = Target(bname, exe, "plateau.py")
    path = out_path(bname, ".json")
    tool = Tool(bname, ["-p", str(t.pid), "-i", "1", "--sort", "bytes"], path)
    tool.wait_attached(t.pid)
    t.send()
    check(t.line("PLATEAU"), "scenario never filled its cache: %s" % tail(t.err_path))
    tool.wait_reports(tool.reports() + 2)
    rc = tool.stop()
    t.send("stop")
    done = t.done()
    t.finish()
    check(rc == 0, "--sort bytes: tool exit %d: %s" % (rc, tail(tool.err_path)))
    proc = tool.proc(t.pid)
    check(proc["ranking"] == "bytes", "--sort bytes: ranking %r" % proc["ranking"])
    top = check_top(proc, done["cache_file"], done["cache_line"], "cache")
    return "%s: %s; --sort bytes: cache first (%d B)" % (pyname, growth, top["bytes"])


# --------------------------------------------------------------- json_schema


def schema_check(path):
    r = subprocess.run([sys.executable, SCHEMA_CHECK, SCHEMA, path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)
    return r.returncode, r.stdout.strip()


def test_json_schema(name):
    """A real run's JSON (growth ranking, series, types) matches the schema,
    and so does every other JSON this run wrote; a broken copy does not."""
    for f in (SCHEMA_CHECK, SCHEMA):
        check(os.path.isfile(f), "missing %s" % f)
    pyname, exe = need_pyenv(12)
    t = Target(name, exe, "plateau.py")
    path = out_path(name, ".json")
    tool = Tool(name, ["-p", str(t.pid), "-i", "1", "-n", "20"], path)
    tool.wait_attached(t.pid)
    t.send()
    check(t.line("PLATEAU"), "scenario never filled its cache: %s" % tail(t.err_path))
    tool.wait_reports(tool.reports() + 4)
    rc = tool.stop()
    t.send("stop")
    t.done()
    t.finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    proc = tool.proc(t.pid)
    check(proc["ranking"] == "growth" and proc["stacks"] and proc["stacks"][0]["series"] and
          proc["stacks"][0]["types"], "the run exercises too little of the schema: ranking %s, "
          "top %s" % (proc["ranking"], describe(proc["stacks"][0]) if proc["stacks"] else "-"))
    checked = []
    for p in [path] + [r for r in reports if r != path]:
        if p in checked:
            continue
        rc, msg = schema_check(p)
        check(rc == 0, "%s does not match the schema (exit %d): %s" % (p, rc, msg))
        checked.append(p)
    # The checker itself must be able to say no: a count of 0 is below its minimum.
    with open(path) as f:
        d = json.load(f)
    d["processes"][0]["stacks"][0]["count"] = 0
    broken = out_path(name, ".broken.json")
    with open(broken, "w") as f:
        json.dump(d, f)
    rc, msg = schema_check(broken)
    check(rc == 1, "a stack with count 0 passed the schema check (exit %d): %s" % (rc, msg))
    return "%s: %d reports valid (%s), a broken copy rejected" % (
        pyname, len(checked), ", ".join(os.path.basename(p) for p in checked))


# ------------------------------------------------------------------- exports


def frame_name(f):
    return "%s (%s:%d)" % (f["function"], f["file"], f["line"])


def read_folded(path):
    rows = []
    with open(path, errors="replace") as f:
        for no, text in enumerate(f, 1):
            text = text.rstrip("\n")
            m = re.match(r"^(\S.*) (\d+)$", text)
            check(m, "%s:%d is not 'frames bytes': %r" % (path, no, text[:200]))
            rows.append((m.group(1).split(";"), int(m.group(2))))
    return rows


def test_exports(name):
    """--folded, --flamegraph, --speedscope and --json from one run agree;
    the SVG is drawn and zooms in a browser; --force decides overwriting."""
    pyname, exe = need_pyenv(12)
    files = {k: out_path(name, "." + k) for k in ("folded", "svg", "speedscope.json")}
    jpath = out_path(name, ".json")
    args = ["--folded", files["folded"], "--flamegraph", files["svg"],
            "--speedscope", files["speedscope.json"]]
    t = Target(name, exe, "nested_leak.py")
    tool = Tool(name, ["-q", "-p", str(t.pid)] + args, jpath)
    tool.wait_attached(t.pid)
    t.send()
    done = t.done()
    rc = tool.stop()
    t.finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    check_marker(done["file"], done["line"])
    proc = tool.proc(t.pid)
    leak = [s for s in proc["stacks"] if top_is(s, done["file"], done["line"])]
    check(leak, "no stack of the leak line %s:%d in the JSON" % (done["file"], done["line"]))
    leak_frames = [frame_name(f) for f in reversed(leak[0]["frames"])]

    # Folded: root first, the leak's whole Python stack in order, totals agree.
    rows = read_folded(files["folded"])
    check(rows, "empty folded file")
    mine = [r for r in rows if frame_name(leak[0]["frames"][0]) in r[0]]
    check(mine, "no folded line has the frame %r" % frame_name(leak[0]["frames"][0]))
    fr = mine[0][0]
    py = [x for x in fr if not x.startswith("[native]")]
    check(py[-len(leak_frames):] == leak_frames,
          "folded frames of the leak are not root first: %s; JSON innermost first: %s" %
          (";".join(fr), leak_frames[::-1]))
    folded_sum = sum(b for _, b in rows)
    check(within(folded_sum, proc["outstanding_bytes"], 1),
          "folded values sum to %d B, JSON outstanding_bytes %d (+-1%%)" %
          (folded_sum, proc["outstanding_bytes"]))
    leak_folded = sum(b for r, b in rows if frame_name(leak[0]["frames"][0]) in r)
    check(within(leak_folded, done["bytes"], 2),
          "folded lines of the leak frame hold %d B, the scenario leaked %d" %
          (leak_folded, done["bytes"]))

    # Speedscope.
    try:
        with open(files["speedscope.json"]) as f:
            ss = json.load(f)
    except (OSError, ValueError) as e:
        raise Failure("speedscope file does not parse: %s" % e)
    profiles = ss.get("profiles") or []
    check(profiles and all(p.get("unit") == "bytes" for p in profiles),
          "speedscope profiles' units: %r" % [p.get("unit") for p in profiles])
    names = [f.get("name") for f in (ss.get("shared") or {}).get("frames") or []]
    check(frame_name(leak[0]["frames"][0]) in names,
          "speedscope frames lack %r" % frame_name(leak[0]["frames"][0]))
    ss_sum = sum(sum(p.get("weights") or []) for p in profiles)
    check(within(ss_sum, proc["outstanding_bytes"], 1),
          "speedscope weights sum to %d B, JSON outstanding_bytes %d" %
          (ss_sum, proc["outstanding_bytes"]))

    # SVG: well-formed, then a browser.
    try:
        ElementTree.parse(files["svg"])
    except (OSError, ElementTree.ParseError) as e:
        raise Failure("SVG is not well-formed XML: %s" % e)
    r = subprocess.run([sys.executable, SVG_BROWSER, files["svg"], done["function"],
                        os.path.join(OUT, slug(name) + "-shot")], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True, timeout=RUN_TIMEOUT)
    browser = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "(no output)"
    browser = browser.split("; screenshots")[0]
    check(r.returncode in (0, 77), "svg_browser.py exit %d: %s" % (r.returncode, r.stdout[-500:]))
    if r.returncode == 77:
        browser = "browser check skipped: " + browser

    # Existing files: refused without --force (untouched), overwritten with it.
    before = {}
    for p in list(files.values()) + [jpath]:
        with open(p, "rb") as f:
            before[p] = f.read()
    t = Target(name + ".force", exe, "nested_leak.py", {"LEAK_N": "3000"})
    tool = Tool(name + ".noforce", ["-q", "-d", "5", "-p", str(t.pid)] + args, jpath)
    rc = tool.wait(STOP_TIMEOUT)
    err = tool.stderr().strip()
    check(rc == 1, "existing outputs without --force: exit %d, want 1: %s" %
          (rc, tail(tool.err_path)))
    for p, old in before.items():
        with open(p, "rb") as f:
            check(f.read() == old, "%s changed without --force" % os.path.basename(p))
    tool = Tool(name + ".withforce", ["-q", "--force", "-p", str(t.pid)] + args, jpath)
    tool.wait_attached(t.pid)
    t.send()
    t.done()
    rc = tool.stop()
    t.finish()
    check(rc == 0, "with --force: tool exit %d: %s" % (rc, tail(tool.err_path)))
    proc2 = tool.proc(t.pid)
    for p, old in before.items():
        with open(p, "rb") as f:
            check(f.read() != old, "%s not rewritten with --force" % os.path.basename(p))
    rows = read_folded(files["folded"])
    check(within(sum(b for _, b in rows), proc2["outstanding_bytes"], 1),
          "after --force the folded file does not match the new run")
    if r.returncode == 77:
        raise Skip("exports checked (folded sum %d B = JSON %d B, speedscope unit bytes, SVG "
                   "well-formed, --force); %s" % (folded_sum, proc["outstanding_bytes"], browser))
    return ("%s: folded %d lines sum %d B vs JSON %d B, leak frame %d B; speedscope %d B in bytes;"
            " %s; no --force: exit 1 (%s), --force: rewritten" %
            (pyname, len(rows), folded_sum, proc["outstanding_bytes"], leak_folded, ss_sum,
             browser, err.splitlines()[0] if err else "no message"))


# ------------------------------------------------------------- debian_attach


def debian_attach(name, env):
    """sized_leak.py under Debian's python3.11, traced with -p."""
    _, exe = need_debian()
    t = Target(name, exe, "sized_leak.py", env)
    path = out_path(name, ".json")
    tool = Tool(name, ["-q", "--sort", "bytes", "-p", str(t.pid)], path)
    tool.wait_attached(t.pid)
    t.send()
    done = t.done()
    rc = tool.stop()
    t.finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    check_marker(done["file"], done["line"])
    return done, tool.proc(t.pid)


def test_debian_large(name):
    """Objects over 512 bytes go through libc: exact even in attach mode."""
    done, proc = debian_attach(name, {"LEAK_N": "5000", "LEAK_SIZE": "4000"})
    check_top(proc, done["file"], done["line"])
    got, n = line_bytes(proc, done["file"], done["line"])
    check(within(got, done["bytes"], 2),
          "leak line holds %d B in %d, want %d B in %d (+-2%%)" %
          (got, n, done["bytes"], done["count"]))
    return "leak %d B in %d, want %d B in %d, verdict %s" % (
        got, n, done["bytes"], done["count"], proc["coverage"]["verdict"])


def test_debian_small(name):
    """Small objects through the inlined allocator: partial, and says why."""
    done, proc = debian_attach(name, {"LEAK_N": "30000", "LEAK_SIZE": "100"})
    cov = proc["coverage"]
    check(cov["verdict"] == "partial", "verdict %r (%s), want partial" %
          (cov["verdict"], cov["reason"]))
    check(re.search(r"inlined allocator sites", cov["reason"]) and
          re.search(r"\d+(\.\d+)?%", cov["reason"]),
          "reason does not name the inlined allocator sites with a percentage: %r" %
          cov["reason"])
    top = check_top(proc, done["file"], done["line"])
    got, n = line_bytes(proc, done["file"], done["line"])
    check(within(got, done["bytes"], 10),
          "leak line holds %d B in %d, want %d B in %d (+-10%%)" %
          (got, n, done["bytes"], done["count"]))
    return "seen %.3f of the leak (%d B in %d, want %d B in %d), top %d B; reason: %s" % (
        got / float(done["bytes"]), got, n, done["bytes"], done["count"], top["bytes"],
        cov["reason"])


def test_debian_launch(name):
    """Launch mode on the static build: PYTHONMALLOC=malloc, complete, exact."""
    _, exe = need_debian()
    path = out_path(name, ".json")
    # Enough blocks that what start-up leaves allocated (about 14000 blocks on
    # 3.11) is under 5% of the count.
    tool = Tool(name, ["-q", "--sort", "bytes", "--", exe, os.path.join(SCEN, "sized_leak.py")],
                path, env={"PML_LAUNCH": "1", "LEAK_N": "500000", "LEAK_SIZE": "100"})
    rc = tool.wait()
    err = tool.stderr()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    m = re.search(r"^DONE .*$", tool.stdout(), re.M)
    check(m, "scenario printed no DONE line (stdout %s)" % tool.out_path)
    done = parse_done(m.group(0))
    check_marker(done["file"], done["line"])
    check("PYTHONMALLOC=malloc" in err, "stderr does not say PYTHONMALLOC=malloc: %s" %
          tail(tool.err_path))
    started = re.search(r"^pymemleak: started pid (\d+)", err, re.M)
    check(started, "stderr has no 'started pid': %s" % tail(tool.err_path))
    proc = tool.proc(int(started.group(1)))
    cov = proc["coverage"]
    check(cov["verdict"] == "complete", "verdict %r (%s)" % (cov["verdict"], cov["reason"]))
    top = check_top(proc, done["file"], done["line"])
    check(within(top["bytes"], done["bytes"], 5) and within(top["count"], done["count"], 5),
          "top stack %d B in %d, want %d B in %d (+-5%%)" %
          (top["bytes"], top["count"], done["bytes"], done["count"]))
    check(within(proc["outstanding_count"], done["held_count"], 5),
          "outstanding %d allocations, want the leak and its list, %d (+-5%%); allocs %d, "
          "frees %d" % (proc["outstanding_count"], done["held_count"], cov["allocs"],
                        cov["frees"]))
    return ("PYTHONMALLOC=malloc, complete; top %d B in %d, want %d B in %d; outstanding %d "
            "allocations (allocs %d - frees %d), want %d" %
            (top["bytes"], top["count"], done["bytes"], done["count"],
             proc["outstanding_count"], cov["allocs"], cov["frees"], done["held_count"]))


# ------------------------------------------------------------------ all_host


def test_all_host(name):
    """--all --match: three interpreters, one exits, one starts later."""
    a_py = need_pyenv(12)
    b_py = pyenv(8) or pyenv(10)
    if not b_py:
        raise Skip("no pyenv CPython 3.8 or 3.10 for process B")
    need_debian()
    # The marker makes --match pick ours, whatever else runs on the host.
    token = "pmlmore-" + secrets.token_hex(6)
    tag = ["--tag", token]
    procs = {}
    procs["A"] = Target(name, a_py[1], "all_alpha.py", args=tag)
    procs["B"] = Target(name, b_py[1], "all_bravo.py", args=tag)
    path = out_path(name, ".json")
    tool = Tool(name, ["--all", "--match", token, "-i", "1"], path)
    m = tool.wait_stderr(r"^pymemleak: tracing (\d+) Python processes", "traces the host")
    check(m.group(1) == "2", "tool found %s Python processes matching %s, want 2 (A and B): %s"
          % (m.group(1), token, tail(tool.err_path)))
    procs["A"].send()
    procs["B"].send()
    procs["C"] = Target(name, DEBIAN_PY, "all_charlie.py", args=tag)
    tool.wait_attached(procs["C"].pid)
    procs["C"].send()
    done = {"B": procs["B"].done()}
    procs["B"].finish()
    # A few intervals of A and C after B is gone.
    tool.wait_reports(tool.reports() + 6)
    rc = tool.stop()
    for k in ("A", "C"):
        procs[k].send("stop")
        done[k] = procs[k].done()
        procs[k].finish()
    check(rc == 0, "tool exit %d: %s" % (rc, tail(tool.err_path)))
    for k, d in done.items():
        check_marker(d["file"], d["line"])
    pids = {k: t.pid for k, t in procs.items()}
    scripts = {k: real(t.script) for k, t in procs.items()}
    text = tool.stdout()
    by_pid = {p["pid"]: p for p in tool.doc()["processes"]}
    # Every check runs; the FAIL lists all that went wrong.
    problems, detail = [], []
    for k, pid in sorted(pids.items()):
        if not re.search(r"\bpid %d\b" % pid, text):
            problems.append("the text output never mentions %s (pid %d)" % (k, pid))
        if pid not in by_pid:
            said = [l.strip() for l in text.splitlines() if re.search(r"\bpid %d\b" % pid, l)]
            problems.append("%s (pid %d) is not in the JSON (pids there: %s); the text's last "
                            "line on it: %r" % (k, pid, sorted(by_pid), said[-1] if said else None))
    b = by_pid.get(pids["B"])
    if b:
        if b["exited"] is not True:
            problems.append("B (pid %d) exited but JSON exited is %r" % (pids["B"], b["exited"]))
        if not (b["outstanding_bytes"] > 0 or b["stacks"]):
            problems.append("B (pid %d) has no last figures: %d B, no stacks" %
                            (pids["B"], b["outstanding_bytes"]))
        detail.append("B pid %d (%s) exited, last %d B (leaked %d) in %d stacks" % (
            pids["B"], b["python"], b["outstanding_bytes"], done["B"]["bytes"],
            len(b["stacks"])))
    for k in ("A", "C"):
        p = by_pid.get(pids[k])
        if not p:
            continue
        if p["exited"] is not False:
            problems.append("%s (pid %d) is alive but exited is %r" % (k, pids[k], p["exited"]))
        try:
            top = check_top(p, done[k]["file"], done[k]["line"])
            detail.append("%s pid %d (%s, %s) top %s:%d %d B" % (
                k, pids[k], p["python"], p["coverage"]["verdict"],
                os.path.basename(done[k]["file"]), done[k]["line"], top["bytes"]))
        except Failure as e:
            problems.append("%s (pid %d): %s" % (k, pids[k], e))
    for k, pid in sorted(pids.items()):
        others = {s for o, s in scripts.items() if o != k}
        for st in (by_pid.get(pid) or {}).get("stacks") or []:
            bad = [f for f in st.get("frames") or [] if real(f["file"]) in others]
            if bad:
                problems.append("%s (pid %d) has a stack with another process's frame %s:%d: %s"
                                % (k, pid, bad[0]["file"], bad[0]["line"], describe(st)))
                break
    check(not problems, "; ".join(problems))
    return "; ".join(detail)


# ------------------------------------------------------------------------ main


def main():
    selection.extend(sys.argv[1:])
    if os.geteuid() != 0:
        say("SKIP", "suite_more", "needs root")
        return finish()
    if not os.access(TOOL, os.X_OK):
        say("FAIL", "suite_more", "no %s (run make)" % TOOL)
        return finish()
    for minor in (12, 8):
        py = pyenv(minor)
        tname = "growth_plateau[%s]" % (py[0] if py else "pyenv-3.%d" % minor)
        run_test(tname, test_growth_plateau, minor)
    run_test("exports[pyenv-3.12]", test_exports)
    run_test("debian_attach.large", test_debian_large)
    run_test("debian_attach.small", test_debian_small)
    run_test("debian_attach.launch", test_debian_launch)
    run_test("all_host", test_all_host)
    # Last: it also checks every JSON the tests above wrote.
    run_test("json_schema", test_json_schema)
    return finish()


def finish():
    if results["failed"] or os.environ.get("PML_IT_KEEP"):
        print("(tool logs and outputs of this run: %s)" % OUT)
    else:
        shutil.rmtree(OUT, ignore_errors=True)
    print("suite_more: %d passed, %d failed, %d skipped" % (results["passed"], results["failed"],
                                                           results["skipped"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
