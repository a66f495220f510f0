/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * user/symbolize.c against fake target memory: an arena at a fake address,
 * read through a pml_read_fn that counts and logs every read, holding code,
 * str and bytes objects laid out per the real pyoffsets rows, with the real
 * line tables of tests/unit/fixtures (each interpreter's own answers).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "linetable.h"
#include "pyoffsets.h"
#include "symbolize.h"

/* Types the generated fixture headers fill in. */
struct lt_pair {
	uint32_t offset;
	int32_t line;
};

struct lt_code {
	const char *name;
	int firstlineno;
	const uint8_t *table;
	size_t table_len;
	uint32_t code_len; /* bytes of co_code */
	const struct lt_pair *pairs;
	size_t npairs;
};

struct lt_fixture {
	const char *version;
	enum pml_lt_format fmt;
	const struct lt_code *codes;
	size_t ncodes;
};

#include "fixtures/debug_offsets_313.h"
#include "fixtures/linetable_38.h"
#include "fixtures/linetable_39.h"
#include "fixtures/linetable_310.h"
#include "fixtures/linetable_311.h"
#include "fixtures/linetable_312.h"
#include "fixtures/linetable_313.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#define PID	     4242
#define PID2	     4343
#define ARENA_BASE   0x7f3a12340000ull
#define ARENA_SIZE   (32u << 20)
#define CODE_TYPE    0x55667788a000ull
#define STR_TYPE     0x55667788b000ull
#define BYTES_TYPE   0x55667788c000ull
#define UNKNOWN	     "<unknown>"
#define LOG_MAX	     8192
#define MAX_REPORTED 20

/* _Py_DebugOffsets (3.13) word indices, the cookie being word 0. */
#define W_VERSION	       1
#define W_FREE_THREADED	       2
#define W_RT_INTERPRETERS_HEAD 5
#define W_CO_FILENAME	       35
#define W_OB_SIZE	       44
#define W_OB_TYPE	       45
#define W_STR_SIZE	       67
#define W_STR_STATE	       68
#define W_STR_LENGTH	       69

/* One fake process: its memory and the layout its objects are built with. */
struct fake {
	int pid;
	int minor;
	uint64_t base;
	uint8_t *mem;
	size_t size, used;
	uint64_t hole_lo, hole_hi; /* unreadable [lo, hi) */
	const struct pml_pylayout *lay;
};

struct read_rec {
	int pid;
	uint64_t addr;
	size_t len;
};

struct world {
	struct fake fk[2];
	size_t nfk;
	struct pml_symbolizer *s;
	struct pml_pytypes types;
	unsigned long nreads;
	unsigned long bad_reads; /* unknown pid, or longer than PML_READ_MAX */
	size_t max_len;
	struct read_rec log[LOG_MAX];
};

static int fake_read(int pid, uint64_t addr, void *buf, size_t len, void *ctx)
{
	struct world *w = ctx;
	struct fake *f = NULL;
	size_t i;

	for (i = 0; i < w->nfk; i++)
		if (w->fk[i].pid == pid)
			f = &w->fk[i];
	if (w->nreads < LOG_MAX)
		w->log[w->nreads] = (struct read_rec){ pid, addr, len };
	w->nreads++;
	if (len > w->max_len)
		w->max_len = len;
	if (!f || len > PML_READ_MAX) {
		w->bad_reads++;
		return -EINVAL;
	}
	if (addr < f->base || addr - f->base > f->size || len > f->size - (addr - f->base))
		return -EFAULT;
	if (f->hole_lo < f->hole_hi && addr < f->hole_hi && addr + len > f->hole_lo)
		return -EFAULT;
	memcpy(buf, f->mem + (addr - f->base), len);
	return 0;
}

static void reads_reset(struct world *w)
{
	w->nreads = 0;
	w->max_len = 0;
}

/* Reads logged since reads_reset that touch [lo, hi). */
static unsigned long reads_in(const struct world *w, uint64_t lo, uint64_t hi)
{
	unsigned long n = 0, i;

	for (i = 0; i < w->nreads && i < LOG_MAX; i++)
		if (w->log[i].addr < hi && w->log[i].addr + w->log[i].len > lo)
			n++;
	return n;
}

static void fake_open(struct fake *f, int pid, int minor)
{
	f->pid = pid;
	f->minor = minor;
	f->base = ARENA_BASE;
	f->size = ARENA_SIZE;
	f->used = 0;
	f->hole_lo = f->hole_hi = 0;
	f->lay = pyoffsets__lookup(3, minor);
	assert_non_null(f->lay);
	f->mem = calloc(1, f->size);
	assert_non_null(f->mem);
}

static uint64_t fake_alloc(struct fake *f, size_t len)
{
	uint64_t addr = f->base + f->used;

	len = (len + 15) & ~(size_t)15;
	assert_true(len <= f->size - f->used);
	f->used += len;
	return addr;
}

static uint8_t *at(struct fake *f, uint64_t addr)
{
	assert_true(addr >= f->base && addr - f->base < f->size);
	return f->mem + (addr - f->base);
}

static void put64(struct fake *f, uint64_t addr, uint64_t v)
{
	memcpy(at(f, addr), &v, sizeof(v));
}

static void put32(struct fake *f, uint64_t addr, uint32_t v)
{
	memcpy(at(f, addr), &v, sizeof(v));
}

static uint32_t get32(struct fake *f, uint64_t addr)
{
	uint32_t v;

	memcpy(&v, at(f, addr), sizeof(v));
	return v;
}

/* The compact str forms CPython uses for names: kind and what makes it so. */
struct str_form {
	unsigned int kind;
	bool ascii;
	uint32_t extra;	  /* code point appended to force the kind, or 0 */
	const char *utf8; /* its UTF-8 */
};

static const struct str_form forms[] = {
	{ 1, true, 0, "" },			   /* compact ASCII */
	{ 1, false, 0xe9, "\xc3\xa9" },		   /* latin-1: e acute */
	{ 2, false, 0x20ac, "\xe2\x82\xac" },	   /* UCS2: euro sign */
	{ 4, false, 0x1f40d, "\xf0\x9f\x90\x8d" }, /* UCS4: snake */
};

/* A compact str of code points cp[0..n) in the given kind; returns its address. */
static uint64_t make_str_cp(struct fake *f, const uint32_t *cp, size_t n, unsigned int kind,
			    bool ascii)
{
	const struct pml_pylayout *l = f->lay;
	uint32_t dataoff = ascii ? l->unicode_ascii_size : l->unicode_compact_size;
	uint32_t state, lowbit = l->unicode_kind_mask & -l->unicode_kind_mask;
	uint64_t a = fake_alloc(f, dataoff + (n + 1) * kind);
	uint8_t *d;
	size_t i;

	put64(f, a, 1); /* ob_refcnt */
	put64(f, a + l->ob_type, STR_TYPE);
	put64(f, a + l->unicode_length, n);
	put64(f, a + 24, 0x1234567); /* hash */
	/* interned (mortal), kind, compact, ascii; "ready" up to 3.11. */
	state = 1 | kind * lowbit | l->unicode_compact_mask | (ascii ? l->unicode_ascii_mask : 0);
	if (f->minor <= 11)
		state |= 0x80;
	put32(f, a + l->unicode_state, state);
	d = at(f, a + dataoff);
	for (i = 0; i < n; i++) {
		if (kind == 1)
			d[i] = (uint8_t)cp[i];
		else if (kind == 2)
			memcpy(d + 2 * i, &(uint16_t){ (uint16_t)cp[i] }, 2);
		else
			memcpy(d + 4 * i, &cp[i], 4);
	}
	return a;
}

/* ASCII text, plus the code point that puts it in `form`. */
static uint64_t make_str(struct fake *f, const char *text, const struct str_form *form)
{
	size_t n = strlen(text), i;
	uint32_t *cp = calloc(n + 1, sizeof(*cp));
	uint64_t a;

	assert_non_null(cp);
	for (i = 0; i < n; i++) {
		assert_true((unsigned char)text[i] < 0x80);
		cp[i] = (unsigned char)text[i];
	}
	if (form->extra)
		cp[n++] = form->extra;
	a = make_str_cp(f, cp, n, form->kind, form->ascii);
	free(cp);
	return a;
}

static uint64_t make_bytes(struct fake *f, const uint8_t *data, size_t len)
{
	const struct pml_pylayout *l = f->lay;
	uint64_t a = fake_alloc(f, l->bytes_sval + len + 1);

	put64(f, a, 1);
	put64(f, a + l->ob_type, BYTES_TYPE);
	put64(f, a + l->bytes_size, len);
	put64(f, a + 24, (uint64_t)-1); /* ob_shash */
	if (len)
		memcpy(at(f, a + l->bytes_sval), data, len);
	return a;
}

struct code_spec {
	uint64_t file, name, qualname, table;
	int firstlineno;
	uint32_t code_len;
};

static uint64_t make_code(struct fake *f, const struct code_spec *cs)
{
	const struct pml_pylayout *l = f->lay;
	size_t size = l->code_code_adaptive != PML_NO_FIELD ? l->code_code_adaptive + cs->code_len
							    : 208;
	uint64_t a = fake_alloc(f, size < 256 ? 256 : size);

	put64(f, a, 1);
	put64(f, a + l->ob_type, CODE_TYPE);
	put64(f, a + l->code_filename, cs->file);
	put64(f, a + l->code_name, cs->name);
	if (l->code_qualname != PML_NO_FIELD)
		put64(f, a + l->code_qualname, cs->qualname);
	put32(f, a + l->code_firstlineno, (uint32_t)cs->firstlineno);
	put64(f, a + l->code_linetable, cs->table);
	return a;
}

/*
 * The instruction word BPF captures, decided by version (not by the layout's
 * instr_kind): 3.8/3.9 f_lasti in bytes, 3.10 f_lasti in code units, 3.11+
 * prev_instr / instr_ptr, a pointer into co_code_adaptive.
 */
static uint64_t instr_of(const struct fake *f, uint64_t code, uint32_t offset)
{
	if (f->minor <= 9)
		return offset;
	if (f->minor == 10)
		return offset / 2;
	return code + f->lay->code_code_adaptive + offset;
}

static const struct lt_fixture *fixture_of(int minor)
{
	switch (minor) {
	case 8:
		return &lt38_fixture;
	case 9:
		return &lt39_fixture;
	case 10:
		return &lt310_fixture;
	case 11:
		return &lt311_fixture;
	case 12:
		return &lt312_fixture;
	case 13:
		return &lt313_fixture;
	}
	fail();
	return NULL;
}

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));

	if (!w)
		return -1;
	w->types = (struct pml_pytypes){ CODE_TYPE, STR_TYPE, BYTES_TYPE };
	*state = w;
	return 0;
}

static void world_close(struct world *w)
{
	size_t i;

	symbolizer__free(w->s);
	w->s = NULL;
	for (i = 0; i < w->nfk; i++) {
		free(w->fk[i].mem);
		w->fk[i].mem = NULL;
	}
	w->nfk = 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	world_close(w);
	free(w);
	return 0;
}

/* Fresh memory for PID laid out as 3.minor, and a symbolizer reading it. */
static struct fake *world_open(struct world *w, int minor)
{
	world_close(w);
	fake_open(&w->fk[0], PID, minor);
	w->nfk = 1;
	w->s = symbolizer__new_reader(fake_read, w);
	assert_non_null(w->s);
	return &w->fk[0];
}

static void world_add(struct world *w, int pid, int minor, uint64_t runtime_addr,
		      struct pml_pylayout *out)
{
	assert_int_equal(symbolizer__add_proc(w->s, pid, 3, minor, runtime_addr, &w->types, out),
			 0);
}

struct result {
	int rc;
	size_t nframes;
	char file[8192];
	char func[8192];
	int line;
};

/* Symbolize a one-frame stack of pid. */
static void sym_one(struct world *w, int pid, uint64_t code, uint64_t instr, struct result *r)
{
	struct pml_stack st;
	struct pml_stackinfo info;

	memset(&st, 0, sizeof(st));
	memset(r, 0, sizeof(*r));
	st.depth = 1;
	st.frames[0].code = code;
	st.frames[0].instr = instr;
	r->rc = symbolizer__frames(w->s, pid, &st, &info);
	r->nframes = info.nframes;
	if (info.nframes) {
		assert_non_null(info.frames[0].file);
		assert_non_null(info.frames[0].function);
		snprintf(r->file, sizeof(r->file), "%s", info.frames[0].file);
		snprintf(r->func, sizeof(r->func), "%s", info.frames[0].function);
		r->line = info.frames[0].line;
	}
	symbolizer__release(&info);
}

/* A typical code object of the world's version with a real table. */
struct std_code {
	uint64_t code, file, name, qualname, table;
	uint64_t instr; /* of an offset with a line */
	int line;
	const char *want_func;
};

static void make_std_code(struct fake *f, struct std_code *sc)
{
	const struct lt_fixture *fx = fixture_of(f->minor);
	const struct lt_code *c = &fx->codes[1];
	const struct lt_pair *p = NULL;
	struct code_spec cs;
	size_t i;

	for (i = c->npairs / 2; i < c->npairs && !p; i++)
		if (c->pairs[i].line > 0)
			p = &c->pairs[i];
	assert_non_null(p);
	sc->file = make_str(f, "/srv/app/handlers.py", &forms[0]);
	sc->name = make_str(f, "handle", &forms[0]);
	sc->qualname = make_str(f, "Service.handle", &forms[0]);
	sc->table = make_bytes(f, c->table, c->table_len);
	cs.file = sc->file;
	cs.name = sc->name;
	cs.qualname = f->minor >= 11 ? sc->qualname : 0;
	cs.table = sc->table;
	cs.firstlineno = c->firstlineno;
	cs.code_len = c->code_len;
	sc->code = make_code(f, &cs);
	sc->instr = instr_of(f, sc->code, p->offset);
	sc->line = p->line;
	sc->want_func = f->minor >= 11 ? "Service.handle" : "handle";
}

static const int minors[] = { 8, 9, 10, 11, 12, 13 };

/* ---- whole fixtures: every (offset, line) pair of every code object ---- */

struct expect {
	size_t code;
	int line;
};

typedef char path_buf[256];
typedef char func_buf[512];

static void flush_stack(struct world *w, const struct lt_fixture *fx, struct pml_stack *st,
			const struct expect *exp, const path_buf *files, const func_buf *funcs,
			size_t *bad)
{
	struct pml_stackinfo info;
	uint32_t i;

	assert_int_equal(symbolizer__frames(w->s, PID, st, &info), 0);
	assert_int_equal(info.nframes, st->depth);
	for (i = 0; i < st->depth; i++) {
		const struct pml_pyframe *fr = &info.frames[i];
		size_t k = exp[i].code;

		if (!strcmp(fr->file, files[k % ARRAY_SIZE(forms)]) &&
		    !strcmp(fr->function, funcs[k]) && fr->line == exp[i].line)
			continue;
		if ((*bad)++ < MAX_REPORTED)
			print_error("%s %s frame %u: want %s %s:%d, got %s %s:%d\n", fx->version,
				    fx->codes[k].name, i, funcs[k], files[k % ARRAY_SIZE(forms)],
				    exp[i].line, fr->function, fr->file, fr->line);
	}
	symbolizer__release(&info);
	st->depth = 0;
}

static void check_fixture(struct world *w, int minor, bool debug_offsets)
{
	const struct lt_fixture *fx = fixture_of(minor);
	struct fake *f = world_open(w, minor);
	path_buf files[ARRAY_SIZE(forms)];
	func_buf *funcs = calloc(fx->ncodes, sizeof(*funcs));
	uint64_t *codes = calloc(fx->ncodes, sizeof(*codes));
	uint64_t fileobj[ARRAY_SIZE(forms)], rt = 0;
	struct expect exp[PML_MAX_FRAMES];
	struct pml_stack st;
	size_t bad = 0, frames = 0, k, j, v;
	uint32_t variants = minor >= 11 ? 2 : 1;

	assert_non_null(funcs);
	assert_non_null(codes);
	for (k = 0; k < ARRAY_SIZE(forms); k++) {
		snprintf(files[k], sizeof(files[k]), "/srv/app/corpus_%zu.py", k);
		fileobj[k] = make_str(f, files[k], &forms[k]);
		strcat(files[k], forms[k].utf8);
	}
	for (k = 0; k < fx->ncodes; k++) {
		const struct lt_code *c = &fx->codes[k];
		const struct str_form *form = &forms[(k / ARRAY_SIZE(forms)) % ARRAY_SIZE(forms)];
		uint64_t fn = make_str(f, c->name, form);
		struct code_spec cs = { .file = fileobj[k % ARRAY_SIZE(forms)],
					.table = make_bytes(f, c->table, c->table_len),
					.firstlineno = c->firstlineno,
					.code_len = c->code_len };

		/* 3.11+ report co_qualname: give co_name something else. */
		if (minor >= 11) {
			cs.name = make_str(f, "co_name_only", &forms[0]);
			cs.qualname = fn;
		} else {
			cs.name = fn;
		}
		codes[k] = make_code(f, &cs);
		snprintf(funcs[k], sizeof(funcs[k]), "%s%s", c->name, form->utf8);
	}
	if (debug_offsets) {
		rt = fake_alloc(f, sizeof(debug_offsets_313));
		memcpy(at(f, rt), debug_offsets_313, sizeof(debug_offsets_313));
	}
	world_add(w, PID, minor, rt, NULL);

	memset(&st, 0, sizeof(st));
	for (k = 0; k < fx->ncodes; k++) {
		const struct lt_code *c = &fx->codes[k];

		for (j = 0; j < c->npairs; j++) {
			/* 3.11+: the odd byte of a code unit is the same instruction. */
			for (v = 0; v < variants; v++) {
				exp[st.depth] = (struct expect){ k, c->pairs[j].line };
				st.frames[st.depth].code = codes[k];
				st.frames[st.depth].instr =
					instr_of(f, codes[k], c->pairs[j].offset) + v;
				frames++;
				if (++st.depth == PML_MAX_FRAMES)
					flush_stack(w, fx, &st, exp, files, funcs, &bad);
			}
		}
	}
	if (st.depth)
		flush_stack(w, fx, &st, exp, files, funcs, &bad);
	if (bad)
		print_error("%s: %zu of %zu frames wrong\n", fx->version, bad, frames);
	assert_int_equal(bad, 0);
	assert_true(frames > 1000);
	assert_int_equal(symbolizer__failures(w->s, PID), 0);
	assert_int_equal(w->bad_reads, 0);
	free(funcs);
	free(codes);
}

static void symbolize__fixture_38__file_function_line(void **state)
{
	check_fixture(*state, 8, false);
}

static void symbolize__fixture_39__file_function_line(void **state)
{
	check_fixture(*state, 9, false);
}

static void symbolize__fixture_310__file_function_line(void **state)
{
	check_fixture(*state, 10, false);
}

static void symbolize__fixture_311__file_function_line(void **state)
{
	check_fixture(*state, 11, false);
}

static void symbolize__fixture_312__file_function_line(void **state)
{
	check_fixture(*state, 12, false);
}

static void symbolize__fixture_313__file_function_line(void **state)
{
	check_fixture(*state, 13, false);
}

static void symbolize__fixture_313_debug_offsets_layout__file_function_line(void **state)
{
	check_fixture(*state, 13, true);
}

/* ---- what cannot be read shows as <unknown> and is counted ---- */

static void symbolize__code_type_mismatch__unknown_and_counted(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);

		make_std_code(f, &sc);
		put64(f, sc.code + f->lay->ob_type, STR_TYPE);
		world_add(w, PID, minors[i], 0, NULL);
		reads_reset(w);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.nframes, 1);
		assert_string_equal(r.file, UNKNOWN);
		assert_string_equal(r.func, UNKNOWN);
		assert_int_equal(r.line, 0);
		assert_int_equal(symbolizer__failures(w->s, PID), 1);
		/* Nothing the code object points to is trusted. */
		assert_int_equal(w->nreads, 1);
	}
}

static void symbolize__types_unknown__type_checks_skipped(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	put64(f, sc.code + f->lay->ob_type, 0x1111);
	put64(f, sc.file + f->lay->ob_type, 0x2222);
	put64(f, sc.table + f->lay->ob_type, 0x3333);
	assert_int_equal(symbolizer__add_proc(w->s, PID, 3, 12, 0, NULL, NULL), 0);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "/srv/app/handlers.py");
	assert_string_equal(r.func, sc.want_func);
	assert_int_equal(r.line, sc.line);
	assert_int_equal(symbolizer__failures(w->s, PID), 0);
}

static void symbolize__filename_wrong_type__unknown_file_counted(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);

		make_std_code(f, &sc);
		put64(f, sc.file + f->lay->ob_type, BYTES_TYPE);
		world_add(w, PID, minors[i], 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, UNKNOWN);
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(r.line, sc.line);
		assert_int_equal(symbolizer__failures(w->s, PID), 1);
	}
}

static void symbolize__function_wrong_type__unknown_function_counted(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	put64(f, sc.qualname + f->lay->ob_type, CODE_TYPE);
	world_add(w, PID, 12, 0, NULL);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "/srv/app/handlers.py");
	assert_string_equal(r.func, UNKNOWN);
	assert_int_equal(symbolizer__failures(w->s, PID), 1);
}

/* Set the kind/compact/ascii bits of a str's state word. */
static void set_state(struct fake *f, uint64_t str, uint32_t clear, uint32_t set)
{
	uint64_t a = str + f->lay->unicode_state;

	put32(f, a, (get32(f, a) & ~clear) | set);
}

static void symbolize__str_not_compact__unknown(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);

		make_std_code(f, &sc);
		set_state(f, sc.file, f->lay->unicode_compact_mask, 0);
		world_add(w, PID, minors[i], 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, UNKNOWN);
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(symbolizer__failures(w->s, PID), 1);
	}
}

/* Kind 0 (3.8-3.11 wchar_t, not ready) and 3 are not compact data kinds. */
static void symbolize__str_bad_kind__unknown(void **state)
{
	static const uint32_t kinds[] = { 0, 3, 5, 7 };
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		struct fake *f = world_open(w, 11);
		uint32_t mask = f->lay->unicode_kind_mask;

		make_std_code(f, &sc);
		set_state(f, sc.file, mask, kinds[i] * (mask & -mask));
		world_add(w, PID, 11, 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, UNKNOWN);
		assert_int_equal(symbolizer__failures(w->s, PID), 1);
	}
}

static void symbolize__str_negative_length__unknown(void **state)
{
	static const int64_t lens[] = { -1, -4096, INT64_MIN };
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		struct fake *f = world_open(w, 12);

		make_std_code(f, &sc);
		put64(f, sc.file + f->lay->unicode_length, (uint64_t)lens[i]);
		world_add(w, PID, 12, 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, UNKNOWN);
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(w->bad_reads, 0);
	}
}

/* A lying length costs a bounded read and yields a prefix of the data. */
static void symbolize__str_huge_length__capped_prefix(void **state)
{
	static const int64_t lens[] = { 1 << 20, (int64_t)1 << 40, INT64_MAX };
	char text[3001];
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i, k, n;

	memset(text, 'a', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		for (k = 0; k < ARRAY_SIZE(forms); k++) {
			struct fake *f = world_open(w, 12);

			make_std_code(f, &sc);
			sc.file = make_str(f, text, &forms[k]);
			put64(f, sc.code + f->lay->code_filename, sc.file);
			put64(f, sc.file + f->lay->unicode_length, (uint64_t)lens[i]);
			world_add(w, PID, 12, 0, NULL);
			reads_reset(w);
			sym_one(w, PID, sc.code, sc.instr, &r);
			n = strspn(r.file, "a");
			assert_true(n > 0);
			assert_true(n <= 3000);
			/* After the a's only the form's extra code point may follow. */
			assert_true(r.file[n] == '\0' || !strcmp(r.file + n, forms[k].utf8));
			assert_string_equal(r.func, sc.want_func);
			assert_true(w->max_len <= 64 * 1024);
			assert_int_equal(w->bad_reads, 0);
		}
	}
}

static void symbolize__str_empty__empty_string(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 13);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	put64(f, sc.code + f->lay->code_filename, make_str(f, "", &forms[0]));
	world_add(w, PID, 13, 0, NULL);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "");
	assert_string_equal(r.func, sc.want_func);
	assert_int_equal(symbolizer__failures(w->s, PID), 0);
}

static void symbolize__code_unreadable__unknown_counted(void **state)
{
	static const uint64_t addrs[] = { 8, ARENA_BASE - 4096, ARENA_BASE + ARENA_SIZE,
					  ARENA_BASE + ARENA_SIZE - 16, UINT64_MAX - 7 };
	struct world *w = *state;
	struct result r;
	size_t i;

	world_open(w, 12);
	world_add(w, PID, 12, 0, NULL);
	for (i = 0; i < ARRAY_SIZE(addrs); i++) {
		sym_one(w, PID, addrs[i], addrs[i] + 200, &r);
		assert_int_equal(r.rc, 0);
		assert_int_equal(r.nframes, 1);
		assert_string_equal(r.file, UNKNOWN);
		assert_string_equal(r.func, UNKNOWN);
		assert_int_equal(r.line, 0);
		assert_int_equal(symbolizer__failures(w->s, PID), i + 1);
	}
}

static void symbolize__code_null__unknown_counted_no_read(void **state)
{
	struct world *w = *state;
	struct result r;

	world_open(w, 11);
	world_add(w, PID, 11, 0, NULL);
	reads_reset(w);
	sym_one(w, PID, 0, 0, &r);
	assert_int_equal(r.nframes, 1);
	assert_string_equal(r.file, UNKNOWN);
	assert_string_equal(r.func, UNKNOWN);
	assert_int_equal(symbolizer__failures(w->s, PID), 1);
	assert_int_equal(w->nreads, 0);
}

static void symbolize__str_header_unreadable__unknown(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 10);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	f->hole_lo = sc.file;
	f->hole_hi = sc.file + 1;
	world_add(w, PID, 10, 0, NULL);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, UNKNOWN);
	assert_string_equal(r.func, sc.want_func);
	assert_int_equal(r.line, sc.line);
	assert_int_equal(symbolizer__failures(w->s, PID), 1);
}

static void symbolize__str_data_unreadable__unknown(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);
		uint64_t data;

		make_std_code(f, &sc);
		sc.file = make_str(f,
				   "/srv/app/a/rather/long/path/to/some/module/in/a/package/"
				   "that/goes/on/and/on/handlers.py",
				   &forms[0]);
		put64(f, sc.code + f->lay->code_filename, sc.file);
		/* Header readable (even the non-ascii header size), data not. */
		data = sc.file + f->lay->unicode_compact_size;
		f->hole_lo = data;
		f->hole_hi = data + 8;
		world_add(w, PID, minors[i], 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, UNKNOWN);
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(symbolizer__failures(w->s, PID), 1);
	}
}

static void symbolize__table_unreadable__line_zero_names_kept(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);

		make_std_code(f, &sc);
		f->hole_lo = sc.table + f->lay->bytes_sval;
		f->hole_hi = f->hole_lo + 1;
		world_add(w, PID, minors[i], 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, "/srv/app/handlers.py");
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(r.line, 0);
	}
}

static void symbolize__table_wrong_type__line_zero(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	put64(f, sc.table + f->lay->ob_type, STR_TYPE);
	world_add(w, PID, 12, 0, NULL);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "/srv/app/handlers.py");
	assert_int_equal(r.line, 0);
}

/* Sizes no line table has: never read, never allocated. */
static void symbolize__table_too_long__not_read_line_zero(void **state)
{
	static const int64_t sizes[] = { PML_READ_MAX + 1, (int64_t)1 << 40, INT64_MAX, -1,
					 INT64_MIN };
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct fake *f = world_open(w, 11);

		make_std_code(f, &sc);
		put64(f, sc.table + f->lay->bytes_size, (uint64_t)sizes[i]);
		world_add(w, PID, 11, 0, NULL);
		reads_reset(w);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, "/srv/app/handlers.py");
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(r.line, 0);
		assert_int_equal(reads_in(w, sc.table + f->lay->bytes_sval,
					  sc.table + f->lay->bytes_sval + 1),
				 0);
		assert_true(w->max_len <= PML_READ_MAX);
		assert_int_equal(w->bad_reads, 0);
	}
}

/* A table cut short: the last instruction is beyond it, the decoder says -EINVAL. */
static void symbolize__table_truncated__line_zero_counted(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);
		const struct lt_code *c = &fixture_of(minors[i])->codes[1];

		if (minors[i] <= 9)
			continue; /* co_lnotab: past the end is the last line */
		make_std_code(f, &sc);
		put64(f, sc.table + f->lay->bytes_size, 2);
		world_add(w, PID, minors[i], 0, NULL);
		sym_one(w, PID, sc.code, instr_of(f, sc.code, c->pairs[c->npairs - 1].offset), &r);
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(r.line, 0);
		assert_int_equal(symbolizer__failures(w->s, PID), 1);
	}
}

/* ---- stacks ---- */

static void symbolize__depth_over_max__capped(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	struct pml_stackinfo info;
	struct pml_stack st;
	struct std_code sc;
	uint32_t i;

	make_std_code(f, &sc);
	world_add(w, PID, 12, 0, NULL);
	memset(&st, 0, sizeof(st));
	for (i = 0; i < PML_MAX_FRAMES; i++) {
		st.frames[i].code = sc.code;
		st.frames[i].instr = sc.instr;
	}
	st.depth = 1000;
	assert_int_equal(symbolizer__frames(w->s, PID, &st, &info), 0);
	assert_int_equal(info.nframes, PML_MAX_FRAMES);
	for (i = 0; i < info.nframes; i++)
		assert_int_equal(info.frames[i].line, sc.line);
	symbolizer__release(&info);
	assert_null(info.frames);
	assert_int_equal(info.nframes, 0);
}

/* Innermost first: frames come out in the order they were captured. */
static void symbolize__three_frames__order_kept(void **state)
{
	static const char *const names[] = { "inner", "middle", "outer" };
	struct world *w = *state;
	struct fake *f = world_open(w, 8);
	const struct lt_code *c = &lt38_fixture.codes[0];
	struct pml_stackinfo info;
	struct pml_stack st;
	uint32_t i;

	memset(&st, 0, sizeof(st));
	for (i = 0; i < 3; i++) {
		struct code_spec cs = {
			.file = make_str(f, "/app/m.py", &forms[i]),
			.name = make_str(f, names[i], &forms[0]),
			.table = make_bytes(f, c->table, c->table_len),
			.firstlineno = c->firstlineno,
			.code_len = c->code_len,
		};

		st.frames[i].code = make_code(f, &cs);
		st.frames[i].instr = c->pairs[i * 20].offset;
	}
	st.depth = 3;
	world_add(w, PID, 8, 0, NULL);
	assert_int_equal(symbolizer__frames(w->s, PID, &st, &info), 0);
	assert_int_equal(info.nframes, 3);
	for (i = 0; i < 3; i++) {
		char want[64];

		snprintf(want, sizeof(want), "/app/m.py%s", forms[i].utf8);
		assert_string_equal(info.frames[i].file, want);
		assert_string_equal(info.frames[i].function, names[i]);
		assert_int_equal(info.frames[i].line, c->pairs[i * 20].line);
	}
	symbolizer__release(&info);
}

static void symbolize__empty_stack__no_frames(void **state)
{
	struct world *w = *state;
	struct pml_stackinfo info = { .frames = (void *)1, .nframes = 7 };
	struct pml_stack st;

	world_open(w, 12);
	world_add(w, PID, 12, 0, NULL);
	memset(&st, 0, sizeof(st));
	assert_int_equal(symbolizer__frames(w->s, PID, &st, &info), 0);
	assert_null(info.frames);
	assert_int_equal(info.nframes, 0);
	symbolizer__release(&info);
}

static void symbolize__pid_not_added__no_frames_no_reads(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	world_add(w, PID, 12, 0, NULL);
	reads_reset(w);
	sym_one(w, PID2, sc.code, sc.instr, &r);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.nframes, 0);
	assert_int_equal(w->nreads, 0);
	assert_int_equal(symbolizer__failures(w->s, PID2), 0);
}

static void symbolize__dropped_pid__forgotten(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	struct std_code sc;
	struct result r;

	make_std_code(f, &sc);
	world_add(w, PID, 12, 0, NULL);
	sym_one(w, PID, 0, 0, &r);
	assert_int_equal(symbolizer__failures(w->s, PID), 1);
	symbolizer__drop_pid(w->s, PID);
	symbolizer__drop_pid(w->s, PID); /* twice: harmless */
	assert_int_equal(symbolizer__failures(w->s, PID), 0);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_int_equal(r.nframes, 0);
	/* Added again: read afresh. */
	world_add(w, PID, 12, 0, NULL);
	reads_reset(w);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "/srv/app/handlers.py");
	assert_int_equal(r.line, sc.line);
	assert_true(w->nreads > 1);
	symbolizer__free(NULL);
}

/* ---- the cache ---- */

/* Revalidation is one header read; strings and table come from the cache. */
static void symbolize_cache__same_code_twice__one_read(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);

		make_std_code(f, &sc);
		world_add(w, PID, minors[i], 0, NULL);
		reads_reset(w);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_true(w->nreads >= 4);
		/* Within one tick a validated code object is not read again. */
		reads_reset(w);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, "/srv/app/handlers.py");
		assert_int_equal(w->nreads, 0);
		/* In the next tick: one read of the header to revalidate it. */
		symbolizer__tick(w->s);
		reads_reset(w);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, "/srv/app/handlers.py");
		assert_string_equal(r.func, sc.want_func);
		assert_int_equal(r.line, sc.line);
		assert_int_equal(w->nreads, 1);
		assert_int_equal(w->log[0].addr, sc.code);
	}
}

static void symbolize_cache__code_replaced_same_address__reread(void **state)
{
	struct world *w = *state;
	struct std_code sc;
	struct result r;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors); i++) {
		struct fake *f = world_open(w, minors[i]);
		uint64_t file2;

		make_std_code(f, &sc);
		world_add(w, PID, minors[i], 0, NULL);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, "/srv/app/handlers.py");
		file2 = make_str(f, "/srv/app/other.py", &forms[2]);
		put64(f, sc.code + f->lay->code_filename, file2);
		symbolizer__tick(w->s);
		reads_reset(w);
		sym_one(w, PID, sc.code, sc.instr, &r);
		assert_string_equal(r.file, "/srv/app/other.py\xe2\x82\xac");
		assert_string_equal(r.func, sc.want_func);
		assert_true(reads_in(w, file2, file2 + 1) > 0);
	}
}

/* A new table at another address: the new lines, not the cached table's. */
static void symbolize_cache__linetable_replaced__new_lines(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	const struct lt_code *c = &lt312_fixture.codes[1];
	struct std_code sc;
	struct result r;
	uint64_t t2;

	make_std_code(f, &sc);
	world_add(w, PID, 12, 0, NULL);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_int_equal(r.line, sc.line);
	/* Same table contents, 1000 lines further down (lines are relative). */
	put32(f, sc.code + f->lay->code_firstlineno, (uint32_t)(c->firstlineno + 1000));
	t2 = make_bytes(f, c->table, c->table_len);
	put64(f, sc.code + f->lay->code_linetable, t2);
	symbolizer__tick(w->s);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_int_equal(r.line, sc.line + 1000);
}

/* Two processes, one address, two code objects. */
static void symbolize_cache__two_pids_same_address__separate(void **state)
{
	struct world *w = *state;
	struct std_code a, b;
	struct result r;

	world_open(w, 12);
	fake_open(&w->fk[1], PID2, 12);
	w->nfk = 2;
	make_std_code(&w->fk[0], &a);
	make_std_code(&w->fk[1], &b);
	assert_int_equal(a.code, b.code);
	/* Same layout of allocations, different file in the second process. */
	put64(&w->fk[1], b.code + w->fk[1].lay->code_filename,
	      make_str(&w->fk[1], "/opt/b.py", &forms[1]));
	world_add(w, PID, 12, 0, NULL);
	world_add(w, PID2, 12, 0, NULL);
	sym_one(w, PID, a.code, a.instr, &r);
	assert_string_equal(r.file, "/srv/app/handlers.py");
	sym_one(w, PID2, b.code, b.instr, &r);
	assert_string_equal(r.file, "/opt/b.py\xc3\xa9");
	assert_int_equal(r.line, b.line);
	sym_one(w, PID, a.code, a.instr, &r);
	assert_string_equal(r.file, "/srv/app/handlers.py");
	assert_int_equal(r.line, a.line);
	/* Dropping one process leaves the other's entries right. */
	symbolizer__drop_pid(w->s, PID);
	sym_one(w, PID2, b.code, b.instr, &r);
	assert_string_equal(r.file, "/opt/b.py\xc3\xa9");
	assert_int_equal(w->bad_reads, 0);
}

/* More code objects than the cache holds: bounded, and still right. */
static void symbolize_cache__more_codes_than_slots__all_right(void **state)
{
	enum {
		NCODES = 70000
	};
	struct world *w = *state;
	struct fake *f = world_open(w, 12);
	const struct lt_code *c = &lt312_fixture.codes[1];
	const struct lt_pair *p = &c->pairs[c->npairs / 2];
	uint64_t *codes = calloc(NCODES, sizeof(*codes));
	uint64_t file = make_str(f, "/srv/gen.py", &forms[0]);
	uint64_t name = make_str(f, "gen", &forms[0]);
	uint64_t table = make_bytes(f, c->table, c->table_len);
	struct pml_stackinfo info;
	struct pml_stack st;
	size_t k, pass, bad = 0;
	uint32_t i;

	assert_non_null(codes);
	assert_true(p->line > 0);
	for (k = 0; k < NCODES; k++) {
		/* firstlineno shifts every line of the table: one line per code. */
		struct code_spec cs = { file, name, name, table, c->firstlineno + (int)k, 0 };

		codes[k] = make_code(f, &cs);
	}
	world_add(w, PID, 12, 0, NULL);
	memset(&st, 0, sizeof(st));
	for (pass = 0; pass < 2; pass++) {
		for (k = 0; k < NCODES; k += PML_MAX_FRAMES) {
			st.depth = NCODES - k < PML_MAX_FRAMES ? NCODES - k : PML_MAX_FRAMES;
			for (i = 0; i < st.depth; i++) {
				st.frames[i].code = codes[k + i];
				st.frames[i].instr = instr_of(f, codes[k + i], p->offset);
			}
			assert_int_equal(symbolizer__frames(w->s, PID, &st, &info), 0);
			for (i = 0; i < info.nframes; i++)
				bad += info.frames[i].line != p->line + (int)(k + i) ||
				       strcmp(info.frames[i].file, "/srv/gen.py");
			symbolizer__release(&info);
		}
	}
	assert_int_equal(bad, 0);
	assert_int_equal(symbolizer__failures(w->s, PID), 0);
	free(codes);
}

/* ---- symbolizer__add_proc ---- */

/* pyoffsets__print covers every field but runtime_addr: compare through it. */
static char *layout_text(const struct pml_pylayout *l)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(pyoffsets__print(f, l), 0);
	fclose(f);
	return buf;
}

static void assert_layout_equal(const struct pml_pylayout *got, const struct pml_pylayout *want)
{
	char *a = layout_text(got), *b = layout_text(want);

	assert_string_equal(a, b);
	assert_int_equal(got->walk.runtime_addr, want->walk.runtime_addr);
	free(a);
	free(b);
}

static uint64_t put_image(struct fake *f, const uint8_t *img)
{
	uint64_t rt = fake_alloc(f, PML_DEBUG_OFFSETS_SIZE);

	memcpy(at(f, rt), img, PML_DEBUG_OFFSETS_SIZE);
	return rt;
}

static void set_word(uint8_t *img, int word, uint64_t v)
{
	memcpy(img + word * 8, &v, 8);
}

static uint64_t get_word(const uint8_t *img, int word)
{
	uint64_t v;

	memcpy(&v, img + word * 8, 8);
	return v;
}

static void symbolizer_add_proc__313_real_debug_offsets__table_walk_fields(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 13);
	uint64_t rt = put_image(f, debug_offsets_313);
	struct pml_pylayout got, want = *pyoffsets__lookup(3, 13);

	reads_reset(w);
	world_add(w, PID, 13, rt, &got);
	assert_true(reads_in(w, rt, rt + PML_DEBUG_OFFSETS_SIZE) > 0);
	/*
	 * The image names interpreters.head, the table interpreters.main (8
	 * bytes further): that one difference shows the image was used.
	 */
	want.walk.runtime_addr = rt;
	want.walk.tstate_chain[0] = (uint32_t)get_word(debug_offsets_313, W_RT_INTERPRETERS_HEAD);
	assert_int_equal(want.walk.tstate_chain[0],
			 pyoffsets__lookup(3, 13)->walk.tstate_chain[0] - 8);
	assert_layout_equal(&got, &want);
}

/* The image's layout is what symbolizing then uses. */
static void symbolizer_add_proc__313_moved_filename__followed(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 13);
	uint8_t img[PML_DEBUG_OFFSETS_SIZE];
	struct pml_pylayout got;
	struct std_code sc;
	struct result r;
	uint64_t rt;

	memcpy(img, debug_offsets_313, sizeof(img));
	set_word(img, W_CO_FILENAME, 144);
	rt = put_image(f, img);
	make_std_code(f, &sc);
	put64(f, sc.code + 144, make_str(f, "/moved/by/image.py", &forms[3]));
	world_add(w, PID, 13, rt, &got);
	assert_int_equal(got.code_filename, 144);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "/moved/by/image.py\xf0\x9f\x90\x8d");
	assert_string_equal(r.func, sc.want_func);
	assert_int_equal(r.line, sc.line);
}

static void symbolizer_add_proc__313_corrupt_debug_offsets__table_row(void **state)
{
	static const struct {
		int word;
		uint64_t value;
	} bad[] = {
		{ 0, 0x7970677562656479ull }, /* cookie "ydebugpy" */
		{ W_VERSION, 0x030c01f0 },    /* 3.12.1 */
		{ W_VERSION, 0x030e00f0 },    /* 3.14.0 */
		{ W_FREE_THREADED, 1 },
		{ W_CO_FILENAME, 208 }, /* == co size: field outside */
		{ W_OB_TYPE, UINT64_MAX },
		{ W_STR_SIZE, 0 },
	};
	struct world *w = *state;
	struct pml_pylayout got, want = *pyoffsets__lookup(3, 13);
	uint8_t img[PML_DEBUG_OFFSETS_SIZE];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		struct fake *f = world_open(w, 13);
		uint64_t rt;

		memcpy(img, debug_offsets_313, sizeof(img));
		assert_int_not_equal(get_word(img, bad[i].word), bad[i].value);
		set_word(img, bad[i].word, bad[i].value);
		rt = put_image(f, img);
		memset(&got, 0xa5, sizeof(got));
		world_add(w, PID, 13, rt, &got);
		want.walk.runtime_addr = rt;
		assert_layout_equal(&got, &want);
	}
}

static void symbolizer_add_proc__313_image_unreadable__table_row(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 13);
	struct pml_pylayout got, want = *pyoffsets__lookup(3, 13);
	uint64_t rt = put_image(f, debug_offsets_313);

	/* Readable but for its last byte. */
	f->hole_lo = rt + PML_DEBUG_OFFSETS_SIZE - 1;
	f->hole_hi = rt + PML_DEBUG_OFFSETS_SIZE;
	world_add(w, PID, 13, rt, &got);
	want.walk.runtime_addr = rt;
	assert_layout_equal(&got, &want);
}

/* Before 3.13 there is no _Py_DebugOffsets: nothing is read at the runtime. */
static void symbolizer_add_proc__before_313__table_no_read(void **state)
{
	struct world *w = *state;
	struct pml_pylayout got, want;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(minors) - 1; i++) {
		struct fake *f = world_open(w, minors[i]);
		uint64_t rt = put_image(f, debug_offsets_313);

		reads_reset(w);
		world_add(w, PID, minors[i], rt, &got);
		assert_int_equal(w->nreads, 0);
		want = *pyoffsets__lookup(3, minors[i]);
		want.walk.runtime_addr = rt;
		assert_layout_equal(&got, &want);
	}
}

static void symbolizer_add_proc__313_no_runtime_addr__table_no_read(void **state)
{
	struct world *w = *state;
	struct pml_pylayout got, want = *pyoffsets__lookup(3, 13);

	world_open(w, 13);
	reads_reset(w);
	world_add(w, PID, 13, 0, &got);
	assert_int_equal(w->nreads, 0);
	want.walk.runtime_addr = 0;
	assert_layout_equal(&got, &want);
}

static void symbolizer_add_proc__unsupported_version__enotsup(void **state)
{
	static const int versions[][2] = { { 2, 7 }, { 3, 7 }, { 3, 14 }, { 4, 0 }, { -3, 8 } };
	struct world *w = *state;
	struct pml_pylayout got;
	size_t i;

	world_open(w, 12);
	for (i = 0; i < ARRAY_SIZE(versions); i++)
		assert_int_equal(symbolizer__add_proc(w->s, PID, versions[i][0], versions[i][1],
						      0x1000, &w->types, &got),
				 -ENOTSUP);
	assert_int_equal(w->nreads, 0);
}

/*
 * A validated _Py_DebugOffsets may place ob_type anywhere inside the object
 * size it declares (up to 64 KiB). Objects here carry their type at both the
 * table's offset (8) and the image's (FAR_TYPE), so reading per either layout
 * gives the same, right answer. FAR_TYPE is past the code object's fields,
 * and within 32 bytes of the end of a 128-byte str header buffer, where
 * AddressSanitizer sees a read beyond it.
 */
#define FAR_TYPE 144

static void symbolize__313_image_ob_type_far__names_read(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 13);
	const struct lt_code *c = NULL;
	uint8_t img[PML_DEBUG_OFFSETS_SIZE];
	struct pml_pylayout got;
	uint64_t file, name, qual, table, code;
	struct result r;
	size_t i;

	for (i = 0; i < lt313_fixture.ncodes && !c; i++)
		if (lt313_fixture.codes[i].table_len < FAR_TYPE - 40 &&
		    lt313_fixture.codes[i].npairs > 2 && lt313_fixture.codes[i].pairs[1].line > 0)
			c = &lt313_fixture.codes[i];
	assert_non_null(c);
	memcpy(img, debug_offsets_313, sizeof(img));
	set_word(img, W_OB_SIZE, FAR_TYPE + 8);
	set_word(img, W_OB_TYPE, FAR_TYPE);
	/* Each object followed by room for its far type word. */
	file = make_str(f, "/far/type.py", &forms[0]);
	fake_alloc(f, FAR_TYPE);
	name = make_str(f, "far", &forms[0]);
	fake_alloc(f, FAR_TYPE);
	qual = make_str(f, "Far.far", &forms[0]);
	fake_alloc(f, FAR_TYPE);
	table = make_bytes(f, c->table, c->table_len);
	fake_alloc(f, FAR_TYPE);
	code = make_code(f, &(struct code_spec){ file, name, qual, table, c->firstlineno,
						 c->code_len });
	put64(f, file + FAR_TYPE, STR_TYPE);
	put64(f, name + FAR_TYPE, STR_TYPE);
	put64(f, qual + FAR_TYPE, STR_TYPE);
	put64(f, table + FAR_TYPE, BYTES_TYPE);
	put64(f, code + FAR_TYPE, CODE_TYPE);
	world_add(w, PID, 13, put_image(f, img), &got);
	assert_int_equal(got.ob_type, FAR_TYPE);
	sym_one(w, PID, code, instr_of(f, code, c->pairs[1].offset), &r);
	assert_string_equal(r.file, "/far/type.py");
	assert_string_equal(r.func, "Far.far");
	assert_int_equal(r.line, c->pairs[1].line);
}

/*
 * Same with the str state and length words beyond sizeof(PyCompactUnicodeObject)
 * (the image declares a larger str): str objects carry both placements.
 */
static void symbolize__313_image_str_fields_far__names_read(void **state)
{
	struct world *w = *state;
	struct fake *f = world_open(w, 13);
	uint8_t img[PML_DEBUG_OFFSETS_SIZE];
	struct pml_pylayout got;
	uint64_t strs[3];
	struct std_code sc;
	struct result r;
	size_t i;

	memcpy(img, debug_offsets_313, sizeof(img));
	set_word(img, W_STR_SIZE, 96);
	set_word(img, W_STR_STATE, 64);
	set_word(img, W_STR_LENGTH, 72);
	make_std_code(f, &sc);
	for (i = 0; i < 3; i++) {
		strs[i] = make_str(f, i == 0 ? "/s.py" : i == 1 ? "s" : "S.s", &forms[0]);
		fake_alloc(f, 96); /* room for the far words */
	}
	for (i = 0; i < 3; i++) {
		put32(f, strs[i] + 64, get32(f, strs[i] + f->lay->unicode_state));
		put64(f, strs[i] + 72, i == 0 ? 5 : i == 1 ? 1 : 3);
	}
	put64(f, sc.code + f->lay->code_filename, strs[0]);
	put64(f, sc.code + f->lay->code_name, strs[1]);
	put64(f, sc.code + f->lay->code_qualname, strs[2]);
	world_add(w, PID, 13, put_image(f, img), &got);
	assert_int_equal(got.unicode_state, 64);
	assert_int_equal(got.unicode_length, 72);
	sym_one(w, PID, sc.code, sc.instr, &r);
	assert_string_equal(r.file, "/s.py");
	assert_string_equal(r.func, "S.s");
	assert_int_equal(r.line, sc.line);
}

/* ---- reading a real process: our own, through process_vm_readv ---- */

static void symbolizer_new__own_process__reads_via_process_vm_readv(void **state)
{
	struct world *w = *state;
	struct pml_symbolizer *s;
	struct std_code sc;
	struct fake *f = world_open(w, 12);
	struct pml_pytypes types = { CODE_TYPE, STR_TYPE, BYTES_TYPE };
	struct pml_stack st;
	struct pml_stackinfo info;
	uint64_t shift;

	/* Build at the fake base, then rebase every pointer to the host buffer. */
	make_std_code(f, &sc);
	shift = (uint64_t)(uintptr_t)f->mem - f->base;
	put64(f, sc.code + f->lay->code_filename, sc.file + shift);
	put64(f, sc.code + f->lay->code_name, sc.name + shift);
	put64(f, sc.code + f->lay->code_qualname, sc.qualname + shift);
	put64(f, sc.code + f->lay->code_linetable, sc.table + shift);
	s = symbolizer__new();
	assert_non_null(s);
	assert_int_equal(symbolizer__add_proc(s, getpid(), 3, 12, 0, &types, NULL), 0);
	memset(&st, 0, sizeof(st));
	st.depth = 2;
	st.frames[0].code = sc.code + shift;
	st.frames[0].instr = sc.instr + shift;
	st.frames[1].code = 16; /* unmapped */
	assert_int_equal(symbolizer__frames(s, getpid(), &st, &info), 0);
	assert_int_equal(info.nframes, 2);
	if (!strcmp(info.frames[0].file, UNKNOWN)) {
		symbolizer__release(&info);
		symbolizer__free(s);
		print_message("process_vm_readv on self refused: skipping\n");
		skip();
	}
	assert_string_equal(info.frames[0].file, "/srv/app/handlers.py");
	assert_string_equal(info.frames[0].function, sc.want_func);
	assert_int_equal(info.frames[0].line, sc.line);
	assert_string_equal(info.frames[1].file, UNKNOWN);
	assert_int_equal(symbolizer__failures(s, getpid()), 1);
	symbolizer__release(&info);
	symbolizer__free(s);
}

/* ---- symbolize__ucs_to_utf8 ---- */

/* Encode cp[0..n) in `kind` bytes each (little-endian) and convert. */
static size_t ucs(const uint32_t *cp, size_t n, unsigned int kind, char *out, size_t outlen)
{
	uint8_t data[4 * 64];
	size_t i;

	assert_true(n <= 64);
	for (i = 0; i < n; i++) {
		uint32_t v = cp[i];

		memcpy(data + i * kind, &v, kind);
	}
	return symbolize__ucs_to_utf8(data, n, kind, out, outlen);
}

static void assert_ucs(const uint32_t *cp, size_t n, unsigned int kind, const char *want)
{
	char out[512];
	size_t got = ucs(cp, n, kind, out, sizeof(out));

	assert_int_equal(got, strlen(want));
	assert_memory_equal(out, want, got + 1);
}

static void ucs_to_utf8__boundaries__shortest_forms(void **state)
{
	static const uint32_t cp[] = { 0x41, 0x7f, 0x80, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff };

	assert_ucs(cp, ARRAY_SIZE(cp), 4,
		   "A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf");
}

static void ucs_to_utf8__latin1__two_bytes(void **state)
{
	static const uint32_t cp[] = { 'c', 'a', 'f', 0xe9, 0x80, 0xff };

	assert_ucs(cp, ARRAY_SIZE(cp), 1, "caf\xc3\xa9\xc2\x80\xc3\xbf");
}

static void ucs_to_utf8__ucs2__up_to_three_bytes(void **state)
{
	static const uint32_t cp[] = { 'x', 0x3b1, 0x20ac, 0xfffe };

	assert_ucs(cp, ARRAY_SIZE(cp), 2, "x\xce\xb1\xe2\x82\xac\xef\xbf\xbe");
}

/* A str may hold lone surrogates; a pair in UCS2 data is two of them. */
static void ucs_to_utf8__surrogates__replacement(void **state)
{
	static const uint32_t cp2[] = { 0xd800, 'x', 0xdbff, 0xdc00, 0xdfff, 0xd7ff, 0xe000 };
	static const uint32_t cp4[] = { 0xd83d, 0xdc0d };

	assert_ucs(cp2, ARRAY_SIZE(cp2), 2,
		   "\xef\xbf\xbdx\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xed\x9f\xbf\xee\x80\x80");
	assert_ucs(cp4, ARRAY_SIZE(cp4), 4, "\xef\xbf\xbd\xef\xbf\xbd");
}

static void ucs_to_utf8__beyond_unicode__replacement(void **state)
{
	static const uint32_t cp[] = { 0x110000, 0xffffffff, 0x80000000, 0x1fffff, 'z' };

	assert_ucs(cp, ARRAY_SIZE(cp), 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdz");
}

static void ucs_to_utf8__bad_kind__empty(void **state)
{
	static const unsigned int kinds[] = { 0, 3, 5, 8, 0x100 };
	static const uint8_t data[16] = { 'a', 'b', 'c', 'd' };
	char out[32];
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		memset(out, 'Z', sizeof(out));
		assert_int_equal(symbolize__ucs_to_utf8(data, 4, kinds[i], out, sizeof(out)), 0);
		assert_int_equal(out[0], '\0');
	}
}

static void ucs_to_utf8__outlen_zero__nothing_written(void **state)
{
	static const uint8_t data[] = { 'a' };
	char out[2] = { 'Z', 'Z' };

	assert_int_equal(symbolize__ucs_to_utf8(data, 1, 1, out, 0), 0);
	assert_int_equal(out[0], 'Z');
	assert_int_equal(symbolize__ucs_to_utf8(data, 1, 1, out, 1), 0);
	assert_int_equal(out[0], '\0');
	assert_int_equal(out[1], 'Z');
}

static void ucs_to_utf8__no_code_points__empty(void **state)
{
	char out[4] = { 'Z', 'Z', 'Z', 'Z' };

	assert_int_equal(symbolize__ucs_to_utf8(NULL, 0, 2, out, sizeof(out)), 0);
	assert_int_equal(out[0], '\0');
}

static void ucs_to_utf8__multibyte_at_limit__not_split(void **state)
{
	static const uint32_t euro[] = { 'a', 'b', 0x20ac };
	static const uint32_t snake[] = { 'a', 0x1f40d };
	char out[16];
	size_t len;

	for (len = 1; len <= 5; len++) {
		memset(out, 'Z', sizeof(out));
		assert_int_equal(ucs(euro, 3, 2, out, len), len < 3 ? len - 1 : 2);
		assert_int_equal(out[len < 3 ? len - 1 : 2], '\0');
	}
	assert_int_equal(ucs(euro, 3, 2, out, 6), 5);
	assert_string_equal(out, "ab\xe2\x82\xac");
	for (len = 2; len <= 5; len++) {
		assert_int_equal(ucs(snake, 2, 4, out, len), 1);
		assert_string_equal(out, "a");
	}
	assert_int_equal(ucs(snake, 2, 4, out, 6), 5);
}

static size_t utf8_seq_len(uint8_t lead)
{
	return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

/*
 * Truncation keeps a prefix: once a code point does not fit, nothing after
 * it is written. Swept over every output size for mixed-width strings.
 */
static void ucs_to_utf8__truncated__prefix_of_whole(void **state)
{
	static const uint32_t s1[] = { 'a', 'b', 0x20ac, 'c', 'd' };
	static const uint32_t s2[] = { 0x1f40d, 'x', 0xe9, 0x1f40d, 'y', 'z', 0x800 };
	static const struct {
		const uint32_t *cp;
		size_t n;
	} cases[] = { { s1, ARRAY_SIZE(s1) }, { s2, ARRAY_SIZE(s2) } };
	char whole[64], out[64];
	size_t i, len, n, got;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		n = ucs(cases[i].cp, cases[i].n, 4, whole, sizeof(whole));
		for (len = 1; len <= n + 1; len++) {
			memset(out, 'Z', sizeof(out));
			got = ucs(cases[i].cp, cases[i].n, 4, out, len);
			assert_true(got < len);
			assert_int_equal(out[got], '\0');
			if (memcmp(out, whole, got))
				print_error("outlen %zu: got \"%s\", not a prefix of \"%s\"\n", len,
					    out, whole);
			assert_memory_equal(out, whole, got);
			/* Ends on a code point, and the next one would not fit. */
			assert_true(got == n || (whole[got] & 0xc0) != 0x80);
			assert_true(got == n || got + utf8_seq_len((uint8_t)whole[got]) >= len);
		}
	}
}

/* The smallest case of the sweep above. */
static void ucs_to_utf8__wide_then_narrow_at_limit__stops_at_wide(void **state)
{
	static const uint32_t cp[] = { 'a', 'b', 0x20ac, 'c' };
	char out[8];

	assert_int_equal(ucs(cp, ARRAY_SIZE(cp), 2, out, 4), 2);
	assert_string_equal(out, "ab");
}

/* ---- symbolize__instr_offset ---- */

static void instr_offset__lasti_bytes__as_is_negative_zero(void **state)
{
	const struct pml_pylayout *l = pyoffsets__lookup(3, 8);

	assert_int_equal(l->instr_kind, PML_INSTR_LASTI_BYTES);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 0), 0);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 10), 10);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 2602), 2602);
	/* f_lasti = -1 (not started), as BPF reads it: 4 bytes, zero-extended. */
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 0xffffffffu), 0);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, UINT64_MAX), 0);
	assert_int_equal(symbolize__instr_offset(pyoffsets__lookup(3, 9), 0, 44), 44);
}

static void instr_offset__lasti_units__doubled_negative_zero(void **state)
{
	const struct pml_pylayout *l = pyoffsets__lookup(3, 10);

	assert_int_equal(l->instr_kind, PML_INSTR_LASTI_UNITS);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 0), 0);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 5), 10);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 1384), 2768);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, 0xffffffffu), 0);
	assert_int_equal(symbolize__instr_offset(l, 0x1000, UINT64_MAX), 0);
}

static void instr_offset__pointer__offset_from_code_adaptive(void **state)
{
	static const int ms[] = { 11, 12, 13 };
	const uint64_t code = 0x7f0012345000ull;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(ms); i++) {
		const struct pml_pylayout *l = pyoffsets__lookup(3, ms[i]);
		uint64_t base = code + l->code_code_adaptive;

		assert_int_equal(l->instr_kind, PML_INSTR_POINTER);
		assert_int_equal(symbolize__instr_offset(l, code, base), 0);
		assert_int_equal(symbolize__instr_offset(l, code, base + 6), 6);
		assert_int_equal(symbolize__instr_offset(l, code, base + 7), 6);
		assert_int_equal(symbolize__instr_offset(l, code, base + 6700), 6700);
		/* 3.11/3.12 prev_instr of a frame just pushed: one unit before. */
		assert_int_equal(symbolize__instr_offset(l, code, base - 2), 0);
		assert_int_equal(symbolize__instr_offset(l, code, base - 1), 0);
		assert_int_equal(symbolize__instr_offset(l, code, 0), 0);
		assert_int_equal(symbolize__instr_offset(l, code, code), 0);
		/* Not inside any plausible code object. */
		assert_int_equal(symbolize__instr_offset(l, code, base + ((uint64_t)1 << 31)), 0);
		assert_int_equal(symbolize__instr_offset(l, code, UINT64_MAX), 0);
	}
}

static void instr_offset__pointer_without_code_adaptive__zero(void **state)
{
	struct pml_pylayout l = *pyoffsets__lookup(3, 12);

	l.code_code_adaptive = PML_NO_FIELD;
	assert_int_equal(symbolize__instr_offset(&l, 0x1000, 0x1000 + 192 + 8), 0);
}

#define T(f) cmocka_unit_test_setup_teardown(f, world_setup, world_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(symbolize__fixture_38__file_function_line),
		T(symbolize__fixture_39__file_function_line),
		T(symbolize__fixture_310__file_function_line),
		T(symbolize__fixture_311__file_function_line),
		T(symbolize__fixture_312__file_function_line),
		T(symbolize__fixture_313__file_function_line),
		T(symbolize__fixture_313_debug_offsets_layout__file_function_line),
		T(symbolize__code_type_mismatch__unknown_and_counted),
		T(symbolize__types_unknown__type_checks_skipped),
		T(symbolize__filename_wrong_type__unknown_file_counted),
		T(symbolize__function_wrong_type__unknown_function_counted),
		T(symbolize__str_not_compact__unknown),
		T(symbolize__str_bad_kind__unknown),
		T(symbolize__str_negative_length__unknown),
		T(symbolize__str_huge_length__capped_prefix),
		T(symbolize__str_empty__empty_string),
		T(symbolize__code_unreadable__unknown_counted),
		T(symbolize__code_null__unknown_counted_no_read),
		T(symbolize__str_header_unreadable__unknown),
		T(symbolize__str_data_unreadable__unknown),
		T(symbolize__table_unreadable__line_zero_names_kept),
		T(symbolize__table_wrong_type__line_zero),
		T(symbolize__table_too_long__not_read_line_zero),
		T(symbolize__table_truncated__line_zero_counted),
		T(symbolize__depth_over_max__capped),
		T(symbolize__three_frames__order_kept),
		T(symbolize__empty_stack__no_frames),
		T(symbolize__pid_not_added__no_frames_no_reads),
		T(symbolize__dropped_pid__forgotten),
		T(symbolize_cache__same_code_twice__one_read),
		T(symbolize_cache__code_replaced_same_address__reread),
		T(symbolize_cache__linetable_replaced__new_lines),
		T(symbolize_cache__two_pids_same_address__separate),
		T(symbolize_cache__more_codes_than_slots__all_right),
		T(symbolizer_add_proc__313_real_debug_offsets__table_walk_fields),
		T(symbolizer_add_proc__313_moved_filename__followed),
		T(symbolizer_add_proc__313_corrupt_debug_offsets__table_row),
		T(symbolizer_add_proc__313_image_unreadable__table_row),
		T(symbolizer_add_proc__before_313__table_no_read),
		T(symbolizer_add_proc__313_no_runtime_addr__table_no_read),
		T(symbolizer_add_proc__unsupported_version__enotsup),
		T(symbolize__313_image_ob_type_far__names_read),
		T(symbolize__313_image_str_fields_far__names_read),
		T(symbolizer_new__own_process__reads_via_process_vm_readv),
		cmocka_unit_test(ucs_to_utf8__boundaries__shortest_forms),
		cmocka_unit_test(ucs_to_utf8__latin1__two_bytes),
		cmocka_unit_test(ucs_to_utf8__ucs2__up_to_three_bytes),
		cmocka_unit_test(ucs_to_utf8__surrogates__replacement),
		cmocka_unit_test(ucs_to_utf8__beyond_unicode__replacement),
		cmocka_unit_test(ucs_to_utf8__bad_kind__empty),
		cmocka_unit_test(ucs_to_utf8__outlen_zero__nothing_written),
		cmocka_unit_test(ucs_to_utf8__no_code_points__empty),
		cmocka_unit_test(ucs_to_utf8__multibyte_at_limit__not_split),
		cmocka_unit_test(ucs_to_utf8__truncated__prefix_of_whole),
		cmocka_unit_test(ucs_to_utf8__wide_then_narrow_at_limit__stops_at_wide),
		cmocka_unit_test(instr_offset__lasti_bytes__as_is_negative_zero),
		cmocka_unit_test(instr_offset__lasti_units__doubled_negative_zero),
		cmocka_unit_test(instr_offset__pointer__offset_from_code_adaptive),
		cmocka_unit_test(instr_offset__pointer_without_code_adaptive__zero),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
