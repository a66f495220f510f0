/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classify.h"
#include "tmem.h"

/* tp_flags bits with the same value on every supported CPython (3.8-3.13). */
#define TPF_READY (1ull << 12)
/* Py_TPFLAGS_UNICODE_SUBCLASS: a compact str is smaller than tp_basicsize
 * (that is sizeof(PyUnicodeObject), the legacy layout). */
#define TPF_UNICODE	  (1ull << 28)
#define TPF_TYPE_SUBCLASS (1ull << 31)

#define HDR_FIELD_MAX  64  /* ob_type, GC head, pre-header: bytes at most */
#define TYPE_FIELD_MAX 512 /* tp_* offsets: bytes at most */
#define MAX_CANDS      4   /* 0, pre-header, GC head, both */
/* A live object's count stays far below this (3.12+ immortals: 2^32 - 1,
 * plus increments by old-ABI extensions); a pointer in a PIE process is above. */
#define REFCNT_MAX (1ull << 40)
/* Name reads never cross a 4 KiB boundary unless the name goes on past it,
 * so a name ending just before an unmapped page still reads. */
#define PAGE		4096u
#define CACHE_SLOTS	(2 * PML_CLASSIFY_CACHE_MAX) /* power of two, load <= 1/2 */
#define CACHE_FIRST_CAP 64

/* What one address gave when read as a type object. */
struct type_facts {
	uint64_t addr;
	uint64_t meta;	    /* its ob_type */
	uint64_t flags;	    /* tp_flags */
	uint64_t basicsize; /* tp_basicsize */
	bool ok;	    /* readable, ready, sane basicsize, printable name */
	char name[PML_CLASSIFY_NAME_MAX];
};

struct classify_proc {
	int pid;
	struct pml_pylayout lay;
	uint64_t type_type;
	uint32_t cands[MAX_CANDS]; /* object start offsets to try, ascending */
	uint32_t ncands;
	uint32_t hdr_span;  /* block bytes the candidates need */
	uint32_t type_span; /* type object bytes the checks need */
	uint16_t *slots;    /* CACHE_SLOTS: entry index + 1, 0 empty */
	struct type_facts *entries;
	uint32_t nentries, capentries;
};

struct pml_classifier {
	pml_read_fn rd;
	void *ctx;
	struct classify_proc *procs;
	size_t nprocs, capprocs;
};

static uint64_t word(const uint8_t *buf, uint32_t off)
{
	uint64_t v;

	memcpy(&v, buf + off, sizeof(v));
	return v;
}

static void name__set(char *name, size_t len, const char *s)
{
	snprintf(name, len, "%s", s);
}

struct pml_classifier *classify__new(pml_read_fn rd, void *ctx)
{
	struct pml_classifier *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->rd = rd ? rd : tmem__read;
	c->ctx = ctx;
	return c;
}

static void proc__release(struct classify_proc *p)
{
	free(p->slots);
	free(p->entries);
}

void classify__free(struct pml_classifier *c)
{
	size_t i;

	if (!c)
		return;
	for (i = 0; i < c->nprocs; i++)
		proc__release(&c->procs[i]);
	free(c->procs);
	free(c);
}

static struct classify_proc *proc__find(struct pml_classifier *c, int pid)
{
	size_t i;

	for (i = 0; i < c->nprocs; i++)
		if (c->procs[i].pid == pid)
			return &c->procs[i];
	return NULL;
}

static bool field__ok(uint32_t off, uint32_t max)
{
	return off % 8 == 0 && off <= max - 8;
}

static bool layout__ok(const struct pml_pylayout *l)
{
	return field__ok(l->ob_type, HDR_FIELD_MAX) && field__ok(l->tp_name, TYPE_FIELD_MAX) &&
	       field__ok(l->tp_flags, TYPE_FIELD_MAX) &&
	       field__ok(l->tp_basicsize, TYPE_FIELD_MAX) && l->gc_head_size % 8 == 0 &&
	       l->gc_head_size <= HDR_FIELD_MAX && l->pre_header_size % 8 == 0 &&
	       l->pre_header_size <= HDR_FIELD_MAX && l->tp_flags_gc != 0;
}

static void cand__add(struct classify_proc *p, uint32_t off)
{
	uint32_t i, j;

	for (i = 0; i < p->ncands && p->cands[i] < off; i++)
		;
	if (i < p->ncands && p->cands[i] == off)
		return;
	for (j = p->ncands; j > i; j--)
		p->cands[j] = p->cands[j - 1];
	p->cands[i] = off;
	p->ncands++;
}

static uint32_t max_u32(uint32_t a, uint32_t b)
{
	return a > b ? a : b;
}

/* Headers before the object that a type with these flags implies. */
static uint64_t flags__offset(const struct classify_proc *p, uint64_t flags)
{
	uint64_t off = 0;

	if (flags & p->lay.tp_flags_gc)
		off += p->lay.gc_head_size;
	if (p->lay.pre_header_size && (flags & p->lay.tp_flags_preheader))
		off += p->lay.pre_header_size;
	return off;
}

int classify__add_proc(struct pml_classifier *c, int pid, const struct pml_pylayout *lay,
		       uint64_t type_type)
{
	const struct pml_pylayout *l = lay;
	struct classify_proc fresh = { 0 }, *p;

	if (!c || !l || !type_type || type_type % 8 || !layout__ok(l))
		return -EINVAL;
	fresh.pid = pid;
	fresh.lay = *l;
	fresh.type_type = type_type;
	cand__add(&fresh, 0);
	cand__add(&fresh, l->gc_head_size);
	if (l->pre_header_size && l->tp_flags_preheader) {
		cand__add(&fresh, l->pre_header_size);
		cand__add(&fresh, l->gc_head_size + l->pre_header_size);
	}
	fresh.hdr_span = fresh.cands[fresh.ncands - 1] + l->ob_type + 8;
	fresh.type_span =
		max_u32(max_u32(l->ob_type, l->tp_name), max_u32(l->tp_flags, l->tp_basicsize)) + 8;
	fresh.slots = calloc(CACHE_SLOTS, sizeof(*fresh.slots));
	if (!fresh.slots)
		return -ENOMEM;

	p = proc__find(c, pid);
	if (p) {
		proc__release(p);
		*p = fresh;
		return 0;
	}
	if (c->nprocs == c->capprocs) {
		size_t cap = c->capprocs ? 2 * c->capprocs : 8;
		struct classify_proc *np = realloc(c->procs, cap * sizeof(*np));

		if (!np) {
			free(fresh.slots);
			return -ENOMEM;
		}
		c->procs = np;
		c->capprocs = cap;
	}
	c->procs[c->nprocs++] = fresh;
	return 0;
}

void classify__drop_pid(struct pml_classifier *c, int pid)
{
	struct classify_proc *p;

	if (!c)
		return;
	p = proc__find(c, pid);
	if (!p)
		return;
	proc__release(p);
	*p = c->procs[--c->nprocs];
}

static uint32_t cache__hash(uint64_t addr)
{
	return (uint32_t)(((addr >> 3) * 0x9e3779b97f4a7c15ull) >> 40) & (CACHE_SLOTS - 1);
}

static const struct type_facts *cache__find(const struct classify_proc *p, uint64_t addr)
{
	uint32_t h = cache__hash(addr), i;
	uint16_t s;

	for (i = 0; i < CACHE_SLOTS; i++) {
		s = p->slots[(h + i) & (CACHE_SLOTS - 1)];
		if (!s)
			return NULL;
		if (p->entries[s - 1].addr == addr)
			return &p->entries[s - 1];
	}
	return NULL;
}

/* Best effort: a failed allocation only means this type is read again. */
static void cache__insert(struct classify_proc *p, const struct type_facts *f)
{
	uint32_t h = cache__hash(f->addr), i;
	uint16_t *s = NULL;

	if (p->nentries == PML_CLASSIFY_CACHE_MAX) {
		memset(p->slots, 0, CACHE_SLOTS * sizeof(*p->slots));
		p->nentries = 0;
	}
	if (p->nentries == p->capentries) {
		uint32_t cap = p->capentries ? 2 * p->capentries : CACHE_FIRST_CAP;
		struct type_facts *ne;

		if (cap > PML_CLASSIFY_CACHE_MAX)
			cap = PML_CLASSIFY_CACHE_MAX;
		ne = realloc(p->entries, cap * sizeof(*ne));
		if (!ne)
			return;
		p->entries = ne;
		p->capentries = cap;
	}
	for (i = 0; i < CACHE_SLOTS; i++) {
		s = &p->slots[(h + i) & (CACHE_SLOTS - 1)];
		if (!*s)
			break;
	}
	if (!s || *s)
		return;
	p->entries[p->nentries] = *f;
	*s = (uint16_t)++p->nentries;
}

/*
 * Read the NUL-terminated string at ptr into out when it is 1..63 printable
 * ASCII bytes; else out is "". Returns 0 or the reader's -errno.
 */
static int name__read(struct pml_classifier *c, const struct classify_proc *p, uint64_t ptr,
		      char *out)
{
	unsigned char buf[PML_CLASSIFY_NAME_MAX];
	size_t got = 0, n, i;
	int err;

	out[0] = '\0';
	if (!ptr || ptr > UINT64_MAX - sizeof(buf))
		return 0;
	while (got < sizeof(buf)) {
		n = PAGE - (size_t)((ptr + got) % PAGE);
		if (n > sizeof(buf) - got)
			n = sizeof(buf) - got;
		err = c->rd(p->pid, ptr + got, buf + got, n, c->ctx);
		if (err)
			return err;
		for (i = got; i < got + n; i++) {
			if (buf[i] == '\0') {
				memcpy(out, buf, i + 1);
				return 0;
			}
			if (buf[i] < 0x20 || buf[i] > 0x7e)
				return 0;
		}
		got += n;
	}
	return 0;
}

/* Read addr as a type object into *f (f->ok says whether it looks like one).
 * Returns 0 or the reader's -errno. */
static int type__inspect(struct pml_classifier *c, const struct classify_proc *p, uint64_t addr,
			 struct type_facts *f)
{
	const struct pml_pylayout *l = &p->lay;
	uint8_t buf[TYPE_FIELD_MAX];
	int err;

	memset(f, 0, sizeof(*f));
	f->addr = addr;
	if (!addr || addr % 8 || addr > UINT64_MAX - p->type_span)
		return 0;
	err = c->rd(p->pid, addr, buf, p->type_span, c->ctx);
	if (err)
		return err;
	f->meta = word(buf, l->ob_type);
	f->flags = word(buf, l->tp_flags);
	f->basicsize = word(buf, l->tp_basicsize);
	if (!(f->flags & TPF_READY) || f->basicsize < (uint64_t)l->ob_type + 8)
		return 0;
	err = name__read(c, p, word(buf, l->tp_name), f->name);
	if (err)
		return err;
	f->ok = f->name[0] != '\0';
	return 0;
}

/* Facts about addr from the cache, else read (and cached when settled: a
 * fault settles it, a failing reader such as a dead pid does not). */
static bool type__facts(struct pml_classifier *c, struct classify_proc *p, uint64_t addr,
			struct type_facts *f)
{
	const struct type_facts *e = cache__find(p, addr);
	int err;

	if (e) {
		*f = *e;
		return true;
	}
	err = type__inspect(c, p, addr, f);
	if (err == -EFAULT) {
		f->ok = false;
		err = 0;
	}
	if (err)
		return false;
	cache__insert(p, f);
	return true;
}

/* Is t a type: an instance of type_type, or of a metaclass that is one. */
static bool type__valid(struct pml_classifier *c, struct classify_proc *p, uint64_t t,
			struct type_facts *f)
{
	struct type_facts m;

	if (!type__facts(c, p, t, f) || !f->ok)
		return false;
	if (f->meta == p->type_type)
		return true;
	if (!type__facts(c, p, f->meta, &m) || !m.ok)
		return false;
	return m.meta == p->type_type && (m.flags & TPF_TYPE_SUBCLASS);
}

int classify__block(struct pml_classifier *c, int pid, uint64_t addr, uint64_t size, char *name,
		    size_t len)
{
	uint8_t buf[3 * HDR_FIELD_MAX]; /* >= hdr_span: two headers + ob_type + 8 */
	const struct pml_pylayout *l;
	struct classify_proc *p;
	struct type_facts f;
	uint64_t hlen, off;
	uint32_t i;

	if (!c || !name || !len)
		return -EINVAL;
	name__set(name, len, PML_CLASSIFY_BUFFER);
	p = proc__find(c, pid);
	if (!p)
		return -ESRCH;
	l = &p->lay;
	if (!size || addr > UINT64_MAX - size)
		return 0;
	hlen = size < p->hdr_span ? size : p->hdr_span;
	if (c->rd(pid, addr, buf, hlen, c->ctx))
		return 0;
	for (i = 0; i < p->ncands; i++) {
		off = p->cands[i];
		if (off + l->ob_type + 8 > hlen)
			break;
		if (l->ob_type >= 8 && word(buf, off) >= REFCNT_MAX)
			continue;
		if (!type__valid(c, p, word(buf, off + l->ob_type), &f))
			continue;
		if (flags__offset(p, f.flags) != off ||
		    (f.basicsize > size - off && !(f.flags & TPF_UNICODE)))
			continue;
		name__set(name, len, f.name);
		return 0;
	}
	return 0;
}
