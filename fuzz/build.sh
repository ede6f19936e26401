#!/bin/sh
# fuzz/build.sh OUTDIR: builds the libFuzzer targets with clang (ASan +
# UBSan): fuzz_event (the partner payload parser) and fuzz_feed_<format>
# for each feed parser. Needs clang and libclang-rt-14-dev.
set -eu
out=${1:-build/fuzz}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
CC=${CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
FLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -DRV_WEB_ROOT=\"\" -DRV_SOURCE_DIR=\"$root\" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$root/include"
CORE="$root/core/*.c"
FEEDS="$root/ingest/feed_*.c"
LIBS="-lcjson -lzip -lcrypto -lm -lpthread"
# shellcheck disable=SC2086
$CC $FLAGS -o "$out/fuzz_event" "$root/fuzz/fuzz_event.c" $CORE $LIBS
for f in ndjson ooni ioda gdelt acled; do
    # shellcheck disable=SC2086
    $CC $FLAGS -DFUZZ_FORMAT="\"$f\"" -o "$out/fuzz_feed_$f" "$root/fuzz/fuzz_feed.c" $CORE $FEEDS $LIBS
done
echo "fuzz: targets in $out"
