/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small ELF64 (x86-64, little endian) reader over an in-memory image.
 * Binaries come from traced processes, possibly from containers we do not
 * trust: every header, table and string is bounds-checked against the image
 * size; nothing is recursive; a malformed file yields an error, never a
 * crash. Pure over a byte buffer so a fuzzer can drive it.
 */
#ifndef PML_ELF_H
#define PML_ELF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pml_elf_sym {
	const char *name; /* points into the image */
	uint64_t value;	  /* st_value (virtual address) */
	uint64_t size;
	uint8_t type; /* STT_* */
	uint8_t bind; /* STB_* */
	bool dynamic; /* from .dynsym (else .symtab) */
};

struct pml_elf;

/* Parse an image held by the caller (not copied; must outlive the handle).
 * Returns NULL with errno set (EINVAL malformed, ENOTSUP not ELF64 x86-64
 * ET_EXEC/ET_DYN). Strict: any section or PT_LOAD outside the image, a bad
 * entry size, a symbol/dynamic table without a valid string table fails.
 * Names that do not end inside their string table are ignored. Without
 * section headers, DT_NEEDED/DT_RUNPATH come from PT_DYNAMIC + DT_STRTAB. */
struct pml_elf *elf__open_mem(const void *buf, size_t len);

/* mmap a file read-only (O_NOFOLLOW not applied: paths come from /proc/PID/root)
 * and parse it. Regular files of 1 byte to 2 GiB only (EISDIR, EINVAL, EFBIG).
 * Returns NULL with errno set. A file truncated while mapped raises SIGBUS on
 * access, as with any mmap reader. */
struct pml_elf *elf__open_file(const char *path);

void elf__close(struct pml_elf *e); /* NULL-safe */

bool elf__has_symtab(const struct pml_elf *e);	  /* a non-empty .symtab */
bool elf__is_pie_or_dso(const struct pml_elf *e); /* ET_DYN */

/* Function or object symbol by exact name; .symtab preferred over .dynsym.
 * Defined symbols only (st_shndx != SHN_UNDEF) of type FUNC, OBJECT,
 * GNU_IFUNC or TLS (out->type tells; a TLS value is an offset in the TLS
 * block). Among equal names: global, then weak, then local, then table order.
 * The first lookup builds a sorted index (freed by elf__close): the handle
 * is not safe for concurrent first use. Returns 0, -ENOENT, -ENOMEM (index),
 * -EINVAL (NULL args). */
int elf__find_sym(const struct pml_elf *e, const char *name, struct pml_elf_sym *out);

/* Same, restricted to .dynsym. */
int elf__find_dynsym(const struct pml_elf *e, const char *name, struct pml_elf_sym *out);

/* The function symbol containing vaddr (value <= vaddr < value+size, or the
 * nearest preceding one when sizes are 0). Returns 0 or -ENOENT.
 * STT_FUNC of both tables. A sized symbol containing vaddr wins (the one with
 * the greatest value; overlaps are searched up to 1024 entries back). Else an
 * unsized one at the greatest value <= vaddr, only if vaddr lies in that
 * symbol's own section and the section is executable. Aliases: global, then
 * weak, then local, .symtab before .dynsym. Index built on first use as for
 * elf__find_sym; also -ENOMEM, -EINVAL. */
int elf__sym_at(const struct pml_elf *e, uint64_t vaddr, struct pml_elf_sym *out);

/* Virtual address -> file offset through the PT_LOAD program headers.
 * Returns 0 or -ENOENT when no loadable segment holds vaddr in its file data
 * (.bss, beyond p_filesz, is not file data). */
int elf__vaddr_to_offset(const struct pml_elf *e, uint64_t vaddr, uint64_t *off);

/* Lowest p_vaddr - p_offset of PT_LOAD segments (load bias helper):
 * runtime address = mapping_start_of_offset0 - first_load_vaddr + vaddr. */
uint64_t elf__first_load_vaddr(const struct pml_elf *e);

/* Bytes of the file at vaddr (up to *len; clipped to the segment's file
 * data, *len updated). NULL if vaddr is not in file-backed data. */
const uint8_t *elf__bytes_at(const struct pml_elf *e, uint64_t vaddr, size_t *len);

/*
 * Copy len bytes of the file at vaddr into buf, read from the file itself:
 * the mapping elf__bytes_at() reads from can hold the int3 breakpoints of
 * uprobes attached for every process (ours included), so code that is
 * disassembled must come from here. Returns 0, -ENOENT (not in file-backed
 * data), -EIO (short read) or -errno.
 */
int elf__read_at(const struct pml_elf *e, uint64_t vaddr, void *buf, size_t len);

/* DT_NEEDED entries: calls cb(name, ctx) for each; stops when cb returns
 * non-zero and returns that value. Returns 0 otherwise. */
int elf__for_each_needed(const struct pml_elf *e, int (*cb)(const char *name, void *ctx),
			 void *ctx);

/* DT_RUNPATH, else DT_RPATH, or NULL. */
const char *elf__runpath(const struct pml_elf *e);

/* Executable section bounds (.text), for disassembly scans. Returns 0 or -ENOENT. */
int elf__text(const struct pml_elf *e, uint64_t *vaddr, const uint8_t **bytes, size_t *len);

/* Calls cb for every defined function symbol (both tables); cb returning
 * non-zero stops the walk and that value is returned.
 * STT_FUNC only, .symtab first; an exported function appears once per table
 * (s->dynamic tells). Returns -EINVAL for NULL args. */
int elf__for_each_func(const struct pml_elf *e, int (*cb)(const struct pml_elf_sym *s, void *ctx),
		       void *ctx);

#endif
