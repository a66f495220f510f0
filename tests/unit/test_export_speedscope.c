/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unit tests of user/export_speedscope.c (linked with user/export_folded.c
 * and user/report.c). Set PML_UPDATE_GOLDEN=1 to rewrite the golden file
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

#include "export_speedscope.h"
#include "pymemleak.h"
#include "report.h"

#define GOLDEN PML_SRCDIR "/tests/unit/fixtures/export_small.speedscope.json"
#define PYTHON "/usr/bin/python3"
#define BIG    ((1ll << 31) + 5) /* three of them are above 2^32 */
#define SCHEMA "{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\""

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

/* Odd names: separators, quotes, markup, unicode, invalid UTF-8, controls. */
static struct pml_pyframe odd_frames[] = {
	{ .file = "\xc3\xa9\xe2\x9c\x93\xff\n.py", .function = "a;b c\"d'<&>\\", .line = 7 },
	{ .file = NULL, .function = "\xc2\x85\tx\xf0\x9f\x98\x80", .line = 0 },
};

static const struct pml_stackinfo odd_info = {
	.native = "lib\"x\".so\x01",
	.frames = odd_frames,
	.nframes = 2,
	.flags = PML_STACK_TRUNCATED,
};

static void fill_procs(struct pml_procinfo *p)
{
	memset(p, 0, 2 * sizeof(*p));
	p[0].pid = 4242;
	snprintf(p[0].cmdline, sizeof(p[0].cmdline),
		 "/root/.pyenv/versions/3.12.1/bin/python3 app.py");
	p[1].pid = 77;
	snprintf(p[1].cmdline, sizeof(p[1].cmdline), "python3 \"w\".py");
}

/* 4242: the app stack under two ids, an unsymbolized one; 77: app stack. */
static struct pml_agg *small_agg(void)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	agg__begin(a, 1000);
	assert_int_equal(agg__add(a, 4242, 0x11, 0, BIG, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x12, 0, 2 * BIG, 2, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0xabc, 0, 100, 1, 0), 0);
	assert_int_equal(agg__add(a, 77, 0x11, 0, 300, 3, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x11, &app_info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x12, &app_info), 0);
	assert_int_equal(agg__set_stack(a, 77, 0x11, &app_info), 0);
	return a;
}

static char *ss_of(const struct pml_agg *a, const struct pml_procinfo *p, size_t np, bool pid_root)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(export_speedscope__write(f, a, p, np, pid_root), 0);
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

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("missing %s\n--- in ---\n%s", needle, hay);
}

static size_t count_of(const char *hay, const char *needle)
{
	size_t n = 0;

	for (hay = strstr(hay, needle); hay; hay = strstr(hay + 1, needle))
		n++;
	return n;
}

static void export_speedscope__write__small__matches_golden(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = ss_of(a, p, 2, false);
	check_golden(got, GOLDEN);
	free(got);
	agg__free(a);
}

static void export_speedscope__write__two_processes__profiles_and_shared_frames(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = ss_of(a, p, 2, false);
	assert_contains(got, SCHEMA ",\"exporter\":\"pymemleak\",\"name\":\"pymemleak: 2 "
				    "processes\",\"activeProfileIndex\":0,\"profiles\":[");
	/* ranked by bytes; the two app stack ids stay two samples, 3 * BIG in all */
	assert_contains(got, "{\"type\":\"sampled\",\"name\":\"4242 python3 app.py\","
			     "\"unit\":\"bytes\",\"startValue\":0,\"endValue\":6442451059,"
			     "\"samples\":[[0,1,2,3],[0,1,2,3],[4]],"
			     "\"weights\":[4294967306,2147483653,100]},");
	/* 77 reuses the frames of 4242 */
	assert_contains(got, "{\"type\":\"sampled\",\"name\":\"77 python3 \\\"w\\\".py\","
			     "\"unit\":\"bytes\",\"startValue\":0,\"endValue\":300,"
			     "\"samples\":[[0,1,2,3]],\"weights\":[300]}],");
	assert_contains(got, "\"shared\":{\"frames\":[{\"name\":\"<module> (app.py:?)\","
			     "\"file\":\"app.py\"},{\"name\":\"handler (app.py:30)\","
			     "\"file\":\"app.py\",\"line\":30},{\"name\":\"leak (app.py:12)\","
			     "\"file\":\"app.py\",\"line\":12},{\"name\":\"[native] "
			     "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)\"},"
			     "{\"name\":\"[unsymbolized 0x0000000000000abc]\"}]}}\n");
	free(got);
	agg__free(a);
}

static void export_speedscope__write__pid_root__process_frame_first(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = ss_of(a, &p[1], 1, true);
	assert_contains(got, SCHEMA ",\"exporter\":\"pymemleak\",\"name\":\"77 python3 "
				    "\\\"w\\\".py\",\"activeProfileIndex\":0,");
	assert_contains(got, "\"samples\":[[0,1,2,3,4]],\"weights\":[300]}],\"shared\":{\"frames\":"
			     "[{\"name\":\"77 python3 \\\"w\\\".py\"},{\"name\":\"<module>");
	free(got);
	agg__free(a);
}

static void export_speedscope__write__odd_names__json_escaped(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *got;

	assert_non_null(a);
	fill_procs(p);
	agg__begin(a, 1);
	assert_int_equal(agg__add(a, 4242, 1, 0, 10, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 1, &odd_info), 0);
	got = ss_of(a, p, 1, false);
	assert_contains(got, "\"samples\":[[0,1,2,3]]");
	assert_contains(got, "{\"name\":\"[truncated]\"},"
			     "{\"name\":\"??x\xf0\x9f\x98\x80 (?:?)\",\"file\":\"?\"},"
			     "{\"name\":\"a;b c\\\"d'<&>\\\\ (\xc3\xa9\xe2\x9c\x93??.py:7)\","
			     "\"file\":\"\xc3\xa9\xe2\x9c\x93??.py\",\"line\":7},"
			     "{\"name\":\"[native] lib\\\"x\\\".so?\"}]}}\n");
	free(got);
	agg__free(a);
}

static void export_speedscope__write__empty__valid(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *got;

	assert_non_null(a);
	fill_procs(p);
	agg__begin(a, 1);
	got = ss_of(a, NULL, 0, false);
	assert_string_equal(got, SCHEMA ",\"exporter\":\"pymemleak\",\"name\":\"pymemleak: 0 "
					"processes\",\"activeProfileIndex\":0,\"profiles\":[],"
					"\"shared\":{\"frames\":[]}}\n");
	free(got);
	got = ss_of(a, p, 1, true);
	assert_contains(got, "\"profiles\":[{\"type\":\"sampled\",\"name\":\"4242 python3 app.py\","
			     "\"unit\":\"bytes\",\"startValue\":0,\"endValue\":0,\"samples\":[],"
			     "\"weights\":[]}],\"shared\":{\"frames\":[]}}\n");
	free(got);
	agg__free(a);
}

static void export_speedscope__write__bad_args__einval(void **state)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	assert_int_equal(export_speedscope__write(NULL, a, NULL, 0, false), -EINVAL);
	assert_int_equal(export_speedscope__write(stdout, NULL, NULL, 0, false), -EINVAL);
	assert_int_equal(export_speedscope__write(stdout, a, NULL, 1, false), -EINVAL);
	agg__free(a);
}

static void export_speedscope__write__full_device__enospc(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	FILE *f = fopen("/dev/full", "w");

	if (!f) {
		agg__free(a);
		skip();
	}
	fill_procs(p);
	assert_int_equal(export_speedscope__write(f, a, p, 2, true), -ENOSPC);
	fclose(f);
	agg__free(a);
}

/*
 * Python's json reads the file, and it is what speedscope expects: every
 * index in bounds, weights matching samples, endValue their sum, frames
 * distinct, the odd names decoded to what was meant, the deep stack whole.
 */
static const char py_check[] =
	"import json, sys\n"
	"d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
	"assert d['$schema'] == 'https://www.speedscope.app/file-format-schema.json'\n"
	"frames = d['shared']['frames']\n"
	"keys = [(f['name'], f.get('file'), f.get('line')) for f in frames]\n"
	"assert len(set(keys)) == len(keys), 'duplicate frames'\n"
	"for f in frames:\n"
	"    assert isinstance(f['name'], str) and f['name']\n"
	"    assert set(f) <= {'name', 'file', 'line'}\n"
	"    assert 'line' not in f or (isinstance(f['line'], int) and f['line'] > 0)\n"
	"assert len(d['profiles']) == 2 and 0 <= d['activeProfileIndex'] < 2\n"
	"for p in d['profiles']:\n"
	"    assert p['type'] == 'sampled' and p['unit'] == 'bytes' and p['startValue'] == 0\n"
	"    assert len(p['samples']) == len(p['weights'])\n"
	"    assert p['endValue'] == sum(p['weights'])\n"
	"    for s in p['samples']:\n"
	"        assert s and all(isinstance(i, int) and 0 <= i < len(frames) for i in s)\n"
	"        assert frames[s[0]]['name'] == p['name'], 'process frame first'\n"
	"names = [f['name'] for f in frames]\n"
	"assert 'a;b c\"d\\'<&>\\\\ (\\u00e9\\u2713??.py:7)' in names, names\n"
	"deep = [s for p in d['profiles'] for s in p['samples'] if len(s) == 65]\n"
	"assert len(deep) == 1, 'no 64-frame sample'\n"
	"assert [frames[i]['name'] for i in deep[0][1:3]] == ['f63 (d.py:64)', 'f62 (d.py:63)']\n"
	"assert d['profiles'][0]['endValue'] == 3 * (2**31 + 5) + 100 + 10 + 2**40\n";

static void export_speedscope__write__output__python_parses_it(void **state)
{
	struct pml_pyframe deep[64];
	struct pml_stackinfo deep_info = { .frames = deep, .nframes = 64 };
	char path[] = "/tmp/test_export_speedscope.XXXXXX", cmd[256], names[64][16];
	struct pml_procinfo p[2];
	struct pml_agg *a;
	FILE *f;
	int fd, rc, i;

	if (access(PYTHON, X_OK))
		skip();
	for (i = 0; i < 64; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		deep[i] =
			(struct pml_pyframe){ .file = "d.py", .function = names[i], .line = i + 1 };
	}
	a = small_agg();
	assert_int_equal(agg__add(a, 4242, 0x98, 0, 10, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x98, &odd_info), 0);
	assert_int_equal(agg__add(a, 4242, 0x99, 0, 1ll << 40, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x99, &deep_info), 0);
	fill_procs(p);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(export_speedscope__write(f, a, p, 2, true), 0);
	assert_int_equal(fclose(f), 0);

	snprintf(cmd, sizeof(cmd), PYTHON " -c \"$PML_PY_CHECK\" %s", path);
	assert_int_equal(setenv("PML_PY_CHECK", py_check, 1), 0);
	rc = system(cmd);
	unlink(path);
	agg__free(a);
	assert_int_equal(rc, 0);
}

static void export_speedscope__write__shared_frame__listed_once(void **state)
{
	struct pml_agg *a = small_agg();
	struct pml_procinfo p[2];
	char *got;

	fill_procs(p);
	got = ss_of(a, p, 2, true);
	assert_int_equal(count_of(got, "{\"name\":\"leak (app.py:12)\""), 1);
	assert_int_equal(count_of(got, "{\"name\":\"4242 python3 app.py\"}"), 1);
	assert_int_equal(count_of(got, "{\"name\":\"77 python3 \\\"w\\\".py\"}"), 1);
	free(got);
	agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(export_speedscope__write__small__matches_golden),
		cmocka_unit_test(
			export_speedscope__write__two_processes__profiles_and_shared_frames),
		cmocka_unit_test(export_speedscope__write__pid_root__process_frame_first),
		cmocka_unit_test(export_speedscope__write__odd_names__json_escaped),
		cmocka_unit_test(export_speedscope__write__empty__valid),
		cmocka_unit_test(export_speedscope__write__shared_frame__listed_once),
		cmocka_unit_test(export_speedscope__write__bad_args__einval),
		cmocka_unit_test(export_speedscope__write__full_device__enospc),
		cmocka_unit_test(export_speedscope__write__output__python_parses_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
