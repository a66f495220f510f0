# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#
# pymemleak build. `make` builds the BPF object, its skeleton and the
# pymemleak binary; `make test` runs unit + integration tests; `make demo`
# traces a bundled leaking program. `make deps` (run by demo and test)
# installs what is missing from Debian's packages.

OUTPUT    ?= build
CLANG     ?= clang
BPFTOOL   ?= bpftool
CC        ?= cc
PKG       ?= pkg-config
PREFIX    ?= /usr/local
ARCH      := x86

CFLAGS    ?= -O2 -g
CFLAGS    += -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-missing-field-initializers \
	     -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
LDFLAGS   += -pie -Wl,-z,relro,-z,now

VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.0.0)

LIBBPF_CFLAGS := $(shell $(PKG) --cflags libbpf 2>/dev/null)
LIBBPF_LIBS   := $(shell $(PKG) --libs libbpf 2>/dev/null || echo -lbpf -lelf -lz)
CAPSTONE_CFLAGS := $(shell $(PKG) --cflags capstone 2>/dev/null)
CAPSTONE_LIBS := $(shell $(PKG) --libs capstone 2>/dev/null || echo -lcapstone)
CAP_LIBS      := $(shell $(PKG) --libs libcap 2>/dev/null || echo -lcap)
CMOCKA_LIBS   := $(shell $(PKG) --libs cmocka 2>/dev/null || echo -lcmocka)

INCLUDES  := -I$(OUTPUT) -Ibpf -Iuser $(LIBBPF_CFLAGS) $(CAPSTONE_CFLAGS)

BPF_SRC   := bpf/pymemleak.bpf.c
BPF_OBJ   := $(OUTPUT)/pymemleak.bpf.o
SKEL      := $(OUTPUT)/pymemleak.skel.h

USER_SRCS := $(wildcard user/*.c)
USER_OBJS := $(patsubst user/%.c,$(OUTPUT)/user/%.o,$(USER_SRCS))

UNIT_SRCS  := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(OUTPUT)/tests/%,$(UNIT_SRCS))

# Each unit driver links its module plus what is listed here (fakes, helpers).
UNIT_EXTRA_probesite := $(CAPSTONE_LIBS)
UNIT_EXTRA_report    :=
UNIT_EXTRA_export_json := user/report.c
UNIT_EXTRA_pyoffsets :=
UNIT_EXTRA_symbolize := user/linetable.c user/pyoffsets.c user/tmem.c
UNIT_EXTRA_export_folded     := user/report.c
UNIT_EXTRA_export_svg        := user/export_folded.c user/report.c
UNIT_EXTRA_export_speedscope := user/export_folded.c user/report.c
UNIT_EXTRA_classify := user/pyoffsets.c user/tmem.c
UNIT_EXTRA_inlined  := user/probesite.c user/elf.c $(CAPSTONE_LIBS)

.PHONY: all deps test unit integration demo bench soak lint fuzz vmlinux install clean

all: $(OUTPUT)/pymemleak

$(OUTPUT) $(OUTPUT)/user $(OUTPUT)/tests:
	@mkdir -p $@

# BPF: compiled against the committed vmlinux.h, CO-RE relocated at load.
$(BPF_OBJ): $(BPF_SRC) bpf/pymemleak.h $(wildcard bpf/*.bpf.h) vmlinux/vmlinux.h | $(OUTPUT)
	$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux -Ibpf $(LIBBPF_CFLAGS) \
		-Wall -Werror -c $< -o $@

$(SKEL): $(BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name pymemleak_bpf > $@.tmp && mv $@.tmp $@

$(OUTPUT)/user/%.o: user/%.c $(wildcard user/*.h) bpf/pymemleak.h | $(OUTPUT)/user
	$(CC) $(CFLAGS) $(INCLUDES) -DPML_VERSION='"$(VERSION)"' -c $< -o $@

# tracer.c is the only user of the skeleton.
$(OUTPUT)/user/tracer.o: $(SKEL)

$(OUTPUT)/pymemleak: $(USER_OBJS)
	$(CC) $(LDFLAGS) $^ $(LIBBPF_LIBS) $(CAPSTONE_LIBS) $(CAP_LIBS) -o $@

# Unit tests: cmocka, one driver per pure module, never linked with libbpf.
$(OUTPUT)/tests/test_%: tests/unit/test_%.c user/%.c $(wildcard user/*.h) \
		$(wildcard tests/unit/fixtures/*.h) | $(OUTPUT)/tests
	$(CC) $(CFLAGS) -Wno-unused-parameter $(INCLUDES) -DPML_SRCDIR='"$(CURDIR)"' \
		$< user/$*.c $(filter %.c,$(UNIT_EXTRA_$*)) \
		$(filter-out %.c,$(UNIT_EXTRA_$*)) $(CMOCKA_LIBS) -o $@

deps:
	@sh tools/deps.sh

unit: $(UNIT_BINS)
	@sh tests/unit/run.sh $(UNIT_BINS)
	@sh tests/unit/check_pyoffsets.sh

integration: all
	@sh tests/integration/run.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh

# Five minutes of Python processes coming and going under `pymemleak --all`.
soak: deps
	@$(MAKE) --no-print-directory all
	@/usr/bin/python3 bench/soak.py

# libFuzzer harnesses for every parser of target data; FUZZ_SECONDS each.
FUZZ_SECONDS ?= 30
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(OUTPUT)/fuzz/%,$(FUZZ_SRCS))
FUZZ_EXTRA_fuzz_symbolize := user/linetable.c user/pyoffsets.c user/tmem.c
FUZZ_EXTRA_fuzz_classify  := user/pyoffsets.c user/tmem.c
FUZZ_EXTRA_fuzz_inlined   := user/probesite.c user/elf.c $(CAPSTONE_LIBS)

$(OUTPUT)/fuzz:
	@mkdir -p $@

$(OUTPUT)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c user/%.c $(wildcard user/*.h) | $(OUTPUT)/fuzz
	$(CLANG) -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=all $(INCLUDES) $< user/$*.c \
		$(filter %.c,$(FUZZ_EXTRA_fuzz_$*)) $(filter-out %.c,$(FUZZ_EXTRA_fuzz_$*)) -o $@

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do \
		mkdir -p $(OUTPUT)/fuzz/corpus-$$(basename $$f); \
		echo "fuzz: $$f for $(FUZZ_SECONDS) s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 \
			$(OUTPUT)/fuzz/corpus-$$(basename $$f) || exit 1; \
	done

lint:
	@clang-format --dry-run --Werror $(USER_SRCS) $(wildcard user/*.h) $(UNIT_SRCS) \
		bpf/*.c bpf/*.h

# Explicit only: the committed header is what every build uses.
vmlinux:
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > vmlinux/vmlinux.h.tmp
	{ printf '/* Generated by `make vmlinux` from /sys/kernel/btf/vmlinux of Linux %s (%s). */\n' \
		"$$(uname -r)" "$$(uname -m)"; cat vmlinux/vmlinux.h.tmp; } > vmlinux/vmlinux.h
	rm -f vmlinux/vmlinux.h.tmp

install: all
	install -D -m 0755 $(OUTPUT)/pymemleak $(DESTDIR)$(PREFIX)/sbin/pymemleak

clean:
	rm -rf $(OUTPUT)
