/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kflex-lab arena benchmark: what the BPF programs and the runner share.
 *
 * Every benchmark program is a SEC("syscall") program run by BPF_PROG_TEST_RUN with a struct bench_args
 * as its context. It runs args->count operations on the keys bench_keys[start .. start+count) and times
 * the whole batch inside the program with bpf_ktime_get_ns (the kernel refuses `repeat`/`duration` for
 * syscall programs). The workload mirrors KFlex's bench/BenchDataStructures.cpp: a 32-byte key made of
 * the 64-bit key id repeated 4 times, a 64-byte value made of it repeated 8 times.
 */
#ifndef KFLEX_LAB_ARENA_BENCH_H
#define KFLEX_LAB_ARENA_BENCH_H

#define BENCH_KEY_WORDS 4   /* 32-byte keys, as ffkx-bench registers them (Args({32, 64, ...})) */
#define BENCH_VALUE_WORDS 8 /* 64-byte values */
#define BENCH_KEY_SIZE (BENCH_KEY_WORDS * 8)
#define BENCH_VALUE_SIZE (BENCH_VALUE_WORDS * 8)

/* The most keys one run can hold (ffkx-bench uses 100000 items and 100000 iterations). */
#define BENCH_MAX_OPS (1 << 17)
/* The most operations one BPF_PROG_TEST_RUN call performs. */
#define BENCH_MAX_BATCH 4096

/* Levels of the arena skip list: 16 keeps a node in a 256-byte block; with 100000 keys ~3 nodes reach the top. */
#define BENCH_SKIPLIST_LEVELS 16

/* Which structure --break=<struct> corrupts (rodata break_struct); 0 = none. */
enum bench_struct {
	BS_NONE = 0,
	BS_BPF_HASHMAP = 1,
	BS_BPF_RBTREE = 2,
	BS_BPF_LIST = 3,
	BS_ARENA_HASHMAP = 4,
	BS_ARENA_RBTREE = 5,
	BS_ARENA_LIST = 6,
	BS_ARENA_SKIPLIST = 7,
};

/* The context of every benchmark, init and dump program (in: start, count, arg; out: the rest). */
struct bench_args {
	unsigned int start; /* first index into bench_keys */
	unsigned int count; /* operations to run */
	unsigned long long arg; /* init: the number of items the structure is sized for */
	unsigned long long ns; /* out: bpf_ktime_get_ns() after the batch minus before it */
	unsigned long long done; /* out: operations run (less than count only if a loop ran out of budget) */
	unsigned long long hits; /* out: updates done, lookups that found the key with its value, deletes that removed one */
	long long err; /* out: the first error (e.g. -ENOMEM), 0 if none */
	unsigned long long bad; /* dump: elements whose key words, value words or order are wrong */
};

#endif
