// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elf.h"
#include "natsym.h"
#include "procmaps.h"

#define NATSYM_PIDS  64
#define NATSYM_ELVES 64

struct pid_maps {
	int pid;
	struct pml_maps maps;
};

struct elf_entry {
	char path[PML_PATH_MAX];
	uint64_t inode;
	struct pml_elf *elf; /* NULL: could not be read (cached as such) */
	uint64_t first_vaddr;
};

struct pml_natsym {
	struct pid_maps pids[NATSYM_PIDS];
	size_t npids, next_pid;
	struct elf_entry elves[NATSYM_ELVES];
	size_t nelves, next_elf;
};

struct pml_natsym *natsym__new(void)
{
	return calloc(1, sizeof(struct pml_natsym));
}

void natsym__free(struct pml_natsym *n)
{
	size_t i;

	if (!n)
		return;
	for (i = 0; i < n->npids; i++)
		procmaps__free(&n->pids[i].maps);
	for (i = 0; i < n->nelves; i++)
		elf__close(n->elves[i].elf);
	free(n);
}

void natsym__drop_pid(struct pml_natsym *n, int pid)
{
	size_t i;

	for (i = 0; i < n->npids; i++) {
		if (n->pids[i].pid != pid)
			continue;
		procmaps__free(&n->pids[i].maps);
		n->pids[i].pid = 0;
	}
}

/* The cached map of pid, (re)read when `refresh`. */
static struct pml_maps *maps_of(struct pml_natsym *n, int pid, int refresh)
{
	struct pid_maps *slot = NULL;
	size_t i;

	for (i = 0; i < n->npids; i++)
		if (n->pids[i].pid == pid)
			slot = &n->pids[i];
	if (slot && !refresh)
		return &slot->maps;
	if (!slot) {
		if (n->npids < NATSYM_PIDS) {
			slot = &n->pids[n->npids++];
		} else {
			slot = &n->pids[n->next_pid];
			n->next_pid = (n->next_pid + 1) % NATSYM_PIDS;
		}
	}
	procmaps__free(&slot->maps);
	slot->pid = 0;
	if (procmaps__read(pid, &slot->maps))
		return NULL;
	slot->pid = pid;
	return &slot->maps;
}

static struct elf_entry *elf_of(struct pml_natsym *n, int pid, const struct pml_mapping *m)
{
	struct elf_entry *e = NULL;
	char path[PML_PATH_MAX];
	size_t i;
	int len;

	for (i = 0; i < n->nelves; i++)
		if (n->elves[i].inode == m->inode && !strcmp(n->elves[i].path, m->path))
			return &n->elves[i];
	if (n->nelves < NATSYM_ELVES) {
		e = &n->elves[n->nelves++];
	} else {
		e = &n->elves[n->next_elf];
		n->next_elf = (n->next_elf + 1) % NATSYM_ELVES;
		elf__close(e->elf);
	}
	memset(e, 0, sizeof(*e));
	snprintf(e->path, sizeof(e->path), "%s", m->path);
	e->inode = m->inode;
	len = snprintf(path, sizeof(path), "/proc/%d/root%s", pid, m->path);
	if (len > 0 && (size_t)len < sizeof(path))
		e->elf = elf__open_file(path);
	if (e->elf)
		e->first_vaddr = elf__first_load_vaddr(e->elf);
	return e;
}

int natsym__format(struct pml_natsym *n, int pid, uint64_t ip, char *buf, size_t len)
{
	const struct pml_mapping *m = NULL, *base = NULL;
	struct pml_elf_sym sym;
	struct pml_maps *maps;
	struct elf_entry *e;
	const char *mod;
	uint64_t vaddr;
	size_t i;
	int pass;

	snprintf(buf, len, "0x%llx", (unsigned long long)ip);
	if (!ip)
		return -ENOENT;
	for (pass = 0; pass < 2 && !m; pass++) {
		maps = maps_of(n, pid, pass);
		if (maps)
			m = procmaps__find_addr(maps, ip);
	}
	if (!m)
		return -ENOENT;
	if (!m->path[0] || m->path[0] == '[') {
		snprintf(buf, len, "%s+0x%llx", m->path[0] ? m->path : "[anon]",
			 (unsigned long long)(ip - m->start));
		return 0;
	}
	/* The load base is the mapping of the same file at offset 0. */
	for (i = 0; i < maps->n; i++)
		if (maps->v[i].inode == m->inode && maps->v[i].offset == 0 &&
		    !strcmp(maps->v[i].path, m->path)) {
			base = &maps->v[i];
			break;
		}
	mod = strrchr(m->path, '/');
	mod = mod ? mod + 1 : m->path;
	e = elf_of(n, pid, m);
	if (!base || !e->elf) {
		snprintf(buf, len, "%s+0x%llx", mod,
			 (unsigned long long)(ip - m->start + m->offset));
		return 0;
	}
	vaddr = ip - base->start + e->first_vaddr;
	if (!elf__sym_at(e->elf, vaddr, &sym))
		snprintf(buf, len, "%s+0x%llx (%s+0x%llx)", mod, (unsigned long long)vaddr,
			 sym.name, (unsigned long long)(vaddr - sym.value));
	else
		snprintf(buf, len, "%s+0x%llx", mod, (unsigned long long)vaddr);
	return 0;
}
