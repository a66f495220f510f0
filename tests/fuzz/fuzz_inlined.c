/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for user/inlined.c. Input: four 16-bit offsets (LE) of
 * the "internal functions" into the code, then the code, mapped at 0x1000
 * as one chunk. Besides memory safety it checks what callers rely on:
 *  - a plan's sites are sorted, its counts add up, exits stay in bounds;
 *  - a handled site has an entry probe, every argument a location, and a
 *    malloc-kind site at least one exit with a result;
 *  - analysing a site alone gives what the plan gave (no hidden state);
 *  - find_fns on public functions at the same offsets never fails oddly.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *	-Iuser -I/usr/include/capstone tests/fuzz/fuzz_inlined.c user/inlined.c \
 *	-lcapstone -o build/fuzz/fuzz_inlined
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "inlined.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE   0x1000
#define HEADER 8

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_loc(const struct pml_loc *l)
{
	check(l->kind == PML_LOC_REG || l->kind == PML_LOC_IMM || l->kind == PML_LOC_STACK);
	if (l->kind == PML_LOC_REG)
		check(l->reg >= PML_REG_R15 && l->reg <= PML_REG_RDI);
}

static void check_site(const struct pml_inl_site *s)
{
	size_t i, with_result = 0;
	int a;

	check(s->kind < PML_INL_KINDS);
	check(s->n_exits <= PML_INL_MAX_EXITS);
	if (!s->handled) {
		check(s->n_exits == 0);
		return;
	}
	check(s->probe > s->guard);
	for (a = 0; a < inlined__nargs(s->kind); a++)
		check_loc(&s->arg[a]);
	for (i = 0; i < s->n_exits; i++) {
		if (s->exits[i].result.kind == PML_LOC_NONE)
			continue;
		check_loc(&s->exits[i].result);
		with_result++;
	}
	if (s->kind == PML_INL_FREE)
		check(s->n_exits == 0);
	else
		check(with_result > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pml_inl_public pubs[PML_INL_KINDS];
	struct pml_inl_fns fns, found;
	struct pml_inl_plan *plan;
	struct pml_inl_code c;
	struct pml_inl_text t = { &c, 1 };
	size_t i, total = 0;
	int k, err;

	if (size < HEADER)
		return 0;
	c.vaddr = BASE;
	c.bytes = data + HEADER;
	c.len = size - HEADER;
	for (k = 0; k < PML_INL_KINDS; k++) {
		uint16_t off = (uint16_t)(data[2 * k] | data[2 * k + 1] << 8);

		fns.addr[k] = BASE + off;
		pubs[k].kind = (enum pml_inl_kind)k;
		pubs[k].addr = BASE + off;
	}

	plan = inlined__plan(&t, &fns);
	check(plan != NULL);
	for (k = 0; k < PML_INL_KINDS; k++) {
		check(plan->n_handled[k] <= plan->n_kind[k]);
		total += plan->n_kind[k];
	}
	check(total == plan->n);
	for (i = 0; i < plan->n; i++) {
		struct pml_inl_site alone;

		check_site(&plan->sites[i]);
		if (i)
			check(plan->sites[i - 1].guard < plan->sites[i].guard);
		err = inlined__analyze(&t, &fns, plan->sites[i].guard, &alone);
		check(err == 0);
		check(alone.handled == plan->sites[i].handled);
		check(alone.n_exits == plan->sites[i].n_exits);
	}
	inlined__plan_free(plan);

	err = inlined__find_fns(&t, pubs, PML_INL_KINDS, &found);
	check(err == 0 || err == -ENOENT || err == -EINVAL);
	return 0;
}
