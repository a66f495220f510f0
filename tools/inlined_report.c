/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Report on the inlined pymalloc guard sites of a static LTO python binary:
 * sites per kind, how many the analysis handles and why not, and, with
 * --run, what fraction of the calls of a real run the handled sites cover.
 * The run counts hits with one uprobe perf counter per site (perf_event_open
 * on the "uprobe" PMU: no BPF, no tracefs) on a child that is started
 * stopped, so only its own calls count. Developer tool, built by hand (root
 * for --run):
 *
 *   cc -O2 -Wall -Wextra -Iuser -I/usr/include/capstone tools/inlined_report.c \
 *      user/inlined.c user/elf.c -lcapstone -o build/inlined_report
 *   build/inlined_report [-v] [BINARY]
 *   build/inlined_report --run BINARY script.py [args...]
 *   build/inlined_report --dump LO HI BINARY      (bytes as C, for fixtures)
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "elf.h"
#include "inlined.h"

static const struct {
	const char *name;
	enum pml_inl_kind kind;
} publics[] = {
	{ "PyObject_Malloc", PML_INL_MALLOC },	 { "PyMem_Malloc", PML_INL_MALLOC },
	{ "PyObject_Calloc", PML_INL_CALLOC },	 { "PyMem_Calloc", PML_INL_CALLOC },
	{ "PyObject_Realloc", PML_INL_REALLOC }, { "PyMem_Realloc", PML_INL_REALLOC },
	{ "PyObject_Free", PML_INL_FREE },	 { "PyMem_Free", PML_INL_FREE },
};
#define NPUBLICS (sizeof(publics) / sizeof(publics[0]))

#define MAX_REASONS 64

struct reason {
	char text[96];
	size_t count[PML_INL_KINDS];
};

/* Reason text without the addresses, so that like reasons group together. */
static void reason_key(const char *why, char *key, size_t len)
{
	size_t o = 0;

	for (; *why && o + 1 < len; why++) {
		if (why[0] == '0' && why[1] == 'x') {
			key[o++] = '#';
			why += 2;
			while (why[0] && ((why[0] >= '0' && why[0] <= '9') ||
					  (why[0] >= 'a' && why[0] <= 'f')))
				why++;
			why--;
			continue;
		}
		if (*why >= '0' && *why <= '9') {
			key[o++] = 'N';
			while (why[1] >= '0' && why[1] <= '9')
				why++;
			continue;
		}
		key[o++] = *why;
	}
	key[o] = '\0';
}

static void print_reasons(const struct pml_inl_plan *plan)
{
	static struct reason reasons[MAX_REASONS];
	size_t nr = 0, i, r;
	int k;

	for (i = 0; i < plan->n; i++) {
		char key[96];

		if (plan->sites[i].handled)
			continue;
		reason_key(plan->sites[i].why, key, sizeof(key));
		for (r = 0; r < nr; r++) {
			if (!strcmp(reasons[r].text, key))
				break;
		}
		if (r == nr) {
			if (nr == MAX_REASONS)
				continue;
			snprintf(reasons[nr].text, sizeof(reasons[nr].text), "%s", key);
			nr++;
		}
		reasons[r].count[plan->sites[i].kind]++;
	}
	printf("\nunhandled, by reason (malloc calloc realloc free):\n");
	for (r = 0; r < nr; r++) {
		printf(" ");
		for (k = 0; k < PML_INL_KINDS; k++)
			printf(" %4zu", reasons[r].count[k]);
		printf("  %s\n", reasons[r].text);
	}
}

static void print_site(const struct pml_elf *e, const struct pml_inl_site *s)
{
	struct pml_elf_sym sym;
	char where[64] = "?", loc[32];
	int i;

	if (!elf__sym_at(e, s->guard, &sym))
		snprintf(where, sizeof(where), "%s+%#" PRIx64, sym.name, s->guard - sym.value);
	printf("%-7s guard %#" PRIx64 " probe %#" PRIx64 "%s", inlined__kind_name(s->kind),
	       s->guard, s->probe, s->probe_emulated ? "" : "(ss)");
	if (s->handled) {
		printf(" args");
		for (i = 0; i < inlined__nargs(s->kind); i++)
			printf(" %s", inlined__loc_format(&s->arg[i], loc, sizeof(loc)));
		for (i = 0; i < (int)s->n_exits; i++) {
			const struct pml_inl_exit *x = &s->exits[i];

			printf(" exit %#" PRIx64 "%s %s", x->addr, x->emulated ? "" : "(ss)",
			       inlined__loc_format(&x->result, loc, sizeof(loc)));
			if (x->is_return)
				printf(" (ret, sp%+d)", x->sp_delta);
			else if (x->join != x->addr)
				printf(" (join %#" PRIx64 ")", x->join);
		}
	} else {
		printf(" UNHANDLED: %s", s->why);
	}
	printf("  [%s]\n", where);
}

/* The perf PMU type of uprobes, or -1. */
static int uprobe_pmu_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "r");
	int type = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &type) != 1)
		type = -1;
	fclose(f);
	return type;
}

/* A counting uprobe at file offset `off` of `path` for `pid`, enabled at its exec. */
static int uprobe_counter(int type, const char *path, uint64_t off, pid_t pid)
{
	struct perf_event_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.size = sizeof(attr);
	attr.type = (uint32_t)type;
	attr.config1 = (uint64_t)(uintptr_t)path; /* uprobe_path */
	attr.config2 = off;			  /* probe_offset */
	attr.disabled = 1;
	attr.enable_on_exec = 1;
	attr.inherit = 1; /* threads too */
	return (int)syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
}

static uint64_t counter_read(int fd)
{
	uint64_t v = 0;

	if (fd < 0 || read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/*
 * Run argv under counters on every site's entry probe and on the internal
 * functions' entries, and weigh the plan with the hits. Every guard's
 * inlined arm runs under the default allocator, so an entry hit is a call.
 */
static int run_measure(const char *bin, const struct pml_elf *e, const struct pml_inl_plan *plan,
		       char **argv)
{
	uint64_t site_hits[PML_INL_KINDS] = { 0 }, handled_hits[PML_INL_KINDS] = { 0 };
	uint64_t fn_hits[PML_INL_KINDS] = { 0 };
	int type = uprobe_pmu_type(), *fds, fn_fds[PML_INL_KINDS], go[2], status = 0, k;
	char byte = 'x';
	size_t i;
	pid_t pid;

	if (type < 0) {
		fprintf(stderr, "inlined_report: no uprobe perf PMU (is this Linux >= 4.17?)\n");
		return -ENOTSUP;
	}
	fds = calloc(plan->n ? plan->n : 1, sizeof(*fds));
	if (!fds || pipe(go)) {
		free(fds);
		return -errno;
	}
	pid = fork();
	if (pid < 0) {
		free(fds);
		return -errno;
	}
	if (!pid) {
		close(go[1]);
		if (read(go[0], &byte, 1) != 1)
			_exit(126);
		execv(bin, argv);
		_exit(127);
	}
	close(go[0]);
	for (i = 0; i < plan->n; i++) {
		uint64_t off;

		fds[i] = -1;
		if (plan->sites[i].probe && !elf__vaddr_to_offset(e, plan->sites[i].probe, &off))
			fds[i] = uprobe_counter(type, bin, off, pid);
		if (plan->sites[i].probe && fds[i] < 0)
			fprintf(stderr, "inlined_report: no counter at %#" PRIx64 ": %s\n",
				plan->sites[i].probe, strerror(errno));
	}
	for (k = 0; k < PML_INL_KINDS; k++) {
		uint64_t off;

		fn_fds[k] = -1;
		if (plan->fns.addr[k] && !elf__vaddr_to_offset(e, plan->fns.addr[k], &off))
			fn_fds[k] = uprobe_counter(type, bin, off, pid);
	}
	if (write(go[1], &byte, 1) != 1)
		kill(pid, SIGKILL);
	close(go[1]);
	waitpid(pid, &status, 0);

	for (i = 0; i < plan->n; i++) {
		uint64_t v = counter_read(fds[i]);

		site_hits[plan->sites[i].kind] += v;
		if (plan->sites[i].handled)
			handled_hits[plan->sites[i].kind] += v;
		if (fds[i] >= 0)
			close(fds[i]);
	}
	for (k = 0; k < PML_INL_KINDS; k++) {
		fn_hits[k] = counter_read(fn_fds[k]);
		if (fn_fds[k] >= 0)
			close(fn_fds[k]);
	}
	free(fds);

	printf("\ncalls in the run (exit status %d):\n",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	printf("  kind     at sites  handled   internal  sites handled  with internal entry\n");
	for (k = 0; k < PML_INL_KINDS; k++) {
		uint64_t all = site_hits[k] + fn_hits[k];

		printf("  %-7s %9" PRIu64 " %8" PRIu64 " %10" PRIu64 "  %12.2f%%  %18.2f%%\n",
		       inlined__kind_name(k), site_hits[k], handled_hits[k], fn_hits[k],
		       site_hits[k] ? 100.0 * (double)handled_hits[k] / (double)site_hits[k] : 0.0,
		       all ? 100.0 * (double)(handled_hits[k] + fn_hits[k]) / (double)all : 0.0);
	}
	return 0;
}

static int dump_range(const struct pml_elf *e, uint64_t lo, uint64_t hi)
{
	size_t len = hi > lo ? hi - lo : 0, i;
	const uint8_t *p = elf__bytes_at(e, lo, &len);

	if (!p || len != hi - lo)
		return -ENOENT;
	printf("/* %#" PRIx64 "..%#" PRIx64 " */\n", lo, hi);
	for (i = 0; i < len; i++)
		printf("%s0x%02x,%s", i % 12 ? " " : "\t", p[i],
		       i % 12 == 11 || i + 1 == len ? "\n" : "");
	return 0;
}

int main(int argc, char **argv)
{
	const char *bin = "/usr/bin/python3.11";
	char **run_argv = NULL;
	struct pml_inl_public pubs[NPUBLICS];
	uint64_t text_vaddr, dump_lo = 0, dump_hi = 0;
	struct pml_inl_code code;
	struct pml_inl_text text = { &code, 1 };
	struct pml_inl_fns fns;
	struct pml_inl_plan *plan;
	const uint8_t *text_bytes;
	size_t text_len, npubs = 0, i;
	struct pml_elf *e;
	int verbose = 0, err, k, a;

	for (a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "-v"))
			verbose = 1;
		else if (!strcmp(argv[a], "--run") && a + 1 < argc) {
			bin = argv[a + 1];
			run_argv = &argv[a + 1];
			break;
		} else if (!strcmp(argv[a], "--dump") && a + 2 < argc) {
			dump_lo = strtoull(argv[++a], NULL, 0);
			dump_hi = strtoull(argv[++a], NULL, 0);
		} else if (argv[a][0] != '-')
			bin = argv[a];
		else {
			fprintf(stderr,
				"usage: %s [-v] [--dump LO HI] [BINARY]\n"
				"       %s [-v] --run BINARY [ARGS...]\n",
				argv[0], argv[0]);
			return 1;
		}
	}

	e = elf__open_file(bin);
	if (!e) {
		fprintf(stderr, "inlined_report: cannot open %s: %s\n", bin, strerror(errno));
		return 2;
	}
	if (dump_hi) {
		err = dump_range(e, dump_lo, dump_hi);
		elf__close(e);
		return err ? 2 : 0;
	}
	if (elf__text(e, &text_vaddr, &text_bytes, &text_len)) {
		fprintf(stderr, "inlined_report: %s has no .text\n", bin);
		elf__close(e);
		return 2;
	}
	code.vaddr = text_vaddr;
	code.bytes = text_bytes;
	code.len = text_len;

	for (i = 0; i < NPUBLICS; i++) {
		struct pml_elf_sym sym;

		if (elf__find_dynsym(e, publics[i].name, &sym))
			continue;
		pubs[npubs].kind = publics[i].kind;
		pubs[npubs].addr = sym.value;
		npubs++;
	}
	err = inlined__find_fns(&text, pubs, npubs, &fns);
	if (err) {
		fprintf(stderr, "inlined_report: no inlined allocator guards in %s: %s\n", bin,
			strerror(-err));
		elf__close(e);
		return 2;
	}
	printf("%s: .text %#" PRIx64 " +%#zx\ninternal functions:", bin, text_vaddr, text_len);
	for (k = 0; k < PML_INL_KINDS; k++)
		printf(" %s=%#" PRIx64, inlined__kind_name(k), fns.addr[k]);
	printf("\n");

	plan = inlined__plan(&text, &fns);
	if (!plan) {
		fprintf(stderr, "inlined_report: analysis failed: %s\n", strerror(errno));
		elf__close(e);
		return 2;
	}
	printf("\nguard sites:  kind     sites  handled\n");
	for (k = 0; k < PML_INL_KINDS; k++)
		printf("              %-7s %6zu %8zu\n", inlined__kind_name(k), plan->n_kind[k],
		       plan->n_handled[k]);
	{
		size_t ss_entry = 0, ss_exit = 0, handled_alloc = 0;

		for (i = 0; i < plan->n; i++) {
			const struct pml_inl_site *s = &plan->sites[i];

			if (!s->handled)
				continue;
			ss_entry += !s->probe_emulated;
			for (k = 0; k < (int)s->n_exits; k++) {
				handled_alloc++;
				ss_exit += !s->exits[k].emulated;
			}
		}
		printf("handled: %zu entry probes single-stepped; %zu of %zu exits single-stepped\n",
		       ss_entry, ss_exit, handled_alloc);
	}
	print_reasons(plan);
	if (verbose) {
		printf("\n");
		for (i = 0; i < plan->n; i++)
			print_site(e, &plan->sites[i]);
	}
	if (run_argv) {
		err = run_measure(bin, e, plan, run_argv);
		if (err)
			fprintf(stderr, "inlined_report: cannot run %s: %s\n", bin, strerror(-err));
	}
	inlined__plan_free(plan);
	elf__close(e);
	return 0;
}
