// SPDX-License-Identifier: GPL-2.0
// Exercise 1: count IPv4 packets per IP protocol (README.md has the task). Edit this file, then run
// `npx kflex-lab lab check 1`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* The grader reads this map by its name: keep the name, the key and the value types. */
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 256);
  __type(key, __u32);   /* the IP protocol number: 1 ICMP, 6 TCP, 17 UDP */
  __type(value, __u64); /* IPv4 packets seen with that protocol */
} proto_count SEC(".maps");

SEC("xdp")
int count_protocols(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;

  /* TODO 1: the Ethernet header (struct ethhdr) starts at data. Check that all of it lies before
   *         data_end (the verifier insists), and pass every frame that is not IPv4 (ETH_P_IP). */

  /* TODO 2: the IPv4 header (struct iphdr) follows it; check it the same way. */

  /* TODO 3: look up its `protocol` in proto_count and add one to the value, atomically
   *         (__sync_fetch_and_add): two CPUs may count at the same time. */

  (void)data;
  (void)data_end;
  return XDP_PASS; /* every packet goes on to the kernel's stack */
}

char LICENSE[] SEC("license") = "GPL";
