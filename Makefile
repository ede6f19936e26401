# rightsview: the two commands.
#   make run    install what is missing, build, start rightsviewd --demo on :8080
#   make test   install what is missing, build, run every test
# Also: make build, make bench, make asan, make tsan, make fuzz, make web, make clean.

BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
# The demo writes into its own data dir, recreated each time: its replay
# ids carry the start time, so a second run on the same dir would count the
# samples twice. Run rightsviewd yourself for real data (README).
DEMO_DATA ?= $(BUILD)/demo-data
RUN_ARGS ?= --demo --data $(DEMO_DATA)

.PHONY: all deps build web run test bench asan tsan fuzz clean

all: build

deps:
	@sh scripts/install-deps.sh --browser

build:
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

web:
	@if [ -f web/package.json ]; then sh scripts/build-web.sh; fi

run: deps build web
	@rm -rf $(DEMO_DATA)
	@echo "rightsview: starting the demo; dashboard on http://127.0.0.1:8080  (Ctrl-C to stop)"
	./$(BUILD)/rightsviewd $(RUN_ARGS)

test: deps build web
	cd $(BUILD) && ctest --output-on-failure -j1

bench: deps build
	@sh scripts/install-deps.sh --bench
	sh bench/run.sh $(BUILD)

asan:
	@sh scripts/install-deps.sh
	$(MAKE) build BUILD=build-asan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DRV_SANITIZE=address,undefined"
	cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j1 -E e2e_

tsan:
	@sh scripts/install-deps.sh
	$(MAKE) build BUILD=build-tsan CMAKE_FLAGS="-DCMAKE_BUILD_TYPE=Debug -DRV_SANITIZE=thread"
	cd build-tsan && TSAN_OPTIONS=suppressions=$(CURDIR)/tests/tsan.supp:halt_on_error=1 ctest --output-on-failure -j1 -E e2e_

# libFuzzer targets (clang): the event parser and every feed parser,
# FUZZ_SECONDS each (make test runs them for 5 s through tests/e2e_fuzz.sh).
FUZZ_SECONDS ?= 120
fuzz:
	@sh scripts/install-deps.sh
	sh fuzz/build.sh $(BUILD)/fuzz
	sh fuzz/run.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-tsan web/dist
