/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Aggregation, ranking and the text report. Pure: fed with the drained
 * contents of the BPF maps (as plain numbers) and with symbolized stacks,
 * it never touches the kernel or the target.
 */
#ifndef PML_REPORT_H
#define PML_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PML_STAT_NAMES_MAX 32

/* One symbolized Python frame. Strings are owned by the aggregator. */
struct pml_pyframe {
	char *file;
	char *function;
	int line; /* 0 when unknown */
};

/* What a stack id means, as symbolized by userspace. */
struct pml_stackinfo {
	char *native;		    /* "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)" or NULL */
	struct pml_pyframe *frames; /* innermost first */
	size_t nframes;
	uint32_t flags; /* PML_STACK_* from bpf/pymemleak.h */
};

/*
 * Rankings. GROWTH needs PML_GROWTH_MIN snapshots; AUTO is a request only
 * (growth when known, bytes before): see agg__effective_sort.
 */
enum pml_sort {
	PML_SORT_BYTES = 0,
	PML_SORT_COUNT,
	PML_SORT_GROWTH,
	PML_SORT_AUTO,
};

/*
 * Growth. Every agg__begin starts a snapshot; per (pid, stack) the
 * aggregator keeps the outstanding bytes of its last PML_SERIES_MAX
 * snapshots in a fixed ring, from the first snapshot in which the stack had
 * a row (a later snapshot without a row for it counts 0 bytes: everything
 * was freed). The growth of a stack is the least-squares slope (bytes/s) of
 * its last PML_GROWTH_WINDOW points, known from PML_GROWTH_MIN points on;
 * the fit is the R^2 of that line (0 for a flat series: nothing to explain).
 * Ranking by growth uses the sustained growth max(slope, 0) * fit, so that
 * a cache that filled and then stayed flat drops out once its ramp has left
 * the window, while a steady leak stays on top.
 */
#define PML_SERIES_MAX	  16
#define PML_GROWTH_WINDOW 8
#define PML_GROWTH_MIN	  3

/* Objects of one type held by a stack (classified by the caller). */
#define PML_TYPE_NAME_MAX 64
#define PML_TYPES_MAX	  32 /* kept per stack; the rest summed as "(other)" */

struct pml_typecount {
	char name[PML_TYPE_NAME_MAX]; /* from the target: need not be NUL-terminated */
	uint64_t bytes;
	uint64_t count;
};

/* One point of a stack's series: t_ns since the aggregator's first snapshot. */
struct pml_point {
	uint64_t t_ns;
	uint64_t bytes;
};

/* One ranked stack of one process. */
struct pml_row {
	uint32_t pid;
	uint64_t stack_id;
	uint64_t bytes; /* outstanding, only allocations older than --older-than */
	uint64_t count;
	uint64_t oldest_ns;		  /* start of the oldest epoch still holding memory */
	const struct pml_stackinfo *info; /* NULL if never symbolized */
	/* Filled by agg__rank and agg__rank_pid (see PML_GROWTH_WINDOW). */
	unsigned int growth_points; /* points fitted; growth unknown below PML_GROWTH_MIN */
	double growth_bps;	    /* slope, bytes/s; 0 when unknown */
	double growth_fit;	    /* R^2 of the fit, 0..1; 0 when unknown */
	double growth_score;	    /* max(growth_bps, 0) * growth_fit: PML_SORT_GROWTH key */
	const struct pml_typecount *types; /* by bytes descending, NULL if none set */
	size_t ntypes;
	bool types_sampled; /* types estimated from a sample of the allocations */
};

/* Coverage verdict of one process. */
struct pml_coverage {
	bool complete;
	char reason[512]; /* why partial (or what complete rests on) */
};

/*
 * What one report says about one traced process. The char arrays need not
 * be NUL-terminated (they are read up to their size) and may hold anything
 * the target put there: writers escape them.
 */
struct pml_procinfo {
	uint32_t pid;
	char cmdline[256];
	char python[16];  /* "3.12.1" */
	char build[64];	  /* "shared libpython (symtab)", ... */
	char probes[512]; /* human description of probes and placement */
	bool exited;
	struct pml_coverage cov;
	uint64_t stats[PML_STAT_NAMES_MAX]; /* summed STAT_* counters (global) */
	size_t nstats;			    /* stats[] used, indexed by STAT_* */
	uint64_t sym_failures;		    /* symbolization failures */
	/* An ended process whose data was freed (--all): its last totals, no stacks. */
	bool frozen;
	uint64_t frozen_bytes, frozen_count;
};

struct pml_agg;

struct pml_agg *agg__new(void);	   /* NULL with errno on failure */
void agg__free(struct pml_agg *a); /* NULL-safe */

/* Start a new snapshot at monotonic time now_ns (drops the previous rows,
 * keeps stack infos, types and series; forgets series that have been empty
 * for PML_SERIES_MAX snapshots). Call once per interval: it is a point of
 * every series. */
void agg__begin(struct pml_agg *a, uint64_t now_ns);

/*
 * Add one drained `outstanding` entry, summed per (pid, stack_id) across
 * epochs. epoch_start_ns is the monotonic start of its epoch; the entry
 * counts only if now_ns - epoch_start_ns >= older_than_ns (--older-than;
 * 0 takes everything). Entries with count <= 0 or bytes <= 0 (a free racing
 * the drain) add nothing. Sums are 64-bit unsigned, saturating.
 * Returns 0 or -ENOMEM.
 */
int agg__add(struct pml_agg *a, uint32_t pid, uint64_t stack_id, uint64_t epoch_start_ns,
	     int64_t bytes, int64_t count, uint64_t older_than_ns);

/* Attach the symbolized meaning of a stack (deep-copied; replaces a previous
 * one). Kept across snapshots until agg__drop_pid. 0 or -ENOMEM. */
int agg__set_stack(struct pml_agg *a, uint32_t pid, uint64_t stack_id,
		   const struct pml_stackinfo *info);
bool agg__has_stack(const struct pml_agg *a, uint32_t pid, uint64_t stack_id);
/* Does the current snapshot hold memory of this stack? */
bool agg__has_row(const struct pml_agg *a, uint32_t pid, uint64_t stack_id);
/*
 * Attach the object types held by a stack: n entries (deep-copied, sorted by
 * bytes descending; beyond PML_TYPES_MAX the smallest are summed into one
 * "(other)" entry), replacing the previous ones; n == 0 clears them. sampled
 * says the figures are estimated from a sample of the live allocations. Kept
 * across snapshots until replaced or agg__drop_pid. 0, -EINVAL (t NULL with
 * n > 0) or -ENOMEM.
 */
int agg__set_types(struct pml_agg *a, uint32_t pid, uint64_t stack_id,
		   const struct pml_typecount *t, size_t n, bool sampled);

/* Forget every stack of pid (exec, exit): infos, types, series. Rows of pid
 * stay in the snapshot, unsymbolized, without growth or types. */
void agg__drop_pid(struct pml_agg *a, uint32_t pid);

/*
 * The ranking to use. A sort the user chose is kept, except that GROWTH
 * (and AUTO) means BYTES until the aggregator has PML_GROWTH_MIN snapshots,
 * since no growth is known before. When the user chose nothing, or asked for
 * AUTO, it is GROWTH from PML_GROWTH_MIN snapshots on, BYTES before. Never
 * returns AUTO.
 */
enum pml_sort agg__effective_sort(const struct pml_agg *a, enum pml_sort requested,
				  bool user_chose);

/*
 * The ranking used for the rows of one pid given the session's sort (any
 * value, resolved as agg__effective_sort(a, sort, true)): GROWTH becomes
 * BYTES for a pid first seen (with rows) fewer than PML_GROWTH_MIN
 * snapshots ago. What agg__rank_pid ranks by; writers name it.
 */
enum pml_sort agg__pid_sort(const struct pml_agg *a, uint32_t pid, enum pml_sort sort);

/*
 * The series of (pid, stack_id), oldest first: its last min(max,
 * available) points, at most PML_SERIES_MAX. Returns the number written.
 */
size_t agg__series(const struct pml_agg *a, uint32_t pid, uint64_t stack_id, struct pml_point *pts,
		   size_t max);

/*
 * Rank the current snapshot: rows sorted by `sort` (resolved as
 * agg__effective_sort(a, sort, true)) descending: bytes or count, ties by
 * the other descending; growth score, ties by bytes then count. Then pid
 * and stack id ascending, so the order is deterministic. Fills the rows'
 * info, growth and types. *rows points into the aggregator; it and the
 * rows' info and types pointers are valid until the next agg__begin,
 * agg__add, agg__set_stack, agg__set_types or agg__drop_pid. Returns the
 * number of rows.
 */
size_t agg__rank(struct pml_agg *a, enum pml_sort sort, const struct pml_row **rows);

/*
 * The ranked rows of one pid, at most `top` of them (0: all), in a fresh
 * array the caller free()s (NULL when there are none), ranked by
 * agg__pid_sort(a, pid, sort). For writers, which only hold a const
 * aggregator. Same validity of info and types pointers as agg__rank.
 * Returns 0 or -ENOMEM.
 */
int agg__rank_pid(const struct pml_agg *a, uint32_t pid, enum pml_sort sort, size_t top,
		  struct pml_row **rows, size_t *nrows);

/* agg__rank_pid for a reported process: none for a frozen one (its pid may
 * already belong to another process). */
int report__rank_proc(const struct pml_agg *a, const struct pml_procinfo *p, enum pml_sort sort,
		      size_t top, struct pml_row **rows, size_t *nrows);

/* Totals of the snapshot for one pid (0, 0 if it has no rows). */
void agg__totals(const struct pml_agg *a, uint32_t pid, uint64_t *bytes, uint64_t *count);

/*
 * One line per process (pid, python, command, build, outstanding, growth,
 * coverage), ordered by growth (sum of its stacks' fitted growth), then
 * outstanding bytes. order (nprocs entries, may be NULL) receives the
 * indexes into procs in that order. Returns 0 or -ENOMEM.
 */
int report__summary(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		    size_t nprocs, size_t *order);

/* Human byte count: "1.5 MiB", "812 B". Returns buf. */
const char *report__bytes(uint64_t v, char *buf, size_t len);

/* Human signed rate: "+1.2 MiB/s", "-512 B/s", "+0 B/s" (rounded to whole
 * bytes; NaN/inf as 0). Returns buf. */
const char *report__rate(double bytes_per_s, char *buf, size_t len);

/* Length (1-4) of the valid UTF-8 sequence at s[0..len), 0 if s starts
 * with an invalid, overlong, surrogate or truncated sequence. For writers
 * that must pass target strings through safely. */
size_t report__utf8_seq(const char *s, size_t len);

/* Whether STAT_* counter `stat` counts lost or unattributed events (as
 * opposed to bookkeeping such as allocs, frees, layers). */
bool report__stat_is_loss(unsigned int stat);

/* What to do about a non-zero STAT_* counter, or NULL when nothing needs to
 * be said. */
const char *report__stat_hint(unsigned int stat);

/*
 * Write the text report: header per process (which ranking it uses among
 * them), then its top `top` rows (0: all), ranked by agg__pid_sort(a, pid,
 * sort), each with its growth and object types. stat_names[i] names STAT_i
 * for i < procs[].nstats (NULL entries, or NULL stat_names, print as
 * "stat<i>"). Strings from the target are printed with control bytes
 * escaped.
 */
void report__text(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		  size_t nprocs, uint64_t now_ns, double duration_s, size_t top, enum pml_sort sort,
		  const char *const *stat_names);

#endif
