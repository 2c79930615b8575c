/* fpu_exporter.h: map keys, values and event ids shared by the BPF programs and the daemon. */
#ifndef FPU_EXPORTER_H
#define FPU_EXPORTER_H

/*
 * What a cgroup_events entry counts.  Every event of a task is counted under
 * the cgroup v2 id of the task; the x86_fpu save events also carry the
 * XSTATE_BV the kernel had just written.
 */
enum fpu_event {
	EV_REGS_ACTIVATED = 0,		/* x86_fpu_regs_activated, host fpstate */
	EV_REGS_DEACTIVATED,		/* x86_fpu_regs_deactivated, host fpstate, xfeatures set */
	EV_REGS_DEACTIVATED_GUEST,	/* the same with a KVM guest fpstate live, xfeatures set */
	EV_SIGNAL_FRAME,		/* signal_deliver to a real handler: sigframe with FPU state */
	EV_SIGRETURN,			/* rt_sigreturn: FPU state restored from the frame */
	EV_SIGRETURN_BAD_MAGIC,		/* x86_fpu_xstate_check_failed */
	EV_SIGRETURN_BAD_FRAME,		/* SIGSEGV(SI_KERNEL) raised inside rt_sigreturn */
	EV_FPU_COPY,			/* x86_fpu_copy_dst: FPU state copied to a new task */
	EV_FPU_DROP,			/* x86_fpu_dropped: a task's FPU state freed at exit */
	EV__COUNT,
};

struct cgroup_event_key {
	__u64 cgroup_id;
	__u64 xfeatures;	/* XSTATE_BV for the save events, 0 otherwise */
	__u32 event;		/* enum fpu_event */
	__u32 pad;
};

/* One entry per thread that ran a KVM vCPU: kvm_fpu counts and its guest fpstate. */
struct vcpu_thread {
	__u32 tgid;
	__u32 pad;
	__u64 loads;		/* kvm_fpu(load=1) */
	__u64 reloads;		/* kvm_fpu(load=0): KVM's per-vCPU fpu_reload, exactly */
	__u64 guest_fpstate;	/* kernel address of the guest's struct fpstate */
};

struct guest_xstate_key {
	__u32 tgid;		/* the VMM process */
	__u32 pad;
	__u64 xfeatures;	/* guest XSTATE_BV right after the guest state was saved */
};

/* The last path of a removed cgroup v2 directory, for ids the daemon never saw alive. */
#define CGROUP_PATH_MAX 256
struct removed_cgroup {
	char path[CGROUP_PATH_MAX];	/* relative to the v2 root, like "/system.slice/x.service" */
};

/* The maps that count, as indexes into map_full. */
enum map_id { MAP_CGROUP_EVENTS, MAP_GUEST_XSTATES, MAP_VCPU_THREADS, MAP__COUNT };

#define MAX_CGROUP_EVENTS	16384
#define MAX_VCPU_THREADS	8192
#define MAX_GUEST_XSTATES	4096
#define MAX_SIGRETURN_RANGES	8
#define MAX_REMOVED_CGROUPS	4096

#endif /* FPU_EXPORTER_H */
