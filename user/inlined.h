/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Inlined pymalloc in static LTO builds (Debian/Ubuntu /usr/bin/python3.x).
 *
 * There the allocator is devirtualized: a call site loads the function
 * pointer from an allocator struct, compares it with the internal
 * _PyObject_{Malloc,Calloc,Realloc,Free} (static, unnamed) and, when equal,
 * runs an inlined copy of it; otherwise it calls through the pointer with
 * (ctx, args...). Such a "guard site" never enters a probed function. This
 * module finds the guards and, for each, where a uprobe reads the call's
 * arguments and result:
 *
 *   entry (every kind): the guard's je/jne right after the cmp, which the
 *     kernel emulates. Both arms start from its registers; the inlined arm
 *     runs iff ZF is set there. arg[] are read there: they are what the
 *     fallback arm passes as rsi/rdx to the indirect call.
 *   exits (malloc, calloc, realloc): the points where the inlined arm first
 *     meets the fallback's path after the call, where one location holds
 *     the result on both; or, when the fallback tail-calls, the rets of the
 *     enclosing function (rax). An exit without a location only cancels:
 *     a path got there without its result in a register.
 *
 * Pair entry and exit per thread: the exit of site S counts only if the
 * thread's pending entry is from S and sp at the exit equals sp at the
 * entry plus sp_delta (same frame); the first exit hit consumes the entry.
 *
 * The analysis is conservative: a site whose locations cannot be proven is
 * left unhandled with a reason. Pure over code bytes (capstone decodes),
 * bounded, no recursion: fuzzable.
 */
#ifndef PML_INLINED_H
#define PML_INLINED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pml_inl_kind {
	PML_INL_MALLOC,	 /* (ctx, size) */
	PML_INL_CALLOC,	 /* (ctx, nelem, elsize) */
	PML_INL_REALLOC, /* (ctx, ptr, size) */
	PML_INL_FREE,	 /* (ctx, ptr) */
	PML_INL_KINDS,
};

/*
 * x86-64 general purpose registers numbered as the 8-byte slots of the
 * kernel's user-visible struct pt_regs, so BPF can read slot N of the
 * probe context directly.
 */
enum pml_reg {
	PML_REG_NONE = -1,
	PML_REG_R15 = 0,
	PML_REG_R14 = 1,
	PML_REG_R13 = 2,
	PML_REG_R12 = 3,
	PML_REG_RBP = 4,
	PML_REG_RBX = 5,
	PML_REG_R11 = 6,
	PML_REG_R10 = 7,
	PML_REG_R9 = 8,
	PML_REG_R8 = 9,
	PML_REG_RAX = 10,
	PML_REG_RCX = 11,
	PML_REG_RDX = 12,
	PML_REG_RSI = 13,
	PML_REG_RDI = 14,
};

#define PML_PTREGS_EFLAGS 18 /* pt_regs slot of eflags */
#define PML_EFLAGS_ZF	  0x40u

/* One contiguous run of code: .text of a binary, or a fixture slice. */
struct pml_inl_code {
	uint64_t vaddr;
	const uint8_t *bytes;
	size_t len;
};

/* Where the code is; chunks must not overlap. */
struct pml_inl_text {
	const struct pml_inl_code *chunks;
	size_t n;
};

/* Internal allocator function addresses, 0 when unknown. */
struct pml_inl_fns {
	uint64_t addr[PML_INL_KINDS];
};

/* A public entry point whose own guard names an internal function. */
struct pml_inl_public {
	enum pml_inl_kind kind;
	uint64_t addr; /* e.g. PyObject_Malloc, PyMem_Malloc from .dynsym */
};

#define PML_INL_MAX_ARGS  2
#define PML_INL_MAX_EXITS 8

/* Where a value is at a probe. */
enum pml_loc_kind {
	PML_LOC_NONE,  /* nowhere: an exit that only cancels the pending entry */
	PML_LOC_REG,   /* register `reg` */
	PML_LOC_IMM,   /* the constant `off` */
	PML_LOC_STACK, /* the 8 bytes at sp + `off` (user memory) */
};

struct pml_loc {
	enum pml_loc_kind kind;
	enum pml_reg reg;
	int64_t off;
};

struct pml_inl_exit {
	uint64_t join; /* where the inlined arm meets the fallback's result path */
	uint64_t addr; /* probe here: the join, or a later emulated instruction */
	struct pml_loc result;
	int32_t sp_delta; /* sp at addr minus sp at the entry probe, in the same call */
	bool emulated;
	bool is_return; /* a ret of the enclosing function (the fallback tail-calls) */
};

struct pml_inl_site {
	uint64_t guard;	       /* the cmp against the internal function */
	uint64_t probe;	       /* the je/jne after it: entry (and free) probe */
	uint64_t inline_start; /* first instruction of the inlined arm */
	uint64_t fallback;     /* first instruction of the indirect-call arm */
	uint64_t call;	       /* the call/jmp through the pointer, 0 if not found */
	enum pml_inl_kind kind;
	/* at the entry probe; free: {ptr}; malloc: {size}; calloc: {nelem, elsize};
	 * realloc: {ptr, size} */
	struct pml_loc arg[PML_INL_MAX_ARGS];
	/* malloc kinds: a path of the inlined arm reaches one or more of these */
	struct pml_inl_exit exits[PML_INL_MAX_EXITS];
	size_t n_exits;
	bool probe_emulated;
	bool handled;
	char why[96]; /* what was proven, or why the site is unhandled */
};

struct pml_inl_plan {
	struct pml_inl_fns fns;
	struct pml_inl_site *sites; /* sorted by guard address */
	size_t n;
	size_t n_kind[PML_INL_KINDS];
	size_t n_handled[PML_INL_KINDS];
};

/* "malloc", "calloc", "realloc", "free", or "?" */
const char *inlined__kind_name(enum pml_inl_kind kind);

/* "rax", ..., "r15", or "none" */
const char *inlined__reg_name(enum pml_reg reg);

/* How many arguments a kind's entry reads (1 or 2). */
int inlined__nargs(enum pml_inl_kind kind);

/* "rsi", "$0x78", "[sp+0x8]" or "-" into buf; returns buf. */
const char *inlined__loc_format(const struct pml_loc *loc, char *buf, size_t len);

/*
 * Read the internal function of pub->kind from the guard in the public
 * function at pub->addr (the first `cmp $imm, reg` in its first
 * instructions that compares with an address inside the text).
 * Returns 0, -ENOENT when the function has no such guard, -EINVAL.
 */
int inlined__fn_from_public(const struct pml_inl_text *t, const struct pml_inl_public *pub,
			    uint64_t *fn);

/*
 * Fill out->addr[] from the public functions (several per kind allowed;
 * they must agree). A kind with no guarded public function stays 0.
 * Returns 0 when at least one kind was found, -ENOENT when none was,
 * -EINVAL on disagreement (two addresses for a kind, one address for two
 * kinds) or bad arguments.
 */
int inlined__find_fns(const struct pml_inl_text *t, const struct pml_inl_public *pubs, size_t n,
		      struct pml_inl_fns *out);

/*
 * Analyse the guard whose cmp is at `guard`. Never fails on bad code: the
 * site comes back unhandled with a reason. Returns 0, -ENOENT when there
 * is no guard cmp at that address, -EINVAL for bad arguments.
 */
int inlined__analyze(const struct pml_inl_text *t, const struct pml_inl_fns *fns, uint64_t guard,
		     struct pml_inl_site *out);

/*
 * Sweep every chunk for guards of the functions in fns and analyse each.
 * Returns a plan (free with inlined__plan_free) or NULL with errno set.
 */
struct pml_inl_plan *inlined__plan(const struct pml_inl_text *t, const struct pml_inl_fns *fns);

void inlined__plan_free(struct pml_inl_plan *plan); /* NULL-safe */

#endif
