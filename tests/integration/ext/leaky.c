/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A deliberately leaky extension module for the integration tests, built by
 * the harness against each interpreter's headers:
 *
 *     leaky.lose(n)         PyMem_RawMalloc(n), write every byte, never free
 *     leaky.lose_nogil(n)   the same with the GIL released around it
 *
 * The pointer is parked in a volatile global so that no compiler can prove
 * the writes dead and drop them: the memory must really be resident.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static void *volatile leaky_last;

/* n from a Python int, 1 to 64 MiB; -1 with an exception set otherwise. */
static Py_ssize_t leaky_size(PyObject *arg)
{
	Py_ssize_t n = PyLong_AsSsize_t(arg);

	if (n == -1 && PyErr_Occurred())
		return -1;
	if (n <= 0 || n > (1 << 26)) {
		PyErr_SetString(PyExc_ValueError, "size must be 1 to 64 MiB");
		return -1;
	}
	return n;
}

static PyObject *leaky_lose(PyObject *self, PyObject *arg)
{
	Py_ssize_t n = leaky_size(arg);
	void *p;

	(void)self;
	if (n < 0)
		return NULL;
	p = PyMem_RawMalloc((size_t)n);
	if (!p)
		return PyErr_NoMemory();
	memset(p, 0xa5, (size_t)n);
	leaky_last = p;
	Py_RETURN_NONE;
}

/* PyMem_RawMalloc is the one allocator that may be called without the GIL. */
static PyObject *leaky_lose_nogil(PyObject *self, PyObject *arg)
{
	Py_ssize_t n = leaky_size(arg);
	void *p;

	(void)self;
	if (n < 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	p = PyMem_RawMalloc((size_t)n);
	if (p)
		memset(p, 0x5a, (size_t)n);
	Py_END_ALLOW_THREADS
	if (!p)
		return PyErr_NoMemory();
	leaky_last = p;
	Py_RETURN_NONE;
}

static PyMethodDef leaky_methods[] = {
	{ "lose", leaky_lose, METH_O, "Allocate n bytes with PyMem_RawMalloc and never free them." },
	{ "lose_nogil", leaky_lose_nogil, METH_O, "lose(n) with the GIL released." },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef leaky_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "leaky",
	.m_doc = "Leaks on purpose, for pymemleak's integration tests.",
	.m_size = -1,
	.m_methods = leaky_methods,
};

PyMODINIT_FUNC PyInit_leaky(void)
{
	return PyModule_Create(&leaky_module);
}
