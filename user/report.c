/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Aggregation of drained `outstanding` entries per (pid, stack), ranking,
 * and the text report. Three small open-addressing tables keyed by
 * (pid, id): snapshot rows, stack infos (kept across snapshots) and per-pid
 * totals.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pymemleak.h"
#include "report.h"

/* Slot of a key table: idx1 is the entry index + 1, 0 for an empty slot. */
struct keyslot {
	uint64_t id;
	uint32_t pid;
	uint32_t idx1;
};

struct keytab {
	struct keyslot *slots;
	size_t cap;		/* power of two, or 0 */
	size_t len;
};

struct info_ent {
	uint32_t pid;
	uint64_t stack_id;
	struct pml_stackinfo info;
};

struct pidtot {
	uint32_t pid;
	uint64_t bytes;
	uint64_t count;
};

struct pml_agg {
	uint64_t now_ns;

	struct pml_row *rows;
	size_t nrows, rows_cap;
	struct keytab rowtab;

	/* Pointers, so that rows' info pointers survive growth of the array. */
	struct info_ent **infos;
	size_t ninfos, infos_cap;
	struct keytab infotab;

	struct pidtot *pids;
	size_t npids, pids_cap;
	struct keytab pidtab;
};

#define KEYTAB_MIN_CAP 64
#define NOT_FOUND SIZE_MAX

static uint64_t key_hash(uint32_t pid, uint64_t id)
{
	/* splitmix64 finalizer: stack ids are hashes already, pids are not. */
	uint64_t h = id ^ ((uint64_t)pid * 0x9e3779b97f4a7c15ull);

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

static size_t keytab__find(const struct keytab *t, uint32_t pid, uint64_t id)
{
	size_t mask, i;

	if (!t->cap)
		return NOT_FOUND;
	mask = t->cap - 1;
	for (i = key_hash(pid, id) & mask;; i = (i + 1) & mask) {
		const struct keyslot *s = &t->slots[i];

		if (!s->idx1)
			return NOT_FOUND;
		if (s->pid == pid && s->id == id)
			return s->idx1 - 1;
	}
}

/* Insert a key known to be absent into a table with room for it. */
static void keytab__put(struct keytab *t, uint32_t pid, uint64_t id, size_t idx)
{
	size_t mask = t->cap - 1, i;

	for (i = key_hash(pid, id) & mask; t->slots[i].idx1; i = (i + 1) & mask)
		;
	t->slots[i].pid = pid;
	t->slots[i].id = id;
	t->slots[i].idx1 = (uint32_t)(idx + 1);
	t->len++;
}

static int keytab__grow(struct keytab *t)
{
	size_t cap = t->cap ? t->cap * 2 : KEYTAB_MIN_CAP, i;
	struct keyslot *old = t->slots;
	size_t old_cap = t->cap;

	if (cap > SIZE_MAX / sizeof(*old))
		return -ENOMEM;
	t->slots = calloc(cap, sizeof(*t->slots));
	if (!t->slots) {
		t->slots = old;
		return -ENOMEM;
	}
	t->cap = cap;
	t->len = 0;
	for (i = 0; i < old_cap; i++)
		if (old[i].idx1)
			keytab__put(t, old[i].pid, old[i].id, old[i].idx1 - 1);
	free(old);
	return 0;
}

/* Insert an absent key, growing to keep the load factor at most 1/2. */
static int keytab__insert(struct keytab *t, uint32_t pid, uint64_t id, size_t idx)
{
	int err;

	if (idx >= UINT32_MAX - 1)
		return -ENOMEM;
	if ((t->len + 1) * 2 > t->cap) {
		err = keytab__grow(t);
		if (err)
			return err;
	}
	keytab__put(t, pid, id, idx);
	return 0;
}

static void keytab__clear(struct keytab *t)
{
	if (t->cap)
		memset(t->slots, 0, t->cap * sizeof(*t->slots));
	t->len = 0;
}

/* Make room for one more element of an array of `size`-byte elements. */
static int array__reserve(void **arr, size_t *cap, size_t len, size_t size)
{
	size_t ncap;
	void *p;

	if (len < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 64;
	if (ncap > SIZE_MAX / size)
		return -ENOMEM;
	p = realloc(*arr, ncap * size);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static void stackinfo__clear(struct pml_stackinfo *si)
{
	size_t i;

	for (i = 0; i < si->nframes; i++) {
		free(si->frames[i].file);
		free(si->frames[i].function);
	}
	free(si->frames);
	free(si->native);
	memset(si, 0, sizeof(*si));
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int stackinfo__copy(struct pml_stackinfo *dst, const struct pml_stackinfo *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	dst->flags = src->flags;
	if (dup_str(&dst->native, src->native))
		goto out_clear;
	if (src->nframes && src->frames) {
		dst->frames = calloc(src->nframes, sizeof(*dst->frames));
		if (!dst->frames)
			goto out_clear;
		/* nframes tracks what is allocated, for stackinfo__clear */
		for (i = 0; i < src->nframes; i++) {
			dst->nframes = i + 1;
			dst->frames[i].line = src->frames[i].line;
			if (dup_str(&dst->frames[i].file, src->frames[i].file) ||
			    dup_str(&dst->frames[i].function, src->frames[i].function))
				goto out_clear;
		}
	}
	return 0;

out_clear:
	stackinfo__clear(dst);
	return -ENOMEM;
}

struct pml_agg *agg__new(void)
{
	struct pml_agg *a = calloc(1, sizeof(*a));

	if (!a)
		errno = ENOMEM;
	return a;
}

void agg__free(struct pml_agg *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->ninfos; i++) {
		stackinfo__clear(&a->infos[i]->info);
		free(a->infos[i]);
	}
	free(a->infos);
	free(a->infotab.slots);
	free(a->rows);
	free(a->rowtab.slots);
	free(a->pids);
	free(a->pidtab.slots);
	free(a);
}

void agg__begin(struct pml_agg *a, uint64_t now_ns)
{
	a->now_ns = now_ns;
	a->nrows = 0;
	keytab__clear(&a->rowtab);
	a->npids = 0;
	keytab__clear(&a->pidtab);
}

static struct pidtot *agg__pidtot(struct pml_agg *a, uint32_t pid)
{
	size_t idx = keytab__find(&a->pidtab, pid, 0);

	if (idx != NOT_FOUND)
		return &a->pids[idx];
	if (array__reserve((void **)&a->pids, &a->pids_cap, a->npids, sizeof(*a->pids)))
		return NULL;
	if (keytab__insert(&a->pidtab, pid, 0, a->npids))
		return NULL;
	a->pids[a->npids] = (struct pidtot){ .pid = pid };
	return &a->pids[a->npids++];
}

int agg__add(struct pml_agg *a, uint32_t pid, uint64_t stack_id, uint64_t epoch_start_ns,
	     int64_t bytes, int64_t count, uint64_t older_than_ns)
{
	uint64_t age = a->now_ns >= epoch_start_ns ? a->now_ns - epoch_start_ns : 0;
	struct pidtot *pt;
	struct pml_row *r;
	size_t idx;
	int err;

	if (bytes <= 0 || count <= 0)
		return 0;
	if (age < older_than_ns)
		return 0;

	/* The pid entry first: a failure after it leaves only a zero total. */
	pt = agg__pidtot(a, pid);
	if (!pt)
		return -ENOMEM;

	idx = keytab__find(&a->rowtab, pid, stack_id);
	if (idx == NOT_FOUND) {
		err = array__reserve((void **)&a->rows, &a->rows_cap, a->nrows, sizeof(*a->rows));
		if (err)
			return err;
		err = keytab__insert(&a->rowtab, pid, stack_id, a->nrows);
		if (err)
			return err;
		idx = a->nrows++;
		a->rows[idx] = (struct pml_row){
			.pid = pid,
			.stack_id = stack_id,
			.oldest_ns = epoch_start_ns,
		};
	}
	r = &a->rows[idx];
	r->bytes = add_sat(r->bytes, (uint64_t)bytes);
	r->count = add_sat(r->count, (uint64_t)count);
	if (epoch_start_ns < r->oldest_ns)
		r->oldest_ns = epoch_start_ns;
	pt->bytes = add_sat(pt->bytes, (uint64_t)bytes);
	pt->count = add_sat(pt->count, (uint64_t)count);
	return 0;
}

int agg__set_stack(struct pml_agg *a, uint32_t pid, uint64_t stack_id,
		   const struct pml_stackinfo *info)
{
	size_t idx = keytab__find(&a->infotab, pid, stack_id);
	struct pml_stackinfo copy;
	struct info_ent *e;
	int err;

	err = stackinfo__copy(&copy, info);
	if (err)
		return err;
	if (idx != NOT_FOUND) {
		e = a->infos[idx];
		stackinfo__clear(&e->info);
		e->info = copy;
		return 0;
	}

	err = array__reserve((void **)&a->infos, &a->infos_cap, a->ninfos, sizeof(*a->infos));
	if (err)
		goto out_copy;
	e = malloc(sizeof(*e));
	if (!e) {
		err = -ENOMEM;
		goto out_copy;
	}
	err = keytab__insert(&a->infotab, pid, stack_id, a->ninfos);
	if (err)
		goto out_ent;
	e->pid = pid;
	e->stack_id = stack_id;
	e->info = copy;
	a->infos[a->ninfos++] = e;
	return 0;

out_ent:
	free(e);
out_copy:
	stackinfo__clear(&copy);
	return err;
}

static const struct pml_stackinfo *agg__info(const struct pml_agg *a, uint32_t pid,
					     uint64_t stack_id)
{
	size_t idx = keytab__find(&a->infotab, pid, stack_id);

	return idx == NOT_FOUND ? NULL : &a->infos[idx]->info;
}

bool agg__has_stack(const struct pml_agg *a, uint32_t pid, uint64_t stack_id)
{
	return agg__info(a, pid, stack_id) != NULL;
}

void agg__drop_pid(struct pml_agg *a, uint32_t pid)
{
	size_t i, n = 0;

	for (i = 0; i < a->ninfos; i++) {
		struct info_ent *e = a->infos[i];

		if (e->pid == pid) {
			stackinfo__clear(&e->info);
			free(e);
			continue;
		}
		a->infos[n++] = e;
	}
	if (n == a->ninfos)
		return;
	a->ninfos = n;
	/* Fewer keys than before: the table has room, no allocation. */
	keytab__clear(&a->infotab);
	for (i = 0; i < n; i++)
		keytab__put(&a->infotab, a->infos[i]->pid, a->infos[i]->stack_id, i);
}

static int cmp_u64_desc(uint64_t x, uint64_t y)
{
	return x > y ? -1 : x < y ? 1 : 0;
}

static int cmp_key(const struct pml_row *x, const struct pml_row *y)
{
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	if (x->stack_id != y->stack_id)
		return x->stack_id < y->stack_id ? -1 : 1;
	return 0;
}

static int cmp_bytes(const void *px, const void *py)
{
	const struct pml_row *x = px, *y = py;
	int c = cmp_u64_desc(x->bytes, y->bytes);

	if (!c)
		c = cmp_u64_desc(x->count, y->count);
	return c ? c : cmp_key(x, y);
}

static int cmp_count(const void *px, const void *py)
{
	const struct pml_row *x = px, *y = py;
	int c = cmp_u64_desc(x->count, y->count);

	if (!c)
		c = cmp_u64_desc(x->bytes, y->bytes);
	return c ? c : cmp_key(x, y);
}

static void rows__sort(struct pml_row *rows, size_t n, enum pml_sort sort)
{
	if (n > 1)
		qsort(rows, n, sizeof(*rows), sort == PML_SORT_COUNT ? cmp_count : cmp_bytes);
}

size_t agg__rank(struct pml_agg *a, enum pml_sort sort, const struct pml_row **rows)
{
	size_t i;

	/* Sorted in place: the row index is rebuilt, no allocation needed. */
	rows__sort(a->rows, a->nrows, sort);
	keytab__clear(&a->rowtab);
	for (i = 0; i < a->nrows; i++) {
		struct pml_row *r = &a->rows[i];

		keytab__put(&a->rowtab, r->pid, r->stack_id, i);
		r->info = agg__info(a, r->pid, r->stack_id);
	}
	*rows = a->rows;
	return a->nrows;
}

int agg__rank_pid(const struct pml_agg *a, uint32_t pid, enum pml_sort sort, size_t top,
		  struct pml_row **rows, size_t *nrows)
{
	struct pml_row *out;
	size_t i, n = 0;

	*rows = NULL;
	*nrows = 0;
	for (i = 0; i < a->nrows; i++)
		n += a->rows[i].pid == pid;
	if (!n)
		return 0;
	out = malloc(n * sizeof(*out));
	if (!out)
		return -ENOMEM;
	n = 0;
	for (i = 0; i < a->nrows; i++) {
		if (a->rows[i].pid != pid)
			continue;
		out[n] = a->rows[i];
		out[n].info = agg__info(a, pid, out[n].stack_id);
		n++;
	}
	rows__sort(out, n, sort);
	*rows = out;
	*nrows = top && top < n ? top : n;
	return 0;
}

void agg__totals(const struct pml_agg *a, uint32_t pid, uint64_t *bytes, uint64_t *count)
{
	size_t idx = keytab__find(&a->pidtab, pid, 0);

	*bytes = idx == NOT_FOUND ? 0 : a->pids[idx].bytes;
	*count = idx == NOT_FOUND ? 0 : a->pids[idx].count;
}

const char *report__bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	size_t u = 0;
	double d;

	if (!buf || !len)
		return buf;
	if (v < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)v);
		return buf;
	}
	d = (double)v;
	/* Move up a unit where %.1f would round to "1024.0". */
	while (d >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
		d /= 1024;
		u++;
	}
	snprintf(buf, len, "%.1f %s", d, units[u]);
	return buf;
}

size_t report__utf8_seq(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (!len)
		return 0;
	if (s[0] < 0x80)
		return 1;
	/* Unicode Table 3-7: well-formed byte sequences. */
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		if (s[0] == 0xe0)
			lo = 0xa0;	/* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f;	/* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90;	/* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f;	/* above U+10FFFF */
	} else {
		return 0;
	}
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

bool report__stat_is_loss(unsigned int stat)
{
	switch (stat) {
	case STAT_ALLOCS:
	case STAT_FREES:
	case STAT_NESTED:
	case STAT_RAW_ALLOCS:
	case STAT_OBJ_ALLOCS:
		return false;
	default:
		return true;
	}
}

const char *report__stat_hint(unsigned int stat)
{
	switch (stat) {
	case STAT_LIVE_FULL:
		return "raise --max-allocs";
	case STAT_OUTSTANDING_FULL:
	case STAT_STACKS_FULL:
		return "raise --max-stacks";
	case STAT_STACK_TRUNCATED:
		return "raise --max-depth";
	case STAT_UNKNOWN_FREE:
		return "frees of memory allocated before attach (expected)";
	case STAT_MISSED_ENTRY:
		return "probe attached mid-call (expected at start)";
	case STAT_ALLOC_FAILED:
		return "allocator returned NULL (nothing to track)";
	case STAT_REPLACED:
		return "address reused before its free was seen (a free was missed)";
	case STAT_STACK_READ_FAULT:
		return "frame memory unreadable: stack cut there";
	case STAT_NO_GIL:
		return "allocated without the GIL: native caller only";
	case STAT_NO_PYSTATE:
		return "no Python thread state: native caller only";
	default:
		return NULL;
	}
}

/*
 * Print a string that came from the target: control bytes (C0, DEL, C1) and
 * invalid UTF-8 as \xNN so that it cannot drive the terminal; at most max
 * bytes.
 */
static void put_untrusted(FILE *out, const char *s, size_t max)
{
	size_t len, i, n;

	if (!s) {
		fputc('?', out);
		return;
	}
	len = strnlen(s, max);
	for (i = 0; i < len; i += n) {
		unsigned char c = (unsigned char)s[i];

		n = report__utf8_seq(s + i, len - i);
		if (n == 1 && c >= 0x20 && c != 0x7f) {
			fputc(c, out);
		} else if (n > 1 && !(c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)) {
			fwrite(s + i, 1, n, out);
		} else {
			/* invalid byte, C0, DEL, or the first byte of a C1 control */
			fprintf(out, "\\x%02x", c);
			n = 1;
		}
	}
}

static const char *stat_name(const char *const *names, size_t i, char *buf, size_t len)
{
	if (names && names[i])
		return names[i];
	snprintf(buf, len, "stat%zu", i);
	return buf;
}

#define LABEL "  %-13s"

static void report__losses(FILE *out, const struct pml_procinfo *p, const char *const *names)
{
	size_t nstats = p->nstats < PML_STAT_NAMES_MAX ? p->nstats : PML_STAT_NAMES_MAX;
	const char *label = "lost:";
	bool other = false;
	char buf[32];
	size_t i;

	for (i = 0; i < nstats; i++) {
		const char *hint = report__stat_hint(i);

		if (!p->stats[i] || !report__stat_is_loss(i))
			continue;
		fprintf(out, LABEL "%llu %s%s%s\n", label, (unsigned long long)p->stats[i],
			stat_name(names, i, buf, sizeof(buf)), hint ? ": " : "", hint ? hint : "");
		label = "";
	}
	if (p->sym_failures) {
		fprintf(out, LABEL "%llu frames shown as <unknown>: %s\n", label,
			(unsigned long long)p->sym_failures,
			"code object gone before it was read (module code run by an import, "
			"exec'd code)");
		label = "";
	}
	if (*label)
		fprintf(out, LABEL "none\n", label);

	/* Bookkeeping counters: how the events were seen, not losses. */
	for (i = 0; i < nstats; i++) {
		if (i == STAT_ALLOCS || i == STAT_FREES || !p->stats[i] || report__stat_is_loss(i))
			continue;
		if (other)
			fputs(", ", out);
		else
			fprintf(out, LABEL, "layers:");
		fprintf(out, "%llu %s", (unsigned long long)p->stats[i],
			stat_name(names, i, buf, sizeof(buf)));
		other = true;
	}
	if (other)
		fputc('\n', out);
}

static void report__flags(FILE *out, uint32_t flags)
{
	if (flags & PML_STACK_NO_GIL)
		fputs(" [no GIL]", out);
	if (flags & PML_STACK_NO_PYSTATE)
		fputs(" [no Python thread state]", out);
	if (flags & PML_STACK_READ_FAULT)
		fputs(" [read fault]", out);
	if (flags & PML_STACK_TRUNCATED)
		fputs(" [truncated]", out);
}

static void report__row(FILE *out, const struct pml_row *r, size_t rank, uint64_t now_ns)
{
	uint64_t age = now_ns > r->oldest_ns ? now_ns - r->oldest_ns : 0;
	const struct pml_stackinfo *si = r->info;
	char human[32], avg[32];
	size_t i;

	fprintf(out, "  #%-3zu %10s (%llu bytes) in %llu allocations, avg %s, oldest %.1f s", rank,
		report__bytes(r->bytes, human, sizeof(human)), (unsigned long long)r->bytes,
		(unsigned long long)r->count, report__bytes(r->bytes / r->count, avg, sizeof(avg)),
		(double)age / 1e9);
	if (si)
		report__flags(out, si->flags);
	fputc('\n', out);
	if (!si) {
		fprintf(out, "    [unsymbolized stack 0x%016llx]\n",
			(unsigned long long)r->stack_id);
		return;
	}
	for (i = 0; i < si->nframes; i++) {
		const struct pml_pyframe *f = &si->frames[i];

		fputs("    ", out);
		put_untrusted(out, f->file, 4096);
		if (f->line > 0)
			fprintf(out, ":%d in ", f->line);
		else
			fputs(":? in ", out);
		put_untrusted(out, f->function, 4096);
		fputc('\n', out);
	}
	if (si->native) {
		fputs("    [native] ", out);
		put_untrusted(out, si->native, 4096);
		fputc('\n', out);
	}
}

static void report__proc(FILE *out, const struct pml_agg *a, const struct pml_procinfo *p,
			 uint64_t now_ns, double duration_s, size_t top, enum pml_sort sort,
			 const char *const *names)
{
	uint64_t bytes, count, rest_bytes = 0;
	struct pml_row *rows;
	size_t n, i, shown;
	char human[32];

	fprintf(out, "pid %u: ", p->pid);
	put_untrusted(out, p->cmdline, sizeof(p->cmdline));
	fputs(p->exited ? " (exited)\n" : "\n", out);

	fprintf(out, LABEL, "python:");
	if (strnlen(p->python, sizeof(p->python)))
		put_untrusted(out, p->python, sizeof(p->python));
	else
		fputs("unknown version", out);
	if (strnlen(p->build, sizeof(p->build))) {
		fputs(", ", out);
		put_untrusted(out, p->build, sizeof(p->build));
	}
	fputc('\n', out);
	if (strnlen(p->probes, sizeof(p->probes))) {
		fprintf(out, LABEL, "probes:");
		put_untrusted(out, p->probes, sizeof(p->probes));
		fputc('\n', out);
	}
	fprintf(out, LABEL "%s", "coverage:", p->cov.complete ? "complete" : "partial: ");
	if (p->cov.complete && strnlen(p->cov.reason, sizeof(p->cov.reason))) {
		fputs(" (", out);
		put_untrusted(out, p->cov.reason, sizeof(p->cov.reason));
		fputc(')', out);
	} else if (!p->cov.complete) {
		if (strnlen(p->cov.reason, sizeof(p->cov.reason)))
			put_untrusted(out, p->cov.reason, sizeof(p->cov.reason));
		else
			fputs("no reason given", out);
	}
	fputc('\n', out);
	fprintf(out, LABEL "%.1f s\n", "duration:", isfinite(duration_s) ? duration_s : 0.0);

	agg__totals(a, p->pid, &bytes, &count);
	fprintf(out, LABEL "%s (%llu bytes) in %llu allocations\n", "outstanding:",
		report__bytes(bytes, human, sizeof(human)), (unsigned long long)bytes,
		(unsigned long long)count);
	fprintf(out, LABEL "%llu allocs, %llu frees\n", "seen:",
		(unsigned long long)(p->nstats > STAT_ALLOCS ? p->stats[STAT_ALLOCS] : 0),
		(unsigned long long)(p->nstats > STAT_FREES ? p->stats[STAT_FREES] : 0));
	report__losses(out, p, names);
	fputc('\n', out);

	if (agg__rank_pid(a, p->pid, sort, 0, &rows, &n)) {
		fputs("  cannot rank stacks: out of memory\n\n", out);
		return;
	}
	if (!n) {
		fputs("  no outstanding allocations\n\n", out);
		return;
	}
	shown = top && top < n ? top : n;
	for (i = 0; i < shown; i++) {
		report__row(out, &rows[i], i + 1, now_ns);
		fputc('\n', out);
	}
	if (shown < n) {
		for (i = shown; i < n; i++)
			rest_bytes = add_sat(rest_bytes, rows[i].bytes);
		fprintf(out, "  ... %zu more stacks holding %s\n\n", n - shown,
			report__bytes(rest_bytes, human, sizeof(human)));
	}
	free(rows);
}

void report__text(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		  size_t nprocs, uint64_t now_ns, double duration_s, size_t top, enum pml_sort sort,
		  const char *const *stat_names)
{
	size_t i;

	for (i = 0; i < nprocs; i++)
		report__proc(out, a, &procs[i], now_ns, duration_s, top, sort, stat_names);
}
