/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython line-table decoders. Each walks the table from its start, the way
 * the interpreter's own PyCode_Addr2Line does, and stops at the entry that
 * covers the offset; every byte is read through a bounds check, and every
 * iteration consumes at least one byte, so the walk ends within len steps.
 * Lines are accumulated in 64 bits; a running line outside int makes the
 * table malformed from that entry on, and like any bad tail it does not
 * affect offsets covered by earlier entries.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include "linetable.h"

/* Location table (3.11+) entry codes, bits 3-6 of the header byte. */
#define LT311_SHORT_MAX	   9
#define LT311_ONE_LINE_MIN 10
#define LT311_ONE_LINE_MAX 12
#define LT311_NO_COLUMN	   13
#define LT311_LONG	   14
#define LT311_NO_LOCATION  15

/* 3.10: a line delta of -128 marks a range without a line. */
#define LT310_NO_LINE -128

/*
 * CPython writes varints of C ints: at most 32 bits, six 6-bit chunks. A
 * longer chain is not something the interpreter emits.
 */
#define LT311_VARINT_MAX_CHUNKS 6

static bool line__in_range(int64_t line)
{
	return line >= INT_MIN && line <= INT_MAX;
}

/* Lines <= 0 do not exist in source: report them as "no line". */
static int line__result(int64_t line)
{
	if (!line__in_range(line))
		return -EINVAL;
	return line > 0 ? (int)line : 0;
}

static int lnotab__line(const uint8_t *t, size_t len, int64_t line, uint32_t offset)
{
	uint64_t addr = 0;
	size_t i;

	if (len % 2)
		return -EINVAL;
	/*
	 * Pairs (address increment, signed line increment). The increment of a
	 * pair applies from the address reached once its own byte increment is
	 * added, so stop as soon as that address passes the offset.
	 */
	for (i = 0; i < len; i += 2) {
		addr += t[i];
		if (addr > offset)
			break;
		line += (int8_t)t[i + 1];
		if (!line__in_range(line))
			return -EINVAL;
	}
	return line__result(line);
}

static int lt310__line(const uint8_t *t, size_t len, int64_t line, uint32_t offset)
{
	uint64_t end = 0;
	size_t i;

	if (len % 2)
		return -EINVAL;
	/*
	 * Pairs (byte length, signed line delta) each describing the next
	 * range; zero-length ranges only carry a line delta too large for one
	 * byte. A "no line" range leaves the running line untouched.
	 */
	for (i = 0; i < len; i += 2) {
		int8_t ldelta = (int8_t)t[i + 1];

		end += t[i];
		if (ldelta != LT310_NO_LINE)
			line += ldelta;
		if (!line__in_range(line))
			return -EINVAL;
		if (offset < end)
			return ldelta == LT310_NO_LINE ? 0 : line__result(line);
	}
	/* The table covers all of co_code: anything after it is not code. */
	return -EINVAL;
}

/* Payload bytes of a location entry never have bit 7 set: that starts the next entry. */
static int lt311__byte(const uint8_t *t, size_t len, size_t *pos, uint8_t *out)
{
	if (*pos >= len || (t[*pos] & 0x80))
		return -EINVAL;
	*out = t[(*pos)++];
	return 0;
}

static int lt311__varint(const uint8_t *t, size_t len, size_t *pos, uint32_t *out)
{
	uint64_t val = 0;
	unsigned int chunk;
	uint8_t b;
	int err;

	/* 6-bit chunks, least significant first, bit 6 set on all but the last. */
	for (chunk = 0; chunk < LT311_VARINT_MAX_CHUNKS; chunk++) {
		err = lt311__byte(t, len, pos, &b);
		if (err)
			return err;
		val |= (uint64_t)(b & 0x3f) << (6 * chunk);
		if (!(b & 0x40)) {
			if (val > UINT32_MAX)
				return -EINVAL;
			*out = (uint32_t)val;
			return 0;
		}
	}
	return -EINVAL;
}

static int lt311__svarint(const uint8_t *t, size_t len, size_t *pos, int64_t *out)
{
	uint32_t val;
	int err;

	/* Sign in bit 0, magnitude above it. */
	err = lt311__varint(t, len, pos, &val);
	if (err)
		return err;
	*out = val & 1 ? -(int64_t)(val >> 1) : (int64_t)(val >> 1);
	return 0;
}

/* Decode the payload of one entry after its header; *ldelta gets its line delta. */
static int lt311__entry(const uint8_t *t, size_t len, size_t *pos, unsigned int code,
			int64_t *ldelta)
{
	uint32_t skip;
	uint8_t b;
	int err, i;

	*ldelta = 0;
	if (code <= LT311_SHORT_MAX)
		return lt311__byte(t, len, pos, &b); /* column bits only */
	if (code <= LT311_ONE_LINE_MAX) {
		*ldelta = code - LT311_ONE_LINE_MIN;
		err = lt311__byte(t, len, pos, &b); /* start column */
		if (!err)
			err = lt311__byte(t, len, pos, &b); /* end column */
		return err;
	}
	if (code == LT311_NO_LOCATION)
		return 0;
	err = lt311__svarint(t, len, pos, ldelta);
	if (err || code == LT311_NO_COLUMN)
		return err;
	/* Long form: end line delta, start column, end column. */
	for (i = 0; i < 3 && !err; i++)
		err = lt311__varint(t, len, pos, &skip);
	return err;
}

static int lt311__line(const uint8_t *t, size_t len, int64_t line, uint32_t offset)
{
	uint64_t end = 0;
	size_t pos = 0;

	while (pos < len) {
		uint8_t head = t[pos++];
		unsigned int code = (head >> 3) & 0xf;
		int64_t ldelta;
		int err;

		if (!(head & 0x80))
			return -EINVAL;
		err = lt311__entry(t, len, &pos, code, &ldelta);
		if (err)
			return err;
		/* "No location" entries leave the running line untouched (delta 0). */
		line += ldelta;
		if (!line__in_range(line))
			return -EINVAL;
		/* Length in 2-byte code units, minus one, in bits 0-2. */
		end += 2 * ((head & 7) + 1);
		if (offset < end)
			return code == LT311_NO_LOCATION ? 0 : line__result(line);
	}
	return -EINVAL;
}

int linetable__line(enum pml_lt_format fmt, const uint8_t *table, size_t len, int firstlineno,
		    uint32_t offset)
{
	if (!table && len)
		return -EINVAL;
	switch (fmt) {
	case PML_LT_LNOTAB:
		return lnotab__line(table, len, firstlineno, offset);
	case PML_LT_310:
		return lt310__line(table, len, firstlineno, offset);
	case PML_LT_311:
		return lt311__line(table, len, firstlineno, offset);
	}
	return -EINVAL;
}
