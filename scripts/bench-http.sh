#!/usr/bin/env bash
# HTTP benchmark of the authenticated request path (docs/benchmarks.md).
# Drives the release binary with wrk on loopback, on SQLite and on PostgreSQL, beside a bare
# axum handler. Usage: scripts/bench-http.sh [duration_seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-15}"
CONNS="${2:-32}"
THREADS=2
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
cargo build --release -q -p casegate-server
cargo build --release -q -p casegate-api --example bare_axum
BIN="${CARGO_TARGET_DIR:-target}/release/casegate"
BARE="${CARGO_TARGET_DIR:-target}/release/examples/bare_axum"
WORK=$(mktemp -d)
PGDB=casegate_bench_$$
PGURL="postgres://postgres@127.0.0.1:5432/$PGDB"
cleanup() { pkill -f "$WORK" 2>/dev/null || true; pkill -f "$BARE 127.0.0.1:18081" 2>/dev/null || true;
            psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT

wait_up() { for _ in $(seq 1 100); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }

# wrk → "req/s p50 p99" (latency in ms)
run_wrk() {
  local out; out=$(wrk -t"$THREADS" -c"$CONNS" -d"${DUR}s" --latency "${@}")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { python3 -c "import sys,re;v=sys.argv[1];n,u=re.match(r'([0-9.]+)(us|ms|s)',v).groups();print(round(float(n)*{'us':0.001,'ms':1,'s':1000}[u],3))" "$1"; }

bench_backend() { # name database_url
  local name=$1 url=$2 port=18080 base="http://127.0.0.1:18080"
  export CASEGATE_DATA_DIR="$WORK/$name" CASEGATE_DATABASE_URL="$url" CASEGATE_RATE_LIMIT_PER_MINUTE=4000000000 CASEGATE_LISTEN="127.0.0.1:$port"
  local json key uid
  json=$("$BIN" demo --json 2>/dev/null)
  key=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["api_keys"]["admin"])' <<<"$json")
  "$BIN" serve 2>"$WORK/$name.log" >/dev/null &
  local pid=$!
  wait_up "$base"
  uid=$(curl -sf -H "Authorization: Bearer $key" "$base/api/v1/users/analyst@demo.example" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  wrk -t1 -c4 -d2s -H "Authorization: Bearer $key" "$base/api/v1/me" >/dev/null # warm-up
  echo "$name me $(run_wrk -H "Authorization: Bearer $key" "$base/api/v1/me")"
  echo "$name user $(run_wrk -H "Authorization: Bearer $key" "$base/api/v1/users/$uid")"
  kill -TERM $pid; wait $pid || true
  unset CASEGATE_DATA_DIR CASEGATE_DATABASE_URL CASEGATE_RATE_LIMIT_PER_MINUTE CASEGATE_LISTEN
}

"$BARE" 127.0.0.1:18081 & BPID=$!
wait_up_bare() { for _ in $(seq 1 100); do curl -sf http://127.0.0.1:18081/me >/dev/null && return 0; sleep 0.1; done; exit 1; }
wait_up_bare
wrk -t1 -c4 -d2s http://127.0.0.1:18081/me >/dev/null
echo "bare me $(run_wrk http://127.0.0.1:18081/me)"
kill $BPID; wait $BPID 2>/dev/null || true

bench_backend sqlite "sqlite://$WORK/sqlite/casegate.db"
psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $PGDB" >/dev/null
bench_backend postgres "$PGURL"
echo "wrk -t$THREADS -c$CONNS -d${DUR}s --latency; $(nproc) cores; $(date -u +%F)"
