/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unit tests of user/export_folded.c (linked with user/report.c). Set
 * PML_UPDATE_GOLDEN=1 to rewrite the golden file instead of comparing.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "export_folded.h"
#include "pymemleak.h"
#include "report.h"

#define GOLDEN PML_SRCDIR "/tests/unit/fixtures/export_small.folded"
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

static struct pml_pyframe trunc_frames[] = {
	{ .file = "lib/deep.py", .function = "inner", .line = 5 },
};

static const struct pml_stackinfo trunc_info = {
	.frames = trunc_frames,
	.nframes = 1,
	.flags = PML_STACK_TRUNCATED,
};

static const struct pml_stackinfo native_info = {
	.native = "libc.so.6+0x9a0c0 (malloc)",
	.flags = PML_STACK_NO_GIL,
};

/* Odd names: separators, quotes, markup, unicode, invalid UTF-8, controls. */
static struct pml_pyframe odd_frames[] = {
	{ .file = "\xc3\xa9\xe2\x9c\x93\xff\n.py", .function = "a;b c\"d'<&>", .line = 7 },
	{ .file = NULL, .function = "\xc2\x85\xef\xbf\xbe\tx\xf0\x9f\x98\x80", .line = -3 },
	{ .file = "m.py", .function = NULL, .line = 1 },
};

static const struct pml_stackinfo odd_info = {
	.native = "lib;x.so\x01",
	.frames = odd_frames,
	.nframes = 3,
};

static void fill_procs(struct pml_procinfo *p)
{
	memset(p, 0, 2 * sizeof(*p));
	p[0].pid = 4242;
	snprintf(p[0].cmdline, sizeof(p[0].cmdline),
		 "/root/.pyenv/versions/3.12.1/bin/python3 app.py");
	p[1].pid = 77;
}

/*
 * Process 4242: app stack three times under two stack ids (same names: one
 * line), a truncated one, a native-only one, an empty one, an unsymbolized
 * one. Process 77: the app stack once more.
 */
static struct pml_agg *small_agg(void)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	agg__begin(a, 1000);
	assert_int_equal(agg__add(a, 4242, 0x11, 0, BIG, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x11, 0, BIG, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x12, 0, BIG, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x22, 0, 2048, 2, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x33, 0, 512, 4, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x44, 0, 64, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0xabc, 0, 100, 1, 0), 0);
	assert_int_equal(agg__add(a, 77, 0x11, 0, 300, 3, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x11, &app_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x12, &app_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x22, &trunc_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x33, &native_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x44, &(struct pml_stackinfo){ 0 }), 0);
	assert_int_equal(agg__set_stack(a, 77, 0x11, &app_info), 0);
	return a;
}

static char *folded_of(const struct pml_agg *a, const struct pml_procinfo *p, size_t np,
		       bool pid_root)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(export_folded__write(f, a, p, np, pid_root), 0);
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
		fail_msg("output differs from %s\n--- got ---\n%s", path, got);
	free(want);
}

/*
 * A line is "<stack> <digits>\n": stack without control bytes or an empty
 * frame, the value after the last space. Returns the number of lines.
 */
static size_t check_lines(const char *s)
{
	size_t lines = 0;
	const char *end, *sp, *c;

	for (; *s; s = end + 1) {
		end = strchr(s, '\n');
		assert_non_null(end);
		sp = end;
		while (sp > s && sp[-1] != ' ')
			sp--;
		assert_true(sp > s + 1 && sp < end);
		for (c = sp; c < end; c++)
			assert_true(*c >= '0' && *c <= '9');
		for (c = s; c < sp - 1; c++) {
			assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
			if (*c == ';')
				assert_true(c > s && c[-1] != ';' && c + 1 < sp - 1);
		}
		lines++;
	}
	return lines;
}

static void export_folded__write__small__matches_golden(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = folded_of(a, p, 2, true);
	check_golden(got, GOLDEN);
	free(got);
	agg__free(a);
}

static void export_folded__write__pid_root_off__merged_sorted(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = folded_of(a, p, 2, false);
	/* stack ids 0x11 and 0x12 of 4242 and 0x11 of 77: one line, 3 * BIG + 300 */
	assert_string_equal(got,
			    "<module> (app.py:?);handler (app.py:30);leak (app.py:12);[native] "
			    "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40) 6442451259\n"
			    "[native] libc.so.6+0x9a0c0 (malloc) 512\n"
			    "[no frames 0x0000000000000044] 64\n"
			    "[truncated];inner (lib/deep.py:5) 2048\n"
			    "[unsymbolized 0x0000000000000abc] 100\n");
	assert_int_equal(check_lines(got), 5);
	free(got);
	agg__free(a);
}

static void export_folded__write__pid_root_on__process_frames(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = folded_of(a, p, 2, true);
	assert_string_equal(got,
			    "4242 python3 app.py;<module> (app.py:?);handler (app.py:30);leak "
			    "(app.py:12);[native] libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40) "
			    "6442450959\n"
			    "4242 python3 app.py;[native] libc.so.6+0x9a0c0 (malloc) 512\n"
			    "4242 python3 app.py;[no frames 0x0000000000000044] 64\n"
			    "4242 python3 app.py;[truncated];inner (lib/deep.py:5) 2048\n"
			    "4242 python3 app.py;[unsymbolized 0x0000000000000abc] 100\n"
			    "77;<module> (app.py:?);handler (app.py:30);leak (app.py:12);[native] "
			    "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40) 300\n");
	assert_int_equal(check_lines(got), 6);
	free(got);

	/* only the processes asked for */
	got = folded_of(a, &p[1], 1, true);
	assert_string_equal(got, "77;<module> (app.py:?);handler (app.py:30);leak (app.py:12);"
				 "[native] libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40) 300\n");
	free(got);
	agg__free(a);
}

static void export_folded__write__odd_names__cleaned(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *got;

	assert_non_null(a);
	fill_procs(p);
	snprintf(p[0].cmdline, sizeof(p[0].cmdline), "py;th\x01on x");
	agg__begin(a, 1);
	assert_int_equal(agg__add(a, 4242, 1, 0, 10, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 1, &odd_info), 0);
	got = folded_of(a, p, 1, true);
	/*
	 * ';' -> ':', \xff, \n, \t, \x01, C1 \xc2\x85 and U+FFFE -> '?'; é, ✓
	 * and U+1F600 kept; missing file or function -> "?", bad line -> "?".
	 */
	assert_string_equal(got, "4242 py:th?on x;"
				 "? (m.py:1);"
				 "??"
				 "?x\xf0\x9f\x98\x80 (?:?);"
				 "a:b c\"d'<&> (\xc3\xa9\xe2\x9c\x93??.py:7);"
				 "[native] lib:x.so? 10\n");
	assert_int_equal(check_lines(got), 1);
	free(got);
	agg__free(a);
}

static void export_folded__write__deep_stack__all_frames_root_first(void **state)
{
	struct pml_pyframe deep[64];
	struct pml_stackinfo info = { .frames = deep, .nframes = 64 };
	struct pml_agg *a = agg__new();
	char names[64][16], want[32];
	struct pml_procinfo p[2];
	char *got, *s;
	int i;

	assert_non_null(a);
	for (i = 0; i < 64; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		deep[i] =
			(struct pml_pyframe){ .file = "d.py", .function = names[i], .line = i + 1 };
	}
	fill_procs(p);
	agg__begin(a, 1);
	assert_int_equal(agg__add(a, 4242, 1, 0, 1ll << 40, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 1, &info), 0);
	got = folded_of(a, p, 1, false);
	assert_int_equal(check_lines(got), 1);
	/* innermost f0 last, 64 frames, 2^40 bytes */
	s = got;
	for (i = 63; i >= 0; i--) {
		snprintf(want, sizeof(want), "f%d (d.py:%d)", i, i + 1);
		assert_memory_equal(s, want, strlen(want));
		s += strlen(want);
		assert_int_equal(*s, i ? ';' : ' ');
		s++;
	}
	assert_string_equal(s, "1099511627776\n");
	free(got);
	agg__free(a);
}

static void export_folded__path_len__beyond_cap__innermost_kept_and_marked(void **state)
{
	size_t n = EXPORT_PYFRAMES_MAX + 10, i;
	struct pml_pyframe *many = calloc(n, sizeof(*many));
	struct pml_stackinfo info = { .frames = many, .nframes = n };
	struct pml_row r = { .pid = 1, .stack_id = 9, .bytes = 1, .count = 1, .info = &info };
	const struct pml_pyframe *py;
	struct pml_procinfo p = { .pid = 1 };
	char name[EXPORT_NAME_SIZE];

	assert_non_null(many);
	for (i = 0; i < n; i++)
		many[i] =
			(struct pml_pyframe){ .file = "x.py", .function = "g", .line = (int)i + 1 };
	assert_int_equal(export_folded__path_len(&r, false), EXPORT_PYFRAMES_MAX + 1);
	assert_int_equal(export_folded__path_len(&r, true), EXPORT_PYFRAMES_MAX + 2);
	assert_int_equal(export_folded__frame(&p, &r, false, 0, name, sizeof(name), &py),
			 EXPORT_FRAME_MARKER);
	assert_string_equal(name, "[truncated]");
	assert_null(py);
	/* root side starts at the outermost frame kept: number EXPORT_PYFRAMES_MAX */
	assert_int_equal(export_folded__frame(&p, &r, false, 1, name, sizeof(name), &py),
			 EXPORT_FRAME_PYTHON);
	assert_ptr_equal(py, &many[EXPORT_PYFRAMES_MAX - 1]);
	assert_int_equal(export_folded__frame(&p, &r, false, EXPORT_PYFRAMES_MAX, name,
					      sizeof(name), &py),
			 EXPORT_FRAME_PYTHON);
	assert_ptr_equal(py, &many[0]);
	assert_string_equal(name, "g (x.py:1)");
	assert_int_equal(export_folded__frame(&p, &r, false, EXPORT_PYFRAMES_MAX + 1, name,
					      sizeof(name), &py),
			 -ERANGE);
	assert_string_equal(name, "");
	assert_int_equal(export_folded__frame(&p, &r, true, 0, name, sizeof(name), &py),
			 EXPORT_FRAME_PROCESS);
	assert_string_equal(name, "1");
	free(many);
}

static void export_folded__frame__long_name__cut_at_character(void **state)
{
	char *fn = malloc(2 * 3000 + 1), name[EXPORT_NAME_SIZE], small[6];
	struct pml_pyframe f = { .file = "x.py", .line = 1 };
	struct pml_stackinfo info = { .frames = &f, .nframes = 1 };
	struct pml_row r = { .stack_id = 1, .bytes = 1, .info = &info };
	struct pml_procinfo p = { .pid = 1 };
	size_t i;

	assert_non_null(fn);
	for (i = 0; i < 3000; i++)
		memcpy(fn + 2 * i, "\xc3\xa9", 2);
	fn[6000] = '\0';
	f.function = fn;
	assert_int_equal(export_folded__frame(&p, &r, false, 0, name, sizeof(name), NULL),
			 EXPORT_FRAME_PYTHON);
	/* 511 two-byte characters fit in 1023 bytes, the 512th would not */
	assert_int_equal(strlen(name), 1022);
	for (i = 0; i < 1022; i += 2)
		assert_memory_equal(name + i, "\xc3\xa9", 2);
	/* a tiny buffer: whole characters only */
	assert_int_equal(export_folded__frame(&p, &r, false, 0, small, sizeof(small), NULL),
			 EXPORT_FRAME_PYTHON);
	assert_string_equal(small, "\xc3\xa9\xc3\xa9");
	/* size 0 writes nothing and does not crash */
	assert_int_equal(export_folded__frame(&p, &r, false, 0, NULL, 0, NULL),
			 EXPORT_FRAME_PYTHON);
	free(fn);
}

static void export_folded__proc_name__cmdlines__basename_and_cut(void **state)
{
	struct pml_procinfo p = { .pid = 4294967295u };
	char name[EXPORT_NAME_SIZE];

	export_folded__proc_name(&p, name, sizeof(name));
	assert_string_equal(name, "4294967295");
	snprintf(p.cmdline, sizeof(p.cmdline), "  /usr/bin/python3.11 -m http.server 8000/x");
	export_folded__proc_name(&p, name, sizeof(name));
	assert_string_equal(name, "4294967295 python3.11 -m http.server 8000/x");
	snprintf(p.cmdline, sizeof(p.cmdline), "/usr/bin/");
	export_folded__proc_name(&p, name, sizeof(name));
	assert_string_equal(name, "4294967295");
	/* full array, no NUL: read up to its size, then cut at 60 characters */
	memset(p.cmdline, 'x', sizeof(p.cmdline));
	export_folded__proc_name(&p, name, sizeof(name));
	assert_int_equal(strlen(name), 11 + EXPORT_CMD_CHARS);
	/* 60 characters, not bytes */
	for (size_t i = 0; i + 2 <= sizeof(p.cmdline); i += 2)
		memcpy(p.cmdline + i, "\xc3\xa9", 2);
	export_folded__proc_name(&p, name, sizeof(name));
	assert_int_equal(strlen(name), 11 + 2 * EXPORT_CMD_CHARS);
}

static void export_folded__clean__bad_bytes__question_marks(void **state)
{
	char buf[64];

	export_folded__clean("a\xed\xa0\x80z\xc0\xaf", 7, buf, sizeof(buf));
	assert_string_equal(buf, "a???z??");
	/* an embedded NUL within the length is a control byte */
	export_folded__clean("a\0b", 3, buf, sizeof(buf));
	assert_string_equal(buf, "a?b");
	export_folded__clean("\xef\xbf\xbd\xef\xbf\xbf", 6, buf, sizeof(buf));
	assert_string_equal(buf, "\xef\xbf\xbd?");
	export_folded__clean("abcdef", 6, buf, 4);
	assert_string_equal(buf, "abc");
}

static void export_folded__write__empty__no_lines(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *got;

	assert_non_null(a);
	fill_procs(p);
	agg__begin(a, 1);
	got = folded_of(a, p, 2, true);
	assert_string_equal(got, "");
	free(got);
	got = folded_of(a, NULL, 0, false);
	assert_string_equal(got, "");
	free(got);
	agg__free(a);
}

static void export_folded__write__bad_args__einval(void **state)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	assert_int_equal(export_folded__write(NULL, a, NULL, 0, false), -EINVAL);
	assert_int_equal(export_folded__write(stdout, NULL, NULL, 0, false), -EINVAL);
	assert_int_equal(export_folded__write(stdout, a, NULL, 1, false), -EINVAL);
	agg__free(a);
}

static void export_folded__write__full_device__enospc(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	FILE *f = fopen("/dev/full", "w");

	if (!f) {
		agg__free(a);
		skip();
	}
	fill_procs(p);
	assert_int_equal(export_folded__write(f, a, p, 2, true), -ENOSPC);
	fclose(f);
	agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(export_folded__write__small__matches_golden),
		cmocka_unit_test(export_folded__write__pid_root_off__merged_sorted),
		cmocka_unit_test(export_folded__write__pid_root_on__process_frames),
		cmocka_unit_test(export_folded__write__odd_names__cleaned),
		cmocka_unit_test(export_folded__write__deep_stack__all_frames_root_first),
		cmocka_unit_test(export_folded__path_len__beyond_cap__innermost_kept_and_marked),
		cmocka_unit_test(export_folded__frame__long_name__cut_at_character),
		cmocka_unit_test(export_folded__proc_name__cmdlines__basename_and_cut),
		cmocka_unit_test(export_folded__clean__bad_bytes__question_marks),
		cmocka_unit_test(export_folded__write__empty__no_lines),
		cmocka_unit_test(export_folded__write__bad_args__einval),
		cmocka_unit_test(export_folded__write__full_device__enospc),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
