// SPDX-License-Identifier: GPL-2.0
// The little the lab's mechanism probes need, written out so they build with any clang that has the BPF
// target and no kernel tree, no libbpf headers and no uapi headers. The numbers are the kernel's ABI
// (include/uapi/linux/bpf.h); the macros are the conventions libbpf reads from the ELF file.
#ifndef KFLEX_LAB_MECHANISM_H
#define KFLEX_LAB_MECHANISM_H

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef long long __s64;

// ELF sections and BTF-defined maps, as libbpf reads them (tools/lib/bpf/bpf_helpers.h).
#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
// A 64-bit map attribute (map_extra) travels as an enumerator (bpf_helpers.h's __ulong).
#define __ulong(name, val) enum { name##__value = (val) } name
// An extern resolved by libbpf against the running kernel's BTF: a kfunc when it is a function. Not
// __weak on purpose: a kernel without the kfunc must refuse the object, and that refusal is the answer.
#define __ksym __attribute__((section(".ksyms")))

// enum xdp_action
#define XDP_ABORTED 0
#define XDP_DROP 1
#define XDP_PASS 2

// enum bpf_map_type (uapi): ARRAY since 3.19, ARENA since 6.9. KFlex's fork numbers its heap map 34,
// right after ARENA (KFlex's bpf/vmlinux.h: BPF_MAP_TYPE_HEAP = 34); upstream gave 34 to INSN_ARRAY later.
#define MAP_TYPE_ARRAY 2
#define MAP_TYPE_ARENA 33
#define MAP_TYPE_KFLEX_HEAP 34
// map_flags
#define F_MMAPABLE (1U << 10)

// Helper 1 (BPF_FUNC_map_lookup_elem).
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

#endif
