/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * CPython line-table decoders: instruction offset -> source line.
 * Pure functions over the bytes read from the target (untrusted): every
 * read is bounds-checked, a malformed table yields -EINVAL, never a crash
 * or an endless loop.
 */
#ifndef PML_LINETABLE_H
#define PML_LINETABLE_H

#include <stddef.h>
#include <stdint.h>

enum pml_lt_format {
	PML_LT_LNOTAB = 0, /* co_lnotab, CPython <= 3.9 */
	PML_LT_310,	   /* co_linetable, CPython 3.10 */
	PML_LT_311,	   /* location table, CPython 3.11+ */
};

/*
 * Line of the instruction at byte offset `offset` into co_code. What a frame
 * records is not always that: 3.8/3.9 f_lasti is the byte offset already,
 * 3.10 f_lasti counts 2-byte code units (pass 2 * f_lasti), 3.11+ the
 * instruction pointer minus the start of the code is in bytes (odd offsets
 * resolve to their code unit). firstlineno is co_firstlineno.
 * Returns the line (>= 0; "no line", and any line <= 0, is returned as 0),
 * or -EINVAL when the table is malformed or offset is beyond it. Only the
 * part of the table up to the entry covering offset is decoded, as CPython
 * does. co_lnotab does not record the code size, so for PML_LT_LNOTAB an
 * offset past the code gets the last line: bound it by co_code's size.
 */
int linetable__line(enum pml_lt_format fmt, const uint8_t *table, size_t len, int firstlineno,
		    uint32_t offset);

#endif
