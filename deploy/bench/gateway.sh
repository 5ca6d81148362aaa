#!/usr/bin/env bash
# Gateway throughput, measured from outside the process as a producer
# service sees it: `tradewind serve --roles=api` (embedded NATS JetStream
# unless NATS_URL is set, PostgreSQL from DATABASE_URL or localhost:5432)
# driven by wrk over loopback, closed loop, a fresh Idempotency-Key per
# request, every answer a 202 after JetStream's durable ack. Prints
# accepted commands/s, latency percentiles, and the CPU the gateway
# process (gateway + embedded NATS) and PostgreSQL spent per command;
# then the raw JetStream publish rates of the same machine in the same
# run (the RawPublish benchmarks) as the baseline.
#
# Usage: deploy/bench/gateway.sh   (make bench-gateway)
# Env:   BIN (bin/tradewind), DURATION (20s), CONNECTIONS (64), THREADS (2),
#        GW_ADDR (127.0.0.1:18089), DATABASE_URL (a fresh tw_gwbench
#        database on localhost), SKIP_BASELINE=1 to skip the raw publish run.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-bin/tradewind}
DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
GW_ADDR=${GW_ADDR:-127.0.0.1:18089}
PGBASE=${PGBASE:-postgres://postgres@127.0.0.1:5432}
DB_NAME=tw_gwbench_$$
DATABASE_URL=${DATABASE_URL:-$PGBASE/$DB_NAME?sslmode=disable}

command -v wrk >/dev/null || { echo "gateway.sh: wrk is not installed (Debian/Ubuntu: apt-get install wrk)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "gateway.sh: $BIN not found; run make build" >&2; exit 2; }

work=$(mktemp -d)
serve_pid=
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null || true
  if command -v psql >/dev/null && [[ $DATABASE_URL == *"$DB_NAME"* ]]; then
    psql -q "$PGBASE/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

ticks() { # utime+stime of a process, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0
}
pg_ticks() { # CPU ticks of the PostgreSQL backends serving the database
  command -v psql >/dev/null || { echo 0; return; }
  local t=0
  for p in $(psql -Atq "$DATABASE_URL" -c "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()" 2>/dev/null); do
    t=$((t + $(ticks "$p")))
  done
  echo "$t"
}

echo "== starting tradewind serve --roles=api on $GW_ADDR (log: serve.log in a temp dir)"
TRADEWIND_ROLES=api TRADEWIND_DATA_DIR="$work" TRADEWIND_HTTP_ADDR="$GW_ADDR" DATABASE_URL="$DATABASE_URL" \
  TRADEWIND_LOG_LEVEL=warn "$BIN" serve >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 1 300); do
  curl -fsS "http://$GW_ADDR/readyz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "http://$GW_ADDR/readyz" >/dev/null || { echo "gateway not ready" >&2; cat "$work/serve.log" >&2; exit 1; }

key=$("$BIN" keys create --name wrk-bench --scopes orders:write,orders:price --rate 1000000 --burst 1000000 --database-url "$DATABASE_URL" 2>/dev/null)

echo "== warm-up (3s)"
TW_KEY=$key TW_RUN="warm$$" wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s deploy/bench/place-order.lua "http://$GW_ADDR" >/dev/null

echo "== closed loop: $CONNECTIONS connections, $THREADS wrk threads, $DURATION"
hz=$(getconf CLK_TCK)
g0=$(ticks "$serve_pid"); p0=$(pg_ticks)
out=$(TW_KEY=$key TW_RUN="run$$" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s deploy/bench/place-order.lua "http://$GW_ADDR")
g1=$(ticks "$serve_pid"); p1=$(pg_ticks)
echo "$out" | grep -v '^not_accepted='
accepted=$(echo "$out" | sed -n 's/^accepted \([0-9]*\) of.*/\1/p')
bad=$(echo "$out" | sed -n 's/^not_accepted=\([0-9]*\).*/\1/p')
if [ -n "$accepted" ] && [ "$accepted" -gt 0 ]; then
  awk -v g=$((g1 - g0)) -v p=$((p1 - p0)) -v n="$accepted" -v hz="$hz" 'BEGIN {
    printf "CPU per accepted command: gateway process (gateway + embedded NATS) %.0f µs, PostgreSQL %.0f µs\n", g / hz / n * 1e6, p / hz / n * 1e6 }'
fi
if [ "${bad:-1}" != 0 ]; then echo "gateway.sh: $bad requests were not accepted" >&2; exit 1; fi

if [ "${SKIP_BASELINE:-}" != 1 ]; then
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=
  echo "== baseline in the same run: raw JetStream publish (go test -bench RawPublish ./internal/api)"
  go test -count=1 -run=NONE -bench 'RawPublish' -benchtime=3s ./internal/api 2>/dev/null | grep -E '^Benchmark'
fi
