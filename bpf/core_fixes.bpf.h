/* core_fixes.bpf.h: CO-RE reads of FPU state that hide how the kernel's layout moved between releases. */
#ifndef CORE_FIXES_BPF_H
#define CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

#include "fpu_exporter.h"

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
	int enlarged;		/* a dynamic (XFD) fpstate larger than the default, e.g. for AMX */
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
		/*
		 * A task given permission for a dynamic feature (AMX, 5.16: "x86/fpu:
		 * Prepare for dynamic feature states") gets an fpstate allocated beside
		 * the default one embedded at the end of struct fpu (fpstate_realloc()).
		 */
		v->enlarged = bpf_core_field_exists(fpu->__fpstate) && (void *)fps != (void *)&fpu->__fpstate;
		return;
	}
	v->is_guest = 0;
	v->enlarged = 0;
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
 * The cgroup v2 id of a task, as bpf_get_current_cgroup_id() would return it
 * for the current one, by BTF pointer chase (cheaper than the helper on the
 * hot path).  kernfs_node::id is a u64 since 5.5 (67c0496e87d1, "kernfs:
 * convert kernfs_node->id from union kernfs_node_id to u64").  A direct load
 * needs a BTF task pointer (5.11); before, the same chain by probe reads.
 */
static __always_inline __u64 task_cgroup_id(struct task_struct *task)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return task->cgroups->dfl_cgrp->kn->id;
	return BPF_CORE_READ(task, cgroups, dfl_cgrp, kn, id);
}

#define PF_EXITING	0x00000004	/* include/linux/sched.h, unchanged since 2.6 */

/* Exiting (PF_EXITING) and not yet a zombie: between exit_signals() and exit_notify(). */
static __always_inline int task_exiting(struct task_struct *task)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return (task->flags & PF_EXITING) && !task->exit_state;
	return (BPF_CORE_READ(task, flags) & PF_EXITING) && !BPF_CORE_READ(task, exit_state);
}

static __always_inline __u64 current_cgroup_id(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return task_cgroup_id(bpf_get_current_task_btf());
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

/*
 * The struct kvm_vcpu that KVM loaded on the current thread, or NULL.
 * vcpu_load() registers vcpu->preempt_notifier on the thread
 * (hlist_add_head: it is first) until vcpu_put(), and kvm_fpu fires between
 * the two; KVM is the only user of preempt notifiers.  Two container_of steps
 * give the vCPU, trusted only if its pid is the thread's (KVM_RUN sets
 * vcpu->pid before it loads the vCPU).  struct kvm_vcpu is in the kvm
 * module's BTF where kvm is a module: CO-RE finds it there.  Reads go through
 * bpf_probe_read_kernel, as the classic tracepoint program has no BTF pointer.
 */
static __always_inline struct kvm_vcpu *current_kvm_vcpu(void)
{
	struct task_struct *task = current_task();
	struct hlist_node *first;
	struct kvm_vcpu *vcpu;

	if (!bpf_core_field_exists(task->preempt_notifiers) ||
	    !bpf_core_field_exists(struct kvm_vcpu, preempt_notifier) ||
	    !bpf_core_field_exists(struct kvm_vcpu, pid))
		return NULL;
	first = BPF_CORE_READ(task, preempt_notifiers.first);
	if (!first)
		return NULL;
	vcpu = (struct kvm_vcpu *)((char *)first -
				   bpf_core_field_offset(struct preempt_notifier, link) -
				   bpf_core_field_offset(struct kvm_vcpu, preempt_notifier));
	if (BPF_CORE_READ(vcpu, pid) != BPF_CORE_READ(task, thread_pid))
		return NULL;
	return vcpu;
}

/*
 * The identity of the current thread's vCPU (once: a thread keeps the label
 * of the first vCPU it ran) and its XCR0 state (at every load: the guest
 * writes XCR0 with XSETBV, the VMM with KVM_SET_XCRS).
 *
 * kvm->userspace_pid came with "KVM: trigger uevents when creating or
 * destroying a VM" (4.13); it is the global pid of the thread that made the
 * VM, so a daemon in a PID namespace, or a kernel without it, uses the tgid.
 * vcpu->vcpu_idx, the vCPU's position in kvm->vcpus (creation order), came
 * with 8750e72a79dd ("KVM: remember position in kvm->vcpus array"), which
 * every supported kernel has (stable took it back to 4.19); vcpu_id is the
 * APIC id the VMM chose, not an index.
 * arch.guest_supported_xcr0 is in every release through 6.18; "x86/kvm/fpu:
 * Remove kvm_vcpu_arch.guest_supported_xcr0" (posted in 2022, not merged)
 * would leave the same value in guest_fpu.fpstate->user_xfeatures, which
 * kvm_vcpu_after_set_cpuid() sets to it since "x86/kvm/fpu: Limit guest
 * user_xfeatures to supported bits of XCR0" (5.18): that is the fallback.
 */
static __always_inline void kvm_vcpu_read(struct vcpu_thread *vt, __u32 tgid)
{
	struct kvm_vcpu *vcpu = current_kvm_vcpu();
	__u32 flags = VT_KVM_XCR0;

	if (!vcpu)
		return;
	if (!(vt->flags & VT_KVM_ID) && bpf_core_field_exists(vcpu->vcpu_idx)) {
		vt->vcpu_idx = BPF_CORE_READ(vcpu, vcpu_idx);
		vt->vm_pid = !pidns_inum && bpf_core_field_exists(struct kvm, userspace_pid) ?
			     BPF_CORE_READ(vcpu, kvm, userspace_pid) : tgid;
		vt->flags |= VT_KVM_ID;
	}
	if (!bpf_core_field_exists(vcpu->arch.xcr0))
		return;
	if (bpf_core_field_exists(vcpu->arch.guest_supported_xcr0) &&
	    bpf_core_field_offset(vcpu->arch.guest_supported_xcr0) ==
	    bpf_core_field_offset(vcpu->arch.xcr0) + 8) {
		__u64 x[2];	/* side by side, as in every release so far: one read */

		if (bpf_probe_read_kernel(x, sizeof(x), &vcpu->arch.xcr0))
			return;
		vt->xcr0 = x[0];
		vt->supported_xcr0 = x[1];
		vt->flags |= flags | VT_KVM_SUPPORTED;
		return;
	}
	vt->xcr0 = BPF_CORE_READ(vcpu, arch.xcr0);
	if (bpf_core_field_exists(vcpu->arch.guest_supported_xcr0)) {
		vt->supported_xcr0 = BPF_CORE_READ(vcpu, arch.guest_supported_xcr0);
		flags |= VT_KVM_SUPPORTED;
	} else if (bpf_core_field_exists(vcpu->arch.guest_fpu.fpstate) &&
		   bpf_core_field_exists(struct fpstate, user_xfeatures)) {
		vt->supported_xcr0 = BPF_CORE_READ(vcpu, arch.guest_fpu.fpstate, user_xfeatures);
		flags |= VT_KVM_SUPPORTED;
	}
	vt->flags |= flags;
}

#endif /* CORE_FIXES_BPF_H */
