# Thin wrapper over CMake (as neovim does). Targets:
#   make          build (build/)
#   make test     install deps, build, run the whole ctest suite (+ ASan/UBSan, fuzz, valgrind)
#   make test-valgrind  the unit label under valgrind memcheck (errors and definite leaks fail)
#   make test-chaos  the 100-job chaos run (seeded; RR_CHAOS_SEED=N replays one)
#   make demo     build, start master + worker + emulated rack, run deploy/examples/smoke.yaml
#   make bench    build with -O2 and run the benchmarks (RESULT lines)
#   make clean
BUILD      ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
JOBS       ?= $(shell nproc)
CTEST_ARGS ?=

.PHONY: all deps build test test-main test-asan test-fuzz test-valgrind test-chaos demo bench clean

all: build

deps:
	@./deploy/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# ASan/UBSan build with clang: runs the unit and integration labels.
test-asan: deps
	@CC=clang cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRACKRUN_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L '^(unit|integration)$$' $(CTEST_ARGS)

# libFuzzer targets (clang); their ctest entries carry the fuzz label.
test-fuzz: deps
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DRACKRUN_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@cd $(FUZZ_BUILD) && ctest --output-on-failure -L '^fuzz$$' $(CTEST_ARGS)

# The unit label under valgrind memcheck (the main build): a memory error or a
# definitely lost block fails the test. test_security_downloads is left out:
# its downloads open files with openat2 (worker/confine.c), which valgrind
# 3.19 does not know (ENOSYS), and rackrun refuses to open without it.
VALGRIND_OPTS = --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite
test-valgrind: build
	@cd $(BUILD) && ctest -T memcheck --output-on-failure -j $(JOBS) -L '^unit$$' \
	  -E '^test_security_downloads$$' \
	  --overwrite MemoryCheckCommand=$$(command -v valgrind) \
	  --overwrite 'MemoryCheckCommandOptions=$(VALGRIND_OPTS)' $(CTEST_ARGS)

# The main suite runs last so that its ctest summary is the closing line.
# TEST_EXCLUDE=REGEX leaves tests out of a hand run (ctest -E).
TEST_EXCLUDE ?=
test-main: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE '^fuzz$$' \
	  $(if $(TEST_EXCLUDE),-E '$(TEST_EXCLUDE)') $(CTEST_ARGS)

test-chaos: build
	@cd $(BUILD) && ctest --output-on-failure -R '^test_chaos$$' $(CTEST_ARGS)

test: deps
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-fuzz
	@$(MAKE) --no-print-directory test-valgrind
	@$(MAKE) --no-print-directory test-main

demo: build
	@./deploy/demo.sh $(BUILD)

bench: deps
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS_RELEASE=-O2 -DNDEBUG" >/dev/null
	@cmake --build build-bench -j $(JOBS)
	@./bench/run.sh build-bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD) build-bench
