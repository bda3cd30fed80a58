// SPDX-License-Identifier: GPL-2.0
/*
 * kflex-arena-bench: times arena data structures against their kernel-managed counterparts through
 * BPF_PROG_TEST_RUN, checks every structure after every benchmark, and writes Google Benchmark JSON with
 * ffkx-bench's names (Zipfian/arena_rbtree_update beside Zipfian/bpf_rbtree_update).
 *
 * Timing: each SEC("syscall") program runs a batch of operations and brackets the whole batch with
 * bpf_ktime_get_ns(); ns/op = the sum of the batch times / the operations. The kernel refuses `repeat`
 * and `duration` for syscall programs, so the runner calls the program once per batch. The empty floor
 * (Dist/empty_floor) runs the same loop with no operation in it.
 *
 * Correctness: after each benchmark the structure is read back (through a dump program, or for
 * BPF_MAP_TYPE_HASH through the map from user space) and compared with what the operations must have left
 * (counts, every key, payloads, order); the operations' own hit counts are checked too. A wrong structure
 * prints CHECK FAILED, gets no time in the JSON (error_occurred) and makes the exit status 1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <regex.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/utsname.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"
#include "workload.h"
/* libarena's user-space view of its globals (struct buddy, u32), which the arena skeleton names. */
#include <libarena/common.h>
#include <libarena/buddy.h>
#include "bench_kern.skel.h"
#include "bench_arena.skel.h"

enum side { KERN, ARENA };
enum op { OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_FLOOR };
static const char *const OP_NAMES[] = { "update", "lookup", "delete", "floor" };

struct structure {
	const char *name; /* ffkx-bench's name with bpf_/arena_ for bpf_/ffkx_ */
	enum side side;
	int id; /* enum bench_struct, for --break */
	bool unique; /* a map (an update of a present key replaces it) rather than a multiset */
	bool list; /* O(n) per operation: sized by --list-items */
	enum { ORDER_NONE, ORDER_SORTED, ORDER_NEWEST_FIRST } order; /* the order its dump must come in */
};

static const struct structure STRUCTS[] = {
	{ "bpf_hashmap", KERN, BS_BPF_HASHMAP, true, false, ORDER_NONE },
	{ "arena_hashmap", ARENA, BS_ARENA_HASHMAP, true, false, ORDER_NONE },
	{ "bpf_rbtree", KERN, BS_BPF_RBTREE, false, false, ORDER_SORTED },
	{ "arena_rbtree", ARENA, BS_ARENA_RBTREE, false, false, ORDER_SORTED },
	{ "bpf_linked_list", KERN, BS_BPF_LIST, false, true, ORDER_NEWEST_FIRST },
	{ "arena_linked_list", ARENA, BS_ARENA_LIST, false, true, ORDER_NEWEST_FIRST },
	{ "arena_skiplist", ARENA, BS_ARENA_SKIPLIST, false, false, ORDER_SORTED },
};
#define NSTRUCTS (sizeof(STRUCTS) / sizeof(STRUCTS[0]))
static const char *const DISTS[] = { "Uniform", "Zipfian" };

static struct {
	unsigned items, list_items, batch, reps;
	uint64_t seed;
	int break_id, cpu;
	const char *out, *filter, *kconfig;
	bool list_tests, verbose;
} opt = { .items = 100000, .batch = 1024, .reps = 1, .seed = 1, .cpu = -1 };

/* ------------------------------------------------------------------ results, JSON */

struct result {
	char name[160];
	unsigned family, rep, iterations;
	double ns_per_op, cpu_ns_per_op, wall_ns_per_op;
	unsigned long long hits;
	char error[512]; /* empty when the run is good */
};
static struct result *results;
static size_t nresults, capresults;
static int failures;

static struct result *new_result(const char *name, unsigned family, unsigned rep)
{
	if (nresults == capresults) {
		capresults = capresults ? 2 * capresults : 64;
		results = realloc(results, capresults * sizeof(*results));
		if (!results) {
			perror("realloc");
			exit(2);
		}
	}
	memset(&results[nresults], 0, sizeof(results[0]));
	snprintf(results[nresults].name, sizeof(results[0].name), "%s", name);
	results[nresults].family = family;
	results[nresults].rep = rep;
	return &results[nresults++];
}

static void fail(struct result *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	fprintf(stderr, "CHECK FAILED: %s (repetition %u): %s\n", r->name, r->rep + 1, r->error);
	failures++;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Opens one object of the "benchmarks" array, after a comma unless it is the first. */
static void json_open(FILE *f, bool *first, const char *name, const char *run_name, unsigned family)
{
	fprintf(f, "%s    {\n      \"name\": ", *first ? "" : ",\n");
	*first = false;
	json_string(f, name);
	fprintf(f, ",\n      \"family_index\": %u,\n      \"per_family_instance_index\": 0,\n      \"run_name\": ", family);
	json_string(f, run_name);
	fprintf(f, ",\n");
}

/* Google Benchmark's aggregates of one family's repetitions (only when every repetition is good). */
static void json_aggregates(FILE *f, bool *first, const struct result *rs, size_t n)
{
	static const char *const aggs[] = { "mean", "median", "stddev", "cv" };
	double xs[64], cs[64], mean = 0, cmean = 0, var = 0, cvar = 0;
	char nm[200];

	if (n < 2 || n > 64)
		return;
	for (size_t i = 0; i < n; i++) {
		if (rs[i].error[0])
			return;
		xs[i] = rs[i].ns_per_op;
		cs[i] = rs[i].cpu_ns_per_op;
		mean += xs[i] / n;
		cmean += cs[i] / n;
	}
	for (size_t i = 0; i < n; i++) {
		var += (xs[i] - mean) * (xs[i] - mean) / (n - 1);
		cvar += (cs[i] - cmean) * (cs[i] - cmean) / (n - 1);
	}
	qsort(xs, n, sizeof(double), cmp_double);
	qsort(cs, n, sizeof(double), cmp_double);
	double vals[4] = { mean, n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2, sqrt(var), sqrt(var) / mean };
	double cvals[4] = { cmean, n % 2 ? cs[n / 2] : (cs[n / 2 - 1] + cs[n / 2]) / 2, sqrt(cvar), sqrt(cvar) / cmean };
	for (int a = 0; a < 4; a++) {
		snprintf(nm, sizeof(nm), "%s_%s", rs[0].name, aggs[a]);
		json_open(f, first, nm, rs[0].name, rs[0].family);
		fprintf(f,
			"      \"run_type\": \"aggregate\",\n      \"repetitions\": %zu,\n      \"threads\": 1,\n"
			"      \"aggregate_name\": \"%s\",\n      \"aggregate_unit\": \"%s\",\n      \"iterations\": %zu,\n"
			"      \"real_time\": %.6e,\n      \"cpu_time\": %.6e,\n      \"time_unit\": \"ns\"\n    }",
			n, aggs[a], a == 3 ? "percentage" : "time", n, vals[a], cvals[a]);
	}
}

static void json_result(FILE *f, bool *first, const struct result *r)
{
	json_open(f, first, r->name, r->name, r->family);
	fprintf(f, "      \"run_type\": \"iteration\",\n      \"repetitions\": %u,\n      \"repetition_index\": %u,\n"
		   "      \"threads\": 1,\n",
		opt.reps, r->rep);
	if (r->error[0]) {
		fprintf(f, "      \"iterations\": 0,\n      \"real_time\": 0,\n      \"cpu_time\": 0,\n"
			   "      \"time_unit\": \"ns\",\n      \"error_occurred\": true,\n      \"error_message\": ");
		json_string(f, r->error);
		fprintf(f, "\n    }");
		return;
	}
	fprintf(f,
		"      \"iterations\": %u,\n      \"real_time\": %.6e,\n      \"cpu_time\": %.6e,\n      \"time_unit\": \"ns\",\n"
		"      \"items_per_second\": %.6e,\n      \"wall_ns_per_op\": %.6e,\n      \"hits\": %llu\n    }",
		r->iterations, r->ns_per_op, r->cpu_ns_per_op, 1e9 / r->ns_per_op, r->wall_ns_per_op, r->hits);
}

static void json_context(FILE *f)
{
	struct utsname u;
	char date[64];
	time_t now = time(NULL);
	double load[3] = { 0, 0, 0 };

	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S+00:00", gmtime(&now));
	if (getloadavg(load, 3) < 0)
		load[0] = load[1] = load[2] = 0;
	fprintf(f, "{\n  \"context\": {\n    \"date\": \"%s\",\n    \"host_name\": ", date);
	json_string(f, u.nodename);
	fprintf(f,
		",\n    \"executable\": \"kflex-arena-bench\",\n    \"num_cpus\": %ld,\n    \"mhz_per_cpu\": 0,\n"
		"    \"cpu_scaling_enabled\": false,\n    \"caches\": [],\n    \"load_avg\": [%g,%g,%g],\n"
		"    \"library_build_type\": \"release\",\n    \"kernel_release\": ",
		sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2]);
	json_string(f, u.release);
	fprintf(f,
		",\n    \"items\": %u,\n    \"list_items\": %u,\n    \"batch\": %u,\n    \"seed\": %llu,\n"
		"    \"key_size\": %d,\n    \"value_size\": %d,\n    \"zipf_q\": %g,\n    \"zipf_v\": %g,\n"
		"    \"timing\": \"bpf_ktime_get_ns() around each batch of operations inside the program; "
		"real_time = sum of batch times / operations\"\n  },\n",
		opt.items, opt.list_items, opt.batch, (unsigned long long)opt.seed, BENCH_KEY_SIZE, BENCH_VALUE_SIZE,
		ZIPF_Q, ZIPF_V);
}

static int write_json(const char *path)
{
	FILE *f = fopen(path, "w");
	bool first = true;

	if (!f) {
		fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
		return -1;
	}
	json_context(f);
	fprintf(f, "  \"benchmarks\": [\n");
	for (size_t i = 0, j; i < nresults; i = j) {
		for (j = i; j < nresults && results[j].family == results[i].family; j++)
			json_result(f, &first, &results[j]);
		json_aggregates(f, &first, &results[i], j - i);
	}
	fprintf(f, "\n  ]\n}\n");
	return fclose(f) ? -1 : 0;
}

/* ------------------------------------------------------------------ libbpf, skeletons */

/* The tail of libbpf's messages (the verifier log of a load that fails), printed only when needed. */
static char liblog[16384];
static size_t liblog_len;

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *line = NULL;
	int n;

	if (level == LIBBPF_DEBUG && !opt.verbose)
		return 0;
	n = vasprintf(&line, fmt, ap);
	if (n < 0)
		return 0;
	if (opt.verbose)
		fputs(line, stderr);
	if ((size_t)n >= sizeof(liblog) / 2) {
		memmove(line, line + n - sizeof(liblog) / 2 + 1, sizeof(liblog) / 2);
		n = sizeof(liblog) / 2 - 1;
	}
	if (liblog_len + n >= sizeof(liblog)) {
		size_t keep = sizeof(liblog) / 2 - 1 < liblog_len ? sizeof(liblog) / 2 - 1 : liblog_len;

		memmove(liblog, liblog + liblog_len - keep, keep);
		liblog_len = keep;
	}
	memcpy(liblog + liblog_len, line, n);
	liblog_len += n;
	liblog[liblog_len] = 0;
	free(line);
	return 0;
}

/*
 * The kernel configuration libbpf resolves __kconfig externs from (libarena reads CONFIG_NR_CPUS). libbpf
 * reads /boot/config-$(uname -r) or /proc/config.gz itself; a guest with neither gets the file given with
 * --kconfig, or the kernel.config the arena stage puts beside this program.
 */
static char *kconfig_text;

static void load_kconfig(void)
{
	char path[4096], release[256];
	struct utsname u;
	const char *file = opt.kconfig;
	FILE *f;
	long n;

	uname(&u);
	snprintf(release, sizeof(release), "/boot/config-%s", u.release);
	if (!file) {
		ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 32);

		if (!access(release, R_OK) || !access("/proc/config.gz", R_OK) || len <= 0)
			return;
		path[len] = 0;
		strcpy(strrchr(path, '/') ? strrchr(path, '/') + 1 : path, "kernel.config");
		if (access(path, R_OK))
			return;
		file = path;
	}
	f = fopen(file, "r");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fprintf(stderr, "--kconfig: cannot read %s: %s\n", file, strerror(errno));
		exit(2);
	}
	kconfig_text = calloc(1, n + 1);
	if (!kconfig_text || fread(kconfig_text, 1, n, f) != (size_t)n) {
		fprintf(stderr, "--kconfig: cannot read %s\n", file);
		exit(2);
	}
	fclose(f);
}

/* One loaded skeleton, whichever side: its object, and its .bss arrays mmapped by libbpf. */
struct loaded {
	struct bench_kern *kern;
	struct bench_arena *arena;
	struct bpf_object *obj;
	uint64_t *keys, *dump;
};

static void unload(struct loaded *l)
{
	if (l->kern)
		bench_kern__destroy(l->kern);
	if (l->arena)
		bench_arena__destroy(l->arena);
	memset(l, 0, sizeof(*l));
}

static struct bpf_program *prog(const struct loaded *l, const char *name)
{
	return bpf_object__find_program_by_name(l->obj, name);
}

/* Load only the programs named in `want` (a NULL-terminated list), with --break and the hash map's size set. */
static int load(struct loaded *l, enum side side, const char *const *want, unsigned items, struct result *r)
{
	struct bpf_program *p;
	int err;

	memset(l, 0, sizeof(*l));
	liblog_len = 0;
	liblog[0] = 0;
	LIBBPF_OPTS(bpf_object_open_opts, oo, .kconfig = kconfig_text);
	if (side == KERN) {
		l->kern = bench_kern__open_opts(&oo);
		l->obj = l->kern ? l->kern->obj : NULL;
	} else {
		l->arena = bench_arena__open_opts(&oo);
		l->obj = l->arena ? l->arena->obj : NULL;
	}
	if (!l->obj) {
		fail(r, "cannot open the %s skeleton: %s", side == KERN ? "bench_kern" : "bench_arena", strerror(errno));
		return -1;
	}
	bpf_object__for_each_program(p, l->obj) {
		bool on = false;

		for (const char *const *w = want; *w; w++)
			on = on || !strcmp(bpf_program__name(p), *w);
		bpf_program__set_autoload(p, on);
	}
	if (side == KERN) {
		l->kern->rodata->break_struct = opt.break_id;
		bpf_map__set_max_entries(l->kern->maps.bench_hash, items ? items : 1);
		err = bench_kern__load(l->kern);
	} else {
		l->arena->rodata->break_struct = opt.break_id;
		err = bench_arena__load(l->arena);
	}
	if (err) {
		fprintf(stderr, "%s\n", liblog_len > 6000 ? liblog + liblog_len - 6000 : liblog);
		fail(r, "load failed (%s): the verifier or libbpf refused it, see the log above", strerror(-err));
		unload(l);
		return -1;
	}
	l->keys = (uint64_t *)(side == KERN ? l->kern->bss->bench_keys : l->arena->bss->bench_keys);
	l->dump = (uint64_t *)(side == KERN ? l->kern->bss->dump_keys : l->arena->bss->dump_keys);
	return 0;
}

static int run(const struct loaded *l, const char *name, void *ctx, size_t size, struct result *r)
{
	struct bpf_program *p = prog(l, name);
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = ctx, .ctx_size_in = size);
	int err;

	if (!p) {
		fail(r, "no program %s in the object", name);
		return -1;
	}
	err = bpf_prog_test_run_opts(bpf_program__fd(p), &o);
	if (err || o.retval) {
		fail(r, "%s: BPF_PROG_TEST_RUN returned %d, the program %d", name, err, (int)o.retval);
		return -1;
	}
	return 0;
}

static double now_ns(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* What a pass of one operation over the keys did. */
struct pass {
	unsigned long long ns, hits, done;
	double wall_ns, cpu_ns;
};

/* Run `progname` over keys [0, n) in batches of at most `batch`; 0 when every batch ran to its end. */
static int pass(const struct loaded *l, const char *progname, unsigned n, unsigned batch, struct pass *ps,
		struct result *r)
{
	double wall = 0, cpu0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);

	memset(ps, 0, sizeof(*ps));
	for (unsigned start = 0; start < n; start += batch) {
		struct bench_args a = { .start = start, .count = n - start < batch ? n - start : batch };
		double t0 = now_ns(CLOCK_MONOTONIC);

		if (run(l, progname, &a, sizeof(a), r))
			return -1;
		wall += now_ns(CLOCK_MONOTONIC) - t0;
		if (a.err) {
			fail(r, "%s: operation %llu of the batch at %u failed with %lld", progname, a.done, start, a.err);
			return -1;
		}
		if (a.done != a.count) {
			fail(r, "%s: the batch at %u ran %llu of %u operations (loop budget exhausted; lower --batch)",
			     progname, start, a.done, a.count);
			return -1;
		}
		ps->ns += a.ns;
		ps->hits += a.hits;
		ps->done += a.done;
	}
	ps->wall_ns = wall;
	ps->cpu_ns = now_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
	return 0;
}

/* ------------------------------------------------------------------ correctness */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * The key ids the structure must hold after `op` ran over keys[0..n) (a lookup or delete runs after an
 * update pass over the same keys), in the order its dump reads them; *hits: what the op must report.
 */
static size_t expected(const struct structure *s, enum op op, const uint64_t *keys, unsigned n, uint64_t *out,
		       unsigned long long *hits)
{
	size_t m = n;

	memcpy(out, keys, n * sizeof(*out));
	qsort(out, n, sizeof(*out), cmp_u64);
	if (s->unique) {
		m = 0;
		for (size_t i = 0; i < n; i++)
			if (!m || out[m - 1] != out[i])
				out[m++] = out[i];
	}
	*hits = op == OP_DELETE ? m : n;
	if (op == OP_DELETE)
		return 0;
	if (s->order == ORDER_NEWEST_FIRST)
		for (size_t i = 0; i < m; i++)
			out[i] = keys[n - 1 - i];
	return m;
}

/* Up to 5 keys of a (sorted) missing from b (sorted), as text. */
static void missing(const uint64_t *a, size_t na, const uint64_t *b, size_t nb, char *buf, size_t size)
{
	size_t i = 0, j = 0, shown = 0, total = 0;
	int off = 0;

	buf[0] = 0;
	while (i < na) {
		if (j < nb && b[j] < a[i]) {
			j++;
		} else if (j < nb && b[j] == a[i]) {
			i++;
			j++;
		} else {
			if (shown++ < 5 && off < (int)size)
				off += snprintf(buf + off, size - off, "%s%llu", shown > 1 ? "," : "", (unsigned long long)a[i]);
			total++;
			i++;
		}
	}
	if (total > 5 && off < (int)size)
		snprintf(buf + off, size - off, ",... (%zu)", total);
}

/* Read a BPF_MAP_TYPE_HASH back through the map: every key, and whether its key and value words agree. */
static size_t dump_hash(const struct loaded *l, uint64_t *got, unsigned long long *bad)
{
	int fd = bpf_map__fd(l->kern->maps.bench_hash);
	uint64_t key[BENCH_KEY_WORDS], next[BENCH_KEY_WORDS], val[BENCH_VALUE_WORDS];
	size_t n = 0;
	void *prev = NULL;

	*bad = 0;
	while (!bpf_map_get_next_key(fd, prev, next)) {
		bool ok = !bpf_map_lookup_elem(fd, next, val);

		for (int i = 0; i < BENCH_KEY_WORDS; i++)
			ok = ok && next[i] == next[0];
		for (int i = 0; i < BENCH_VALUE_WORDS; i++)
			ok = ok && val[i] == next[0];
		if (n < BENCH_MAX_OPS)
			got[n] = next[0];
		*bad += !ok;
		n++;
		memcpy(key, next, sizeof(key));
		prev = key;
	}
	return n;
}

/* Read the structure back and compare it with what the operations must have left; fail(r) on any difference. */
static void check(const struct loaded *l, const struct structure *s, enum op op, const uint64_t *keys, unsigned n,
		  const struct pass *ps, struct result *r)
{
	uint64_t *want = malloc(BENCH_MAX_OPS * sizeof(uint64_t)), *got = malloc(BENCH_MAX_OPS * sizeof(uint64_t));
	unsigned long long hits, bad = 0;
	size_t nwant, ngot;
	char miss[256], extra[256], dump[64];

	if (!want || !got) {
		fail(r, "out of memory");
		goto out;
	}
	nwant = expected(s, op, keys, n, want, &hits);
	if (ps->hits != hits) {
		fail(r, "%s reported %llu hits, expected %llu", OP_NAMES[op], ps->hits, hits);
		goto out;
	}
	if (s->side == KERN && s->id == BS_BPF_HASHMAP) {
		ngot = dump_hash(l, got, &bad);
	} else {
		struct bench_args a = { 0 };

		snprintf(dump, sizeof(dump), "%s_dump", s->name);
		if (run(l, dump, &a, sizeof(a), r))
			goto out;
		if (a.err) {
			fail(r, "%s: the structure's own check returned %lld", dump, a.err);
			goto out;
		}
		ngot = a.done;
		bad = a.bad;
		memcpy(got, l->dump, (ngot < BENCH_MAX_OPS ? ngot : BENCH_MAX_OPS) * sizeof(uint64_t));
	}
	if (bad) {
		fail(r, "%llu of %zu elements have a wrong key, value, order or link", bad, ngot);
		goto out;
	}
	if (ngot > BENCH_MAX_OPS)
		ngot = BENCH_MAX_OPS + 1; /* more than it can hold: a count mismatch below */
	if (s->order == ORDER_NEWEST_FIRST && ngot == nwant && memcmp(got, want, nwant * sizeof(uint64_t))) {
		size_t i = 0;

		while (got[i] == want[i])
			i++;
		fail(r, "element %zu from the front is key %llu, expected %llu", i, (unsigned long long)got[i],
		     (unsigned long long)want[i]);
		goto out;
	}
	if (ngot <= BENCH_MAX_OPS)
		qsort(got, ngot, sizeof(uint64_t), cmp_u64);
	if (s->order == ORDER_NEWEST_FIRST)
		qsort(want, nwant, sizeof(uint64_t), cmp_u64);
	if (ngot != nwant || memcmp(got, want, nwant * sizeof(uint64_t))) {
		missing(want, nwant, got, ngot > BENCH_MAX_OPS ? 0 : ngot, miss, sizeof(miss));
		missing(got, ngot > BENCH_MAX_OPS ? 0 : ngot, want, nwant, extra, sizeof(extra));
		fail(r, "holds %zu elements, expected %zu; missing keys [%s], unexpected keys [%s]", ngot, nwant, miss, extra);
	}
out:
	free(want);
	free(got);
}

/* ------------------------------------------------------------------ benchmarks */

static void bench_name(char *buf, size_t size, int dist, const struct structure *s, enum op op, unsigned n)
{
	char what[64];

	if (s)
		snprintf(what, sizeof(what), "%s_%s", s->name, OP_NAMES[op]);
	else
		snprintf(what, sizeof(what), "empty_floor");
	snprintf(buf, size, "%s/%s/key:%d/val:%d/items:%u/iterations:%u/manual_time", DISTS[dist], what, BENCH_KEY_SIZE,
		 BENCH_VALUE_SIZE, n, n);
}

/* The short name --filter and --list-tests use: Dist/struct_op. */
static void short_name(char *buf, size_t size, int dist, const struct structure *s, enum op op)
{
	if (s)
		snprintf(buf, size, "%s/%s_%s", DISTS[dist], s->name, OP_NAMES[op]);
	else
		snprintf(buf, size, "%s/empty_floor", DISTS[dist]);
}

/* Operations per program call: a list walk costs up to 2n loop iterations of the 8M can_loop budget. */
static unsigned batch_for(const struct structure *s, unsigned n)
{
	unsigned b = opt.batch;

	if (s && s->list) {
		unsigned cap = 4000000u / (2 * n + 2);

		b = cap < 1 ? 1 : cap < b ? cap : b;
	}
	return b > BENCH_MAX_BATCH ? BENCH_MAX_BATCH : b;
}

/* Load, fill the keys, set the structure up (and fill it for a lookup or delete): 0 when ready. */
static int prepare(struct loaded *l, const struct structure *s, enum op op, const uint64_t *keys, unsigned n,
		   struct result *r)
{
	char names[5][64];
	const char *want[8] = { 0 };
	int w = 0;

	if (!s) {
		want[w++] = "empty_floor";
	} else {
		const char *fmt[] = { "%s_init", "%s_update", "%s_%s", "%s_dump" };

		for (int i = 0; i < 4; i++) {
			snprintf(names[i], sizeof(names[i]), fmt[i], s->name, OP_NAMES[op]);
			want[w++] = names[i];
		}
		if (s->side == ARENA) {
			want[w++] = "arena_alloc_reserve";
			want[w++] = "arena_buddy_reset";
		}
	}
	if (load(l, s ? s->side : KERN, want, n, r))
		return -1;
	memcpy(l->keys, keys, n * sizeof(uint64_t));
	if (s && s->side == ARENA) {
		struct { uint64_t nr_pages; } reserve = { 8 }; /* libarena's ARENA_RESERVE_PAGES_DFL, as its tests do */
		struct bench_args a = { .arg = n };

		LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &reserve, .ctx_size_in = sizeof(reserve));

		/* -EBUSY: libbpf put the arena's globals at its start (kernels before 6.19), so it is taken already. */
		if (bpf_prog_test_run_opts(bpf_program__fd(prog(l, "arena_alloc_reserve")), &o) ||
		    (o.retval && (int)o.retval != -EBUSY)) {
			fail(r, "arena_alloc_reserve: the program returned %d", (int)o.retval);
			return -1;
		}
		if (run(l, "arena_buddy_reset", NULL, 0, r))
			return -1;
		if (prog(l, names[0]) && run(l, names[0], &a, sizeof(a), r))
			return -1;
	}
	if (s && op != OP_UPDATE) {
		struct pass fill;

		if (pass(l, names[1], n, batch_for(s, n), &fill, r))
			return -1;
		if (fill.hits != n) {
			fail(r, "filling it: %llu of %u updates done", fill.hits, n);
			return -1;
		}
	}
	return 0;
}

static void bench_one(const struct structure *s, int dist, enum op op, unsigned family, const uint64_t *keys, unsigned n)
{
	char name[160], progname[64], sn[96];

	bench_name(name, sizeof(name), dist, s, op, n);
	short_name(sn, sizeof(sn), dist, s, op);
	if (s)
		snprintf(progname, sizeof(progname), "%s_%s", s->name, OP_NAMES[op]);
	else
		snprintf(progname, sizeof(progname), "empty_floor");
	for (unsigned rep = 0; rep < opt.reps; rep++) {
		struct result *r = new_result(name, family, rep);
		struct loaded l;
		struct pass ps;

		if (prepare(&l, s, op, keys, n, r)) {
			unload(&l);
			continue;
		}
		if (!pass(&l, progname, n, batch_for(s, n), &ps, r)) {
			if (!s && ps.hits != n)
				fail(r, "the floor counted %llu of %u operations", ps.hits, n);
			else if (s)
				check(&l, s, op, keys, n, &ps, r);
		}
		unload(&l);
		if (r->error[0])
			continue;
		r->iterations = n;
		r->hits = ps.hits;
		r->ns_per_op = (double)ps.ns / n;
		r->cpu_ns_per_op = ps.cpu_ns / n;
		r->wall_ns_per_op = ps.wall_ns / n;
		printf("%-34s rep %u/%u %12.1f ns/op  (wall %.1f ns/op)  check ok\n", sn, rep + 1, opt.reps, r->ns_per_op,
		       r->wall_ns_per_op);
		fflush(stdout);
	}
}

/* ------------------------------------------------------------------ summary, main */

/* The good repetitions' ns/op of one benchmark, by short name; returns how many. */
static size_t times_of(const char *shortname, double *out, size_t max)
{
	size_t k = 0, len = strlen(shortname);

	for (size_t i = 0; i < nresults && k < max; i++)
		if (!results[i].error[0] && !strncmp(results[i].name, shortname, len) && results[i].name[len] == '/')
			out[k++] = results[i].ns_per_op;
	return k;
}

static double median(double *xs, size_t n)
{
	qsort(xs, n, sizeof(double), cmp_double);
	return n % 2 ? xs[n / 2] : (xs[n / 2 - 1] + xs[n / 2]) / 2;
}

/* For each arena_X/bpf_X pair: the median ratio over repetitions (rep i against rep i) and its range. */
static void summary(void)
{
	char a[96], b[96];
	double xs[64], ys[64], rs[64];

	printf("\n%-34s %12s %12s %8s %17s %10s\n", "pair (arena / bpf)", "arena ns/op", "bpf ns/op", "ratio", "ratio min..max",
	       "floor");
	for (int d = 0; d < 2; d++) {
		double fl[64];
		size_t nf;

		snprintf(a, sizeof(a), "%s/empty_floor", DISTS[d]);
		nf = times_of(a, fl, 64);
		for (size_t s = 0; s < NSTRUCTS; s++) {
			if (STRUCTS[s].side != ARENA)
				continue;
			for (int op = 0; op < 3; op++) {
				size_t nx, ny, n;
				double lo = 1e300, hi = 0;

				short_name(a, sizeof(a), d, &STRUCTS[s], op);
				snprintf(b, sizeof(b), "%s/bpf_%s_%s", DISTS[d], STRUCTS[s].name + strlen("arena_"), OP_NAMES[op]);
				nx = times_of(a, xs, 64);
				ny = times_of(b, ys, 64);
				if (!nx)
					continue;
				n = nx < ny ? nx : ny;
				for (size_t i = 0; i < n; i++) {
					rs[i] = xs[i] / ys[i];
					lo = rs[i] < lo ? rs[i] : lo;
					hi = rs[i] > hi ? rs[i] : hi;
				}
				if (!n) {
					printf("%-34s %12.1f %12s %8s %17s %10.1f\n", a, median(xs, nx), "-", "-", "(no pair)",
					       nf ? median(fl, nf) : 0);
					continue;
				}
				printf("%-34s %12.1f %12.1f %8.3f %8.3f..%-8.3f %10.1f\n", a, median(xs, nx), median(ys, ny),
				       median(rs, n), lo, hi, nf ? median(fl, nf) : 0);
			}
		}
	}
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: kflex-arena-bench [options]\n"
		"  --out FILE          write Google Benchmark JSON to FILE\n"
		"  --filter REGEX      run the benchmarks whose Dist/struct_op name matches (POSIX ERE)\n"
		"  --items N           keys per distribution and operations per benchmark (default 100000, ffkx-bench's)\n"
		"  --list-items N      the same for the linked lists, whose operations walk the list (default --items)\n"
		"  --repetitions N     runs of each benchmark, each on a freshly loaded structure (default 1)\n"
		"  --batch N           operations per BPF_PROG_TEST_RUN call (default 1024, at most %d)\n"
		"  --seed N            seed of the key distributions (default 1)\n"
		"  --cpu N             pin the runner to CPU N (ffkx-bench's bench.sh runs under taskset -c 0)\n"
		"  --kconfig FILE      the kernel's .config, when /boot/config-$(uname -r) and /proc/config.gz are missing\n"
		"                      (default: kernel.config beside this program, if there)\n"
		"  --break STRUCT      TEST ONLY: make STRUCT's update drop keys, to prove the check fails\n"
		"  --list-tests        print the benchmark names and exit\n"
		"  --verbose           print libbpf's messages\n",
		BENCH_MAX_BATCH);
}

static unsigned parse_uint(const char *flag, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == 0 || *end || v < lo || v > hi) {
		fprintf(stderr, "%s: %s is not a number in [%u, %u]\n", flag, s, lo, hi);
		exit(2);
	}
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "out", 1, 0, 'o' },	    { "filter", 1, 0, 'f' }, { "items", 1, 0, 'n' }, { "list-items", 1, 0, 'l' },
		{ "repetitions", 1, 0, 'r' }, { "batch", 1, 0, 'b' },  { "seed", 1, 0, 's' },	 { "cpu", 1, 0, 'c' },
		{ "break", 1, 0, 'x' },	    { "list-tests", 0, 0, 't' }, { "verbose", 0, 0, 'v' }, { "help", 0, 0, 'h' },
		{ "kconfig", 1, 0, 'k' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 'o': opt.out = optarg; break;
		case 'f': opt.filter = optarg; break;
		case 'n': opt.items = parse_uint("--items", optarg, 1, BENCH_MAX_OPS - 1); break;
		case 'l': opt.list_items = parse_uint("--list-items", optarg, 1, BENCH_MAX_OPS - 1); break;
		case 'r': opt.reps = parse_uint("--repetitions", optarg, 1, 64); break;
		case 'b': opt.batch = parse_uint("--batch", optarg, 1, BENCH_MAX_BATCH); break;
		case 's': opt.seed = strtoull(optarg, NULL, 10); break;
		case 'c': opt.cpu = parse_uint("--cpu", optarg, 0, 4095); break;
		case 't': opt.list_tests = true; break;
		case 'k': opt.kconfig = optarg; break;
		case 'v': opt.verbose = true; break;
		case 'x':
			for (size_t i = 0; i < NSTRUCTS; i++)
				if (!strcmp(optarg, STRUCTS[i].name))
					opt.break_id = STRUCTS[i].id;
			if (!opt.break_id) {
				fprintf(stderr, "--break: no structure %s (one of bpf_hashmap, arena_hashmap, bpf_rbtree, "
						"arena_rbtree, bpf_linked_list, arena_linked_list, arena_skiplist)\n", optarg);
				exit(2);
			}
			break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "unexpected argument %s\n", argv[optind]);
		usage(stderr);
		exit(2);
	}
	if (!opt.list_items)
		opt.list_items = opt.items;
}

/* The keys of one distribution for n items: Uniform on [0, n] or Zipf(n, q, v), as ffkx-bench draws them. */
static uint64_t *keys_for(int dist, unsigned n)
{
	uint64_t *k = malloc(n * sizeof(uint64_t));

	if (!k || (dist ? gen_zipf(k, n, opt.seed + 1, ZIPF_Q, ZIPF_V) : (gen_uniform(k, n, opt.seed), 0))) {
		fprintf(stderr, "cannot allocate the key distributions\n");
		exit(2);
	}
	return k;
}

int main(int argc, char **argv)
{
	regex_t re;
	unsigned family = 0;

	parse(argc, argv);
	if (opt.filter && regcomp(&re, opt.filter, REG_EXTENDED | REG_NOSUB)) {
		fprintf(stderr, "--filter: %s is not a POSIX extended regular expression\n", opt.filter);
		return 2;
	}
	if (opt.cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(opt.cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set))
			fprintf(stderr, "--cpu %d: %s (not pinned)\n", opt.cpu, strerror(errno));
	}
	libbpf_set_print(libbpf_print);
	load_kconfig();
	for (int d = 0; d < 2; d++) {
		uint64_t *keys = NULL, *lkeys = NULL;

		for (int si = -1; si < (int)NSTRUCTS; si++) {
			const struct structure *s = si < 0 ? NULL : &STRUCTS[si];

			for (int op = 0; op < (s ? 3 : 1); op++) {
				char sn[96];
				unsigned n = s && s->list ? opt.list_items : opt.items;

				short_name(sn, sizeof(sn), d, s, s ? op : OP_FLOOR);
				if (opt.filter && regexec(&re, sn, 0, NULL, 0))
					continue;
				if (opt.list_tests) {
					printf("%s\n", sn);
					continue;
				}
				if (!keys)
					keys = keys_for(d, opt.items);
				if (!lkeys)
					lkeys = opt.list_items == opt.items ? keys : keys_for(d, opt.list_items);
				bench_one(s, d, s ? op : OP_FLOOR, family++, s && s->list ? lkeys : keys, n);
			}
		}
		if (lkeys != keys)
			free(lkeys);
		free(keys);
	}
	if (opt.list_tests)
		return 0;
	summary();
	if (opt.out && write_json(opt.out))
		return 1;
	if (failures)
		fprintf(stderr, "%d benchmark run(s) failed their check or did not run; no time is reported for them\n",
			failures);
	return failures ? 1 : 0;
}
