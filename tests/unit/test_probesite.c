/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * probesite__choose() on real prologues (bytes copied from the libraries on
 * the development machine, 48 bytes from each symbol) and on synthetic
 * buffers for the edge cases.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "probesite.h"

/* libasan.so.8 (Debian 12 gcc 12) malloc at 0xb8910: endbr64; push rbp; mov rbp,rsp */
static const uint8_t asan_malloc[] = {
	0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x41, 0x56, 0x41, 0x55,
	0x41, 0x54, 0x49, 0x89, 0xfc, 0x53, 0x48, 0x81, 0xec, 0x20, 0x08, 0x00,
	0x00, 0x48, 0x8d, 0x05, 0xa8, 0x4b, 0x09, 0x00, 0x80, 0x38, 0x00, 0x0f,
	0x85, 0x17, 0x01, 0x00, 0x00, 0x48, 0x8d, 0x05, 0x9c, 0x4b, 0x09, 0x00,
};

/* libasan.so.8 free at 0xb8580: endbr64; push rbx; mov rbx,rdi; call ... */
static const uint8_t asan_free[] = {
	0xf3, 0x0f, 0x1e, 0xfa, 0x53, 0x48, 0x89, 0xfb, 0xe8, 0xb3, 0xf9, 0x00,
	0x00, 0x48, 0x89, 0xd9, 0x48, 0xc1, 0xe9, 0x2f, 0x74, 0x0a, 0x48, 0x89,
	0xdf, 0x5b, 0xe9, 0x71, 0xf0, 0xff, 0xff, 0x90, 0x48, 0x89, 0xde, 0x48,
	0xc1, 0xee, 0x20, 0x48, 0x8b, 0x54, 0xf0, 0x08, 0x48, 0x85, 0xd2, 0x74,
};

/* libc.so.6 (glibc 2.36) malloc at 0x98930: push r12 (41 54); push rbp; push rbx */
static const uint8_t libc_malloc[] = {
	0x41, 0x54, 0x55, 0x53, 0x48, 0x89, 0xfb, 0x48, 0x83, 0xec, 0x10, 0x80,
	0x3d, 0x46, 0x1b, 0x14, 0x00, 0x00, 0x0f, 0x84, 0xf8, 0x01, 0x00, 0x00,
	0x48, 0x85, 0xdb, 0x0f, 0x88, 0xfd, 0x01, 0x00, 0x00, 0x48, 0x8d, 0x43,
	0x17, 0x31, 0xed, 0x48, 0x83, 0xf8, 0x1f, 0x76, 0x0c, 0x48, 0x83, 0xe0,
};

/* libc.so.6 free at 0x98ef0: test rdi,rdi; je 0x98fb8; push rbp; lea rsi,[rdi-0x10] */
static const uint8_t libc_free[] = {
	0x48, 0x85, 0xff, 0x0f, 0x84, 0xbf, 0x00, 0x00, 0x00, 0x55, 0x48, 0x8d,
	0x77, 0xf0, 0x53, 0x48, 0x83, 0xec, 0x18, 0x48, 0x8b, 0x1d, 0xd6, 0x9e,
	0x13, 0x00, 0x48, 0x8b, 0x47, 0xf8, 0x64, 0x8b, 0x2b, 0xa8, 0x02, 0x75,
	0x5b, 0x48, 0x8b, 0x15, 0x5c, 0x9e, 0x13, 0x00, 0x64, 0x48, 0x83, 0x3a,
};

/* pyenv 3.8.18 libpython3.8.so.1.0 _PyObject_Malloc at 0xe21a0: push rbx; mov rdi,rsi */
static const uint8_t py38_pyobject_malloc[] = {
	0x53, 0x48, 0x89, 0xf7, 0x48, 0x89, 0xf3, 0xe8, 0xd4, 0xfa, 0xff, 0xff,
	0x48, 0x85, 0xc0, 0x74, 0x0f, 0x48, 0x83, 0x05, 0x67, 0x75, 0x27, 0x00,
	0x01, 0x5b, 0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x48, 0x89, 0xdf, 0xe8,
	0x78, 0x85, 0xf8, 0xff, 0x48, 0x85, 0xc0, 0x75, 0xe4, 0x5b, 0xc3, 0x90,
};

/* pyenv 3.9.18 libpython3.9.so.1.0 _PyObject_Malloc at 0x104610: lea rax,[rsi-1]; push rbx */
static const uint8_t py39_pyobject_malloc[] = {
	0x48, 0x8d, 0x46, 0xff, 0x53, 0x48, 0x89, 0xf3, 0x48, 0x3d, 0xff, 0x01,
	0x00, 0x00, 0x77, 0x60, 0x8d, 0x7e, 0xff, 0x48, 0x8d, 0x15, 0xd6, 0x6f,
	0x26, 0x00, 0xc1, 0xef, 0x04, 0x8d, 0x04, 0x3f, 0x48, 0x8b, 0x14, 0xc2,
	0x48, 0x8b, 0x72, 0x10, 0x48, 0x39, 0xf2, 0x74, 0x33, 0x48, 0x8b, 0x42,
};

/* pyenv 3.12.1 libpython3.12.so.1.0 _PyObject_Free at 0x1cef80: test rsi,rsi; je; push r12 */
static const uint8_t py312_pyobject_free[] = {
	0x48, 0x85, 0xf6, 0x0f, 0x84, 0xb7, 0x00, 0x00, 0x00, 0x41, 0x54, 0x55,
	0x53, 0x48, 0x89, 0xf3, 0x66, 0x48, 0x8d, 0x3d, 0x58, 0x4f, 0x37, 0x00,
	0x66, 0x66, 0x48, 0xe8, 0x40, 0x96, 0xf3, 0xff, 0x4c, 0x8b, 0x25, 0x59,
	0x4d, 0x37, 0x00, 0x48, 0x8b, 0x00, 0x48, 0x8b, 0x68, 0x10, 0x49, 0x3b,
};

/* pyenv 3.12.1 libpython3.12.so.1.0 PyObject_Malloc at 0x1cf430: mov rsi,rdi; test rdi,rdi; js */
static const uint8_t py312_public_malloc[] = {
	0x48, 0x89, 0xfe, 0x48, 0x85, 0xff, 0x78, 0x18, 0x48, 0x8b, 0x05, 0xc1,
	0x48, 0x37, 0x00, 0x48, 0x8b, 0xb8, 0xb0, 0x00, 0x00, 0x00, 0xff, 0xa0,
	0xb8, 0x00, 0x00, 0x00, 0x0f, 0x1f, 0x40, 0x00, 0x31, 0xc0, 0xc3, 0x66,
	0x66, 0x2e, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x90,
};

/* pyenv 3.12.1 libpython3.12.so.1.0 _PyMem_ArenaAlloc at 0x1cd6f0: sub rsp,8; ... call mmap */
static const uint8_t py312_arena_alloc[] = {
	0x48, 0x83, 0xec, 0x08, 0x45, 0x31, 0xc9, 0xba, 0x03, 0x00, 0x00, 0x00,
	0x31, 0xff, 0x41, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xb9, 0x22, 0x00, 0x00,
	0x00, 0xe8, 0xf2, 0x8e, 0xf3, 0xff, 0x31, 0xd2, 0x48, 0x83, 0xf8, 0xff,
	0x48, 0x0f, 0x44, 0xc2, 0x48, 0x83, 0xc4, 0x08, 0xc3, 0x0f, 0x1f, 0x00,
};

/* pyenv 3.12.1 libpython3.12.so.1.0 _PyCrossInterpreterData_Clear at 0x2d7fb0:
 * mov rdi,[rsi]; push rbx */
static const uint8_t py312_xidata_clear[] = {
	0x48, 0x8b, 0x3e, 0x53, 0x48, 0x89, 0xf3, 0x48, 0x85, 0xff, 0x74, 0x12,
	0x48, 0x8b, 0x46, 0x20, 0x48, 0x85, 0xc0, 0x74, 0x02, 0xff, 0xd0, 0x48,
	0xc7, 0x03, 0x00, 0x00, 0x00, 0x00, 0x48, 0x8b, 0x7b, 0x08, 0x48, 0x85,
	0xff, 0x74, 0x18, 0x48, 0x8b, 0x07, 0x48, 0xc7, 0x43, 0x08, 0x00, 0x00,
};

/* pyenv 3.13.0 libpython3.13.so.1.0 _PyObject_Realloc at 0x16b730: push r15 (41 57) */
static const uint8_t py313_pyobject_realloc[] = {
	0x41, 0x57, 0x49, 0x89, 0xff, 0x41, 0x56, 0x49, 0x89, 0xd6, 0x41, 0x55,
	0x41, 0x54, 0x55, 0x53, 0x48, 0x83, 0xec, 0x28, 0x48, 0x85, 0xf6, 0x0f,
	0x84, 0xab, 0x01, 0x00, 0x00, 0x48, 0x89, 0xf5, 0x48, 0x89, 0xf3, 0x66,
	0x48, 0x8d, 0x3d, 0x65, 0xf7, 0x37, 0x00, 0x66, 0x66, 0x48, 0xe8, 0xcd,
};

static struct pml_probesite choose(const uint8_t *code, size_t len, uint64_t addr, int nargs)
{
	struct pml_probesite site;

	memset(&site, 0xa5, sizeof(site)); /* catch fields left unset */
	assert_int_equal(probesite__choose(code, len, addr, nargs, &site), 0);
	assert_non_null(memchr(site.insn, '\0', sizeof(site.insn)));
	assert_non_null(memchr(site.why, '\0', sizeof(site.why)));
	assert_true(site.why[0] != '\0');
	return site;
}

static void assert_contains(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("\"%s\" does not contain \"%s\"", haystack, needle);
}

static void assert_entry_kept(const struct pml_probesite *site, const char *reason)
{
	assert_int_equal(site->offset, 0);
	assert_int_equal(site->emulated, 0);
	assert_contains(site->why, "entry kept");
	assert_contains(site->why, reason);
}

/* Real prologues */

static void choose__asan_malloc_endbr64_push__push_at_4(void **state)
{
	struct pml_probesite s = choose(asan_malloc, sizeof(asan_malloc), 0xb8910, 1);

	assert_int_equal(s.offset, 4);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push rbp");
	assert_string_equal(s.why, "first emulated instruction after endbr64");
}

static void choose__asan_free_endbr64_push__push_at_4(void **state)
{
	struct pml_probesite s = choose(asan_free, sizeof(asan_free), 0xb8580, 1);

	assert_int_equal(s.offset, 4);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push rbx");
}

static void choose__libc_malloc_rex_push_at_entry__entry(void **state)
{
	struct pml_probesite s = choose(libc_malloc, sizeof(libc_malloc), 0x98930, 1);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push r12");
	assert_string_equal(s.why, "entry instruction is emulated");
}

static void choose__libc_free_test_je__je_at_3(void **state)
{
	struct pml_probesite s = choose(libc_free, sizeof(libc_free), 0x98ef0, 1);

	assert_int_equal(s.offset, 3);
	assert_int_equal(s.emulated, 1);
	/* the branch target is printed relative to addr */
	assert_string_equal(s.insn, "je 0x98fb8");
	assert_string_equal(s.why, "first emulated instruction after test");
}

static void choose__py38_pyobject_malloc_push_at_entry__entry(void **state)
{
	struct pml_probesite s =
		choose(py38_pyobject_malloc, sizeof(py38_pyobject_malloc), 0xe21a0, 2);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push rbx");
}

static void choose__py39_pyobject_malloc_lea_rax_then_push__push_at_4(void **state)
{
	struct pml_probesite s =
		choose(py39_pyobject_malloc, sizeof(py39_pyobject_malloc), 0x104610, 2);

	assert_int_equal(s.offset, 4);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push rbx");
	assert_string_equal(s.why, "first emulated instruction after lea");
}

static void choose__py312_pyobject_free_test_rsi_je__je_at_3(void **state)
{
	struct pml_probesite s =
		choose(py312_pyobject_free, sizeof(py312_pyobject_free), 0x1cef80, 2);

	assert_int_equal(s.offset, 3);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "je 0x1cf040");
}

static void choose__py312_public_malloc_mov_writes_rsi_two_args__entry_kept(void **state)
{
	struct pml_probesite s =
		choose(py312_public_malloc, sizeof(py312_public_malloc), 0x1cf430, 2);

	assert_entry_kept(&s, "mov writes rsi");
	assert_string_equal(s.insn, "mov rsi, rdi");
}

static void choose__py312_public_malloc_one_arg__js_at_6(void **state)
{
	/* PyObject_Malloc(size) reads only rdi: clobbering rsi is harmless */
	struct pml_probesite s =
		choose(py312_public_malloc, sizeof(py312_public_malloc), 0x1cf430, 1);

	assert_int_equal(s.offset, 6);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "js 0x1cf450");
	assert_string_equal(s.why, "first emulated instruction after mov, test");
}

static void choose__py312_arena_alloc_sub_rsp_first__entry_kept(void **state)
{
	struct pml_probesite s = choose(py312_arena_alloc, sizeof(py312_arena_alloc), 0x1cd6f0, 2);

	assert_entry_kept(&s, "sub writes rsp");
	assert_string_equal(s.insn, "sub rsp, 8");
}

static void choose__py312_xidata_clear_writes_rdi_before_push__entry_kept(void **state)
{
	struct pml_probesite s =
		choose(py312_xidata_clear, sizeof(py312_xidata_clear), 0x2d7fb0, 2);

	assert_entry_kept(&s, "mov writes rdi");
	assert_string_equal(s.insn, "mov rdi, qword ptr [rsi]");
}

static void choose__py312_xidata_clear_no_args_read__push_at_3(void **state)
{
	struct pml_probesite s =
		choose(py312_xidata_clear, sizeof(py312_xidata_clear), 0x2d7fb0, 0);

	assert_int_equal(s.offset, 3);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push rbx");
}

static void choose__py313_pyobject_realloc_push_r15__entry(void **state)
{
	struct pml_probesite s =
		choose(py313_pyobject_realloc, sizeof(py313_pyobject_realloc), 0x16b730, 3);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push r15");
}

/* Synthetic: what counts as emulated */

static void choose__jmp_rel8_at_entry__entry_emulated(void **state)
{
	static const uint8_t code[] = { 0xeb, 0x10, 0x90 };
	struct pml_probesite s = choose(code, sizeof(code), 0x1000, 1);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "jmp 0x1012");
}

static void choose__jmp_rel32_at_entry__entry_emulated(void **state)
{
	static const uint8_t code[] = { 0xe9, 0x00, 0x01, 0x00, 0x00 };
	struct pml_probesite s = choose(code, sizeof(code), 0x1000, 1);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "jmp 0x1105");
}

static void choose__nop_then_mov__nop_at_entry(void **state)
{
	static const uint8_t code[] = { 0x90, 0x48, 0x89, 0xf7 }; /* nop; mov rdi,rsi */
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "nop");
}

static void choose__multibyte_nop_then_push__push_after_nop(void **state)
{
	/* nop dword ptr [rax+rax]: its memory operand is not an access */
	static const uint8_t code[] = { 0x0f, 0x1f, 0x44, 0x00, 0x00, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_int_equal(s.offset, 5);
	assert_string_equal(s.insn, "push rbx");
}

static void choose__call_rel32_at_entry__entry_emulated(void **state)
{
	static const uint8_t code[] = { 0xe8, 0xfb, 0xff, 0xff, 0xff };
	struct pml_probesite s = choose(code, sizeof(code), 0x2000, 1);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "call 0x2000");
}

static void choose__jcc_rel32_after_cmp__jcc_chosen(void **state)
{
	/* cmp rdi, 0x200; ja rel32 */
	static const uint8_t code[] = { 0x48, 0x81, 0xff, 0x00, 0x02, 0x00, 0x00,
					0x0f, 0x87, 0x10, 0x00, 0x00, 0x00 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_int_equal(s.offset, 7);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "ja 0x1d");
}

static void choose__rex_b_push_r12__emulated(void **state)
{
	static const uint8_t code[] = { 0x41, 0x54 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 6);

	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push r12");
}

static void choose__rex_w_push__not_emulated_entry_kept(void **state)
{
	/* 48 50 is push rax with REX.W: the kernel only takes REX 0x41 */
	static const uint8_t code[] = { 0x48, 0x50, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "push writes rsp");
}

static void choose__empty_rex_push__not_emulated_entry_kept(void **state)
{
	static const uint8_t code[] = { 0x40, 0x55, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "writes rsp");
}

static void choose__opsize_prefixed_push__not_emulated_entry_kept(void **state)
{
	static const uint8_t code[] = { 0x66, 0x50, 0x53 }; /* push ax */
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	/* capstone names the stack pointer esp here: any alias must stop the walk */
	assert_entry_kept(&s, "push writes ");
	assert_contains(s.why, "sp");
}

static void choose__prefixed_nops__stepped_over(void **state)
{
	/* pause (f3 90) and 66 90 are nops the kernel may single-step */
	static const uint8_t code[] = { 0xf3, 0x90, 0x66, 0x90, 0x41, 0x50 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 6);

	assert_int_equal(s.offset, 4);
	assert_int_equal(s.emulated, 1);
	assert_string_equal(s.insn, "push r8");
}

static void choose__prefixed_call__not_emulated_entry_kept(void **state)
{
	static const uint8_t code[] = { 0x66, 0xe8, 0x00, 0x00 }; /* callw */
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_int_equal(s.offset, 0);
	assert_int_equal(s.emulated, 0);
	assert_contains(s.why, "entry kept");
}

static void choose__hinted_jcc__not_emulated_entry_kept(void **state)
{
	static const uint8_t code[] = { 0x3e, 0x74, 0x00, 0x53 }; /* ds je: branch hint */
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "is a branch");
}

/* Synthetic: what stops the walk */

static void choose__indirect_jmp_at_entry__entry_kept(void **state)
{
	static const uint8_t code[] = { 0xff, 0x25, 0x00, 0x00, 0x00, 0x00, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "jmp is a branch");
}

static void choose__loop_at_entry__entry_kept(void **state)
{
	static const uint8_t code[] = { 0xe2, 0x00, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 0);

	assert_entry_kept(&s, "is a branch");
}

static void choose__ret_before_push__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x31, 0xc0, 0xc3, 0x53 }; /* xor eax,eax; ret */
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "ret is a return");
	assert_string_equal(s.insn, "xor eax, eax");
}

static void choose__store_to_stack_before_push__entry_kept(void **state)
{
	/* mov [rsp+8],rdi; push rbx */
	static const uint8_t code[] = { 0x48, 0x89, 0x7c, 0x24, 0x08, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "mov writes memory");
}

static void choose__sse_store_capstone_calls_read__entry_kept(void **state)
{
	/* movups [rsp],xmm0: capstone 4 reports the memory operand as read */
	static const uint8_t code[] = { 0x0f, 0x11, 0x04, 0x24, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 0);

	assert_entry_kept(&s, "writes memory");
}

static void choose__cmp_memory_then_jcc__jcc_chosen(void **state)
{
	/* cmp byte ptr [rip+0x10],0 only reads its memory operand */
	static const uint8_t code[] = { 0x80, 0x3d, 0x10, 0x00, 0x00, 0x00, 0x00, 0x74, 0x00 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 6);

	assert_int_equal(s.offset, 7);
	assert_int_equal(s.emulated, 1);
}

static void choose__xchg_with_memory__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x87, 0x04, 0x24, 0x53 }; /* xchg [rsp],eax */
	struct pml_probesite s = choose(code, sizeof(code), 0, 0);

	assert_entry_kept(&s, "writes memory");
}

static void choose__write_to_dh_with_three_args__entry_kept(void **state)
{
	static const uint8_t code[] = { 0xb6, 0x01, 0x53 }; /* mov dh,1 */
	struct pml_probesite s = choose(code, sizeof(code), 0, 3);

	assert_entry_kept(&s, "mov writes dh");
}

static void choose__write_to_dh_with_two_args__push_chosen(void **state)
{
	static const uint8_t code[] = { 0xb6, 0x01, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 2);

	assert_int_equal(s.offset, 2);
	assert_int_equal(s.emulated, 1);
}

static void choose__implicit_rdx_write_by_mul__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x48, 0xf7, 0xe6, 0x53 }; /* mul rsi */
	struct pml_probesite s = choose(code, sizeof(code), 0, 3);

	assert_entry_kept(&s, "mul writes rdx");
}

static void choose__xor_r9d_sixth_arg__depends_on_nargs(void **state)
{
	static const uint8_t code[] = { 0x45, 0x31, 0xc9, 0x53 }; /* xor r9d,r9d; push rbx */
	struct pml_probesite five = choose(code, sizeof(code), 0, 5);
	struct pml_probesite six = choose(code, sizeof(code), 0, 6);

	assert_int_equal(five.offset, 3);
	assert_entry_kept(&six, "xor writes r9d");
}

static void choose__syscall_at_entry__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x0f, 0x05, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 0);

	assert_entry_kept(&s, "syscall");
}

static void choose__eight_plain_movs__entry_kept(void **state)
{
	/* eight mov eax,ecx then a push: the walk gives up before the push */
	static const uint8_t code[] = { 0x89, 0xc8, 0x89, 0xc8, 0x89, 0xc8, 0x89, 0xc8, 0x89,
					0xc8, 0x89, 0xc8, 0x89, 0xc8, 0x89, 0xc8, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 6);

	assert_entry_kept(&s, "first 8 instructions");
	assert_string_equal(s.insn, "mov eax, ecx");
}

static void choose__seven_plain_movs__push_chosen(void **state)
{
	static const uint8_t code[] = { 0x89, 0xc8, 0x89, 0xc8, 0x89, 0xc8, 0x89, 0xc8,
					0x89, 0xc8, 0x89, 0xc8, 0x89, 0xc8, 0x53 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 6);

	assert_int_equal(s.offset, 14);
	assert_int_equal(s.emulated, 1);
}

static void choose__push_beyond_window__entry_kept(void **state)
{
	/* five movabs rax,imm64 (10 bytes each) put the push at +50 */
	struct pml_probesite s;
	uint8_t code[64];
	int i;

	memset(code, 0, sizeof(code));
	for (i = 0; i < 5; i++) {
		code[i * 10] = 0x48;
		code[i * 10 + 1] = 0xb8;
	}
	code[50] = 0x53;
	s = choose(code, sizeof(code), 0, 6);

	assert_entry_kept(&s, "first 48 bytes");
	assert_string_equal(s.insn, "movabs rax, 0");
}

static void choose__push_inside_window_after_long_insns__push_chosen(void **state)
{
	struct pml_probesite s;
	uint8_t code[64];
	int i;

	memset(code, 0, sizeof(code));
	for (i = 0; i < 4; i++) {
		code[i * 10] = 0x48;
		code[i * 10 + 1] = 0xb8;
	}
	code[40] = 0x53;
	s = choose(code, sizeof(code), 0, 6);

	assert_int_equal(s.offset, 40);
	assert_int_equal(s.emulated, 1);
}

/* Synthetic: bad input */

static void choose__garbage_at_entry__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x06, 0x07, 0x27, 0x2f }; /* invalid in 64-bit mode */
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "cannot decode at +0");
	assert_string_equal(s.insn, "(bad)");
}

static void choose__garbage_after_mov__entry_kept_with_entry_insn(void **state)
{
	static const uint8_t code[] = { 0x48, 0x89, 0xc8, 0x06 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "cannot decode at +3");
	assert_string_equal(s.insn, "mov rax, rcx");
}

static void choose__truncated_jcc__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x48, 0x85, 0xff, 0x0f, 0x84, 0x00 };
	struct pml_probesite s = choose(code, sizeof(code), 0, 1);

	assert_entry_kept(&s, "cannot decode at +3");
}

static void choose__len_zero__entry_kept(void **state)
{
	static const uint8_t code[] = { 0x53 };
	struct pml_probesite s = choose(code, 0, 0, 1);

	assert_entry_kept(&s, "no code");
	assert_string_equal(s.insn, "");
}

static void choose__null_code__einval(void **state)
{
	struct pml_probesite s;

	assert_int_equal(probesite__choose(NULL, 16, 0, 1, &s), -EINVAL);
}

static void choose__null_out__einval(void **state)
{
	static const uint8_t code[] = { 0x53 };

	assert_int_equal(probesite__choose(code, sizeof(code), 0, 1, NULL), -EINVAL);
}

static void choose__nargs_out_of_range__einval(void **state)
{
	static const uint8_t code[] = { 0x53 };
	struct pml_probesite s;

	assert_int_equal(probesite__choose(code, sizeof(code), 0, 7, &s), -EINVAL);
	assert_int_equal(probesite__choose(code, sizeof(code), 0, -1, &s), -EINVAL);
	assert_int_equal(probesite__choose(code, sizeof(code), 0, 6, &s), 0);
	assert_int_equal(probesite__choose(code, sizeof(code), 0, 0, &s), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(choose__asan_malloc_endbr64_push__push_at_4),
		cmocka_unit_test(choose__asan_free_endbr64_push__push_at_4),
		cmocka_unit_test(choose__libc_malloc_rex_push_at_entry__entry),
		cmocka_unit_test(choose__libc_free_test_je__je_at_3),
		cmocka_unit_test(choose__py38_pyobject_malloc_push_at_entry__entry),
		cmocka_unit_test(choose__py39_pyobject_malloc_lea_rax_then_push__push_at_4),
		cmocka_unit_test(choose__py312_pyobject_free_test_rsi_je__je_at_3),
		cmocka_unit_test(choose__py312_public_malloc_mov_writes_rsi_two_args__entry_kept),
		cmocka_unit_test(choose__py312_public_malloc_one_arg__js_at_6),
		cmocka_unit_test(choose__py312_arena_alloc_sub_rsp_first__entry_kept),
		cmocka_unit_test(choose__py312_xidata_clear_writes_rdi_before_push__entry_kept),
		cmocka_unit_test(choose__py312_xidata_clear_no_args_read__push_at_3),
		cmocka_unit_test(choose__py313_pyobject_realloc_push_r15__entry),
		cmocka_unit_test(choose__jmp_rel8_at_entry__entry_emulated),
		cmocka_unit_test(choose__jmp_rel32_at_entry__entry_emulated),
		cmocka_unit_test(choose__nop_then_mov__nop_at_entry),
		cmocka_unit_test(choose__multibyte_nop_then_push__push_after_nop),
		cmocka_unit_test(choose__call_rel32_at_entry__entry_emulated),
		cmocka_unit_test(choose__jcc_rel32_after_cmp__jcc_chosen),
		cmocka_unit_test(choose__rex_b_push_r12__emulated),
		cmocka_unit_test(choose__rex_w_push__not_emulated_entry_kept),
		cmocka_unit_test(choose__empty_rex_push__not_emulated_entry_kept),
		cmocka_unit_test(choose__opsize_prefixed_push__not_emulated_entry_kept),
		cmocka_unit_test(choose__prefixed_nops__stepped_over),
		cmocka_unit_test(choose__prefixed_call__not_emulated_entry_kept),
		cmocka_unit_test(choose__hinted_jcc__not_emulated_entry_kept),
		cmocka_unit_test(choose__indirect_jmp_at_entry__entry_kept),
		cmocka_unit_test(choose__loop_at_entry__entry_kept),
		cmocka_unit_test(choose__ret_before_push__entry_kept),
		cmocka_unit_test(choose__store_to_stack_before_push__entry_kept),
		cmocka_unit_test(choose__sse_store_capstone_calls_read__entry_kept),
		cmocka_unit_test(choose__cmp_memory_then_jcc__jcc_chosen),
		cmocka_unit_test(choose__xchg_with_memory__entry_kept),
		cmocka_unit_test(choose__write_to_dh_with_three_args__entry_kept),
		cmocka_unit_test(choose__write_to_dh_with_two_args__push_chosen),
		cmocka_unit_test(choose__implicit_rdx_write_by_mul__entry_kept),
		cmocka_unit_test(choose__xor_r9d_sixth_arg__depends_on_nargs),
		cmocka_unit_test(choose__syscall_at_entry__entry_kept),
		cmocka_unit_test(choose__eight_plain_movs__entry_kept),
		cmocka_unit_test(choose__seven_plain_movs__push_chosen),
		cmocka_unit_test(choose__push_beyond_window__entry_kept),
		cmocka_unit_test(choose__push_inside_window_after_long_insns__push_chosen),
		cmocka_unit_test(choose__garbage_at_entry__entry_kept),
		cmocka_unit_test(choose__garbage_after_mov__entry_kept_with_entry_insn),
		cmocka_unit_test(choose__truncated_jcc__entry_kept),
		cmocka_unit_test(choose__len_zero__entry_kept),
		cmocka_unit_test(choose__null_code__einval),
		cmocka_unit_test(choose__null_out__einval),
		cmocka_unit_test(choose__nargs_out_of_range__einval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
