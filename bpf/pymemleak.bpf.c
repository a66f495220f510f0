// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pymemleak kernel side: uprobes on the allocator layers of a CPython
 * process keep every allocation made while traced in `allocs`, and the
 * bytes and count not yet freed per (pid, epoch, stack) in `outstanding`.
 *
 * One call can cross several probed layers (_PyObject_Malloc -> libc malloc
 * for a large block): the outermost call is recorded, inner ones are folded
 * into it through a per-thread nesting depth (allocations) and the address
 * last freed by the thread (frees).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "pymemleak.h"

#ifndef EEXIST
#define EEXIST 17
#endif
#include "pyframe.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Knobs set by userspace before load. */
const volatile __u32 epoch_shift = 32; /* epoch = ktime >> epoch_shift */
const volatile __u32 max_depth = PML_MAX_FRAMES;
const volatile bool watch_exec = false; /* --all: report every exec */

enum alloc_kind {
	KIND_MALLOC = 0,
	KIND_REALLOC,
	KIND_MEMPTR, /* posix_memalign: result stored through a pointer */
};

/* Per-thread state between an entry probe and its return probe. */
struct thread_state {
	__u64 size;
	__u64 old_addr; /* realloc: block being resized */
	__u64 memptr;	/* posix_memalign: where the result goes */
	__u64 stack_id;
	__u64 last_free; /* last address this thread freed (nested frees) */
	__u64 entry_sp;	 /* stack pointer at the outermost entry */
	/* A pending inlined-allocator site (static LTO builds). */
	__u64 inl_sp;
	__u64 inl_size;
	__u64 inl_old;
	__u64 inl_stack;
	__u32 inl_site; /* cookie of the entry, 0: none */
	__u32 inl_kind;
	struct pml_alloc old; /* realloc: record of old_addr, if tracked */
	__u32 depth;	      /* nesting of probed allocator calls */
	__u32 kind;
	__u32 layer;
	__u32 old_found;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* resized by userspace */
	__type(key, __u32);
	__type(value, struct pml_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 20); /* --max-allocs */
	__type(key, struct pml_alloc_key);
	__type(value, struct pml_alloc);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16); /* --max-stacks x epochs */
	__type(key, struct pml_outstanding_key);
	__type(value, struct pml_outstanding);
} outstanding SEC(".maps");

/* Values are 1 KiB: allocated on use, not preallocated for max_entries. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1 << 16); /* --max-stacks */
	__type(key, struct pml_stack_key);
	__type(value, struct pml_stack);
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} threads SEC(".maps");

/* Loss and bookkeeping counters per traced process; entries are created by
 * userspace with the process, so the probes only look up. */
struct pml_stats {
	__u64 v[STAT__MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024); /* resized with procs */
	__type(key, __u32);
	__type(value, struct pml_stats);
} stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1 << 16);
	__type(key, __u32);
	__type(value, struct pml_inl_cfg);
} inl SEC(".maps");

/* New stacks (symbolized while their code objects live) and execs. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024); /* bursts of new stacks at start-up */
} events SEC(".maps");

/* Scratch space for building a stack: too large for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pml_stack);
} scratch SEC(".maps");

static __always_inline void stat_inc(__u32 tgid, __u32 idx)
{
	struct pml_stats *st = bpf_map_lookup_elem(&stats, &tgid);

	if (st && idx < STAT__MAX)
		st->v[idx] += 1; /* per-CPU value: no atomic needed */
}

static __always_inline struct thread_state *thread_get(bool create)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return bpf_task_storage_get(&threads, task, 0, create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* 64-bit mix (splitmix64 finalizer) for interning stacks. */
static __always_inline __u64 mix64(__u64 h, __u64 v)
{
	h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return h;
}

/*
 * Build the stack of the current call (native caller + Python frames),
 * intern it in `stacks` and return its id. Never fails: a stack that cannot
 * be interned still gets an id (its outstanding memory is kept), and the
 * loss is counted.
 */
static __always_inline __u64 capture_stack(struct pt_regs *ctx, __u32 tgid,
					   const struct pml_proc *proc, bool at_entry)
{
	struct pml_stack_key key = { .pid = tgid };
	struct pml_stack *st;
	__u32 zero = 0;
	__u64 ip = 0, h;
	__u32 i;

	/* At a function entry probe rsp still points at the return address;
	 * an inlined allocator site is inside its caller: name the site. */
	if (at_entry)
		bpf_probe_read_user(&ip, sizeof(ip), (void *)PT_REGS_SP(ctx));
	else
		ip = PT_REGS_IP(ctx);

	st = bpf_map_lookup_elem(&scratch, &zero);
	if (!st)
		return ip;
	st->native_ip = ip;
	st->depth = 0;
	st->flags = 0;
	if (proc->flags & PML_PROC_PYSTACKS)
		py_walk(&proc->off, st, max_depth);

	h = mix64(0x70796d656dULL, ip);
	h = mix64(h, st->flags);
	for (i = 0; i < PML_MAX_FRAMES; i++) {
		if (i >= st->depth)
			break;
		h = mix64(h, st->frames[i].code);
		h = mix64(h, st->frames[i].instr);
	}
	if (h == 0)
		h = 1;
	key.stack_id = h;

	if (st->flags & PML_STACK_TRUNCATED)
		stat_inc(tgid, STAT_STACK_TRUNCATED);
	if (st->flags & PML_STACK_READ_FAULT)
		stat_inc(tgid, STAT_STACK_READ_FAULT);
	if (st->flags & PML_STACK_NO_GIL)
		stat_inc(tgid, STAT_NO_GIL);
	if (st->flags & PML_STACK_NO_PYSTATE)
		stat_inc(tgid, STAT_NO_PYSTATE);

	if (!bpf_map_lookup_elem(&stacks, &key)) {
		long err = bpf_map_update_elem(&stacks, &key, st, BPF_NOEXIST);

		if (!err) {
			struct pml_event ev = {
				.kind = EV_NEW_STACK,
				.pid = tgid,
				.stack_id = h,
			};

			if (bpf_ringbuf_output(&events, &ev, sizeof(ev), 0))
				stat_inc(tgid, STAT_STACK_EVENTS_LOST);
		} else if (err != -EEXIST) {
			stat_inc(tgid, STAT_STACKS_FULL);
		}
	}
	return h;
}

static __always_inline __u32 current_epoch(void)
{
	return (__u32)(bpf_ktime_get_ns() >> epoch_shift);
}

/* Take a recorded allocation out of `outstanding`. */
static __always_inline void account_free(__u32 tgid, const struct pml_alloc *a)
{
	struct pml_outstanding_key okey = {
		.pid = tgid,
		.epoch = a->epoch,
		.stack_id = a->stack_id,
	};
	struct pml_outstanding *o = bpf_map_lookup_elem(&outstanding, &okey);

	if (!o)
		return;
	__sync_fetch_and_add(&o->bytes, -(__s64)a->size);
	__sync_fetch_and_add(&o->count, -1);
}

/* Record a new live allocation and add it to its stack's outstanding sums. */
static __always_inline void record_alloc(__u32 tgid, __u64 addr, __u64 size, __u64 stack_id,
					 __u32 layer, bool outer)
{
	struct pml_alloc_key key = { .pid = tgid, .addr = addr };
	struct pml_alloc val = { .size = size, .stack_id = stack_id, .epoch = current_epoch() };
	struct pml_outstanding_key okey = {
		.pid = tgid,
		.epoch = val.epoch,
		.stack_id = stack_id,
	};
	struct pml_outstanding *o, zero = {};
	struct pml_alloc *prev;

	o = bpf_map_lookup_elem(&outstanding, &okey);
	if (!o) {
		long err = bpf_map_update_elem(&outstanding, &okey, &zero, BPF_NOEXIST);

		if (err && err != -EEXIST) {
			stat_inc(tgid, STAT_OUTSTANDING_FULL);
			return;
		}
		o = bpf_map_lookup_elem(&outstanding, &okey);
		if (!o) {
			stat_inc(tgid, STAT_OUTSTANDING_FULL);
			return;
		}
	}

	if (bpf_map_update_elem(&allocs, &key, &val, BPF_NOEXIST)) {
		/* Either the map is full, or the address is live in our books
		 * because its free was not seen: retire the stale record. */
		prev = bpf_map_lookup_elem(&allocs, &key);
		if (!prev) {
			stat_inc(tgid, STAT_LIVE_FULL);
			return;
		}
		account_free(tgid, prev);
		/* An inlined site's exit sees blocks an inner layer (libc,
		 * the internal allocator) already recorded: same allocation. */
		stat_inc(tgid, outer ? STAT_NESTED : STAT_REPLACED);
		if (bpf_map_update_elem(&allocs, &key, &val, BPF_ANY)) {
			stat_inc(tgid, STAT_LIVE_FULL);
			return;
		}
	}
	__sync_fetch_and_add(&o->bytes, (__s64)size);
	__sync_fetch_and_add(&o->count, 1);
	/* One counter per layer; userspace sums them into STAT_ALLOCS. */
	stat_inc(tgid, outer		    ? STAT_INL_ALLOCS
		       : layer == LAYER_RAW ? STAT_RAW_ALLOCS
					    : STAT_OBJ_ALLOCS);
}

/*
 * Is the thread inside a probed allocator call? A call deeper in the stack
 * than the outermost entry is nested, and so is one at the same depth (a
 * tail call: _PyObject_Malloc jumping to malloc). One above it means the
 * outer call's return probe never came (it returned unseen): reset, never
 * let a stuck depth swallow every later call of the thread.
 */
static __always_inline bool in_call(struct pt_regs *ctx, __u32 tgid, struct thread_state *t)
{
	if (!t->depth)
		return false;
	if (PT_REGS_SP(ctx) <= t->entry_sp)
		return true;
	t->depth = 0;
	stat_inc(tgid, STAT_MISSED_RETURN);
	return false;
}

static __always_inline int alloc_enter(struct pt_regs *ctx, __u64 size, __u64 old, __u64 memptr,
				       __u32 kind, __u32 layer)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct pml_proc *proc;
	struct thread_state *t;

	proc = bpf_map_lookup_elem(&procs, &tgid);
	if (!proc)
		return 0;
	t = thread_get(true);
	if (!t) {
		stat_inc(tgid, STAT_THREADS_FULL);
		return 0;
	}
	if (in_call(ctx, tgid, t)) {
		/* Inner layer of a call already being recorded. */
		if (t->depth < 64)
			t->depth++;
		stat_inc(tgid, STAT_NESTED);
		return 0;
	}
	t->depth = 1;
	t->entry_sp = PT_REGS_SP(ctx);
	t->size = size;
	t->kind = kind;
	t->memptr = memptr;
	t->old_addr = old;
	t->old_found = 0;
	t->layer = layer;

	if (kind == KIND_REALLOC && old) {
		/* Retire the old block now: once realloc frees it, another
		 * thread may be handed the same address before we return. */
		struct pml_alloc_key key = { .pid = tgid, .addr = old };
		struct pml_alloc *a = bpf_map_lookup_elem(&allocs, &key);

		if (a) {
			t->old = *a;
			if (!bpf_map_delete_elem(&allocs, &key))
				t->old_found = 1;
		}
	}
	t->stack_id = capture_stack(ctx, tgid, proc, true);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(alloc_exit, __u64 ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct thread_state *t;
	__u64 addr = ret;

	if (!bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	t = thread_get(false);
	if (!t || !t->depth) {
		stat_inc(tgid, STAT_MISSED_ENTRY);
		return 0;
	}
	if (--t->depth)
		return 0;

	if (t->kind == KIND_MEMPTR) {
		addr = 0;
		if (ret == 0 && t->memptr)
			bpf_probe_read_user(&addr, sizeof(addr), (void *)t->memptr);
	}

	if (t->kind == KIND_REALLOC) {
		if (!addr && t->size) {
			/* Failed: the old block is still the caller's. */
			if (t->old_found) {
				struct pml_alloc_key key = { .pid = tgid, .addr = t->old_addr };

				if (bpf_map_update_elem(&allocs, &key, &t->old, BPF_NOEXIST))
					account_free(tgid, &t->old);
			}
			stat_inc(tgid, STAT_ALLOC_FAILED);
			return 0;
		}
		if (t->old_found) {
			account_free(tgid, &t->old);
			stat_inc(tgid, STAT_FREES);
		} else if (t->old_addr) {
			stat_inc(tgid, STAT_UNKNOWN_FREE);
		}
		if (!addr)
			return 0; /* realloc(p, 0) freed p */
	}

	if (!addr) {
		stat_inc(tgid, STAT_ALLOC_FAILED);
		return 0;
	}
	record_alloc(tgid, addr, t->size, t->stack_id, t->layer, false);
	return 0;
}

static __always_inline bool calloc_overflows(__u64 nmemb, __u64 size)
{
	__u64 limit;

	if (!nmemb)
		return false;
	limit = ~0ULL / nmemb;
	/* Keep clang from folding this into a 128-bit multiply. */
	asm volatile("" : "+r"(limit));
	return size > limit;
}

/* A free in a traced process (the caller checked `procs`). */
static __always_inline int free_common(struct pt_regs *ctx, __u64 addr)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	struct pml_alloc_key key = { .pid = tgid, .addr = addr };
	struct thread_state *t;
	struct pml_alloc *a, copy;

	if (!addr)
		return 0;
	t = thread_get(true);
	if (t && in_call(ctx, tgid, t)) {
		/* A free inside a probed allocator call (pymalloc's realloc
		 * freeing the old block): the outer call accounts for it. */
		stat_inc(tgid, STAT_NESTED);
		return 0;
	}
	a = bpf_map_lookup_elem(&allocs, &key);
	if (a) {
		copy = *a;
		if (!bpf_map_delete_elem(&allocs, &key)) {
			account_free(tgid, &copy);
			stat_inc(tgid, STAT_FREES);
		}
	} else if (t && t->last_free == addr) {
		/* Inner layer of a free already accounted (PyObject_Free ->
		 * PyMem_RawFree -> free). */
		stat_inc(tgid, STAT_NESTED);
	} else {
		stat_inc(tgid, STAT_UNKNOWN_FREE);
	}
	if (t)
		t->last_free = addr;
	return 0;
}

/* A value an inlined site's probe needs: register, constant or stack slot. */
static __always_inline int read_bloc(struct pt_regs *ctx, const struct pml_bloc *l, __u64 *v)
{
	*v = 0;
	switch (l->kind) {
	case PML_BLOC_REG:
		if (l->reg > 20)
			return -1;
		return bpf_probe_read_kernel(v, sizeof(*v), (void *)ctx + l->reg * 8);
	case PML_BLOC_IMM:
		*v = l->off;
		return 0;
	case PML_BLOC_STACK:
		return bpf_probe_read_user(v, sizeof(*v), (void *)(PT_REGS_SP(ctx) + l->off));
	default:
		return -1;
	}
}

/*
 * Entry of an inlined allocator (the je/jne after the guard's cmp): the
 * inlined arm runs iff ZF is set. Frees are accounted here; allocations
 * wait for one of the site's exits.
 */
SEC("uprobe")
int inl_enter(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 key = (__u32)bpf_get_attach_cookie(ctx);
	struct pml_inl_cfg *cfg;
	struct thread_state *t;
	struct pml_proc *proc;
	__u64 a = 0, b = 0;

	proc = bpf_map_lookup_elem(&procs, &tgid);
	if (!proc)
		return 0;
	cfg = bpf_map_lookup_elem(&inl, &key);
	if (!cfg || cfg->kind >= PML_INL_EXIT || !(ctx->flags & 0x40))
		return 0;
	if (read_bloc(ctx, &cfg->loc[0], &a))
		return 0;
	if (cfg->kind == 3) /* free(ptr) */
		return free_common(ctx, a);
	if (cfg->kind != 0 && read_bloc(ctx, &cfg->loc[1], &b))
		return 0;
	t = thread_get(true);
	if (!t) {
		stat_inc(tgid, STAT_THREADS_FULL);
		return 0;
	}
	if (in_call(ctx, tgid, t)) {
		stat_inc(tgid, STAT_NESTED);
		return 0;
	}
	if (t->inl_site)
		stat_inc(tgid, STAT_INL_UNPAIRED);
	t->inl_kind = cfg->kind;
	t->inl_old = 0;
	if (cfg->kind == 0) {
		t->inl_size = a;
	} else if (cfg->kind == 1) {
		if (calloc_overflows(a, b))
			return 0;
		t->inl_size = a * b;
	} else {
		t->inl_old = a;
		t->inl_size = b;
	}
	t->inl_sp = PT_REGS_SP(ctx);
	t->inl_site = key;
	t->inl_stack = capture_stack(ctx, tgid, proc, false);
	return 0;
}

/* Where an inlined allocation's arm meets the fallback with the result. */
SEC("uprobe")
int inl_exit(struct pt_regs *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 key = (__u32)bpf_get_attach_cookie(ctx);
	struct pml_alloc_key akey = { .pid = tgid };
	struct pml_inl_cfg *cfg;
	struct thread_state *t;
	struct pml_alloc *a, copy;
	__u64 res = 0;

	if (!bpf_map_lookup_elem(&procs, &tgid))
		return 0;
	cfg = bpf_map_lookup_elem(&inl, &key);
	if (!cfg || cfg->kind != PML_INL_EXIT)
		return 0;
	t = thread_get(false);
	/* Only the exit of the pending site, in the same frame, counts: the
	 * join is also reached by paths that never entered the site. */
	if (!t || !t->inl_site || t->inl_site != cfg->site ||
	    PT_REGS_SP(ctx) != t->inl_sp + cfg->sp_delta)
		return 0;
	t->inl_site = 0;
	if (cfg->loc[0].kind == PML_BLOC_NONE || read_bloc(ctx, &cfg->loc[0], &res))
		return 0; /* a path that only cancels */
	if (!res) {
		stat_inc(tgid, STAT_ALLOC_FAILED);
		return 0;
	}
	if (t->inl_kind == 2 && t->inl_old && t->inl_old != res) {
		/* Moved: the old block is gone (maybe already freed by the
		 * internal free the inlined realloc calls). */
		akey.addr = t->inl_old;
		a = bpf_map_lookup_elem(&allocs, &akey);
		if (a) {
			copy = *a;
			if (!bpf_map_delete_elem(&allocs, &akey)) {
				account_free(tgid, &copy);
				stat_inc(tgid, STAT_FREES);
			}
		}
	}
	record_alloc(tgid, res, t->inl_size, t->inl_stack, LAYER_OBJ, true);
	return 0;
}

/*
 * An exec replaces the image: a traced process stops being traced at once
 * (its probes may fire in the new image), and userspace hears of it.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sched_process_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pml_event ev = { .kind = EV_EXEC, .pid = tgid };
	bool tracked = !bpf_map_delete_elem(&procs, &tgid);

	if (tracked || watch_exec)
		bpf_ringbuf_output(&events, &ev, sizeof(ev), 0);
	return 0;
}

/*
 * Every function-entry probe, one program: the cookie says which argument
 * convention the probed function has and which layer it is, so a whole
 * binary's probes form one uprobe_multi link (attaching and detaching
 * hundreds of perf-event uprobes costs seconds in the kernel).
 */
SEC("uprobe")
int entry(struct pt_regs *ctx)
{
	__u64 cookie = bpf_get_attach_cookie(ctx);
	__u64 a1 = PT_REGS_PARM1(ctx), a2 = PT_REGS_PARM2(ctx), a3 = PT_REGS_PARM3(ctx);
	__u32 layer = cookie & 0xff;
	__u32 tgid;

	tgid = bpf_get_current_pid_tgid() >> 32;
	switch ((__u32)(cookie >> 8)) {
	case PK_MALLOC:
		return alloc_enter(ctx, a1, 0, 0, KIND_MALLOC, layer);
	case PK_CALLOC:
		/* An overflowing calloc fails; record nothing. */
		if (calloc_overflows(a1, a2))
			return 0;
		return alloc_enter(ctx, a1 * a2, 0, 0, KIND_MALLOC, layer);
	case PK_REALLOC:
		return alloc_enter(ctx, a2, a1, 0, KIND_REALLOC, layer);
	case PK_FREE:
		if (!bpf_map_lookup_elem(&procs, &tgid))
			return 0;
		return free_common(ctx, a1);
	case PK_CTX_MALLOC:
		return alloc_enter(ctx, a2, 0, 0, KIND_MALLOC, layer);
	case PK_CTX_CALLOC:
		if (calloc_overflows(a2, a3))
			return 0;
		return alloc_enter(ctx, a2 * a3, 0, 0, KIND_MALLOC, layer);
	case PK_CTX_REALLOC:
		return alloc_enter(ctx, a3, a2, 0, KIND_REALLOC, layer);
	case PK_CTX_FREE:
		if (!bpf_map_lookup_elem(&procs, &tgid))
			return 0;
		return free_common(ctx, a2);
	case PK_ALIGNED:
		return alloc_enter(ctx, a2, 0, 0, KIND_MALLOC, layer);
	case PK_MEMPTR:
		return alloc_enter(ctx, a3, 0, a1, KIND_MEMPTR, layer);
	case PK_COUNT:
		/* The floor for `make bench`: what a naive tool pays at least. */
		if (bpf_map_lookup_elem(&procs, &tgid))
			stat_inc(tgid, STAT_ALLOCS);
		return 0;
	default:
		return 0;
	}
}
