#!/usr/bin/env bash
# Webhook delivery benchmark: the real server on the embedded default (SQLite + local folder),
# in process, delivering to a receiver on 127.0.0.1 that answers 200 at once. Measures the time
# from a rendition's completion being recorded to the receiver holding the event (p50/p99/max,
# events 20 ms apart) and deliveries per second for a burst (videos of 4 renditions).
# The measuring code is crates/vidi/tests/it/webhook_bench.rs (an ignored test, release build).
#
# Environment:
#   BENCH_HOOKS_LATENCY_EVENTS  events in the latency run (default 400)
#   BENCH_HOOKS_BURST_VIDEOS    videos in the burst, 4 events each (default 500)
#   BENCH_HOOKS_PROFILE         cargo profile (default release; `dev` for a quick upper bound)
#   BENCH_RESULTS               file to append KEY=VALUE results to (set by run.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
profile=${BENCH_HOOKS_PROFILE:-release}
out=$(cargo test --profile "$profile" --locked -q -p vidi --test it webhook_bench -- --ignored --nocapture 2>&1) || {
  echo "$out" >&2
  exit 1
}
results=$(echo "$out" | grep -E '^hooks_[a-z0-9_]+=' || true)
[ -n "$results" ] || { echo "$out" >&2; echo "hooks.sh: no results" >&2; exit 1; }
results="$results
hooks_profile=$profile"
echo "$results"
if [ -n "${BENCH_RESULTS:-}" ]; then results="$results
hooks_profile=$profile"
echo "$results" >>"$BENCH_RESULTS"; fi
