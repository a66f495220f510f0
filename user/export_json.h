/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * JSON writer for scripts and CI. Pure: writes what the aggregator and the
 * process descriptions hold. Schema (version 1), on one line:
 *
 * {"version":1,"duration_s":12.300,"processes":[{"pid":1,"cmdline":"...",
 *  "python":"3.12.1","build":"...","exited":false,
 *  "coverage":{"verdict":"complete"|"partial","reason":"...","allocs":N,"frees":N,
 *              "lost":{"<stat name>":N,...,"symbolization_failures":N}},
 *  "outstanding_bytes":N,"outstanding_count":N,"ranking":"growth"|"bytes"|"count",
 *  "stacks":[{"bytes":N,"count":N,"oldest_age_s":1.500,"native":["..."],
 *             "flags":["no_gil",...],"frames":[{"file":"a.py","function":"f","line":3}],
 *             "growth_bytes_per_s":102400.000,"growth_fit":0.998,
 *             "series":[[0.000,1024],[5.000,2048],...],
 *             "types":[{"type":"dict","bytes":N,"count":N}],"types_sampled":true}]}]}
 *
 * "lost" holds every STAT_* counter but allocs and frees, zeros included.
 * flags: "truncated", "no_gil", "read_fault", "no_pystate", and
 * "unsymbolized" for a stack never symbolized (then native and frames are
 * empty). "ranking" is agg__pid_sort of the requested sort: what "stacks"
 * is ordered by. Growth is per report.h (PML_GROWTH_WINDOW); with fewer than
 * PML_GROWTH_MIN points in "series" it is unknown and written 0, fit 0.
 * "series" holds the stack's last points (at most PML_SERIES_MAX), seconds
 * since the first snapshot and outstanding bytes. "types" is by bytes
 * descending, empty when not classified. Every number is finite; fractional
 * ones have 3 decimals. Strings are escaped per RFC 8259, invalid UTF-8
 * bytes become U+FFFD: target data can be anything. The schema is checked
 * by tests/unit/fixtures/report.schema.json; new keys may be added within
 * version 1, none removed.
 */
#ifndef PML_EXPORT_JSON_H
#define PML_EXPORT_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

/*
 * Write the report of procs as JSON to out: per process its top `top` stacks
 * (0: all) ranked by agg__pid_sort(a, pid, sort), ages relative to now_ns.
 * stat_names as for report__text. Returns 0, -EINVAL, -ENOMEM, or -errno
 * of a failed write.
 */
int export_json__write(FILE *out, const struct pml_agg *a, const struct pml_procinfo *procs,
		       size_t nprocs, uint64_t now_ns, double duration_s, size_t top,
		       enum pml_sort sort, const char *const *stat_names);

/* Write s[0..len) as a JSON string literal, quotes included. */
void export_json__string(FILE *out, const char *s, size_t len);

#endif
