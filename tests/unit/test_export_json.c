/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests of user/export_json.c (linked with user/report.c). */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "export_json.h"
#include "pymemleak.h"
#include "report.h"

#define SEC 1000000000ull
#define PYTHON "/usr/bin/python3"

static const char *const stat_names[STAT__MAX] = {
	[STAT_ALLOCS] = "allocs",
	[STAT_FREES] = "frees",
	[STAT_ALLOC_FAILED] = "alloc_failed",
	[STAT_LIVE_FULL] = "live_full",
	[STAT_OUTSTANDING_FULL] = "outstanding_full",
	[STAT_STACKS_FULL] = "stacks_full",
	[STAT_MISSED_ENTRY] = "missed_entry",
	[STAT_UNKNOWN_FREE] = "unknown_free",
	[STAT_NESTED] = "nested",
	[STAT_REPLACED] = "replaced",
	[STAT_THREADS_FULL] = "threads_full",
	[STAT_STACK_TRUNCATED] = "stack_truncated",
	[STAT_STACK_READ_FAULT] = "stack_read_fault",
	[STAT_NO_GIL] = "no_gil",
	[STAT_NO_PYSTATE] = "no_pystate",
	[STAT_RAW_ALLOCS] = "raw_allocs",
	[STAT_OBJ_ALLOCS] = "obj_allocs",
	[STAT_STACK_EVENTS_LOST] = "stack_events_lost",
};

/* Odd bytes a target may hold: quote, backslash, newline, \x01, é, ✓, \xff. */
#define ODD "a\"b\\c\nd\x01" "\xc3\xa9\xe2\x9c\x93" "\xff" "z"
#define ODD_JSON "\"a\\\"b\\\\c\\u000ad\\u0001\xc3\xa9\xe2\x9c\x93\\ufffdz\""

static char *string_of(const char *s, size_t len)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);

	assert_non_null(f);
	export_json__string(f, s, len);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void check_string(const char *s, size_t len, const char *want)
{
	char *got = string_of(s, len);

	assert_string_equal(got, want);
	free(got);
}

static void export_json__string__odd_bytes__escaped(void **state)
{
	check_string(ODD, strlen(ODD), ODD_JSON);
	check_string("", 0, "\"\"");
	check_string(NULL, 5, "\"\"");
	check_string("\t\r\x1f\x7f/", 5, "\"\\u0009\\u000d\\u001f\x7f/\"");
	/* an embedded NUL inside the given length is data */
	check_string("a\0b", 3, "\"a\\u0000b\"");
	/* overlong, surrogate, truncated: one U+FFFD per bad byte */
	check_string("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
	check_string("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
	check_string("x\xe2\x9c", 3, "\"x\\ufffd\\ufffd\"");
	check_string("\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\"");
}

static struct pml_pyframe frames[] = {
	{ .file = "app.py", .function = "leak", .line = 12 },
	{ .file = ODD, .function = "<module>", .line = 0 },
};

static const struct pml_stackinfo info = {
	.native = "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)",
	.frames = frames,
	.nframes = 2,
	.flags = PML_STACK_NO_GIL | PML_STACK_TRUNCATED,
};

static void fill_procs(struct pml_procinfo *p)
{
	memset(p, 0, 2 * sizeof(*p));
	p[0].pid = 4242;
	snprintf(p[0].cmdline, sizeof(p[0].cmdline), "%s", ODD);
	snprintf(p[0].python, sizeof(p[0].python), "3.12.1");
	snprintf(p[0].build, sizeof(p[0].build), "shared libpython (symtab)");
	p[0].cov.complete = false;
	snprintf(p[0].cov.reason, sizeof(p[0].cov.reason), "static LTO build");
	p[0].nstats = STAT__MAX;
	p[0].stats[STAT_ALLOCS] = 5000000000ull;
	p[0].stats[STAT_FREES] = 877;
	p[0].stats[STAT_LIVE_FULL] = 12;
	p[0].stats[STAT_OBJ_ALLOCS] = 4;
	p[0].sym_failures = 2;
	p[1].pid = 77;
	p[1].exited = true;
	p[1].cov.complete = true;
	/* not NUL-terminated: read up to the array size */
	memset(p[1].python, '9', sizeof(p[1].python));
	p[1].nstats = 3;
}

static struct pml_agg *fill_agg(void)
{
	struct pml_agg *a = agg__new();
	const int64_t big = (1ll << 31) + 5;
	int i;

	assert_non_null(a);
	agg__begin(a, 100 * SEC);
	for (i = 0; i < 3; i++)
		assert_int_equal(agg__add(a, 4242, 0x11, (88 + (uint64_t)i) * SEC, big, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x22, 98500000000ull, 2048, 2, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x33, 99 * SEC, 100, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x11, &info), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x22, &(struct pml_stackinfo){ 0 }), 0);
	return a;
}

static char *json_of(const struct pml_agg *a, const struct pml_procinfo *p, size_t np,
		     double duration, size_t top)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(export_json__write(f, a, p, np, 100 * SEC, duration, top, PML_SORT_BYTES,
					    stat_names),
			 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("missing %s\n--- in ---\n%s", needle, hay);
}

static void export_json__write__report__golden_substrings(void **state)
{
	struct pml_agg *a = fill_agg();
	struct pml_procinfo p[2];
	char *j;

	fill_procs(p);
	j = json_of(a, p, 2, 12.3, 2);
	assert_contains(j, "{\"version\":1,\"duration_s\":12.300,\"processes\":[{\"pid\":4242,"
			   "\"cmdline\":" ODD_JSON ",\"python\":\"3.12.1\","
			   "\"build\":\"shared libpython (symtab)\",\"exited\":false,");
	assert_contains(j, "\"coverage\":{\"verdict\":\"partial\",\"reason\":\"static LTO build\","
			   "\"allocs\":5000000000,\"frees\":877,\"lost\":{\"alloc_failed\":0,"
			   "\"live_full\":12,\"outstanding_full\":0,\"stacks_full\":0,"
			   "\"missed_entry\":0,\"unknown_free\":0,\"nested\":0,\"replaced\":0,"
			   "\"threads_full\":0,\"stack_truncated\":0,\"stack_read_fault\":0,"
			   "\"no_gil\":0,\"no_pystate\":0,\"raw_allocs\":0,\"obj_allocs\":4,\"stack_events_lost\":0,"
			   "\"symbolization_failures\":2}},");
	/* 3 * (2^31 + 5) bytes */
	assert_contains(j, "\"outstanding_bytes\":6442453107,\"outstanding_count\":6,\"stacks\":[");
	assert_contains(j, "\"stacks\":[{\"bytes\":6442450959,\"count\":3,\"oldest_age_s\":12.000,"
			   "\"native\":[\"libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)\"],"
			   "\"flags\":[\"truncated\",\"no_gil\"],"
			   "\"frames\":[{\"file\":\"app.py\",\"function\":\"leak\",\"line\":12},"
			   "{\"file\":" ODD_JSON ",\"function\":\"<module>\",\"line\":0}]},"
			   "{\"bytes\":2048,\"count\":2,\"oldest_age_s\":1.500,\"native\":[],"
			   "\"flags\":[],\"frames\":[]}]}");
	/* top 2: the third stack is left out */
	assert_null(strstr(j, "\"bytes\":100,"));
	assert_contains(j, "{\"pid\":77,\"cmdline\":\"\",\"python\":\"9999999999999999\","
			   "\"build\":\"\",\"exited\":true,\"coverage\":{\"verdict\":\"complete\","
			   "\"reason\":\"\",\"allocs\":0,\"frees\":0,\"lost\":{\"alloc_failed\":0,"
			   "\"symbolization_failures\":0}},\"outstanding_bytes\":0,"
			   "\"outstanding_count\":0,\"stacks\":[]}]}\n");
	free(j);

	/* top 0: all stacks, the unsymbolized one flagged */
	j = json_of(a, p, 1, 1.0, 0);
	assert_contains(j, "{\"bytes\":100,\"count\":1,\"oldest_age_s\":1.000,\"native\":[],"
			   "\"flags\":[\"unsymbolized\"],\"frames\":[]}]}]}\n");
	free(j);
	agg__free(a);
}

static void export_json__write__non_finite_duration__zero(void **state)
{
	struct pml_agg *a = agg__new();
	char *j;

	assert_non_null(a);
	agg__begin(a, SEC);
	j = json_of(a, NULL, 0, NAN, 0);
	assert_string_equal(j, "{\"version\":1,\"duration_s\":0.000,\"processes\":[]}\n");
	free(j);
	j = json_of(a, NULL, 0, -INFINITY, 0);
	assert_string_equal(j, "{\"version\":1,\"duration_s\":0.000,\"processes\":[]}\n");
	free(j);
	j = json_of(a, NULL, 0, 0.0004, 0);
	assert_string_equal(j, "{\"version\":1,\"duration_s\":0.000,\"processes\":[]}\n");
	free(j);
	j = json_of(a, NULL, 0, 3599.9996, 0);
	assert_string_equal(j, "{\"version\":1,\"duration_s\":3600.000,\"processes\":[]}\n");
	free(j);
	agg__free(a);
}

static void export_json__write__bad_args__einval(void **state)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	assert_int_equal(export_json__write(NULL, a, NULL, 0, 0, 0, 0, PML_SORT_BYTES, NULL),
			 -EINVAL);
	assert_int_equal(export_json__write(stdout, NULL, NULL, 0, 0, 0, 0, PML_SORT_BYTES, NULL),
			 -EINVAL);
	assert_int_equal(export_json__write(stdout, a, NULL, 1, 0, 0, 0, PML_SORT_BYTES, NULL),
			 -EINVAL);
	agg__free(a);
}

static void export_json__write__full_device__enospc(void **state)
{
	struct pml_agg *a = fill_agg();
	struct pml_procinfo p[2];
	FILE *f = fopen("/dev/full", "w");

	if (!f) {
		agg__free(a);
		skip();
	}
	fill_procs(p);
	assert_int_equal(export_json__write(f, a, p, 2, 100 * SEC, 1.0, 0, PML_SORT_BYTES,
					    stat_names),
			 -ENOSPC);
	fclose(f);
	agg__free(a);
}

/*
 * Python parses the file, and the decoded strings are what was meant:
 * the invalid byte as U+FFFD, everything else unchanged.
 */
static const char py_check[] =
	"import json,sys\n"
	"d = json.load(open(sys.argv[1], encoding='utf-8'))\n"
	"odd = 'a\"b\\\\c\\nd\\x01\\u00e9\\u2713\\ufffdz'\n"
	"p = d['processes'][0]\n"
	"assert d['version'] == 1\n"
	"assert p['cmdline'] == odd, repr(p['cmdline'])\n"
	"assert p['outstanding_bytes'] == 3 * (2**31 + 5) + 2048 + 100\n"
	"assert p['stacks'][0]['frames'][1]['file'] == odd\n"
	"assert p['coverage']['lost']['live_full'] == 12\n"
	"assert 'allocs' not in p['coverage']['lost']\n"
	"assert len(p['stacks']) == 3\n"
	"assert d['processes'][1]['stacks'] == []\n";

static void export_json__write__output__python_parses_it(void **state)
{
	char path[] = "/tmp/test_export_json.XXXXXX", cmd[256];
	struct pml_agg *a;
	struct pml_procinfo p[2];
	FILE *f;
	int fd, rc;

	if (access(PYTHON, X_OK))
		skip();
	a = fill_agg();
	fill_procs(p);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	assert_int_equal(export_json__write(f, a, p, 2, 100 * SEC, 12.3, 0, PML_SORT_BYTES,
					    stat_names),
			 0);
	assert_int_equal(fclose(f), 0);

	snprintf(cmd, sizeof(cmd), PYTHON " -c \"$PML_PY_CHECK\" %s", path);
	assert_int_equal(setenv("PML_PY_CHECK", py_check, 1), 0);
	rc = system(cmd);
	unlink(path);
	agg__free(a);
	assert_int_equal(rc, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(export_json__string__odd_bytes__escaped),
		cmocka_unit_test(export_json__write__report__golden_substrings),
		cmocka_unit_test(export_json__write__non_finite_duration__zero),
		cmocka_unit_test(export_json__write__bad_args__einval),
		cmocka_unit_test(export_json__write__full_device__enospc),
		cmocka_unit_test(export_json__write__output__python_parses_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
