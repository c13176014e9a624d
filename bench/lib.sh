# shellcheck shell=bash
# Shared helpers for the benchmark scripts. Source it; do not run it.
#
# Every helper that starts a process registers its pid; the EXIT trap installed by
# bench_init stops those processes (TERM, then KILL after a grace period) and removes
# the scratch directories, unless BENCH_KEEP=1. All traffic goes to 127.0.0.1.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH_DIR")
OUT=${BENCH_OUT:-$BENCH_DIR/out}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)

_BENCH_PIDS=()
_BENCH_PATHS=()

log()  { printf '[%s %s] %s\n' "$BENCH_NAME" "$(date +%H:%M:%S)" "$*" >&2; }
warn() { log "WARNING: $*"; }
die()  { log "ERROR: $*"; exit 1; }

# bench_init NAME: sets BENCH_NAME and WORK (= $OUT/NAME, emptied), installs the traps.
bench_init() {
  BENCH_NAME=$1
  WORK=$OUT/$BENCH_NAME
  rm -rf "$WORK"
  mkdir -p "$WORK"
  _BENCH_PATHS+=("$WORK")
  trap _bench_cleanup EXIT
  trap 'log "interrupted"; exit 130' INT
  trap 'log "terminated"; exit 143' TERM
  for tool in curl awk ss base64; do
    command -v "$tool" >/dev/null 2>&1 || die "missing tool: $tool"
  done
}

_bench_cleanup() {
  local rc=$? pid
  set +e
  trap - EXIT INT TERM
  for pid in "${_BENCH_PIDS[@]}"; do
    stop_pid "$pid"
  done
  pg_drop_schemas
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    # Keep the logs of a failed run for diagnosis; drop bulky data either way.
    local p
    for p in "${_BENCH_PATHS[@]}"; do
      if [ "$rc" -eq 0 ]; then
        rm -rf "$p"
      else
        find "$p" -type f ! -name '*.log' ! -name '*.txt' ! -name '*.json' ! -name '*.conf' -delete 2>/dev/null
      fi
    done
  fi
  exit "$rc"
}

register_pid()  { _BENCH_PIDS+=("$1"); }

# PostgreSQL scratch schemas (a server in one gets VIDI_DATABASE_SCHEMA): pg_new_schema PREFIX
# sets SCHEMA to a fresh name and records it; pg_drop_schemas drops every recorded one from
# $PG_URL (the script's). The EXIT trap calls it after stopping the servers, so a run that ends
# early leaves none behind; a script may call it sooner, as each drop is idempotent.
_BENCH_SCHEMAS=()
pg_new_schema() {
  SCHEMA=${1}_$$_$RANDOM
  _BENCH_SCHEMAS+=("$SCHEMA")
}
pg_drop_schemas() {
  local s
  for s in "${_BENCH_SCHEMAS[@]}"; do
    psql "$PG_URL" -qtAc "DROP SCHEMA IF EXISTS $s CASCADE" >/dev/null 2>&1 || true
  done
}

# stop_pid PID: TERM, wait up to 10 s, then KILL. Only ever called on pids we started.
stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    warn "pid $pid ignored TERM for 10 s; sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  return 0
}

now() { date +%s.%N; }
# elapsed T0 T1 -> seconds (float)
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", b - a }'; }
# mbps BYTES SECONDS -> MB/s (10^6 bytes)
mbps() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f", n / 1e6 / s }'; }
# ratio A B -> A/B with 3 decimals ("n/a" if B is 0 or empty)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.3f", a / b }'; }

# result KEY VALUE: print and append to $BENCH_RESULTS (KEY=VALUE lines) for run.sh.
result() {
  printf '  %-34s %s\n' "$1" "$2"
  if [ -n "${BENCH_RESULTS:-}" ]; then
    printf '%s=%s\n' "$1" "$2" >>"$BENCH_RESULTS"
  fi
}

# free_port: a TCP port nobody listens on, below the ephemeral range (so that wrk's and
# curl's outgoing sockets never collide with it).
free_port() {
  local used p _
  used=$(ss -Htln 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }')
  for _ in $(seq 500); do
    p=$((20000 + RANDOM % 12000))
    if ! grep -qx "$p" <<<"$used"; then
      echo "$p"
      return 0
    fi
  done
  die "no free port found"
}

# exit_note PID: how a child process of this shell that is no longer running ended
# ("exit status N" or "killed by SIGNAME").
exit_note() {
  local rc=0
  wait "$1" 2>/dev/null || rc=$?
  if [ "$rc" -gt 128 ]; then echo "killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"; else echo "exit status $rc"; fi
}

# wait_http URL PID LOG [SECONDS]: wait until URL answers (any HTTP status).
wait_http() {
  local url=$1 pid=$2 logf=$3 secs=${4:-30} deadline
  deadline=$((SECONDS + secs))
  while [ $SECONDS -lt $deadline ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logf" >&2 2>/dev/null
      die "process $pid exited before answering on $url, $(exit_note "$pid") (log: $logf)"
    fi
    if curl -s -o /dev/null --max-time 1 "$url"; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 30 "$logf" >&2 2>/dev/null
  die "$url did not answer within ${secs}s (log: $logf)"
}

# ---------------------------------------------------------------------------------------
# Vidi server

# resolve_vidi_bin: sets VIDI_BIN (env VIDI_BIN, else target/release/vidi, else target/debug/vidi).
resolve_vidi_bin() {
  if [ -z "${VIDI_BIN:-}" ]; then
    if [ -x "$ROOT/target/release/vidi" ]; then
      VIDI_BIN=$ROOT/target/release/vidi
    elif [ -x "$ROOT/target/debug/vidi" ]; then
      VIDI_BIN=$ROOT/target/debug/vidi
    else
      die "no vidi binary: set VIDI_BIN or run 'cargo build --release -p vidi' (bench/run.sh does it)"
    fi
  fi
  [ -x "$VIDI_BIN" ] || die "VIDI_BIN=$VIDI_BIN is not executable"
  VIDI_BIN=$(cd "$(dirname "$VIDI_BIN")" && pwd)/$(basename "$VIDI_BIN")
  case "$VIDI_BIN" in
    */target/debug/*) warn "using a debug build ($VIDI_BIN): the numbers are not meaningful" ;;
  esac
}

# start_vidi DIR [VAR=value ...]: creates an API key and starts `vidi serve` on a free port
# with its data in DIR/data and its output in DIR/vidi.log. The extra VAR=value pairs go
# into the server's environment. Sets VIDI_PID, VIDI_PORT, VIDI_URL, VIDI_KEY, AUTH_HEADER.
# VIDI_LOG defaults to "warn" so that per-request logging does not dominate the
# measurement (nginx runs with access_log off); override it in the environment.
start_vidi() {
  local dir=$1
  shift
  mkdir -p "$dir/data"
  local logf=$dir/vidi.log
  # Run from $dir so that a vidi.toml in the caller's directory does not change the setup.
  VIDI_KEY=$(cd "$dir" && env VIDI_DATA_DIR="$dir/data" VIDI_LOG="${VIDI_LOG:-warn}" "$@" \
    "$VIDI_BIN" api-key create 2>>"$logf" | awk 'NF { k = $0 } END { print k }' | tr -d '[:space:]')
  [ -n "$VIDI_KEY" ] || { tail -n 20 "$logf" >&2; die "'vidi api-key create' printed no key"; }
  AUTH_HEADER="Authorization: Basic $(printf '%s:' "$VIDI_KEY" | base64 -w0)"
  VIDI_PORT=$(free_port)
  VIDI_URL=http://127.0.0.1:$VIDI_PORT
  (cd "$dir" && exec env VIDI_DATA_DIR="$dir/data" VIDI_HTTP_ADDR="127.0.0.1:$VIDI_PORT" VIDI_RTMP_ADDR="${VIDI_RTMP_ADDR:-127.0.0.1:0}" VIDI_LOG="${VIDI_LOG:-warn}" "$@" \
    "$VIDI_BIN" serve >>"$logf" 2>&1) &
  VIDI_PID=$!
  register_pid "$VIDI_PID"
  wait_http "$VIDI_URL/videos" "$VIDI_PID" "$logf" 60
  log "vidi pid $VIDI_PID on $VIDI_URL (data $dir/data)"
}

# json_str FIELD < JSON: first string value of "FIELD" (good enough for the flat fields we read).
json_str() { { grep -o "\"$1\" *: *\"[^\"]*\"" || true; } | head -n1 | sed 's/.*: *"\(.*\)"/\1/'; }
# json_num FIELD < JSON: first numeric value of "FIELD".
json_num() { { grep -o "\"$1\" *: *[0-9.]*" || true; } | head -n1 | sed 's/.*: *//'; }

# create_video TITLE -> prints the new videoId.
create_video() {
  local body code
  body=$(curl -sS --max-time 30 -w '\n%{http_code}' -H "$AUTH_HEADER" -H 'Content-Type: application/json' \
    -d "{\"title\":\"$1\"}" "$VIDI_URL/videos") || die "POST /videos failed"
  code=${body##*$'\n'}
  body=${body%$'\n'*}
  case "$code" in 201 | 202) ;; *) die "POST /videos answered $code: $body" ;; esac
  local id
  id=$(json_str videoId <<<"$body")
  [ -n "$id" ] || die "POST /videos returned no videoId: $body"
  echo "$id"
}

# ---------------------------------------------------------------------------------------
# Memory of a running process (Linux /proc)

# rss_reset PID: reset VmHWM to the current RSS (clear_refs 5, Linux >= 4.0). Fails if not allowed.
rss_reset() { { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null; }
rss_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }   # kB
kib_to_mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# rss_poll_start PID FILE: sample VmRSS every 50 ms in the background; FILE holds the max (kB).
rss_poll_start() {
  local pid=$1 file=$2
  (
    max=0
    while kill -0 "$pid" 2>/dev/null; do
      while read -r k v _; do
        if [ "$k" = VmRSS: ]; then
          if [ "$v" -gt "$max" ]; then max=$v; echo "$max" >"$file"; fi
          break
        fi
      done <"/proc/$pid/status" 2>/dev/null
      sleep 0.05
    done
  ) &
  RSS_POLL_PID=$!
  register_pid "$RSS_POLL_PID"
}

# ---------------------------------------------------------------------------------------
# Waiting for a quiet machine

# wait_idle WHAT: before a timed step, waits until the file $BENCH_WAIT_FILE exists (when set)
# and the 1-minute load average is below $BENCH_IDLE_LOAD (when set), polling every
# $BENCH_IDLE_POLL seconds (default 5) for at most $BENCH_IDLE_TIMEOUT seconds (default 900).
# Neither variable set: returns at once. On timeout it warns and goes on (the figures of that
# step are then taken on a busy machine, and the log says so).
wait_idle() {
  local what=$1 poll=${BENCH_IDLE_POLL:-5} limit=${BENCH_IDLE_TIMEOUT:-900} start=$SECONDS load
  [ -n "${BENCH_WAIT_FILE:-}" ] || [ -n "${BENCH_IDLE_LOAD:-}" ] || return 0
  while :; do
    load=$(cut -d' ' -f1 /proc/loadavg)
    if { [ -z "${BENCH_WAIT_FILE:-}" ] || [ -e "$BENCH_WAIT_FILE" ]; } &&
      { [ -z "${BENCH_IDLE_LOAD:-}" ] || awk -v l="$load" -v m="$BENCH_IDLE_LOAD" 'BEGIN { exit !(l + 0 < m + 0) }'; }; then
      [ $((SECONDS - start)) -eq 0 ] || log "machine idle (load $load) after $((SECONDS - start)) s; starting $what"
      return 0
    fi
    if [ $((SECONDS - start)) -ge "$limit" ]; then
      warn "machine still busy after ${limit}s (load $load${BENCH_WAIT_FILE:+, $BENCH_WAIT_FILE $([ -e "$BENCH_WAIT_FILE" ] && echo present || echo absent)}); running $what anyway"
      return 0
    fi
    [ $((SECONDS - start)) -gt 0 ] || log "waiting for an idle machine before $what (load $load)"
    sleep "$poll"
  done
}

# ---------------------------------------------------------------------------------------
# A throwaway nginx (static files), the reference server of api.sh and encode.sh

# start_nginx DIR DEFAULT_TYPE: serves DIR/root on a free 127.0.0.1 port with its own config,
# pid file, error log and temp paths under DIR: worker_processes 2, access_log off, sendfile,
# keepalive_requests 1000000 (so that closing keep-alive connections does not slow it down).
# Every file is served with DEFAULT_TYPE. Sets NGINX_PID, NGINX_PORT, NGINX_URL.
start_nginx() {
  local n=$1 ctype=$2 user_line=""
  command -v nginx >/dev/null 2>&1 || die "missing tool: nginx (apt-get install nginx-light, or scripts/setup.sh)"
  local bin
  bin=$(command -v nginx)
  mkdir -p "$n/root" "$n/tmp"
  chmod -R a+rX "$n/root"
  NGINX_PORT=$(free_port)
  if [ "$(id -u)" = 0 ]; then user_line="user $(id -un) $(id -gn);"; fi
  cat >"$n/nginx.conf" <<NGINX
# Throwaway nginx for bench/$BENCH_NAME.sh: static files under $n/root.
$user_line
worker_processes 2;
daemon off;
pid $n/nginx.pid;
error_log $n/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  types { }
  default_type $ctype;
  sendfile on;
  tcp_nodelay on;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  client_body_temp_path $n/tmp/body;
  proxy_temp_path $n/tmp/proxy;
  fastcgi_temp_path $n/tmp/fastcgi;
  uwsgi_temp_path $n/tmp/uwsgi;
  scgi_temp_path $n/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $n/root;
  }
}
NGINX
  "$bin" -p "$n/" -e "$n/error.log" -c "$n/nginx.conf" -t >"$n/nginx-t.log" 2>&1 ||
    { cat "$n/nginx-t.log" >&2; die "nginx config test failed"; }
  "$bin" -p "$n/" -e "$n/error.log" -c "$n/nginx.conf" >>"$n/nginx.log" 2>&1 &
  NGINX_PID=$!
  register_pid "$NGINX_PID"
  NGINX_URL=http://127.0.0.1:$NGINX_PORT
  wait_http "$NGINX_URL/" "$NGINX_PID" "$n/error.log" 20
  log "nginx pid $NGINX_PID on $NGINX_URL"
}

# ---------------------------------------------------------------------------------------
# wrk (results in $WORK/wrk-NAME.txt)

# run_wrk NAME ARGS...: runs wrk, bounded by timeout (needs DURATION set).
run_wrk() {
  local name=$1
  shift
  timeout -k 5 $((${DURATION:-10} + 30)) wrk "$@" >"$WORK/wrk-$name.txt" 2>&1 ||
    { cat "$WORK/wrk-$name.txt" >&2; die "wrk ($name) failed"; }
  if [ -n "${VIDI_PID:-}" ] && ! kill -0 "$VIDI_PID" 2>/dev/null; then
    die "the vidi server died during wrk ($name), $(exit_note "$VIDI_PID")"
  fi
}
wrk_rps() { awk '$1 == "Requests/sec:" { printf "%.0f", $2 }' "$WORK/wrk-$1.txt"; }
# wrk_errors NAME: non-2xx/3xx responses + socket errors.
wrk_errors() {
  awk '/Non-2xx or 3xx responses:/ { n += $NF }
       /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 }
       END { print n + 0 }' "$WORK/wrk-$1.txt"
}
# wrk_pct NAME PCT: latency percentile in ms (needs --latency).
wrk_pct() {
  awk -v p="$2%" '$1 == p {
      v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
      f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : -1
      if (f < 0) { print "?"; exit }
      printf "%.2f", v * f; exit }' "$WORK/wrk-$1.txt"
}
check_wrk() {
  local e
  e=$(wrk_errors "$1")
  if [ "$e" -gt 0 ]; then warn "$1: $e non-2xx responses or socket errors (see $WORK/wrk-$1.txt)"; fi
}

# The encoding benchmarks' source: SECS seconds of a 1080p test pattern at FPS with a sine tone
# (libx264 ultrafast crf 18, AAC 48 kHz, moov first), made once and kept in $OUT/cache. Prints
# its path.
bench_source() { # SECS FPS
  local cache=$OUT/cache
  mkdir -p "$cache"
  local src=$cache/testsrc2-1080p30-${1}s.mp4
  if [ ! -s "$src" ]; then
    log "making the ${1}s 1080p30 source (libx264 ultrafast crf 18, AAC), not timed" >&2
    ffmpeg -hide_banner -nostdin -loglevel error -y \
      -f lavfi -i "testsrc2=size=1920x1080:rate=$2" -f lavfi -i "sine=frequency=440:sample_rate=48000" \
      -t "$1" -map 0:v -map 1:a -c:v libx264 -preset ultrafast -crf 18 -pix_fmt yuv420p \
      -c:a aac -b:a 192k -ac 2 -movflags +faststart "$src.part.mp4" >&2 || die "could not make the source"
    mv "$src.part.mp4" "$src"
  fi
  echo "$src"
}

# callgrind_serve OUTFILE: VIDI_BIN becomes a wrapper that runs `vidi serve` under callgrind,
# instrumentation off until asked (`callgrind_control -i on`), and every other subcommand
# (`api-key create`, ...) as is; REAL_BIN keeps the binary. OUTFILE is callgrind's
# --callgrind-out-file, written into the wrapper as given: pass '$PWD/...' in single quotes for
# the wrapper's working folder, or a `%p` for the process id.
callgrind_serve() {
  local out=$1 wrapper=$WORK/vidi-callgrind
  REAL_BIN=$VIDI_BIN
  cat >"$wrapper" <<EOF
#!/bin/sh
if [ "\$1" = serve ]; then
  exec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out" "$REAL_BIN" "\$@"
fi
exec "$REAL_BIN" "\$@"
EOF
  chmod +x "$wrapper"
  VIDI_BIN=$wrapper
}
