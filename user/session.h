/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * One tracing session: inspect or launch the targets, attach, report every
 * interval and at the end, export. main.c only parses the command line.
 */
#ifndef PML_SESSION_H
#define PML_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

#define PML_MAX_PIDS 64

/* Exit codes (DESIGN.md). */
enum {
	PML_EXIT_OK = 0,
	PML_EXIT_USAGE = 1,
	PML_EXIT_TARGET = 2,
	PML_EXIT_PRIV = 3,
};

struct pml_opts {
	int pids[PML_MAX_PIDS];
	size_t npids;
	char **argv;	   /* -- COMMAND ARGS, NULL-terminated, or NULL */
	bool all;	   /* --all: every Python process on the host, new ones too */
	const char *match; /* --all --match REGEX on the command line */
	size_t max_procs;  /* --all: processes traced at once */
	double duration_s; /* 0: until Ctrl-C or the targets exit */
	double interval_s; /* periodic report */
	size_t top;
	enum pml_sort sort; /* PML_SORT_AUTO: growth once known, bytes before */
	double older_than_s;
	const char *json_path;
	const char *folded_path;     /* --folded */
	const char *svg_path;	     /* --flamegraph */
	const char *speedscope_path; /* --speedscope */
	bool force;		     /* overwrite output files */
	int verbose;
	bool quiet; /* no periodic reports, only the final one */
	uint32_t max_allocs;
	uint32_t max_stacks;
	uint32_t max_depth;
	bool count_only;   /* benchmark floor */
	bool no_placement; /* probes at function entries */
	bool no_pystacks;  /* native callers only */
};

/* Run the session; returns the process exit code. */
int session__run(const struct pml_opts *o);

#endif
