/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Print the struct pml_pylayout row of the CPython whose headers this is
 * compiled against. Every number comes from offsetof/sizeof/enum values of
 * the real (internal) headers, never from a hand-kept list:
 *
 *   cc -DPy_BUILD_CORE -I$PREFIX/include/python3.X -I$PREFIX/include/python3.X/internal \
 *      -Iuser -Ibpf tools/gen_pyoffsets.c user/pyoffsets.c -o gen && ./gen
 *
 * Run through tools/gen_pyoffsets.sh; tests/unit/check_pyoffsets.sh diffs its
 * output against the committed table.
 */
#include <Python.h>
#include <frameobject.h>

#if PY_VERSION_HEX < 0x03080000 || PY_VERSION_HEX >= 0x030e0000
#error "gen_pyoffsets: only CPython 3.8 to 3.13 are described"
#endif

#if PY_VERSION_HEX < 0x03090000
#include <pycore_pystate.h> /* _PyRuntimeState; PyGC_Head is public in 3.8 */
#else
#include <pycore_gc.h>
#include <pycore_interp.h>
#include <pycore_runtime.h>
#endif
#if PY_VERSION_HEX >= 0x030b0000
#include <pycore_code.h>
#include <pycore_frame.h>
#include <pycore_object.h>
#endif
#if PY_VERSION_HEX >= 0x030c0000
#include <pycore_gil.h>
#endif

#include <stdio.h>
#include <string.h>

#include "linetable.h"
#include "pyoffsets.h"

#define MEMBER_SIZE(type, member) sizeof(((type *)0)->member)

/* The BPF side reads these as the widths it is told or assumes. */
_Static_assert(MEMBER_SIZE(PyThreadState, thread_id) == 8, "thread_id is 8 bytes");
_Static_assert(MEMBER_SIZE(PyObject, ob_type) == 8, "pointers are 8 bytes");
_Static_assert(MEMBER_SIZE(PyASCIIObject, state) == 4, "unicode state is one 32-bit word");
/* The state word follows the hash: what readers without headers assume. */
_Static_assert(offsetof(PyASCIIObject, state) == offsetof(PyASCIIObject, hash) + sizeof(Py_hash_t),
	       "unicode state follows hash");

/* Mask of the bits a bitfield of the unicode state word occupies. */
#define STATE_MASK(field, val)                      \
	({                                          \
		PyASCIIObject o_;                   \
		uint32_t w_;                        \
		memset(&o_, 0, sizeof(o_));         \
		o_.state.field = (val);             \
		memcpy(&w_, &o_.state, sizeof(w_)); \
		w_;                                 \
	})

/* Bytes before the GC head for a type with exactly `flags`, measured with
 * the interpreter's own _PyType_PreHeaderSize (3.11+). */
#if PY_VERSION_HEX >= 0x030b0000
static uint32_t preheader_size(unsigned long flags)
{
	PyTypeObject t;

	memset(&t, 0, sizeof(t));
	t.tp_flags = flags;
	return (uint32_t)_PyType_PreHeaderSize(&t);
}
#endif

int main(void)
{
	struct pml_pylayout l;

	memset(&l, 0, sizeof(l));
	l.major = PY_MAJOR_VERSION;
	l.minor = PY_MINOR_VERSION;

	/* Current thread state. */
#if PY_VERSION_HEX < 0x030c0000
	l.walk.tstate_chain[0] = offsetof(_PyRuntimeState, gilstate.tstate_current);
	l.walk.tstate_chain_len = 1;
#else
	/* tstate_current is a thread-local since 3.12: use the GIL holder. */
	l.walk.tstate_chain[0] = offsetof(_PyRuntimeState, interpreters.main);
	l.walk.tstate_chain[1] = offsetof(PyInterpreterState, ceval.gil);
	l.walk.tstate_chain[2] = offsetof(struct _gil_runtime_state, last_holder);
	l.walk.tstate_chain_len = 3;
	_Static_assert(MEMBER_SIZE(PyInterpreterState, ceval.gil) == 8, "gil is a pointer");
	_Static_assert(MEMBER_SIZE(struct _gil_runtime_state, last_holder) == 8, "pointer");
#endif
	l.walk.tstate_thread_id = offsetof(PyThreadState, thread_id);

	/* Innermost frame and the frame links. */
#if PY_VERSION_HEX < 0x030b0000
	l.walk.frame_chain[0] = offsetof(PyThreadState, frame);
	l.walk.frame_chain_len = 1;
	l.walk.frame_back = offsetof(PyFrameObject, f_back);
	l.walk.frame_code = offsetof(PyFrameObject, f_code);
	l.walk.frame_instr = offsetof(PyFrameObject, f_lasti);
	l.walk.frame_instr_size = MEMBER_SIZE(PyFrameObject, f_lasti);
	l.walk.frame_owner = PML_NO_FIELD;
	l.walk.frame_owner_skip = PML_NO_FIELD;
#else
#if PY_VERSION_HEX < 0x030d0000
	l.walk.frame_chain[0] = offsetof(PyThreadState, cframe);
	l.walk.frame_chain[1] = offsetof(_PyCFrame, current_frame);
	l.walk.frame_chain_len = 2;
	l.walk.frame_code = offsetof(_PyInterpreterFrame, f_code);
	l.walk.frame_instr = offsetof(_PyInterpreterFrame, prev_instr);
	l.walk.frame_instr_size = MEMBER_SIZE(_PyInterpreterFrame, prev_instr);
#else
	l.walk.frame_chain[0] = offsetof(PyThreadState, current_frame);
	l.walk.frame_chain_len = 1;
	l.walk.frame_code = offsetof(_PyInterpreterFrame, f_executable);
	l.walk.frame_instr = offsetof(_PyInterpreterFrame, instr_ptr);
	l.walk.frame_instr_size = MEMBER_SIZE(_PyInterpreterFrame, instr_ptr);
#endif
	l.walk.frame_back = offsetof(_PyInterpreterFrame, previous);
	_Static_assert(MEMBER_SIZE(_PyInterpreterFrame, owner) == 1, "owner is one byte");
#if PY_VERSION_HEX < 0x030c0000
	/* 3.11 marks C-stack entries with is_entry on real frames: nothing to skip. */
	l.walk.frame_owner = PML_NO_FIELD;
	l.walk.frame_owner_skip = PML_NO_FIELD;
#else
	l.walk.frame_owner = offsetof(_PyInterpreterFrame, owner);
	l.walk.frame_owner_skip = FRAME_OWNED_BY_CSTACK;
#endif
#endif

	/* Code objects. */
	l.code_filename = offsetof(PyCodeObject, co_filename);
	l.code_name = offsetof(PyCodeObject, co_name);
	l.code_firstlineno = offsetof(PyCodeObject, co_firstlineno);
	_Static_assert(MEMBER_SIZE(PyCodeObject, co_firstlineno) == 4, "int co_firstlineno");
#if PY_VERSION_HEX < 0x030a0000
	l.code_linetable = offsetof(PyCodeObject, co_lnotab);
	l.lt_format = PML_LT_LNOTAB;
	l.instr_kind = PML_INSTR_LASTI_BYTES;
#else
	l.code_linetable = offsetof(PyCodeObject, co_linetable);
#endif
#if PY_VERSION_HEX >= 0x030a0000 && PY_VERSION_HEX < 0x030b0000
	/* 3.10's f_lasti counts _Py_CODEUNITs (frame.f_lasti doubles it). */
	l.lt_format = PML_LT_310;
	l.instr_kind = PML_INSTR_LASTI_UNITS;
#endif
#if PY_VERSION_HEX < 0x030b0000
	l.code_qualname = PML_NO_FIELD;
	l.code_code_adaptive = PML_NO_FIELD;
#else
	l.code_qualname = offsetof(PyCodeObject, co_qualname);
	l.code_code_adaptive = offsetof(PyCodeObject, co_code_adaptive);
	l.lt_format = PML_LT_311;
	l.instr_kind = PML_INSTR_POINTER;
#endif

	/* Objects and types. */
	l.ob_type = offsetof(PyObject, ob_type);
	l.tp_name = offsetof(PyTypeObject, tp_name);
	l.tp_flags = offsetof(PyTypeObject, tp_flags);
	l.tp_basicsize = offsetof(PyTypeObject, tp_basicsize);
	l.gc_head_size = sizeof(PyGC_Head);
	l.tp_flags_gc = Py_TPFLAGS_HAVE_GC;
#if PY_VERSION_HEX < 0x030b0000
	l.pre_header_size = 0;
	l.tp_flags_preheader = 0;
#else
#if PY_VERSION_HEX < 0x030c0000
	l.tp_flags_preheader = Py_TPFLAGS_MANAGED_DICT;
#else
	l.tp_flags_preheader = Py_TPFLAGS_PREHEADER;
#endif
	l.pre_header_size = preheader_size(l.tp_flags_preheader);
	/* Each preheader bit alone must give the same size as all of them. */
	for (unsigned long bit = 1; bit; bit <<= 1) {
		if ((l.tp_flags_preheader & bit) && preheader_size(bit) != l.pre_header_size) {
			fprintf(stderr, "gen_pyoffsets: pre-header depends on flag 0x%lx\n", bit);
			return 1;
		}
	}
	if (preheader_size(Py_TPFLAGS_HAVE_GC) != sizeof(PyGC_Head)) {
		fprintf(stderr, "gen_pyoffsets: GC pre-header is not sizeof(PyGC_Head)\n");
		return 1;
	}
#endif

	/* str */
	l.unicode_length = offsetof(PyASCIIObject, length);
	l.unicode_state = offsetof(PyASCIIObject, state);
	l.unicode_ascii_size = sizeof(PyASCIIObject);
	l.unicode_compact_size = sizeof(PyCompactUnicodeObject);
	l.unicode_kind_mask = STATE_MASK(kind, 7);
	l.unicode_compact_mask = STATE_MASK(compact, 1);
	l.unicode_ascii_mask = STATE_MASK(ascii, 1);

	/* bytes */
	l.bytes_size = offsetof(PyBytesObject, ob_base.ob_size);
	l.bytes_sval = offsetof(PyBytesObject, ob_sval);

	if (pyoffsets__print(stdout, &l) || fflush(stdout))
		return 1;
	return 0;
}
