#!/usr/bin/env python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Generate the line-table fixtures of tests/unit/test_linetable.c.

Run by a CPython 3.8-3.13, it compiles tests/unit/fixtures/corpus.py, walks
every code object (co_consts, iteratively) and writes
tests/unit/fixtures/linetable_3X.h: per code object its name,
co_firstlineno, the raw line table (co_lnotab up to 3.9, co_linetable from
3.10), the size of co_code and the line of every code unit, as the running
interpreter itself computes it. Several of its own views must agree before
anything is written:

  3.8/3.9  dis.findlinestarts() expanded over dis.get_instructions()
  3.10     co_lines()
  3.11+    co_positions() (one entry per code unit, CACHE included),
           co_lines() and dis.get_instructions() positions
  all      PyCode_Addr2Line() called through ctypes

3.11+ fixtures also hold the corpus compiled under -X no_debug_ranges (names
prefixed "nocol:"), the only way to get the no-column entries (code 13).

    python3.X tools/gen_linetable_fixtures.py          # this interpreter
    python3 tools/gen_linetable_fixtures.py --all      # every pyenv 3.8-3.13, then
                                                       # Debian's python3.11
"""

import argparse
import ctypes
import dis
import glob
import hashlib
import json
import os
import subprocess
import sys
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "unit", "fixtures")
CORPUS = os.path.join(FIXTURES, "corpus.py")
SCRIPT = "tools/gen_linetable_fixtures.py"
MINORS = (8, 9, 10, 11, 12, 13)
SYSTEM_PYTHON = "/usr/bin/python3.11"
FORMATS = {8: "PML_LT_LNOTAB", 9: "PML_LT_LNOTAB", 10: "PML_LT_310"}
# Per code object cap on (offset, line) pairs; no corpus function reaches it
# today, it only keeps a future corpus from blowing the fixture size.
MAX_PAIRS = 6000


class Mismatch(Exception):
    pass


def code_objects(top):
    """Yield (dotted path without "<module>.", code) depth first, parents first."""
    seen = {}
    stack = [(top, "")]
    while stack:
        co, parent = stack.pop()
        name = parent + "." + co.co_name if parent else co.co_name
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            name += "#%d" % seen[name]
        yield name, co
        kids = [c for c in co.co_consts if isinstance(c, types.CodeType)]
        for kid in reversed(kids):
            stack.append((kid, "" if co is top else name))


def addr2line():
    fn = getattr(ctypes.pythonapi, "PyCode_Addr2Line", None)
    if fn is None:
        return None
    fn.argtypes = [ctypes.py_object, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def lines_lnotab(co):
    """3.8/3.9: the line in effect at every instruction offset."""
    starts = list(dis.findlinestarts(co))
    offsets = [ins.offset for ins in dis.get_instructions(co)]
    if offsets != list(range(0, len(co.co_code), 2)):
        raise Mismatch("%s: instructions do not cover every code unit" % co.co_name)
    lines = []
    k = -1
    for off in offsets:
        while k + 1 < len(starts) and starts[k + 1][0] <= off:
            k += 1
        if k < 0:
            raise Mismatch("%s: offset %d before the first line start" % (co.co_name, off))
        lines.append(starts[k][1])
    return lines


def lines_co_lines(co):
    """3.10+: co_lines() expanded to every code unit, None as 0."""
    units = len(co.co_code) // 2
    lines = [None] * units
    end = 0
    for start, stop, line in co.co_lines():
        if start != end or stop < start or stop > 2 * units:
            raise Mismatch("%s: co_lines range %d-%d after %d" % (co.co_name, start, stop, end))
        for off in range(start, stop, 2):
            lines[off // 2] = line or 0
        end = stop
    if end != 2 * units:
        raise Mismatch("%s: co_lines stops at %d of %d" % (co.co_name, end, 2 * units))
    return lines


def lines_positions(co):
    """3.11+: co_positions() has one entry per code unit, CACHE included."""
    pos = list(co.co_positions())
    if len(pos) != len(co.co_code) // 2:
        raise Mismatch("%s: %d positions for %d units"
                       % (co.co_name, len(pos), len(co.co_code) // 2))
    lines = [p[0] or 0 for p in pos]
    for ins in dis.get_instructions(co):
        want = ins.positions.lineno or 0
        if lines[ins.offset // 2] != want:
            raise Mismatch("%s: dis says line %d at %d, co_positions %d"
                           % (co.co_name, want, ins.offset, lines[ins.offset // 2]))
    return lines


def expected_lines(co, a2l):
    minor = sys.version_info[1]
    if minor <= 9:
        lines = lines_lnotab(co)
    elif minor == 10:
        lines = lines_co_lines(co)
    else:
        lines = lines_positions(co)
        other = lines_co_lines(co)
        if other != lines:
            bad = next(i for i in range(len(lines)) if lines[i] != other[i])
            raise Mismatch("%s: co_lines %d vs co_positions %d at offset %d"
                           % (co.co_name, other[bad], lines[bad], 2 * bad))
    if a2l is not None:
        for i, line in enumerate(lines):
            got = a2l(co, 2 * i)
            if (0 if got < 0 else got) != line:
                raise Mismatch("%s: PyCode_Addr2Line %d vs %d at offset %d"
                               % (co.co_name, got, line, 2 * i))
    return lines


def collect(prefix=""):
    with open(CORPUS) as f:
        source = f.read()
    top = compile(source, "corpus.py", "exec", dont_inherit=True)
    a2l = addr2line()
    records = []
    for name, co in code_objects(top):
        table = co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable
        lines = expected_lines(co, a2l)
        records.append({
            "name": prefix + name,
            "firstlineno": co.co_firstlineno,
            "table": list(table),
            "code_len": len(co.co_code),
            "lines": lines,
        })
    return records, a2l is not None


def table_stats(records, minor):
    """What the tables exercise, for the header comment and the log."""
    st = {"codes": len(records), "pairs": 0, "max_code_len": 0, "max_span": 0,
          "max_back": 0, "max_fwd": 0}
    kinds = {}
    for r in records:
        st["pairs"] += min(len(r["lines"]), MAX_PAIRS)
        st["max_code_len"] = max(st["max_code_len"], r["code_len"])
        # The module spans the whole corpus anyway: measure functions.
        real = [x for x in r["lines"] if x > 0 and not r["name"].endswith("<module>")]
        if real:
            st["max_span"] = max(st["max_span"], max(real) - min(real))
        prev = None
        for x in real:
            if prev is not None:
                st["max_back"] = max(st["max_back"], prev - x)
                st["max_fwd"] = max(st["max_fwd"], x - prev)
            prev = x
        t = r["table"]
        if minor <= 10:
            for i in range(0, len(t) - 1, 2):
                d = t[i + 1] - 256 if t[i + 1] >= 128 else t[i + 1]
                key = "no-line" if minor == 10 and d == -128 else \
                      "neg" if d < 0 else "zero-addr" if t[i] == 0 else "plain"
                kinds[key] = kinds.get(key, 0) + 1
        else:
            for b in t:
                if b & 0x80:
                    code = (b >> 3) & 15
                    key = "short" if code < 10 else "oneline" if code < 13 else \
                          {13: "nocol", 14: "long", 15: "noloc"}[code]
                    kinds[key] = kinds.get(key, 0) + 1
    st["entries"] = ", ".join("%s %d" % kv for kv in sorted(kinds.items()))
    return st


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrap(items, indent="\t", width=100):
    out, cur = [], indent
    for it in items:
        piece = it + ","
        if cur != indent and len(cur.expandtabs(8)) + 1 + len(piece) > width:
            out.append(cur)
            cur = indent
        cur += piece if cur == indent else " " + piece
    if cur != indent:
        out.append(cur)
    return out


def render(records, minor, interp, a2l_checked):
    tag = "3%d" % minor
    fmt = FORMATS.get(minor, "PML_LT_311")
    with open(CORPUS, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    st = table_stats(records, minor)
    version = "%d.%d.%d" % sys.version_info[:3]
    head = [
        "/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */",
        "/*",
        " * Generated by %s from tests/unit/fixtures/corpus.py" % SCRIPT,
        " * (sha256 %s...) with %s," % (digest, interp),
        " * CPython %s. Do not edit: regenerate." % sys.version.split()[0],
        " * Expected lines from %s%s." % (
            "dis.findlinestarts" if minor <= 9 else
            "co_lines()" if minor == 10 else "co_positions() = co_lines() = dis",
            ", checked against PyCode_Addr2Line()" if a2l_checked else ""),
        " * %d code objects, %d (offset, line) pairs, largest co_code %d bytes;" % (
            st["codes"], st["pairs"], st["max_code_len"]),
        " * widest function spans %d lines, largest step back %d, forward %d;" % (
            st["max_span"], st["max_back"], st["max_fwd"]),
        " * table entries: %s." % st["entries"],
        " * Types come from the including driver (tests/unit/test_linetable.c).",
        " */",
        "#ifndef PML_FIXTURE_LINETABLE_%s_H" % tag,
        "#define PML_FIXTURE_LINETABLE_%s_H" % tag,
        "",
    ]
    body = []
    rows = []
    for n, r in enumerate(records):
        tname = "NULL"
        if r["table"]:
            tname = "lt%s_t%d" % (tag, n)
            body.append("static const uint8_t %s[] = {" % tname)
            body += wrap(["0x%02x" % b for b in r["table"]])
            body.append("};")
        pairs = ["{%d, %d}" % (2 * i, x) for i, x in enumerate(r["lines"][:MAX_PAIRS])]
        body.append("static const struct lt_pair lt%s_p%d[] = {" % (tag, n))
        body += wrap(pairs)
        body.append("};")
        row = "\t{%s, %d, %s, %d, %d, lt%s_p%d, %d}," % (
            c_string(r["name"]), r["firstlineno"], tname, len(r["table"]), r["code_len"],
            tag, n, len(pairs))
        if len(row.expandtabs(8)) > 100:
            row = row.replace(", ", ",\n\t\t", 1)
        rows.append(row)
    body.append("")
    body.append("static const struct lt_code lt%s_codes[] = {" % tag)
    body += rows
    body.append("};")
    body.append("")
    body.append("static const struct lt_fixture lt%s_fixture = {" % tag)
    body.append("\t%s, %s, lt%s_codes, %d," % (c_string(version), fmt, tag, len(records)))
    body.append("};")
    body.append("")
    body.append("#endif")
    return head, body, st


def generate(out):
    minor = sys.version_info[1]
    if sys.version_info[0] != 3 or minor not in MINORS:
        sys.exit("gen_linetable_fixtures: CPython 3.8-3.13 required, this is %s" % sys.version)
    try:
        records, checked = collect()
        if minor >= 11:
            child = subprocess.run([sys.executable, "-X", "no_debug_ranges", __file__,
                                    "--records"], check=True, stdout=subprocess.PIPE)
            nocol = json.loads(child.stdout.decode())
            if not nocol["checked"]:
                checked = False
            records += nocol["records"]
    except Mismatch as e:
        sys.exit("gen_linetable_fixtures: the interpreter disagrees with itself: %s" % e)
    head, body, st = render(records, minor, sys.executable, checked)
    text = "\n".join(head + body) + "\n"
    if out is None:
        out = os.path.join(FIXTURES, "linetable_3%d.h" % minor)
    with open(out, "w") as f:
        f.write(text)
    print("%s: %s: %d codes, %d pairs, %d bytes; span %d, back %d; %s"
          % (sys.executable, os.path.relpath(out, ROOT), st["codes"], st["pairs"], len(text),
             st["max_span"], st["max_back"], st["entries"]))


def body_of(path):
    """The tables of a header, without what names the interpreter (comment, version)."""
    with open(path) as f:
        text = f.read()
    return text[text.index("#ifndef"):text.index("static const struct lt_fixture")]


def generate_all():
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for minor in MINORS:
        found = sorted(glob.glob(os.path.join(root, "versions", "3.%d.*" % minor)),
                       key=lambda p: [int(x) for x in os.path.basename(p).split(".")
                                      if x.isdigit()])
        if not found:
            sys.exit("gen_linetable_fixtures: no pyenv CPython 3.%d under %s" % (minor, root))
        subprocess.run([os.path.join(found[-1], "bin", "python3"), __file__], check=True)
    if not os.path.exists(SYSTEM_PYTHON):
        print("%s: not installed, skipped" % SYSTEM_PYTHON)
        return
    mine = os.path.join(FIXTURES, "linetable_311.h")
    tmp = os.path.join(FIXTURES, ".linetable_311_system.h")
    subprocess.run([SYSTEM_PYTHON, __file__, "--out", tmp], check=True)
    if body_of(tmp) == body_of(mine):
        os.unlink(tmp)
        print("%s: tables identical to linetable_311.h, no separate fixture" % SYSTEM_PYTHON)
    else:
        os.rename(tmp, os.path.join(FIXTURES, "linetable_311_system.h"))
        print("%s: tables differ: wrote linetable_311_system.h (include it in the driver)"
              % SYSTEM_PYTHON)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--all", action="store_true",
                    help="run every pyenv CPython 3.8-3.13, then " + SYSTEM_PYTHON)
    ap.add_argument("--out", help="output header (default: fixtures/linetable_3X.h)")
    ap.add_argument("--records", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.records:
        # Child run under -X no_debug_ranges: hand the records back as JSON.
        try:
            records, checked = collect("nocol:")
        except Mismatch as e:
            sys.exit("gen_linetable_fixtures: the interpreter disagrees with itself: %s" % e)
        json.dump({"records": records, "checked": checked}, sys.stdout)
    elif args.all:
        generate_all()
    else:
        generate(args.out)


if __name__ == "__main__":
    main()
