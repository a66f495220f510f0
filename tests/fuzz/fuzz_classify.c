/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for user/classify.c. Input: layout selector (1 byte:
 * 3.8, 3.11, 3.12), block address and size (8 bytes LE each, the address
 * relative to the image base and free to wrap), PyType_Type relative to
 * the base (8 bytes LE), then the target memory image, mapped at
 * IMAGE_BASE; every other address faults. Besides memory safety it checks:
 *  - the result is 0 and a NUL-terminated "<buffer>" or 1..63 printable
 *    ASCII bytes that occur NUL-terminated in the image (names are read,
 *    never made up);
 *  - reads are few and small (every read bounded);
 *  - the type cache never changes an answer: a fresh classifier, the same
 *    one again, and one that has seen other blocks agree.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *	-Iuser -Ibpf tests/fuzz/fuzz_classify.c user/classify.c user/pyoffsets.c \
 *	-o build/fuzz_classify
 *   build/fuzz_classify -max_total_time=60 [seed dir]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "pyoffsets.h"

#define HEADER_LEN   25
#define IMAGE_BASE   0x1000ull
#define READS_MAX    32 /* 1 block + 4 candidates x 2 types x (1 + 2 name chunks) = 25 */
#define READ_LEN_MAX 512
#define PID	     77

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct image {
	const uint8_t *mem;
	size_t len;
	unsigned int reads;
};

static void check(int cond)
{
	if (!cond)
		abort();
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int image_read(int pid, uint64_t addr, void *buf, size_t len, void *ctx)
{
	struct image *im = ctx;

	check(pid == PID);
	check(len > 0 && len <= READ_LEN_MAX);
	im->reads++;
	if (addr < IMAGE_BASE || len > im->len || addr - IMAGE_BASE > im->len - len)
		return -EFAULT;
	memcpy(buf, im->mem + (addr - IMAGE_BASE), len);
	return 0;
}

static struct pml_classifier *fresh(struct image *im, const struct pml_pylayout *lay,
				    uint64_t type_type)
{
	struct pml_classifier *c = classify__new(image_read, im);

	check(c != NULL);
	check(classify__add_proc(c, PID, lay, type_type) == 0);
	return c;
}

static void classify(struct pml_classifier *c, struct image *im, uint64_t addr, uint64_t len,
		     char *name)
{
	size_t n, i;

	im->reads = 0;
	memset(name, 0x5a, PML_CLASSIFY_NAME_MAX);
	check(classify__block(c, PID, addr, len, name, PML_CLASSIFY_NAME_MAX) == 0);
	check(im->reads <= READS_MAX);
	n = strnlen(name, PML_CLASSIFY_NAME_MAX);
	check(n > 0 && n < PML_CLASSIFY_NAME_MAX);
	if (!strcmp(name, PML_CLASSIFY_BUFFER))
		return;
	for (i = 0; i < n; i++)
		check(name[i] >= 0x20 && name[i] <= 0x7e);
	check(memmem(im->mem, im->len, name, n + 1) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int minors[] = { 8, 11, 12 };
	char first[PML_CLASSIFY_NAME_MAX], again[PML_CLASSIFY_NAME_MAX];
	char other[PML_CLASSIFY_NAME_MAX];
	struct pml_classifier *a, *b;
	const struct pml_pylayout *lay;
	uint64_t addr, len, type_type, off;
	struct image im;

	if (size < HEADER_LEN)
		return 0;
	lay = pyoffsets__lookup(3, minors[data[0] % 3]);
	check(lay != NULL);
	addr = IMAGE_BASE + le64(data + 1);
	len = le64(data + 9);
	type_type = IMAGE_BASE + le64(data + 17);
	im.mem = data + HEADER_LEN;
	im.len = size - HEADER_LEN;
	im.reads = 0;
	if (!type_type || type_type % 8) {
		a = classify__new(image_read, &im);
		check(a != NULL);
		check(classify__add_proc(a, PID, lay, type_type) == -EINVAL);
		classify__free(a);
		return 0;
	}

	a = fresh(&im, lay, type_type);
	classify(a, &im, addr, len, first);
	classify(a, &im, addr, len, again);
	check(!strcmp(first, again));

	/* Warm a second classifier on every 8-byte start of the image, each
	 * checked against a cold one, then ask it the first question. */
	b = fresh(&im, lay, type_type);
	for (off = 0; off < im.len && off < 512; off += 8) {
		struct pml_classifier *cold = fresh(&im, lay, type_type);

		classify(b, &im, IMAGE_BASE + off, im.len - off, other);
		classify(cold, &im, IMAGE_BASE + off, im.len - off, again);
		check(!strcmp(other, again));
		classify__free(cold);
	}
	classify(b, &im, addr, len, again);
	check(!strcmp(first, again));

	classify__drop_pid(b, PID);
	check(classify__block(b, PID, addr, len, other, sizeof(other)) == -ESRCH);
	classify__free(b);
	classify__free(a);
	return 0;
}
