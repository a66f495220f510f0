/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Aggregation of drained `outstanding` entries per (pid, stack), growth,
 * ranking, and the text report. Small open-addressing tables keyed by
 * (pid, id): snapshot rows and per-pid totals (both per snapshot), stack
 * entries (info, types, series; kept across snapshots) and the snapshot in
 * which each pid first had rows.
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
	size_t cap; /* power of two, or 0 */
	size_t len;
};

/* What is kept about a stack across snapshots. */
struct stack_ent {
	uint32_t pid;
	uint64_t stack_id;
	bool has_info;
	bool types_sampled;
	bool has_series;
	struct pml_stackinfo info;
	struct pml_typecount *types;
	size_t ntypes;
	uint64_t first_seq;		/* snapshot of the series' first point */
	uint64_t last_seq;		/* last snapshot in which the stack had a row */
	uint64_t info_seq;		/* snapshot count when the info was set */
	uint64_t bytes[PML_SERIES_MAX]; /* by snapshot % PML_SERIES_MAX */
};

struct pidseen {
	uint32_t pid;
	uint64_t first_seq; /* first snapshot in which the pid had a row */
};

struct pidtot {
	uint32_t pid;
	uint64_t bytes;
	uint64_t count;
};

struct pml_agg {
	uint64_t now_ns;
	uint64_t nsnap;			/* agg__begin calls: the current snapshot is nsnap - 1 */
	uint64_t t0_ns;			/* time of the first snapshot */
	uint64_t times[PML_SERIES_MAX]; /* by snapshot % PML_SERIES_MAX */

	struct pml_row *rows;
	size_t nrows, rows_cap;
	struct keytab rowtab;

	/* Pointers, so that rows' info pointers survive growth of the array. */
	struct stack_ent **ents;
	size_t nents, ents_cap;
	struct keytab enttab;

	struct pidtot *pids;
	size_t npids, pids_cap;
	struct keytab pidtab;

	struct pidseen *seen;
	size_t nseen, seen_cap;
	struct keytab seentab;

	/* Frame file and function names, interned: thousands of stacks share
	 * a few hundred names. Freed with the aggregator. */
	char **strs;
	size_t nstrs, strs_cap;
};

#define KEYTAB_MIN_CAP 64
#define NOT_FOUND      SIZE_MAX

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

static int cmp_u64_desc(uint64_t x, uint64_t y)
{
	return x > y ? -1 : x < y ? 1 : 0;
}

/* Frame strings are interned in the aggregator: only the arrays are owned. */
static void stackinfo__clear(struct pml_stackinfo *si)
{
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

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return h;
}

/* The aggregator's copy of s (one per distinct string), or NULL. */
static char *agg__intern(struct pml_agg *a, const char *s)
{
	size_t i, mask;
	char **nv, *c;

	if (!s)
		return NULL;
	if ((a->nstrs + 1) * 2 > a->strs_cap) {
		size_t cap = a->strs_cap ? a->strs_cap * 2 : 256, j;

		nv = calloc(cap, sizeof(*nv));
		if (!nv)
			return NULL;
		for (j = 0; j < a->strs_cap; j++) {
			if (!a->strs[j])
				continue;
			for (i = str_hash(a->strs[j]) & (cap - 1); nv[i]; i = (i + 1) & (cap - 1))
				;
			nv[i] = a->strs[j];
		}
		free(a->strs);
		a->strs = nv;
		a->strs_cap = cap;
	}
	mask = a->strs_cap - 1;
	for (i = str_hash(s) & mask; a->strs[i]; i = (i + 1) & mask)
		if (!strcmp(a->strs[i], s))
			return a->strs[i];
	c = strdup(s);
	if (!c)
		return NULL;
	a->strs[i] = c;
	a->nstrs++;
	return c;
}

static int stackinfo__copy(struct pml_agg *a, struct pml_stackinfo *dst,
			   const struct pml_stackinfo *src)
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
			dst->frames[i].file = agg__intern(a, src->frames[i].file);
			dst->frames[i].function = agg__intern(a, src->frames[i].function);
			if ((src->frames[i].file && !dst->frames[i].file) ||
			    (src->frames[i].function && !dst->frames[i].function))
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

static void ent__free(struct stack_ent *e)
{
	stackinfo__clear(&e->info);
	free(e->types);
	free(e);
}

void agg__free(struct pml_agg *a)
{
	size_t i;

	if (!a)
		return;
	for (i = 0; i < a->nents; i++)
		ent__free(a->ents[i]);
	free(a->ents);
	free(a->enttab.slots);
	free(a->rows);
	free(a->rowtab.slots);
	free(a->pids);
	free(a->pidtab.slots);
	free(a->seen);
	free(a->seentab.slots);
	for (i = 0; i < a->strs_cap; i++)
		free(a->strs[i]);
	free(a->strs);
	free(a);
}

static uint64_t agg__cur(const struct pml_agg *a)
{
	return a->nsnap - 1;
}

/* Whether e has points within the last PML_SERIES_MAX snapshots. */
static bool ent__series_live(const struct pml_agg *a, const struct stack_ent *e)
{
	return a->nsnap && e->has_series && agg__cur(a) - e->last_seq < PML_SERIES_MAX;
}

/* Keep the entries that still mean something; the index is rebuilt only
 * when one goes (fewer keys: no allocation). */
static void agg__evict(struct pml_agg *a)
{
	size_t i, n = 0;

	for (i = 0; i < a->nents; i++) {
		struct stack_ent *e = a->ents[i];

		if (!ent__series_live(a, e))
			e->has_series = false;
		/* A stack that has held nothing for PML_SERIES_MAX snapshots
		 * goes, its meaning too (BPF interns it anew if it comes back):
		 * churn and start-up cannot grow the tracer without bound. */
		if (e->has_info && !e->has_series && a->nsnap - e->info_seq >= PML_SERIES_MAX &&
		    (!e->last_seq || a->nsnap - e->last_seq > PML_SERIES_MAX))
			e->has_info = false;
		if (!e->has_series && !e->has_info && !e->ntypes) {
			ent__free(e);
			continue;
		}
		a->ents[n++] = e;
	}
	if (n == a->nents)
		return;
	a->nents = n;
	keytab__clear(&a->enttab);
	for (i = 0; i < n; i++)
		keytab__put(&a->enttab, a->ents[i]->pid, a->ents[i]->stack_id, i);
}

void agg__begin(struct pml_agg *a, uint64_t now_ns)
{
	if (!a->nsnap)
		a->t0_ns = now_ns;
	a->now_ns = now_ns;
	a->times[a->nsnap % PML_SERIES_MAX] = now_ns;
	a->nsnap++;
	a->nrows = 0;
	keytab__clear(&a->rowtab);
	a->npids = 0;
	keytab__clear(&a->pidtab);
	agg__evict(a);
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

/* Remember the first snapshot in which pid had a row. */
static int agg__see_pid(struct pml_agg *a, uint32_t pid)
{
	int err;

	if (!a->nsnap || keytab__find(&a->seentab, pid, 0) != NOT_FOUND)
		return 0;
	err = array__reserve((void **)&a->seen, &a->seen_cap, a->nseen, sizeof(*a->seen));
	if (err)
		return err;
	err = keytab__insert(&a->seentab, pid, 0, a->nseen);
	if (err)
		return err;
	a->seen[a->nseen++] = (struct pidseen){ .pid = pid, .first_seq = agg__cur(a) };
	return 0;
}

static struct stack_ent *agg__ent(const struct pml_agg *a, uint32_t pid, uint64_t stack_id)
{
	size_t idx = keytab__find(&a->enttab, pid, stack_id);

	return idx == NOT_FOUND ? NULL : a->ents[idx];
}

/* The entry of (pid, stack_id), created empty if absent; NULL on ENOMEM. */
static struct stack_ent *agg__ent_get(struct pml_agg *a, uint32_t pid, uint64_t stack_id)
{
	struct stack_ent *e = agg__ent(a, pid, stack_id);

	if (e)
		return e;
	if (array__reserve((void **)&a->ents, &a->ents_cap, a->nents, sizeof(*a->ents)))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	if (keytab__insert(&a->enttab, pid, stack_id, a->nents)) {
		free(e);
		return NULL;
	}
	e->pid = pid;
	e->stack_id = stack_id;
	a->ents[a->nents++] = e;
	return e;
}

/* Record the stack's bytes in the current snapshot (called again as the
 * row grows within one snapshot: the last value stands). */
static void ent__record(const struct pml_agg *a, struct stack_ent *e, uint64_t bytes)
{
	uint64_t cur = agg__cur(a), s;

	if (!ent__series_live(a, e)) {
		e->has_series = true;
		e->first_seq = cur;
	} else {
		/* Snapshots without a row: everything had been freed. */
		for (s = e->last_seq + 1; s < cur; s++)
			e->bytes[s % PML_SERIES_MAX] = 0;
	}
	e->last_seq = cur;
	e->bytes[cur % PML_SERIES_MAX] = bytes;
}

int agg__add(struct pml_agg *a, uint32_t pid, uint64_t stack_id, uint64_t epoch_start_ns,
	     int64_t bytes, int64_t count, uint64_t older_than_ns)
{
	uint64_t age = a->now_ns >= epoch_start_ns ? a->now_ns - epoch_start_ns : 0;
	struct stack_ent *e = NULL;
	struct pidtot *pt;
	struct pml_row *r;
	size_t idx;
	int err;

	if (bytes <= 0 || count <= 0)
		return 0;
	if (age < older_than_ns)
		return 0;

	/* Pid and stack entries first: a failure after them leaves only a
	 * zero total, an unused pid mark or an entry without points. */
	pt = agg__pidtot(a, pid);
	if (!pt)
		return -ENOMEM;
	if (a->nsnap) {
		e = agg__ent_get(a, pid, stack_id);
		if (!e)
			return -ENOMEM;
		err = agg__see_pid(a, pid);
		if (err)
			return err;
	}

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
	if (e)
		ent__record(a, e, r->bytes);
	return 0;
}

int agg__set_stack(struct pml_agg *a, uint32_t pid, uint64_t stack_id,
		   const struct pml_stackinfo *info)
{
	struct pml_stackinfo copy;
	struct stack_ent *e;
	int err;

	err = stackinfo__copy(a, &copy, info);
	if (err)
		return err;
	e = agg__ent_get(a, pid, stack_id);
	if (!e) {
		stackinfo__clear(&copy);
		return -ENOMEM;
	}
	stackinfo__clear(&e->info);
	e->info = copy;
	e->has_info = true;
	e->info_seq = a->nsnap;
	return 0;
}

static int cmp_type(const void *px, const void *py)
{
	const struct pml_typecount *x = px, *y = py;
	int c = cmp_u64_desc(x->bytes, y->bytes);

	if (!c)
		c = cmp_u64_desc(x->count, y->count);
	return c ? c : strncmp(x->name, y->name, sizeof(x->name));
}

int agg__set_types(struct pml_agg *a, uint32_t pid, uint64_t stack_id,
		   const struct pml_typecount *t, size_t n, bool sampled)
{
	struct pml_typecount *copy = NULL, *other, *shrunk;
	struct stack_ent *e;
	size_t i;

	if (n && !t)
		return -EINVAL;
	if (n > SIZE_MAX / sizeof(*copy))
		return -ENOMEM;
	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return -ENOMEM;
		memcpy(copy, t, n * sizeof(*copy));
		qsort(copy, n, sizeof(*copy), cmp_type);
		if (n > PML_TYPES_MAX) {
			/* The tail in one entry, last whatever its size. */
			other = &copy[PML_TYPES_MAX - 1];
			for (i = PML_TYPES_MAX; i < n; i++) {
				other->bytes = add_sat(other->bytes, copy[i].bytes);
				other->count = add_sat(other->count, copy[i].count);
			}
			memset(other->name, 0, sizeof(other->name));
			snprintf(other->name, sizeof(other->name), "(other)");
			n = PML_TYPES_MAX;
			/* Shrinking: a failure keeps the larger block. */
			shrunk = realloc(copy, n * sizeof(*copy));
			if (shrunk)
				copy = shrunk;
		}
	}
	e = n ? agg__ent_get(a, pid, stack_id) : agg__ent(a, pid, stack_id);
	if (!e) {
		free(copy);
		return n ? -ENOMEM : 0;
	}
	free(e->types);
	e->types = copy;
	e->ntypes = n;
	e->types_sampled = n && sampled;
	return 0;
}

static const struct pml_stackinfo *agg__info(const struct pml_agg *a, uint32_t pid,
					     uint64_t stack_id)
{
	const struct stack_ent *e = agg__ent(a, pid, stack_id);

	return e && e->has_info ? &e->info : NULL;
}

bool agg__has_stack(const struct pml_agg *a, uint32_t pid, uint64_t stack_id)
{
	return agg__info(a, pid, stack_id) != NULL;
}

bool agg__has_row(const struct pml_agg *a, uint32_t pid, uint64_t stack_id)
{
	return keytab__find(&a->rowtab, pid, stack_id) != NOT_FOUND;
}

void agg__drop_pid(struct pml_agg *a, uint32_t pid)
{
	size_t i, n = 0;

	for (i = 0; i < a->nents; i++) {
		struct stack_ent *e = a->ents[i];

		if (e->pid == pid) {
			ent__free(e);
			continue;
		}
		a->ents[n++] = e;
	}
	if (n != a->nents) {
		a->nents = n;
		/* Fewer keys than before: the table has room, no allocation. */
		keytab__clear(&a->enttab);
		for (i = 0; i < n; i++)
			keytab__put(&a->enttab, a->ents[i]->pid, a->ents[i]->stack_id, i);
	}

	for (i = n = 0; i < a->nseen; i++)
		if (a->seen[i].pid != pid)
			a->seen[n++] = a->seen[i];
	if (n != a->nseen) {
		a->nseen = n;
		keytab__clear(&a->seentab);
		for (i = 0; i < n; i++)
			keytab__put(&a->seentab, a->seen[i].pid, 0, i);
	}
}

/*
 * The snapshots of e's series within its last `window`: returns how many
 * and sets *start to the first one. Snapshots after the last row are 0.
 */
static size_t ent__span(const struct pml_agg *a, const struct stack_ent *e, size_t window,
			uint64_t *start)
{
	uint64_t cur;

	*start = 0;
	if (!e || !ent__series_live(a, e))
		return 0;
	cur = agg__cur(a);
	*start = e->first_seq;
	if (cur - *start + 1 > window)
		*start = cur + 1 - window;
	return (size_t)(cur - *start + 1);
}

static uint64_t ent__bytes_at(const struct stack_ent *e, uint64_t seq)
{
	return seq > e->last_seq ? 0 : e->bytes[seq % PML_SERIES_MAX];
}

/* Seconds from snapshot `from` to snapshot `to` (negative if before). */
static double agg__dt(const struct pml_agg *a, uint64_t to, uint64_t from)
{
	int64_t d = (int64_t)(a->times[to % PML_SERIES_MAX] - a->times[from % PML_SERIES_MAX]);

	return (double)d / 1e9;
}

/* Least-squares line through the window of e's series (centred sums: the
 * byte counts are large, their differences small). */
static void ent__growth(const struct pml_agg *a, const struct stack_ent *e, struct pml_row *r)
{
	double mx = 0, my = 0, sxx = 0, sxy = 0, syy = 0, slope, fit;
	uint64_t start, cur, s;
	size_t n = ent__span(a, e, PML_GROWTH_WINDOW, &start);

	r->growth_points = (unsigned int)n;
	r->growth_bps = 0;
	r->growth_fit = 0;
	r->growth_score = 0;
	if (n < PML_GROWTH_MIN)
		return;
	cur = agg__cur(a);
	for (s = start; s <= cur; s++) {
		mx += agg__dt(a, s, cur);
		my += (double)ent__bytes_at(e, s);
	}
	mx /= (double)n;
	my /= (double)n;
	for (s = start; s <= cur; s++) {
		double dx = agg__dt(a, s, cur) - mx, dy = (double)ent__bytes_at(e, s) - my;

		sxx += dx * dx;
		sxy += dx * dy;
		syy += dy * dy;
	}
	/* All points at one time: no slope. A flat series: nothing to explain. */
	if (!(sxx > 0))
		return;
	slope = sxy / sxx;
	fit = syy > 0 ? sxy / sxx * (sxy / syy) : 0;
	if (!isfinite(slope) || !isfinite(fit))
		return;
	r->growth_bps = slope;
	r->growth_fit = fit < 0 ? 0 : fit > 1 ? 1 : fit;
	r->growth_score = slope > 0 ? slope * r->growth_fit : 0;
}

/* Everything a ranked row shows beyond the snapshot's sums. */
static void agg__fill_row(const struct pml_agg *a, struct pml_row *r)
{
	const struct stack_ent *e = agg__ent(a, r->pid, r->stack_id);

	r->info = e && e->has_info ? &e->info : NULL;
	r->types = e && e->ntypes ? e->types : NULL;
	r->ntypes = e ? e->ntypes : 0;
	r->types_sampled = e && e->types_sampled;
	ent__growth(a, e, r);
}

size_t agg__series(const struct pml_agg *a, uint32_t pid, uint64_t stack_id, struct pml_point *pts,
		   size_t max)
{
	const struct stack_ent *e = agg__ent(a, pid, stack_id);
	uint64_t start, s, t;
	size_t n = ent__span(a, e, PML_SERIES_MAX, &start), i;

	if (!pts)
		return 0;
	if (n > max) {
		start += n - max;
		n = max;
	}
	for (i = 0, s = start; i < n; i++, s++) {
		t = a->times[s % PML_SERIES_MAX];
		pts[i].t_ns = t > a->t0_ns ? t - a->t0_ns : 0;
		pts[i].bytes = ent__bytes_at(e, s);
	}
	return n;
}

/* Snapshots since pid first had a row, the current one included. */
static uint64_t agg__pid_snapshots(const struct pml_agg *a, uint32_t pid)
{
	size_t idx = keytab__find(&a->seentab, pid, 0);

	return idx == NOT_FOUND || !a->nsnap ? 0 : agg__cur(a) - a->seen[idx].first_seq + 1;
}

enum pml_sort agg__effective_sort(const struct pml_agg *a, enum pml_sort requested, bool user_chose)
{
	bool known = a && a->nsnap >= PML_GROWTH_MIN;

	if (!user_chose || requested == PML_SORT_AUTO || requested == PML_SORT_GROWTH)
		return known ? PML_SORT_GROWTH : PML_SORT_BYTES;
	return requested == PML_SORT_COUNT ? PML_SORT_COUNT : PML_SORT_BYTES;
}

enum pml_sort agg__pid_sort(const struct pml_agg *a, uint32_t pid, enum pml_sort sort)
{
	enum pml_sort s = agg__effective_sort(a, sort, true);

	if (s == PML_SORT_GROWTH && agg__pid_snapshots(a, pid) < PML_GROWTH_MIN)
		return PML_SORT_BYTES;
	return s;
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

static int cmp_growth(const void *px, const void *py)
{
	const struct pml_row *x = px, *y = py;

	if (x->growth_score != y->growth_score)
		return x->growth_score > y->growth_score ? -1 : 1;
	return cmp_bytes(px, py);
}

static void rows__sort(struct pml_row *rows, size_t n, enum pml_sort sort)
{
	int (*cmp)(const void *, const void *) = cmp_bytes;

	if (sort == PML_SORT_COUNT)
		cmp = cmp_count;
	else if (sort == PML_SORT_GROWTH)
		cmp = cmp_growth;
	if (n > 1)
		qsort(rows, n, sizeof(*rows), cmp);
}

size_t agg__rank(struct pml_agg *a, enum pml_sort sort, const struct pml_row **rows)
{
	size_t i;

	for (i = 0; i < a->nrows; i++)
		agg__fill_row(a, &a->rows[i]);
	/* Sorted in place: the row index is rebuilt, no allocation needed. */
	rows__sort(a->rows, a->nrows, agg__effective_sort(a, sort, true));
	keytab__clear(&a->rowtab);
	for (i = 0; i < a->nrows; i++)
		keytab__put(&a->rowtab, a->rows[i].pid, a->rows[i].stack_id, i);
	*rows = a->rows;
	return a->nrows;
}

int report__rank_proc(const struct pml_agg *a, const struct pml_procinfo *p, enum pml_sort sort,
		      size_t top, struct pml_row **rows, size_t *nrows)
{
	if (p->frozen) {
		*rows = NULL;
		*nrows = 0;
		return 0;
	}
	return agg__rank_pid(a, p->pid, sort, top, rows, nrows);
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
		agg__fill_row(a, &out[n]);
		n++;
	}
	rows__sort(out, n, agg__pid_sort(a, pid, sort));
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

const char *report__rate(double bytes_per_s, char *buf, size_t len)
{
	double m = fabs(bytes_per_s);
	char human[32];
	uint64_t v;

	if (!buf || !len)
		return buf;
	if (!isfinite(m))
		m = 0;
	/* 1.8e19 is below 2^64: the conversion stays defined */
	v = m >= 1.8e19 ? UINT64_MAX : (uint64_t)(m + 0.5);
	snprintf(buf, len, "%c%s/s", bytes_per_s < 0 && v ? '-' : '+',
		 report__bytes(v, human, sizeof(human)));
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
			lo = 0xa0; /* overlong */
		else if (s[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		if (s[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (s[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
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
	case STAT_INL_ALLOCS:
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
	case STAT_THREADS_FULL:
		return "per-thread state unavailable: allocation not tracked";
	case STAT_STACK_EVENTS_LOST:
		return "new-stack notices dropped: those stacks symbolized late";
	case STAT_MISSED_RETURN:
		return "an allocator call returned unseen: thread state reset";
	case STAT_INL_UNPAIRED:
		return "inlined allocator entries whose result was not seen";
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

#define TYPES_SHOWN 5
#define MIDDLE_DOT  "\xc2\xb7" /* U+00B7 in UTF-8 */

static void report__types(FILE *out, const struct pml_row *r)
{
	char human[32];
	size_t i;

	if (!r->ntypes || !r->types)
		return;
	fputs("    types: ", out);
	for (i = 0; i < r->ntypes && i < TYPES_SHOWN; i++) {
		if (i)
			fputs(" " MIDDLE_DOT " ", out);
		put_untrusted(out, r->types[i].name, sizeof(r->types[i].name));
		fprintf(out, " %s", report__bytes(r->types[i].bytes, human, sizeof(human)));
	}
	if (r->ntypes > TYPES_SHOWN)
		fprintf(out, " " MIDDLE_DOT " %zu more", r->ntypes - TYPES_SHOWN);
	fputs(r->types_sampled ? " (sampled)\n" : "\n", out);
}

static void report__growth(FILE *out, const struct pml_row *r)
{
	char rate[40];

	if (r->growth_points < PML_GROWTH_MIN) {
		fprintf(out, "    growth: n/a (%u snapshot%s, needs %d)\n", r->growth_points,
			r->growth_points == 1 ? "" : "s", PML_GROWTH_MIN);
		return;
	}
	fprintf(out, "    growth: %s (fit %.2f)\n", report__rate(r->growth_bps, rate, sizeof(rate)),
		r->growth_fit);
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
	report__growth(out, r);
	report__types(out, r);
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

/* Growth window of pid: snapshots in it and the time they span. */
static uint64_t agg__pid_window(const struct pml_agg *a, uint32_t pid, double *span_s)
{
	uint64_t n = agg__pid_snapshots(a, pid);

	if (n > PML_GROWTH_WINDOW)
		n = PML_GROWTH_WINDOW;
	*span_s = n ? -agg__dt(a, agg__cur(a) + 1 - n, agg__cur(a)) : 0;
	return n;
}

static void report__ranking(FILE *out, const struct pml_agg *a, uint32_t pid, enum pml_sort sort)
{
	enum pml_sort used = agg__pid_sort(a, pid, sort);
	double span;
	uint64_t n;

	switch (used) {
	case PML_SORT_GROWTH:
		n = agg__pid_window(a, pid, &span);
		fprintf(out, "  ranked by growth over the last %llu intervals (%.1f s)\n",
			(unsigned long long)(n - 1), isfinite(span) ? span : 0.0);
		break;
	case PML_SORT_COUNT:
		fputs("  ranked by allocation count\n", out);
		break;
	default:
		fputs("  ranked by outstanding bytes", out);
		if (sort == PML_SORT_GROWTH || sort == PML_SORT_AUTO)
			fprintf(out, " (growth needs %d snapshots, %llu so far)", PML_GROWTH_MIN,
				(unsigned long long)agg__pid_snapshots(a, pid));
		fputc('\n', out);
		break;
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
	if (p->frozen) {
		bytes = p->frozen_bytes;
		count = p->frozen_count;
	}
	fprintf(out, LABEL "%s (%llu bytes) in %llu allocations\n",
		"outstanding:", report__bytes(bytes, human, sizeof(human)),
		(unsigned long long)bytes, (unsigned long long)count);
	fprintf(out, LABEL "%llu allocs, %llu frees\n",
		"seen:", (unsigned long long)(p->nstats > STAT_ALLOCS ? p->stats[STAT_ALLOCS] : 0),
		(unsigned long long)(p->nstats > STAT_FREES ? p->stats[STAT_FREES] : 0));
	report__losses(out, p, names);

	if (report__rank_proc(a, p, sort, 0, &rows, &n)) {
		fputs("\n  cannot rank stacks: out of memory\n\n", out);
		return;
	}
	if (!n) {
		fputs("\n  no outstanding allocations\n\n", out);
		return;
	}
	report__ranking(out, a, p->pid, sort);
	fputc('\n', out);
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

struct proc_rank {
	size_t idx;
	double growth; /* sum of its stacks' positive fitted growth, bytes/s */
	uint64_t bytes, count;
};

static int cmp_proc_rank(const void *px, const void *py)
{
	const struct proc_rank *x = px, *y = py;

	if (x->growth != y->growth)
		return x->growth > y->growth ? -1 : 1;
	if (x->bytes != y->bytes)
		return x->bytes > y->bytes ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

int report__summary(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		    size_t nprocs, size_t *order)
{
	struct proc_rank *r = calloc(nprocs ? nprocs : 1, sizeof(*r));
	char human[32], rate[32];
	struct pml_row *rows;
	size_t i, j, n;

	if (!r)
		return -ENOMEM;
	for (i = 0; i < nprocs; i++) {
		const struct pml_procinfo *p = &procs[i];

		r[i].idx = i;
		agg__totals(a, p->pid, &r[i].bytes, &r[i].count);
		if (p->frozen) {
			r[i].bytes = p->frozen_bytes;
			r[i].count = p->frozen_count;
		}
		if (report__rank_proc(a, p, PML_SORT_BYTES, 0, &rows, &n))
			continue;
		for (j = 0; j < n; j++)
			if (rows[j].growth_points >= PML_GROWTH_MIN && rows[j].growth_bps > 0)
				r[i].growth += rows[j].growth_bps * rows[j].growth_fit;
		free(rows);
	}
	qsort(r, nprocs, sizeof(*r), cmp_proc_rank);
	fprintf(out, "\n  %-8s %-9s %-44s %-7s %12s %14s  %s\n", "pid", "python", "command",
		"build", "outstanding", "growth", "coverage");
	for (i = 0; i < nprocs; i++) {
		const struct pml_procinfo *p = &procs[r[i].idx];

		fprintf(out, "  %-8u %-9.9s ", p->pid, p->python);
		put_untrusted(out, p->cmdline, 44);
		fprintf(out, "%*s %-7.7s %12s %14s  %s%s\n",
			(int)(44 - (strnlen(p->cmdline, 44) < 44 ? strnlen(p->cmdline, 44) : 44)),
			"", strncmp(p->build, "static", 6) ? "shared" : "static",
			report__bytes(r[i].bytes, human, sizeof(human)),
			report__rate(r[i].growth, rate, sizeof(rate)),
			p->cov.complete ? "complete" : "partial", p->exited ? " (exited)" : "");
		if (order)
			order[i] = r[i].idx;
	}
	fputc('\n', out);
	free(r);
	return 0;
}
