#!/usr/bin/env bash
# HTTP benchmark of the authenticated request path (docs/benchmarks.md).
# Drives the release binary with wrk on loopback, on SQLite and on PostgreSQL, beside a bare
# axum handler (a tiny body, and the same body as /me). Usage:
# scripts/bench-http.sh [duration_seconds] [connections] [rounds]
#
# The servers (bare, SQLite, PostgreSQL) run side by side, idle but for the one measured,
# and the rows are taken in rounds (bare, then each casegate row, then bare again ...), so a
# drift of the machine's speed during the run shows in every row alike instead of in one.
# PIN=1 puts the servers on CPU 0 and wrk (one thread) on CPU 1, so the load generator does not
# compete with the server it measures. BIN overrides the casegate binary; BIN_B names a second
# one (an A/B comparison), whose servers run beside the first and whose rows ("sqlite_b",
# "postgres_b") are taken in the same rounds. Relative paths are from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-15}"
CONNS="${2:-32}"
ROUNDS="${3:-3}"
PIN="${PIN:-0}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -q -p casegate-server
  cargo build --release -q -p casegate-api --example bare_axum
fi
BIN="${BIN:-${CARGO_TARGET_DIR:-target}/release/casegate}"
BIN_B="${BIN_B:-}"
BARE="${CARGO_TARGET_DIR:-target}/release/examples/bare_axum"
WORK=$(mktemp -d)
PGDB=casegate_bench_$$
PGURL="postgres://postgres@127.0.0.1:5432/$PGDB"
if [ "$PIN" = 1 ]; then SRV=(taskset -c 0); GEN=(taskset -c 1); THREADS=1; else SRV=(); GEN=(); THREADS=2; fi
PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true
            # Gone before a next run binds the same ports.
            for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
            for d in "$PGDB" "${PGDB}_b"; do
              psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
            done
            rm -rf "$WORK"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 1 100); do curl -sf "$1" >/dev/null && return 0; sleep 0.1; done; echo "server at $1 did not start" >&2; exit 1; }

# wrk → "req/s p50 p99" (latency in ms)
run_wrk() {
  local out; out=$("${GEN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency "${@}")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { python3 -c "import sys,re;v=sys.argv[1];n,u=re.match(r'([0-9.]+)(us|ms|s)',v).groups();print(round(float(n)*{'us':0.001,'ms':1,'s':1000}[u],3))" "$1"; }

declare -A KEY USERID BASE
start_backend() { # name database_url port [binary]
  local name=$1 url=$2 port=$3 bin=${4:-$BIN} json
  export CASEGATE_DATA_DIR="$WORK/$name" CASEGATE_DATABASE_URL="$url" CASEGATE_RATE_LIMIT_PER_MINUTE=4000000000 CASEGATE_LISTEN="127.0.0.1:$port"
  json=$("$bin" demo --json 2>/dev/null)
  KEY[$name]=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["api_keys"]["admin"])' <<<"$json")
  BASE[$name]="http://127.0.0.1:$port"
  "${SRV[@]}" "$bin" serve 2>"$WORK/$name.log" >/dev/null &
  PIDS+=($!)
  wait_up "${BASE[$name]}/healthz"
  USERID[$name]=$(curl -sf -H "Authorization: Bearer ${KEY[$name]}" "${BASE[$name]}/api/v1/users/analyst@demo.example" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  unset CASEGATE_DATA_DIR CASEGATE_DATABASE_URL CASEGATE_RATE_LIMIT_PER_MINUTE CASEGATE_LISTEN
}

"${SRV[@]}" "$BARE" 127.0.0.1:18081 &
PIDS+=($!)
wait_up http://127.0.0.1:18081/me
start_backend sqlite "sqlite://$WORK/sqlite/casegate.db" 18082
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" >/dev/null
start_backend postgres "$PGURL" 18083
BACKENDS=(sqlite postgres)
if [ -n "$BIN_B" ]; then
  start_backend sqlite_b "sqlite://$WORK/sqlite_b/casegate.db" 18084 "$BIN_B"
  psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE ${PGDB}_b" >/dev/null
  start_backend postgres_b "${PGURL}_b" 18085 "$BIN_B"
  BACKENDS+=(sqlite_b postgres_b)
fi

# Warm-up: every target once, briefly.
"${GEN[@]}" wrk -t1 -c4 -d2s http://127.0.0.1:18081/me >/dev/null
"${GEN[@]}" wrk -t1 -c4 -d2s http://127.0.0.1:18081/me-sized >/dev/null
for b in "${BACKENDS[@]}"; do
  "${GEN[@]}" wrk -t1 -c4 -d2s -H "Authorization: Bearer ${KEY[$b]}" "${BASE[$b]}/api/v1/me" >/dev/null
  "${GEN[@]}" wrk -t1 -c4 -d2s -H "Authorization: Bearer ${KEY[$b]}" "${BASE[$b]}/api/v1/users/${USERID[$b]}" >/dev/null
done

for r in $(seq 1 "$ROUNDS"); do
  echo "round $r bare me $(run_wrk http://127.0.0.1:18081/me)"
  echo "round $r bare me-sized $(run_wrk http://127.0.0.1:18081/me-sized)"
  for b in "${BACKENDS[@]}"; do
    echo "round $r $b me $(run_wrk -H "Authorization: Bearer ${KEY[$b]}" "${BASE[$b]}/api/v1/me")"
    echo "round $r $b user $(run_wrk -H "Authorization: Bearer ${KEY[$b]}" "${BASE[$b]}/api/v1/users/${USERID[$b]}")"
  done
done
echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency; pinned=$PIN; $(nproc) cores; $(date -u +%F)"
