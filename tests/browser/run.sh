#!/usr/bin/env bash
# Plays the player page in a real browser (Debian's Chromium, driven by playwright-core) against
# a running Vidi server: a public video, then a private one with and without its token
# (player.test.mjs); api.video's player SDK driving it from another origin, and a player theme
# (sdk.test.mjs); api.video's browser uploader over Vidi's own TLS (uploader.test.mjs); the live
# player page idle, then live from an ffmpeg publisher over RTMP (live.test.mjs).
#
#   VIDI_URL=http://127.0.0.1:8080 VIDI_API_KEY=<key> VIDI_RTMP_URL=rtmp://127.0.0.1:1935/s tests/browser/run.sh
#
# The uploader needs https: this script starts a second `vidi serve` with a self-signed
# certificate (VIDI_TLS_CERT/VIDI_TLS_KEY) and stops it at the end. Given the first server's
# VIDI_* environment (as scripts/test.sh gives it: VIDI_DATA_DIR, VIDI_DATABASE_URL, …), that
# node shares its database and media store, as a second node of one deployment would, and
# VIDI_API_KEY works on both; without VIDI_DATA_DIR it runs alone on a fresh SQLite folder with
# its own key. VIDI_TLS_URL and VIDI_TLS_API_KEY, when set, name a TLS node to use instead.
# VIDI_BIN is the binary (default target/debug/vidi).
#
# Needs what scripts/setup.sh --test installs: ffmpeg, openssl, chromium and
# tests/browser/node_modules. CHROMIUM overrides the browser binary (default /usr/bin/chromium).
set -uo pipefail

: "${VIDI_URL:?VIDI_URL must be set to the server base URL, e.g. http://127.0.0.1:8080}"
: "${VIDI_API_KEY:?VIDI_API_KEY must be set to a key made with \`vidi api-key create\`}"
export VIDI_URL VIDI_API_KEY
# The live player test publishes over RTMP to the server: its ingest is VIDI_RTMP_URL, or else
# VIDI_RTMP_ADDR (the server's setting, as scripts/test.sh passes it) when that names a port.
if [ -z "${VIDI_RTMP_URL:-}" ] && [ -n "${VIDI_RTMP_ADDR:-}" ] && [ "${VIDI_RTMP_ADDR##*:}" != "0" ] && [ "${VIDI_RTMP_ADDR}" != "off" ]; then
  VIDI_RTMP_URL="rtmp://${VIDI_RTMP_ADDR/0.0.0.0/127.0.0.1}/s"
fi
: "${VIDI_RTMP_URL:?VIDI_RTMP_URL (e.g. rtmp://127.0.0.1:1935/s) or VIDI_RTMP_ADDR must name the RTMP ingest of the server}"
export VIDI_RTMP_URL

dir="$(cd "$(dirname "$0")" && pwd)"

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=("ffmpeg")
command -v node >/dev/null 2>&1 || missing+=("node")
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=("${CHROMIUM:-/usr/bin/chromium}")
for pkg in playwright-core @api.video/player-sdk @api.video/video-uploader; do
  [ -d "$dir/node_modules/$pkg" ] || { missing+=("tests/browser/node_modules ($pkg)"); break; }
done
if [ -z "${VIDI_TLS_URL:-}" ]; then
  command -v openssl >/dev/null 2>&1 || missing+=("openssl")
  [ -x "${VIDI_BIN:-$dir/../../target/debug/vidi}" ] || missing+=("${VIDI_BIN:-target/debug/vidi} (cargo build -p vidi)")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "browser tests: missing ${missing[*]}; run scripts/setup.sh --test first" >&2
  exit 2
fi

# ---- The TLS node ------------------------------------------------------------------------------
tls_pid=""
tls_dir=""
stop_tls() {
  [ -n "$tls_pid" ] && kill "$tls_pid" 2>/dev/null && wait "$tls_pid" 2>/dev/null
  [ -n "$tls_dir" ] && rm -rf "$tls_dir"
}
trap stop_tls EXIT
if [ -z "${VIDI_TLS_URL:-}" ]; then
  vidi=$(cd "$(dirname "${VIDI_BIN:-$dir/../../target/debug/vidi}")" && pwd)/$(basename "${VIDI_BIN:-vidi}")
  tls_dir=$(mktemp -d)
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$tls_dir/key.pem" -out "$tls_dir/cert.pem" 2>/dev/null \
    || { echo "browser tests: openssl could not make a certificate" >&2; exit 2; }
  tls_port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  tls_env=(VIDI_HTTP_ADDR="127.0.0.1:$tls_port" VIDI_RTMP_ADDR=127.0.0.1:0 VIDI_TLS_CERT="$tls_dir/cert.pem" VIDI_TLS_KEY="$tls_dir/key.pem"
    VIDI_PUBLIC_URL="https://127.0.0.1:$tls_port" VIDI_LOG="${VIDI_LOG:-warn}")
  if [ -n "${VIDI_DATA_DIR:-}" ]; then
    VIDI_TLS_API_KEY=$VIDI_API_KEY # the same database
  else
    tls_env+=(VIDI_DATA_DIR="$tls_dir/data")
    VIDI_TLS_API_KEY=$(env "${tls_env[@]}" "$vidi" api-key create) \
      || { echo "browser tests: could not create a key for the TLS node" >&2; exit 2; }
  fi
  env "${tls_env[@]}" "$vidi" serve >"$tls_dir/serve.log" 2>&1 &
  tls_pid=$!
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$tls_port") 2>/dev/null && break; sleep 0.1; done
  if ! kill -0 "$tls_pid" 2>/dev/null; then
    echo "browser tests: the TLS node did not start:" >&2; cat "$tls_dir/serve.log" >&2; exit 2
  fi
  VIDI_TLS_URL="https://127.0.0.1:$tls_port"
fi
: "${VIDI_TLS_API_KEY:?VIDI_TLS_API_KEY must be set with VIDI_TLS_URL}"
export VIDI_TLS_URL VIDI_TLS_API_KEY

echo "== Browser: the player page, the player SDK and the uploader in Chromium against $VIDI_URL (TLS node $VIDI_TLS_URL)"
if (cd "$dir" && node --test --test-reporter=spec --test-concurrency=1 ./*.test.mjs); then
  echo "browser tests: passed"
else
  echo "browser tests: FAILED" >&2
  [ -n "$tls_dir" ] && { echo "the TLS node's log:" >&2; tail -n 30 "$tls_dir/serve.log" >&2; }
  exit 1
fi
