/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `pymemleak -- COMMAND`: start a command with the probes in place before
 * its first Python line. The child runs under ptrace only until the
 * interpreter binary and libc are mapped (stepping syscall stops through any
 * exec chain: shims, env, shells that exec); the caller's ready() attaches
 * there, and the child is let go.
 */
#ifndef PML_LAUNCH_H
#define PML_LAUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * ready(pid, ctx) is called at syscall-exit stops after mmap and at exec
 * stops. It returns 0 when it has attached (the child is then detached and
 * runs), -EAGAIN to keep waiting, or another -errno to abort (the child is
 * killed) with the reason in err.
 */
typedef int (*pml_launch_ready_fn)(pid_t pid, void *ctx, char *err, size_t errlen);

/*
 * Fork and exec argv (PATH searched), with `setenv_kv` ("NAME=VALUE", or
 * NULL) added to its environment. Returns 0 with *child set once ready()
 * accepted, or -errno with a one-line reason in err.
 */
int launch__start(char *const argv[], const char *setenv_kv, pml_launch_ready_fn ready, void *ctx,
		  pid_t *child, char *err, size_t errlen);

/*
 * Does the file that `cmd` resolves to on PATH run a static CPython build
 * whose allocator is inlined (stripped, no libpython)? Then only
 * PYTHONMALLOC=malloc gives complete coverage.
 */
bool launch__needs_libc_malloc(const char *cmd, char *resolved, size_t len);

#endif
