/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Folded stacks writer (`--folded FILE`), and the frame naming that every
 * flamegraph-style export (folded, SVG, speedscope) shares.
 *
 * The exported path of one ranked row, root first:
 *
 *   "<pid> <command>"          only with pid_root (several processes in one
 *                              export); <command> is the basename of argv[0]
 *                              then the other arguments, cut at 60
 *                              characters; just "<pid>" if the cmdline is empty
 *   "[unsymbolized 0x<id>]"    the stack was never symbolized (info NULL): the
 *                              path ends here; <id> is 16 hex digits
 *   "[truncated]"              the stack was deeper than captured, so its
 *                              outermost frames are missing: keeps it apart
 *                              from the complete stacks that share a root
 *   "function (file:line)"     one per Python frame, outermost first; line
 *                              "?" when unknown, "?" for a missing string
 *   "[native] <caller>"        the native caller, when known
 *   "[no frames 0x<id>]"       a symbolized stack with neither Python frames
 *                              nor a native caller
 *
 * Names are clean UTF-8: each invalid byte, each control character (C0,
 * DEL, C1) and U+FFFE/U+FFFF become '?', so every writer only has to
 * escape its own syntax. A name is at most EXPORT_NAME_MAX bytes, cut at a
 * character boundary.
 *
 * Folded format: one line per distinct path, "frame;frame;...;frame <bytes>"
 * with <bytes> the outstanding bytes, lines sorted bytewise and identical
 * ones merged (summed, saturating). ';' inside a name becomes ':'. It is
 * what flamegraph.pl, inferno and speedscope read.
 */
#ifndef PML_EXPORT_FOLDED_H
#define PML_EXPORT_FOLDED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

#define EXPORT_NAME_MAX	    1023 /* bytes of one frame name, NUL excluded */
#define EXPORT_NAME_SIZE    (EXPORT_NAME_MAX + 1)
#define EXPORT_CMD_CHARS    60	/* characters of the command in a process frame */
#define EXPORT_PYFRAMES_MAX 256 /* Python frames kept per path, innermost first */

enum export_frame_kind {
	EXPORT_FRAME_PROCESS = 0,
	EXPORT_FRAME_PYTHON,
	EXPORT_FRAME_NATIVE,
	EXPORT_FRAME_MARKER, /* [unsymbolized ..], [truncated], [no frames ..] */
};

/*
 * Write the rows of every process in procs (all of them, no top N) as
 * folded stacks. Returns 0, -EINVAL, -ENOMEM, or -errno of a failed write.
 */
int export_folded__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
			 size_t nprocs, bool pid_root);

/* Number of frames in the exported path of row r (always >= 1). */
size_t export_folded__path_len(const struct pml_row *r, bool pid_root);

/*
 * Frame i (0 is the root) of the exported path of row r of process p: its
 * clean name into buf (NUL-terminated, cut to size; size 0 writes nothing),
 * and into *py (if py is not NULL) the Python frame it names or NULL.
 * Returns its kind, or -ERANGE when i is past the path.
 */
int export_folded__frame(const struct pml_procinfo *p, const struct pml_row *r, bool pid_root,
			 size_t i, char *buf, size_t size, const struct pml_pyframe **py);

/* The process frame's name, "<pid> <command>", into buf as above. */
void export_folded__proc_name(const struct pml_procinfo *p, char *buf, size_t size);

/* The clean form of untrusted src[0..len) into buf, as for frame names. */
void export_folded__clean(const char *src, size_t len, char *buf, size_t size);

#endif
