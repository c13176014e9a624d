#!/usr/bin/env bash
# Encoding on 1 and 2 worker nodes (issue 23's "What to measure"), on the cluster of
# scripts/cluster.sh: 2 API nodes (VIDI_WORKERS=0) and 2 `vidi worker` processes (one encode,
# one head and two short workers each, the defaults) sharing PostgreSQL and SeaweedFS. "1 worker"
# is worker2 stopped (SIGTERM), "2 workers" both running; nothing else changes between them.
#
# 1. Throughput: N copies of a 60 s 1080p30 source (lavfi, cached in bench/out/cache, not timed)
#    uploaded at once to api1; from the first upload's start until every video has every quality
#    encoded (the MP4 included). Videos per hour with 1 and with 2 workers, and 2w/1w.
# 2. Queue latency under that load: for every job of the run, from due (run_at) to claimed
#    (started_at), the jobs table's form of the vidi_queue_latency histogram, p50 / p95 per lane.
# 3. One long video (default 180 s; pieces of 30 s after the half-second head): from the upload
#    response until every quality is encoded, with 1 and with 2 workers; from the jobs table,
#    the node (worker1/worker2, from the `@host:pid` in each job's worker name) and the wall time
#    of its head, each piece and its finish; the CPU of the worker processes (their ffmpeg
#    included). Reference: plain ffmpeg, one process per rendition in sequence with Vidi's
#    per-rendition settings (as bench/encode.sh's naive ladder), on the same source, same run.
#    The model: with C cores per worker, measured per-piece CPU and measured serial time, the
#    expected 1w/2w speedup.
#
# On 2 cores, two workers share the cores one worker already fills (x264 uses every core), so
# the ratios are ~1.0 here; the split itself (which node ran which piece) is what the run shows,
# and the model gives the many-core figure.
#
#   bench/workers.sh            the full run (about 9 minutes on 2 cores, sources cached)
#   bench/workers.sh --quick    a smoke: 2 x 10 s videos, a 30 s long video in 6 s pieces
#
# Environment:
#   VIDI_BIN                    server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_WORKERS_VIDEOS        videos queued at once for the throughput (default 3)
#   BENCH_WORKERS_SECONDS       length of each of them, seconds (default 60)
#   BENCH_WORKERS_LONG_SECONDS  length of the long video, seconds (default 180)
#   BENCH_WORKERS_PIECE_SECS    VIDI_PIECE_SECS of the nodes (default 30, Vidi's default)
#   BENCH_WORKERS_NAIVE=0       skip the plain ffmpeg reference
#   VIDI_TEST_PG_URL            PostgreSQL (default postgres://postgres@127.0.0.1:5432/test)
#   BENCH_IDLE_LOAD, BENCH_WAIT_FILE, BENCH_IDLE_TIMEOUT: wait for a quiet machine before each
#                               timed step (see wait_idle in bench/lib.sh; off unless set)
#   BENCH_RESULTS               file to append KEY=VALUE results to (set by run.sh)
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init workers
resolve_vidi_bin
quick=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    *) die "unknown argument '$arg' (--quick)" ;;
  esac
done
for tool in ffmpeg ffprobe psql nginx python3; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (scripts/setup.sh --test)"
done

FPS=30
if [ $quick = 1 ]; then
  N=${BENCH_WORKERS_VIDEOS:-2} SECS=${BENCH_WORKERS_SECONDS:-10}
  LONG=${BENCH_WORKERS_LONG_SECONDS:-30} PIECE=${BENCH_WORKERS_PIECE_SECS:-6}
else
  N=${BENCH_WORKERS_VIDEOS:-3} SECS=${BENCH_WORKERS_SECONDS:-60}
  LONG=${BENCH_WORKERS_LONG_SECONDS:-180} PIECE=${BENCH_WORKERS_PIECE_SECS:-30}
fi
NAIVE=${BENCH_WORKERS_NAIVE:-1}
TICKS=$(getconf CLK_TCK)

# ---- sources (not timed) -----------------------------------------------------------------
src=$(bench_source "$SECS" "$FPS")
long_src=$(bench_source "$LONG" "$FPS")
max_bytes=$(($(stat -c %s "$long_src") + $(stat -c %s "$src") + 16777216))
log "sources: $src ($(stat -c %s "$src") bytes), $long_src ($(stat -c %s "$long_src") bytes)"

# ---- the cluster -------------------------------------------------------------------------
cdir=$WORK/cluster
stop_cluster() { VIDI_BIN=$VIDI_BIN "$ROOT/scripts/cluster.sh" down "$cdir" >/dev/null 2>&1 || true; }
log "scripts/cluster.sh up (2 API nodes, 2 workers, nginx; PostgreSQL + SeaweedFS; VIDI_PIECE_SECS=$PIECE)"
# Info logs: the workers' "worker started" lines say when a restarted node is up. Uploads go to
# api1 directly (nginx bounds a request to 200 MiB; the long source may be more).
VIDI_BIN=$VIDI_BIN VIDI_LOG=info \
  CLUSTER_SETTINGS="VIDI_RATE_LIMIT=off VIDI_MAX_REQUEST_BYTES=$max_bytes VIDI_PIECE_SECS=$PIECE" \
  "$ROOT/scripts/cluster.sh" up "$cdir" >/dev/null || { stop_cluster; die "the cluster did not start"; }
# Keep the run's exit status for _bench_cleanup (it keeps the logs of a failed run).
trap 'rc=$?; stop_cluster; (exit $rc); _bench_cleanup' EXIT
# shellcheck disable=SC1091
. "$cdir/client.env"
VIDI_KEY=$VIDI_API_KEY
AUTH_HEADER="Authorization: Basic $(printf '%s:' "$VIDI_KEY" | base64 -w0)"
VIDI_URL=http://$(sed -n 's/^VIDI_HTTP_ADDR=//p' "$cdir/api1.env")
pg_url=$(cat "$cdir/pg-url")
schema=$(cat "$cdir/schema")
sql() { psql "$pg_url" -XAtq -F '|' -v ON_ERROR_STOP=1 -c "SET search_path TO \"$schema\"" -c "$1"; }
now_ms() { date +%s%3N; }

worker_pid() { cat "$cdir/$1.pid"; }
started_lines() { grep -c 'worker started' "$cdir/$1.log" 2>/dev/null || true; }
stop_worker() { # NODE: SIGTERM (its running jobs are handed back), wait until it is gone
  local pid i
  pid=$(worker_pid "$1")
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "$1 (pid $pid) did not stop within 15 s"
}
start_worker() { # NODE: start it again, wait until its 4 worker loops (encode, head, 2 short) run
  local before i
  before=$(started_lines "$1")
  VIDI_BIN=$VIDI_BIN "$ROOT/scripts/cluster.sh" start "$1" "$cdir"
  for i in $(seq 300); do
    [ "$(($(started_lines "$1") - before))" -ge 4 ] && return 0
    sleep 0.1
  done
  tail -n 20 "$cdir/$1.log" >&2
  die "$1 did not start its workers within 30 s"
}
# CPU seconds (user + system, waited-for children included: their ffmpeg) of the worker nodes.
cpu_of() { awk -v t="$TICKS" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"; }
workers_cpu() {
  local n s=0
  for n in "$@"; do s=$(awk -v a="$s" -v b="$(cpu_of "$(worker_pid "$n")")" 'BEGIN { printf "%.2f", a + b }'); done
  echo "$s"
}

upload() { # ID FILE -> 0 when the upload answered 201
  local code
  code=$(curl -sS --max-time 900 -o "$WORK/upload-$1.json" -w '%{http_code}' -H "$AUTH_HEADER" -H 'Expect:' \
    -F "file=@\"$2\";filename=source.mp4" "$VIDI_URL/videos/$1/source") || code=curl-error
  [ "$code" = 201 ] || { warn "upload of $1 answered $code: $(head -c 300 "$WORK/upload-$1.json")"; return 1; }
}
# done_ok ID: every planned quality (hls and mp4) is encoded; dies if the video failed.
done_ok() {
  local st
  st=$(curl -s --max-time 5 -H "$AUTH_HEADER" "$VIDI_URL/videos/$1/status" || true)
  if grep -q '"status":"failed"' <<<"$st"; then
    for n in worker1 worker2; do tail -n 10 "$cdir/$n.log" >&2; done
    die "encoding of $1 failed: $st"
  fi
  grep -q '"qualities":\[{' <<<"$st" && ! grep -q '"status":"\(waiting\|encoding\)"' <<<"$st"
}
# wait_all ID...: until every video is done (10 min at most); prints "ID seconds-since-T0" lines.
wait_all() {
  local left=("$@") deadline=$((SECONDS + 900)) id rest
  while [ ${#left[@]} -gt 0 ]; do
    rest=()
    for id in "${left[@]}"; do
      if done_ok "$id"; then echo "$id $(elapsed "$T0" "$(now)")"; else rest+=("$id"); fi
    done
    left=("${rest[@]+"${rest[@]}"}")
    [ ${#left[@]} -eq 0 ] && break
    [ $SECONDS -lt $deadline ] || die "not encoded within 900 s: ${left[*]}"
    for n in "${NODES[@]}"; do kill -0 "$(worker_pid "$n")" 2>/dev/null || die "$n died (log: $cdir/$n.log)"; done
    sleep 0.25
  done
}

# node_of: SQL for the node of a job (worker1/worker2) from the pid in its worker's name.
node_sql() {
  echo "CASE substring(locked_by from ':([0-9]+)\$') WHEN '$(worker_pid worker1)' THEN 'worker1' \
    WHEN '$(worker_pid worker2)' THEN 'worker2' ELSE coalesce(locked_by, '-') END"
}

# throughput LABEL NODES...: N videos uploaded at once; sets TP_S, TP_VPH, and the queue latency
# figures QL_<lane>_P50/P95 (seconds).
throughput() {
  local label=$1 ids=() pids=() i id
  shift
  NODES=("$@")
  wait_idle "throughput with $label"
  for i in $(seq "$N"); do ids+=("$(create_video "workers $label $i")"); done
  log "throughput, $label: $N x ${SECS}s uploaded at once (videos ${ids[*]})"
  local since cpu0
  since=$(now_ms)
  cpu0=$(workers_cpu "$@")
  T0=$(now)
  for id in "${ids[@]}"; do
    upload "$id" "$src" &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || die "an upload failed"; done
  log "  uploads answered after $(elapsed "$T0" "$(now)") s"
  wait_all "${ids[@]}" >"$WORK/tp-$label.txt"
  TP_S=$(awk '{ if ($2 > m) m = $2 } END { printf "%.2f", m }' "$WORK/tp-$label.txt")
  TP_VPH=$(awk -v n="$N" -v s="$TP_S" 'BEGIN { printf "%.1f", n * 3600 / s }')
  TP_CPU=$(awk -v a="$cpu0" -v b="$(workers_cpu "$@")" 'BEGIN { printf "%.1f", b - a }')
  log "  every video encoded after $TP_S s: $TP_VPH videos/hour ($TP_CPU CPU s in the worker nodes)"
  sql "SELECT lane, count(*), round((percentile_cont(0.5) WITHIN GROUP (ORDER BY (started_at - run_at) / 1000.0))::numeric, 3), \
         round((percentile_cont(0.95) WITHIN GROUP (ORDER BY (started_at - run_at) / 1000.0))::numeric, 3), \
         round((max(started_at - run_at) / 1000.0)::numeric, 3) \
       FROM jobs WHERE created_at >= $since AND started_at IS NOT NULL GROUP BY lane ORDER BY lane" >"$WORK/ql-$label.txt"
  while IFS='|' read -r lane n p50 p95 max; do
    log "  queue latency, $lane lane: $n jobs, p50 $p50 s, p95 $p95 s, max $max s"
    printf -v "QL_${lane}_P50" '%s' "$p50"
    printf -v "QL_${lane}_P95" '%s' "$p95"
    printf -v "QL_${lane}_N" '%s' "$n"
  done <"$WORK/ql-$label.txt"
  # Where the pieces ran.
  TP_SPLIT=$(sql "SELECT $(node_sql) AS node, count(*) FROM jobs WHERE created_at >= $since AND kind = 'piece' \
    GROUP BY node ORDER BY node" | tr '|\n' '= ' | sed 's/ $//')
  log "  pieces per node: $TP_SPLIT"
}

# long LABEL NODES...: the long video; sets LONG_S, LONG_CPU, LONG_SPAN (first piece start to
# last piece end), LONG_NODES (pieces per node) and prints the per-job table.
long_video() {
  local label=$1 id cpu0
  shift
  NODES=("$@")
  wait_idle "the long video with $label"
  id=$(create_video "workers long $label")
  log "long video, $label: ${LONG}s 1080p30 (video $id), uploaded in one request"
  upload "$id" "$long_src" || die "the upload failed"
  cpu0=$(workers_cpu "$@")
  T0=$(now)
  local t0ms
  t0ms=$(now_ms)
  wait_all "$id" >/dev/null
  LONG_S=$(elapsed "$T0" "$(now)")
  LONG_CPU=$(awk -v a="$cpu0" -v b="$(workers_cpu "$@")" 'BEGIN { printf "%.1f", b - a }')
  log "  every quality encoded after $LONG_S s ($LONG_CPU CPU s in the worker nodes)"
  # Every job of the video, from the jobs table: its node, start and end after the upload
  # response, wall time.
  sql "SELECT kind, coalesce(payload::json->>'index', ''), $(node_sql), \
         round(((started_at - $t0ms) / 1000.0)::numeric, 2), round(((updated_at - $t0ms) / 1000.0)::numeric, 2), \
         round(((updated_at - started_at) / 1000.0)::numeric, 2), status \
       FROM jobs WHERE payload::json->>'videoId' = '$id' AND kind IN ('encode', 'piece', 'finish') \
       ORDER BY CASE kind WHEN 'encode' THEN 0 WHEN 'piece' THEN 1 ELSE 2 END, (payload::json->>'index')::int NULLS FIRST" \
    >"$WORK/long-$label.txt"
  {
    printf '  %-7s %5s %-8s %9s %9s %9s\n' job piece node "start s" "end s" "wall s"
    awk -F'|' '{ printf "  %-7s %5s %-8s %9s %9s %9s%s\n", ($1 == "encode" ? "head" : $1), $2, $3, $4, $5, $6, ($7 == "done" ? "" : "  (" $7 ")") }' "$WORK/long-$label.txt"
  } | tee "$WORK/long-$label-table.txt" >&2
  LONG_PIECES=$(awk -F'|' '$1 == "piece"' "$WORK/long-$label.txt" | wc -l)
  LONG_SPAN=$(awk -F'|' '$1 == "piece" { if (s == "" || $4 < s) s = $4; if ($5 > e) e = $5 } END { printf "%.2f", e - s }' "$WORK/long-$label.txt")
  LONG_NODES=$(awk -F'|' '$1 == "piece" { n[$3]++ } END { for (k in n) printf "%s=%d ", k, n[k] }' "$WORK/long-$label.txt" | sed 's/ $//')
  LONG_PIECE_P50=$(awk -F'|' '$1 == "piece" { print $6 }' "$WORK/long-$label.txt" | sort -n |
    awk '{ v[NR] = $1 } END { if (NR) printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  log "  pieces: $LONG_PIECES ($LONG_NODES), median wall $LONG_PIECE_P50 s, first start to last end $LONG_SPAN s"
}

# ---- 1 worker ----------------------------------------------------------------------------
stop_worker worker2
log "worker2 stopped: 1 worker node (worker1, pid $(worker_pid worker1))"
throughput 1w worker1
TP1_S=$TP_S TP1_VPH=$TP_VPH TP1_CPU=$TP_CPU TP1_SPLIT=$TP_SPLIT
QL1_HEAD="${QL_head_P50:-} ${QL_head_P95:-}" QL1_ENC="${QL_encode_P50:-} ${QL_encode_P95:-}"
long_video 1w worker1
L1_S=$LONG_S L1_CPU=$LONG_CPU L1_SPAN=$LONG_SPAN L1_PIECES=$LONG_PIECES L1_NODES=$LONG_NODES L1_P50=$LONG_PIECE_P50

# ---- 2 workers ---------------------------------------------------------------------------
start_worker worker2
log "worker2 started again: 2 worker nodes (worker1 pid $(worker_pid worker1), worker2 pid $(worker_pid worker2))"
throughput 2w worker1 worker2
TP2_S=$TP_S TP2_VPH=$TP_VPH TP2_CPU=$TP_CPU TP2_SPLIT=$TP_SPLIT
QL2_HEAD="${QL_head_P50:-} ${QL_head_P95:-}" QL2_ENC="${QL_encode_P50:-} ${QL_encode_P95:-}"
long_video 2w worker1 worker2
L2_S=$LONG_S L2_CPU=$LONG_CPU L2_SPAN=$LONG_SPAN L2_PIECES=$LONG_PIECES L2_NODES=$LONG_NODES L2_P50=$LONG_PIECE_P50
case "$L2_NODES" in
  *worker1=*worker2=*) ;;
  *) warn "the long video's pieces did not run on both workers: $L2_NODES" ;;
esac
stop_cluster
trap _bench_cleanup EXIT

# ---- reference: plain ffmpeg, one process per rendition, in sequence ---------------------
# The ladder of a 1920x1080 source and Vidi's per-rendition settings, as bench/encode.sh's naive
# reference (see there): name width height video-kbps level(x10).
LADDER=("240p 426 240 400 30" "360p 640 360 800 30" "480p 854 480 1400 31" "720p 1280 720 2800 31" "1080p 1920 1080 5000 40")
GOP=$((FPS * 2))
KEYS='expr:gte(t,if(eq(n_forced,0),0,0.5+(n_forced-1)*2))'
naive_s="" naive_cpu=""
if [ "$NAIVE" = 1 ]; then
  wait_idle "the plain ffmpeg ladder"
  log "reference: plain ffmpeg, one process per rendition in sequence, on the ${LONG}s source"
  cpu0=$(cpu_of $$)
  t0=$(now)
  for r in "${LADDER[@]}"; do
    read -r name w h kbps level <<<"$r"
    d=$WORK/naive/$name
    mkdir -p "$d"
    ffmpeg -hide_banner -nostdin -y -loglevel error -i "$long_src" -map 0:v:0 -map 0:a:0 \
      -vf "fps=$FPS,scale=$w:$h:flags=bicubic,setsar=1,format=yuv420p" \
      -c:v libx264 -preset veryfast -profile:v high -level:v "$(awk -v l="$level" 'BEGIN { printf "%.1f", l / 10 }')" \
      -b:v "${kbps}k" -maxrate "$((kbps * 3 / 2))k" -bufsize "$((kbps * 2))k" \
      -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 -force_key_frames "$KEYS" \
      -c:a aac -b:a 128k -ac 2 \
      -f hls -hls_time 2 -hls_init_time 0.5 -hls_playlist_type vod -hls_flags independent_segments \
      -hls_segment_filename "$d/seg_%05d.ts" "$d/index.m3u8" 2>"$WORK/naive-$name.log" ||
      { cat "$WORK/naive-$name.log" >&2; die "plain ffmpeg for $name failed"; }
    rm -rf "$d"
  done
  naive_s=$(elapsed "$t0" "$(now)")
  naive_cpu=$(awk -v a="$cpu0" -v b="$(cpu_of $$)" 'BEGIN { printf "%.1f", b - a }')
  log "  plain ffmpeg ladder: $naive_s s, $naive_cpu CPU s"
fi

# ---- the model ---------------------------------------------------------------------------
# Per piece: the worker nodes' CPU for the long video (1 worker) over its pieces. That CPU also
# holds the head, the sound and the MP4, so it overstates a piece a little. Serial: what the
# pieces do not overlap (the 1-worker run's wall time less its pieces' span: the probe, the head
# before the pieces start, the finish's join and MP4). With W workers of C cores each, one piece
# at a time per worker (VIDI_WORKERS=1) using all C cores:
#   T(W) = serial + ceil(P / W) * per_piece_cpu / C, and the speedup of 2 workers T(1) / T(2).
PER_PIECE_CPU=$(awk -v c="$L1_CPU" -v p="$L1_PIECES" 'BEGIN { if (p > 0) printf "%.2f", c / p }')
SERIAL_S=$(awk -v t="$L1_S" -v s="$L1_SPAN" 'BEGIN { v = t - s; if (v < 0) v = 0; printf "%.2f", v }')
model() { # C [P] -> speedup of 2 workers over 1
  awk -v c="$1" -v p="${2:-$L1_PIECES}" -v u="$PER_PIECE_CPU" -v s="$SERIAL_S" 'BEGIN {
    t1 = s + p * u / c; t2 = s + int((p + 1) / 2) * u / c; printf "%.2f", t1 / t2 }'
}
# The same for a 10-minute video (20 pieces of 30 s), the issue's "long video".
P10=$(awk -v p="$L1_PIECES" -v l="$LONG" 'BEGIN { printf "%d", p * 600 / l + 0.5 }')
log "model: per piece $PER_PIECE_CPU CPU s, serial $SERIAL_S s; 2w/1w speedup with C cores per worker:"
for c in 2 4 8 16; do log "  C=$c: ${LONG}s video $(model "$c"), 10-minute video ($P10 pieces) $(model "$c" "$P10")"; done

echo
echo "workers: $N x ${SECS}s and one ${LONG}s 1080p30 video, pieces of ${PIECE}s, on 1 and 2 worker nodes ($VIDI_BIN, $(nproc) cores)"
result workers_videos "$N"
result workers_video_seconds "$SECS"
result workers_tp_1w_s "$TP1_S"
result workers_tp_2w_s "$TP2_S"
result workers_tp_1w_vph "$TP1_VPH"
result workers_tp_2w_vph "$TP2_VPH"
result workers_tp_ratio_2w_1w "$(ratio "$TP2_VPH" "$TP1_VPH")"
result workers_tp_1w_cpu_s "$TP1_CPU"
result workers_tp_2w_cpu_s "$TP2_CPU"
result workers_tp_2w_pieces "$TP2_SPLIT"
read -r a b <<<"$QL1_HEAD"
result workers_ql_1w_head_p50_s "$a"
result workers_ql_1w_head_p95_s "$b"
read -r a b <<<"$QL1_ENC"
result workers_ql_1w_encode_p50_s "$a"
result workers_ql_1w_encode_p95_s "$b"
read -r a b <<<"$QL2_HEAD"
result workers_ql_2w_head_p50_s "$a"
result workers_ql_2w_head_p95_s "$b"
read -r a b <<<"$QL2_ENC"
result workers_ql_2w_encode_p50_s "$a"
result workers_ql_2w_encode_p95_s "$b"
result workers_long_seconds "$LONG"
result workers_long_pieces "$L1_PIECES"
result workers_long_1w_s "$(printf '%.2f' "$L1_S")"
result workers_long_2w_s "$(printf '%.2f' "$L2_S")"
result workers_long_ratio_1w_2w "$(ratio "$L1_S" "$L2_S")"
result workers_long_1w_cpu_s "$L1_CPU"
result workers_long_2w_cpu_s "$L2_CPU"
result workers_long_2w_pieces "$L2_NODES"
result workers_long_1w_piece_p50_s "$L1_P50"
result workers_long_2w_piece_p50_s "$L2_P50"
result workers_long_naive_s "${naive_s:+$(printf '%.2f' "$naive_s")}"
result workers_long_naive_cpu_s "$naive_cpu"
result workers_long_ratio_naive_1w "$(ratio "${naive_s:-0}" "$L1_S")"
result workers_long_ratio_naive_2w "$(ratio "${naive_s:-0}" "$L2_S")"
result workers_model_piece_cpu_s "$PER_PIECE_CPU"
result workers_model_serial_s "$SERIAL_S"
for c in 2 4 8 16; do result "workers_model_speedup_c$c" "$(model "$c")"; done
for c in 2 4 8 16; do result "workers_model_speedup_10min_c$c" "$(model "$c" "$P10")"; done
echo
echo "long video, 1 worker:"
cat "$WORK/long-1w-table.txt"
echo "long video, 2 workers:"
cat "$WORK/long-2w-table.txt"
