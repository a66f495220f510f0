/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Native addresses of a traced process -> "module+0xVADDR (symbol+0xOFF)".
 * Keeps each process's memory map and each module's symbol table cached;
 * a map is re-read when an address falls outside every cached mapping
 * (a library loaded since).
 */
#ifndef PML_NATSYM_H
#define PML_NATSYM_H

#include <stddef.h>
#include <stdint.h>

struct pml_natsym;

struct pml_natsym *natsym__new(void);	 /* NULL with errno */
void natsym__free(struct pml_natsym *n); /* NULL-safe */

/* Format ip of pid into buf. Returns 0, or -errno with "0x<ip>" in buf. */
int natsym__format(struct pml_natsym *n, int pid, uint64_t ip, char *buf, size_t len);

/* Forget pid's map (exec, exit). */
void natsym__drop_pid(struct pml_natsym *n, int pid);

#endif
