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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "export_json.h"
#include "pymemleak.h"
#include "report.h"

#define SEC    1000000000ull
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
	[STAT_MISSED_RETURN] = "missed_returns",
	[STAT_INL_UNPAIRED] = "inlined_unpaired",
	[STAT_INL_ALLOCS] = "inlined_site_allocs",
};

/* Odd bytes a target may hold: quote, backslash, newline, \x01, é, ✓, \xff. */
#define ODD                    \
	"a\"b\\c\nd\x01"       \
	"\xc3\xa9\xe2\x9c\x93" \
	"\xff"                 \
	"z"
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
	assert_contains(
		j,
		"\"coverage\":{\"verdict\":\"partial\",\"reason\":\"static LTO build\","
		"\"allocs\":5000000000,\"frees\":877,\"lost\":{\"alloc_failed\":0,"
		"\"live_full\":12,\"outstanding_full\":0,\"stacks_full\":0,"
		"\"missed_entry\":0,\"unknown_free\":0,\"nested\":0,\"replaced\":0,"
		"\"threads_full\":0,\"stack_truncated\":0,\"stack_read_fault\":0,"
		"\"no_gil\":0,\"no_pystate\":0,\"raw_allocs\":0,\"obj_allocs\":4,\"stack_events_lost\":0,\"missed_returns\":0,\"inlined_unpaired\":0,\"inlined_site_allocs\":0,"
		"\"symbolization_failures\":2}},");
	/* 3 * (2^31 + 5) bytes */
	/* one snapshot: ranked by bytes, growth unknown, one point */
	assert_contains(j, "\"outstanding_bytes\":6442453107,\"outstanding_count\":6,"
			   "\"ranking\":\"bytes\",\"stacks\":[");
	assert_contains(
		j, "\"stacks\":[{\"bytes\":6442450959,\"count\":3,\"oldest_age_s\":12.000,"
		   "\"native\":[\"libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)\"],"
		   "\"flags\":[\"truncated\",\"no_gil\"],"
		   "\"frames\":[{\"file\":\"app.py\",\"function\":\"leak\",\"line\":12},"
		   "{\"file\":" ODD_JSON ",\"function\":\"<module>\",\"line\":0}],"
		   "\"growth_bytes_per_s\":0.000,\"growth_fit\":0.000,"
		   "\"series\":[[0.000,6442450959]],\"types\":[],\"types_sampled\":false},"
		   "{\"bytes\":2048,\"count\":2,\"oldest_age_s\":1.500,\"native\":[],"
		   "\"flags\":[],\"frames\":[],\"growth_bytes_per_s\":0.000,\"growth_fit\":0.000,"
		   "\"series\":[[0.000,2048]],\"types\":[],\"types_sampled\":false}]}");
	/* top 2: the third stack is left out */
	assert_null(strstr(j, "\"bytes\":100,"));
	assert_contains(j, "{\"pid\":77,\"cmdline\":\"\",\"python\":\"9999999999999999\","
			   "\"build\":\"\",\"exited\":true,\"coverage\":{\"verdict\":\"complete\","
			   "\"reason\":\"\",\"allocs\":0,\"frees\":0,\"lost\":{\"alloc_failed\":0,"
			   "\"symbolization_failures\":0}},\"outstanding_bytes\":0,"
			   "\"outstanding_count\":0,\"ranking\":\"bytes\",\"stacks\":[]}]}\n");
	free(j);

	/* top 0: all stacks, the unsymbolized one flagged */
	j = json_of(a, p, 1, 1.0, 0);
	assert_contains(j,
			"{\"bytes\":100,\"count\":1,\"oldest_age_s\":1.000,\"native\":[],"
			"\"flags\":[\"unsymbolized\"],\"frames\":[],\"growth_bytes_per_s\":0.000,"
			"\"growth_fit\":0.000,\"series\":[[0.000,100]],\"types\":[],"
			"\"types_sampled\":false}]}]}\n");
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
static const char py_check[] = "import json,sys\n"
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
	assert_int_equal(
		export_json__write(f, a, p, 2, 100 * SEC, 12.3, 0, PML_SORT_BYTES, stat_names), 0);
	assert_int_equal(fclose(f), 0);

	snprintf(cmd, sizeof(cmd), PYTHON " -c \"$PML_PY_CHECK\" %s", path);
	assert_int_equal(setenv("PML_PY_CHECK", py_check, 1), 0);
	rc = system(cmd);
	unlink(path);
	agg__free(a);
	assert_int_equal(rc, 0);
}

/* --- growth, types, series; golden file and schema ----------------------- */

#define MIB	  (1024 * 1024)
#define DEEP	  64
#define VALIDATOR PML_SRCDIR "/tests/unit/check_json_schema.py"
#define SCHEMA	  PML_SRCDIR "/tests/unit/fixtures/report.schema.json"

static struct pml_pyframe deep_frames[DEEP];
static char deep_names[DEEP][2][32];

static struct pml_typecount tc(const char *name, uint64_t bytes, uint64_t count)
{
	struct pml_typecount t = { .bytes = bytes, .count = count };

	snprintf(t.name, sizeof(t.name), "%s", name);
	return t;
}

/*
 * 4 snapshots 5 s apart: a leak with odd frame names and sampled types, a
 * flat 6 GiB buffer 64 frames deep, a shrinking stack, one seen once and
 * never symbolized; a second process that appeared at the last snapshot.
 */
static struct pml_agg *growth_agg(void)
{
	static struct pml_pyframe odd[] = {
		{ .file = "/srv/my app/handlers v2.py", .function = "Handler.on;json", .line = 42 },
		{ .file = "/srv/na\xc3\xafve \"q\".py",
		  .function = "\xce\xbb <lambda>;x",
		  .line = 7 },
		{ .file = ODD, .function = "<module>", .line = 0 },
	};
	const struct pml_stackinfo leak = {
		.native = "libpython3.12.so.1.0+0x1cfdb0 (PyDict_New+0x40)",
		.frames = odd,
		.nframes = 3,
	};
	const struct pml_stackinfo deep = {
		.native = "libc.so.6+0x9a0 (malloc+0x0)",
		.frames = deep_frames,
		.nframes = DEEP,
		.flags = PML_STACK_TRUNCATED,
	};
	const struct pml_stackinfo shrink = { .frames = odd + 2, .nframes = 1 };
	struct pml_typecount types[3] = { tc("dict", 20480, 80), tc("list", 20480, 40),
					  tc("str\xff;\"", 1229, 20) };
	struct pml_typecount buf = tc("bytearray", 6ull << 30, 3);
	struct pml_agg *a = agg__new();
	uint64_t k;
	int i;

	assert_non_null(a);
	for (i = 0; i < DEEP; i++) {
		snprintf(deep_names[i][0], sizeof(deep_names[i][0]), "deep/mod%02d.py", i);
		snprintf(deep_names[i][1], sizeof(deep_names[i][1]), "level_%d", i);
		deep_frames[i] = (struct pml_pyframe){ .file = deep_names[i][0],
						       .function = deep_names[i][1],
						       .line = 100 + i };
	}
	for (k = 0; k < 4; k++) {
		agg__begin(a, 100 * SEC + k * 5 * SEC);
		for (i = 0; i <= (int)k; i++)
			assert_int_equal(agg__add(a, 4242, 0x11, 100 * SEC + (uint64_t)i * 5 * SEC,
						  MIB, 64, 0),
					 0);
		assert_int_equal(agg__add(a, 4242, 0x22, 90 * SEC, 6ll << 30, 3, 0), 0);
		assert_int_equal(agg__add(a, 4242, 0x44, 95 * SEC, 4000 - 1000 * (int64_t)k,
					  4 - (int64_t)k, 0),
				 0);
		if (k == 3) {
			assert_int_equal(agg__add(a, 4242, 0x33, 110 * SEC, 500, 5, 0), 0);
			assert_int_equal(agg__add(a, 77, 0x11, 112 * SEC, 4096, 1, 0), 0);
		}
	}
	assert_int_equal(agg__set_stack(a, 4242, 0x11, &leak), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x22, &deep), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x44, &shrink), 0);
	assert_int_equal(agg__set_types(a, 4242, 0x11, types, 3, true), 0);
	assert_int_equal(agg__set_types(a, 4242, 0x22, &buf, 1, false), 0);
	return a;
}

/* Few counters, so that new STAT_* values do not change the golden file. */
static void growth_procs(struct pml_procinfo *p)
{
	fill_procs(p);
	p[0].nstats = 3;
	p[0].stats[STAT_ALLOC_FAILED] = 1;
	p[1].nstats = 0;
}

static char *growth_json(const struct pml_agg *a, enum pml_sort sort)
{
	struct pml_procinfo p[2];
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	growth_procs(p);
	assert_int_equal(export_json__write(f, a, p, 2, 115 * SEC, 15.0, 0, sort, stat_names), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void export_json__write__growth_types_series__expected_keys(void **state)
{
	struct pml_agg *a = growth_agg();
	char *j = growth_json(a, PML_SORT_AUTO);

	assert_contains(j, "\"outstanding_bytes\":6446646748,\"outstanding_count\":265,"
			   "\"ranking\":\"growth\",\"stacks\":[{\"bytes\":4194304,\"count\":256,");
	/* 1 MiB per 5 s, a perfect line */
	assert_contains(j, "\"growth_bytes_per_s\":209715.200,\"growth_fit\":1.000,"
			   "\"series\":[[0.000,1048576],[5.000,2097152],[10.000,3145728],"
			   "[15.000,4194304]],\"types\":[{\"type\":\"dict\",\"bytes\":20480,"
			   "\"count\":80},{\"type\":\"list\",\"bytes\":20480,\"count\":40},"
			   "{\"type\":\"str\\ufffd;\\\"\",\"bytes\":1229,\"count\":20}],"
			   "\"types_sampled\":true}");
	/* above 2^32, flat: no growth; exact types */
	assert_contains(j, "{\"bytes\":6442450944,\"count\":3,\"oldest_age_s\":25.000,");
	assert_contains(j, "{\"file\":\"deep/mod63.py\",\"function\":\"level_63\",\"line\":163}],"
			   "\"growth_bytes_per_s\":0.000,\"growth_fit\":0.000,"
			   "\"series\":[[0.000,6442450944],[5.000,6442450944],[10.000,6442450944],"
			   "[15.000,6442450944]],\"types\":[{\"type\":\"bytearray\","
			   "\"bytes\":6442450944,\"count\":3}],\"types_sampled\":false}");
	/* shrinking: a negative rate */
	assert_contains(j, "\"growth_bytes_per_s\":-200.000,\"growth_fit\":1.000,"
			   "\"series\":[[0.000,4000],[5.000,3000],[10.000,2000],[15.000,1000]]");
	/* a stack seen once: times since the trace's first snapshot */
	assert_contains(j, "\"series\":[[15.000,500]],\"types\":[],\"types_sampled\":false}]}");
	/* the late process: bytes until it has 3 snapshots */
	assert_contains(j, "{\"pid\":77,");
	assert_contains(
		j, "\"outstanding_bytes\":4096,\"outstanding_count\":1,\"ranking\":\"bytes\",");
	free(j);

	/* the user's choice is named */
	j = growth_json(a, PML_SORT_COUNT);
	assert_contains(j, "\"ranking\":\"count\",\"stacks\":[{\"bytes\":4194304,\"count\":256,");
	assert_null(strstr(j, "\"ranking\":\"growth\""));
	free(j);
	agg__free(a);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0;
	FILE *m;
	int c;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &len);
	assert_non_null(m);
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	assert_int_equal(fclose(m), 0);
	return buf;
}

static void write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	fputs(s, f);
	assert_int_equal(fclose(f), 0);
}

/* Exit status of the validator on path, its output in out. */
static int validate(const char *schema, const char *path, char *out, size_t outlen)
{
	char cmd[1024];
	size_t n = 0;
	FILE *p;
	int rc;

	snprintf(cmd, sizeof(cmd), PYTHON " '%s' '%s' '%s' 2>&1", VALIDATOR, schema, path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (n + 1 < outlen && fgets(out + n, (int)(outlen - n), p))
		n += strlen(out + n);
	out[n] = '\0';
	rc = pclose(p);
	assert_true(WIFEXITED(rc));
	return WEXITSTATUS(rc);
}

#define GOLDEN PML_SRCDIR "/tests/unit/fixtures/report.golden.json"

/*
 * The whole output against tests/unit/fixtures/report.golden.json
 * (PML_UPDATE_GOLDEN=1 rewrites it: review the diff), and both against the
 * schema with the plain-Python validator.
 */
static void export_json__write__golden__identical_and_schema_valid(void **state)
{
	char tmp[] = "/tmp/test_export_json.XXXXXX", out[4096];
	struct pml_agg *a = growth_agg();
	char *j = growth_json(a, PML_SORT_AUTO), *want;
	int fd;

	if (getenv("PML_UPDATE_GOLDEN"))
		write_file(GOLDEN, j);
	want = read_file(GOLDEN);
	if (!want)
		fail_msg("cannot read %s", GOLDEN);
	if (strcmp(j, want)) {
		write_file("/tmp/report.golden.json.actual", j);
		fail_msg("output differs from %s: compare /tmp/report.golden.json.actual", GOLDEN);
	}
	free(want);
	agg__free(a);

	if (access(PYTHON, X_OK)) {
		free(j);
		skip();
	}
	assert_int_equal(validate(SCHEMA, GOLDEN, out, sizeof(out)), 0);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	write_file(tmp, j);
	if (validate(SCHEMA, tmp, out, sizeof(out)))
		fail_msg("schema: %s", out);
	unlink(tmp);
	free(j);
}

/* s with the first `from` replaced by `to`, in a fresh string. */
static char *replaced(const char *s, const char *from, const char *to)
{
	const char *at = strstr(s, from);
	char *r;

	if (!at)
		fail_msg("no %s to replace", from);
	r = malloc(strlen(s) + strlen(to) + 1);
	assert_non_null(r);
	memcpy(r, s, (size_t)(at - s));
	strcpy(r + (at - s), to);
	strcat(r, at + strlen(from));
	return r;
}

/* The validator can fail: each broken document fails at the path named. */
static void check_json_schema__broken_documents__fail_with_path(void **state)
{
	static const struct {
		const char *from, *to, *want;
	} cases[] = {
		{ "\"ranking\":\"growth\",", "",
		  "$.processes[0]: required key \"ranking\" missing" },
		{ "\"growth_fit\":1.000", "\"growth_fit\":1.500",
		  "$.processes[0].stacks[0].growth_fit: 1.5 is above maximum 1" },
		{ "\"growth_bytes_per_s\":209715.200", "\"growth_bytes_per_s\":NaN",
		  "$: not strict JSON" },
		{ "\"growth_bytes_per_s\":209715.200", "\"growth_bytes_per_s\":Infinity",
		  "$: not strict JSON" },
		{ "\"types_sampled\":true", "\"types_sampled\":true,\"extra\":1",
		  "$.processes[0].stacks[0].extra: key not allowed" },
		{ "{\"version\":1,", "{\"version\":2,", "$.version: 2 is not one of [1]" },
		{ "{\"version\":1,", "{\"version\":1,\"version\":1,", "duplicate key \"version\"" },
		{ "[[0.000,1048576]", "[[0.000,1048576,3]",
		  "$.processes[0].stacks[0].series[0]: 3 items, more than 2" },
		{ "[[0.000,1048576]", "[[0.000,-1]",
		  "$.processes[0].stacks[0].series[0][1]: -1 is below minimum 0" },
		{ "{\"bytes\":4194304,", "{\"bytes\":4194304.000,",
		  "$.processes[0].stacks[0].bytes: number 4194304.0 where integer was expected" },
		{ "\"types_sampled\":true", "\"types_sampled\":1",
		  "$.processes[0].stacks[0].types_sampled: integer where boolean was expected" },
		{ "{\"type\":\"dict\",\"bytes\":20480,\"count\":80}",
		  "{\"type\":\"dict\",\"bytes\":20480,\"count\":\"80\"}",
		  "$.processes[0].stacks[0].types[0].count: string where integer was expected" },
		{ "\"verdict\":\"partial\"", "\"verdict\":\"done\"",
		  "$.processes[0].coverage.verdict: \"done\" is not one of" },
		{ "\"alloc_failed\":1", "\"alloc_failed\":true",
		  "$.processes[0].coverage.lost.alloc_failed: boolean where integer was expected" },
		{ "\"flags\":[\"truncated\"]", "\"flags\":[\"truncated\",\"odd\"]",
		  "$.processes[0].stacks[1].flags[1]: \"odd\" is not one of" },
	};
	char tmp[] = "/tmp/test_export_json.XXXXXX", out[4096];
	struct pml_agg *a;
	char *j, *bad;
	size_t i;
	int fd;

	if (access(PYTHON, X_OK))
		skip();
	a = growth_agg();
	j = growth_json(a, PML_SORT_AUTO);
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bad = replaced(j, cases[i].from, cases[i].to);
		write_file(tmp, bad);
		free(bad);
		if (validate(SCHEMA, tmp, out, sizeof(out)) != 1 || !strstr(out, cases[i].want))
			fail_msg("case %zu: want exit 1 and \"%s\", got: %s", i, cases[i].want,
				 out);
	}

	/* a schema outside the subset is refused, not half-applied */
	write_file(tmp, "{\"type\":\"object\",\"properties\":{\"a\":{\"maxLength\":3}}}");
	assert_int_equal(validate(tmp, GOLDEN, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "unsupported keyword(s) maxLength"));
	unlink(tmp);
	free(j);
	agg__free(a);
}

/* Growth from degenerate series still writes finite, schema-valid numbers. */
static void export_json__write__degenerate_growth__finite_numbers(void **state)
{
	char tmp[] = "/tmp/test_export_json.XXXXXX", out[4096];
	struct pml_agg *a = agg__new();
	struct pml_procinfo p[2];
	char *buf = NULL, *c;
	size_t len = 0;
	FILE *f;
	int k, fd;

	assert_non_null(a);
	for (k = 0; k < 6; k++) {
		/* the same instant three times, then the clock going back */
		agg__begin(a, k < 3 ? 5 * SEC : (uint64_t)(9 - k) * SEC);
		assert_int_equal(agg__add(a, 4242, 1, 0, INT64_MAX, 1, 0), 0);
		assert_int_equal(agg__add(a, 4242, 1, 0, k % 2 ? INT64_MAX : 1, 1, 0), 0);
		assert_int_equal(agg__add(a, 4242, 2, 0, 1 + k, 1, 0), 0);
	}
	growth_procs(p);
	f = open_memstream(&buf, &len);
	assert_non_null(f);
	assert_int_equal(export_json__write(f, a, p, 1, 0, 1.0, 0, PML_SORT_GROWTH, stat_names), 0);
	assert_int_equal(fclose(f), 0);
	for (c = buf; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	assert_null(strstr(buf, "nan"));
	assert_null(strstr(buf, "inf"));
	assert_non_null(strstr(buf, "\"ranking\":\"growth\""));
	if (access(PYTHON, X_OK)) {
		free(buf);
		agg__free(a);
		skip();
	}
	fd = mkstemp(tmp);
	assert_true(fd >= 0);
	close(fd);
	write_file(tmp, buf);
	if (validate(SCHEMA, tmp, out, sizeof(out)))
		fail_msg("schema: %s\n%s", out, buf);
	unlink(tmp);
	free(buf);
	agg__free(a);
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
		cmocka_unit_test(export_json__write__growth_types_series__expected_keys),
		cmocka_unit_test(export_json__write__golden__identical_and_schema_valid),
		cmocka_unit_test(check_json_schema__broken_documents__fail_with_path),
		cmocka_unit_test(export_json__write__degenerate_growth__finite_numbers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
