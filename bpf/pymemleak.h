/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ABI shared by bpf/pymemleak.bpf.c and user/: map keys, values, limits and
 * the STAT_* loss counters. Fixed-width fields only, no pointers, explicit
 * padding, so both sides agree on every byte.
 */
#ifndef PYMEMLEAK_H
#define PYMEMLEAK_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Upper bound of Python frames captured per stack (--max-depth caps lower). */
#define PML_MAX_FRAMES 64
/* Upper bound of links followed to reach the current thread state. */
#define PML_TSTATE_CHAIN 3
/* Upper bound of links followed from the thread state to the top frame. */
#define PML_FRAME_CHAIN 2

/*
 * Loss and bookkeeping counters, one slot each in the per-CPU `stats` array.
 * Every event the tracer could not account exactly lands in one of these.
 */
enum pml_stat {
	/* Allocations recorded: userspace sums the layer counters into it; BPF
	 * counts only the --count-only floor's hits here. */
	STAT_ALLOCS = 0,
	STAT_FREES,		/* frees matched to a recorded allocation */
	STAT_ALLOC_FAILED,	/* allocator returned NULL: not counted */
	STAT_LIVE_FULL,		/* `allocs` map full: allocation not tracked */
	STAT_OUTSTANDING_FULL,	/* `outstanding` map full: allocation not tracked */
	STAT_STACKS_FULL,	/* `stacks` map full: attributed to native caller only */
	STAT_MISSED_ENTRY,	/* return probe without its entry */
	STAT_UNKNOWN_FREE,	/* free of an address not allocated while traced */
	STAT_NESTED,		/* inner allocator layer call folded into its outer call */
	STAT_REPLACED,		/* address handed out again before its free was seen */
	STAT_THREADS_FULL,	/* per-thread state unavailable */
	STAT_STACK_TRUNCATED,	/* Python stack deeper than --max-depth */
	STAT_STACK_READ_FAULT,	/* a frame could not be read: stack cut there */
	STAT_NO_GIL,		/* allocation without the GIL: native caller only */
	STAT_NO_PYSTATE,	/* no Python thread state (interpreter not running) */
	STAT_RAW_ALLOCS,	/* allocations seen at the raw/libc layer (outermost) */
	STAT_OBJ_ALLOCS,	/* allocations seen at the object layer (outermost) */
	STAT_STACK_EVENTS_LOST, /* new-stack notice dropped: symbolized later, maybe stale */
	STAT_MISSED_RETURN,	/* return probe never came: per-thread state reset */
	STAT_INL_UNPAIRED,	/* inlined-allocator entry whose exit was not seen */
	STAT_INL_ALLOCS,	/* allocations seen at inlined allocator sites */
	STAT__MAX,
};

/*
 * What a probe of the `entry` program is, from its BPF cookie:
 * kind << 8 | layer. Kinds name the argument convention.
 */
enum pml_probe_kind {
	PK_MALLOC = 0,	    /* f(size) */
	PK_CALLOC = 1,	    /* f(nmemb, size) */
	PK_REALLOC = 2,	    /* f(ptr, size) */
	PK_FREE = 3,	    /* f(ptr) */
	PK_CTX_MALLOC = 4,  /* f(ctx, size): pymalloc internals */
	PK_CTX_CALLOC = 5,  /* f(ctx, nmemb, size) */
	PK_CTX_REALLOC = 6, /* f(ctx, ptr, size) */
	PK_CTX_FREE = 7,    /* f(ctx, ptr) */
	PK_ALIGNED = 8,	    /* f(align, size): aligned_alloc, memalign */
	PK_MEMPTR = 9,	    /* posix_memalign(memptr, align, size) */
	PK_COUNT = 10,	    /* only count (benchmark floor) */
};

/* Which allocator layer a probe sits on (low byte of the cookie). */
enum pml_layer {
	LAYER_OBJ = 0, /* _PyObject_* or PyObject_* / PyMem_* */
	LAYER_RAW = 1, /* PyMem_Raw* or libc */
};

/* pml_stack.flags */
#define PML_STACK_TRUNCATED  (1u << 0) /* deeper than captured */
#define PML_STACK_NO_GIL     (1u << 1) /* thread did not hold the GIL */
#define PML_STACK_READ_FAULT (1u << 2) /* a frame read faulted */
#define PML_STACK_NO_PYSTATE (1u << 3) /* no Python thread state */

/*
 * How to walk the Python frames of one process, filled in by userspace from
 * the per-version table (user/pyoffsets.c) or from _Py_DebugOffsets. The BPF
 * side knows no CPython version numbers: only these offsets.
 */
struct pml_pyoffsets {
	__u64 runtime_addr;		      /* absolute address of _PyRuntime */
	__u32 tstate_chain[PML_TSTATE_CHAIN]; /* runtime -> ... -> tstate, one load each */
	__u32 tstate_chain_len;		      /* 0: Python stacks disabled */
	__u32 tstate_thread_id;		      /* PyThreadState.thread_id */
	__u32 frame_chain[PML_FRAME_CHAIN];   /* tstate -> ... -> innermost frame */
	__u32 frame_chain_len;
	__u32 frame_back;	/* f_back / previous */
	__u32 frame_code;	/* f_code / f_executable */
	__u32 frame_instr;	/* f_lasti / prev_instr / instr_ptr */
	__u32 frame_instr_size; /* 4 (int f_lasti) or 8 (pointer) */
	__u32 frame_owner;	/* owner byte, or PML_NO_FIELD */
	__u32 frame_owner_skip; /* owner value of shim frames to skip */
	__u32 __pad;
};

#define PML_NO_FIELD 0xffffffffu

/* procs: tgid -> what BPF needs to know about a traced process. */
struct pml_proc {
	struct pml_pyoffsets off;
	__u32 flags; /* PML_PROC_* */
	__u32 __pad;
};

#define PML_PROC_PYSTACKS (1u << 0) /* walk Python frames for this process */

/* allocs: one live allocation. */
struct pml_alloc_key {
	__u32 pid;
	__u32 __pad;
	__u64 addr;
};

struct pml_alloc {
	__u64 size;
	__u64 stack_id;
	__u32 epoch;
	__u32 __pad;
};

/*
 * outstanding: memory not yet freed per (pid, stack, allocation epoch).
 * An epoch is a fixed slice of time (1 << epoch_shift ns); keeping the
 * epoch in the key gives exact oldest-age and --older-than without walking
 * live allocations. Entries of past epochs whose count reached zero are
 * deleted by userspace: nothing can add to a past epoch.
 */
struct pml_outstanding_key {
	__u32 pid;
	__u32 epoch;
	__u64 stack_id;
};

struct pml_outstanding {
	__s64 bytes;
	__s64 count;
};

/* One captured Python frame: code object address and raw instruction word. */
struct pml_frame {
	__u64 code;
	__u64 instr;
};

/* stacks: interned stacks, keyed by (pid, stack_id). */
struct pml_stack_key {
	__u32 pid;
	__u32 __pad;
	__u64 stack_id;
};

struct pml_stack {
	__u64 native_ip; /* return address of the outermost allocator call */
	__u32 depth;	 /* frames[] used, innermost first */
	__u32 flags;	 /* PML_STACK_* */
	struct pml_frame frames[PML_MAX_FRAMES];
};

/*
 * inl: what a probe on an inlined allocator site reads (static LTO builds;
 * see user/inlined.h), keyed by the probe's BPF cookie.
 */
enum pml_bloc_kind {
	PML_BLOC_NONE = 0,  /* nowhere: an exit that only cancels */
	PML_BLOC_REG = 1,   /* pt_regs slot `reg` (8 bytes each) */
	PML_BLOC_IMM = 2,   /* the constant `off` */
	PML_BLOC_STACK = 3, /* 8 bytes of user memory at sp + `off` */
};

struct pml_bloc {
	__u32 kind;
	__u32 reg;
	__s64 off;
};

/* Entry kinds match enum pml_inl_kind: malloc, calloc, realloc, free. */
#define PML_INL_EXIT 4

struct pml_inl_cfg {
	__u32 kind;		/* 0-3: entry of that kind; PML_INL_EXIT */
	__u32 site;		/* exit: cookie of its site's entry */
	__s64 sp_delta;		/* exit: sp here minus sp at the entry */
	struct pml_bloc loc[2]; /* entry: arguments; exit: loc[0] = result */
};

/* events ring buffer: what userspace must act on promptly. */
enum pml_event_kind {
	EV_NEW_STACK = 1, /* symbolize (pid, stack_id) while its code objects live */
	EV_EXEC = 2,	  /* pid exec'd: a traced one stopped being traced */
};

struct pml_event {
	__u32 kind;
	__u32 pid;
	__u64 stack_id;
};

#endif /* PYMEMLEAK_H */
