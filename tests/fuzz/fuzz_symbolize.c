/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * libFuzzer harness for user/symbolize.c: the input is a target's memory
 * image and a captured stack; the symbolizer reads the image through a
 * pml_read_fn. Besides memory safety it checks what callers rely on:
 *  - every read asked for is at most PML_READ_MAX bytes;
 *  - symbolizer__add_proc accepts every supported version and returns the
 *    _Py_DebugOffsets layout when the image parses, else the table row;
 *  - one frame out per captured frame (capped at PML_MAX_FRAMES), each with
 *    a file and function in valid UTF-8 and a line >= 0;
 *  - the cache changes nothing: a second pass over the same memory gives the
 *    same frames and counts the same failures as the first (add_proc
 *    starts the pid afresh, so one symbolizer serves every run: a 6 MiB
 *    cache allocated per run would cost most of the fuzzing time);
 *  - symbolize__ucs_to_utf8 writes valid UTF-8, NUL-terminated, within
 *    outlen, and a truncated result is the longest fitting prefix of the
 *    whole one (-DFUZZ_SKIP_UCS_PREFIX leaves the prefix part out);
 *  - symbolize__instr_offset: even offsets for 3.10+, never past 1 GiB.
 *
 * Input (little-endian):
 *   [0] version: 3.(8 + b % 6)
 *   [1] flags: bit 0 check object types (else the type checks are skipped);
 *       bit 1 (3.13) put _Py_DebugOffsets at the runtime address: the real
 *       3.13.0 image with the patches below; bits 4-5 kind of the
 *       ucs_to_utf8 check (1, 2, 4, or 3: invalid)
 *   [2] patches (b % 8), [3] outlen of the ucs_to_utf8 check
 *   patches x 3: word index (% 73), 16-bit value
 *   depth (1 byte, may exceed PML_MAX_FRAMES)
 *   min(depth, PML_MAX_FRAMES) frames x 8, while input lasts: 32-bit code
 *       offset into the image (all ones: NULL), 32-bit instruction word
 *       (3.11+: signed byte offset from the code's co_code_adaptive)
 *   the rest: target memory at IMAGE_BASE
 * Type objects are at CODE_TYPE, STR_TYPE, BYTES_TYPE (small: easy to forge).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
 *	-D_GNU_SOURCE -Iuser -Ibpf tests/fuzz/fuzz_symbolize.c user/symbolize.c user/linetable.c \
 *	user/pyoffsets.c -o build/fuzz_symbolize
 *   build/fuzz_symbolize -max_total_time=60 -max_len=16384 [corpus dir]
 * Seeds (valid images of every version, each str kind, 3.13 with its image):
 *   clang -g -D_GNU_SOURCE -DFUZZ_MAKE_SEEDS -Iuser -Ibpf tests/fuzz/fuzz_symbolize.c \
 *	user/symbolize.c user/linetable.c user/pyoffsets.c -o build/fuzz_symbolize_seeds
 *   build/fuzz_symbolize_seeds DIR
 * FUZZ_PRINT=1 in the environment prints the frames (to read a finding).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/fixtures/debug_offsets_313.h"
#include "linetable.h"
#include "pyoffsets.h"
#include "symbolize.h"

#define PID	     77
#define IMAGE_BASE   0x10000ull
#define RUNTIME_ADDR 0x8000ull
#define CODE_TYPE    0x1111ull
#define STR_TYPE     0x2222ull
#define BYTES_TYPE   0x3333ull
#define HEADER_LEN   4
#define DBG_WORDS    (PML_DEBUG_OFFSETS_SIZE / 8)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int cond)
{
	if (!cond)
		abort();
}

struct target {
	const uint8_t *image;
	size_t image_len;
	uint8_t dbg[PML_DEBUG_OFFSETS_SIZE];
	bool has_dbg;
};

static int copy_from(uint64_t base, const uint8_t *mem, size_t mlen, uint64_t addr, void *buf,
		     size_t len)
{
	if (addr < base || addr - base > mlen || len > mlen - (addr - base))
		return -EFAULT;
	memcpy(buf, mem + (addr - base), len);
	return 0;
}

static int target_read(int pid, uint64_t addr, void *buf, size_t len, void *ctx)
{
	struct target *t = ctx;

	check(pid == PID);
	check(len <= PML_READ_MAX);
	if (t->has_dbg && !copy_from(RUNTIME_ADDR, t->dbg, sizeof(t->dbg), addr, buf, len))
		return 0;
	return copy_from(IMAGE_BASE, t->image, t->image_len, addr, buf, len);
}

static uint32_t le16(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
	return le16(p) | le16(p + 2) << 16;
}

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF). */
static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0, k, len;
	uint32_t cp, min;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0) {
			len = 2, cp = s[i] & 0x1f, min = 0x80;
		} else if ((s[i] & 0xf0) == 0xe0) {
			len = 3, cp = s[i] & 0x0f, min = 0x800;
		} else if ((s[i] & 0xf8) == 0xf0) {
			len = 4, cp = s[i] & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (len > n - i)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

static size_t utf8_seq_len(uint8_t lead)
{
	return lead < 0x80 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : 4;
}

static void check_ucs(const uint8_t *data, size_t size, unsigned int kind, size_t outlen)
{
	static char whole[4 * 256 + 1];
	char out[256 + 1];
	size_t n = size / kind > 256 ? 256 : size / kind, got, all;

	if (kind == 3) {
		memset(out, 'Z', sizeof(out));
		check(symbolize__ucs_to_utf8(data, n, kind, out, sizeof(out)) == 0);
		check(out[0] == '\0');
		return;
	}
	all = symbolize__ucs_to_utf8(data, n, kind, whole, sizeof(whole));
	check(all < sizeof(whole) && whole[all] == '\0');
	check(utf8_valid((const uint8_t *)whole, all));
	/* Room for every code point: none dropped. */
	check(all >= n);

	memset(out, 'Z', sizeof(out));
	got = symbolize__ucs_to_utf8(data, n, kind, out, outlen);
	if (!outlen) {
		check(got == 0 && out[0] == 'Z');
		return;
	}
	check(got < outlen && out[got] == '\0');
	check(outlen == sizeof(out) || out[outlen] == 'Z');
	check(utf8_valid((const uint8_t *)out, got));
#ifndef FUZZ_SKIP_UCS_PREFIX
	check(!memcmp(out, whole, got));
	check(got == all || got + utf8_seq_len((uint8_t)whole[got]) >= outlen);
#endif
}

static char *layout_text(const struct pml_pylayout *l)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	check(f != NULL);
	check(pyoffsets__print(f, l) == 0);
	fclose(f);
	return buf;
}

static void check_same_layout(const struct pml_pylayout *a, const struct pml_pylayout *b)
{
	char *x = layout_text(a), *y = layout_text(b);

	check(!strcmp(x, y));
	check(a->walk.runtime_addr == b->walk.runtime_addr);
	free(x);
	free(y);
}

struct pass {
	struct pml_stackinfo info;
	uint64_t failures;
};

static void run_pass(struct pml_symbolizer *s, const struct pml_stack *st, struct pass *p)
{
	uint32_t want = st->depth > PML_MAX_FRAMES ? PML_MAX_FRAMES : st->depth;
	uint64_t before = symbolizer__failures(s, PID);
	size_t i;

	check(symbolizer__frames(s, PID, st, &p->info) == 0);
	check(p->info.nframes == want);
	check(!want || p->info.frames);
	for (i = 0; i < p->info.nframes; i++) {
		const struct pml_pyframe *f = &p->info.frames[i];

		check(f->file && f->function && f->line >= 0);
		check(utf8_valid((const uint8_t *)f->file, strlen(f->file)));
		check(utf8_valid((const uint8_t *)f->function, strlen(f->function)));
	}
	p->failures = symbolizer__failures(s, PID) - before;
	if (getenv("FUZZ_PRINT"))
		for (i = 0; i < p->info.nframes; i++)
			fprintf(stderr, "frame %zu: %s (%s:%d)\n", i, p->info.frames[i].function,
				p->info.frames[i].file, p->info.frames[i].line);
	check(p->failures <= want);
}

static void check_same_frames(const struct pass *a, const struct pass *b)
{
	size_t i;

	check(a->info.nframes == b->info.nframes);
	check(a->failures == b->failures);
	for (i = 0; i < a->info.nframes; i++) {
		check(!strcmp(a->info.frames[i].file, b->info.frames[i].file));
		check(!strcmp(a->info.frames[i].function, b->info.frames[i].function));
		check(a->info.frames[i].line == b->info.frames[i].line);
	}
}

static void check_instr_offsets(const struct pml_pylayout *lay, const struct pml_stack *st)
{
	uint32_t i, off;

	for (i = 0; i < st->depth && i < PML_MAX_FRAMES; i++) {
		off = symbolize__instr_offset(lay, st->frames[i].code, st->frames[i].instr);
		if (lay->instr_kind == PML_INSTR_LASTI_BYTES)
			check(off == ((int32_t)st->frames[i].instr < 0
					      ? 0
					      : (uint32_t)st->frames[i].instr));
		else
			check(!(off & 1));
		if (lay->instr_kind == PML_INSTR_POINTER)
			check(off <= (1u << 30));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pml_pytypes types = { CODE_TYPE, STR_TYPE, BYTES_TYPE };
	static struct pml_symbolizer *s;
	static struct target t;
	static struct pml_stack st;
	const struct pml_pylayout *row;
	struct pml_pylayout lay, lay2, want;
	struct pass p1, p2;
	unsigned int kinds[] = { 1, 2, 4, 3 };
	size_t pos = HEADER_LEN, npatch, i;
	int minor;
	bool typed;

	if (size < HEADER_LEN + 1)
		return 0;
	minor = 8 + data[0] % 6;
	typed = data[1] & 1;
	npatch = data[2] % 8;
	row = pyoffsets__lookup(3, minor);
	check(row != NULL);

	memset(&t, 0, sizeof(t));
	t.has_dbg = minor == 13 && (data[1] & 2);
	memcpy(t.dbg, debug_offsets_313, sizeof(t.dbg));
	for (i = 0; i < npatch && pos + 3 <= size; i++, pos += 3) {
		uint64_t v = le16(data + pos + 1);

		memcpy(t.dbg + (data[pos] % DBG_WORDS) * 8, &v, sizeof(v));
	}

	memset(&st, 0, sizeof(st));
	if (pos < size)
		st.depth = data[pos++];
	for (i = 0; i < st.depth && i < PML_MAX_FRAMES && pos + 8 <= size; i++, pos += 8) {
		uint32_t off = le32(data + pos), w = le32(data + pos + 4);
		uint64_t code = off == UINT32_MAX ? 0 : IMAGE_BASE + off;

		st.frames[i].code = code;
		if (row->instr_kind == PML_INSTR_POINTER)
			st.frames[i].instr = code + row->code_code_adaptive + (int64_t)(int32_t)w;
		else
			st.frames[i].instr = w; /* int f_lasti read as 4 bytes */
	}
	t.image = data + pos;
	t.image_len = size - pos;

	check_ucs(t.image, t.image_len, kinds[(data[1] >> 4) & 3], data[3]);

	if (!s)
		s = symbolizer__new_reader(target_read, &t);
	check(s != NULL);
	check(symbolizer__add_proc(s, PID, 3, minor, t.has_dbg ? RUNTIME_ADDR : 0,
				   typed ? &types : NULL, &lay) == 0);
	/* The layout: from the image when it parses, else the table row. */
	want = *row;
	if (t.has_dbg && pyoffsets__from_debug_offsets(t.dbg, sizeof(t.dbg), &lay2) == 0)
		want = lay2;
	want.walk.runtime_addr = t.has_dbg ? RUNTIME_ADDR : 0;
	check_same_layout(&lay, &want);
	check_instr_offsets(&lay, &st);

	run_pass(s, &st, &p1);
	run_pass(s, &st, &p2);
	check_same_frames(&p1, &p2);
	symbolizer__drop_pid(s, PID);
	check(symbolizer__failures(s, PID) == 0);
	symbolizer__release(&p1.info);
	symbolizer__release(&p2.info);
	return 0;
}

#ifdef FUZZ_MAKE_SEEDS
/* Seed inputs: well-formed images, so the fuzzer starts from real layouts. */

struct seed {
	uint8_t buf[16384];
	size_t len;
	size_t image; /* where the image starts in buf */
	const struct pml_pylayout *lay;
	int minor;
};

static uint64_t seed_alloc(struct seed *sd, size_t n)
{
	uint64_t a = IMAGE_BASE + (sd->len - sd->image);

	check(sd->len + n <= sizeof(sd->buf));
	sd->len += (n + 15) & ~(size_t)15;
	return a;
}

static void seed_put(struct seed *sd, uint64_t addr, const void *v, size_t n)
{
	memcpy(sd->buf + sd->image + (addr - IMAGE_BASE), v, n);
}

static void seed_put64(struct seed *sd, uint64_t addr, uint64_t v)
{
	seed_put(sd, addr, &v, 8);
}

static uint64_t seed_str(struct seed *sd, const char *text, unsigned int kind, bool ascii,
			 uint32_t extra)
{
	const struct pml_pylayout *l = sd->lay;
	size_t n = strlen(text) + (extra ? 1 : 0), i;
	uint32_t off = ascii ? l->unicode_ascii_size : l->unicode_compact_size;
	uint32_t state = 1 | kind * (l->unicode_kind_mask & -l->unicode_kind_mask) |
			 l->unicode_compact_mask | (ascii ? l->unicode_ascii_mask : 0);
	uint64_t a = seed_alloc(sd, off + (n + 1) * kind);

	seed_put64(sd, a, 1);
	seed_put64(sd, a + l->ob_type, STR_TYPE);
	seed_put64(sd, a + l->unicode_length, n);
	seed_put(sd, a + l->unicode_state, &state, 4);
	for (i = 0; i < n; i++) {
		uint32_t cp = i < strlen(text) ? (uint8_t)text[i] : extra;

		seed_put(sd, a + off + i * kind, &cp, kind);
	}
	return a;
}

static uint64_t seed_bytes(struct seed *sd, const uint8_t *b, size_t n)
{
	const struct pml_pylayout *l = sd->lay;
	uint64_t a = seed_alloc(sd, l->bytes_sval + n + 1);

	seed_put64(sd, a, 1);
	seed_put64(sd, a + l->ob_type, BYTES_TYPE);
	seed_put64(sd, a + l->bytes_size, n);
	seed_put(sd, a + l->bytes_sval, b, n);
	return a;
}

enum seed_kind {
	SEED_PLAIN,
	SEED_MOVED_FILENAME, /* 3.13 image: co_filename at 144 */
	SEED_MOVED_TYPE,     /* 3.13 image: ob_type at 24 (a hash slot), object size 256 */
};

/* Type words in a code object's unused slots: a moved ob_type still finds one. */
static void seed_spray_code(struct seed *sd, uint64_t code, size_t size)
{
	const struct pml_pylayout *l = sd->lay;
	uint32_t off;

	for (off = 16; off + 8 <= size; off += 8) {
		if ((off >= l->code_filename && off < l->code_linetable + 8) ||
		    (off + 8 > l->code_firstlineno && off < l->code_firstlineno + 4))
			continue;
		seed_put64(sd, code + off, CODE_TYPE);
	}
}

static int write_seed(const char *dir, int minor, int variant, uint8_t flags, enum seed_kind kind)
{
	bool moved = kind == SEED_MOVED_FILENAME;
	/* Small valid tables: lines 10, 11, 13 at offsets 0, 6, 14. */
	static const uint8_t lnotab[] = { 6, 1, 8, 2 };
	static const uint8_t lt310[] = { 6, 0, 8, 1, 8, 2 };
	static const uint8_t lt311[] = { 0xea, 0x00, 0xeb, 0x02, 0xeb, 0x04 };
	static const struct {
		unsigned int kind;
		bool ascii;
		uint32_t extra;
	} forms[] = {
		{ 1, true, 0 }, { 1, false, 0xe9 }, { 2, false, 0x20ac }, { 4, false, 0x1f40d }
	};
	static struct seed sd;
	const uint8_t *tab = minor <= 9 ? lnotab : minor == 10 ? lt310 : lt311;
	size_t tlen = minor <= 9 ? sizeof(lnotab) : minor == 10 ? sizeof(lt310) : sizeof(lt311);
	const struct pml_pylayout *l = pyoffsets__lookup(3, minor);
	uint64_t file, name, qual, table, code, moved_file = 0;
	int32_t first = 10;
	uint32_t offs[] = { 0, 6, 14, 15 }, k;
	char path[4096];
	FILE *f;

	check(linetable__line(l->lt_format, tab, tlen, first, 14) == 13);
	memset(&sd, 0, sizeof(sd));
	sd.lay = l;
	sd.minor = minor;
	sd.buf[0] = (uint8_t)(minor - 8);
	sd.buf[1] = flags;
	sd.buf[2] = kind == SEED_PLAIN ? 0 : kind == SEED_MOVED_FILENAME ? 1 : 2;
	sd.buf[3] = (uint8_t)(7 + variant * 3);
	sd.len = HEADER_LEN;
	if (moved) {
		/* co_filename moved to 144 by the image. */
		sd.buf[sd.len++] = 35;
		sd.buf[sd.len++] = 144;
		sd.buf[sd.len++] = 0;
	}
	if (kind == SEED_MOVED_TYPE) {
		sd.buf[sd.len++] = 44; /* pyobject size */
		sd.buf[sd.len++] = 0;
		sd.buf[sd.len++] = 1;
		sd.buf[sd.len++] = 45; /* ob_type */
		sd.buf[sd.len++] = 24;
		sd.buf[sd.len++] = 0;
	}
	sd.buf[sd.len++] = 4; /* depth */
	sd.image = sd.len + 4 * 8;
	sd.len = sd.image;

	file = seed_str(&sd, "/srv/app/m.py", forms[variant].kind, forms[variant].ascii,
			forms[variant].extra);
	name = seed_str(&sd, "handle", 1, true, 0);
	qual = seed_str(&sd, "Svc.handle", forms[(variant + 1) % 4].kind,
			forms[(variant + 1) % 4].ascii, forms[(variant + 1) % 4].extra);
	if (moved)
		moved_file = seed_str(&sd, "/moved.py", 1, true, 0);
	table = seed_bytes(&sd, tab, tlen);
	code = seed_alloc(&sd, (l->code_code_adaptive != PML_NO_FIELD ? l->code_code_adaptive : 0) +
				       200);
	if (kind == SEED_MOVED_TYPE) {
		seed_spray_code(&sd, code, l->code_code_adaptive + 200);
		seed_put64(&sd, file + 24, STR_TYPE);
		seed_put64(&sd, name + 24, STR_TYPE);
		seed_put64(&sd, qual + 24, STR_TYPE);
		seed_put64(&sd, table + 24, BYTES_TYPE);
	}
	seed_put64(&sd, code, 1);
	seed_put64(&sd, code + l->ob_type, CODE_TYPE);
	seed_put64(&sd, code + l->code_filename, file);
	seed_put64(&sd, code + l->code_name, name);
	if (l->code_qualname != PML_NO_FIELD)
		seed_put64(&sd, code + l->code_qualname, qual);
	seed_put(&sd, code + l->code_firstlineno, &first, 4);
	seed_put64(&sd, code + l->code_linetable, table);
	if (moved)
		seed_put64(&sd, code + 144, moved_file);
	for (k = 0; k < 4; k++) {
		uint32_t off = (uint32_t)(code - IMAGE_BASE);
		uint32_t w = minor <= 9 ? offs[k] : minor == 10 ? offs[k] / 2 : offs[k];
		uint8_t *fr = sd.buf + sd.image - 32 + k * 8;

		if (k == 3 && minor >= 11)
			w = (uint32_t)-2; /* prev_instr of a frame just pushed */
		memcpy(fr, &off, 4);
		memcpy(fr + 4, &w, 4);
	}
	snprintf(path, sizeof(path), "%s/seed_3%d_%d_%02x_%d", dir, minor, variant, flags, kind);
	f = fopen(path, "wb");
	if (!f)
		return -errno;
	fwrite(sd.buf, 1, sd.len, f);
	fclose(f);
	LLVMFuzzerTestOneInput(sd.buf, sd.len);
	return 0;
}

int main(int argc, char **argv)
{
	int minor, variant;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 1;
	}
	for (minor = 8; minor <= 13; minor++)
		for (variant = 0; variant < 4; variant++) {
			if (write_seed(argv[1], minor, variant, 0x01 | variant << 4, SEED_PLAIN) ||
			    write_seed(argv[1], minor, variant, 0x00, SEED_PLAIN))
				return 1;
			if (minor == 13 &&
			    (write_seed(argv[1], minor, variant, 0x03, SEED_PLAIN) ||
			     write_seed(argv[1], minor, variant, 0x03, SEED_MOVED_FILENAME) ||
			     write_seed(argv[1], minor, variant, 0x03, SEED_MOVED_TYPE)))
				return 1;
		}
	return 0;
}
#endif
