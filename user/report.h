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
	int line;		/* 0 when unknown */
};

/* What a stack id means, as symbolized by userspace. */
struct pml_stackinfo {
	char *native;		/* "libpython3.12.so.1.0+0x1cfdb0 (PyList_New+0x40)" or NULL */
	struct pml_pyframe *frames; /* innermost first */
	size_t nframes;
	uint32_t flags;		/* PML_STACK_* from bpf/pymemleak.h */
};

enum pml_sort {
	PML_SORT_BYTES = 0,
	PML_SORT_COUNT,
};

/* One ranked stack of one process. */
struct pml_row {
	uint32_t pid;
	uint64_t stack_id;
	uint64_t bytes;		/* outstanding, only allocations older than --older-than */
	uint64_t count;
	uint64_t oldest_ns;	/* start of the oldest epoch still holding memory */
	const struct pml_stackinfo *info; /* NULL if never symbolized */
};

/* Coverage verdict of one process. */
struct pml_coverage {
	bool complete;
	char reason[512];	/* why partial (or what complete rests on) */
};

/*
 * What one report says about one traced process. The char arrays need not
 * be NUL-terminated (they are read up to their size) and may hold anything
 * the target put there: writers escape them.
 */
struct pml_procinfo {
	uint32_t pid;
	char cmdline[256];
	char python[16];	/* "3.12.1" */
	char build[64];		/* "shared libpython (symtab)", ... */
	char probes[512];	/* human description of probes and placement */
	bool exited;
	struct pml_coverage cov;
	uint64_t stats[PML_STAT_NAMES_MAX]; /* summed STAT_* counters (global) */
	size_t nstats;		/* stats[] used, indexed by STAT_* */
	uint64_t sym_failures;	/* symbolization failures */
};

struct pml_agg;

struct pml_agg *agg__new(void);		/* NULL with errno on failure */
void agg__free(struct pml_agg *a);	/* NULL-safe */

/* Start a new snapshot at monotonic time now_ns (drops the previous rows,
 * keeps stack infos). */
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
/* Forget every stack of pid (exec, exit). Rows of pid stay in the snapshot,
 * unsymbolized. */
void agg__drop_pid(struct pml_agg *a, uint32_t pid);

/*
 * Rank the current snapshot: rows sorted by `sort` descending (bytes or
 * count), ties by the other descending, then pid and stack id ascending, so
 * the order is deterministic. *rows points into the aggregator; it and the
 * rows' info pointers are valid until the next agg__begin, agg__add,
 * agg__set_stack or agg__drop_pid. Returns the number of rows.
 */
size_t agg__rank(struct pml_agg *a, enum pml_sort sort, const struct pml_row **rows);

/*
 * The ranked rows of one pid, at most `top` of them (0: all), in a fresh
 * array the caller free()s (NULL when there are none). For writers, which
 * only hold a const aggregator. Same validity of info pointers as
 * agg__rank. Returns 0 or -ENOMEM.
 */
int agg__rank_pid(const struct pml_agg *a, uint32_t pid, enum pml_sort sort, size_t top,
		  struct pml_row **rows, size_t *nrows);

/* Totals of the snapshot for one pid (0, 0 if it has no rows). */
void agg__totals(const struct pml_agg *a, uint32_t pid, uint64_t *bytes, uint64_t *count);

/* Human byte count: "1.5 MiB", "812 B". Returns buf. */
const char *report__bytes(uint64_t v, char *buf, size_t len);

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
 * Write the text report: header per process, then its top `top` rows (0:
 * all). stat_names[i] names STAT_i for i < procs[].nstats (NULL entries, or
 * NULL stat_names, print as "stat<i>"). Strings from the target are printed
 * with control bytes escaped.
 */
void report__text(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		  size_t nprocs, uint64_t now_ns, double duration_s, size_t top, enum pml_sort sort,
		  const char *const *stat_names);

#endif
