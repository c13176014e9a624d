#!/usr/bin/env bash
# Runs the official api.video clients, unchanged, against a running Vidi server:
# first @api.video/nodejs-client 2.5.4 (node --test), then api.video 1.3.0 (pytest).
#
#   VIDI_URL=http://127.0.0.1:8080 VIDI_API_KEY=<key> tests/sdk/run.sh [extra pytest args]
#
# Needs what scripts/setup.sh installs: ffmpeg, .venv (Python deps) and
# tests/sdk/node/node_modules. Both suites always run; the exit status is non-zero if
# either failed.
set -uo pipefail

: "${VIDI_URL:?VIDI_URL must be set to the server base URL, e.g. http://127.0.0.1:8080}"
: "${VIDI_API_KEY:?VIDI_API_KEY must be set to a key made with \`vidi api-key create\`}"
export VIDI_URL VIDI_API_KEY

root="$(cd "$(dirname "$0")/../.." && pwd)"
sdk="$root/tests/sdk"

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=("ffmpeg")
command -v node >/dev/null 2>&1 || missing+=("node")
[ -d "$sdk/node/node_modules/@api.video/nodejs-client" ] || missing+=("tests/sdk/node/node_modules")
[ -x "$root/.venv/bin/python" ] || missing+=(".venv")
if [ ${#missing[@]} -gt 0 ]; then
  echo "sdk tests: missing ${missing[*]}; run scripts/setup.sh --test first" >&2
  exit 2
fi

status=0

echo "== Node: @api.video/nodejs-client 2.5.4 against $VIDI_URL"
# One test file at a time: the upload tests are heavy for a small machine.
(cd "$sdk/node" && node --test --test-reporter=spec --test-concurrency=1 ./*.test.mjs) || status=1

echo "== Python: api.video 1.3.0 against $VIDI_URL"
(cd "$sdk/python" && PYTHONDONTWRITEBYTECODE=1 "$root/.venv/bin/python" -m pytest "$@") || status=1

if [ "$status" -ne 0 ]; then
  echo "sdk tests: FAILED" >&2
else
  echo "sdk tests: passed"
fi
exit "$status"
