// SPDX-License-Identifier: GPL-2.0
// Exercise 6: a hash table on a BPF arena (README.md has the task). Edit this file, then run
// `npx kflex-lab lab check 6`. Needs a kernel >= 6.9 (the smoke profile's 7.x kernel).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "kflex_lab.h" /* __arena, bpf_arena_alloc_pages, can_loop, struct lab_htab, struct lab_hnode, struct lab_op */

/* The arena: up to 16 pages of memory shared by the program and user space (the grader maps it). */
struct {
  __uint(type, BPF_MAP_TYPE_ARENA);
  __uint(map_flags, BPF_F_MMAPABLE);
  __uint(max_entries, 16);
} arena SEC(".maps");

/* Where the grader finds the table (a user-space address of the arena). Keep the name. */
struct lab_htab __arena *htab_for_user;

/* ---- Given: the table and its node allocator. Keep them as they are: the grader checks their books
 * (every node carved from a page is in exactly one bucket or on the free list). */
static struct lab_htab __arena *table(void) {
  struct lab_htab __arena *h = htab_for_user;
  if (h) return h;
  h = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
  if (!h) return NULL;
  h->nbuckets = LAB_NBUCKETS;
  htab_for_user = h;
  return h;
}

static struct lab_hnode __arena *node_alloc(struct lab_htab __arena *h) {
  struct lab_hnode __arena *n = h->free;
  if (!n) {
    struct lab_hnode __arena *page = bpf_arena_alloc_pages(&arena, NULL, 1, NUMA_NO_NODE, 0);
    if (!page) return NULL;
    for (int i = 0; i < LAB_PAGE_SIZE / sizeof(struct lab_hnode) && can_loop; i++) {
      page[i].next = h->free;
      h->free = &page[i];
      h->pool++;
    }
    n = h->free;
    if (!n) return NULL;
  }
  h->free = n->next;
  n->next = NULL;
  return n;
}

static void node_free(struct lab_htab __arena *h, struct lab_hnode __arena *n) {
  n->next = h->free;
  h->free = n;
}

static __u32 bucket_of(__u64 key) {
  return key % LAB_NBUCKETS;
}

/* ---- Yours. Walk a bucket's chain with `while (n && can_loop)`: the verifier cannot bound it. */

/* The key's value into *value: 0, or -2 (-ENOENT) when the key is not in the table. */
static int htab_lookup(struct lab_htab __arena *h, __u64 key, __u64 *value) {
  /* TODO */
  (void)h;
  (void)key;
  (void)value;
  return -2;
}

/* Set key to value: replace the value of a key already there, else take a node from node_alloc() and
 * put it at the head of the key's bucket (count one more). 0, or -12 (-ENOMEM) when node_alloc fails. */
static int htab_update(struct lab_htab __arena *h, __u64 key, __u64 value) {
  /* TODO */
  (void)node_alloc;
  (void)h;
  (void)key;
  (void)value;
  return -12;
}

/* Remove the key: unlink its node, give it back with node_free(), count one less. 0, or -2 (-ENOENT). */
static int htab_delete(struct lab_htab __arena *h, __u64 key) {
  /* TODO */
  (void)node_free;
  (void)bucket_of;
  (void)h;
  (void)key;
  return -2;
}

/* Run by the grader with BPF_PROG_TEST_RUN, once per operation. */
SEC("syscall")
int htab_op(struct lab_op *op) {
  struct lab_htab __arena *h = table();
  if (!h) {
    op->ret = -12;
    return 0;
  }
  __u64 value = 0;
  switch (op->op) {
  case LAB_OP_UPDATE:
    op->ret = htab_update(h, op->key, op->value);
    break;
  case LAB_OP_LOOKUP:
    op->ret = htab_lookup(h, op->key, &value);
    op->value = value;
    break;
  case LAB_OP_DELETE:
    op->ret = htab_delete(h, op->key);
    break;
  default:
    op->ret = -22;
  }
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
