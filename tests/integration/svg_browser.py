#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Render a pymemleak SVG flamegraph in headless Chromium and drive it.

Usage: svg_browser.py SVG FRAME_SUBSTRING OUT_PREFIX

Starts chromedriver on a free localhost port and speaks the W3C WebDriver
HTTP protocol to it with the standard library only. Opens the SVG, finds
the first frame rect whose data-name contains FRAME_SUBSTRING, then checks:
  - the frame is there and drawn (non-zero size), screenshot OUT_PREFIX-before.png
  - hovering it puts its name on the details line
  - clicking it zooms: the rect spans the full width, frames outside its
    subtree are hidden, "Reset zoom" is enabled; screenshot OUT_PREFIX-zoomed.png
  - Search (answering the prompt with FRAME_SUBSTRING) highlights the
    frame and reports a matched share; screenshot OUT_PREFIX-search.png
  - "Reset zoom" puts the frame back where it was.
Prints one line, PASS, FAIL or SKIP with the detail; exits 0, 1 or 77 (SKIP:
no chromium or chromedriver, which tools/deps.sh installs).
Timeouts only turn a hang into a FAIL; no check depends on timing.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"
START_TIMEOUT = 30
HTTP_TIMEOUT = 60
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Failure(Exception):
    pass


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebDriver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.session = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT) as resp:
                reply = json.load(resp)
        except urllib.error.HTTPError as e:
            try:
                err = json.load(e).get("value", {})
            except ValueError:
                err = {}
            raise Failure("%s %s: %s: %s" % (method, path, err.get("error", e.code),
                                             err.get("message", "").splitlines()[:1]))
        return reply.get("value")

    def s(self, method, path, body=None):
        return self.call(method, "/session/%s%s" % (self.session, path), body)

    def script(self, src, *args):
        return self.s("POST", "/execute/sync", {"script": src, "args": list(args)})

    def screenshot(self, path):
        png = base64.b64decode(self.s("GET", "/screenshot"))
        if not png.startswith(b"\x89PNG"):
            raise Failure("screenshot is not a PNG")
        with open(path, "wb") as f:
            f.write(png)


def wait_ready(wd, proc):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure("chromedriver exited with %d" % proc.returncode)
        try:
            if wd.call("GET", "/status").get("ready"):
                return
        except (OSError, Failure):
            pass
        time.sleep(0.1)
    raise Failure("chromedriver not ready after %d s" % START_TIMEOUT)


# State of the frame and of the page, read in one round trip.
PROBE = """
var r = arguments[0], svg = document.documentElement;
var hidden = 0, shown = 0;
document.querySelectorAll('rect[data-name]').forEach(function (o) {
    if (o.parentNode.style.display === 'none') hidden++; else shown++;
});
var b = r.getBoundingClientRect();
return {width: Number(r.getAttribute('width')), x: Number(r.getAttribute('x')),
        full: Number(svg.getAttribute('data-w')), x0: Number(svg.getAttribute('data-x0')),
        px: b.width, hidden: hidden, shown: shown,
        hl: r.classList.contains('hl'),
        resetOff: document.getElementById('reset').classList.contains('off'),
        details: document.getElementById('details').textContent,
        matched: document.getElementById('matched').textContent};
"""

FIND = """
var want = arguments[0];
var all = document.querySelectorAll('rect[data-name]');
for (var i = 0; i < all.length; i++)
    if (all[i].getAttribute('data-name').indexOf(want) >= 0) return all[i];
return null;
"""


def check(cond, what):
    if not cond:
        raise Failure(what)


def drive(wd, svg, sub, prefix):
    wd.s("POST", "/window/rect", {"width": 1280, "height": 1000})
    wd.s("POST", "/url", {"url": "file://" + os.path.abspath(svg)})
    root = wd.script("return document.documentElement.localName;")
    check(root == "svg", "document root is %r, not svg (parse error?)" % root)
    el = wd.script(FIND, sub)
    check(el and ELEMENT in el, "no frame rect whose name contains %r" % sub)
    name = wd.s("GET", "/element/%s/attribute/data-name" % el[ELEMENT])
    before = wd.script(PROBE, el)
    check(before["px"] > 0 and before["width"] > 0, "frame %r not drawn: %r" % (name, before))
    check(before["resetOff"], "Reset zoom enabled before any zoom")
    wd.screenshot(prefix + "-before.png")

    wd.s("POST", "/actions", {"actions": [{
        "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
        "actions": [{"type": "pointerMove", "duration": 0, "origin": el, "x": 0, "y": 0}]}]})
    hover = wd.script(PROBE, el)
    check(hover["details"].startswith(name + " | "),
          "hover details line is %r" % hover["details"])
    wd.s("DELETE", "/actions")

    wd.s("POST", "/element/%s/click" % el[ELEMENT], {})
    zoomed = wd.script(PROBE, el)
    check(abs(zoomed["width"] - zoomed["full"]) < 0.5 and abs(zoomed["x"] - zoomed["x0"]) < 0.5,
          "after the click the frame is at x=%.2f width %.2f, not the full %.2f"
          % (zoomed["x"], zoomed["width"], zoomed["full"]))
    check(zoomed["px"] > before["px"] or before["width"] >= before["full"] - 0.5,
          "frame did not grow on screen: %.1f -> %.1f px" % (before["px"], zoomed["px"]))
    check(not zoomed["resetOff"], "Reset zoom still disabled after zooming")
    wd.screenshot(prefix + "-zoomed.png")

    search = wd.script("return document.getElementById('search');")
    wd.s("POST", "/element/%s/click" % search[ELEMENT], {})
    wd.s("POST", "/alert/text", {"text": sub})
    wd.s("POST", "/alert/accept", {})
    found = wd.script(PROBE, el)
    check(found["hl"], "search for %r did not highlight the frame" % sub)
    check(found["matched"].startswith("Matched: "), "matched line is %r" % found["matched"])
    wd.screenshot(prefix + "-search.png")

    reset = wd.script("return document.getElementById('reset');")
    wd.s("POST", "/element/%s/click" % reset[ELEMENT], {})
    back = wd.script(PROBE, el)
    check(abs(back["width"] - before["width"]) < 0.01 and back["hidden"] == 0,
          "reset left width %.2f (was %.2f), %d hidden" % (back["width"], before["width"],
                                                           back["hidden"]))
    check(back["resetOff"], "Reset zoom still enabled after reset")
    return "%r zoomed from %.1f to %.1f px, %d of %d frames hidden, %s" % (
        name, before["px"], zoomed["px"], zoomed["hidden"], zoomed["hidden"] + zoomed["shown"],
        found["matched"])


def main(argv):
    if len(argv) != 4:
        sys.stderr.write("usage: svg_browser.py SVG FRAME_SUBSTRING OUT_PREFIX\n")
        return 2
    svg, sub, prefix = argv[1:]
    driver = shutil.which("chromedriver")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not driver or not browser:
        print("SKIP svg_browser: chromium or chromedriver missing (apt-get install chromium "
              "chromium-driver)")
        return 77
    if not os.path.isfile(svg):
        print("FAIL svg_browser: no file %s" % svg)
        return 1

    profile = tempfile.mkdtemp(prefix="pymemleak-chromium-")
    port = free_port()
    log = open(os.path.join(profile, "chromedriver.log"), "w")
    proc = subprocess.Popen([driver, "--port=%d" % port], stdout=log, stderr=subprocess.STDOUT)
    wd = WebDriver(port)
    try:
        wait_ready(wd, proc)
        caps = {"browserName": "chrome", "unhandledPromptBehavior": "ignore",
                "goog:chromeOptions": {"binary": browser,
                                       "args": CHROMIUM_ARGS + ["--user-data-dir=" + profile]}}
        reply = wd.call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})
        wd.session = reply["sessionId"]
        detail = drive(wd, svg, sub, prefix)
        print("PASS svg_browser: %s; screenshots %s-{before,zoomed,search}.png" % (detail, prefix))
        return 0
    except (Failure, OSError, ValueError, KeyError, TypeError) as e:
        print("FAIL svg_browser: %s" % e)
        return 1
    finally:
        if wd.session:
            try:
                wd.call("DELETE", "/session/" + wd.session)
            except (Failure, OSError):
                pass
        proc.terminate()
        try:
            proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
