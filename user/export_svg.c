/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SVG flamegraph writer: what it draws is in export_svg.h. The frames form
 * a tree held in one flat array (a parent is always created before its
 * children, which lets layout run as one forward pass, no recursion), with
 * a hash of (parent, name) to find a child while paths are added.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "export_folded.h"
#include "export_svg.h"

#define SVG_WIDTH    1200
#define SVG_PAD	     10
#define SVG_FRAMES_W (SVG_WIDTH - 2 * SVG_PAD)
#define SVG_FRAME_H  16
#define SVG_ROW_H    17	  /* frame height plus a 1 px gap */
#define SVG_TOP	     96	  /* first frame row, below title and controls */
#define SVG_MIN_PX   0.1  /* narrower frames are left out */
#define SVG_CHAR_W   7.22 /* width of one character of the 12 px monospace font */
#define SVG_ALL	     "all"

#define NO_NODE UINT32_MAX

struct svg_node {
	char *name;
	uint64_t bytes;
	uint64_t count;
	uint64_t x; /* bytes left of this frame */
	uint32_t parent;
	uint32_t first; /* first child, by name once sorted */
	uint32_t next;	/* next sibling */
	uint32_t depth;
	int kind; /* enum export_frame_kind, -1 for "all" */
};

struct svg_tree {
	struct svg_node *v;
	size_t n;
	size_t cap;
	uint32_t *slots; /* node index + 1 of each child, by hash; 0 empty */
	size_t nslots;	 /* power of two */
};

static uint32_t fnv1a(const char *s, uint32_t h)
{
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

static uint32_t slot_of(const struct svg_tree *t, uint32_t parent, const char *name)
{
	return fnv1a(name, 2166136261u ^ (parent * 2654435761u)) & (uint32_t)(t->nslots - 1);
}

static int tree__rehash(struct svg_tree *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots)), h;
	size_t i;

	if (!slots)
		return -ENOMEM;
	free(t->slots);
	t->slots = slots;
	t->nslots = nslots;
	/* node 0, "all", has no parent and is never looked up */
	for (i = 1; i < t->n; i++) {
		h = slot_of(t, t->v[i].parent, t->v[i].name);
		while (t->slots[h])
			h = (h + 1) & (uint32_t)(nslots - 1);
		t->slots[h] = (uint32_t)i + 1;
	}
	return 0;
}

static int tree__append(struct svg_tree *t, const char *name, uint32_t parent, int kind)
{
	struct svg_node *v, *nd;
	size_t cap;

	if (t->n >= NO_NODE - 1)
		return -ENOMEM;
	if (t->n == t->cap) {
		cap = t->cap ? 2 * t->cap : 256;
		v = realloc(t->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	nd = &t->v[t->n];
	memset(nd, 0, sizeof(*nd));
	nd->name = strdup(name);
	if (!nd->name)
		return -ENOMEM;
	nd->parent = parent;
	nd->first = NO_NODE;
	nd->next = NO_NODE;
	nd->kind = kind;
	nd->depth = parent == NO_NODE ? 0 : t->v[parent].depth + 1;
	t->n++;
	return 0;
}

/* The child of parent named name, created if new: its index in *child. */
static int tree__child(struct svg_tree *t, uint32_t parent, const char *name, int kind,
		       uint32_t *child)
{
	uint32_t h, i;
	int err;

	if ((t->n + 1) * 2 > t->nslots) {
		err = tree__rehash(t, t->nslots ? 2 * t->nslots : 1024);
		if (err)
			return err;
	}
	for (h = slot_of(t, parent, name); t->slots[h]; h = (h + 1) & (uint32_t)(t->nslots - 1)) {
		i = t->slots[h] - 1;
		if (t->v[i].parent == parent && !strcmp(t->v[i].name, name)) {
			*child = i;
			return 0;
		}
	}
	err = tree__append(t, name, parent, kind);
	if (err)
		return err;
	*child = (uint32_t)(t->n - 1);
	t->slots[h] = *child + 1;
	return 0;
}

static void tree__free(struct svg_tree *t)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		free(t->v[i].name);
	free(t->v);
	free(t->slots);
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static void node__add(struct svg_node *nd, const struct pml_row *r)
{
	nd->bytes = sat_add(nd->bytes, r->bytes);
	nd->count = sat_add(nd->count, r->count);
}

static int tree__add_proc(struct svg_tree *t, const struct pml_agg *a, const struct pml_procinfo *p,
			  bool pid_root)
{
	char name[EXPORT_NAME_SIZE];
	struct pml_row *rows;
	size_t n, i, k, len;
	uint32_t cur;
	int err, kind;

	err = report__rank_proc(a, p, PML_SORT_BYTES, 0, &rows, &n);
	if (err)
		return err;
	for (i = 0; i < n && !err; i++) {
		if (!rows[i].bytes)
			continue;
		cur = 0;
		node__add(&t->v[0], &rows[i]);
		len = export_folded__path_len(&rows[i], pid_root);
		for (k = 0; k < len && !err; k++) {
			kind = export_folded__frame(p, &rows[i], pid_root, k, name, sizeof(name),
						    NULL);
			err = tree__child(t, cur, name, kind, &cur);
			if (!err)
				node__add(&t->v[cur], &rows[i]);
		}
	}
	free(rows);
	return err;
}

static int node_cmp(const void *x, const void *y, void *ctx)
{
	const struct svg_node *v = ctx;
	const struct svg_node *a = &v[*(const uint32_t *)x], *b = &v[*(const uint32_t *)y];

	if (a->parent != b->parent)
		return a->parent < b->parent ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* Link children by name and give every node its byte offset. */
static int tree__layout(struct svg_tree *t)
{
	uint32_t *order, i, c, parent;
	uint64_t off;

	if (t->n < 2)
		return 0;
	order = malloc((t->n - 1) * sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (i = 1; i < t->n; i++)
		order[i - 1] = i;
	qsort_r(order, t->n - 1, sizeof(*order), node_cmp, t->v);
	for (i = 0; i < t->n; i++)
		t->v[i].first = NO_NODE;
	/* backwards, so that pushing in front leaves each list in name order */
	for (i = (uint32_t)(t->n - 1); i > 0; i--) {
		c = order[i - 1];
		parent = t->v[c].parent;
		t->v[c].next = t->v[parent].first;
		t->v[parent].first = c;
	}
	free(order);
	/* parents come before their children, so their x is known */
	for (i = 0; i < t->n; i++) {
		off = t->v[i].x;
		for (c = t->v[i].first; c != NO_NODE; c = t->v[c].next) {
			t->v[c].x = off;
			off = sat_add(off, t->v[c].bytes);
		}
	}
	return 0;
}

/* d >= 0 with two decimals, without locale or exponent. */
static void svg_num(FILE *out, double d)
{
	unsigned long long c;

	if (!(d > 0))
		d = 0;
	if (d > 1e12)
		d = 1e12;
	c = (unsigned long long)(d * 100.0 + 0.5);
	fprintf(out, "%llu.%02llu", c / 100, c % 100);
}

/* A clean name (see export_folded.h) as XML text or attribute value. */
static void xml_put(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", out);
			break;
		case '<':
			fputs("&lt;", out);
			break;
		case '>':
			fputs("&gt;", out);
			break;
		case '"':
			fputs("&quot;", out);
			break;
		case '\'':
			fputs("&apos;", out);
			break;
		default:
			fputc(*s, out);
		}
	}
}

/* The label shown in a box w px wide: the name, or its start and "..". */
static void svg_label(FILE *out, const char *name, double w)
{
	char buf[EXPORT_NAME_SIZE];
	size_t chars = 0, fit, i, keep = 0;
	double room = (w - 6) / SVG_CHAR_W;

	fit = room > 0 ? (size_t)room : 0;
	if (fit < 3)
		return;
	for (i = 0; name[i]; i++) {
		/* count characters: every byte but UTF-8 continuation bytes */
		if (((unsigned char)name[i] & 0xc0) != 0x80) {
			if (chars == fit - 2)
				keep = i;
			chars++;
		}
	}
	if (chars <= fit) {
		xml_put(out, name);
		return;
	}
	snprintf(buf, sizeof(buf), "%.*s..", (int)keep, name);
	xml_put(out, buf);
}

static void svg_colour(FILE *out, const struct svg_node *nd)
{
	uint32_t h = fnv1a(nd->name, 2166136261u);
	unsigned int r, g, b;

	switch (nd->kind) {
	case EXPORT_FRAME_PYTHON:
		/* red through orange to yellow, light enough for black text */
		r = 205 + h % 51;
		g = 90 + (h >> 8) % 141;
		b = 20 + (h >> 16) % 56;
		break;
	case EXPORT_FRAME_NATIVE:
		r = 200 + h % 31;
		g = 160 + (h >> 8) % 41;
		b = 110 + (h >> 16) % 31;
		break;
	case EXPORT_FRAME_PROCESS:
		r = 240 + h % 16;
		g = 190 + (h >> 8) % 26;
		b = 150 + (h >> 16) % 26;
		break;
	case EXPORT_FRAME_MARKER:
		r = g = b = 200 + h % 21;
		break;
	default:
		r = 235;
		g = 225;
		b = 215;
	}
	fprintf(out, "rgb(%u,%u,%u)", r, g, b);
}

static void svg_frame(FILE *out, const struct svg_node *nd, uint64_t total)
{
	double px = (double)nd->x * SVG_FRAMES_W / (double)total + SVG_PAD;
	double w = (double)nd->bytes * SVG_FRAMES_W / (double)total;
	char human[32];

	fputs("<g class=\"f\"><title>", out);
	xml_put(out, nd->name);
	fprintf(out, "\n%s (%llu bytes), %llu allocation%s, ",
		report__bytes(nd->bytes, human, sizeof(human)), (unsigned long long)nd->bytes,
		(unsigned long long)nd->count, nd->count == 1 ? "" : "s");
	svg_num(out, (double)nd->bytes * 100.0 / (double)total);
	fputs("% of total</title><rect data-name=\"", out);
	xml_put(out, nd->name);
	fprintf(out, "\" data-x=\"%llu\" data-v=\"%llu\" data-c=\"%llu\" data-d=\"%u\" x=\"",
		(unsigned long long)nd->x, (unsigned long long)nd->bytes,
		(unsigned long long)nd->count, nd->depth);
	svg_num(out, px);
	fprintf(out, "\" y=\"%u\" width=\"", SVG_TOP + nd->depth * SVG_ROW_H);
	svg_num(out, w);
	fprintf(out, "\" height=\"%u\" rx=\"2\" fill=\"", SVG_FRAME_H);
	svg_colour(out, nd);
	fputs("\"/><text x=\"", out);
	svg_num(out, px + 3);
	fprintf(out, "\" y=\"%u\">", SVG_TOP + nd->depth * SVG_ROW_H + 12);
	svg_label(out, nd->name, w);
	fputs("</text></g>\n", out);
}

static bool svg_drawn(const struct svg_node *nd, uint64_t total)
{
	return (double)nd->bytes * SVG_FRAMES_W / (double)total >= SVG_MIN_PX;
}

static const char svg_style[] =
	"<style><![CDATA[\n"
	"text { font-family: \"DejaVu Sans Mono\", Menlo, Consolas, monospace; font-size: 12px;"
	" fill: #000; }\n"
	"#title { font-size: 17px; font-weight: bold; }\n"
	"#subtitle, #details, #matched { fill: #333; }\n"
	".f { cursor: pointer; }\n"
	".f text { pointer-events: none; }\n"
	".f:hover rect { stroke: #000; stroke-width: 1; }\n"
	".f.anc { opacity: 0.55; }\n"
	".f rect.hl { fill: #b044ff; }\n"
	".btn { cursor: pointer; }\n"
	".btn rect { fill: #f4f0ec; stroke: #8a7f75; }\n"
	".btn:hover rect { fill: #e8ddd2; }\n"
	".btn.off { opacity: 0.4; }\n"
	"]]></style>\n";

/* Zoom, search and details; reads only data-* attributes and writes text
 * through textContent, so frame names are never parsed as markup. */
static const char svg_script[] =
	"<script type=\"text/ecmascript\"><![CDATA[\n"
	"\"use strict\";\n"
	"(function () {\n"
	"\tvar svg = document.documentElement;\n"
	"\tvar X0 = Number(svg.getAttribute(\"data-x0\"));\n"
	"\tvar W = Number(svg.getAttribute(\"data-w\"));\n"
	"\tvar CW = Number(svg.getAttribute(\"data-cw\"));\n"
	"\tvar total = Number(svg.getAttribute(\"data-total\"));\n"
	"\tvar frames = document.getElementById(\"frames\");\n"
	"\tvar rects = Array.prototype.slice.call(frames.querySelectorAll(\"rect[data-name]\"));\n"
	"\tvar details = document.getElementById(\"details\");\n"
	"\tvar matched = document.getElementById(\"matched\");\n"
	"\tvar resetBtn = document.getElementById(\"reset\");\n"
	"\tvar hint = details.textContent, term = \"\", zoomed = null;\n"
	"\n"
	"\tfunction num(r, k) { return Number(r.getAttribute(k)); }\n"
	"\n"
	"\tfunction human(v) {\n"
	"\t\tvar units = [\"B\", \"KiB\", \"MiB\", \"GiB\", \"TiB\", \"PiB\", \"EiB\"], u = 0;\n"
	"\t\tif (v < 1024) return v + \" B\";\n"
	"\t\twhile (v >= 1023.95 && u < units.length - 1) { v /= 1024; u++; }\n"
	"\t\treturn v.toFixed(1) + \" \" + units[u];\n"
	"\t}\n"
	"\n"
	"\t/* The label: the name, or as many characters as fit and \"..\". */\n"
	"\tfunction fit(r, w) {\n"
	"\t\tvar t = r.nextElementSibling, name = r.getAttribute(\"data-name\");\n"
	"\t\tvar chars = Array.from(name), n = Math.floor((w - 6) / CW);\n"
	"\t\tvar wide = /[^\\x00-\\x7e]/.test(name);\n"
	"\t\tfor (;;) {\n"
	"\t\t\tif (n < 3) { t.textContent = \"\"; return; }\n"
	"\t\t\tt.textContent = chars.length <= n ? name :\n"
	"\t\t\t\tchars.slice(0, n - 2).join(\"\") + \"..\";\n"
	"\t\t\t/* only non-ASCII text can be wider than estimated */\n"
	"\t\t\tif (!wide || t.getComputedTextLength() <= w - 6) return;\n"
	"\t\t\tn = Math.min(n, chars.length) - 1;\n"
	"\t\t}\n"
	"\t}\n"
	"\n"
	"\tfunction place(r, x, w) {\n"
	"\t\tr.setAttribute(\"x\", x.toFixed(2));\n"
	"\t\tr.setAttribute(\"width\", w.toFixed(2));\n"
	"\t\tr.nextElementSibling.setAttribute(\"x\", (x + 3).toFixed(2));\n"
	"\t\tr.parentNode.style.display = \"\";\n"
	"\t\tfit(r, w);\n"
	"\t}\n"
	"\n"
	"\tfunction reset() {\n"
	"\t\trects.forEach(function (r) {\n"
	"\t\t\tr.parentNode.classList.remove(\"anc\");\n"
	"\t\t\tplace(r, X0 + num(r, \"data-x\") * W / total, num(r, \"data-v\") * W / total);\n"
	"\t\t});\n"
	"\t\tzoomed = null;\n"
	"\t\tresetBtn.classList.add(\"off\");\n"
	"\t}\n"
	"\n"
	"\tfunction zoom(z) {\n"
	"\t\tvar x0 = num(z, \"data-x\"), v0 = num(z, \"data-v\"), d0 = num(z, \"data-d\");\n"
	"\t\trects.forEach(function (r) {\n"
	"\t\t\tvar x = num(r, \"data-x\"), v = num(r, \"data-v\"), d = num(r, \"data-d\");\n"
	"\t\t\tvar g = r.parentNode;\n"
	"\t\t\tif (d < d0 && x <= x0 && x + v >= x0 + v0) {\n"
	"\t\t\t\tg.classList.add(\"anc\");\n"
	"\t\t\t\tplace(r, X0, W);\n"
	"\t\t\t} else if (d >= d0 && x >= x0 && x + v <= x0 + v0) {\n"
	"\t\t\t\tg.classList.remove(\"anc\");\n"
	"\t\t\t\tplace(r, X0 + (x - x0) * W / v0, v * W / v0);\n"
	"\t\t\t} else {\n"
	"\t\t\t\tg.style.display = \"none\";\n"
	"\t\t\t}\n"
	"\t\t});\n"
	"\t\tzoomed = z;\n"
	"\t\tresetBtn.classList.remove(\"off\");\n"
	"\t}\n"
	"\n"
	"\t/* Highlight the frames whose names hold s; matched share counts\n"
	"\t * nested matches once (the union of their byte ranges). */\n"
	"\tfunction search(s) {\n"
	"\t\tvar lo = s.toLowerCase(), ranges = [], sum = 0, end = -1;\n"
	"\t\tterm = s;\n"
	"\t\trects.forEach(function (r) {\n"
	"\t\t\tvar name = r.getAttribute(\"data-name\").toLowerCase();\n"
	"\t\t\tvar hit = lo !== \"\" && name.indexOf(lo) >= 0;\n"
	"\t\t\tr.classList.toggle(\"hl\", hit);\n"
	"\t\t\tvar x = num(r, \"data-x\");\n"
	"\t\t\tif (hit) ranges.push([x, x + num(r, \"data-v\")]);\n"
	"\t\t});\n"
	"\t\tif (lo === \"\") { matched.textContent = \"\"; return; }\n"
	"\t\tranges.sort(function (a, b) { return a[0] - b[0]; });\n"
	"\t\tranges.forEach(function (p) {\n"
	"\t\t\tif (p[1] > end) { sum += p[1] - Math.max(p[0], end); end = p[1]; }\n"
	"\t\t});\n"
	"\t\tmatched.textContent = ranges.length ? \"Matched: \" +\n"
	"\t\t\t(total ? 100 * sum / total : 0).toFixed(2) + \"% (\" + human(sum) + \")\" :\n"
	"\t\t\t\"No match\";\n"
	"\t}\n"
	"\n"
	"\tframes.addEventListener(\"click\", function (e) {\n"
	"\t\tvar g = e.target.closest(\"g.f\");\n"
	"\t\tif (!g) return;\n"
	"\t\tvar r = g.querySelector(\"rect\");\n"
	"\t\tif (num(r, \"data-d\") === 0) reset(); else zoom(r);\n"
	"\t});\n"
	"\tframes.addEventListener(\"mouseover\", function (e) {\n"
	"\t\tvar g = e.target.closest(\"g.f\");\n"
	"\t\tif (!g) return;\n"
	"\t\tvar tip = g.querySelector(\"title\").textContent;\n"
	"\t\tdetails.textContent = tip.replace(\"\\n\", \" | \");\n"
	"\t});\n"
	"\tframes.addEventListener(\"mouseout\", function () { details.textContent = hint; });\n"
	"\tresetBtn.addEventListener(\"click\", reset);\n"
	"\tdocument.getElementById(\"search\").addEventListener(\"click\", function () {\n"
	"\t\tvar q = \"Search frames (case-insensitive text, empty to clear):\";\n"
	"\t\tvar s = window.prompt(q, term);\n"
	"\t\tif (s !== null) search(s);\n"
	"\t});\n"
	"\tdocument.addEventListener(\"keydown\", function (e) {\n"
	"\t\tif (e.key === \"Escape\") { reset(); search(\"\"); }\n"
	"\t});\n"
	"\t/* the writer estimated label widths; measure the ones it may have got wrong */\n"
	"\trects.forEach(function (r) {\n"
	"\t\tif (/[^\\x00-\\x7e]/.test(r.getAttribute(\"data-name\"))) fit(r, num(r, \"width\"));\n"
	"\t});\n"
	"})();\n"
	"]]></script>\n";

static void svg_head(FILE *out, const struct svg_tree *t, unsigned int height)
{
	uint64_t total = t->v[0].bytes, count = t->v[0].count;
	char human[32];

	fputs("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n", out);
	fprintf(out,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%u\" "
		"height=\"%u\" viewBox=\"0 0 %u %u\" data-total=\"%llu\" data-x0=\"%u\" "
		"data-w=\"%u\" data-cw=\"",
		SVG_WIDTH, height, SVG_WIDTH, height, (unsigned long long)total, SVG_PAD,
		SVG_FRAMES_W);
	svg_num(out, SVG_CHAR_W);
	fputs("\">\n", out);
	fputs("<title>pymemleak: outstanding memory by stack (icicle graph, root at top)</title>\n",
	      out);
	fputs(svg_style, out);
	fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%u\" height=\"%u\" fill=\"#fffdf8\"/>\n",
		SVG_WIDTH, height);
	fprintf(out,
		"<text id=\"title\" x=\"%u\" y=\"24\" text-anchor=\"middle\">"
		"pymemleak: outstanding memory by stack (icicle graph, root at top)</text>\n",
		SVG_WIDTH / 2);
	fprintf(out,
		"<text id=\"subtitle\" x=\"%u\" y=\"42\" text-anchor=\"middle\">"
		"width = outstanding bytes; total %s (%llu bytes) in %llu allocation%s</text>\n",
		SVG_WIDTH / 2, report__bytes(total, human, sizeof(human)),
		(unsigned long long)total, (unsigned long long)count, count == 1 ? "" : "s");
	fprintf(out,
		"<g id=\"reset\" class=\"btn off\"><rect x=\"%u\" y=\"52\" width=\"96\" "
		"height=\"20\" rx=\"3\"/><text x=\"%u\" y=\"66\" text-anchor=\"middle\">Reset "
		"zoom</text></g>\n",
		SVG_PAD, SVG_PAD + 48);
	fprintf(out,
		"<g id=\"search\" class=\"btn\"><rect x=\"%u\" y=\"52\" width=\"80\" height=\"20\" "
		"rx=\"3\"/><text x=\"%u\" y=\"66\" text-anchor=\"middle\">Search</text></g>\n",
		SVG_WIDTH - SVG_PAD - 80, SVG_WIDTH - SVG_PAD - 40);
	fprintf(out, "<text id=\"matched\" x=\"%u\" y=\"66\" text-anchor=\"end\"></text>\n",
		SVG_WIDTH - SVG_PAD - 90);
	fprintf(out, "<text id=\"details\" x=\"%u\" y=\"88\">%s</text>\n", SVG_PAD,
		total ? "Hover a frame for details, click to zoom into it"
		      : "No outstanding memory to show");
}

int export_svg__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		      size_t nprocs, bool pid_root)
{
	struct svg_tree t = { 0 };
	unsigned int height;
	uint32_t depth = 0;
	uint64_t total;
	size_t i;
	int err;

	if (!out || !a || (nprocs && !procs))
		return -EINVAL;
	err = tree__append(&t, SVG_ALL, NO_NODE, -1);
	for (i = 0; i < nprocs && !err; i++)
		err = tree__add_proc(&t, a, &procs[i], pid_root);
	if (!err)
		err = tree__layout(&t);
	if (err)
		goto out_free_tree;

	total = t.v[0].bytes;
	/* as tall as the frames drawn */
	for (i = 0; total && i < t.n; i++) {
		if (svg_drawn(&t.v[i], total) && t.v[i].depth > depth)
			depth = t.v[i].depth;
	}
	height = SVG_TOP + (depth + 1) * SVG_ROW_H + SVG_PAD;
	errno = 0;
	svg_head(out, &t, height);
	fputs("<g id=\"frames\">\n", out);
	for (i = 0; total && i < t.n; i++) {
		if (svg_drawn(&t.v[i], total))
			svg_frame(out, &t.v[i], total);
	}
	fputs("</g>\n", out);
	fputs(svg_script, out);
	fputs("</svg>\n", out);
	if (fflush(out) == EOF || ferror(out))
		err = errno ? -errno : -EIO;
out_free_tree:
	tree__free(&t);
	return err;
}
