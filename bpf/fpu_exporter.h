/* fpu_exporter.h: map keys and values shared by the BPF programs and the daemon. */
#ifndef FPU_EXPORTER_H
#define FPU_EXPORTER_H

/*
 * Per-cgroup counters of the hot paths, one per-CPU entry per cgroup:
 * what runs on every context switch stays a lookup and an add.
 */
enum cgroup_hot {
	HOT_REGS_ACTIVATED = 0,		/* x86_fpu_regs_activated */
	HOT_GUEST_SAVES,		/* x86_fpu_regs_deactivated of a KVM guest fpstate */
	HOT__COUNT,
};

struct cgroup_hot_counts {
	__u64 count[HOT__COUNT];
};

/*
 * Per-cgroup counters of the rarer paths (a signal, a clone, an exit): one
 * shared entry per cgroup, added to atomically, so a big host's memory goes to
 * the hot counters that need a copy per CPU.
 */
enum cgroup_rare {
	RARE_SIGNAL_FRAMES = 0,		/* signal_deliver to a handler: a sigframe with FPU state */
	RARE_SIGRETURNS,		/* rt_sigreturn: FPU state restored from the frame */
	RARE_SIGRETURN_BAD_MAGIC,	/* x86_fpu_xstate_check_failed */
	RARE_SIGRETURN_BAD_FRAME,	/* SIGSEGV(SI_KERNEL) raised inside rt_sigreturn */
	RARE_TASK_COPIES,		/* x86_fpu_copy_dst: FPU state copied to a new task */
	RARE_TASK_DROPS,		/* x86_fpu_dropped: FPU registers dropped at thread exit */
	RARE__COUNT,
};

struct cgroup_rare_counts {
	__u64 count[RARE__COUNT];
};

/*
 * Context-switch saves of host FPU state, by the XSTATE_BV the XSAVE just
 * wrote; XSTATE_ENLARGED (bit 63, never set in an XSTATE_BV) marks saves
 * into an fpstate enlarged for a dynamic feature.
 */
#define XSTATE_ENLARGED (1ull << 63)
struct cgroup_xstate_key {
	__u64 cgroup_id;
	__u64 xfeatures;
};

/* arch_prctl() requests for permission to use a dynamic XSAVE feature (AMX), by result. */
#define ARCH_REQ_XCOMP_PERM		0x1023
#define ARCH_REQ_XCOMP_GUEST_PERM	0x1025
struct xcomp_request_key {
	__u64 cgroup_id;
	__u32 feature;		/* the XSAVE component asked for (18: AMX tile data) */
	__u16 guest;		/* 1: ARCH_REQ_XCOMP_GUEST_PERM, for a KVM guest */
	__u16 refused;		/* 1: the call failed */
};

/* One entry per thread that ran a KVM vCPU, written only by that thread. */
#define VT_EXITED	1	/* sched_process_exit: final values, for the daemon to collect */
#define VT_KVM_ID	2	/* vcpu_idx and vm_pid were read from KVM's struct kvm_vcpu */
#define VT_KVM_XCR0	4	/* xcr0 too, read at the last kvm_fpu(load=1) */
#define VT_KVM_SUPPORTED 8	/* supported_xcr0 too, read at the last kvm_fpu(load=1) */
struct vcpu_thread {
	__u32 tgid;
	__u32 flags;		/* VT_* */
	__u64 loads;		/* kvm_fpu(load=1) */
	__u64 reloads;		/* kvm_fpu(load=0): KVM's per-vCPU fpu_reload, exactly */
	__u64 guest_fpstate;	/* kernel address of the guest's struct fpstate */
	/* read at kvm_fpu(load=1), from the vCPU KVM loaded on this thread */
	__u32 vcpu_idx;		/* vcpu->vcpu_idx: the vCPU's index in its VM */
	__u32 vm_pid;		/* vcpu->kvm->userspace_pid (the thread that made the VM), else the tgid */
	__u64 xcr0;		/* vcpu->arch.xcr0: the guest's XCR0 */
	__u64 supported_xcr0;	/* vcpu->arch.guest_supported_xcr0: what CPUID leaf 0xD lets it enable */
};

/* Guest FPU images put back by KVM (one per fpu_reload), by their XSTATE_BV. */
struct guest_xstate_key {
	__u32 tgid;		/* the VMM process */
	__u32 pad;
	__u64 xfeatures;
};

/* A removed cgroup v2 directory: its parent and its name, for ids the daemon never saw alive. */
#define CGROUP_NAME_MAX 256	/* NAME_MAX and its NUL: a kernfs name always fits */
struct removed_cgroup {
	__u64 parent_id;
	char name[CGROUP_NAME_MAX];
};

/* The maps that count, as indexes into map_full. */
enum map_id {
	MAP_CGROUP_HOT,
	MAP_CGROUP_RARE,
	MAP_CGROUP_XSTATES,
	MAP_VCPU_THREADS,
	MAP_GUEST_XSTATES,
	MAP_REMOVED_CGROUPS,
	MAP_XCOMP_REQUESTS,
	MAP__COUNT,
};

#define MAX_SIGRETURN_RANGES	8

#endif /* FPU_EXPORTER_H */
