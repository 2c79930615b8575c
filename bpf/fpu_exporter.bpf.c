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
#define NR_arch_prctl		158	/* x86-64 */
#define NR_x32_rt_sigreturn	(513 | X32_SYSCALL_BIT)
#define NR_ia32_rt_sigreturn	173
#define NR_ia32_sigreturn	119

char LICENSE[] SEC("license") = "GPL";

static __always_inline void count_hot(__u64 cgroup_id, __u32 which)
{
	static const struct cgroup_hot_counts zero;
	struct cgroup_hot_counts *c = lookup_or_init(&cgroup_hot, MAP_CGROUP_HOT, &cgroup_id, &zero);

	if (c && which < HOT__COUNT)
		c->count[which] += 1;
}

static __always_inline void count_rare(__u64 cgroup_id, __u32 which)
{
	static const struct cgroup_rare_counts zero;
	struct cgroup_rare_counts *c = lookup_or_init(&cgroup_rare, MAP_CGROUP_RARE, &cgroup_id, &zero);

	if (c && which < RARE__COUNT)
		__sync_fetch_and_add(&c->count[which], 1);
}

static __always_inline void count_guest_xstate(__u32 tgid, __u64 xfeatures)
{
	struct guest_xstate_key key = { .tgid = tgid, .xfeatures = xfeatures };

	counter_inc(&guest_xstates, MAP_GUEST_XSTATES, &key);
}

/*
 * The calling thread's vCPU entry, made on first use.  An entry marked
 * exited belongs to a thread that is gone and not yet collected: a new
 * thread with its id (the id reused that fast) is not counted, and the loss
 * is counted as a full map would be.
 */
static __always_inline struct vcpu_thread *vcpu_thread_get(void)
{
	struct vcpu_thread init = {}, *vt;
	__u32 tid;

	if (current_ids(&tid, &init.tgid))
		return NULL;
	vt = lookup_or_init(&vcpu_threads, MAP_VCPU_THREADS, &tid, &init);
	if (vt && (vt->flags & VT_EXITED)) {
		count_full(MAP_VCPU_THREADS);
		return NULL;
	}
	return vt;
}

/* ---- x86_fpu: context switch saves and restores ---- */

/*
 * A deactivation by an exiting thread (PF_EXITING, not yet a zombie), not
 * yet known to be a save: fpu__drop() fires the same tracepoint with no
 * XSAVE behind it, then x86_fpu_dropped on the same CPU with the same fpu.
 * A context switch during do_exit() is a real save and has no such follower.
 */
struct pending_save {
	__u64 fpu;
	struct cgroup_xstate_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending_save);
} pending_saves SEC(".maps");

/*
 * Fires in switch_fpu() (switch_fpu_prepare() before 6.16) right after the
 * outgoing task's XSAVE: the header is fresh.  fpu__drop() at thread exit
 * fires it too, with no XSAVE: those are not saves and are not counted.
 */
SEC("tp_btf/x86_fpu_regs_deactivated")
int BPF_PROG(regs_deactivated, struct fpu *fpu)
{
	struct task_struct *task = current_task();
	struct pending_save *p;
	struct fpu_view v;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&pending_saves, &zero);
	if (p && p->fpu) {	/* no drop followed it: it was a switch, a real save */
		counter_inc(&cgroup_xstates, MAP_CGROUP_XSTATES, &p->key);
		p->fpu = 0;
	}
	fpu_view(fpu, &v);
	if (v.is_guest) {
		count_hot(task_cgroup_id(task), HOT_GUEST_SAVES);
		return 0;
	}
	struct cgroup_xstate_key key = {
		.cgroup_id = task_cgroup_id(task),
		.xfeatures = v.xfeatures | (v.enlarged ? XSTATE_ENLARGED : 0),
	};

	if (task_exiting(task)) {
		if (p) {
			p->fpu = (__u64)fpu;
			p->key = key;
		}
		return 0;
	}
	counter_inc(&cgroup_xstates, MAP_CGROUP_XSTATES, &key);
	return 0;
}

/*
 * Fires on every register restore.  When the fpstate is a KVM guest's,
 * kvm_load_guest_fpu() has just swapped it in: remember it for the thread
 * so kvm_fpu(load=0) can read the guest XSTATE_BV the put leaves.
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
	count_hot(current_cgroup_id(), HOT_REGS_ACTIVATED);
	return 0;
}

/* fpu_clone(): the parent's state copied to a new task. */
SEC("tp_btf/x86_fpu_copy_dst")
int BPF_PROG(fpu_copy_dst, struct fpu *fpu)
{
	count_rare(current_cgroup_id(), RARE_TASK_COPIES);
	return 0;
}

/*
 * fpu__drop() at thread exit.  Since 6.16 (016a2e6f8ae5) it returns first
 * for a thread whose state was already saved (TIF_NEED_FPU_LOAD), so this
 * counts the exits of threads whose registers were live, not all exits.
 * The deactivation just before it saved nothing: it is not counted.
 */
SEC("tp_btf/x86_fpu_dropped")
int BPF_PROG(fpu_dropped, struct fpu *fpu)
{
	struct pending_save *p;
	__u32 zero = 0;

	p = bpf_map_lookup_elem(&pending_saves, &zero);
	if (p && p->fpu == (__u64)fpu)
		p->fpu = 0;
	count_rare(current_cgroup_id(), RARE_TASK_DROPS);
	return 0;
}

/*
 * Every thread exit passes here: a vCPU thread's entry is marked so the
 * daemon reads its final counts, then deletes it.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(thread_exit, struct task_struct *p)
{
	struct vcpu_thread *vt;
	__u32 tid, tgid;

	if (current_ids(&tid, &tgid))
		return 0;
	vt = bpf_map_lookup_elem(&vcpu_threads, &tid);
	if (vt)
		vt->flags |= VT_EXITED;
	return 0;
}

/* ---- kvm: guest FPU load and put ---- */

/*
 * kvm_put_guest_fpu() saves the guest registers into the guest fpstate (or
 * finds them saved already, by a context switch since the last VM exit:
 * fpu_swap_kvm_fpstate() then skips the XSAVE), increments
 * vcpu->stat.fpu_reload and fires kvm_fpu(0).  So unloads per thread are
 * KVM's fpu_reload exactly, and the guest image is counted once per put, as
 * the put leaves it.
 */
static __always_inline int count_kvm_fpu(int load)
{
	struct vcpu_thread *vt = vcpu_thread_get();

	if (!vt)
		return 0;
	if (load) {
		kvm_vcpu_read(vt, vt->tgid);	/* first: a load counted has its identity read */
		vt->loads++;
		return 0;
	}
	vt->reloads++;
	if (vt->guest_fpstate)
		count_guest_xstate(vt->tgid, fpstate_xfeatures(vt->guest_fpstate));
	return 0;
}

/*
 * A raw tracepoint, not tp_btf: attaching it needs no BTF of the kvm module,
 * which BPF_BTF_GET_FD_BY_ID gives only to CAP_SYS_ADMIN (probes.c).
 */
SEC("raw_tp/kvm_fpu")
int BPF_PROG(kvm_fpu, int load)
{
	return count_kvm_fpu(load);
}

/* The classic tracepoint: preferred where it attaches (probes.c, prefer_classic), and for a kvm module without BTF. */
struct kvm_fpu_args {
	__u64 common;
	__u32 load;
};

SEC("tracepoint/kvm/kvm_fpu")
int kvm_fpu_classic(struct kvm_fpu_args *args)
{
	return count_kvm_fpu(args->load);
}

/* ---- cgroups: who a v2 cgroup was, as it is removed ---- */

/*
 * Runs only at rmdir.  A cgroup created and removed between two collections
 * is named from its parent's id and its own name; the daemon builds the
 * path relative to its own cgroup root, whatever namespace it runs in.
 */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	struct removed_cgroup rc = {};
	struct cgroup *parent;
	__u64 id;

	if (BPF_CORE_READ(cgrp, root, hierarchy_id) != 0)	/* 0: the v2 hierarchy */
		return 0;
	id = BPF_CORE_READ(cgrp, kn, id);
	/* struct cgroup begins with its css: the parent css is the parent cgroup */
	parent = (struct cgroup *)BPF_CORE_READ(cgrp, self.parent);
	if (parent)
		rc.parent_id = BPF_CORE_READ(parent, kn, id);
	bpf_probe_read_kernel_str(rc.name, sizeof(rc.name), BPF_CORE_READ(cgrp, kn, name));
	bpf_map_update_elem(&removed_cgroups, &id, &rc, BPF_ANY);
	return 0;
}

/* ---- dynamic features: permission requests (arch_prctl) ---- */

struct sys_enter_arch_prctl_args {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__u64 option;
	__u64 arg2;
};

struct sys_exit_args {
	__u64 common;
	__s32 nr;
	__u32 pad;
	__s64 ret;
};

/* Remembers a permission request until its result. */
static __always_inline int xcomp_request_enter(__u64 option, __u64 feature)
{
	struct xcomp_request_key req = {};
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (option != ARCH_REQ_XCOMP_PERM && option != ARCH_REQ_XCOMP_GUEST_PERM)
		return 0;
	req.cgroup_id = bpf_get_current_cgroup_id();
	req.feature = (__u32)feature;
	req.guest = option == ARCH_REQ_XCOMP_GUEST_PERM;
	if (bpf_map_update_elem(&xcomp_pending, &tid, &req, BPF_ANY))
		count_full(MAP_XCOMP_REQUESTS);
	return 0;
}

static __always_inline int xcomp_request_exit(long ret)
{
	static const __u64 zero;
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct xcomp_request_key *req = bpf_map_lookup_elem(&xcomp_pending, &tid), key;
	__u64 *count;

	if (!req)
		return 0;
	key = *req;
	key.refused = ret != 0;
	bpf_map_delete_elem(&xcomp_pending, &tid);
	count = lookup_or_init(&xcomp_requests, MAP_XCOMP_REQUESTS, &key, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

/* Fire for arch_prctl() only. */
SEC("tracepoint/syscalls/sys_enter_arch_prctl")
int sys_enter_arch_prctl(struct sys_enter_arch_prctl_args *args)
{
	return xcomp_request_enter(args->option, args->arg2);
}

SEC("tracepoint/syscalls/sys_exit_arch_prctl")
int sys_exit_arch_prctl(struct sys_exit_args *args)
{
	return xcomp_request_exit(args->ret);
}

/*
 * Where perf refuses this process the syscalls: tracepoints
 * (perf_event_paranoid above 2 without CAP_SYS_ADMIN), the same counts from
 * raw sys_enter and sys_exit: a run for every syscall, the number filtered
 * here.  A 64-bit syscall's number only: an ia32 task's 158 and 15 are others.
 */
static __always_inline int is_x86_64_nr(long id, long want)
{
	return id == want && !(BPF_CORE_READ(current_task(), thread_info.status) & TS_COMPAT);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_arch_prctl_btf, struct pt_regs *regs, long id)
{
	if (!is_x86_64_nr(id, NR_arch_prctl))
		return 0;
	return xcomp_request_enter(BPF_CORE_READ(regs, di), BPF_CORE_READ(regs, si));
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit_arch_prctl_btf, struct pt_regs *regs, long ret)
{
	if (!is_x86_64_nr(BPF_CORE_READ(regs, orig_ax), NR_arch_prctl))
		return 0;
	return xcomp_request_exit(ret);
}

/* ---- signals: frames set up, restored, and restores that failed ---- */

SEC("tp_btf/signal_deliver")
int BPF_PROG(signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	unsigned long handler = (unsigned long)BPF_CORE_READ(ka, sa.sa_handler);

	/* SIG_DFL (0) and SIG_IGN (1) set up no frame. */
	if (handler > 1)
		count_rare(current_cgroup_id(), RARE_SIGNAL_FRAMES);
	return 0;
}

/* x86-64 only: this syscall tracepoint is not fired for compat syscalls. */
SEC("tracepoint/syscalls/sys_enter_rt_sigreturn")
int sys_enter_rt_sigreturn(void *ctx)
{
	count_rare(bpf_get_current_cgroup_id(), RARE_SIGRETURNS);
	return 0;
}

/* The same on raw sys_enter, for where perf refuses the syscalls: tracepoints (above). */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_rt_sigreturn_btf, struct pt_regs *regs, long id)
{
	if (is_x86_64_nr(id, NR_rt_sigreturn))
		count_rare(bpf_get_current_cgroup_id(), RARE_SIGRETURNS);
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

static __always_inline int count_compat_sigreturn(long id)
{
	if (id == NR_rt_sigreturn)
		return 0;	/* counted by sys_enter_rt_sigreturn */
	if (is_sigreturn_nr(id, current_task()))
		count_rare(bpf_get_current_cgroup_id(), RARE_SIGRETURNS);
	return 0;
}

/* Optional (sigreturn.compat): runs for every syscall on the host. */
SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter_compat_sigreturn, struct pt_regs *regs, long id)
{
	return count_compat_sigreturn(id);
}

/* The classic tracepoint, preferred where it attaches (probes.c, prefer_classic). */
struct sys_enter_args {
	__u64 common;
	long id;
	unsigned long args[6];
};

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter_compat_sigreturn_classic(struct sys_enter_args *args)
{
	return count_compat_sigreturn(args->id);
}

/* __fpu_restore_sig() found no valid FP_XSTATE_MAGIC in the frame. */
SEC("tp_btf/x86_fpu_xstate_check_failed")
int BPF_PROG(xstate_check_failed, struct fpu *fpu)
{
	count_rare(current_cgroup_id(), RARE_SIGRETURN_BAD_MAGIC);
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
				count_rare(current_cgroup_id(), RARE_SIGRETURN_BAD_FRAME);
				return 0;
			}
		}
	}
	return 0;
}
