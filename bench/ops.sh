#!/usr/bin/env bash
# The cost of rate limits and metrics on the hot path (issue 24): GET /videos/{id} (Basic auth)
# under wrk against two servers of the same binary in the same run, one with both on (the
# defaults) and one with VIDI_RATE_LIMIT=off VIDI_METRICS=off, alternated ROUNDS times (on, off,
# on, off, ...) so that a drift of the machine's speed hits both alike. Reports each round's
# requests/s and the median of the per-round ratios on/off.
#
# The "on" server's read limit is raised above what wrk sends (VIDI_RATE_LIMIT_READS=1000000):
# every request is still counted and answered with its headers, none refused, so the figure
# is the cost of the check, not of 429s.
#
# Environment:
#   VIDI_BIN        server binary (default target/release/vidi)
#   BENCH_DURATION  wrk seconds per measurement (default 10)
#   BENCH_ROUNDS    on/off pairs (default 3)
#   BENCH_RESULTS   file to append KEY=VALUE results to (set by run.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init ops
resolve_vidi_bin
command -v wrk >/dev/null 2>&1 || die "missing tool: wrk"
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-3}

start_vidi "$WORK/on" VIDI_RATE_LIMIT_READS=1000000
ON_URL=$VIDI_URL ON_PID=$VIDI_PID
on_id=$(create_video "bench ops on")
ON_AUTH=$AUTH_HEADER
start_vidi "$WORK/off" VIDI_RATE_LIMIT=off VIDI_METRICS=off
OFF_URL=$VIDI_URL OFF_PID=$VIDI_PID
off_id=$(create_video "bench ops off")
OFF_AUTH=$AUTH_HEADER

# Both servers answer as configured: headers on one, none on the other.
curl -sS -D - -o /dev/null -H "$ON_AUTH" "$ON_URL/videos/$on_id" | grep -qi '^x-ratelimit-limit:' ||
  die "the 'on' server sends no X-RateLimit-Limit"
if curl -sS -D - -o /dev/null -H "$OFF_AUTH" "$OFF_URL/videos/$off_id" | grep -qi '^x-ratelimit-limit:'; then
  die "the 'off' server sends X-RateLimit-Limit"
fi

wait_idle "GET /videos/{id} on/off"
VIDI_PID=$ON_PID run_wrk warm-on -t2 -c64 -d2s -H "$ON_AUTH" "$ON_URL/videos/$on_id"
VIDI_PID=$OFF_PID run_wrk warm-off -t2 -c64 -d2s -H "$OFF_AUTH" "$OFF_URL/videos/$off_id"
ratios=()
for r in $(seq 1 "$ROUNDS"); do
  VIDI_PID=$ON_PID run_wrk "on-$r" -t2 -c64 -d"${DURATION}s" -H "$ON_AUTH" "$ON_URL/videos/$on_id"
  check_wrk "on-$r"
  VIDI_PID=$OFF_PID run_wrk "off-$r" -t2 -c64 -d"${DURATION}s" -H "$OFF_AUTH" "$OFF_URL/videos/$off_id"
  check_wrk "off-$r"
  on=$(wrk_rps "on-$r") off=$(wrk_rps "off-$r")
  ratio=$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  log "round $r: on $on req/s, off $off req/s, on/off $ratio"
  result "OPS_ON_RPS_$r" "$on"
  result "OPS_OFF_RPS_$r" "$off"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
loss=$(awk -v m="$median" 'BEGIN { printf "%.1f", (1 - m) * 100 }')
log "median on/off ratio $median: limits and metrics cost ${loss} % of GET /videos/{id} throughput (target < 5 %)"
result OPS_RATIO "$median"
result OPS_LOSS_PCT "$loss"
