/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Python frames -> file, function, line, by reading code objects in the
 * target. Target memory is untrusted and may change under us: every read
 * is bounded, every object's type is checked against the interpreter's own
 * type objects, and what cannot be read shows as "<unknown>" and is
 * counted. Code objects are cached by (pid, address), revalidated when a
 * new stack refers to them (an address can be reused by a new code object).
 */
#ifndef PML_SYMBOLIZE_H
#define PML_SYMBOLIZE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pymemleak.h"
#include "pyoffsets.h"
#include "report.h"

/* Addresses of the interpreter's type objects in the target (0: unknown,
 * then that check is skipped). */
struct pml_pytypes {
	uint64_t code_type;
	uint64_t str_type;
	uint64_t bytes_type;
};

/* Reads len bytes of pid's memory at addr. Returns 0 or -errno. */
typedef int (*pml_read_fn)(int pid, uint64_t addr, void *buf, size_t len, void *ctx);

/* Upper bound of one read of target memory. */
#define PML_READ_MAX (1u << 20)

struct pml_symbolizer;

/* Reading through process_vm_readv. NULL with errno. */
struct pml_symbolizer *symbolizer__new(void);
/* Reading through `rd` (tests, fuzzing). */
struct pml_symbolizer *symbolizer__new_reader(pml_read_fn rd, void *ctx);
void symbolizer__free(struct pml_symbolizer *s); /* NULL-safe */

/*
 * Start symbolizing pid: picks the layout of major.minor (3.13+: from
 * _Py_DebugOffsets at runtime_addr when it validates, else the table),
 * copies it to *out (walk.runtime_addr set). Returns 0 or -errno
 * (-ENOTSUP: no layout for this version).
 */
int symbolizer__add_proc(struct pml_symbolizer *s, int pid, int major, int minor,
			 uint64_t runtime_addr, const struct pml_pytypes *types,
			 struct pml_pylayout *out);
void symbolizer__drop_pid(struct pml_symbolizer *s, int pid);

/* Fill info->frames / nframes from st (innermost first). Allocates; free
 * with symbolizer__release. Returns 0 or -ENOMEM. */
int symbolizer__frames(struct pml_symbolizer *s, int pid, const struct pml_stack *st,
		       struct pml_stackinfo *info);
void symbolizer__release(struct pml_stackinfo *info);

/*
 * Start a new tick. Within one tick a code object validated once is trusted
 * without another read (a burst of new stacks shares its frames); the
 * caller ticks once per batch of work, so a freed and reused address is
 * noticed at the next batch.
 */
void symbolizer__tick(struct pml_symbolizer *s);

/* Frames of pid that could not be symbolized so far. */
uint64_t symbolizer__failures(const struct pml_symbolizer *s, int pid);

/* Pure helpers, exposed for tests and fuzzing. */

/* Decode a compact str's data (kind 1, 2 or 4 bytes per code point, n code
 * points) as UTF-8 into out (always NUL-terminated, truncated to fit;
 * unpaired surrogates and invalid code points become U+FFFD). Returns the
 * bytes written (without the NUL). */
size_t symbolize__ucs_to_utf8(const uint8_t *data, size_t n, unsigned int kind, char *out,
			      size_t outlen);

/* Byte offset into the bytecode of a captured instruction word. */
uint32_t symbolize__instr_offset(const struct pml_pylayout *lay, uint64_t code, uint64_t instr);

#endif
