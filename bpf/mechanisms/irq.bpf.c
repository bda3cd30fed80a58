// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: interrupts off and back on inside a program (bpf_local_irq_save /
// bpf_local_irq_restore, Linux 6.14), upstream's equivalent of KFlex's IRQ save/restore. The flags must
// live on the program's stack, and the verifier insists on the restore on every path.
#include "mechanism.h"

void bpf_local_irq_save(unsigned long *flags) __ksym;
void bpf_local_irq_restore(unsigned long *flags) __ksym;

__u64 sections; // result, for a reader of the .bss map

SEC("xdp")
int mech_irq(void *ctx) {
  unsigned long flags;
  bpf_local_irq_save(&flags);
  sections++;
  bpf_local_irq_restore(&flags);
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
