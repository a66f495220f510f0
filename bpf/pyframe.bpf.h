/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Walk the calling thread's Python frames, driven only by the offsets in
 * struct pml_pyoffsets (no CPython version numbers here). Every load is a
 * bpf_probe_read_user; a fault ends the walk and is flagged.
 */
#ifndef PYFRAME_BPF_H
#define PYFRAME_BPF_H

/* Frames followed at most, shim frames included. */
#define PY_WALK_BUDGET (PML_MAX_FRAMES + 24)

static __always_inline int py_read_ptr(__u64 addr, __u64 *out)
{
	*out = 0;
	return bpf_probe_read_user(out, sizeof(*out), (void *)addr);
}

/*
 * The current thread state, or 0. The GIL holder is only ours when its
 * thread_id is our pthread_self, which is the fs base on x86-64 glibc;
 * a call without the GIL must not borrow another thread's stack.
 */
static __always_inline __u64 py_tstate(const struct pml_pyoffsets *off, struct pml_stack *st)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 p = off->runtime_addr, thread_id = 0, fsbase;
	__u32 i;

	if (!off->tstate_chain_len || !p)
		return 0;
	for (i = 0; i < PML_TSTATE_CHAIN; i++) {
		if (i >= off->tstate_chain_len)
			break;
		if (py_read_ptr(p + off->tstate_chain[i], &p)) {
			st->flags |= PML_STACK_READ_FAULT;
			return 0;
		}
		if (!p) {
			st->flags |= PML_STACK_NO_PYSTATE;
			return 0;
		}
	}
	if (py_read_ptr(p + off->tstate_thread_id, &thread_id)) {
		st->flags |= PML_STACK_READ_FAULT;
		return 0;
	}
	fsbase = BPF_CORE_READ(task, thread.fsbase);
	if (thread_id != fsbase) {
		st->flags |= PML_STACK_NO_GIL;
		return 0;
	}
	return p;
}

struct py_walk_ctx {
	const struct pml_pyoffsets *off;
	struct pml_stack *st;
	__u64 frame;
	__u32 n;
	__u32 max_depth;
};

/* One frame per call (bpf_loop: the verifier checks the body once). */
static long py_walk_step(__u64 index, void *data)
{
	struct py_walk_ctx *w = data;
	const struct pml_pyoffsets *off = w->off;
	struct pml_stack *st = w->st;
	__u64 code = 0, instr = 0;
	__u32 n = w->n;
	__u8 owner;

	if (!w->frame)
		return 1;
	if (off->frame_owner != PML_NO_FIELD) {
		owner = 0;
		if (bpf_probe_read_user(&owner, sizeof(owner),
					(void *)(w->frame + off->frame_owner))) {
			st->flags |= PML_STACK_READ_FAULT;
			return 1;
		}
		if (owner == off->frame_owner_skip) {
			/* C-stack shim frame: not Python code. */
			if (py_read_ptr(w->frame + off->frame_back, &w->frame)) {
				st->flags |= PML_STACK_READ_FAULT;
				return 1;
			}
			return 0;
		}
	}
	if (n >= w->max_depth || n >= PML_MAX_FRAMES) {
		st->flags |= PML_STACK_TRUNCATED;
		return 1;
	}
	if (py_read_ptr(w->frame + off->frame_code, &code)) {
		st->flags |= PML_STACK_READ_FAULT;
		return 1;
	}
	if (off->frame_instr_size == 4) {
		__u32 lasti = 0;

		bpf_probe_read_user(&lasti, sizeof(lasti), (void *)(w->frame + off->frame_instr));
		instr = lasti;
	} else {
		py_read_ptr(w->frame + off->frame_instr, &instr);
	}
	st->frames[n & (PML_MAX_FRAMES - 1)].code = code;
	st->frames[n & (PML_MAX_FRAMES - 1)].instr = instr;
	w->n = n + 1;
	if (py_read_ptr(w->frame + off->frame_back, &w->frame)) {
		st->flags |= PML_STACK_READ_FAULT;
		return 1;
	}
	return 0;
}

static __always_inline void py_walk(const struct pml_pyoffsets *off, struct pml_stack *st,
				    __u32 max_depth)
{
	struct py_walk_ctx w = { .off = off, .st = st, .max_depth = max_depth };
	__u64 frame;
	__u32 i;
	long loops;

	frame = py_tstate(off, st);
	if (!frame)
		return;
	for (i = 0; i < PML_FRAME_CHAIN; i++) {
		if (i >= off->frame_chain_len)
			break;
		if (py_read_ptr(frame + off->frame_chain[i], &frame)) {
			st->flags |= PML_STACK_READ_FAULT;
			return;
		}
		if (!frame)
			return;
	}
	w.frame = frame;
	loops = bpf_loop(PY_WALK_BUDGET, py_walk_step, &w, 0);
	if (loops == PY_WALK_BUDGET && w.frame)
		st->flags |= PML_STACK_TRUNCATED;
	st->depth = w.n;
}

#endif /* PYFRAME_BPF_H */
