/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Folded stacks and the shared frame naming: formats in export_folded.h.
 * Every string here comes from the target, so each one is read within a
 * bound and cleaned before it reaches a name.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "export_folded.h"
#include "pymemleak.h"

/* Longest target string read for one name part: names are cut far sooner. */
#define SRC_MAX 4096

/* A name being built in a caller's buffer; len < size once started. */
struct name_buf {
	char *s;
	size_t size;
	size_t len;
	bool full; /* something was cut: append nothing more */
};

/* Whether the valid sequence c[0..n) may stand in a name as it is. */
static bool name_char_ok(const unsigned char *c, size_t n)
{
	if (n == 1)
		return c[0] >= 0x20 && c[0] != 0x7f;
	if (n == 2)
		return !(c[0] == 0xc2 && c[1] < 0xa0); /* C1 controls */
	if (n == 3)
		return !(c[0] == 0xef && c[1] == 0xbf && c[2] >= 0xbe); /* U+FFFE, U+FFFF */
	return true;
}

/*
 * Append src[0..len) cleaned, at most max_chars characters, stopping at a
 * character boundary when the buffer is full.
 */
static void name_put(struct name_buf *b, const char *src, size_t len, size_t max_chars)
{
	size_t i, n, chars = 0;

	if (!b->size || b->full)
		return;
	for (i = 0; src && i < len && chars < max_chars; i += n, chars++) {
		const char *piece = src + i;
		size_t plen;

		n = report__utf8_seq(src + i, len - i);
		plen = n;
		if (!n || !name_char_ok((const unsigned char *)src + i, n)) {
			piece = "?";
			plen = 1;
			/* an invalid sequence costs one '?' per byte */
			n = n ? n : 1;
		}
		if (b->len + plen >= b->size) {
			b->full = true;
			break;
		}
		memcpy(b->s + b->len, piece, plen);
		b->len += plen;
	}
	b->s[b->len] = '\0';
}

static void name_str(struct name_buf *b, const char *s)
{
	if (s)
		name_put(b, s, strnlen(s, SRC_MAX), SIZE_MAX);
	else
		name_put(b, "?", 1, SIZE_MAX);
}

/* Our own ASCII text, printf-style, cut like the rest. */
static void name_fmt(struct name_buf *b, const char *fmt, unsigned long long v)
{
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), fmt, v);

	if (n > 0)
		name_put(b, tmp, strnlen(tmp, sizeof(tmp)), SIZE_MAX);
}

static void name_init(struct name_buf *b, char *buf, size_t size)
{
	b->s = buf;
	b->size = size;
	b->len = 0;
	b->full = false;
	if (size)
		buf[0] = '\0';
}

void export_folded__clean(const char *src, size_t len, char *buf, size_t size)
{
	struct name_buf b;

	name_init(&b, buf, size);
	name_put(&b, src, len, SIZE_MAX);
}

void export_folded__proc_name(const struct pml_procinfo *p, char *buf, size_t size)
{
	size_t len = strnlen(p->cmdline, sizeof(p->cmdline)), start = 0, i;
	struct name_buf b;

	name_init(&b, buf, size);
	name_fmt(&b, "%llu", p->pid);
	/* cmdline has its arguments joined by spaces: argv[0] ends at the first */
	while (start < len && p->cmdline[start] == ' ')
		start++;
	for (i = start; i < len && p->cmdline[i] != ' '; i++) {
		if (p->cmdline[i] == '/')
			start = i + 1;
	}
	if (start >= len)
		return;
	name_put(&b, " ", 1, SIZE_MAX);
	name_put(&b, p->cmdline + start, len - start, EXPORT_CMD_CHARS);
}

/* How the path of a row is laid out: which frames it has, root first. */
struct path_shape {
	size_t proc;   /* 1 with a process frame */
	size_t marker; /* 1 with [unsymbolized], [truncated] or [no frames] first */
	size_t npy;    /* Python frames */
	size_t native; /* 1 with a native caller */
	size_t len;
};

static void path_shape(const struct pml_row *r, bool pid_root, struct path_shape *s)
{
	const struct pml_stackinfo *si = r->info;

	memset(s, 0, sizeof(*s));
	s->proc = pid_root ? 1 : 0;
	if (!si) {
		s->marker = 1;
	} else {
		s->npy = si->nframes < EXPORT_PYFRAMES_MAX ? si->nframes : EXPORT_PYFRAMES_MAX;
		s->native = si->native ? 1 : 0;
		if ((si->flags & PML_STACK_TRUNCATED) || si->nframes > s->npy ||
		    (!s->npy && !s->native))
			s->marker = 1;
	}
	s->len = s->proc + s->marker + s->npy + s->native;
}

size_t export_folded__path_len(const struct pml_row *r, bool pid_root)
{
	struct path_shape s;

	path_shape(r, pid_root, &s);
	return s.len;
}

int export_folded__frame(const struct pml_procinfo *p, const struct pml_row *r, bool pid_root,
			 size_t i, char *buf, size_t size, const struct pml_pyframe **py)
{
	const struct pml_stackinfo *si = r->info;
	const struct pml_pyframe *f;
	struct path_shape s;
	struct name_buf b;

	name_init(&b, buf, size);
	if (py)
		*py = NULL;
	path_shape(r, pid_root, &s);
	if (i >= s.len)
		return -ERANGE;
	if (i < s.proc) {
		export_folded__proc_name(p, buf, size);
		return EXPORT_FRAME_PROCESS;
	}
	i -= s.proc;
	if (i < s.marker) {
		if (!si)
			name_fmt(&b, "[unsymbolized 0x%016llx]", r->stack_id);
		else if (s.npy || s.native)
			name_str(&b, "[truncated]");
		else
			name_fmt(&b, "[no frames 0x%016llx]", r->stack_id);
		return EXPORT_FRAME_MARKER;
	}
	i -= s.marker;
	if (i < s.npy) {
		/* frames[] is innermost first and keeps the innermost npy */
		f = &si->frames[s.npy - 1 - i];
		name_str(&b, f->function);
		name_put(&b, " (", 2, SIZE_MAX);
		name_str(&b, f->file);
		if (f->line > 0)
			name_fmt(&b, ":%llu)", (unsigned long long)f->line);
		else
			name_put(&b, ":?)", 3, SIZE_MAX);
		if (py)
			*py = f;
		return EXPORT_FRAME_PYTHON;
	}
	name_put(&b, "[native] ", 9, SIZE_MAX);
	name_str(&b, si->native);
	return EXPORT_FRAME_NATIVE;
}

/* One output line before merging. */
struct folded_line {
	char *stack;
	uint64_t bytes;
};

struct folded_lines {
	struct folded_line *v;
	size_t n;
	size_t cap;
};

static void folded_lines__free(struct folded_lines *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].stack);
	free(l->v);
}

/* The "frame;frame;..." text of row r, malloc()ed, or NULL with errno. */
static char *folded_stack(const struct pml_procinfo *p, const struct pml_row *r, bool pid_root)
{
	size_t i, k, n = export_folded__path_len(r, pid_root);
	char name[EXPORT_NAME_SIZE];
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	for (i = 0; i < n; i++) {
		export_folded__frame(p, r, pid_root, i, name, sizeof(name), NULL);
		/* ';' separates frames: the only byte of a name the format reserves */
		for (k = 0; name[k]; k++) {
			if (name[k] == ';')
				name[k] = ':';
		}
		if (i)
			fputc(';', f);
		fputs(name, f);
	}
	if (fclose(f) == EOF) {
		free(text);
		errno = ENOMEM;
		return NULL;
	}
	return text;
}

static int folded_lines__add(struct folded_lines *l, char *stack, uint64_t bytes)
{
	struct folded_line *v;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? 2 * l->cap : 64;
		v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].stack = stack;
	l->v[l->n].bytes = bytes;
	l->n++;
	return 0;
}

static int folded_line_cmp(const void *x, const void *y)
{
	const struct folded_line *a = x, *b = y;

	return strcmp(a->stack, b->stack);
}

static int folded_collect(struct folded_lines *l, const struct pml_agg *a,
			  const struct pml_procinfo *p, bool pid_root)
{
	struct pml_row *rows;
	size_t n, i;
	char *stack;
	int err;

	err = report__rank_proc(a, p, PML_SORT_BYTES, 0, &rows, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++) {
		if (!rows[i].bytes)
			continue;
		stack = folded_stack(p, &rows[i], pid_root);
		if (!stack) {
			err = -ENOMEM;
			break;
		}
		err = folded_lines__add(l, stack, rows[i].bytes);
		if (err) {
			free(stack);
			break;
		}
	}
	free(rows);
	return err;
}

int export_folded__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
			 size_t nprocs, bool pid_root)
{
	struct folded_lines l = { 0 };
	uint64_t bytes;
	size_t i, j;
	int err = 0;

	if (!out || !a || (nprocs && !procs))
		return -EINVAL;
	for (i = 0; i < nprocs; i++) {
		err = folded_collect(&l, a, &procs[i], pid_root);
		if (err)
			goto out_free_lines;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), folded_line_cmp);
	errno = 0;
	for (i = 0; i < l.n; i = j) {
		bytes = l.v[i].bytes;
		for (j = i + 1; j < l.n && !strcmp(l.v[i].stack, l.v[j].stack); j++)
			bytes = bytes + l.v[j].bytes < bytes ? UINT64_MAX : bytes + l.v[j].bytes;
		fprintf(out, "%s %llu\n", l.v[i].stack, (unsigned long long)bytes);
	}
	if (fflush(out) == EOF || ferror(out))
		err = errno ? -errno : -EIO;
out_free_lines:
	folded_lines__free(&l);
	return err;
}
