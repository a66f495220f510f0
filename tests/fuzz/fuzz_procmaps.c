/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for user/procmaps.c: parse arbitrary text, check the
 * documented invariants of the result, then run every lookup on it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procmaps.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pml_maps m;
	uint64_t base;
	size_t bad, lines = 0;

	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	if (size && data[size - 1] != '\n')
		lines++;

	if (procmaps__parse((const char *)data, size, &m, &bad))
		return 0;
	check(m.n + bad == lines);
	check(!m.n == !m.v);
	for (size_t i = 0; i < m.n; i++) {
		const struct pml_mapping *v = &m.v[i];
		const char *slash;

		check(v->start < v->end);
		check(!i || v->start >= m.v[i - 1].end);
		check(memchr(v->path, '\0', PML_PATH_MAX) != NULL);
		check(procmaps__find_addr(&m, v->start) == v);
		check(procmaps__find_addr(&m, v->end - 1) == v);
		if (v->path[0]) {
			slash = strrchr(v->path, '/');
			check(procmaps__find_lib(&m, slash ? slash + 1 : v->path) != NULL);
			if (procmaps__file_base(&m, v->path, &base) == 0)
				check(procmaps__find_addr(&m, base) != NULL);
			else
				check(v->offset != 0);
		}
	}
	procmaps__find_addr(&m, 0);
	procmaps__find_addr(&m, UINT64_MAX);
	procmaps__find_lib(&m, "libpython3.");
	procmaps__file_base(&m, "", &base);
	procmaps__free(&m);
	return 0;
}
