// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: KFlex's own loop iterator (bpf_iter_loop_new/next/destroy, a kfunc set of the paper
// kernel's fork: KFlex's bpf/include/ffkx_util.bpf.h builds ffkx_for/ffkx_while on it). An open-ended
// iteration the kernel may end; the program stops it itself after ten rounds. Upstream never had it.
#include "mechanism.h"

// The fork's uapi (KFlex's 0001-Patch.patch to libbpf's include/uapi/linux/bpf.h): opaque, 8 bytes.
struct bpf_iter_loop {
  __u64 __opaque[1];
} __attribute__((aligned(8)));

int bpf_iter_loop_new(struct bpf_iter_loop *it) __ksym;
int *bpf_iter_loop_next(struct bpf_iter_loop *it) __ksym;
void bpf_iter_loop_destroy(struct bpf_iter_loop *it) __ksym;

__u64 rounds; // result, for a reader of the .bss map

SEC("xdp")
int mech_kflex_loop(void *ctx) {
  struct bpf_iter_loop it;
  __u64 n = 0;
  bpf_iter_loop_new(&it);
  while (bpf_iter_loop_next(&it)) {
    if (++n == 10) break;
  }
  bpf_iter_loop_destroy(&it);
  rounds = n;
  return n == 10 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
