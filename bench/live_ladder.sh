#!/usr/bin/env bash
# The live ladder's cost (issue 21 part 7): one paced 720p30 3 Mb/s publisher into a live stream
# of a Vidi started with VIDI_LIVE_LADDER (default 480,240); the CPU each rung's ffmpeg uses
# (utime+stime from /proc over a window, in % of one core), against the reference in the same
# run: the publisher's own ffmpeg encoding the 720p source (x264 veryfast), so the ratio says
# what a rung costs next to one encode of the source.
#
# Environment: BENCH_LADDER (480,240), BENCH_LADDER_SECONDS (measured window, default 20).
# See docs/performance.md, "live (ladder)".
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init live_ladder
command -v ffmpeg >/dev/null 2>&1 || die "missing tool: ffmpeg"
resolve_vidi_bin
LADDER=${BENCH_LADDER:-480,240}
WINDOW=${BENCH_LADDER_SECONDS:-20}

RTMP_PORT=$(free_port)
export VIDI_RTMP_ADDR=127.0.0.1:$RTMP_PORT
start_vidi "$WORK/vidi" VIDI_LIVE_LADDER="$LADDER"
for _ in $(seq 100); do
  ss -Htln "sport = :$RTMP_PORT" | grep -q . && break
  sleep 0.1
done
body=$(curl -sS --max-time 30 -H "$AUTH_HEADER" -H 'Content-Type: application/json' \
  -d '{"name":"ladder"}' "$VIDI_URL/live-streams") || die "POST /live-streams failed"
id=$(json_str liveStreamId <<<"$body")
key=$(json_str streamKey <<<"$body")
[ -n "$id" ] && [ -n "$key" ] || die "POST /live-streams answered: $body"

ffmpeg -v error -re -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
  -t $((WINDOW + 30)) -c:v libx264 -preset veryfast -tune zerolatency -b:v 3M -maxrate 3M -bufsize 6M -g 60 \
  -pix_fmt yuv420p -c:a aac -f flv "rtmp://127.0.0.1:$RTMP_PORT/s/$key" >"$WORK/publisher.log" 2>&1 &
PUB=$!
register_pid "$PUB"

# Wait for every rung to be listed (and so encoding).
rungs=$(tr ',' '\n' <<<"$LADDER" | grep -c .)
for _ in $(seq 150); do
  n=$(curl -s "$VIDI_URL/live/$id.m3u8" | grep -c EXT-X-STREAM-INF || true)
  [ "$n" -ge $((rungs + 1)) ] && break
  sleep 0.2
done
curl -s "$VIDI_URL/live/$id.m3u8" >"$WORK/master.m3u8"
log "multivariant: $(grep -c EXT-X-STREAM-INF "$WORK/master.m3u8") renditions"

ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
declare -A pid_of
for h in $(tr ',' ' ' <<<"$LADDER"); do
  for p in $(pgrep -P "$VIDI_PID" ffmpeg || true); do
    tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "scale=-2:$h " && pid_of[$h]=$p
  done
  [ -n "${pid_of[$h]:-}" ] || die "no ffmpeg for rung $h (log: $WORK/vidi/vidi.log)"
done
declare -A start
for h in "${!pid_of[@]}"; do start[$h]=$(ticks "${pid_of[$h]}"); done
pub0=$(ticks "$PUB")
sleep "$WINDOW"
pub1=$(ticks "$PUB")
pub_pct=$(awk -v a="$pub0" -v b="$pub1" -v hz="$hz" -v s="$WINDOW" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
# Keys without spaces: bench/run.sh reads them back (live_ladder_*).
result live_ladder_rungs "$LADDER"
result live_ladder_ref_core_pct "$pub_pct"
for h in $(tr ',' ' ' <<<"$LADDER"); do
  end=$(ticks "${pid_of[$h]}")
  pct=$(awk -v a="${start[$h]}" -v b="$end" -v hz="$hz" -v s="$WINDOW" 'BEGIN { printf "%.1f", (b - a) / hz / s * 100 }')
  rss=$(rss_field "${pid_of[$h]}" VmRSS)
  result "live_ladder_${h}p_core_pct" "$pct"
  result "live_ladder_${h}p_rss_mib" "$(kib_to_mib "$rss")"
  result "live_ladder_${h}p_ratio" "$(ratio "$pct" "$pub_pct")"
done
