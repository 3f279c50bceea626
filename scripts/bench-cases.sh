#!/usr/bin/env bash
# Cases at a million (docs/benchmarks.md): loads N cases into the sandbox tenant (plus noise
# tenants) on PostgreSQL and SQLite, then measures through the HTTP API (wrk) and, beside it,
# the same reads straight through sqlx (the raw baseline).
# Usage: scripts/bench-cases.sh [cases] [duration_seconds] [connections] [backends]
# Env: SKIP_LOAD=1 reuses the loaded databases (BENCH_WORK dir), SKIP_BUILD=1 the built binaries,
# BIN=<path> measures another server binary (an A/B against an older build).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000000}"
DUR="${2:-15}"
CONNS="${3:-8}"
BACKENDS="${4:-postgres sqlite}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -q -p casegate-server
  cargo bench --no-run -q -p casegate-server --bench cases 2>/dev/null
fi
T="${CARGO_TARGET_DIR:-target}"
BIN=${BIN:-$T/release/casegate}
LOADER=$(ls -t "$T"/release/deps/cases-* | grep -v '\.d$' | head -1)
WORK=${BENCH_WORK:-$(mktemp -d)}
mkdir -p "$WORK"
PGDB=casegate_bench_cases
PGURL="postgres://postgres@127.0.0.1:5432/$PGDB"
cleanup() { pkill -f "casegate serve" 2>/dev/null || true; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 300); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }
to_ms() { python3 -c "import sys,re;v=sys.argv[1];n,u=re.match(r'([0-9.]+)(us|ms|s)',v).groups();print(round(float(n)*{'us':0.001,'ms':1,'s':1000}[u],3))" "$1"; }
run_wrk() {
  local out; out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "$@")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(to_ms "$(awk '$1=="50%" {print $2}' <<<"$out")") $(to_ms "$(awk '$1=="99%" {print $2}' <<<"$out")")"
}
cat > "$WORK/get.lua" <<LUA
math.randomseed(42)
request = function()
  return wrk.format("GET", string.format("/api/v1/cases/CASE-2026-%06d", math.random(1, $N)))
end
LUA

bench_backend() { # name url
  local name=$1 url=$2 base="http://127.0.0.1:18090"
  if [ "${SKIP_LOAD:-}" != 1 ]; then
    if [ "$name" = postgres ]; then
      psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" -c "CREATE DATABASE $PGDB" >/dev/null
    else
      rm -rf "$WORK/sqlite"; mkdir -p "$WORK/sqlite"
    fi
    local secs; secs=$("$LOADER" load "$url" "$N" 4 50000 2>"$WORK/$name-load.log" | tail -1)
    echo "$name load $N cases ${secs}s"
  fi
  export CASEGATE_DATA_DIR="$WORK/$name-data" CASEGATE_DATABASE_URL="$url" CASEGATE_RATE_LIMIT_PER_MINUTE=4000000000 CASEGATE_LISTEN="127.0.0.1:18090" CASEGATE_LOG=warn
  local json key tenant uid
  json=$("$BIN" demo --tenant demo --json 2>/dev/null)
  key=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["api_keys"]["admin"])' <<<"$json")
  tenant=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["tenant_id"])' <<<"$json")
  "$BIN" serve 2>"$WORK/$name.log" >/dev/null &
  local pid=$!
  wait_up "$base"
  uid=$(curl -sf -H "Authorization: Bearer $key" "$base/api/v1/users/analyst@demo.example" | python3 -c 'import json,sys;print(json.load(sys.stdin)["id"])')
  local h="Authorization: Bearer $key"
  wrk -t1 -c4 -d3s -s "$WORK/get.lua" -H "$h" "$base" >/dev/null
  echo "$name http get $(run_wrk -s "$WORK/get.lua" -H "$h" "$base")"
  echo "$name http status $(run_wrk -H "$h" "$base/api/v1/cases?status=investigating&limit=50")"
  echo "$name http assignee $(run_wrk -H "$h" "$base/api/v1/cases?assigned_to=$uid&limit=50")"
  echo "$name http search $(run_wrk -H "$h" "$base/api/v1/cases?q=smurfing&limit=50")"
  kill -TERM $pid; wait $pid || true
  for r in get status assignee search; do
    echo "$name raw $r $(BENCH_TENANT=$tenant BENCH_ASSIGNEE=$uid BENCH_CASES=$N "$LOADER" raw "$url" $r "$DUR" "$CONNS")"
  done
  unset CASEGATE_DATA_DIR CASEGATE_DATABASE_URL CASEGATE_RATE_LIMIT_PER_MINUTE CASEGATE_LISTEN CASEGATE_LOG
}

for b in $BACKENDS; do
  case $b in
    postgres) bench_backend postgres "$PGURL" ;;
    sqlite) bench_backend sqlite "sqlite://$WORK/sqlite/casegate.db" ;;
  esac
done
