/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unit tests of user/export_svg.c (linked with user/export_folded.c and
 * user/report.c). Set PML_UPDATE_GOLDEN=1 to rewrite the golden file
 * instead of comparing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "export_folded.h"
#include "export_svg.h"
#include "pymemleak.h"
#include "report.h"

#define GOLDEN PML_SRCDIR "/tests/unit/fixtures/export_small.svg"
#define PYTHON "/usr/bin/python3"
#define BIG    ((1ll << 31) + 5) /* three of them are above 2^32 */

static struct pml_pyframe app_frames[] = {
	{ .file = "app.py", .function = "leak", .line = 12 },
	{ .file = "app.py", .function = "handler", .line = 30 },
	{ .file = "app.py", .function = "<module>", .line = 0 },
};

static const struct pml_stackinfo app_info = {
	.native = "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)",
	.frames = app_frames,
	.nframes = 3,
};

static struct pml_pyframe other_frames[] = {
	{ .file = "app.py", .function = "cache_put", .line = 50 },
	{ .file = "app.py", .function = "handler", .line = 30 },
	{ .file = "app.py", .function = "<module>", .line = 0 },
};

static const struct pml_stackinfo other_info = {
	.frames = other_frames,
	.nframes = 3,
};

/* Odd names: separators, quotes, markup, unicode, invalid UTF-8, controls. */
static struct pml_pyframe odd_frames[] = {
	{ .file = "\xc3\xa9\xe2\x9c\x93\xff\n.py", .function = "a;b c\"d'<&>", .line = 7 },
	{ .file = "]]>", .function = "\xc2\x85\xef\xbf\xbe\tx\xf0\x9f\x98\x80", .line = 2 },
};

static const struct pml_stackinfo odd_info = {
	.native = "lib<x>.so\x01",
	.frames = odd_frames,
	.nframes = 2,
};

#define ODD_XML "a;b c&quot;d&apos;&lt;&amp;&gt; (\xc3\xa9\xe2\x9c\x93??.py:7)"
#define ODD_PY	"'a;b c\"d\\'<&> (\\u00e9\\u2713??.py:7)'"

static void fill_procs(struct pml_procinfo *p)
{
	memset(p, 0, 2 * sizeof(*p));
	p[0].pid = 4242;
	snprintf(p[0].cmdline, sizeof(p[0].cmdline),
		 "/root/.pyenv/versions/3.12.1/bin/python3 app.py");
	p[1].pid = 77;
	snprintf(p[1].cmdline, sizeof(p[1].cmdline), "python3 <&>");
}

/* 4242: app stack under two ids (merged), another one, an unsymbolized
 * one; 77: the app stack. */
static struct pml_agg *small_agg(void)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	agg__begin(a, 1000);
	assert_int_equal(agg__add(a, 4242, 0x11, 0, BIG, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x12, 0, 2 * BIG, 2, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x22, 0, 1ll << 30, 7, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0xabc, 0, 1ll << 29, 1, 0), 0);
	assert_int_equal(agg__add(a, 77, 0x11, 0, 3ll << 30, 3, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x11, &app_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x12, &app_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x22, &other_info), 0);
	assert_int_equal(agg__set_stack(a, 77, 0x11, &app_info), 0);
	return a;
}

static char *svg_of(const struct pml_agg *a, const struct pml_procinfo *p, size_t np, bool pid_root)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(export_svg__write(f, a, p, np, pid_root), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		fail_msg("cannot open %s: %s", path, strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void check_golden(const char *got, const char *path)
{
	const char *update = getenv("PML_UPDATE_GOLDEN");
	char *want;
	FILE *f;

	if (update && !strcmp(update, "1")) {
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(got, f);
		assert_int_equal(fclose(f), 0);
		return;
	}
	want = read_all(path);
	if (strcmp(got, want))
		fail_msg("output differs from %s (PML_UPDATE_GOLDEN=1 rewrites it)", path);
	free(want);
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("missing %s", needle);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (hay = strstr(hay, needle); hay; hay = strstr(hay + 1, needle))
		n++;
	return n;
}

/* The value of attribute attr of the (only) rect whose data-name is xml_name. */
static void rect_attr(const char *svg, const char *xml_name, const char *attr, char *out,
		      size_t size)
{
	char key[1200];
	const char *s, *end;

	snprintf(key, sizeof(key), "data-name=\"%s\"", xml_name);
	s = strstr(svg, key);
	if (!s)
		fail_msg("no rect %s", xml_name);
	end = strstr(s, "/>");
	snprintf(key, sizeof(key), " %s=\"", attr);
	s = strstr(s, key);
	assert_true(s && s < end);
	s += strlen(key);
	end = strchr(s, '"');
	assert_non_null(end);
	assert_true((size_t)(end - s) < size);
	memcpy(out, s, (size_t)(end - s));
	out[end - s] = '\0';
}

/* Valid UTF-8 throughout, and no control byte but newline and tab. */
static void assert_clean_utf8(const char *s)
{
	size_t len = strlen(s), i, n;

	for (i = 0; i < len; i += n) {
		n = report__utf8_seq(s + i, len - i);
		if (!n)
			fail_msg("invalid UTF-8 at byte %zu", i);
		if (n == 1 && (unsigned char)s[i] < 0x20)
			assert_true(s[i] == '\n' || s[i] == '\t');
		assert_true(s[i] != 0x7f);
	}
}

static void export_svg__write__small__matches_golden(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = svg_of(a, p, 2, true);
	check_golden(got, GOLDEN);
	free(got);
	agg__free(a);
}

static void export_svg__write__identical_paths__merged_with_sums(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char v[64];
	char *got;

	fill_procs(p);
	/* no process frames: 4242's and 77's app stacks are one path */
	got = svg_of(a, p, 2, false);
	assert_int_equal(count_of(got, "data-name=\"leak (app.py:12)\""), 1);
	rect_attr(got, "leak (app.py:12)", "data-v", v, sizeof(v));
	assert_string_equal(v, "9663676431"); /* 3 * BIG + 3 GiB, above 2^32 */
	rect_attr(got, "leak (app.py:12)", "data-c", v, sizeof(v));
	assert_string_equal(v, "6");
	/* the root holds everything and spans the width */
	rect_attr(got, "all", "data-v", v, sizeof(v));
	assert_string_equal(v, "11274289167");
	rect_attr(got, "all", "width", v, sizeof(v));
	assert_string_equal(v, "1180.00");
	rect_attr(got, "all", "x", v, sizeof(v));
	assert_string_equal(v, "10.00");
	assert_contains(got, "data-total=\"11274289167\"");
	assert_contains(got, "total 10.5 GiB (11274289167 bytes) in 14 allocations");
	/* siblings in name order: <module> children cache_put (x 0), leak after it */
	rect_attr(got, "cache_put (app.py:50)", "data-x", v, sizeof(v));
	assert_string_equal(v, "0");
	rect_attr(got, "leak (app.py:12)", "data-x", v, sizeof(v));
	assert_string_equal(v, "1073741824");
	/* hover text: name, human bytes, bytes, count, share */
	assert_contains(got, "<title>leak (app.py:12)\n9.0 GiB (9663676431 bytes), 6 allocations, "
			     "85.71% of total</title>");
	assert_contains(got, "<title>all\n10.5 GiB (11274289167 bytes), 14 allocations, "
			     "100.00% of total</title>");
	free(got);

	/* with them: one leak frame per process, 4242's sum of two stack ids */
	got = svg_of(a, p, 2, true);
	assert_int_equal(count_of(got, "data-name=\"leak (app.py:12)\""), 2);
	rect_attr(got, "4242 python3 app.py", "data-v", v, sizeof(v));
	assert_string_equal(v, "8053063695");
	rect_attr(got, "77 python3 &lt;&amp;&gt;", "data-d", v, sizeof(v));
	assert_string_equal(v, "1");
	assert_contains(got, " (536870912 bytes), 1 allocation, ");
	free(got);
	agg__free(a);
}

static void export_svg__write__odd_names__escaped_and_clean(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *got;

	assert_non_null(a);
	fill_procs(p);
	snprintf(p[0].cmdline, sizeof(p[0].cmdline), "py\"th\xffon '<x>'");
	agg__begin(a, 1);
	assert_int_equal(agg__add(a, 4242, 1, 0, 10, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 1, &odd_info), 0);
	got = svg_of(a, p, 1, true);
	assert_contains(got, "data-name=\"" ODD_XML "\"");
	assert_contains(got, "<title>" ODD_XML "\n");
	assert_contains(got, "data-name=\"???x\xf0\x9f\x98\x80 (]]&gt;:2)\"");
	assert_contains(got, "data-name=\"[native] lib&lt;x&gt;.so?\"");
	assert_contains(got, "data-name=\"4242 py&quot;th?on &apos;&lt;x&gt;&apos;\"");
	/* the label of a wide frame is the whole escaped name */
	assert_contains(got, ">" ODD_XML "</text>");
	assert_clean_utf8(got);
	/* the script's CDATA section is the only one with our text inside */
	assert_int_equal(count_of(got, "]]>"), 2);
	free(got);
	agg__free(a);
}

static void export_svg__write__narrow_frames__left_out_but_counted(void **state)
{
	static char longname[201];
	struct pml_pyframe wide = { .file = "w.py", .function = "wide", .line = 1 };
	struct pml_pyframe tiny[] = { { .file = "t.py", .function = "tiny", .line = 1 },
				      { .file = "t.py", .function = "under", .line = 9 } };
	struct pml_pyframe lng = { .file = "l.py", .function = longname, .line = 1 };
	struct pml_pyframe sliver = { .file = "s.py", .function = "sliver", .line = 1 };
	struct pml_stackinfo si_wide = { .frames = &wide, .nframes = 1 };
	struct pml_stackinfo si_tiny = { .frames = tiny, .nframes = 2 };
	struct pml_stackinfo si_long = { .frames = &lng, .nframes = 1 };
	struct pml_stackinfo si_sliver = { .frames = &sliver, .nframes = 1 };
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char v[64], key[256];
	char *got;

	assert_non_null(a);
	memset(longname, 'x', 200);
	fill_procs(p);
	agg__begin(a, 1);
	/* 1e6 bytes over 1180 px: 1 byte is 0.00118 px, 100000 bytes 118 px */
	assert_int_equal(agg__add(a, 4242, 1, 0, 1000000 - 100000 - 2000 - 1, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 2, 0, 1, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 3, 0, 100000, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 4, 0, 2000, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 1, &si_wide), 0);
	assert_int_equal(agg__set_stack(a, 4242, 2, &si_tiny), 0);
	assert_int_equal(agg__set_stack(a, 4242, 3, &si_long), 0);
	assert_int_equal(agg__set_stack(a, 4242, 4, &si_sliver), 0);
	got = svg_of(a, p, 1, false);
	assert_null(strstr(got, "tiny (t.py:1)"));
	assert_null(strstr(got, "under (t.py:9)"));
	/* as tall as what is drawn: all and one row of frames */
	assert_contains(got, "height=\"140\" viewBox=\"0 0 1200 140\"");
	rect_attr(got, "all", "data-v", v, sizeof(v));
	assert_string_equal(v, "1000000");
	/* 118 px hold 15 characters: 13 of the name and ".." */
	snprintf(key, sizeof(key), "%s (l.py:1)", longname);
	rect_attr(got, key, "width", v, sizeof(v));
	assert_string_equal(v, "118.00");
	assert_contains(got, ">xxxxxxxxxxxxx..</text>");
	/* 2.36 px: kept, but no room for a label */
	rect_attr(got, "sliver (s.py:1)", "width", v, sizeof(v));
	assert_string_equal(v, "2.36");
	assert_contains(got, "data-name=\"sliver (s.py:1)\"");
	assert_null(strstr(got, "\">sliver"));
	assert_non_null(strstr(got, "\">wide (w.py:1)</text>"));
	free(got);
	agg__free(a);
}

static void export_svg__write__same_name__same_colour(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char c1[32], c2[32], c3[32];
	unsigned int r, g, b;
	char *got;

	fill_procs(p);
	got = svg_of(a, p, 2, false);
	rect_attr(got, "leak (app.py:12)", "fill", c1, sizeof(c1));
	rect_attr(got, "handler (app.py:30)", "fill", c3, sizeof(c3));
	free(got);
	got = svg_of(a, &p[1], 1, true);
	rect_attr(got, "leak (app.py:12)", "fill", c2, sizeof(c2));
	free(got);
	assert_string_equal(c1, c2);
	assert_string_not_equal(c1, c3);
	/* warm: strong red, little blue */
	assert_int_equal(sscanf(c1, "rgb(%u,%u,%u)", &r, &g, &b), 3);
	assert_true(r >= 205 && g <= 230 && b <= 75);
	agg__free(a);
}

static void export_svg__write__empty__valid_placeholder(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *got;

	assert_non_null(a);
	fill_procs(p);
	agg__begin(a, 1);
	got = svg_of(a, p, 2, true);
	assert_contains(got, "No outstanding memory to show");
	assert_contains(got, "<g id=\"frames\">\n</g>\n");
	assert_contains(got, "</svg>\n");
	free(got);
	agg__free(a);
}

static void export_svg__write__bad_args__einval(void **state)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	assert_int_equal(export_svg__write(NULL, a, NULL, 0, false), -EINVAL);
	assert_int_equal(export_svg__write(stdout, NULL, NULL, 0, false), -EINVAL);
	assert_int_equal(export_svg__write(stdout, a, NULL, 1, false), -EINVAL);
	agg__free(a);
}

static void export_svg__write__full_device__enospc(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	FILE *f = fopen("/dev/full", "w");

	if (!f) {
		agg__free(a);
		skip();
	}
	fill_procs(p);
	assert_int_equal(export_svg__write(f, a, p, 2, true), -ENOSPC);
	fclose(f);
	agg__free(a);
}

/*
 * An XML parser reads the file, and its geometry holds together: each
 * rect where its byte range says, inside its parent's range, labels the
 * name or a prefix of it and "..", the odd and deep frames all there.
 */
static const char py_check[] =
	"import sys, xml.dom.minidom\n"
	"doc = xml.dom.minidom.parse(sys.argv[1])\n"
	"svg = doc.documentElement\n"
	"total = int(svg.getAttribute('data-total'))\n"
	"assert total == int(sys.argv[2]), total\n"
	"rects = [r for r in doc.getElementsByTagName('rect') if r.hasAttribute('data-name')]\n"
	"by = {}\n"
	"for r in rects:\n"
	"    x, v, d = (int(r.getAttribute(k)) for k in ('data-x', 'data-v', 'data-d'))\n"
	"    assert abs(float(r.getAttribute('x')) - (10 + x * 1180 / total)) < 0.01\n"
	"    assert abs(float(r.getAttribute('width')) - v * 1180 / total) < 0.01\n"
	"    by.setdefault(d, []).append((x, v))\n"
	"    g = r.parentNode\n"
	"    assert g.getAttribute('class') == 'f'\n"
	"    name = r.getAttribute('data-name')\n"
	"    assert g.getElementsByTagName('title')[0].firstChild.data.split('\\n')[0] == name\n"
	"    t = g.getElementsByTagName('text')[0]\n"
	"    label = t.firstChild.data if t.firstChild else ''\n"
	"    assert label in ('', name) or (label.endswith('..') and name.startswith(label[:-2]))\n"
	"for d, spans in by.items():\n"
	"    for x, v in spans:\n"
	"        up = by.get(d - 1, [])\n"
	"        assert d == 0 or any(px <= x and x + v <= px + pv for px, pv in up), (d, x)\n"
	"names = [r.getAttribute('data-name') for r in rects]\n"
	"assert " ODD_PY " in names, names\n"
	"assert max(by) == int(sys.argv[3]), max(by)\n"
	"assert 'f0 (deep.py:1)' in names and 'f63 (deep.py:64)' in names\n"
	"assert len(doc.getElementsByTagName('script')) == 1\n";

static void export_svg__write__output__xml_parser_accepts(void **state)
{
	struct pml_pyframe deep[64];
	struct pml_stackinfo deep_info = { .frames = deep, .nframes = 64 };
	char path[] = "/tmp/test_export_svg.XXXXXX", cmd[256], names[64][16];
	struct pml_procinfo p[2];
	struct pml_agg *a;
	FILE *f;
	int fd, rc, i;

	if (access(PYTHON, X_OK))
		skip();
	for (i = 0; i < 64; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		deep[i] = (struct pml_pyframe){ .file = "deep.py",
						.function = names[i],
						.line = i + 1 };
	}
	a = small_agg();
	assert_int_equal(agg__add(a, 77, 0x99, 0, 1ll << 33, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 77, 0x99, &deep_info), 0);
	assert_int_equal(agg__add(a, 4242, 0x98, 0, 1ll << 28, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x98, &odd_info), 0);
	fill_procs(p);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(export_svg__write(f, a, p, 2, true), 0);
	assert_int_equal(fclose(f), 0);

	/* all, process, 64 frames: deepest depth 65 */
	snprintf(cmd, sizeof(cmd), PYTHON " -c \"$PML_PY_CHECK\" %s %llu 65", path,
		 11274289167ull + (1ull << 33) + (1ull << 28));
	assert_int_equal(setenv("PML_PY_CHECK", py_check, 1), 0);
	rc = system(cmd);
	unlink(path);
	agg__free(a);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(export_svg__write__small__matches_golden),
		cmocka_unit_test(export_svg__write__identical_paths__merged_with_sums),
		cmocka_unit_test(export_svg__write__odd_names__escaped_and_clean),
		cmocka_unit_test(export_svg__write__narrow_frames__left_out_but_counted),
		cmocka_unit_test(export_svg__write__same_name__same_colour),
		cmocka_unit_test(export_svg__write__empty__valid_placeholder),
		cmocka_unit_test(export_svg__write__bad_args__einval),
		cmocka_unit_test(export_svg__write__full_device__enospc),
		cmocka_unit_test(export_svg__write__output__xml_parser_accepts),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
