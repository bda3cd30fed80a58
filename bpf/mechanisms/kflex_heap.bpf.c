// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: KFlex's heap (the paper kernel's BPF_MAP_TYPE_HEAP, map type 34 in its fork of v6.9;
// KFlex's bpf/include/ffkx_heap.bpf.h declares it as ffkx_heap(): u32 key, 4 KiB pages, mmapable). One
// page of heap, registered with the program by the fork's bpf_register_heap kfunc, as every KFlex
// program does first, then written and read back through the map's lookup. Upstream has no such map:
// type 34 is another map there (BPF_MAP_TYPE_INSN_ARRAY in Linux 7.3), so creating it fails.
// The heap's own pointer guards (KFlex's addr_space_cast variants) are not exercised: they need
// KFlex's heap type ids, and the load already decides whether the kernel has the heap.
#include "mechanism.h"

struct {
  __uint(type, MAP_TYPE_KFLEX_HEAP);
  __uint(key_size, 4);
  __uint(value_size, 4096);
  __uint(max_entries, 1); // one page: KFlex's heap size must be a power of two
  __uint(map_flags, F_MMAPABLE);
} heap SEC(".maps");

void bpf_register_heap(void *map) __ksym;

SEC("xdp")
int mech_kflex_heap(void *ctx) {
  bpf_register_heap(&heap);
  __u32 key = 0;
  volatile __u64 *word = bpf_map_lookup_elem(&heap, &key);
  if (!word) return XDP_ABORTED;
  word[0] = 0x6b666c6578; // "kflex"
  return word[0] == 0x6b666c6578 ? XDP_PASS : XDP_DROP;
}

char _license[] SEC("license") = "GPL";
