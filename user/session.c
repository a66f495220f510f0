// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caps.h"
#include "export_json.h"
#include "launch.h"
#include "natsym.h"
#include "pyoffsets.h"
#include "report.h"
#include "session.h"
#include "symbolize.h"
#include "target.h"
#include "tracer.h"

#define TICK_MS 200
#define EPOCH_SHIFT 30	/* ~1.07 s epochs: the age resolution */

struct tgt {
	struct pml_target t;
	int pidfd;
	bool exited;
	bool launched;
	double exit_s;
};

struct session {
	const struct pml_opts *o;
	struct pml_tracer *tr;
	struct pml_natsym *ns;
	struct pml_symbolizer *sy;
	struct pml_agg *agg;
	struct tgt tg[PML_MAX_PIDS];
	size_t n;
	FILE *json;
	uint64_t start_ns;
	int sigfd;
	bool attached;
	bool env_malloc;	/* launched with PYTHONMALLOC=malloc by us */
};

static void p_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void p_err(const char *fmt, ...)
{
	va_list ap;

	fputs("pymemleak: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static double since_start(const struct session *s)
{
	return (now_ns() - s->start_ns) / 1e9;
}

/* Create an output file without following a symlink at its name, and
 * without clobbering unless --force. Returns a stream or NULL (reported). */
static FILE *open_output(const char *path, bool force)
{
	int fd, flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC;
	struct stat st;
	FILE *f;

	flags |= force ? O_TRUNC : O_EXCL;
	fd = open(path, flags, 0644);
	if (fd < 0) {
		if (errno == EEXIST)
			p_err("cannot write %s: file exists (use --force to overwrite)", path);
		else if (errno == ELOOP)
			p_err("cannot write %s: it is a symbolic link (refusing to follow it)", path);
		else
			p_err("cannot write %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		p_err("cannot write %s: not a regular file", path);
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		p_err("cannot write %s: %s", path, strerror(errno));
		close(fd);
	}
	return f;
}

static int exit_code_for(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
	case -EOPNOTSUPP:
		return PML_EXIT_PRIV;
	default:
		return PML_EXIT_TARGET;
	}
}

static void print_plan(const struct pml_target *t)
{
	size_t i;

	fprintf(stderr, "pymemleak: pid %d: %s\n", t->pid, t->pybin);
	for (i = 0; i < t->nprobes; i++) {
		const struct pml_probe *p = &t->probes[i];

		fprintf(stderr, "  %-6s %-18s +%-3u %-24s %-10s %s\n",
			p->layer == LAYER_RAW ? "raw" : "object", p->symbol, p->site, p->insn,
			p->emulated ? "emulated" : "stepped", p->why);
	}
}

/* Per-process facts for BPF: the frame walk, when we know this version. */
static void fill_proc(struct session *s, const struct pml_target *t, struct pml_proc *p)
{
	struct pml_pytypes types = {
		.code_type = t->code_type,
		.str_type = t->str_type,
		.bytes_type = t->bytes_type,
	};
	struct pml_pylayout lay;

	memset(p, 0, sizeof(*p));
	if (symbolizer__add_proc(s->sy, t->pid, t->major, t->minor, t->runtime_addr, &types, &lay))
		return;
	if (s->o->no_pystacks || !t->runtime_addr)
		return;
	p->off = lay.walk;
	p->off.runtime_addr = t->runtime_addr;
	if (p->off.tstate_chain_len)
		p->flags |= PML_PROC_PYSTACKS;
}

/* Inspect and attach one process; prints the error. Returns 0 or -errno. */
static int attach_target(struct session *s, struct tgt *g, int pid)
{
	struct pml_target_opts to = {
		.count_only = s->o->count_only,
		.no_placement = s->o->no_placement,
	};
	struct pml_proc proc;
	char why[512];
	size_t i;
	int err;

	err = target__inspect(pid, &to, &g->t, why, sizeof(why));
	if (err) {
		p_err("cannot trace pid %d: %s", pid, why);
		return err;
	}
	fill_proc(s, &g->t, &proc);
	err = tracer__add_proc(s->tr, pid, &proc);
	if (err) {
		p_err("cannot trace pid %d: process map full (%s)", pid, strerror(-err));
		return err;
	}
	if (s->o->verbose)
		print_plan(&g->t);
	for (i = 0; i < g->t.nprobes; i++) {
		const struct pml_probe *p = &g->t.probes[i];
		const char *path = p->libc ? g->t.libc_open : g->t.pybin_open;

		err = tracer__attach(s->tr, p->prog, pid, path, p->offset, p->ret, p->layer);
		if (err) {
			p_err("cannot attach to pid %d: uprobe on %s in %s failed: %s%s", pid,
			      p->symbol, path, strerror(-err),
			      err == -EPERM || err == -EACCES ? " (needs CAP_BPF and CAP_PERFMON)" : "");
			return err;
		}
	}
	g->pidfd = syscall(SYS_pidfd_open, pid, 0);
	return 0;
}

struct launch_ctx {
	struct session *s;
	struct tgt *g;
};

static int launch_ready(pid_t pid, void *ctx, char *err, size_t errlen)
{
	struct launch_ctx *lc = ctx;
	struct pml_target_opts to = { .count_only = lc->s->o->count_only };
	struct pml_target probe;
	int r;

	r = target__inspect(pid, &to, &probe, err, errlen);
	if (r == -ENOEXEC || r == -ENOENT || r == -ESRCH)
		return -EAGAIN;	/* not (yet) the interpreter, or libc not mapped yet */
	if (r)
		return r;
	r = attach_target(lc->s, lc->g, pid);
	if (r) {
		snprintf(err, errlen, "cannot attach to the command (pid %d)", pid);
		return r;
	}
	return 0;
}

/* Symbolize one stack into the aggregator, once. */
static void symbolize_stack(struct session *s, uint32_t pid, uint64_t stack_id)
{
	struct pml_stackinfo info = { 0 };
	struct pml_stack st;
	char native[512];

	if (tracer__stack(s->tr, pid, stack_id, &st)) {
		/* Interned stack lost (map full): show the id only. */
		return;
	}
	natsym__format(s->ns, pid, st.native_ip, native, sizeof(native));
	info.native = native;
	info.flags = st.flags;
	symbolizer__frames(s->sy, pid, &st, &info);
	agg__set_stack(s->agg, pid, stack_id, &info);
	symbolizer__release(&info);
}

static void on_new_stack(uint32_t pid, uint64_t stack_id, void *ctx)
{
	struct session *s = ctx;

	if (!agg__has_stack(s->agg, pid, stack_id))
		symbolize_stack(s, pid, stack_id);
}

struct drain_ctx {
	struct session *s;
	uint64_t older_than_ns;
};

static int on_outstanding(const struct pml_outstanding_key *k, const struct pml_outstanding *v,
			  void *ctx)
{
	struct drain_ctx *dc = ctx;
	struct session *s = dc->s;
	int err;

	err = agg__add(s->agg, k->pid, k->stack_id, (uint64_t)k->epoch << EPOCH_SHIFT, v->bytes,
		       v->count, dc->older_than_ns);
	if (err)
		return err;
	if (v->count > 0 && !agg__has_stack(s->agg, k->pid, k->stack_id))
		symbolize_stack(s, k->pid, k->stack_id);
	return 0;
}

static void snapshot(struct session *s)
{
	struct drain_ctx dc = { .s = s, .older_than_ns = s->o->older_than_s * 1e9 };
	uint64_t now = now_ns();

	agg__begin(s->agg, now);
	tracer__drain(s->tr, on_outstanding, &dc);
	/* Past epochs that emptied can never fill again. */
	tracer__trim(s->tr, (uint32_t)(now >> EPOCH_SHIFT) - 1);
}

static void fill_procinfo(struct session *s, struct pml_procinfo *pi, size_t *n)
{
	uint64_t stats[STAT__MAX];
	size_t i, j, emu;

	*n = 0;
	for (i = 0; i < s->n; i++) {
		struct tgt *g = &s->tg[i];
		struct pml_procinfo *p = &pi[(*n)++];

		tracer__stats(s->tr, g->t.pid, stats);
		memset(p, 0, sizeof(*p));
		p->pid = g->t.pid;
		snprintf(p->cmdline, sizeof(p->cmdline), "%s", g->t.cmdline);
		snprintf(p->python, sizeof(p->python), "%s", g->t.version);
		snprintf(p->build, sizeof(p->build), "%s", g->t.build_desc);
		for (j = emu = 0; j < g->t.nprobes; j++)
			emu += g->t.probes[j].emulated;
		snprintf(p->probes, sizeof(p->probes),
			 "%zu probes (%s allocator, %s object layer, libc raw layer), %zu at "
			 "emulated sites%s",
			 g->t.nprobes, target__allocator_name(g->t.allocator),
			 g->t.allocator == PML_ALLOC_MALLOC ? "no"
			 : g->t.internal_obj		    ? "pymalloc internal"
							    : "public",
			 emu, s->env_malloc && g->launched ? "; started with PYTHONMALLOC=malloc" : "");
		p->exited = g->exited;
		p->cov.complete = g->t.complete;
		snprintf(p->cov.reason, sizeof(p->cov.reason), "%s", g->t.coverage);
		/* Measured, not assumed: an address handed out again before we saw
		 * its free means frees bypass the probes. */
		if (stats[STAT_REPLACED] * 100 > stats[STAT_ALLOCS] && stats[STAT_ALLOCS] > 1000) {
			char measured[160];

			snprintf(measured, sizeof(measured),
				 "; measured: %.1f%% of allocations were reused before their free "
				 "was seen",
				 100.0 * stats[STAT_REPLACED] / stats[STAT_ALLOCS]);
			if (p->cov.complete) {
				p->cov.complete = false;
				snprintf(p->cov.reason, sizeof(p->cov.reason), "frees are being missed%s",
					 measured);
			} else {
				size_t len = strlen(p->cov.reason);

				snprintf(p->cov.reason + len, sizeof(p->cov.reason) - len, "%s",
					 measured);
			}
		}
		if (stats[STAT_LIVE_FULL] || stats[STAT_OUTSTANDING_FULL]) {
			p->cov.complete = false;
			snprintf(p->cov.reason, sizeof(p->cov.reason),
				 "%llu allocations not tracked: maps full (raise --max-allocs / "
				 "--max-stacks)",
				 (unsigned long long)(stats[STAT_LIVE_FULL] +
						      stats[STAT_OUTSTANDING_FULL]));
		}
		for (j = 0; j < STAT__MAX && j < PML_STAT_NAMES_MAX; j++)
			p->stats[j] = stats[j];
		p->nstats = STAT__MAX;
		p->sym_failures = symbolizer__failures(s->sy, g->t.pid);
	}
}

static const char *const *stat_names(void)
{
	static const char *names[STAT__MAX];
	unsigned int i;

	for (i = 0; i < STAT__MAX; i++)
		names[i] = tracer__stat_name(i);
	return names;
}

static void report(struct session *s, bool final)
{
	struct pml_procinfo *pi = calloc(PML_MAX_PIDS, sizeof(*pi));
	size_t n;

	if (!pi)
		return;
	snapshot(s);
	fill_procinfo(s, pi, &n);
	printf("\n%s report at %.1f s\n", final ? "final" : "periodic", since_start(s));
	report__text(stdout, s->agg, pi, n, now_ns(), since_start(s), s->o->top, s->o->sort,
		     stat_names());
	fflush(stdout);
	if (final && s->json) {
		if (export_json__write(s->json, s->agg, pi, n, now_ns(), since_start(s), s->o->top,
				       s->o->sort, stat_names()) ||
		    fflush(s->json))
			p_err("cannot write %s: %s", s->o->json_path, strerror(errno));
	}
	free(pi);
}

static int setup_signals(struct session *s)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	s->sigfd = signalfd(-1, &set, SFD_CLOEXEC);
	return s->sigfd < 0 ? -errno : 0;
}

/* Wait for the end: signal, duration, all targets gone. Reports every interval. */
static int trace_loop(struct session *s)
{
	struct pollfd fds[PML_MAX_PIDS + 2];
	uint64_t next = s->start_ns + s->o->interval_s * 1e9;
	uint64_t end = s->o->duration_s > 0 ? s->start_ns + s->o->duration_s * 1e9 : 0;
	size_t i, live;
	int nf, r;

	for (;;) {
		uint64_t now = now_ns();
		int timeout = TICK_MS;

		if (end && now >= end)
			return 0;
		if (now >= next) {
			/* Every interval feeds the growth series, printed or not. */
			if (s->o->quiet)
				snapshot(s);
			else
				report(s, false);
			next += s->o->interval_s * 1e9;
		}
		fds[0] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		for (i = 0, nf = 1; i < s->n; i++)
			fds[nf++] = (struct pollfd){ .fd = s->tg[i].exited ? -1 : s->tg[i].pidfd,
						     .events = POLLIN };
		fds[nf++] = (struct pollfd){ .fd = tracer__events_fd(s->tr), .events = POLLIN };
		r = poll(fds, nf, timeout);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(s->sigfd, &si, sizeof(si)) == sizeof(si))
				fprintf(stderr, "\npymemleak: %s, detaching\n",
					si.ssi_signo == SIGINT ? "interrupted" : "terminated");
			return 0;
		}
		for (i = 0, live = 0; i < s->n; i++) {
			struct tgt *g = &s->tg[i];

			if (!g->exited && g->pidfd >= 0 && (fds[i + 1].revents & POLLIN)) {
				g->exited = true;
				g->exit_s = since_start(s);
				if (g->launched)
					waitpid(g->t.pid, NULL, WNOHANG);
				if (!g->launched)
					p_err("pid %d exited during the trace (after %.1f s); reporting "
					      "what was seen",
					      g->t.pid, g->exit_s);
			}
			live += !g->exited;
		}
		if (!live)
			return 0;
		tracer__new_stacks(s->tr, on_new_stack, s);
	}
}

static void stop_launched(struct session *s)
{
	size_t i;
	int k;

	for (i = 0; i < s->n; i++) {
		struct tgt *g = &s->tg[i];

		if (!g->launched || g->exited)
			continue;
		kill(g->t.pid, SIGTERM);
		for (k = 0; k < 20 && waitpid(g->t.pid, NULL, WNOHANG) == 0; k++)
			usleep(100000);
		if (k == 20) {
			kill(g->t.pid, SIGKILL);
			waitpid(g->t.pid, NULL, 0);
		}
	}
}

int session__run(const struct pml_opts *o)
{
	struct pml_tracer_opts topts = {
		.max_allocs = o->max_allocs,
		.max_stacks = o->max_stacks,
		.max_outstanding = o->max_stacks * 4,
		.max_procs = 1024,
		.max_depth = o->max_depth,
		.epoch_shift = EPOCH_SHIFT,
	};
	struct session s = { .o = o, .sigfd = -1 };
	char why[512], resolved[PML_PATH_MAX];
	int rc = PML_EXIT_OK, err, all_exited;
	size_t i;

	err = caps__check(why, sizeof(why));
	if (err) {
		p_err("missing %s (run as root, or grant them to the binary with setcap)", why);
		return PML_EXIT_PRIV;
	}
	if (o->json_path) {
		s.json = open_output(o->json_path, o->force);
		if (!s.json)
			return PML_EXIT_USAGE;
	}
	s.ns = natsym__new();
	s.sy = symbolizer__new();
	s.agg = agg__new();
	if (!s.ns || !s.sy || !s.agg) {
		p_err("out of memory");
		rc = PML_EXIT_TARGET;
		goto out;
	}
	if (setup_signals(&s)) {
		p_err("cannot set up signal handling: %s", strerror(errno));
		rc = PML_EXIT_PRIV;
		goto out;
	}
	s.tr = tracer__open(&topts, why, sizeof(why));
	if (!s.tr) {
		p_err("%s (needs root, or CAP_BPF and CAP_PERFMON, and a kernel with BPF uprobes)",
		      why);
		rc = PML_EXIT_PRIV;
		goto out;
	}

	for (i = 0; i < o->npids; i++) {
		struct tgt *g = &s.tg[s.n];

		g->pidfd = -1;
		err = attach_target(&s, g, o->pids[i]);
		if (err) {
			rc = exit_code_for(err);
			goto out;
		}
		s.n++;
		fprintf(stderr,
			"pymemleak: tracing pid %d (CPython %s, %s) with %zu probes; Ctrl-C to stop\n",
			g->t.pid, g->t.version, g->t.build_desc, g->t.nprobes);
	}
	if (o->argv) {
		struct tgt *g = &s.tg[s.n];
		struct launch_ctx lc = { .s = &s, .g = g };
		const char *env = NULL;
		pid_t child;

		g->pidfd = -1;
		if (!getenv("PYTHONMALLOC") &&
		    launch__needs_libc_malloc(o->argv[0], resolved, sizeof(resolved))) {
			env = "PYTHONMALLOC=malloc";
			s.env_malloc = true;
			fprintf(stderr,
				"pymemleak: %s is a static build with its allocator inlined: starting "
				"it with PYTHONMALLOC=malloc so that every allocation is seen\n",
				resolved);
		}
		err = launch__start(o->argv, env, launch_ready, &lc, &child, why, sizeof(why));
		if (err) {
			p_err("%s", why);
			rc = exit_code_for(err);
			goto out;
		}
		g->launched = true;
		s.n++;
		fprintf(stderr, "pymemleak: started pid %d (CPython %s, %s) with %zu probes\n",
			g->t.pid, g->t.version, g->t.build_desc, g->t.nprobes);
	}
	s.attached = true;
	s.start_ns = now_ns();

	err = caps__drop();
	if (err && o->verbose)
		p_err("warning: cannot drop capabilities: %s", strerror(-err));

	err = trace_loop(&s);
	report(&s, true);
	stop_launched(&s);

	for (i = 0, all_exited = s.n > 0; i < s.n; i++)
		all_exited &= s.tg[i].exited && !s.tg[i].launched;
	if (all_exited)
		rc = PML_EXIT_TARGET;
out:
	tracer__destroy(s.tr);
	if (!s.attached)
		stop_launched(&s);
	for (i = 0; i < s.n; i++)
		if (s.tg[i].pidfd >= 0)
			close(s.tg[i].pidfd);
	if (s.sigfd >= 0)
		close(s.sigfd);
	if (s.json)
		fclose(s.json);
	agg__free(s.agg);
	symbolizer__free(s.sy);
	natsym__free(s.ns);
	return rc;
}
