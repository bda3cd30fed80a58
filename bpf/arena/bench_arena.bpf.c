// SPDX-License-Identifier: GPL-2.0
/*
 * kflex-lab arena benchmark, the arena side: a hash table, the libarena red-black tree, a linked list and
 * a skip list, all in one BPF arena and allocated by libarena's buddy allocator (arena_malloc/arena_free).
 * Compiled against the kernel tree's tools/testing/selftests/bpf (libarena, bpf_arena_htab.h,
 * bpf_arena_list.h) and linked with libarena's common.bpf.c, buddy.bpf.c and rbtree.bpf.c by
 * `bpftool gen object`. The counterparts of KFlex's ffkx_hashmap / ffkx_rbtree / ffkx_linked_list /
 * ffkx_skiplist, on upstream arenas.
 */
#include <libarena/common.h>
#include <libarena/asan.h>
#include <libarena/rbtree.h>
#include <bpf_arena_htab.h>
#include "harness.bpf.h"

char _license[] SEC("license") = "GPL";

/* ---------------------------------------------------------------- hash table (bpf_arena_htab.h's buckets) */

/* An element of a bucket's bpf_arena_list.h list: the tree's htab holds int keys; this one 32-byte keys. */
struct ah_elem {
	struct arena_list_node node;
	__u64 hash;
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
};
typedef struct ah_elem __arena ah_elem_t;

static struct htab __arena *ah;

/* A 64-bit mix of the key's four words (murmur3's finalizer per word). */
static __always_inline __u32 ah_hash(__u64 k)
{
	__u64 h = 0x9e3779b97f4a7c15ULL;

	for (int i = 0; i < BENCH_KEY_WORDS; i++) {
		h ^= k;
		h ^= h >> 33;
		h *= 0xff51afd7ed558ccdULL;
		h ^= h >> 33;
	}
	return (__u32)h;
}

static __always_inline ah_elem_t *ah_find(arena_list_head_t *head, __u32 hash, __u64 k)
{
	ah_elem_t *e;

	list_for_each_entry(e, head, node)
		if (e->hash == hash && BENCH_KEY_EQ(e->key, k))
			return e;
	return NULL;
}

/* Size the buckets for `items` (a power of two >= items, as ffkx-bench sizes ffkx_hashmap's). */
SEC("syscall")
int arena_hashmap_init(struct bench_args *args)
{
	__u64 n = 1, pages;
	struct htab __arena *h;
	void __arena *buckets;

	arena_subprog_init();
	while (n < args->arg && n < (1 << 24) && can_loop)
		n <<= 1;
	pages = (n * sizeof(struct htab_bucket) + __PAGE_SIZE - 1) / __PAGE_SIZE;
	h = arena_malloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	buckets = bpf_arena_alloc_pages(&arena, NULL, pages, NUMA_NO_NODE, 0);
	if (!buckets)
		return -ENOMEM;
	h->buckets = buckets;
	h->n_buckets = n;
	ah = h;
	return 0;
}

static __always_inline int ah_update(__u64 k)
{
	__u32 hash = ah_hash(k);
	arena_list_head_t *head;
	struct bench_kv kv;
	ah_elem_t *e;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_ARENA_HASHMAP, k))
		return 1;
	head = select_bucket(ah, hash);
	e = ah_find(head, hash, k);
	if (!e) {
		e = arena_malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		e->hash = hash;
		for (int i = 0; i < BENCH_KEY_WORDS; i++)
			e->key[i] = kv.key[i];
		list_add_head(&e->node, head);
	}
	for (int i = 0; i < BENCH_VALUE_WORDS; i++)
		e->val[i] = kv.val[i];
	return 1;
}

static __always_inline int ah_lookup(__u64 k)
{
	__u32 hash = ah_hash(k);
	struct bench_kv kv;
	ah_elem_t *e;

	bench_kv_fill(&kv, k);
	e = ah_find(select_bucket(ah, hash), hash, kv.key[0]);
	return e && e->val[0] == k && e->val[BENCH_VALUE_WORDS - 1] == k;
}

static __always_inline int ah_delete(__u64 k)
{
	__u32 hash = ah_hash(k);
	struct bench_kv kv;
	ah_elem_t *e;

	bench_kv_fill(&kv, k);
	e = ah_find(select_bucket(ah, hash), hash, kv.key[0]);
	if (!e)
		return 0;
	list_del(&e->node);
	arena_free(e);
	return 1;
}

SEC("syscall")
int arena_hashmap_update(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, ah_update);
}

SEC("syscall")
int arena_hashmap_lookup(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, ah_lookup);
}

SEC("syscall")
int arena_hashmap_delete(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, ah_delete);
}

/* Every bucket's elements: intact, and in the bucket their hash selects. */
SEC("syscall")
int arena_hashmap_dump(struct bench_args *args)
{
	__u64 b;
	__u32 nb;

	arena_subprog_init();
	args->bad = 0;
	args->done = 0;
	if (!ah)
		return -EINVAL;
	nb = ah->n_buckets;
	for (b = bench_zero; b < nb && can_loop; b++) {
		arena_list_head_t *head = select_bucket(ah, b);
		ah_elem_t *e;

		list_for_each_entry(e, head, node) {
			bench_dump_one(args, e->key[0],
				       BENCH_ELEM_OK(e) && e->hash == ah_hash(e->key[0]) && (e->hash & (nb - 1)) == b);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- libarena rbtree */

/* RB_NOALLOC nodes: libarena's rbnode (u64 key) with the 32-byte key and 64-byte value after it. */
struct arb_node {
	struct rbnode rb;
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
};
typedef struct arb_node __arena arb_node_t;

static struct rbtree __arena *arb_tree;

/* Duplicates allowed, as ffkx_rbtree_update and bpf_rbtree_add insert them. */
SEC("syscall")
int arena_rbtree_init(struct bench_args *args)
{
	arena_subprog_init();
	arb_tree = rb_create(RB_NOALLOC, RB_DUPLICATE);
	return arb_tree ? 0 : -ENOMEM;
}

static __always_inline int arb_update(__u64 k)
{
	struct bench_kv kv;
	arb_node_t *n;
	int ret;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_ARENA_RBTREE, k))
		return 1;
	n = arena_malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (int i = 0; i < BENCH_KEY_WORDS; i++)
		n->key[i] = kv.key[i];
	for (int i = 0; i < BENCH_VALUE_WORDS; i++)
		n->val[i] = kv.val[i];
	n->rb.key = k;
	/* The node's own address, so rb_find's value leads back to the node and its full key. */
	n->rb.value = (__u64)n;
	ret = rb_insert_node(arb_tree, &n->rb);
	return ret ? ret : 1;
}

static __always_inline int arb_lookup(__u64 k)
{
	struct bench_kv kv;
	__u64 value = 0;
	arb_node_t *n;

	bench_kv_fill(&kv, k);
	if (rb_find(arb_tree, kv.key[0], &value))
		return 0;
	n = (arb_node_t *)value;
	return BENCH_KEY_EQ(n->key, k) && n->val[0] == k && n->val[BENCH_VALUE_WORDS - 1] == k;
}

/* libarena's rbnode_find is static: the same walk, to the node rb_remove_node() takes. */
static __always_inline arb_node_t *arb_find(__u64 k)
{
	struct rbnode __arena *node = arb_tree->root;

	while (node && can_loop) {
		if (node->key == k)
			return (arb_node_t *)node;
		node = k < node->key ? node->left : node->right;
	}
	return NULL;
}

static __always_inline int arb_delete(__u64 k)
{
	struct bench_kv kv;
	arb_node_t *n;

	bench_kv_fill(&kv, k);
	n = arb_find(kv.key[0]);
	if (!n || !BENCH_KEY_EQ(n->key, k))
		return 0;
	if (rb_remove_node(arb_tree, &n->rb))
		return -EINVAL;
	arena_free(n);
	return 1;
}

SEC("syscall")
int arena_rbtree_update(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, arb_update);
}

SEC("syscall")
int arena_rbtree_lookup(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, arb_lookup);
}

SEC("syscall")
int arena_rbtree_delete(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, arb_delete);
}

/* In order through parent links: intact nodes, sorted keys, consistent links; then libarena's own check. */
SEC("syscall")
int arena_rbtree_dump(struct bench_args *args)
{
	struct rbnode __arena *node, *p;
	__u64 prev = 0;
	bool first = true;
	int ret;

	arena_subprog_init();
	args->bad = 0;
	args->done = 0;
	if (!arb_tree)
		return -EINVAL;
	node = arb_tree->root;
	while (node && node->left && can_loop)
		node = node->left;
	while (node && can_loop) {
		arb_node_t *e = (arb_node_t *)node;
		bool links = (!node->left || node->left->parent == node) && (!node->right || node->right->parent == node);

		bench_dump_one(args, e->key[0],
			       BENCH_ELEM_OK(e) && node->key == e->key[0] && links && (first || node->key >= prev));
		prev = node->key;
		first = false;
		if (node->right) {
			node = node->right;
			while (node->left && can_loop)
				node = node->left;
			continue;
		}
		p = node->parent;
		while (p && node == p->right && can_loop) {
			node = p;
			p = p->parent;
		}
		node = p;
	}
	ret = rb_integrity_check(arb_tree);
	if (ret)
		args->err = ret;
	return 0;
}

/* ---------------------------------------------------------------- linked list (bpf_arena_list.h) */

struct al_node {
	struct arena_list_node node;
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
};
typedef struct al_node __arena al_node_t;

static struct arena_list_head __arena al_head;

static __always_inline int al_update(__u64 k)
{
	struct bench_kv kv;
	al_node_t *n;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_ARENA_LIST, k))
		return 1;
	n = arena_malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	for (int i = 0; i < BENCH_KEY_WORDS; i++)
		n->key[i] = kv.key[i];
	for (int i = 0; i < BENCH_VALUE_WORDS; i++)
		n->val[i] = kv.val[i];
	list_add_head(&n->node, &al_head);
	return 1;
}

static __always_inline al_node_t *al_find(__u64 k)
{
	al_node_t *e;

	list_for_each_entry(e, &al_head, node)
		if (BENCH_KEY_EQ(e->key, k))
			return e;
	return NULL;
}

static __always_inline int al_lookup(__u64 k)
{
	struct bench_kv kv;
	al_node_t *e;

	bench_kv_fill(&kv, k);
	e = al_find(kv.key[0]);
	return e && e->val[0] == k && e->val[BENCH_VALUE_WORDS - 1] == k;
}

static __always_inline int al_delete(__u64 k)
{
	struct bench_kv kv;
	al_node_t *e;

	bench_kv_fill(&kv, k);
	e = al_find(kv.key[0]);
	if (!e)
		return 0;
	list_del(&e->node);
	arena_free(e);
	return 1;
}

SEC("syscall")
int arena_linked_list_update(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, al_update);
}

SEC("syscall")
int arena_linked_list_lookup(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, al_lookup);
}

SEC("syscall")
int arena_linked_list_delete(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, al_delete);
}

SEC("syscall")
int arena_linked_list_dump(struct bench_args *args)
{
	al_node_t *e;

	arena_subprog_init();
	args->bad = 0;
	args->done = 0;
	list_for_each_entry(e, &al_head, node) {
		bench_dump_one(args, e->key[0], BENCH_ELEM_OK(e));
	}
	return 0;
}

/* ---------------------------------------------------------------- skip list (this project's own) */

/* A node with `height` forward pointers in use (geometric heights, p = 1/2, at most BENCH_SKIPLIST_LEVELS). */
struct as_node {
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
	__u32 height;
	__u32 pad;
	struct as_node __arena *next[];
};
typedef struct as_node __arena as_node_t;

static as_node_t *as_head;
/* The last node before the key on each level, filled by as_search (single-threaded benchmark). */
static as_node_t * __arena as_preds[BENCH_SKIPLIST_LEVELS];

SEC("syscall")
int arena_skiplist_init(struct bench_args *args)
{
	as_node_t *h;

	arena_subprog_init();
	h = arena_malloc(sizeof(*h) + BENCH_SKIPLIST_LEVELS * sizeof(h->next[0]));
	if (!h)
		return -ENOMEM;
	h->height = BENCH_SKIPLIST_LEVELS;
	/* One store at a time: LLVM 19 turns a run of zero stores into a memset it cannot emit for the arena. */
	for (int i = 0; i < BENCH_SKIPLIST_LEVELS; i++) {
		h->next[i] = NULL;
		barrier();
	}
	as_head = h;
	return 0;
}

/*
 * Fill as_preds with the last node whose key is below k, on every level from the top. A global function:
 * the verifier checks it once, on its own, instead of inside every caller's loop.
 */
__noinline int as_search(__u64 k)
{
	as_node_t *x = as_head;
	__u32 i;

	for (i = bench_zero; i < BENCH_SKIPLIST_LEVELS && can_loop; i++) {
		__u32 lvl = BENCH_SKIPLIST_LEVELS - 1 - i;

		while (can_loop) {
			as_node_t *nx = x->next[lvl];

			if (!nx || nx->key[0] >= k)
				break;
			x = nx;
		}
		as_preds[lvl] = x;
	}
	return 0;
}

/* De Bruijn table for the index of the lowest set bit of a 32-bit word. */
static const __u8 as_debruijn[32] = { 0,  1,  28, 2,  29, 14, 24, 3,  30, 22, 20, 15, 25, 17, 4,  8,
				       31, 27, 13, 23, 21, 19, 16, 7,  26, 12, 18, 6,  11, 5,  10, 9 };

/*
 * A geometric height (p = 1/2) in [1, BENCH_SKIPLIST_LEVELS]: one plus the number of trailing one bits of
 * a random word, found without a loop or a branch per bit, so the verifier sees one unknown height rather
 * than twenty known ones (each of which it would carry through libarena's allocator).
 */
static __always_inline __u32 as_random_height(void)
{
	__u32 r = ~bpf_get_prandom_u32() | (1u << (BENCH_SKIPLIST_LEVELS - 1));
	__u32 h = as_debruijn[((r & -r) * 0x077cb531u) >> 27] + 1;

	return h > BENCH_SKIPLIST_LEVELS ? BENCH_SKIPLIST_LEVELS : h;
}

static __always_inline int as_update(__u64 k)
{
	struct bench_kv kv;
	as_node_t *n;
	__u32 h;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_ARENA_SKIPLIST, k))
		return 1;
	h = as_random_height();
	/*
	 * Every node has room for all levels (232 bytes, a 256-byte buddy block): with a size that depends on
	 * the height, or two allocation sites, the verifier walks libarena's buddy allocator once per size
	 * and gives up (1M instructions).
	 */
	n = arena_malloc(sizeof(*n) + BENCH_SKIPLIST_LEVELS * sizeof(n->next[0]));
	if (!n)
		return -ENOMEM;
	for (int i = 0; i < BENCH_KEY_WORDS; i++)
		n->key[i] = kv.key[i];
	for (int i = 0; i < BENCH_VALUE_WORDS; i++)
		n->val[i] = kv.val[i];
	n->height = h;
	as_search(k);
	for (__u32 i = bench_zero; i < h && i < BENCH_SKIPLIST_LEVELS && can_loop; i++) {
		as_node_t *p = as_preds[i];

		n->next[i] = p->next[i];
		p->next[i] = n;
	}
	return 1;
}

static __always_inline int as_lookup(__u64 k)
{
	as_node_t *x = as_head, *nx;
	struct bench_kv kv;
	__u32 i;

	bench_kv_fill(&kv, k);
	for (i = bench_zero; i < BENCH_SKIPLIST_LEVELS && can_loop; i++) {
		__u32 lvl = BENCH_SKIPLIST_LEVELS - 1 - i;

		while (can_loop) {
			nx = x->next[lvl];
			if (!nx || nx->key[0] > k)
				break;
			if (nx->key[0] == k)
				return BENCH_KEY_EQ(nx->key, k) && nx->val[0] == k && nx->val[BENCH_VALUE_WORDS - 1] == k;
			x = nx;
		}
	}
	return 0;
}

static __always_inline int as_delete(__u64 k)
{
	struct bench_kv kv;
	as_node_t *c;

	bench_kv_fill(&kv, k);
	as_search(kv.key[0]);
	c = as_preds[0]->next[0];
	if (!c || !BENCH_KEY_EQ(c->key, k))
		return 0;
	for (__u32 i = bench_zero; i < c->height && i < BENCH_SKIPLIST_LEVELS && can_loop; i++) {
		as_node_t *p = as_preds[i];

		if (p->next[i] == c)
			p->next[i] = c->next[i];
	}
	arena_free(c);
	return 1;
}

SEC("syscall")
int arena_skiplist_update(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, as_update);
}

SEC("syscall")
int arena_skiplist_lookup(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, as_lookup);
}

SEC("syscall")
int arena_skiplist_delete(struct bench_args *args)
{
	arena_subprog_init();
	return BENCH_BATCH(args, as_delete);
}

/* Level 0 in order (intact, sorted); every higher level sorted and no longer than the one below it. */
SEC("syscall")
int arena_skiplist_dump(struct bench_args *args)
{
	__u64 below = ~0ULL;
	as_node_t *x;
	__u32 i;

	arena_subprog_init();
	args->bad = 0;
	args->done = 0;
	if (!as_head)
		return -EINVAL;
	for (x = as_head->next[0]; x && can_loop; x = x->next[0]) {
		bench_dump_one(args, x->key[0], BENCH_ELEM_OK(x) && x->height >= 1 && x->height <= BENCH_SKIPLIST_LEVELS);
	}
	for (i = bench_zero; i < BENCH_SKIPLIST_LEVELS && can_loop; i++) {
		__u64 len = bench_zero, prev = 0; /* an opaque start, so the walk converges */

		for (x = as_head->next[i]; x && can_loop; x = x->next[i]) {
			if ((len && x->key[0] < prev) || x->height <= i)
				args->bad++;
			prev = x->key[0];
			len++;
		}
		if (len > below)
			args->bad++;
		below = len;
	}
	return 0;
}
