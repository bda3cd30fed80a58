// SPDX-License-Identifier: Apache-2.0
// labctl: the student labs' loader and reader, compiled and run INSIDE the server VM (never on the host).
// Trusted code of the lab; the object it loads is a student's. Output: lines on stdout, the first of
// each section an `@@name` marker; libbpf's messages (the verifier's log among them) go to stderr.
//
//   labctl xdp OBJ IFNAME PINDIR        load, pin maps under PINDIR, attach the first XDP program in driver mode
//   labctl dump PINNED_MAP              every entry as a JSON line {"key":"hex","values":["hex" per CPU]}
//   labctl update PINNED_MAP KEYHEX VALHEX [KEYHEX VALHEX...]
//   labctl list OBJ PROG LISTFILE       exercise 5: fill map "nodes" from LISTFILE (- for stdin), run PROG (syscall) once per head
//   labctl htab OBJ PROG OPSFILE        exercise 6: run PROG (syscall) once per operation (OPSFILE, - for stdin), then walk the arena table
//
// Exit codes: 0 done, 2 the object did not load (the verifier's log is on stderr), 3 cannot open the object,
// 4 no such program or map, 5 attach or test run failed, 64 usage.
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LAB_USERSPACE 1
#include "kflex_lab.h"

static int print_fn(enum libbpf_print_level level, const char *fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, ap);
}

static void hex(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) printf("%02x", b[i]);
}

static int unhex(const char *s, void *out, size_t n) {
  unsigned char *b = out;
  if (strlen(s) != 2 * n) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) return -1;
    b[i] = (unsigned char)v;
  }
  return 0;
}

static struct bpf_object *open_obj(const char *path) {
  struct bpf_object *obj = bpf_object__open_file(path, NULL);
  if (!obj) {
    printf("@@open-failed\n%s: %s\n", path, strerror(errno));
    exit(3);
  }
  return obj;
}

/** Instructions that tell how a program loops: may_goto (cond_break, can_loop) and calls of bpf_loop. */
static void scan(struct bpf_program *p) {
  const struct bpf_insn *in = bpf_program__insns(p);
  size_t n = bpf_program__insn_cnt(p);
  unsigned may_goto = 0, loop_calls = 0, kfunc_calls = 0;
  for (size_t i = 0; in && i < n; i++) {
    if (in[i].code == (BPF_JMP | 0xe0)) may_goto++; /* BPF_JCOND: may_goto */
    if (in[i].code == (BPF_JMP | BPF_CALL) && in[i].src_reg == 0 && in[i].imm == BPF_FUNC_loop) loop_calls++;
    if (in[i].code == (BPF_JMP | BPF_CALL) && in[i].src_reg == BPF_PSEUDO_KFUNC_CALL) kfunc_calls++;
  }
  printf("@@scan {\"program\":\"%s\",\"insns\":%zu,\"may_goto\":%u,\"bpf_loop\":%u,\"kfunc_calls\":%u}\n", bpf_program__name(p), n, may_goto,
         loop_calls, kfunc_calls);
}

static void load(struct bpf_object *obj) {
  if (bpf_object__load(obj)) {
    printf("@@load-failed\n");
    exit(2);
  }
  struct bpf_program *p;
  bpf_object__for_each_program(p, obj) scan(p);
}

static struct bpf_program *prog_named(struct bpf_object *obj, const char *name, enum bpf_prog_type type) {
  struct bpf_program *p;
  bpf_object__for_each_program(p, obj) {
    if (name ? !strcmp(bpf_program__name(p), name) : bpf_program__type(p) == type) return p;
  }
  printf("@@no-program\n");
  bpf_object__for_each_program(p, obj) printf("%s (section %s)\n", bpf_program__name(p), bpf_program__section_name(p));
  exit(4);
}

static int cmd_xdp(const char *path, const char *ifname, const char *pindir) {
  struct bpf_object *obj = open_obj(path);
  struct bpf_program *prog = prog_named(obj, NULL, BPF_PROG_TYPE_XDP);
  load(obj);
  int ifindex = if_nametoindex(ifname);
  if (!ifindex) {
    printf("@@attach-failed\nno interface %s\n", ifname);
    return 5;
  }
  int err = bpf_object__pin_maps(obj, pindir);
  if (err) {
    printf("@@pin-failed\n%s\n", strerror(-err));
    return 5;
  }
  err = bpf_xdp_attach(ifindex, bpf_program__fd(prog), XDP_FLAGS_DRV_MODE, NULL);
  if (err) {
    printf("@@attach-failed\n%s\n", strerror(-err));
    return 5;
  }
  printf("@@attached %s\n", bpf_program__name(prog));
  return 0;
}

static int cmd_dump(const char *pin) {
  int fd = bpf_obj_get(pin);
  if (fd < 0) {
    printf("@@no-map %s\n", pin);
    return 4;
  }
  struct bpf_map_info info = {0};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) return 5;
  int percpu = info.type == BPF_MAP_TYPE_PERCPU_ARRAY || info.type == BPF_MAP_TYPE_PERCPU_HASH || info.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  int ncpu = percpu ? libbpf_num_possible_cpus() : 1;
  size_t stride = percpu ? (info.value_size + 7) / 8 * 8 : info.value_size;
  unsigned char *key = calloc(1, info.key_size), *next = calloc(1, info.key_size), *val = calloc(ncpu, stride);
  printf("@@map {\"type\":%u,\"key_size\":%u,\"value_size\":%u,\"max_entries\":%u,\"cpus\":%d}\n", info.type, info.key_size, info.value_size,
         info.max_entries, ncpu);
  void *prev = NULL;
  while (!bpf_map_get_next_key(fd, prev, next)) {
    memcpy(key, next, info.key_size);
    prev = key;
    if (bpf_map_lookup_elem(fd, key, val)) continue;
    printf("{\"key\":\"");
    hex(key, info.key_size);
    printf("\",\"values\":[");
    for (int c = 0; c < ncpu; c++) {
      printf(c ? ",\"" : "\"");
      hex(val + c * stride, info.value_size);
      printf("\"");
    }
    printf("]}\n");
  }
  return 0;
}

static int cmd_update(const char *pin, int n, char **kv) {
  int fd = bpf_obj_get(pin);
  if (fd < 0) {
    printf("@@no-map %s\n", pin);
    return 4;
  }
  struct bpf_map_info info = {0};
  __u32 len = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &len)) return 5;
  unsigned char key[256], val[4096];
  for (int i = 0; i + 1 < n; i += 2) {
    if (info.key_size > sizeof(key) || info.value_size > sizeof(val) || unhex(kv[i], key, info.key_size) || unhex(kv[i + 1], val, info.value_size)) {
      printf("@@bad-entry the map's key is %u bytes, its value %u bytes\n", info.key_size, info.value_size);
      return 64;
    }
    if (bpf_map_update_elem(fd, key, val, BPF_ANY)) {
      printf("@@update-failed %s\n", strerror(errno));
      return 5;
    }
  }
  return 0;
}

static struct bpf_map *map_named(struct bpf_object *obj, const char *name) {
  struct bpf_map *m = bpf_object__find_map_by_name(obj, name);
  if (!m) {
    printf("@@no-map %s\n", name);
    exit(4);
  }
  return m;
}

static void run_ctx(struct bpf_program *prog, void *ctx, size_t size) {
  /* A syscall program's test run writes the context back into ctx_in (it refuses ctx_out). */
  LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = ctx, .ctx_size_in = size);
  int err = bpf_prog_test_run_opts(bpf_program__fd(prog), &o);
  if (err) {
    printf("@@run-failed %s\n", strerror(-err));
    exit(5);
  }
  printf("@@retval %u\n", o.retval);
}

/* Exercise 5: LISTFILE holds `node INDEX VALUE NEXT` lines (the map "nodes") and `head INDEX` lines (one run each). */
static int cmd_list(const char *path, const char *progname, const char *listfile) {
  struct bpf_object *obj = open_obj(path);
  struct bpf_program *prog = prog_named(obj, progname, 0);
  load(obj);
  int nodes = bpf_map__fd(map_named(obj, "nodes"));
  FILE *f = strcmp(listfile, "-") ? fopen(listfile, "r") : stdin;
  if (!f) return 64;
  char kind[8];
  unsigned idx;
  while (fscanf(f, "%7s %u", kind, &idx) == 2) {
    if (!strcmp(kind, "node")) {
      struct lab_node n;
      if (fscanf(f, "%llu %u", (unsigned long long *)&n.value, &n.next) != 2) return 64;
      if (bpf_map_update_elem(nodes, &idx, &n, BPF_ANY)) {
        printf("@@update-failed nodes[%u]: %s\n", idx, strerror(errno));
        return 5;
      }
    } else {
      struct lab_list_ctx c = {.head = idx};
      run_ctx(prog, &c, sizeof(c));
      printf("@@result {\"head\":%u,\"sum\":%llu,\"count\":%u}\n", idx, (unsigned long long)c.sum, c.count);
    }
  }
  return 0;
}

/* The user address of a global of the object's .bss (where the program leaves a pointer for user space). */
static void *bss_pointer(struct bpf_object *obj, const char *var) {
  struct bpf_map *bss = NULL, *m;
  bpf_object__for_each_map(m, obj) {
    const char *n = bpf_map__name(m);
    size_t l = strlen(n);
    if (l >= 4 && !strcmp(n + l - 4, ".bss")) bss = m;
  }
  struct btf *btf = bpf_object__btf(obj);
  int id = btf ? btf__find_by_name_kind(btf, ".bss", BTF_KIND_DATASEC) : -1;
  if (!bss || id < 0) return NULL;
  const struct btf_type *sec = btf__type_by_id(btf, id);
  const struct btf_var_secinfo *vs = btf_var_secinfos(sec);
  size_t size = bpf_map__value_size(bss);
  unsigned char *data = calloc(1, size);
  int zero = 0;
  if (bpf_map_lookup_elem(bpf_map__fd(bss), &zero, data)) return NULL;
  for (int i = 0; i < btf_vlen(sec); i++) {
    const struct btf_type *v = btf__type_by_id(btf, vs[i].type);
    if (!strcmp(btf__name_by_offset(btf, v->name_off), var) && vs[i].size == sizeof(void *)) return *(void **)(data + vs[i].offset);
  }
  return NULL;
}

/* Walk the table the way the README specifies it; every pointer must lie inside the arena. */
static void walk(void *base, size_t size, struct lab_htab *h) {
#define INSIDE(p) ((char *)(p) >= (char *)base && (char *)(p) + sizeof(struct lab_hnode) <= (char *)base + size)
  printf("@@table {\"nbuckets\":%u,\"count\":%u,\"pool\":%u}\n", h->nbuckets, h->count, h->pool);
  unsigned steps = 0;
  for (unsigned b = 0; b < LAB_NBUCKETS; b++)
    for (struct lab_hnode *n = h->buckets[b]; n && steps < 100000; n = n->next, steps++) {
      if (!INSIDE(n)) {
        printf("@@bad-pointer bucket %u: %p is outside the arena\n", b, (void *)n);
        break;
      }
      printf("{\"bucket\":%u,\"key\":%llu,\"value\":%llu}\n", b, (unsigned long long)n->key, (unsigned long long)n->value);
    }
  unsigned nfree = 0;
  for (struct lab_hnode *n = h->free; n && steps < 100000; n = n->next, steps++) {
    if (!INSIDE(n)) {
      printf("@@bad-pointer free list: %p is outside the arena\n", (void *)n);
      break;
    }
    nfree++;
  }
  printf("@@free %u\n", nfree);
  if (steps >= 100000) printf("@@cycle\n");
}

/* Exercise 6: OPSFILE holds `OP KEY VALUE` lines (1 update, 2 lookup, 3 delete), run in order. */
static int cmd_htab(const char *path, const char *progname, const char *opsfile) {
  struct bpf_object *obj = open_obj(path);
  struct bpf_program *prog = prog_named(obj, progname, 0);
  load(obj);
  struct bpf_map *arena = NULL, *m;
  bpf_object__for_each_map(m, obj) if (bpf_map__type(m) == BPF_MAP_TYPE_ARENA) arena = m;
  if (!arena) {
    printf("@@no-map arena\n");
    return 4;
  }
  size_t size = 0;
  void *base = (void *)bpf_map__initial_value(arena, &size);
  /* libbpf reports the size of the arena's globals here; the mapping is max_entries pages. */
  size = (size_t)bpf_map__max_entries(arena) * (size_t)sysconf(_SC_PAGESIZE);
  FILE *f = strcmp(opsfile, "-") ? fopen(opsfile, "r") : stdin;
  if (!f) return 64;
  struct lab_op op;
  unsigned long long k, v;
  while (fscanf(f, "%u %llu %llu", &op.op, &k, &v) == 3) {
    op.key = k;
    op.value = v;
    op.ret = 0;
    run_ctx(prog, &op, sizeof(op));
    printf("@@op {\"op\":%u,\"key\":%llu,\"ret\":%d,\"value\":%llu}\n", op.op, k, op.ret, (unsigned long long)op.value);
  }
  struct lab_htab *h = bss_pointer(obj, "htab_for_user");
  if (!h || !base || (char *)h < (char *)base || (char *)(h + 1) > (char *)base + size) {
    printf("@@no-table htab_for_user=%p arena=%p+%zu\n", (void *)h, base, size);
    return 0;
  }
  walk(base, size, h);
  return 0;
}

int main(int argc, char **argv) {
  libbpf_set_print(print_fn);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc == 5 && !strcmp(argv[1], "xdp")) return cmd_xdp(argv[2], argv[3], argv[4]);
  if (argc == 3 && !strcmp(argv[1], "dump")) return cmd_dump(argv[2]);
  if (argc >= 5 && !strcmp(argv[1], "update")) return cmd_update(argv[2], argc - 3, argv + 3);
  if (argc == 5 && !strcmp(argv[1], "list")) return cmd_list(argv[2], argv[3], argv[4]);
  if (argc == 5 && !strcmp(argv[1], "htab")) return cmd_htab(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: labctl xdp OBJ IF PINDIR | dump PIN | update PIN KEYHEX VALHEX... | list OBJ PROG FILE | htab OBJ PROG FILE\n");
  return 64;
}
