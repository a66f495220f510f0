/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The only user of the BPF skeleton: open, size the maps, load, attach
 * probes from a plan, read and trim the maps.
 */
#ifndef PML_TRACER_H
#define PML_TRACER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pymemleak.h"

/* Probe kinds (bpf/pymemleak.h enum pml_probe_kind) and the inlined-site programs. */
enum pml_prog {
	PROG_MALLOC = PK_MALLOC,
	PROG_CALLOC = PK_CALLOC,
	PROG_REALLOC = PK_REALLOC,
	PROG_FREE = PK_FREE,
	PROG_CTX_MALLOC = PK_CTX_MALLOC,
	PROG_CTX_CALLOC = PK_CTX_CALLOC,
	PROG_CTX_REALLOC = PK_CTX_REALLOC,
	PROG_CTX_FREE = PK_CTX_FREE,
	PROG_ALIGNED = PK_ALIGNED,
	PROG_MEMPTR = PK_MEMPTR,
	PROG_COUNT = PK_COUNT,
	PROG_INL_ENTER, /* inlined allocator site: guard branch (cookie: inl key) */
	PROG_INL_EXIT,	/* inlined allocator site: join with the result */
	PROG__MAX,
};

/* One function probe of a batch. */
struct pml_attach {
	enum pml_prog prog; /* PROG_MALLOC .. PROG_COUNT */
	uint64_t off;	    /* file offset of the site */
	bool ret;	    /* also a return probe there */
	uint32_t layer;	    /* enum pml_layer */
};

struct pml_tracer_opts {
	uint32_t max_allocs;	  /* live allocations tracked */
	uint32_t max_stacks;	  /* distinct stacks */
	uint32_t max_outstanding; /* (stack, epoch) pairs */
	uint32_t max_procs;
	uint32_t max_depth;   /* Python frames per stack */
	uint32_t epoch_shift; /* epoch length = 1 << shift ns */
	bool watch_exec;      /* report every exec on the host (--all) */
};

struct pml_tracer;

/* Open and load. NULL with errno set; *why gets a short reason. */
struct pml_tracer *tracer__open(const struct pml_tracer_opts *o, char *why, size_t whylen);
void tracer__destroy(struct pml_tracer *t); /* NULL-safe; detaches everything */

int tracer__add_proc(struct pml_tracer *t, uint32_t pid, const struct pml_proc *p);
/* Stop tracing pid and drop everything the maps hold for it. */
int tracer__del_proc(struct pml_tracer *t, uint32_t pid);

/*
 * Attach a batch of function probes in one binary, filtered to pid (-1:
 * any process; BPF still filters on `procs`), as two uprobe_multi links:
 * every entry, and every return. The links belong to `owner` (a pid, or 0
 * for shared ones) for tracer__detach(). Returns 0 or -errno.
 */
int tracer__attach_batch(struct pml_tracer *t, int pid, const char *path,
			 const struct pml_attach *probes, size_t n, uint32_t owner);
size_t tracer__nlinks(const struct pml_tracer *t);

/*
 * Attach n probes of an inlined-allocator program (PROG_INL_ENTER or
 * PROG_INL_EXIT) at file offsets offs[] of path with cookies[], as one
 * uprobe_multi link (hundreds of sites cost one syscall, not hundreds of
 * perf events). pid 0: any process. Returns 0 or -errno.
 */
int tracer__attach_multi(struct pml_tracer *t, enum pml_prog prog, int pid, const char *path,
			 const uint64_t *offs, const uint64_t *cookies, size_t n, uint32_t owner);

/* Describe inlined-allocator probe `cookie` to BPF. 0 or -errno. */
int tracer__set_inl(struct pml_tracer *t, uint32_t cookie, const struct pml_inl_cfg *cfg);

/* Destroy every link of owner. */
void tracer__detach(struct pml_tracer *t, uint32_t owner);

/* Call cb for every entry of `outstanding`. Returns 0, -errno, or cb's
 * non-zero value. */
int tracer__drain(struct pml_tracer *t,
		  int (*cb)(const struct pml_outstanding_key *k, const struct pml_outstanding *v,
			    void *ctx),
		  void *ctx);

/*
 * Walk live allocations in batches (at most `max` entries), calling cb for
 * each; cb returning non-zero stops the walk. Returns entries seen or -errno.
 */
long tracer__scan_allocs(struct pml_tracer *t, size_t max,
			 int (*cb)(const struct pml_alloc_key *k, const struct pml_alloc *v,
				   void *ctx),
			 void *ctx);

/* Delete `outstanding` entries of epochs before `before` whose count is 0:
 * nothing can add to a past epoch, so this cannot race the probes.
 * Returns the number deleted. */
size_t tracer__trim(struct pml_tracer *t, uint32_t before);

/*
 * Delete interned stacks for which doomed(pid, stack_id) says so (no
 * memory held and already symbolized: if one recurs, BPF interns it again).
 * Returns the number deleted.
 */
size_t tracer__gc_stacks(struct pml_tracer *t,
			 bool (*doomed)(uint32_t pid, uint64_t stack_id, void *ctx), void *ctx);

/* Entries in the maps now (for -v and the soak benchmark). */
struct pml_occupancy {
	size_t allocs, allocs_max;
	size_t outstanding, outstanding_max;
	size_t stacks, stacks_max;
	size_t procs, procs_max;
};
void tracer__occupancy(struct pml_tracer *t, struct pml_occupancy *o);

int tracer__stack(struct pml_tracer *t, uint32_t pid, uint64_t stack_id, struct pml_stack *out);

/* An fd that polls readable when new stacks were interned. */
int tracer__events_fd(struct pml_tracer *t);

/* Hand every pending event (struct pml_event) to cb. Returns the count or -errno. */
int tracer__events(struct pml_tracer *t, void (*cb)(const struct pml_event *ev, void *ctx),
		   void *ctx);

/* pid's STAT_* counters, summed over CPUs. 0 or -errno. */
int tracer__stats(struct pml_tracer *t, uint32_t pid, uint64_t out[STAT__MAX]);

/* Name of STAT_* i, e.g. "live_map_full". */
const char *tracer__stat_name(unsigned int i);

#endif
