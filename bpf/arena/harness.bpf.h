/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The batch loop every benchmark program shares, so the arena programs, the kernel-managed ones and the
 * empty floor are timed exactly the same way: one bpf_ktime_get_ns() pair around `count` operations on the
 * keys bench_keys[start..), each operation given its 32-byte key and 64-byte value built as KFlex's
 * CreateKeyValueBuffer builds them (the key id repeated).
 */
#ifndef KFLEX_LAB_ARENA_HARNESS_H
#define KFLEX_LAB_ARENA_HARNESS_H

#include "bench.h"

#ifndef EINVAL
#define EINVAL 22
#endif
#ifndef ENOMEM
#define ENOMEM 12
#endif
#ifndef E2BIG
#define E2BIG 7
#endif

/* --break=<struct> (test only): that structure's update drops some keys while reporting them done. */
const volatile __u32 break_struct = 0;

/* The run's key ids, written by the runner through the mmapped .bss before the first batch. */
__u64 bench_keys[BENCH_MAX_OPS];
/* What a dump program read back from its structure: one key id per element, in the structure's order. */
__u64 dump_keys[BENCH_MAX_OPS];

/* An opaque zero: an index that starts from it stays imprecise, so a can_loop loop converges. */
volatile __u32 bench_zero;

struct bench_kv {
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
};

static __always_inline void bench_kv_fill(struct bench_kv *kv, __u64 k)
{
	for (int i = 0; i < BENCH_KEY_WORDS; i++)
		kv->key[i] = k;
	for (int i = 0; i < BENCH_VALUE_WORDS; i++)
		kv->val[i] = k;
}

/* The elements whose 32-byte key is the key id repeated: compared word by word, as ffkx's memequal does. */
#define BENCH_KEY_EQ(words, k) ((words)[0] == (k) && (words)[1] == (k) && (words)[2] == (k) && (words)[3] == (k))
/* A stored element is intact when all its key and value words hold its key id. */
#define BENCH_ELEM_OK(e)                                                                                     \
	(BENCH_KEY_EQ((e)->key, (e)->key[0]) && (e)->val[0] == (e)->key[0] && (e)->val[1] == (e)->key[0] &&    \
	 (e)->val[2] == (e)->key[0] && (e)->val[3] == (e)->key[0] && (e)->val[4] == (e)->key[0] &&             \
	 (e)->val[5] == (e)->key[0] && (e)->val[6] == (e)->key[0] && (e)->val[7] == (e)->key[0])

static __always_inline bool bench_broken(__u32 which, __u64 k)
{
	return break_struct == which && k % 7 == 3;
}

/*
 * Run `op` (int op(__u64 key_id): 1 hit, 0 miss, < 0 error) on args->count keys and time the batch.
 * bpf_for (the open-coded numeric iterator) hands out the index from memory, so the verifier sees one
 * loop state whatever the iteration; the hit and done counters live in the context for the same reason.
 */
#define BENCH_BATCH(args, op)                                                                                \
	({                                                                                                       \
		__u32 __n = (args)->count, __start = (args)->start;                                              \
		__u64 __t0;                                                                                      \
		int __i;                                                                                         \
		if (__n > BENCH_MAX_BATCH || __start >= BENCH_MAX_OPS || __start + __n > BENCH_MAX_OPS)          \
			return -E2BIG;                                                                           \
		(args)->hits = 0;                                                                                \
		(args)->done = 0;                                                                                \
		(args)->err = 0;                                                                                 \
		__t0 = bpf_ktime_get_ns();                                                                       \
		bpf_for(__i, 0, __n) {                                                                           \
			__u32 __idx = (__start + __i) & (BENCH_MAX_OPS - 1);                                     \
			int __r = op(bench_keys[__idx]);                                                         \
			if (__r < 0) {                                                                           \
				(args)->err = __r;                                                               \
				break;                                                                           \
			}                                                                                        \
			(args)->hits += __r;                                                                     \
			(args)->done++;                                                                          \
		}                                                                                                \
		(args)->ns = bpf_ktime_get_ns() - __t0;                                                          \
		0;                                                                                               \
	})

/* Record one element read back by a dump program (args->done counts them, even past the buffer's end). */
static __always_inline void bench_dump_one(struct bench_args *args, __u64 key, bool ok)
{
	__u64 n = args->done;

	if (n < BENCH_MAX_OPS)
		dump_keys[n & (BENCH_MAX_OPS - 1)] = key;
	args->done = n + 1;
	if (!ok)
		args->bad++;
}

#endif
