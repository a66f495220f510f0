#!/bin/sh
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# Check the committed CPython layout table (user/pyoffsets.c) against every
# installed pyenv CPython:
#  1. headers: compile tools/gen_pyoffsets.c against the version's internal
#     headers and diff its row with tools/pyoffsets_dump's;
#  2. live: walk the running interpreter's own thread state, frames, code,
#     str, bytes and type objects with the committed row (ctypes), comparing
#     with what Python itself reports.
# A version without internal headers or outside the table is a visible SKIP.
# Exit status: 0 all checked versions pass, 1 any mismatch or build failure.
set -u

root=$(cd "$(dirname "$0")/../.." && pwd)
pyenv=${PYENV_ROOT:-$HOME/.pyenv}
cc=${CC:-cc}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

if ! $cc -std=gnu11 -Wall -Wextra -Werror -I"$root/user" -I"$root/bpf" \
	"$root/tools/pyoffsets_dump.c" "$root/user/pyoffsets.c" -o "$tmp/dump"; then
	echo "FAIL check_pyoffsets: cannot build tools/pyoffsets_dump"
	exit 1
fi

# Reads the row printed by pyoffsets_dump (argv[1]) and walks this process.
cat >"$tmp/walk.py" <<'EOF'
import ctypes, re, sys, threading

row = open(sys.argv[1]).read()

def field(name):
    v = re.search(r"\." + name + r" = ([^,\n]+),", row).group(1)
    return None if v == "PML_NO_FIELD" else int(v, 0)

def chain(name):
    c = re.search(r"\." + name + r" = \{([^}]*)\}", row).group(1)
    return [int(x) for x in c.split(",")][: field(name + "_len")]

def u64(a):
    return ctypes.c_uint64.from_address(a).value

def u32(a):
    return ctypes.c_uint32.from_address(a).value

try:
    runtime = ctypes.addressof(ctypes.c_char.in_dll(ctypes.pythonapi, "_PyRuntime"))
except (ValueError, AttributeError):
    print("no _PyRuntime symbol reachable through ctypes")
    sys.exit(77)

def ascii_str(a):
    st = u32(a + field("unicode_state"))
    if not (st & field("unicode_compact_mask") and st & field("unicode_ascii_mask")):
        raise AssertionError("str at %#x not compact ascii: state %#x" % (a, st))
    n = u64(a + field("unicode_length"))
    return ctypes.string_at(a + field("unicode_ascii_size"), n).decode()

def check(cond, what):
    if not cond:
        raise AssertionError(what)

def walk():
    ts = runtime
    for off in chain("tstate_chain"):
        ts = u64(ts + off)
    check(ts != 0, "no current thread state")
    check(u64(ts + field("tstate_thread_id")) == threading.get_ident(), "thread_id")
    f = ts
    for off in chain("frame_chain"):
        f = u64(f + off)
    codes = []
    owner, skip = field("frame_owner"), field("frame_owner_skip")
    while f and len(codes) < 256:
        if owner is None or ctypes.c_uint8.from_address(f + owner).value != skip:
            codes.append(u64(f + field("frame_code")))
        f = u64(f + field("frame_back"))
    want, g = [], sys._getframe()
    while g:
        want.append(id(g.f_code))
        g = g.f_back
    # codes[0] is u64's own frame: it was the innermost one when it read.
    check(codes[1:] == want, "frame walk %r != %r" % (codes, want))
    return sys._getframe().f_code

def check_code(co):
    a = id(co)
    check(ascii_str(u64(a + field("code_name"))) == co.co_name, "co_name")
    check(ascii_str(u64(a + field("code_filename"))) == co.co_filename, "co_filename")
    if field("code_qualname") is not None:
        check(ascii_str(u64(a + field("code_qualname"))) == co.co_qualname, "co_qualname")
    first = ctypes.c_int32.from_address(a + field("code_firstlineno")).value
    check(first == co.co_firstlineno, "co_firstlineno")
    table = u64(a + field("code_linetable"))
    n = u64(table + field("bytes_size"))
    want = co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable
    check(ctypes.string_at(table + field("bytes_sval"), n) == want, "line table bytes")
    if field("code_code_adaptive") is not None:
        # The live, possibly specialized copy; nothing runs `co` in between.
        want = co._co_code_adaptive
        got = ctypes.string_at(a + field("code_code_adaptive"), len(want))
        check(got == want, "co_code_adaptive")

def check_objects():
    for o in (1.5, "x", b"y", check_objects.__code__):
        t = u64(id(o) + field("ob_type"))
        check(ctypes.string_at(u64(t + field("tp_name"))).decode() == type(o).__name__,
              "tp_name")
        check(u64(t + field("tp_flags")) == type(o).__flags__, "tp_flags")
        check(u64(t + field("tp_basicsize")) == type(o).__basicsize__, "tp_basicsize")
    s = "caf\u00e9" * 3
    st = u32(id(s) + field("unicode_state"))
    check(st & field("unicode_compact_mask") and not st & field("unicode_ascii_mask"),
          "latin-1 str state")
    kind_mask = field("unicode_kind_mask")
    check((st & kind_mask) // (kind_mask & -kind_mask) == 1, "latin-1 str kind")
    data = ctypes.string_at(id(s) + field("unicode_compact_size"), len(s))
    check(data.decode("latin-1") == s, "compact str data")
    if field("pre_header_size"):
        class C:
            pass
        c = C()
        c.x = 1
        d = c.__dict__
        check(C.__flags__ & field("tp_flags_preheader"), "preheader flag")
        check(C.__flags__ & field("tp_flags_gc"), "gc flag")
        # The managed dict pointer is in the pre-header (3.11: 2nd word, 3.12+: 1st).
        words = [u64(id(c) - field("gc_head_size") - field("pre_header_size") + 8 * i)
                 for i in range(field("pre_header_size") // 8)]
        check(id(d) in words, "managed dict in the pre-header")

def outer():
    check_code(walk())

outer()
t = threading.Thread(target=outer)
t.start()
t.join()
check_objects()
EOF

fail=0
for dir in "$pyenv"/versions/*; do
	[ -d "$dir" ] || continue
	ver=${dir##*/}
	case $ver in
	3.*t | 3.*t-*)
		echo "SKIP check_pyoffsets $ver: free-threaded build not supported"
		continue
		;;
	3.[0-9]*.[0-9]*) ;;
	*) echo "SKIP check_pyoffsets $ver: not a CPython 3 release"; continue ;;
	esac
	mm=$(echo "$ver" | sed 's/^\(3\.[0-9]*\)\..*/\1/')
	if ! "$tmp/dump" "$mm" >"$tmp/want" 2>"$tmp/err"; then
		echo "SKIP check_pyoffsets $ver: $(cat "$tmp/err")"
		continue
	fi
	inc=$dir/include/python$mm
	if [ ! -d "$inc/internal" ]; then
		echo "SKIP check_pyoffsets $ver: no internal headers in $inc"
		continue
	fi
	if ! $cc -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Werror -DPy_BUILD_CORE \
		-I"$inc" -I"$inc/internal" -I"$root/user" -I"$root/bpf" \
		"$root/tools/gen_pyoffsets.c" "$root/user/pyoffsets.c" -o "$tmp/gen" ||
		! "$tmp/gen" >"$tmp/got"; then
		echo "FAIL check_pyoffsets $ver: generator failed"
		fail=1
		continue
	fi
	if ! diff -u --label "table $mm" --label "headers $ver" "$tmp/want" "$tmp/got"; then
		echo "FAIL check_pyoffsets $ver: table differs from the headers" \
			"(tools/gen_pyoffsets.sh --update)"
		fail=1
		continue
	fi
	py=$dir/bin/python$mm
	if [ ! -x "$py" ]; then
		echo "PASS check_pyoffsets $ver: headers (SKIP live: no $py)"
		continue
	fi
	"$py" -I "$tmp/walk.py" "$tmp/want" >"$tmp/walk.out" 2>&1
	rc=$?
	if [ "$rc" -eq 77 ]; then
		echo "PASS check_pyoffsets $ver: headers (SKIP live: $(cat "$tmp/walk.out"))"
	elif [ "$rc" -ne 0 ]; then
		tail -n 3 "$tmp/walk.out"
		echo "FAIL check_pyoffsets $ver: live walk with the table row failed"
		fail=1
	else
		echo "PASS check_pyoffsets $ver: headers and live walk"
	fi
done
exit "$fail"
