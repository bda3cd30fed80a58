/* SPDX-License-Identifier: Apache-2.0 */
/*
 * kflex_lab.h: the student labs' one header, written for this lab. `#include "kflex_lab.h"` in your
 * program; `kflex-lab lab check` builds it with -I pointing here, inside the server VM. Do not copy it into
 * your folder: the grader uses its own copy, so the structures below are what it reads back.
 *
 *   cond_break, can_loop   loops the verifier cannot bound (exercise 5), on kernels >= 6.9
 *   __arena, bpf_arena_*   BPF arenas (exercise 6), on kernels >= 6.9
 *   struct lab_*           the layouts exercises 5 and 6 share with the grader
 */
#ifndef KFLEX_LAB_H
#define KFLEX_LAB_H

#include <linux/types.h>

#ifndef LAB_USERSPACE
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/*
 * may_goto (BPF_JMP | BPF_JCOND): "jump if the loop budget is used up". The verifier accepts a loop
 * around it without proving a bound: the kernel ends the loop itself (after a count, or on newer kernels
 * a time slice), so every iteration must leave the program in a state it can stop in.
 */
#ifdef __BPF_FEATURE_MAY_GOTO
#define __LAB_MAY_GOTO "may_goto %l[l_break]"
#else
/* clang emits the mnemonic only for -mcpu=v4 (which 6.1 kernels refuse): the same 8 bytes by hand,
 * code 0xe5, no registers, the jump offset in instructions (16 bits, written as the low half of a 32-bit
 * word: the assembler fixes up 4 bytes), no immediate (little-endian). */
#define __LAB_MAY_GOTO "1: .byte 0xe5; .byte 0; .long ((%l[l_break] - 1b - 8) / 8) & 0xffff; .short 0"
#endif
/* Leave the enclosing loop (a `break`) when the budget is used up; use it inside for/while/do. */
#define cond_break                        \
  ({                                      \
    __label__ l_break, l_continue;        \
    asm volatile goto(__LAB_MAY_GOTO :::: \
                          l_break);       \
    goto l_continue;                      \
  l_break:                                \
    break;                                \
  l_continue:;                            \
  })
/* An expression: true while the budget lasts, e.g. `while (node && can_loop)`. */
#define can_loop                          \
  ({                                      \
    __label__ l_break, l_continue;        \
    int __ok = 1;                         \
    asm volatile goto(__LAB_MAY_GOTO :::: \
                          l_break);       \
    goto l_continue;                      \
  l_break:                                \
    __ok = 0;                             \
  l_continue:;                            \
    __ok;                                 \
  })

/* Pointers into a BPF arena: clang emits the address-space casts, the verifier checks the arena is the program's. */
#define __arena __attribute__((address_space(1)))
#define NUMA_NO_NODE (-1)
void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt, int node_id, __u64 flags) __ksym __weak;
void bpf_arena_free_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym __weak;
#else
#define __arena
#endif

#define LAB_PAGE_SIZE 4096

/* ---- Exercises 3 and 4: memcached over UDP. Each datagram starts with an 8-byte frame header (request
 * id, sequence number, number of datagrams, reserved; big-endian), then the text protocol: `get KEY\r\n`. */
#define LAB_MC_PORT 11211
#define LAB_MC_HDR 8
#define LAB_KEY_LEN 32 /* keys are at most 31 bytes here; the rest is zeros */
#define LAB_VAL_MAX 64
struct lab_mc_key {
  char key[LAB_KEY_LEN];
};
/* Exercise 4's cache: what to answer for a key (the grader fills the map "cache" with these). */
struct lab_mc_value {
  __u32 len;
  char data[LAB_VAL_MAX];
};

/* ---- Exercise 5: a linked list in an array map, summed by a syscall program. */
#define LAB_NIL 0xffffffffu   /* `next` of the last node */
#define LAB_LIST_NODES 65536  /* max_entries of the map "nodes" */
struct lab_node {
  __u64 value;
  __u32 next; /* index of the next node in "nodes", or LAB_NIL */
  __u32 pad;
};
/* The program's context (BPF_PROG_TEST_RUN's ctx_in/ctx_out): the grader sets head, reads sum and count. */
struct lab_list_ctx {
  __u32 head;
  __u32 count;
  __u64 sum;
};

/* ---- Exercise 6: a hash table in a BPF arena. */
#define LAB_NBUCKETS 64
struct lab_hnode {
  struct lab_hnode __arena *next; /* next node in the same bucket, or in the free list */
  __u64 key;
  __u64 value;
};
struct lab_htab {
  __u32 nbuckets; /* LAB_NBUCKETS */
  __u32 count;    /* keys in the table */
  __u32 pool;     /* nodes ever carved from arena pages: each is in exactly one bucket or in the free list */
  __u32 pad;
  struct lab_hnode __arena *free;
  struct lab_hnode __arena *buckets[LAB_NBUCKETS];
};
/* One operation, the syscall program's context. */
enum { LAB_OP_UPDATE = 1, LAB_OP_LOOKUP = 2, LAB_OP_DELETE = 3 };
struct lab_op {
  __u32 op;
  __s32 ret; /* 0, or -2 (-ENOENT) for a lookup or delete of a missing key, -12 (-ENOMEM) when full */
  __u64 key;
  __u64 value; /* in for an update, out for a lookup */
};

#endif
