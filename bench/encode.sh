#!/usr/bin/env bash
# Encoding and delivery benchmark.
#
# Source: a 60 s 1080p30 test pattern with a sine tone (lavfi testsrc2 + sine), encoded once to
# H.264/AAC at a high bitrate (libx264 ultrafast, crf 18). Not timed; cached in bench/out/cache.
#
# 1. Naive reference: one plain ffmpeg process per rendition, one after the other, with Vidi's
#    per-rendition settings (crates/vidi-media/src/encode.rs and ladder.rs: libx264 veryfast,
#    high profile, the rung's -b:v/-maxrate/-bufsize and level, keyframes on the same schedule,
#    AAC 128k stereo, HLS with a 0.5 s first segment then 2 s ones) for the 5 renditions
#    240p..1080p. Wall time of all 5.
# 2. Vidi: `vidi serve` (VIDI_LOG=info), one video, the source uploaded in one request; then
#    - time to first playable: from the upload response to the moment GET
#      /vod/{id}/hls/manifest.m3u8 answers 200 AND /vod/{id}/hls/240p/index.m3u8 lists a segment
#      that answers 200 (polled every 20 ms);
#    - full ladder: from the upload response until GET /videos/{id}/status shows every hls
#      quality "encoded" (polled every 200 ms).
#    Ratios: naive / vidi full ladder (target >= 1.5), first playable / naive (target <= 0.03,
#    and < 3 s).
# 3. Segment delivery: the 1080p segment of the encoded video closest to 2 MB, under wrk
#    (2 threads, 64 connections, 10 s) from /vod/{id}/hls/1080p/<its name> (seg_NNNNN.ts for
#    the head's, seg_pNNN_NNNNN.ts for a piece's, as the playlist lists them) and from a throwaway
#    nginx serving the same bytes as a static file at the same path. Target vidi/nginx >= 0.9.
#
# Environment:
#   VIDI_BIN              server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_ENCODE_SECONDS  length of the source, seconds (default 60)
#   BENCH_DURATION        wrk duration, seconds (default 10)
#   BENCH_IDLE_LOAD, BENCH_WAIT_FILE, BENCH_IDLE_TIMEOUT: wait for a quiet machine before each
#                         timed step (see wait_idle in bench/lib.sh; off unless set)
#   BENCH_RESULTS         file to append KEY=VALUE results to (set by run.sh)
#   BENCH_KEEP=1          keep bench/out/encode after the run
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init encode
resolve_vidi_bin
for tool in ffmpeg ffprobe wrk nginx cmp; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install ffmpeg wrk nginx-light, or scripts/setup.sh)"
done

SECS=${BENCH_ENCODE_SECONDS:-60}
DURATION=${BENCH_DURATION:-10}
FPS=30
TARGET_SEGMENT=2000000

# The ladder of a 1920x1080 source, as crates/vidi-media/src/ladder.rs computes it:
# name width height video-kbps level(x10)
LADDER=(
  "240p 426 240 400 30"
  "360p 640 360 800 30"
  "480p 854 480 1400 31"
  "720p 1280 720 2800 31"
  "1080p 1920 1080 5000 40"
)
NRUNGS=${#LADDER[@]}

# ---- source (not timed) -----------------------------------------------------------------
src=$(bench_source "$SECS" "$FPS")
SRC_BYTES=$(stat -c %s "$src")
src_info=$(ffprobe -v error -show_entries format=duration,bit_rate -show_entries stream=codec_name,width,height,r_frame_rate \
  -of compact=p=0:nk=1 "$src" | tr '\n' ' ')
log "source $src: $SRC_BYTES bytes ($src_info)"
cat "$src" >/dev/null # into the page cache, for both contenders

# ---- 1. naive reference: one ffmpeg per rendition, in sequence --------------------------
GOP=$((FPS * 2))
# Keyframes and segment cuts where Vidi puts them (crates/vidi-media/src/encode.rs, plan_pieces
# and hls_piece_args): a source longer than 5 s is a half-second head (one 0.5 s segment) and then
# pieces of whole 2 s segments, so keyframes at 0, 0.5, 2.5, 4.5, …; a source of 5 s or less is
# one whole encode, with half-second segments for its first 2 s and 2 s ones after.
if awk -v s="$SECS" 'BEGIN { exit !(s > 5) }'; then
  KEYS='expr:gte(t,if(eq(n_forced,0),0,0.5+(n_forced-1)*2))'
else
  KEYS='expr:if(lt(t,2),gte(t,n_forced*0.5),gte(t,2+(n_forced-4)*2))'
fi
naive_rung() { # NAME W H KBPS LEVEL
  local d=$WORK/naive/$1
  mkdir -p "$d"
  ffmpeg -hide_banner -nostdin -y -loglevel error -i "$src" -map 0:v:0 -map 0:a:0 \
    -vf "fps=$FPS,scale=$2:$3:flags=bicubic,setsar=1,format=yuv420p" \
    -c:v libx264 -preset veryfast -profile:v high -level:v "$(awk -v l="$5" 'BEGIN { printf "%.1f", l / 10 }')" \
    -b:v "${4}k" -maxrate "$(($4 * 3 / 2))k" -bufsize "$(($4 * 2))k" \
    -g "$GOP" -keyint_min "$GOP" -sc_threshold 0 -force_key_frames "$KEYS" \
    -c:a aac -b:a 128k -ac 2 \
    -f hls -hls_time 2 -hls_init_time 0.5 -hls_playlist_type vod -hls_flags independent_segments \
    -hls_segment_filename "$d/seg_%05d.ts" "$d/index.m3u8" 2>"$WORK/naive-$1.log" ||
    { cat "$WORK/naive-$1.log" >&2; die "naive ffmpeg for $1 failed"; }
  grep -q '#EXT-X-ENDLIST' "$d/index.m3u8" || die "naive $1: playlist not finished"
}

# CPU seconds (user + system) of a process's waited-for children, and its own: fields 14-17 of
# /proc/PID/stat, in clock ticks. Both contenders' work is done in child ffmpeg processes.
TICKS=$(getconf CLK_TCK)
cpu_of() { # PID -> seconds
  awk -v t="$TICKS" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13 + $14 + $15) / t }' "/proc/$1/stat"
}

wait_idle "the naive ladder"
log "naive reference: $NRUNGS ffmpeg processes in sequence (libx264 veryfast)"
naive_cpu0=$(cpu_of $$)
declare -A NAIVE_RUNG_S
t0=$(now)
for r in "${LADDER[@]}"; do
  read -r name w h kbps level <<<"$r"
  r0=$(now)
  naive_rung "$name" "$w" "$h" "$kbps" "$level"
  NAIVE_RUNG_S[$name]=$(elapsed "$r0" "$(now)")
  log "  $name ${w}x$h ${kbps}k: ${NAIVE_RUNG_S[$name]} s"
done
naive_s=$(elapsed "$t0" "$(now)")
naive_cpu=$(awk -v a="$naive_cpu0" -v b="$(cpu_of $$)" 'BEGIN { printf "%.2f", b - a }')
log "  naive full ladder: $naive_s s, $naive_cpu CPU s"

# ---- 2. vidi: upload, first playable, full ladder ---------------------------------------
wait_idle "the Vidi ladder"
start_vidi "$WORK/vidi" VIDI_LOG=info VIDI_MAX_REQUEST_BYTES=$((SRC_BYTES + 16777216))
vlog=$WORK/vidi/vidi.log
id=$(create_video "bench encode")
base=$VIDI_URL/vod/$id/hls
log "uploading the source to video $id in one request"
vidi_cpu0=$(cpu_of "$VIDI_PID")
t_up=$EPOCHREALTIME
code=$(curl -sS --max-time 600 -o "$WORK/upload.json" -w '%{http_code}' -H "$AUTH_HEADER" -H 'Expect:' \
  -F "file=@\"$src\";filename=source.mp4" "$VIDI_URL/videos/$id/source") || code=curl-error
t_resp=$EPOCHREALTIME
[ "$code" = 201 ] || die "upload answered $code: $(head -c 500 "$WORK/upload.json")"
upload_s=$(elapsed "$t_up" "$t_resp")
log "  upload: $upload_s s; polling the delivery URLs every 20 ms"

alive() {
  kill -0 "$VIDI_PID" 2>/dev/null && return 0
  local how
  how=$(exit_note "$VIDI_PID")
  tail -n 30 "$vlog" >&2
  die "the server died at $(date +%H:%M:%S.%N | cut -c1-12), $how (log: $vlog)"
}
failed_check() {
  if grep -q '"status":"failed"' <<<"$1"; then
    tail -n 20 "$vlog" >&2
    die "encoding failed: $1"
  fi
}

# Time to first playable: master 200, and the first rendition's playlist lists a segment that
# answers 200. Every check is a plain GET, as a player would do.
t_master=""
t_play=""
polls=0
deadline=$((SECONDS + 600))
while [ -z "$t_play" ]; do
  polls=$((polls + 1))
  c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/manifest.m3u8" || true)
  if [ "$c" = 200 ]; then
    [ -n "$t_master" ] || t_master=$EPOCHREALTIME
    pl=$(curl -s --max-time 5 -w '\n%{http_code}' "$base/240p/index.m3u8" || true)
    if [ "${pl##*$'\n'}" = 200 ]; then
      seg=$(awk 'NF && !/^#/ { print; exit }' <<<"${pl%$'\n'*}")
      if [ -n "$seg" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$base/240p/$seg" || true)" = 200 ]; then
        t_play=$EPOCHREALTIME
        break
      fi
    fi
  elif [ "$c" != 202 ] && [ "$c" != 000 ]; then
    warn "manifest answered $c"
  fi
  alive
  [ $SECONDS -lt $deadline ] || die "not playable within 600 s (log: $vlog)"
  sleep 0.02
done
first_playable_s=$(elapsed "$t_resp" "$t_play")
master_s=$(elapsed "$t_resp" "$t_master")
log "  first playable after $first_playable_s s (master 200 after $master_s s, $polls polls, first segment $seg)"

# Full ladder: every hls quality "encoded" in GET /videos/{id}/status.
t_full=""
while [ -z "$t_full" ]; do
  st=$(curl -s --max-time 5 -H "$AUTH_HEADER" "$VIDI_URL/videos/$id/status" || true)
  hls=$(grep -o '"type":"hls","quality":"[^"]*","status":"[^"]*"' <<<"$st" || true)
  n=$(grep -c . <<<"$hls" || true)
  enc=$(grep -c '"status":"encoded"' <<<"$hls" || true)
  if [ "$n" -gt 0 ] && [ "$n" = "$enc" ]; then
    t_full=$EPOCHREALTIME
    break
  fi
  failed_check "$st"
  alive
  [ $SECONDS -lt $deadline ] || die "ladder not encoded within 600 s (log: $vlog)"
  sleep 0.2
done
vidi_full_s=$(elapsed "$t_resp" "$t_full")
vidi_cpu=$(awk -v a="$vidi_cpu0" -v b="$(cpu_of "$VIDI_PID")" 'BEGIN { printf "%.2f", b - a }')
log "  vidi: $vidi_cpu CPU s (server and its encoders) for the upload and the ladder"
[ "$n" = "$NRUNGS" ] || warn "status lists $n hls qualities, expected $NRUNGS: $hls"
log "  full ladder ($n hls qualities encoded) after $vidi_full_s s"
grep -q '"playable":true' <<<"$st" || warn "all hls qualities encoded but playable is not true: $st"

# The MP4 remux follows the ladder; wait for it (not timed as part of the ladder) so that it
# does not run under the delivery benchmark.
mp4_s=""
while grep -q '"type":"mp4"' <<<"$st" && ! grep -q '"type":"mp4","quality":"[^"]*","status":"encoded"' <<<"$st"; do
  failed_check "$st"
  alive
  [ $SECONDS -lt $deadline ] || die "mp4 not ready within 600 s (log: $vlog)"
  sleep 0.2
  st=$(curl -s --max-time 5 -H "$AUTH_HEADER" "$VIDI_URL/videos/$id/status" || true)
done
if grep -q '"type":"mp4"' <<<"$st"; then mp4_s=$(elapsed "$t_resp" "$EPOCHREALTIME"); fi

# What the worker logged (seconds since it started ffmpeg, so without probe and queueing).
log_secs() { grep "$1" "$vlog" | grep -o 'seconds=[0-9.]*' | head -n1 | cut -d= -f2; }
log_playable=$(log_secs 'playable')
log_ladder=$(log_secs 'ladder encoded')
log "  worker log: playable after ${log_playable:-?} s, ladder encoded after ${log_ladder:-?} s of encoding"

# Sanity: every rendition finished, and sizes comparable with the naive outputs (same work).
media=$WORK/vidi/data/media/videos/$id/hls
for r in "${LADDER[@]}"; do
  read -r name _ <<<"$r"
  pl=$(curl -s --max-time 5 "$base/$name/index.m3u8")
  grep -q '#EXT-X-ENDLIST' <<<"$pl" || warn "vidi $name playlist has no #EXT-X-ENDLIST after encoding"
  vs=$(grep -c '^seg_' <<<"$pl" || true)
  ns=$(grep -c '^seg_' "$WORK/naive/$name/index.m3u8" || true)
  vb=$(du -sb "$media/$name" 2>/dev/null | cut -f1)
  nb=$(du -sb "$WORK/naive/$name" | cut -f1)
  log "  $name: vidi $vs segments, $vb bytes; naive $ns segments, $nb bytes"
done

# ---- 3. segment delivery: vidi vs nginx -------------------------------------------------
segfile=$(find "$media/1080p" -name 'seg_*.ts' -printf '%s %p\n' |
  awk -v t="$TARGET_SEGMENT" '{ d = $1 - t; if (d < 0) d = -d; if (best == "" || d < bd) { bd = d; best = $2 } } END { print best }')
[ -n "$segfile" ] || die "no 1080p segment in $media/1080p"
seg=$(basename "$segfile")
SEG_BYTES=$(stat -c %s "$segfile")
seg_path=/vod/$id/hls/1080p/$seg
curl -sS --max-time 10 -D "$WORK/seg-headers.txt" -o "$WORK/seg-vidi.ts" "$VIDI_URL$seg_path"
cmp -s "$segfile" "$WORK/seg-vidi.ts" || die "vidi does not serve the stored bytes of $seg_path"
log "segment $seg_path: $SEG_BYTES bytes ($(awk -F': *' 'tolower($1) == "content-type" { sub(/\r$/, "", $2); print $2 }' "$WORK/seg-headers.txt"))"
mkdir -p "$WORK/nginx/root/vod/$id/hls/1080p"
cp "$segfile" "$WORK/nginx/root/vod/$id/hls/1080p/$seg"
start_nginx "$WORK/nginx" video/mp2t
curl -sS --max-time 10 -o "$WORK/seg-nginx.ts" "$NGINX_URL$seg_path"
cmp -s "$segfile" "$WORK/seg-nginx.ts" || die "nginx does not serve the same bytes"

wait_idle "segment delivery"
log "segment delivery: warm-up, then wrk -t2 -c64 -d${DURATION}s against vidi and nginx"
run_wrk seg-warm-vidi -t2 -c64 -d2s "$VIDI_URL$seg_path"
run_wrk seg-vidi -t2 -c64 -d"${DURATION}s" "$VIDI_URL$seg_path"
check_wrk seg-vidi
run_wrk seg-warm-nginx -t2 -c64 -d2s "$NGINX_URL$seg_path"
run_wrk seg-nginx -t2 -c64 -d"${DURATION}s" "$NGINX_URL$seg_path"
check_wrk seg-nginx
stop_pid "$NGINX_PID"
seg_vidi_rps=$(wrk_rps seg-vidi)
seg_nginx_rps=$(wrk_rps seg-nginx)
seg_vidi_mbps=$(awk -v r="$seg_vidi_rps" -v b="$SEG_BYTES" 'BEGIN { printf "%.0f", r * b / 1e6 }')
seg_nginx_mbps=$(awk -v r="$seg_nginx_rps" -v b="$SEG_BYTES" 'BEGIN { printf "%.0f", r * b / 1e6 }')
log "  vidi $seg_vidi_rps req/s ($seg_vidi_mbps MB/s), nginx $seg_nginx_rps req/s ($seg_nginx_mbps MB/s)"

echo
echo "encode: ${SECS}s 1080p30 source, $NRUNGS renditions; segment delivery wrk ${DURATION}s ($VIDI_BIN)"
result encode_source_seconds "$SECS"
result encode_source_bytes "$SRC_BYTES"
result encode_renditions "$NRUNGS"
for r in "${LADDER[@]}"; do
  read -r name _ <<<"$r"
  result "encode_naive_${name}_s" "$(printf '%.2f' "${NAIVE_RUNG_S[$name]}")"
done
result encode_naive_s "$(printf '%.2f' "$naive_s")"
result encode_upload_s "$(printf '%.2f' "$upload_s")"
result encode_vidi_full_s "$(printf '%.2f' "$vidi_full_s")"
result encode_ratio "$(ratio "$naive_s" "$vidi_full_s")"
# The CPU each spent: their ratio is what the wall-clock ratio would be if both kept every core
# equally busy, so it bounds what scheduling alone can win on this machine.
result encode_naive_cpu_s "$naive_cpu"
result encode_vidi_cpu_s "$vidi_cpu"
result encode_cpu_ratio "$(ratio "$naive_cpu" "$vidi_cpu")"
result encode_first_playable_s "$(printf '%.3f' "$first_playable_s")"
result encode_first_playable_ratio "$(awk -v a="$first_playable_s" -v b="$naive_s" 'BEGIN { printf "%.4f", a / b }')"
result encode_master_200_s "$(printf '%.3f' "$master_s")"
result encode_log_playable_s "${log_playable:-}"
result encode_log_ladder_s "${log_ladder:-}"
result encode_mp4_s "${mp4_s:+$(printf '%.2f' "$mp4_s")}"
result seg_bytes "$SEG_BYTES"
result seg_vidi_rps "$seg_vidi_rps"
result seg_vidi_mbps "$seg_vidi_mbps"
result seg_nginx_rps "$seg_nginx_rps"
result seg_nginx_mbps "$seg_nginx_mbps"
result seg_ratio "$(ratio "$seg_vidi_rps" "$seg_nginx_rps")"
result seg_vidi_errors "$(wrk_errors seg-vidi)"
result seg_nginx_errors "$(wrk_errors seg-nginx)"
