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
	void *fpstate;		/* NULL before 5.16 */
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

		v->fpstate = fps;
		v->xfeatures = fps->regs.xsave.header.xfeatures;
		v->is_guest = bpf_core_field_exists(fps->is_guest) ?
			      BPF_CORE_READ_BITFIELD(fps, is_guest) : 0;
		return;
	}
	v->fpstate = NULL;
	v->is_guest = 0;
	v->xfeatures = ((struct fpu___pre_fpstate *)fpu)->state.xsave.header.xfeatures;
}

static __always_inline __u64 fpstate_xfeatures(__u64 fpstate)
{
	return BPF_CORE_READ((struct fpstate *)fpstate, regs.xsave.header.xfeatures);
}

/*
 * The cgroup v2 id of the current task, as bpf_get_current_cgroup_id() would
 * return it, by BTF pointer chase (cheaper than the helper on the hot path).
 * kernfs_node::id is a u64 since 5.5 (67c0496e87d1, "kernfs: convert
 * kernfs_node->id from union kernfs_node_id to u64").
 */
static __always_inline __u64 current_cgroup_id(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->cgroups->dfl_cgrp->kn->id;
}

#endif /* CORE_FIXES_BPF_H */
