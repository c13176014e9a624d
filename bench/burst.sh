#!/usr/bin/env bash
# A burst of uploads on the embedded default: N (4) videos of S (20) seconds of 1080p30 (lavfi
# testsrc2 + sine, cached in bench/out/cache, not timed) uploaded at the same moment, one request
# each, to one `vidi serve` with the default configuration (SQLite, local folder, default
# workers). Prints how long the uploads took, then for each video the time from the moment every
# upload had answered until its status says `playable`, and until every quality is `encoded`;
# then the whole burst's ladder time (until the last video is encoded). Polled every 100 ms.
#
# The question it answers (issue 8, "playable first"): does every video of a burst become
# playable within seconds, or does each wait behind the ladders of the videos before it?
#
# Environment:
#   VIDI_BIN            server binary (default target/release/vidi, else target/debug/vidi;
#                       ffmpeg does the work, so a debug build changes the figures little)
#   BENCH_BURST_N       videos in the burst (default 4)
#   BENCH_BURST_SECONDS length of each, seconds (default 20)
#   BENCH_KEEP=1        keep bench/out/burst after the run
#   Any VIDI_* variable exported here reaches the server (e.g. VIDI_WORKERS=2).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init burst
resolve_vidi_bin
command -v ffmpeg >/dev/null 2>&1 || die "missing tool: ffmpeg"

N=${BENCH_BURST_N:-4}
SECS=${BENCH_BURST_SECONDS:-20}
src=$(bench_source "$SECS" 30)
start_vidi "$WORK/vidi" VIDI_LOG=info
ids=()
for i in $(seq "$N"); do
  ids+=("$(create_video "burst $i")")
done

log "uploading $N × ${SECS} s of 1080p at once"
t0=$EPOCHREALTIME
uploads=()
for i in "${!ids[@]}"; do
  curl -sS --max-time 600 -o "$WORK/upload-$i.json" -w '%{http_code}\n' -H "$AUTH_HEADER" -H 'Expect:' \
    -F "file=@\"$src\";filename=source.mp4" "$VIDI_URL/videos/${ids[$i]}/source" >"$WORK/upload-$i.code" &
  uploads+=($!)
done
# The uploads only: a bare `wait` would wait for the server too.
wait "${uploads[@]}"
for i in "${!ids[@]}"; do
  [ "$(cat "$WORK/upload-$i.code")" = 201 ] || die "upload $i answered $(cat "$WORK/upload-$i.code")"
done
t1=$EPOCHREALTIME
t_up=$(elapsed "$t0" "$t1")
log "  all uploads answered after $t_up s"

# Times below count from the moment every upload has answered: what follows is scheduling and
# encoding, not the transfer.
declare -A playable=() encoded=()
deadline=$((SECONDS + 1200))
while [ ${#encoded[@]} -lt "$N" ]; do
  for i in "${!ids[@]}"; do
    [ -n "${encoded[$i]:-}" ] && continue
    st=$(curl -s --max-time 5 -H "$AUTH_HEADER" "$VIDI_URL/videos/${ids[$i]}/status" || true)
    grep -q '"status":"failed"' <<<"$st" && die "video $i failed: $st"
    if [ -z "${playable[$i]:-}" ] && grep -q '"playable":true' <<<"$st"; then
      playable[$i]=$(elapsed "$t1" "$EPOCHREALTIME")
    fi
    # Every listed quality encoded (the MP4 included), none waiting or encoding.
    if grep -q '"qualities":\[{' <<<"$st" && ! grep -qE '"status":"(waiting|encoding)"' <<<"$st"; then
      encoded[$i]=$(elapsed "$t1" "$EPOCHREALTIME")
    fi
  done
  kill -0 "$VIDI_PID" 2>/dev/null || die "the server died (log: $WORK/vidi/vidi.log)"
  [ $SECONDS -lt $deadline ] || die "not encoded within 1200 s"
  sleep 0.1
done

result "uploads (all answered after, s)" "$t_up"
echo "burst of $N × ${SECS} s 1080p30, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(basename "$(dirname "$(dirname "$VIDI_BIN")")")/$(basename "$(dirname "$VIDI_BIN")") build"
worst=0
for i in "${!ids[@]}"; do
  result "video $((i + 1)) playable after (s)" "${playable[$i]}"
  result "video $((i + 1)) all encoded after (s)" "${encoded[$i]}"
  worst=$(awk -v a="$worst" -v b="${encoded[$i]}" 'BEGIN { print (b > a) ? b : a }')
done
result "burst: every ladder encoded after (s)" "$worst"
