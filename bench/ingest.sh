#!/bin/bash
# bench/ingest.sh: the ingest benchmark of issue 4, every figure in one run
# on 127.0.0.1 (free ports, temporary directories, all removed at the end,
# also on failure or Ctrl-C):
#   - rightsviewd with CURVE partners: acknowledged events/s for 1 and 4
#     publishers x batches of 100 and 1000, and the ack latency p50/p99 at a
#     steady 1000 events/s (batches of 10 every 10 ms);
#   - the raw ceilings: ZeroMQ CURVE tcp (echo server, no parsing, no
#     storage) and durable mdb_put of the same events at the same batch size
#     (and the time of one durable commit of a 10-event batch at the pace of
#     the latency run);
#   - PostgreSQL 15 (a throwaway cluster on loopback, synchronous_commit on):
#     COPY of the same events, one COPY + commit per batch, as many psql
#     loaders as publishers.
# The runs are interleaved (ingest, PostgreSQL, raw LMDB, raw ZeroMQ for
# each configuration) so that each ratio compares measurements taken close
# together on a noisy machine.
#
#   bench/ingest.sh [BUILD_DIR]      (default: build)
# Env: RV_BENCH_SECONDS (length of each throughput run, default 6),
# RV_BENCH_WINDOW (batches in flight per publisher, default 8: what
# `rvctl publish` keeps in flight by default).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${1:-$here/../build}" && pwd)
SECS=${RV_BENCH_SECONDS:-6}
WINDOW=${RV_BENCH_WINDOW:-8}
BI=$BUILD/bench_ingest
PGBIN=/usr/lib/postgresql/15/bin
for exe in "$BI" "$BUILD/rightsviewd" "$BUILD/rvctl"; do
    if [ ! -x "$exe" ]; then
        echo "ingest.sh: '$exe' is missing: build first (make build)" >&2
        exit 2
    fi
done

T=$(mktemp -d "${TMPDIR:-/tmp}/rvbench-ingest.XXXXXX")
PGT=""
PGUP=""
DPID=""
RUNAS=()

stop_daemon() {
    if [ -n "$DPID" ]; then
        kill "$DPID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DPID" 2>/dev/null
        wait "$DPID" 2>/dev/null
        DPID=""
    fi
}

cleanup() {
    set +e
    stop_daemon
    if [ -n "$PGUP" ]; then
        "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGT/data" -m immediate -w -t 20 stop >/dev/null 2>&1
    fi
    [ -n "$PGT" ] && rm -rf "$PGT"
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# value of KEY in a "result k=v ..." line
field() {
    echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# one bench_ingest run, bounded; prints its result line
run() {
    local out
    if ! out=$(timeout -k 5 $((${SECS%.*} + 60)) "$BI" "$@" | grep '^result '); then
        echo "ingest.sh: bench_ingest $1 failed" >&2
        return 1
    fi
    echo "  $out" >&2
    case "$out" in
    *" failures=0 "* | *"mode=raw"* | *"mode=pg"*) ;;
    *) echo "ingest.sh: warning: failed batches in this run" >&2 ;;
    esac
    echo "$out"
}

# wait (at most 15 s) until the daemon is idle (< 10% of a core over
# 0.5 s): the aggregator may still be working through a throughput run
settle() {
    local a b
    [ -n "$DPID" ] || return 0
    for _ in $(seq 30); do
        a=$(awk '{ print $14 + $15 }' "/proc/$DPID/stat" 2>/dev/null || echo 0)
        sleep 0.5
        b=$(awk '{ print $14 + $15 }' "/proc/$DPID/stat" 2>/dev/null || echo 0)
        [ $((b - a)) -lt $(($(getconf CLK_TCK) / 20)) ] && return 0
    done
    echo "ingest.sh: warning: rightsviewd still busy" >&2
}

ratio() { # A/B with 2 decimals, "-" when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

REV=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo "?")
HEAD="ingest benchmark (issue 4): $(date -u '+%Y-%m-%d %H:%M UTC'), commit $REV, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), ${SECS} s per throughput run"
echo "$HEAD; data in $T" >&2

# ---------------------------------------------------------------- PostgreSQL
# autovacuum off: it would otherwise run during the other measurements
if [ -x "$PGBIN/initdb" ] && command -v psql >/dev/null; then
    PGT=$(mktemp -d "${TMPDIR:-/tmp}/rvbench-pg.XXXXXX")
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PGT"
        RUNAS=(runuser -u postgres --)
    fi
    PGPORT=$(free_port)
    "${RUNAS[@]}" "$PGBIN/initdb" -D "$PGT/data" -A trust -U postgres -E UTF8 >"$PGT/initdb.log" 2>&1 ||
        { cat "$PGT/initdb.log" >&2; exit 1; }
    PGUP=1
    "${RUNAS[@]}" "$PGBIN/pg_ctl" -D "$PGT/data" -l "$PGT/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$PGT -c fsync=on -c synchronous_commit=on -c autovacuum=off" \
        start >/dev/null || { cat "$PGT/server.log" >&2; exit 1; }
    PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PGPORT" -U postgres -d postgres)
    "${PSQL[@]}" -c "CREATE TABLE events (source text NOT NULL, id text NOT NULL,
        kind text NOT NULL, country char(2) NOT NULL, violation text NOT NULL,
        time timestamptz NOT NULL, count integer NOT NULL, severity smallint NOT NULL,
        confidence real NOT NULL, admin1 text, title text, url text,
        PRIMARY KEY (source, id));
        CREATE INDEX events_cvt ON events (country, violation, time);"
    echo "  postgres $("${PSQL[@]}" -At -c 'SHOW server_version') on port $PGPORT, synchronous_commit $("${PSQL[@]}" -At -c 'SHOW synchronous_commit'), fsync $("${PSQL[@]}" -At -c 'SHOW fsync')" >&2
else
    echo "ingest.sh: PostgreSQL 15 not installed (scripts/install-deps.sh --bench): no PostgreSQL column" >&2
fi

# ---------------------------------------------------------------- rightsviewd
for k in server p1 p2 p3 p4; do "$BUILD/rvctl" keygen "$T/$k" >/dev/null; done
for k in p1 p2 p3 p4; do echo "$k $(cat "$T/$k.pub")"; done >"$T/partners.txt"
PORT=$(free_port)
EP=tcp://127.0.0.1:$PORT
"$BUILD/rightsviewd" --data "$T/data" --ingest "$EP" --http 127.0.0.1:0 \
    --partners "$T/partners.txt" --server-key "$T/server.key" >"$T/daemon.out" 2>"$T/daemon.log" &
DPID=$!
for _ in $(seq 150); do
    grep -q "ingest " "$T/daemon.out" 2>/dev/null && break
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
done
if ! grep -q "ingest " "$T/daemon.out" 2>/dev/null; then
    echo "ingest.sh: rightsviewd did not start:" >&2
    cat "$T/daemon.log" >&2
    exit 1
fi
KEYS=(--key "$T/p1.key" --key "$T/p2.key" --key "$T/p3.key" --key "$T/p4.key")

declare -A ING ZMQ LMDB PG
PGSUM=0
PGBAD=""

# ---------------------------------------------------------------- latency
# on the fresh daemon, then one raw durable commit of the same size at the
# same pace
r=$(run paced --endpoint "$EP" --server-pub "$T/server.pub" --key "$T/p1.key" \
    --rate 1000 --batch 10 --seconds 10) || r=""
P50=$(field p50_ms "$r")
P99=$(field p99_ms "$r")
PMAX=$(field max_ms "$r")
PN=$(field lat_n "$r")
settle
mkdir "$T/lmdb-10"
r=$(run rawlmdb --batch 10 --rate 1000 --seconds 10 --dir "$T/lmdb-10") || r=""
C50=$(field commit_p50_ms "$r")
C99=$(field commit_p99_ms "$r")
rm -rf "$T/lmdb-10"

# ---------------------------------------------------------------- throughput
for b in 100 1000; do
    mkdir "$T/lmdb-$b"
    r=$(run rawlmdb --batch "$b" --seconds "$SECS" --dir "$T/lmdb-$b") || r=""
    LMDB[$b]=$(field ev_s "$r")
    rm -rf "$T/lmdb-$b"
    for n in 1 4; do
        r=$(run partner --endpoint "$EP" --server-pub "$T/server.pub" "${KEYS[@]}" \
            --publishers "$n" --batch "$b" --window "$WINDOW" --seconds "$SECS") || r=""
        ING[$n,$b]=$(field ev_s "$r")
        settle
        if [ -n "$PGUP" ]; then
            r=$(run pgcopy --publishers "$n" --batch "$b" --seconds "$SECS" -- "${PSQL[@]}") || r=""
            PG[$n,$b]=$(field ev_s "$r")
            if [ -n "$r" ]; then PGSUM=$((PGSUM + $(field events "$r"))); else PGBAD=1; fi
        fi
        r=$(run rawzmq --publishers "$n" --batch "$b" --window "$WINDOW" --seconds 3) || r=""
        ZMQ[$n,$b]=$(field ev_s "$r")
    done
done
stop_daemon || true
if [ -n "$PGUP" ] && [ -z "$PGBAD" ]; then
    rows=$("${PSQL[@]}" -At -c 'SELECT count(*) FROM events')
    if [ "$rows" != "$PGSUM" ]; then
        echo "ingest.sh: postgres holds $rows rows, the loaders counted $PGSUM" >&2
        exit 1
    fi
    echo "  postgres: $rows rows, as counted" >&2
fi

# ---------------------------------------------------------------- table
echo
echo "$HEAD"
echo "acknowledged events/s, tcp + CURVE, ~300-byte NDJSON events, $WINDOW batches in flight per publisher;"
echo "raw-lmdb: one writer, one durable txn per batch; pg-copy: as many psql loaders as publishers"
printf "%5s %6s %12s %14s %14s %12s %14s %12s\n" pubs batch "ingest ev/s" "zmq-curve ev/s" "raw-lmdb ev/s" "pg-copy ev/s" "ingest/lmdb" "ingest/pg"
printf "%5s %6s %12s %14s %14s %12s %14s %12s\n" "" "" "" "(ceiling)" "(same batch)" "(same batch)" "(goal >=0.5)" "(goal >=3)"
for b in 100 1000; do
    for n in 1 4; do
        printf "%5s %6s %12s %14s %14s %12s %14s %12s\n" "$n" "$b" "${ING[$n,$b]:--}" "${ZMQ[$n,$b]:--}" \
            "${LMDB[$b]:--}" "${PG[$n,$b]:--}" "$(ratio "${ING[$n,$b]:-}" "${LMDB[$b]:-}")" \
            "$(ratio "${ING[$n,$b]:-}" "${PG[$n,$b]:-}")"
    done
done
echo "ack latency at a steady 1000 events/s (batches of 10 every 10 ms, ${PN:-0} batches): p50 ${P50:--} ms, p99 ${P99:--} ms, max ${PMAX:--} ms"
echo "one raw durable LMDB commit of a 10-event batch, same pace: p50 ${C50:--} ms, p99 ${C99:--} ms"
echo "ack p99 / raw commit p50: $(ratio "${P99:-}" "${C50:-}") (goal <= 3); ack p99 / raw commit p99: $(ratio "${P99:-}" "${C99:-}")"
