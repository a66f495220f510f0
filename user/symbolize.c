// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linetable.h"
#include "symbolize.h"
#include "tmem.h"

#define NAME_MAX_CHARS 1024	    /* code points read of a name or file */
#define TABLE_MAX      (256u << 10) /* line table bytes read at most */
#define HDR_MAX	       512	    /* bytes of a code object header read */
#define CACHE_MAX      (1u << 16)   /* code objects cached, all processes */
#define UNKNOWN	       "<unknown>"

struct proc_entry {
	int pid;
	struct pml_pylayout lay;
	struct pml_pytypes types;
	uint64_t failures;
};

/* What one code object means, and the fingerprint it had when read. */
struct code_entry {
	int pid; /* 0: free slot */
	uint64_t code;
	uint64_t fp[5]; /* filename, name, qualname, linetable pointers, firstlineno */
	char *file;
	char *name;
	uint64_t tick; /* symbolizer tick of the last validation */
	int firstlineno;
	uint8_t *table;
	size_t tlen;
	bool ok;
};

struct pml_symbolizer {
	pml_read_fn rd;
	void *rd_ctx;
	struct proc_entry *procs;
	size_t nprocs, capprocs;
	struct code_entry *cache; /* open addressing, CACHE_MAX slots */
	size_t ncache;
	uint64_t tick; /* see symbolizer__tick() */
};

struct pml_symbolizer *symbolizer__new_reader(pml_read_fn rd, void *ctx)
{
	struct pml_symbolizer *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cache = calloc(CACHE_MAX, sizeof(*s->cache));
	if (!s->cache) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	s->rd = rd;
	s->rd_ctx = ctx;
	return s;
}

struct pml_symbolizer *symbolizer__new(void)
{
	return symbolizer__new_reader(tmem__read, NULL);
}

static void code_entry_clear(struct code_entry *c)
{
	free(c->file);
	free(c->name);
	free(c->table);
	memset(c, 0, sizeof(*c));
}

static void cache_clear(struct pml_symbolizer *s, int pid)
{
	size_t i;

	for (i = 0; i < CACHE_MAX; i++)
		if (s->cache[i].pid && (!pid || s->cache[i].pid == pid))
			code_entry_clear(&s->cache[i]);
	if (!pid)
		s->ncache = 0;
	else
		for (s->ncache = 0, i = 0; i < CACHE_MAX; i++)
			s->ncache += s->cache[i].pid != 0;
}

void symbolizer__free(struct pml_symbolizer *s)
{
	if (!s)
		return;
	cache_clear(s, 0);
	free(s->cache);
	free(s->procs);
	free(s);
}

static struct proc_entry *proc_of(struct pml_symbolizer *s, int pid)
{
	size_t i;

	for (i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return &s->procs[i];
	return NULL;
}

int symbolizer__add_proc(struct pml_symbolizer *s, int pid, int major, int minor,
			 uint64_t runtime_addr, const struct pml_pytypes *types,
			 struct pml_pylayout *out)
{
	const struct pml_pylayout *tab = pyoffsets__lookup(major, minor);
	struct proc_entry *p = proc_of(s, pid);
	uint8_t *dbg;

	if (!tab)
		return -ENOTSUP;
	if (!p) {
		if (s->nprocs == s->capprocs) {
			size_t cap = s->capprocs ? s->capprocs * 2 : 8;
			struct proc_entry *np = realloc(s->procs, cap * sizeof(*np));

			if (!np)
				return -ENOMEM;
			s->procs = np;
			s->capprocs = cap;
		}
		p = &s->procs[s->nprocs++];
	}
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->lay = *tab;
	if (types)
		p->types = *types;
	/* 3.13+ describe themselves: prefer that to our table. */
	if ((major > 3 || (major == 3 && minor >= 13)) && runtime_addr) {
		dbg = malloc(PML_DEBUG_OFFSETS_SIZE);
		if (dbg && !s->rd(pid, runtime_addr, dbg, PML_DEBUG_OFFSETS_SIZE, s->rd_ctx)) {
			struct pml_pylayout l = *tab;

			if (!pyoffsets__from_debug_offsets(dbg, PML_DEBUG_OFFSETS_SIZE, &l))
				p->lay = l;
		}
		free(dbg);
	}
	p->lay.walk.runtime_addr = runtime_addr;
	cache_clear(s, pid);
	if (out)
		*out = p->lay;
	return 0;
}

void symbolizer__drop_pid(struct pml_symbolizer *s, int pid)
{
	struct proc_entry *p = proc_of(s, pid);

	cache_clear(s, pid);
	if (p)
		*p = s->procs[--s->nprocs];
}

void symbolizer__tick(struct pml_symbolizer *s)
{
	s->tick++;
}

uint64_t symbolizer__failures(const struct pml_symbolizer *s, int pid)
{
	size_t i;

	for (i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return s->procs[i].failures;
	return 0;
}

/* Append cp; false (nothing written) when it does not fit. */
static bool put_utf8(uint32_t cp, char *out, size_t outlen, size_t *n)
{
	char b[4];
	size_t k, len;

	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		b[0] = cp;
		len = 1;
	} else if (cp < 0x800) {
		b[0] = 0xc0 | (cp >> 6);
		b[1] = 0x80 | (cp & 0x3f);
		len = 2;
	} else if (cp < 0x10000) {
		b[0] = 0xe0 | (cp >> 12);
		b[1] = 0x80 | ((cp >> 6) & 0x3f);
		b[2] = 0x80 | (cp & 0x3f);
		len = 3;
	} else {
		b[0] = 0xf0 | (cp >> 18);
		b[1] = 0x80 | ((cp >> 12) & 0x3f);
		b[2] = 0x80 | ((cp >> 6) & 0x3f);
		b[3] = 0x80 | (cp & 0x3f);
		len = 4;
	}
	if (*n + len >= outlen)
		return false;
	for (k = 0; k < len; k++)
		out[(*n)++] = b[k];
	return true;
}

size_t symbolize__ucs_to_utf8(const uint8_t *data, size_t n, unsigned int kind, char *out,
			      size_t outlen)
{
	size_t i, w = 0;
	uint32_t cp;

	if (!outlen)
		return 0;
	out[0] = '\0';
	if (kind != 1 && kind != 2 && kind != 4)
		return 0;
	for (i = 0; i < n && w + 1 < outlen; i++) {
		if (kind == 1) {
			cp = data[i];
		} else if (kind == 2) {
			cp = data[2 * i] | (uint32_t)data[2 * i + 1] << 8;
		} else {
			cp = data[4 * i] | (uint32_t)data[4 * i + 1] << 8 |
			     (uint32_t)data[4 * i + 2] << 16 | (uint32_t)data[4 * i + 3] << 24;
		}
		if (!put_utf8(cp, out, outlen, &w))
			break; /* a prefix, never a character skipped */
	}
	out[w] = '\0';
	return w;
}

static uint64_t ld64(const uint8_t *b, uint32_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint32_t ld32(const uint8_t *b, uint32_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

static bool type_ok(const struct pml_pylayout *lay, const uint8_t *hdr, uint64_t want)
{
	return !want || ld64(hdr, lay->ob_type) == want;
}

/* A str object of the target as a malloc'ed UTF-8 string, or NULL. */
static char *read_str(struct pml_symbolizer *s, const struct proc_entry *p, uint64_t addr)
{
	const struct pml_pylayout *lay = &p->lay;
	uint8_t hdr[256], *data;
	uint32_t state, kind, dataoff;
	int64_t len;
	size_t n, outlen;
	char *out;
	uint32_t need = max_u32(max_u32(lay->ob_type + 8, lay->unicode_state + 4),
				max_u32(lay->unicode_length + 8, lay->unicode_compact_size));

	/* Every field used must lie in the bytes read (layouts may come from
	 * the target's own _Py_DebugOffsets). */
	if (!addr || need > sizeof(hdr) || lay->unicode_ascii_size > sizeof(hdr))
		return NULL;
	if (s->rd(p->pid, addr, hdr, need, s->rd_ctx) || !type_ok(lay, hdr, p->types.str_type))
		return NULL;
	state = ld32(hdr, lay->unicode_state);
	if (!lay->unicode_kind_mask || !(state & lay->unicode_compact_mask))
		return NULL; /* not compact: names and files always are */
	kind = (state & lay->unicode_kind_mask) /
	       (lay->unicode_kind_mask & -lay->unicode_kind_mask);
	dataoff = state & lay->unicode_ascii_mask ? lay->unicode_ascii_size
						  : lay->unicode_compact_size;
	memcpy(&len, hdr + lay->unicode_length, sizeof(len));
	if (len < 0 || (kind != 1 && kind != 2 && kind != 4))
		return NULL;
	n = (size_t)len > NAME_MAX_CHARS ? NAME_MAX_CHARS : (size_t)len;
	data = malloc(n * kind + 1);
	outlen = n * 4 + 1;
	out = malloc(outlen);
	if (!data || !out || (n && s->rd(p->pid, addr + dataoff, data, n * kind, s->rd_ctx))) {
		free(data);
		free(out);
		return NULL;
	}
	symbolize__ucs_to_utf8(data, n, kind, out, outlen);
	free(data);
	return out;
}

/* A bytes object's contents (malloc'ed), or NULL. */
static uint8_t *read_bytes(struct pml_symbolizer *s, const struct proc_entry *p, uint64_t addr,
			   size_t *len)
{
	const struct pml_pylayout *lay = &p->lay;
	uint8_t hdr[256], *data;
	int64_t n;
	uint32_t need = max_u32(max_u32(lay->ob_type + 8, lay->bytes_size + 8), lay->bytes_sval);

	if (!addr || need > sizeof(hdr))
		return NULL;
	if (s->rd(p->pid, addr, hdr, need, s->rd_ctx) || !type_ok(lay, hdr, p->types.bytes_type))
		return NULL;
	memcpy(&n, hdr + lay->bytes_size, sizeof(n));
	if (n < 0 || (uint64_t)n > TABLE_MAX)
		return NULL;
	data = malloc(n ? n : 1);
	if (!data)
		return NULL;
	if (n && s->rd(p->pid, addr + lay->bytes_sval, data, n, s->rd_ctx)) {
		free(data);
		return NULL;
	}
	*len = n;
	return data;
}

static size_t slot_of(int pid, uint64_t code)
{
	uint64_t h = code * 0x9e3779b97f4a7c15ULL ^ (uint64_t)pid * 0xc2b2ae3d27d4eb4fULL;

	return (h >> 17) & (CACHE_MAX - 1);
}

static uint32_t hdr_len(const struct pml_pylayout *lay)
{
	uint32_t m = lay->ob_type, f[] = { lay->code_filename, lay->code_name, lay->code_qualname,
					   lay->code_firstlineno, lay->code_linetable };
	size_t i;

	for (i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (f[i] != PML_NO_FIELD && f[i] > m)
			m = f[i];
	return m + 8;
}

/* The cache entry of a code object, read or revalidated now. */
static struct code_entry *code_of(struct pml_symbolizer *s, struct proc_entry *p, uint64_t code)
{
	const struct pml_pylayout *lay = &p->lay;
	uint32_t hl = hdr_len(lay);
	uint8_t hdr[HDR_MAX];
	struct code_entry *c;
	uint64_t fp[5] = { 0 };
	size_t i, slot;
	int32_t first;

	if (hl > sizeof(hdr) || !code)
		return NULL;
	/* Validated during this tick: the same code object, no read needed. */
	slot = slot_of(p->pid, code);
	for (i = 0; i < CACHE_MAX; i++) {
		c = &s->cache[(slot + i) & (CACHE_MAX - 1)];
		if (!c->pid)
			break;
		if (c->pid == p->pid && c->code == code) {
			if (c->tick == s->tick)
				return c;
			break;
		}
	}
	if (s->rd(p->pid, code, hdr, hl, s->rd_ctx) || !type_ok(lay, hdr, p->types.code_type))
		return NULL;
	fp[0] = ld64(hdr, lay->code_filename);
	fp[1] = ld64(hdr, lay->code_name);
	fp[2] = lay->code_qualname != PML_NO_FIELD ? ld64(hdr, lay->code_qualname) : 0;
	fp[3] = ld64(hdr, lay->code_linetable);
	memcpy(&first, hdr + lay->code_firstlineno, sizeof(first));
	fp[4] = (uint32_t)first;

	slot = slot_of(p->pid, code);
	for (i = 0; i < CACHE_MAX; i++) {
		c = &s->cache[(slot + i) & (CACHE_MAX - 1)];
		if (!c->pid || (c->pid == p->pid && c->code == code))
			break;
	}
	if (i == CACHE_MAX || (!c->pid && s->ncache >= CACHE_MAX / 2)) {
		/* Full: start over rather than grow without bound. */
		cache_clear(s, 0);
		c = &s->cache[slot];
	}
	if (c->pid && !memcmp(c->fp, fp, sizeof(fp))) {
		c->tick = s->tick;
		return c;
	}
	if (c->pid)
		code_entry_clear(c);
	else
		s->ncache++;
	c->pid = p->pid;
	c->code = code;
	memcpy(c->fp, fp, sizeof(fp));
	c->firstlineno = first;
	c->file = read_str(s, p, fp[0]);
	c->name = read_str(s, p, fp[2] ? fp[2] : fp[1]);
	c->table = read_bytes(s, p, fp[3], &c->tlen);
	c->ok = c->file && c->name;
	c->tick = s->tick;
	return c;
}

uint32_t symbolize__instr_offset(const struct pml_pylayout *lay, uint64_t code, uint64_t instr)
{
	uint64_t base;

	switch (lay->instr_kind) {
	case PML_INSTR_LASTI_BYTES:
		return (int32_t)instr < 0 ? 0 : (uint32_t)instr;
	case PML_INSTR_LASTI_UNITS:
		return (int32_t)instr < 0 ? 0 : (uint32_t)instr * 2;
	default:
		if (lay->code_code_adaptive == PML_NO_FIELD)
			return 0;
		base = code + lay->code_code_adaptive;
		/* Before the first instruction (a frame just pushed): line of offset 0. */
		if (instr < base || instr - base > (1u << 30))
			return 0;
		return (uint32_t)(instr - base) & ~1u;
	}
}

static char *dup_or_unknown(const char *s)
{
	return strdup(s ? s : UNKNOWN);
}

int symbolizer__frames(struct pml_symbolizer *s, int pid, const struct pml_stack *st,
		       struct pml_stackinfo *info)
{
	struct proc_entry *p = proc_of(s, pid);
	struct code_entry *c;
	uint32_t i, depth;
	int line;

	info->frames = NULL;
	info->nframes = 0;
	depth = st->depth > PML_MAX_FRAMES ? PML_MAX_FRAMES : st->depth;
	if (!p || !depth)
		return 0;
	info->frames = calloc(depth, sizeof(*info->frames));
	if (!info->frames)
		return -ENOMEM;
	for (i = 0; i < depth; i++) {
		struct pml_pyframe *f = &info->frames[i];

		c = code_of(s, p, st->frames[i].code);
		line = 0;
		if (c && c->table)
			line = linetable__line(p->lay.lt_format, c->table, c->tlen, c->firstlineno,
					       symbolize__instr_offset(&p->lay, st->frames[i].code,
								       st->frames[i].instr));
		if (!c || !c->ok || !c->table || line < 0)
			p->failures++;
		f->file = dup_or_unknown(c ? c->file : NULL);
		f->function = dup_or_unknown(c ? c->name : NULL);
		f->line = line > 0 ? line : 0;
		info->nframes++;
		if (!f->file || !f->function)
			return -ENOMEM;
	}
	return 0;
}

void symbolizer__release(struct pml_stackinfo *info)
{
	size_t i;

	for (i = 0; i < info->nframes; i++) {
		free(info->frames[i].file);
		free(info->frames[i].function);
	}
	free(info->frames);
	info->frames = NULL;
	info->nframes = 0;
}
