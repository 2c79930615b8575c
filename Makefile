# Makefile: the one entry point: deps, build (bpf -> skeleton -> daemon), run, test, bench, install.
BUILD     ?= build
CC        ?= gcc
CLANG     ?= clang
BPFTOOL   ?= bpftool
PREFIX    ?= /usr/local
DESTDIR   ?=

CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -MMD -MP -I$(BUILD) -Ibpf -Idaemon
LDLIBS    := -lbpf -lmicrohttpd -lgnutls -lyaml -lsystemd -lcjson -lcrypt -lz -lm -pthread
BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86 -Ibpf
# The unit tests and one end-to-end run use a daemon built with these.
SANITIZE  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

# Debian packages: to build and run, and in addition to test and benchmark.
DEPS_BUILD := make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libmicrohttpd-dev \
	      libyaml-dev libsystemd-dev libcjson-dev libgnutls28-dev
DEPS_TEST  := dbus debootstrap e2fsprogs openssl gcc-multilib jq libcmocka-dev prometheus qemu-system-x86 socat curl linux-perf procps util-linux iproute2 libclang-rt-14-dev bc \
	      man-db groff-base build-essential debhelper dpkg-dev lintian fakeroot podman buildah runc tmux chromium

DAEMON_SRCS := $(wildcard daemon/*.c)
DAEMON_OBJS := $(DAEMON_SRCS:daemon/%.c=$(BUILD)/daemon/%.o)
LIB_SRCS    := $(filter-out daemon/main.c,$(DAEMON_SRCS))
# The daemon's objects built once with the sanitizers, for the unit tests and build/asan/fpu_exporter.
SAN_OBJS    := $(DAEMON_SRCS:daemon/%.c=$(BUILD)/san/%.o)
SAN_LIB_OBJS := $(filter-out $(BUILD)/san/main.o,$(SAN_OBJS))
UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
UNIT_BINS   := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
TOOL_BINS   := $(BUILD)/asan/fpu_exporter $(BUILD)/tests/testvmm $(BUILD)/tests/sigloop \
	       $(BUILD)/tests/sigloop32 $(BUILD)/tests/sigbad $(BUILD)/tests/avxspin $(BUILD)/tests/threadexit $(BUILD)/tests/xcompperm \
	       $(BUILD)/tests/noipv6.so \
	       $(BUILD)/tests/notify_recv $(BUILD)/tests/fake_machined \
	       $(BUILD)/fpu_bench

# libFuzzer targets (clang, ASan+UBSan) over the parsers; the suite runs each FUZZ_TIME_TEST
# seconds, `make fuzz` FUZZ_TIME seconds.
FUZZ_SRCS   := $(filter-out tests/fuzz/fuzz_file.c,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_OBJS   := $(LIB_SRCS:daemon/%.c=$(BUILD)/fuzz/obj/%.o) $(BUILD)/fuzz/obj/fuzz_file.o
FUZZ_CFLAGS := -O1 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -I$(BUILD) -Ibpf -Idaemon \
	       -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_TIME   ?= 600

.DELETE_ON_ERROR:
.PHONY: all deps deps-test run test test-kernels check unit e2e bench bench-scrape tools fuzz vmlinux install uninstall clean deb image

all: $(BUILD)/fpu_exporter

$(BUILD) $(BUILD)/daemon $(BUILD)/tests:
	mkdir -p $@

$(BUILD)/%.bpf.o: bpf/%.bpf.c | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/%.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@

$(BUILD)/daemon/%.o: daemon/%.c | $(BUILD)/daemon
	$(CC) $(CFLAGS) -c $< -o $@

# The skeleton is generated: name it so the first build orders it before its users.
$(BUILD)/daemon/probes.o: $(BUILD)/fpu_exporter.skel.h

$(BUILD)/fpu_exporter: $(DAEMON_OBJS)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/san/%.o: daemon/%.c $(BUILD)/fpu_exporter.skel.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SANITIZE) -c $< -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(SAN_LIB_OBJS) | $(BUILD)/tests
	$(CC) $(CFLAGS) $(SANITIZE) $< $(SAN_LIB_OBJS) -o $@ $(LDLIBS) -lcmocka

$(BUILD)/asan/fpu_exporter: $(SAN_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SANITIZE) $(SAN_OBJS) -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/workloads/%.c | $(BUILD)/tests
	$(CC) $(CFLAGS) -pthread $< -o $@

# An ia32 build: its sigreturns are the compat syscall 173.
$(BUILD)/tests/sigloop32: tests/workloads/sigloop.c | $(BUILD)/tests
	$(CC) $(CFLAGS) -m32 $< -o $@

$(BUILD)/tests/noipv6.so: tests/workloads/noipv6.c | $(BUILD)/tests
	$(CC) $(CFLAGS) -shared -fPIC $< -o $@ -ldl

$(BUILD)/tests/fake_machined: tests/workloads/fake_machined.c | $(BUILD)/tests
	$(CC) $(CFLAGS) $< -o $@ -lsystemd

$(BUILD)/tests/testvmm: tests/vmm/testvmm.c | $(BUILD)/tests
	$(CC) $(CFLAGS) -pthread $< -o $@

$(BUILD)/fpu_bench: tests/bench/fpu_bench.c $(BUILD)/bench.skel.h
	$(CC) $(CFLAGS) $< -o $@ $(LDLIBS)

tools: $(TOOL_BINS)

$(BUILD)/fuzz/obj/%.o: daemon/%.c $(BUILD)/fpu_exporter.skel.h
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/obj/fuzz_file.o: tests/fuzz/fuzz_file.c
	@mkdir -p $(@D)
	$(CLANG) $(FUZZ_CFLAGS) -Itests/fuzz -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Itests/fuzz $< $(FUZZ_OBJS) -o $@ $(LDLIBS)

fuzz: deps-test
	$(MAKE) $(FUZZ_BINS)
	BUILD=$(BUILD) tests/fuzz/run.sh $(FUZZ_TIME)

# Installs the Debian packages that are missing (apt-get; needs root).
deps:
	@sh tests/deps.sh $(DEPS_BUILD)

deps-test:
	@sh tests/deps.sh $(DEPS_BUILD) $(DEPS_TEST)

run: deps
	$(MAKE) all
	./$(BUILD)/fpu_exporter $(ARGS)

unit: $(UNIT_BINS)
	@for t in $(UNIT_BINS); do $$t || exit 1; done

test: deps-test
	$(MAKE) -j$$(nproc) all tools $(UNIT_BINS) $(FUZZ_BINS)
	tests/run.sh

# Debian's 5.10, 6.1 and 6.12 booted under QEMU with the checks inside (FPU_KERNELS to choose).
test-kernels: deps-test
	$(MAKE) all tools
	tests/kernels/run.sh

check: test

bench: deps-test
	@sh tests/deps.sh bpftrace
	$(MAKE) all $(BUILD)/fpu_bench $(BUILD)/tests/sysloop
	tests/bench/bench.sh

# The scrape path on a big host (10,000 cgroups, 250 VMs): time, bytes, daemon memory.
bench-scrape: deps-test
	$(MAKE) all tools
	tests/bench/scrape.sh

vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

# The unit goes where systemd looks for local units; an existing configuration is kept.
UNITDIR ?= /etc/systemd/system

install: all
	install -D -m 0755 $(BUILD)/fpu_exporter $(DESTDIR)$(PREFIX)/bin/fpu_exporter
	install -d -m 0755 $(DESTDIR)/etc/fpu_exporter
	[ -e $(DESTDIR)/etc/fpu_exporter/fpu_exporter.yaml ] || \
		install -m 0644 config/fpu_exporter.yaml $(DESTDIR)/etc/fpu_exporter/fpu_exporter.yaml
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/fpu_exporter/README.md
	install -d -m 0755 $(DESTDIR)$(PREFIX)/share/man/man1
	gzip -9n < man/fpu_exporter.1 > $(DESTDIR)$(PREFIX)/share/man/man1/fpu_exporter.1.gz
	chmod 0644 $(DESTDIR)$(PREFIX)/share/man/man1/fpu_exporter.1.gz
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|@PREFIX@|$(PREFIX)|g' systemd/fpu_exporter.service > $(DESTDIR)$(UNITDIR)/fpu_exporter.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/fpu_exporter.service

# The configuration in /etc stays: it is the operator's.
uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/fpu_exporter $(DESTDIR)$(UNITDIR)/fpu_exporter.service
	rm -f $(DESTDIR)$(PREFIX)/share/man/man1/fpu_exporter.1.gz
	rm -rf $(DESTDIR)$(PREFIX)/share/doc/fpu_exporter

# The Debian package, built by dpkg-buildpackage from a copy of the tree in $(BUILD)/deb/src,
# so that the .deb (and .buildinfo, .changes) land in $(BUILD)/deb and the tree stays clean.
deb:
	@sh tests/deps.sh $(DEPS_BUILD) build-essential debhelper dpkg-dev fakeroot lintian
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	tar -C . --exclude=./$(BUILD) --exclude=./.git -cf - . | tar -C $(BUILD)/deb/src -xf -
	cd $(BUILD)/deb/src && dpkg-buildpackage -us -uc -b
	lintian --fail-on error $(BUILD)/deb/fpu-exporter_*.deb

# The OCI image (Containerfile): the binary on a debootstrap'd bookworm root (cached), imported
# with podman as the base; BASE=debian:bookworm-slim builds on that image instead.
IMAGE ?= fpu-exporter:0.1.0
BASE  ?=
image: all
	@sh tests/deps.sh debootstrap podman buildah runc
	bash tests/image.sh $(IMAGE) $(BASE)

clean:
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/*.d $(BUILD)/daemon/*.d $(BUILD)/san/*.d $(BUILD)/tests/*.d $(BUILD)/fuzz/obj/*.d)
