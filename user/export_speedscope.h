/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * speedscope JSON writer (`--speedscope FILE.json`), the file format of
 * https://www.speedscope.app/file-format-schema.json. Pure.
 *
 * One "sampled" profile per process, named "<pid> <command>", in bytes:
 * each stack is one sample (its frame indices root first, the path of
 * export_folded.h) weighted by its outstanding bytes; startValue 0,
 * endValue the sum of the weights. shared.frames holds each distinct frame
 * once, as {"name"} or, for a Python frame, {"name","file","line"} (line
 * left out when unknown). Written on one line, "profiles" before "shared"
 * so the frame table can be filled while streaming:
 *
 * {"$schema":"https://www.speedscope.app/file-format-schema.json",
 *  "exporter":"pymemleak","name":"...","activeProfileIndex":0,
 *  "profiles":[{"type":"sampled","name":"4242 python3 app.py","unit":"bytes",
 *    "startValue":0,"endValue":N,"samples":[[0,1,2]],"weights":[N]}],
 *  "shared":{"frames":[{"name":"leak (app.py:12)","file":"app.py","line":12}]}}
 */
#ifndef PML_EXPORT_SPEEDSCOPE_H
#define PML_EXPORT_SPEEDSCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "report.h"

/*
 * Write the rows of every process in procs (all of them); with pid_root
 * each sample starts with its process frame. Returns 0, -EINVAL, -ENOMEM,
 * or -errno of a failed write.
 */
int export_speedscope__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
			     size_t nprocs, bool pid_root);

#endif
