// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: loop termination by the kernel (upstream's cond_break, i.e. the may_goto instruction,
// counted since Linux 6.9 and timed since 6.15; KFlex's loops used it too). Two loops the verifier could
// not otherwise bound: one over a count it cannot know (a writable global), and one with no exit at all
// but the budget. Returns XDP_PASS when the first ran to its count and the second was stopped by the
// kernel, so a run (bpftool prog run) shows the mechanism working, not only verifying.
#include "mechanism.h"

// may_goto: opcode 0xe5 (BPF_JMP | BPF_JCOND | BPF_K), registers 0, a 16-bit jump offset counted in
// instructions from the next one, immediate 0: "jump when the loop budget is spent". Spelled as raw
// bytes with the encoding of the Linux 7.3 selftests' bpf_may_goto.h (included by bpf_experimental.h),
// for assemblers without the mnemonic (clang 19 does not define __BPF_FEATURE_MAY_GOTO): the offset goes
// out in the low half of a .long (spelled as a lone .short, clang 19 assembled a wrong offset).
// Little-endian layout only (the BPF target of an x86 or arm64 host).
#define cond_break                                                                              \
  ({                                                                                            \
    __label__ l_break, l_continue;                                                              \
    asm volatile goto("1: .byte 0xe5; .byte 0; .long ((%l[l_break] - 1b - 8) / 8) & 0xffff; .short 0" \
                      :::: l_break);                                                            \
    goto l_continue;                                                                            \
  l_break:                                                                                      \
    break;                                                                                      \
  l_continue:;                                                                                  \
  })

__u32 limit = 1000; // in .data: writable by user space, so the verifier cannot bound a loop by it
// Counters start from this 0 the verifier cannot know (the selftests' verifier_iterating_callbacks.c
// does the same): from a known 0 every round is a new state and the verifier gives up after a million
// instructions ("BPF program is too large") instead of seeing the loop converge.
__u32 zero;
__u64 counted; // results, for a reader of the .bss map
__u64 spins;

SEC("xdp")
int mech_cond_break(void *ctx) {
  __u32 n = zero;
  for (__u32 i = zero; i < limit; i++) {
    n++;
    cond_break;
  }
  __u64 s = zero;
  for (;;) {
    cond_break;
    s++;
  }
  counted = n;
  spins = s;
  return n == limit && s > 1 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
