/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests of user/report.c: aggregation, growth, ranking, types, text report. */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pymemleak.h"
#include "report.h"

#define SEC 1000000000ull

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
};

static struct pml_agg *new_agg(uint64_t now)
{
	struct pml_agg *a = agg__new();

	assert_non_null(a);
	agg__begin(a, now);
	return a;
}

/* The row of (pid, stack) after ranking, or NULL. */
static const struct pml_row *find_row(struct pml_agg *a, uint32_t pid, uint64_t stack)
{
	const struct pml_row *rows;
	size_t n = agg__rank(a, PML_SORT_BYTES, &rows), i;

	for (i = 0; i < n; i++)
		if (rows[i].pid == pid && rows[i].stack_id == stack)
			return &rows[i];
	return NULL;
}

static void agg__same_stack_three_epochs__summed_oldest_is_min(void **state)
{
	struct pml_agg *a = new_agg(100 * SEC);
	const struct pml_row *r;
	uint64_t b, c;

	assert_int_equal(agg__add(a, 7, 0xabc, 60 * SEC, 100, 2, 0), 0);
	assert_int_equal(agg__add(a, 7, 0xabc, 20 * SEC, 50, 1, 0), 0);
	assert_int_equal(agg__add(a, 7, 0xabc, 90 * SEC, 30, 3, 0), 0);
	assert_int_equal(agg__add(a, 7, 0xdef, 95 * SEC, 1, 1, 0), 0);
	assert_int_equal(agg__add(a, 8, 0xabc, 10 * SEC, 1000, 1, 0), 0);

	r = find_row(a, 7, 0xabc);
	assert_non_null(r);
	assert_int_equal(r->bytes, 180);
	assert_int_equal(r->count, 6);
	assert_int_equal(r->oldest_ns, 20 * SEC);
	agg__totals(a, 7, &b, &c);
	assert_int_equal(b, 181);
	assert_int_equal(c, 7);
	agg__totals(a, 8, &b, &c);
	assert_int_equal(b, 1000);
	assert_int_equal(c, 1);
	agg__totals(a, 9, &b, &c);
	assert_int_equal(b, 0);
	assert_int_equal(c, 0);
	agg__free(a);
}

static void agg__older_than__young_epochs_ignored_boundary_counted(void **state)
{
	struct pml_agg *a = new_agg(100 * SEC);
	const struct pml_row *r;
	uint64_t b, c;

	/* age 5 s: younger than 10 s */
	assert_int_equal(agg__add(a, 1, 1, 95 * SEC, 1000, 10, 10 * SEC), 0);
	/* epoch started exactly 10 s ago: counts */
	assert_int_equal(agg__add(a, 1, 1, 90 * SEC, 7, 1, 10 * SEC), 0);
	assert_int_equal(agg__add(a, 1, 1, 50 * SEC, 3, 1, 10 * SEC), 0);
	/* epoch start in the future (clock skew): age 0 */
	assert_int_equal(agg__add(a, 1, 2, 101 * SEC, 5, 1, 10 * SEC), 0);
	/* a stack whose every epoch is too young gets no row */
	assert_int_equal(agg__add(a, 1, 3, 99 * SEC, 5, 1, 10 * SEC), 0);

	r = find_row(a, 1, 1);
	assert_non_null(r);
	assert_int_equal(r->bytes, 10);
	assert_int_equal(r->count, 2);
	assert_int_equal(r->oldest_ns, 50 * SEC);
	assert_null(find_row(a, 1, 2));
	assert_null(find_row(a, 1, 3));
	agg__totals(a, 1, &b, &c);
	assert_int_equal(b, 10);
	assert_int_equal(c, 2);

	/* without --older-than, the future epoch counts too */
	assert_int_equal(agg__add(a, 1, 2, 101 * SEC, 5, 1, 0), 0);
	assert_non_null(find_row(a, 1, 2));
	agg__free(a);
}

static void agg__sums_above_2_32__exact(void **state)
{
	struct pml_agg *a = new_agg(10 * SEC);
	const int64_t v = (1ll << 31) + 5;
	const struct pml_row *r;
	uint64_t b, c;
	int i;

	for (i = 0; i < 3; i++)
		assert_int_equal(agg__add(a, 3, 9, (uint64_t)i * SEC, v, v, 0), 0);
	r = find_row(a, 3, 9);
	assert_non_null(r);
	assert_true(r->bytes == 3ull * ((1ull << 31) + 5));
	assert_true(r->count == 3ull * ((1ull << 31) + 5));
	agg__totals(a, 3, &b, &c);
	assert_true(b == 6442450959ull);
	assert_true(c == 6442450959ull);
	agg__free(a);
}

static void agg__sum_beyond_u64__saturates(void **state)
{
	struct pml_agg *a = new_agg(10 * SEC);
	const struct pml_row *r;
	int i;

	for (i = 0; i < 3; i++)
		assert_int_equal(agg__add(a, 3, 9, (uint64_t)i, INT64_MAX, 1, 0), 0);
	r = find_row(a, 3, 9);
	assert_non_null(r);
	assert_true(r->bytes == UINT64_MAX);
	assert_int_equal(r->count, 3);
	agg__free(a);
}

static void agg__negative_or_zero_entries__ignored(void **state)
{
	struct pml_agg *a = new_agg(10 * SEC);
	const struct pml_row *rows, *r;
	uint64_t b, c;

	assert_int_equal(agg__add(a, 1, 1, 0, -64, 1, 0), 0);
	assert_int_equal(agg__add(a, 1, 1, 0, 64, 0, 0), 0);
	assert_int_equal(agg__add(a, 1, 1, 0, 0, 1, 0), 0);
	assert_int_equal(agg__add(a, 1, 1, 0, 64, -1, 0), 0);
	assert_int_equal(agg__add(a, 1, 1, 0, INT64_MIN, INT64_MIN, 0), 0);
	assert_int_equal(agg__rank(a, PML_SORT_BYTES, &rows), 0);
	agg__totals(a, 1, &b, &c);
	assert_int_equal(b, 0);
	assert_int_equal(c, 0);

	/* nor do they subtract from a stack that has memory */
	assert_int_equal(agg__add(a, 1, 1, 5 * SEC, 100, 2, 0), 0);
	assert_int_equal(agg__add(a, 1, 1, 0, -64, -1, 0), 0);
	r = find_row(a, 1, 1);
	assert_non_null(r);
	assert_int_equal(r->bytes, 100);
	assert_int_equal(r->count, 2);
	assert_int_equal(r->oldest_ns, 5 * SEC);
	agg__free(a);
}

struct entry {
	uint32_t pid;
	uint64_t stack;
	int64_t bytes, count;
};

static const struct entry tie_entries[] = {
	{ 2, 5, 100, 1 }, { 1, 9, 100, 1 }, { 1, 3, 100, 1 }, { 1, 4, 100, 2 },
	{ 3, 1, 50, 9 },  { 1, 7, 200, 1 }, { 2, 1, 100, 1 },
};

static void check_order(enum pml_sort sort, const struct entry *want, size_t nwant)
{
	size_t n = sizeof(tie_entries) / sizeof(tie_entries[0]), i, pass;
	const struct pml_row *rows;

	/* forward and backward insertion give the same order */
	for (pass = 0; pass < 2; pass++) {
		struct pml_agg *a = new_agg(SEC);

		for (i = 0; i < n; i++) {
			const struct entry *e = &tie_entries[pass ? n - 1 - i : i];

			assert_int_equal(agg__add(a, e->pid, e->stack, 0, e->bytes, e->count, 0),
					 0);
		}
		assert_int_equal(agg__rank(a, sort, &rows), nwant);
		for (i = 0; i < nwant; i++) {
			assert_int_equal(rows[i].pid, want[i].pid);
			assert_int_equal(rows[i].stack_id, want[i].stack);
		}
		agg__free(a);
	}
}

static void agg__rank_by_bytes_ties__count_then_pid_then_stack(void **state)
{
	static const struct entry want[] = {
		{ 1, 7 }, { 1, 4 }, { 1, 3 }, { 1, 9 }, { 2, 1 }, { 2, 5 }, { 3, 1 },
	};

	check_order(PML_SORT_BYTES, want, 7);
}

static void agg__rank_by_count_ties__bytes_then_pid_then_stack(void **state)
{
	static const struct entry want[] = {
		{ 3, 1 }, { 1, 4 }, { 1, 7 }, { 1, 3 }, { 1, 9 }, { 2, 1 }, { 2, 5 },
	};

	check_order(PML_SORT_COUNT, want, 7);
}

static struct pml_pyframe frames_a[] = {
	{ .file = "app.py", .function = "leak", .line = 12 },
	{ .file = "app.py", .function = "<module>", .line = 30 },
};

static const struct pml_stackinfo info_a = {
	.native = "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)",
	.frames = frames_a,
	.nframes = 2,
	.flags = 0,
};

static void agg__set_stack__deep_copied_and_replaced(void **state)
{
	struct pml_agg *a = new_agg(SEC);
	char file[] = "mutable.py", fn[] = "fn", native[] = "lib+0x1";
	struct pml_pyframe f = { .file = file, .function = fn, .line = 4 };
	struct pml_stackinfo si = { .native = native, .frames = &f, .nframes = 1 };
	const struct pml_row *r;

	assert_false(agg__has_stack(a, 5, 77));
	assert_int_equal(agg__set_stack(a, 5, 77, &si), 0);
	file[0] = 'X';
	native[0] = 'X';
	f.line = 99;
	assert_true(agg__has_stack(a, 5, 77));
	assert_int_equal(agg__add(a, 5, 77, 0, 10, 1, 0), 0);
	r = find_row(a, 5, 77);
	assert_non_null(r);
	assert_non_null(r->info);
	assert_string_equal(r->info->frames[0].file, "mutable.py");
	assert_string_equal(r->info->native, "lib+0x1");
	assert_int_equal(r->info->frames[0].line, 4);

	/* NULL strings and no frames are fine; a second set replaces */
	si = (struct pml_stackinfo){ .flags = PML_STACK_NO_GIL };
	assert_int_equal(agg__set_stack(a, 5, 77, &si), 0);
	r = find_row(a, 5, 77);
	assert_non_null(r->info);
	assert_null(r->info->native);
	assert_int_equal(r->info->nframes, 0);
	assert_int_equal(r->info->flags, PML_STACK_NO_GIL);
	agg__free(a);
}

static void agg__begin__rows_dropped_infos_kept(void **state)
{
	struct pml_agg *a = new_agg(SEC);
	const struct pml_row *rows;
	uint64_t b, c;

	assert_int_equal(agg__set_stack(a, 1, 1, &info_a), 0);
	assert_int_equal(agg__add(a, 1, 1, 0, 10, 1, 0), 0);
	assert_int_equal(agg__rank(a, PML_SORT_BYTES, &rows), 1);

	agg__begin(a, 2 * SEC);
	assert_int_equal(agg__rank(a, PML_SORT_BYTES, &rows), 0);
	agg__totals(a, 1, &b, &c);
	assert_int_equal(b, 0);
	assert_true(agg__has_stack(a, 1, 1));
	assert_int_equal(agg__add(a, 1, 1, 0, 20, 1, 0), 0);
	assert_int_equal(agg__rank(a, PML_SORT_BYTES, &rows), 1);
	assert_int_equal(rows[0].bytes, 20);
	assert_ptr_not_equal(rows[0].info, NULL);
	agg__free(a);
}

static void agg__drop_pid__only_that_pid_forgotten(void **state)
{
	struct pml_agg *a = new_agg(SEC);
	uint64_t s;

	for (s = 0; s < 200; s++) {
		assert_int_equal(agg__set_stack(a, 1, s, &info_a), 0);
		assert_int_equal(agg__set_stack(a, 2, s, &info_a), 0);
		assert_int_equal(agg__add(a, 1, s, 0, 10, 1, 0), 0);
		assert_int_equal(agg__add(a, 2, s, 0, 10, 1, 0), 0);
	}
	agg__drop_pid(a, 1);
	agg__drop_pid(a, 3); /* unknown pid: nothing */
	for (s = 0; s < 200; s++) {
		assert_false(agg__has_stack(a, 1, s));
		assert_true(agg__has_stack(a, 2, s));
	}
	/* rows stay, unsymbolized */
	assert_null(find_row(a, 1, 5)->info);
	assert_non_null(find_row(a, 2, 5)->info);
	/* the pid can be symbolized again (exec) */
	assert_int_equal(agg__set_stack(a, 1, 5, &info_a), 0);
	assert_true(agg__has_stack(a, 1, 5));
	assert_false(agg__has_stack(a, 1, 6));
	agg__free(a);
}

static uint64_t lcg(uint64_t *x)
{
	*x = *x * 6364136223846793005ull + 1442695040888963407ull;
	return *x >> 33;
}

static void agg__rank_100k_rows__sorted_and_complete(void **state)
{
	const size_t n = 100000;
	struct pml_agg *a = new_agg(1000 * SEC);
	uint64_t x = 42, sum = 0, rsum = 0, b, c;
	const struct pml_row *rows;
	size_t i;

	for (i = 0; i < n; i++) {
		/* few distinct sizes: many ties to break */
		int64_t bytes = (int64_t)(lcg(&x) % 1000) + 1;
		uint32_t pid = 100 + (uint32_t)(i % 7);
		uint64_t stack = lcg(&x) << 20 | i;

		/* two epochs per stack, summed */
		assert_int_equal(agg__add(a, pid, stack, 10 * SEC, bytes, 1, 0), 0);
		assert_int_equal(agg__add(a, pid, stack, 5 * SEC, bytes, 2, 0), 0);
		sum += 2 * (uint64_t)bytes;
	}
	assert_int_equal(agg__rank(a, PML_SORT_BYTES, &rows), n);
	for (i = 0; i < n; i++) {
		rsum += rows[i].bytes;
		assert_int_equal(rows[i].count, 3);
		assert_int_equal(rows[i].oldest_ns, 5 * SEC);
		if (!i)
			continue;
		assert_true(rows[i - 1].bytes >= rows[i].bytes);
		if (rows[i - 1].bytes == rows[i].bytes)
			assert_true(rows[i - 1].pid < rows[i].pid ||
				    (rows[i - 1].pid == rows[i].pid &&
				     rows[i - 1].stack_id < rows[i].stack_id));
	}
	assert_true(rsum == sum);
	for (i = 0, rsum = 0; i < 7; i++) {
		agg__totals(a, 100 + (uint32_t)i, &b, &c);
		rsum += b;
	}
	assert_true(rsum == sum);

	/* the index survives ranking: adding to a known stack adds no row */
	assert_int_equal(agg__add(a, rows[n / 2].pid, rows[n / 2].stack_id, 0, 1, 1, 0), 0);
	assert_int_equal(agg__rank(a, PML_SORT_BYTES, &rows), n);
	agg__free(a);
}

static void agg__rank_pid__filtered_sorted_top(void **state)
{
	struct pml_agg *a = new_agg(SEC);
	struct pml_row *rows;
	size_t n;

	assert_int_equal(agg__add(a, 1, 1, 0, 10, 1, 0), 0);
	assert_int_equal(agg__add(a, 2, 1, 0, 99, 1, 0), 0);
	assert_int_equal(agg__add(a, 1, 2, 0, 30, 1, 0), 0);
	assert_int_equal(agg__add(a, 1, 3, 0, 20, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 1, 3, &info_a), 0);

	assert_int_equal(agg__rank_pid(a, 1, PML_SORT_BYTES, 2, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].stack_id, 2);
	assert_null(rows[0].info);
	assert_int_equal(rows[1].stack_id, 3);
	assert_non_null(rows[1].info);
	free(rows);

	assert_int_equal(agg__rank_pid(a, 1, PML_SORT_BYTES, 0, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[2].stack_id, 1);
	free(rows);

	assert_int_equal(agg__rank_pid(a, 3, PML_SORT_BYTES, 0, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_null(rows);
	agg__free(a);
}

static void report__bytes__units_and_rounding(void **state)
{
	char buf[32];

	assert_string_equal(report__bytes(0, buf, sizeof(buf)), "0 B");
	assert_string_equal(report__bytes(812, buf, sizeof(buf)), "812 B");
	assert_string_equal(report__bytes(1023, buf, sizeof(buf)), "1023 B");
	assert_string_equal(report__bytes(1024, buf, sizeof(buf)), "1.0 KiB");
	assert_string_equal(report__bytes(1536, buf, sizeof(buf)), "1.5 KiB");
	assert_string_equal(report__bytes(1572864, buf, sizeof(buf)), "1.5 MiB");
	/* 1023.999 KiB would print "1024.0 KiB" */
	assert_string_equal(report__bytes(1048575, buf, sizeof(buf)), "1.0 MiB");
	assert_string_equal(report__bytes(3ull << 30, buf, sizeof(buf)), "3.0 GiB");
	assert_string_equal(report__bytes(UINT64_MAX, buf, sizeof(buf)), "16.0 EiB");
	/* truncated, still terminated */
	assert_string_equal(report__bytes(1536, buf, 4), "1.5");
}

static void report__utf8_seq__valid_and_invalid(void **state)
{
	assert_int_equal(report__utf8_seq("a", 1), 1);
	assert_int_equal(report__utf8_seq("\xc3\xa9", 2), 2);	      /* é */
	assert_int_equal(report__utf8_seq("\xe2\x9c\x93", 3), 3);     /* ✓ */
	assert_int_equal(report__utf8_seq("\xf0\x9f\x98\x80", 4), 4); /* U+1F600 */
	assert_int_equal(report__utf8_seq("\xf4\x8f\xbf\xbf", 4), 4); /* U+10FFFF */
	assert_int_equal(report__utf8_seq("", 0), 0);
	assert_int_equal(report__utf8_seq("\xff", 1), 0);
	assert_int_equal(report__utf8_seq("\x80", 1), 0);	      /* lone continuation */
	assert_int_equal(report__utf8_seq("\xc0\xaf", 2), 0);	      /* overlong '/' */
	assert_int_equal(report__utf8_seq("\xe0\x80\xaf", 3), 0);     /* overlong */
	assert_int_equal(report__utf8_seq("\xed\xa0\x80", 3), 0);     /* surrogate */
	assert_int_equal(report__utf8_seq("\xf4\x90\x80\x80", 4), 0); /* > U+10FFFF */
	assert_int_equal(report__utf8_seq("\xe2\x9c\x93", 2), 0);     /* truncated */
	assert_int_equal(report__utf8_seq("\xe2\x41\x93", 3), 0);     /* bad continuation */
}

static void report__stat_hint__brief_hints(void **state)
{
	assert_string_equal(report__stat_hint(STAT_LIVE_FULL), "raise --max-allocs");
	assert_string_equal(report__stat_hint(STAT_OUTSTANDING_FULL), "raise --max-stacks");
	assert_string_equal(report__stat_hint(STAT_STACKS_FULL), "raise --max-stacks");
	assert_string_equal(report__stat_hint(STAT_STACK_TRUNCATED), "raise --max-depth");
	assert_null(report__stat_hint(STAT_ALLOCS));
	assert_false(report__stat_is_loss(STAT_ALLOCS));
	assert_false(report__stat_is_loss(STAT_RAW_ALLOCS));
	assert_true(report__stat_is_loss(STAT_UNKNOWN_FREE));
}

/* Run report__text into a string the caller frees. */
static char *text_of(const struct pml_agg *a, const struct pml_procinfo *p, size_t np, uint64_t now,
		     size_t top)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	report__text(f, a, p, np, now, 12.34, top, PML_SORT_BYTES, stat_names);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("missing %s\n--- in ---\n%s", needle, hay);
}

static void fill_proc(struct pml_procinfo *p, uint32_t pid)
{
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	snprintf(p->cmdline, sizeof(p->cmdline), "python3 app.py --serve");
	snprintf(p->python, sizeof(p->python), "3.12.1");
	snprintf(p->build, sizeof(p->build), "shared libpython (symtab)");
	snprintf(p->probes, sizeof(p->probes), "_PyObject_Malloc+4 (uprobe)");
	p->nstats = STAT__MAX;
}

static void report__text__process_and_rows__expected_lines(void **state)
{
	struct pml_agg *a = new_agg(100 * SEC);
	struct pml_stackinfo flagged = { .native = "libc.so.6+0x9a0 (malloc+0x0)",
					 .flags = PML_STACK_NO_GIL | PML_STACK_TRUNCATED };
	struct pml_procinfo p[2];
	char *t;

	fill_proc(&p[0], 4242);
	p[0].cov.complete = false;
	snprintf(p[0].cov.reason, sizeof(p[0].cov.reason), "static LTO build");
	p[0].stats[STAT_ALLOCS] = 1000;
	p[0].stats[STAT_FREES] = 877;
	p[0].stats[STAT_LIVE_FULL] = 12;
	p[0].stats[STAT_UNKNOWN_FREE] = 3;
	p[0].stats[STAT_NESTED] = 5;
	p[0].sym_failures = 2;
	fill_proc(&p[1], 77);
	p[1].cov.complete = true;
	p[1].exited = true;

	/* 1.5 MiB in 3 from epoch 88 s; 2 KiB in 2; 100 B unsymbolized */
	assert_int_equal(agg__add(a, 4242, 0x11, 88 * SEC, 1048576, 1, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x11, 90 * SEC, 524288, 2, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x22, 99 * SEC, 2048, 2, 0), 0);
	assert_int_equal(agg__add(a, 4242, 0x33, 99 * SEC, 100, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x11, &info_a), 0);
	assert_int_equal(agg__set_stack(a, 4242, 0x22, &flagged), 0);

	t = text_of(a, p, 2, 100 * SEC, 2);
	assert_contains(t, "pid 4242: python3 app.py --serve\n");
	assert_contains(t, "  python:      3.12.1, shared libpython (symtab)\n");
	assert_contains(t, "  probes:      _PyObject_Malloc+4 (uprobe)\n");
	assert_contains(t, "  coverage:    partial: static LTO build\n");
	assert_contains(t, "  duration:    12.3 s\n");
	assert_contains(t, "  outstanding: 1.5 MiB (1575012 bytes) in 6 allocations\n");
	assert_contains(t, "  seen:        1000 allocs, 877 frees\n");
	assert_contains(t, "  lost:        12 live_full: raise --max-allocs\n");
	assert_contains(t, "               3 unknown_free: frees of memory allocated before "
			   "attach (expected)\n");
	assert_contains(t, "               2 frames shown as <unknown>: code object gone before it "
			   "was read (module code run by an import, exec'd code)\n");
	assert_contains(t, "  layers:      5 nested\n");
	assert_contains(t, "  layers:      5 nested\n"
			   "  ranked by outstanding bytes\n\n");
	assert_contains(t, "  #1      1.5 MiB (1572864 bytes) in 3 allocations, avg 512.0 KiB, "
			   "oldest 12.0 s\n"
			   "    growth: n/a (1 snapshot, needs 3)\n"
			   "    app.py:12 in leak\n"
			   "    app.py:30 in <module>\n"
			   "    [native] libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)\n");
	assert_contains(t, "  #2      2.0 KiB (2048 bytes) in 2 allocations, avg 1.0 KiB, "
			   "oldest 1.0 s [no GIL] [truncated]\n"
			   "    growth: n/a (1 snapshot, needs 3)\n"
			   "    [native] libc.so.6+0x9a0 (malloc+0x0)\n");
	assert_contains(t, "  ... 1 more stacks holding 100 B\n");
	assert_null(strstr(t, "#3"));
	/* counters that are zero are not listed */
	assert_null(strstr(t, "stacks_full"));
	assert_contains(t, "pid 77: python3 app.py --serve (exited)\n");
	assert_contains(t, "  coverage:    complete\n");
	assert_contains(t, "  lost:        none\n\n  no outstanding allocations\n");
	free(t);

	/* top 0: all rows; the unsymbolized one shows its id */
	t = text_of(a, p, 1, 100 * SEC, 0);
	assert_contains(t, "  #3        100 B (100 bytes) in 1 allocations, avg 100 B, "
			   "oldest 1.0 s\n"
			   "    growth: n/a (1 snapshot, needs 3)\n"
			   "    [unsymbolized stack 0x0000000000000033]\n");
	assert_null(strstr(t, "more stacks"));
	free(t);
	agg__free(a);
}

static void report__text__target_strings__control_bytes_escaped(void **state)
{
	struct pml_agg *a = new_agg(SEC);
	struct pml_pyframe f = {
		.file = "a\x1b[2Jb.py",
		.function = "f\n\xc2\x9b\xc3\xa9",
		.line = 0,
	};
	struct pml_stackinfo si = { .frames = &f, .nframes = 1 };
	struct pml_procinfo p;
	char *t;

	fill_proc(&p, 9);
	/* not NUL-terminated: read up to the array size only */
	memset(p.cmdline, 'x', sizeof(p.cmdline));
	memcpy(p.cmdline, "evil\x07\xff", 6);
	memset(p.python, '3', sizeof(p.python));
	p.cov.complete = true;
	assert_int_equal(agg__add(a, 9, 1, 0, 10, 1, 0), 0);
	assert_int_equal(agg__set_stack(a, 9, 1, &si), 0);

	t = text_of(a, &p, 1, SEC, 0);
	assert_contains(t, "pid 9: evil\\x07\\xffxxx");
	assert_contains(t, "xxx\n  python:      3333333333333333, ");
	assert_contains(t, "  python:      3333333333333333, shared");
	/* ESC, newline, C1 CSI escaped; é kept; unknown line as ? */
	assert_contains(t, "    a\\x1b[2Jb.py:? in f\\x0a\\xc2\\x9b\xc3\xa9\n");
	free(t);
	agg__free(a);
}

/* --- growth, series, types --------------------------------------------- */

static void assert_near(double got, double want, double tol)
{
	if (!(fabs(got - want) <= tol))
		fail_msg("got %.17g, want %.17g (+-%g)", got, want, tol);
}

/* Row of (pid, stack) ranked by sort, and its rank (0-based) in *pos. */
static const struct pml_row *ranked(struct pml_agg *a, enum pml_sort sort, uint32_t pid,
				    uint64_t stack, size_t *pos)
{
	const struct pml_row *rows;
	size_t n = agg__rank(a, sort, &rows), i;

	for (i = 0; i < n; i++) {
		if (rows[i].pid == pid && rows[i].stack_id == stack) {
			if (pos)
				*pos = i;
			return &rows[i];
		}
	}
	fail_msg("no row for pid %u stack %llx", pid, (unsigned long long)stack);
	return NULL;
}

#define MIB   (1024 * 1024)
#define CACHE 0xcac4e
#define LEAK  0x1eac

/*
 * The case growth ranking exists for: a bounded cache fills to 10 MiB in 3
 * snapshots then stays flat, a slow leak adds 100 KiB every snapshot. Every
 * 5 s snapshot drains one `outstanding` entry per epoch, as the tracer does.
 */
static void agg__rank_growth_plateaued_cache__steady_leak_first(void **state)
{
	struct pml_agg *a = agg__new();
	const struct pml_row *r;
	struct pml_row *rows;
	uint64_t k, e;
	size_t pos, n;

	assert_non_null(a);
	for (k = 0; k < 16; k++) {
		agg__begin(a, 1000 * SEC + k * 5 * SEC);
		/* the cache's three fills, in the epochs they happened in */
		for (e = 0; e <= k && e < 3; e++)
			assert_int_equal(agg__add(a, 1, CACHE, e * 5 * SEC, 10 * MIB / 3 + (e == 2),
						  1000, 0),
					 0);
		for (e = 0; e <= k; e++)
			assert_int_equal(agg__add(a, 1, LEAK, e * 5 * SEC, 100 * 1024, 10, 0), 0);

		if (k == 2) {
			/* filling: the cache grows fastest and ranks first */
			r = ranked(a, PML_SORT_GROWTH, 1, CACHE, &pos);
			assert_int_equal(pos, 0);
			assert_true(r->growth_score > 0);
		}
		if (k < 10)
			continue;
		/* k == 10: 3 snapshots of filling, then flat for 8, and on */
		r = ranked(a, PML_SORT_BYTES, 1, CACHE, &pos);
		assert_int_equal(pos, 0);
		assert_true(r->bytes == 10 * MIB);
		r = ranked(a, PML_SORT_GROWTH, 1, LEAK, &pos);
		assert_int_equal(pos, 0);
		assert_int_equal(r->growth_points, PML_GROWTH_WINDOW);
		assert_near(r->growth_bps, 100 * 1024 / 5.0, 1e-6);
		assert_near(r->growth_fit, 1.0, 1e-12);
		assert_near(r->growth_score, 100 * 1024 / 5.0, 1e-6);
		r = ranked(a, PML_SORT_GROWTH, 1, CACHE, &pos);
		assert_int_equal(pos, 1);
		assert_true(r->growth_bps == 0 && r->growth_fit == 0 && r->growth_score == 0);
		/* the writers' path: AUTO picks growth, per pid too */
		assert_int_equal(agg__effective_sort(a, PML_SORT_AUTO, true), PML_SORT_GROWTH);
		assert_int_equal(agg__pid_sort(a, 1, PML_SORT_AUTO), PML_SORT_GROWTH);
		assert_int_equal(agg__rank_pid(a, 1, PML_SORT_AUTO, 0, &rows, &n), 0);
		assert_int_equal(n, 2);
		assert_int_equal(rows[0].stack_id, LEAK);
		free(rows);
	}
	agg__free(a);
}

static void agg__series__absent_snapshots__zero_points_fit_includes_them(void **state)
{
	static const int64_t present[] = { 1000, 2000, 3000, 0, 0, 6000 };
	struct pml_agg *a = agg__new();
	struct pml_point pts[PML_SERIES_MAX];
	const struct pml_row *r;
	size_t k;

	assert_non_null(a);
	for (k = 0; k < 6; k++) {
		agg__begin(a, 50 * SEC + k * 5 * SEC);
		/* a freed stack has no entry at all, or one of zero bytes */
		if (present[k])
			assert_int_equal(agg__add(a, 3, 0x77, 0, present[k], 1, 0), 0);
		else if (k == 4)
			assert_int_equal(agg__add(a, 3, 0x77, 0, 0, 0, 0), 0);
		/* another stack keeps the pid busy */
		assert_int_equal(agg__add(a, 3, 0x78, 0, 1, 1, 0), 0);
	}
	assert_int_equal(agg__series(a, 3, 0x77, pts, PML_SERIES_MAX), 6);
	for (k = 0; k < 6; k++) {
		assert_true(pts[k].t_ns == k * 5 * SEC);
		assert_true(pts[k].bytes == (uint64_t)present[k]);
	}
	/* numpy.polyfit([0,5,10,15,20,25], [1000,2000,3000,0,0,6000], 1) */
	r = ranked(a, PML_SORT_GROWTH, 3, 0x77, NULL);
	assert_int_equal(r->growth_points, 6);
	assert_near(r->growth_bps, 640.0 / 7.0, 1e-9);
	assert_near(r->growth_fit, 0.14065934065934066, 1e-12);
	assert_near(r->growth_score, 640.0 / 7.0 * 0.14065934065934066, 1e-9);

	/* max: the most recent points */
	assert_int_equal(agg__series(a, 3, 0x77, pts, 2), 2);
	assert_true(pts[0].t_ns == 20 * SEC && pts[0].bytes == 0);
	assert_true(pts[1].t_ns == 25 * SEC && pts[1].bytes == 6000);
	assert_int_equal(agg__series(a, 3, 0x77, NULL, 2), 0);
	assert_int_equal(agg__series(a, 3, 0x99, pts, PML_SERIES_MAX), 0);
	agg__free(a);
}

static void agg__series__many_snapshots__ring_bounded_window_recent(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_point pts[PML_SERIES_MAX + 4];
	const struct pml_row *r;
	uint64_t k;

	assert_non_null(a);
	for (k = 0; k < 100; k++) {
		agg__begin(a, k * SEC);
		/* flat for 94 s, then +1000 B/s: only the window sees the change */
		assert_int_equal(agg__add(a, 1, 1, 0,
					  5000 + (k > 94 ? (int64_t)(k - 94) * 1000 : 0), 1, 0),
				 0);
	}
	assert_int_equal(agg__series(a, 1, 1, pts, PML_SERIES_MAX + 4), PML_SERIES_MAX);
	assert_true(pts[0].t_ns == (100 - PML_SERIES_MAX) * SEC);
	assert_true(pts[PML_SERIES_MAX - 1].t_ns == 99 * SEC);
	assert_true(pts[PML_SERIES_MAX - 1].bytes == 10000);
	r = ranked(a, PML_SORT_GROWTH, 1, 1, NULL);
	assert_int_equal(r->growth_points, PML_GROWTH_WINDOW);
	/* window 92..99 s: 5000 three times, then 6000..10000 */
	assert_near(r->growth_bps, 773.8095238095239, 1e-9);
	assert_near(r->growth_fit, 0.9357696566998892, 1e-12);
	agg__free(a);
}

static void agg__series__absent_longer_than_ring__restarts(void **state)
{
	struct pml_agg *a = agg__new();
	struct pml_point pts[PML_SERIES_MAX];
	const struct pml_row *r;
	uint64_t k;

	assert_non_null(a);
	for (k = 0; k < 3; k++) {
		agg__begin(a, k * SEC);
		assert_int_equal(agg__add(a, 1, 1, 0, 100, 1, 0), 0);
	}
	/* absent for a whole ring: the old points are gone */
	for (k = 3; k < 3 + PML_SERIES_MAX; k++)
		agg__begin(a, k * SEC);
	assert_int_equal(agg__series(a, 1, 1, pts, PML_SERIES_MAX), 0);
	agg__begin(a, k * SEC);
	assert_int_equal(agg__add(a, 1, 1, 0, 100, 1, 0), 0);
	assert_int_equal(agg__series(a, 1, 1, pts, PML_SERIES_MAX), 1);
	r = ranked(a, PML_SORT_GROWTH, 1, 1, NULL);
	assert_int_equal(r->growth_points, 1);
	assert_true(r->growth_bps == 0 && r->growth_score == 0);

	/* one snapshot short of a ring: the points are kept, absent ones 0 */
	for (k = 0; k < PML_SERIES_MAX - 2; k++)
		agg__begin(a, (40 + k) * SEC);
	agg__begin(a, 60 * SEC);
	assert_int_equal(agg__add(a, 1, 1, 0, 300, 1, 0), 0);
	assert_int_equal(agg__series(a, 1, 1, pts, PML_SERIES_MAX), PML_SERIES_MAX);
	assert_true(pts[0].bytes == 100 && pts[1].bytes == 0);
	assert_true(pts[PML_SERIES_MAX - 1].bytes == 300);
	agg__free(a);
}

static void agg__growth__irregular_times__least_squares(void **state)
{
	static const uint64_t t[] = { 0, 1, 3, 7 };
	static const int64_t b[] = { 1, 11, 21, 51 };
	struct pml_agg *a = agg__new();
	const struct pml_row *r;
	size_t k;

	assert_non_null(a);
	for (k = 0; k < 4; k++) {
		agg__begin(a, 7 * SEC + t[k] * SEC);
		assert_int_equal(agg__add(a, 2, 2, 0, b[k], 1, 0), 0);
	}
	r = ranked(a, PML_SORT_GROWTH, 2, 2, NULL);
	assert_int_equal(r->growth_points, 4);
	assert_near(r->growth_bps, 6.956521739130435, 1e-12);
	assert_near(r->growth_fit, 0.9937888198757764, 1e-12);
	agg__free(a);
}

static void agg__growth__degenerate_series__finite_zero(void **state)
{
	struct pml_agg *a = agg__new();
	const struct pml_row *r;
	int k;

	assert_non_null(a);
	/* three snapshots at one instant: no slope, not NaN */
	for (k = 0; k < 3; k++) {
		agg__begin(a, 5 * SEC);
		assert_int_equal(agg__add(a, 1, 1, 0, 100 * (k + 1), 1, 0), 0);
		assert_int_equal(agg__add(a, 1, 2, 0, INT64_MAX, 1, 0), 0);
		assert_int_equal(agg__add(a, 1, 2, 0, INT64_MAX, 1, 0), 0);
	}
	r = ranked(a, PML_SORT_GROWTH, 1, 1, NULL);
	assert_int_equal(r->growth_points, 3);
	assert_true(r->growth_bps == 0 && r->growth_fit == 0 && r->growth_score == 0);

	/* saturated totals, then time moving backwards: finite, fit in 0..1 */
	for (k = 0; k < 5; k++) {
		agg__begin(a, (uint64_t)(10 - k) * SEC);
		assert_int_equal(agg__add(a, 1, 2, 0, INT64_MAX, 1, 0), 0);
		assert_int_equal(agg__add(a, 1, 2, 0, k ? INT64_MAX : 1, 1, 0), 0);
		assert_int_equal(agg__add(a, 1, 2, 0, k ? INT64_MAX : 1, 1, 0), 0);
	}
	r = ranked(a, PML_SORT_GROWTH, 1, 2, NULL);
	assert_true(r->bytes == UINT64_MAX);
	assert_true(isfinite(r->growth_bps) && isfinite(r->growth_score));
	assert_true(r->growth_fit >= 0 && r->growth_fit <= 1);
	/* it grew while the clock went back: a negative slope, no score */
	assert_true(r->growth_bps < 0);
	assert_true(r->growth_score == 0);
	agg__free(a);
}

static void agg__rank_growth_ties__bytes_then_count_then_pid_then_stack(void **state)
{
	static const struct entry want[] = {
		{ 1, 7 }, { 1, 4 }, { 1, 3 }, { 1, 9 }, { 2, 1 }, { 2, 5 }, { 3, 1 },
	};
	size_t n = sizeof(tie_entries) / sizeof(tie_entries[0]), i, k;
	struct pml_agg *a = agg__new();
	const struct pml_row *rows;

	assert_non_null(a);
	/* flat series: every score 0, the bytes order decides */
	for (k = 0; k < 4; k++) {
		agg__begin(a, k * SEC);
		for (i = 0; i < n; i++) {
			const struct entry *e = &tie_entries[k % 2 ? n - 1 - i : i];

			assert_int_equal(agg__add(a, e->pid, e->stack, 0, e->bytes, e->count, 0),
					 0);
		}
	}
	assert_int_equal(agg__rank(a, PML_SORT_GROWTH, &rows), 7);
	for (i = 0; i < 7; i++) {
		assert_int_equal(rows[i].pid, want[i].pid);
		assert_int_equal(rows[i].stack_id, want[i].stack);
		assert_true(rows[i].growth_score == 0);
	}

	/* equal growth: bytes break the tie; any growth beats none */
	agg__begin(a, 4 * SEC);
	for (i = 0; i < n; i++) {
		const struct entry *e = &tie_entries[i];
		int64_t more = e->stack == 9 || e->stack == 5 ? 400 : 0;

		assert_int_equal(agg__add(a, e->pid, e->stack, 0, e->bytes + more, e->count, 0), 0);
	}
	assert_int_equal(agg__rank(a, PML_SORT_GROWTH, &rows), 7);
	assert_int_equal(rows[0].pid, 1);
	assert_int_equal(rows[0].stack_id, 9);
	assert_int_equal(rows[1].pid, 2);
	assert_int_equal(rows[1].stack_id, 5);
	assert_true(rows[0].growth_score == rows[1].growth_score);
	assert_int_equal(rows[2].stack_id, 7);
	agg__free(a);
}

static void agg__effective_sort__growth_from_three_snapshots(void **state)
{
	struct pml_agg *a = agg__new();
	int k;

	assert_non_null(a);
	assert_int_equal(agg__effective_sort(NULL, PML_SORT_AUTO, false), PML_SORT_BYTES);
	for (k = 0; k < 3; k++) {
		enum pml_sort growth = k == 2 ? PML_SORT_GROWTH : PML_SORT_BYTES;

		agg__begin(a, (uint64_t)k * SEC);
		/* the user's bytes or count stand */
		assert_int_equal(agg__effective_sort(a, PML_SORT_BYTES, true), PML_SORT_BYTES);
		assert_int_equal(agg__effective_sort(a, PML_SORT_COUNT, true), PML_SORT_COUNT);
		/* growth, asked for or by default, once it is known */
		assert_int_equal(agg__effective_sort(a, PML_SORT_GROWTH, true), growth);
		assert_int_equal(agg__effective_sort(a, PML_SORT_AUTO, true), growth);
		assert_int_equal(agg__effective_sort(a, PML_SORT_BYTES, false), growth);
		assert_int_equal(agg__effective_sort(a, PML_SORT_COUNT, false), growth);
		assert_int_equal(agg__effective_sort(a, (enum pml_sort)99, true), PML_SORT_BYTES);
	}
	agg__free(a);
}

static void agg__pid_sort__late_pid__bytes_until_three_snapshots(void **state)
{
	struct pml_agg *a = agg__new();
	uint64_t k;

	assert_non_null(a);
	for (k = 0; k < 6; k++) {
		agg__begin(a, k * SEC);
		assert_int_equal(agg__add(a, 10, 1, 0, 100, 1, 0), 0);
		if (k >= 3)
			assert_int_equal(agg__add(a, 20, 1, 0, 100, 1, 0), 0);
		assert_int_equal(agg__pid_sort(a, 10, PML_SORT_GROWTH),
				 k >= 2 ? PML_SORT_GROWTH : PML_SORT_BYTES);
		assert_int_equal(agg__pid_sort(a, 20, PML_SORT_AUTO),
				 k >= 5 ? PML_SORT_GROWTH : PML_SORT_BYTES);
		assert_int_equal(agg__pid_sort(a, 20, PML_SORT_COUNT), PML_SORT_COUNT);
	}
	/* exec: the pid starts over */
	agg__drop_pid(a, 10);
	assert_int_equal(agg__pid_sort(a, 10, PML_SORT_GROWTH), PML_SORT_BYTES);
	assert_int_equal(agg__pid_sort(a, 20, PML_SORT_GROWTH), PML_SORT_GROWTH);
	agg__free(a);
}

static void agg__drop_pid__series_and_types_forgotten(void **state)
{
	struct pml_typecount t = { .name = "dict", .bytes = 10, .count = 1 };
	struct pml_point pts[PML_SERIES_MAX];
	struct pml_agg *a = agg__new();
	const struct pml_row *r;
	uint64_t k;

	assert_non_null(a);
	for (k = 0; k < 4; k++) {
		agg__begin(a, k * SEC);
		assert_int_equal(agg__add(a, 1, 5, 0, 100 * (int64_t)(k + 1), 1, 0), 0);
		assert_int_equal(agg__add(a, 2, 5, 0, 100 * (int64_t)(k + 1), 1, 0), 0);
	}
	assert_int_equal(agg__set_types(a, 1, 5, &t, 1, true), 0);
	assert_int_equal(agg__set_types(a, 2, 5, &t, 1, true), 0);
	agg__drop_pid(a, 1);
	assert_int_equal(agg__series(a, 1, 5, pts, PML_SERIES_MAX), 0);
	assert_int_equal(agg__series(a, 2, 5, pts, PML_SERIES_MAX), 4);
	/* the row stays, without growth or types */
	r = ranked(a, PML_SORT_GROWTH, 1, 5, NULL);
	assert_int_equal(r->growth_points, 0);
	assert_null(r->types);
	assert_int_equal(r->ntypes, 0);
	r = ranked(a, PML_SORT_GROWTH, 2, 5, NULL);
	assert_int_equal(r->growth_points, 4);
	assert_int_equal(r->ntypes, 1);
	/* a new series starts with the next point */
	assert_int_equal(agg__add(a, 1, 5, 0, 1, 1, 0), 0);
	assert_int_equal(agg__series(a, 1, 5, pts, PML_SERIES_MAX), 1);
	assert_true(pts[0].bytes == 401);
	agg__free(a);
}

static struct pml_typecount tc(const char *name, uint64_t bytes, uint64_t count)
{
	struct pml_typecount t = { .bytes = bytes, .count = count };

	snprintf(t.name, sizeof(t.name), "%s", name);
	return t;
}

static void agg__set_types__copied_sorted_replaced_cleared(void **state)
{
	struct pml_typecount t[3] = { tc("str", 1200, 30), tc("list", 20480, 10),
				      tc("dict", 20480, 10) };
	struct pml_agg *a = new_agg(SEC);
	const struct pml_row *r;

	assert_int_equal(agg__add(a, 1, 1, 0, 50000, 50, 0), 0);
	assert_int_equal(agg__set_types(a, 1, 1, t, 3, true), 0);
	memset(t, 'X', sizeof(t));
	r = find_row(a, 1, 1);
	assert_int_equal(r->ntypes, 3);
	assert_true(r->types_sampled);
	/* bytes descending, then count, then name */
	assert_string_equal(r->types[0].name, "dict");
	assert_string_equal(r->types[1].name, "list");
	assert_string_equal(r->types[2].name, "str");
	assert_true(r->types[2].bytes == 1200 && r->types[2].count == 30);

	/* kept across snapshots, and for stacks without a row or info */
	agg__begin(a, 2 * SEC);
	agg__begin(a, 3 * SEC);
	assert_int_equal(agg__add(a, 1, 1, 0, 10, 1, 0), 0);
	r = find_row(a, 1, 1);
	assert_int_equal(r->ntypes, 3);
	assert_null(r->info);
	assert_false(agg__has_stack(a, 1, 1));

	/* replaced, not merged; exact figures */
	t[0] = tc("bytes", 7, 7);
	assert_int_equal(agg__set_types(a, 1, 1, t, 1, false), 0);
	r = find_row(a, 1, 1);
	assert_int_equal(r->ntypes, 1);
	assert_false(r->types_sampled);
	assert_string_equal(r->types[0].name, "bytes");

	/* cleared */
	assert_int_equal(agg__set_types(a, 1, 1, NULL, 0, true), 0);
	r = find_row(a, 1, 1);
	assert_int_equal(r->ntypes, 0);
	assert_null(r->types);
	assert_false(r->types_sampled);
	assert_int_equal(agg__set_types(a, 1, 1, NULL, 2, true), -EINVAL);
	/* clearing a stack never seen is a no-op */
	assert_int_equal(agg__set_types(a, 9, 9, NULL, 0, false), 0);
	agg__free(a);
}

static void agg__set_types__many_and_unterminated__bounded(void **state)
{
	struct pml_typecount t[PML_TYPES_MAX + 8];
	struct pml_agg *a = new_agg(SEC);
	const struct pml_row *r;
	uint64_t rest = 0;
	size_t i;

	for (i = 0; i < PML_TYPES_MAX + 8; i++) {
		t[i] = tc("", 1000 + i, 1);
		snprintf(t[i].name, sizeof(t[i].name), "T%02zu", i);
	}
	/* a name filling the whole array, no NUL: from the target */
	memset(t[PML_TYPES_MAX + 7].name, 'n', sizeof(t[0].name));
	for (i = 0; i < 9; i++)
		rest += 1000 + i;
	assert_int_equal(agg__add(a, 1, 1, 0, 1, 1, 0), 0);
	assert_int_equal(agg__set_types(a, 1, 1, t, PML_TYPES_MAX + 8, true), 0);
	r = find_row(a, 1, 1);
	assert_int_equal(r->ntypes, PML_TYPES_MAX);
	assert_memory_equal(r->types[0].name, t[PML_TYPES_MAX + 7].name, sizeof(t[0].name));
	assert_string_equal(r->types[1].name, "T38");
	assert_string_equal(r->types[PML_TYPES_MAX - 2].name, "T09");
	/* the 9 smallest, summed last */
	assert_string_equal(r->types[PML_TYPES_MAX - 1].name, "(other)");
	assert_true(r->types[PML_TYPES_MAX - 1].bytes == rest);
	assert_true(r->types[PML_TYPES_MAX - 1].count == 9);
	agg__free(a);
}

static void report__rate__sign_units_rounding(void **state)
{
	char buf[40];

	assert_string_equal(report__rate(1.2 * 1024 * 1024, buf, sizeof(buf)), "+1.2 MiB/s");
	assert_string_equal(report__rate(0, buf, sizeof(buf)), "+0 B/s");
	assert_string_equal(report__rate(0.49, buf, sizeof(buf)), "+0 B/s");
	assert_string_equal(report__rate(-0.4, buf, sizeof(buf)), "+0 B/s");
	assert_string_equal(report__rate(-512, buf, sizeof(buf)), "-512 B/s");
	assert_string_equal(report__rate(20480, buf, sizeof(buf)), "+20.0 KiB/s");
	assert_string_equal(report__rate(NAN, buf, sizeof(buf)), "+0 B/s");
	assert_string_equal(report__rate(-INFINITY, buf, sizeof(buf)), "+0 B/s");
	assert_string_equal(report__rate(1e30, buf, sizeof(buf)), "+16.0 EiB/s");
	assert_string_equal(report__rate(-1e30, buf, sizeof(buf)), "-16.0 EiB/s");
	assert_string_equal(report__rate(1536, buf, 4), "+1.");
}

/* --- text report, golden ------------------------------------------------- */

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

/*
 * Compare with tests/unit/fixtures/<name>; PML_UPDATE_GOLDEN=1 rewrites it
 * (review the diff before committing).
 */
static void check_golden(const char *name, const char *got)
{
	char path[512], actual[512];
	const char *g, *w;
	size_t line = 1;
	char *want;
	FILE *f;

	snprintf(path, sizeof(path), "%s/tests/unit/fixtures/%s", PML_SRCDIR, name);
	if (getenv("PML_UPDATE_GOLDEN")) {
		f = fopen(path, "wb");
		assert_non_null(f);
		fputs(got, f);
		assert_int_equal(fclose(f), 0);
		return;
	}
	want = read_file(path);
	if (!want)
		fail_msg("cannot read %s", path);
	if (strcmp(got, want)) {
		for (g = got, w = want; *g && *g == *w; g++, w++)
			line += *g == '\n';
		snprintf(actual, sizeof(actual), "/tmp/%s.actual", name);
		f = fopen(actual, "wb");
		if (f) {
			fputs(got, f);
			fclose(f);
		}
		free(want);
		fail_msg("output differs from %s at line %zu: diff -u %s %s", path, line, path,
			 actual);
	}
	free(want);
}

#define DEEP 64

static struct pml_pyframe deep_frames[DEEP];
static char deep_names[DEEP][2][32];

/*
 * A process watched over 4 snapshots 5 s apart: a leak with odd frame names
 * and sampled types, a 6 GiB flat buffer 64 frames deep, a shrinking stack,
 * one seen once, never symbolized; and a process that appeared at the last
 * snapshot.
 */
static struct pml_agg *golden_agg(void)
{
	static struct pml_pyframe odd[] = {
		{ .file = "/srv/my app/handlers v2.py", .function = "Handler.on;json", .line = 42 },
		{ .file = "/srv/my app/na\xc3\xafve.py",
		  .function = "\xce\xbb <lambda>;x",
		  .line = 7 },
		{ .file = "<frozen runpy>", .function = "_run_code", .line = 0 },
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
	struct pml_typecount types[7] = {
		tc("dict", 20480, 80),	     tc("list", 20480, 40), tc("str", 1229, 20),
		tc("t\xc3\xbcple", 640, 10), tc("bytes", 512, 4),   tc("int", 64, 2),
		tc("float", 48, 2),
	};
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
		/* 1 MiB a snapshot, one epoch each */
		for (i = 0; i <= (int)k; i++)
			assert_int_equal(agg__add(a, 4242, 0x11, 100 * SEC + (uint64_t)i * 5 * SEC,
						  MIB, 64, 0),
					 0);
		/* 6 GiB in 3 buffers, from the start */
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
	assert_int_equal(agg__set_types(a, 4242, 0x11, types, 7, true), 0);
	assert_int_equal(agg__set_types(a, 4242, 0x22, &buf, 1, false), 0);
	return a;
}

static void report__text__growth_types_deep_odd__golden(void **state)
{
	struct pml_agg *a = golden_agg();
	struct pml_procinfo p[2];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	fill_proc(&p[0], 4242);
	p[0].cov.complete = true;
	snprintf(p[0].cov.reason, sizeof(p[0].cov.reason), "internal allocator probes");
	p[0].stats[STAT_ALLOCS] = 5000000000ull;
	p[0].stats[STAT_FREES] = 4000000000ull;
	fill_proc(&p[1], 77);
	p[1].cov.complete = true;

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	report__text(f, a, p, 2, 115 * SEC, 15.0, 0, PML_SORT_AUTO, stat_names);
	assert_int_equal(fclose(f), 0);
	check_golden("report.golden.txt", buf);
	free(buf);
	agg__free(a);
}

static char *text_sorted(const struct pml_agg *a, const struct pml_procinfo *p, size_t np,
			 enum pml_sort sort, size_t top)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	report__text(f, a, p, np, 115 * SEC, 15.0, top, sort, stat_names);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void report__text__ranking_line__names_the_ranking_used(void **state)
{
	struct pml_agg *a = golden_agg();
	struct pml_procinfo p[2];
	char *t;

	fill_proc(&p[0], 4242);
	fill_proc(&p[1], 77);

	t = text_sorted(a, p, 2, PML_SORT_GROWTH, 1);
	assert_contains(t, "  ranked by growth over the last 3 intervals (15.0 s)\n\n"
			   "  #1      4.0 MiB (4194304 bytes) in 256 allocations, avg 16.0 KiB, "
			   "oldest 15.0 s\n"
			   "    growth: +204.8 KiB/s (fit 1.00)\n"
			   "    types: dict 20.0 KiB \xc2\xb7 list 20.0 KiB \xc2\xb7 str 1.2 KiB "
			   "\xc2\xb7 t\xc3\xbcple 640 B \xc2\xb7 bytes 512 B \xc2\xb7 2 more "
			   "(sampled)\n"
			   "    /srv/my app/handlers v2.py:42 in Handler.on;json\n");
	/* the late process is ranked by bytes, and says why */
	assert_contains(t, "  ranked by outstanding bytes (growth needs 3 snapshots, 1 so far)\n");
	free(t);

	t = text_sorted(a, p, 1, PML_SORT_BYTES, 1);
	assert_contains(t, "  ranked by outstanding bytes\n\n"
			   "  #1      6.0 GiB (6442450944 bytes) in 3 allocations, avg 2.0 GiB, "
			   "oldest 25.0 s [truncated]\n"
			   "    growth: +0 B/s (fit 0.00)\n"
			   "    types: bytearray 6.0 GiB\n"
			   "    deep/mod00.py:100 in level_0\n");
	free(t);

	t = text_sorted(a, p, 1, PML_SORT_COUNT, 1);
	assert_contains(t, "  ranked by allocation count\n\n"
			   "  #1      4.0 MiB (4194304 bytes) in 256 allocations");
	assert_null(strstr(t, "growth needs"));
	free(t);
	agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(agg__same_stack_three_epochs__summed_oldest_is_min),
		cmocka_unit_test(agg__older_than__young_epochs_ignored_boundary_counted),
		cmocka_unit_test(agg__sums_above_2_32__exact),
		cmocka_unit_test(agg__sum_beyond_u64__saturates),
		cmocka_unit_test(agg__negative_or_zero_entries__ignored),
		cmocka_unit_test(agg__rank_by_bytes_ties__count_then_pid_then_stack),
		cmocka_unit_test(agg__rank_by_count_ties__bytes_then_pid_then_stack),
		cmocka_unit_test(agg__set_stack__deep_copied_and_replaced),
		cmocka_unit_test(agg__begin__rows_dropped_infos_kept),
		cmocka_unit_test(agg__drop_pid__only_that_pid_forgotten),
		cmocka_unit_test(agg__rank_100k_rows__sorted_and_complete),
		cmocka_unit_test(agg__rank_pid__filtered_sorted_top),
		cmocka_unit_test(report__bytes__units_and_rounding),
		cmocka_unit_test(report__utf8_seq__valid_and_invalid),
		cmocka_unit_test(report__stat_hint__brief_hints),
		cmocka_unit_test(report__text__process_and_rows__expected_lines),
		cmocka_unit_test(report__text__target_strings__control_bytes_escaped),
		cmocka_unit_test(agg__rank_growth_plateaued_cache__steady_leak_first),
		cmocka_unit_test(agg__series__absent_snapshots__zero_points_fit_includes_them),
		cmocka_unit_test(agg__series__many_snapshots__ring_bounded_window_recent),
		cmocka_unit_test(agg__series__absent_longer_than_ring__restarts),
		cmocka_unit_test(agg__growth__irregular_times__least_squares),
		cmocka_unit_test(agg__growth__degenerate_series__finite_zero),
		cmocka_unit_test(agg__rank_growth_ties__bytes_then_count_then_pid_then_stack),
		cmocka_unit_test(agg__effective_sort__growth_from_three_snapshots),
		cmocka_unit_test(agg__pid_sort__late_pid__bytes_until_three_snapshots),
		cmocka_unit_test(agg__drop_pid__series_and_types_forgotten),
		cmocka_unit_test(agg__set_types__copied_sorted_replaced_cleared),
		cmocka_unit_test(agg__set_types__many_and_unterminated__bounded),
		cmocka_unit_test(report__rate__sign_units_rounding),
		cmocka_unit_test(report__text__growth_types_deep_odd__golden),
		cmocka_unit_test(report__text__ranking_line__names_the_ranking_used),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
