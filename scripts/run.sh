#!/usr/bin/env bash
# Installs what is missing, builds Vidi and starts it with the embedded default (SQLite and a
# local folder in ./vidi-data). On first start it prints an API key and the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --release --locked -p vidi -- serve "$@"
