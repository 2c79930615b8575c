/* fpu_bench.c: BPF cost per event of every program that runs under `perf bench sched pipe`, beside an empty one. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.skel.h"

#define MAX_PROGS 512

struct prog_stat {
	__u32 id;
	char name[BPF_OBJ_NAME_LEN];
	__u64 run_time_ns;
	__u64 run_cnt;
};

static int snapshot(struct prog_stat *out)
{
	__u32 id = 0;
	int n = 0;

	while (n < MAX_PROGS && bpf_prog_get_next_id(id, &id) == 0) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
			out[n].id = id;
			memcpy(out[n].name, info.name, sizeof(out[n].name));
			out[n].run_time_ns = info.run_time_ns;
			out[n].run_cnt = info.run_cnt;
			n++;
		}
		close(fd);
	}
	return n;
}

static const struct prog_stat *find(const struct prog_stat *s, int n, __u32 id)
{
	for (int i = 0; i < n; i++)
		if (s[i].id == id)
			return &s[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static struct prog_stat before[MAX_PROGS], after[MAX_PROGS];
	long loops = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	struct bench_bpf *skel;
	char cmd[128];
	double total_ns = 0;
	int stats_fd, nb, na, err;

	if (loops <= 0) {
		fprintf(stderr, "usage: fpu_bench [ROUND_TRIPS]\n");
		return 2;
	}
	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "fpu_bench: enabling BPF run-time stats: %s\n", strerror(errno));
		return 1;
	}
	skel = bench_bpf__open_and_load();
	if (!skel || (err = bench_bpf__attach(skel))) {
		fprintf(stderr, "fpu_bench: loading the empty baseline program: %s\n", strerror(errno));
		return 1;
	}
	nb = snapshot(before);
	snprintf(cmd, sizeof(cmd), "perf bench sched pipe -l %ld >/dev/null", loops);
	fprintf(stderr, "fpu_bench: running %s\n", cmd);
	if (system(cmd) != 0) {
		fprintf(stderr, "fpu_bench: perf bench failed\n");
		return 1;
	}
	na = snapshot(after);

	printf("%-18s %12s %10s %14s %14s\n", "program", "runs", "ns/event", "events/rtrip",
	       "ns/roundtrip");
	for (int i = 0; i < na; i++) {
		const struct prog_stat *b = find(before, nb, after[i].id);
		__u64 runs, ns;

		if (!b || after[i].run_cnt == b->run_cnt)
			continue;
		runs = after[i].run_cnt - b->run_cnt;
		ns = after[i].run_time_ns - b->run_time_ns;
		if (strcmp(after[i].name, "empty_baseline"))
			total_ns += (double)ns;
		printf("%-18s %12llu %10.1f %14.2f %14.1f\n", after[i].name,
		       (unsigned long long)runs, (double)ns / (double)runs,
		       (double)runs / (double)loops, (double)ns / (double)loops);
	}
	printf("total BPF time per round trip, baseline excluded: %.1f ns (%ld round trips)\n",
	       total_ns / (double)loops, loops);
	bench_bpf__destroy(skel);
	close(stats_fd);
	return 0;
}
