/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Unit tests for user/elf.c. Test binaries are compiled at run time with the
 * system cc; nm and objdump serve as independent oracles for addresses and
 * bytes. Corruption tests patch an in-memory copy held in an exactly sized
 * heap buffer so that any out-of-bounds read shows under ASan or valgrind.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* glibc's <elf.h> is shadowed by user/elf.h (-Iuser); the kernel's has the layouts. */
#include <linux/elf.h>

#include <cmocka.h>

#ifndef DT_RUNPATH
#define DT_RUNPATH 29
#endif

#include "elf.h"

#define LIBPYTHON312	 "/root/.pyenv/versions/3.12.1/lib/libpython3.12.so.1.0"
#define DEBIAN_PYTHON311 "/usr/bin/python3.11"

static const char lib_src[] =
	"#include <math.h>\n"
	"int pml_test_global = 42;\n"
	"char pml_test_bss[65536];\n"
	"static volatile int pml_local_counter;\n"
	"__attribute__((noinline, used)) static int pml_test_static(int x)\n"
	"{ return x * 3 + pml_local_counter; }\n"
	"__attribute__((noinline)) int pml_test_add(int a, int b)\n"
	"{ return a + b + pml_test_static(a); }\n"
	"double pml_test_cos(double x) { return cos(x); }\n"
	/* A function symbol without .size, like hand-written assembly. */
	"__asm__(\".pushsection .text\\n.globl pml_test_nosize\\n"
	".type pml_test_nosize,@function\\npml_test_nosize:\\nnop\\nnop\\nnop\\nret\\n"
	".popsection\\n\");\n";

static const char exe_src[] = "int pml_exe_value = 7;\n"
			      "int main(void) { return pml_exe_value - 7; }\n";

static struct {
	bool ready;
	char dir[64];
	char dso[128];	     /* -shared, RUNPATH /some/dir, NEEDED libm */
	char rpath_dso[128]; /* DT_RPATH only */
	char stripped[128];  /* dso after strip: .dynsym only */
	char exe[128];	     /* -no-pie executable */
} fx;

static int write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int group_setup(void **state)
{
	char src[128];

	(void)state;
	if (run("command -v cc >/dev/null 2>&1 && command -v strip >/dev/null 2>&1"))
		return 0;
	snprintf(fx.dir, sizeof(fx.dir), "/tmp/pml_test_elf_XXXXXX");
	if (!mkdtemp(fx.dir))
		return -1;
	snprintf(fx.dso, sizeof(fx.dso), "%s/libt.so", fx.dir);
	snprintf(fx.rpath_dso, sizeof(fx.rpath_dso), "%s/librp.so", fx.dir);
	snprintf(fx.stripped, sizeof(fx.stripped), "%s/libt_stripped.so", fx.dir);
	snprintf(fx.exe, sizeof(fx.exe), "%s/exe", fx.dir);

	snprintf(src, sizeof(src), "%s/lib.c", fx.dir);
	if (write_text(src, lib_src))
		return -1;
	if (run("cc -O1 -shared -fPIC -o %s %s -Wl,--no-as-needed -lm -Wl,--enable-new-dtags "
		"-Wl,-rpath,/some/dir",
		fx.dso, src))
		return -1;
	if (run("cc -O1 -shared -fPIC -o %s %s -Wl,--disable-new-dtags -Wl,-rpath,/old/rpath",
		fx.rpath_dso, src))
		return -1;
	if (run("strip -o %s %s", fx.stripped, fx.dso))
		return -1;
	snprintf(src, sizeof(src), "%s/main.c", fx.dir);
	if (write_text(src, exe_src))
		return -1;
	if (run("cc -O1 -no-pie -o %s %s", fx.exe, src))
		return -1;
	fx.ready = true;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	if (fx.dir[0])
		run("rm -rf '%s'", fx.dir);
	return 0;
}

/* cmocka's skip() leaves the test; a missing compiler is a visible skip. */
static void need_cc(void)
{
	if (!fx.ready) {
		print_message("cc or strip not found: skipping\n");
		skip();
	}
}

/* Value and size of a defined symbol according to nm (the oracle). */
static bool nm_lookup(const char *path, bool dynamic, const char *name, uint64_t *value,
		      uint64_t *size)
{
	char cmd[512], line[1024], sym[512];
	unsigned long long v, s;
	bool found = false;
	char type;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "nm -S %s--defined-only '%s' 2>/dev/null", dynamic ? "-D " : "",
		 path);
	p = popen(cmd, "r");
	if (!p)
		return false;
	while (fgets(line, sizeof(line), p)) {
		if (sscanf(line, "%llx %llx %c %511s", &v, &s, &type, sym) != 4) {
			s = 0;
			if (sscanf(line, "%llx %c %511s", &v, &type, sym) != 3)
				continue;
		}
		if (!found && !strcmp(sym, name)) {
			*value = v;
			*size = s;
			found = true;
		}
	}
	pclose(p);
	return found;
}

/* Bytes objdump shows for [vaddr, vaddr + n). Returns how many it printed. */
static size_t objdump_bytes(const char *path, uint64_t vaddr, size_t n, uint8_t *out)
{
	char cmd[512], line[1024];
	size_t got = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "objdump -d --start-address=0x%llx --stop-address=0x%llx '%s' 2>/dev/null",
		 (unsigned long long)vaddr, (unsigned long long)(vaddr + n), path);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while (fgets(line, sizeof(line), p)) {
		char *q = line;
		unsigned int b;

		/* Instruction lines: "  1109:\t8d 04 37   \tlea ..." */
		while (*q == ' ')
			q++;
		while ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))
			q++;
		if (q == line || q[0] != ':' || q[1] != '\t')
			continue;
		q += 2;
		/* two hex digits then a space; %x alone would skip into the mnemonic */
		while (got < n && isxdigit((unsigned char)q[0]) && isxdigit((unsigned char)q[1]) &&
		       q[2] == ' ' && sscanf(q, "%2x", &b) == 1) {
			out[got++] = (uint8_t)b;
			q += 3;
		}
	}
	pclose(p);
	return got;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	FILE *f;

	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fstat(fileno(f), &st), 0);
	buf = malloc((size_t)st.st_size);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)st.st_size, f), (size_t)st.st_size);
	fclose(f);
	*len = (size_t)st.st_size;
	return buf;
}

static void expect_sym(const struct pml_elf *e, const char *path, const char *name, bool dynamic,
		       uint8_t type, uint8_t bind)
{
	struct pml_elf_sym s;
	uint64_t v, sz;

	assert_int_equal(elf__find_sym(e, name, &s), 0);
	assert_string_equal(s.name, name);
	assert_int_equal(s.dynamic, dynamic);
	assert_int_equal(s.type, type);
	assert_int_equal(s.bind, bind);
	assert_true(nm_lookup(path, dynamic, name, &v, &sz));
	assert_true(s.value == v);
	assert_true(s.size == sz);
}

static void find_sym__dso__matches_nm(void **state)
{
	struct pml_elf_sym s, d;
	struct pml_elf *e;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_true(elf__has_symtab(e));
	assert_true(elf__is_pie_or_dso(e));

	/* .symtab preferred when both tables hold the name */
	expect_sym(e, fx.dso, "pml_test_add", false, STT_FUNC, STB_GLOBAL);
	expect_sym(e, fx.dso, "pml_test_static", false, STT_FUNC, STB_LOCAL);
	expect_sym(e, fx.dso, "pml_test_global", false, STT_OBJECT, STB_GLOBAL);
	expect_sym(e, fx.dso, "pml_test_nosize", false, STT_FUNC, STB_GLOBAL);

	assert_int_equal(elf__find_sym(e, "pml_test_add", &s), 0);
	assert_int_equal(elf__find_dynsym(e, "pml_test_add", &d), 0);
	assert_true(d.dynamic);
	assert_true(d.value == s.value && d.size == s.size);

	/* locals are not exported; undefined imports are not definitions */
	assert_int_equal(elf__find_dynsym(e, "pml_test_static", &d), -ENOENT);
	assert_int_equal(elf__find_sym(e, "cos", &d), -ENOENT);
	assert_int_equal(elf__find_sym(e, "pml_test_ad", &d), -ENOENT);
	assert_int_equal(elf__find_sym(e, "pml_test_addx", &d), -ENOENT);
	assert_int_equal(elf__find_sym(e, "", &d), -ENOENT);
	assert_int_equal(elf__find_sym(e, "pml_test_add", NULL), 0);
	assert_int_equal(elf__find_sym(NULL, "pml_test_add", &d), -EINVAL);
	elf__close(e);
}

static void sym_at__sized_function__containing_symbol(void **state)
{
	struct pml_elf_sym add, st, s;
	struct pml_elf *e;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_add", &add), 0);
	assert_int_equal(elf__find_sym(e, "pml_test_static", &st), 0);
	assert_true(add.size > 1 && st.size > 1);

	assert_int_equal(elf__sym_at(e, add.value, &s), 0);
	assert_string_equal(s.name, "pml_test_add");
	assert_int_equal(elf__sym_at(e, add.value + add.size - 1, &s), 0);
	assert_string_equal(s.name, "pml_test_add");
	assert_false(s.dynamic);
	assert_int_equal(elf__sym_at(e, st.value + 1, &s), 0);
	assert_string_equal(s.name, "pml_test_static");
	/* one past the end belongs to someone else, or to no one */
	if (elf__sym_at(e, add.value + add.size, &s) == 0)
		assert_string_not_equal(s.name, "pml_test_add");
	elf__close(e);
}

static void sym_at__unsized_symbol__nearest_in_exec_section(void **state)
{
	struct pml_elf_sym ns, g, s;
	struct pml_elf *e;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_nosize", &ns), 0);
	assert_true(ns.size == 0);
	assert_int_equal(elf__sym_at(e, ns.value + 2, &s), 0);
	assert_string_equal(s.name, "pml_test_nosize");

	/* Data is never code, whatever unsized function precedes it. */
	assert_int_equal(elf__find_sym(e, "pml_test_global", &g), 0);
	assert_int_equal(elf__sym_at(e, g.value, &s), -ENOENT);
	assert_int_equal(elf__sym_at(e, 0, &s), -ENOENT);
	assert_int_equal(elf__sym_at(e, UINT64_MAX, &s), -ENOENT);
	elf__close(e);
}

static void bytes_at__function__matches_objdump_and_file(void **state)
{
	uint8_t want[64];
	struct pml_elf_sym add;
	const uint8_t *got;
	struct pml_elf *e;
	struct stat st;
	uint64_t off;
	size_t len, n;
	int fd;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_add", &add), 0);
	n = add.size < sizeof(want) ? (size_t)add.size : sizeof(want);
	if (objdump_bytes(fx.dso, add.value, n, want) != n) {
		elf__close(e);
		print_message("objdump not usable: skipping\n");
		skip();
	}
	len = n;
	got = elf__bytes_at(e, add.value, &len);
	assert_non_null(got);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);

	/* the offset is where the same bytes sit in the file */
	assert_int_equal(elf__vaddr_to_offset(e, add.value, &off), 0);
	fd = open(fx.dso, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, want, n, (off_t)off), (ssize_t)n);
	close(fd);
	assert_memory_equal(got, want, n);

	/* clipped to the segment's file data, never beyond the file */
	len = SIZE_MAX;
	got = elf__bytes_at(e, add.value, &len);
	assert_non_null(got);
	assert_true(len >= n);
	assert_int_equal(stat(fx.dso, &st), 0);
	assert_true(len <= (uint64_t)st.st_size - off);
	elf__close(e);
}

static void vaddr_to_offset__bss__enoent(void **state)
{
	struct pml_elf_sym bss;
	struct pml_elf *e;
	uint64_t off = 99;
	size_t len = 4;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_bss", &bss), 0);
	assert_int_equal(elf__vaddr_to_offset(e, bss.value + 100, &off), -ENOENT);
	assert_true(off == 99);
	assert_null(elf__bytes_at(e, bss.value + 100, &len));
	assert_int_equal(elf__vaddr_to_offset(e, UINT64_MAX, &off), -ENOENT);
	/* A DSO's first page is its ELF header, at offset 0. */
	assert_int_equal(elf__vaddr_to_offset(e, 0, &off), 0);
	assert_true(off == 0);
	elf__close(e);
}

static void first_load_vaddr__dso_and_exec__bias(void **state)
{
	struct pml_elf_sym m;
	struct pml_elf *e;
	uint64_t v, sz;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_true(elf__first_load_vaddr(e) == 0);
	elf__close(e);

	e = elf__open_file(fx.exe);
	assert_non_null(e);
	assert_false(elf__is_pie_or_dso(e));
	/* the x86-64 default base of non-PIE executables */
	assert_true(elf__first_load_vaddr(e) == 0x400000);
	assert_int_equal(elf__find_sym(e, "main", &m), 0);
	assert_true(nm_lookup(fx.exe, false, "main", &v, &sz));
	assert_true(m.value == v);
	assert_true(m.value > 0x400000);
	assert_null(elf__runpath(e));
	elf__close(e);
}

struct needed_ctx {
	int calls;
	int stop_at;
	bool libm, libc;
};

static int needed_cb(const char *name, void *ctx)
{
	struct needed_ctx *c = ctx;

	c->calls++;
	c->libm |= !strcmp(name, "libm.so.6");
	c->libc |= !strcmp(name, "libc.so.6");
	return c->calls == c->stop_at ? 77 : 0;
}

static void for_each_needed__dso__libm_and_libc(void **state)
{
	struct needed_ctx c = { 0 };
	struct pml_elf *e;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__for_each_needed(e, needed_cb, &c), 0);
	assert_true(c.libm && c.libc);
	assert_int_equal(c.calls, 2);

	memset(&c, 0, sizeof(c));
	c.stop_at = 1;
	assert_int_equal(elf__for_each_needed(e, needed_cb, &c), 77);
	assert_int_equal(c.calls, 1);
	assert_int_equal(elf__for_each_needed(e, NULL, &c), -EINVAL);
	elf__close(e);
}

static void runpath__runpath_or_rpath__string(void **state)
{
	struct pml_elf *e;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_non_null(elf__runpath(e));
	assert_string_equal(elf__runpath(e), "/some/dir");
	elf__close(e);

	e = elf__open_file(fx.rpath_dso);
	assert_non_null(e);
	assert_non_null(elf__runpath(e));
	assert_string_equal(elf__runpath(e), "/old/rpath");
	elf__close(e);
	assert_null(elf__runpath(NULL));
}

static void text__dso__holds_functions(void **state)
{
	struct pml_elf_sym add;
	const uint8_t *bytes, *b2;
	struct pml_elf *e;
	uint64_t vaddr;
	size_t len, l2;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__text(e, &vaddr, &bytes, &len), 0);
	assert_int_equal(elf__find_sym(e, "pml_test_add", &add), 0);
	assert_true(add.value >= vaddr && add.value + add.size <= vaddr + len);
	l2 = len;
	b2 = elf__bytes_at(e, vaddr, &l2);
	assert_ptr_equal(b2, bytes);
	assert_true(l2 >= len);
	elf__close(e);
}

struct func_ctx {
	int calls;
	int add_symtab, add_dynsym;
	int stop_after;
};

static int func_cb(const struct pml_elf_sym *s, void *ctx)
{
	struct func_ctx *c = ctx;

	c->calls++;
	assert_int_equal(s->type, STT_FUNC);
	if (!strcmp(s->name, "pml_test_add")) {
		if (s->dynamic)
			c->add_dynsym++;
		else
			c->add_symtab++;
	}
	return c->calls == c->stop_after ? -42 : 0;
}

static void for_each_func__both_tables__each_once(void **state)
{
	struct func_ctx c = { 0 };
	struct pml_elf *e;

	(void)state;
	need_cc();
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__for_each_func(e, func_cb, &c), 0);
	assert_int_equal(c.add_symtab, 1);
	assert_int_equal(c.add_dynsym, 1);
	assert_true(c.calls >= 5);

	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	assert_int_equal(elf__for_each_func(e, func_cb, &c), -42);
	assert_int_equal(c.calls, 2);
	elf__close(e);
}

static void stripped__dynsym_only__exports_found(void **state)
{
	struct pml_elf_sym s, full;
	struct pml_elf *e, *f;

	(void)state;
	need_cc();
	f = elf__open_file(fx.dso);
	e = elf__open_file(fx.stripped);
	assert_non_null(f);
	assert_non_null(e);
	assert_false(elf__has_symtab(e));
	assert_int_equal(elf__find_sym(f, "pml_test_add", &full), 0);

	assert_int_equal(elf__find_sym(e, "pml_test_add", &s), 0);
	assert_true(s.dynamic);
	assert_true(s.value == full.value && s.size == full.size);
	assert_int_equal(elf__find_sym(e, "pml_test_static", &s), -ENOENT);
	assert_int_equal(elf__sym_at(e, full.value + 1, &s), 0);
	assert_string_equal(s.name, "pml_test_add");
	assert_true(s.dynamic);
	assert_non_null(elf__runpath(e));
	assert_string_equal(elf__runpath(e), "/some/dir");
	elf__close(e);
	elf__close(f);
}

static void open_file__not_an_elf_file__errno(void **state)
{
	char path[160];

	(void)state;
	errno = 0;
	assert_null(elf__open_file("/nonexistent/pml/file"));
	assert_int_equal(errno, ENOENT);
	assert_null(elf__open_file("/"));
	assert_int_equal(errno, EISDIR);
	assert_null(elf__open_file("/dev/null"));
	assert_int_equal(errno, EINVAL);
	assert_null(elf__open_file(NULL));
	assert_int_equal(errno, EINVAL);
	elf__close(NULL);

	need_cc();
	snprintf(path, sizeof(path), "%s/empty", fx.dir);
	assert_int_equal(write_text(path, ""), 0);
	assert_null(elf__open_file(path));
	assert_int_equal(errno, EINVAL);
	snprintf(path, sizeof(path), "%s/lib.c", fx.dir);
	assert_null(elf__open_file(path));
	assert_int_equal(errno, EINVAL);
}

/* ---- corrupt images ---------------------------------------------------- */

struct image {
	uint8_t *buf;
	size_t len;
};

static struct image dso_copy(void)
{
	struct image im;

	im.buf = read_whole(fx.dso, &im.len);
	return im;
}

static Elf64_Ehdr *ehdr(struct image *im)
{
	return (Elf64_Ehdr *)im->buf;
}

static Elf64_Shdr *shdr(struct image *im, unsigned int i)
{
	return (Elf64_Shdr *)(im->buf + ehdr(im)->e_shoff) + i;
}

static Elf64_Phdr *phdr(struct image *im, unsigned int i)
{
	return (Elf64_Phdr *)(im->buf + ehdr(im)->e_phoff) + i;
}

static Elf64_Shdr *shdr_by_name(struct image *im, const char *name)
{
	const char *names = (const char *)im->buf + shdr(im, ehdr(im)->e_shstrndx)->sh_offset;

	for (unsigned int i = 1; i < ehdr(im)->e_shnum; i++)
		if (!strcmp(names + shdr(im, i)->sh_name, name))
			return shdr(im, i);
	fail_msg("no section %s", name);
	return NULL;
}

static Elf64_Sym *symtab_entry(struct image *im, const char *name)
{
	Elf64_Shdr *st = shdr_by_name(im, ".symtab");
	Elf64_Shdr *str = shdr(im, st->sh_link);
	Elf64_Sym *syms = (Elf64_Sym *)(im->buf + st->sh_offset);

	for (size_t i = 1; i < st->sh_size / sizeof(*syms); i++)
		if (!strcmp((const char *)im->buf + str->sh_offset + syms[i].st_name, name))
			return &syms[i];
	fail_msg("no symbol %s", name);
	return NULL;
}

static Elf64_Dyn *dyn_entry(struct image *im, int64_t tag)
{
	Elf64_Shdr *ds = shdr_by_name(im, ".dynamic");
	Elf64_Dyn *d = (Elf64_Dyn *)(im->buf + ds->sh_offset);

	for (size_t i = 0; i < ds->sh_size / sizeof(*d) && d[i].d_tag != DT_NULL; i++)
		if (d[i].d_tag == tag)
			return &d[i];
	fail_msg("no dynamic tag %lld", (long long)tag);
	return NULL;
}

static int nop_needed(const char *name, void *ctx)
{
	(*(size_t *)ctx) += strlen(name);
	return 0;
}

static int nop_func(const struct pml_elf_sym *s, void *ctx)
{
	(*(size_t *)ctx) += strlen(s->name);
	return 0;
}

/* Every query on a handle; the work is only there for ASan/valgrind to watch. */
static void exercise(const struct pml_elf *e)
{
	struct pml_elf_sym s;
	const uint8_t *b;
	uint64_t off, v;
	size_t len, acc = 0;

	elf__has_symtab(e);
	elf__is_pie_or_dso(e);
	elf__find_sym(e, "pml_test_add", &s);
	elf__find_dynsym(e, "pml_test_add", &s);
	for (uint64_t a = 0; a < 0x3000; a += 0x180)
		if (elf__sym_at(e, a, &s) == 0)
			acc += strlen(s.name);
	elf__sym_at(e, UINT64_MAX, &s);
	elf__vaddr_to_offset(e, 0x1000, &off);
	len = 64;
	b = elf__bytes_at(e, elf__first_load_vaddr(e) + 0x1000, &len);
	if (b)
		for (size_t i = 0; i < len; i++)
			acc += b[i];
	elf__for_each_needed(e, nop_needed, &acc);
	if (elf__runpath(e))
		acc += strlen(elf__runpath(e));
	if (elf__text(e, &v, &b, &len) == 0 && len)
		acc += b[0] + b[len - 1];
	elf__for_each_func(e, nop_func, &acc);
	(void)acc;
}

static void expect_rejected(const void *buf, size_t len, int err)
{
	struct pml_elf *e;

	errno = 0;
	e = elf__open_mem(buf, len);
	if (e)
		elf__close(e);
	assert_null(e);
	assert_int_equal(errno, err);
}

static void open_mem__truncated__einval(void **state)
{
	struct image im;
	uint8_t *cut;

	(void)state;
	need_cc();
	im = dso_copy();
	expect_rejected(im.buf, 0, EINVAL);
	expect_rejected(NULL, 100, EINVAL);
	expect_rejected(im.buf, 4, EINVAL);
	expect_rejected(im.buf, sizeof(Elf64_Ehdr) - 1, EINVAL);
	/* the section header table is at the end: losing one byte breaks it */
	cut = malloc(im.len - 1);
	assert_non_null(cut);
	memcpy(cut, im.buf, im.len - 1);
	expect_rejected(cut, im.len - 1, EINVAL);
	free(cut);
	free(im.buf);
}

static void open_mem__foreign_elf__enotsup(void **state)
{
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	im.buf[EI_CLASS] = ELFCLASS32;
	expect_rejected(im.buf, im.len, ENOTSUP);
	im.buf[EI_CLASS] = ELFCLASS64;
	im.buf[EI_DATA] = ELFDATA2MSB;
	expect_rejected(im.buf, im.len, ENOTSUP);
	im.buf[EI_DATA] = ELFDATA2LSB;
	ehdr(&im)->e_machine = EM_386;
	expect_rejected(im.buf, im.len, ENOTSUP);
	ehdr(&im)->e_machine = EM_X86_64;
	ehdr(&im)->e_type = ET_REL;
	expect_rejected(im.buf, im.len, ENOTSUP);
	ehdr(&im)->e_type = ET_DYN;
	im.buf[1] = 'X';
	expect_rejected(im.buf, im.len, EINVAL);
	im.buf[1] = 'E';
	/* and back to valid: the patches above were the only faults */
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	elf__close(e);
	free(im.buf);
}

static void open_mem__bad_header_tables__einval(void **state)
{
	struct pml_elf *e;
	struct image im;
	Elf64_Ehdr saved;

	(void)state;
	need_cc();
	im = dso_copy();
	saved = *ehdr(&im);

	ehdr(&im)->e_shoff = im.len;
	expect_rejected(im.buf, im.len, EINVAL);
	ehdr(&im)->e_shoff = UINT64_MAX - 8;
	expect_rejected(im.buf, im.len, EINVAL);
	*ehdr(&im) = saved;

	ehdr(&im)->e_shnum = 0xfffe;
	expect_rejected(im.buf, im.len, EINVAL);
	*ehdr(&im) = saved;

	ehdr(&im)->e_shentsize = 32;
	expect_rejected(im.buf, im.len, EINVAL);
	*ehdr(&im) = saved;

	ehdr(&im)->e_shstrndx = ehdr(&im)->e_shnum;
	expect_rejected(im.buf, im.len, EINVAL);
	*ehdr(&im) = saved;

	/* phnum huge, directly and through the PN_XNUM escape */
	ehdr(&im)->e_phnum = 0xfffe;
	expect_rejected(im.buf, im.len, EINVAL);
	ehdr(&im)->e_phnum = PN_XNUM;
	shdr(&im, 0)->sh_info = 0xffffffff;
	expect_rejected(im.buf, im.len, EINVAL);
	shdr(&im, 0)->sh_info = 0;
	*ehdr(&im) = saved;

	ehdr(&im)->e_phoff = UINT64_MAX - 16;
	expect_rejected(im.buf, im.len, EINVAL);
	*ehdr(&im) = saved;

	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	elf__close(e);
	free(im.buf);
}

static void open_mem__bad_sections__einval(void **state)
{
	Elf64_Shdr *sym, saved;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	sym = shdr_by_name(&im, ".symtab");
	saved = *sym;

	sym->sh_size = UINT64_MAX - 23; /* offset + size wraps */
	expect_rejected(im.buf, im.len, EINVAL);
	sym->sh_size = (UINT64_MAX / 24) * 24; /* whole entries, far past the end */
	expect_rejected(im.buf, im.len, EINVAL);
	*sym = saved;
	sym->sh_offset = UINT64_MAX - 8;
	expect_rejected(im.buf, im.len, EINVAL);
	*sym = saved;
	sym->sh_entsize = 16;
	expect_rejected(im.buf, im.len, EINVAL);
	*sym = saved;
	sym->sh_link = 0; /* no string table */
	expect_rejected(im.buf, im.len, EINVAL);
	*sym = saved;
	sym->sh_size = saved.sh_size + 1; /* not a whole number of entries */
	expect_rejected(im.buf, im.len, EINVAL);
	*sym = saved;

	/* first PT_LOAD past the end of the file, then larger in file than in memory */
	assert_int_equal(phdr(&im, 0)->p_type, PT_LOAD);
	phdr(&im, 0)->p_filesz = im.len + 1;
	phdr(&im, 0)->p_memsz = im.len + 1;
	expect_rejected(im.buf, im.len, EINVAL);
	phdr(&im, 0)->p_filesz = 0x100;
	phdr(&im, 0)->p_memsz = 0xff;
	expect_rejected(im.buf, im.len, EINVAL);
	free(im.buf);
}

static void open_mem__unterminated_names__ignored(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	Elf64_Sym *add;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	/* .strtab ends inside "pml_test_add": that name is not terminated */
	add = symtab_entry(&im, "pml_test_add");
	shdr_by_name(&im, ".strtab")->sh_size = add->st_name + 3;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_add", &s), 0);
	assert_true(s.dynamic);
	assert_int_equal(elf__find_sym(e, "pml", &s), -ENOENT);
	exercise(e);
	elf__close(e);
	free(im.buf);

	im = dso_copy();
	symtab_entry(&im, "pml_test_add")->st_name = 0xffffffff;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_add", &s), 0);
	assert_true(s.dynamic);
	exercise(e);
	elf__close(e);
	free(im.buf);
}

static void open_mem__no_section_headers__dynamic_from_phdrs(void **state)
{
	struct needed_ctx c = { 0 };
	struct pml_elf_sym s;
	struct pml_elf *e;
	struct image im;
	uint64_t off;

	(void)state;
	need_cc();
	im = dso_copy();
	ehdr(&im)->e_shoff = 0;
	ehdr(&im)->e_shnum = 0;
	ehdr(&im)->e_shstrndx = 0;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_false(elf__has_symtab(e));
	assert_int_equal(elf__find_sym(e, "pml_test_add", &s), -ENOENT);
	assert_int_equal(elf__text(e, NULL, NULL, NULL), -ENOENT);
	assert_non_null(elf__runpath(e));
	assert_string_equal(elf__runpath(e), "/some/dir");
	assert_int_equal(elf__for_each_needed(e, needed_cb, &c), 0);
	assert_true(c.libm && c.libc);
	assert_int_equal(elf__vaddr_to_offset(e, 0x10, &off), 0);
	assert_true(off == 0x10);
	elf__close(e);
	free(im.buf);
}

static void open_mem__bad_dynamic_strings__skipped(void **state)
{
	struct needed_ctx c = { 0 };
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	dyn_entry(&im, DT_RUNPATH)->d_un.d_val = UINT64_MAX;
	dyn_entry(&im, DT_NEEDED)->d_un.d_val = shdr_by_name(&im, ".dynstr")->sh_size;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_null(elf__runpath(e));
	assert_int_equal(elf__for_each_needed(e, needed_cb, &c), 0);
	assert_int_equal(c.calls, 1); /* the other NEEDED entry */
	elf__close(e);
	free(im.buf);
}

static void sym_at__huge_symbol_size__no_overflow(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	symtab_entry(&im, "pml_test_add")->st_size = UINT64_MAX;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__sym_at(e, UINT64_MAX - 1, &s), 0);
	assert_string_equal(s.name, "pml_test_add");
	exercise(e);
	elf__close(e);
	free(im.buf);
}

static void find_sym__duplicate_names__global_preferred(void **state)
{
	struct pml_elf_sym s, add;
	Elf64_Sym *st, *ad;
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	/* the local pml_test_static renamed to "pml_test_add": global must win */
	st = symtab_entry(&im, "pml_test_static");
	ad = symtab_entry(&im, "pml_test_add");
	st->st_name = ad->st_name;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_add", &add), 0);
	assert_int_equal(add.bind, STB_GLOBAL);
	assert_true(add.value == ad->st_value);
	assert_false(add.dynamic);
	assert_int_equal(elf__find_sym(e, "pml_test_static", &s), -ENOENT);
	elf__close(e);
	free(im.buf);
}

static void sym_at__aliases__global_preferred(void **state)
{
	struct pml_elf_sym s;
	Elf64_Sym *st, *ad;
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	/* the local moved onto pml_test_add's address and size */
	st = symtab_entry(&im, "pml_test_static");
	ad = symtab_entry(&im, "pml_test_add");
	st->st_value = ad->st_value;
	st->st_size = ad->st_size;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__sym_at(e, ad->st_value + 1, &s), 0);
	assert_string_equal(s.name, "pml_test_add");
	assert_false(s.dynamic);
	elf__close(e);
	free(im.buf);
}

static void runpath__both_tags__runpath_wins(void **state)
{
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	/* the first DT_NEEDED turned into a DT_RPATH naming that library */
	dyn_entry(&im, DT_NEEDED)->d_tag = DT_RPATH;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_non_null(elf__runpath(e));
	assert_string_equal(elf__runpath(e), "/some/dir");
	elf__close(e);
	dyn_entry(&im, DT_RUNPATH)->d_tag = DT_DEBUG;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_non_null(elf__runpath(e));
	assert_string_equal(elf__runpath(e), "libm.so.6");
	elf__close(e);
	free(im.buf);
}

static void bytes_at__initialized_data__value(void **state)
{
	struct pml_elf_sym g;
	const uint8_t *b;
	struct pml_elf *e;
	uint64_t off;
	size_t len;
	int32_t v;

	(void)state;
	need_cc();
	/* .data sits at a different vaddr than file offset: 42 and 7 prove the mapping */
	e = elf__open_file(fx.dso);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_global", &g), 0);
	len = sizeof(v);
	b = elf__bytes_at(e, g.value, &len);
	assert_non_null(b);
	assert_int_equal(len, sizeof(v));
	memcpy(&v, b, sizeof(v));
	assert_int_equal(v, 42);
	assert_int_equal(elf__vaddr_to_offset(e, g.value, &off), 0);
	assert_true(off != g.value);
	elf__close(e);

	e = elf__open_file(fx.exe);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_exe_value", &g), 0);
	len = sizeof(v);
	b = elf__bytes_at(e, g.value, &len);
	assert_non_null(b);
	memcpy(&v, b, sizeof(v));
	assert_int_equal(v, 7);
	elf__close(e);
}

static void sym_at__unsized_in_other_section__enoent(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	struct image im;
	uint64_t plt;

	(void)state;
	need_cc();
	/* .plt follows .init, whose _init is an unsized function: not its code */
	im = dso_copy();
	plt = shdr_by_name(&im, ".plt")->sh_addr;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "_init", &s), 0);
	assert_true(s.size == 0 && s.value < plt);
	assert_int_equal(elf__sym_at(e, plt + 4, &s), -ENOENT);
	elf__close(e);
	free(im.buf);
}

static void sym_at__unsized_func_in_data__enoent(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	struct image im;
	Elf64_Sym *g;

	(void)state;
	need_cc();
	/* pml_test_global retyped as an unsized function: data is still not code */
	im = dso_copy();
	g = symtab_entry(&im, "pml_test_global");
	g->st_info = (unsigned char)((STB_GLOBAL << 4) | STT_FUNC);
	g->st_size = 0;
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "pml_test_global", &s), 0);
	assert_int_equal(s.type, STT_FUNC);
	assert_int_equal(elf__sym_at(e, g->st_value + 2, &s), -ENOENT);
	elf__close(e);
	free(im.buf);
}

static void find_sym__empty_name_or_null_only_symtab__enoent(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	struct image im;

	(void)state;
	need_cc();
	im = dso_copy();
	symtab_entry(&im, "pml_test_add")->st_name = 0; /* "" */
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_int_equal(elf__find_sym(e, "", &s), -ENOENT);
	elf__close(e);
	/* a .symtab holding only the reserved null entry is no symtab */
	shdr_by_name(&im, ".symtab")->sh_size = sizeof(Elf64_Sym);
	e = elf__open_mem(im.buf, im.len);
	assert_non_null(e);
	assert_false(elf__has_symtab(e));
	elf__close(e);
	free(im.buf);
}

/*
 * Every byte of the ELF header and both header tables set to a few hostile
 * values: open either fails with EINVAL/ENOTSUP or yields a usable handle.
 */
static void open_mem__header_byte_sweep__fails_cleanly(void **state)
{
	static const uint8_t vals[] = { 0x00, 0x01, 0x7f, 0x80, 0xff };
	struct image im;
	size_t ranges[3][2];
	unsigned int opened = 0, rejected = 0;

	(void)state;
	need_cc();
	im = dso_copy();
	ranges[0][0] = 0;
	ranges[0][1] = sizeof(Elf64_Ehdr);
	ranges[1][0] = ehdr(&im)->e_phoff;
	ranges[1][1] = ehdr(&im)->e_phoff + (size_t)ehdr(&im)->e_phnum * sizeof(Elf64_Phdr);
	ranges[2][0] = ehdr(&im)->e_shoff;
	ranges[2][1] = ehdr(&im)->e_shoff + (size_t)ehdr(&im)->e_shnum * sizeof(Elf64_Shdr);

	for (int r = 0; r < 3; r++) {
		for (size_t i = ranges[r][0]; i < ranges[r][1]; i++) {
			uint8_t orig = im.buf[i];

			for (size_t k = 0; k < sizeof(vals); k++) {
				struct pml_elf *e;

				im.buf[i] = vals[k];
				errno = 0;
				e = elf__open_mem(im.buf, im.len);
				if (e) {
					exercise(e);
					elf__close(e);
					opened++;
				} else {
					assert_true(errno == EINVAL || errno == ENOTSUP);
					rejected++;
				}
			}
			im.buf[i] = orig;
		}
	}
	assert_true(opened > 0 && rejected > 0);
	free(im.buf);
}

/* ---- real interpreters -------------------------------------------------- */

static void real_libpython312__symtab_and_dynsym(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;
	uint64_t v, sz;

	(void)state;
	if (access(LIBPYTHON312, R_OK)) {
		print_message("%s absent: skipping\n", LIBPYTHON312);
		skip();
	}
	e = elf__open_file(LIBPYTHON312);
	assert_non_null(e);
	assert_true(elf__has_symtab(e));
	assert_true(elf__is_pie_or_dso(e));

	assert_int_equal(elf__find_sym(e, "_PyObject_Malloc", &s), 0);
	assert_false(s.dynamic);
	assert_int_equal(s.bind, STB_LOCAL);
	assert_int_equal(s.type, STT_FUNC);
	assert_int_equal(elf__find_dynsym(e, "_PyObject_Malloc", &s), -ENOENT);
	assert_int_equal(elf__find_dynsym(e, "PyObject_Malloc", &s), 0);
	assert_true(s.dynamic);
	assert_int_equal(s.bind, STB_GLOBAL);
	if (nm_lookup(LIBPYTHON312, true, "PyObject_Malloc", &v, &sz))
		assert_true(s.value == v && s.size == sz);
	assert_int_equal(elf__sym_at(e, s.value + s.size / 2, &s), 0);
	assert_string_equal(s.name, "PyObject_Malloc");

	assert_int_equal(elf__find_sym(e, "_PyObject_Malloc", &s), 0);
	assert_int_equal(elf__sym_at(e, s.value + 4, &s), 0);
	assert_string_equal(s.name, "_PyObject_Malloc");
	assert_int_equal(elf__find_sym(e, "_PyRuntime", &s), 0);
	assert_int_equal(s.type, STT_OBJECT);
	elf__close(e);
}

static void real_debian_python311__dynsym_only_exec(void **state)
{
	struct pml_elf_sym s;
	struct pml_elf *e;

	(void)state;
	if (access(DEBIAN_PYTHON311, R_OK)) {
		print_message("%s absent: skipping\n", DEBIAN_PYTHON311);
		skip();
	}
	e = elf__open_file(DEBIAN_PYTHON311);
	assert_non_null(e);
	assert_false(elf__has_symtab(e));
	assert_false(elf__is_pie_or_dso(e));
	assert_int_equal(elf__find_dynsym(e, "PyObject_Malloc", &s), 0);
	assert_int_equal(s.type, STT_FUNC);
	assert_true(s.dynamic);
	assert_int_equal(elf__find_dynsym(e, "_PyRuntime", &s), 0);
	assert_int_equal(s.type, STT_OBJECT);
	assert_true(s.size > 0);
	assert_int_equal(elf__find_sym(e, "_PyObject_Malloc", &s), -ENOENT);
	elf__close(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(find_sym__dso__matches_nm),
		cmocka_unit_test(sym_at__sized_function__containing_symbol),
		cmocka_unit_test(sym_at__unsized_symbol__nearest_in_exec_section),
		cmocka_unit_test(bytes_at__function__matches_objdump_and_file),
		cmocka_unit_test(vaddr_to_offset__bss__enoent),
		cmocka_unit_test(first_load_vaddr__dso_and_exec__bias),
		cmocka_unit_test(for_each_needed__dso__libm_and_libc),
		cmocka_unit_test(runpath__runpath_or_rpath__string),
		cmocka_unit_test(text__dso__holds_functions),
		cmocka_unit_test(for_each_func__both_tables__each_once),
		cmocka_unit_test(stripped__dynsym_only__exports_found),
		cmocka_unit_test(open_file__not_an_elf_file__errno),
		cmocka_unit_test(open_mem__truncated__einval),
		cmocka_unit_test(open_mem__foreign_elf__enotsup),
		cmocka_unit_test(open_mem__bad_header_tables__einval),
		cmocka_unit_test(open_mem__bad_sections__einval),
		cmocka_unit_test(open_mem__unterminated_names__ignored),
		cmocka_unit_test(open_mem__no_section_headers__dynamic_from_phdrs),
		cmocka_unit_test(open_mem__bad_dynamic_strings__skipped),
		cmocka_unit_test(sym_at__huge_symbol_size__no_overflow),
		cmocka_unit_test(find_sym__duplicate_names__global_preferred),
		cmocka_unit_test(sym_at__aliases__global_preferred),
		cmocka_unit_test(runpath__both_tags__runpath_wins),
		cmocka_unit_test(bytes_at__initialized_data__value),
		cmocka_unit_test(sym_at__unsized_in_other_section__enoent),
		cmocka_unit_test(sym_at__unsized_func_in_data__enoent),
		cmocka_unit_test(find_sym__empty_name_or_null_only_symtab__enoent),
		cmocka_unit_test(open_mem__header_byte_sweep__fails_cleanly),
		cmocka_unit_test(real_libpython312__symtab_and_dynsym),
		cmocka_unit_test(real_debian_python311__dynsym_only_exec),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
