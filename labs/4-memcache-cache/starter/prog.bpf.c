// SPDX-License-Identifier: GPL-2.0
// Exercise 4: answer GETs for cached keys from a map with XDP_TX, a small in-kernel cache in BMC's spirit
// (README.md has the task). Edit this file, then run `npx kflex-lab lab check 4`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "kflex_lab.h"

/* The grader fills this map: a key (zero-padded) and the value to answer with. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, struct lab_mc_key);
  __type(value, struct lab_mc_value);
} cache SEC(".maps");

/* Room to build an answer in, one per CPU: the longest is 8 + 6 + 31 + 3 + 2 + 2 + 64 + 7 = 123 bytes. */
#define ANSWER_MAX 128
struct scratch {
  __u32 len; /* a length the verifier should forget: store it, read it back through a volatile pointer */
  char buf[ANSWER_MAX];
};
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct scratch);
} scratch SEC(".maps");

/* The IPv4 header checksum: set ip->check = 0 first, then ip->check = ip_checksum(ip). */
static __always_inline __attribute__((unused)) __u16 ip_checksum(struct iphdr *ip) {
  __u32 sum = 0;
  __u16 *w = (__u16 *)ip;
#pragma clang loop unroll(full)
  for (int i = 0; i < (int)sizeof(*ip) / 2; i++) sum += w[i];
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)~sum;
}

SEC("xdp")
int answer_gets(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;

  /* TODO 1: parse `get <key>\r\n` as in exercise 3 (Ethernet, IPv4, UDP to LAB_MC_PORT, the frame header). */

  /* TODO 2: look the key up in `cache`; a miss passes the request on to memcached (XDP_PASS). */

  /* TODO 3: build the answer in the scratch buffer: the request's 8-byte frame header (same request id,
   *         sequence 0, 1 datagram), then "VALUE <key> 0 <len>\r\n<data>\r\nEND\r\n". */

  /* TODO 4: bpf_xdp_adjust_tail() the packet to the answer's length (then reload data and data_end and
   *         check the headers again: the verifier forgets them), swap the MAC addresses, the IPv4
   *         addresses and the UDP ports, fix tot_len, the IPv4 checksum and the UDP length (UDP checksum 0),
   *         copy the answer in with bpf_xdp_store_bytes(), and return XDP_TX. */

  (void)data;
  (void)data_end;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
