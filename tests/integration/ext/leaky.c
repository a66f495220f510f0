/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A deliberately leaky extension module for the integration tests, built by
 * the harness against each interpreter's headers:
 *
 *     leaky.lose(n)   PyMem_RawMalloc(n), write every byte, never free
 *
 * The pointer is parked in a volatile global so that no compiler can prove
 * the writes dead and drop them: the memory must really be resident.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static void *volatile leaky_last;

static PyObject *leaky_lose(PyObject *self, PyObject *arg)
{
	Py_ssize_t n = PyLong_AsSsize_t(arg);
	void *p;

	(void)self;
	if (n == -1 && PyErr_Occurred())
		return NULL;
	if (n <= 0 || n > (1 << 26)) {
		PyErr_SetString(PyExc_ValueError, "lose: size must be 1 to 64 MiB");
		return NULL;
	}
	p = PyMem_RawMalloc((size_t)n);
	if (!p)
		return PyErr_NoMemory();
	memset(p, 0xa5, (size_t)n);
	leaky_last = p;
	Py_RETURN_NONE;
}

static PyMethodDef leaky_methods[] = {
	{ "lose", leaky_lose, METH_O, "Allocate n bytes with PyMem_RawMalloc and never free them." },
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
