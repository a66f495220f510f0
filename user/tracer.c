// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "pymemleak.skel.h"
#include "tracer.h"

struct owned_link {
	struct bpf_link *link; /* perf-event uprobes, through libbpf */
	int fd;		       /* uprobe_multi links, made here; -1 if none */
	uint32_t owner;
};

/* Not in Debian 12's libbpf (1.1) nor its UAPI headers; kernel 6.6+. */
#define PML_BPF_TRACE_UPROBE_MULTI 48
#define PML_BPF_LINK_CREATE	   28

/* The part of union bpf_attr that BPF_LINK_CREATE of a uprobe_multi link reads. */
struct uprobe_multi_attr {
	uint32_t prog_fd;
	uint32_t target_fd;
	uint32_t attach_type;
	uint32_t flags;
	uint64_t path;
	uint64_t offsets;
	uint64_t ref_ctr_offsets;
	uint64_t cookies;
	uint32_t cnt;
	uint32_t multi_flags;
	uint32_t pid;
	uint32_t pad[13]; /* the rest of union bpf_attr: zero */
};

struct pml_tracer {
	struct pymemleak_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *exec_link;
	void (*event_cb)(const struct pml_event *ev, void *ctx);
	void *event_ctx;
	struct owned_link *links;
	size_t nlinks, caplinks;
	int ncpus;
};

static const char *const stat_names[STAT__MAX] = {
	[STAT_ALLOCS] = "allocs",
	[STAT_FREES] = "frees",
	[STAT_ALLOC_FAILED] = "failed_allocs",
	[STAT_LIVE_FULL] = "live_map_full",
	[STAT_OUTSTANDING_FULL] = "outstanding_map_full",
	[STAT_STACKS_FULL] = "stack_map_full",
	[STAT_MISSED_ENTRY] = "exit_without_entry",
	[STAT_UNKNOWN_FREE] = "unknown_frees",
	[STAT_NESTED] = "nested_calls",
	[STAT_REPLACED] = "reused_before_free",
	[STAT_THREADS_FULL] = "thread_state_unavailable",
	[STAT_STACK_TRUNCATED] = "stack_truncated",
	[STAT_STACK_READ_FAULT] = "stack_read_fault",
	[STAT_NO_GIL] = "no_gil",
	[STAT_NO_PYSTATE] = "no_python_thread",
	[STAT_RAW_ALLOCS] = "raw_layer_allocs",
	[STAT_OBJ_ALLOCS] = "object_layer_allocs",
	[STAT_STACK_EVENTS_LOST] = "stack_events_lost",
	[STAT_MISSED_RETURN] = "missed_returns",
	[STAT_INL_UNPAIRED] = "inlined_unpaired",
	[STAT_INL_ALLOCS] = "inlined_site_allocs",
};

const char *tracer__stat_name(unsigned int i)
{
	return i < STAT__MAX && stat_names[i] ? stat_names[i] : "?";
}

static struct bpf_program *prog_of(struct pml_tracer *t, enum pml_prog p)
{
	switch (p) {
	case PROG_INL_ENTER:
		return t->skel->progs.inl_enter;
	case PROG_INL_EXIT:
		return t->skel->progs.inl_exit;
	default:
		return NULL;
	}
}

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG || !getenv("PYMEMLEAK_LIBBPF_DEBUG"))
		return 0;
	return vfprintf(stderr, fmt, args);
}

static int on_event(void *ctx, void *data, size_t len)
{
	struct pml_tracer *t = ctx;
	struct pml_event ev;

	if (len < sizeof(ev) || !t->event_cb)
		return 0;
	memcpy(&ev, data, sizeof(ev));
	t->event_cb(&ev, t->event_ctx);
	return 0;
}

int tracer__events_fd(struct pml_tracer *t)
{
	return ring_buffer__epoll_fd(t->rb);
}

int tracer__events(struct pml_tracer *t, void (*cb)(const struct pml_event *ev, void *ctx),
		   void *ctx)
{
	int n;

	t->event_cb = cb;
	t->event_ctx = ctx;
	n = ring_buffer__consume(t->rb);
	t->event_cb = NULL;
	return n;
}

struct pml_tracer *tracer__open(const struct pml_tracer_opts *o, char *why, size_t whylen)
{
	struct pml_tracer *t;
	int err;

	libbpf_set_print(libbpf_quiet);
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->ncpus = libbpf_num_possible_cpus();
	if (t->ncpus <= 0) {
		err = t->ncpus ? t->ncpus : -EINVAL;
		snprintf(why, whylen, "cannot count possible CPUs");
		goto out_free;
	}
	t->skel = pymemleak_bpf__open();
	if (!t->skel) {
		err = -errno;
		snprintf(why, whylen, "cannot open BPF object: %s", strerror(-err));
		goto out_free;
	}
	t->skel->rodata->epoch_shift = o->epoch_shift;
	t->skel->rodata->max_depth = o->max_depth;
	t->skel->rodata->watch_exec = o->watch_exec;
	/* Every uprobe program is attached through uprobe_multi links. */
	bpf_program__set_expected_attach_type(t->skel->progs.entry,
					      (enum bpf_attach_type)PML_BPF_TRACE_UPROBE_MULTI);
	bpf_program__set_expected_attach_type(t->skel->progs.alloc_exit,
					      (enum bpf_attach_type)PML_BPF_TRACE_UPROBE_MULTI);
	bpf_program__set_expected_attach_type(t->skel->progs.inl_enter,
					      (enum bpf_attach_type)PML_BPF_TRACE_UPROBE_MULTI);
	bpf_program__set_expected_attach_type(t->skel->progs.inl_exit,
					      (enum bpf_attach_type)PML_BPF_TRACE_UPROBE_MULTI);
	bpf_map__set_max_entries(t->skel->maps.allocs, o->max_allocs);
	bpf_map__set_max_entries(t->skel->maps.stacks, o->max_stacks);
	bpf_map__set_max_entries(t->skel->maps.outstanding, o->max_outstanding);
	bpf_map__set_max_entries(t->skel->maps.procs, o->max_procs);
	bpf_map__set_max_entries(t->skel->maps.stats, o->max_procs);

	err = pymemleak_bpf__load(t->skel);
	if (err) {
		snprintf(why, whylen, "cannot load BPF programs: %s", strerror(-err));
		goto out_destroy;
	}
	t->rb = ring_buffer__new(bpf_map__fd(t->skel->maps.events), on_event, t, NULL);
	if (!t->rb) {
		err = -errno;
		snprintf(why, whylen, "cannot set up the ring buffer: %s", strerror(-err));
		goto out_destroy;
	}
	t->exec_link = bpf_program__attach(t->skel->progs.sched_process_exec);
	if (!t->exec_link) {
		err = -errno;
		snprintf(why, whylen, "cannot attach to sched:sched_process_exec: %s",
			 strerror(-err));
		goto out_rb;
	}
	return t;

out_rb:
	ring_buffer__free(t->rb);

out_destroy:
	pymemleak_bpf__destroy(t->skel);
out_free:
	free(t);
	errno = -err;
	return NULL;
}

void tracer__destroy(struct pml_tracer *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nlinks; i++) {
		bpf_link__destroy(t->links[i].link);
		if (t->links[i].fd >= 0)
			close(t->links[i].fd);
	}
	free(t->links);
	bpf_link__destroy(t->exec_link);
	ring_buffer__free(t->rb);
	pymemleak_bpf__destroy(t->skel);
	free(t);
}

int tracer__add_proc(struct pml_tracer *t, uint32_t pid, const struct pml_proc *p)
{
	uint64_t *zero;
	int err = 0;

	/* Counters first: the probes start counting once procs has pid. */
	zero = calloc(t->ncpus, sizeof(uint64_t) * STAT__MAX);
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.stats), &pid, zero, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(t->skel->maps.procs), &pid, p, BPF_ANY))
		err = -errno;
	free(zero);
	return err;
}

/*
 * Delete the keys of `fd` (keysz bytes, at most 32) for which keep() says
 * no. Keys are collected first and deleted after: deleting under
 * bpf_map_get_next_key makes a hash map restart its walk.
 */
static size_t delete_keys(int fd, size_t keysz, bool (*doomed)(const void *key, int fd, void *ctx),
			  void *ctx)
{
	unsigned char cur[32], *prev = NULL, *victims = NULL, *nv;
	size_t n = 0, cap = 0, i, deleted = 0;

	while (!bpf_map_get_next_key(fd, prev, cur)) {
		if (doomed(cur, fd, ctx)) {
			if (n == cap) {
				cap = cap ? cap * 2 : 256;
				nv = realloc(victims, cap * keysz);
				if (!nv)
					break;
				victims = nv;
			}
			memcpy(victims + n * keysz, cur, keysz);
			n++;
		}
		if (!prev)
			prev = malloc(32);
		if (!prev)
			break;
		memcpy(prev, cur, keysz);
	}
	for (i = 0; i < n; i++)
		if (!bpf_map_delete_elem(fd, victims + i * keysz))
			deleted++;
	free(prev);
	free(victims);
	return deleted;
}

static bool key_of_pid(const void *key, int fd, void *ctx)
{
	uint32_t kpid;

	(void)fd;
	memcpy(&kpid, key, sizeof(kpid));
	return kpid == *(uint32_t *)ctx;
}

int tracer__del_proc(struct pml_tracer *t, uint32_t pid)
{
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.procs), &pid);
	bpf_map_delete_elem(bpf_map__fd(t->skel->maps.stats), &pid);
	delete_keys(bpf_map__fd(t->skel->maps.allocs), sizeof(struct pml_alloc_key), key_of_pid,
		    &pid);
	delete_keys(bpf_map__fd(t->skel->maps.outstanding), sizeof(struct pml_outstanding_key),
		    key_of_pid, &pid);
	delete_keys(bpf_map__fd(t->skel->maps.stacks), sizeof(struct pml_stack_key), key_of_pid,
		    &pid);
	return 0;
}

static int grow_links(struct pml_tracer *t, size_t n)
{
	struct owned_link *nl;
	size_t cap;

	if (t->nlinks + n <= t->caplinks)
		return 0;
	cap = t->caplinks ? t->caplinks * 2 : 64;
	while (cap < t->nlinks + n)
		cap *= 2;
	nl = realloc(t->links, cap * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	t->links = nl;
	t->caplinks = cap;
	return 0;
}

/* One uprobe_multi link of prog_fd over offs/cookies; 0 or -errno. */
static int link_multi(struct pml_tracer *t, int prog_fd, bool ret, int pid, const char *path,
		      const uint64_t *offs, const uint64_t *cookies, size_t n, uint32_t owner)
{
	struct uprobe_multi_attr attr;
	int fd;

	if (!n || n > (1u << 20))
		return -EINVAL;
	if (grow_links(t, 1))
		return -ENOMEM;
	memset(&attr, 0, sizeof(attr));
	attr.prog_fd = prog_fd;
	attr.attach_type = PML_BPF_TRACE_UPROBE_MULTI;
	attr.path = (uint64_t)(uintptr_t)path;
	attr.offsets = (uint64_t)(uintptr_t)offs;
	attr.cookies = (uint64_t)(uintptr_t)cookies;
	attr.cnt = n;
	attr.multi_flags = ret ? 1 /* BPF_F_UPROBE_MULTI_RETURN */ : 0;
	attr.pid = pid > 0 ? pid : 0;
	fd = syscall(__NR_bpf, PML_BPF_LINK_CREATE, &attr, sizeof(attr));
	if (fd < 0)
		return -errno;
	t->links[t->nlinks].link = NULL;
	t->links[t->nlinks].fd = fd;
	t->links[t->nlinks].owner = owner;
	t->nlinks++;
	return 0;
}

int tracer__attach_batch(struct pml_tracer *t, int pid, const char *path,
			 const struct pml_attach *probes, size_t n, uint32_t owner)
{
	uint64_t *offs[2], *cookies[2];
	size_t i, j, cnt[2] = { 0, 0 };
	int err = -ENOMEM, k;

	for (k = 0; k < 2; k++) {
		offs[k] = calloc(n ? n : 1, sizeof(uint64_t));
		cookies[k] = calloc(n ? n : 1, sizeof(uint64_t));
	}
	if (!offs[0] || !offs[1] || !cookies[0] || !cookies[1])
		goto out;
	for (i = 0; i < n; i++) {
		const struct pml_attach *a = &probes[i];
		bool dup = false;

		if (a->prog > PROG_COUNT) {
			err = -EINVAL;
			goto out;
		}
		/* Aliases (aligned_alloc and memalign) share an address: probe it once. */
		for (j = 0; j < cnt[0]; j++)
			dup |= offs[0][j] == a->off;
		if (dup)
			continue;
		offs[0][cnt[0]] = a->off;
		cookies[0][cnt[0]++] = (uint64_t)a->prog << 8 | (a->layer & 0xff);
		if (a->ret) {
			offs[1][cnt[1]] = a->off;
			cookies[1][cnt[1]++] = a->layer & 0xff;
		}
	}
	err = 0;
	if (cnt[0])
		err = link_multi(t, bpf_program__fd(t->skel->progs.entry), false, pid, path,
				 offs[0], cookies[0], cnt[0], owner);
	if (!err && cnt[1]) {
		err = link_multi(t, bpf_program__fd(t->skel->progs.alloc_exit), true, pid, path,
				 offs[1], cookies[1], cnt[1], owner);
		if (err && cnt[0]) {
			/* Keep entries and returns paired: drop the entry link. */
			t->nlinks--;
			close(t->links[t->nlinks].fd);
		}
	}
out:
	for (k = 0; k < 2; k++) {
		free(offs[k]);
		free(cookies[k]);
	}
	return err;
}

size_t tracer__nlinks(const struct pml_tracer *t)
{
	return t->nlinks;
}

int tracer__attach_multi(struct pml_tracer *t, enum pml_prog prog, int pid, const char *path,
			 const uint64_t *offs, const uint64_t *cookies, size_t n, uint32_t owner)
{
	struct bpf_program *p = prog_of(t, prog);

	if (!p)
		return -EINVAL;
	return link_multi(t, bpf_program__fd(p), false, pid, path, offs, cookies, n, owner);
}

int tracer__set_inl(struct pml_tracer *t, uint32_t cookie, const struct pml_inl_cfg *cfg)
{
	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.inl), &cookie, cfg, BPF_ANY))
		return -errno;
	return 0;
}

void tracer__detach(struct pml_tracer *t, uint32_t owner)
{
	size_t i, j;

	for (i = j = 0; i < t->nlinks; i++) {
		if (t->links[i].owner == owner) {
			bpf_link__destroy(t->links[i].link);
			if (t->links[i].fd >= 0)
				close(t->links[i].fd);
		} else
			t->links[j++] = t->links[i];
	}
	t->nlinks = j;
}

int tracer__drain(struct pml_tracer *t,
		  int (*cb)(const struct pml_outstanding_key *k, const struct pml_outstanding *v,
			    void *ctx),
		  void *ctx)
{
	int fd = bpf_map__fd(t->skel->maps.outstanding);
	struct pml_outstanding_key key, next, *prev = NULL;
	struct pml_outstanding val;
	int err;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &val))
			continue; /* deleted meanwhile */
		err = cb(&key, &val, ctx);
		if (err)
			return err;
	}
	return errno == ENOENT ? 0 : -errno;
}

long tracer__scan_allocs(struct pml_tracer *t, size_t max,
			 int (*cb)(const struct pml_alloc_key *k, const struct pml_alloc *v,
				   void *ctx),
			 void *ctx)
{
	enum {
		BATCH = 4096
	};
	int fd = bpf_map__fd(t->skel->maps.allocs);
	struct pml_alloc_key *keys;
	struct pml_alloc *vals;
	uint64_t in = 0, out = 0; /* hash map batch token: a bucket index */
	bool first = true, done = false;
	long seen = 0;
	uint32_t n, i;
	int err = 0;

	keys = calloc(BATCH, sizeof(*keys));
	vals = calloc(BATCH, sizeof(*vals));
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (!done && (size_t)seen < max) {
		n = BATCH;
		if (bpf_map_lookup_batch(fd, first ? NULL : &in, &out, keys, vals, &n, NULL)) {
			if (errno != ENOENT) {
				err = -errno;
				break;
			}
			done = true; /* last batch: n entries are still valid */
		}
		first = false;
		in = out;
		for (i = 0; i < n && (size_t)seen < max; i++, seen++)
			if (cb(&keys[i], &vals[i], ctx)) {
				done = true;
				break;
			}
	}
out:
	free(keys);
	free(vals);
	return err ? err : seen;
}

static bool key_is_empty_past(const void *key, int fd, void *ctx)
{
	const struct pml_outstanding_key *k = key;
	struct pml_outstanding val;

	return k->epoch < *(uint32_t *)ctx && !bpf_map_lookup_elem(fd, k, &val) && val.count == 0;
}

size_t tracer__trim(struct pml_tracer *t, uint32_t before)
{
	return delete_keys(bpf_map__fd(t->skel->maps.outstanding),
			   sizeof(struct pml_outstanding_key), key_is_empty_past, &before);
}

struct stack_gc {
	bool (*doomed)(uint32_t pid, uint64_t stack_id, void *ctx);
	void *ctx;
};

static bool stack_doomed(const void *key, int fd, void *ctx)
{
	const struct pml_stack_key *k = key;
	struct stack_gc *gc = ctx;

	(void)fd;
	return gc->doomed(k->pid, k->stack_id, gc->ctx);
}

size_t tracer__gc_stacks(struct pml_tracer *t,
			 bool (*doomed)(uint32_t pid, uint64_t stack_id, void *ctx), void *ctx)
{
	struct stack_gc gc = { .doomed = doomed, .ctx = ctx };

	return delete_keys(bpf_map__fd(t->skel->maps.stacks), sizeof(struct pml_stack_key),
			   stack_doomed, &gc);
}

static size_t count_keys(int fd, size_t keysz)
{
	unsigned char keys[2][32];
	size_t n = 0;

	(void)keysz;
	if (bpf_map_get_next_key(fd, NULL, keys[0]))
		return 0;
	do
		n++;
	while (!bpf_map_get_next_key(fd, keys[(n - 1) & 1], keys[n & 1]));
	return n;
}

static int count_alloc(const struct pml_alloc_key *k, const struct pml_alloc *v, void *ctx)
{
	(void)k;
	(void)v;
	(void)ctx;
	return 0;
}

void tracer__occupancy(struct pml_tracer *t, struct pml_occupancy *o)
{
	struct pymemleak_bpf *k = t->skel;
	long n = tracer__scan_allocs(t, SIZE_MAX, count_alloc, NULL);

	o->allocs = n > 0 ? (size_t)n : 0;
	o->allocs_max = bpf_map__max_entries(k->maps.allocs);
	o->outstanding =
		count_keys(bpf_map__fd(k->maps.outstanding), sizeof(struct pml_outstanding_key));
	o->outstanding_max = bpf_map__max_entries(k->maps.outstanding);
	o->stacks = count_keys(bpf_map__fd(k->maps.stacks), sizeof(struct pml_stack_key));
	o->stacks_max = bpf_map__max_entries(k->maps.stacks);
	o->procs = count_keys(bpf_map__fd(k->maps.procs), sizeof(uint32_t));
	o->procs_max = bpf_map__max_entries(k->maps.procs);
}

int tracer__stack(struct pml_tracer *t, uint32_t pid, uint64_t stack_id, struct pml_stack *out)
{
	struct pml_stack_key key = { .pid = pid, .stack_id = stack_id };

	if (bpf_map_lookup_elem(bpf_map__fd(t->skel->maps.stacks), &key, out))
		return -errno;
	return 0;
}

int tracer__stats(struct pml_tracer *t, uint32_t pid, uint64_t out[STAT__MAX])
{
	int fd = bpf_map__fd(t->skel->maps.stats);
	uint64_t *vals;
	int c, i, err = 0;

	memset(out, 0, sizeof(uint64_t) * STAT__MAX);
	vals = calloc(t->ncpus, sizeof(uint64_t) * STAT__MAX);
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, &pid, vals))
		err = -errno;
	else
		for (c = 0; c < t->ncpus; c++)
			for (i = 0; i < STAT__MAX; i++)
				out[i] += vals[c * STAT__MAX + i];
	/* BPF counts each recorded allocation once, under its layer
	 * (STAT_ALLOCS itself only counts the --count-only floor's hits). */
	out[STAT_ALLOCS] += out[STAT_RAW_ALLOCS] + out[STAT_OBJ_ALLOCS] + out[STAT_INL_ALLOCS];
	free(vals);
	return err;
}
