#!/usr/bin/env bash
# Upload ingest benchmark.
#
# Uploads one file of random bytes (1 GiB by default) to POST /videos/{id}/source
#   (a) in a single multipart request without Content-Range, and
#   (b) in 50 MiB chunks, one multipart request per chunk with "Content-Range: part n/N",
# and compares the throughput with `dd bs=1M conv=fdatasync` copying the same file to the
# same disk in the same run. Also reports the server's peak RSS during each upload.
#
# Environment:
#   VIDI_BIN              server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_INGEST_BYTES    file size (default 1073741824)
#   BENCH_CHUNK_BYTES     chunk size (default 52428800)
#   BENCH_INGEST_RUNS     rounds of dd/single/chunked; the best of each is reported (default 3)
#   BENCH_UPLOAD_TIMEOUT  curl --max-time per request, seconds (default 600)
#   BENCH_RESULTS         file to append KEY=VALUE results to (set by run.sh)
#   BENCH_KEEP=1          keep bench/out/ingest (1 GiB files!) after the run
#
# Disk: needs about (2 + 3 * RUNS) * SIZE free under bench/out (11 GiB by default).
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init ingest
resolve_vidi_bin
command -v dd >/dev/null && command -v split >/dev/null || die "dd and split are needed"

SIZE=${BENCH_INGEST_BYTES:-1073741824}
CHUNK=${BENCH_CHUNK_BYTES:-52428800}
RUNS=${BENCH_INGEST_RUNS:-3}
UPLOAD_TIMEOUT=${BENCH_UPLOAD_TIMEOUT:-600}
MAX_REQUEST=2147483648
[ "$SIZE" -lt $((MAX_REQUEST - 1048576)) ] || MAX_REQUEST=$((SIZE + 1048576))

# ---- inputs (not timed) -----------------------------------------------------------------
src=$WORK/source.bin
log "writing $SIZE random bytes to $src"
head -c "$SIZE" /dev/urandom >"$src"
[ "$(stat -c %s "$src")" -eq "$SIZE" ] || die "short source file"
mkdir -p "$WORK/chunks"
split -b "$CHUNK" -a 4 -d "$src" "$WORK/chunks/part."
mapfile -t parts < <(find "$WORK/chunks" -type f -name 'part.*' | sort)
N=${#parts[@]}
log "split into $N chunks of $CHUNK bytes"
sync

start_vidi "$WORK/vidi" VIDI_MAX_REQUEST_BYTES="$MAX_REQUEST"
rss_poll_start "$VIDI_PID" "$WORK/rss-sampled.txt"
rss_idle=$(rss_field "$VIDI_PID" VmRSS)
hwm_ok=1
rss_reset "$VIDI_PID" || { hwm_ok=0; warn "cannot reset VmHWM (/proc/$VIDI_PID/clear_refs); using sampled VmRSS"; }

# upload FILE VIDEO_ID [CONTENT_RANGE]: sets UP_CODE; the body is in $WORK/resp.json.
# "Expect:" turns off curl's Expect: 100-continue, which no SDK client sends.
upload() {
  local args=(-sS --max-time "$UPLOAD_TIMEOUT" -o "$WORK/resp.json" -w '%{http_code}'
    -H "$AUTH_HEADER" -H 'Expect:')
  if [ -n "${3:-}" ]; then args+=(-H "Content-Range: $3"); fi
  UP_CODE=$(curl "${args[@]}" -F "file=@\"$1\";filename=x.mp4" "$VIDI_URL/videos/$2/source") || UP_CODE="curl-error"
  if ! kill -0 "$VIDI_PID" 2>/dev/null; then
    tail -n 30 "$WORK/vidi/vidi.log" >&2
    die "the server died during the upload, $(exit_note "$VIDI_PID") (log: $WORK/vidi/vidi.log)"
  fi
}

resp() { head -c 600 "$WORK/resp.json" 2>/dev/null; }

# check_complete_response WHAT: the completing request must answer 201 with the full Video.
check_complete_response() {
  case "$UP_CODE" in
    201) ;;
    2??) warn "$1: completing request answered $UP_CODE (contract: 201)" ;;
    *) die "$1: upload answered $UP_CODE: $(resp)" ;;
  esac
  grep -q '"title"' "$WORK/resp.json" || warn "$1: completing response is not a full Video: $(resp)"
}

# verify_uploaded VIDEO_ID WHAT: GET /videos/{id}/status must show the whole file.
verify_uploaded() {
  local body status filesize
  body=$(curl -sS --max-time 30 -H "$AUTH_HEADER" "$VIDI_URL/videos/$1/status") || die "$2: GET status failed"
  if command -v jq >/dev/null 2>&1; then
    status=$(jq -r '.ingest.status // empty' <<<"$body" 2>/dev/null || true)
    filesize=$(jq -r '.ingest.filesize // empty' <<<"$body" 2>/dev/null || true)
  else
    status=$(json_str status <<<"$body")
    filesize=$(json_num filesize <<<"$body")
  fi
  [ "$filesize" = "$SIZE" ] || die "$2: status reports filesize '$filesize', expected $SIZE: $body"
  [ "$status" = uploaded ] || warn "$2: ingest.status is '$status' after the upload (expected 'uploaded')"
}

# phase_begin / phase_end: per-upload peak RSS (kB) in PHASE_HWM.
phase_begin() { if [ $hwm_ok = 1 ]; then rss_reset "$VIDI_PID" || true; fi; }
phase_end() {
  if [ $hwm_ok = 1 ]; then PHASE_HWM=$(rss_field "$VIDI_PID" VmHWM); else PHASE_HWM=$(cat "$WORK/rss-sampled.txt" 2>/dev/null || echo 0); fi
}

best_dd=0 best_single=0 best_chunked=0 best_single_durable=0 best_chunked_durable=0
hwm_single=0 hwm_chunked=0
fmax() { awk -v a="$1" -v b="$2" 'BEGIN { print (b + 0 > a + 0) ? b : a }'; }

for r in $(seq "$RUNS"); do
  log "round $r/$RUNS"

  # -- reference: dd to the same disk, data flushed before dd exits --------------------
  # The copies are kept until the end: deleting 1 GiB right before a timed step hands that
  # step freshly freed blocks, which on some virtual disks are several times faster to write
  # than never-used ones (seen on the development VM: 0.6 s vs 3 s per GiB).
  sync
  t0=$(now)
  dd if="$src" of="$WORK/dd-$r.out" bs=1M conv=fdatasync status=none
  t1=$(now)
  v=$(mbps "$SIZE" "$(elapsed "$t0" "$t1")")
  log "  dd:                 $v MB/s"
  best_dd=$(fmax "$best_dd" "$v")

  # -- (a) one request ------------------------------------------------------------------
  id=$(create_video "bench ingest single $r")
  sync
  phase_begin
  t0=$(now)
  upload "$src" "$id"
  t1=$(now)
  phase_end
  sync
  t2=$(now)
  check_complete_response "single request"
  verify_uploaded "$id" "single request"
  v=$(mbps "$SIZE" "$(elapsed "$t0" "$t1")")
  vd=$(mbps "$SIZE" "$(elapsed "$t0" "$t2")")
  log "  vidi one request:   $v MB/s (incl. sync afterwards: $vd MB/s), peak RSS $(kib_to_mib "$PHASE_HWM") MiB"
  best_single=$(fmax "$best_single" "$v")
  best_single_durable=$(fmax "$best_single_durable" "$vd")
  hwm_single=$(fmax "$hwm_single" "$PHASE_HWM")

  # -- (b) chunks, sequential like the SDK clients ----------------------------------------
  id=$(create_video "bench ingest chunked $r")
  sync
  phase_begin
  t0=$(now)
  for i in $(seq "$N"); do
    upload "${parts[$((i - 1))]}" "$id" "part $i/$N"
    if [ "$i" -lt "$N" ]; then
      case "$UP_CODE" in 2??) ;; *) die "chunk $i/$N answered $UP_CODE: $(resp)" ;; esac
      if [ "$r" = 1 ] && ! grep -Eq '^[[:space:]]*\{[[:space:]]*"videoId"[[:space:]]*:[[:space:]]*"[^"]+"[[:space:]]*\}[[:space:]]*$' "$WORK/resp.json"; then
        warn "chunk $i/$N: intermediate response is not exactly {\"videoId\":...} (contract §4.4): $(resp)"
      fi
    fi
  done
  t1=$(now)
  phase_end
  sync
  t2=$(now)
  check_complete_response "chunked"
  verify_uploaded "$id" "chunked"
  v=$(mbps "$SIZE" "$(elapsed "$t0" "$t1")")
  vd=$(mbps "$SIZE" "$(elapsed "$t0" "$t2")")
  log "  vidi $N chunks:      $v MB/s (incl. sync afterwards: $vd MB/s), peak RSS $(kib_to_mib "$PHASE_HWM") MiB"
  best_chunked=$(fmax "$best_chunked" "$v")
  best_chunked_durable=$(fmax "$best_chunked_durable" "$vd")
  hwm_chunked=$(fmax "$hwm_chunked" "$PHASE_HWM")
done

log "server data dir after the run: $(du -sh "$WORK/vidi/data" | cut -f1) (for $((2 * RUNS)) uploads of $SIZE bytes)"
sampled=$(cat "$WORK/rss-sampled.txt" 2>/dev/null || echo 0)
peak=$(fmax "$hwm_single" "$hwm_chunked")
[ $hwm_ok = 1 ] || peak=$sampled

echo
echo "ingest: $SIZE bytes, best of $RUNS, MB = 10^6 bytes ($VIDI_BIN)"
result ingest_bytes "$SIZE"
result ingest_chunks "$N"
result ingest_runs "$RUNS"
result ingest_dd_mbps "$best_dd"
result ingest_single_mbps "$best_single"
result ingest_single_ratio "$(ratio "$best_single" "$best_dd")"
result ingest_chunked_mbps "$best_chunked"
result ingest_chunked_ratio "$(ratio "$best_chunked" "$best_dd")"
result ingest_single_durable_mbps "$best_single_durable"
result ingest_chunked_durable_mbps "$best_chunked_durable"
result ingest_rss_idle_mib "$(kib_to_mib "${rss_idle:-0}")"
result ingest_rss_single_mib "$(kib_to_mib "$hwm_single")"
result ingest_rss_chunked_mib "$(kib_to_mib "$hwm_chunked")"
result ingest_rss_peak_mib "$(kib_to_mib "$peak")"
result ingest_rss_method "$([ $hwm_ok = 1 ] && echo VmHWM || echo sampled-VmRSS)"
