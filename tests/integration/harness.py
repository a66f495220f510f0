# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Integration tests: real Python processes with known leaks, the real tool.

Run as root by tests/integration/run.sh. Every test prints PASS, FAIL or
SKIP with a reason; the last line counts them.
"""
import glob
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(ROOT, "build", "pymemleak")
SCEN = os.path.join(ROOT, "tests", "integration", "scenarios")
OUT = tempfile.mkdtemp(prefix="pymemleak-it-")

results = {"passed": 0, "failed": 0, "skipped": 0}


def say(kind, name, why=""):
    key = {"PASS": "passed", "FAIL": "failed", "SKIP": "skipped"}[kind]
    results[key] += 1
    print("%s %s%s" % (kind, name, ": " + why if why else ""), flush=True)


def pyenv_root():
    for cand in (os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"):
        if cand and os.path.isdir(os.path.join(cand, "versions")):
            return cand
    return None


def interpreters():
    """(name, path, kind) for every CPython 3.8-3.13 on this machine."""
    found = []
    root = pyenv_root()
    if root:
        for d in sorted(glob.glob(os.path.join(root, "versions", "3.*"))):
            m = re.match(r"3\.(\d+)\.\d+$", os.path.basename(d))
            exe = os.path.join(d, "bin", "python3")
            if m and 8 <= int(m.group(1)) <= 13 and os.access(exe, os.X_OK):
                found.append(("pyenv-" + os.path.basename(d), exe, "shared"))
    if os.access("/usr/bin/python3.11", os.X_OK):
        found.append(("debian-3.11", "/usr/bin/python3.11", "static"))
    return found


def read_line(proc, prefix, timeout):
    """Next line of proc.stdout starting with prefix, or None."""
    end = time.time() + timeout
    while time.time() < end:
        r, _, _ = select.select([proc.stdout], [], [], max(0.0, end - time.time()))
        if not r:
            break
        line = proc.stdout.readline()
        if not line:
            return None
        if line.startswith(prefix):
            return line.split()
    return None


def wait_stderr(proc, needle, timeout, log):
    """Wait until proc's stderr shows needle; collect it in log."""
    end = time.time() + timeout
    buf = ""
    while time.time() < end:
        r, _, _ = select.select([proc.stderr], [], [], 0.2)
        if r:
            chunk = os.read(proc.stderr.fileno(), 65536).decode(errors="replace")
            if not chunk:
                break
            buf += chunk
            if needle in buf:
                log.append(buf)
                return True
        if proc.poll() is not None:
            break
    log.append(buf)
    return False


class Target:
    """A scenario script run by one interpreter, following the protocol."""

    def __init__(self, exe, script, env=None):
        e = dict(os.environ)
        e.update(env or {})
        e.pop("PYTHONMALLOC", None) if not (env and "PYTHONMALLOC" in env) else None
        self.p = subprocess.Popen([exe, os.path.join(SCEN, script)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, universal_newlines=True, env=e)
        ready = read_line(self.p, "READY", 30)
        self.pid = int(ready[1]) if ready else None

    def go(self):
        self.p.stdin.write("go\n")
        self.p.stdin.flush()
        done = read_line(self.p, "DONE", 120)
        return [int(x) for x in done[1:]] if done else None

    def finish(self):
        try:
            self.p.stdin.write("exit\n")
            self.p.stdin.flush()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def run_tool(args, name):
    json_path = os.path.join(OUT, name + ".json")
    if os.path.exists(json_path):
        os.unlink(json_path)
    cmd = [TOOL, "-q", "--json", json_path] + args
    tool = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return tool, json_path


def stop_tool(tool):
    tool.send_signal(signal.SIGINT)
    try:
        out, err = tool.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        tool.kill()
        out, err = tool.communicate()
    return tool.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def within(got, want, pct):
    return want > 0 and abs(got - want) <= want * pct / 100.0


def test_attach_basic(name, exe, kind):
    """-p PID on a known leak amid churn: totals within 2% (shared builds),
    'partial' on Debian's static LTO build."""
    tname = "attach_basic[%s]" % name
    t = Target(exe, "leak_basic.py")
    if not t.pid:
        t.finish()
        return say("FAIL", tname, "scenario did not start")
    tool, jpath = run_tool(["-p", str(t.pid)], tname)
    log = []
    if not wait_stderr(tool, "tracing pid", 30, log):
        t.finish()
        rc, out, err = stop_tool(tool)
        return say("FAIL", tname, "tool did not attach: %s" % ("".join(log) + err).strip())
    expected = t.go()
    time.sleep(0.5)
    rc, out, err = stop_tool(tool)
    t.finish()
    if not expected:
        return say("FAIL", tname, "scenario did not finish")
    if rc != 0:
        return say("FAIL", tname, "exit %d: %s" % (rc, err.strip()))
    try:
        doc = json.load(open(jpath))
    except (OSError, ValueError) as e:
        return say("FAIL", tname, "bad JSON: %s" % e)
    proc = doc["processes"][0]
    got_b, got_n = proc["outstanding_bytes"], proc["outstanding_count"]
    want_b, want_n = expected
    verdict = proc["coverage"]["verdict"]
    detail = "bytes %d want %d, count %d want %d, verdict %s" % (got_b, want_b, got_n, want_n,
                                                                  verdict)
    if kind == "static":
        if verdict != "partial":
            return say("FAIL", tname, "static LTO build must be partial: " + detail)
        return say("PASS", tname, detail)
    if verdict != "complete":
        return say("FAIL", tname, "verdict not complete: %s (%s)" % (verdict,
                                                                     proc["coverage"]["reason"]))
    if not within(got_b, want_b, 2) or not within(got_n, want_n, 2):
        return say("FAIL", tname, detail)
    say("PASS", tname, detail)


def main():
    if os.geteuid() != 0:
        say("SKIP", "integration", "needs root (run: sudo make test)")
        return finish()
    if not os.access(TOOL, os.X_OK):
        say("FAIL", "integration", "no %s (run make)" % TOOL)
        return finish()
    interps = interpreters()
    if not interps:
        say("SKIP", "integration", "no CPython 3.8-3.13 found")
    only = sys.argv[1:]
    for name, exe, kind in interps:
        if only and not any(o in name for o in only):
            continue
        test_attach_basic(name, exe, kind)
    return finish()


def finish():
    print("integration: %d passed, %d failed, %d skipped" % (results["passed"], results["failed"],
                                                             results["skipped"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
