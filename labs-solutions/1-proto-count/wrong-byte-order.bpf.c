// SPDX-License-Identifier: GPL-2.0
// Exercise 1, WRONG: compares the ethertype in host byte order (ETH_P_IP, not bpf_htons(ETH_P_IP)), so no
// IPv4 frame is ever recognised and nothing is counted.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 256);
  __type(key, __u32);
  __type(value, __u64);
} proto_count SEC(".maps");

SEC("xdp")
int count_protocols(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end) return XDP_PASS;
  if (eth->h_proto != ETH_P_IP) return XDP_PASS;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end) return XDP_PASS;
  __u32 key = ip->protocol;
  __u64 *n = bpf_map_lookup_elem(&proto_count, &key);
  if (n) __sync_fetch_and_add(n, 1);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
