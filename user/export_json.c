/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * JSON writer: the schema is in export_json.h. Written with stdio straight
 * to the stream; the stream's error flag is checked once at the end.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "export_json.h"
#include "pymemleak.h"

void export_json__string(FILE *out, const char *s, size_t len)
{
	size_t i, n;

	fputc('"', out);
	for (i = 0; s && i < len; i += n) {
		unsigned char c = (unsigned char)s[i];

		n = report__utf8_seq(s + i, len - i);
		if (!n) {
			/* one replacement per invalid byte */
			fputs("\\ufffd", out);
			n = 1;
		} else if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
		} else if (c < 0x20) {
			fprintf(out, "\\u%04x", c);
		} else {
			fwrite(s + i, 1, n, out);
		}
	}
	fputc('"', out);
}

/* A char array of the target's, not necessarily NUL-terminated. */
static void json_field_value(FILE *out, const char *s, size_t size)
{
	export_json__string(out, s, strnlen(s, size));
}

static void json_field(FILE *out, const char *key, const char *s, size_t size)
{
	fprintf(out, "\"%s\":", key);
	json_field_value(out, s, size);
}

static void json_cstr(FILE *out, const char *s)
{
	export_json__string(out, s, s ? strlen(s) : 0);
}

/* A number with 3 decimals, never NaN/inf (written 0), |d| at most 1e15,
 * independent of LC_NUMERIC. */
static void json_fixed3(FILE *out, double d)
{
	const char *sign = "";
	uint64_t ms;

	if (!isfinite(d))
		d = 0.0;
	if (d < 0) {
		sign = "-";
		d = -d;
	}
	if (d > 1e15)
		d = 1e15;
	ms = (uint64_t)(d * 1000.0 + 0.5);
	if (!ms)
		sign = "";
	fprintf(out, "%s%llu.%03llu", sign, (unsigned long long)(ms / 1000),
		(unsigned long long)(ms % 1000));
}

static void json_coverage(FILE *out, const struct pml_procinfo *p, const char *const *names)
{
	size_t nstats = p->nstats < PML_STAT_NAMES_MAX ? p->nstats : PML_STAT_NAMES_MAX;
	char buf[32];
	size_t i;

	fprintf(out, "\"coverage\":{\"verdict\":\"%s\",", p->cov.complete ? "complete" : "partial");
	json_field(out, "reason", p->cov.reason, sizeof(p->cov.reason));
	fprintf(out, ",\"allocs\":%llu,\"frees\":%llu,\"lost\":{",
		(unsigned long long)(nstats > STAT_ALLOCS ? p->stats[STAT_ALLOCS] : 0),
		(unsigned long long)(nstats > STAT_FREES ? p->stats[STAT_FREES] : 0));
	for (i = 0; i < nstats; i++) {
		if (i == STAT_ALLOCS || i == STAT_FREES)
			continue;
		if (names && names[i]) {
			json_cstr(out, names[i]);
		} else {
			snprintf(buf, sizeof(buf), "stat%zu", i);
			json_cstr(out, buf);
		}
		fprintf(out, ":%llu,", (unsigned long long)p->stats[i]);
	}
	fprintf(out, "\"symbolization_failures\":%llu}}", (unsigned long long)p->sym_failures);
}

static void json_flags(FILE *out, const struct pml_stackinfo *si)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} flags[] = {
		{ PML_STACK_TRUNCATED, "truncated" },
		{ PML_STACK_NO_GIL, "no_gil" },
		{ PML_STACK_READ_FAULT, "read_fault" },
		{ PML_STACK_NO_PYSTATE, "no_pystate" },
	};
	const char *sep = "";
	size_t i;

	fputs("\"flags\":[", out);
	if (!si) {
		fputs("\"unsymbolized\"", out);
	} else {
		for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
			if (!(si->flags & flags[i].bit))
				continue;
			fprintf(out, "%s\"%s\"", sep, flags[i].name);
			sep = ",";
		}
	}
	fputc(']', out);
}

static const char *sort_name(enum pml_sort sort)
{
	switch (sort) {
	case PML_SORT_GROWTH:
		return "growth";
	case PML_SORT_COUNT:
		return "count";
	default:
		return "bytes";
	}
}

static void json_types(FILE *out, const struct pml_row *r)
{
	size_t i;

	fputs("\"types\":[", out);
	for (i = 0; r->types && i < r->ntypes; i++) {
		const struct pml_typecount *t = &r->types[i];

		fputs(i ? ",{\"type\":" : "{\"type\":", out);
		json_field_value(out, t->name, sizeof(t->name));
		fprintf(out, ",\"bytes\":%llu,\"count\":%llu}", (unsigned long long)t->bytes,
			(unsigned long long)t->count);
	}
	fprintf(out, "],\"types_sampled\":%s", r->types_sampled ? "true" : "false");
}

static void json_growth(FILE *out, const struct pml_agg *a, const struct pml_row *r)
{
	struct pml_point pts[PML_SERIES_MAX];
	size_t n, i;

	fputs("\"growth_bytes_per_s\":", out);
	json_fixed3(out, r->growth_bps);
	fputs(",\"growth_fit\":", out);
	json_fixed3(out, r->growth_fit);
	fputs(",\"series\":[", out);
	n = agg__series(a, r->pid, r->stack_id, pts, PML_SERIES_MAX);
	for (i = 0; i < n; i++) {
		fputs(i ? ",[" : "[", out);
		json_fixed3(out, (double)pts[i].t_ns / 1e9);
		fprintf(out, ",%llu]", (unsigned long long)pts[i].bytes);
	}
	fputc(']', out);
}

static void json_stack(FILE *out, const struct pml_agg *a, const struct pml_row *r, uint64_t now_ns)
{
	uint64_t age = now_ns > r->oldest_ns ? now_ns - r->oldest_ns : 0;
	const struct pml_stackinfo *si = r->info;
	size_t i;

	fprintf(out, "{\"bytes\":%llu,\"count\":%llu,\"oldest_age_s\":%llu.%03llu,\"native\":[",
		(unsigned long long)r->bytes, (unsigned long long)r->count,
		(unsigned long long)(age / 1000000000), (unsigned long long)(age / 1000000 % 1000));
	if (si && si->native)
		json_cstr(out, si->native);
	fputs("],", out);
	json_flags(out, si);
	fputs(",\"frames\":[", out);
	for (i = 0; si && i < si->nframes; i++) {
		const struct pml_pyframe *f = &si->frames[i];

		fputs(i ? ",{\"file\":" : "{\"file\":", out);
		json_cstr(out, f->file);
		fputs(",\"function\":", out);
		json_cstr(out, f->function);
		fprintf(out, ",\"line\":%d}", f->line > 0 ? f->line : 0);
	}
	fputs("],", out);
	json_growth(out, a, r);
	fputc(',', out);
	json_types(out, r);
	fputc('}', out);
}

static int json_proc(FILE *out, const struct pml_agg *a, const struct pml_procinfo *p,
		     uint64_t now_ns, size_t top, enum pml_sort sort, const char *const *names)
{
	uint64_t bytes, count;
	struct pml_row *rows;
	size_t n, i;
	int err;

	err = report__rank_proc(a, p, sort, top, &rows, &n);
	if (err)
		return err;
	fprintf(out, "{\"pid\":%u,", p->pid);
	json_field(out, "cmdline", p->cmdline, sizeof(p->cmdline));
	fputc(',', out);
	json_field(out, "python", p->python, sizeof(p->python));
	fputc(',', out);
	json_field(out, "build", p->build, sizeof(p->build));
	fprintf(out, ",\"exited\":%s,", p->exited ? "true" : "false");
	json_coverage(out, p, names);
	agg__totals(a, p->pid, &bytes, &count);
	if (p->frozen) {
		bytes = p->frozen_bytes;
		count = p->frozen_count;
	}
	fprintf(out,
		",\"outstanding_bytes\":%llu,\"outstanding_count\":%llu,\"ranking\":\"%s\","
		"\"stacks\":[",
		(unsigned long long)bytes, (unsigned long long)count,
		sort_name(agg__pid_sort(a, p->pid, sort)));
	for (i = 0; i < n; i++) {
		if (i)
			fputc(',', out);
		json_stack(out, a, &rows[i], now_ns);
	}
	fputs("]}", out);
	free(rows);
	return 0;
}

int export_json__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		       size_t nprocs, uint64_t now_ns, double duration_s, size_t top,
		       enum pml_sort sort, const char *const *stat_names)
{
	size_t i;
	int err;

	if (!out || !a || (nprocs && !procs))
		return -EINVAL;
	errno = 0;
	fputs("{\"version\":1,\"duration_s\":", out);
	json_fixed3(out, duration_s);
	fputs(",\"processes\":[", out);
	for (i = 0; i < nprocs; i++) {
		if (i)
			fputc(',', out);
		err = json_proc(out, a, &procs[i], now_ns, top, sort, stat_names);
		if (err)
			return err;
	}
	fputs("]}\n", out);
	if (fflush(out) == EOF || ferror(out))
		return errno ? -errno : -EIO;
	return 0;
}
