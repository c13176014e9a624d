#!/usr/bin/env bash
# Delivery benchmark: HLS segments of the sizes a ladder produces, as a viewer fetches them.
#
# Source: a 720p30 test pattern with noise (so that x264 spends its bitrate), 16 s, with a sine
# tone, uploaded to `vidi serve` and encoded with the usual ladder (240p..720p). Of all its
# renditions it takes the segments closest to 190 KB, 740 KB and 50 KB, and measures each under
# wrk (2 threads, 64 connections)
# from vidi (/vod/{id}/hls/<q>/<segment>: seg_NNNNN.ts for the head's, seg_pNNN_NNNNN.ts for a
# piece's, whichever is closest in size) and from a throwaway nginx serving the same bytes as
# a static file at the same path, in the same run. Target: vidi/nginx >= 0.9 for every size.
#
# Environment:
#   VIDI_BIN              server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_DURATION        wrk duration per measurement, seconds (default 10)
#   BENCH_IDLE_LOAD, BENCH_WAIT_FILE, BENCH_IDLE_TIMEOUT: wait for a quiet machine (bench/lib.sh)
#   BENCH_RESULTS         file to append KEY=VALUE results to (set by run.sh)
#   BENCH_KEEP=1          keep bench/out/delivery after the run
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init delivery
resolve_vidi_bin
for tool in ffmpeg wrk nginx cmp; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install ffmpeg wrk nginx-light, or scripts/setup.sh)"
done
DURATION=${BENCH_DURATION:-10}

# ---- the source and its encoding (not timed) ----------------------------------------------
src=$WORK/source-720p.mp4
ffmpeg -v error -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 16 \
  -c:v libx264 -preset ultrafast -crf 30 -pix_fmt yuv420p -c:a aac -b:a 128k -shortest "$src" ||
  die "ffmpeg could not make the source"
start_vidi "$WORK/vidi"
id=$(create_video "bench delivery")
code=$(curl -sS --max-time 120 -o "$WORK/upload.json" -w '%{http_code}' -H "$AUTH_HEADER" \
  -F "file=@$src" "$VIDI_URL/videos/$id/source") || code=curl-error
[ "$code" = 201 ] || die "upload answered $code: $(head -c 300 "$WORK/upload.json")"
log "encoding the 720p upload"
deadline=$((SECONDS + 600))
until curl -sS --max-time 10 -H "$AUTH_HEADER" "$VIDI_URL/videos/$id/status" |
  grep -q '"quality":"720p","status":"encoded"'; do
  [ $SECONDS -lt $deadline ] || die "720p not encoded within 600 s"
  sleep 1
done
media=$WORK/vidi/data/media/videos/$id/hls
[ -d "$media/720p" ] || die "no 720p rendition under $media"

# closest BYTES: the segment of any rendition under $media closest to BYTES in size, as
# <rendition>/<file>.
closest() {
  (cd "$media" && find . -name 'seg_*.ts' -printf '%s %P\n') |
    awk -v t="$1" '{ d = $1 - t; if (d < 0) d = -d; if (best == "" || d < bd) { bd = d; best = $2 } } END { print best }'
}
# Sizes a ladder produces: near 190 KB (a 0.5 s 720p fast-start segment, or a 2 s 360p one),
# near 740 KB (a 2 s 720p one) and near 50 KB (a low rung's, where the fixed cost per request
# weighs most).
early=$(closest 190000)
middle=$(closest 740000)
small=$(closest 50000)
[ -n "$early" ] && [ -n "$middle" ] && [ -n "$small" ] || die "no segments in $media"

for seg in "$early" "$middle" "$small"; do
  mkdir -p "$WORK/nginx/root/vod/$id/hls/$(dirname "$seg")"
  cp "$media/$seg" "$WORK/nginx/root/vod/$id/hls/$seg"
done
start_nginx "$WORK/nginx" video/mp2t

echo
echo "delivery: segments, wrk -t2 -c64 ${DURATION}s each ($VIDI_BIN)"
for which in early middle small; do
  seg=${!which}
  file=$media/$seg
  bytes=$(stat -c %s "$file")
  path=/vod/$id/hls/$seg
  for server in vidi nginx; do
    url=$([ $server = vidi ] && echo "$VIDI_URL" || echo "$NGINX_URL")$path
    curl -sS --max-time 10 -o "$WORK/$which-$server.ts" "$url"
    cmp -s "$file" "$WORK/$which-$server.ts" || die "$server does not serve the stored bytes of $path"
  done
  wait_idle "segment $seg"
  log "$seg ($bytes bytes): warm-up, then wrk against vidi and nginx"
  run_wrk "$which-warm-vidi" -t2 -c64 -d2s "$VIDI_URL$path"
  run_wrk "$which-vidi" -t2 -c64 -d"${DURATION}s" "$VIDI_URL$path"
  check_wrk "$which-vidi"
  run_wrk "$which-warm-nginx" -t2 -c64 -d2s "$NGINX_URL$path"
  run_wrk "$which-nginx" -t2 -c64 -d"${DURATION}s" "$NGINX_URL$path"
  check_wrk "$which-nginx"
  v=$(wrk_rps "$which-vidi")
  n=$(wrk_rps "$which-nginx")
  result "delivery_${which}_bytes" "$bytes"
  result "delivery_${which}_vidi_rps" "$v"
  result "delivery_${which}_nginx_rps" "$n"
  result "delivery_${which}_ratio" "$(ratio "$v" "$n")"
  result "delivery_${which}_vidi_errors" "$(wrk_errors "$which-vidi")"
  result "delivery_${which}_nginx_errors" "$(wrk_errors "$which-nginx")"
done
