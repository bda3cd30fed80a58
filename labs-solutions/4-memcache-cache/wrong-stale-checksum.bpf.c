// SPDX-License-Identifier: GPL-2.0
// Exercise 4, WRONG: changes the IPv4 total length but not the header checksum, so the client's kernel
// discards every answer from the cache.
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
  __type(value, struct lab_mc_value);
} cache SEC(".maps");

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

static __always_inline __u16 ip_checksum(struct iphdr *ip) {
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
  struct ethhdr *eth = data;
  if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP)) return XDP_PASS;
  struct iphdr *ip = (void *)(eth + 1);
  if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP || ip->ihl != 5) return XDP_PASS;
  struct udphdr *udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(LAB_MC_PORT)) return XDP_PASS;
  char *p = (char *)(udp + 1);
  char *cmd = p + LAB_MC_HDR;
  if ((void *)(cmd + 4) > data_end) return XDP_PASS;
  if (cmd[0] != 'g' || cmd[1] != 'e' || cmd[2] != 't' || cmd[3] != ' ') return XDP_PASS;

  __u32 zero = 0;
  struct scratch *s = bpf_map_lookup_elem(&scratch, &zero);
  if (!s) return XDP_PASS;
  char *b = s->buf;

  /* The key, zero-padded for the lookup, and already in its place in the answer. */
  struct lab_mc_key key = {};
  char *k = cmd + 4;
  int i, ended = 0;
#pragma clang loop unroll(disable)
  for (i = 0; i < LAB_KEY_LEN - 1; i++) {
    if ((void *)(k + i + 1) > data_end) break;
    char c = k[i];
    if (c == '\r') {
      ended = 1;
      break;
    }
    if (c == ' ') break; /* several keys: memcached's job */
    key.key[i] = c;
    b[(14 + i) & (ANSWER_MAX - 1)] = c;
  }
  if (!ended || i == 0) return XDP_PASS;
  /* Lengths go through memory (volatile): the verifier then sees one unknown length on every path instead of
   * one path per length, and its search stays small. */
  s->len = i;
  struct lab_mc_value *v = bpf_map_lookup_elem(&cache, &key);
  if (!v) return XDP_PASS;
  __u32 klen = *(volatile __u32 *)&s->len;
  __u32 vlen = *(volatile __u32 *)&v->len;
  if (klen > LAB_KEY_LEN - 1 || vlen > LAB_VAL_MAX) return XDP_PASS;

  /* The answer: the request's frame header (its request id), then VALUE <key> 0 <len>\r\n<data>\r\nEND\r\n. */
  b[0] = p[0];
  b[1] = p[1];
  b[2] = 0;
  b[3] = 0;
  b[4] = 0;
  b[5] = 1;
  b[6] = 0;
  b[7] = 0;
  __builtin_memcpy(b + 8, "VALUE ", 6);
  __u32 o = 14 + klen;
  b[o & (ANSWER_MAX - 1)] = ' ';
  b[(o + 1) & (ANSWER_MAX - 1)] = '0';
  b[(o + 2) & (ANSWER_MAX - 1)] = ' ';
  o += 3;
  if (vlen >= 10) b[o++ & (ANSWER_MAX - 1)] = '0' + vlen / 10;
  b[o++ & (ANSWER_MAX - 1)] = '0' + vlen % 10;
  b[o++ & (ANSWER_MAX - 1)] = '\r';
  b[o++ & (ANSWER_MAX - 1)] = '\n';
  s->len = o;
#pragma clang loop unroll(disable)
  for (__u32 j = 0; j < LAB_VAL_MAX; j++) {
    if (j >= vlen) break;
    __u32 at = j & (LAB_VAL_MAX - 1);
    asm volatile("" : "+r"(at)); /* keeps clang from turning this into a pointer the verifier cannot bound */
    b[(o + j) & (ANSWER_MAX - 1)] = v->data[at];
  }
  o = *(volatile __u32 *)&s->len;
  vlen = *(volatile __u32 *)&v->len;
  if (o > ANSWER_MAX || vlen > LAB_VAL_MAX) return XDP_PASS;
  o += vlen;
  const char end[] = "\r\nEND\r\n";
#pragma clang loop unroll(full)
  for (int j = 0; j < 7; j++) b[(o + j) & (ANSWER_MAX - 1)] = end[j];
  o += 7;
  if (o > ANSWER_MAX) return XDP_PASS;

  /* Resize the packet to the answer, then turn it around. */
  int delta = (int)o - (int)((long)data_end - (long)p);
  if (bpf_xdp_adjust_tail(ctx, delta)) return XDP_PASS;
  data = (void *)(long)ctx->data;
  data_end = (void *)(long)ctx->data_end;
  eth = data;
  ip = (void *)(eth + 1);
  udp = (void *)(ip + 1);
  if ((void *)(udp + 1) > data_end) return XDP_DROP;
  unsigned char mac[ETH_ALEN];
  __builtin_memcpy(mac, eth->h_source, ETH_ALEN);
  __builtin_memcpy(eth->h_source, eth->h_dest, ETH_ALEN);
  __builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
  __be32 addr = ip->saddr;
  ip->saddr = ip->daddr;
  ip->daddr = addr;
  __be16 port = udp->source;
  udp->source = udp->dest;
  udp->dest = port;
  ip->tot_len = bpf_htons(sizeof(*ip) + sizeof(*udp) + o);
  ip->ttl = 64;
  udp->len = bpf_htons(sizeof(*udp) + o);
  udp->check = 0; /* optional for UDP over IPv4 */
  __u32 len = o & (ANSWER_MAX - 1); /* the verifier wants the length's bounds: 1 to ANSWER_MAX - 1 */
  if (len < 1 || bpf_xdp_store_bytes(ctx, sizeof(*eth) + sizeof(*ip) + sizeof(*udp), s->buf, len)) return XDP_DROP;
  return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
