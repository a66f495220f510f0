/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for user/elf.c: open the input as an image and run every
 * query, checking that each pointer handed back lies inside the input and
 * each name ends inside it. libFuzzer's buffer is exactly `size` bytes, so
 * ASan sees any read past the image.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "elf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_NAMES 32

struct walk {
	const uint8_t *lo, *hi;
	const char *names[MAX_NAMES];
	uint64_t values[MAX_NAMES];
	unsigned int n;
	unsigned int calls;
};

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_str(const struct walk *w, const char *s)
{
	const uint8_t *p = (const uint8_t *)s;

	check(p >= w->lo && p < w->hi);
	check(memchr(s, '\0', (size_t)(w->hi - p)) != NULL);
}

static int on_func(const struct pml_elf_sym *s, void *ctx)
{
	struct walk *w = ctx;

	check_str(w, s->name);
	if (w->n < MAX_NAMES) {
		w->names[w->n] = s->name;
		w->values[w->n] = s->value;
		w->n++;
	}
	return ++w->calls == 100000; /* exercise the early stop too */
}

static int on_needed(const char *name, void *ctx)
{
	check_str(ctx, name);
	return 0;
}

static void query_addr(const struct pml_elf *e, const struct walk *w, uint64_t a)
{
	struct pml_elf_sym s;
	const uint8_t *b;
	uint64_t off;
	size_t len = 256;
	unsigned int sum = 0;

	if (elf__sym_at(e, a, &s) == 0) {
		check_str(w, s.name);
		check(s.value <= a);
	}
	if (elf__vaddr_to_offset(e, a, &off) == 0)
		check(off < (uint64_t)(w->hi - w->lo));
	b = elf__bytes_at(e, a, &len);
	if (b) {
		check(b >= w->lo && len <= (size_t)(w->hi - b));
		for (size_t i = 0; i < len; i++)
			sum += b[i];
	}
	(void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const fixed[] = { "PyObject_Malloc", "_PyObject_Malloc", "_PyRuntime",
					     "main", "" };
	struct walk w = { .lo = data, .hi = data + size };
	struct pml_elf_sym s;
	const uint8_t *tb;
	struct pml_elf *e;
	uint64_t tv, base;
	size_t tl;

	e = elf__open_mem(data, size);
	if (!e)
		return 0;
	elf__has_symtab(e);
	elf__is_pie_or_dso(e);
	elf__for_each_func(e, on_func, &w);
	elf__for_each_needed(e, on_needed, &w);
	if (elf__runpath(e))
		check_str(&w, elf__runpath(e));

	for (unsigned int i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (elf__find_sym(e, fixed[i], &s) == 0)
			check_str(&w, s.name);
		elf__find_dynsym(e, fixed[i], &s);
	}
	for (unsigned int i = 0; i < w.n; i++) {
		/* find_sym indexes every named function for_each_func yields */
		if (w.names[i][0]) {
			check(elf__find_sym(e, w.names[i], &s) == 0);
			check(!strcmp(s.name, w.names[i]));
		}
		query_addr(e, &w, w.values[i]);
		query_addr(e, &w, w.values[i] + 1);
	}

	base = elf__first_load_vaddr(e);
	query_addr(e, &w, base);
	query_addr(e, &w, base + 0x1000);
	query_addr(e, &w, 0);
	query_addr(e, &w, UINT64_MAX);
	if (elf__text(e, &tv, &tb, &tl) == 0) {
		check(tb >= w.lo && tl <= (size_t)(w.hi - tb));
		query_addr(e, &w, tv);
		query_addr(e, &w, tv + tl / 2);
	}
	elf__close(e);
	return 0;
}
