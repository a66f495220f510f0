/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Whole-host discovery: which processes run CPython. Cheap first checks
 * (the executable's name, libpython in the memory map) decide which pids are
 * worth a full target__inspect(). Identities are (pid, start time), so a
 * reused pid is a new process.
 */
#ifndef PML_SCAN_H
#define PML_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Read /proc/<pid>/<name> into buf (at most cap bytes, not NUL-terminated).
 * Returns the bytes read, -ESRCH when the process is gone, or -errno.
 */
ssize_t scan__read_proc(int pid, const char *name, char *buf, size_t cap);

/* All pids under /proc, ascending, into a malloc'ed array. 0 or -errno. */
int scan__pids(int **pids, size_t *n);

/*
 * Start time (clock ticks since boot, field 22) from the text of
 * /proc/PID/stat. The command name in field 2 may hold spaces and ')'.
 * Returns 0 or -EINVAL. Pure.
 */
int scan__parse_starttime(const char *buf, size_t len, uint64_t *starttime);

/* Read /proc/PID/stat and parse it. 0, -ESRCH, or -errno. */
int scan__starttime(int pid, uint64_t *starttime);

/*
 * Does the text of a maps file map a libpython, or an executable whose
 * basename starts with "python"? (`exe` is the readlink of /proc/PID/exe,
 * may be NULL.) Pure; a "maybe" that target__inspect() confirms.
 */
bool scan__maybe_python(const char *maps, size_t len, const char *exe);

/* The same for a live pid (reads its exe link and maps). */
bool scan__pid_maybe_python(int pid);

#endif
