/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Probe-site selection. A uprobe on an instruction the kernel must
 * single-step out of line (mov, lea, sub, endbr64, ...) costs ~9.7 us a hit
 * here; on one it emulates (push reg, nop, jmp/jcc/call rel) ~0.7 us. We move
 * each probe from the function entry to the first emulated instruction that
 * every call reaches with the argument registers, the stack pointer and the
 * return address at [rsp] unchanged. Decoding uses capstone, never byte
 * patterns.
 */
#ifndef PML_PROBESITE_H
#define PML_PROBESITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cs_insn;

/* How many bytes of a function to hand to probesite__choose(). */
#define PML_PROBESITE_WINDOW 48

struct pml_probesite {
	uint32_t offset; /* from the function start; 0 = the entry */
	int emulated;	 /* 1 if the chosen instruction is kernel-emulated */
	char insn[48];	 /* "push rbx", "je 0x1234", ... for -v */
	char why[96];	 /* why this site (or why the entry was kept) */
};

/*
 * Choose the probe site within code[0..len) of a function starting at
 * address `addr` (used only for printing branch targets).
 * nargs: how many integer argument registers the probe reads (rdi, rsi,
 * rdx, ...; 1 for free, 2 for calloc/realloc ...); the return address at [rsp]
 * is always needed. Never fails: falls back to offset 0 with a reason.
 * Returns 0, or -EINVAL for bad arguments.
 */
int probesite__choose(const uint8_t *code, size_t len, uint64_t addr, int nargs,
		      struct pml_probesite *out);

/*
 * Does the kernel emulate this decoded instruction (capstone, with detail)
 * instead of single-stepping it? Shared with the inlined-site analysis.
 */
bool probesite__insn_emulated(const struct cs_insn *insn);

#endif
