// SPDX-License-Identifier: GPL-2.0
// Mechanism probe: BPF arenas, upstream's successor to KFlex's heaps (Linux 6.9; at most 4 GiB). An arena
// map, a page allocated from it with bpf_arena_alloc_pages, written and read back through an __arena
// pointer (clang >= 19 emits the address-space casts between arena and kernel addresses), then freed.
// A syscall program: bpf_arena_alloc_pages was sleepable-only when arenas came (6.9), so an XDP program would
// measure that restriction instead of the arena. bpftool cannot run this type (the kernel refuses its
// `repeat`), so the probe is loaded, not run.
#include "mechanism.h"

#ifndef __BPF_FEATURE_ADDR_SPACE_CAST
#error "arena pointers need clang >= 19 (__BPF_FEATURE_ADDR_SPACE_CAST)"
#endif
// Address space 1 is the arena's; btf_type_tag lets the kernel see which pointers point into it.
#define __arena __attribute__((address_space(1))) __attribute__((btf_type_tag("arena")))
#define NUMA_NO_NODE (-1)

struct {
  __uint(type, MAP_TYPE_ARENA);
  __uint(map_flags, F_MMAPABLE);
  __uint(max_entries, 4); // pages
} arena SEC(".maps");

void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt, int node_id, __u64 flags) __ksym;
void bpf_arena_free_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym;

SEC("syscall")
int mech_arena(void *ctx) {
  // volatile: the compiler must really store to and load from the page, not fold the values.
  volatile __u64 __arena *page = bpf_arena_alloc_pages(&arena, (void __arena *)0, 1, NUMA_NO_NODE, 0);
  if (!page) return 1;
  page[0] = 0x6b666c6578; // "kflex"
  page[1] = page[0] + 1;
  int ok = page[1] == 0x6b666c6579;
  bpf_arena_free_pages(&arena, (void __arena *)page, 1);
  return ok ? 0 : 2;
}

char _license[] SEC("license") = "GPL";
