#!/usr/bin/env bash
# The wire contract checked by machines: starts a real `vidi serve` on its own port and data
# folder (on the backends of the environment's VIDI_DATABASE_URL/VIDI_STORAGE_URL when given,
# else SQLite and a local folder), then runs schemathesis with api.video's 2023 OpenAPI file and
# with Vidi's /openapi.json against it (tests/contract/contract.py; docs/contract.md lists the
# differences it explains).
#
#   tests/contract/run.sh            (after scripts/setup.sh --test and `cargo build -p vidi`)
#
# Bounded: a few examples per operation and phase (VIDI_CONTRACT_EXAMPLES, default 8).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin=${VIDI_BIN:-$root/target/debug/vidi}
py="$root/.venv/bin/python"
[ -x "$bin" ] || { echo "contract: $bin missing: cargo build -p vidi first" >&2; exit 2; }
"$py" -c 'import schemathesis' 2>/dev/null || { echo "contract: schemathesis missing: scripts/setup.sh --test" >&2; exit 2; }

dir=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
envs=(VIDI_DATA_DIR="$dir" VIDI_HTTP_ADDR="127.0.0.1:$port" VIDI_RTMP_ADDR=127.0.0.1:0 VIDI_LOG=warn)
key=$(env "${envs[@]}" "$bin" api-key create)
env "${envs[@]}" "$bin" serve >"$dir/out.log" 2>"$dir/err.log" &
pid=$!
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break; sleep 0.1; done
status=0
VIDI_URL="http://127.0.0.1:$port" VIDI_API_KEY="$key" "$py" "$root/tests/contract/contract.py" || status=$?
if [ "$status" -ne 0 ]; then
  echo "contract: server log:" >&2; tail -n 40 "$dir/err.log" >&2
fi
exit "$status"
