#!/usr/bin/env bash
# The analytics collector's cost per event, in instructions: a figure that, unlike events/s on
# a shared machine, does not move with what else runs (issue 22: the collector beside GETs and
# uploads). The server runs under `valgrind --tool=callgrind` with instrumentation off while it
# starts and sessions are minted; it is switched on for a fixed offered load of batches
# (bench/collect.lua, BENCH_IR_RATE requests/s of BENCH_COLLECT_BATCH events for
# BENCH_IR_SECONDS), then off. Reports the server's instructions per acknowledged event, the
# CPU time wrk (the load generator, on the same cores) spent per 1,000 events and, on
# PostgreSQL, the database's (every postgres process's CPU time over the run), and keeps the
# profile's top functions in $OUT/collect-ir/top-DB.txt.
#
# The offered load is low because everything under callgrind runs ~50 times slower: the
# default, 40 requests/s, keeps the server about as busy as 20,000 events/s keeps it outside,
# so batches group as they would there (the group commit's groups grow with the load).
#
#   bench/collect_ir.sh [sqlite|postgres]...    (default: sqlite)
#
# Environment: VIDI_BIN, BENCH_COLLECT_BATCH (30), BENCH_COLLECT_SESSIONS (200),
# BENCH_IR_RATE (40), BENCH_IR_SECONDS (20), BENCH_PG_URL (postgres://postgres@127.0.0.1:5432/test),
# BENCH_KEEP=1 (keep the profiles). The default URL lets sqlx negotiate TLS with the local
# server (`sslmode=prefer`); `BENCH_PG_URL='postgres://…/test?sslmode=disable'` measures without it
# (docs/operations.md, "PostgreSQL's connection").
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init collect-ir
resolve_vidi_bin
for tool in wrk valgrind callgrind_control callgrind_annotate; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
BATCH=${BENCH_COLLECT_BATCH:-30}
SESSIONS=${BENCH_COLLECT_SESSIONS:-200}
RATE=${BENCH_IR_RATE:-40}
SECS=${BENCH_IR_SECONDS:-20}
PG_URL=${BENCH_PG_URL-postgres://postgres@127.0.0.1:5432/test}
DURATION=$SECS
backends=("$@")
[ ${#backends[@]} -gt 0 ] || backends=(sqlite)

# `serve` under callgrind, anything else (`api-key create`) as is.
callgrind_serve "$WORK/callgrind.out.%p"

# CPU seconds (user + system) of every postgres process.
pg_cpu() {
  local t=0 p
  for p in $(pgrep -x postgres 2>/dev/null || true); do
    t=$(awk -v t="$t" '{ print t + $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo "$t")
  done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}

for db in "${backends[@]}"; do
  env_extra=(VIDI_COLLECT_RATE=0 VIDI_WORKERS=0)
  if [ "$db" = postgres ]; then
    pg_new_schema bench_collect_ir
    env_extra+=(VIDI_DATABASE_URL="$PG_URL" VIDI_DATABASE_SCHEMA="$SCHEMA")
  fi
  start_vidi "$WORK/$db" "${env_extra[@]}"
  videos=()
  for i in 1 2 3 4; do videos+=("$(create_video "ir $i")"); done
  : >"$WORK/sessions-$db.txt"
  for i in $(seq "$SESSIONS"); do
    curl -sS --max-time 30 -H 'Content-Type: application/json' \
      -H 'User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36' \
      -d "{\"videoId\":\"${videos[$((i % 4))]}\",\"referrer\":\"https://www.google.com/search?q=bench\"}" \
      "$VIDI_URL/collect/sessions" | json_str sessionId >>"$WORK/sessions-$db.txt"
  done
  [ "$(grep -c '^ps' "$WORK/sessions-$db.txt")" -eq "$SESSIONS" ] || die "$db: not every session was minted"
  # A warm-up outside the profile (first statements prepared, pages cached), then the profile.
  pause=$((2 * 1000 / RATE))
  DURATION=5 run_wrk "warm-$db" -t1 -c2 -d5s --timeout 30s -s "$BENCH_DIR/collect.lua" "$VIDI_URL" \
    -- "$WORK/sessions-$db.txt" "$BATCH" 0 1 "$pause"
  callgrind_control -z "$VIDI_PID" >/dev/null
  callgrind_control -i on "$VIDI_PID" >/dev/null
  pg0=$(pg_cpu)
  /usr/bin/time -f '%U %S' -o "$WORK/wrk-time-$db.txt" \
    wrk --latency -t1 -c2 -d"${SECS}s" --timeout 30s -s "$BENCH_DIR/collect.lua" "$VIDI_URL" \
    -- "$WORK/sessions-$db.txt" "$BATCH" 100000 1 "$pause" >"$WORK/wrk-ir-$db.txt" 2>&1 || die "wrk failed"
  pg1=$(pg_cpu)
  callgrind_control -i off "$VIDI_PID" >/dev/null
  callgrind_control -d "$VIDI_PID" >/dev/null
  sleep 1
  stop_pid "$VIDI_PID"
  # The dump taken on request (`.1`), not the one written at exit (instrumentation was off).
  out=$WORK/callgrind.out.$VIDI_PID.1
  [ -s "$out" ] || die "$db: no profile dumped ($out)"
  errors=$(wrk_errors "ir-$db")
  events=$((($(awk '/requests in/ { print $1; exit }' "$WORK/wrk-ir-$db.txt") - errors) * BATCH))
  [ "$events" -gt 0 ] || die "$db: no event acknowledged"
  callgrind_annotate --inclusive=no "$out" 2>/dev/null | head -n 60 >"$OUT/collect-ir-top-$db.txt" || true
  ir=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ && v == "" { gsub(/,/, "", $1); v = $1 } END { print v }')
  [ -n "$ir" ] || die "$db: no instruction total in $out"
  echo
  echo "collect_ir ($db): $events events in $SECS s at $RATE requests/s offered, batches of $BATCH ($REAL_BIN)"
  result "collect_ir_${db}_events" "$events"
  result "collect_ir_${db}_errors" "$errors"
  result "collect_ir_${db}_instructions" "$ir"
  result "collect_ir_${db}_instructions_per_event" "$(awk -v a="$ir" -v b="$events" 'BEGIN { printf "%.0f", a / b }')"
  result "collect_ir_${db}_wrk_cpu_ms_per_1000_events" \
    "$(awk -v e="$events" '{ printf "%.2f", ($1 + $2) * 1000 * 1000 / e }' "$WORK/wrk-time-$db.txt")"
  if [ "$db" = postgres ]; then
    result "collect_ir_${db}_postgres_cpu_ms_per_1000_events" \
      "$(awk -v a="$pg0" -v b="$pg1" -v e="$events" 'BEGIN { printf "%.2f", (b - a) * 1000 * 1000 / e }')"
  fi
  log "top functions (self): $OUT/collect-ir-top-$db.txt"
  pg_drop_schemas
done
