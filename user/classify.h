/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Name the Python type of the object held in a live allocation block, by
 * reading the target's memory: "dict", "list", "Leaky", or "<buffer>" when
 * the block does not start with an object we can recognise (list item
 * arrays, dict key tables, raw C buffers, freed or half-built objects).
 *
 * The allocator hands out the block start; the PyObject starts after the
 * headers its type implies: a GC head when the type has Py_TPFLAGS_HAVE_GC,
 * and on 3.11+ a pre-header (managed dict / weakref words) before it when
 * the type has one of lay->tp_flags_preheader. Each candidate start (0,
 * pre-header, GC head, both; smallest first) is accepted only when it is
 * consistent: its ob_type points to a type object T whose own type is
 * type_type (or a metaclass that is a direct instance of type_type and has
 * Py_TPFLAGS_TYPE_SUBCLASS: one level, never more), T is ready, T's flags
 * imply exactly the headers that candidate assumed, T's tp_basicsize fits
 * in the rest of the block, T's tp_name is 1..63 printable ASCII bytes, and
 * the object's ob_refcnt is a plausible count rather than a pointer.
 *
 * Target memory is untrusted: every read is bounded and goes through the
 * reader, address arithmetic that would wrap is rejected, no loop depends
 * on target data beyond fixed bounds. Type objects are cached per pid
 * (address -> facts read, including "not a type"), at most
 * PML_CLASSIFY_CACHE_MAX entries, cleared when full. A cached type is not
 * re-read: a heap type freed and replaced by another at the same address
 * keeps its old name until the cache is cleared or the pid dropped.
 */
#ifndef PML_CLASSIFY_H
#define PML_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include "pyoffsets.h"
#include "symbolize.h"

/* Placeholder name of a block that holds no recognisable object start. */
#define PML_CLASSIFY_BUFFER "<buffer>"

/* Longest type name reported, NUL included (longer tp_name: not a type). */
#define PML_CLASSIFY_NAME_MAX 64

/* Type objects cached per pid before the cache is cleared. */
#define PML_CLASSIFY_CACHE_MAX 4096

struct pml_classifier;

/*
 * Reads go through rd(pid, addr, buf, len, ctx), which must fail (-errno)
 * rather than return part of the bytes; rd NULL reads with
 * process_vm_readv. NULL with errno (ENOMEM).
 */
struct pml_classifier *classify__new(pml_read_fn rd, void *ctx);
void classify__free(struct pml_classifier *c); /* NULL-safe */

/*
 * Classify blocks of pid with layout *lay (copied) and type_type, the
 * address of PyType_Type in the target. Adding a pid again replaces its
 * layout and empties its cache. Returns 0, -EINVAL (NULL layout,
 * type_type 0 or misaligned, layout offsets out of the sane range) or
 * -ENOMEM.
 */
int classify__add_proc(struct pml_classifier *c, int pid, const struct pml_pylayout *lay,
		       uint64_t type_type);

/* Forget pid and its cache (no-op when unknown or c NULL). */
void classify__drop_pid(struct pml_classifier *c, int pid);

/*
 * Name the type of the object in block [addr, addr + size) of pid into
 * name (always NUL-terminated, truncated to len). Returns 0 with a type
 * name or PML_CLASSIFY_BUFFER; -EINVAL when c or name is NULL or len 0;
 * -ESRCH when pid was not added (name then holds PML_CLASSIFY_BUFFER).
 * Unreadable memory is not an error: it gives PML_CLASSIFY_BUFFER.
 */
int classify__block(struct pml_classifier *c, int pid, uint64_t addr, uint64_t size, char *name,
		    size_t len);

#endif
