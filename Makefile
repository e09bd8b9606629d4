# paygo — top-level entry points. On a fresh Debian 12 machine:
#
#   make eval    build (release), run micro, counting, query and rocksdb and plot them
#                -> results/<time>/ (JSON, CSV, PNG, summary.txt); ~5 minutes
#   make test    format check, then build + ctest for release, asan and tsan,
#                fuzz each libFuzzer harness for FUZZ_SECONDS (clang++), check
#                that the tests kill each mutant of the protocol (tests/mutants/),
#                then build a consumer of the installed package
#
#   make kernel-test   the Linux 6.1 port: build a vanilla and a patched
#                kernel, boot each in QEMU (TCG), run the in-guest suite
#                (kernel/README.md) -> results/kernel-<time>/; CI runs it
#                after `make test` (.ci/run)
#
# Other targets: deps (install Debian packages), build, format (fix
# formatting), format-check, test-release/test-asan/test-tsan, test-fuzz,
# test-mutants, test-consumer, clean. `make help` lists them.
#
# Knobs (make VAR=value): JOBS (parallel compile jobs, default 2),
# FUZZ_SECONDS (libFuzzer time per harness in `make test`, default 60),
# BENCH_ARGS, COUNTING_ARGS, QUERY_ARGS, ROCKSDB_ARGS (extra arguments for
# paygo-bench micro / counting / query / rocksdb in `make eval`; a repeated
# option takes the last value, so e.g. QUERY_ARGS="--file-size 1G" overrides
# the default).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Stages share the machine (and build/): never run two at once, even with -j.
.NOTPARALLEL:

# Debian packages the build, the tests and the benchmarks need. Later
# additions append: DEB_PACKAGES += python3-matplotlib
# No libbenchmark-dev (Google Benchmark): nothing uses it. paygo-bench micro
# (bench/micro.cpp) runs its own loops (T pinned threads on one object, a
# fresh counter per repeat, median/min/max) and prints ratios to noop and
# atomic in the project's JSON/CSV schema (tools/plot reads it), which
# Google Benchmark would not give without a rewrite.
DEB_PACKAGES := g++ cmake ninja-build libgtest-dev libcli11-dev libfmt-dev \
                nlohmann-json3-dev clang-format python3
# paygo-bench counting --io rocksdb-*; tools/plot.
DEB_PACKAGES += librocksdb-dev python3-matplotlib
# The SPIN model checker for tests/model/ (ctest: spin_model.<variant>).
DEB_PACKAGES += spin
# clang++ and its libFuzzer/sanitizer runtimes for tests/fuzz/ (make test-fuzz).
DEB_PACKAGES += clang libclang-rt-14-dev
# patch(1) for tests/mutants/run.sh.
DEB_PACKAGES += patch

JOBS ?= 2
export CMAKE_BUILD_PARALLEL_LEVEL := $(JOBS)
# ctest runs tests one at a time (they are concurrency stress tests), but
# the SPIN model's variants two at a time (test-<preset>).
export CTEST_PARALLEL_LEVEL := 1
export CTEST_OUTPUT_ON_FAILURE := 1

PRESETS := release asan tsan
# libFuzzer harnesses (tests/fuzz/), built with clang++ outside the presets.
FUZZ_HARNESSES := paygo_fuzz cache_fuzz
FUZZ_SECONDS ?= 60
FORMAT_DIRS := include src tests bench kernel/guest
BUILD_DIR := build
FUZZ_DIR := $(BUILD_DIR)/fuzz
RESULTS_DIR := results/$(shell date +%Y%m%d-%H%M%S)
BENCH := $(BUILD_DIR)/release/bench/paygo-bench
# The sweep of `make eval`: under 5 minutes on a 2-core machine with the
# build done (BENCHMARKS.md has the measured times); threads go to the
# usable CPUs (nproc).
EVAL_ARGS := --duration 0.2 --repeat 3 --max-slots 64
EVAL_COUNTING_ARGS := --counters all --workloads DRBL,DRBM,DRBH \
                      --io cache,pread,rocksdb-lru,rocksdb-hcc,rocksdb-paygo --hint auto,hot \
                      --duration 0.2 --repeat 5
# Self-tuning: the Zipf workload (every counter, PAYGO auto and hinted),
# the phases (2 threads: the hot block's promotion and demotion per phase)
# and the drop after the Zipf workload.
EVAL_ZIPF_ARGS := --counters all --workloads DRBZ --io cache,pread --hint auto,hot \
                  --file-size 64M --duration 0.2 --repeat 3
EVAL_PHASE_ARGS := --counters atomic,paygo --workloads PHASE --io cache --hint auto,hot \
                   --phases 4 --phase-seconds 0.25 --repeat 3 --threads 2
# Misses: uniformly random blocks of a file four times the cache (64 MiB
# cache, 256 MiB file: the RRND defaults), through the page cache (PAYGO
# auto and hinted, atomic) and the OS page cache; ~15 s.
EVAL_RRND_ARGS := --counters atomic,paygo --workloads RRND --io cache,pread --hint auto,hot \
                  --threads 1,2 --duration 0.5 --repeat 3
# Oversubscribed: DRBH through the page cache with 256 and 1000 threads on
# the usable CPUs, noop, atomic and PAYGO (hint auto) once per slot mode
# (thread: per-thread tables, the threads beyond max_slots on the central
# word; spill, the default: per-thread, then per-CPU tables; cpu alone is
# left out for time: beyond 256 threads it measures as spill); plotted as
# counting-DRBH-oversub.png (tools/plot --suffix oversub). With that many
# threads a repeat's timed part outlasts --duration (the thread that stops
# it waits for a CPU: about 0.4 s at 256 threads, 1-3 s at 1000 on 2 CPUs),
# so the duration is short and the repeats two; about 10-15 s on the 2-core machine.
EVAL_OVERSUB_ARGS := --counters noop,atomic,paygo --workloads DRBH --io cache \
                     --slot-mode thread,spill --threads 256,1000 --duration 0.1 --repeat 2
EVAL_QUERY_ARGS := --counters all --workloads drop,reclaim-per-page \
                   --distributed 0,1,10,25,50,100 --file-size 128M --repeat 3
# Drops while 1..n threads miss on another file (the readers' throughput
# during each drop over just before it); ~5 s.
EVAL_QUERY_MISSES_ARGS := --counters atomic,paygo --workloads drop-under-misses \
                          --file-size 128M --drops 10 --repeat 1
EVAL_QUERY_ZIPF_ARGS := --counters all --workloads drop --after DRBZ --hint auto,hot \
                        --file-size 64M --zipf-seconds 0.2 --repeat 3
# A RocksDB database (200,000 keys of 16 + 100 bytes, ~23 MB, all of it in a
# 64 MiB block cache: the defaults) read at random through each block cache,
# over every key and over 16 keys (one data block every thread shares).
EVAL_ROCKSDB_ARGS := --caches all --hot-keys 0,16 --duration 0.2 --repeat 3
BENCH_ARGS ?=
COUNTING_ARGS ?=
QUERY_ARGS ?=
ROCKSDB_ARGS ?=

# $(call banner,text): a visible stage header.
banner = printf '\n==================== %s ====================\n' "$(1)"

.PHONY: help deps build bench-build test eval clean format format-check consumer test-consumer \
        $(addprefix test-,$(PRESETS)) $(addprefix configure-,$(PRESETS)) \
        $(addprefix build-,$(PRESETS)) test-summary test-fuzz test-mutants kernel-test

help:
	@echo "make eval          build (release), run micro/counting/query/rocksdb + plots into results/<time>/"
	@echo "make test          format check, release/asan/tsan builds and tests, fuzz, mutants, consumer"
	@echo "make deps          install the Debian packages ($(DEB_PACKAGES))"
	@echo "make build         configure and build the release preset"
	@echo "make format        clang-format -i the sources; format-check only checks"
	@echo "make test-<preset> one preset ($(PRESETS)); test-consumer: the install check"
	@echo "make test-fuzz     build the libFuzzer harnesses (clang++) and fuzz each FUZZ_SECONDS"
	@echo "make test-mutants  break the protocol 3 ways (tests/mutants/); each must fail a test"
	@echo "make kernel-test   build vanilla + PAYGO-patched Linux 6.1, test both in QEMU (KERNEL_TEST_ARGS)"
	@echo "make clean         remove build/ (results/ is kept)"

# ---- dependencies ------------------------------------------------------------

deps:
	@$(call banner,deps)
	@if ! command -v dpkg-query >/dev/null; then \
	  echo "deps: not a Debian system; make sure these are installed: $(DEB_PACKAGES)"; \
	  exit 0; \
	fi; \
	missing=""; \
	for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' \
	    || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all $(words $(DEB_PACKAGES)) packages installed"; exit 0; fi; \
	echo "deps: installing:$$missing"; \
	sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo="sudo"; fi; \
	$$sudo apt-get update; \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing

# ---- build -------------------------------------------------------------------

# configure-<preset> / build-<preset>: cmake --preset, then build it.
# (Static pattern rules: plain pattern rules are not searched for .PHONY targets.)
$(addprefix configure-,$(PRESETS)): configure-%:
	@$(call banner,configure $*)
	cmake --preset $*

$(addprefix build-,$(PRESETS)): build-%: configure-%
	@$(call banner,build $* (-j$(JOBS)))
	cmake --build --preset $*

build: deps build-release

# ---- tests -------------------------------------------------------------------

format-check: deps
	@$(call banner,format check)
	@files=$$(find $(FORMAT_DIRS) -type f \( -name '*.cpp' -o -name '*.hpp' \) | sort); \
	bad=""; \
	for f in $$files; do clang-format --dry-run -Werror "$$f" >/dev/null 2>&1 || bad="$$bad $$f"; done; \
	if [ -n "$$bad" ]; then \
	  clang-format --dry-run -Werror $$bad 2>&1 | head -n 40 || true; \
	  echo "format: not clang-formatted (fix with 'make format'):$$bad"; \
	  exit 1; \
	fi; \
	echo "format: $$(echo $$files | wc -w) files clean"

format:
	find $(FORMAT_DIRS) -type f \( -name '*.cpp' -o -name '*.hpp' \) -print0 \
	  | xargs -0 clang-format -i

# test-<preset>: build it and run its ctest in two runs: every test but the
# SPIN model's one at a time (they are concurrency stress tests), then the
# SPIN model's variants (label spin; one pan each, single-threaded) two at a
# time. Each run writes a JUnit report (build/<preset>/ctest-junit.xml,
# ctest-spin-junit.xml); tests/ctest_junit.py counts them into
# build/<preset>/ctest-count (all tests) and ctest-spin-count (the SPIN
# model's alone; "PASSED SKIPPED FAILED TOTAL" each) for the summary.
$(addprefix test-,$(PRESETS)): test-%: build-%
	@$(call banner,ctest $*)
	@rm -f $(BUILD_DIR)/$*/ctest-count $(BUILD_DIR)/$*/ctest-spin-count \
	  $(BUILD_DIR)/$*/ctest-junit.xml $(BUILD_DIR)/$*/ctest-spin-junit.xml
	ctest --preset $* --no-tests=error -LE spin \
	  --output-junit $(CURDIR)/$(BUILD_DIR)/$*/ctest-junit.xml 2>&1 | tee $(BUILD_DIR)/$*/ctest.log
	ctest --preset $* --no-tests=ignore -L spin -j2 \
	  --output-junit $(CURDIR)/$(BUILD_DIR)/$*/ctest-spin-junit.xml 2>&1 \
	  | tee -a $(BUILD_DIR)/$*/ctest.log
	@python3 tests/ctest_junit.py $(BUILD_DIR)/$*/ctest-junit.xml > $(BUILD_DIR)/$*/ctest-count.tmp
	@if [ -s $(BUILD_DIR)/$*/ctest-spin-junit.xml ]; then \
	  python3 tests/ctest_junit.py $(BUILD_DIR)/$*/ctest-spin-junit.xml spin_model.; \
	else echo 0 0 0 0; fi > $(BUILD_DIR)/$*/ctest-spin-count
	@read -r p1 s1 f1 t1 < $(BUILD_DIR)/$*/ctest-count.tmp; \
	read -r p2 s2 f2 t2 < $(BUILD_DIR)/$*/ctest-spin-count; \
	passed=$$((p1 + p2)); skipped=$$((s1 + s2)); failed=$$((f1 + f2)); total=$$((t1 + t2)); \
	echo "ctest $*: $$passed of $$total tests passed, $$skipped skipped, $$failed failed (JUnit report)"; \
	if [ "$$failed" -ne 0 ] || [ "$$passed" -eq 0 ]; then exit 1; fi; \
	echo "$$passed $$skipped $$failed $$total" > $(BUILD_DIR)/$*/ctest-count; \
	rm -f $(BUILD_DIR)/$*/ctest-count.tmp

# The libFuzzer harnesses (tests/fuzz/, docs/verification.md): clang++ with
# libFuzzer + ASAN + UBSAN, each run for FUZZ_SECONDS on the committed seed
# corpus (read only) plus a scratch corpus in $(FUZZ_DIR)/corpus/; any crash
# fails the stage and leaves its input in $(FUZZ_DIR)/crash-*. Each harness
# run counts as one test in the summary.
test-fuzz: deps
	@$(call banner,fuzz ($(FUZZ_SECONDS) s per harness))
	@rm -f $(FUZZ_DIR)/fuzz-count
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPAYGO_FUZZ=ON -DPAYGO_BUILD_BENCH=OFF \
	  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer" \
	  "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=address,undefined"
	cmake --build $(FUZZ_DIR) --target $(FUZZ_HARNESSES)
	@n=0; for h in $(FUZZ_HARNESSES); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$h; \
	  echo "== $$h: $(FUZZ_SECONDS) s"; \
	  if ! $(FUZZ_DIR)/tests/$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	       -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus/$$h tests/fuzz/corpus/$$h \
	       > $(FUZZ_DIR)/$$h.log 2>&1; then \
	    tail -n 60 $(FUZZ_DIR)/$$h.log; echo "fuzz: $$h FAILED (log: $(FUZZ_DIR)/$$h.log)"; exit 1; \
	  fi; \
	  grep -E '^(Done|stat::number_of_executed_units|stat::new_units_added)' $(FUZZ_DIR)/$$h.log; \
	  n=$$((n + 1)); \
	done; \
	echo "$$n" > $(FUZZ_DIR)/fuzz-count

# Mutants (tests/mutants/run.sh, docs/verification.md): the seed's group-bit
# rule, no heavy fence, no light fence, each built from a patched copy of the
# sources; the stage fails unless a test fails on every one of them.
test-mutants: deps
	@$(call banner,mutants)
	tests/mutants/run.sh $(BUILD_DIR)/mutants

# The installed package, used from a project outside the tree.
test-consumer consumer: build-release
	@$(call banner,install + consumer)
	rm -rf $(BUILD_DIR)/install $(BUILD_DIR)/consumer
	cmake --install $(BUILD_DIR)/release --prefix $(BUILD_DIR)/install
	cmake -S tests/consumer -B $(BUILD_DIR)/consumer -G Ninja -DCMAKE_CXX_COMPILER=g++ \
	  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=$(CURDIR)/$(BUILD_DIR)/install
	cmake --build $(BUILD_DIR)/consumer
	$(BUILD_DIR)/consumer/paygo-consumer

test-summary:
	@$(call banner,summary)
	@total=1; for p in $(PRESETS); do \
	  read -r n skipped _ _ < $(BUILD_DIR)/$$p/ctest-count; \
	  read -r spin _ _ _ < $(BUILD_DIR)/$$p/ctest-spin-count; \
	  line="  $$p: $$n tests passed"; \
	  if [ "$$skipped" -ne 0 ]; then line="$$line, $$skipped skipped"; fi; \
	  if [ "$$spin" -ne 0 ]; then line="$$line ($$spin of them spin_model.*)"; fi; \
	  echo "$$line"; \
	  total=$$((total + n)); \
	done; \
	variants=$$(bash tests/model/run_model.sh --list | wc -l); \
	broken=$$(bash tests/model/run_model.sh --list | grep -c ' cex$$' || true); \
	read -r spin _ _ _ < $(BUILD_DIR)/release/ctest-spin-count; \
	if [ "$$spin" -ne "$$variants" ]; then \
	  echo "  the SPIN model check ran $$spin of its $$variants variants (spin_model.*) in the release preset: install spin"; \
	  exit 1; \
	fi; \
	echo "  spin_model.* (release): the protocol model, $$((variants - broken)) correct variants verified, $$broken broken ones refuted"; \
	n=$$(cat $(FUZZ_DIR)/fuzz-count); echo "  fuzz: $$n harnesses passed"; \
	total=$$((total + n)); \
	n=$$(cat $(BUILD_DIR)/mutants/killed-count); echo "  mutants: $$n killed (each one a test that failed, as it must)"; \
	total=$$((total + n)); \
	echo "  consumer: 1 test passed"; \
	echo "$$total passed, 0 failed"

# Order matters (.NOTPARALLEL runs prerequisites left to right, each once).
test: deps format-check $(addprefix test-,$(PRESETS)) test-fuzz test-mutants test-consumer test-summary

# ---- the Linux port ------------------------------------------------------------

# kernel/run.sh installs its own packages (linux-source-6.1, qemu, busybox,
# ...), builds both kernels and boots them; --help lists KERNEL_TEST_ARGS.
KERNEL_TEST_ARGS ?=
kernel-test:
	@$(call banner,kernel-test)
	kernel/run.sh $(KERNEL_TEST_ARGS)

# ---- benchmark ---------------------------------------------------------------

# $(call experiment,name,args): paygo-bench <name> args -> <name>.json/.csv
# in RESULTS_DIR, its stderr (progress) also to <name>.log; the command and
# its stdout tables are appended to summary.txt. Exit code 1 (some points
# failed, the rest measured) is noted there and the sweep goes on.
define experiment
$(call experiment_as,$(1),$(1),$(2))
endef
# $(call experiment_as,file,subcommand,args): the same, into <file>.json/.csv/.log.
define experiment_as
@$(call banner,$(1))
@n=$$(nproc); rm -f $(RESULTS_DIR)/.rc; \
{ echo "== $$ paygo-bench $(2) $(3)"; \
  { $(BENCH) $(2) $(3) --json $(RESULTS_DIR)/$(1).json --csv $(RESULTS_DIR)/$(1).csv \
      2>&1 1>&3 || echo $$? > $(RESULTS_DIR)/.rc; } | tee $(RESULTS_DIR)/$(1).log >&2; \
  rc=$$(cat $(RESULTS_DIR)/.rc 2>/dev/null || echo 0); rm -f $(RESULTS_DIR)/.rc; \
  if [ "$$rc" -eq 1 ]; then \
    echo "WARNING: paygo-bench $(2) ($(1)): these points failed (the others are above):"; \
    grep FAILED $(RESULTS_DIR)/$(1).log || true; \
  fi; \
  echo; [ "$$rc" -le 1 ]; } 3>&1 | tee -a $(RESULTS_DIR)/summary.txt
endef

# `make eval` needs only paygo-bench: building the test suites too would
# double the time a fresh machine waits before the first measurement.
bench-build: deps configure-release
	@$(call banner,build paygo-bench (-j$(JOBS)))
	cmake --build --preset release --target paygo-bench

eval: bench-build
	@mkdir -p $(RESULTS_DIR)
	@{ echo "paygo make eval; machine, build, commit and date (paygo-bench machine):"; \
	   $(BENCH) machine && echo; } > $(RESULTS_DIR)/summary.txt
	@start=$$(date +%s); echo $$start > $(RESULTS_DIR)/.start
	$(call experiment,micro,$(EVAL_ARGS) $(BENCH_ARGS))
	$(call experiment,counting,$(EVAL_COUNTING_ARGS) --threads 1-$$n $(COUNTING_ARGS))
	$(call experiment_as,counting-zipf,counting,$(EVAL_ZIPF_ARGS) --threads 1-$$n $(COUNTING_ARGS))
	$(call experiment_as,counting-phase,counting,$(EVAL_PHASE_ARGS) $(COUNTING_ARGS))
	$(call experiment_as,counting-rrnd,counting,$(EVAL_RRND_ARGS) $(COUNTING_ARGS))
	$(call experiment_as,counting-oversub,counting,$(EVAL_OVERSUB_ARGS) $(COUNTING_ARGS))
	$(call experiment,query,$(EVAL_QUERY_ARGS) --touch-threads 1-$$n $(QUERY_ARGS))
	$(call experiment_as,query-zipf,query,$(EVAL_QUERY_ZIPF_ARGS) --touch-threads 1-$$n $(QUERY_ARGS))
	$(call experiment_as,query-misses,query,$(EVAL_QUERY_MISSES_ARGS) --touch-threads 1-$$n $(QUERY_ARGS))
	$(call experiment,rocksdb,$(EVAL_ROCKSDB_ARGS) --threads 1-$$n $(ROCKSDB_ARGS))
	@$(call banner,plots)
	tools/plot -o $(RESULTS_DIR) $(RESULTS_DIR)/micro.json $(RESULTS_DIR)/counting.json \
	  $(RESULTS_DIR)/counting-zipf.json $(RESULTS_DIR)/counting-phase.json \
	  $(RESULTS_DIR)/counting-rrnd.json $(RESULTS_DIR)/query.json $(RESULTS_DIR)/query-zipf.json \
	  $(RESULTS_DIR)/query-misses.json $(RESULTS_DIR)/rocksdb.json
	tools/plot -o $(RESULTS_DIR) --suffix oversub $(RESULTS_DIR)/counting-oversub.json
	@secs=$$(( $$(date +%s) - $$(cat $(RESULTS_DIR)/.start) )); rm -f $(RESULTS_DIR)/.start; \
	  echo "benchmarks took $$secs s (build not included)" | tee -a $(RESULTS_DIR)/summary.txt; \
	  if grep -q '^WARNING' $(RESULTS_DIR)/summary.txt; then \
	    echo "WARNING: some points failed; see summary.txt" | tee -a $(RESULTS_DIR)/summary.txt; \
	  fi
	@ln -sfn $(notdir $(RESULTS_DIR)) results/latest
	@echo
	@echo "results in $(RESULTS_DIR)/ (also results/latest/):"
	@ls -1 $(RESULTS_DIR) | sed 's/^/  /'

clean:
	rm -rf $(BUILD_DIR)
