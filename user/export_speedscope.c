/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * speedscope writer: the format is in export_speedscope.h. Profiles are
 * streamed; the frames they use are collected in a hash table on the way
 * and written last.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export_folded.h"
#include "export_speedscope.h"

#define SS_SCHEMA "https://www.speedscope.app/file-format-schema.json"

struct ss_frame {
	char *name;
	char *file; /* NULL but for Python frames */
	int line;   /* 0 when unknown */
};

struct ss_frames {
	struct ss_frame *v;
	size_t n;
	size_t cap;
	uint32_t *slots; /* frame index + 1, by hash; 0 empty */
	size_t nslots;	 /* power of two */
};

static uint32_t fnv1a(const char *s, uint32_t h)
{
	for (; s && *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static uint32_t frame_hash(const char *name, const char *file, int line)
{
	uint32_t h = fnv1a(name, 2166136261u);

	h = fnv1a(file, h ^ (file ? 1u : 2u));
	return h ^ ((uint32_t)line * 2654435761u);
}

static bool frame_eq(const struct ss_frame *f, const char *name, const char *file, int line)
{
	if (f->line != line || strcmp(f->name, name))
		return false;
	if (!f->file || !file)
		return !f->file && !file;
	return !strcmp(f->file, file);
}

static int frames__rehash(struct ss_frames *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots)), h;
	size_t i;

	if (!slots)
		return -ENOMEM;
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	for (i = 0; i < t->n; i++) {
		h = frame_hash(t->v[i].name, t->v[i].file, t->v[i].line) & (uint32_t)(nslots - 1);
		while (t->slots[h])
			h = (h + 1) & (uint32_t)(nslots - 1);
		t->slots[h] = (uint32_t)i + 1;
	}
	return 0;
}

static int frames__append(struct ss_frames *t, const char *name, const char *file, int line)
{
	struct ss_frame *v, *f;
	size_t cap;

	if (t->n >= UINT32_MAX - 1)
		return -ENOMEM;
	if (t->n == t->cap) {
		cap = t->cap ? 2 * t->cap : 256;
		v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	f = &t->v[t->n];
	f->line = line;
	f->name = strdup(name);
	f->file = file ? strdup(file) : NULL;
	if (!f->name || (file && !f->file)) {
		free(f->name);
		free(f->file);
		return -ENOMEM;
	}
	t->n++;
	return 0;
}

/* The index of frame (name, file, line), added if new. */
static int frames__index(struct ss_frames *t, const char *name, const char *file, int line,
			 uint32_t *idx)
{
	uint32_t h, mask;
	int err;

	if ((t->n + 1) * 2 > t->nslots) {
		err = frames__rehash(t, t->nslots ? 2 * t->nslots : 1024);
		if (err)
			return err;
	}
	mask = (uint32_t)(t->nslots - 1);
	for (h = frame_hash(name, file, line) & mask; t->slots[h]; h = (h + 1) & mask) {
		if (frame_eq(&t->v[t->slots[h] - 1], name, file, line)) {
			*idx = t->slots[h] - 1;
			return 0;
		}
	}
	err = frames__append(t, name, file, line);
	if (err)
		return err;
	*idx = (uint32_t)(t->n - 1);
	t->slots[h] = *idx + 1;
	return 0;
}

static void frames__free(struct ss_frames *t)
{
	size_t i;

	for (i = 0; i < t->n; i++) {
		free(t->v[i].name);
		free(t->v[i].file);
	}
	free(t->v);
	free(t->slots);
}

/* A clean string (see export_folded.h: no control characters) as JSON. */
static void json_put(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

/* The samples array entry of row r: frame indices root first. */
static int ss_sample(FILE *out, struct ss_frames *t, const struct pml_procinfo *p,
		     const struct pml_row *r, bool pid_root)
{
	char name[EXPORT_NAME_SIZE], file[EXPORT_NAME_SIZE];
	size_t i, n = export_folded__path_len(r, pid_root);
	const struct pml_pyframe *py;
	uint32_t idx;
	int err, line;

	fputc('[', out);
	for (i = 0; i < n; i++) {
		export_folded__frame(p, r, pid_root, i, name, sizeof(name), &py);
		line = 0;
		if (py) {
			if (py->file)
				export_folded__clean(py->file, strnlen(py->file, EXPORT_NAME_SIZE),
						     file, sizeof(file));
			else
				snprintf(file, sizeof(file), "?");
			line = py->line > 0 ? py->line : 0;
		}
		err = frames__index(t, name, py ? file : NULL, line, &idx);
		if (err)
			return err;
		fprintf(out, i ? ",%u" : "%u", idx);
	}
	fputc(']', out);
	return 0;
}

static int ss_profile(FILE *out, struct ss_frames *t, const struct pml_agg *a,
		      const struct pml_procinfo *p, bool pid_root)
{
	char name[EXPORT_NAME_SIZE];
	struct pml_row *rows;
	uint64_t total = 0;
	size_t n, i;
	int err;

	err = report__rank_proc(a, p, PML_SORT_BYTES, 0, &rows, &n);
	if (err)
		return err;
	for (i = 0; i < n; i++)
		total = total + rows[i].bytes < total ? UINT64_MAX : total + rows[i].bytes;
	export_folded__proc_name(p, name, sizeof(name));
	fputs("{\"type\":\"sampled\",\"name\":", out);
	json_put(out, name);
	fprintf(out, ",\"unit\":\"bytes\",\"startValue\":0,\"endValue\":%llu,\"samples\":[",
		(unsigned long long)total);
	for (i = 0; i < n && !err; i++) {
		if (i)
			fputc(',', out);
		err = ss_sample(out, t, p, &rows[i], pid_root);
	}
	fputs("],\"weights\":[", out);
	for (i = 0; i < n; i++)
		fprintf(out, i ? ",%llu" : "%llu", (unsigned long long)rows[i].bytes);
	fputs("]}", out);
	free(rows);
	return err;
}

static void ss_shared(FILE *out, const struct ss_frames *t)
{
	size_t i;

	fputs("\"shared\":{\"frames\":[", out);
	for (i = 0; i < t->n; i++) {
		fputs(i ? ",{\"name\":" : "{\"name\":", out);
		json_put(out, t->v[i].name);
		if (t->v[i].file) {
			fputs(",\"file\":", out);
			json_put(out, t->v[i].file);
		}
		if (t->v[i].line > 0)
			fprintf(out, ",\"line\":%d", t->v[i].line);
		fputc('}', out);
	}
	fputs("]}", out);
}

int export_speedscope__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
			     size_t nprocs, bool pid_root)
{
	struct ss_frames t = { 0 };
	char name[EXPORT_NAME_SIZE];
	size_t i;
	int err = 0;

	if (!out || !a || (nprocs && !procs))
		return -EINVAL;
	errno = 0;
	fputs("{\"$schema\":\"" SS_SCHEMA "\",\"exporter\":\"pymemleak\",\"name\":", out);
	if (nprocs == 1) {
		export_folded__proc_name(&procs[0], name, sizeof(name));
		json_put(out, name);
	} else {
		fprintf(out, "\"pymemleak: %zu processes\"", nprocs);
	}
	fputs(",\"activeProfileIndex\":0,\"profiles\":[", out);
	for (i = 0; i < nprocs && !err; i++) {
		if (i)
			fputc(',', out);
		err = ss_profile(out, &t, a, &procs[i], pid_root);
	}
	if (err)
		goto out_free_frames;
	fputs("],", out);
	ss_shared(out, &t);
	fputs("}\n", out);
	if (fflush(out) == EOF || ferror(out))
		err = errno ? -errno : -EIO;
out_free_frames:
	frames__free(&t);
	return err;
}
