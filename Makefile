# Thin wrapper around CMake; build output goes to out/ (build/ holds the builder's sources).
BUILD_TYPE ?= RelWithDebInfo
OUT ?= out
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps configure build demo test test-sanitize bench format format-check clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(OUT) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(OUT) -j $(JOBS)

demo: build
	@scripts/demo $(OUT)/berth

test: build
	@cd $(OUT) && ctest --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

# ASan + UBSan build of everything, unit tests run under it.
test-sanitize:
	@$(MAKE) --no-print-directory OUT=out/sanitize BUILD_TYPE=Sanitize test CTEST_FLAGS="-L unit"

bench: build
	@for b in tests/bench/bench_*.sh; do BERTH=$(CURDIR)/$(OUT)/berth BERTH_SRC=$(CURDIR) bash $$b || exit 1; done

format:
	@git ls-files '*.c' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.c' '*.h' | xargs clang-format --dry-run --Werror

clean:
	rm -rf $(OUT)
