#!/usr/bin/env bash
# Cluster benchmark: GET /videos/{id} (Basic auth) under wrk (2 threads, 64 connections) through
# nginx with both API nodes of scripts/cluster.sh (PostgreSQL + S3), against the same nginx with
# one API node, in the same run. Also, for the per-request costs: api1 alone without nginx.
#
# On a 2-core machine the two nodes, nginx, wrk and PostgreSQL share the same cores, so a second
# node cannot add throughput here; the figures give the per-request cost of each layer, from which
# docs/performance.md models the many-machine case.
#
# Environment:
#   VIDI_BIN            server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_DURATION      wrk duration per measurement, seconds (default 10)
#   VIDI_TEST_PG_URL    PostgreSQL (default postgres://postgres@127.0.0.1:5432/test)
#   BENCH_RESULTS       file to append KEY=VALUE results to (set by run.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init cluster
resolve_vidi_bin
for tool in wrk nginx psql; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (scripts/setup.sh --test)"
done
DURATION=${BENCH_DURATION:-10}

cdir=$WORK/cluster
single_pid=""
stop_cluster() {
  [ -n "$single_pid" ] && stop_pid "$single_pid"
  VIDI_BIN=$VIDI_BIN "$ROOT/scripts/cluster.sh" down "$cdir" >/dev/null 2>&1 || true
}
# Rate limits are per node and per key: off, or the bench would measure 429s.
log "scripts/cluster.sh up (2 API nodes, 2 workers, nginx; PostgreSQL + SeaweedFS)"
VIDI_BIN=$VIDI_BIN VIDI_LOG=warn CLUSTER_SETTINGS="VIDI_RATE_LIMIT=off" \
  "$ROOT/scripts/cluster.sh" up "$cdir" >/dev/null || { stop_cluster; die "the cluster did not start"; }
trap 'stop_cluster; _bench_cleanup' EXIT
# shellcheck disable=SC1091
. "$cdir/client.env"
AUTH_HEADER="Authorization: Basic $(printf '%s:' "$VIDI_API_KEY" | base64 -w0)"
id=$(curl -sS --max-time 10 -H "$AUTH_HEADER" -H 'Content-Type: application/json' \
  -d '{"title":"bench cluster"}' "$VIDI_URL/videos" | json_str videoId)
[ -n "$id" ] || die "could not create a video"
api1=http://$(sed -n 's/^VIDI_HTTP_ADDR=//p' "$cdir/api1.env")

# The same nginx configuration with api1 alone in the API upstream, on its own port.
single_port=$(free_port)
mkdir -p "$WORK/nginx1"
sed -e "/upstream api {/,/}/{/$(sed -n 's/^VIDI_HTTP_ADDR=127.0.0.1://p' "$cdir/api2.env")/d}" \
  -e "s#listen 127.0.0.1:[0-9]*;#listen 127.0.0.1:$single_port;#" \
  -e "s#$cdir/nginx#$WORK/nginx1#g" -e '/^stream {/,$d' "$cdir/nginx/nginx.conf" >"$WORK/nginx1/nginx.conf"
nginx -e "$WORK/nginx1/error.log" -p "$WORK/nginx1" -c "$WORK/nginx1/nginx.conf" -g 'daemon off;' \
  >>"$WORK/nginx1/error.log" 2>&1 &
single_pid=$!
wait_http "http://127.0.0.1:$single_port/health" "$single_pid" "$WORK/nginx1/error.log"
for u in "$VIDI_URL" "http://127.0.0.1:$single_port" "$api1"; do
  code=$(curl -sS -o /dev/null -w '%{http_code}' -H "$AUTH_HEADER" "$u/videos/$id")
  [ "$code" = 200 ] || die "GET $u/videos/$id answered $code"
done

measure() { # name url
  wait_idle "GET /videos/{id} ($1)"
  run_wrk "warm-$1" -t2 -c64 -d2s -H "$AUTH_HEADER" "$2/videos/$id"
  run_wrk "$1" --latency -t2 -c64 -d"${DURATION}s" -H "$AUTH_HEADER" "$2/videos/$id"
  check_wrk "$1"
  log "  $1: $(wrk_rps "$1") req/s, p50 $(wrk_pct "$1" 50) ms, p99 $(wrk_pct "$1" 99) ms"
}
log "GET /videos/{id}: wrk -t2 -c64 -d${DURATION}s through nginx with 2 nodes, with 1 node, and api1 direct"
measure two "$VIDI_URL"
measure one "http://127.0.0.1:$single_port"
measure direct "$api1"

echo
echo "cluster: GET /videos/{id}, wrk -t2 -c64 ${DURATION}s per measurement ($VIDI_BIN, $(nproc) cores)"
result cluster_get_2nodes_rps "$(wrk_rps two)"
result cluster_get_1node_rps "$(wrk_rps one)"
result cluster_get_direct_rps "$(wrk_rps direct)"
result cluster_get_ratio_2_to_1 "$(ratio "$(wrk_rps two)" "$(wrk_rps one)")"
result cluster_get_ratio_nginx_to_direct "$(ratio "$(wrk_rps one)" "$(wrk_rps direct)")"
result cluster_get_2nodes_p99_ms "$(wrk_pct two 99)"
result cluster_get_1node_p99_ms "$(wrk_pct one 99)"
result cluster_get_errors "$(($(wrk_errors two) + $(wrk_errors one) + $(wrk_errors direct)))"
