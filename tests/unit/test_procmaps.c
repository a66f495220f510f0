/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Unit tests for user/procmaps.c: the maps text parser and its lookups. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "procmaps.h"

/* Taken from `cat /proc/self/maps` on the development machine (Linux 6.18). */
static const char real_maps[] =
	"56270f24b000-56270f24d000 r--p 00000000 fe:00 247134                     /usr/bin/cat\n"
	"56270f24d000-56270f252000 r-xp 00002000 fe:00 247134                     /usr/bin/cat\n"
	"56270f252000-56270f255000 r--p 00007000 fe:00 247134                     /usr/bin/cat\n"
	"56270f255000-56270f256000 r--p 00009000 fe:00 247134                     /usr/bin/cat\n"
	"56270f256000-56270f257000 rw-p 0000a000 fe:00 247134                     /usr/bin/cat\n"
	"56272d349000-56272d36a000 rw-p 00000000 00:00 0                          [heap]\n"
	"7f20cf985000-7f20cf9a7000 rw-p 00000000 00:00 0 \n"
	"7f20cfa08000-7f20cfa2e000 r--p 00000000 fe:00 332835                     "
	"/usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f20cfa2e000-7f20cfb84000 r-xp 00026000 fe:00 332835                     "
	"/usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f20cfb84000-7f20cfbd7000 r--p 0017c000 fe:00 332835                     "
	"/usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"7f20cfbed000-7f20cfbf4000 r--s 00000000 fe:00 332280                     "
	"/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache\n"
	"7f20cfbfd000-7f20cfbff000 r-xp 00000000 00:00 0                          [vdso]\n"
	"7ffe978c3000-7ffe978e4000 rw-p 00000000 00:00 0                          [stack]\n"
	"ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n";

static void parse_ok(const char *text, size_t len, struct pml_maps *m, size_t expect_bad)
{
	size_t bad = 12345;

	assert_int_equal(procmaps__parse(text, len, m, &bad), 0);
	assert_int_equal(bad, expect_bad);
}

static void parse__real_maps__all_fields(void **state)
{
	struct pml_maps m;
	const struct pml_mapping *v;

	(void)state;
	parse_ok(real_maps, strlen(real_maps), &m, 0);
	assert_int_equal(m.n, 14);
	v = m.v;

	assert_true(v[1].start == 0x56270f24d000ull && v[1].end == 0x56270f252000ull);
	assert_true(v[1].offset == 0x2000);
	assert_int_equal(v[1].dev_major, 0xfe);
	assert_int_equal(v[1].dev_minor, 0);
	assert_int_equal(v[1].inode, 247134);
	assert_true(v[1].r && !v[1].w && v[1].x && v[1].p);
	assert_string_equal(v[1].path, "/usr/bin/cat");

	assert_string_equal(v[5].path, "[heap]");
	assert_true(v[5].r && v[5].w && !v[5].x);
	/* Anonymous: the kernel leaves a padding space and no path. */
	assert_string_equal(v[6].path, "");
	assert_int_equal(v[6].inode, 0);

	assert_true(v[9].offset == 0x17c000);
	assert_string_equal(v[9].path, "/usr/lib/x86_64-linux-gnu/libc.so.6");
	/* Shared mapping: 's' in the last perms slot. */
	assert_false(v[10].p);
	assert_string_equal(v[10].path, "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache");

	assert_true(v[13].start == 0xffffffffff600000ull && v[13].end == 0xffffffffff601000ull);
	assert_true(!v[13].r && !v[13].w && v[13].x);
	assert_string_equal(v[13].path, "[vsyscall]");
	procmaps__free(&m);
	assert_null(m.v);
	assert_int_equal(m.n, 0);
}

static void parse__deleted_and_spaces__path_kept_verbatim(void **state)
{
	static const char text[] =
		"7f0000000000-7f0000001000 r-xp 00000000 08:01 42   /tmp/my lib (v2).so (deleted)\n"
		"7f0000001000-7f0000002000 r--p 00001000 08:01 42   /tmp/a  b\n"
		"7f0000002000-7f0000003000 rw-s 00000000 00:05 7    /memfd:pool (deleted)\n";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 0);
	assert_int_equal(m.n, 3);
	assert_string_equal(m.v[0].path, "/tmp/my lib (v2).so (deleted)");
	/* Inner runs of spaces belong to the path; only the padding goes. */
	assert_string_equal(m.v[1].path, "/tmp/a  b");
	assert_string_equal(m.v[2].path, "/memfd:pool (deleted)");
	assert_int_equal(m.v[2].dev_minor, 5);
	procmaps__free(&m);
}

static void parse__anonymous_without_padding__empty_path(void **state)
{
	static const char text[] = "1000-2000 rw-p 00000000 00:00 0\n"
				   "3000-4000 ---p 00000000 00:00 0   \n";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.v[0].path, "");
	assert_string_equal(m.v[1].path, "");
	assert_true(!m.v[1].r && !m.v[1].w && !m.v[1].x && m.v[1].p);
	procmaps__free(&m);
}

static void parse__malformed_lines__skipped_and_counted(void **state)
{
	static const char text[] = "1000-2000 r-xp 00000000 08:01 1 /ok/first\n"
				   "\n" /* empty */
				   "garbage\n"
				   "3000+4000 r-xp 00000000 08:01 1 /x\n"   /* wrong separator */
				   "3000-4000 rwxq 00000000 08:01 1 /x\n"   /* bad perms */
				   "3000-4000 r-x 00000000 08:01 1 /x\n"    /* short perms */
				   "3000-4000 r-xp 0000g000 08:01 1 /x\n"   /* non-hex offset */
				   "3000-4000 r-xp 00000000 0801 1 /x\n"    /* no ':' in dev */
				   "3000-4000 r-xp 00000000 08:01 /x\n"	    /* no inode */
				   "3000-4000 r-xp 00000000 08:01 12x /x\n" /* junk after inode */
				   "4000-3000 r-xp 00000000 08:01 1 /x\n"   /* start > end */
				   "3000-3000 r-xp 00000000 08:01 1 /x\n"   /* empty range */
				   "3000-4000  r-xp 00000000 08:01 1 /x\n"  /* double space */
				   "-4000 r-xp 00000000 08:01 1 /x\n"	    /* no start */
				   "5000-6000 r-xp 00000000 08:01 1 /ok/last\n";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 13);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.v[0].path, "/ok/first");
	assert_string_equal(m.v[1].path, "/ok/last");
	assert_true(m.v[1].start == 0x5000);
	procmaps__free(&m);
}

static void parse__last_line_without_newline__parsed(void **state)
{
	static const char text[] = "1000-2000 r-xp 00000000 08:01 1 /a\n"
				   "2000-3000 r--p 00001000 08:01 1 /b";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 0);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.v[1].path, "/b");
	procmaps__free(&m);
}

static void parse__truncated_mid_field__last_line_bad(void **state)
{
	static const char text[] = "1000-2000 r-xp 00000000 08:01 1 /a\n"
				   "2000-3000 r--p 0000";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 1);
	assert_int_equal(m.n, 1);
	procmaps__free(&m);
}

static void parse__not_nul_terminated__stops_at_len(void **state)
{
	/* The byte after len must not be read as part of the path. */
	static const char text[] = "1000-2000 r-xp 00000000 08:01 1 /abcdef";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 4, &m, 0);
	assert_int_equal(m.n, 1);
	assert_string_equal(m.v[0].path, "/abc");
	procmaps__free(&m);
}

static void parse__huge_fields__rejected(void **state)
{
	static const char text[] =
		/* 17 hex digits */
		"00000000000001000-2000 r-xp 00000000 08:01 1 /x\n"
		/* end > UINT64_MAX */
		"1000-10000000000000000 r-xp 00000000 08:01 1 /x\n"
		/* inode = 2^64 */
		"1000-2000 r-xp 00000000 08:01 18446744073709551616 /x\n"
		/* dev major of 9 hex digits */
		"1000-2000 r-xp 00000000 100000000:01 1 /x\n"
		/* largest values that fit */
		"1000-ffffffffffffffff r-xp ffffffffffffffff ffffffff:ffffffff "
		"18446744073709551615 /max\n";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 4);
	assert_int_equal(m.n, 1);
	assert_true(m.v[0].end == UINT64_MAX);
	assert_true(m.v[0].offset == UINT64_MAX);
	assert_true(m.v[0].inode == UINT64_MAX);
	assert_int_equal(m.v[0].dev_major, UINT32_MAX);
	assert_int_equal(m.v[0].dev_minor, UINT32_MAX);
	assert_string_equal(m.v[0].path, "/max");
	procmaps__free(&m);
}

/* A line whose path is `plen` bytes of 'p' after a leading '/'. */
static char *line_with_path(size_t plen, uint64_t start, size_t *len)
{
	char head[64];
	int hlen = snprintf(head, sizeof(head), "%llx-%llx r--p 00000000 08:01 9 ",
			    (unsigned long long)start, (unsigned long long)start + 0x1000);
	char *buf = malloc((size_t)hlen + plen + 2);

	assert_non_null(buf);
	memcpy(buf, head, (size_t)hlen);
	buf[hlen] = '/';
	memset(buf + hlen + 1, 'p', plen - 1);
	buf[(size_t)hlen + plen] = '\n';
	*len = (size_t)hlen + plen + 1;
	return buf;
}

static void parse__path_at_limit__kept_longer_skipped(void **state)
{
	struct pml_maps m;
	size_t len;
	char *buf;

	(void)state;
	buf = line_with_path(PML_PATH_MAX - 1, 0x1000, &len);
	parse_ok(buf, len, &m, 0);
	assert_int_equal(m.n, 1);
	assert_int_equal(strlen(m.v[0].path), PML_PATH_MAX - 1);
	procmaps__free(&m);
	free(buf);

	buf = line_with_path(PML_PATH_MAX, 0x1000, &len);
	parse_ok(buf, len, &m, 1);
	assert_int_equal(m.n, 0);
	assert_null(m.v);
	free(buf);

	buf = line_with_path(1 << 20, 0x1000, &len);
	parse_ok(buf, len, &m, 1);
	assert_int_equal(m.n, 0);
	free(buf);
}

static void parse__nul_in_path__bad(void **state)
{
	static const char text[] = "1000-2000 r-xp 00000000 08:01 1 /a\0b\n"
				   "2000-3000 r-xp 00000000 08:01 1 /c\n";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 1);
	assert_int_equal(m.n, 1);
	assert_string_equal(m.v[0].path, "/c");
	procmaps__free(&m);
}

static void parse__out_of_order_or_overlap__dropped(void **state)
{
	static const char text[] = "5000-6000 r-xp 00000000 08:01 1 /a\n"
				   "1000-2000 r-xp 00000000 08:01 1 /before\n"
				   "5800-7000 r-xp 00000000 08:01 1 /overlap\n"
				   "6000-7000 r-xp 00000000 08:01 1 /adjacent\n";
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 2);
	assert_int_equal(m.n, 2);
	assert_string_equal(m.v[0].path, "/a");
	assert_string_equal(m.v[1].path, "/adjacent");
	procmaps__free(&m);
}

static void parse__empty_or_blank__no_mappings(void **state)
{
	struct pml_maps m;

	(void)state;
	parse_ok(NULL, 0, &m, 0);
	assert_int_equal(m.n, 0);
	assert_null(m.v);
	parse_ok("\n\n", 2, &m, 2);
	assert_int_equal(m.n, 0);
	assert_null(m.v);
}

static void parse__bad_args__einval(void **state)
{
	struct pml_maps m;

	(void)state;
	assert_int_equal(procmaps__parse("x", 1, NULL, NULL), -EINVAL);
	assert_int_equal(procmaps__parse(NULL, 1, &m, NULL), -EINVAL);
	/* bad may be NULL */
	assert_int_equal(procmaps__parse(real_maps, strlen(real_maps), &m, NULL), 0);
	assert_int_equal(m.n, 14);
	procmaps__free(&m);
	procmaps__free(NULL);
}

static void find_addr__bounds__half_open(void **state)
{
	struct pml_maps m;
	const struct pml_mapping *hit;

	(void)state;
	parse_ok(real_maps, strlen(real_maps), &m, 0);
	hit = procmaps__find_addr(&m, 0x7f20cfa2e000ull);
	assert_non_null(hit);
	assert_true(hit->x && hit->offset == 0x26000);
	hit = procmaps__find_addr(&m, 0x7f20cfb83fffull);
	assert_non_null(hit);
	assert_true(hit->offset == 0x26000);
	/* end is exclusive: the next mapping starts there */
	hit = procmaps__find_addr(&m, 0x7f20cfb84000ull);
	assert_non_null(hit);
	assert_true(hit->offset == 0x17c000);
	/* gap between [stack] and [vsyscall], before the first, at the top */
	assert_null(procmaps__find_addr(&m, 0x7ffe978e4000ull));
	assert_null(procmaps__find_addr(&m, 0x1000));
	assert_non_null(procmaps__find_addr(&m, 0xffffffffff600fffull));
	assert_null(procmaps__find_addr(&m, UINT64_MAX));
	/* first and last entry */
	assert_ptr_equal(procmaps__find_addr(&m, 0x56270f24b000ull), &m.v[0]);
	assert_ptr_equal(procmaps__find_addr(&m, 0xffffffffff600000ull), &m.v[13]);
	assert_null(procmaps__find_addr(NULL, 0x1000));
	procmaps__free(&m);
	assert_null(procmaps__find_addr(&m, 0x56270f24b000ull));
}

static void find_lib__prefix__lowest_basename_match(void **state)
{
	static const char text[] =
		"1000-2000 r--p 00000000 08:01 1 /opt/libpython3.12/not-this.so\n"
		"2000-3000 rw-p 00000000 00:00 0 \n"
		"3000-4000 r--p 00000000 08:01 2 /root/.pyenv/versions/3.12.1/lib/"
		"libpython3.12.so.1.0\n"
		"4000-5000 r-xp 00001000 08:01 2 /root/.pyenv/versions/3.12.1/lib/"
		"libpython3.12.so.1.0\n"
		"5000-6000 r--p 00000000 08:01 3 libpython3.9-relative\n";
	const struct pml_mapping *hit;
	struct pml_maps m;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 0);
	hit = procmaps__find_lib(&m, "libpython3.");
	assert_non_null(hit);
	assert_true(hit->start == 0x3000);
	assert_null(procmaps__find_lib(&m, "libc.so"));
	/* A path with no slash is its own basename. */
	hit = procmaps__find_lib(&m, "libpython3.9");
	assert_non_null(hit);
	assert_true(hit->start == 0x5000);
	/* The empty prefix matches the first named mapping, never an anonymous one. */
	hit = procmaps__find_lib(&m, "");
	assert_non_null(hit);
	assert_true(hit->start == 0x1000);
	assert_null(procmaps__find_lib(&m, NULL));
	procmaps__free(&m);
}

static void file_base__offset0_mapping__start(void **state)
{
	static const char text[] =
		"1000-2000 r-xp 00001000 08:01 1 /lib/x.so\n" /* offset != 0 first */
		"2000-3000 r--p 00000000 08:01 1 /lib/x.so\n"
		"3000-4000 r--p 00000000 08:01 1 /lib/x.so\n" /* second offset-0 map */
		"5000-6000 r--p 00000000 08:01 4 /lib/y.so (deleted)\n";
	struct pml_maps m;
	uint64_t base = 0;

	(void)state;
	parse_ok(text, sizeof(text) - 1, &m, 0);
	assert_int_equal(procmaps__file_base(&m, "/lib/x.so", &base), 0);
	assert_true(base == 0x2000);
	assert_int_equal(procmaps__file_base(&m, "/lib/y.so (deleted)", &base), 0);
	assert_true(base == 0x5000);
	base = 7;
	assert_int_equal(procmaps__file_base(&m, "/lib/y.so", &base), -ENOENT);
	assert_int_equal(procmaps__file_base(&m, "/lib/x", &base), -ENOENT);
	assert_int_equal(procmaps__file_base(&m, "", &base), -ENOENT);
	assert_true(base == 7);
	assert_int_equal(procmaps__file_base(&m, NULL, &base), -EINVAL);
	assert_int_equal(procmaps__file_base(&m, "/lib/x.so", NULL), -EINVAL);
	procmaps__free(&m);
}

static void read__self__maps_own_code(void **state)
{
	const struct pml_mapping *hit;
	char exe[PML_PATH_MAX];
	struct pml_maps m;
	ssize_t n;

	(void)state;
	assert_int_equal(procmaps__read(getpid(), &m), 0);
	assert_true(m.n > 3);
	/* This function's own code: an executable, file-backed mapping. */
	hit = procmaps__find_addr(&m, (uint64_t)(uintptr_t)&read__self__maps_own_code);
	assert_non_null(hit);
	assert_true(hit->x && hit->r);
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	assert_true(n > 0);
	exe[n] = '\0';
	assert_string_equal(hit->path, exe);
	assert_non_null(procmaps__find_lib(&m, "libcmocka"));
	procmaps__free(&m);
}

static void read__no_such_pid__esrch(void **state)
{
	struct pml_maps m;

	(void)state;
	/* Above any pid_max the kernel allows (2^22). */
	assert_int_equal(procmaps__read(INT_MAX, &m), -ESRCH);
	assert_int_equal(m.n, 0);
	assert_int_equal(procmaps__read(0, &m), -EINVAL);
	assert_int_equal(procmaps__read(-1, &m), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parse__real_maps__all_fields),
		cmocka_unit_test(parse__deleted_and_spaces__path_kept_verbatim),
		cmocka_unit_test(parse__anonymous_without_padding__empty_path),
		cmocka_unit_test(parse__malformed_lines__skipped_and_counted),
		cmocka_unit_test(parse__last_line_without_newline__parsed),
		cmocka_unit_test(parse__truncated_mid_field__last_line_bad),
		cmocka_unit_test(parse__not_nul_terminated__stops_at_len),
		cmocka_unit_test(parse__huge_fields__rejected),
		cmocka_unit_test(parse__path_at_limit__kept_longer_skipped),
		cmocka_unit_test(parse__nul_in_path__bad),
		cmocka_unit_test(parse__out_of_order_or_overlap__dropped),
		cmocka_unit_test(parse__empty_or_blank__no_mappings),
		cmocka_unit_test(parse__bad_args__einval),
		cmocka_unit_test(find_addr__bounds__half_open),
		cmocka_unit_test(find_lib__prefix__lowest_basename_match),
		cmocka_unit_test(file_base__offset0_mapping__start),
		cmocka_unit_test(read__self__maps_own_code),
		cmocka_unit_test(read__no_such_pid__esrch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
