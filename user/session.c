// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <regex.h>
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
#include "classify.h"
#include "export_folded.h"
#include "export_json.h"
#include "export_speedscope.h"
#include "export_svg.h"
#include "launch.h"
#include "natsym.h"
#include "pyoffsets.h"
#include "report.h"
#include "scan.h"
#include "session.h"
#include "symbolize.h"
#include "target.h"
#include "tracer.h"

#define TICK_MS		  200
#define EPOCH_SHIFT	  30		/* ~1.07 s epochs: the age resolution */
#define SCAN_EVERY_NS	  1000000000ull /* --all: rescan /proc at least this often */
#define EXEC_RECHECK_NS	  3000000000ull /* --all: watch a fresh exec this long */
#define LINGER_SNAPSHOTS  3  /* --all: keep an ended process's figures this many intervals */
#define SUMMARY_TOP_PROCS 5  /* --all: processes whose stacks are printed */
#define ENDED_KEEP	  64 /* --all: ended processes remembered after their data is freed */

enum tgt_state {
	T_LIVE = 0,
	T_EXITED, /* the process is gone */
	T_EXECED, /* it replaced its image: what we traced is gone */
};

struct tgt {
	struct pml_target t;
	uint64_t starttime; /* (pid, starttime) is the identity: pids are reused */
	int pidfd;
	enum tgt_state state;
	bool launched;
	bool purged; /* maps, symbols and rows freed; only the summary is left */
	double end_s;
	unsigned int linger; /* snapshots since it ended */
	uint64_t last_bytes, last_count;
	uint64_t last_stats[STAT__MAX]; /* counters when its data was freed */
	uint64_t last_sym_failures;
};

/* A binary whose interpreter probes are attached once for every process. */
struct shared_bin {
	uint64_t dev, ino;
};

/* --all: a pid to look at again soon (it just exec'd). */
struct pending {
	int pid;
	uint64_t until_ns;
};

/* --all: a (pid, starttime) known not to be a traceable Python. */
struct notpy {
	int pid;
	uint64_t starttime;
};

struct session {
	const struct pml_opts *o;
	struct pml_tracer *tr;
	struct pml_natsym *ns;
	struct pml_symbolizer *sy;
	struct pml_classifier *cl;
	struct pml_agg *agg;
	struct tgt *tg;
	size_t n, cap;
	struct shared_bin *shared;
	size_t nshared;
	struct pending *pend;
	size_t npend;
	struct notpy *notpy;
	size_t nnotpy, capnotpy;
	regex_t match;
	bool has_match;
	uint64_t next_scan;
	uint64_t over_limit;  /* Python processes not traced: --max-procs */
	uint32_t next_cookie; /* keys of the BPF `inl` map */
	FILE *json, *folded, *svg, *speedscope;
	uint64_t start_ns;
	int sigfd;
	bool attached;
	bool env_malloc; /* launched with PYTHONMALLOC=malloc by us */
	bool export_failed;
	bool kernel_err; /* the last attach failed in the kernel, not the target */
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
			p_err("cannot write %s: it is a symbolic link (refusing to follow it)",
			      path);
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

/*
 * Exit status of a failed attach: what the target is (no such process, not
 * Python, unsupported version: 2), or what the kernel refused (3). A target
 * that vanished while we attached is still a target problem.
 */
/* Nothing was traced: do not leave empty output files behind. */
static void remove_outputs(struct session *s)
{
	const char *paths[] = { s->o->json_path, s->o->folded_path, s->o->svg_path,
				s->o->speedscope_path };
	FILE *files[] = { s->json, s->folded, s->svg, s->speedscope };
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (files[i] && paths[i])
			unlink(paths[i]);
}

static int exit_code_for(int err, bool kernel)
{
	if (!kernel || err == -ESRCH || err == -ENOENT)
		return PML_EXIT_TARGET;
	return PML_EXIT_PRIV;
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
	if (t->inl_sites)
		fprintf(stderr, "  inlined allocator: %zu guard sites, %zu handled, %zu probes\n",
			t->inl_sites, t->inl_handled, t->ninl);
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
	if (t->type_type)
		classify__add_proc(s->cl, t->pid, &lay, t->type_type);
	if (s->o->no_pystacks || !t->runtime_addr)
		return;
	p->off = lay.walk;
	p->off.runtime_addr = t->runtime_addr;
	if (p->off.tstate_chain_len)
		p->flags |= PML_PROC_PYSTACKS;
}

/* Has this binary had its interpreter probes attached for every process? */
static bool shared_attached(struct session *s, const struct stat *st)
{
	size_t i;

	for (i = 0; i < s->nshared; i++)
		if (s->shared[i].dev == st->st_dev && s->shared[i].ino == st->st_ino)
			return true;
	return false;
}

/* Probes on the inlined allocator sites of a static LTO build: two
 * uprobe_multi links, one for the entries and one for the exits. */
static int attach_inlined(struct session *s, struct tgt *g, int pid, char *why, size_t whylen)
{
	const struct pml_target *t = &g->t;
	uint64_t *offs[2], *cookies[2];
	size_t i, n[2] = { 0, 0 };
	uint32_t *cookie;
	int err = -ENOMEM, k;

	cookie = calloc(t->ninl, sizeof(*cookie));
	for (k = 0; k < 2; k++) {
		offs[k] = calloc(t->ninl, sizeof(uint64_t));
		cookies[k] = calloc(t->ninl, sizeof(uint64_t));
	}
	if (!cookie || !offs[0] || !offs[1] || !cookies[0] || !cookies[1])
		goto out;
	for (i = 0; i < t->ninl; i++) {
		const struct pml_inl_probe *p = &t->inl[i];
		struct pml_inl_cfg cfg = p->cfg;

		cookie[i] = ++s->next_cookie;
		if (p->exit)
			cfg.site = cookie[p->site];
		err = tracer__set_inl(s->tr, cookie[i], &cfg);
		if (err) {
			snprintf(why, whylen, "inlined site map full (%s)", strerror(-err));
			goto out;
		}
		k = p->exit;
		offs[k][n[k]] = p->offset;
		cookies[k][n[k]] = cookie[i];
		n[k]++;
	}
	for (k = 0; k < 2; k++) {
		if (!n[k])
			continue;
		err = tracer__attach_multi(s->tr, k ? PROG_INL_EXIT : PROG_INL_ENTER, pid,
					   t->pybin_open, offs[k], cookies[k], n[k],
					   pid > 0 ? (uint32_t)pid : 0);
		if (err) {
			snprintf(why, whylen,
				 "uprobe_multi link on %zu inlined allocator sites failed: %s "
				 "(needs Linux 6.6+)",
				 n[k], strerror(-err));
			goto out;
		}
	}
	err = 0;
out:
	free(cookie);
	for (k = 0; k < 2; k++) {
		free(offs[k]);
		free(cookies[k]);
	}
	return err;
}

/*
 * Attach the probe plan of g. With --all, probes in the interpreter binary
 * are attached once per binary for every process (only Python processes map
 * it; BPF filters on `procs`); libc probes always carry the pid filter, so
 * processes we do not trace never trap.
 */
static int attach_plan(struct session *s, struct tgt *g, char *why, size_t whylen)
{
	const struct pml_target *t = &g->t;
	bool share = s->o->all;
	struct shared_bin *nsh;
	struct stat st;
	size_t i;
	int err, lib;

	if (share) {
		if (stat(t->pybin_open, &st))
			return -errno;
		if (shared_attached(s, &st))
			share = false; /* done before: attach only libc below */
	}
	/* One batch per binary: the interpreter's probes, then libc's. */
	for (lib = 0; lib < 2; lib++) {
		const char *path = lib ? t->libc_open : t->pybin_open;
		bool per_pid = lib || !s->o->all;
		struct pml_attach batch[PML_MAX_PROBES];
		size_t n = 0;

		if (!per_pid && !share)
			continue;
		for (i = 0; i < t->nprobes; i++) {
			const struct pml_probe *p = &t->probes[i];

			if (p->libc != lib)
				continue;
			batch[n].prog = p->prog;
			batch[n].off = p->offset;
			batch[n].ret = p->ret;
			batch[n].layer = p->layer;
			n++;
		}
		if (!n)
			continue;
		err = tracer__attach_batch(s->tr, per_pid ? t->pid : -1, path, batch, n,
					   per_pid ? (uint32_t)t->pid : 0);
		if (err) {
			snprintf(why, whylen, "uprobes in %.200s failed: %s%s", path,
				 strerror(-err),
				 err == -EPERM || err == -EACCES
					 ? " (needs CAP_BPF and CAP_PERFMON)"
				 : err == -EINVAL ? " (uprobe_multi links need Linux 6.6+)"
						  : "");
			tracer__detach(s->tr, t->pid);
			return err;
		}
	}
	if (t->ninl && (share || !s->o->all)) {
		err = attach_inlined(s, g, share ? -1 : t->pid, why, whylen);
		if (err) {
			tracer__detach(s->tr, t->pid);
			return err;
		}
	}
	if (share) {
		nsh = realloc(s->shared, (s->nshared + 1) * sizeof(*nsh));
		if (!nsh)
			return -ENOMEM;
		s->shared = nsh;
		s->shared[s->nshared].dev = st.st_dev;
		s->shared[s->nshared].ino = st.st_ino;
		s->nshared++;
	}
	return 0;
}

/* Inspect and attach one process. Returns 0 or -errno with the reason in why;
 * s->kernel_err tells whether the kernel (not the target) refused. */
static int attach_target(struct session *s, struct tgt *g, int pid, char *why, size_t whylen)
{
	struct pml_target_opts to = {
		.count_only = s->o->count_only,
		.no_placement = s->o->no_placement,
	};
	struct pml_proc proc;
	int err;

	memset(g, 0, sizeof(*g));
	g->pidfd = -1;
	s->kernel_err = false;
	err = target__inspect(pid, &to, &g->t, why, whylen);
	if (err)
		return err;
	s->kernel_err = true;
	scan__starttime(pid, &g->starttime);
	fill_proc(s, &g->t, &proc);
	err = tracer__add_proc(s->tr, pid, &proc);
	if (err) {
		snprintf(why, whylen, "process map full (%s)", strerror(-err));
		return err;
	}
	if (s->o->verbose)
		print_plan(&g->t);
	err = attach_plan(s, g, why, whylen);
	if (err) {
		tracer__del_proc(s->tr, pid);
		target__release(&g->t);
		return err;
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
	char why[512];
	int r;

	r = target__inspect(pid, &to, &probe, err, errlen);
	target__release(&probe);
	if (r == -ENOEXEC || r == -ENOENT || r == -ESRCH)
		return -EAGAIN; /* not (yet) the interpreter, or libc not mapped yet */
	if (r)
		return r;
	r = attach_target(lc->s, lc->g, pid, why, sizeof(why));
	if (r) {
		snprintf(err, errlen, "cannot attach to the command (pid %d): %s", pid, why);
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

static struct tgt *find_live(struct session *s, int pid)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (s->tg[i].t.pid == pid && s->tg[i].state == T_LIVE)
			return &s->tg[i];
	return NULL;
}

static void forget_notpy(struct session *s, int pid);
static void add_pending(struct session *s, int pid);

static void end_target(struct session *s, struct tgt *g, enum tgt_state why)
{
	if (g->state != T_LIVE)
		return;
	g->state = why;
	g->end_s = since_start(s);
	if (g->pidfd >= 0) {
		close(g->pidfd);
		g->pidfd = -1;
	}
	/* Its probes (libc, per pid) are useless now; the figures stay until purged. */
	tracer__detach(s->tr, g->t.pid);
	if (g->launched)
		waitpid(g->t.pid, NULL, WNOHANG);
	if (!s->o->all && !g->launched)
		p_err("pid %d %s during the trace (after %.1f s); reporting what was seen",
		      g->t.pid, why == T_EXECED ? "exec'd a new program" : "exited", g->end_s);
}

static void on_event(const struct pml_event *ev, void *ctx)
{
	struct session *s = ctx;
	struct tgt *g;

	switch (ev->kind) {
	case EV_NEW_STACK:
		if (!agg__has_stack(s->agg, ev->pid, ev->stack_id))
			symbolize_stack(s, ev->pid, ev->stack_id);
		break;
	case EV_EXEC:
		g = find_live(s, ev->pid);
		if (g)
			end_target(s, g, T_EXECED);
		if (s->o->all) {
			/* It may become a Python process (or a new one): look again. */
			forget_notpy(s, ev->pid);
			add_pending(s, ev->pid);
		}
		break;
	}
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

static bool stack_unused(uint32_t pid, uint64_t stack_id, void *ctx)
{
	const struct session *s = ctx;

	/* No row: no allocation of it is outstanding, so nothing needs it
	 * interned; a new allocation interns (and announces) it again. */
	return !agg__has_row(s->agg, pid, stack_id);
}

static void snapshot(struct session *s)
{
	struct drain_ctx dc = { .s = s, .older_than_ns = s->o->older_than_s * 1e9 };
	uint64_t now = now_ns();

	agg__begin(s->agg, now);
	symbolizer__tick(s->sy);
	tracer__drain(s->tr, on_outstanding, &dc);
	/* Past epochs that emptied can never fill again. */
	tracer__trim(s->tr, (uint32_t)(now >> EPOCH_SHIFT) - 1);
	/* Interned stacks holding nothing, once symbolized, leave the map (their
	 * meaning stays in the aggregator): start-up and churn cannot fill it.
	 * With --older-than a young stack has no row yet: keep everything. */
	if (!s->o->older_than_s)
		tracer__gc_stacks(s->tr, stack_unused, s);
}

static void fill_procinfo(struct session *s, struct pml_procinfo *pi, size_t *n)
{
	uint64_t stats[STAT__MAX];
	size_t i, j, emu;

	*n = 0;
	for (i = 0; i < s->n; i++) {
		struct tgt *g = &s->tg[i];
		struct pml_procinfo *p;

		p = &pi[(*n)++];
		if (g->purged)
			memcpy(stats, g->last_stats, sizeof(stats));
		else
			tracer__stats(s->tr, g->t.pid, stats);
		memset(p, 0, sizeof(*p));
		p->pid = g->t.pid;
		snprintf(p->cmdline, sizeof(p->cmdline), "%s", g->t.cmdline);
		snprintf(p->python, sizeof(p->python), "%s", g->t.version);
		snprintf(p->build, sizeof(p->build), "%.63s", g->t.build_desc);
		for (j = emu = 0; j < g->t.nprobes; j++)
			emu += g->t.probes[j].emulated;
		snprintf(p->probes, sizeof(p->probes),
			 "%zu probes (%s allocator, %s object layer, libc raw layer), %zu at "
			 "emulated sites%s",
			 g->t.nprobes, target__allocator_name(g->t.allocator),
			 g->t.allocator == PML_ALLOC_MALLOC ? "no"
			 : g->t.internal_obj		    ? "pymalloc internal"
							    : "public",
			 emu,
			 s->env_malloc && g->launched ? "; started with PYTHONMALLOC=malloc" : "");
		p->exited = g->state != T_LIVE;
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
				snprintf(p->cov.reason, sizeof(p->cov.reason),
					 "frees are being missed%s", measured);
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
		p->sym_failures = g->purged ? g->last_sym_failures
					    : symbolizer__failures(s->sy, g->t.pid);
		/* An ended process whose data is freed: its last figures only. */
		p->frozen = g->purged;
		p->frozen_bytes = g->last_bytes;
		p->frozen_count = g->last_count;
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

#define TYPE_SAMPLES  64	 /* blocks classified per stack */
#define TYPE_SCAN_MAX (1u << 21) /* live allocations looked at per report */
#define TYPE_KINDS    16

/* Types seen in the sampled blocks of one ranked stack. */
struct type_want {
	uint32_t pid;
	uint64_t stack_id;
	uint64_t stack_bytes, stack_count;
	uint32_t nsampled;
	uint64_t sampled_bytes;
	struct pml_typecount t[TYPE_KINDS];
	size_t nt;
};

struct type_scan {
	struct session *s;
	struct type_want *w;
	size_t nw, nfull;
	size_t *slot; /* open addressing over w: index + 1, 0 empty */
	size_t nslots;
};

static size_t want_hash(uint32_t pid, uint64_t stack_id, size_t nslots)
{
	return (size_t)((stack_id ^ (uint64_t)pid * 0x9e3779b97f4a7c15ULL) % nslots);
}

static struct type_want *want_find(struct type_scan *ts, uint32_t pid, uint64_t stack_id)
{
	size_t h = want_hash(pid, stack_id, ts->nslots), i;

	for (i = 0; i < ts->nslots; i++) {
		size_t k = ts->slot[(h + i) % ts->nslots];

		if (!k)
			return NULL;
		if (ts->w[k - 1].pid == pid && ts->w[k - 1].stack_id == stack_id)
			return &ts->w[k - 1];
	}
	return NULL;
}

static void want_account(struct type_want *w, const char *name, uint64_t size)
{
	size_t i;

	for (i = 0; i < w->nt; i++)
		if (!strncmp(w->t[i].name, name, sizeof(w->t[i].name)))
			break;
	if (i == w->nt) {
		if (w->nt == TYPE_KINDS)
			i = TYPE_KINDS - 1; /* the rest folds into the last kind */
		else
			snprintf(w->t[w->nt++].name, sizeof(w->t[0].name), "%s", name);
	}
	w->t[i].bytes += size;
	w->t[i].count++;
	w->sampled_bytes += size;
	w->nsampled++;
}

static int on_live_alloc(const struct pml_alloc_key *k, const struct pml_alloc *v, void *ctx)
{
	struct type_scan *ts = ctx;
	struct type_want *w = want_find(ts, k->pid, v->stack_id);
	char name[PML_CLASSIFY_NAME_MAX];

	if (!w || w->nsampled >= TYPE_SAMPLES)
		return 0;
	classify__block(ts->s->cl, k->pid, k->addr, v->size, name, sizeof(name));
	want_account(w, name, v->size);
	if (w->nsampled == TYPE_SAMPLES && ++ts->nfull == ts->nw)
		return 1; /* every stack has its sample */
	return 0;
}

/*
 * Name the object types held by the top stacks of each process: classify a
 * bounded sample of their live blocks and scale it to the stack's totals.
 */
static void sample_types(struct session *s)
{
	struct type_scan ts = { .s = s };
	struct pml_row *rows;
	size_t i, j, n, cap = 0;

	for (i = 0; i < s->n; i++) {
		const struct tgt *g = &s->tg[i];

		if (g->purged || g->state != T_LIVE ||
		    agg__rank_pid(s->agg, g->t.pid, s->o->sort, s->o->top, &rows, &n))
			continue;
		for (j = 0; j < n; j++) {
			if (ts.nw == cap) {
				struct type_want *nw;

				cap = cap ? cap * 2 : 64;
				nw = realloc(ts.w, cap * sizeof(*nw));
				if (!nw)
					break;
				ts.w = nw;
			}
			memset(&ts.w[ts.nw], 0, sizeof(ts.w[0]));
			ts.w[ts.nw].pid = rows[j].pid;
			ts.w[ts.nw].stack_id = rows[j].stack_id;
			ts.w[ts.nw].stack_bytes = rows[j].bytes;
			ts.w[ts.nw].stack_count = rows[j].count;
			ts.nw++;
		}
		free(rows);
	}
	if (!ts.nw)
		goto out;
	ts.nslots = ts.nw * 2 + 1;
	ts.slot = calloc(ts.nslots, sizeof(*ts.slot));
	if (!ts.slot)
		goto out;
	for (i = 0; i < ts.nw; i++) {
		size_t h = want_hash(ts.w[i].pid, ts.w[i].stack_id, ts.nslots);

		while (ts.slot[h])
			h = (h + 1) % ts.nslots;
		ts.slot[h] = i + 1;
	}
	tracer__scan_allocs(s->tr, TYPE_SCAN_MAX, on_live_alloc, &ts);
	for (i = 0; i < ts.nw; i++) {
		struct type_want *w = &ts.w[i];
		bool sampled = w->nsampled < w->stack_count;

		if (!w->nsampled || !w->sampled_bytes)
			continue;
		/* Scale the sample to the stack's outstanding bytes and count. */
		for (j = 0; j < w->nt && sampled; j++) {
			w->t[j].bytes = (uint64_t)((double)w->stack_bytes * w->t[j].bytes /
						   w->sampled_bytes);
			w->t[j].count =
				(uint64_t)((double)w->stack_count * w->t[j].count / w->nsampled);
		}
		agg__set_types(s->agg, w->pid, w->stack_id, w->t, w->nt, sampled);
	}
out:
	free(ts.slot);
	free(ts.w);
}

/* The tracer's own footprint: what --all must keep bounded. */
static void print_occupancy(struct session *s)
{
	struct pml_occupancy o;
	long rss_kib = -1;
	char line[256];
	FILE *f;

	tracer__occupancy(s->tr, &o);
	f = fopen("/proc/self/status", "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld", &rss_kib) == 1)
			break;
	if (f)
		fclose(f);
	printf("tracer: rss %ld KiB; maps: allocs %zu/%zu, outstanding %zu/%zu, stacks %zu/%zu, "
	       "procs %zu/%zu\n",
	       rss_kib, o.allocs, o.allocs_max, o.outstanding, o.outstanding_max, o.stacks,
	       o.stacks_max, o.procs, o.procs_max);
}

/* Write one export; a failure is reported and remembered for the exit status. */
static void export_one(struct session *s, FILE *f, const char *path, int err)
{
	if (!err && fflush(f))
		err = -errno;
	if (err) {
		p_err("cannot write %s: %s", path, strerror(-err));
		s->export_failed = true;
	}
}

static void write_exports(struct session *s, const struct pml_procinfo *pi, size_t n)
{
	bool pid_root = n > 1 || s->o->all;
	uint64_t now = now_ns();

	if (s->json)
		export_one(s, s->json, s->o->json_path,
			   export_json__write(s->json, s->agg, pi, n, now, since_start(s),
					      s->o->top, s->o->sort, stat_names()));
	if (s->folded)
		export_one(s, s->folded, s->o->folded_path,
			   export_folded__write(s->folded, s->agg, pi, n, pid_root));
	if (s->svg)
		export_one(s, s->svg, s->o->svg_path,
			   export_svg__write(s->svg, s->agg, pi, n, pid_root));
	if (s->speedscope)
		export_one(s, s->speedscope, s->o->speedscope_path,
			   export_speedscope__write(s->speedscope, s->agg, pi, n, pid_root));
}

static void report(struct session *s, bool final)
{
	struct pml_procinfo *pi = calloc(s->cap ? s->cap : 1, sizeof(*pi));
	size_t n;

	if (!pi)
		return;
	snapshot(s);
	sample_types(s);
	fill_procinfo(s, pi, &n);
	printf("\n%s report at %.1f s\n", final ? "final" : "periodic", since_start(s));
	if (s->o->all)
		printf("%zu Python processes traced (%zu binaries shared)%s\n", n, s->nshared,
		       s->over_limit ? "; some not traced: --max-procs reached" : "");
	if (s->o->verbose)
		print_occupancy(s);
	if (s->o->all && n > 1) {
		/* The host at a glance, then the stacks of the processes that
		 * grow most. */
		size_t *order = calloc(n, sizeof(*order)), k, shown;
		struct pml_procinfo *top = calloc(n, sizeof(*top));

		if (order && top && !report__summary(stdout, s->agg, pi, n, order)) {
			shown = n < SUMMARY_TOP_PROCS ? n : SUMMARY_TOP_PROCS;
			for (k = 0; k < shown; k++)
				top[k] = pi[order[k]];
			report__text(stdout, s->agg, top, shown, now_ns(), since_start(s),
				     s->o->top, s->o->sort, stat_names());
		}
		free(order);
		free(top);
	} else {
		report__text(stdout, s->agg, pi, n, now_ns(), since_start(s), s->o->top, s->o->sort,
			     stat_names());
	}
	fflush(stdout);
	if (final)
		write_exports(s, pi, n);
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

/* Free everything an ended process holds, keep a summary line. */
static void purge_target(struct session *s, struct tgt *g)
{
	uint64_t bytes = 0, count = 0;

	if (g->purged)
		return;
	agg__totals(s->agg, g->t.pid, &bytes, &count);
	g->last_bytes = bytes;
	g->last_count = count;
	tracer__stats(s->tr, g->t.pid, g->last_stats);
	g->last_sym_failures = symbolizer__failures(s->sy, g->t.pid);
	tracer__detach(s->tr, g->t.pid);
	tracer__del_proc(s->tr, g->t.pid);
	agg__drop_pid(s->agg, g->t.pid);
	symbolizer__drop_pid(s->sy, g->t.pid);
	classify__drop_pid(s->cl, g->t.pid);
	natsym__drop_pid(s->ns, g->t.pid);
	target__release(&g->t);
	g->purged = true;
}

/* Drop purged entries beyond the ENDED_KEEP most recent (bounded memory). */
static void compact_ended(struct session *s)
{
	size_t i, j, purged = 0;

	for (i = 0; i < s->n; i++)
		purged += s->tg[i].purged;
	for (i = j = 0; i < s->n; i++) {
		if (s->tg[i].purged && purged > ENDED_KEEP) {
			purged--;
			continue;
		}
		if (i != j)
			s->tg[j] = s->tg[i];
		j++;
	}
	s->n = j;
}

static bool is_notpy(struct session *s, int pid, uint64_t starttime)
{
	size_t i;

	for (i = 0; i < s->nnotpy; i++)
		if (s->notpy[i].pid == pid)
			return s->notpy[i].starttime == starttime;
	return false;
}

static void forget_notpy(struct session *s, int pid)
{
	size_t i;

	for (i = 0; i < s->nnotpy; i++)
		if (s->notpy[i].pid == pid)
			s->notpy[i] = s->notpy[--s->nnotpy];
}

static void remember_notpy(struct session *s, int pid, uint64_t starttime)
{
	struct notpy *nv;
	size_t i;

	for (i = 0; i < s->nnotpy; i++)
		if (s->notpy[i].pid == pid) {
			s->notpy[i].starttime = starttime;
			return;
		}
	if (s->nnotpy == s->capnotpy) {
		size_t cap = s->capnotpy ? s->capnotpy * 2 : 256;

		nv = realloc(s->notpy, cap * sizeof(*nv));
		if (!nv)
			return;
		s->notpy = nv;
		s->capnotpy = cap;
	}
	s->notpy[s->nnotpy].pid = pid;
	s->notpy[s->nnotpy].starttime = starttime;
	s->nnotpy++;
}

static void add_pending(struct session *s, int pid)
{
	struct pending *np;
	size_t i;

	for (i = 0; i < s->npend; i++)
		if (s->pend[i].pid == pid) {
			s->pend[i].until_ns = now_ns() + EXEC_RECHECK_NS;
			return;
		}
	if (s->npend >= 4096)
		return; /* an exec storm: the periodic scan will catch up */
	np = realloc(s->pend, (s->npend + 1) * sizeof(*np));
	if (!np)
		return;
	s->pend = np;
	s->pend[s->npend].pid = pid;
	s->pend[s->npend].until_ns = now_ns() + EXEC_RECHECK_NS;
	s->npend++;
}

static size_t live_count(const struct session *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++)
		n += s->tg[i].state == T_LIVE;
	return n;
}

/*
 * --all: consider pid. Returns 1 if now traced, 0 if not (yet) a Python we
 * trace, -EAGAIN to look again later.
 */
static int consider(struct session *s, int pid, bool quiet_retry)
{
	struct tgt *g;
	uint64_t st = 0;
	char why[512], cmd[256];
	size_t i;
	int err;

	if (pid == getpid() || find_live(s, pid))
		return 0;
	if (scan__starttime(pid, &st))
		return 0; /* gone */
	if (is_notpy(s, pid, st))
		return 0;
	if (!scan__pid_maybe_python(pid)) {
		if (!quiet_retry)
			remember_notpy(s, pid, st);
		return quiet_retry ? -EAGAIN : 0;
	}
	if (s->has_match) {
		if (target__cmdline(pid, cmd, sizeof(cmd)) || regexec(&s->match, cmd, 0, NULL, 0)) {
			remember_notpy(s, pid, st);
			return 0;
		}
	}
	if (live_count(s) >= s->o->max_procs) {
		s->over_limit++;
		return 0;
	}
	/* A pid seen before belongs to an ended process: free its data first. */
	for (i = 0; i < s->n; i++)
		if (s->tg[i].t.pid == pid)
			purge_target(s, &s->tg[i]);
	compact_ended(s);
	if (s->n == s->cap)
		return 0;
	g = &s->tg[s->n];
	err = attach_target(s, g, pid, why, sizeof(why));
	if (err) {
		tracer__del_proc(s->tr, pid);
		if (err == -ENOEXEC || err == -ENOENT) {
			/* Looks like Python but is not one yet (still loading its
			 * libraries?): look again for a while before giving up. */
			if (!quiet_retry)
				add_pending(s, pid);
			return -EAGAIN;
		}
		if (s->o->verbose)
			p_err("not tracing pid %d: %s", pid, why);
		remember_notpy(s, pid, st);
		return 0;
	}
	s->n++;
	if (s->o->verbose || s->attached)
		fprintf(stderr, "pymemleak: tracing pid %d (CPython %s, %s): %.80s\n", pid,
			g->t.version, g->t.build_desc, g->t.cmdline);
	return 1;
}

static void scan_host(struct session *s)
{
	size_t i, n;
	int *pids;

	if (scan__pids(&pids, &n))
		return;
	for (i = 0; i < n; i++)
		consider(s, pids[i], false);
	free(pids);
}

static void check_pending(struct session *s)
{
	uint64_t now = now_ns();
	size_t i = 0;

	while (i < s->npend) {
		int pid = s->pend[i].pid;
		uint64_t st;
		int r = consider(s, pid, true);

		if (r == -EAGAIN && now < s->pend[i].until_ns) {
			i++;
			continue;
		}
		if (r == -EAGAIN && !scan__starttime(pid, &st))
			remember_notpy(s, pid, st);
		s->pend[i] = s->pend[--s->npend];
	}
}

/* After each snapshot: ended processes linger a few intervals, then go (--all). */
static void age_ended(struct session *s)
{
	size_t i;

	if (!s->o->all)
		return;
	for (i = 0; i < s->n; i++) {
		struct tgt *g = &s->tg[i];

		if (g->state != T_LIVE && !g->purged && ++g->linger > LINGER_SNAPSHOTS)
			purge_target(s, g);
	}
	compact_ended(s);
}

/* Wait for the end: signal, duration, all targets gone. Reports every interval. */
static int trace_loop(struct session *s)
{
	uint64_t next = s->start_ns + s->o->interval_s * 1e9;
	uint64_t end = s->o->duration_s > 0 ? s->start_ns + s->o->duration_s * 1e9 : 0;
	struct pollfd *fds;
	size_t i, live, nf;
	int r, err = 0;

	fds = calloc(s->cap + 2, sizeof(*fds));
	if (!fds)
		return -ENOMEM;
	for (;;) {
		uint64_t now = now_ns();

		if (end && now >= end)
			break;
		if (now >= next) {
			/* Every interval feeds the growth series, printed or not. */
			if (s->o->quiet)
				snapshot(s);
			else
				report(s, false);
			age_ended(s);
			next += s->o->interval_s * 1e9;
		}
		if (s->o->all && now >= s->next_scan) {
			scan_host(s);
			s->next_scan = now + SCAN_EVERY_NS;
		}
		fds[0] = (struct pollfd){ .fd = s->sigfd, .events = POLLIN };
		fds[1] = (struct pollfd){ .fd = tracer__events_fd(s->tr), .events = POLLIN };
		for (i = 0, nf = 2; i < s->n; i++)
			fds[nf++] = (struct pollfd){
				.fd = s->tg[i].state == T_LIVE ? s->tg[i].pidfd : -1,
				.events = POLLIN,
			};
		r = poll(fds, nf, TICK_MS);
		if (r < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		if (fds[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(s->sigfd, &si, sizeof(si)) == sizeof(si))
				fprintf(stderr, "\npymemleak: %s, detaching\n",
					si.ssi_signo == SIGINT ? "interrupted" : "terminated");
			break;
		}
		/* Events first: new stacks are symbolized before anything else. */
		symbolizer__tick(s->sy);
		tracer__events(s->tr, on_event, s);
		for (i = 0, live = 0; i < s->n && 2 + i < nf; i++) {
			struct tgt *g = &s->tg[i];

			if (g->state == T_LIVE && (fds[2 + i].revents & POLLIN))
				end_target(s, g, T_EXITED);
			live += g->state == T_LIVE;
		}
		if (s->o->all)
			check_pending(s);
		else if (!live)
			break;
	}
	free(fds);
	return err;
}

static void stop_launched(struct session *s)
{
	size_t i;
	int k;

	for (i = 0; i < s->n; i++) {
		struct tgt *g = &s->tg[i];

		if (!g->launched || g->state != T_LIVE)
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
		.max_procs = o->all ? o->max_procs : PML_MAX_PIDS,
		.max_depth = o->max_depth,
		.epoch_shift = EPOCH_SHIFT,
		.watch_exec = o->all,
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
	if (o->match) {
		err = regcomp(&s.match, o->match, REG_EXTENDED | REG_NOSUB);
		if (err) {
			regerror(err, &s.match, why, sizeof(why));
			p_err("invalid --match '%s': %s", o->match, why);
			return PML_EXIT_USAGE;
		}
		s.has_match = true;
	}
	/* Output files first: a bad path fails before anything is attached. */
	if ((o->json_path && !(s.json = open_output(o->json_path, o->force))) ||
	    (o->folded_path && !(s.folded = open_output(o->folded_path, o->force))) ||
	    (o->svg_path && !(s.svg = open_output(o->svg_path, o->force))) ||
	    (o->speedscope_path && !(s.speedscope = open_output(o->speedscope_path, o->force)))) {
		rc = PML_EXIT_USAGE;
		goto out;
	}
	s.cap = o->all ? o->max_procs + ENDED_KEEP + 1 : o->npids + 1;
	s.tg = calloc(s.cap, sizeof(*s.tg));
	s.ns = natsym__new();
	s.sy = symbolizer__new();
	s.cl = classify__new(NULL, NULL);
	s.agg = agg__new();
	if (!s.tg || !s.ns || !s.sy || !s.cl || !s.agg) {
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

		err = attach_target(&s, g, o->pids[i], why, sizeof(why));
		if (err) {
			p_err("cannot trace pid %d: %s", o->pids[i], why);
			rc = exit_code_for(err, s.kernel_err);
			goto out;
		}
		s.n++;
		fprintf(stderr,
			"pymemleak: tracing pid %d (CPython %s, %s) with %zu probes; Ctrl-C to stop\n",
			g->t.pid, g->t.version, g->t.build_desc, g->t.nprobes);
	}
	if (o->all) {
		fprintf(stderr, "pymemleak: scanning the host for Python processes\n");
		scan_host(&s);
		s.next_scan = now_ns() + SCAN_EVERY_NS;
		fprintf(stderr,
			"pymemleak: tracing %zu Python processes (and new ones as they "
			"start); Ctrl-C to stop\n",
			live_count(&s));
	}
	if (o->argv) {
		struct tgt *g = &s.tg[s.n];
		struct launch_ctx lc = { .s = &s, .g = g };
		const char *env = NULL;
		pid_t child;

		if (getenv("PYTHONMALLOC") && strcmp(getenv("PYTHONMALLOC"), "malloc") &&
		    launch__needs_libc_malloc(o->argv[0], resolved, sizeof(resolved)))
			fprintf(stderr,
				"pymemleak: keeping your PYTHONMALLOC=%s for %s, a static build with its "
				"allocator inlined: coverage will be partial (unset PYTHONMALLOC for "
				"complete coverage)\n",
				getenv("PYTHONMALLOC"), resolved);
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
			rc = exit_code_for(err, s.kernel_err);
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
	if (err)
		p_err("trace loop failed: %s", strerror(-err));
	report(&s, true);
	stop_launched(&s);

	for (i = 0, all_exited = s.n > 0 && !o->all; i < s.n; i++)
		all_exited &= s.tg[i].state != T_LIVE && !s.tg[i].launched;
	if (all_exited)
		rc = PML_EXIT_TARGET;
	if (s.export_failed && rc == PML_EXIT_OK)
		rc = PML_EXIT_USAGE;
out:
	if (!s.attached)
		remove_outputs(&s);
	tracer__destroy(s.tr);
	if (!s.attached)
		stop_launched(&s);
	for (i = 0; i < s.n; i++) {
		if (s.tg[i].pidfd >= 0)
			close(s.tg[i].pidfd);
		target__release(&s.tg[i].t);
	}
	if (s.sigfd >= 0)
		close(s.sigfd);
	if (s.json)
		fclose(s.json);
	if (s.folded)
		fclose(s.folded);
	if (s.svg)
		fclose(s.svg);
	if (s.speedscope)
		fclose(s.speedscope);
	if (s.has_match)
		regfree(&s.match);
	free(s.tg);
	free(s.shared);
	free(s.pend);
	free(s.notpy);
	agg__free(s.agg);
	symbolizer__free(s.sy);
	classify__free(s.cl);
	natsym__free(s.ns);
	return rc;
}
