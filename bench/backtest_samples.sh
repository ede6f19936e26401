#!/bin/sh
# bench/backtest_samples.sh: `rvctl backtest` on every shipped sample (demo/: each folder's
# files with that folder's format, as `rightsviewd --demo` reads them) against the labelled
# episodes of demo/episodes.csv, at each level: precision, recall, median lead time.
#   sh bench/backtest_samples.sh [BUILD_DIR]      (default: build)
# Prints one line per level, then what the backtest said on stderr (rejected records, late
# events) once. Under a second; no CPU to speak of.
set -eu
BUILD=$(cd "${1:-build}" && pwd)
cd "$(dirname "$0")/.."
err=$(mktemp)
trap 'rm -f "$err"' EXIT

echo "backtest on the shipped samples (demo/*, demo/episodes.csv):"
for level in watch warning critical; do
    printf '  --level %-8s ' "$level"
    "$BUILD/rvctl" backtest \
        --format ioda --events demo/ioda/* \
        --format acled --events demo/acled/* \
        --format gdelt --events demo/gdelt/* \
        --format ooni --events demo/ooni/* \
        --format ndjson --events demo/partner/* \
        --episodes demo/episodes.csv --level "$level" 2>"$err" | sed '2,$s/^/                     /'
done
grep '^backtest: ' "$err" | sed 's/^/  stderr: /' || true
