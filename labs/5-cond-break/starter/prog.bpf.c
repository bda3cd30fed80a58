// SPDX-License-Identifier: GPL-2.0
// Exercise 5: a loop the verifier accepts only through cond_break (README.md has the task). Edit this
// file, then run `npx kflex-lab lab check 5`. Needs a kernel >= 6.9 (the smoke profile's 7.x kernel).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "kflex_lab.h" /* cond_break, can_loop, struct lab_node, struct lab_list_ctx, LAB_NIL */

/* The grader writes linked lists into this map: nodes[i].next is the index of the next node, LAB_NIL
 * ends a list. A list may be as long as the map. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, LAB_LIST_NODES);
  __type(key, __u32);
  __type(value, struct lab_node);
} nodes SEC(".maps");

/* Run by the grader with BPF_PROG_TEST_RUN, once per list: ctx->head in, ctx->sum and ctx->count out. */
SEC("syscall")
int sum_list(struct lab_list_ctx *ctx) {
  __u32 idx = ctx->head;
  __u64 sum = 0;
  __u32 count = 0;

  /* TODO: walk the list from ctx->head until LAB_NIL: add each node's value to sum, count the nodes.
   *       The verifier cannot bound this loop (a list can be 65536 nodes long), so a plain while loop is
   *       rejected; cond_break makes it acceptable. Not bpf_loop(), and no fixed bound. */
  (void)idx;

  ctx->sum = sum;
  ctx->count = count;
  return 0;
}

char LICENSE[] SEC("license") = "GPL";
