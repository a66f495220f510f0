/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Guard sites of the inlined pymalloc allocator. A linear capstone sweep
 * finds the cmps against the internal functions; each site is then proven
 * from its fallback arm, which calls the allocator through the compared
 * pointer with the values the inlined arm works with:
 *   - arguments: simulate the fallback from the guard's branch to the
 *     indirect call (register moves, constants, stack spills); rsi/rdx at
 *     the call must be a register, a constant or a stack slot of the entry.
 *   - result: from after the call, the region where some register or stack
 *     slot still holds rax (non-NULL side of its test only); a bounded
 *     search from the inlined arm, walled at the guard and the call, finds
 *     where that arm first enters the region: the joins. At a join the
 *     result is the one candidate location that is live (read before
 *     written on some path); none live means the join only cancels.
 *   - a fallback that tail-calls hands the result to the caller: the exits
 *     are the rets the inlined arm reaches.
 * Anything outside these shapes leaves the site unhandled.
 */
#include "inlined.h"
#include "probesite.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define X86_MAX_INSN_LEN 15

/* Fallback arm from the guard's branch to the indirect call. */
#define FALLBACK_MAX_INSNS 32
/* Region after the call where the result lives (addresses; joined is a u64 mask). */
#define TAIL_MAX_INSNS 48
/* Search from the inlined arm. */
#define REACH_MAX_INSNS 4096
/* Liveness search from a join. */
#define LIVE_MAX_INSNS 2048
/* Straight-line look-ahead when moving an exit to an emulated instruction. */
#define RELOCATE_MAX_INSNS 12
/* Instructions read in a public function for its guard. */
#define PUBLIC_MAX_INSNS 32
/* Stack slots tracked in the fallback and in the result region. */
#define SLOTS 8

/* Register families: pml_reg values 0..14, then rsp. */
#define FAM_RSP	  15
#define FAM_COUNT 16
/* Location masks: a bit per register family, then a bit per stack slot. */
#define LOC_SLOT(i) (1u << (FAM_COUNT + (i)))
#define LOC_REGS    0xffffu

#define CALLER_SAVED                                                                     \
	(1u << PML_REG_RAX | 1u << PML_REG_RCX | 1u << PML_REG_RDX | 1u << PML_REG_RSI | \
	 1u << PML_REG_RDI | 1u << PML_REG_R8 | 1u << PML_REG_R9 | 1u << PML_REG_R10 |   \
	 1u << PML_REG_R11)
#define ARG_REGS                                                                         \
	(1u << PML_REG_RDI | 1u << PML_REG_RSI | 1u << PML_REG_RDX | 1u << PML_REG_RCX | \
	 1u << PML_REG_R8 | 1u << PML_REG_R9)

/* ---- registers ---------------------------------------------------------- */

struct reg_alias {
	x86_reg reg;
	uint8_t fam;
	uint8_t bits;
};

static const struct reg_alias reg_aliases[] = {
	{ X86_REG_RAX, PML_REG_RAX, 64 },  { X86_REG_EAX, PML_REG_RAX, 32 },
	{ X86_REG_AX, PML_REG_RAX, 16 },   { X86_REG_AL, PML_REG_RAX, 8 },
	{ X86_REG_AH, PML_REG_RAX, 8 },	   { X86_REG_RBX, PML_REG_RBX, 64 },
	{ X86_REG_EBX, PML_REG_RBX, 32 },  { X86_REG_BX, PML_REG_RBX, 16 },
	{ X86_REG_BL, PML_REG_RBX, 8 },	   { X86_REG_BH, PML_REG_RBX, 8 },
	{ X86_REG_RCX, PML_REG_RCX, 64 },  { X86_REG_ECX, PML_REG_RCX, 32 },
	{ X86_REG_CX, PML_REG_RCX, 16 },   { X86_REG_CL, PML_REG_RCX, 8 },
	{ X86_REG_CH, PML_REG_RCX, 8 },	   { X86_REG_RDX, PML_REG_RDX, 64 },
	{ X86_REG_EDX, PML_REG_RDX, 32 },  { X86_REG_DX, PML_REG_RDX, 16 },
	{ X86_REG_DL, PML_REG_RDX, 8 },	   { X86_REG_DH, PML_REG_RDX, 8 },
	{ X86_REG_RSI, PML_REG_RSI, 64 },  { X86_REG_ESI, PML_REG_RSI, 32 },
	{ X86_REG_SI, PML_REG_RSI, 16 },   { X86_REG_SIL, PML_REG_RSI, 8 },
	{ X86_REG_RDI, PML_REG_RDI, 64 },  { X86_REG_EDI, PML_REG_RDI, 32 },
	{ X86_REG_DI, PML_REG_RDI, 16 },   { X86_REG_DIL, PML_REG_RDI, 8 },
	{ X86_REG_RBP, PML_REG_RBP, 64 },  { X86_REG_EBP, PML_REG_RBP, 32 },
	{ X86_REG_BP, PML_REG_RBP, 16 },   { X86_REG_BPL, PML_REG_RBP, 8 },
	{ X86_REG_RSP, FAM_RSP, 64 },	   { X86_REG_ESP, FAM_RSP, 32 },
	{ X86_REG_SP, FAM_RSP, 16 },	   { X86_REG_SPL, FAM_RSP, 8 },
	{ X86_REG_R8, PML_REG_R8, 64 },	   { X86_REG_R8D, PML_REG_R8, 32 },
	{ X86_REG_R8W, PML_REG_R8, 16 },   { X86_REG_R8B, PML_REG_R8, 8 },
	{ X86_REG_R9, PML_REG_R9, 64 },	   { X86_REG_R9D, PML_REG_R9, 32 },
	{ X86_REG_R9W, PML_REG_R9, 16 },   { X86_REG_R9B, PML_REG_R9, 8 },
	{ X86_REG_R10, PML_REG_R10, 64 },  { X86_REG_R10D, PML_REG_R10, 32 },
	{ X86_REG_R10W, PML_REG_R10, 16 }, { X86_REG_R10B, PML_REG_R10, 8 },
	{ X86_REG_R11, PML_REG_R11, 64 },  { X86_REG_R11D, PML_REG_R11, 32 },
	{ X86_REG_R11W, PML_REG_R11, 16 }, { X86_REG_R11B, PML_REG_R11, 8 },
	{ X86_REG_R12, PML_REG_R12, 64 },  { X86_REG_R12D, PML_REG_R12, 32 },
	{ X86_REG_R12W, PML_REG_R12, 16 }, { X86_REG_R12B, PML_REG_R12, 8 },
	{ X86_REG_R13, PML_REG_R13, 64 },  { X86_REG_R13D, PML_REG_R13, 32 },
	{ X86_REG_R13W, PML_REG_R13, 16 }, { X86_REG_R13B, PML_REG_R13, 8 },
	{ X86_REG_R14, PML_REG_R14, 64 },  { X86_REG_R14D, PML_REG_R14, 32 },
	{ X86_REG_R14W, PML_REG_R14, 16 }, { X86_REG_R14B, PML_REG_R14, 8 },
	{ X86_REG_R15, PML_REG_R15, 64 },  { X86_REG_R15D, PML_REG_R15, 32 },
	{ X86_REG_R15W, PML_REG_R15, 16 }, { X86_REG_R15B, PML_REG_R15, 8 },
};

static const struct reg_alias *reg_alias(unsigned int reg)
{
	size_t i;

	for (i = 0; i < sizeof(reg_aliases) / sizeof(reg_aliases[0]); i++) {
		if (reg_aliases[i].reg == reg)
			return &reg_aliases[i];
	}
	return NULL;
}

/* Family of a GPR alias, or -1 for anything else. */
static int reg_fam(unsigned int reg)
{
	const struct reg_alias *a = reg_alias(reg);

	return a ? a->fam : -1;
}

/* Width of a GPR alias in bits, 0 for anything else. */
static int reg_bits(unsigned int reg)
{
	const struct reg_alias *a = reg_alias(reg);

	return a ? a->bits : 0;
}

/* Family of a full 64-bit GPR, or -1. */
static int reg_fam64(unsigned int reg)
{
	const struct reg_alias *a = reg_alias(reg);

	return a && a->bits == 64 ? a->fam : -1;
}

static const char *const reg_names[] = {
	"r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10",
	"r9",  "r8",  "rax", "rcx", "rdx", "rsi", "rdi",
};

const char *inlined__reg_name(enum pml_reg reg)
{
	if ((int)reg < 0 || (size_t)reg >= sizeof(reg_names) / sizeof(reg_names[0]))
		return "none";
	return reg_names[reg];
}

const char *inlined__kind_name(enum pml_inl_kind kind)
{
	switch (kind) {
	case PML_INL_MALLOC:
		return "malloc";
	case PML_INL_CALLOC:
		return "calloc";
	case PML_INL_REALLOC:
		return "realloc";
	case PML_INL_FREE:
		return "free";
	default:
		return "?";
	}
}

int inlined__nargs(enum pml_inl_kind kind)
{
	return kind == PML_INL_CALLOC || kind == PML_INL_REALLOC ? 2 : 1;
}

const char *inlined__loc_format(const struct pml_loc *loc, char *buf, size_t len)
{
	if (!buf || !len)
		return "";
	if (!loc) {
		snprintf(buf, len, "-");
		return buf;
	}
	switch (loc->kind) {
	case PML_LOC_REG:
		snprintf(buf, len, "%s", inlined__reg_name(loc->reg));
		break;
	case PML_LOC_IMM:
		snprintf(buf, len, "$%#llx", (unsigned long long)loc->off);
		break;
	case PML_LOC_STACK:
		snprintf(buf, len, "[sp%s%#llx]", loc->off < 0 ? "-" : "+",
			 (unsigned long long)(loc->off < 0 ? -loc->off : loc->off));
		break;
	default:
		snprintf(buf, len, "-");
		break;
	}
	return buf;
}

/* ---- decoding ---------------------------------------------------------- */

struct dec {
	csh cs;
	cs_insn *insn;
	const struct pml_inl_text *t;
	const struct pml_inl_fns *fns; /* jumps to these are tail calls out of a site */
};

static int dec_open(struct dec *d, const struct pml_inl_text *t, const struct pml_inl_fns *fns)
{
	memset(d, 0, sizeof(*d));
	d->t = t;
	d->fns = fns;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &d->cs) != CS_ERR_OK)
		return -ENOTSUP;
	if (cs_option(d->cs, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK)
		goto out_close;
	d->insn = cs_malloc(d->cs);
	if (!d->insn)
		goto out_close;
	return 0;

out_close:
	cs_close(&d->cs);
	return -ENOMEM;
}

static void dec_close(struct dec *d)
{
	if (d->insn)
		cs_free(d->insn, 1);
	d->insn = NULL;
	cs_close(&d->cs);
}

static bool text_valid(const struct pml_inl_text *t)
{
	size_t i;

	if (!t || (t->n && !t->chunks))
		return false;
	for (i = 0; i < t->n; i++) {
		const struct pml_inl_code *c = &t->chunks[i];

		if ((c->len && !c->bytes) || c->vaddr + c->len < c->vaddr)
			return false;
	}
	return true;
}

/* Bytes from vaddr to the end of its chunk, or NULL. */
static const uint8_t *text_at(const struct pml_inl_text *t, uint64_t vaddr, size_t *left)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		const struct pml_inl_code *c = &t->chunks[i];

		if (vaddr >= c->vaddr && vaddr - c->vaddr < c->len) {
			*left = c->len - (size_t)(vaddr - c->vaddr);
			return c->bytes + (vaddr - c->vaddr);
		}
	}
	return NULL;
}

static bool text_has(const struct pml_inl_text *t, uint64_t vaddr)
{
	size_t left;

	return text_at(t, vaddr, &left) != NULL;
}

/* Decode the instruction at vaddr into d->insn. */
static bool dec_at(struct dec *d, uint64_t vaddr)
{
	const uint8_t *p;
	size_t left;
	uint64_t pc = vaddr;

	p = text_at(d->t, vaddr, &left);
	if (!p)
		return false;
	if (left > X86_MAX_INSN_LEN)
		left = X86_MAX_INSN_LEN;
	return cs_disasm_iter(d->cs, &p, &left, &pc, d->insn);
}

static uint64_t insn_next(const cs_insn *insn)
{
	return insn->address + insn->size;
}

static const cs_x86_op *insn_op(const cs_insn *insn, unsigned int i)
{
	const cs_x86 *x = &insn->detail->x86;

	if (i >= x->op_count || i >= sizeof(x->operands) / sizeof(x->operands[0]))
		return NULL;
	return &x->operands[i];
}

static bool insn_in_group(const cs_insn *insn, uint8_t group)
{
	const cs_detail *d = insn->detail;
	uint8_t i;

	for (i = 0; i < d->groups_count && i < sizeof(d->groups); i++) {
		if (d->groups[i] == group)
			return true;
	}
	return false;
}

/* A direct branch or call: its target, else false. */
static bool insn_direct_target(const cs_insn *insn, uint64_t *target)
{
	const cs_x86_op *op = insn_op(insn, 0);

	if (insn->detail->x86.op_count != 1 || !op || op->type != X86_OP_IMM)
		return false;
	*target = (uint64_t)op->imm;
	return true;
}

static bool insn_is_jcc(const cs_insn *insn)
{
	return insn_in_group(insn, CS_GRP_JUMP) && insn->id != X86_INS_JMP;
}

static bool insn_is_ret(const cs_insn *insn)
{
	return insn_in_group(insn, CS_GRP_RET) || insn_in_group(insn, CS_GRP_IRET);
}

/* Execution does not continue at the next instruction by itself. */
static bool insn_stops(const cs_insn *insn)
{
	switch (insn->id) {
	case X86_INS_UD0:
	case X86_INS_UD2:
	case X86_INS_UD2B:
	case X86_INS_HLT:
	case X86_INS_INT3:
	case X86_INS_JMP:
		return true;
	default:
		return insn_is_ret(insn);
	}
}

/* Leaves the instruction other than by falling through. */
static bool insn_is_control(const cs_insn *insn)
{
	return insn_in_group(insn, CS_GRP_JUMP) || insn_in_group(insn, CS_GRP_CALL) ||
	       insn_in_group(insn, CS_GRP_INT) || insn_stops(insn);
}

/* Direct successors; *indirect for a jump through a register or memory. */
static int insn_succ(const cs_insn *insn, uint64_t succ[2], bool *indirect)
{
	int ns = 0;

	if (insn->id == X86_INS_JMP) {
		if (insn_direct_target(insn, &succ[ns]))
			ns++;
		else
			*indirect = true;
	} else if (insn_is_jcc(insn)) {
		if (insn_direct_target(insn, &succ[ns]))
			ns++;
		succ[ns++] = insn_next(insn);
	} else if (!insn_stops(insn)) {
		succ[ns++] = insn_next(insn); /* calls are assumed to return */
	}
	return ns;
}

/* Conservative, as in probesite.c: a memory operand 0 is a write unless known read-only. */
static bool insn_may_write_memory(const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	bool reads_op0 = false;
	uint8_t i;

	switch (insn->id) {
	case X86_INS_LEA:
	case X86_INS_NOP:
		return false;
	case X86_INS_CMP:
	case X86_INS_TEST:
	case X86_INS_BT:
		reads_op0 = true;
		break;
	default:
		break;
	}
	for (i = 0; i < x->op_count && i < sizeof(x->operands) / sizeof(x->operands[0]); i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type != X86_OP_MEM)
			continue;
		if (op->access == CS_AC_INVALID || (op->access & CS_AC_WRITE))
			return true;
		if (i == 0 && !reads_op0)
			return true;
	}
	return false;
}

/* Register effects of one instruction, as a bit per family. */
struct effects {
	uint32_t rd;
	uint32_t wr;	  /* fully written: 64-bit, or 32-bit (zero-extends) */
	uint32_t partial; /* 8/16-bit writes: the rest of the register survives */
	bool flags;	  /* writes eflags */
};

static bool insn_effects(struct dec *d, const cs_insn *insn, struct effects *e)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);
	cs_regs r, w;
	uint8_t nr = 0, nw = 0, i;

	memset(e, 0, sizeof(*e));
	if (insn->id == X86_INS_NOP)
		return true; /* nop [rax + ...] touches nothing */
	if (cs_regs_access(d->cs, insn, r, &nr, w, &nw) != CS_ERR_OK)
		return false;
	for (i = 0; i < nw && i < sizeof(w) / sizeof(w[0]); i++) {
		int fam = reg_fam(w[i]), bits = reg_bits(w[i]);

		if (w[i] == X86_REG_EFLAGS)
			e->flags = true;
		if (fam < 0)
			continue;
		if (bits >= 32)
			e->wr |= 1u << fam;
		else
			e->partial |= 1u << fam;
	}
	for (i = 0; i < nr && i < sizeof(r) / sizeof(r[0]); i++) {
		int fam = reg_fam(r[i]);

		if (fam >= 0)
			e->rd |= 1u << fam;
	}
	/* xor r, r and sub r, r only write */
	if ((insn->id == X86_INS_XOR || insn->id == X86_INS_SUB) && a && b &&
	    a->type == X86_OP_REG && b->type == X86_OP_REG && a->reg == b->reg)
		e->rd &= ~e->wr;
	return true;
}

/* `mov reg64, reg64`: the families of both. */
static bool insn_mov_rr(const cs_insn *insn, int *dst, int *src)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);

	if (insn->id != X86_INS_MOV || !a || !b || a->type != X86_OP_REG || b->type != X86_OP_REG)
		return false;
	*dst = reg_fam64(a->reg);
	*src = reg_fam64(b->reg);
	return *dst >= 0 && *src >= 0;
}

/* An [rsp + disp] operand without index or segment. */
static bool op_rsp_mem(const cs_x86_op *op, int64_t *disp)
{
	if (!op || op->type != X86_OP_MEM || op->mem.base != X86_REG_RSP ||
	    op->mem.index != X86_REG_INVALID || op->mem.segment != X86_REG_INVALID)
		return false;
	*disp = op->mem.disp;
	return true;
}

/* `mov [rsp + disp], reg64`: the slot and the register family. */
static bool insn_spill(const cs_insn *insn, int64_t *disp, int *src)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);

	if (insn->id != X86_INS_MOV || !op_rsp_mem(a, disp) || a->size != 8 || !b ||
	    b->type != X86_OP_REG)
		return false;
	*src = reg_fam64(b->reg);
	return *src >= 0 && *src != FAM_RSP;
}

/* `mov reg64, [rsp + disp]`: the register family and the slot. */
static bool insn_reload(const cs_insn *insn, int *dst, int64_t *disp)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);

	if (insn->id != X86_INS_MOV || !a || a->type != X86_OP_REG || !op_rsp_mem(b, disp) ||
	    b->size != 8)
		return false;
	*dst = reg_fam64(a->reg);
	return *dst >= 0 && *dst != FAM_RSP;
}

/* A table of stack slots, offsets from sp at the entry probe. */
struct slots {
	int64_t off[SLOTS];
	int n;
};

static int slots_find(const struct slots *s, int64_t off)
{
	int i;

	for (i = 0; i < s->n; i++) {
		if (s->off[i] == off)
			return i;
	}
	return -1;
}

static int slots_add(struct slots *s, int64_t off)
{
	int i = slots_find(s, off);

	if (i >= 0 || s->n == SLOTS)
		return i;
	s->off[s->n] = off;
	return s->n++;
}

/*
 * How an instruction touches the tracked slots (sp unchanged since the
 * entry): an exact 8-byte access by its access flags, any overlap as both
 * a read and a write. Memory through other bases never aliases spill slots.
 */
static void insn_slot_effects(const cs_insn *insn, const struct slots *s, uint32_t *rd,
			      uint32_t *wr)
{
	const cs_x86 *x = &insn->detail->x86;
	uint8_t i;
	int k;

	*rd = 0;
	*wr = 0;
	if (insn->id == X86_INS_NOP || insn->id == X86_INS_LEA)
		return;
	for (i = 0; i < x->op_count && i < sizeof(x->operands) / sizeof(x->operands[0]); i++) {
		const cs_x86_op *op = &x->operands[i];
		int64_t disp;

		if (!op_rsp_mem(op, &disp))
			continue;
		for (k = 0; k < s->n; k++) {
			if (disp + op->size <= s->off[k] || disp >= s->off[k] + 8)
				continue;
			if (disp != s->off[k] || op->size != 8 || op->access == CS_AC_INVALID) {
				*rd |= LOC_SLOT(k);
				*wr |= LOC_SLOT(k);
				continue;
			}
			if (op->access & CS_AC_READ)
				*rd |= LOC_SLOT(k);
			if (op->access & CS_AC_WRITE)
				*wr |= LOC_SLOT(k);
		}
	}
}

/* ---- guards ------------------------------------------------------------ */

static int fn_kind(const struct pml_inl_fns *fns, uint64_t addr)
{
	int k;

	if (!addr)
		return -1;
	for (k = 0; k < PML_INL_KINDS; k++) {
		if (fns->addr[k] == addr)
			return k;
	}
	return -1;
}

/* `lea reg64, [rip + disp]`: the register family and the address. */
static bool insn_lea_rip(const cs_insn *insn, int *fam, uint64_t *target)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);

	if (insn->id != X86_INS_LEA || !a || !b || a->type != X86_OP_REG || b->type != X86_OP_MEM ||
	    b->mem.base != X86_REG_RIP || b->mem.index != X86_REG_INVALID)
		return false;
	*fam = reg_fam64(a->reg);
	*target = insn_next(insn) + (uint64_t)b->mem.disp;
	return *fam >= 0;
}

enum guard_form {
	GUARD_NONE,
	GUARD_REG, /* cmp reg64, imm32 (non-PIE) */
	GUARD_LEA, /* lea r1, [rip + fn]; cmp r2, r1 (PIE) */
	GUARD_MEM, /* cmp qword [mem], imm32: no register to follow */
};

struct guard {
	enum guard_form form;
	int kind;
	int fam; /* the register holding the compared pointer */
};

/*
 * Classify the cmp in insn. lea_fam/lea_target describe the instruction
 * right before it when that is a rip-relative lea (lea_fam -1 if not).
 */
static struct guard guard_classify(const cs_insn *insn, const struct pml_inl_fns *fns, int lea_fam,
				   uint64_t lea_target)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);
	struct guard g = { GUARD_NONE, -1, -1 };
	int fa, fb;

	if (insn->id != X86_INS_CMP || insn->detail->x86.op_count != 2 || !a || !b)
		return g;
	if (b->type == X86_OP_IMM) {
		g.kind = fn_kind(fns, (uint64_t)b->imm);
		if (g.kind < 0)
			return g;
		if (a->type == X86_OP_MEM) {
			g.form = GUARD_MEM;
			return g;
		}
		g.fam = a->type == X86_OP_REG ? reg_fam64(a->reg) : -1;
		g.form = g.fam >= 0 && g.fam != FAM_RSP ? GUARD_REG : GUARD_NONE;
		return g;
	}
	if (a->type != X86_OP_REG || b->type != X86_OP_REG || lea_fam < 0)
		return g;
	g.kind = fn_kind(fns, lea_target);
	if (g.kind < 0)
		return g;
	fa = reg_fam64(a->reg);
	fb = reg_fam64(b->reg);
	if (fb == lea_fam)
		g.fam = fa;
	else if (fa == lea_fam)
		g.fam = fb;
	g.form = g.fam >= 0 && g.fam != FAM_RSP && g.fam != lea_fam ? GUARD_LEA : GUARD_NONE;
	return g;
}

/* ---- address maps ------------------------------------------------------ */

/* Open addressing from an address (never 0 here) to a small value. */
struct addrmap {
	uint64_t *key;
	uint32_t *val;
	size_t cap; /* power of two */
	size_t n;
};

static int addrmap_init(struct addrmap *m, size_t cap)
{
	m->key = calloc(cap, sizeof(*m->key));
	m->val = calloc(cap, sizeof(*m->val));
	m->cap = cap;
	m->n = 0;
	if (m->key && m->val)
		return 0;
	free(m->key);
	free(m->val);
	m->key = NULL;
	m->val = NULL;
	return -ENOMEM;
}

static void addrmap_fini(struct addrmap *m)
{
	free(m->key);
	free(m->val);
	m->key = NULL;
	m->val = NULL;
}

/* The slot holding `a` or the empty one where it would go; SIZE_MAX when full. */
static size_t addrmap_slot(const struct addrmap *m, uint64_t a)
{
	size_t i = (size_t)((a * 0x9e3779b97f4a7c15ull) >> 20) & (m->cap - 1), probes;

	for (probes = 0; probes < m->cap; probes++, i = (i + 1) & (m->cap - 1)) {
		if (m->key[i] == a || !m->key[i])
			return i;
	}
	return SIZE_MAX;
}

static bool addrmap_get(const struct addrmap *m, uint64_t a, uint32_t *val)
{
	size_t i = addrmap_slot(m, a);

	if (!a || i == SIZE_MAX || m->key[i] != a)
		return false;
	if (val)
		*val = m->val[i];
	return true;
}

/* Insert or overwrite; false when half full (callers stop there). */
static bool addrmap_put(struct addrmap *m, uint64_t a, uint32_t val)
{
	size_t i = addrmap_slot(m, a);

	if (!a || i == SIZE_MAX)
		return false;
	if (!m->key[i]) {
		if (m->n + 1 >= m->cap / 2)
			return false;
		m->key[i] = a;
		m->n++;
	}
	m->val[i] = val;
	return true;
}

/* ---- the fallback arm: arguments ---------------------------------------- */

/*
 * A value in the simulation: what register family held at the entry
 * (0..15), a constant, a stack slot of the entry, or unknown.
 */
#define VAL_CONST   0x20 /* + index into sim.konst */
#define VAL_STACK   0x40 /* + index into sim.entry (slots above sp at the entry) */
#define VAL_UNKNOWN 0xff
#define SIM_CONSTS  16

struct spill {
	int64_t off;
	uint8_t val;
	bool used;
};

struct sim {
	uint8_t val[FAM_COUNT];
	struct spill slot[SLOTS]; /* written by the fallback, offsets from the entry sp */
	struct slots entry;	  /* entry slots it read before writing them */
	uint64_t konst[SIM_CONSTS];
	int nconst;
	int64_t rsp; /* sp minus the entry sp */
};

static uint8_t sim_const(struct sim *s, uint64_t v)
{
	if (s->nconst >= SIM_CONSTS)
		return VAL_UNKNOWN;
	s->konst[s->nconst] = v;
	return (uint8_t)(VAL_CONST + s->nconst++);
}

static void sim_forget_slots(struct sim *s)
{
	memset(s->slot, 0, sizeof(s->slot));
}

static bool sim_store(struct sim *s, int64_t off, uint8_t val)
{
	struct spill *free_slot = NULL;
	size_t i;

	for (i = 0; i < SLOTS; i++) {
		struct spill *sl = &s->slot[i];

		if (sl->used && sl->off > off - 8 && sl->off < off + 8)
			sl->used = false;
		if (!sl->used && !free_slot)
			free_slot = sl;
	}
	if (!free_slot)
		return false;
	free_slot->used = true;
	free_slot->off = off;
	free_slot->val = val;
	return true;
}

/* A load: what the fallback stored there, else the entry's slot if untouched. */
static uint8_t sim_load(struct sim *s, int64_t off)
{
	size_t i;
	int k;

	for (i = 0; i < SLOTS; i++) {
		if (s->slot[i].used && s->slot[i].off == off)
			return s->slot[i].val;
	}
	for (i = 0; i < SLOTS; i++) {
		if (s->slot[i].used && s->slot[i].off > off - 8 && s->slot[i].off < off + 8)
			return VAL_UNKNOWN; /* partly overwritten */
	}
	if (off < 0)
		return VAL_UNKNOWN; /* below the entry sp: not the entry's */
	k = slots_add(&s->entry, off);
	return k < 0 ? VAL_UNKNOWN : (uint8_t)(VAL_STACK + k);
}

/* mov reg, imm: the constant it leaves in the full register. */
static bool insn_mov_imm(const cs_insn *insn, int *dst, uint64_t *v)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);
	int bits;

	if ((insn->id != X86_INS_MOV && insn->id != X86_INS_MOVABS) || !a || !b ||
	    a->type != X86_OP_REG || b->type != X86_OP_IMM)
		return false;
	*dst = reg_fam(a->reg);
	bits = reg_bits(a->reg);
	if (*dst < 0 || bits < 32)
		return false;
	*v = bits == 64 ? (uint64_t)b->imm : (uint32_t)b->imm;
	return true;
}

/* xor r32, r32 or xor r64, r64 on one register: zero. */
static bool insn_zero_idiom(const cs_insn *insn, int *dst)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);

	if (insn->id != X86_INS_XOR || !a || !b || a->type != X86_OP_REG || b->type != X86_OP_REG ||
	    a->reg != b->reg || reg_bits(a->reg) < 32)
		return false;
	*dst = reg_fam(a->reg);
	return *dst >= 0;
}

/*
 * Step one fallback instruction. Returns 0 to go on, 1 at the indirect
 * call/jmp (*tail set for a jmp), or -1 with a reason in why.
 */
static int sim_step(struct dec *d, struct sim *s, const cs_insn *insn, int *target_fam, bool *tail,
		    char *why, size_t why_len)
{
	const cs_x86_op *a = insn_op(insn, 0), *b = insn_op(insn, 1);
	struct effects e;
	int dst, src, fam;
	int64_t disp;
	uint64_t v;

	if (insn->id == X86_INS_CALL || insn->id == X86_INS_JMP) {
		if (a && a->type == X86_OP_REG && insn->detail->x86.op_count == 1) {
			*target_fam = reg_fam64(a->reg);
			*tail = insn->id == X86_INS_JMP;
			return 1;
		}
		if (a && a->type == X86_OP_MEM) {
			snprintf(why, why_len, "fallback calls through memory at %#llx",
				 (unsigned long long)insn->address);
			return -1;
		}
		if (insn->id == X86_INS_CALL) {
			snprintf(why, why_len, "fallback makes a direct call at %#llx first",
				 (unsigned long long)insn->address);
			return -1;
		}
		return 0; /* jmp rel: the caller follows it */
	}
	if (insn_is_control(insn)) {
		snprintf(why, why_len, "fallback branches at %#llx before the call",
			 (unsigned long long)insn->address);
		return -1;
	}
	if (insn_mov_rr(insn, &dst, &src) && dst != FAM_RSP) {
		s->val[dst] = src == FAM_RSP ? VAL_UNKNOWN : s->val[src];
		return 0;
	}
	if (insn_mov_imm(insn, &dst, &v) && dst != FAM_RSP) {
		s->val[dst] = sim_const(s, v);
		return 0;
	}
	if (insn_zero_idiom(insn, &dst) && dst != FAM_RSP) {
		s->val[dst] = sim_const(s, 0);
		return 0;
	}
	if (insn_spill(insn, &disp, &src)) {
		if (!sim_store(s, s->rsp + disp, s->val[src]))
			sim_forget_slots(s);
		return 0;
	}
	if (insn_reload(insn, &dst, &disp)) {
		s->val[dst] = sim_load(s, s->rsp + disp);
		return 0;
	}
	if ((insn->id == X86_INS_ADD || insn->id == X86_INS_SUB) && a && b &&
	    a->type == X86_OP_REG && a->reg == X86_REG_RSP && b->type == X86_OP_IMM &&
	    b->imm > -4096 && b->imm < 4096) {
		s->rsp += insn->id == X86_INS_ADD ? b->imm : -b->imm;
		return 0;
	}
	if (insn->id == X86_INS_PUSH && a && a->type == X86_OP_REG &&
	    (src = reg_fam64(a->reg)) >= 0 && src != FAM_RSP) {
		s->rsp -= 8;
		if (!sim_store(s, s->rsp, s->val[src]))
			sim_forget_slots(s);
		return 0;
	}
	if (insn->id == X86_INS_POP && a && a->type == X86_OP_REG &&
	    (dst = reg_fam64(a->reg)) >= 0 && dst != FAM_RSP) {
		s->val[dst] = sim_load(s, s->rsp);
		s->rsp += 8;
		return 0;
	}

	if (!insn_effects(d, insn, &e)) {
		snprintf(why, why_len, "fallback has an instruction of unknown effect at %#llx",
			 (unsigned long long)insn->address);
		return -1;
	}
	if ((e.wr | e.partial) & (1u << FAM_RSP)) {
		snprintf(why, why_len, "fallback moves the stack pointer at %#llx",
			 (unsigned long long)insn->address);
		return -1;
	}
	for (fam = 0; fam < FAM_COUNT; fam++) {
		if ((e.wr | e.partial) & (1u << fam))
			s->val[fam] = VAL_UNKNOWN;
	}
	if (insn_may_write_memory(insn))
		sim_forget_slots(s);
	return 0;
}

/* ---- the result region after the call ------------------------------------ */

struct tail {
	uint64_t addr[TAIL_MAX_INSNS];
	uint32_t result[TAIL_MAX_INSNS]; /* locations holding the result at addr[i] */
	bool flags[TAIL_MAX_INSNS];	 /* eflags come from testing the result */
	size_t n;
	struct slots slots; /* the stack slots result[] refers to */
};

struct tail_item {
	uint64_t pc;
	uint32_t result;
	bool flags;
};

static bool tail_index(const struct tail *tl, uint64_t a, size_t *idx)
{
	size_t i;

	for (i = 0; i < tl->n; i++) {
		if (tl->addr[i] == a) {
			*idx = i;
			return true;
		}
	}
	return false;
}

/* Merge a path into the region; false when nothing new is known at that address. */
static bool tail_merge(struct tail *tl, struct tail_item *it)
{
	size_t idx;

	if (tail_index(tl, it->pc, &idx)) {
		uint32_t r = tl->result[idx] & it->result;
		bool f = tl->flags[idx] && it->flags;

		if (r == tl->result[idx] && f == tl->flags[idx])
			return false;
		tl->result[idx] = r;
		tl->flags[idx] = f;
		it->result = r;
		it->flags = f;
		return true;
	}
	if (tl->n == TAIL_MAX_INSNS)
		return false;
	tl->addr[tl->n] = it->pc;
	tl->result[tl->n] = it->result;
	tl->flags[tl->n] = it->flags;
	tl->n++;
	return true;
}

/* The locations holding the result after one non-branch instruction. */
static uint32_t tail_step(struct dec *d, struct tail *tl, const cs_insn *insn, uint32_t result)
{
	uint32_t srd, swr;
	struct effects e;
	int64_t disp;
	int dst, src, k;

	if (insn_mov_rr(insn, &dst, &src)) {
		if (src != FAM_RSP && (result & (1u << src)))
			return result | 1u << dst;
		return result & ~(1u << dst);
	}
	if (insn_spill(insn, &disp, &src)) {
		insn_slot_effects(insn, &tl->slots, &srd, &swr);
		result &= ~swr;
		if (result & (1u << src)) {
			k = slots_add(&tl->slots, disp);
			if (k >= 0)
				result |= LOC_SLOT(k);
		}
		return result;
	}
	if (insn_reload(insn, &dst, &disp)) {
		k = slots_find(&tl->slots, disp);
		if (k >= 0 && (result & LOC_SLOT(k)))
			return result | 1u << dst;
		return result & ~(1u << dst);
	}
	if (!insn_effects(d, insn, &e))
		return 0;
	insn_slot_effects(insn, &tl->slots, &srd, &swr);
	return result & ~(e.wr | e.partial | swr);
}

/*
 * The region after the indirect call where some register or stack slot
 * still holds its result: rax, then copies of it, less what is written
 * over (a call keeps the callee-saved registers and the slots). A NULL test
 * of the result is followed on its non-NULL side only, other branches on
 * both. Where paths meet a location counts only if it holds the result on
 * all of them; addresses where nothing holds it any more are kept, without
 * going further, so that a join there cancels. The region ends at the guard
 * and the call, at a change of sp, at returns and indirect jumps, and at
 * TAIL_MAX_INSNS addresses.
 */
static void tail_walk(struct dec *d, const struct pml_inl_site *site, uint64_t start,
		      struct tail *tl)
{
	struct tail_item work[2 * TAIL_MAX_INSNS];
	size_t nw = 0, steps = 0;

	memset(tl, 0, sizeof(*tl));
	work[nw++] = (struct tail_item){ start, 1u << PML_REG_RAX, false };
	while (nw && steps++ < 8 * TAIL_MAX_INSNS) {
		struct tail_item it = work[--nw];
		const cs_insn *insn = d->insn;
		const cs_x86_op *a, *b;
		struct effects e;
		uint64_t target;
		int src;

		if (it.pc == site->guard || it.pc == site->probe || it.pc == site->call)
			continue;
		if (!tail_merge(tl, &it) || !it.result || !dec_at(d, it.pc))
			continue;
		a = insn_op(insn, 0);
		b = insn_op(insn, 1);

		if (insn->id == X86_INS_JMP) {
			if (insn_direct_target(insn, &target) && nw < 2 * TAIL_MAX_INSNS)
				work[nw++] = (struct tail_item){ target, it.result, it.flags };
			continue;
		}
		if (insn_is_jcc(insn)) {
			if (!insn_direct_target(insn, &target) || nw + 2 > 2 * TAIL_MAX_INSNS)
				continue;
			if (it.flags && insn->id == X86_INS_JNE) {
				work[nw++] = (struct tail_item){ target, it.result, true };
			} else if (it.flags && insn->id == X86_INS_JE) {
				work[nw++] = (struct tail_item){ insn_next(insn), it.result, true };
			} else {
				work[nw++] = (struct tail_item){ target, it.result, it.flags };
				work[nw++] =
					(struct tail_item){ insn_next(insn), it.result, it.flags };
			}
			continue;
		}
		if (insn->id == X86_INS_CALL) {
			if (nw < 2 * TAIL_MAX_INSNS)
				work[nw++] = (struct tail_item){ insn_next(insn),
								 it.result & ~CALLER_SAVED, false };
			continue;
		}
		if (insn_is_control(insn) || !insn_effects(d, insn, &e) ||
		    ((e.wr | e.partial) & (1u << FAM_RSP)))
			continue;
		if (e.flags)
			it.flags = insn->id == X86_INS_TEST && a && b && a->type == X86_OP_REG &&
				   b->type == X86_OP_REG && a->reg == b->reg &&
				   (src = reg_fam64(a->reg)) >= 0 && (it.result & (1u << src));
		it.result = tail_step(d, tl, insn, it.result);
		if (nw < 2 * TAIL_MAX_INSNS)
			work[nw++] = (struct tail_item){ insn_next(insn), it.result, it.flags };
	}
}

/* ---- reach of the inlined arm ---------------------------------------------- */

struct reach {
	struct addrmap seen; /* instructions decoded */
	uint64_t joined;     /* bit i: region address i is where an inlined path enters */
	uint64_t rets[PML_INL_MAX_EXITS];
	size_t nrets;
	size_t insns;
	size_t cut;	/* edges into code that cannot be decoded */
	size_t jmp_out; /* tail calls: jumps out of the text or to an allocator */
	bool too_many_rets;
	bool indirect; /* an indirect jump was met */
	bool exhausted;
};

/*
 * Breadth-first over the inlined arm. The guard's cmp and branch and the
 * indirect call are walls (a loop back to the guard is another call);
 * region addresses are sinks. Calls are assumed to return.
 */
static int reach_walk(struct dec *d, const struct pml_inl_site *site, const struct tail *tl,
		      struct reach *r)
{
	size_t head = 0, qn = 0, idx;
	uint64_t *queue;
	int err;

	memset(r, 0, sizeof(*r));
	err = addrmap_init(&r->seen, 4 * REACH_MAX_INSNS);
	if (err)
		return err;
	queue = calloc(REACH_MAX_INSNS, sizeof(*queue));
	if (!queue) {
		addrmap_fini(&r->seen);
		return -ENOMEM;
	}

	if (tail_index(tl, site->inline_start, &idx)) {
		r->joined |= 1ull << idx;
	} else {
		queue[qn++] = site->inline_start;
		addrmap_put(&r->seen, site->inline_start, 0);
	}
	while (head < qn) {
		uint64_t pc = queue[head++], succ[2];
		int ns, i;

		if (!dec_at(d, pc)) {
			r->cut++;
			continue;
		}
		r->insns++;
		if (insn_is_ret(d->insn)) {
			if (r->nrets < PML_INL_MAX_EXITS)
				r->rets[r->nrets++] = pc;
			else
				r->too_many_rets = true;
		}
		ns = insn_succ(d->insn, succ, &r->indirect);
		for (i = 0; i < ns; i++) {
			uint64_t s = succ[i];

			if (s == site->guard || s == site->probe || s == site->call)
				continue;
			if (tail_index(tl, s, &idx)) {
				r->joined |= 1ull << idx;
				continue;
			}
			if (d->insn->id == X86_INS_JMP &&
			    (!text_has(d->t, s) || (d->fns && fn_kind(d->fns, s) >= 0))) {
				r->jmp_out++;
				continue;
			}
			if (addrmap_get(&r->seen, s, NULL))
				continue;
			if (qn >= REACH_MAX_INSNS || !addrmap_put(&r->seen, s, 0)) {
				r->exhausted = true;
				goto out;
			}
			queue[qn++] = s;
		}
	}
out:
	free(queue);
	return 0;
}

/* ---- the result at a join ------------------------------------------------ */

struct live_item {
	uint64_t pc;
	uint32_t want;
};

/*
 * Which of `cand` (registers and slots of tl) are live at `start`: read
 * before being overwritten on some path. A bounded worklist over the code,
 * each address revisited only for locations not yet looked for there.
 * Whatever it cannot follow (indirect jump, undecodable code, a change of
 * sp, the budget) counts as a read, so an unsure location stays live.
 */
static int live_at(struct dec *d, const struct tail *tl, uint64_t start, uint32_t cand,
		   uint32_t *live)
{
	struct live_item *work;
	struct addrmap done;
	size_t nw = 0, steps = 0;
	int err;

	*live = 0;
	err = addrmap_init(&done, 4 * LIVE_MAX_INSNS);
	if (err)
		return err;
	work = calloc(LIVE_MAX_INSNS, sizeof(*work));
	if (!work) {
		addrmap_fini(&done);
		return -ENOMEM;
	}
	work[nw++] = (struct live_item){ start, cand };
	while (nw) {
		struct live_item it = work[--nw];
		uint32_t seen = 0, srd, swr;
		bool indirect = false;
		uint64_t succ[2];
		struct effects e;
		int ns, i;

		if (addrmap_get(&done, it.pc, &seen))
			it.want &= ~seen;
		if (!it.want)
			continue;
		if (++steps > LIVE_MAX_INSNS || !addrmap_put(&done, it.pc, seen | it.want) ||
		    !dec_at(d, it.pc) || !insn_effects(d, d->insn, &e)) {
			*live |= it.want;
			continue;
		}
		insn_slot_effects(d->insn, &tl->slots, &srd, &swr);
		if (d->insn->id == X86_INS_CALL) {
			e.rd |= ARG_REGS;
			e.wr |= CALLER_SAVED;
		}
		if (insn_is_ret(d->insn))
			e.rd |= 1u << PML_REG_RAX;
		if ((e.wr | e.partial) & (1u << FAM_RSP))
			srd |= it.want & ~LOC_REGS; /* slots move with sp: give up on them */
		/* a partial write keeps the rest of the value: a use */
		*live |= it.want & (e.rd | e.partial | srd);
		it.want &= ~(e.rd | e.partial | e.wr | srd | swr);
		if (!it.want)
			continue;
		ns = insn_succ(d->insn, succ, &indirect);
		if (indirect)
			*live |= it.want;
		for (i = 0; i < ns; i++) {
			if (nw >= LIVE_MAX_INSNS) {
				*live |= it.want;
				break;
			}
			work[nw++] = (struct live_item){ succ[i], it.want };
		}
	}
	free(work);
	addrmap_fini(&done);
	return 0;
}

/*
 * The location of the result at a join: the one candidate that is live.
 * Returns 1 with *loc set, 0 when none is (the join cancels), -EAGAIN with
 * a reason when several are, or -ENOMEM.
 */
static int join_result(struct dec *d, const struct tail *tl, size_t idx, struct pml_loc *loc,
		       char *why, size_t why_len)
{
	uint32_t cand = tl->result[idx] & ~(1u << FAM_RSP), live;
	int bit, err;

	memset(loc, 0, sizeof(*loc));
	loc->reg = PML_REG_NONE;
	if (!cand)
		return 0;
	err = live_at(d, tl, tl->addr[idx], cand, &live);
	if (err)
		return err;
	if (!live)
		return 0;
	if (live & (live - 1)) {
		snprintf(why, why_len, "result in two live locations (%#x) at the join %#llx", live,
			 (unsigned long long)tl->addr[idx]);
		return -EAGAIN;
	}
	for (bit = 0; !(live & (1u << bit)); bit++)
		;
	if (bit < FAM_COUNT) {
		loc->kind = PML_LOC_REG;
		loc->reg = (enum pml_reg)bit;
	} else {
		loc->kind = PML_LOC_STACK;
		loc->off = tl->slots.off[bit - FAM_COUNT];
	}
	return 1;
}

/*
 * Move an exit from its join to the first kernel-emulated instruction of
 * the straight line after it, if sp and the result stay put and no path of
 * the inlined arm enters that line past the join.
 */
static void exit_relocate(struct dec *d, const struct reach *r, const struct tail *tl,
			  struct pml_inl_exit *x)
{
	uint64_t pc = x->join;
	uint32_t srd, swr;
	struct effects e;
	size_t idx;
	int n, k;

	x->addr = x->join;
	x->emulated = false;
	for (n = 0; n < RELOCATE_MAX_INSNS; n++) {
		if (!dec_at(d, pc))
			return;
		if (pc != x->join && (r->indirect || addrmap_get(&r->seen, pc, NULL) ||
				      (tail_index(tl, pc, &idx) && (r->joined & (1ull << idx)))))
			return;
		if (probesite__insn_emulated(d->insn)) {
			x->addr = pc;
			x->emulated = true;
			return;
		}
		if (insn_is_control(d->insn) || !insn_effects(d, d->insn, &e) ||
		    ((e.wr | e.partial) & (1u << FAM_RSP)))
			return;
		if (x->result.kind == PML_LOC_REG && ((e.wr | e.partial) & (1u << x->result.reg)))
			return;
		if (x->result.kind == PML_LOC_STACK) {
			k = slots_find(&tl->slots, x->result.off);
			insn_slot_effects(d->insn, &tl->slots, &srd, &swr);
			if (k < 0 || (swr & LOC_SLOT(k)))
				return;
		}
		pc = insn_next(d->insn);
	}
}

/* Exits where the inlined arm joins the fallback's path after the call. */
static int site_exits_join(struct dec *d, struct pml_inl_site *site, uint64_t after_call)
{
	struct tail tl;
	struct reach r;
	size_t i, n_cancel = 0;
	int found, err;

	tail_walk(d, site, after_call, &tl);
	if (!tl.n) {
		snprintf(site->why, sizeof(site->why), "cannot decode after the call");
		return 0;
	}
	err = reach_walk(d, site, &tl, &r);
	if (err)
		return err;
	if (r.exhausted) {
		snprintf(site->why, sizeof(site->why),
			 "inlined arm exceeds %d instructions before joining", REACH_MAX_INSNS);
		goto out;
	}
	if (!r.joined) {
		snprintf(site->why, sizeof(site->why),
			 "inlined arm never joins the result path (%zu insns)", r.insns);
		goto out;
	}
	for (i = 0; i < tl.n; i++) {
		struct pml_inl_exit *x;

		if (!(r.joined & (1ull << i)))
			continue;
		if (site->n_exits == PML_INL_MAX_EXITS) {
			snprintf(site->why, sizeof(site->why),
				 "inlined arm joins the result path at over %d points",
				 PML_INL_MAX_EXITS);
			goto out;
		}
		x = &site->exits[site->n_exits];
		found = join_result(d, &tl, i, &x->result, site->why, sizeof(site->why));
		if (found == -ENOMEM) {
			err = found;
			goto out;
		}
		if (found < 0)
			goto out;
		site->n_exits++;
		x->join = tl.addr[i];
		x->sp_delta = 0; /* the call left sp as at the entry; a join shares it */
		n_cancel += !found;
		exit_relocate(d, &r, &tl, x);
	}
	if (n_cancel == site->n_exits) {
		snprintf(site->why, sizeof(site->why), "no join holds the result");
		goto out;
	}
	site->handled = true;
	snprintf(site->why, sizeof(site->why), "%zu exit%s (%zu cancelling)", site->n_exits,
		 site->n_exits > 1 ? "s" : "", n_cancel);
out:
	if (!site->handled) {
		/* no partial plan: a site is all or nothing */
		memset(site->exits, 0, sizeof(site->exits));
		for (i = 0; i < PML_INL_MAX_EXITS; i++)
			site->exits[i].result.reg = PML_REG_NONE;
		site->n_exits = 0;
	}
	addrmap_fini(&r.seen);
	return err;
}

/*
 * The fallback tail-calls the allocator, so the enclosing function returns
 * its result: every ret the inlined arm reaches returns the inlined result
 * in rax, with sp where the tail call left it. Tail calls out of the arm
 * (to the PLT or to an internal allocator, which have their own probes)
 * end those paths.
 */
static int site_exits_return(struct dec *d, struct pml_inl_site *site, int64_t sp_at_jmp)
{
	struct tail none;
	struct reach r;
	size_t i;
	int err;

	memset(&none, 0, sizeof(none));
	err = reach_walk(d, site, &none, &r);
	if (err)
		return err;
	if (r.exhausted || r.indirect || r.cut || r.too_many_rets || !r.nrets) {
		snprintf(site->why, sizeof(site->why), "fallback tail-calls; inlined arm %s",
			 r.exhausted  ? "is too large"
			 : r.indirect ? "jumps indirectly"
			 : r.cut      ? "runs into undecodable code"
			 : r.nrets    ? "has too many returns"
				      : "never returns");
		goto out;
	}
	for (i = 0; i < r.nrets; i++) {
		struct pml_inl_exit *x = &site->exits[i];

		x->join = r.rets[i];
		x->addr = r.rets[i];
		x->result.kind = PML_LOC_REG;
		x->result.reg = PML_REG_RAX;
		x->sp_delta = (int32_t)sp_at_jmp;
		x->is_return = true;
	}
	site->n_exits = r.nrets;
	site->handled = true;
	snprintf(site->why, sizeof(site->why), "fallback tail-calls: %zu returns", r.nrets);
out:
	addrmap_fini(&r.seen);
	return 0;
}

/* ---- one site ---------------------------------------------------------- */

static const int kind_call_args[PML_INL_KINDS][PML_INL_MAX_ARGS] = {
	[PML_INL_MALLOC] = { PML_REG_RSI, -1 },
	[PML_INL_CALLOC] = { PML_REG_RSI, PML_REG_RDX },
	[PML_INL_REALLOC] = { PML_REG_RSI, PML_REG_RDX },
	[PML_INL_FREE] = { PML_REG_RSI, -1 },
};

static void site_init(struct pml_inl_site *site, uint64_t guard, int kind)
{
	int i;

	memset(site, 0, sizeof(*site));
	site->guard = guard;
	site->kind = (enum pml_inl_kind)kind;
	for (i = 0; i < PML_INL_MAX_ARGS; i++)
		site->arg[i].reg = PML_REG_NONE;
	for (i = 0; i < PML_INL_MAX_EXITS; i++)
		site->exits[i].result.reg = PML_REG_NONE;
}

/* A simulated value at the call as a location at the entry probe. */
static bool sim_loc(const struct sim *s, uint8_t v, int guard_fam, struct pml_loc *loc)
{
	memset(loc, 0, sizeof(*loc));
	loc->reg = PML_REG_NONE;
	if (v < FAM_RSP && (int)v != guard_fam) {
		loc->kind = PML_LOC_REG;
		loc->reg = (enum pml_reg)v;
		return true;
	}
	if (v >= VAL_CONST && v < VAL_CONST + s->nconst) {
		loc->kind = PML_LOC_IMM;
		loc->off = (int64_t)s->konst[v - VAL_CONST];
		return true;
	}
	if (v >= VAL_STACK && v < VAL_STACK + s->entry.n) {
		loc->kind = PML_LOC_STACK;
		loc->off = s->entry.off[v - VAL_STACK];
		return true;
	}
	return false;
}

/* Walk the fallback arm to the indirect call; fills site->call and site->arg[]. */
static bool site_fallback(struct dec *d, const struct guard *g, struct pml_inl_site *site,
			  bool *tail, uint64_t *after_call, int64_t *sp_at_call)
{
	uint64_t pc = site->fallback, target;
	int n, i, r = 0, target_fam = -1;
	struct sim s;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < FAM_COUNT; i++)
		s.val[i] = (uint8_t)i;
	for (n = 0; n < FALLBACK_MAX_INSNS; n++) {
		const cs_insn *insn = d->insn;

		if (!dec_at(d, pc)) {
			snprintf(site->why, sizeof(site->why),
				 "cannot decode the fallback at %#llx", (unsigned long long)pc);
			return false;
		}
		r = sim_step(d, &s, insn, &target_fam, tail, site->why, sizeof(site->why));
		if (r < 0)
			return false;
		if (r == 1)
			break;
		if (insn->id == X86_INS_JMP && insn_direct_target(insn, &target))
			pc = target;
		else
			pc = insn_next(insn);
	}
	if (r != 1) {
		snprintf(site->why, sizeof(site->why),
			 "no indirect call in the fallback's first %d insns", FALLBACK_MAX_INSNS);
		return false;
	}
	if (target_fam < 0 || target_fam == FAM_RSP || s.val[target_fam] != g->fam) {
		snprintf(site->why, sizeof(site->why),
			 "indirect call at %#llx is not through the compared pointer",
			 (unsigned long long)d->insn->address);
		return false;
	}
	site->call = d->insn->address;
	*after_call = insn_next(d->insn);
	*sp_at_call = s.rsp;
	if (s.rsp != 0 && !*tail) {
		snprintf(site->why, sizeof(site->why), "fallback calls with a moved stack pointer");
		return false;
	}
	for (i = 0; i < inlined__nargs(site->kind); i++) {
		if (!sim_loc(&s, s.val[kind_call_args[site->kind][i]], g->fam, &site->arg[i])) {
			snprintf(site->why, sizeof(site->why),
				 "argument %d of the call is computed, not read at the entry",
				 i + 2);
			return false;
		}
	}
	return true;
}

static int site_analyze(struct dec *d, const struct guard *g, uint64_t guard,
			struct pml_inl_site *site)
{
	uint64_t target, after_call = 0;
	int64_t sp_at_call = 0;
	bool tail = false;

	site_init(site, guard, g->kind);
	if (g->form == GUARD_MEM) {
		snprintf(site->why, sizeof(site->why), "compares memory, not a register");
		return 0;
	}
	if (!dec_at(d, guard))
		return -ENOENT;
	site->probe = insn_next(d->insn);
	if (!dec_at(d, site->probe) || (d->insn->id != X86_INS_JE && d->insn->id != X86_INS_JNE) ||
	    !insn_direct_target(d->insn, &target)) {
		site->probe = 0;
		snprintf(site->why, sizeof(site->why), "no je/jne right after the cmp");
		return 0;
	}
	site->probe_emulated = probesite__insn_emulated(d->insn);
	if (d->insn->id == X86_INS_JNE) {
		site->inline_start = insn_next(d->insn);
		site->fallback = target;
	} else {
		site->inline_start = target;
		site->fallback = insn_next(d->insn);
	}

	if (!site_fallback(d, g, site, &tail, &after_call, &sp_at_call))
		return 0;
	if (site->kind == PML_INL_FREE) {
		char buf[32];

		if (site->arg[0].kind == PML_LOC_IMM) {
			snprintf(site->why, sizeof(site->why), "frees a constant");
			return 0;
		}
		site->handled = true;
		snprintf(site->why, sizeof(site->why), "pointer in %s",
			 inlined__loc_format(&site->arg[0], buf, sizeof(buf)));
		return 0;
	}
	if (tail)
		return site_exits_return(d, site, sp_at_call);
	return site_exits_join(d, site, after_call);
}

/* The guard at `guard`, looking for a PIE-style lea right before it. */
static struct guard guard_at(struct dec *d, const struct pml_inl_fns *fns, uint64_t guard)
{
	struct guard none = { GUARD_NONE, -1, -1 };
	uint64_t lea_target = 0;
	int lea_fam = -1;

	/* lea r64, [rip + disp32] is 7 bytes */
	if (guard >= 7 && dec_at(d, guard - 7) && insn_next(d->insn) == guard &&
	    !insn_lea_rip(d->insn, &lea_fam, &lea_target))
		lea_fam = -1;
	if (!dec_at(d, guard))
		return none;
	return guard_classify(d->insn, fns, lea_fam, lea_target);
}

static bool fns_valid(const struct pml_inl_fns *fns)
{
	int k;

	for (k = 0; k < PML_INL_KINDS; k++) {
		if (fns->addr[k])
			return true;
	}
	return false;
}

int inlined__analyze(const struct pml_inl_text *t, const struct pml_inl_fns *fns, uint64_t guard,
		     struct pml_inl_site *out)
{
	struct guard g;
	struct dec d;
	int err;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!text_valid(t) || !fns || !fns_valid(fns))
		return -EINVAL;
	err = dec_open(&d, t, fns);
	if (err)
		return err;
	g = guard_at(&d, fns, guard);
	if (g.form == GUARD_NONE)
		err = -ENOENT;
	else
		err = site_analyze(&d, &g, guard, out);
	dec_close(&d);
	return err;
}

/* ---- the sweep --------------------------------------------------------- */

struct found {
	uint64_t guard;
	struct guard g;
};

static int found_push(struct found **v, size_t *n, size_t *cap, uint64_t guard,
		      const struct guard *g)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct found *nv = realloc(*v, ncap * sizeof(**v));

		if (!nv)
			return -ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	(*v)[*n].guard = guard;
	(*v)[*n].g = *g;
	(*n)++;
	return 0;
}

/* Linear sweep of one chunk; undecodable bytes are skipped one at a time. */
static int sweep_chunk(struct dec *d, const struct pml_inl_code *c, const struct pml_inl_fns *fns,
		       struct found **v, size_t *n, size_t *cap)
{
	const uint8_t *p = c->bytes;
	size_t left = c->len;
	uint64_t pc = c->vaddr, lea_target = 0;
	int lea_fam = -1, err;

	while (left) {
		const cs_insn *insn = d->insn;
		uint64_t target;
		int fam;

		if (!cs_disasm_iter(d->cs, &p, &left, &pc, d->insn)) {
			p++;
			left--;
			pc++;
			lea_fam = -1;
			continue;
		}
		if (insn->id == X86_INS_CMP) {
			struct guard g = guard_classify(insn, fns, lea_fam, lea_target);

			if (g.form != GUARD_NONE) {
				err = found_push(v, n, cap, insn->address, &g);
				if (err)
					return err;
			}
		}
		if (insn_lea_rip(insn, &fam, &target)) {
			lea_fam = fam;
			lea_target = target;
		} else {
			lea_fam = -1;
		}
	}
	return 0;
}

static int site_cmp(const void *a, const void *b)
{
	const struct pml_inl_site *x = a, *y = b;

	return x->guard < y->guard ? -1 : x->guard > y->guard;
}

struct pml_inl_plan *inlined__plan(const struct pml_inl_text *t, const struct pml_inl_fns *fns)
{
	struct pml_inl_plan *plan = NULL;
	struct found *v = NULL;
	size_t n = 0, cap = 0, i;
	struct dec d;
	int err;

	if (!text_valid(t) || !fns || !fns_valid(fns)) {
		errno = EINVAL;
		return NULL;
	}
	err = dec_open(&d, t, fns);
	if (err) {
		errno = -err;
		return NULL;
	}
	for (i = 0; i < t->n; i++) {
		err = sweep_chunk(&d, &t->chunks[i], fns, &v, &n, &cap);
		if (err)
			goto out_found;
	}

	err = -ENOMEM;
	plan = calloc(1, sizeof(*plan));
	if (!plan)
		goto out_found;
	plan->fns = *fns;
	plan->sites = calloc(n ? n : 1, sizeof(*plan->sites));
	if (!plan->sites)
		goto out_plan;
	for (i = 0; i < n; i++) {
		struct pml_inl_site *site = &plan->sites[plan->n];

		err = site_analyze(&d, &v[i].g, v[i].guard, site);
		if (err == -ENOENT)
			continue;
		if (err)
			goto out_plan;
		plan->n++;
		plan->n_kind[site->kind]++;
		if (site->handled)
			plan->n_handled[site->kind]++;
	}
	qsort(plan->sites, plan->n, sizeof(*plan->sites), site_cmp);
	free(v);
	dec_close(&d);
	return plan;

out_plan:
	inlined__plan_free(plan);
	plan = NULL;
out_found:
	free(v);
	dec_close(&d);
	errno = -err;
	return NULL;
}

void inlined__plan_free(struct pml_inl_plan *plan)
{
	if (!plan)
		return;
	free(plan->sites);
	free(plan);
}

/* ---- internal functions from the public ones ---------------------------- */

static int fn_from_public(struct dec *d, const struct pml_inl_public *pub, uint64_t *fn)
{
	uint64_t pc = pub->addr;
	int n;

	for (n = 0; n < PUBLIC_MAX_INSNS; n++) {
		const cs_insn *insn = d->insn;
		const cs_x86_op *a, *b;

		if (!dec_at(d, pc))
			return -ENOENT;
		a = insn_op(insn, 0);
		b = insn_op(insn, 1);
		if (insn->id == X86_INS_CMP && a && b && a->type == X86_OP_REG &&
		    reg_fam64(a->reg) >= 0 && b->type == X86_OP_IMM && b->imm > 0 &&
		    (uint64_t)b->imm != pub->addr && text_has(d->t, (uint64_t)b->imm)) {
			uint64_t imm = (uint64_t)b->imm;

			if (dec_at(d, insn_next(insn)) &&
			    (insn->id == X86_INS_JE || insn->id == X86_INS_JNE)) {
				*fn = imm;
				return 0;
			}
			return -ENOENT;
		}
		if (insn_stops(insn))
			return -ENOENT;
		pc = insn_next(insn);
	}
	return -ENOENT;
}

int inlined__fn_from_public(const struct pml_inl_text *t, const struct pml_inl_public *pub,
			    uint64_t *fn)
{
	struct dec d;
	int err;

	if (!text_valid(t) || !pub || !fn || (int)pub->kind < 0 || pub->kind >= PML_INL_KINDS)
		return -EINVAL;
	*fn = 0;
	err = dec_open(&d, t, NULL);
	if (err)
		return err;
	err = fn_from_public(&d, pub, fn);
	dec_close(&d);
	return err;
}

int inlined__find_fns(const struct pml_inl_text *t, const struct pml_inl_public *pubs, size_t n,
		      struct pml_inl_fns *out)
{
	size_t i;
	int k, j, err;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!text_valid(t) || (n && !pubs))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint64_t fn;

		err = inlined__fn_from_public(t, &pubs[i], &fn);
		if (err == -ENOENT)
			continue;
		if (err)
			goto out_clear;
		if (out->addr[pubs[i].kind] && out->addr[pubs[i].kind] != fn) {
			err = -EINVAL;
			goto out_clear;
		}
		out->addr[pubs[i].kind] = fn;
	}
	for (k = 0; k < PML_INL_KINDS; k++) {
		for (j = k + 1; j < PML_INL_KINDS; j++) {
			if (out->addr[k] && out->addr[k] == out->addr[j]) {
				err = -EINVAL;
				goto out_clear;
			}
		}
	}
	return fns_valid(out) ? 0 : -ENOENT;

out_clear:
	memset(out, 0, sizeof(*out));
	return err;
}
