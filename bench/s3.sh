#!/usr/bin/env bash
# S3 delivery benchmark: Vidi proxying an HLS segment from S3, against a client following a
# presigned redirect to the S3 server. Everything runs on 127.0.0.1, in the same run.
#
# Setup (not timed): a throwaway SeaweedFS (`weed mini` from .venv, the S3 server of the tests,
# bucket `videos`, the test credentials of scripts/s3.sh) with every port chosen free, so that it
# never meets the test suite's instance; `vidi serve` with VIDI_STORAGE_URL=s3://videos/<prefix>;
# one video made from a short 1080p30 source (BENCH_S3_SECONDS, default 20 s; the same cached
# testsrc2 source as encode.sh), waited for until its whole ladder and MP4 are encoded. The
# 1080p segment closest to 2 MB (about 1.3 MB at 5 Mbit/s and 2 s) is the benchmark object.
# When the binary has the segment memory cache (segment_cache_bytes), a second `vidi serve` on
# the same database and bucket, without worker and with VIDI_SEGMENT_CACHE_BYTES=0, gives the
# proxy's uncached path too: the sides are then "proxy" (cache on, hot segments from memory) and
# "nocache" (every request reads S3, as for a catalogue much larger than the cache).
# Presigned URLs are made here with SigV4 query signing (Python standard library, no boto3),
# exactly as an S3 SDK would, and SeaweedFS checks the signature on every request.
#
# 1. Cold time to first byte: the first request ever for a segment (other 1080p segments, never
#    requested before, dealt in turn to each proxy side and to a presigned URL). "Cold" for the
#    HTTP servers only: the bytes were written a moment ago and are in the OS page cache.
# 2. One request at a time (curl, new connection each, BENCH_S3_SAMPLES rounds, default 20,
#    interleaved): time_total of each side (below), and of "302 stand-in + presigned GET" summed
#    per round. Medians.
# 3. Throughput (wrk -t2 -c64 -d${BENCH_DURATION}s --latency, after a 2 s warm-up of each), in
#    BENCH_S3_ROUNDS rounds (default 2), each round in this order:
#    proxy [nocache]  GET /vod/{id}/hls/1080p/seg_N.ts on Vidi (DB lookup; then the cache, or
#               S3 HEAD + GET and streaming);
#    presigned  the same object from SeaweedFS through a presigned GET URL (redirect part a);
#    302 stand-ins (redirect part b; Vidi has no redirect mode, so its cost is bracketed):
#      master  GET /vod/{id}/hls/manifest.m3u8: DB lookup + one S3 GET of a small object and a
#              tiny response; a redirect handler would do less (no S3 request): pessimistic;
#      lookup  GET /vod/vi<unknown>/hls/manifest.m3u8: DB lookup and a tiny 404, which is what a
#              redirect handler does minus signing a URL (a few microseconds of HMAC): optimistic.
#    CPU seconds used by the vidi and weed processes during each run (/proc/PID/stat) are
#    divided by the requests served: server CPU ms per request.
#    Combined redirect rate: every server here shares the same 2 cores, so one redirected fetch
#    costs the machine 1/b seconds (the 302) plus 1/a seconds (the S3 GET): 1 / (1/a + 1/b)
#    fetches per second, compared with the proxy's rate (which also pays for both processes).
#
# Environment:
#   VIDI_BIN              server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_S3_SECONDS      length of the source, seconds (default 20: 13 segments per rendition)
#   BENCH_DURATION        wrk duration per measurement, seconds (default 10)
#   BENCH_S3_ROUNDS       wrk rounds (default 2)
#   BENCH_S3_SAMPLES      single-request samples (default 20)
#   BENCH_S3_COLD         cold segments per side (default 3)
#   BENCH_S3_PORT         SeaweedFS S3 port (default 8433 if free, else a free port; never 8333)
#   BENCH_WEED            the SeaweedFS binary (default .venv/bin/weed, see scripts/setup.sh)
#   BENCH_IDLE_LOAD, BENCH_WAIT_FILE, BENCH_IDLE_TIMEOUT: wait for a quiet machine before each
#                         timed step (see wait_idle in bench/lib.sh; off unless set)
#   BENCH_RESULTS         file to append KEY=VALUE results to (set by run.sh)
#   BENCH_KEEP=1          keep bench/out/s3 after the run
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init s3
resolve_vidi_bin
for tool in ffmpeg wrk python3 cmp getconf; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (apt-get install ffmpeg wrk python3, or scripts/setup.sh)"
done
WEED=${BENCH_WEED:-$ROOT/.venv/bin/weed}
[ -x "$WEED" ] || die "no SeaweedFS binary at $WEED (scripts/setup.sh installs it into .venv; or set BENCH_WEED)"

SECS=${BENCH_S3_SECONDS:-20}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_S3_ROUNDS:-2}
SAMPLES=${BENCH_S3_SAMPLES:-20}
COLD=${BENCH_S3_COLD:-3}
FPS=30
TARGET_SEGMENT=2000000
HZ=$(getconf CLK_TCK)

# Only the credentials below reach the servers and the signer.
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
S3_KEY=vidi-test-key
S3_SECRET=vidi-test-secret
S3_REGION=us-east-1
BUCKET=videos
PREFIX=bench-$(date +%s)

# ---- helpers ------------------------------------------------------------------------------
# median < numbers -> the median (average of the middle two for an even count)
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) printf "%.6f", v[(NR + 1) / 2]; else printf "%.6f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ms() { awk -v s="$1" 'BEGIN { if (s == "") print "?"; else printf "%.2f", s * 1000 }'; }
# cpu_ticks PID: user + system clock ticks of a process so far (all its threads)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# combined A B: 1 / (1/A + 1/B)
combined() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0 || b + 0 == 0) print ""; else printf "%.0f", 1 / (1 / a + 1 / b) }'; }
mean() { awk '{ s += $1; n++ } END { if (n) printf "%.0f", s / n }'; }
mean2() { awk '{ s += $1; n++ } END { if (n) printf "%.3f", s / n }'; }
# header NAME FILE: the value of a response header (NAME in lower case) in a curl -D dump
header() { awk -v h="$1" '{ i = index($0, ":"); if (i && tolower(substr($0, 1, i - 1)) == h) { v = substr($0, i + 1); sub(/^ +/, "", v); sub(/\r$/, "", v); print v } }' "$2"; }
# timed_get URL -> "HTTP_CODE TTFB TOTAL" (seconds), body discarded, new connection
timed_get() { curl -s -o /dev/null --max-time 30 -w '%{http_code} %{time_starttransfer} %{time_total}\n' "$1" || true; }

# The SigV4 signer and lister (query-string signing, UNSIGNED-PAYLOAD, path-style URLs).
SIGNER=$WORK/s3sign.py
cat >"$SIGNER" <<'PY'
"""s3sign.py url KEY [EXPIRES] | list PREFIX  (env: S3_ENDPOINT S3_REGION S3_BUCKET AWS_*)"""
import datetime, hashlib, hmac, os, sys, urllib.parse, urllib.request
import xml.etree.ElementTree as ET

EP, REGION, BUCKET = os.environ["S3_ENDPOINT"], os.environ["S3_REGION"], os.environ["S3_BUCKET"]
AK, SK = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]

def enc(s):
    return urllib.parse.quote(s, safe="-_.~")

def presign(key, expires=3600, extra=None, method="GET"):
    u = urllib.parse.urlsplit(EP)
    amz = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz[:8]}/{REGION}/s3/aws4_request"
    uri = urllib.parse.quote("/" + BUCKET + ("/" + key if key else ""), safe="/-_.~")
    q = dict(extra or {})
    q.update({"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Credential": f"{AK}/{scope}",
              "X-Amz-Date": amz, "X-Amz-Expires": str(expires), "X-Amz-SignedHeaders": "host"})
    cq = "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(q.items()))
    creq = "\n".join([method, uri, cq, f"host:{u.netloc}\n", "host", "UNSIGNED-PAYLOAD"])
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(creq.encode()).hexdigest()])
    k = ("AWS4" + SK).encode()
    for part in (amz[:8], REGION, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return f"{u.scheme}://{u.netloc}{uri}?{cq}&X-Amz-Signature={sig}"

def listing(prefix):
    token = None
    while True:
        q = {"list-type": "2", "prefix": prefix}
        if token:
            q["continuation-token"] = token
        with urllib.request.urlopen(presign("", 300, q), timeout=10) as r:
            root = ET.fromstring(r.read())
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for c in root.iter(ns + "Contents"):
            print(c.find(ns + "Size").text, c.find(ns + "Key").text)
        token = root.findtext(ns + "NextContinuationToken")
        if root.findtext(ns + "IsTruncated") != "true" or not token:
            break

if sys.argv[1] == "url":
    print(presign(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 3600))
elif sys.argv[1] == "list":
    listing(sys.argv[2])
else:
    sys.exit("usage: s3sign.py url KEY [EXPIRES] | list PREFIX")
PY
signer() { S3_ENDPOINT=$S3_URL S3_REGION=$S3_REGION S3_BUCKET=$BUCKET AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET python3 "$SIGNER" "$@"; }

# ---- source (not timed; shared with encode.sh's cache) -------------------------------------
src=$(bench_source "$SECS" "$FPS")
SRC_BYTES=$(stat -c %s "$src")

# ---- SeaweedFS on free ports ---------------------------------------------------------------
# Not scripts/s3.sh: that one moves only the S3 port (VIDI_TEST_S3_PORT) and leaves the master
# (9333), filer (8888), volume (9340) and admin (23646) ports and their gRPC ports (+10000) at
# their defaults, which `weed mini` shifts only if they are taken when it checks: two instances
# starting at once (the tests' and this one) can race. Same bucket and credentials.
declare -A TAKEN=()
pick_port() { # -> a free port not handed out before in this run
  local p
  while :; do
    p=$(free_port)
    if [ -z "${TAKEN[$p]:-}" ]; then TAKEN[$p]=1; echo "$p"; return; fi
  done
}
port_free() { ! ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | grep -qx "$1"; }
S3_PORT=${BENCH_S3_PORT:-8433}
[ "$S3_PORT" != 8333 ] || die "BENCH_S3_PORT=8333 is the test suite's port; pick another"
if ! port_free "$S3_PORT"; then
  [ -z "${BENCH_S3_PORT:-}" ] || die "BENCH_S3_PORT=$S3_PORT is taken"
  S3_PORT=$(free_port)
fi
TAKEN[$S3_PORT]=1
S3_URL=http://127.0.0.1:$S3_PORT
WD=$WORK/weed
mkdir -p "$WD/data"
cat >"$WD/s3.json" <<JSON
{"identities":[{"name":"vidi-test","credentials":[{"accessKey":"$S3_KEY","secretKey":"$S3_SECRET"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
"$WEED" mini -dir="$WD/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
  -s3.port="$S3_PORT" -s3.port.grpc="$(pick_port)" -s3.port.iceberg=0 -s3.port.lance=0 \
  -master.port="$(pick_port)" -master.port.grpc="$(pick_port)" -master.telemetry=false \
  -filer.port="$(pick_port)" -filer.port.grpc="$(pick_port)" \
  -volume.port="$(pick_port)" -volume.port.grpc="$(pick_port)" \
  -admin.port="$(pick_port)" -admin.port.grpc="$(pick_port)" -admin.ui=false -webdav=false \
  -filer.localSocket="$WD/filer.sock" -s3.localSocket="$WD/s3.sock" \
  -s3.config="$WD/s3.json" -bucket="$BUCKET" >"$WD/weed.log" 2>&1 &
WEED_PID=$!
register_pid "$WEED_PID"
wait_http "$S3_URL/" "$WEED_PID" "$WD/weed.log" 60
# The bucket is created asynchronously after start: wait until a signed listing works.
deadline=$((SECONDS + 30))
until signer list "$PREFIX/" >/dev/null 2>&1; do
  kill -0 "$WEED_PID" 2>/dev/null || die "SeaweedFS exited, $(exit_note "$WEED_PID") (log: $WD/weed.log)"
  [ $SECONDS -lt $deadline ] || { tail -n 20 "$WD/weed.log" >&2; die "bucket $BUCKET not listable within 30 s"; }
  sleep 0.3
done
log "SeaweedFS pid $WEED_PID, S3 on $S3_URL ($("$WEED" version 2>/dev/null | head -n1))"

# ---- vidi on S3, one encoded video ---------------------------------------------------------
S3_ENV=(VIDI_STORAGE_URL="s3://$BUCKET/$PREFIX" VIDI_S3_ENDPOINT="$S3_URL" VIDI_S3_REGION="$S3_REGION"
  AWS_ACCESS_KEY_ID="$S3_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET")
start_vidi "$WORK/vidi" "${S3_ENV[@]}" VIDI_MAX_REQUEST_BYTES=$((SRC_BYTES + 16777216))
vlog=$WORK/vidi/vidi.log
MAIN_PID=$VIDI_PID
MAIN_URL=$VIDI_URL
VIDI_PIDS=("$VIDI_PID")
id=$(create_video "bench s3")
log "uploading the ${SECS}s source ($SRC_BYTES bytes) to video $id, then waiting for the ladder and the MP4"
code=$(curl -sS --max-time 600 -o "$WORK/upload.json" -w '%{http_code}' -H "$AUTH_HEADER" -H 'Expect:' \
  -F "file=@\"$src\";filename=source.mp4" "$VIDI_URL/videos/$id/source") || code=curl-error
[ "$code" = 201 ] || die "upload answered $code: $(head -c 500 "$WORK/upload.json")"
t0=$SECONDS
while :; do
  st=$(curl -s --max-time 5 -H "$AUTH_HEADER" "$VIDI_URL/videos/$id/status" || true)
  if grep -q '"status":"failed"' <<<"$st"; then tail -n 20 "$vlog" >&2; die "encoding failed: $st"; fi
  kill -0 "$VIDI_PID" 2>/dev/null || die "vidi died while encoding, $(exit_note "$VIDI_PID") (log: $vlog)"
  n=$(grep -o '"type":"[a-z0-9]*","quality":"[^"]*","status":"[^"]*"' <<<"$st" | grep -c . || true)
  enc=$(grep -o '"type":"[a-z0-9]*","quality":"[^"]*","status":"encoded"' <<<"$st" | grep -c . || true)
  if [ "$n" -gt 0 ] && [ "$n" = "$enc" ]; then break; fi
  [ $((SECONDS - t0)) -lt 600 ] || die "not encoded within 600 s: $st"
  sleep 0.5
done
log "  encoded ($n assets) after $((SECONDS - t0)) s"

# The proxy sides. With a binary that has the segment memory cache (segment_cache_bytes, on by
# default), "proxy" answers hot segments from memory and "nocache" is a second server on the same
# database and bucket (no worker) with VIDI_SEGMENT_CACHE_BYTES=0: every request reads S3, as
# with a catalogue much larger than the cache. Older binaries have only "proxy", which reads S3.
PROXIES=(proxy)
if grep -qa segment_cache_bytes "$VIDI_BIN"; then
  start_vidi "$WORK/vidi-nocache" "${S3_ENV[@]}" VIDI_DATA_DIR="$WORK/vidi/data" VIDI_WORKERS=0 VIDI_SEGMENT_CACHE_BYTES=0
  NOCACHE_URL=$VIDI_URL
  VIDI_PIDS+=("$VIDI_PID")
  VIDI_PID=$MAIN_PID
  VIDI_URL=$MAIN_URL
  PROXIES+=(nocache)
  CACHE_NOTE="segment cache on (default) / off"
else
  CACHE_NOTE="this binary has no segment cache"
fi
declare -A LABEL=([proxy]="proxy" [nocache]="proxy, cache off" [presigned]="presigned GET" [master]="302 stand-in: master playlist" [lookup]="302 stand-in: unknown video")
[ ${#PROXIES[@]} = 1 ] || LABEL[proxy]="proxy, cache on"
seg_url() { # SIDE OBJECT-KEY -> the URL a client fetches
  case $1 in
    proxy) echo "$MAIN_URL/vod/$id/hls/1080p/${2##*/}" ;;
    nocache) echo "$NOCACHE_URL/vod/$id/hls/1080p/${2##*/}" ;;
    presigned) signer url "$2" 3600 ;;
  esac
}

# The stored objects, listed from S3 (not through Vidi, so that no segment is touched).
s3dir=$PREFIX/videos/$id/hls/1080p
signer list "$s3dir/" | awk '$2 ~ /\.ts$/' >"$WORK/segments.txt"
[ -s "$WORK/segments.txt" ] || die "no 1080p segment under s3://$BUCKET/$s3dir/"
read -r SEG_BYTES seg_key < <(awk -v t="$TARGET_SEGMENT" '{ d = $1 - t; if (d < 0) d = -d; if (best == "" || d < bd) { bd = d; best = $0 } } END { print best }' "$WORK/segments.txt")
seg=${seg_key##*/}
COLD_SIDES=("${PROXIES[@]}" presigned)
# Cold candidates: the other segments, largest first, dealt to the sides in turn.
mapfile -t cold < <(awk -v k="$seg_key" '$2 != k' "$WORK/segments.txt" | sort -k1,1nr | head -n $((${#COLD_SIDES[@]} * COLD)) | awk '{ print $2 }')
log "segment $seg: $SEG_BYTES bytes ($(wc -l <"$WORK/segments.txt") 1080p segments, ${#cold[@]} used for the cold test); $CACHE_NOTE"

declare -A URL
for s in "${PROXIES[@]}" presigned; do URL[$s]=$(seg_url "$s" "$seg_key"); done
URL[master]=$MAIN_URL/vod/$id/hls/manifest.m3u8
URL[lookup]=$MAIN_URL/vod/vi00000000000000000000000/hls/manifest.m3u8
SIDES=("${PROXIES[@]}" presigned master lookup)
declare -A CODE=([master]=200 [lookup]=404)

# ---- 1. cold time to first byte -------------------------------------------------------------
wait_idle "the cold requests"
for s in "${COLD_SIDES[@]}"; do : >"$WORK/cold-$s.txt"; done
for i in "${!cold[@]}"; do
  k=${cold[$i]}
  s=${COLD_SIDES[$((i % ${#COLD_SIDES[@]}))]}
  u=$(seg_url "$s" "$k") # presigned URLs are signed before the clock starts
  read -r c ttfb tot < <(timed_get "$u")
  [ "$c" = 200 ] || die "cold $s GET of $k answered $c"
  echo "$ttfb $tot ${k##*/}" >>"$WORK/cold-$s.txt"
  log "  cold ${LABEL[$s]} ${k##*/}: first byte $(ms "$ttfb") ms, total $(ms "$tot") ms"
done
declare -A COLD_TTFB
for s in "${COLD_SIDES[@]}"; do COLD_TTFB[$s]=$(awk '{ print $1 }' "$WORK/cold-$s.txt" | median); done

# ---- checks: same bytes, headers -------------------------------------------------------------
for s in "${PROXIES[@]}" presigned; do
  curl -sS --max-time 10 -D "$WORK/$s-headers.txt" -o "$WORK/seg-$s.ts" "${URL[$s]}"
  [ "$(stat -c %s "$WORK/seg-$s.ts")" = "$SEG_BYTES" ] || die "$s served $(stat -c %s "$WORK/seg-$s.ts") bytes, S3 lists $SEG_BYTES"
  cmp -s "$WORK/seg-proxy.ts" "$WORK/seg-$s.ts" || die "$s and proxy do not serve the same bytes"
done
proxy_ct=$(header content-type "$WORK/proxy-headers.txt")
pres_ct=$(header content-type "$WORK/presigned-headers.txt")
log "  same $SEG_BYTES bytes from ${PROXIES[*]} presigned; Content-Type: vidi '$proxy_ct', S3 '$pres_ct'"
log "  Cache-Control: vidi '$(header cache-control "$WORK/proxy-headers.txt")', S3 '$(header cache-control "$WORK/presigned-headers.txt")'"
# CORS, as a browser player on another origin would ask (hls.js fetches with XHR/fetch).
curl -s --max-time 10 -o /dev/null -D "$WORK/proxy-cors.txt" -H 'Origin: http://player.example' "${URL[proxy]}"
curl -s --max-time 10 -o /dev/null -D "$WORK/presigned-cors.txt" -H 'Origin: http://player.example' "${URL[presigned]}"
proxy_acao=$(header access-control-allow-origin "$WORK/proxy-cors.txt")
pres_acao=$(header access-control-allow-origin "$WORK/presigned-cors.txt")
log "  Access-Control-Allow-Origin for Origin http://player.example: vidi '${proxy_acao:-none}', S3 '${pres_acao:-none}'"
for s in master lookup; do
  c=$(timed_get "${URL[$s]}" | cut -d' ' -f1)
  [ "$c" = "${CODE[$s]}" ] || die "${LABEL[$s]} answered $c, expected ${CODE[$s]}"
done

# ---- 2. one request at a time ----------------------------------------------------------------
wait_idle "the single-request latencies"
log "single requests: $SAMPLES rounds of ${SIDES[*]}, interleaved"
for s in "${SIDES[@]}"; do : >"$WORK/latency-$s.txt"; done
: >"$WORK/latency-redirect.txt"
: >"$WORK/latency-redirect-lo.txt"
for _ in $(seq "$SAMPLES"); do
  declare -A T=()
  for s in "${SIDES[@]}"; do
    read -r c _ t < <(timed_get "${URL[$s]}")
    [ "$c" = "${CODE[$s]:-200}" ] || die "single request ${LABEL[$s]} answered $c"
    echo "$t" >>"$WORK/latency-$s.txt"
    T[$s]=$t
  done
  awk -v a="${T[master]}" -v b="${T[presigned]}" 'BEGIN { printf "%.6f\n", a + b }' >>"$WORK/latency-redirect.txt"
  awk -v a="${T[lookup]}" -v b="${T[presigned]}" 'BEGIN { printf "%.6f\n", a + b }' >>"$WORK/latency-redirect-lo.txt"
done
declare -A LAT
for s in "${SIDES[@]}" redirect redirect-lo; do LAT[$s]=$(median <"$WORK/latency-$s.txt"); done
log "  medians (ms): $(for s in "${SIDES[@]}"; do printf '%s %s; ' "$s" "$(ms "${LAT[$s]}")"; done)302 + presigned $(ms "${LAT[redirect]}")"

# ---- 3. throughput ---------------------------------------------------------------------------
vidi_ticks() { local p n=0; for p in "${VIDI_PIDS[@]}"; do n=$((n + $(cpu_ticks "$p"))); done; echo "$n"; }
wait_idle "the throughput rounds"
log "throughput: 2 s warm-up each, then $ROUNDS rounds of wrk -t2 -c64 -d${DURATION}s: ${SIDES[*]}"
for s in "${SIDES[@]}"; do run_wrk "warm-$s" -t2 -c64 -d2s "${URL[$s]}"; done
declare -A RPS CPUV CPUW
for r in $(seq "$ROUNDS"); do
  wait_idle "throughput round $r"
  for s in "${SIDES[@]}"; do
    v0=$(vidi_ticks)
    w0=$(cpu_ticks "$WEED_PID")
    run_wrk "$s-$r" --latency -t2 -c64 -d"${DURATION}s" "${URL[$s]}"
    v1=$(vidi_ticks)
    w1=$(cpu_ticks "$WEED_PID")
    for p in "${VIDI_PIDS[@]}" "$WEED_PID"; do
      kill -0 "$p" 2>/dev/null || die "server pid $p died during wrk ($s-$r), $(exit_note "$p")"
    done
    [ "$s" = lookup ] || check_wrk "$s-$r" # the lookup side answers 404 by design
    reqs=$(awk '/requests in/ { print $1 }' "$WORK/wrk-$s-$r.txt")
    RPS[$s-$r]=$(wrk_rps "$s-$r")
    CPUV[$s-$r]=$(awk -v d=$((v1 - v0)) -v n="$reqs" -v hz="$HZ" 'BEGIN { printf "%.3f", d / hz * 1000 / n }')
    CPUW[$s-$r]=$(awk -v d=$((w1 - w0)) -v n="$reqs" -v hz="$HZ" 'BEGIN { printf "%.3f", d / hz * 1000 / n }')
    log "  round $r ${LABEL[$s]}: ${RPS[$s-$r]} req/s, p50 $(wrk_pct "$s-$r" 50) ms, p99 $(wrk_pct "$s-$r" 99) ms; CPU per request: vidi ${CPUV[$s-$r]} ms, weed ${CPUW[$s-$r]} ms"
  done
  comb=$(combined "${RPS[presigned-$r]}" "${RPS[master-$r]}")
  log "  round $r: redirect (presigned + master) $comb req/s; $(for p in "${PROXIES[@]}"; do printf '%s %s req/s (redirect/%s %s); ' "$p" "${RPS[$p-$r]}" "$p" "$(ratio "$comb" "${RPS[$p-$r]}")"; done)"
done
avg() { for r in $(seq "$ROUNDS"); do echo "${RPS[$1-$r]}"; done | mean; }
avg_cpu() { local -n arr=$1; for r in $(seq "$ROUNDS"); do echo "${arr[$2-$r]}"; done | mean2; }
rounds() { local out="" r; for r in $(seq "$ROUNDS"); do out+="${out:+ / }${RPS[$1-$r]}"; done; echo "$out"; }
declare -A AVG
for s in "${SIDES[@]}"; do AVG[$s]=$(avg "$s"); done
comb=$(combined "${AVG[presigned]}" "${AVG[master]}")
comb_lo=$(combined "${AVG[presigned]}" "${AVG[lookup]}")

for p in "${VIDI_PIDS[@]}"; do stop_pid "$p"; done
stop_pid "$WEED_PID"

# ---- report ----------------------------------------------------------------------------------
segmb=$(awk -v b="$SEG_BYTES" 'BEGIN { printf "%.2f", b / 1e6 }')
echo
echo "s3: ${segmb} MB 1080p segment on SeaweedFS, wrk -t2 -c64 -d${DURATION}s × $ROUNDS rounds; $CACHE_NOTE ($VIDI_BIN)"
result s3_seg_bytes "$SEG_BYTES"
result s3_rounds "$ROUNDS"
result s3_samples "$SAMPLES"
result s3_cold_samples "$COLD"
result s3_sides "${SIDES[*]}"
for s in "${SIDES[@]}"; do
  result "s3_${s}_rps" "${AVG[$s]}"
  result "s3_${s}_rps_rounds" "$(rounds "$s")"
done
result s3_redirect_rps "$comb"
result s3_redirect_rps_optimistic "$comb_lo"
result s3_presigned_mbps "$(awk -v r="${AVG[presigned]}" -v b="$SEG_BYTES" 'BEGIN { printf "%.0f", r * b / 1e6 }')"
for p in "${PROXIES[@]}"; do
  sfx=${p/#proxy/}
  sfx=${sfx:+_$sfx}
  result "s3_${p}_mbps" "$(awk -v r="${AVG[$p]}" -v b="$SEG_BYTES" 'BEGIN { printf "%.0f", r * b / 1e6 }')"
  result "s3_presigned_ratio$sfx" "$(ratio "${AVG[presigned]}" "${AVG[$p]}")"
  result "s3_redirect_ratio$sfx" "$(ratio "$comb" "${AVG[$p]}")"
  result "s3_redirect_ratio_optimistic$sfx" "$(ratio "$comb_lo" "${AVG[$p]}")"
done
declare -A CPU
for s in "${SIDES[@]}"; do
  cv=$(avg_cpu CPUV "$s")
  cw=$(avg_cpu CPUW "$s")
  CPU[$s]=$(awk -v a="$cv" -v b="$cw" 'BEGIN { printf "%.3f", a + b }')
  result "s3_cpu_ms_$s" "vidi $cv + weed $cw = ${CPU[$s]}"
done
# Server CPU per fetched segment, proxy over redirect (wrk's own CPU left out): > 1 = the
# redirect needs less server CPU per segment.
red_cpu=$(awk -v a="${CPU[presigned]}" -v b="${CPU[master]}" 'BEGIN { print a + b }')
red_cpu_lo=$(awk -v a="${CPU[presigned]}" -v b="${CPU[lookup]}" 'BEGIN { print a + b }')
for p in "${PROXIES[@]}"; do
  sfx=${p/#proxy/}
  sfx=${sfx:+_$sfx}
  result "s3_cpu_ratio$sfx" "$(ratio "${CPU[$p]}" "$red_cpu")"
  result "s3_cpu_ratio_optimistic$sfx" "$(ratio "${CPU[$p]}" "$red_cpu_lo")"
done
result s3_errors "$(for r in $(seq "$ROUNDS"); do for s in "${PROXIES[@]}" presigned master; do wrk_errors "$s-$r"; done; done | awk '{ n += $1 } END { print n + 0 }')"
for s in "${SIDES[@]}" redirect; do result "s3_latency_${s}_ms" "$(ms "${LAT[$s]}")"; done
result s3_latency_redirect_optimistic_ms "$(ms "${LAT[redirect-lo]}")"
for p in "${PROXIES[@]}"; do
  sfx=${p/#proxy/}
  result "s3_latency_ratio${sfx:+_$sfx}" "$(ratio "${LAT[redirect]}" "${LAT[$p]}")"
done
cold_redirect=$(awk -v a="${LAT[master]}" -v b="${COLD_TTFB[presigned]}" 'BEGIN { printf "%.6f", a + b }')
for s in "${COLD_SIDES[@]}"; do result "s3_cold_ttfb_${s}_ms" "$(ms "${COLD_TTFB[$s]}")"; done
result s3_cold_ttfb_redirect_ms "$(ms "$cold_redirect")"
for p in "${PROXIES[@]}"; do
  sfx=${p/#proxy/}
  result "s3_cold_ttfb_ratio${sfx:+_$sfx}" "$(ratio "$cold_redirect" "${COLD_TTFB[$p]}")"
done
result s3_content_type "vidi $proxy_ct; s3 ${pres_ct:-none}"
result s3_cors "vidi ${proxy_acao:-none}; s3 ${pres_acao:-none}"

echo
for p in "${PROXIES[@]}"; do
  echo "redirect/${LABEL[$p]}: throughput $(ratio "$comb" "${AVG[$p]}") (optimistic $(ratio "$comb_lo" "${AVG[$p]}")), presigned GET alone $(ratio "${AVG[presigned]}" "${AVG[$p]}"),"
  echo "  server CPU per segment $(ratio "$red_cpu" "${CPU[$p]}"); single-request latency $(ratio "${LAT[redirect]}" "${LAT[$p]}"), cold first byte $(ratio "$cold_redirect" "${COLD_TTFB[$p]}")"
done
echo "  (throughput: higher = redirect better; CPU, latency, first byte: lower = redirect better)"
# The choice weighs these figures against what a redirect costs outside performance (see
# docs/performance.md, "S3 delivery: proxy or presigned redirect").
echo "recommendation: keep the proxy."
for p in "${PROXIES[@]}"; do
  echo "  ${LABEL[$p]}: a redirect would serve $(ratio "$comb" "${AVG[$p]}")× its segments per second (optimistic $(ratio "$comb_lo" "${AVG[$p]}")×; 1.0 = same)."
done
echo "  A redirect adds a round trip per segment, exposes the storage host (players must reach it, and it must send"
echo "  CORS headers and the right Content-Type: S3 here says '${pres_ct:-none}'), and keeps a private video"
echo "  readable for the presigned URL's lifetime; the proxy keeps one origin and checks every request."
