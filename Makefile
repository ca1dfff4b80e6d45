# Thin wrapper around CMake; build output goes to out/ (build/ holds the builder's sources).
BUILD_TYPE ?= RelWithDebInfo
OUT ?= out
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps configure build demo test test-ctest test-sanitize fuzz fuzz-build fuzz-smoke lint bench \
	format format-check clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(OUT) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(OUT) -j $(JOBS)

demo: build
	@scripts/demo $(OUT)/berth

# Every test of the normal build, then each fuzz target for a few seconds (clang build).
test: test-ctest fuzz-smoke

test-ctest: build
	@cd $(OUT) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# ASan + UBSan build of everything, unit tests run under it.
test-sanitize:
	@$(MAKE) --no-print-directory OUT=out/sanitize BUILD_TYPE=Sanitize test-ctest CTEST_FLAGS="-L unit"

# libFuzzer targets (tests/fuzz/, seeds in fixtures/fuzz/): a separate clang build in out/fuzz.
# `make fuzz` runs each for FUZZ_SECONDS; `make test` for FUZZ_SMOKE_SECONDS.
FUZZ_OUT ?= out/fuzz
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 5

fuzz-build: deps
	@cmake -S . -B $(FUZZ_OUT) -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DBERTH_FUZZ=ON -DBERTH_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build $(FUZZ_OUT) -j $(JOBS) --target fuzz_targets

fuzz: fuzz-build
	@cd $(FUZZ_OUT) && ctest --output-on-failure -L fuzz -j $(JOBS) $(CTEST_FLAGS)

fuzz-smoke:
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SMOKE_SECONDS)

bench: build
	@for b in tests/bench/bench_*.sh; do BERTH=$(CURDIR)/$(OUT)/berth BERTH_SRC=$(CURDIR) bash $$b || exit 1; done

# Banned calls and include layering (scripts/lint says what and why).
lint:
	@scripts/lint

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(OUT)
