#!/usr/bin/env bash
# A Vidi cluster on loopback: 2 API nodes (`vidi serve`, VIDI_WORKERS=0) and 2 workers
# (`vidi worker`) sharing the machine's PostgreSQL (a fresh schema) and a SeaweedFS S3 server
# (scripts/s3.sh), behind nginx (Debian's, with libnginx-mod-stream for RTMP).
#
#   scripts/cluster.sh up [DIR]     starts it; prints `VIDI_URL=…`, `VIDI_API_KEY=…` and
#                                   `VIDI_RTMP_URL=…` (also in DIR/client.env)
#   scripts/cluster.sh down [DIR]   stops everything and drops the schema
#   scripts/cluster.sh kill NODE [DIR]   kill -9 of one process (api1, api2, worker1, worker2)
#   scripts/cluster.sh start NODE [DIR]  starts it again
#   scripts/cluster.sh pg|s3 down|up [DIR]  cuts or restores every node's way to PostgreSQL or
#                                   S3 (a TCP forwarder sits in between: tests/cluster/tcpproxy.py)
#
# DIR (default /tmp/vidi-cluster) holds the pids, the logs (DIR/<node>.log), the nginx config
# and DIR/nodes.env: the settings every node shares (a further node, such as the browser suite's
# TLS node, joins the cluster with them). PostgreSQL: VIDI_TEST_PG_URL, default
# postgres://postgres@127.0.0.1:5432/test. CLUSTER_SETTINGS: extra `VIDI_X=v` words for every
# node (e.g. "VIDI_PIECE_SECS=4 VIDI_CLAIM_STALE_SECS=3").
#
# Routing (the nginx config below says why): HTTP is spread over both API nodes, round robin,
# a node that fails skipped for a few seconds. Live is not spread: a broadcast's playlists and
# parts are held in the memory of the node its publisher is connected to, and nginx cannot read
# the stream key out of RTMP to hash on it. So RTMP and `/live/…` both go to api1, with api2 as
# their backup: while api1 is up every publisher and every live viewer meet on it; when it dies
# publishers reconnect to api2 and viewers follow them there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cmd=${1:?up|down|kill|start|pg|s3}
case "$cmd" in
  kill | start | pg | s3) arg=${2:?which}; dir=${3:-/tmp/vidi-cluster} ;;
  *) dir=${2:-/tmp/vidi-cluster} ;;
esac
vidi=${VIDI_BIN:-$root/target/debug/vidi}
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { # port, pid, label
  for _ in $(seq 1 300); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "cluster: $3 did not come up; its log:" >&2
  tail -n 20 "$dir/$3.log" >&2 || true
  return 1
}

# Starts one node from DIR/nodes.env and DIR/<node>.env (its own addresses).
start_node() {
  local node=$1 role=serve
  case "$node" in worker*) role=worker ;; esac
  (
    set -a
    . "$dir/nodes.env"
    . "$dir/$node.env"
    set +a
    exec "$vidi" "$role"
  ) >>"$dir/$node.log" 2>&1 &
  echo $! >"$dir/$node.pid"
}

case "$cmd" in
  up)
    [ -x "$vidi" ] || { echo "cluster: $vidi is missing (cargo build -p vidi)" >&2; exit 2; }
    command -v nginx >/dev/null || { echo "cluster: nginx is missing (scripts/setup.sh --test)" >&2; exit 2; }
    [ -e "$dir/nodes.env" ] && { echo "cluster: $dir holds a cluster already (scripts/cluster.sh down $dir)" >&2; exit 2; }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    pg_url=${VIDI_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}
    # The PostgreSQL URL with its host and port replaced by the forwarder's.
    pg_host_port=$(python3 -c 'import sys,urllib.parse as u;p=u.urlsplit(sys.argv[1]);print((p.hostname or "127.0.0.1") + ":" + str(p.port or 5432))' "$pg_url")
    (exec 3<>/dev/tcp/"${pg_host_port%:*}"/"${pg_host_port#*:}") 2>/dev/null \
      || { echo "cluster: PostgreSQL is not reachable at $pg_host_port" >&2; exit 2; }

    scripts/s3.sh start "$dir/s3" >"$dir/s3.env" || { echo "cluster: SeaweedFS did not start" >&2; exit 2; }
    s3_target=$(sed -n 's#^AWS_ENDPOINT_URL=http://##p' "$dir/s3.env")

    # The forwarders every node reaches PostgreSQL and S3 through (the faults cut them).
    pg_proxy=$(free_port)
    s3_proxy=$(free_port)
    python3 tests/cluster/tcpproxy.py "$pg_proxy" "$pg_host_port" >"$dir/pg-proxy.log" 2>&1 &
    echo $! >"$dir/pg-proxy.pid"
    python3 tests/cluster/tcpproxy.py "$s3_proxy" "$s3_target" >"$dir/s3-proxy.log" 2>&1 &
    echo $! >"$dir/s3-proxy.pid"
    wait_port "$pg_proxy" "$(cat "$dir/pg-proxy.pid")" pg-proxy
    wait_port "$s3_proxy" "$(cat "$dir/s3-proxy.pid")" s3-proxy
    node_pg_url=$(python3 -c 'import sys,urllib.parse as u;p=u.urlsplit(sys.argv[1]);n=p.netloc.rsplit("@",1);a=n[0]+"@" if len(n)==2 else "";print(u.urlunsplit(p._replace(netloc=f"{a}127.0.0.1:{sys.argv[2]}")))' "$pg_url" "$pg_proxy")

    schema="cluster_$(date +%s)_$$"
    http_port=$(free_port)
    rtmp_port=$(free_port)
    {
      grep -v '^AWS_ENDPOINT_URL=\|^VIDI_TEST_S3_URL=' "$dir/s3.env"
      echo "AWS_ENDPOINT_URL=http://127.0.0.1:$s3_proxy"
      echo "VIDI_DATABASE_URL=$node_pg_url"
      echo "VIDI_DATABASE_SCHEMA=$schema"
      echo "VIDI_STORAGE_URL=s3://videos/$schema"
      echo "VIDI_PUBLIC_URL=http://127.0.0.1:$http_port"
      echo "VIDI_LOG=${VIDI_LOG:-info}"
      for s in ${CLUSTER_SETTINGS:-}; do echo "$s"; done
    } >"$dir/nodes.env"
    # Kept apart from nodes.env: `down` drops the schema through the real server, not the
    # forwarder (which a fault test may have left down).
    echo "$pg_url" >"$dir/pg-url"
    echo "$schema" >"$dir/schema"

    declare -A api_http api_rtmp
    for n in api1 api2; do
      api_http[$n]=$(free_port)
      api_rtmp[$n]=$(free_port)
      printf 'VIDI_WORKERS=0\nVIDI_HTTP_ADDR=127.0.0.1:%s\nVIDI_RTMP_ADDR=127.0.0.1:%s\nVIDI_DATA_DIR=%s\n' \
        "${api_http[$n]}" "${api_rtmp[$n]}" "$dir/$n" >"$dir/$n.env"
    done
    for n in worker1 worker2; do
      printf 'VIDI_DATA_DIR=%s\n' "$dir/$n" >"$dir/$n.env"
    done

    # The schema's tables once, before any node, and the key the clients use.
    (set -a; . "$dir/nodes.env"; . "$dir/api1.env"; set +a; "$vidi" migrate) >>"$dir/api1.log" 2>&1 \
      || { echo "cluster: vidi migrate failed:" >&2; tail -n 20 "$dir/api1.log" >&2; exit 1; }
    key=$(set -a; . "$dir/nodes.env"; . "$dir/api1.env"; set +a; "$vidi" api-key create --name cluster 2>>"$dir/api1.log")

    for n in api1 api2 worker1 worker2; do start_node "$n"; done
    for n in api1 api2; do wait_port "${api_http[$n]}" "$(cat "$dir/$n.pid")" "$n"; done

    stream_module=""
    for m in /usr/lib/nginx/modules/ngx_stream_module.so /usr/share/nginx/modules/ngx_stream_module.so; do
      [ -f "$m" ] && { stream_module=$m; break; }
    done
    nginx_rtmp=""
    if nginx -V 2>&1 | grep -q -- '--with-stream\( \|$\)'; then
      nginx_rtmp=builtin
    elif [ -n "$stream_module" ]; then
      nginx_rtmp="load_module $stream_module;"
    else
      echo "cluster: nginx has no stream module (apt-get install libnginx-mod-stream): RTMP goes straight to api1" >&2
    fi
    mkdir -p "$dir/nginx"
    {
      [ -n "$nginx_rtmp" ] && [ "$nginx_rtmp" != builtin ] && echo "$nginx_rtmp"
      cat <<NGINX
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $dir/nginx/access.log;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  # Every API node answers every API request (state is in PostgreSQL and S3): round robin, a
  # node that fails a request skipped for 5 s (nginx's open-source build has no active checks).
  upstream api {
    server 127.0.0.1:${api_http[api1]} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:${api_http[api2]} max_fails=1 fail_timeout=5s;
    keepalive 32;
  }
  # Live playlists and parts live in the memory of the node the publisher is connected to:
  # the same node RTMP goes to below, the other one its backup.
  upstream live {
    server 127.0.0.1:${api_http[api1]} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:${api_http[api2]} backup;
    keepalive 8;
  }
  server {
    listen 127.0.0.1:$http_port;
    # Uploads: up to VIDI_MAX_REQUEST_BYTES (200 MiB) a request, streamed to the node as they
    # arrive rather than spooled to nginx's disk first.
    client_max_body_size 200m;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host \$http_host;
    proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto \$scheme;
    # An upload's last chunk waits for its assembly (VIDI_ASSEMBLY_WAIT_SECS), a live
    # playlist's blocking reload for its next part: neither is a dead node.
    proxy_read_timeout 120s;
    proxy_send_timeout 120s;
    proxy_connect_timeout 2s;
    # A node that refuses the connection or dies before answering: the next one, for any request
    # (nginx never repeats a non-idempotent request whose body it already sent).
    proxy_next_upstream error timeout http_502;
    proxy_next_upstream_tries 2;
    location /live/ { proxy_pass http://live; }
    location / { proxy_pass http://api; }
  }
}
NGINX
      if [ -n "$nginx_rtmp" ]; then
        cat <<NGINX
stream {
  upstream rtmp {
    server 127.0.0.1:${api_rtmp[api1]} max_fails=1 fail_timeout=5s;
    server 127.0.0.1:${api_rtmp[api2]} backup;
  }
  server {
    listen 127.0.0.1:$rtmp_port;
    proxy_pass rtmp;
    proxy_connect_timeout 2s;
    # A publisher may pause; Vidi's own media timeout decides when it is gone.
    proxy_timeout 10m;
  }
}
NGINX
      else
        rtmp_port=${api_rtmp[api1]}
      fi
    } >"$dir/nginx/nginx.conf"
    nginx -e "$dir/nginx/error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" -g 'daemon off;' \
      >>"$dir/nginx/error.log" 2>&1 &
    echo $! >"$dir/nginx.pid"
    wait_port "$http_port" "$(cat "$dir/nginx.pid")" nginx/error

    {
      echo "VIDI_URL=http://127.0.0.1:$http_port"
      echo "VIDI_API_KEY=$key"
      echo "VIDI_RTMP_URL=rtmp://127.0.0.1:$rtmp_port/s"
    } | tee "$dir/client.env"
    ;;

  down)
    [ -d "$dir" ] || exit 0
    for n in nginx api1 api2 worker1 worker2; do
      [ -f "$dir/$n.pid" ] && kill "$(cat "$dir/$n.pid")" 2>/dev/null || true
    done
    # The nodes stop gracefully (running encodes handed back); what has not after 10 s is killed.
    for _ in $(seq 1 100); do
      alive=0
      for n in api1 api2 worker1 worker2; do
        [ -f "$dir/$n.pid" ] && kill -0 "$(cat "$dir/$n.pid")" 2>/dev/null && alive=1
      done
      [ "$alive" = 0 ] && break
      sleep 0.1
    done
    for n in api1 api2 worker1 worker2; do
      [ -f "$dir/$n.pid" ] && kill -9 "$(cat "$dir/$n.pid")" 2>/dev/null || true
    done
    for p in pg-proxy s3-proxy; do
      [ -f "$dir/$p.pid" ] && kill "$(cat "$dir/$p.pid")" 2>/dev/null || true
    done
    if [ -f "$dir/schema" ] && command -v psql >/dev/null; then
      psql "$(cat "$dir/pg-url")" -qc "DROP SCHEMA IF EXISTS \"$(cat "$dir/schema")\" CASCADE" >/dev/null 2>&1 \
        || echo "cluster: could not drop schema $(cat "$dir/schema")" >&2
    fi
    scripts/s3.sh stop "$dir/s3" || true
    # SeaweedFS can take a while over SIGTERM: gone within 10 s, or killed.
    if [ -f "$dir/s3/weed.pid" ]; then
      for _ in $(seq 1 100); do kill -0 "$(cat "$dir/s3/weed.pid")" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$(cat "$dir/s3/weed.pid")" 2>/dev/null || true
    fi
    rm -f "$dir"/*.pid "$dir/nodes.env" "$dir/schema"
    ;;

  kill)
    kill -9 "$(cat "$dir/$arg.pid")"
    ;;

  start)
    start_node "$arg"
    ;;

  pg | s3)
    case "$arg" in
      down) kill -USR1 "$(cat "$dir/$cmd-proxy.pid")" ;;
      up) kill -USR2 "$(cat "$dir/$cmd-proxy.pid")" ;;
      *) echo "cluster: $cmd down|up" >&2; exit 2 ;;
    esac
    ;;

  *)
    echo "usage: scripts/cluster.sh up|down [DIR]" >&2
    exit 2
    ;;
esac
