/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Reading a traced process's memory: the one place that calls process_vm_readv. */
#ifndef PML_TMEM_H
#define PML_TMEM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Read exactly len bytes of pid's memory at addr (ctx unused; the signature
 * is pml_read_fn's). Returns 0, -EFAULT on a short read, or -errno.
 */
int tmem__read(int pid, uint64_t addr, void *buf, size_t len, void *ctx);

#endif
