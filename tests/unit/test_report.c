/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests of user/report.c: aggregation, ranking, text report. */
#include <errno.h>
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
	agg__drop_pid(a, 3);	/* unknown pid: nothing */
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
	assert_int_equal(report__utf8_seq("\xc3\xa9", 2), 2);		/* é */
	assert_int_equal(report__utf8_seq("\xe2\x9c\x93", 3), 3);	/* ✓ */
	assert_int_equal(report__utf8_seq("\xf0\x9f\x98\x80", 4), 4);	/* U+1F600 */
	assert_int_equal(report__utf8_seq("\xf4\x8f\xbf\xbf", 4), 4);	/* U+10FFFF */
	assert_int_equal(report__utf8_seq("", 0), 0);
	assert_int_equal(report__utf8_seq("\xff", 1), 0);
	assert_int_equal(report__utf8_seq("\x80", 1), 0);		/* lone continuation */
	assert_int_equal(report__utf8_seq("\xc0\xaf", 2), 0);		/* overlong '/' */
	assert_int_equal(report__utf8_seq("\xe0\x80\xaf", 3), 0);	/* overlong */
	assert_int_equal(report__utf8_seq("\xed\xa0\x80", 3), 0);	/* surrogate */
	assert_int_equal(report__utf8_seq("\xf4\x90\x80\x80", 4), 0);	/* > U+10FFFF */
	assert_int_equal(report__utf8_seq("\xe2\x9c\x93", 2), 0);	/* truncated */
	assert_int_equal(report__utf8_seq("\xe2\x41\x93", 3), 0);	/* bad continuation */
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
static char *text_of(const struct pml_agg *a, const struct pml_procinfo *p, size_t np,
		     uint64_t now, size_t top)
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
	assert_contains(t, "  #1      1.5 MiB (1572864 bytes) in 3 allocations, avg 512.0 KiB, "
			   "oldest 12.0 s\n"
			   "    app.py:12 in leak\n"
			   "    app.py:30 in <module>\n"
			   "    [native] libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)\n");
	assert_contains(t, "  #2      2.0 KiB (2048 bytes) in 2 allocations, avg 1.0 KiB, "
			   "oldest 1.0 s [no GIL] [truncated]\n"
			   "    [native] libc.so.6+0x9a0 (malloc+0x0)\n");
	assert_contains(t, "  ... 1 more stacks holding 100 B\n");
	assert_null(strstr(t, "#3"));
	/* counters that are zero are not listed */
	assert_null(strstr(t, "stacks_full"));
	assert_contains(t, "pid 77: python3 app.py --serve (exited)\n");
	assert_contains(t, "  coverage:    complete\n");
	assert_contains(t, "  lost:        none\n");
	assert_contains(t, "  no outstanding allocations\n");
	free(t);

	/* top 0: all rows; the unsymbolized one shows its id */
	t = text_of(a, p, 1, 100 * SEC, 0);
	assert_contains(t, "  #3        100 B (100 bytes) in 1 allocations, avg 100 B, "
			   "oldest 1.0 s\n"
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
