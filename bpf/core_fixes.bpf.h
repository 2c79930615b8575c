/* core_fixes.bpf.h: CO-RE reads of FPU state that hide how the kernel's layout moved between releases. */
#ifndef CORE_FIXES_BPF_H
#define CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/*
 * Before Linux 5.16, struct fpu embedded the register image as
 * "union fpregs_state state"; the series that introduced struct fpstate
 * ("x86/fpu: Provide struct fpstate", 87d0e5be0fac, and "x86/fpu: Remove
 * fpu::state", 2f27b5034244) replaced it with the fpu->fpstate pointer;
 * fpstate->is_guest came in the same release with KVM's single swap buffer
 * (75c52dad5e32, "x86/fpu: Prepare for sanitizing KVM FPU code").
 * struct fpu leaving thread_struct in 6.16 (55bc30f2e34d, "x86/fpu: Remove
 * the thread::fpu pointer") does not matter here: every tracepoint hands
 * the programs the struct fpu itself.
 */
struct fpu___pre_fpstate {
	union fpregs_state state;
} __attribute__((preserve_access_index));

struct fpstate___pre_guest {
	union fpregs_state regs;
} __attribute__((preserve_access_index));

struct fpu_view {
	__u64 xfeatures;	/* XSTATE_BV in the saved image */
	int is_guest;
};

/*
 * Direct BTF loads, not bpf_probe_read: the tracepoint's struct fpu is a
 * trusted pointer, and each helper call would cost more than the read.
 */
static __always_inline void fpu_view(struct fpu *fpu, struct fpu_view *v)
{
	if (bpf_core_field_exists(fpu->fpstate)) {
		struct fpstate *fps = fpu->fpstate;

		v->xfeatures = fps->regs.xsave.header.xfeatures;
		v->is_guest = bpf_core_field_exists(fps->is_guest) ?
			      BPF_CORE_READ_BITFIELD(fps, is_guest) : 0;
		return;
	}
	v->is_guest = 0;
	v->xfeatures = ((struct fpu___pre_fpstate *)fpu)->state.xsave.header.xfeatures;
}

/* The fpstate if it is a KVM guest's, else NULL: only the bitfield is read. */
static __always_inline void *fpu_guest_fpstate(struct fpu *fpu)
{
	struct fpstate *fps;

	if (!bpf_core_field_exists(fpu->fpstate) || !bpf_core_field_exists(struct fpstate, is_guest))
		return NULL;
	fps = fpu->fpstate;
	return BPF_CORE_READ_BITFIELD(fps, is_guest) ? fps : NULL;
}

/*
 * Only ever given an fpstate that fpu_guest_fpstate() returned, i.e. on 5.16+;
 * the guard keeps the struct fpstate relocation out of older kernels' verifier.
 */
static __always_inline __u64 fpstate_xfeatures(__u64 fpstate)
{
	if (!bpf_core_field_exists(struct fpu, fpstate))
		return 0;
	return BPF_CORE_READ((struct fpstate *)fpstate, regs.xsave.header.xfeatures);
}

/*
 * bpf_get_current_task_btf() came in 5.11 (3ca1032ab7ab, "bpf: Implement
 * get_current_task_btf and RET_PTR_TO_BTF_ID"); before it, bpf_get_current_task() gives
 * the same address as a scalar, good for BPF_CORE_READ and comparisons only.
 * libbpf resolves the check at load time; the verifier drops the other branch.
 */
static __always_inline struct task_struct *current_task(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf();
	return (struct task_struct *)bpf_get_current_task();
}

/*
 * The cgroup v2 id of the current task, as bpf_get_current_cgroup_id() would
 * return it, by BTF pointer chase (cheaper than the helper on the hot path).
 * kernfs_node::id is a u64 since 5.5 (67c0496e87d1, "kernfs: convert
 * kernfs_node->id from union kernfs_node_id to u64").  The pointer chase
 * needs bpf_get_current_task_btf() (5.11).
 */
static __always_inline __u64 current_cgroup_id(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		struct task_struct *task = bpf_get_current_task_btf();

		return task->cgroups->dfl_cgrp->kn->id;
	}
	return bpf_get_current_cgroup_id();	/* before 5.11: the helper, same id */
}

/*
 * The daemon's PID namespace (its inode), set before load; 0 for the initial
 * one, where bpf_get_current_pid_tgid() is already right.  Otherwise ids are
 * read from the task's struct pid at the level of that namespace, so they
 * match the /proc the daemon sees; tasks outside it get no ids.
 */
const volatile __u32 pidns_inum;

#define PIDNS_MAX_LEVEL 8

static __always_inline int pid_in_ns(struct pid *pid, __u32 *nr)
{
	unsigned int level = BPF_CORE_READ(pid, level);

	for (unsigned int l = 0; l < PIDNS_MAX_LEVEL && l <= level; l++) {
		struct upid *upid = &pid->numbers[l];

		if (BPF_CORE_READ(upid, ns, ns.inum) == pidns_inum) {
			*nr = BPF_CORE_READ(upid, nr);
			return 0;
		}
	}
	return -1;
}

/* tid and tgid of the current task in the daemon's PID namespace; -1 if it has none there. */
static __always_inline int current_ids(__u32 *tid, __u32 *tgid)
{
	struct task_struct *task;

	if (!pidns_inum) {
		__u64 pid_tgid = bpf_get_current_pid_tgid();

		*tid = (__u32)pid_tgid;
		*tgid = pid_tgid >> 32;
		return 0;
	}
	task = current_task();
	if (pid_in_ns(BPF_CORE_READ(task, thread_pid), tid))
		return -1;
	return pid_in_ns(BPF_CORE_READ(task, group_leader, thread_pid), tgid);
}

#endif /* CORE_FIXES_BPF_H */
