/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Probe-site selection: walk a function's first instructions with capstone
 * and move the probe to the first one the x86 kernel emulates, as long as
 * everything before it leaves the argument registers, rsp and [rsp] alone.
 */
#include "probesite.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PROBESITE_MAX_INSNS 8
#define PROBESITE_MAX_ARGS  6
#define X86_MAX_INSN_LEN    15
/* A candidate starts inside the window but may end past it. */
#define PROBESITE_DECODE_MAX (PML_PROBESITE_WINDOW + X86_MAX_INSN_LEN - 1)

#define REG_FAMILY_RSP PROBESITE_MAX_ARGS

/* SysV integer argument registers in order, then rsp, each with its aliases. */
static const x86_reg reg_families[PROBESITE_MAX_ARGS + 1][5] = {
	{ X86_REG_RDI, X86_REG_EDI, X86_REG_DI, X86_REG_DIL },
	{ X86_REG_RSI, X86_REG_ESI, X86_REG_SI, X86_REG_SIL },
	{ X86_REG_RDX, X86_REG_EDX, X86_REG_DX, X86_REG_DL, X86_REG_DH },
	{ X86_REG_RCX, X86_REG_ECX, X86_REG_CX, X86_REG_CL, X86_REG_CH },
	{ X86_REG_R8, X86_REG_R8D, X86_REG_R8W, X86_REG_R8B },
	{ X86_REG_R9, X86_REG_R9D, X86_REG_R9W, X86_REG_R9B },
	{ X86_REG_RSP, X86_REG_ESP, X86_REG_SP, X86_REG_SPL },
};

/* Index into reg_families, or -1 for a register we do not care about. */
static int reg_family(unsigned int reg)
{
	size_t f, i;

	for (f = 0; f < sizeof(reg_families) / sizeof(reg_families[0]); f++) {
		for (i = 0; i < sizeof(reg_families[f]) / sizeof(reg_families[f][0]); i++) {
			if (reg_families[f][i] != X86_REG_INVALID && reg_families[f][i] == reg)
				return (int)f;
		}
	}
	return -1;
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

static bool insn_has_prefix(const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;

	return x->prefix[0] || x->prefix[1] || x->prefix[2] || x->prefix[3];
}

/*
 * Mirrors what arch/x86/kernel/uprobes.c (6.18) emulates instead of
 * single-stepping. Forms the kernel might also accept (prefixed nop or
 * branch, multi-byte nops) are left out: guessing wrong only costs speed.
 */
bool probesite__insn_emulated(const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	uint8_t op0 = x->opcode[0], op1 = x->opcode[1];

	if (insn_has_prefix(insn))
		return false;

	switch (insn->id) {
	case X86_INS_PUSH:
		/* push reg, or with REX.B alone for r8-r15; nothing else */
		if (op0 < 0x50 || op0 > 0x57)
			return false;
		if (insn->size == 1)
			return x->rex == 0;
		return insn->size == 2 && x->rex == 0x41;
	case X86_INS_NOP:
		return insn->size == 1 && op0 == 0x90 && x->rex == 0;
	case X86_INS_JMP:
		return x->rex == 0 &&
		       ((op0 == 0xeb && insn->size == 2) || (op0 == 0xe9 && insn->size == 5));
	case X86_INS_CALL:
		return x->rex == 0 && op0 == 0xe8 && insn->size == 5;
	default:
		break;
	}

	/* jcc rel8 (70-7f) or rel32 (0f 80-8f); jrcxz and loop are not among them */
	if (x->rex != 0 || !insn_in_group(insn, CS_GRP_JUMP))
		return false;
	if (op0 >= 0x70 && op0 <= 0x7f)
		return insn->size == 2;
	return op0 == 0x0f && op1 >= 0x80 && op1 <= 0x8f && insn->size == 6;
}

/* Rare instructions whose effects capstone 4 under-reports, or that no probe should follow. */
static bool insn_is_denied(const cs_insn *insn)
{
	switch (insn->id) {
	case X86_INS_SYSCALL:
	case X86_INS_SYSENTER:
	case X86_INS_INT:
	case X86_INS_INT1:
	case X86_INS_INT3:
	case X86_INS_INTO:
	case X86_INS_UD0:
	case X86_INS_UD2:
	case X86_INS_UD2B:
	case X86_INS_HLT:
	case X86_INS_ENTER:
	case X86_INS_LEAVE:
	case X86_INS_WRFSBASE:
	case X86_INS_WRGSBASE:
	case X86_INS_MASKMOVDQU:
	case X86_INS_VMASKMOVDQU:
	case X86_INS_MASKMOVQ:
	case X86_INS_RDTSCP:
	case X86_INS_RDPMC:
	case X86_INS_RDMSR:
	case X86_INS_XGETBV:
	case X86_INS_XBEGIN:
	case X86_INS_XEND:
	case X86_INS_XABORT:
		return true;
	default:
		return false;
	}
}

/*
 * Conservative: capstone 4 marks some stores (movups, movbe, fstp,
 * cmpxchg16b) as reads, so a memory destination (operand 0 in Intel order)
 * counts as a write unless the instruction is known to only read it.
 */
static bool insn_may_write_memory(const cs_insn *insn)
{
	const cs_x86 *x = &insn->detail->x86;
	bool rmw = false, reads_op0 = false;
	uint8_t i;

	switch (insn->id) {
	case X86_INS_LEA:
	case X86_INS_NOP:
		return false; /* address arithmetic only, no access */
	case X86_INS_CMP:
	case X86_INS_TEST:
	case X86_INS_BT:
		reads_op0 = true;
		break;
	case X86_INS_XCHG:
	case X86_INS_XADD:
	case X86_INS_CMPXCHG:
	case X86_INS_CMPXCHG8B:
	case X86_INS_CMPXCHG16B:
		rmw = true;
		break;
	default:
		break;
	}

	for (i = 0; i < x->op_count && i < sizeof(x->operands) / sizeof(x->operands[0]); i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type != X86_OP_MEM)
			continue;
		if (rmw || op->access == CS_AC_INVALID || (op->access & CS_AC_WRITE))
			return true;
		if (i == 0 && !reads_op0)
			return true;
	}
	return false;
}

/*
 * Whether the walk may continue past `insn`: it must fall through and leave
 * the first `nargs` argument registers, rsp and memory untouched. If not,
 * writes what stops it (e.g. "writes rdi") to `why`.
 */
static bool insn_may_step_over(csh handle, const cs_insn *insn, int nargs, char *why,
			       size_t why_len)
{
	cs_regs regs_read, regs_write;
	uint8_t n_read = 0, n_write = 0, i;

	if (insn_in_group(insn, CS_GRP_CALL)) {
		snprintf(why, why_len, "is a call");
		return false;
	}
	if (insn_in_group(insn, CS_GRP_RET) || insn_in_group(insn, CS_GRP_IRET)) {
		snprintf(why, why_len, "is a return");
		return false;
	}
	if (insn_in_group(insn, CS_GRP_JUMP) || insn_in_group(insn, CS_GRP_BRANCH_RELATIVE)) {
		snprintf(why, why_len, "is a branch");
		return false;
	}
	if (insn_in_group(insn, CS_GRP_INT) || insn_in_group(insn, CS_GRP_PRIVILEGE) ||
	    insn_is_denied(insn)) {
		snprintf(why, why_len, "is not safe to step over");
		return false;
	}

	if (cs_regs_access(handle, insn, regs_read, &n_read, regs_write, &n_write) != CS_ERR_OK) {
		snprintf(why, why_len, "has unknown register effects");
		return false;
	}
	for (i = 0; i < n_write && i < sizeof(regs_write) / sizeof(regs_write[0]); i++) {
		int fam = reg_family(regs_write[i]);

		if (fam == REG_FAMILY_RSP || (fam >= 0 && fam < nargs)) {
			const char *name = cs_reg_name(handle, regs_write[i]);

			snprintf(why, why_len, "writes %s", name ? name : "an argument register");
			return false;
		}
	}

	if (insn_may_write_memory(insn)) {
		snprintf(why, why_len, "writes memory");
		return false;
	}
	return true;
}

/* A label for -v: a long operand string is cut, never overflows. */
static void insn_format(const cs_insn *insn, char *buf, size_t len)
{
	int n;

	if (insn->op_str[0])
		n = snprintf(buf, len, "%s %s", insn->mnemonic, insn->op_str);
	else
		n = snprintf(buf, len, "%s", insn->mnemonic);
	if (n < 0)
		buf[0] = '\0';
}

/* Appends ", mnemonic" (or the first mnemonic) to list, silently truncating. */
static void list_append(char *list, size_t len, const char *item)
{
	size_t used = strnlen(list, len);

	if (used + 1 >= len)
		return;
	snprintf(list + used, len - used, "%s%s", used ? ", " : "", item);
}

static void probesite__walk(csh handle, cs_insn *insn, const uint8_t *code, size_t len,
			    uint64_t addr, int nargs, struct pml_probesite *out)
{
	const uint8_t *pos = code;
	size_t left = len < PROBESITE_DECODE_MAX ? len : PROBESITE_DECODE_MAX;
	uint64_t pc = addr;
	char stepped[sizeof(out->why)] = "";
	char reason[48];
	int n;

	for (n = 0; n < PROBESITE_MAX_INSNS; n++) {
		uint32_t offset = (uint32_t)(pos - code);

		if (offset >= PML_PROBESITE_WINDOW) {
			snprintf(out->why, sizeof(out->why),
				 "entry kept: no emulated instruction in the first %d bytes",
				 PML_PROBESITE_WINDOW);
			return;
		}
		if (!cs_disasm_iter(handle, &pos, &left, &pc, insn)) {
			if (n == 0)
				snprintf(out->insn, sizeof(out->insn), "(bad)");
			snprintf(out->why, sizeof(out->why), "entry kept: cannot decode at +%u",
				 offset);
			return;
		}
		if (n == 0)
			insn_format(insn, out->insn, sizeof(out->insn));

		if (probesite__insn_emulated(insn)) {
			out->offset = offset;
			out->emulated = 1;
			insn_format(insn, out->insn, sizeof(out->insn));
			if (n == 0)
				snprintf(out->why, sizeof(out->why),
					 "entry instruction is emulated");
			else
				snprintf(out->why, sizeof(out->why),
					 "first emulated instruction after %s", stepped);
			return;
		}
		if (!insn_may_step_over(handle, insn, nargs, reason, sizeof(reason))) {
			snprintf(out->why, sizeof(out->why), "entry kept: %s %s", insn->mnemonic,
				 reason);
			return;
		}
		list_append(stepped, sizeof(stepped), insn->mnemonic);
	}
	snprintf(out->why, sizeof(out->why),
		 "entry kept: no emulated instruction in the first %d instructions",
		 PROBESITE_MAX_INSNS);
}

int probesite__choose(const uint8_t *code, size_t len, uint64_t addr, int nargs,
		      struct pml_probesite *out)
{
	cs_insn *insn;
	csh handle;

	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!code || nargs < 0 || nargs > PROBESITE_MAX_ARGS)
		return -EINVAL;

	if (len == 0) {
		snprintf(out->why, sizeof(out->why), "entry kept: no code to decode");
		return 0;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &handle) != CS_ERR_OK) {
		snprintf(out->why, sizeof(out->why), "entry kept: capstone unavailable");
		return 0;
	}
	if (cs_option(handle, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		snprintf(out->why, sizeof(out->why), "entry kept: capstone has no detail mode");
		goto out_close;
	}
	insn = cs_malloc(handle);
	if (!insn) {
		snprintf(out->why, sizeof(out->why), "entry kept: out of memory");
		goto out_close;
	}

	probesite__walk(handle, insn, code, len, addr, nargs, out);

	cs_free(insn, 1);
out_close:
	cs_close(&handle);
	return 0;
}
