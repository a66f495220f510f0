/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /proc/PID/maps parsing. The text comes from a process we do not trust
 * (paths are chosen by it), so the parser is a pure function over a byte
 * buffer: bounded, no allocation per line beyond the result array.
 */
#ifndef PML_PROCMAPS_H
#define PML_PROCMAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PML_PATH_MAX 4096

struct pml_mapping {
	uint64_t start;
	uint64_t end;
	uint64_t offset; /* file offset of start */
	uint64_t inode;
	uint32_t dev_major;
	uint32_t dev_minor;
	bool r, w, x, p;  /* permissions; p = private */
	const char *path; /* "" for anonymous; " (deleted)" kept as is; in maps->pool */
};

struct pml_maps {
	struct pml_mapping *v;
	size_t n;
	char *pool; /* every path, NUL-terminated: a map costs its text, not 4 KiB a line */
};

/*
 * Parse the text of a maps file (buf, len; need not be NUL-terminated).
 * Malformed lines are skipped and counted in *bad (may be NULL): bad syntax,
 * start >= end, a path of PML_PATH_MAX bytes or more or holding a NUL, and a
 * line that starts below the end of the previous kept one (the kernel prints
 * in address order; only a map change between read() calls does that). So
 * out->v is sorted by address and disjoint.
 * Returns 0 or -errno (-ENOMEM, -EINVAL for NULL out). On success free with
 * procmaps__free(); out->v is NULL when no line was kept.
 */
int procmaps__parse(const char *buf, size_t len, struct pml_maps *out, size_t *bad);

/*
 * Read and parse /proc/<pid>/maps (at most 64 MiB, else -EFBIG).
 * Returns 0 or -errno (-ESRCH if gone, -EACCES/-EPERM without ptrace rights).
 * A kernel thread yields 0 mappings.
 */
int procmaps__read(int pid, struct pml_maps *out);

void procmaps__free(struct pml_maps *m);

/* Mapping containing addr, or NULL. Binary search (v is sorted). */
const struct pml_mapping *procmaps__find_addr(const struct pml_maps *m, uint64_t addr);

/*
 * First mapping whose path's basename starts with prefix (e.g. "libpython3."),
 * or NULL. The lowest-addressed such mapping is the load base candidate.
 */
const struct pml_mapping *procmaps__find_lib(const struct pml_maps *m, const char *prefix);

/*
 * Load bias of the file mapped at `path`: the start of its mapping with
 * offset 0 (lowest address). `path` is compared exactly, " (deleted)"
 * included. Returns 0 and sets *base, -ENOENT, or -EINVAL for NULL args.
 */
int procmaps__file_base(const struct pml_maps *m, const char *path, uint64_t *base);

#endif
