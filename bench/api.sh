#!/usr/bin/env bash
# API benchmark.
#
# 1. GET /videos/{id} (Basic auth) under wrk (2 threads, 64 connections, 10 s), against a
#    throwaway nginx (worker_processes 2) serving the very same JSON bytes as a static file
#    at the same path, in the same run.
# 2. Creates videos until there are 10 000, then measures the latency of
#    GET /videos?pageSize=25 under wrk --latency (2 threads, 8 connections, 10 s), on the
#    first page and (for information) on the last page.
#
# Environment:
#   VIDI_BIN              server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_DURATION        wrk duration per measurement, seconds (default 10)
#   BENCH_VIDEOS          videos in the list test (default 10000)
#   BENCH_CREATE_PARALLEL concurrent POST /videos while filling (default 8)
#   BENCH_RESULTS         file to append KEY=VALUE results to (set by run.sh)
#   BENCH_KEEP=1          keep bench/out/api after the run
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init api
resolve_vidi_bin
for tool in wrk nginx; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install wrk nginx-light, or scripts/setup.sh)"
done

DURATION=${BENCH_DURATION:-10}
VIDEOS=${BENCH_VIDEOS:-10000}
PARALLEL=${BENCH_CREATE_PARALLEL:-8}

# ---- vidi and one video -------------------------------------------------------------
start_vidi "$WORK/vidi"
id=$(create_video "bench api")
mkdir -p "$WORK/nginx/root/videos" "$WORK/nginx/tmp"
json=$WORK/nginx/root/videos/$id
code=$(curl -sS --max-time 10 -D "$WORK/get-headers.txt" -o "$json" -w '%{http_code}' \
  -H "$AUTH_HEADER" "$VIDI_URL/videos/$id") || code="curl-error"
[ "$code" = 200 ] || die "GET /videos/$id answered $code: $(head -c 500 "$json")"
ctype=$(awk -F': *' 'tolower($1) == "content-type" { sub(/\r$/, "", $2); print $2 }' "$WORK/get-headers.txt")
[ "$ctype" = application/json ] || warn "GET /videos/{id} Content-Type is '$ctype' (contract §1.1: exactly application/json)"
bytes=$(stat -c %s "$json")
log "GET /videos/$id: $bytes bytes of JSON"

# ---- nginx serving the same bytes at the same path ----------------------------------
start_nginx "$WORK/nginx" application/json
curl -sS --max-time 10 -o "$WORK/nginx-copy.json" -H "$AUTH_HEADER" "$NGINX_URL/videos/$id"
cmp -s "$json" "$WORK/nginx-copy.json" || die "nginx does not serve the same bytes"

# ---- 1. GET /videos/{id}: vidi vs nginx ---------------------------------------------
wait_idle "GET /videos/{id}"
log "GET /videos/{id}: warm-up, then wrk -t2 -c64 -d${DURATION}s against vidi and nginx"
run_wrk warm-vidi -t2 -c64 -d2s -H "$AUTH_HEADER" "$VIDI_URL/videos/$id"
run_wrk get-vidi -t2 -c64 -d"${DURATION}s" -H "$AUTH_HEADER" "$VIDI_URL/videos/$id"
check_wrk get-vidi
run_wrk warm-nginx -t2 -c64 -d2s -H "$AUTH_HEADER" "$NGINX_URL/videos/$id"
run_wrk get-nginx -t2 -c64 -d"${DURATION}s" -H "$AUTH_HEADER" "$NGINX_URL/videos/$id"
check_wrk get-nginx
stop_pid "$NGINX_PID"
vidi_rps=$(wrk_rps get-vidi)
nginx_rps=$(wrk_rps get-nginx)
log "  vidi $vidi_rps req/s, nginx $nginx_rps req/s"

# ---- 2. fill up to $VIDEOS videos ---------------------------------------------------
existing=$(curl -sS --max-time 10 -H "$AUTH_HEADER" "$VIDI_URL/videos?pageSize=1" | json_num itemsTotal)
need=$((VIDEOS - ${existing:-0}))
log "creating $need videos ($PARALLEL in parallel)"
cfg=$WORK/create.curlrc
awk -v n="$need" -v url="$VIDI_URL/videos" -v auth="$AUTH_HEADER" 'BEGIN {
  for (i = 1; i <= n; i++) {
    if (i > 1) print "next"
    print "url = \"" url "\""
    print "max-time = 30"
    print "header = \"" auth "\""
    print "header = \"Content-Type: application/json\""
    printf "data = \"{\\\"title\\\":\\\"bench video %d\\\",\\\"tags\\\":[\\\"bench\\\"]}\"\n", i
    print "output = \"/dev/null\""
    print "write-out = \"%{http_code}\\n\""
  } }' >"$cfg"
t0=$(now)
if [ "$need" -gt 0 ]; then
  timeout -k 5 900 curl --no-progress-meter --parallel --parallel-max "$PARALLEL" -K "$cfg" \
    >"$WORK/create-codes.txt" 2>"$WORK/create-errors.log" ||
    warn "curl exited with $? while creating videos: $(head -n 3 "$WORK/create-errors.log")"
fi
t1=$(now)
ok=$(grep -cE '^20[12]$' "$WORK/create-codes.txt" 2>/dev/null || true)
if [ "${ok:-0}" -ne "$need" ]; then
  warn "only $ok of $need POST /videos succeeded; status codes: $(sort "$WORK/create-codes.txt" | uniq -c | tr '\n' ' ')"
fi
create_rate=$(awk -v n="$need" -v s="$(elapsed "$t0" "$t1")" 'BEGIN { printf "%.0f", (s > 0) ? n / s : 0 }')
first=$(curl -sS --max-time 10 -H "$AUTH_HEADER" "$VIDI_URL/videos?pageSize=25")
total=$(json_num itemsTotal <<<"$first")
items=$(json_num currentPageItems <<<"$first")
log "  $create_rate videos/s; itemsTotal=$total, currentPageItems=$items"
[ "$total" = "$VIDEOS" ] || warn "itemsTotal is '$total', expected $VIDEOS"
[ "$items" = 25 ] || warn "currentPageItems is '$items', expected 25"
last_page=$(((${total:-$VIDEOS} + 24) / 25))

# ---- GET /videos?pageSize=25 latency ------------------------------------------------
wait_idle "GET /videos?pageSize=25"
log "GET /videos?pageSize=25: wrk --latency -t2 -c8 -d${DURATION}s (first page, then page $last_page)"
run_wrk warm-list -t2 -c8 -d2s -H "$AUTH_HEADER" "$VIDI_URL/videos?pageSize=25"
run_wrk list --latency -t2 -c8 -d"${DURATION}s" -H "$AUTH_HEADER" "$VIDI_URL/videos?pageSize=25"
check_wrk list
run_wrk list-last --latency -t2 -c8 -d"${DURATION}s" -H "$AUTH_HEADER" "$VIDI_URL/videos?pageSize=25&currentPage=$last_page"
check_wrk list-last

echo
echo "api: wrk ${DURATION}s per measurement ($VIDI_BIN)"
result api_get_json_bytes "$bytes"
result api_get_vidi_rps "$vidi_rps"
result api_get_nginx_rps "$nginx_rps"
result api_get_ratio "$(ratio "$vidi_rps" "$nginx_rps")"
result api_get_vidi_errors "$(wrk_errors get-vidi)"
result api_get_nginx_errors "$(wrk_errors get-nginx)"
result api_videos_total "${total:-?}"
result api_create_per_s "$create_rate"
result api_list_rps "$(wrk_rps list)"
result api_list_p50_ms "$(wrk_pct list 50)"
result api_list_p99_ms "$(wrk_pct list 99)"
result api_list_errors "$(wrk_errors list)"
result api_list_last_page "$last_page"
result api_list_last_p50_ms "$(wrk_pct list-last 50)"
result api_list_last_p99_ms "$(wrk_pct list-last 99)"
result api_list_last_errors "$(wrk_errors list-last)"
