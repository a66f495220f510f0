/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * ELF64 x86-64 reader over a memory image. The layouts come from the kernel's
 * <linux/elf.h>: glibc's <elf.h> is shadowed by our own user/elf.h (-Iuser).
 * The image is untrusted and may be unaligned: every structure is copied out
 * with memcpy after a bounds check, every string is checked to end inside
 * its table. Everything is validated in elf__open_mem(); the queries only
 * walk what was validated there.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/elf.h>

#include "elf.h"

/* gABI / GNU values that the kernel header does not carry. */
#ifndef SHN_XINDEX
#define SHN_XINDEX 0xffff
#endif
#ifndef STT_GNU_IFUNC
#define STT_GNU_IFUNC 10
#endif
#ifndef STB_GNU_UNIQUE
#define STB_GNU_UNIQUE 10
#endif
#ifndef DT_RUNPATH
#define DT_RUNPATH 29
#endif

#define PML_ELF_FILE_MAX (2ull << 30)
/* sym_at walks back over overlapping symbols at most this far. */
#define PML_ELF_OVERLAP_WALK 1024

struct strtab {
	uint64_t off;
	uint64_t size;
};

struct symtab {
	uint64_t off; /* of the first Elf64_Sym */
	uint32_t count;
	struct strtab str;
};

/* A named symbol in the name index. */
struct name_ent {
	const char *name; /* checked NUL-terminated in its table */
	uint32_t idx;
	uint8_t rank;
};

/* A function symbol in the address index. */
struct addr_ent {
	uint64_t value;
	uint64_t end; /* value + size, saturated */
	uint32_t idx;
	uint16_t shndx;
	uint8_t dynamic;
	uint8_t rank;
};

struct pml_elf {
	const uint8_t *img;
	size_t len;
	void *map; /* elf__open_file's mapping, or NULL */
	size_t map_len;
	int fd; /* elf__open_file's file, for elf__read_at; -1 otherwise */

	uint16_t type;
	uint64_t phoff;
	uint32_t phnum;
	uint64_t shoff;
	uint32_t shnum;
	struct strtab shstr; /* size 0: no section names */

	struct symtab sym; /* count 0: absent */
	struct symtab dynsym;

	uint64_t dyn_off;
	uint64_t dyn_count;
	struct strtab dynstr;
	const char *runpath;

	bool has_text;
	uint64_t text_addr;
	uint64_t text_off;
	uint64_t text_size;

	/* Built by the first lookup that needs them; freed by elf__close. */
	struct name_ent *name_idx[2]; /* [0] .symtab, [1] .dynsym; sorted by name */
	uint32_t name_n[2];
	bool name_built;
	struct addr_ent *addr_idx;
	uint64_t *addr_maxend; /* max end over addr_idx[0..i] */
	uint32_t addr_n;
	bool addr_built;
};

static bool range_ok(size_t len, uint64_t off, uint64_t size)
{
	return off <= len && size <= len - off;
}

/* off + n * size inside the image, overflow-safe. */
static bool array_ok(size_t len, uint64_t off, uint64_t n, uint64_t size)
{
	if (size && n > UINT64_MAX / size)
		return false;
	return range_ok(len, off, n * size);
}

static void read_phdr(const struct pml_elf *e, uint32_t i, Elf64_Phdr *ph)
{
	memcpy(ph, e->img + e->phoff + (uint64_t)i * sizeof(*ph), sizeof(*ph));
}

static void read_shdr(const struct pml_elf *e, uint32_t i, Elf64_Shdr *sh)
{
	memcpy(sh, e->img + e->shoff + (uint64_t)i * sizeof(*sh), sizeof(*sh));
}

static void read_sym(const struct pml_elf *e, const struct symtab *t, uint32_t i, Elf64_Sym *s)
{
	memcpy(s, e->img + t->off + (uint64_t)i * sizeof(*s), sizeof(*s));
}

/* NUL-terminated string at off in t, or NULL. */
static const char *str_at(const struct pml_elf *e, const struct strtab *t, uint64_t off)
{
	const char *s;

	if (off >= t->size)
		return NULL;
	s = (const char *)e->img + t->off + off;
	if (!memchr(s, '\0', t->size - off))
		return NULL;
	return s;
}

static bool shdr_in_file(const struct pml_elf *e, const Elf64_Shdr *sh)
{
	return sh->sh_type == SHT_NOBITS || range_ok(e->len, sh->sh_offset, sh->sh_size);
}

/* Section `idx` as a string table; a missing or empty one is an error. */
static int load_strtab(const struct pml_elf *e, uint32_t idx, struct strtab *t)
{
	Elf64_Shdr sh;

	if (idx == SHN_UNDEF || idx >= e->shnum)
		return -EINVAL;
	read_shdr(e, idx, &sh);
	if (sh.sh_type != SHT_STRTAB || !sh.sh_size)
		return -EINVAL;
	t->off = sh.sh_offset;
	t->size = sh.sh_size;
	return 0;
}

static int load_symtab(const struct pml_elf *e, const Elf64_Shdr *sh, struct symtab *t)
{
	uint64_t count;

	if (sh->sh_entsize != sizeof(Elf64_Sym) || sh->sh_size % sizeof(Elf64_Sym))
		return -EINVAL;
	count = sh->sh_size / sizeof(Elf64_Sym);
	if (count > UINT32_MAX)
		return -EINVAL;
	if (load_strtab(e, sh->sh_link, &t->str))
		return -EINVAL;
	t->off = sh->sh_offset;
	t->count = (uint32_t)count;
	return 0;
}

/* Program headers: bounds, and PT_LOAD consistency. */
static int load_phdrs(struct pml_elf *e, const Elf64_Ehdr *eh, uint32_t phnum)
{
	Elf64_Phdr ph;

	if (!phnum)
		return 0;
	if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !array_ok(e->len, eh->e_phoff, phnum, sizeof(ph)))
		return -EINVAL;
	e->phoff = eh->e_phoff;
	e->phnum = phnum;
	for (uint32_t i = 0; i < phnum; i++) {
		read_phdr(e, i, &ph);
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_filesz > ph.p_memsz || !range_ok(e->len, ph.p_offset, ph.p_filesz) ||
		    ph.p_vaddr > UINT64_MAX - ph.p_memsz)
			return -EINVAL;
	}
	return 0;
}

/*
 * Section headers, with the extended numbering of the ELF gABI: e_shnum 0
 * means "count in sh_size of section 0", e_shstrndx SHN_XINDEX "in sh_link",
 * e_phnum PN_XNUM "in sh_info".
 */
static int load_shdrs(struct pml_elf *e, const Elf64_Ehdr *eh, uint32_t *phnum)
{
	uint64_t shnum = eh->e_shnum;
	uint32_t shstrndx = eh->e_shstrndx;
	Elf64_Shdr sh0, sh;

	*phnum = eh->e_phnum;
	if (!eh->e_shoff) {
		if (*phnum == PN_XNUM)
			return -EINVAL;
		return 0;
	}
	if (eh->e_shentsize != sizeof(Elf64_Shdr) || !array_ok(e->len, eh->e_shoff, 1, sizeof(sh0)))
		return -EINVAL;
	memcpy(&sh0, e->img + eh->e_shoff, sizeof(sh0));
	if (!shnum)
		shnum = sh0.sh_size;
	if (shstrndx == SHN_XINDEX)
		shstrndx = sh0.sh_link;
	if (*phnum == PN_XNUM)
		*phnum = sh0.sh_info;
	if (!shnum || shnum > UINT32_MAX || !array_ok(e->len, eh->e_shoff, shnum, sizeof(sh)))
		return -EINVAL;
	e->shoff = eh->e_shoff;
	e->shnum = (uint32_t)shnum;

	for (uint32_t i = 1; i < e->shnum; i++) {
		read_shdr(e, i, &sh);
		if (!shdr_in_file(e, &sh))
			return -EINVAL;
		if ((sh.sh_flags & SHF_ALLOC) && sh.sh_addr > UINT64_MAX - sh.sh_size)
			return -EINVAL;
	}
	if (shstrndx != SHN_UNDEF && load_strtab(e, shstrndx, &e->shstr))
		return -EINVAL;
	return 0;
}

/* First SHT_SYMTAB, SHT_DYNSYM, SHT_DYNAMIC and the .text section. */
static int load_sections(struct pml_elf *e)
{
	bool seen_sym = false, seen_dynsym = false, seen_dyn = false;
	Elf64_Shdr sh;

	for (uint32_t i = 1; i < e->shnum; i++) {
		const char *name;

		read_shdr(e, i, &sh);
		switch (sh.sh_type) {
		case SHT_SYMTAB:
			if (seen_sym)
				break;
			seen_sym = true;
			if (load_symtab(e, &sh, &e->sym))
				return -EINVAL;
			break;
		case SHT_DYNSYM:
			if (seen_dynsym)
				break;
			seen_dynsym = true;
			if (load_symtab(e, &sh, &e->dynsym))
				return -EINVAL;
			break;
		case SHT_DYNAMIC:
			if (seen_dyn)
				break;
			seen_dyn = true;
			if (sh.sh_entsize != sizeof(Elf64_Dyn) || sh.sh_size % sizeof(Elf64_Dyn) ||
			    load_strtab(e, sh.sh_link, &e->dynstr))
				return -EINVAL;
			e->dyn_off = sh.sh_offset;
			e->dyn_count = sh.sh_size / sizeof(Elf64_Dyn);
			break;
		case SHT_PROGBITS:
			if (e->has_text || !(sh.sh_flags & SHF_EXECINSTR) || !e->shstr.size)
				break;
			name = str_at(e, &e->shstr, sh.sh_name);
			if (name && !strcmp(name, ".text")) {
				e->has_text = true;
				e->text_addr = sh.sh_addr;
				e->text_off = sh.sh_offset;
				e->text_size = sh.sh_size;
			}
			break;
		}
	}
	return 0;
}

/* File offset of [vaddr, vaddr + size) through PT_LOAD; -ENOENT if not file data. */
static int vaddr_range_to_offset(const struct pml_elf *e, uint64_t vaddr, uint64_t size,
				 uint64_t *off, uint64_t *avail)
{
	Elf64_Phdr ph;

	for (uint32_t i = 0; i < e->phnum; i++) {
		read_phdr(e, i, &ph);
		if (ph.p_type != PT_LOAD || vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz)
			continue;
		if (size > ph.p_filesz - (vaddr - ph.p_vaddr))
			continue;
		*off = ph.p_offset + (vaddr - ph.p_vaddr);
		if (avail)
			*avail = ph.p_filesz - (vaddr - ph.p_vaddr);
		return 0;
	}
	return -ENOENT;
}

/*
 * Files without section headers still have PT_DYNAMIC; its DT_STRTAB is a
 * virtual address. Best effort: a broken table leaves the dynamic info out.
 */
static void load_dynamic_from_phdrs(struct pml_elf *e)
{
	uint64_t strtab = 0, strsz = 0, off, count = 0, dyn_off = 0;
	bool found = false;
	Elf64_Phdr ph;
	Elf64_Dyn d;

	for (uint32_t i = 0; i < e->phnum && !found; i++) {
		read_phdr(e, i, &ph);
		if (ph.p_type != PT_DYNAMIC || !range_ok(e->len, ph.p_offset, ph.p_filesz))
			continue;
		dyn_off = ph.p_offset;
		count = ph.p_filesz / sizeof(Elf64_Dyn);
		found = true;
	}
	if (!found)
		return;
	for (uint64_t i = 0; i < count; i++) {
		memcpy(&d, e->img + dyn_off + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		if (d.d_tag == DT_STRTAB)
			strtab = d.d_un.d_ptr;
		else if (d.d_tag == DT_STRSZ)
			strsz = d.d_un.d_val;
	}
	if (!strsz || vaddr_range_to_offset(e, strtab, strsz, &off, NULL))
		return;
	e->dyn_off = dyn_off;
	e->dyn_count = count;
	e->dynstr.off = off;
	e->dynstr.size = strsz;
}

static void load_runpath(struct pml_elf *e)
{
	const char *rpath = NULL, *runpath = NULL;
	Elf64_Dyn d;

	for (uint64_t i = 0; i < e->dyn_count; i++) {
		memcpy(&d, e->img + e->dyn_off + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		if (d.d_tag == DT_RUNPATH && !runpath)
			runpath = str_at(e, &e->dynstr, d.d_un.d_val);
		else if (d.d_tag == DT_RPATH && !rpath)
			rpath = str_at(e, &e->dynstr, d.d_un.d_val);
	}
	e->runpath = runpath ? runpath : rpath;
}

struct pml_elf *elf__open_mem(const void *buf, size_t len)
{
	const unsigned char *id = buf;
	struct pml_elf *e;
	Elf64_Ehdr eh;
	uint32_t phnum;
	int err;

	if (!buf || len < EI_NIDENT || memcmp(id, ELFMAG, SELFMAG)) {
		errno = EINVAL;
		return NULL;
	}
	if (id[EI_CLASS] != ELFCLASS64 || id[EI_DATA] != ELFDATA2LSB) {
		errno = ENOTSUP;
		return NULL;
	}
	if (len < sizeof(eh)) {
		errno = EINVAL;
		return NULL;
	}
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_machine != EM_X86_64 || (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)) {
		errno = ENOTSUP;
		return NULL;
	}
	if (id[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT) {
		errno = EINVAL;
		return NULL;
	}

	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->img = buf;
	e->len = len;
	e->fd = -1;
	e->type = eh.e_type;

	err = load_shdrs(e, &eh, &phnum);
	if (!err)
		err = load_phdrs(e, &eh, phnum);
	if (!err)
		err = load_sections(e);
	if (err) {
		free(e);
		errno = -err;
		return NULL;
	}
	if (!e->dyn_count)
		load_dynamic_from_phdrs(e);
	load_runpath(e);
	return e;
}

struct pml_elf *elf__open_file(const char *path)
{
	struct pml_elf *e;
	struct stat st;
	void *map;
	int fd, err;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		err = errno;
		goto out_close_fd;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto out_close_fd;
	}
	if (st.st_size <= 0 || (uint64_t)st.st_size > PML_ELF_FILE_MAX) {
		err = st.st_size <= 0 ? EINVAL : EFBIG;
		goto out_close_fd;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		err = errno;
		goto out_close_fd;
	}
	e = elf__open_mem(map, (size_t)st.st_size);
	if (!e) {
		err = errno;
		munmap(map, (size_t)st.st_size);
		close(fd);
		errno = err;
		return NULL;
	}
	e->fd = fd;
	e->map = map;
	e->map_len = (size_t)st.st_size;
	return e;

out_close_fd:
	close(fd);
	errno = err;
	return NULL;
}

void elf__close(struct pml_elf *e)
{
	if (!e)
		return;
	free(e->name_idx[0]);
	free(e->name_idx[1]);
	free(e->addr_idx);
	free(e->addr_maxend);
	if (e->map)
		munmap(e->map, e->map_len);
	if (e->fd >= 0)
		close(e->fd);
	free(e);
}

int elf__read_at(const struct pml_elf *e, uint64_t vaddr, void *buf, size_t len)
{
	uint64_t off;
	size_t avail = len;
	const uint8_t *p;
	ssize_t n;

	if (!e || !buf)
		return -EINVAL;
	/* Bounds from the segment table, as elf__bytes_at. */
	p = elf__bytes_at(e, vaddr, &avail);
	if (!p || avail < len || elf__vaddr_to_offset(e, vaddr, &off))
		return -ENOENT;
	if (e->fd < 0) {
		memcpy(buf, p, len);
		return 0;
	}
	n = pread(e->fd, buf, len, (off_t)off);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

bool elf__has_symtab(const struct pml_elf *e)
{
	/* Entry 0 is the reserved null symbol. */
	return e && e->sym.count > 1;
}

bool elf__is_pie_or_dso(const struct pml_elf *e)
{
	return e && e->type == ET_DYN;
}

static bool sym_is_func(const Elf64_Sym *s)
{
	return ELF64_ST_TYPE(s->st_info) == STT_FUNC && s->st_shndx != SHN_UNDEF;
}

static bool sym_is_named_kind(const Elf64_Sym *s)
{
	switch (ELF64_ST_TYPE(s->st_info)) {
	case STT_FUNC:
	case STT_OBJECT:
	case STT_GNU_IFUNC:
	case STT_TLS:
		return s->st_shndx != SHN_UNDEF;
	default:
		return false;
	}
}

/* Preference among symbols of the same name or address: global > weak > local. */
static uint8_t sym_rank(const Elf64_Sym *s)
{
	switch (ELF64_ST_BIND(s->st_info)) {
	case STB_GLOBAL:
	case STB_GNU_UNIQUE:
		return 3;
	case STB_WEAK:
		return 2;
	default:
		return 1;
	}
}

static const struct symtab *table_of(const struct pml_elf *e, bool dynamic)
{
	return dynamic ? &e->dynsym : &e->sym;
}

static void fill_sym(const Elf64_Sym *s, const char *name, bool dynamic, struct pml_elf_sym *out)
{
	out->name = name;
	out->value = s->st_value;
	out->size = s->st_size;
	out->type = ELF64_ST_TYPE(s->st_info);
	out->bind = ELF64_ST_BIND(s->st_info);
	out->dynamic = dynamic;
}

static int cmp_name(const void *a, const void *b)
{
	const struct name_ent *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* Among equal names the preferred entry sorts first. */
	if (c)
		return c;
	if (x->rank != y->rank)
		return x->rank > y->rank ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int build_name_idx(struct pml_elf *e, int which)
{
	const struct symtab *t = table_of(e, which == 1);
	struct name_ent *idx;
	uint32_t n = 0;
	Elf64_Sym s;

	if (!t->count)
		return 0;
	idx = malloc((size_t)t->count * sizeof(*idx));
	if (!idx)
		return -ENOMEM;
	for (uint32_t i = 1; i < t->count; i++) {
		const char *name;

		read_sym(e, t, i, &s);
		if (!sym_is_named_kind(&s))
			continue;
		name = str_at(e, &t->str, s.st_name);
		if (!name || !name[0])
			continue;
		idx[n].name = name;
		idx[n].idx = i;
		idx[n].rank = sym_rank(&s);
		n++;
	}
	qsort(idx, n, sizeof(*idx), cmp_name);
	e->name_idx[which] = idx;
	e->name_n[which] = n;
	return 0;
}

/* The index is a cache: building it does not change what the handle describes. */
static int ensure_name_idx(const struct pml_elf *ce)
{
	struct pml_elf *e = (struct pml_elf *)ce;
	int err;

	if (e->name_built)
		return 0;
	err = build_name_idx(e, 0);
	if (!err)
		err = build_name_idx(e, 1);
	if (err) {
		free(e->name_idx[0]);
		free(e->name_idx[1]);
		e->name_idx[0] = e->name_idx[1] = NULL;
		e->name_n[0] = e->name_n[1] = 0;
		return err;
	}
	e->name_built = true;
	return 0;
}

static int lookup_name(const struct pml_elf *e, int which, const char *name,
		       struct pml_elf_sym *out)
{
	const struct name_ent *idx = e->name_idx[which];
	uint32_t lo = 0, hi = e->name_n[which];
	Elf64_Sym s;

	/* Lower bound: the first of equal names is the preferred one. */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (strcmp(idx[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= e->name_n[which] || strcmp(idx[lo].name, name))
		return -ENOENT;
	if (out) {
		read_sym(e, table_of(e, which == 1), idx[lo].idx, &s);
		fill_sym(&s, idx[lo].name, which == 1, out);
	}
	return 0;
}

int elf__find_sym(const struct pml_elf *e, const char *name, struct pml_elf_sym *out)
{
	int err;

	if (!e || !name)
		return -EINVAL;
	err = ensure_name_idx(e);
	if (err)
		return err;
	err = lookup_name(e, 0, name, out);
	if (err == -ENOENT)
		err = lookup_name(e, 1, name, out);
	return err;
}

int elf__find_dynsym(const struct pml_elf *e, const char *name, struct pml_elf_sym *out)
{
	int err;

	if (!e || !name)
		return -EINVAL;
	err = ensure_name_idx(e);
	if (err)
		return err;
	return lookup_name(e, 1, name, out);
}

static int cmp_addr(const void *a, const void *b)
{
	const struct addr_ent *x = a, *y = b;

	/* By address; among equals the preferred entry sorts last. */
	if (x->value != y->value)
		return x->value < y->value ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->dynamic != y->dynamic)
		return x->dynamic ? -1 : 1; /* .symtab preferred */
	if (x->idx != y->idx)
		return x->idx > y->idx ? -1 : 1; /* lower index preferred */
	return 0;
}

static int ensure_addr_idx(const struct pml_elf *ce)
{
	struct pml_elf *e = (struct pml_elf *)ce;
	uint64_t total = (uint64_t)e->sym.count + e->dynsym.count;
	struct addr_ent *idx;
	uint64_t *maxend;
	uint32_t n = 0;

	if (e->addr_built)
		return 0;
	if (total > UINT32_MAX)
		return -ENOMEM;
	idx = malloc((size_t)total * sizeof(*idx) + 1);
	maxend = malloc((size_t)total * sizeof(*maxend) + 1);
	if (!idx || !maxend) {
		free(idx);
		free(maxend);
		return -ENOMEM;
	}
	for (int which = 0; which < 2; which++) {
		const struct symtab *t = table_of(e, which == 1);
		Elf64_Sym s;

		for (uint32_t i = 1; i < t->count; i++) {
			read_sym(e, t, i, &s);
			if (!sym_is_func(&s) || !str_at(e, &t->str, s.st_name))
				continue;
			idx[n].value = s.st_value;
			idx[n].end = s.st_value > UINT64_MAX - s.st_size ? UINT64_MAX
									 : s.st_value + s.st_size;
			idx[n].idx = i;
			idx[n].shndx = s.st_shndx;
			idx[n].dynamic = which == 1;
			idx[n].rank = sym_rank(&s);
			n++;
		}
	}
	qsort(idx, n, sizeof(*idx), cmp_addr);
	for (uint32_t i = 0; i < n; i++)
		maxend[i] = i && maxend[i - 1] > idx[i].end ? maxend[i - 1] : idx[i].end;
	e->addr_idx = idx;
	e->addr_maxend = maxend;
	e->addr_n = n;
	e->addr_built = true;
	return 0;
}

static void addr_ent_sym(const struct pml_elf *e, const struct addr_ent *a, struct pml_elf_sym *out)
{
	const struct symtab *t = table_of(e, a->dynamic);
	Elf64_Sym s;

	read_sym(e, t, a->idx, &s);
	fill_sym(&s, (const char *)e->img + t->str.off + s.st_name, a->dynamic, out);
}

/* Index of the allocated, file-backed section holding vaddr, or 0. */
static uint32_t section_of(const struct pml_elf *e, uint64_t vaddr)
{
	Elf64_Shdr sh;

	for (uint32_t i = 1; i < e->shnum; i++) {
		read_shdr(e, i, &sh);
		if (!(sh.sh_flags & SHF_ALLOC) || sh.sh_type == SHT_NOBITS)
			continue;
		if (vaddr >= sh.sh_addr && vaddr - sh.sh_addr < sh.sh_size)
			return i;
	}
	return 0;
}

static bool section_is_exec(const struct pml_elf *e, uint32_t i)
{
	Elf64_Shdr sh;

	if (!i || i >= e->shnum)
		return false;
	read_shdr(e, i, &sh);
	return (sh.sh_flags & SHF_EXECINSTR) != 0;
}

int elf__sym_at(const struct pml_elf *e, uint64_t vaddr, struct pml_elf_sym *out)
{
	const struct addr_ent *a;
	uint32_t lo = 0, hi, top, sec;
	int err;

	if (!e)
		return -EINVAL;
	err = ensure_addr_idx(e);
	if (err)
		return err;
	a = e->addr_idx;
	/* hi = number of entries with value <= vaddr. */
	hi = e->addr_n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (a[mid].value <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -ENOENT;
	top = lo - 1;

	/*
	 * A sized symbol containing vaddr, nearest first; maxend tells when no
	 * earlier one can reach vaddr. Overlaps are rare (aliases share an
	 * address), so the walk is bounded rather than exhaustive.
	 */
	for (uint32_t j = top, steps = 0; steps < PML_ELF_OVERLAP_WALK; j--, steps++) {
		if (e->addr_maxend[j] <= vaddr)
			break;
		if (a[j].end > vaddr && a[j].end > a[j].value) {
			if (out)
				addr_ent_sym(e, &a[j], out);
			return 0;
		}
		if (!j)
			break;
	}

	/* Unsized: only the nearest preceding symbols, within its exec section. */
	sec = section_of(e, vaddr);
	if (!section_is_exec(e, sec))
		return -ENOENT;
	for (uint32_t j = top, steps = 0; steps < PML_ELF_OVERLAP_WALK; j--, steps++) {
		if (a[j].value != a[top].value)
			break;
		if (a[j].end == a[j].value && a[j].shndx == sec) {
			if (out)
				addr_ent_sym(e, &a[j], out);
			return 0;
		}
		if (!j)
			break;
	}
	return -ENOENT;
}

int elf__vaddr_to_offset(const struct pml_elf *e, uint64_t vaddr, uint64_t *off)
{
	uint64_t o;
	int err;

	if (!e)
		return -EINVAL;
	err = vaddr_range_to_offset(e, vaddr, 0, &o, NULL);
	if (!err && off)
		*off = o;
	return err;
}

uint64_t elf__first_load_vaddr(const struct pml_elf *e)
{
	uint64_t best = UINT64_MAX;
	Elf64_Phdr ph;

	if (!e)
		return 0;
	for (uint32_t i = 0; i < e->phnum; i++) {
		read_phdr(e, i, &ph);
		if (ph.p_type != PT_LOAD || ph.p_vaddr < ph.p_offset)
			continue;
		if (ph.p_vaddr - ph.p_offset < best)
			best = ph.p_vaddr - ph.p_offset;
	}
	return best == UINT64_MAX ? 0 : best;
}

const uint8_t *elf__bytes_at(const struct pml_elf *e, uint64_t vaddr, size_t *len)
{
	uint64_t off, avail;

	if (!e || !len)
		return NULL;
	if (vaddr_range_to_offset(e, vaddr, 0, &off, &avail))
		return NULL;
	if (*len > avail)
		*len = (size_t)avail;
	return e->img + off;
}

int elf__for_each_needed(const struct pml_elf *e, int (*cb)(const char *name, void *ctx), void *ctx)
{
	Elf64_Dyn d;

	if (!e || !cb)
		return -EINVAL;
	for (uint64_t i = 0; i < e->dyn_count; i++) {
		const char *name;
		int ret;

		memcpy(&d, e->img + e->dyn_off + i * sizeof(d), sizeof(d));
		if (d.d_tag == DT_NULL)
			break;
		if (d.d_tag != DT_NEEDED)
			continue;
		name = str_at(e, &e->dynstr, d.d_un.d_val);
		if (!name)
			continue;
		ret = cb(name, ctx);
		if (ret)
			return ret;
	}
	return 0;
}

const char *elf__runpath(const struct pml_elf *e)
{
	return e ? e->runpath : NULL;
}

int elf__text(const struct pml_elf *e, uint64_t *vaddr, const uint8_t **bytes, size_t *len)
{
	if (!e)
		return -EINVAL;
	if (!e->has_text)
		return -ENOENT;
	if (vaddr)
		*vaddr = e->text_addr;
	if (bytes)
		*bytes = e->img + e->text_off;
	if (len)
		*len = (size_t)e->text_size;
	return 0;
}

int elf__for_each_func(const struct pml_elf *e, int (*cb)(const struct pml_elf_sym *s, void *ctx),
		       void *ctx)
{
	struct pml_elf_sym out;
	Elf64_Sym s;

	if (!e || !cb)
		return -EINVAL;
	for (int which = 0; which < 2; which++) {
		const struct symtab *t = table_of(e, which == 1);

		for (uint32_t i = 1; i < t->count; i++) {
			const char *name;
			int ret;

			read_sym(e, t, i, &s);
			if (!sym_is_func(&s))
				continue;
			name = str_at(e, &t->str, s.st_name);
			if (!name)
				continue;
			fill_sym(&s, name, which == 1, &out);
			ret = cb(&out, ctx);
			if (ret)
				return ret;
		}
	}
	return 0;
}
