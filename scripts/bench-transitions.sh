#!/usr/bin/env bash
# Applied transitions per second (docs/benchmarks.md, "Transitions"): through the HTTP API at
# 1, 8 and 32 concurrent clients, for 1 tenant and for 100 tenants, on PostgreSQL and SQLite;
# beside it the minimal equivalent transaction (lock and read the case, update it guarded by its
# version, insert the history row, lock the audit head, insert the chained audit row, advance the
# head) run by pgbench on PostgreSQL and by a single-writer loop on SQLite.
# On PostgreSQL the table is followed by the target's check: at 32 clients, for 1 and for 100
# tenants, PAIRS rounds of the API and pgbench back to back (the order flipped every round), each
# printed with its ratio, so a machine whose speed drifts between rows minutes apart compares
# like with like. The server stays up, idle, while pgbench runs (its worker polls the outbox).
# Usage: scripts/bench-transitions.sh [duration_seconds] [backends]
# Env: SKIP_BUILD=1 reuses the built binaries; BIN and DRIVER name other ones (an older build);
# PAIRS (default 3) rounds of the target's check, 0 for none.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR="${1:-10}"
PAIRS="${PAIRS:-3}"
BACKENDS="${2:-postgres sqlite}"
if [ "${SKIP_BUILD:-}" != 1 ]; then
  cargo build --release -q -p casegate-server
  cargo bench --no-run -q -p casegate-server --bench transitions 2>/dev/null
fi
T="${CARGO_TARGET_DIR:-target}"
BIN="${BIN:-$T/release/casegate}"
DRIVER="${DRIVER:-$(ls -t "$T"/release/deps/transitions-* | grep -v '\.d$' | head -1)}"
WORK=$(mktemp -d)
PGDB=casegate_bench_transitions
PGRAW=casegate_bench_transitions_raw
PG="postgres://postgres@127.0.0.1:5432"
cleanup() { pkill -f "casegate serve" 2>/dev/null || true; }
trap cleanup EXIT
wait_up() { for _ in $(seq 1 300); do curl -sf "$1/healthz" >/dev/null && return 0; sleep 0.1; done; echo "server did not start" >&2; exit 1; }

cat > "$WORK/move.sql" <<'SQL'
\set t random(0, :tenants - 1)
BEGIN;
SELECT status AS st, version AS v FROM bench_cases WHERE tenant_no = :t AND case_no = :client_id FOR UPDATE \gset
UPDATE bench_cases SET status = CASE WHEN ':st' = 'open' THEN 'working' ELSE 'open' END, version = version + 1, updated_at = now()::text WHERE tenant_no = :t AND case_no = :client_id AND version = :v;
INSERT INTO bench_history VALUES (:t, :client_id, :v + 1, ':st', CASE WHEN ':st' = 'open' THEN 'working' ELSE 'open' END, 'bench', now()::text);
SELECT seq AS aseq, hash AS ahash FROM bench_audit_head WHERE tenant_no = :t FOR UPDATE \gset
INSERT INTO bench_audit VALUES (:t, :aseq + 1, 'case.status_changed', :client_id, '{"status":{"before":":st"}}', ':ahash', encode(sha256(convert_to(':ahash' || :t || (:aseq + 1) || :client_id || now()::text, 'UTF8')), 'hex'), now()::text) RETURNING hash AS nhash \gset
UPDATE bench_audit_head SET seq = :aseq + 1, hash = ':nhash' WHERE tenant_no = :t;
END;
SQL

pgbench_run() { # tenants clients
  "$DRIVER" raw "$PG/$PGRAW" "$1" "$2" 0 >/dev/null
  local out; out=$(pgbench -n -h 127.0.0.1 -U postgres -c "$2" -j 2 -T "$DUR" -D tenants="$1" -f "$WORK/move.sql" --log --log-prefix="$WORK/pgb" "$PGRAW" 2>&1)
  local tps; tps=$(awk '/^tps/ {print $3}' <<<"$out")
  # Per-transaction latencies (µs, third column) from the log for p50/p99.
  local p; p=$(cat "$WORK"/pgb.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.3f %.3f", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}')
  rm -f "$WORK"/pgb.*
  echo "${tps%.*} $p 0"
}

fresh_raw() { psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGRAW WITH (FORCE)" -c "CREATE DATABASE $PGRAW" >/dev/null; }

pairs() { # base: the target's check, API and pgbench back to back at 32 clients
  local tenants r api pgb
  for tenants in 1 100; do
    fresh_raw
    for r in $(seq 1 "$PAIRS"); do
      if [ $((r % 2)) = 1 ]; then
        api=$("$DRIVER" http "$1" "$WORK/keys.json" "$tenants" 32 "$DUR"); pgb=$(pgbench_run "$tenants" 32)
      else
        pgb=$(pgbench_run "$tenants" 32); api=$("$DRIVER" http "$1" "$WORK/keys.json" "$tenants" 32 "$DUR")
      fi
      echo "postgres pair tenants=$tenants clients=32 round=$r api=[$api] pgbench=[$pgb] ratio=$((100 * ${api%% *} / ${pgb%% *}))%"
    done
  done
}

bench_backend() { # name url
  local name=$1 url=$2 base="http://127.0.0.1:18091"
  if [ "$name" = postgres ]; then
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" -c "CREATE DATABASE $PGDB" >/dev/null
  fi
  "$DRIVER" tenants "$url" 100 > "$WORK/keys.json" 2>"$WORK/$name-tenants.log"
  export CASEGATE_DATA_DIR="$WORK/$name-data" CASEGATE_DATABASE_URL="$url" CASEGATE_RATE_LIMIT_PER_MINUTE=4000000000 CASEGATE_LISTEN="127.0.0.1:18091" CASEGATE_LOG=warn
  "$BIN" serve 2>"$WORK/$name.log" >/dev/null &
  local pid=$!
  wait_up "$base"
  for tenants in 1 100; do
    for clients in 1 8 32; do
      echo "$name http tenants=$tenants clients=$clients $("$DRIVER" http "$base" "$WORK/keys.json" "$tenants" "$clients" "$DUR")"
    done
  done
  if [ "$name" = sqlite ]; then kill -TERM $pid; wait $pid || true; fi
  for tenants in 1 100; do
    if [ "$name" = postgres ]; then
      fresh_raw
      for clients in 1 8 32; do
        echo "$name pgbench tenants=$tenants clients=$clients $(pgbench_run $tenants $clients)"
      done
    else
      rm -f "$WORK"/raw.db*
      echo "$name raw-loop tenants=$tenants clients=1 $("$DRIVER" raw "sqlite://$WORK/raw.db" "$tenants" 1 "$DUR")"
    fi
  done
  if [ "$name" = postgres ]; then
    [ "$PAIRS" -gt 0 ] && pairs "$base"
    kill -TERM $pid; wait $pid || true
  fi
  unset CASEGATE_DATA_DIR CASEGATE_DATABASE_URL CASEGATE_RATE_LIMIT_PER_MINUTE CASEGATE_LISTEN CASEGATE_LOG
}

for b in $BACKENDS; do
  case $b in
    postgres) bench_backend postgres "$PG/$PGDB" ;;
    sqlite) mkdir -p "$WORK/sqlite"; bench_backend sqlite "sqlite://$WORK/sqlite/casegate.db" ;;
  esac
done
