#!/usr/bin/env bash
# Plays the player page in a real browser (Debian's Chromium, driven by playwright-core) against
# a running Vidi server: a public video, then a private one with and without its token.
#
#   VIDI_URL=http://127.0.0.1:8080 VIDI_API_KEY=<key> tests/browser/run.sh
#
# Needs what scripts/setup.sh --test installs: ffmpeg, chromium and tests/browser/node_modules.
# CHROMIUM overrides the browser binary (default /usr/bin/chromium).
set -uo pipefail

: "${VIDI_URL:?VIDI_URL must be set to the server base URL, e.g. http://127.0.0.1:8080}"
: "${VIDI_API_KEY:?VIDI_API_KEY must be set to a key made with \`vidi api-key create\`}"
export VIDI_URL VIDI_API_KEY

dir="$(cd "$(dirname "$0")" && pwd)"

missing=()
command -v ffmpeg >/dev/null 2>&1 || missing+=("ffmpeg")
command -v node >/dev/null 2>&1 || missing+=("node")
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=("${CHROMIUM:-/usr/bin/chromium}")
[ -d "$dir/node_modules/playwright-core" ] || missing+=("tests/browser/node_modules")
if [ ${#missing[@]} -gt 0 ]; then
  echo "browser tests: missing ${missing[*]}; run scripts/setup.sh --test first" >&2
  exit 2
fi

echo "== Browser: the player page in Chromium against $VIDI_URL"
if (cd "$dir" && node --test --test-reporter=spec --test-concurrency=1 ./*.test.mjs); then
  echo "browser tests: passed"
else
  echo "browser tests: FAILED" >&2
  exit 1
fi
