// SPDX-License-Identifier: GPL-2.0
// Exercise 3: parse memcache-over-UDP GETs and count keys (README.md has the task). Edit this file, then
// run `npx kflex-lab lab check 3`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "kflex_lab.h" /* LAB_MC_PORT, LAB_MC_HDR, LAB_KEY_LEN, struct lab_mc_key */

/* The grader reads this map: key = the GET's key, zero-padded to LAB_KEY_LEN bytes; value = GETs seen. */
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

  /* TODO 1: Ethernet, IPv4, UDP to port LAB_MC_PORT; everything else passes untouched. */

  /* TODO 2: the UDP payload is an 8-byte frame header (LAB_MC_HDR), then `get <key>\r\n`. Check the
   *         four bytes "get " and copy the key (up to LAB_KEY_LEN - 1 bytes, ending before "\r\n") into a
   *         zeroed struct lab_mc_key. Every read needs its own check against data_end. */

  /* TODO 3: add one to key_count[key]: look it up, and insert 1 when it is not there yet. */

  (void)data;
  (void)data_end;
  return XDP_PASS; /* memcached must still answer every GET */
}

char LICENSE[] SEC("license") = "GPL";
