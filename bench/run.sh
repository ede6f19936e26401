#!/bin/sh
# bench/run.sh: every benchmark, one after the other (`make bench`).
#   sh bench/run.sh [BUILD_DIR]      (default: build)
# One command a line; add yours below. Each prints its own table.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."

"$BUILD/bench_store"
bash bench/ingest.sh "$BUILD"
"$BUILD/bench_aggregator"
sh bench/backtest_samples.sh "$BUILD"
/usr/bin/python3 bench/fanout.py --build "$BUILD"
