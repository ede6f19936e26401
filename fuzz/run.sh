#!/bin/sh
# fuzz/run.sh OUTDIR SECONDS: runs every fuzz target for SECONDS each,
# seeded with the shipped samples (tests/data), in a scratch corpus dir.
# Exits non-zero at the first crash, leak or abort (libFuzzer writes the
# input to OUTDIR/crash-*). FUZZ_SEED=N makes a run repeatable (make test
# uses a fixed seed so that CI is deterministic; make fuzz a random one).
set -eu
out=${1:-build/fuzz}
secs=${2:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/tests/data"
seed() { # target -> seed files
    case "$1" in
    fuzz_event|fuzz_feed_ndjson) echo "$data/partner_events.ndjson $data/partner_events_bad.ndjson" ;;
    fuzz_feed_ooni) ls "$data"/ooni/*.json ;;
    fuzz_feed_ioda) ls "$data"/ioda/*.json ;;
    fuzz_feed_gdelt) ls "$data"/*.export.sample.CSV ;;
    fuzz_feed_acled) ls "$data"/*acled*.csv ;;
    esac
}
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in fuzz_event fuzz_feed_ndjson fuzz_feed_ooni fuzz_feed_ioda fuzz_feed_gdelt fuzz_feed_acled; do
    corpus=$(mktemp -d)
    for f in $(seed "$t"); do cp "$f" "$corpus/"; done
    echo "fuzz: $t for ${secs}s"
    # shellcheck disable=SC2086
    "$out/$t" ${FUZZ_SEED:+-seed=$FUZZ_SEED} -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$out/" -print_final_stats=0 "$corpus" 2>"$out/$t.log" || {
        tail -40 "$out/$t.log" >&2
        rm -rf "$corpus"
        echo "fuzz: $t FAILED (input saved under $out/)" >&2
        exit 1
    }
    grep -E "^#[0-9]+ *DONE" "$out/$t.log" | tail -1 || true
    rm -rf "$corpus"
done
echo "fuzz: all targets ran clean"
