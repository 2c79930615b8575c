// SPDX-License-Identifier: GPL-2.0
/* fpu_exporter.bpf.c: the kernel half, one program per tracepoint on the FPU, KVM and signal paths. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "core_fixes.bpf.h"
#include "maps.bpf.h"

#define SIGSEGV		11
#define SI_KERNEL	0x80
#define TS_COMPAT	0x0002		/* arch/x86/include/asm/thread_info.h */
#define X32_SYSCALL_BIT	0x40000000
#define NR_rt_sigreturn		15	/* x86-64 */
#define NR_x32_rt_sigreturn	(513 | X32_SYSCALL_BIT)
#define NR_ia32_rt_sigreturn	173
#define NR_ia32_sigreturn	119

char LICENSE[] SEC("license") = "GPL";

static __always_inline void count_event(__u64 cgroup_id, __u32 event, __u64 xfeatures)
{
	struct cgroup_event_key key = {
		.cgroup_id = cgroup_id,
		.xfeatures = xfeatures,
		.event = event,
	};

	counter_inc(&cgroup_events, MAP_CGROUP_EVENTS, &key);
}

static __always_inline void count_guest_xstate(__u32 tgid, __u64 xfeatures)
{
	struct guest_xstate_key key = { .tgid = tgid, .xfeatures = xfeatures };

	counter_inc(&guest_xstates, MAP_GUEST_XSTATES, &key);
}

static __always_inline struct vcpu_thread *vcpu_thread_get(void)
{
	struct vcpu_thread init = {};
	__u32 tid;

	if (current_ids(&tid, &init.tgid))
		return NULL;
	return lookup_or_init(&vcpu_threads, MAP_VCPU_THREADS, &tid, &init);
}

/* ---- x86_fpu: context switch saves and restores ---- */

/* Fires in switch_fpu() right after the outgoing task's XSAVE: the header is fresh. */
SEC("tp_btf/x86_fpu_regs_deactivated")
int BPF_PROG(regs_deactivated, struct fpu *fpu)
{
	struct fpu_view v;

	fpu_view(fpu, &v);
	if (v.is_guest) {
		__u32 tid, tgid;

		if (current_ids(&tid, &tgid) == 0)
			count_guest_xstate(tgid, v.xfeatures);
		count_event(current_cgroup_id(), EV_REGS_DEACTIVATED_GUEST, v.xfeatures);
		return 0;
	}
	count_event(current_cgroup_id(), EV_REGS_DEACTIVATED, v.xfeatures);
	return 0;
}

/*
 * Fires on every register restore.  When the fpstate is a KVM guest's,
 * kvm_load_guest_fpu() has just swapped it in: remember it for the thread so
 * kvm_fpu(load=0) can read the guest XSTATE_BV after it has been saved.
 */
SEC("tp_btf/x86_fpu_regs_activated")
int BPF_PROG(regs_activated, struct fpu *fpu)
{
	void *guest = fpu_guest_fpstate(fpu);

	if (guest) {
		struct vcpu_thread *vt = vcpu_thread_get();

		if (vt)
			vt->guest_fpstate = (__u64)guest;
	}
	count_event(current_cgroup_id(), EV_REGS_ACTIVATED, 0);
	return 0;
}

/* fpu_clone(): the parent's state copied to a new task. */
SEC("tp_btf/x86_fpu_copy_dst")
int BPF_PROG(fpu_copy_dst, struct fpu *fpu)
{
	count_event(current_cgroup_id(), EV_FPU_COPY, 0);
	return 0;
}

/* fpu__drop() at thread exit: the thread's vCPU entry goes with it. */
SEC("tp_btf/x86_fpu_dropped")
int BPF_PROG(fpu_dropped, struct fpu *fpu)
{
	__u32 tid, tgid;

	if (current_ids(&tid, &tgid) == 0)
		bpf_map_delete_elem(&vcpu_threads, &tid);
	count_event(current_cgroup_id(), EV_FPU_DROP, 0);
	return 0;
}

/* ---- kvm: guest FPU load and put ---- */

/*
 * kvm_put_guest_fpu() saves the guest registers into the guest fpstate,
 * increments vcpu->stat.fpu_reload and fires kvm_fpu(0): unloads per thread
 * are KVM's fpu_reload exactly, and the guest header is fresh here.
 */
static __always_inline int count_kvm_fpu(int load)
{
	struct vcpu_thread *vt = vcpu_thread_get();

	if (!vt)
		return 0;
	if (load) {
		vt->loads++;
		return 0;
	}
	vt->reloads++;
	if (vt->guest_fpstate)
		count_guest_xstate(vt->tgid, fpstate_xfeatures(vt->guest_fpstate));
	return 0;
}

SEC("tp_btf/kvm_fpu")
int BPF_PROG(kvm_fpu, int load)
{
	return count_kvm_fpu(load);
}

/* The classic tracepoint, for a kvm module loaded without BTF. */
struct kvm_fpu_args {
	__u64 common;
	__u32 load;
};

SEC("tracepoint/kvm/kvm_fpu")
int kvm_fpu_classic(struct kvm_fpu_args *args)
{
	return count_kvm_fpu(args->load);
}

/* ---- cgroups: the path of a v2 cgroup as it is removed ---- */

/*
 * Runs only at rmdir.  A cgroup created and removed between two scrapes is
 * named from here; the hierarchy walk would never have seen it.
 */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	struct removed_cgroup rc = {};
	__u64 id;

	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)	/* 0: the v2 hierarchy */
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	bpf_probe_read_kernel_str(rc.path, sizeof(rc.path), path);
	bpf_map_update_elem(&removed_cgroups, &id, &rc, BPF_ANY);
	return 0;
}

/* ---- signals: frames set up, restored, and restores that failed ---- */

SEC("tp_btf/signal_deliver")
int BPF_PROG(signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	unsigned long handler = (unsigned long)BPF_CORE_READ(ka, sa.sa_handler);

	/* SIG_DFL (0) and SIG_IGN (1) set up no frame. */
	if (handler > 1)
		count_event(current_cgroup_id(), EV_SIGNAL_FRAME, 0);
	return 0;
}

/* x86-64 only: this syscall tracepoint is not fired for compat syscalls. */
SEC("tracepoint/syscalls/sys_enter_rt_sigreturn")
int sys_enter_rt_sigreturn(void *ctx)
{
	count_event(bpf_get_current_cgroup_id(), EV_SIGRETURN, 0);
	return 0;
}

static __always_inline int is_sigreturn_nr(long nr, struct task_struct *task)
{
	if (nr == NR_rt_sigreturn || nr == NR_x32_rt_sigreturn)
		return 1;
	if (nr != NR_ia32_rt_sigreturn && nr != NR_ia32_sigreturn)
		return 0;
	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}

/* Optional (sigreturn.compat): runs for every syscall on the host. */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_compat_sigreturn, struct pt_regs *regs, long id)
{
	if (id == NR_rt_sigreturn)
		return 0;	/* counted by sys_enter_rt_sigreturn */
	if (is_sigreturn_nr(id, current_task()))
		count_event(bpf_get_current_cgroup_id(), EV_SIGRETURN, 0);
	return 0;
}

/* __fpu_restore_sig() found no valid FP_XSTATE_MAGIC in the frame. */
SEC("tp_btf/x86_fpu_xstate_check_failed")
int BPF_PROG(xstate_check_failed, struct fpu *fpu)
{
	count_event(current_cgroup_id(), EV_SIGRETURN_BAD_MAGIC, 0);
	return 0;
}

/*
 * Text ranges of the sigreturn syscalls, from /proc/kallsyms, set before load.
 * restore_sigcontext() sets regs->orig_ax = -1 before restoring the FPU
 * state, so the syscall number cannot tell a failed sigreturn: the stack can.
 */
const volatile __u64 sigreturn_text[MAX_SIGRETURN_RANGES][2];
const volatile __u32 sigreturn_ranges;

#define STACK_DEPTH 12

/* A frame rt_sigreturn could not restore ends in signal_fault(): SIGSEGV, SI_KERNEL. */
SEC("tp_btf/signal_generate")
int BPF_PROG(signal_generate, int sig, struct kernel_siginfo *info,
	     struct task_struct *task, int group, int result)
{
	__u64 stack[STACK_DEPTH];
	long len;

	/* SEND_SIG_NOINFO and SEND_SIG_PRIV are the pointers 0 and 1. */
	if (sig != SIGSEGV || (unsigned long)info <= 1 || task != current_task())
		return 0;
	if (BPF_CORE_READ(info, si_code) != SI_KERNEL)
		return 0;
	len = bpf_get_stack(ctx, stack, sizeof(stack), 0);
	for (int i = 0; i < STACK_DEPTH && i * 8 < len; i++) {
		for (__u32 r = 0; r < MAX_SIGRETURN_RANGES && r < sigreturn_ranges; r++) {
			if (stack[i] >= sigreturn_text[r][0] && stack[i] < sigreturn_text[r][1]) {
				count_event(current_cgroup_id(), EV_SIGRETURN_BAD_FRAME, 0);
				return 0;
			}
		}
	}
	return 0;
}
