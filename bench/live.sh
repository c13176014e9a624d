#!/usr/bin/env bash
# Live benchmarks (issue 21): latency by default; capacity behind flags (they take longer).
#
#   bench/live.sh                 latency: one paced 720p30 encode (keyframe every 2 s) tee'd at
#                                 once to Vidi over RTMP, to nginx-rtmp (Debian's
#                                 libnginx-mod-rtmp, if it loads) and to ffmpeg's own HLS muxer;
#                                 when each 2 s segment is listed by each (Vidi read with
#                                 blocking reloads, the others by polling their playlist file
#                                 every 2 ms), and when each Vidi low-latency part is listed,
#                                 against the wall time each frame left the publisher. ~1.5 min.
#   bench/live.sh --publishers    + N copy-publishers (one pre-encoded 720p 3 Mb/s FLV, paced and
#                                 looped) into N live streams, a blocking-reload watcher each:
#                                 how many keep ≥ 99 % of their parts on time; and Vidi's CPU
#                                 per publisher (from /proc).
#   bench/live.sh --viewers       + V low-latency viewers on one stream, each holding a blocking
#                                 reload for the next part: p50/p99 from a part's first listing to
#                                 each viewer's response (and to its bytes).
#   bench/live.sh --capacity      both of the above; --no-latency skips the latency run.
#
# Environment:
#   BENCH_LIVE_SECONDS     latency run length (default 50: ~24 segments of 2 s)
#   BENCH_LIVE_SIZE        latency source size (default 1280x720), BENCH_LIVE_BITRATE (3M)
#   BENCH_LIVE_PUBLISHERS  publishers (default 50), BENCH_LIVE_PUB_SECONDS (default 60)
#   BENCH_LIVE_SLACK       seconds a part may be later than its publisher's best (default 0.1)
#   BENCH_LIVE_VIEWERS     viewers (default 1000), BENCH_LIVE_VIEW_SECONDS (default 40)
#   BENCH_LIVE_FETCH=1     viewers also GET each new part (default 1)
#   BENCH_LIVE_NGINX=0     leave nginx-rtmp out
#   BENCH_LIVE_CLIENT      the capacity runs' publishers, watchers and viewers: rust (default:
#                          crates/vidi-live/examples/live_load, all publishers in one process;
#                          built if BENCH_LIVE_LOAD_BIN is unset and
#                          target/release/examples/live_load is missing) or python (live.py and
#                          one ffmpeg -re -stream_loop -1 -c copy per publisher: the figures
#                          before 2026-12-07 19:00)
# See docs/performance.md, "Live".
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init live

latency=1 publishers=0 viewers=0
for arg in "$@"; do
  case "$arg" in
    --publishers) publishers=1 ;;
    --viewers) viewers=1 ;;
    --capacity) publishers=1 viewers=1 ;;
    --no-latency) latency=0 ;;
    -h | --help) sed -n '2,35p' "$0"; exit 0 ;;
    *) die "unknown argument '$arg' (try --help)" ;;
  esac
done
for tool in ffmpeg python3; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
done
resolve_vidi_bin
PY=("python3" "$BENCH_DIR/live.py")

# run_py ARGS...: the Python side; its `RESULT key value` lines become result rows.
run_py() {
  local out=$WORK/py-$1.txt rc=0
  "${PY[@]}" "$@" >"$out" 2> >(tee -a "$WORK/py-$1.log" >&2) || rc=$?
  while read -r tag k v; do
    [ "$tag" = RESULT ] && result "$k" "$v"
  done <"$out"
  [ "$rc" -eq 0 ] || die "live.py $1 failed (exit $rc, log $WORK/py-$1.log)"
}

# The capacity runs' load generator: the compiled one (crates/vidi-live/examples/live_load.rs,
# same measurements and result keys as live.py's, at a fraction of its CPU on the cores the
# server uses) unless BENCH_LIVE_CLIENT=python. BENCH_LIVE_LOAD_BIN names a built one; else it is
# built next to the release binary (cargo build --release --example live_load).
LOAD=()
capacity_client() {
  [ ${#LOAD[@]} -eq 0 ] || return 0
  if [ "${BENCH_LIVE_CLIENT:-rust}" = python ]; then
    LOAD=("${PY[@]}")
    result live_client python
    return 0
  fi
  local bin=${BENCH_LIVE_LOAD_BIN:-$ROOT/target/release/examples/live_load}
  if [ ! -x "$bin" ]; then
    log "building the load generator (cargo build --release -p vidi-live --example live_load, not timed)"
    (cd "$ROOT" && nice -n 10 cargo build -q --release -p vidi-live --example live_load) >&2 \
      || die "could not build live_load (BENCH_LIVE_CLIENT=python uses live.py)"
  fi
  LOAD=("$bin")
  result live_client rust
}
# run_load MODE ARGS...: like run_py, with the capacity runs' load generator.
run_load() {
  local out=$WORK/load-$1.txt rc=0
  capacity_client
  "${LOAD[@]}" "$@" >"$out" 2> >(tee -a "$WORK/load-$1.log" >&2) || rc=$?
  while read -r tag k v; do
    [ "$tag" = RESULT ] && result "$k" "$v"
  done <"$out"
  [ "$rc" -eq 0 ] || die "the load generator's $1 failed (exit $rc, log $WORK/load-$1.log)"
}

# create_live NAME -> "liveStreamId streamKey"
create_live() {
  local body
  body=$(curl -sS --max-time 30 -H "$AUTH_HEADER" -H 'Content-Type: application/json' \
    -d "{\"name\":\"$1\"}" "$VIDI_URL/live-streams") || die "POST /live-streams failed"
  local id key
  id=$(json_str liveStreamId <<<"$body")
  key=$(json_str streamKey <<<"$body")
  [ -n "$id" ] && [ -n "$key" ] || die "POST /live-streams answered: $body"
  echo "$id $key"
}

# Built (if need be) before any server starts.
if [ $publishers = 1 ] || [ $viewers = 1 ]; then capacity_client; fi

RTMP_PORT=$(free_port)
export VIDI_RTMP_ADDR=127.0.0.1:$RTMP_PORT
start_vidi "$WORK/vidi"
VIDI_RTMP=rtmp://127.0.0.1:$RTMP_PORT/s
# The RTMP listener must answer before a publisher is started.
for _ in $(seq 100); do
  ss -Htln "sport = :$RTMP_PORT" | grep -q . && break
  sleep 0.1
done
ss -Htln "sport = :$RTMP_PORT" | grep -q . || die "vidi does not listen for RTMP on $VIDI_RTMP_ADDR (log: $WORK/vidi/vidi.log)"

# nginx-rtmp: Debian's module for the packaged nginx. Its HLS output is the third column.
NGINX_RTMP_MODULE=/usr/lib/nginx/modules/ngx_rtmp_module.so
start_nginx_rtmp() {
  local n=$WORK/nginx-rtmp user_line=""
  [ "${BENCH_LIVE_NGINX:-1}" = 1 ] || return 1
  command -v nginx >/dev/null 2>&1 || { warn "no nginx: the nginx-rtmp column is left out"; return 1; }
  if [ ! -e "$NGINX_RTMP_MODULE" ] && [ "$(id -u)" = 0 ]; then
    log "installing libnginx-mod-rtmp (apt)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libnginx-mod-rtmp >"$WORK/apt.log" 2>&1 || true
  fi
  [ -e "$NGINX_RTMP_MODULE" ] || { warn "no $NGINX_RTMP_MODULE (apt-get install libnginx-mod-rtmp): the nginx-rtmp column is left out"; return 1; }
  mkdir -p "$n/hls" "$n/tmp"
  NGINX_RTMP_PORT=$(free_port)
  if [ "$(id -u)" = 0 ]; then user_line="user $(id -un) $(id -gn);"; fi
  cat >"$n/nginx.conf" <<NGINX
# Throwaway nginx-rtmp for bench/live.sh: HLS of application "live" under $n/hls.
load_module $NGINX_RTMP_MODULE;
$user_line
worker_processes 1;
daemon off;
pid $n/nginx.pid;
error_log $n/error.log warn;
events { worker_connections 1024; }
rtmp {
  server {
    listen 127.0.0.1:$NGINX_RTMP_PORT;
    application live {
      live on;
      hls on;
      hls_path $n/hls;
      hls_fragment 2s;
      hls_playlist_length 120s;
    }
  }
}
NGINX
  if ! nginx -p "$n/" -e "$n/error.log" -c "$n/nginx.conf" -t >"$n/nginx-t.log" 2>&1; then
    warn "nginx-rtmp does not load ($(tail -n 1 "$n/nginx-t.log")): its column is left out"
    return 1
  fi
  nginx -p "$n/" -e "$n/error.log" -c "$n/nginx.conf" >>"$n/nginx.log" 2>&1 &
  register_pid $!
  for _ in $(seq 50); do
    ss -Htln "sport = :$NGINX_RTMP_PORT" | grep -q . && break
    sleep 0.1
  done
  NGINX_RTMP=rtmp://127.0.0.1:$NGINX_RTMP_PORT/live/bench
  NGINX_PLAYLIST=$n/hls/bench.m3u8
  log "nginx-rtmp on 127.0.0.1:$NGINX_RTMP_PORT"
}

if [ $latency = 1 ]; then
  read -r id key <<<"$(create_live latency)"
  nginx_args=()
  if start_nginx_rtmp; then nginx_args=(--nginx-rtmp "$NGINX_RTMP" --nginx-playlist "$NGINX_PLAYLIST"); fi
  wait_idle "the latency run"
  log "latency: ${BENCH_LIVE_SECONDS:-50} s of a paced ${BENCH_LIVE_SIZE:-1280x720} encode to vidi, ffmpeg HLS${nginx_args:+, nginx-rtmp}"
  run_py latency --vidi-rtmp "$VIDI_RTMP/$key" --vidi-playlist "$VIDI_URL/live/$id/index.m3u8" \
    "${nginx_args[@]}" --ffmpeg-dir "$WORK/ffmpeg-hls" --ffmpeg-log "$WORK/publisher.log" \
    --json "$WORK/latency.json" --seconds "${BENCH_LIVE_SECONDS:-50}" \
    --size "${BENCH_LIVE_SIZE:-1280x720}" --bitrate "${BENCH_LIVE_BITRATE:-3M}"
fi

# The capacity runs' source: 20 s of 720p30 at 3 Mb/s, a keyframe every 2 s, AAC; made once.
capacity_source() {
  local src=$OUT/cache/live-720p30-3M-20s.flv
  mkdir -p "$OUT/cache"
  if [ ! -s "$src" ]; then
    log "making the 20 s 720p 3 Mb/s FLV (not timed)"
    ffmpeg -hide_banner -nostdin -loglevel error -y \
      -f lavfi -i "testsrc2=size=1280x720:rate=30" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
      -t 20 -map 0:v -map 1:a -c:v libx264 -preset veryfast -tune zerolatency -b:v 3M -maxrate 3M \
      -bufsize 3M -g 60 -keyint_min 60 -sc_threshold 0 -pix_fmt yuv420p -c:a aac -b:a 128k -ac 2 \
      -f flv "$src.part" >&2 || die "could not make the capacity source"
    mv "$src.part" "$src"
  fi
  echo "$src"
}

# CPU time (utime + stime, clock ticks) from /proc: the evidence that scales on a shared machine
# (a run's wall-clock figures move with whatever else runs; Vidi's own CPU seconds per publisher
# or per viewer do not, much). child_ticks: the children Vidi waited for (its ffmpeg runs: the
# live thumbnails).
HZ=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
child_ticks() { awk '{ print $16 + $17 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
sum_ticks() {
  local t=0 p
  for p in "$@"; do t=$((t + $(ticks "$p"))); done
  echo "$t"
}
secs() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }
# cpu_snapshot: "wall vidi vidi-children publishers" now.
cpu_snapshot() { echo "$(now) $(ticks "$VIDI_PID") $(child_ticks "$VIDI_PID") $(sum_ticks "${PUB_PIDS[@]}")"; }
# cpu_results PREFIX UNITS "SNAPSHOT BEFORE": Vidi's CPU over the window since BEFORE, in
# seconds (itself, and its ffmpeg children), both together in % of one core and in % of one core
# per unit (publisher or viewer), and the copy-publishers' own CPU seconds.
cpu_results() {
  local prefix=$1 units=$2 w0 v0 c0 p0 w1 v1 c1 p1 wall
  read -r w0 v0 c0 p0 <<<"$3"
  read -r w1 v1 c1 p1 <<<"$(cpu_snapshot)"
  wall=$(elapsed "$w0" "$w1")
  result "${prefix}_window_s" "$(awk -v w="$wall" 'BEGIN { printf "%.1f", w }')"
  result "${prefix}_vidi_cpu_s" "$(secs $((v1 - v0)))"
  result "${prefix}_vidi_children_cpu_s" "$(secs $((c1 - c0)))"
  # Vidi and its ffmpeg runs together: what the node spends.
  local all=$((v1 - v0 + c1 - c0))
  result "${prefix}_vidi_core_pct" "$(awk -v t=$all -v hz="$HZ" -v w="$wall" 'BEGIN { printf "%.1f", 100 * t / hz / w }')"
  result "${prefix}_vidi_core_pct_per_unit" "$(awk -v t=$all -v hz="$HZ" -v w="$wall" -v n="$units" 'BEGIN { printf "%.3f", 100 * t / hz / w / n }')"
  result "${prefix}_publishers_cpu_s" "$(secs $((p1 - p0)))"
  result "${prefix}_loadavg" "$(cut -d' ' -f1 /proc/loadavg)"
}

# publish_copies SRC KEY...: SRC paced and looped into each key (pids in PUB_PIDS): with the
# compiled load generator, one process holding every publisher (`live_load publish`); with
# BENCH_LIVE_CLIENT=python, one `ffmpeg -re -stream_loop -1 -c copy` per key.
PUB_PIDS=()
publish_copies() {
  local src=$1 k
  shift
  if [ "${LOAD[0]}" != python3 ]; then
    "${LOAD[@]}" publish --rtmp "$VIDI_RTMP" --keys "$(IFS=,; echo "$*")" --flv "$src" \
      >>"$WORK/publishers.log" 2>&1 &
    register_pid $!
    PUB_PIDS+=($!)
    return 0
  fi
  for k in "$@"; do
    ffmpeg -hide_banner -nostdin -loglevel error -re -stream_loop -1 -i "$src" -c copy -f flv \
      "$VIDI_RTMP/$k" >>"$WORK/publishers.log" 2>&1 &
    register_pid $!
    PUB_PIDS+=($!)
  done
}
stop_copies() {
  local pid
  for pid in "${PUB_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PUB_PIDS[@]}"; do stop_pid "$pid"; done
  PUB_PIDS=()
}

if [ $publishers = 1 ]; then
  src=$(capacity_source)
  n=${BENCH_LIVE_PUBLISHERS:-50}
  keys=() urls=()
  for i in $(seq "$n"); do
    read -r id key <<<"$(create_live "pub-$i")"
    keys+=("$key")
    urls+=("$VIDI_URL/live/$id/index.m3u8")
  done
  wait_idle "the publishers run"
  log "publishers: $n copies of $src"
  publish_copies "$src" "${keys[@]}"
  # Every stream listed before the watch starts (a publisher's first keyframe takes a moment).
  sleep 3
  cpu0=$(cpu_snapshot)
  run_load publishers --playlists "$(IFS=,; echo "${urls[*]}")" --seconds "${BENCH_LIVE_PUB_SECONDS:-60}" \
    --slack "${BENCH_LIVE_SLACK:-0.1}" --json "$WORK/publishers.json"
  cpu_results live_pub "$n" "$cpu0"
  kill -0 "$VIDI_PID" 2>/dev/null || die "vidi died during the publishers run"
  stop_copies
fi

if [ $viewers = 1 ]; then
  src=$(capacity_source)
  read -r id key <<<"$(create_live viewers)"
  publish_copies "$src" "$key"
  wait_idle "the viewers run"
  log "viewers: ${BENCH_LIVE_VIEWERS:-1000} on one stream"
  fetch=()
  [ "${BENCH_LIVE_FETCH:-1}" = 1 ] && fetch=(--fetch)
  sleep 3
  cpu0=$(cpu_snapshot)
  run_load viewers --playlist "$VIDI_URL/live/$id/index.m3u8" --viewers "${BENCH_LIVE_VIEWERS:-1000}" \
    --seconds "${BENCH_LIVE_VIEW_SECONDS:-40}" "${fetch[@]}"
  cpu_results live_view "${BENCH_LIVE_VIEWERS:-1000}" "$cpu0"
  kill -0 "$VIDI_PID" 2>/dev/null || die "vidi died during the viewers run"
fi
log "done"
