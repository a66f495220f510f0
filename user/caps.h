/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Capabilities: check what tracing needs up front, drop the rest after attach. */
#ifndef PML_CAPS_H
#define PML_CAPS_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Check the effective set for what loading and attaching needs
 * (CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN) and what reading target memory
 * needs (CAP_SYS_PTRACE). Returns 0, or -EPERM with the missing ones named
 * in `missing` ("CAP_BPF, CAP_PERFMON").
 */
int caps__check(char *missing, size_t len);

/*
 * Keep only what tracing goes on needing (BPF map access and new uprobe_multi
 * links for processes found later, reading target memory, reaching files
 * through /proc/PID/root) and drop every other capability from all sets, the
 * bounding set included; set no_new_privs. Returns 0 or -errno.
 */
int caps__drop(void);

#endif
