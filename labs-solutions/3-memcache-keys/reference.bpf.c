// SPDX-License-Identifier: GPL-2.0
// Exercise 3, reference solution.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "kflex_lab.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct lab_mc_key);
  __type(value, __u64);
} key_count SEC(".maps");

SEC("xdp")
int count_gets(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl != 5) return XDP_PASS;
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(LAB_MC_PORT)) return XDP_PASS;
  char *cmd = (char *)(udp + 1) + LAB_MC_HDR;
  if ((void *)(cmd + 4) > data_end) return XDP_PASS;
  if (cmd[0] != 'g' || cmd[1] != 'e' || cmd[2] != 't' || cmd[3] != ' ') return XDP_PASS;
  struct lab_mc_key key = {};
  char *k = cmd + 4;
  int i, ended = 0;
#pragma clang loop unroll(disable)
  for (i = 0; i < LAB_KEY_LEN - 1; i++) {
    if ((void *)(k + i + 1) > data_end) break;
    if (k[i] == '\r') {
      ended = 1;
      break;
    }
    key.key[i] = k[i];
  }
  if (!ended || i == 0) return XDP_PASS;
  __u64 *n = bpf_map_lookup_elem(&key_count, &key);
  if (n) {
    __sync_fetch_and_add(n, 1);
  } else {
    __u64 one = 1;
    bpf_map_update_elem(&key_count, &key, &one, BPF_NOEXIST);
  }
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
