#!/usr/bin/env bash
# Analytics collector benchmark (issue 22), on SQLite and on PostgreSQL, one node each.
#
# 1. Capacity: BENCH_COLLECT_SESSIONS viewing sessions are minted through POST /collect/sessions
#    (spread over 4 public videos, with a browser User-Agent, a referrer and a metadata pair),
#    then wrk (bench/collect.lua) posts batches of BENCH_COLLECT_BATCH events to
#    POST /collect/sessions/{ps}/events from BENCH_COLLECT_CONNS connections for BENCH_DURATION
#    seconds, each request to the next session in turn, every event new (no duplicate the
#    database would skip). Reports accepted events/s and the batch requests' p50/p99 latency,
#    then checks the database holds the events the 204s acknowledged (and at most the batches
#    in flight when each wrk run stopped more).
# 2. Alongside: uploads (BENCH_COLLECT_UPLOADERS loops of POST /videos + a whole-file upload
#    of a small MP4) and GET /videos/{id} (wrk -t1 -c4) run together for BENCH_DURATION
#    seconds, first alone (the reference), then beside the collector held at a fixed offered
#    load of BENCH_COLLECT_RATE events/s: their throughput and latency in both, and the ratio;
#    BENCH_COLLECT_ROUNDS rounds of the pair, the medians reported.
#
# The per-address limit of the collector (VIDI_COLLECT_RATE, default 10 requests/s) is turned
# off (0) for the run: every request comes from 127.0.0.1. VIDI_WORKERS=0 (an API-only node):
# uploads are stored and their probe queued, but no encoding competes for the 2 cores.
# The API's rate limits stay on (their cost is part of the figure) with budgets above what the
# GET and upload loops send from their one key (as bench/ops.sh does), so none is refused.
# PostgreSQL runs in a fresh schema (VIDI_DATABASE_SCHEMA) of BENCH_PG_URL, dropped afterwards.
#
#   bench/collect.sh                 both databases
#   bench/collect.sh sqlite          one of them (sqlite | postgres)
#
# Environment:
#   VIDI_BIN                 server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_DURATION           seconds per measurement (default 10)
#   BENCH_COLLECT_SESSIONS   sessions minted (default 2000)
#   BENCH_COLLECT_BATCH      events per batch (default 30; the player sends 1–50)
#   BENCH_COLLECT_CONNS      wrk connections of the capacity run (default 16, 2 threads)
#   BENCH_COLLECT_RATE       the collector's offered load beside uploads and GETs, events/s
#                            (default 20000, the issue's target)
#   BENCH_COLLECT_UPLOADERS  concurrent upload loops (default 2)
#   BENCH_COLLECT_ROUNDS     rounds of part 2, alone then beside (default 3; each figure is the
#                            median of the rounds', each ratio the median of the rounds' ratios)
#   BENCH_PG_URL             PostgreSQL (default postgres://postgres@127.0.0.1:5432/test;
#                            empty: SQLite only)
#   BENCH_RESULTS            file to append KEY=VALUE results to (set by run.sh)
#   BENCH_KEEP=1             keep bench/out/collect after the run
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init collect
resolve_vidi_bin
for tool in wrk ffmpeg; do
  command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool (scripts/setup.sh)"
done

DURATION=${BENCH_DURATION:-10}
SESSIONS=${BENCH_COLLECT_SESSIONS:-2000}
BATCH=${BENCH_COLLECT_BATCH:-30}
CONNS=${BENCH_COLLECT_CONNS:-16}
RATE=${BENCH_COLLECT_RATE:-20000}
UPLOADERS=${BENCH_COLLECT_UPLOADERS:-2}
ROUNDS=${BENCH_COLLECT_ROUNDS:-3}
PG_URL=${BENCH_PG_URL-postgres://postgres@127.0.0.1:5432/test}
THREADS=2
LUA=$BENCH_DIR/collect.lua

backends=("$@")
if [ ${#backends[@]} -eq 0 ]; then
  backends=(sqlite)
  if [ -n "$PG_URL" ]; then backends+=(postgres); fi
fi
for b in "${backends[@]}"; do
  case "$b" in sqlite | postgres) ;; *) die "unknown backend '$b' (sqlite | postgres)" ;; esac
done
if [[ " ${backends[*]} " == *" postgres "* ]]; then
  command -v psql >/dev/null 2>&1 || die "missing tool: psql"
  psql "$PG_URL" -qtAc 'SELECT 1' >/dev/null || die "PostgreSQL at $PG_URL does not answer"
fi

# The upload: 4 s of 360p (tiny, so the transfer does not dominate), made once.
mkdir -p "$OUT/cache"
CLIP=$OUT/cache/testsrc2-360p-4s.mp4
if [ ! -s "$CLIP" ]; then
  ffmpeg -hide_banner -nostdin -loglevel error -y -f lavfi -i "testsrc2=size=640x360:rate=30" -t 4 \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -movflags +faststart "$CLIP.part.mp4" || die "could not make the clip"
  mv "$CLIP.part.mp4" "$CLIP"
fi
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'

# median V...: the middle value (the lower middle of an even count); "n/a" values sort first.
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# wrk_requests NAME: requests completed; wrk_secs NAME: the run's measured duration.
wrk_requests() { awk '/requests in/ { print $1; exit }' "$WORK/wrk-$1.txt"; }
wrk_secs() {
  awk '/requests in/ { d = $4; sub(/,$/, "", d); u = d; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", d)
       print (u == "m") ? d * 60 : (u == "ms") ? d / 1000 : d; exit }' "$WORK/wrk-$1.txt"
}
# events_per_s NAME: events the collector acknowledged (204) per second.
events_per_s() {
  awk -v n="$(wrk_requests "$1")" -v e="$(wrk_errors "$1")" -v s="$(wrk_secs "$1")" -v b="$BATCH" \
    'BEGIN { printf "%.0f", (s > 0) ? (n - e) * b / s : 0 }'
}

SEQ_BASE=0
ACCEPTED=0
# collect_run NAME CONNS SECONDS [DELAY_MS]: one wrk run against the collector. Its seqs start
# past the previous run's (far more than a session gets in one run), so every event is new.
collect_run() {
  local name=$1 conns=$2 secs=$3 pause=${4:-0} base=$SEQ_BASE
  SEQ_BASE=$((SEQ_BASE + 20000))
  DURATION=$secs run_wrk "$name" --latency -t"$THREADS" -c"$conns" -d"${secs}s" --timeout 10s -s "$LUA" "$VIDI_URL" \
    -- "$WORK/sessions.txt" "$BATCH" "$base" "$THREADS" "$pause"
}
# acknowledged NAME: adds the events the run's 204s acknowledged to ACCEPTED (in this shell: a
# run put in the background counts once it is waited for).
acknowledged() { ACCEPTED=$((ACCEPTED + ($(wrk_requests "$1") - $(wrk_errors "$1")) * BATCH)); }

# upload_loop OUT END_NS: POST /videos then upload the clip, until END_NS; one line a pair,
# "CODE SECONDS" (the two requests' time together).
upload_loop() {
  local out=$1 end=$2 body id t0 code
  while [ "$(date +%s%N)" -lt "$end" ]; do
    t0=$(date +%s%N)
    body=$(curl -sS --max-time 30 -H "$AUTH_HEADER" -H 'Content-Type: application/json' \
      -d '{"title":"bench upload"}' "$VIDI_URL/videos" 2>/dev/null) || { echo "000 0" >>"$out"; continue; }
    id=$(json_str videoId <<<"$body")
    code=$(curl -sS --max-time 60 -o /dev/null -w '%{http_code}' -H "$AUTH_HEADER" -H 'Expect:' \
      -F "file=@\"$CLIP\";filename=clip.mp4" "$VIDI_URL/videos/$id/source" 2>/dev/null) || code=000
    echo "$code $(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')" >>"$out"
  done
}
# upload_stats FILE -> "per_s p50_ms p99_ms failed" over DURATION
upload_stats() {
  awk -v d="$DURATION" '$1 == 201 { t[++n] = $2 } $1 != 201 { f++ }
    END { if (n == 0) { print "0 ? ? " f + 0; exit }
          asort(t); p50 = t[int((n - 1) * 0.5) + 1]; p99 = t[int((n - 1) * 0.99) + 1]
          printf "%.1f %.1f %.1f %d\n", n / d, p50 * 1000, p99 * 1000, f + 0 }' "$1"
}

# side_load TAG: GET /videos/{id} (wrk) and the upload loops together for DURATION seconds.
side_load() {
  local tag=$1 end pids=() i
  rm -f "$WORK/uploads-$tag.txt"
  end=$(($(date +%s%N) + DURATION * 1000000000))
  for i in $(seq "$UPLOADERS"); do
    upload_loop "$WORK/uploads-$tag.txt" "$end" &
    pids+=($!)
  done
  run_wrk "get-$tag" --latency -t1 -c4 -d"${DURATION}s" -H "$AUTH_HEADER" "$VIDI_URL/videos/$VIDEO"
  wait "${pids[@]}"
  touch "$WORK/uploads-$tag.txt"
}

stored_events() {
  case "$1" in
    sqlite) sqlite3 "$WORK/$1/data/vidi.db" 'SELECT COUNT(*) FROM player_events' ;;
    postgres) psql "$PG_URL" -qtAc "SET search_path = $SCHEMA; SELECT COUNT(*) FROM player_events" | tail -n1 ;;
  esac
}

bench_backend() {
  local db=$1 env_extra=(VIDI_COLLECT_RATE=0 VIDI_WORKERS=0
    VIDI_RATE_LIMIT_READS=1000000 VIDI_RATE_LIMIT_WRITES=1000000 VIDI_RATE_LIMIT_UPLOADS=1000000)
  SCHEMA=""
  if [ "$db" = postgres ]; then
    pg_new_schema bench_collect
    env_extra+=(VIDI_DATABASE_URL="$PG_URL" VIDI_DATABASE_SCHEMA="$SCHEMA")
  fi
  SEQ_BASE=0
  ACCEPTED=0
  start_vidi "$WORK/$db" "${env_extra[@]}"
  local videos=() i
  for i in 1 2 3 4; do videos+=("$(create_video "collect $i")"); done
  VIDEO=${videos[0]}

  log "$db: minting $SESSIONS viewing sessions"
  awk -v n="$SESSIONS" -v url="$VIDI_URL/collect/sessions" -v ua="$UA" -v vids="${videos[*]}" 'BEGIN {
    split(vids, v, " ")
    for (i = 1; i <= n; i++) {
      if (i > 1) print "next"
      print "url = \"" url "\""
      print "max-time = 30"
      print "user-agent = \"" ua "\""
      print "header = \"Content-Type: application/json\""
      printf "data = \"{\\\"videoId\\\":\\\"%s\\\",\\\"referrer\\\":\\\"https://www.google.com/search?q=bench\\\",\\\"metadata\\\":[{\\\"key\\\":\\\"plan\\\",\\\"value\\\":\\\"p%d\\\"}]}\"\n", v[(i % 4) + 1], i % 7
      print "write-out = \"\\n\""
    } }' >"$WORK/mint.curlrc"
  timeout -k 5 600 curl --no-progress-meter --parallel --parallel-max 8 -K "$WORK/mint.curlrc" >"$WORK/mint.txt" 2>"$WORK/mint-errors.log" ||
    warn "curl exited with $? while minting: $(head -n 3 "$WORK/mint-errors.log")"
  grep -o '"sessionId":"ps[^"]*"' "$WORK/mint.txt" | cut -d'"' -f4 >"$WORK/sessions.txt"
  local minted
  minted=$(wc -l <"$WORK/sessions.txt")
  [ "$minted" -eq "$SESSIONS" ] || die "only $minted of $SESSIONS sessions minted: $(grep -v sessionId "$WORK/mint.txt" | head -n 3)"
  sleep 1

  # ---- 1. capacity ----
  wait_idle "the collector's capacity ($db)"
  collect_run "warm-$db" "$CONNS" 3
  acknowledged "warm-$db"
  log "$db: wrk -t$THREADS -c$CONNS -d${DURATION}s, batches of $BATCH events over $SESSIONS sessions"
  collect_run "cap-$db" "$CONNS" "$DURATION"
  acknowledged "cap-$db"
  check_wrk "cap-$db"
  local eps
  eps=$(events_per_s "cap-$db")
  log "  $eps events/s, p50 $(wrk_pct "cap-$db" 50) ms, p99 $(wrk_pct "cap-$db" 99) ms"

  # ---- 2. uploads and GET /videos/{id}, without then with the collector, ROUNDS times ----
  # Rounds alternate alone / beside, so that a drift of the machine's load weighs on both; each
  # round's ratio is taken, and the median of those is the figure.
  local side_conns=32 pause r cpid
  # A fixed offered load: each of the connections waits DELAY ms before each request. wrk's
  # delay is a pause between an answer and the next request, not a rate: each connection's
  # rate is 1 / (DELAY + latency). With 8 connections (12 ms) a latency of 20 ms under load cut
  # the 20,000 offered to ~7,000 taken (session 12); 32 (48 ms) keep the pause dominant.
  pause=$(awk -v c="$side_conns" -v r="$RATE" -v b="$BATCH" 'BEGIN { printf "%d", c * 1000 * b / r }')
  for r in $(seq "$ROUNDS"); do
    wait_idle "uploads and GETs ($db, round $r)"
    log "$db round $r: uploads ($UPLOADERS loops) and GET /videos/{id} (wrk -t1 -c4), ${DURATION}s alone"
    side_load "alone-$db-$r"
    log "$db round $r: the same beside the collector offered $RATE events/s (wrk -c$side_conns, ${pause} ms between requests)"
    collect_run "beside-$db-$r" "$side_conns" $((DURATION + 4)) "$pause" &
    SEQ_BASE=$((SEQ_BASE + 20000))
    cpid=$!
    sleep 2
    side_load "with-$db-$r"
    wait "$cpid" || die "the collector's load failed beside uploads and GETs"
    acknowledged "beside-$db-$r"
  done

  local stored
  stored=$(stored_events "$db")
  # wrk stops with a request in flight on each connection: the server may store those batches
  # without wrk counting their 204s, so the database may hold up to that many batches more.
  local slack=$(((CONNS + CONNS + side_conns * ROUNDS) * BATCH))
  if [ "$stored" -lt "$ACCEPTED" ] || [ "$stored" -gt $((ACCEPTED + slack)) ]; then
    warn "$db: the database holds $stored events, the collector acknowledged $ACCEPTED (+ at most $slack in flight)"
  fi
  stop_pid "$VIDI_PID"
  pg_drop_schemas

  # Per round: GET req/s alone and beside, uploads/s alone and beside, and their ratios.
  local ga=() gw=() gr=() ua=() uw=() ur=() eb=() bp=() gpa=() gpw=() upa50=() upa99=() upw50=() upw99=()
  local failed=0 errors=0
  local a50 a99 af w50 w99 wf x y
  for r in $(seq "$ROUNDS"); do
    x=$(wrk_rps "get-alone-$db-$r")
    y=$(wrk_rps "get-with-$db-$r")
    ga+=("$x") gw+=("$y") gr+=("$(ratio "$y" "$x")")
    gpa+=("$(wrk_pct "get-alone-$db-$r" 99)") gpw+=("$(wrk_pct "get-with-$db-$r" 99)")
    errors=$((errors + $(wrk_errors "get-alone-$db-$r") + $(wrk_errors "get-with-$db-$r")))
    read -r x a50 a99 af <<<"$(upload_stats "$WORK/uploads-alone-$db-$r.txt")"
    read -r y w50 w99 wf <<<"$(upload_stats "$WORK/uploads-with-$db-$r.txt")"
    ua+=("$x") uw+=("$y") ur+=("$(ratio "$y" "$x")")
    upa50+=("$a50") upa99+=("$a99") upw50+=("$w50") upw99+=("$w99")
    failed=$((failed + af + wf))
    eb+=("$(events_per_s "beside-$db-$r")") bp+=("$(wrk_pct "beside-$db-$r" 99)")
  done
  echo
  echo "collect ($db): ${DURATION}s per measurement, batches of $BATCH, $SESSIONS sessions ($VIDI_BIN)"
  result "collect_${db}_events_per_s" "$eps"
  result "collect_${db}_batches_per_s" "$(wrk_rps "cap-$db")"
  result "collect_${db}_p50_ms" "$(wrk_pct "cap-$db" 50)"
  result "collect_${db}_p99_ms" "$(wrk_pct "cap-$db" 99)"
  result "collect_${db}_errors" "$(wrk_errors "cap-$db")"
  result "collect_${db}_conns" "$CONNS"
  result collect_batch "$BATCH"
  result "collect_${db}_stored_events" "$stored"
  result "collect_${db}_acknowledged_events" "$ACCEPTED"
  result "collect_${db}_rounds" "$ROUNDS"
  # Medians over the rounds (numbers, as run.sh reads them), then each round's, in order.
  result "collect_${db}_beside_events_per_s" "$(median "${eb[@]}")"
  result "collect_${db}_beside_p99_ms" "$(median "${bp[@]}")"
  result "collect_${db}_get_alone_rps" "$(median "${ga[@]}")"
  result "collect_${db}_get_with_rps" "$(median "${gw[@]}")"
  result "collect_${db}_get_ratio" "$(median "${gr[@]}")"
  result "collect_${db}_get_alone_p99_ms" "$(median "${gpa[@]}")"
  result "collect_${db}_get_with_p99_ms" "$(median "${gpw[@]}")"
  result "collect_${db}_get_errors" "$errors"
  result "collect_${db}_upload_alone_per_s" "$(median "${ua[@]}")"
  result "collect_${db}_upload_with_per_s" "$(median "${uw[@]}")"
  result "collect_${db}_upload_ratio" "$(median "${ur[@]}")"
  result "collect_${db}_upload_alone_p50_ms" "$(median "${upa50[@]}")"
  result "collect_${db}_upload_with_p50_ms" "$(median "${upw50[@]}")"
  result "collect_${db}_upload_alone_p99_ms" "$(median "${upa99[@]}")"
  result "collect_${db}_upload_with_p99_ms" "$(median "${upw99[@]}")"
  result "collect_${db}_upload_failed" "$failed"
  result "collect_${db}_get_ratio_rounds" "${gr[*]}"
  result "collect_${db}_get_rps_rounds" "alone ${ga[*]} / beside ${gw[*]}"
  result "collect_${db}_upload_ratio_rounds" "${ur[*]}"
  result "collect_${db}_upload_per_s_rounds" "alone ${ua[*]} / beside ${uw[*]}"
  result "collect_${db}_beside_events_per_s_rounds" "${eb[*]}"
}

for b in "${backends[@]}"; do
  bench_backend "$b"
done
