#!/usr/bin/env bash
# The whole test suite, as CI runs it:
#   1. installs what is missing (scripts/setup.sh),
#   2. finds PostgreSQL (127.0.0.1:5432, database `test`) and starts SeaweedFS as the S3 server,
#   3. runs every Rust test, the integration tests once per backend pair
#      (SQLite + local folder, and PostgreSQL + S3),
#   4. runs the official api.video SDKs (Node 2.5.4, Python 1.3.0), then the player page in
#      Chromium (tests/browser), against a real `vidi serve` on SQLite and a local folder, and
#      against a cluster on PostgreSQL and S3 (scripts/cluster.sh: 2 API nodes and 2 workers
#      behind nginx), then the faults on that cluster (tests/cluster/faults.py).
#   5. runs schemathesis with api.video's 2023 OpenAPI file and Vidi's /openapi.json against a
#      real server (tests/contract/run.sh).
# PostgreSQL and S3 are used whenever reachable and their absence is said plainly; with CI=true
# their absence is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

scripts/setup.sh --test

state=$(mktemp -d)
pids=()
# Everything below is also kept in a log, to count the tests of every runner at the end.
exec > >(tee "$state/all.log") 2>&1
sdk_schema=""
cluster_dir=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "$cluster_dir" ] && { scripts/cluster.sh down "$cluster_dir" || true; }
  # The SDK servers' schema (the Rust tests drop their own); the S3 data goes with $state.
  if [ -n "$sdk_schema" ] && command -v psql >/dev/null; then
    psql "$VIDI_TEST_PG_URL" -qc "DROP SCHEMA IF EXISTS \"$sdk_schema\" CASCADE" >/dev/null 2>&1 || true
  fi
  scripts/s3.sh stop "$state/s3" || true
  rm -rf "$state"
}
trap cleanup EXIT

# --- PostgreSQL ------------------------------------------------------------------------------
pg_url=${VIDI_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null \
   && { ! command -v psql >/dev/null || psql "$pg_url" -qtAc 'select 1' >/dev/null 2>&1; }; then
  export VIDI_TEST_PG_URL=$pg_url
  echo "test: PostgreSQL at $pg_url: the suites run on it"
else
  unset VIDI_TEST_PG_URL
  echo "test: PostgreSQL NOT reachable at $pg_url: its suites are SKIPPED" >&2
  [ "${CI:-}" = "true" ] && { echo "test: CI=true requires PostgreSQL" >&2; exit 1; }
fi

# --- S3 (SeaweedFS) ----------------------------------------------------------------------------
if s3env=$(scripts/s3.sh start "$state/s3"); then
  set -a; eval "$s3env"; set +a
  echo "test: S3 (SeaweedFS) at $AWS_ENDPOINT_URL: the suites run on it"
else
  unset VIDI_TEST_S3_URL
  echo "test: S3 server could not start: its suites are SKIPPED" >&2
  [ "${CI:-}" = "true" ] && { echo "test: CI=true requires S3" >&2; exit 1; }
fi

# --- Rust: unit tests and the integration tests on every backend pair ------------------------
# Among them `disk_full`, which mounts a small tmpfs as the data folder of the embedded default
# and fills it: it needs root (CI runs as root; elsewhere it says it is skipped, with CI=true it
# fails).
cargo test --workspace --locked --no-fail-fast

# --- The official SDKs against a real server, on each backend pair --------------------------
cargo build --locked -q -p vidi
sdk_run() { # label, then VAR=value pairs for the server
  local label=$1; shift
  local dir="$state/sdk-$label"; mkdir -p "$dir"
  local port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  # A known RTMP port: the browser suite publishes to it (tests/browser/run.sh reads it).
  local rtmp_port
  rtmp_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  local envs=(VIDI_DATA_DIR="$dir" VIDI_HTTP_ADDR="127.0.0.1:$port" VIDI_RTMP_ADDR="127.0.0.1:$rtmp_port" VIDI_LOG=warn "$@")
  local key
  key=$(env "${envs[@]}" target/debug/vidi api-key create)
  env "${envs[@]}" target/debug/vidi serve >"$dir/out.log" 2>"$dir/err.log" &
  pids+=($!)
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
  echo "== SDK suites on $label"
  VIDI_URL="http://127.0.0.1:$port" VIDI_API_KEY="$key" tests/sdk/run.sh
  # The server's environment too: the browser suite starts a TLS node on the same backends.
  env "${envs[@]}" VIDI_URL="http://127.0.0.1:$port" VIDI_API_KEY="$key" VIDI_EXPECT_PIECES=1 tests/browser/run.sh
}
# 8 s pieces: the browser's 12 s clip is a head and two pieces here, so each pair plays a video
# joined from pieces (issue 9), and its 5 s and sound-only clips whole ones.
sdk_run sqlite+local VIDI_PIECE_SECS=8
if [ -n "${VIDI_TEST_PG_URL:-}" ] && [ -n "${VIDI_TEST_S3_URL:-}" ]; then
  # PostgreSQL and S3: the cluster (2 API nodes, 2 workers, nginx in front) is that backend pair's
  # server. Pieces of 4 s, so the two workers share each video; short claim, job and live
  # staleness, so the faults below recover in seconds (a broadcast whose node died ends within
  # 6 s and a heartbeat or two: six missed heartbeats, still no false alarm on a busy node).
  cluster_dir="$state/cluster"
  CLUSTER_SETTINGS="VIDI_PIECE_SECS=4 VIDI_CLAIM_STALE_SECS=3 VIDI_JOB_STALE_SECS=5 VIDI_LIVE_STALE_SECS=6 VIDI_LIVE_HEARTBEAT_SECS=1" \
    scripts/cluster.sh up "$cluster_dir" >/dev/null
  mapfile -t client_env <"$cluster_dir/client.env"
  mapfile -t nodes_env <"$cluster_dir/nodes.env"
  echo "== SDK suites on the cluster (postgres+s3, $(grep VIDI_URL "$cluster_dir/client.env"))"
  env "${client_env[@]}" tests/sdk/run.sh
  # The browser suite's TLS node joins the cluster (same database, media store and key).
  env "${nodes_env[@]}" VIDI_DATA_DIR="$cluster_dir/tls" "${client_env[@]}" VIDI_EXPECT_PIECES=1 tests/browser/run.sh
  echo "== faults on the cluster"
  tests/cluster/faults.py "$cluster_dir"
  scripts/cluster.sh down "$cluster_dir"
  cluster_dir=""
elif [ -n "${VIDI_TEST_PG_URL:-}" ] || [ -n "${VIDI_TEST_S3_URL:-}" ]; then
  extra=()
  # This server also encodes in 4 s pieces (a separate sound rendition), so the clients and the
  # browser see a video joined from pieces too.
  extra+=(VIDI_PIECE_SECS=4)
  if [ -n "${VIDI_TEST_PG_URL:-}" ]; then
    sdk_schema="sdk_$(date +%s)_$$"
    extra+=(VIDI_DATABASE_URL="$VIDI_TEST_PG_URL" VIDI_DATABASE_SCHEMA="$sdk_schema")
  fi
  [ -n "${VIDI_TEST_S3_URL:-}" ] && extra+=(VIDI_STORAGE_URL="$VIDI_TEST_S3_URL/sdk-$(date +%s)-$$")
  sdk_run "$([ -n "${VIDI_TEST_PG_URL:-}" ] && echo postgres || echo sqlite)+$([ -n "${VIDI_TEST_S3_URL:-}" ] && echo s3 || echo local)" "${extra[@]}"
fi
# --- The wire contract: schemathesis with api.video's 2023 file and /openapi.json ------------
# One server on SQLite and a local folder: what it checks (bodies, statuses, schemas) is the same
# code on every backend pair, which the Rust tests already run on both.
echo "== contract (schemathesis)"
tests/contract/run.sh

# One closing line for all runners: cargo's "test result" lines, node's "ℹ pass/fail", pytest's summary.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;/) p += $i; if ($(i+1) ~ /^failed;/) f += $i } }
  /^ℹ pass /      { p += $3 }
  /^ℹ fail /      { f += $3 }
  /^=+ .* passed/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  END { printf "%d passed, %d failed\n", p, f }
' "$state/all.log"
