# paygo — top-level entry points. On a fresh Debian 12 machine:
#
#   make eval    build (release) and run the micro benchmark -> results/<time>/
#   make test    format check, then build + ctest for release, asan and tsan,
#                then build a consumer of the installed package
#
# Other targets: deps (install Debian packages), build, format (fix
# formatting), format-check, test-release/test-asan/test-tsan, test-consumer,
# clean. `make help` lists them.
#
# Knobs (make VAR=value): JOBS (parallel compile jobs, default 2),
# BENCH_ARGS (extra arguments for paygo-bench micro in `make eval`).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# Stages share the machine (and build/): never run two at once, even with -j.
.NOTPARALLEL:

# Debian packages the build, the tests and the benchmarks need. Later
# additions append: DEB_PACKAGES += python3-matplotlib
DEB_PACKAGES := g++ cmake ninja-build libgtest-dev libbenchmark-dev libcli11-dev libfmt-dev \
                nlohmann-json3-dev clang-format python3
# The SPIN model checker for tests/model/ (ctest: spin_model).
DEB_PACKAGES += spin

JOBS ?= 2
export CMAKE_BUILD_PARALLEL_LEVEL := $(JOBS)
# ctest runs tests one at a time: they are concurrency stress tests.
export CTEST_PARALLEL_LEVEL := 1
export CTEST_OUTPUT_ON_FAILURE := 1

PRESETS := release asan tsan
FORMAT_DIRS := include src tests bench
BUILD_DIR := build
RESULTS_DIR := results/$(shell date +%Y%m%d-%H%M%S)
BENCH := $(BUILD_DIR)/release/bench/paygo-bench
# Small defaults: about a minute on a 2-core machine with a handful of counters.
EVAL_ARGS := --duration 0.2 --repeat 3 --max-slots 64
BENCH_ARGS ?=

# $(call banner,text): a visible stage header.
banner = printf '\n==================== %s ====================\n' "$(1)"

.PHONY: help deps build test eval clean format format-check consumer test-consumer \
        $(addprefix test-,$(PRESETS)) $(addprefix configure-,$(PRESETS)) \
        $(addprefix build-,$(PRESETS)) test-summary

help:
	@echo "make eval          build (release) and run the micro benchmark into results/<time>/"
	@echo "make test          format check + release/asan/tsan builds and tests + consumer"
	@echo "make deps          install the Debian packages ($(DEB_PACKAGES))"
	@echo "make build         configure and build the release preset"
	@echo "make format        clang-format -i the sources; format-check only checks"
	@echo "make test-<preset> one preset ($(PRESETS)); test-consumer: the install check"
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

# test-<preset>: build it and run its ctest; the number of tests run goes to
# build/<preset>/ctest-count for the summary.
$(addprefix test-,$(PRESETS)): test-%: build-%
	@$(call banner,ctest $*)
	@rm -f $(BUILD_DIR)/$*/ctest-count
	ctest --preset $* --no-tests=error 2>&1 | tee $(BUILD_DIR)/$*/ctest.log
	@n=$$(sed -n 's/.*tests passed, 0 tests failed out of \([0-9][0-9]*\).*/\1/p' \
	      $(BUILD_DIR)/$*/ctest.log | tail -n1); \
	[ -n "$$n" ] || { echo "ctest $*: no summary line"; exit 1; }; \
	echo "$$n" > $(BUILD_DIR)/$*/ctest-count

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
	  n=$$(cat $(BUILD_DIR)/$$p/ctest-count); echo "  $$p: $$n tests passed"; \
	  total=$$((total + n)); \
	done; \
	echo "  consumer: 1 test passed"; \
	echo "$$total passed, 0 failed"

# Order matters (.NOTPARALLEL runs prerequisites left to right, each once).
test: deps format-check $(addprefix test-,$(PRESETS)) test-consumer test-summary

# ---- benchmark ---------------------------------------------------------------

eval: build
	@$(call banner,micro benchmark)
	mkdir -p $(RESULTS_DIR)
	$(BENCH) micro $(EVAL_ARGS) $(BENCH_ARGS) \
	  --json $(RESULTS_DIR)/micro.json --csv $(RESULTS_DIR)/micro.csv
	@ln -sfn $(notdir $(RESULTS_DIR)) results/latest
	@echo
	@echo "results: $(RESULTS_DIR)/micro.json and $(RESULTS_DIR)/micro.csv (also results/latest/)"

clean:
	rm -rf $(BUILD_DIR)
