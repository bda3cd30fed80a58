// SPDX-License-Identifier: GPL-2.0
// The lab's own XDP probe: counts packets per (IP protocol, destination port) in a hash map and passes
// every packet on. The VM stage attaches it in native (driver) mode to the server's link NIC, sends a
// known number of UDP packets to one port from the client, and checks that port's counter.
// Self-contained (no libbpf headers) so any clang with the BPF target can build it.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)BPF_FUNC_map_lookup_elem;
static long (*bpf_map_update_elem)(void *map, const void *key, const void *value, __u64 flags) = (void *)BPF_FUNC_map_update_elem;

struct key {
  __u16 proto; // IP protocol, or 0xffff for non-IPv4 frames (ARP, IPv6 ND...)
  __u16 port;  // destination port (host order) for TCP/UDP, else the ethertype
};

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct key);
  __type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(struct key *k) {
  __u64 *v = bpf_map_lookup_elem(&counts, k);
  if (v) {
    __sync_fetch_and_add(v, 1);
  } else {
    __u64 one = 1;
    bpf_map_update_elem(&counts, k, &one, BPF_NOEXIST);
  }
}

SEC("xdp")
int xdp_probe(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  struct ethhdr *eth = data;
  struct key k = {0xffff, 0};
  if ((void *)(eth + 1) > end) return XDP_PASS;
  k.port = __builtin_bswap16(eth->h_proto);
  if (eth->h_proto == __builtin_bswap16(ETH_P_IP)) {
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > end) return XDP_PASS;
    k.proto = ip->protocol;
    k.port = 0;
    void *l4 = (void *)ip + ip->ihl * 4;
    if (ip->protocol == IPPROTO_UDP) {
      struct udphdr *udp = l4;
      if ((void *)(udp + 1) <= end) k.port = __builtin_bswap16(udp->dest);
    } else if (ip->protocol == IPPROTO_TCP) {
      struct tcphdr *tcp = l4;
      if ((void *)(tcp + 1) <= end) k.port = __builtin_bswap16(tcp->dest);
    }
  }
  count(&k);
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
