#!/usr/bin/env bash
# Analytics query benchmark (issue 22): one video's month of viewing sessions with 1 million
# raw events, on PostgreSQL and on SQLite, read through the API.
#
# The data is written straight into the database, not through the collector (bench/collect.sh
# measures that): BENCH_QUERY_SESSIONS sessions of the measured video spread over November 2026,
# each with BENCH_QUERY_EVENTS events (ready, time to first frame, play, then pauses, resumes,
# seeks and stalls, end), plus BENCH_QUERY_NOISE sessions of another video in the same month
# (so that the indexes, not the table's size, decide). One INSERT … SELECT per table: PostgreSQL's
# generate_series, a recursive CTE on SQLite; on PostgreSQL the month's partition is made first,
# as the collector would (Db::ensure_event_partition), and the tables are ANALYZEd.
#
# Then, each BENCH_QUERY_RUNS times in turn (after one warm-up round), timed by curl from the
# request to the last byte, and reported as median and p90:
#   - GET /analytics/videos/{id}?period=2026-11            (the first page of the month)
#   - the same, last page                                  (for information: OFFSET reads)
#   - GET /analytics/sessions/{ps}/events                  (a different session each time)
#   - GET /analytics/videos/{id}/qoe?period=2026-11        (Vidi's QoE: every event of the month)
#   - GET /videos/{id}                                     (the reference: the API's floor)
# Target: the sessions list and the events under 100 ms on PostgreSQL (median and p90 shown).
# The plans (EXPLAIN) of the two queries are kept in bench/out/query/<db>/explain-*.txt.
#
#   bench/query.sh                 both databases
#   bench/query.sh postgres        one of them (sqlite | postgres)
#
# Environment:
#   VIDI_BIN              server binary (default target/release/vidi, else target/debug/vidi)
#   BENCH_QUERY_SESSIONS  sessions of the measured video (default 20000)
#   BENCH_QUERY_EVENTS    events per session (default 50; 20000 × 50 = 1 million)
#   BENCH_QUERY_NOISE     sessions of another video in the same month (default 5000)
#   BENCH_QUERY_RUNS      timed requests per query (default 30)
#   BENCH_PG_URL          PostgreSQL (default postgres://postgres@127.0.0.1:5432/test; empty:
#                         SQLite only); a fresh schema, dropped afterwards
#   BENCH_RESULTS, BENCH_KEEP as in the other benchmarks
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
bench_init query
resolve_vidi_bin
command -v sqlite3 >/dev/null 2>&1 || die "missing tool: sqlite3"

S=${BENCH_QUERY_SESSIONS:-20000}
E=${BENCH_QUERY_EVENTS:-50}
NOISE=${BENCH_QUERY_NOISE:-5000}
RUNS=${BENCH_QUERY_RUNS:-30}
PG_URL=${BENCH_PG_URL-postgres://postgres@127.0.0.1:5432/test}
# November 2026 in unix ms; the next month's first instant.
MONTH_START=1793491200000
MONTH_END=1796083200000
PERIOD=2026-11

backends=("$@")
if [ ${#backends[@]} -eq 0 ]; then
  backends=(postgres sqlite)
  if [ -z "$PG_URL" ]; then backends=(sqlite); fi
fi
for b in "${backends[@]}"; do
  case "$b" in sqlite | postgres) ;; *) die "unknown backend '$b' (sqlite | postgres)" ;; esac
done


# sql DB: runs stdin against the node's database.
sql() {
  case "$1" in
    sqlite) sqlite3 -batch -bail -cmd '.timeout 60000' "$WORK/sqlite/data/vidi.db" ;;
    postgres) (echo "SET search_path = $SCHEMA;" && cat) | psql "$PG_URL" -qtA -v ON_ERROR_STOP=1 ;;
  esac
}

# series DB N ALIAS: a FROM item of the integers 0 … N-1, as column ALIAS.g.
series() {
  case "$1" in
    postgres) echo "generate_series(0, $2 - 1) AS $3(g)" ;;
    sqlite) echo "(WITH RECURSIVE n(g) AS (SELECT 0 UNION ALL SELECT g + 1 FROM n WHERE g < $2 - 1) SELECT g FROM n) AS $3" ;;
  esac
}
pad() { # DB EXPR: EXPR as 8 digits
  case "$1" in postgres) echo "lpad(($2)::text, 8, '0')" ;; sqlite) echo "printf('%08d', $2)" ;; esac
}

# fill DB WS VIDEO PREFIX SESSIONS: the sessions of VIDEO over the month and their events.
fill() {
  local db=$1 ws=$2 vid=$3 prefix=$4 n=$5 ev
  # Session g loads at an even spacing over the month; its events are 10 s apart from it.
  sql "$db" <<SQL
INSERT INTO player_sessions (id, workspace_id, media_id, loaded_at, metadata, referrer_url,
  referrer_medium, referrer_source, search_term, device_type, device_vendor, device_model, os_name,
  os_shortname, os_version, client_name, client_version, client_type, country, city)
SELECT '$prefix' || $(pad "$db" s.g), '$ws', '$vid', $MONTH_START + s.g * (($MONTH_END - $MONTH_START - 86400000) / $n),
  '[]', 'https://www.google.com/', 'search', 'Google', '', 'computer', 'unknown', 'unknown', 'Windows',
  'WIN', '10', 'Chrome', '120.0.0.0', 'browser', 'unknown', NULL
FROM $(series "$db" "$n" s);
SQL
  # Session s's event e; its type first, in a subquery, for the columns that depend on it.
  ev="CASE WHEN e.g = 0 THEN 'ready' WHEN e.g = 1 THEN 'qoe.ttff' WHEN e.g = 2 THEN 'play'
           WHEN e.g = $E - 1 THEN 'end'
           ELSE (CASE e.g % 6 WHEN 0 THEN 'pause' WHEN 1 THEN 'resume' WHEN 2 THEN 'seek.forward'
                 WHEN 3 THEN 'seek.backward' WHEN 4 THEN 'play' ELSE 'qoe.rebuffer' END) END"
  sql "$db" <<SQL
INSERT INTO player_events (session_id, seq, emitted_at, media_id, type, at, from_s, to_s, value)
SELECT '$prefix' || $(pad "$db" t.sg), t.eg, $MONTH_START + t.sg * (($MONTH_END - $MONTH_START - 86400000) / $n) + t.eg * 10000,
  '$vid', t.type,
  CASE WHEN t.type IN ('seek.forward', 'seek.backward') OR t.type LIKE 'qoe.%' THEN NULL ELSE t.eg * 10 END,
  CASE t.type WHEN 'seek.forward' THEN t.eg * 10 WHEN 'seek.backward' THEN t.eg * 10 + 30 END,
  CASE t.type WHEN 'seek.forward' THEN t.eg * 10 + 30 WHEN 'seek.backward' THEN t.eg * 10 END,
  CASE t.type WHEN 'qoe.ttff' THEN 200 + t.sg % 500 WHEN 'qoe.rebuffer' THEN 300 + t.sg % 900 END
FROM (SELECT s.g AS sg, e.g AS eg, $ev AS type FROM $(series "$db" "$n" s) CROSS JOIN $(series "$db" "$E" e)) AS t;
SQL
}

# time_get NAME URL...: one GET per URL given, in turn, RUNS in all (after one warm-up of
# each): the times (s) in $WORK/$db/t-NAME.txt; the last body in $WORK/$db/body-NAME.json.
time_get() {
  local name=$1 i=0 url code
  shift
  local urls=("$@")
  curl -s -o /dev/null --max-time 30 -H "$AUTH_HEADER" "${urls[0]}" || true
  : >"$DIRB/t-$name.txt"
  while [ $i -lt "$RUNS" ]; do
    url=${urls[$((i % ${#urls[@]}))]}
    code=$(curl -sS --max-time 30 -o "$DIRB/body-$name.json" -w '%{http_code} %{time_total}' -H "$AUTH_HEADER" "$url") ||
      die "GET $url failed"
    [ "${code%% *}" = 200 ] || die "GET $url answered ${code%% *}: $(head -c 300 "$DIRB/body-$name.json")"
    echo "${code#* }" >>"$DIRB/t-$name.txt"
    i=$((i + 1))
  done
}
# pct NAME P: the P-th percentile (nearest rank) of NAME's times, in ms
pct() { sort -g "$DIRB/t-$1.txt" | awk -v p="$2" '{ t[NR] = $1 } END { i = int((NR - 1) * p / 100 + 0.5) + 1; printf "%.1f", t[i] * 1000 }'; }

bench_backend() {
  local db=$1 env_extra=()
  DIRB=$WORK/$db
  SCHEMA=""
  if [ "$db" = postgres ]; then
    command -v psql >/dev/null 2>&1 || die "missing tool: psql"
    pg_new_schema bench_query
    env_extra=(VIDI_DATABASE_URL="$PG_URL" VIDI_DATABASE_SCHEMA="$SCHEMA")
  fi
  start_vidi "$DIRB" VIDI_WORKERS=0 "${env_extra[@]}"
  local vid other ws
  vid=$(create_video "query bench")
  other=$(create_video "query bench noise")
  ws=$(echo "SELECT workspace_id FROM videos WHERE id = '$vid';" | sql "$db" | tail -n1)
  [ -n "$ws" ] || die "no workspace for $vid"

  log "$db: writing $S sessions × $E events of $vid and $NOISE × $E of another video (November 2026)"
  local t0 t1
  t0=$(now)
  if [ "$db" = postgres ]; then
    echo "CREATE TABLE IF NOT EXISTS player_events_202611 PARTITION OF player_events FOR VALUES FROM ($MONTH_START) TO ($MONTH_END);" | sql "$db"
  fi
  fill "$db" "$ws" "$vid" psbench "$S"
  fill "$db" "$ws" "$other" psnoise "$NOISE"
  echo "ANALYZE;" | sql "$db" >/dev/null
  t1=$(now)
  local events
  events=$(echo "SELECT COUNT(*) FROM player_events WHERE media_id = '$vid';" | sql "$db" | tail -n1)
  log "  $events events of $vid written in $(elapsed "$t0" "$t1") s"
  [ "$events" -eq $((S * E)) ] || die "expected $((S * E)) events, found $events"

  # The plans of what the list and the events pages run (kept for diagnosis).
  local explain="EXPLAIN"
  [ "$db" = postgres ] && explain="EXPLAIN ANALYZE"
  [ "$db" = sqlite ] && explain="EXPLAIN QUERY PLAN"
  sql "$db" >"$DIRB/explain-list.txt" <<SQL
$explain SELECT s.id, COALESCE((SELECT MAX(e.emitted_at) FROM player_events e WHERE e.session_id = s.id), s.loaded_at)
FROM player_sessions s WHERE s.workspace_id = '$ws' AND s.media_id = '$vid' AND s.loaded_at >= $MONTH_START
AND s.loaded_at < $MONTH_END ORDER BY s.loaded_at DESC, s.id DESC LIMIT 25 OFFSET 0;
SQL
  sql "$db" >"$DIRB/explain-events.txt" <<SQL
$explain SELECT e.session_id, e.seq, e.emitted_at, e.type FROM player_events e WHERE e.session_id = 'psbench00000042'
AND e.type IN ('ready', 'play', 'pause', 'resume', 'seek.backward', 'seek.forward', 'end')
ORDER BY e.emitted_at, e.seq LIMIT 25 OFFSET 0;
SQL

  wait_idle "the analytics queries ($db)"
  local base=$VIDI_URL/analytics/videos/$vid
  time_get list "$base?period=$PERIOD"
  local total
  total=$(json_num itemsTotal <"$DIRB/body-list.json")
  [ "$total" = "$S" ] || die "itemsTotal is '$total', expected $S"
  local last=$(((S + 24) / 25))
  time_get list-last "$base?period=$PERIOD&currentPage=$last"
  local urls=() i
  for i in $(seq 1 "$RUNS"); do
    urls+=("$VIDI_URL/analytics/sessions/psbench$(printf '%08d' $(((i * 7919) % S)))/events")
  done
  time_get events "${urls[@]}"
  total=$(json_num itemsTotal <"$DIRB/body-events.json")
  [ "$total" -gt 0 ] || die "a session's events: itemsTotal is '$total'"
  time_get qoe "$base/qoe?period=$PERIOD"
  time_get ref "$VIDI_URL/videos/$vid"
  stop_pid "$VIDI_PID"
  pg_drop_schemas

  echo
  echo "query ($db): $events events of one video in $PERIOD ($S sessions) + $((NOISE * E)) of another, $RUNS requests each ($VIDI_BIN)"
  result "query_${db}_events" "$events"
  result "query_${db}_fill_s" "$(elapsed "$t0" "$t1")"
  local q
  for q in list list-last events qoe ref; do
    result "query_${db}_${q//-/_}_p50_ms" "$(pct "$q" 50)"
    result "query_${db}_${q//-/_}_p90_ms" "$(pct "$q" 90)"
  done
  result "query_${db}_list_ratio" "$(ratio "$(pct list 50)" "$(pct ref 50)")"
  result "query_${db}_events_ratio" "$(ratio "$(pct events 50)" "$(pct ref 50)")"
}

for b in "${backends[@]}"; do
  bench_backend "$b"
done
