#!/bin/bash
# bench/ingest_ab.sh: the ingest throughput of two builds, interleaved, with
# the daemon's CPU per acknowledged event (the figure that moves least on a
# shared machine). Each run: a fresh rightsviewd with four CURVE partners on
# 127.0.0.1 (free ports, a temporary directory), one `bench_ingest partner`
# run against it, the daemon's user+system CPU from /proc over that run.
#
#   bench/ingest_ab.sh BUILD_A BUILD_B [PUBLISHERS BATCH SECONDS [PAIRS]]
#   (defaults: 4 1000 20 2; BUILD_* hold rightsviewd, rvctl, bench_ingest)
set -eu

A=$(cd "$1" && pwd)
B=$(cd "$2" && pwd)
PUBS=${3:-4}
BATCH=${4:-1000}
SECS=${5:-20}
PAIRS=${6:-2}
for b in "$A" "$B"; do
    for exe in rightsviewd rvctl bench_ingest; do
        [ -x "$b/$exe" ] || { echo "ingest_ab.sh: '$b/$exe' is missing" >&2; exit 2; }
    done
done

T=$(mktemp -d "${TMPDIR:-/tmp}/rvbench-ab.XXXXXX")
DPID=""
cleanup() {
    set +e
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

for k in server p1 p2 p3 p4; do "$A/rvctl" keygen "$T/$k" >/dev/null; done
for k in p1 p2 p3 p4; do echo "$k $(cat "$T/$k.pub")"; done >"$T/partners.txt"
free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

one() { # BUILD: prints "ev_s cpu_us_per_event"
    local b=$1 port out t0 t1 ev
    port=$(free_port)
    rm -rf "$T/data"
    "$b/rightsviewd" --data "$T/data" --ingest "tcp://127.0.0.1:$port" --http 127.0.0.1:0 \
        --partners "$T/partners.txt" --server-key "$T/server.key" >"$T/d.out" 2>"$T/d.log" &
    DPID=$!
    for _ in $(seq 150); do grep -q "ingest " "$T/d.out" 2>/dev/null && break; sleep 0.1; done
    grep -q "ingest " "$T/d.out" || { cat "$T/d.log" >&2; exit 1; }
    t0=$(ticks "$DPID")
    out=$(timeout -k 5 $((SECS + 60)) "$b/bench_ingest" partner --endpoint "tcp://127.0.0.1:$port" \
        --server-pub "$T/server.pub" --key "$T/p1.key" --key "$T/p2.key" --key "$T/p3.key" \
        --key "$T/p4.key" --publishers "$PUBS" --batch "$BATCH" --window 4 --seconds "$SECS" |
        grep '^result ')
    t1=$(ticks "$DPID")
    kill "$DPID"
    wait "$DPID" 2>/dev/null || true
    DPID=""
    ev=$(echo "$out" | tr ' ' '\n' | sed -n 's/^events=//p')
    echo "$out" | tr ' ' '\n' | sed -n 's/^ev_s=//p' | tr '\n' ' '
    awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v e="$ev" 'BEGIN { printf "%.2f\n", t / hz / e * 1e6 }'
}

echo "ingest A/B: $(date -u '+%Y-%m-%d %H:%M UTC'), $PUBS publishers x $BATCH, $SECS s a run, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "A=$A"
echo "B=$B"
printf "%5s %12s %10s %12s %10s %8s\n" pair "A ev/s" "A us/ev" "B ev/s" "B us/ev" "A/B ev/s"
for i in $(seq "$PAIRS"); do
    read -r ea ca <<<"$(one "$A")"
    read -r eb cb <<<"$(one "$B")"
    printf "%5s %12s %10s %12s %10s %8s\n" "$i" "$ea" "$ca" "$eb" "$cb" \
        "$(awk -v a="$ea" -v b="$eb" 'BEGIN { printf "%.2f", a / b }')"
done
