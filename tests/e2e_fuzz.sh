#!/usr/bin/env bash
# e2e_fuzz: builds the libFuzzer targets (event parser, each feed parser)
# and runs each for a short bounded time (RV_FUZZ_SECONDS, default 5),
# seeded with the shipped samples. A crash, leak, UB report or a violated
# invariant (an emitted event that does not validate or round-trip, a
# rejection without a message) fails the test. `make fuzz` runs longer.
set -euo pipefail
src=${RV_SOURCE_DIR:?}
out=${RV_BUILD_DIR:?}/fuzz
sh "$src/fuzz/build.sh" "$out"
FUZZ_SEED=${FUZZ_SEED:-1} sh "$src/fuzz/run.sh" "$out" "${RV_FUZZ_SECONDS:-5}"
