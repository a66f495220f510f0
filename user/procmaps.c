/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /proc/PID/maps parser. Line format (fs/proc/task_mmu.c):
 *   start-end perms offset major:minor inode [padding path]
 * Numbers are hex except the inode (decimal). The path is the rest of the
 * line after the padding: it may contain spaces, end in " (deleted)" or be a
 * pseudo name such as "[heap]"; the kernel escapes '\n' in it as "\012".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "procmaps.h"

/* Largest maps text procmaps__read accepts (~500k lines of 130 bytes). */
#define PML_MAPS_READ_MAX  (64u << 20)
#define PML_MAPS_READ_INIT (64u << 10)

struct cursor {
	const char *p;
	const char *end;
};

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* 1..max_digits hex digits; fails on none, too many or no room in max. */
static bool cursor__hex(struct cursor *c, unsigned int max_digits, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int n = 0;
	int d;

	while (c->p < c->end && (d = hex_val(*c->p)) >= 0) {
		if (++n > max_digits || v > (max >> 4))
			return false;
		v = (v << 4) | (uint64_t)d;
		if (v > max)
			return false;
		c->p++;
	}
	*out = v;
	return n > 0;
}

static bool cursor__dec(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	unsigned int n = 0;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
		uint64_t d = (uint64_t)(*c->p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
		n++;
		c->p++;
	}
	*out = v;
	return n > 0;
}

static bool cursor__char(struct cursor *c, char ch)
{
	if (c->p >= c->end || *c->p != ch)
		return false;
	c->p++;
	return true;
}

/* One perms letter: `yes` or '-' (for the last slot, 'p' or 's'). */
static bool cursor__flag(struct cursor *c, char yes, char no, bool *out)
{
	if (c->p >= c->end || (*c->p != yes && *c->p != no))
		return false;
	*out = *c->p == yes;
	c->p++;
	return true;
}

/* Parse one line (without its '\n') into *m. False if malformed. */
/* On success the path is copied to *pool (which advances past its NUL). */
static bool parse_line(const char *line, size_t len, struct pml_mapping *m, char **pool)
{
	struct cursor c = { line, line + len };
	uint64_t major, minor;
	size_t plen;

	if (!cursor__hex(&c, 16, UINT64_MAX, &m->start) || !cursor__char(&c, '-') ||
	    !cursor__hex(&c, 16, UINT64_MAX, &m->end) || !cursor__char(&c, ' '))
		return false;
	if (m->start >= m->end)
		return false;
	if (!cursor__flag(&c, 'r', '-', &m->r) || !cursor__flag(&c, 'w', '-', &m->w) ||
	    !cursor__flag(&c, 'x', '-', &m->x) || !cursor__flag(&c, 'p', 's', &m->p) ||
	    !cursor__char(&c, ' '))
		return false;
	if (!cursor__hex(&c, 16, UINT64_MAX, &m->offset) || !cursor__char(&c, ' '))
		return false;
	if (!cursor__hex(&c, 8, UINT32_MAX, &major) || !cursor__char(&c, ':') ||
	    !cursor__hex(&c, 8, UINT32_MAX, &minor) || !cursor__char(&c, ' '))
		return false;
	m->dev_major = (uint32_t)major;
	m->dev_minor = (uint32_t)minor;
	if (!cursor__dec(&c, &m->inode))
		return false;
	/* Anonymous mappings end here, possibly with the padding space. */
	if (c.p < c.end && *c.p != ' ')
		return false;
	while (c.p < c.end && *c.p == ' ')
		c.p++;
	plen = (size_t)(c.end - c.p);
	if (plen >= PML_PATH_MAX || memchr(c.p, '\0', plen))
		return false;
	memcpy(*pool, c.p, plen);
	(*pool)[plen] = '\0';
	m->path = *pool;
	*pool += plen + 1;
	return true;
}

int procmaps__parse(const char *buf, size_t len, struct pml_maps *out, size_t *bad)
{
	size_t lines = 0, nbad = 0, n = 0;
	struct pml_mapping *v;
	const char *p, *end;
	char *pool, *cur;

	if (!out || (!buf && len))
		return -EINVAL;
	out->v = NULL;
	out->pool = NULL;
	out->n = 0;
	if (bad)
		*bad = 0;
	if (!len)
		return 0;
	p = buf;
	end = buf + len;

	/* Upper bound on the result: one entry per line. */
	for (const char *q = buf; q < end;) {
		const char *nl = memchr(q, '\n', (size_t)(end - q));

		lines++;
		if (!nl)
			break;
		q = nl + 1;
	}
	/* calloc: large arrays come zeroed from mmap, untouched tails cost nothing. */
	v = calloc(lines, sizeof(*v));
	/* Paths are pieces of the text: text + one NUL a line always fits. */
	pool = malloc(len + lines + 1);
	if (!v || !pool) {
		free(v);
		free(pool);
		return -ENOMEM;
	}
	cur = pool;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		struct pml_mapping *m = &v[n];

		/*
		 * The kernel prints in address order; a line that goes back or
		 * overlaps the previous one can only come from a map change
		 * between read() calls. Dropping it keeps v sorted and disjoint,
		 * which find_addr relies on.
		 */
		char *mark = cur;

		if (parse_line(p, (size_t)(eol - p), m, &cur) && (!n || m->start >= v[n - 1].end)) {
			n++;
		} else {
			nbad++;
			cur = mark; /* a rejected line's path is not kept */
		}
		p = nl ? nl + 1 : end;
	}
	if (n < lines)
		memset(&v[n], 0, sizeof(v[n])); /* scratch of a rejected line */

	if (!n) {
		free(v);
		free(pool);
		v = NULL;
		pool = NULL;
	}
	out->v = v;
	out->pool = pool;
	out->n = n;
	if (bad)
		*bad = nbad;
	return 0;
}

/* Read all of fd into a malloc'ed buffer of at most PML_MAPS_READ_MAX bytes. */
static int read_all(int fd, char **bufp, size_t *lenp)
{
	size_t cap = PML_MAPS_READ_INIT, len = 0;
	char *buf = malloc(cap), *nbuf;
	ssize_t r;

	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (len == cap) {
			if (cap >= PML_MAPS_READ_MAX) {
				free(buf);
				return -EFBIG;
			}
			cap *= 2;
			nbuf = realloc(buf, cap);
			if (!nbuf) {
				free(buf);
				return -ENOMEM;
			}
			buf = nbuf;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			free(buf);
			return (int)r;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	*bufp = buf;
	*lenp = len;
	return 0;
}

int procmaps__read(int pid, struct pml_maps *out)
{
	char path[64];
	struct stat st;
	size_t len = 0;
	char *buf = NULL;
	int fd, err;

	if (!out)
		return -EINVAL;
	out->v = NULL;
	out->n = 0;
	if (pid <= 0)
		return -EINVAL;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	err = read_all(fd, &buf, &len);
	close(fd);
	if (err)
		return err;

	/*
	 * An exited (or zombie) process reads as empty; so does a kernel
	 * thread, which is still there. Tell them apart by the /proc entry.
	 */
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (!len && stat(path, &st) && errno == ENOENT) {
		free(buf);
		return -ESRCH;
	}
	err = procmaps__parse(buf, len, out, NULL);
	free(buf);
	return err;
}

void procmaps__free(struct pml_maps *m)
{
	if (!m)
		return;
	free(m->v);
	free(m->pool);
	m->v = NULL;
	m->pool = NULL;
	m->n = 0;
}

const struct pml_mapping *procmaps__find_addr(const struct pml_maps *m, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!m || !m->v)
		return NULL;
	/* v is sorted and disjoint (see procmaps__parse): binary search. */
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->v[mid].end <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->n && m->v[lo].start <= addr && addr < m->v[lo].end)
		return &m->v[lo];
	return NULL;
}

static const char *path_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

const struct pml_mapping *procmaps__find_lib(const struct pml_maps *m, const char *prefix)
{
	size_t plen;

	if (!m || !m->v || !prefix)
		return NULL;
	plen = strlen(prefix);
	for (size_t i = 0; i < m->n; i++) {
		const char *path = m->v[i].path;

		if (path[0] && !strncmp(path_basename(path), prefix, plen))
			return &m->v[i];
	}
	return NULL;
}

int procmaps__file_base(const struct pml_maps *m, const char *path, uint64_t *base)
{
	if (!m || !path || !base)
		return -EINVAL;
	if (!path[0] || !m->v)
		return -ENOENT;
	for (size_t i = 0; i < m->n; i++) {
		if (m->v[i].offset == 0 && !strcmp(m->v[i].path, path)) {
			*base = m->v[i].start;
			return 0;
		}
	}
	return -ENOENT;
}
