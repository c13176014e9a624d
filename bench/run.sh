#!/usr/bin/env bash
# Runs the Vidi benchmark suite and prints a summary table of ratios against references
# measured in the same run (dd for ingest, nginx for GET /videos/{id} and for an HLS
# segment, one plain ffmpeg per rendition for the encoding ladder, SeaweedFS behind a
# presigned URL for the S3 proxy).
#
#   bench/run.sh                  build target/release/vidi, run every benchmark
#   bench/run.sh api              only bench/api.sh (names: ingest, api, encode, delivery, s3, hooks, live,
#                                 live_ladder, collect, query, cluster, workers)
#   VIDI_BIN=path bench/run.sh    use that binary, do not build
#   bench/run.sh --no-build       use target/release/vidi as it is
#
# Each benchmark starts and stops its own servers (data under bench/out/<name>, free
# 127.0.0.1 ports) and is killed if it exceeds its time bound. Results are kept in
# bench/out/results-<timestamp>.env and bench/out/summary-<timestamp>.md.
# BENCH_IDLE_LOAD=1.0 (and/or BENCH_WAIT_FILE=path) waits for a quiet machine before each
# benchmark and each timed step (see wait_idle in bench/lib.sh).
# See docs/performance.md.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
OUT=${BENCH_OUT:-$ROOT/bench/out}
export BENCH_OUT=$OUT

build=1
benches=()
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    ingest | api | encode | delivery | s3 | hooks | live | live_ladder | collect | query | cluster | workers) benches+=("$arg") ;;
    *) echo "run.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done
[ ${#benches[@]} -gt 0 ] || benches=(ingest api encode delivery s3 hooks live live_ladder collect query cluster workers)

if [ -n "${VIDI_BIN:-}" ]; then
  build=0
elif [ $build = 1 ]; then
  echo "run.sh: cargo build --release -p vidi" >&2
  cargo build --release -p vidi || { echo "run.sh: build failed" >&2; exit 1; }
fi
VIDI_BIN=${VIDI_BIN:-$ROOT/target/release/vidi}
[ -x "$VIDI_BIN" ] || { echo "run.sh: no executable at $VIDI_BIN" >&2; exit 1; }
VIDI_BIN=$(cd "$(dirname "$VIDI_BIN")" && pwd)/$(basename "$VIDI_BIN")
export VIDI_BIN

mkdir -p "$OUT"
stamp=$(date +%Y%m%d-%H%M%S)
export BENCH_RESULTS=$OUT/results-$stamp.env
: >"$BENCH_RESULTS"

# Time bound per benchmark (seconds); the benchmark's own EXIT trap stops its servers.
declare -A LIMIT=([ingest]=${BENCH_INGEST_LIMIT:-1800} [api]=${BENCH_API_LIMIT:-900} [encode]=${BENCH_ENCODE_LIMIT:-1800}
  [delivery]=${BENCH_DELIVERY_LIMIT:-900} [s3]=${BENCH_S3_LIMIT:-900} [hooks]=${BENCH_HOOKS_LIMIT:-1800}
  [live]=${BENCH_LIVE_LIMIT:-600} [live_ladder]=${BENCH_LIVE_LADDER_LIMIT:-300} [collect]=${BENCH_COLLECT_LIMIT:-900} [query]=${BENCH_QUERY_LIMIT:-900} [cluster]=${BENCH_CLUSTER_LIMIT:-600}
  [workers]=${BENCH_WORKERS_LIMIT:-1500})
# wait_idle comes from lib.sh (a no-op unless BENCH_IDLE_LOAD or BENCH_WAIT_FILE is set).
BENCH_NAME=run
# shellcheck source=bench/lib.sh
. bench/lib.sh
declare -A STATUS
failed=0
for b in "${benches[@]}"; do
  echo "=== $b ===" >&2
  wait_idle "bench/$b.sh"
  timeout -k 20 "${LIMIT[$b]}" bash "bench/$b.sh"
  rc=$?
  case $rc in
    0) STATUS[$b]=ok ;;
    124) STATUS[$b]="timed out after ${LIMIT[$b]}s"; failed=1 ;;
    *) STATUS[$b]="failed (exit $rc)"; failed=1 ;;
  esac
  echo >&2
done

# ---- summary ----------------------------------------------------------------------------
get() { awk -F= -v k="$1" '$1 == k { v = substr($0, length(k) + 2) } END { print v }' "$BENCH_RESULTS"; }
# verdict VALUE OP LIMIT -> PASS / MISS / ?
verdict() {
  awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
    if (v == "" || v !~ /^-?[0-9.]+$/) { print "?"; exit }
    ok = (op == ">=") ? (v + 0 >= l + 0) : (op == "<=") ? (v + 0 <= l + 0) : (v + 0 < l + 0)
    print ok ? "PASS" : "MISS" }'
}
fmt2() { awk -v v="$1" 'BEGIN { if (v == "") print "?"; else printf "%.2f", v }'; }
errnote() { local e; e=$(get "$1"); if [ -n "$e" ] && [ "$e" != 0 ]; then echo " ($e errors!)"; fi; }

rows=()
row() { rows+=("$(printf '| %s | %s | %s | %s | %s | %s |' "$@")"); }
sz=$(get ingest_bytes)
if [ -n "$sz" ]; then
  gib=$(awk -v b="$sz" 'BEGIN { printf "%.3g GiB", b / 1073741824 }')
  dd=$(get ingest_dd_mbps)
  row "ingest $gib, one request" "$(get ingest_single_mbps) MB/s" "dd $dd MB/s" "$(get ingest_single_ratio)" "≥ 0.8" "$(verdict "$(get ingest_single_ratio)" ">=" 0.8)"
  row "ingest $gib, $(get ingest_chunks) chunks" "$(get ingest_chunked_mbps) MB/s" "dd $dd MB/s" "$(get ingest_chunked_ratio)" "≥ 0.8" "$(verdict "$(get ingest_chunked_ratio)" ">=" 0.8)"
  row "ingest incl. \`sync\` after the response" "one request $(get ingest_single_durable_mbps), chunks $(get ingest_chunked_durable_mbps) MB/s" "dd $dd MB/s" "–" "(info)" ""
  row "ingest peak RSS ($(get ingest_rss_method))" "$(get ingest_rss_peak_mib) MiB" "idle $(get ingest_rss_idle_mib) MiB" "–" "≤ 64 MiB" "$(verdict "$(get ingest_rss_peak_mib)" "<=" 64)"
fi
if [ -n "$(get api_get_vidi_rps)" ]; then
  row "GET /videos/{id}, wrk 2t/64c" "$(get api_get_vidi_rps) req/s$(errnote api_get_vidi_errors)" "nginx $(get api_get_nginx_rps) req/s$(errnote api_get_nginx_errors)" "$(get api_get_ratio)" "≥ 0.5" "$(verdict "$(get api_get_ratio)" ">=" 0.5)"
fi
if [ -n "$(get api_list_p99_ms)" ]; then
  row "GET /videos?pageSize=25, $(get api_videos_total) videos, wrk 2t/8c" "p50 $(get api_list_p50_ms) ms, p99 $(get api_list_p99_ms) ms$(errnote api_list_errors)" "–" "–" "p99 < 20 ms" "$(verdict "$(get api_list_p99_ms)" "<" 20)"
  row "same, last page ($(get api_list_last_page))" "p50 $(get api_list_last_p50_ms) ms, p99 $(get api_list_last_p99_ms) ms$(errnote api_list_last_errors)" "–" "–" "(info)" ""
fi

if [ -n "$(get encode_vidi_full_s)" ]; then
  src="$(get encode_source_seconds) s 1080p30"
  row "encode $src, full ladder ($(get encode_renditions) renditions)" "$(get encode_vidi_full_s) s" "naive $(get encode_naive_s) s" "$(get encode_ratio) (naive/vidi)" "≥ 1.5" "$(verdict "$(get encode_ratio)" ">=" 1.5)"
  row "encode CPU time (user+sys of every process)" "$(get encode_vidi_cpu_s) s" "naive $(get encode_naive_cpu_s) s" "$(get encode_cpu_ratio) (naive/vidi)" "(info: bounds the ratio above)" ""
  v1=$(verdict "$(get encode_first_playable_ratio)" "<=" 0.03)
  v2=$(verdict "$(get encode_first_playable_s)" "<" 3)
  row "time to first playable ($src)" "$(get encode_first_playable_s) s" "naive full ladder $(get encode_naive_s) s" "$(get encode_first_playable_ratio)" "≤ 0.03 and < 3 s" "$(if [ "$v1" = PASS ] && [ "$v2" = PASS ]; then echo PASS; elif [ "$v1" = "?" ] || [ "$v2" = "?" ]; then echo "?"; else echo "MISS"; fi)"
  row "worker log (since ffmpeg started)" "playable $(fmt2 "$(get encode_log_playable_s)") s, ladder $(fmt2 "$(get encode_log_ladder_s)") s" "naive 240p alone $(get encode_naive_240p_s) s" "–" "(info)" ""
fi
if [ -n "$(get seg_vidi_rps)" ]; then
  segmb=$(awk -v b="$(get seg_bytes)" 'BEGIN { printf "%.2f MB", b / 1e6 }')
  row "HLS segment ($segmb .ts), wrk 2t/64c" "$(get seg_vidi_rps) req/s, $(get seg_vidi_mbps) MB/s$(errnote seg_vidi_errors)" "nginx $(get seg_nginx_rps) req/s, $(get seg_nginx_mbps) MB/s$(errnote seg_nginx_errors)" "$(get seg_ratio)" "≥ 0.9" "$(verdict "$(get seg_ratio)" ">=" 0.9)"
fi
for which in early middle small; do
  if [ -n "$(get "delivery_${which}_vidi_rps")" ]; then
    kb=$(awk -v b="$(get "delivery_${which}_bytes")" 'BEGIN { printf "%.0f KB", b / 1e3 }')
    row "HLS segment, $which ($kb .ts), wrk 2t/64c" "$(get "delivery_${which}_vidi_rps") req/s$(errnote "delivery_${which}_vidi_errors")" "nginx $(get "delivery_${which}_nginx_rps") req/s$(errnote "delivery_${which}_nginx_errors")" "$(get "delivery_${which}_ratio")" "≥ 0.9" "$(verdict "$(get "delivery_${which}_ratio")" ">=" 0.9)"
  fi
done
if [ -n "$(get s3_proxy_rps)" ]; then
  segmb=$(awk -v b="$(get s3_seg_bytes)" 'BEGIN { printf "%.2f MB", b / 1e6 }')
  # nc KEY [UNIT]: "; cache off VALUE UNIT" when the run had a cache-off side
  nc() { if [ -n "$(get "$1")" ]; then printf '; cache off %s%s' "$(get "$1")" "${2:+ $2}"; fi; }
  on=$(if [ -n "$(get s3_nocache_rps)" ]; then echo ", cache on"; fi)
  row "S3 segment ($segmb .ts), wrk 2t/64c, $(get s3_rounds) rounds: proxy vs presigned redirect" "proxy$on $(get s3_proxy_rps) req/s ($(get s3_proxy_rps_rounds))$(nc s3_nocache_rps req/s)$(errnote s3_errors)" "redirect $(get s3_redirect_rps) req/s = 1/(1/presigned $(get s3_presigned_rps) + 1/302 stand-in $(get s3_master_rps)); optimistic $(get s3_redirect_rps_optimistic)" "$(get s3_redirect_ratio)$(nc s3_redirect_ratio_nocache) (redirect/proxy)" "(info: choice)" ""
  row "S3 segment, server CPU per segment (vidi + weed)" "proxy$on $(get s3_cpu_ms_proxy) ms$(nc s3_cpu_ms_nocache ms)" "presigned $(get s3_cpu_ms_presigned) ms, + 302 stand-in $(get s3_cpu_ms_master) ms" "$(get s3_cpu_ratio)$(nc s3_cpu_ratio_nocache) (proxy/redirect)" "(info)" ""
  row "S3 segment, one request (median of $(get s3_samples))" "proxy$on $(get s3_latency_proxy_ms) ms$(nc s3_latency_nocache_ms ms)" "302 stand-in + presigned GET $(get s3_latency_redirect_ms) ms" "$(get s3_latency_ratio)$(nc s3_latency_ratio_nocache) (redirect/proxy)" "(info)" ""
  row "S3 segment, cold first byte (median of $(get s3_cold_samples))" "proxy$on $(get s3_cold_ttfb_proxy_ms) ms$(nc s3_cold_ttfb_nocache_ms ms)" "302 stand-in + presigned $(get s3_cold_ttfb_redirect_ms) ms" "$(get s3_cold_ttfb_ratio)$(nc s3_cold_ttfb_ratio_nocache) (redirect/proxy)" "(info)" ""
fi
if [ -n "$(get hooks_latency_p99_ms)" ]; then
  row "webhooks: rendition recorded → receiver holds it, $(get hooks_latency_events) events 20 ms apart" "p50 $(get hooks_latency_p50_ms) ms, p99 $(get hooks_latency_p99_ms) ms, max $(get hooks_latency_max_ms) ms" "–" "–" "p99 < 1000 ms" "$(verdict "$(get hooks_latency_p99_ms)" "<" 1000)"
  row "webhooks: burst of $(get hooks_burst_events) events to one receiver" "$(get hooks_deliveries_per_s) deliveries/s" "–" "–" "(info)" ""
fi
if [ -n "$(get live_seg_vidi_p50_ms)" ]; then
  row "live: frame sent → its 2 s segment listed, $(get live_segments) segments (p50; p90)" "$(get live_seg_vidi_p50_ms) ms; $(get live_seg_vidi_p90_ms) ms" "ffmpeg HLS $(get live_seg_ffmpeg_p50_ms) ms; $(get live_seg_ffmpeg_p90_ms) ms$(if [ -n "$(get live_seg_nginx_p50_ms)" ]; then echo ", nginx-rtmp $(get live_seg_nginx_p50_ms) ms (+$(get live_seg_nginx_minus_ffmpeg_p50_ms) ms)"; fi)" "$(get live_seg_ratio); vidi − ffmpeg p50 $(get live_seg_vidi_minus_ffmpeg_p50_ms) ms" "≤ +100 ms" "$(verdict "$(get live_seg_vidi_minus_ffmpeg_p50_ms)" "<=" 100)"
  row "live: frame sent → its LL-HLS part listed, $(get live_parts) parts" "p50 $(get live_part_vidi_p50_ms) ms, p90 $(get live_part_vidi_p90_ms) ms" "–" "–" "p50 ≤ 500 ms" "$(verdict "$(get live_part_vidi_p50_ms)" "<=" 500)"
fi
if [ -n "$(get live_pub_held)" ]; then
  row "live: 720p 3 Mb/s copy-publishers, ≥ 99 % parts on time" "$(get live_pub_held) of $(get live_pub_streams)" "–" "–" "≥ 50" "$(verdict "$(get live_pub_held)" ">=" 50)"
fi
if [ -n "$(get live_view_listing_p99_ms)" ]; then
  row "live: $(get live_view_viewers) viewers on blocking reloads, part listed → response" "p50 $(get live_view_listing_p50_ms) ms, p99 $(get live_view_listing_p99_ms) ms; bytes p99 $(get live_view_delivery_p99_ms) ms$(errnote live_view_errors)" "–" "–" "p99 < 100 ms" "$(verdict "$(get live_view_delivery_p99_ms)" "<" 100)"
fi
if [ -n "$(get live_ladder_ref_core_pct)" ]; then
  for h in $(tr ',' ' ' <<<"$(get live_ladder_rungs)"); do
    row "live ladder: rung ${h}p's ffmpeg beside one 720p 3 Mb/s broadcast" "$(get "live_ladder_${h}p_core_pct") % of a core, $(get "live_ladder_${h}p_rss_mib") MiB RSS" "720p x264 encode $(get live_ladder_ref_core_pct) % of a core" "$(get "live_ladder_${h}p_ratio")" "(info)" ""
  done
fi
if [ -n "$(get cluster_get_1node_rps)" ]; then
  row "cluster: GET /videos/{id} through nginx, 2 API nodes (PG)" "$(get cluster_get_2nodes_rps) req/s$(errnote cluster_get_errors)" "1 node $(get cluster_get_1node_rps) req/s" "$(get cluster_get_ratio_2_to_1)" "– (2 cores: model)" "–"
fi
if [ -n "$(get workers_tp_2w_vph)" ]; then
  row "cluster: $(get workers_videos) × $(get workers_video_seconds) s 1080p30 queued at once, videos/hour" "2 workers $(get workers_tp_2w_vph)" "1 worker $(get workers_tp_1w_vph)" "$(get workers_tp_ratio_2w_1w) (2w/1w)" "– (2 cores: model)" "–"
  row "cluster: queue latency under that load, due → started (p50; p95)" "2w head $(get workers_ql_2w_head_p50_s); $(get workers_ql_2w_head_p95_s) s, encode $(get workers_ql_2w_encode_p50_s); $(get workers_ql_2w_encode_p95_s) s" "1w head $(get workers_ql_1w_head_p50_s); $(get workers_ql_1w_head_p95_s) s, encode $(get workers_ql_1w_encode_p50_s); $(get workers_ql_1w_encode_p95_s) s" "–" "(info)" ""
  row "cluster: one $(get workers_long_seconds) s video, $(get workers_long_pieces) pieces, over 2 workers ($(get workers_long_2w_pieces))" "$(get workers_long_2w_s) s" "1 worker $(get workers_long_1w_s) s; plain ffmpeg $(get workers_long_naive_s) s" "$(get workers_long_ratio_1w_2w) (1w/2w)" "≥ 1.9 with the cores; model C=8: $(get workers_model_speedup_c8), 10 min $(get workers_model_speedup_10min_c8)" "–"
fi

for db in sqlite postgres; do
  if [ -n "$(get "collect_${db}_events_per_s")" ]; then
    v1=$(verdict "$(get "collect_${db}_events_per_s")" ">=" 20000)
    v2=$(verdict "$(get "collect_${db}_p99_ms")" "<" 50)
    row "collector ($db): batches of $(get collect_batch) events, $(get "collect_${db}_conns") connections" "$(get "collect_${db}_events_per_s") events/s, p99 $(get "collect_${db}_p99_ms") ms$(errnote "collect_${db}_errors")" "–" "–" "≥ 20,000/s and p99 < 50 ms" "$(if [ "$v1" = PASS ] && [ "$v2" = PASS ]; then echo PASS; elif [ "$v1" = "?" ] || [ "$v2" = "?" ]; then echo "?"; else echo MISS; fi)"
    row "GET /videos/{id} ($db) beside the collector at $(get "collect_${db}_beside_events_per_s") events/s" "$(get "collect_${db}_get_with_rps") req/s, p99 $(get "collect_${db}_get_with_p99_ms") ms" "alone $(get "collect_${db}_get_alone_rps") req/s, p99 $(get "collect_${db}_get_alone_p99_ms") ms" "$(get "collect_${db}_get_ratio")" "≥ 0.9" "$(verdict "$(get "collect_${db}_get_ratio")" ">=" 0.9)"
    row "uploads ($db) beside the collector" "$(get "collect_${db}_upload_with_per_s")/s, p50 $(get "collect_${db}_upload_with_p50_ms") ms" "alone $(get "collect_${db}_upload_alone_per_s")/s, p50 $(get "collect_${db}_upload_alone_p50_ms") ms" "$(get "collect_${db}_upload_ratio")" "≥ 0.9" "$(verdict "$(get "collect_${db}_upload_ratio")" ">=" 0.9)"
  fi
done
for db in postgres sqlite; do
  if [ -n "$(get "query_${db}_list_p50_ms")" ]; then
    t=$(if [ "$db" = postgres ]; then echo "< 100 ms"; else echo "(info)"; fi)
    vv() { if [ "$db" = postgres ]; then verdict "$(get "query_${db}_${1}_p90_ms")" "<" 100; fi; }
    row "analytics ($db): one video's month, $(get "query_${db}_events") events: sessions list (p50; p90)" "$(get "query_${db}_list_p50_ms") ms; $(get "query_${db}_list_p90_ms") ms" "GET /videos/{id} $(get "query_${db}_ref_p50_ms") ms" "$(get "query_${db}_list_ratio")" "$t" "$(vv list)"
    row "analytics ($db): a session's events (p50; p90)" "$(get "query_${db}_events_p50_ms") ms; $(get "query_${db}_events_p90_ms") ms" "GET /videos/{id} $(get "query_${db}_ref_p50_ms") ms" "$(get "query_${db}_events_ratio")" "$t" "$(vv events)"
    row "analytics ($db): last page of the sessions; QoE of the month (p50)" "$(get "query_${db}_list_last_p50_ms") ms; $(get "query_${db}_qoe_p50_ms") ms" "–" "–" "(info)" ""
  fi
done

summary=$OUT/summary-$stamp.md
{
  echo "Vidi benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "- binary: $VIDI_BIN$(case "$VIDI_BIN" in */debug/*) echo ' (DEBUG BUILD: numbers not meaningful)' ;; esac)"
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')"
  echo "- machine: $(nproc) CPU ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r)"
  if [ -n "$sz" ]; then echo "- ingest: best of $(get ingest_runs) rounds, MB = 10^6 bytes"; fi
  echo "- disk under bench/out: $(findmnt -no SOURCE,FSTYPE -T "$OUT" 2>/dev/null | tr -s ' ')"
  echo
  echo "| benchmark | vidi | reference (same run) | ratio | target | result |"
  echo "|---|---|---|---|---|---|"
  for r in "${rows[@]}"; do echo "$r"; done
  for b in "${benches[@]}"; do
    if [ "${STATUS[$b]}" != ok ]; then printf '\n**%s: %s**\n' "$b" "${STATUS[$b]}"; fi
  done
} >"$summary"
echo
cat "$summary"
echo
echo "(results: $BENCH_RESULTS, summary: $summary)"
exit $failed
