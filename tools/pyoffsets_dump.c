/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Print the committed table row of one CPython version in the format
 * tools/gen_pyoffsets.c prints, so tests/unit/check_pyoffsets.sh can diff the
 * table against the headers.
 *
 *   cc -Iuser -Ibpf tools/pyoffsets_dump.c user/pyoffsets.c -o pyoffsets_dump
 *   pyoffsets_dump 3.12       (or 3.12.1: the patch level is ignored)
 *
 * Exit status: 0 printed, 1 usage, 2 version not in the table.
 */
#include <stdio.h>

#include "pyoffsets.h"

int main(int argc, char **argv)
{
	const struct pml_pylayout *l;
	int major, minor, lo, hi;

	if (argc != 2 || sscanf(argv[1], "%d.%d", &major, &minor) != 2) {
		fprintf(stderr, "usage: pyoffsets_dump MAJOR.MINOR\n");
		return 1;
	}
	l = pyoffsets__lookup(major, minor);
	if (!l) {
		pyoffsets__supported(&lo, &hi);
		fprintf(stderr, "CPython %d.%d is not in the table (3.%d to 3.%d)\n", major, minor,
			lo, hi);
		return 2;
	}
	return pyoffsets__print(stdout, l) || fflush(stdout) ? 1 : 0;
}
