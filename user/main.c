// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pymemleak: find memory leaks in running CPython processes, from outside.
 * This file is only the command line; session.c does the work.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

#ifndef PML_VERSION
#define PML_VERSION "0.0.0"
#endif

enum {
	OPT_OLDER_THAN = 0x100,
	OPT_JSON,
	OPT_FORCE,
	OPT_MAX_ALLOCS,
	OPT_MAX_STACKS,
	OPT_MAX_DEPTH,
	OPT_SORT,
	OPT_COUNT_ONLY,
	OPT_NO_PLACEMENT,
	OPT_NO_PYSTACKS,
	OPT_VERSION,
	OPT_ALL,
	OPT_MATCH,
	OPT_MAX_PROCS,
	OPT_FOLDED,
	OPT_FLAMEGRAPH,
	OPT_SPEEDSCOPE,
};

static const char usage[] =
	"Usage: pymemleak [OPTIONS] -p PID [-p PID ...]\n"
	"       pymemleak [OPTIONS] --all [--match REGEX]\n"
	"       pymemleak [OPTIONS] -- COMMAND [ARGS...]\n"
	"\n"
	"Find memory leaks in running CPython 3.8-3.13 processes, from outside, with BPF\n"
	"uprobes on the allocator. Reports the stacks holding the most memory not yet\n"
	"freed, every interval and at the end (Ctrl-C, --duration, or the target's exit).\n"
	"\n"
	"Targets:\n"
	"  -p, --pid PID           trace this process (repeatable)\n"
	"      --all               every Python process on the host, new ones included\n"
	"      --match REGEX       with --all: only command lines matching REGEX\n"
	"  -- COMMAND [ARGS]       start COMMAND and trace it from its first allocation\n"
	"\n"
	"Reporting:\n"
	"  -d, --duration SEC      stop after SEC seconds (default: until Ctrl-C or exit)\n"
	"  -i, --interval SEC      periodic report every SEC seconds (default 5)\n"
	"  -q, --quiet             no periodic reports, only the final one\n"
	"  -n, --top N             stacks shown per process (default 10)\n"
	"      --sort growth|bytes|count\n"
	"                          ranking (default: growth once 3 intervals are in, bytes before)\n"
	"      --older-than SEC    only allocations at least SEC seconds old\n"
	"      --json FILE         write the final report as JSON (see README)\n"
	"      --folded FILE       folded stacks (flamegraph.pl, inferno, speedscope)\n"
	"      --flamegraph FILE   interactive SVG flamegraph of outstanding bytes\n"
	"      --speedscope FILE   speedscope JSON profile\n"
	"      --force             overwrite output files that exist\n"
	"  -v, --verbose           show the probe plan (sites and why)\n"
	"\n"
	"Limits (every loss is counted and shown):\n"
	"      --max-allocs N      live allocations tracked (default 1048576)\n"
	"      --max-stacks N      distinct stacks (default 65536)\n"
	"      --max-depth N       Python frames per stack, 1-64 (default 64)\n"
	"      --max-procs N       with --all: processes traced at once (default 256)\n"
	"\n"
	"Comparison and benchmarking:\n"
	"      --no-pystacks       native callers only, no Python frame walk\n"
	"      --no-placement      probe function entries, not the cheapest site\n"
	"      --count-only        only count calls at function entries (overhead floor)\n"
	"\n"
	"  -h, --help              this help\n"
	"      --version           print the version\n"
	"\n"
	"Exit status: 0 ok, 1 usage error, 2 target problem (no such pid, not Python,\n"
	"unsupported build, every target exited), 3 privilege or kernel problem.\n";

static const struct option longopts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "duration", required_argument, NULL, 'd' },
	{ "interval", required_argument, NULL, 'i' },
	{ "top", required_argument, NULL, 'n' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "older-than", required_argument, NULL, OPT_OLDER_THAN },
	{ "json", required_argument, NULL, OPT_JSON },
	{ "folded", required_argument, NULL, OPT_FOLDED },
	{ "flamegraph", required_argument, NULL, OPT_FLAMEGRAPH },
	{ "speedscope", required_argument, NULL, OPT_SPEEDSCOPE },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "max-allocs", required_argument, NULL, OPT_MAX_ALLOCS },
	{ "max-stacks", required_argument, NULL, OPT_MAX_STACKS },
	{ "max-depth", required_argument, NULL, OPT_MAX_DEPTH },
	{ "sort", required_argument, NULL, OPT_SORT },
	{ "count-only", no_argument, NULL, OPT_COUNT_ONLY },
	{ "no-placement", no_argument, NULL, OPT_NO_PLACEMENT },
	{ "no-pystacks", no_argument, NULL, OPT_NO_PYSTACKS },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "all", no_argument, NULL, OPT_ALL },
	{ "match", required_argument, NULL, OPT_MATCH },
	{ "max-procs", required_argument, NULL, OPT_MAX_PROCS },
	{ 0 },
};

static int bad(const char *fmt, const char *arg)
{
	fputs("pymemleak: ", stderr);
	fprintf(stderr, fmt, arg);
	fputs(" (see pymemleak --help)\n", stderr);
	return PML_EXIT_USAGE;
}

static bool parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_seconds(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= lo && v <= hi))
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	struct pml_opts o = {
		.interval_s = 5,
		.top = 10,
		.sort = PML_SORT_AUTO,
		.max_allocs = 1u << 20,
		.max_stacks = 1u << 16,
		.max_depth = 64,
		.max_procs = 256,
	};
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "+p:d:i:n:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_ulong(optarg, 1, INT_MAX, &v))
				return bad("invalid pid '%s'", optarg);
			if (o.npids == PML_MAX_PIDS)
				return bad("too many -p options (at most %s)", "64");
			o.pids[o.npids++] = v;
			break;
		case 'd':
			if (!parse_seconds(optarg, 0.1, 1e7, &o.duration_s))
				return bad("invalid duration '%s' (seconds, e.g. 30 or 0.5)",
					   optarg);
			break;
		case 'i':
			if (!parse_seconds(optarg, 0.1, 1e7, &o.interval_s))
				return bad("invalid interval '%s' (seconds, at least 0.1)", optarg);
			break;
		case 'n':
			if (!parse_ulong(optarg, 1, 100000, &v))
				return bad("invalid --top '%s' (1-100000)", optarg);
			o.top = v;
			break;
		case 'q':
			o.quiet = true;
			break;
		case 'v':
			o.verbose++;
			break;
		case 'h':
			fputs(usage, stdout);
			return PML_EXIT_OK;
		case OPT_OLDER_THAN:
			if (!parse_seconds(optarg, 0, 1e7, &o.older_than_s))
				return bad("invalid --older-than '%s' (seconds)", optarg);
			break;
		case OPT_JSON:
		case OPT_FOLDED:
		case OPT_FLAMEGRAPH:
		case OPT_SPEEDSCOPE:
			if (!*optarg)
				return bad("empty output path%s", "");
			if (c == OPT_JSON)
				o.json_path = optarg;
			else if (c == OPT_FOLDED)
				o.folded_path = optarg;
			else if (c == OPT_FLAMEGRAPH)
				o.svg_path = optarg;
			else
				o.speedscope_path = optarg;
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_MAX_ALLOCS:
			if (!parse_ulong(optarg, 1024, 1u << 28, &v))
				return bad("invalid --max-allocs '%s' (1024-268435456)", optarg);
			o.max_allocs = v;
			break;
		case OPT_MAX_STACKS:
			if (!parse_ulong(optarg, 64, 1u << 22, &v))
				return bad("invalid --max-stacks '%s' (64-4194304)", optarg);
			o.max_stacks = v;
			break;
		case OPT_MAX_DEPTH:
			if (!parse_ulong(optarg, 1, 64, &v))
				return bad("invalid --max-depth '%s' (1-64)", optarg);
			o.max_depth = v;
			break;
		case OPT_SORT:
			if (!strcmp(optarg, "growth"))
				o.sort = PML_SORT_GROWTH;
			else if (!strcmp(optarg, "bytes"))
				o.sort = PML_SORT_BYTES;
			else if (!strcmp(optarg, "count"))
				o.sort = PML_SORT_COUNT;
			else
				return bad("invalid --sort '%s' (growth, bytes or count)", optarg);
			break;
		case OPT_COUNT_ONLY:
			o.count_only = true;
			break;
		case OPT_NO_PLACEMENT:
			o.no_placement = true;
			break;
		case OPT_NO_PYSTACKS:
			o.no_pystacks = true;
			break;
		case OPT_ALL:
			o.all = true;
			break;
		case OPT_MATCH:
			o.match = optarg;
			break;
		case OPT_MAX_PROCS:
			if (!parse_ulong(optarg, 1, 4096, &v))
				return bad("invalid --max-procs '%s' (1-4096)", optarg);
			o.max_procs = v;
			break;
		case OPT_VERSION:
			printf("pymemleak %s\n", PML_VERSION);
			return PML_EXIT_OK;
		default:
			fputs("Try 'pymemleak --help' for more information.\n", stderr);
			return PML_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		if (strcmp(argv[optind - 1], "--"))
			return bad("unexpected argument '%s' (a command goes after --)",
				   argv[optind]);
		o.argv = &argv[optind];
	} else if (optind > 0 && !strcmp(argv[optind - 1], "--")) {
		return bad("no command after --%s", "");
	}
	if (!o.npids && !o.argv && !o.all)
		return bad("nothing to trace: give -p PID, --all, or -- COMMAND%s", "");
	if ((o.npids > 0) + (o.argv != NULL) + o.all > 1)
		return bad("give one of -p PID, --all, or -- COMMAND%s", "");
	if (o.match && !o.all)
		return bad("--match goes with --all%s", "");
	return session__run(&o);
}
