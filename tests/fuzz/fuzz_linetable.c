/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for user/linetable.c. Input: format selector (1 byte,
 * 3 = not a format), offset (4 bytes LE), co_firstlineno (4 bytes LE), then
 * the table. Besides memory safety it checks the documented results and
 * the properties callers rely on:
 *  - the result is a line >= 0 or -EINVAL;
 *  - decoding walks from the start, so when an offset answers, every
 *    earlier offset answers too (a bad tail never breaks a good prefix);
 *  - 3.11+ entries cover whole code units: both bytes of a unit agree.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *	-Iuser tests/fuzz/fuzz_linetable.c user/linetable.c -o build/fuzz_linetable
 *   build/fuzz_linetable -max_total_time=60 [seed dir]
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"

#define HEADER_LEN 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum pml_lt_format fmt;
	const uint8_t *table;
	uint32_t offset;
	size_t len;
	int first, line, prev;

	if (size < HEADER_LEN)
		return 0;
	fmt = (enum pml_lt_format)(data[0] % 4);
	offset = le32(data + 1);
	first = (int)le32(data + 5);
	/* The table is the tail of the input: ASan sees any read past it. */
	table = data + HEADER_LEN;
	len = size - HEADER_LEN;

	line = linetable__line(fmt, table, len, first, offset);
	check(line >= 0 || line == -EINVAL);
	check(linetable__line(fmt, table, len, first, offset) == line);
	if (data[0] % 4 == 3) {
		check(line == -EINVAL);
		return 0;
	}
	if (line >= 0 && offset > 0) {
		check(linetable__line(fmt, table, len, first, 0) >= 0);
		check(linetable__line(fmt, table, len, first, offset - 1) >= 0);
		check(linetable__line(fmt, table, len, first, offset / 2) >= 0);
	}
	if (fmt == PML_LT_311) {
		prev = linetable__line(fmt, table, len, first, offset ^ 1);
		check(prev == line);
	}
	/* Without a table only co_lnotab answers, with co_firstlineno. */
	if (!len)
		check(fmt == PML_LT_LNOTAB ? line == (first > 0 ? first : 0) : line == -EINVAL);
	return 0;
}
