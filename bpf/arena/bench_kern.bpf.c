// SPDX-License-Identifier: GPL-2.0
/*
 * kflex-lab arena benchmark, the kernel-managed side: BPF_MAP_TYPE_HASH, the bpf_rbtree_* graph API and
 * the bpf_list_* graph API (objects from bpf_obj_new, under a bpf_spin_lock), and the empty floor.
 * The counterparts of KFlex's bpf_hashmap / bpf_rbtree / bpf_linked_list in ffkx-bench, written against
 * upstream's API (KFlex's bpf_* baselines call kfuncs of its own kernel fork).
 */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include <bpf_experimental.h>
#include "harness.bpf.h"

char _license[] SEC("license") = "GPL";

#define private(name) SEC(".data." #name) __hidden __attribute__((aligned(8)))
#define container_of_node(ptr, type, member) ((type *)((void *)(ptr) - __builtin_offsetof(type, member)))

/* ---------------------------------------------------------------- empty floor */

static __always_inline int floor_op(__u64 k)
{
	struct bench_kv kv;

	bench_kv_fill(&kv, k);
	/* Keep the key and value built, as every other operation uses them. */
	asm volatile("" : : "r"(&kv) : "memory");
	return 1;
}

SEC("syscall")
int empty_floor(struct bench_args *args)
{
	return BENCH_BATCH(args, floor_op);
}

/* ---------------------------------------------------------------- BPF_MAP_TYPE_HASH */

/* Preallocated, as ffkx-bench's bench_hashmap_prealloc; the runner sets max_entries to the item count. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(key_size, BENCH_KEY_SIZE);
	__uint(value_size, BENCH_VALUE_SIZE);
	__uint(max_entries, 1);
} bench_hash SEC(".maps");

static __always_inline int hash_update(__u64 k)
{
	struct bench_kv kv;
	long err;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_BPF_HASHMAP, k))
		return 1;
	err = bpf_map_update_elem(&bench_hash, kv.key, kv.val, BPF_ANY);
	return err ? (int)err : 1;
}

static __always_inline int hash_lookup(__u64 k)
{
	struct bench_kv kv;
	__u64 *v;

	bench_kv_fill(&kv, k);
	v = bpf_map_lookup_elem(&bench_hash, kv.key);
	return v && v[0] == k && v[BENCH_VALUE_WORDS - 1] == k;
}

static __always_inline int hash_delete(__u64 k)
{
	struct bench_kv kv;

	bench_kv_fill(&kv, k);
	return bpf_map_delete_elem(&bench_hash, kv.key) == 0;
}

SEC("syscall")
int bpf_hashmap_update(struct bench_args *args)
{
	return BENCH_BATCH(args, hash_update);
}

SEC("syscall")
int bpf_hashmap_lookup(struct bench_args *args)
{
	return BENCH_BATCH(args, hash_lookup);
}

SEC("syscall")
int bpf_hashmap_delete(struct bench_args *args)
{
	return BENCH_BATCH(args, hash_delete);
}

/* ---------------------------------------------------------------- bpf_rbtree_* */

struct krb_node {
	struct bpf_rb_node rb;
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
};

private(RB) struct bpf_spin_lock krb_lock;
private(RB) struct bpf_rb_root krb_root __contains(krb_node, rb);

static bool krb_less(struct bpf_rb_node *a, const struct bpf_rb_node *b)
{
	struct krb_node *na = container_of_node(a, struct krb_node, rb);
	struct krb_node *nb = container_of_node(b, struct krb_node, rb);

	return na->key[0] < nb->key[0];
}

static __always_inline int krb_update(__u64 k)
{
	struct krb_node *n;
	struct bench_kv kv;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_BPF_RBTREE, k))
		return 1;
	n = bpf_obj_new_impl(bpf_core_type_id_local(struct krb_node), NULL);
	if (!n)
		return -ENOMEM;
	__builtin_memcpy(n->key, kv.key, sizeof(kv.key));
	__builtin_memcpy(n->val, kv.val, sizeof(kv.val));
	bpf_spin_lock(&krb_lock);
	bpf_rbtree_add_impl(&krb_root, &n->rb, krb_less, NULL, 0);
	bpf_spin_unlock(&krb_lock);
	return 1;
}

/* Walk from the root (bpf_rbtree_root/left/right, under the lock) to a node holding key k. */
static __always_inline struct bpf_rb_node *krb_find(struct bench_kv *kv, __u64 k)
{
	struct bpf_rb_node *rb = bpf_rbtree_root(&krb_root);

	while (rb && can_loop) {
		struct krb_node *n = container_of_node(rb, struct krb_node, rb);

		if (BENCH_KEY_EQ(n->key, k))
			return rb;
		rb = k < n->key[0] ? bpf_rbtree_left(&krb_root, rb) : bpf_rbtree_right(&krb_root, rb);
	}
	return NULL;
}

static __always_inline int krb_lookup(__u64 k)
{
	struct bpf_rb_node *rb;
	struct bench_kv kv;
	int hit = 0;

	bench_kv_fill(&kv, k);
	bpf_spin_lock(&krb_lock);
	rb = krb_find(&kv, k);
	if (rb) {
		struct krb_node *n = container_of_node(rb, struct krb_node, rb);

		hit = n->val[0] == k && n->val[BENCH_VALUE_WORDS - 1] == k;
	}
	bpf_spin_unlock(&krb_lock);
	return hit;
}

static __always_inline int krb_delete(__u64 k)
{
	struct bpf_rb_node *rb;
	struct bench_kv kv;

	bench_kv_fill(&kv, k);
	bpf_spin_lock(&krb_lock);
	rb = krb_find(&kv, k);
	if (rb)
		rb = bpf_rbtree_remove(&krb_root, rb);
	bpf_spin_unlock(&krb_lock);
	if (!rb)
		return 0;
	bpf_obj_drop_impl(container_of_node(rb, struct krb_node, rb), NULL);
	return 1;
}

SEC("syscall")
int bpf_rbtree_update(struct bench_args *args)
{
	return BENCH_BATCH(args, krb_update);
}

SEC("syscall")
int bpf_rbtree_lookup(struct bench_args *args)
{
	return BENCH_BATCH(args, krb_lookup);
}

SEC("syscall")
int bpf_rbtree_delete(struct bench_args *args)
{
	return BENCH_BATCH(args, krb_delete);
}

/* Read the tree back in order, draining it (the graph API has no in-order walk): keys, order, payloads. */
SEC("syscall")
int bpf_rbtree_dump(struct bench_args *args)
{
	__u64 prev = 0;
	bool first = true;
	__u32 i;

	args->bad = 0;
	args->done = 0;
	for (i = bench_zero; i < BENCH_MAX_OPS * 2 && can_loop; i++) {
		struct bpf_rb_node *rb;
		struct krb_node *e;

		bpf_spin_lock(&krb_lock);
		rb = bpf_rbtree_first(&krb_root);
		if (!rb) {
			bpf_spin_unlock(&krb_lock);
			break;
		}
		rb = bpf_rbtree_remove(&krb_root, rb);
		bpf_spin_unlock(&krb_lock);
		if (!rb)
			break;
		e = container_of_node(rb, struct krb_node, rb);
		bench_dump_one(args, e->key[0], BENCH_ELEM_OK(e) && (first || e->key[0] >= prev));
		prev = e->key[0];
		first = false;
		bpf_obj_drop_impl(e, NULL);
	}
	return 0;
}

/* ---------------------------------------------------------------- bpf_list_* */

struct kls_node {
	struct bpf_list_node ln;
	__u64 key[BENCH_KEY_WORDS];
	__u64 val[BENCH_VALUE_WORDS];
};

private(LS) struct bpf_spin_lock kls_lock;
private(LS) struct bpf_list_head kls_head __contains(kls_node, ln);
/* Where a walk parks the nodes it has passed (the graph API cannot walk a list without taking nodes off). */
private(LS) struct bpf_list_head kls_aside __contains(kls_node, ln);

static __always_inline int kls_update(__u64 k)
{
	struct kls_node *n;
	struct bench_kv kv;

	bench_kv_fill(&kv, k);
	if (bench_broken(BS_BPF_LIST, k))
		return 1;
	n = bpf_obj_new_impl(bpf_core_type_id_local(struct kls_node), NULL);
	if (!n)
		return -ENOMEM;
	__builtin_memcpy(n->key, kv.key, sizeof(kv.key));
	__builtin_memcpy(n->val, kv.val, sizeof(kv.val));
	bpf_spin_lock(&kls_lock);
	bpf_list_push_front_impl(&kls_head, &n->ln, NULL, 0);
	bpf_spin_unlock(&kls_lock);
	return 1;
}

/*
 * Find the first node with key k from the front: pop nodes off the front onto kls_aside until it comes up,
 * then put the passed nodes back in their order. A lookup puts the found node back first; a delete keeps
 * it and drops it after the lock is released. 1 if found (and, for a lookup, its value is right).
 */
static __always_inline int kls_walk(__u64 k, bool remove)
{
	struct kls_node *found = NULL;
	struct bpf_list_node *ln;
	struct bench_kv kv;
	int hit = 0;
	__u32 i;

	bench_kv_fill(&kv, k);
	bpf_spin_lock(&kls_lock);
	for (i = bench_zero; i < BENCH_MAX_OPS && can_loop; i++) {
		struct kls_node *n;

		ln = bpf_list_pop_front(&kls_head);
		if (!ln)
			break;
		n = container_of_node(ln, struct kls_node, ln);
		if (BENCH_KEY_EQ(n->key, k)) {
			hit = n->val[0] == k && n->val[BENCH_VALUE_WORDS - 1] == k;
			if (remove) {
				found = n;
			} else {
				bpf_list_push_front_impl(&kls_head, &n->ln, NULL, 0);
			}
			break;
		}
		bpf_list_push_front_impl(&kls_aside, &n->ln, NULL, 0);
	}
	for (i = bench_zero; i < BENCH_MAX_OPS && can_loop; i++) {
		ln = bpf_list_pop_front(&kls_aside);
		if (!ln)
			break;
		bpf_list_push_front_impl(&kls_head, ln, NULL, 0);
	}
	bpf_spin_unlock(&kls_lock);
	if (found) {
		bpf_obj_drop_impl(found, NULL);
		return 1;
	}
	return hit;
}

static __always_inline int kls_lookup(__u64 k)
{
	return kls_walk(k, false);
}

static __always_inline int kls_delete(__u64 k)
{
	return kls_walk(k, true);
}

SEC("syscall")
int bpf_linked_list_update(struct bench_args *args)
{
	return BENCH_BATCH(args, kls_update);
}

SEC("syscall")
int bpf_linked_list_lookup(struct bench_args *args)
{
	return BENCH_BATCH(args, kls_lookup);
}

SEC("syscall")
int bpf_linked_list_delete(struct bench_args *args)
{
	return BENCH_BATCH(args, kls_delete);
}

/* Read the list back from the front, draining it: keys in list order, payloads. */
SEC("syscall")
int bpf_linked_list_dump(struct bench_args *args)
{
	__u32 i;

	args->bad = 0;
	args->done = 0;
	for (i = bench_zero; i < BENCH_MAX_OPS * 2 && can_loop; i++) {
		struct bpf_list_node *ln;
		struct kls_node *e;

		bpf_spin_lock(&kls_lock);
		ln = bpf_list_pop_front(&kls_head);
		bpf_spin_unlock(&kls_lock);
		if (!ln)
			break;
		e = container_of_node(ln, struct kls_node, ln);
		bench_dump_one(args, e->key[0], BENCH_ELEM_OK(e));
		bpf_obj_drop_impl(e, NULL);
	}
	return 0;
}
