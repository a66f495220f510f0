// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf.h"
#include "inlined.h"
#include "probesite.h"
#include "scan.h"
#include "pyoffsets.h"
#include "target.h"

#define ENV_MAX (1 << 20)

/* One probe of the plan: where, which program, what it needs. */
struct probe_spec {
	const char *symbol;
	enum pml_prog prog;
	bool ret;
	int nargs; /* argument registers the program reads */
	bool required;
};

/* pymalloc's internal entry points: the object and mem domains both end here. */
static const struct probe_spec obj_internal[] = {
	{ "_PyObject_Malloc", PROG_CTX_MALLOC, true, 2, true },
	{ "_PyObject_Calloc", PROG_CTX_CALLOC, true, 3, true },
	{ "_PyObject_Realloc", PROG_CTX_REALLOC, true, 3, true },
	{ "_PyObject_Free", PROG_CTX_FREE, false, 2, true },
};

/* The public object and mem domains, when the internals are not reachable. */
static const struct probe_spec obj_public[] = {
	{ "PyObject_Malloc", PROG_MALLOC, true, 1, true },
	{ "PyObject_Calloc", PROG_CALLOC, true, 2, true },
	{ "PyObject_Realloc", PROG_REALLOC, true, 2, true },
	{ "PyObject_Free", PROG_FREE, false, 1, true },
	{ "PyMem_Malloc", PROG_MALLOC, true, 1, true },
	{ "PyMem_Calloc", PROG_CALLOC, true, 2, true },
	{ "PyMem_Realloc", PROG_REALLOC, true, 2, true },
	{ "PyMem_Free", PROG_FREE, false, 1, true },
};

/* The raw domain and C extensions end in libc. */
static const struct probe_spec raw_libc[] = {
	{ "malloc", PROG_MALLOC, true, 1, true },
	{ "calloc", PROG_CALLOC, true, 2, true },
	{ "realloc", PROG_REALLOC, true, 2, true },
	{ "free", PROG_FREE, false, 1, true },
	{ "posix_memalign", PROG_MEMPTR, true, 3, false },
	{ "aligned_alloc", PROG_ALIGNED, true, 2, false },
	{ "memalign", PROG_ALIGNED, true, 2, false },
	{ "valloc", PROG_MALLOC, true, 1, false },
	{ "pvalloc", PROG_MALLOC, true, 1, false },
};

const char *target__allocator_name(enum pml_allocator a)
{
	switch (a) {
	case PML_ALLOC_PYMALLOC:
		return "pymalloc";
	case PML_ALLOC_MALLOC:
		return "malloc";
	case PML_ALLOC_DEBUG:
		return "debug hooks";
	case PML_ALLOC_MIMALLOC:
		return "mimalloc";
	}
	return "?";
}

int target__cmdline(int pid, char *buf, size_t len)
{
	ssize_t n, i;

	if (!len)
		return -EINVAL;
	n = scan__read_proc(pid, "cmdline", buf, len - 1);
	if (n < 0)
		return n;
	while (n > 0 && buf[n - 1] == '\0')
		n--;
	for (i = 0; i < n; i++) {
		unsigned char c = buf[i];

		if (c == '\0')
			buf[i] = ' ';
		else if (c < 0x20 || c == 0x7f)
			buf[i] = '?';
	}
	buf[n] = '\0';
	return 0;
}

/*
 * Which allocator the interpreter chose at startup: PYTHONMALLOC from the
 * initial environment, unless -E or -I told it to ignore the environment.
 */
static enum pml_allocator detect_allocator(int pid)
{
	char *env, args[4096];
	enum pml_allocator a = PML_ALLOC_PYMALLOC;
	ssize_t n, i, start;

	n = scan__read_proc(pid, "cmdline", args, sizeof(args) - 1);
	if (n > 0) {
		/* Interpreter options come before the script or -c/-m. */
		for (start = 0, i = 0; i <= n; i++) {
			if (i < n && args[i])
				continue;
			args[i] = '\0';
			if (start > 0) {
				const char *arg = args + start;

				if (arg[0] != '-' || !strcmp(arg, "-c") || !strcmp(arg, "-m"))
					break;
				if (arg[1] != '-' && (strchr(arg, 'E') || strchr(arg, 'I')))
					return a;
			}
			start = i + 1;
		}
	}
	env = malloc(ENV_MAX);
	if (!env)
		return a;
	n = scan__read_proc(pid, "environ", env, ENV_MAX - 1);
	for (start = 0, i = 0; n > 0 && i <= n; i++) {
		if (i < n && env[i])
			continue;
		env[i] = '\0';
		if (!strncmp(env + start, "PYTHONMALLOC=", 13)) {
			const char *v = env + start + 13;

			if (strstr(v, "debug"))
				a = PML_ALLOC_DEBUG;
			else if (!strcmp(v, "malloc"))
				a = PML_ALLOC_MALLOC;
			else if (!strcmp(v, "mimalloc"))
				a = PML_ALLOC_MIMALLOC;
			else
				a = PML_ALLOC_PYMALLOC;
		}
		start = i + 1;
	}
	free(env);
	return a;
}

/* "libpython3.12.so.1.0" or "python3.12" -> 3, 12. */
static bool parse_version_name(const char *base, int *major, int *minor)
{
	const char *p;
	char *end;
	long ma, mi;

	if (!strncmp(base, "libpython", 9))
		p = base + 9;
	else if (!strncmp(base, "python", 6))
		p = base + 6;
	else
		return false;
	if (!isdigit((unsigned char)*p))
		return false;
	ma = strtol(p, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return false;
	mi = strtol(end + 1, &end, 10);
	if (ma < 2 || ma > 9 || mi < 0 || mi > 99)
		return false;
	*major = ma;
	*minor = mi;
	return true;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Path under /proc/PID/root, so a binary in another mount namespace is
 * reached as the target sees it. */
static int root_path(int pid, const char *path, char *out, size_t len)
{
	int n = snprintf(out, len, "/proc/%d/root%s", pid, path);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* The file we open must be the one mapped (not replaced on disk since). */
static int check_same_file(const char *open_path, const struct pml_mapping *m)
{
	struct stat st;

	if (stat(open_path, &st))
		return -errno;
	if ((uint64_t)st.st_ino != m->inode)
		return -ESTALE;
	return 0;
}

/* "3.12.1" from Py_Version (3.11+); else from a pyenv-style path; else "3.X". */
static void find_version_string(const struct pml_elf *e, const char *path, struct pml_target *t)
{
	struct pml_elf_sym s;
	const uint8_t *p;
	size_t len = 4;
	uint32_t hex;
	const char *v;
	int ma, mi, pa;

	snprintf(t->version, sizeof(t->version), "%d.%d", t->major, t->minor);
	if (!elf__find_sym(e, "Py_Version", &s) && (p = elf__bytes_at(e, s.value, &len)) &&
	    len == 4) {
		memcpy(&hex, p, 4);
		if ((int)(hex >> 24) == t->major && (int)((hex >> 16) & 0xff) == t->minor) {
			snprintf(t->version, sizeof(t->version), "%d.%d.%u", t->major, t->minor,
				 (hex >> 8) & 0xff);
			return;
		}
	}
	v = strstr(path, "/versions/");
	if (v && sscanf(v, "/versions/%d.%d.%d", &ma, &mi, &pa) == 3 && ma == t->major &&
	    mi == t->minor)
		snprintf(t->version, sizeof(t->version), "%d.%d.%d", ma, mi, pa);
}

/* Fill a probe: symbol -> chosen site -> file offset. */
static int plan_probe(const struct pml_elf *e, const struct probe_spec *ps, uint32_t layer,
		      int libc, const struct pml_target_opts *o, struct pml_probe *p)
{
	struct pml_probesite site = { 0 };
	uint8_t buf[PML_PROBESITE_WINDOW];
	size_t len = PML_PROBESITE_WINDOW;
	struct pml_elf_sym s;
	const uint8_t *code;
	int err;

	err = elf__find_sym(e, ps->symbol, &s);
	if (err)
		return err;
	memset(p, 0, sizeof(*p));
	snprintf(p->symbol, sizeof(p->symbol), "%s", ps->symbol);
	p->sym_vaddr = s.value;
	p->prog = o->count_only ? PROG_COUNT : ps->prog;
	p->ret = o->count_only ? false : ps->ret;
	p->layer = layer;
	p->libc = libc;

	/* The code from the file, not the mapping: other tracers' breakpoints. */
	if (elf__bytes_at(e, s.value, &len) && s.size && len > s.size)
		len = s.size;
	code = !elf__read_at(e, s.value, buf, len) ? buf : NULL;
	if (o->count_only || o->no_placement || !code) {
		snprintf(p->why, sizeof(p->why), "%s",
			 code ? "function entry (placement disabled)" : "function entry (no code)");
		probesite__choose(code ? code : (const uint8_t *)"", code ? len : 0, s.value,
				  ps->nargs, &site);
		p->site = 0;
		p->emulated = site.offset == 0 && site.emulated;
		snprintf(p->insn, sizeof(p->insn), "%s", site.insn);
	} else {
		err = probesite__choose(code, len, s.value, ps->nargs, &site);
		if (err)
			return err;
		p->site = site.offset;
		p->emulated = site.emulated;
		snprintf(p->insn, sizeof(p->insn), "%s", site.insn);
		snprintf(p->why, sizeof(p->why), "%s", site.why);
	}
	return elf__vaddr_to_offset(e, s.value + p->site, &p->offset);
}

static int plan_table(struct pml_target *t, const struct pml_elf *e, const struct probe_spec *tab,
		      size_t n, uint32_t layer, int libc, const struct pml_target_opts *o,
		      char *err, size_t errlen)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		if (t->nprobes == PML_MAX_PROBES)
			return -E2BIG;
		r = plan_probe(e, &tab[i], layer, libc, o, &t->probes[t->nprobes]);
		if (r) {
			if (!tab[i].required)
				continue;
			snprintf(err, errlen, "symbol %s not found in %s", tab[i].symbol,
				 libc ? t->libc_open : t->pybin);
			return -ENOENT;
		}
		t->nprobes++;
	}
	return 0;
}

void target__release(struct pml_target *t)
{
	free(t->inl);
	t->inl = NULL;
	t->ninl = 0;
}

/* A probe at an address with no symbol: an internal allocator function. */
static int plan_at(const struct pml_elf *e, const char *name, uint64_t vaddr, enum pml_prog prog,
		   int nargs, bool ret, const struct pml_target_opts *o, struct pml_probe *p)
{
	struct pml_probesite site = { 0 };
	uint8_t buf[PML_PROBESITE_WINDOW];
	size_t len = PML_PROBESITE_WINDOW;
	const uint8_t *code;

	/* From the file: the mapping may hold other tracers' breakpoints. */
	elf__bytes_at(e, vaddr, &len);
	code = len && !elf__read_at(e, vaddr, buf, len) ? buf : NULL;

	memset(p, 0, sizeof(*p));
	snprintf(p->symbol, sizeof(p->symbol), "%s", name);
	p->sym_vaddr = vaddr;
	p->prog = prog;
	p->ret = ret;
	p->layer = LAYER_OBJ;
	if (!code)
		return -ENOENT;
	probesite__choose(code, len, vaddr, nargs, &site);
	p->site = o->no_placement ? 0 : site.offset;
	p->emulated = o->no_placement ? site.offset == 0 && site.emulated : site.emulated;
	snprintf(p->insn, sizeof(p->insn), "%s", site.insn);
	snprintf(p->why, sizeof(p->why), "%s", o->no_placement ? "function entry" : site.why);
	return elf__vaddr_to_offset(e, vaddr + p->site, &p->offset);
}

static void loc_to_bloc(const struct pml_loc *l, struct pml_bloc *b)
{
	memset(b, 0, sizeof(*b));
	switch (l->kind) {
	case PML_LOC_REG:
		b->kind = PML_BLOC_REG;
		b->reg = l->reg;
		break;
	case PML_LOC_IMM:
		b->kind = PML_BLOC_IMM;
		b->off = l->off;
		break;
	case PML_LOC_STACK:
		b->kind = PML_BLOC_STACK;
		b->off = l->off;
		break;
	default:
		b->kind = PML_BLOC_NONE;
	}
}

/*
 * Static LTO build, pymalloc: the object allocator is inlined at guard
 * sites. Probe the four internal functions (still called directly) and
 * every guard site the analysis can handle (user/inlined.c).
 */
static int plan_inlined(struct pml_target *t, const struct pml_elf *e,
			const struct pml_target_opts *o, char *err, size_t errlen)
{
	static const struct {
		const char *name;
		enum pml_inl_kind kind;
	} pubs[] = {
		{ "PyObject_Malloc", PML_INL_MALLOC },	 { "PyMem_Malloc", PML_INL_MALLOC },
		{ "PyObject_Calloc", PML_INL_CALLOC },	 { "PyMem_Calloc", PML_INL_CALLOC },
		{ "PyObject_Realloc", PML_INL_REALLOC }, { "PyMem_Realloc", PML_INL_REALLOC },
		{ "PyObject_Free", PML_INL_FREE },	 { "PyMem_Free", PML_INL_FREE },
	};
	static const struct {
		const char *name;
		enum pml_prog prog;
		int nargs;
		bool ret;
	} internal[PML_INL_KINDS] = {
		[PML_INL_MALLOC] = { "_PyObject_Malloc (inlined build)", PROG_CTX_MALLOC, 2, true },
		[PML_INL_CALLOC] = { "_PyObject_Calloc (inlined build)", PROG_CTX_CALLOC, 3, true },
		[PML_INL_REALLOC] = { "_PyObject_Realloc (inlined build)", PROG_CTX_REALLOC, 3,
				      true },
		[PML_INL_FREE] = { "_PyObject_Free (inlined build)", PROG_CTX_FREE, 2, false },
	};
	struct pml_inl_public pub[sizeof(pubs) / sizeof(pubs[0])];
	struct pml_inl_plan *plan = NULL;
	uint8_t *text_copy = NULL;
	struct pml_inl_text text;
	struct pml_inl_code chunk;
	struct pml_inl_fns fns;
	struct pml_elf_sym sym;
	size_t i, j, n = 0, k;
	int r;

	if (elf__text(e, &chunk.vaddr, &chunk.bytes, &chunk.len)) {
		snprintf(err, errlen, "no .text in %s", t->pybin);
		return -ENOENT;
	}
	/* Disassemble the file's bytes: in the mapping, uprobes attached for
	 * every process (another tracer's --all, say) show as int3. */
	text_copy = malloc(chunk.len);
	if (!text_copy)
		return -ENOMEM;
	r = elf__read_at(e, chunk.vaddr, text_copy, chunk.len);
	if (r) {
		free(text_copy);
		snprintf(err, errlen, "cannot read .text of %s: %s", t->pybin, strerror(-r));
		return r;
	}
	chunk.bytes = text_copy;
	text.chunks = &chunk;
	text.n = 1;
	for (i = 0; i < sizeof(pubs) / sizeof(pubs[0]); i++) {
		if (elf__find_dynsym(e, pubs[i].name, &sym))
			continue;
		pub[n].kind = pubs[i].kind;
		pub[n].addr = sym.value;
		n++;
	}
	r = inlined__find_fns(&text, pub, n, &fns);
	if (r) {
		snprintf(err, errlen, "cannot find the inlined allocator in %s", t->pybin);
		goto out;
	}
	for (k = 0; k < PML_INL_KINDS; k++) {
		if (!fns.addr[k])
			continue;
		if (t->nprobes == PML_MAX_PROBES) {
			r = -E2BIG;
			goto out;
		}
		r = plan_at(e, internal[k].name, fns.addr[k],
			    o->count_only ? PROG_COUNT : internal[k].prog, internal[k].nargs,
			    internal[k].ret && !o->count_only, o, &t->probes[t->nprobes]);
		if (r)
			goto out;
		t->nprobes++;
	}
	if (o->count_only || o->no_inlined)
		goto out; /* r is 0 */
	plan = inlined__plan(&text, &fns);
	if (!plan) {
		r = -errno;
		snprintf(err, errlen, "cannot analyse the inlined allocator sites: %s",
			 strerror(-r));
		goto out;
	}
	t->inl_sites = plan->n;
	for (i = 0, n = 0; i < plan->n; i++)
		if (plan->sites[i].handled)
			n += 1 + plan->sites[i].n_exits;
	t->inl = calloc(n ? n : 1, sizeof(*t->inl));
	if (!t->inl) {
		inlined__plan_free(plan);
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < plan->n; i++) {
		const struct pml_inl_site *site = &plan->sites[i];
		struct pml_inl_probe *ep;
		size_t entry;

		if (!site->handled)
			continue;
		entry = t->ninl;
		ep = &t->inl[t->ninl];
		if (elf__vaddr_to_offset(e, site->probe, &ep->offset))
			continue;
		ep->cfg.kind = site->kind;
		for (j = 0; j < PML_INL_MAX_ARGS; j++)
			loc_to_bloc(&site->arg[j], &ep->cfg.loc[j]);
		ep->site = entry;
		t->ninl++;
		for (j = 0; j < site->n_exits; j++) {
			struct pml_inl_probe *xp = &t->inl[t->ninl];

			if (elf__vaddr_to_offset(e, site->exits[j].addr, &xp->offset))
				continue;
			xp->exit = true;
			xp->site = entry;
			xp->cfg.kind = PML_INL_EXIT;
			xp->cfg.sp_delta = site->exits[j].sp_delta;
			loc_to_bloc(&site->exits[j].result, &xp->cfg.loc[0]);
			t->ninl++;
		}
		t->inl_handled++;
	}
	inlined__plan_free(plan);
	r = 0;
out:
	free(text_copy);
	return r;
}

int target__inspect(int pid, const struct pml_target_opts *o, struct pml_target *t, char *err,
		    size_t errlen)
{
	const struct pml_mapping *py = NULL, *libc = NULL;
	struct pml_elf *e = NULL, *ce = NULL;
	struct pml_elf_sym s;
	struct pml_maps maps = { 0 };
	char exe[PML_PATH_MAX];
	uint64_t bias;
	ssize_t n;
	size_t i;
	int r, lo, hi;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	r = procmaps__read(pid, &maps);
	if (r) {
		snprintf(err, errlen,
			 r == -ESRCH ? "no such process" : "cannot read its memory map: %s",
			 strerror(-r));
		return r;
	}
	target__cmdline(pid, t->cmdline, sizeof(t->cmdline));

	/* A mapped libpython holds the interpreter; else the executable may. */
	py = procmaps__find_lib(&maps, "libpython");
	if (py) {
		t->build = PML_BUILD_SHARED;
	} else {
		char link[64];

		snprintf(link, sizeof(link), "/proc/%d/exe", pid);
		n = readlink(link, exe, sizeof(exe) - 1);
		if (n > 0) {
			exe[n] = '\0';
			for (i = 0; i < maps.n; i++)
				if (!strcmp(maps.v[i].path, exe) && maps.v[i].offset == 0)
					py = &maps.v[i];
		}
		t->build = PML_BUILD_STATIC;
	}
	if (!py) {
		snprintf(err, errlen,
			 "no libpython or python executable mapped (is it a Python process?)");
		r = -ENOEXEC;
		goto out;
	}
	snprintf(t->pybin, sizeof(t->pybin), "%s", py->path);
	r = root_path(pid, py->path, t->pybin_open, sizeof(t->pybin_open));
	if (r)
		goto out;
	r = check_same_file(t->pybin_open, py);
	if (r) {
		snprintf(err, errlen, "cannot open %s as mapped: %s", py->path,
			 r == -ESTALE ? "replaced on disk since it was loaded (restart the target)"
				      : strerror(-r));
		goto out;
	}
	e = elf__open_file(t->pybin_open);
	if (!e) {
		r = -errno;
		snprintf(err, errlen, "cannot read %s: %s", t->pybin_open, strerror(-r));
		goto out;
	}
	if (elf__find_dynsym(e, "PyObject_Malloc", &s) && elf__find_sym(e, "PyObject_Malloc", &s)) {
		snprintf(err, errlen,
			 "%s does not contain a CPython interpreter (is it a Python process?)",
			 py->path);
		r = -ENOEXEC;
		goto out;
	}
	if (!parse_version_name(base_name(py->path), &t->major, &t->minor)) {
		/* A renamed binary: 3.11+ carry Py_Version. */
		size_t len = 4;
		const uint8_t *p;
		uint32_t hex;

		if (elf__find_sym(e, "Py_Version", &s) || !(p = elf__bytes_at(e, s.value, &len)) ||
		    len != 4) {
			snprintf(err, errlen, "cannot tell the CPython version of %s", py->path);
			r = -ENOTSUP;
			goto out;
		}
		memcpy(&hex, p, 4);
		t->major = hex >> 24;
		t->minor = (hex >> 16) & 0xff;
	}
	find_version_string(e, py->path, t);
	pyoffsets__supported(&lo, &hi);
	if (t->major != 3 || t->minor < lo || t->minor > hi) {
		snprintf(err, errlen, "unsupported CPython version %s (supported: 3.%d to 3.%d)",
			 t->version, lo, hi);
		r = -ENOTSUP;
		goto out;
	}

	t->symtab = elf__has_symtab(e);
	t->allocator = detect_allocator(pid);

	/* _PyRuntime: where the frame walk starts; the type objects let the
	 * symbolizer check what it reads. */
	if (!procmaps__file_base(&maps, py->path, &bias)) {
		bias -= elf__first_load_vaddr(e);
		if (!elf__find_sym(e, "_PyRuntime", &s))
			t->runtime_addr = bias + s.value;
		if (!elf__find_sym(e, "PyCode_Type", &s))
			t->code_type = bias + s.value;
		if (!elf__find_sym(e, "PyUnicode_Type", &s))
			t->str_type = bias + s.value;
		if (!elf__find_sym(e, "PyBytes_Type", &s))
			t->bytes_type = bias + s.value;
		if (!elf__find_sym(e, "PyType_Type", &s))
			t->type_type = bias + s.value;
	}

	libc = procmaps__find_lib(&maps, "libc.so");
	if (!libc)
		libc = procmaps__find_lib(&maps, "libc-");
	if (!libc) {
		snprintf(err, errlen,
			 "no glibc mapped (statically linked or a different C library)");
		r = -ENOENT;
		goto out;
	}
	r = root_path(pid, libc->path, t->libc_open, sizeof(t->libc_open));
	if (!r)
		r = check_same_file(t->libc_open, libc);
	if (r) {
		snprintf(err, errlen, "cannot open %s as mapped: %s", libc->path, strerror(-r));
		goto out;
	}
	ce = elf__open_file(t->libc_open);
	if (!ce) {
		r = -errno;
		snprintf(err, errlen, "cannot read %s: %s", t->libc_open, strerror(-r));
		goto out;
	}

	/* The plan: object layer (unless every allocation goes to libc), raw layer in libc. */
	t->internal_obj = t->allocator == PML_ALLOC_PYMALLOC && t->symtab &&
			  !elf__find_sym(e, "_PyObject_Malloc", &s) &&
			  !elf__find_sym(e, "_PyObject_Free", &s);
	if (t->allocator == PML_ALLOC_MALLOC)
		r = 0;
	else if (t->build == PML_BUILD_STATIC && !t->symtab && t->allocator == PML_ALLOC_PYMALLOC)
		r = plan_inlined(t, e, o, err, errlen);
	else if (t->internal_obj)
		r = plan_table(t, e, obj_internal, sizeof(obj_internal) / sizeof(obj_internal[0]),
			       LAYER_OBJ, 0, o, err, errlen);
	else
		r = plan_table(t, e, obj_public, sizeof(obj_public) / sizeof(obj_public[0]),
			       LAYER_OBJ, 0, o, err, errlen);
	if (!r)
		r = plan_table(t, ce, raw_libc, sizeof(raw_libc) / sizeof(raw_libc[0]), LAYER_RAW,
			       1, o, err, errlen);
	if (r)
		goto out;

	/* What this build lets the plan see, said plainly. */
	if (t->build == PML_BUILD_SHARED)
		snprintf(t->build_desc, sizeof(t->build_desc), "shared libpython, %s",
			 t->symtab ? "with symbol table" : "stripped (.dynsym only)");
	else
		snprintf(t->build_desc, sizeof(t->build_desc), "static, %s",
			 t->symtab ? "with symbol table"
				   : "stripped (.dynsym only), allocator inlined (LTO)");

	t->complete = true;
	if (t->allocator == PML_ALLOC_MALLOC) {
		snprintf(t->coverage, sizeof(t->coverage),
			 "PYTHONMALLOC=malloc: every allocation goes through libc, probed exactly");
	} else if (t->internal_obj) {
		snprintf(t->coverage, sizeof(t->coverage),
			 "pymalloc internals and libc probed: every allocation path");
	} else if (t->build == PML_BUILD_STATIC && !t->symtab && t->inl_handled) {
		t->complete = false;
		snprintf(
			t->coverage, sizeof(t->coverage),
			"small objects: %zu of %zu inlined allocator sites probed (%.1f%%), the rest "
			"unseen; large objects and raw memory via libc: exact; launch with "
			"`pymemleak -- CMD` for complete coverage",
			t->inl_handled, t->inl_sites, 100.0 * t->inl_handled / t->inl_sites);
	} else if (t->build == PML_BUILD_STATIC && !t->symtab) {
		t->complete = false;
		snprintf(
			t->coverage, sizeof(t->coverage),
			"allocator inlined into the static LTO binary: small objects bypass the probed "
			"symbols (large objects and raw memory via libc are exact); launch with "
			"`pymemleak -- CMD` for complete coverage");
	} else {
		snprintf(t->coverage, sizeof(t->coverage),
			 "public PyObject_*/PyMem_* and libc probed (%s)",
			 target__allocator_name(t->allocator));
	}
	if (o->count_only) {
		t->complete = false;
		snprintf(t->coverage, sizeof(t->coverage),
			 "counting-only probes (benchmark floor)");
	}
	r = 0;
out:
	if (r)
		target__release(t);
	elf__close(ce);
	elf__close(e);
	procmaps__free(&maps);
	return r;
}
