// SPDX-License-Identifier: GPL-2.0
// Exercise 2: drop UDP to one port, pass the rest (README.md has the task). Edit this file, then run
// `npx kflex-lab lab check 2`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DROP_PORT 7777 /* UDP datagrams to this destination port never reach the server's sockets */

SEC("xdp")
int drop_udp_port(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *data_end = (void *)(long)ctx->data_end;

  /* TODO 1: Ethernet header, then IPv4 only (anything else: XDP_PASS). */

  /* TODO 2: UDP only (the IPv4 header's protocol is IPPROTO_UDP). The UDP header starts ihl * 4 bytes
   *         after the IPv4 header's start: options make it longer than sizeof(struct iphdr). */

  /* TODO 3: XDP_DROP when the destination port is DROP_PORT (mind the byte order); XDP_PASS otherwise. */

  (void)data;
  (void)data_end;
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
