// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: preemption off and back on inside a program (bpf_preempt_disable /
// bpf_preempt_enable). Upstream since Linux 6.10; the paper kernel's fork had the same kfuncs (KFlex's
// bpf/include/ffkx_helpers.bpf.h calls them around its spin lock), so one probe answers for both.
#include "mechanism.h"

void bpf_preempt_disable(void) __ksym;
void bpf_preempt_enable(void) __ksym;

__u64 sections; // result, for a reader of the .bss map

SEC("xdp")
int mech_preempt(void *ctx) {
  bpf_preempt_disable();
  sections++;
  bpf_preempt_enable();
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
