// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: the resilient queued spin lock (bpf_res_spin_lock / bpf_res_spin_unlock, Linux 6.15),
// upstream's answer to KFlex's spin lock: taking it can fail (deadlock or timeout detected) instead of
// hanging, so the program must check the result. A lock in a map value guards a counter next to it.
// KFlex's own lock was a library, not a kernel mechanism: an MCS lock written in BPF over heap memory
// (KFlex's bpf/include/ffkx_spin_lock.bpf.h), needing only the heap, atomics and bpf_preempt_disable.
#include "mechanism.h"

// The kernel recognises the lock by this BTF name inside a map value (include/asm-generic/rqspinlock.h).
struct bpf_res_spin_lock {
  __u32 val;
};

struct guarded {
  struct bpf_res_spin_lock lock;
  __u64 count;
};

struct {
  __uint(type, MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct guarded);
} locked SEC(".maps");

int bpf_res_spin_lock(struct bpf_res_spin_lock *lock) __ksym;
void bpf_res_spin_unlock(struct bpf_res_spin_lock *lock) __ksym;

SEC("xdp")
int mech_res_spin_lock(void *ctx) {
  __u32 key = 0;
  struct guarded *g = bpf_map_lookup_elem(&locked, &key);
  if (!g) return XDP_ABORTED;
  if (bpf_res_spin_lock(&g->lock)) return XDP_DROP; // the kernel gave up on the lock: it says so
  g->count++;
  bpf_res_spin_unlock(&g->lock);
  return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
