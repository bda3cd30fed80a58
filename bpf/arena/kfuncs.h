/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kfuncs the arena benchmark and the kernel tree's libarena call, declared with Linux 7.3's BPF-side
 * signatures. Force-included (-include) before every BPF source, with -DBPF_NO_KFUNC_PROTOTYPES: a kernel
 * whose BTF was encoded by an older pahole has no kfunc declaration tags, so its vmlinux.h declares no
 * kfunc, and one that has them must not declare them twice. The graph API is called through its `_impl`
 * forms (explicit meta/offset arguments), which 7.3 keeps for programs built against older headers.
 */
#ifndef KFLEX_LAB_ARENA_KFUNCS_H
#define KFLEX_LAB_ARENA_KFUNCS_H

#include <vmlinux.h>
#include <bpf/bpf_helpers.h>

/* libarena (common.h's arena_stdout/arena_stderr, bpf_arena_spin_lock.h) */
extern int bpf_stream_vprintk(int stream_id, const char *fmt__str, const void *args, __u32 len__sz) __ksym __weak;
extern void bpf_preempt_disable(void) __ksym __weak;
extern void bpf_preempt_enable(void) __ksym __weak;
extern void bpf_local_irq_save(unsigned long *flags__irq_flag) __ksym __weak;
extern void bpf_local_irq_restore(unsigned long *flags__irq_flag) __ksym __weak;

/* The kernel-managed side: allocated objects, bpf_list_*, bpf_rbtree_* */
extern void *bpf_obj_new_impl(__u64 local_type_id__k, void *meta__ign) __ksym;
extern void bpf_obj_drop_impl(void *p__alloc, void *meta__ign) __ksym;
extern int bpf_list_push_front_impl(struct bpf_list_head *head, struct bpf_list_node *node, void *meta__ign, __u64 off) __ksym;
extern struct bpf_list_node *bpf_list_pop_front(struct bpf_list_head *head) __ksym;
extern int bpf_rbtree_add_impl(struct bpf_rb_root *root, struct bpf_rb_node *node,
			       bool (less)(struct bpf_rb_node *a, const struct bpf_rb_node *b), void *meta__ign,
			       __u64 off) __ksym;
extern struct bpf_rb_node *bpf_rbtree_remove(struct bpf_rb_root *root, struct bpf_rb_node *node) __ksym;
extern struct bpf_rb_node *bpf_rbtree_first(struct bpf_rb_root *root) __ksym;
extern struct bpf_rb_node *bpf_rbtree_root(struct bpf_rb_root *root) __ksym;
extern struct bpf_rb_node *bpf_rbtree_left(struct bpf_rb_root *root, struct bpf_rb_node *node) __ksym;
extern struct bpf_rb_node *bpf_rbtree_right(struct bpf_rb_root *root, struct bpf_rb_node *node) __ksym;

#endif
