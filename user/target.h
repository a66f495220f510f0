/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What a process runs: the binary holding the interpreter (executable or
 * libpython), its CPython version and build kind, the allocator in use, the
 * address of _PyRuntime, and the probe plan that covers it best, with the
 * coverage that plan can promise. No libbpf here.
 */
#ifndef PML_TARGET_H
#define PML_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "procmaps.h"
#include "tracer.h"

#define PML_MAX_PROBES 32

enum pml_build {
	PML_BUILD_SHARED = 0, /* libpython3.X.so mapped by the executable */
	PML_BUILD_STATIC,     /* interpreter linked into the executable */
};

enum pml_allocator {
	PML_ALLOC_PYMALLOC = 0, /* default */
	PML_ALLOC_MALLOC,	/* PYTHONMALLOC=malloc: every allocation is libc's */
	PML_ALLOC_DEBUG,	/* PYTHONMALLOC=*debug: debug hooks wrap the allocator */
	PML_ALLOC_MIMALLOC,	/* PYTHONMALLOC=mimalloc */
};

struct pml_probe {
	char symbol[64];
	uint64_t sym_vaddr; /* st_value */
	uint64_t offset;    /* file offset of the probe site */
	uint32_t site;	    /* site - symbol start, bytes */
	enum pml_prog prog;
	bool ret;	/* with a return probe */
	uint32_t layer; /* enum pml_layer */
	int libc;	/* 1: in libc, 0: in the interpreter binary */
	bool emulated;	/* site is an instruction the kernel emulates */
	char insn[48];
	char why[96];
};

/* One probe on an inlined allocator site (static LTO builds). */
struct pml_inl_probe {
	uint64_t offset; /* file offset in the interpreter binary */
	uint32_t site;	 /* index of the site's entry probe in inl[] */
	bool exit;
	struct pml_inl_cfg cfg; /* cfg.site is set at attach time (a cookie) */
};

struct pml_target {
	int pid;
	char cmdline[256];
	char pybin[PML_PATH_MAX];      /* interpreter binary as the target names it */
	char pybin_open[PML_PATH_MAX]; /* same, reachable from here (/proc/PID/root/...) */
	char libc_open[PML_PATH_MAX];
	int major, minor;
	char version[16]; /* "3.12.1" or "3.10" */
	enum pml_build build;
	bool symtab;	   /* interpreter binary has a .symtab */
	bool internal_obj; /* _PyObject_* internals probed */
	enum pml_allocator allocator;
	uint64_t runtime_addr; /* _PyRuntime in the target, 0 if unknown */
	uint64_t code_type;    /* &PyCode_Type in the target, 0 if unknown */
	uint64_t str_type;     /* &PyUnicode_Type */
	uint64_t bytes_type;   /* &PyBytes_Type */
	uint64_t type_type;    /* &PyType_Type */
	char build_desc[96];
	struct pml_probe probes[PML_MAX_PROBES];
	size_t nprobes;
	struct pml_inl_probe *inl; /* inlined allocator sites probed, or NULL */
	size_t ninl;
	size_t inl_sites, inl_handled; /* guard sites found, and handled */
	bool complete;		       /* the plan sees every allocation */
	char coverage[512];	       /* why complete, or why partial */
};

struct pml_target_opts {
	bool count_only;   /* benchmark floor: counting probes at function entries */
	bool no_placement; /* probe at function entries (for comparison) */
	bool no_inlined;   /* static LTO: do not probe the inlined allocator sites */
};

/*
 * Inspect pid. Returns 0, or:
 *  -ESRCH    no such process
 *  -ENOEXEC  not a CPython process (no libpython or python executable)
 *  -ENOTSUP  CPython version outside 3.8-3.13
 *  -ENOENT   the interpreter is there but a needed symbol or libc is missing
 *  other -errno from reading /proc
 * and writes a one-line reason (no "pymemleak:" prefix) to err.
 */
int target__inspect(int pid, const struct pml_target_opts *o, struct pml_target *out, char *err,
		    size_t errlen);

/* Free what target__inspect allocated (NULL-safe, idempotent). */
void target__release(struct pml_target *t);

/* "shared libpython, .symtab" ... */
const char *target__allocator_name(enum pml_allocator a);

/*
 * Read /proc/PID/cmdline into buf as one line: NULs become spaces,
 * non-printable bytes '?'. Returns 0 or -errno.
 */
int target__cmdline(int pid, char *buf, size_t len);

#endif
