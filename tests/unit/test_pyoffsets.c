/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * user/pyoffsets.c: table lookup, per-row invariants, the row printer and
 * the _Py_DebugOffsets parser (on the real image of a running 3.13.0, and
 * on corrupted copies of it).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures/debug_offsets_313.h"
#include "linetable.h"
#include "pyoffsets.h"

#define MIN_MINOR 8
#define MAX_MINOR 13

/* Word indices into _Py_DebugOffsets (3.13), the cookie being word 0. */
#define W_VERSION	       1
#define W_FREE_THREADED	       2
#define W_RT_SIZE	       3
#define W_RT_INTERPRETERS_HEAD 5
#define W_IS_SIZE	       6
#define W_IS_GIL_RUNTIME_STATE 15
#define W_IS_GIL_HOLDER	       18
#define W_TS_SIZE	       19
#define W_TS_THREAD_ID	       24
#define W_IF_INSTR_PTR	       31
#define W_CO_FILENAME	       35
#define W_BYTES_OB_SVAL	       66
#define N_WORDS		       (PML_DEBUG_OFFSETS_SIZE / 8)

static uint8_t image[sizeof(debug_offsets_313)];

static uint64_t get_word(int w)
{
	uint64_t v;

	memcpy(&v, image + w * 8, sizeof(v));
	return v;
}

static void set_word(int w, uint64_t v)
{
	memcpy(image + w * 8, &v, sizeof(v));
}

static int reset_image(void **state)
{
	memcpy(image, debug_offsets_313, sizeof(image));
	return 0;
}

static void pyoffsets_lookup__each_supported_minor__row_of_that_version(void **state)
{
	const struct pml_pylayout *l;
	int minor;

	for (minor = MIN_MINOR; minor <= MAX_MINOR; minor++) {
		l = pyoffsets__lookup(3, minor);
		assert_non_null(l);
		assert_int_equal(l->major, 3);
		assert_int_equal(l->minor, minor);
	}
}

static void pyoffsets_lookup__unsupported__null_enotsup(void **state)
{
	static const int versions[][2] = { { 3, 7 }, { 3, 14 }, { 2, 7 }, { 4, 8 }, { 3, -1 } };
	size_t i;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		errno = 0;
		assert_null(pyoffsets__lookup(versions[i][0], versions[i][1]));
		assert_int_equal(errno, ENOTSUP);
	}
}

static void pyoffsets_supported__table__3_8_to_3_13(void **state)
{
	int lo = -1, hi = -1;

	pyoffsets__supported(&lo, &hi);
	assert_int_equal(lo, MIN_MINOR);
	assert_int_equal(hi, MAX_MINOR);
	pyoffsets__supported(NULL, NULL);
}

/* A field offset must exist, be aligned for its width and lie in a struct head. */
static void assert_offset(uint32_t off, uint32_t align)
{
	assert_int_not_equal(off, PML_NO_FIELD);
	assert_true(off < 4096);
	assert_int_equal(off % align, 0);
}

static void assert_mask_contiguous(uint32_t mask)
{
	uint32_t low = mask & -mask;

	assert_int_not_equal(mask, 0);
	assert_int_equal((mask + low) & mask, 0);
}

static void pyoffsets_rows__every_row__invariants_hold(void **state)
{
	const struct pml_pylayout *l;
	const struct pml_pyoffsets *w;
	uint32_t i;
	int minor;

	for (minor = MIN_MINOR; minor <= MAX_MINOR; minor++) {
		l = pyoffsets__lookup(3, minor);
		assert_non_null(l);
		w = &l->walk;
		assert_int_equal(w->runtime_addr, 0);

		/* Thread state: one load until 3.11, GIL holder (3 loads) after. */
		assert_int_equal(w->tstate_chain_len, minor <= 11 ? 1 : 3);
		for (i = 0; i < PML_TSTATE_CHAIN; i++) {
			if (i < w->tstate_chain_len)
				assert_offset(w->tstate_chain[i], 8);
			else
				assert_int_equal(w->tstate_chain[i], 0);
		}
		assert_offset(w->tstate_thread_id, 8);

		/* Frames: tstate->frame, ->cframe->current_frame (3.11, 3.12), ->current_frame. */
		assert_int_equal(w->frame_chain_len, minor == 11 || minor == 12 ? 2 : 1);
		for (i = 0; i < PML_FRAME_CHAIN; i++) {
			if (i < w->frame_chain_len)
				assert_offset(w->frame_chain[i], 8);
			else
				assert_int_equal(w->frame_chain[i], 0);
		}
		assert_offset(w->frame_back, 8);
		assert_offset(w->frame_code, 8);
		assert_offset(w->frame_instr, w->frame_instr_size);
		assert_int_not_equal(w->frame_back, w->frame_code);
		assert_int_not_equal(w->frame_back, w->frame_instr);
		assert_int_not_equal(w->frame_code, w->frame_instr);
		assert_int_equal(w->frame_instr_size, minor <= 10 ? 4 : 8);
		if (minor <= 11) {
			assert_int_equal(w->frame_owner, PML_NO_FIELD);
			assert_int_equal(w->frame_owner_skip, PML_NO_FIELD);
		} else {
			assert_offset(w->frame_owner, 1);
			assert_int_equal(w->frame_owner_skip, 3); /* FRAME_OWNED_BY_CSTACK */
		}

		/* Code objects. */
		assert_offset(l->code_filename, 8);
		assert_offset(l->code_name, 8);
		assert_offset(l->code_firstlineno, 4);
		assert_offset(l->code_linetable, 8);
		if (minor <= 10) {
			assert_int_equal(l->code_qualname, PML_NO_FIELD);
			assert_int_equal(l->code_code_adaptive, PML_NO_FIELD);
		} else {
			assert_offset(l->code_qualname, 8);
			assert_offset(l->code_code_adaptive, 2);
			/* The inline bytecode is the object's last member. */
			assert_true(l->code_code_adaptive > l->code_linetable);
			assert_true(l->code_code_adaptive > l->code_qualname);
			assert_true(l->code_code_adaptive > l->code_filename);
		}
		assert_int_equal(l->lt_format, minor <= 9    ? PML_LT_LNOTAB
					       : minor == 10 ? PML_LT_310
							     : PML_LT_311);
		assert_int_equal(l->instr_kind, minor <= 9    ? PML_INSTR_LASTI_BYTES
						: minor == 10 ? PML_INSTR_LASTI_UNITS
							      : PML_INSTR_POINTER);

		/* Objects and types. */
		assert_int_equal(l->ob_type, 8);
		assert_offset(l->tp_name, 8);
		assert_offset(l->tp_flags, 8);
		assert_offset(l->tp_basicsize, 8);
		assert_int_equal(l->gc_head_size, 16);
		assert_int_equal(l->tp_flags_gc, 1u << 14);
		if (minor <= 10) {
			assert_int_equal(l->pre_header_size, 0);
			assert_int_equal(l->tp_flags_preheader, 0);
		} else {
			assert_int_equal(l->pre_header_size, 16);
			assert_int_not_equal(l->tp_flags_preheader, 0);
			assert_int_equal(l->tp_flags_preheader & l->tp_flags_gc, 0);
		}

		/* str: length, hash, state, then (<= 3.11) wstr. */
		assert_offset(l->unicode_length, 8);
		assert_int_equal(l->unicode_state, l->unicode_length + 16);
		assert_int_equal(l->unicode_ascii_size, l->unicode_state + (minor <= 11 ? 16 : 8));
		assert_true(l->unicode_compact_size > l->unicode_ascii_size);
		assert_mask_contiguous(l->unicode_kind_mask);
		assert_mask_contiguous(l->unicode_compact_mask);
		assert_mask_contiguous(l->unicode_ascii_mask);
		assert_int_equal(l->unicode_kind_mask & l->unicode_compact_mask, 0);
		assert_int_equal(l->unicode_kind_mask & l->unicode_ascii_mask, 0);
		assert_int_equal(l->unicode_compact_mask & l->unicode_ascii_mask, 0);

		/* bytes */
		assert_offset(l->bytes_size, 8);
		assert_true(l->bytes_sval > l->bytes_size);
	}
}

static char *print_row(const struct pml_pylayout *l)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f;

	f = open_memstream(&text, &size);
	assert_non_null(f);
	assert_int_equal(pyoffsets__print(f, l), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void pyoffsets_print__row_3_12__one_line_per_field(void **state)
{
	char *text = print_row(pyoffsets__lookup(3, 12));
	const char *p;
	int lines = 0;

	assert_non_null(strstr(text, "\t{\n\t\t.major = 3,\n\t\t.minor = 12,\n\t\t.walk = {\n"));
	assert_non_null(strstr(text, "\t\t\t.tstate_chain_len = 3,\n"));
	assert_non_null(strstr(text, "\t\t\t.frame_owner_skip = 3,\n"));
	assert_non_null(strstr(text, "\t\t.lt_format = PML_LT_311,\n"));
	assert_non_null(strstr(text, "\t\t.instr_kind = PML_INSTR_POINTER,\n"));
	assert_non_null(strstr(text, "\t\t.tp_flags_gc = 0x4000,\n"));
	assert_null(strstr(text, "runtime_addr"));
	for (p = text; *p; p++)
		lines += *p == '\n';
	/* { major minor walk{ 11 walk fields } 25 fields } */
	assert_int_equal(lines, 1 + 3 + 11 + 1 + 25 + 1);
	free(text);
}

/* Byte ranges of the uint32_t members of struct pml_pylayout (no padding). */
static const size_t u32_ranges[2][2] = {
	{ offsetof(struct pml_pylayout, walk.tstate_chain),
	  offsetof(struct pml_pylayout, walk.__pad) },
	{ offsetof(struct pml_pylayout, code_filename),
	  offsetof(struct pml_pylayout, bytes_sval) + sizeof(uint32_t) },
};

/* A field missing from the printer would vanish from the checked table. */
static void pyoffsets_print__any_field_changed__output_changes(void **state)
{
	const struct pml_pylayout *row = pyoffsets__lookup(3, 12);
	char *base = print_row(row), *text;
	struct pml_pylayout l;
	size_t r, off;
	uint32_t v;

	for (r = 0; r < 2; r++) {
		for (off = u32_ranges[r][0]; off < u32_ranges[r][1]; off += sizeof(v)) {
			l = *row;
			memcpy(&v, (char *)&l + off, sizeof(v));
			v ^= 0x5000;
			memcpy((char *)&l + off, &v, sizeof(v));
			text = print_row(&l);
			if (strcmp(text, base) == 0)
				fail_msg("member at byte %zu not printed", off);
			free(text);
		}
	}
	free(base);
}

static void pyoffsets_print__row_3_8__absent_fields_named(void **state)
{
	char *text = print_row(pyoffsets__lookup(3, 8));

	assert_non_null(strstr(text, "\t\t.code_qualname = PML_NO_FIELD,\n"));
	assert_non_null(strstr(text, "\t\t\t.frame_owner = PML_NO_FIELD,\n"));
	assert_non_null(strstr(text, "\t\t.instr_kind = PML_INSTR_LASTI_BYTES,\n"));
	free(text);
}

/* Every field both sources describe must agree. */
static void assert_same_layout(const struct pml_pylayout *a, const struct pml_pylayout *b)
{
	uint32_t i;

	assert_int_equal(a->major, b->major);
	assert_int_equal(a->minor, b->minor);
	assert_int_equal(a->walk.runtime_addr, b->walk.runtime_addr);
	for (i = 0; i < PML_TSTATE_CHAIN; i++)
		assert_int_equal(a->walk.tstate_chain[i], b->walk.tstate_chain[i]);
	assert_int_equal(a->walk.tstate_chain_len, b->walk.tstate_chain_len);
	assert_int_equal(a->walk.tstate_thread_id, b->walk.tstate_thread_id);
	for (i = 0; i < PML_FRAME_CHAIN; i++)
		assert_int_equal(a->walk.frame_chain[i], b->walk.frame_chain[i]);
	assert_int_equal(a->walk.frame_chain_len, b->walk.frame_chain_len);
	assert_int_equal(a->walk.frame_back, b->walk.frame_back);
	assert_int_equal(a->walk.frame_code, b->walk.frame_code);
	assert_int_equal(a->walk.frame_instr, b->walk.frame_instr);
	assert_int_equal(a->walk.frame_instr_size, b->walk.frame_instr_size);
	assert_int_equal(a->walk.frame_owner, b->walk.frame_owner);
	assert_int_equal(a->walk.frame_owner_skip, b->walk.frame_owner_skip);
	assert_int_equal(a->code_filename, b->code_filename);
	assert_int_equal(a->code_name, b->code_name);
	assert_int_equal(a->code_qualname, b->code_qualname);
	assert_int_equal(a->code_firstlineno, b->code_firstlineno);
	assert_int_equal(a->code_linetable, b->code_linetable);
	assert_int_equal(a->code_code_adaptive, b->code_code_adaptive);
	assert_int_equal(a->lt_format, b->lt_format);
	assert_int_equal(a->instr_kind, b->instr_kind);
	assert_int_equal(a->ob_type, b->ob_type);
	assert_int_equal(a->tp_name, b->tp_name);
	assert_int_equal(a->tp_flags, b->tp_flags);
	assert_int_equal(a->tp_basicsize, b->tp_basicsize);
	assert_int_equal(a->gc_head_size, b->gc_head_size);
	assert_int_equal(a->pre_header_size, b->pre_header_size);
	assert_int_equal(a->tp_flags_gc, b->tp_flags_gc);
	assert_int_equal(a->tp_flags_preheader, b->tp_flags_preheader);
	assert_int_equal(a->unicode_length, b->unicode_length);
	assert_int_equal(a->unicode_state, b->unicode_state);
	assert_int_equal(a->unicode_ascii_size, b->unicode_ascii_size);
	assert_int_equal(a->unicode_compact_size, b->unicode_compact_size);
	assert_int_equal(a->unicode_kind_mask, b->unicode_kind_mask);
	assert_int_equal(a->unicode_compact_mask, b->unicode_compact_mask);
	assert_int_equal(a->unicode_ascii_mask, b->unicode_ascii_mask);
	assert_int_equal(a->bytes_size, b->bytes_size);
	assert_int_equal(a->bytes_sval, b->bytes_sval);
}

static void pyoffsets_from_debug_offsets__real_313_image__equals_table_row(void **state)
{
	const struct pml_pylayout *row = pyoffsets__lookup(3, 13);
	struct pml_pylayout got, want;

	assert_non_null(row);
	memset(&got, 0, sizeof(got));
	assert_int_equal(pyoffsets__from_debug_offsets(image, sizeof(image), &got), 0);
	/*
	 * _Py_DebugOffsets names interpreters.head where the table uses
	 * interpreters.main, the member after it in struct pyinterpreters.
	 */
	want = *row;
	want.walk.tstate_chain[0] = row->walk.tstate_chain[0] - 8;
	assert_int_equal(got.walk.tstate_chain[0], get_word(W_RT_INTERPRETERS_HEAD));
	assert_same_layout(&got, &want);
}

/* The parser reads the image, not the table: a moved field moves in the result. */
static void pyoffsets_from_debug_offsets__moved_fields__follow_image(void **state)
{
	struct pml_pylayout got;

	set_word(W_TS_THREAD_ID, 160);
	set_word(W_IF_INSTR_PTR, 48);
	set_word(W_CO_FILENAME, 96);
	set_word(W_BYTES_OB_SVAL, 33);
	set_word(W_IS_GIL_HOLDER, get_word(W_IS_GIL_RUNTIME_STATE) + 24);
	assert_int_equal(pyoffsets__from_debug_offsets(image, sizeof(image), &got), 0);
	assert_int_equal(got.walk.tstate_thread_id, 160);
	assert_int_equal(got.walk.frame_instr, 48);
	assert_int_equal(got.code_filename, 96);
	assert_int_equal(got.bytes_sval, 33);
	assert_int_equal(got.walk.tstate_chain[2], 24);
}

static void expect_rejected(int want_err)
{
	struct pml_pylayout got, before;

	memset(&got, 0xa5, sizeof(got));
	before = got;
	assert_int_equal(pyoffsets__from_debug_offsets(image, sizeof(image), &got), want_err);
	/* Nothing half-filled on failure. */
	assert_memory_equal(&got, &before, sizeof(got));
}

static void pyoffsets_from_debug_offsets__bad_cookie__einval(void **state)
{
	image[7] = 'Y';
	expect_rejected(-EINVAL);
}

static void pyoffsets_from_debug_offsets__short_buffer__einval(void **state)
{
	struct pml_pylayout got;

	assert_int_equal(pyoffsets__from_debug_offsets(image, PML_DEBUG_OFFSETS_SIZE - 1, &got),
			 -EINVAL);
	assert_int_equal(pyoffsets__from_debug_offsets(image, 15, &got), -EINVAL);
	assert_int_equal(pyoffsets__from_debug_offsets(image, 0, &got), -EINVAL);
	assert_int_equal(pyoffsets__from_debug_offsets(NULL, sizeof(image), &got), -EINVAL);
	assert_int_equal(pyoffsets__from_debug_offsets(image, sizeof(image), NULL), -EINVAL);
}

static void pyoffsets_from_debug_offsets__other_versions__enotsup(void **state)
{
	static const uint64_t versions[] = { 0x030e00f0, 0x030c01f0, 0x020d00f0, 0x040d00f0 };
	struct pml_pylayout got;
	size_t i;

	for (i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		set_word(W_VERSION, versions[i]);
		expect_rejected(-ENOTSUP);
	}
	/* Another 3.13 patch release is the same layout. */
	set_word(W_VERSION, 0x030d05f0);
	assert_int_equal(pyoffsets__from_debug_offsets(image, sizeof(image), &got), 0);
}

static void pyoffsets_from_debug_offsets__free_threaded__enotsup(void **state)
{
	set_word(W_FREE_THREADED, 1);
	expect_rejected(-ENOTSUP);
}

static void pyoffsets_from_debug_offsets__offset_at_struct_size__einval(void **state)
{
	set_word(W_TS_THREAD_ID, get_word(W_TS_SIZE) - 4);
	expect_rejected(-EINVAL);
}

static void pyoffsets_from_debug_offsets__struct_size_shrunk__einval(void **state)
{
	/* Declares a thread state too small to hold its own current_frame. */
	set_word(W_TS_SIZE, 64);
	expect_rejected(-EINVAL);
}

static void pyoffsets_from_debug_offsets__offset_beyond_64k__einval(void **state)
{
	/* Inside the declared (huge) runtime struct, but past the 64 KiB bound. */
	assert_true(get_word(W_RT_SIZE) > 65536 + 8);
	set_word(W_RT_INTERPRETERS_HEAD, 65536 + 8);
	expect_rejected(-EINVAL);
}

static void pyoffsets_from_debug_offsets__holder_before_gil__einval(void **state)
{
	set_word(W_IS_GIL_HOLDER, get_word(W_IS_GIL_RUNTIME_STATE) - 8);
	expect_rejected(-EINVAL);
}

/*
 * Every word set to hostile values: the parser either rejects the image or
 * returns offsets that all stay within the bound.
 */
static void pyoffsets_from_debug_offsets__any_word_hostile__bounded_or_rejected(void **state)
{
	static const uint64_t hostile[] = { UINT64_MAX, 1ull << 32, 65537, 0x7fffffff, 0 };
	struct pml_pylayout got;
	size_t i, j, r, off;
	uint32_t v;
	int rc;

	for (i = W_RT_SIZE; i < N_WORDS; i++) {
		for (j = 0; j < sizeof(hostile) / sizeof(hostile[0]); j++) {
			memcpy(image, debug_offsets_313, sizeof(image));
			set_word((int)i, hostile[j]);
			rc = pyoffsets__from_debug_offsets(image, sizeof(image), &got);
			assert_true(rc == 0 || rc == -EINVAL);
			if (rc)
				continue;
			for (r = 0; r < 2; r++) {
				for (off = u32_ranges[r][0]; off < u32_ranges[r][1];
				     off += sizeof(v)) {
					memcpy(&v, (const char *)&got + off, sizeof(v));
					if (v != PML_NO_FIELD && v > 65536)
						fail_msg("word %zu: byte %zu = %u", i, off, v);
				}
			}
		}
	}
}

/* Tests that edit `image` start from a fresh copy of the fixture. */
#define IMAGE_TEST(f) cmocka_unit_test_setup(f, reset_image)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(pyoffsets_lookup__each_supported_minor__row_of_that_version),
		cmocka_unit_test(pyoffsets_lookup__unsupported__null_enotsup),
		cmocka_unit_test(pyoffsets_supported__table__3_8_to_3_13),
		cmocka_unit_test(pyoffsets_rows__every_row__invariants_hold),
		cmocka_unit_test(pyoffsets_print__row_3_12__one_line_per_field),
		cmocka_unit_test(pyoffsets_print__row_3_8__absent_fields_named),
		cmocka_unit_test(pyoffsets_print__any_field_changed__output_changes),
		IMAGE_TEST(pyoffsets_from_debug_offsets__real_313_image__equals_table_row),
		IMAGE_TEST(pyoffsets_from_debug_offsets__moved_fields__follow_image),
		IMAGE_TEST(pyoffsets_from_debug_offsets__bad_cookie__einval),
		IMAGE_TEST(pyoffsets_from_debug_offsets__short_buffer__einval),
		IMAGE_TEST(pyoffsets_from_debug_offsets__other_versions__enotsup),
		IMAGE_TEST(pyoffsets_from_debug_offsets__free_threaded__enotsup),
		IMAGE_TEST(pyoffsets_from_debug_offsets__offset_at_struct_size__einval),
		IMAGE_TEST(pyoffsets_from_debug_offsets__struct_size_shrunk__einval),
		IMAGE_TEST(pyoffsets_from_debug_offsets__offset_beyond_64k__einval),
		IMAGE_TEST(pyoffsets_from_debug_offsets__holder_before_gil__einval),
		IMAGE_TEST(pyoffsets_from_debug_offsets__any_word_hostile__bounded_or_rejected),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
