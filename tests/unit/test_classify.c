/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * user/classify.c on fake target memory laid out like CPython 3.8, 3.11 and
 * 3.12 (the real pyoffsets rows): objects with and without GC head and
 * pre-header, metaclasses, types that are not types, bad names, short and
 * unreadable blocks, the type cache and its bound; then on live pyenv
 * interpreters read with process_vm_readv (root only).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "classify.h"
#include "pyoffsets.h"

#define TPF_PREHEADER_NONE 0
#define TPF_HEAPTYPE	   (1ull << 9)
#define TPF_BASETYPE	   (1ull << 10)
#define TPF_READY	   (1ull << 12)
#define TPF_TYPE_SUBCLASS  (1ull << 31)

#define BASE	      0x7f1200000000ull /* page aligned */
#define ARENA_LEN     (256u << 10)
#define BIG_ARENA_LEN (4u << 20)
#define TYPE_BYTES    0x200 /* room for one fake type object */
#define PID_A	      4242
#define PID_B	      4343

static const int minors[] = { 8, 11, 12 };

/* One process's memory: [base, base + len) readable, the rest faults. */
struct arena {
	int pid;
	uint64_t base;
	uint8_t *mem;
	size_t len;
	size_t used;
	int fail; /* when set, reads after the first fail_after return it */
	unsigned int fail_after;
	unsigned int reads;
};

struct world {
	struct arena a;
	const struct pml_pylayout *lay;
	struct pml_classifier *c;
	uint64_t type_type, float_t, dict_t, list_t, leaky_t, meta_t, withmeta_t;
	uint64_t gen_head; /* what GC heads point to */
};

static int arena_read(int pid, uint64_t addr, void *buf, size_t len, void *ctx)
{
	struct arena **as = ctx;
	struct arena *a;

	for (; (a = *as) != NULL; as++) {
		if (a->pid != pid)
			continue;
		if (a->fail && a->reads >= a->fail_after) {
			a->reads++;
			return a->fail;
		}
		a->reads++;
		if (addr < a->base || len > a->len || addr - a->base > a->len - len)
			return -EFAULT;
		memcpy(buf, a->mem + (addr - a->base), len);
		return 0;
	}
	return -ESRCH;
}

static uint8_t *at(struct arena *a, uint64_t addr, size_t len)
{
	assert_true(addr >= a->base && addr - a->base + len <= a->len);
	return a->mem + (addr - a->base);
}

static void put64(struct arena *a, uint64_t addr, uint64_t v)
{
	memcpy(at(a, addr, 8), &v, 8);
}

static uint64_t alloc(struct arena *a, size_t len)
{
	uint64_t addr;

	a->used = (a->used + 15) & ~(size_t)15;
	assert_true(a->used + len <= a->len);
	addr = a->base + a->used;
	a->used += len;
	return addr;
}

static uint64_t put_str(struct arena *a, const char *s)
{
	uint64_t addr = alloc(a, strlen(s) + 1);

	memcpy(at(a, addr, strlen(s) + 1), s, strlen(s) + 1);
	return addr;
}

/* A type object: refcount, ob_type = meta, tp_name, tp_basicsize, tp_flags. */
static uint64_t make_type_at(struct world *w, uint64_t meta, uint64_t name, uint64_t flags,
			     uint64_t basicsize)
{
	uint64_t t = alloc(&w->a, TYPE_BYTES);

	put64(&w->a, t, 1);
	put64(&w->a, t + w->lay->ob_type, meta);
	put64(&w->a, t + w->lay->tp_name, name);
	put64(&w->a, t + w->lay->tp_basicsize, basicsize);
	put64(&w->a, t + w->lay->tp_flags, flags);
	return t;
}

static uint64_t make_type(struct world *w, uint64_t meta, const char *name, uint64_t flags,
			  uint64_t basicsize)
{
	return make_type_at(w, meta, put_str(&w->a, name), flags, basicsize);
}

static uint64_t gc_flag(const struct world *w)
{
	return w->lay->tp_flags_gc;
}

static uint32_t gc_size(const struct world *w)
{
	return w->lay->gc_head_size;
}

static uint32_t pre_size(const struct world *w)
{
	return w->lay->minor >= 11 ? w->lay->pre_header_size : 0;
}

/* Flags of a plain `class X: pass` instance type on this version. */
static uint64_t class_flags(const struct world *w)
{
	return TPF_READY | TPF_HEAPTYPE | TPF_BASETYPE | gc_flag(w) | w->lay->tp_flags_preheader;
}

static uint64_t class_basicsize(const struct world *w)
{
	/* 3.8-3.10 keep __dict__ and __weakref__ in the object. */
	return w->lay->minor >= 11 ? 16 : 32;
}

/*
 * A block of `size` bytes whose object (refcount 1, ob_type = type) starts
 * at off; the bytes before it look like a GC head / pre-header would.
 */
static uint64_t make_block(struct world *w, uint64_t type, uint32_t off, uint64_t size)
{
	uint64_t b = alloc(&w->a, size);
	uint32_t i;

	for (i = 0; i + 8 <= off; i += 8)
		put64(&w->a, b + i, i == off - gc_size(w) ? b : w->gen_head);
	put64(&w->a, b + off, 1);
	put64(&w->a, b + off + w->lay->ob_type, type);
	return b;
}

static void world_init(struct world *w, int minor, int pid, size_t len)
{
	memset(w, 0, sizeof(*w));
	w->lay = pyoffsets__lookup(3, minor);
	assert_non_null(w->lay);
	w->a.pid = pid;
	w->a.base = BASE;
	w->a.len = len;
	w->a.mem = calloc(1, len);
	assert_non_null(w->a.mem);
	w->a.used = 0x1000; /* page 0 stays zero: "memory that is not a type" */
	w->gen_head = alloc(&w->a, 32);

	w->type_type = make_type(w, 0, "type",
				 TPF_READY | TPF_BASETYPE | TPF_TYPE_SUBCLASS | gc_flag(w), 880);
	put64(&w->a, w->type_type + w->lay->ob_type, w->type_type);
	w->float_t = make_type(w, w->type_type, "float", TPF_READY | TPF_BASETYPE, 24);
	w->dict_t = make_type(w, w->type_type, "dict", TPF_READY | TPF_BASETYPE | gc_flag(w), 48);
	w->list_t = make_type(w, w->type_type, "list", TPF_READY | TPF_BASETYPE | gc_flag(w), 40);
	w->leaky_t = make_type(w, w->type_type, "Leaky", class_flags(w), class_basicsize(w));
	w->meta_t = make_type(
		w, w->type_type, "Meta",
		TPF_READY | TPF_HEAPTYPE | TPF_BASETYPE | TPF_TYPE_SUBCLASS | gc_flag(w), 896);
	w->withmeta_t = make_type(w, w->meta_t, "WithMeta", class_flags(w), class_basicsize(w));
}

static struct arena *readers[3];

static void world_start(struct world *w)
{
	readers[0] = &w->a;
	readers[1] = NULL;
	w->c = classify__new(arena_read, readers);
	assert_non_null(w->c);
	assert_int_equal(classify__add_proc(w->c, w->a.pid, w->lay, w->type_type), 0);
}

static void world_fini(struct world *w)
{
	classify__free(w->c);
	free(w->a.mem);
}

/* Classify and check the result; returns the reads it took. */
static unsigned int expect(struct world *w, uint64_t addr, uint64_t size, const char *want)
{
	char name[PML_CLASSIFY_NAME_MAX];
	unsigned int before = w->a.reads;

	assert_int_equal(classify__block(w->c, w->a.pid, addr, size, name, sizeof(name)), 0);
	if (strcmp(name, want) != 0)
		fail_msg("3.%d block 0x%llx+%llu: got \"%s\", want \"%s\"", w->lay->minor,
			 (unsigned long long)addr, (unsigned long long)size, name, want);
	return w->a.reads - before;
}

static void classify_block__builtin_objects__type_names(void **state)
{
	struct world w;
	uint64_t b;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		/* float: no GC head, the object is the block. */
		b = make_block(&w, w.float_t, 0, 24);
		expect(&w, b, 24, "float");
		/* dict and list: GC head first. */
		b = make_block(&w, w.dict_t, gc_size(&w), gc_size(&w) + 48);
		expect(&w, b, gc_size(&w) + 48, "dict");
		b = make_block(&w, w.list_t, gc_size(&w), gc_size(&w) + 40);
		expect(&w, b, gc_size(&w) + 40, "list");
		/* A class object is an instance of type (GC, no pre-header). */
		b = make_block(&w, w.type_type, gc_size(&w), gc_size(&w) + 880);
		expect(&w, b, gc_size(&w) + 880, "type");
		world_fini(&w);
	}
}

static void classify_block__class_instance__class_name_after_preheader(void **state)
{
	struct world w;
	uint64_t b, size, dict;
	uint32_t off;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		off = pre_size(&w) + gc_size(&w);
		size = off + class_basicsize(&w);
		b = make_block(&w, w.leaky_t, off, size);
		if (pre_size(&w)) {
			/* Pre-header words: values NULL, then the instance's dict,
			 * whose type's type is type_type: it must not pass as a type. */
			dict = make_block(&w, w.dict_t, gc_size(&w), gc_size(&w) + 48) +
			       gc_size(&w);
			put64(&w.a, b, 0);
			put64(&w.a, b + 8, dict);
		}
		expect(&w, b, size, "Leaky");
		world_fini(&w);
	}
}

static void classify_block__metaclass_instance__class_name(void **state)
{
	struct world w;
	uint64_t b, size;
	uint32_t off;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		off = pre_size(&w) + gc_size(&w);
		size = off + class_basicsize(&w);
		b = make_block(&w, w.withmeta_t, off, size);
		expect(&w, b, size, "WithMeta");
		/* The class object WithMeta is an instance of Meta. */
		b = make_block(&w, w.meta_t, gc_size(&w), gc_size(&w) + 896);
		expect(&w, b, gc_size(&w) + 896, "Meta");
		world_fini(&w);
	}
}

static void classify_block__metaclass_chain_or_not_type_subclass__buffer(void **state)
{
	struct world w;
	uint64_t meta2, deep, plain_meta, fake, b, size;
	uint32_t off;

	world_init(&w, 12, PID_A, ARENA_LEN);
	/* Two levels: Meta2 is an instance of Meta, Deep of Meta2. */
	meta2 = make_type(&w, w.meta_t, "Meta2",
			  TPF_READY | TPF_HEAPTYPE | TPF_TYPE_SUBCLASS | gc_flag(&w), 896);
	deep = make_type(&w, meta2, "Deep", class_flags(&w), 16);
	/* A "metaclass" that is a type but not a subclass of type. */
	plain_meta = make_type(&w, w.type_type, "NotMeta", TPF_READY | gc_flag(&w), 896);
	fake = make_type(&w, plain_meta, "Fake", class_flags(&w), 16);
	world_start(&w);
	off = pre_size(&w) + gc_size(&w);
	size = off + 16;
	b = make_block(&w, deep, off, size);
	expect(&w, b, size, "<buffer>");
	b = make_block(&w, fake, off, size);
	expect(&w, b, size, "<buffer>");
	/* The one-level case next to them still works. */
	b = make_block(&w, meta2, gc_size(&w), gc_size(&w) + 896);
	expect(&w, b, gc_size(&w) + 896, "Meta2");
	world_fini(&w);
}

static void classify_block__garbage__buffer(void **state)
{
	struct world w;
	uint64_t b, x = 0x243f6a8885a308d3ull;
	size_t i, j;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		b = alloc(&w.a, 256);
		for (j = 0; j < 256; j += 8) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			put64(&w.a, b + j, x);
		}
		expect(&w, b, 256, "<buffer>");
		/* All zero (calloc'd buffer). */
		b = alloc(&w.a, 256);
		expect(&w, b, 256, "<buffer>");
		world_fini(&w);
	}
}

static void classify_block__list_item_array__buffer(void **state)
{
	struct world w;
	uint64_t items, f;
	size_t i, j;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		/* [1.5, float, dict, ...]: pointers, some of them to types. */
		items = alloc(&w.a, 64);
		for (j = 0; j < 8; j++) {
			f = make_block(&w, w.float_t, 0, 24);
			put64(&w.a, items + 8 * j, f);
		}
		put64(&w.a, items + 8, w.float_t);
		put64(&w.a, items + 8 + gc_size(&w), w.dict_t);
		put64(&w.a, items + 8 + gc_size(&w) + pre_size(&w), w.leaky_t);
		expect(&w, items, 64, "<buffer>");
		world_fini(&w);
	}
}

static void classify_block__type_pointer_to_non_type__buffer(void **state)
{
	struct world w;
	uint64_t dict, b;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		/* ob_type -> a dict object: its type is a type, but it is not one. */
		dict = make_block(&w, w.dict_t, gc_size(&w), gc_size(&w) + 48) + gc_size(&w);
		b = make_block(&w, dict, 0, 64);
		expect(&w, b, 64, "<buffer>");
		/* ob_type -> zeroed memory. */
		b = make_block(&w, BASE + 0x100, 0, 64);
		expect(&w, b, 64, "<buffer>");
		/* ob_type -> unmapped, misaligned, NULL, near the top of the address space. */
		b = make_block(&w, BASE + ARENA_LEN + 0x1000, 0, 64);
		expect(&w, b, 64, "<buffer>");
		b = make_block(&w, w.float_t + 4, 0, 64);
		expect(&w, b, 64, "<buffer>");
		b = make_block(&w, 0, 0, 64);
		expect(&w, b, 64, "<buffer>");
		b = make_block(&w, UINT64_MAX - 7, 0, 64);
		expect(&w, b, 64, "<buffer>");
		world_fini(&w);
	}
}

static void classify_block__bad_type_fields__buffer(void **state)
{
	struct world w;
	uint64_t bad[8], name, b;
	char longname[80];
	size_t i, n = 0;

	world_init(&w, 12, PID_A, ARENA_LEN);
	memset(longname, 'x', 64);
	longname[64] = '\0';
	bad[n++] = make_type(&w, w.type_type, longname, TPF_READY, 24); /* unterminated in 64 */
	bad[n++] = make_type(&w, w.type_type, "bad\nname", TPF_READY, 24);
	bad[n++] = make_type(&w, w.type_type, "caf\xc3\xa9", TPF_READY, 24);
	bad[n++] = make_type(&w, w.type_type, "", TPF_READY, 24);
	bad[n++] = make_type_at(&w, w.type_type, 0, TPF_READY, 24); /* NULL tp_name */
	bad[n++] = make_type_at(&w, w.type_type, BASE + ARENA_LEN, TPF_READY, 24);
	bad[n++] = make_type(&w, w.type_type, "notready", 0, 24);
	bad[n++] = make_type(&w, w.type_type, "tiny", TPF_READY, 8); /* basicsize < PyObject */
	world_start(&w);
	for (i = 0; i < n; i++) {
		b = make_block(&w, bad[i], 0, 64);
		expect(&w, b, 64, "<buffer>");
	}
	/* Boundaries that are fine: 63 characters; a name ending right before
	 * unmapped memory (a 64-byte read there would fault). */
	longname[63] = '\0';
	b = make_block(&w, make_type(&w, w.type_type, longname, TPF_READY, 24), 0, 64);
	expect(&w, b, 64, longname);
	name = BASE + ARENA_LEN - 5;
	memcpy(at(&w.a, name, 5), "Edge", 5);
	b = make_block(&w, make_type_at(&w, w.type_type, name, TPF_READY, 24), 0, 64);
	expect(&w, b, 64, "Edge");
	world_fini(&w);
}

static void classify_block__headers_disagree_with_flags__buffer(void **state)
{
	struct world w;
	uint64_t b;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		/* A GC type without its GC head, a non-GC type behind one. */
		b = make_block(&w, w.dict_t, 0, 64);
		expect(&w, b, 64, "<buffer>");
		b = make_block(&w, w.float_t, gc_size(&w), 64);
		expect(&w, b, 64, "<buffer>");
		/* 3.11+: a pre-header type with only a GC head; a type without
		 * pre-header behind one; a class instance with no header at all. */
		b = make_block(&w, w.leaky_t, gc_size(&w), 64);
		expect(&w, b, 64, minors[i] >= 11 ? "<buffer>" : "Leaky");
		b = make_block(&w, w.dict_t, gc_size(&w) + 16, 96);
		expect(&w, b, 96, "<buffer>");
		b = make_block(&w, w.leaky_t, 0, 96);
		expect(&w, b, 96, "<buffer>");
		world_fini(&w);
	}
}

static void classify_block__block_smaller_than_basicsize__buffer(void **state)
{
	struct world w;
	uint64_t b, size;
	uint32_t off;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		b = make_block(&w, w.dict_t, gc_size(&w), gc_size(&w) + 48);
		expect(&w, b, gc_size(&w) + 47, "<buffer>");
		expect(&w, b, gc_size(&w) + 48, "dict");
		b = make_block(&w, w.float_t, 0, 24);
		expect(&w, b, 23, "<buffer>");
		expect(&w, b, 16, "<buffer>");
		expect(&w, b, 1, "<buffer>");
		expect(&w, b, 0, "<buffer>");
		off = pre_size(&w) + gc_size(&w);
		size = off + class_basicsize(&w);
		b = make_block(&w, w.leaky_t, off, size);
		expect(&w, b, size - 1, "<buffer>");
		world_fini(&w);
	}
}

/* A compact str is smaller than str's tp_basicsize (the legacy layout's size). */
static void classify_block__compact_str_below_basicsize__str(void **state)
{
	struct world w;
	uint64_t str_t, b;
	size_t i;

	for (i = 0; i < sizeof(minors) / sizeof(minors[0]); i++) {
		world_init(&w, minors[i], PID_A, ARENA_LEN);
		world_start(&w);
		str_t = make_type(&w, w.type_type, "str", TPF_READY | (1ull << 28), 80);
		b = make_block(&w, str_t, 0, 48);
		expect(&w, b, 48, "str");
		/* Without the str flag the same block is too small to hold the type. */
		str_t = make_type(&w, w.type_type, "notstr", TPF_READY, 80);
		b = make_block(&w, str_t, 0, 48);
		expect(&w, b, 48, "<buffer>");
		world_fini(&w);
	}
}

static void classify_block__refcount__pointer_rejected_zero_accepted(void **state)
{
	struct world w;
	uint64_t b;

	world_init(&w, 12, PID_A, ARENA_LEN);
	world_start(&w);
	b = make_block(&w, w.float_t, 0, 24);
	put64(&w.a, b, 0); /* dead object kept by a free list */
	expect(&w, b, 24, "float");
	b = make_block(&w, w.float_t, 0, 24);
	put64(&w.a, b, 0xffffffffull); /* 3.12 immortal */
	expect(&w, b, 24, "float");
	b = make_block(&w, w.float_t, 0, 24);
	put64(&w.a, b, BASE + 0x40);
	expect(&w, b, 24, "<buffer>");
	world_fini(&w);
}

static void classify_block__unreadable_or_wrapping__buffer(void **state)
{
	struct world w;
	uint64_t b;

	world_init(&w, 12, PID_A, ARENA_LEN);
	world_start(&w);
	expect(&w, BASE - 0x1000, 64, "<buffer>");
	expect(&w, BASE + ARENA_LEN - 16, 64, "<buffer>");
	assert_int_equal(expect(&w, UINT64_MAX - 8, 64, "<buffer>"), 0);
	assert_int_equal(expect(&w, UINT64_MAX - 63, 64, "<buffer>"), 0);
	expect(&w, UINT64_MAX - 64, 64, "<buffer>");
	/* The reader failing outright. */
	b = make_block(&w, w.float_t, 0, 24);
	w.a.fail = -EIO;
	w.a.fail_after = 0;
	expect(&w, b, 24, "<buffer>");
	w.a.fail = 0;
	expect(&w, b, 24, "float");
	world_fini(&w);
}

static void classify_block__cache__types_read_once(void **state)
{
	struct world w;
	uint64_t d1, d2, g;

	world_init(&w, 12, PID_A, ARENA_LEN);
	world_start(&w);
	d1 = make_block(&w, w.dict_t, gc_size(&w), gc_size(&w) + 48);
	d2 = make_block(&w, w.dict_t, gc_size(&w), gc_size(&w) + 48);
	g = make_block(&w, BASE + 0x100, 0, 64);
	assert_true(expect(&w, d1, 64, "dict") > 1);
	/* Type known: the block header is the only read. */
	assert_int_equal(expect(&w, d2, 64, "dict"), 1);
	assert_true(expect(&w, g, 64, "<buffer>") > 1);
	assert_int_equal(expect(&w, g, 64, "<buffer>"), 1);
	/* Cached facts do not outlive the pid. */
	classify__drop_pid(w.c, PID_A);
	assert_int_equal(classify__add_proc(w.c, PID_A, w.lay, w.type_type), 0);
	assert_true(expect(&w, d2, 64, "dict") > 1);
	world_fini(&w);
}

static void classify_block__reader_error__not_cached_fault_cached(void **state)
{
	struct world w;
	uint64_t b;
	unsigned int after;

	world_init(&w, 12, PID_A, ARENA_LEN);
	world_start(&w);
	b = make_block(&w, w.float_t, 0, 24);
	/* The block reads, then the type (read 2) or its name (read 3) fails
	 * as when the process exits: nothing is remembered. */
	for (after = 1; after <= 2; after++) {
		w.a.reads = 0;
		w.a.fail = -ESRCH;
		w.a.fail_after = after;
		expect(&w, b, 24, "<buffer>");
		w.a.fail = 0;
		expect(&w, b, 24, "float");
		classify__drop_pid(w.c, PID_A);
		assert_int_equal(classify__add_proc(w.c, PID_A, w.lay, w.type_type), 0);
	}
	/* A fault settles it: that address is not a type until the cache goes. */
	w.a.reads = 0;
	w.a.fail = -EFAULT;
	w.a.fail_after = 1;
	expect(&w, b, 24, "<buffer>");
	w.a.fail = 0;
	assert_int_equal(expect(&w, b, 24, "<buffer>"), 1);
	world_fini(&w);
}

static void classify_block__cache_full__cleared_and_still_right(void **state)
{
	enum {
		N = PML_CLASSIFY_CACHE_MAX + 8
	};
	struct world w;
	uint64_t *blocks;
	char name[32];
	size_t i;

	world_init(&w, 12, PID_A, BIG_ARENA_LEN);
	blocks = calloc(N, sizeof(*blocks));
	assert_non_null(blocks);
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "T%zu", i);
		blocks[i] = make_block(&w, make_type(&w, w.type_type, name, TPF_READY, 24), 0, 24);
	}
	world_start(&w);
	for (i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "T%zu", i);
		expect(&w, blocks[i], 24, name);
		if (i == 10)
			assert_int_equal(expect(&w, blocks[0], 24, "T0"), 1);
	}
	/* T0 was dropped when the cache filled: read again, same answer. */
	assert_true(expect(&w, blocks[0], 24, "T0") > 1);
	for (i = 0; i < N; i += 97) {
		snprintf(name, sizeof(name), "T%zu", i);
		expect(&w, blocks[i], 24, name);
	}
	free(blocks);
	world_fini(&w);
}

static void classify_block__two_pids__each_own_layout(void **state)
{
	struct world w8, w12;
	uint64_t b8, b12;
	uint8_t *keep;
	char name[32];

	world_init(&w8, 8, PID_A, ARENA_LEN);
	world_init(&w12, 12, PID_B, ARENA_LEN);
	b8 = make_block(&w8, w8.leaky_t, 16, 16 + 32);
	b12 = make_block(&w12, w12.leaky_t, 32, 32 + 16);
	readers[0] = &w8.a;
	readers[1] = &w12.a;
	readers[2] = NULL;
	w8.c = classify__new(arena_read, readers);
	assert_non_null(w8.c);
	assert_int_equal(classify__add_proc(w8.c, PID_A, w8.lay, w8.type_type), 0);
	assert_int_equal(classify__add_proc(w8.c, PID_B, w12.lay, w12.type_type), 0);
	assert_int_equal(classify__block(w8.c, PID_A, b8, 48, name, sizeof(name)), 0);
	assert_string_equal(name, "Leaky");
	assert_int_equal(classify__block(w8.c, PID_B, b12, 48, name, sizeof(name)), 0);
	assert_string_equal(name, "Leaky");
	/* Same bytes, wrong layout: the 3.12 block read as 3.8 is not a Leaky. */
	keep = w8.a.mem;
	w8.a.mem = w12.a.mem;
	assert_int_equal(classify__add_proc(w8.c, PID_A, w8.lay, w12.type_type), 0);
	assert_int_equal(classify__block(w8.c, PID_A, b12, 48, name, sizeof(name)), 0);
	assert_string_equal(name, "<buffer>");
	w8.a.mem = keep;
	classify__drop_pid(w8.c, PID_B);
	assert_int_equal(classify__block(w8.c, PID_B, b12, 48, name, sizeof(name)), -ESRCH);
	assert_string_equal(name, "<buffer>");
	classify__drop_pid(w8.c, PID_B);
	world_fini(&w8);
	world_fini(&w12);
}

static void classify_api__bad_arguments__einval(void **state)
{
	struct pml_pylayout bad;
	struct world w;
	char name[16];
	uint64_t b;

	world_init(&w, 11, PID_A, ARENA_LEN);
	world_start(&w);
	b = make_block(&w, w.dict_t, 16, 64);
	assert_int_equal(classify__add_proc(NULL, 1, w.lay, w.type_type), -EINVAL);
	assert_int_equal(classify__add_proc(w.c, 1, NULL, w.type_type), -EINVAL);
	assert_int_equal(classify__add_proc(w.c, 1, w.lay, 0), -EINVAL);
	assert_int_equal(classify__add_proc(w.c, 1, w.lay, w.type_type + 4), -EINVAL);
	bad = *w.lay;
	bad.ob_type = 12;
	assert_int_equal(classify__add_proc(w.c, 1, &bad, w.type_type), -EINVAL);
	bad = *w.lay;
	bad.tp_flags = 4096;
	assert_int_equal(classify__add_proc(w.c, 1, &bad, w.type_type), -EINVAL);
	bad = *w.lay;
	bad.gc_head_size = 72;
	assert_int_equal(classify__add_proc(w.c, 1, &bad, w.type_type), -EINVAL);

	assert_int_equal(classify__block(NULL, PID_A, b, 64, name, sizeof(name)), -EINVAL);
	assert_int_equal(classify__block(w.c, PID_A, b, 64, NULL, 8), -EINVAL);
	assert_int_equal(classify__block(w.c, PID_A, b, 64, name, 0), -EINVAL);
	assert_int_equal(classify__block(w.c, 999, b, 64, name, sizeof(name)), -ESRCH);
	assert_string_equal(name, "<buffer>");
	/* Truncated, always terminated. */
	assert_int_equal(classify__block(w.c, PID_A, b, 64, name, 3), 0);
	assert_string_equal(name, "di");
	assert_int_equal(classify__block(w.c, PID_A, b + 16, 48, name, 4), 0);
	assert_string_equal(name, "<bu");
	classify__drop_pid(NULL, 1);
	classify__drop_pid(w.c, 12345);
	classify__free(NULL);
	world_fini(&w);
}

/* ---- live interpreters ---- */

static const char live_script[] =
	"import sys\n"
	"class Leaky:\n"
	"    def __init__(self):\n"
	"        self.x = 1\n"
	"class Meta(type):\n"
	"    pass\n"
	"class WithMeta(metaclass=Meta):\n"
	"    pass\n"
	"objs = [('dict', {'a': 1}), ('list', [1, 2, 3]), ('Leaky', Leaky()),\n"
	"        ('float', float('1.5')), ('bytes', bytes(range(40))),\n"
	"        ('WithMeta', WithMeta()), ('type', Leaky), ('Meta', WithMeta)]\n"
	"for label, o in objs:\n"
	"    print(label, id(o), sys.getsizeof(o))\n"
	"sys.stdout.flush()\n"
	"sys.stdin.read()\n";

static int live_k(const struct pml_pylayout *lay, const char *label)
{
	uint32_t pre = lay->minor >= 11 ? lay->pre_header_size : 0;

	if (!strcmp(label, "float") || !strcmp(label, "bytes"))
		return 0;
	/* A subclass of type has no managed dict (type has items). */
	if (!strcmp(label, "dict") || !strcmp(label, "list") || !strcmp(label, "type") ||
	    !strcmp(label, "Meta"))
		return (int)lay->gc_head_size;
	return (int)(lay->gc_head_size + pre); /* Leaky, WithMeta */
}

/* Address of PyType_Type: nm's symbol value + where the library's offset-0
 * mapping starts (its first PT_LOAD has p_vaddr 0). */
static uint64_t live_type_type(pid_t pid, const char *lib)
{
	char cmd[512], line[1024], path[512], want[256];
	unsigned long long value = 0, start, end, off;
	uint64_t base = 0;
	const char *slash = strrchr(lib, '/');
	FILE *f;

	snprintf(cmd, sizeof(cmd), "nm -D --defined-only '%s'", lib);
	f = popen(cmd, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char type, sym[256];

		if (sscanf(line, "%llx %c %255s", &value, &type, sym) == 3 &&
		    !strcmp(sym, "PyType_Type"))
			break;
		value = 0;
	}
	pclose(f);
	snprintf(want, sizeof(want), "%s", slash ? slash + 1 : lib);
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char *name = strrchr(line, '/');

		if (!name || sscanf(line, "%llx-%llx %*s %llx", &start, &end, &off) != 3)
			continue;
		name[strcspn(name, "\n")] = '\0';
		if (off == 0 && !strcmp(name + 1, want)) {
			base = start;
			break;
		}
	}
	fclose(f);
	return value && base ? base + value : 0;
}

/*
 * Check one object at id - k for each candidate k; a problem goes to err.
 * The true block start must name it; a k below it points inside the block
 * and must agree or say <buffer>; a k above it points into the block
 * before, whose own object may rightly be named (3.11: the int allocated
 * just before a float), so that answer is not judged.
 */
static void live_check(struct pml_classifier *c, pid_t pid, const struct pml_pylayout *lay,
		       const char *ver, const char *label, uint64_t id, uint64_t sz, char *err,
		       size_t errlen)
{
	uint64_t ks[3] = { 0, lay->gc_head_size,
			   lay->gc_head_size + (lay->minor >= 11 ? lay->pre_header_size : 0) };
	char name[PML_CLASSIFY_NAME_MAX];
	uint64_t want_k = (uint64_t)live_k(lay, label);
	int kk;

	for (kk = 0; kk < 3 && !err[0]; kk++) {
		if (kk && ks[kk] == ks[kk - 1])
			continue;
		if (classify__block(c, pid, id - ks[kk], sz + ks[2], name, sizeof(name)))
			snprintf(err, errlen, "%s: classify__block failed", ver);
		else if (ks[kk] == want_k && strcmp(name, label) != 0)
			snprintf(err, errlen, "%s: %s at its block start id-%llu is \"%s\"", ver,
				 label, (unsigned long long)want_k, name);
		else if (ks[kk] < want_k && strcmp(name, label) != 0 &&
			 strcmp(name, "<buffer>") != 0)
			snprintf(err, errlen, "%s: %s at id-%llu named \"%s\"", ver, label,
				 (unsigned long long)ks[kk], name);
	}
}

static int live_one(const char *ver, int minor)
{
	const struct pml_pylayout *lay = pyoffsets__lookup(3, minor);
	char python[256], lib[256], line[256], err[256] = "";
	unsigned long long id, sz;
	struct pml_classifier *c;
	int in[2], out[2], nobj = 0, status;
	uint64_t type_type = 0;
	pid_t pid;
	FILE *f;

	snprintf(python, sizeof(python), "/root/.pyenv/versions/%s/bin/python3", ver);
	snprintf(lib, sizeof(lib), "/root/.pyenv/versions/%s/lib/libpython3.%d.so.1.0", ver, minor);
	if (access(python, X_OK) || access(lib, R_OK))
		return 0;
	assert_non_null(lay);
	c = classify__new(NULL, NULL);
	assert_non_null(c);
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(python, python, "-c", live_script, (char *)NULL);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	f = fdopen(out[0], "r");
	assert_non_null(f);

	/* The script waits on stdin: stop at the last object, then close it.
	 * No assertion until the child is reaped. */
	while (nobj < 8 && !err[0] && fgets(line, sizeof(line), f)) {
		char label[64];

		if (sscanf(line, "%63s %llu %llu", label, &id, &sz) != 3)
			continue;
		if (!nobj++) {
			type_type = live_type_type(pid, lib);
			if (!type_type || classify__add_proc(c, pid, lay, type_type))
				snprintf(err, sizeof(err), "%s: no PyType_Type address", ver);
		}
		if (!err[0])
			live_check(c, pid, lay, ver, label, id, sz, err, sizeof(err));
	}
	fclose(f);
	close(in[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	classify__free(c);
	if (err[0])
		fail_msg("%s", err);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	assert_int_equal(nobj, 8);
	return 1;
}

static void classify_live__pyenv_interpreters__objects_named(void **state)
{
	int ran = 0;

	if (geteuid() != 0) {
		print_message("skip: live classification needs root (process_vm_readv)\n");
		skip();
	}
	ran += live_one("3.8.18", 8);
	ran += live_one("3.11.7", 11);
	ran += live_one("3.12.1", 12);
	if (!ran) {
		print_message("skip: no pyenv CPython 3.8.18, 3.11.7 or 3.12.1 found\n");
		skip();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(classify_block__builtin_objects__type_names),
		cmocka_unit_test(classify_block__class_instance__class_name_after_preheader),
		cmocka_unit_test(classify_block__metaclass_instance__class_name),
		cmocka_unit_test(classify_block__metaclass_chain_or_not_type_subclass__buffer),
		cmocka_unit_test(classify_block__garbage__buffer),
		cmocka_unit_test(classify_block__list_item_array__buffer),
		cmocka_unit_test(classify_block__type_pointer_to_non_type__buffer),
		cmocka_unit_test(classify_block__bad_type_fields__buffer),
		cmocka_unit_test(classify_block__headers_disagree_with_flags__buffer),
		cmocka_unit_test(classify_block__block_smaller_than_basicsize__buffer),
		cmocka_unit_test(classify_block__compact_str_below_basicsize__str),
		cmocka_unit_test(classify_block__refcount__pointer_rejected_zero_accepted),
		cmocka_unit_test(classify_block__unreadable_or_wrapping__buffer),
		cmocka_unit_test(classify_block__cache__types_read_once),
		cmocka_unit_test(classify_block__reader_error__not_cached_fault_cached),
		cmocka_unit_test(classify_block__cache_full__cleared_and_still_right),
		cmocka_unit_test(classify_block__two_pids__each_own_layout),
		cmocka_unit_test(classify_api__bad_arguments__einval),
		cmocka_unit_test(classify_live__pyenv_interpreters__objects_named),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
