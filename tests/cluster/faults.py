#!/usr/bin/env python3
"""Faults on a running cluster (scripts/cluster.sh up DIR), each a real check:

  api-kill   kill -9 of an API node mid chunked upload: the client resumes the remaining chunks
             through nginx (on the other node); the assembled source is byte-identical.
  worker-kill  kill -9 of a worker mid encode: the other one finishes, exactly once (one set of
             renditions, one video.encoding.quality.completed per quality).
  pg         PostgreSQL unreachable under load: answers are 503 problems with Retry-After (never
             a 500 or a hang), every node stays up, and all recover without a restart.
  s3         S3 unreachable: an upload is refused clearly (503 + Retry-After), nothing acknowledged
             is lost, and an encode caught by the outage finishes once S3 returns.
  live-kill  kill -9 of the node holding a live broadcast: `broadcasting` false within the
             staleness (VIDI_LIVE_STALE_SECS) plus a heartbeat or two, `live-stream.broadcast.ended`
             recorded once, and the broadcast's recording still made (found by liveStreamId) and
             encoded.

    tests/cluster/faults.py DIR [TEST…]      (all of them by default, in the order above)

Killed nodes are started again after each test. Needs ffmpeg and psql. The cluster should run
with short recovery times (scripts/test.sh starts it so): CLUSTER_SETTINGS="VIDI_CLAIM_STALE_SECS=3
VIDI_JOB_STALE_SECS=5 VIDI_PIECE_SECS=4 VIDI_LIVE_STALE_SECS=6 VIDI_LIVE_HEARTBEAT_SECS=1".
"""
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DIR = os.path.abspath(sys.argv[1])


def env_file(name):
    out = {}
    with open(os.path.join(DIR, name)) as f:
        for line in f:
            line = line.strip()
            if "=" in line and not line.startswith("#"):
                k, v = line.split("=", 1)
                out[k] = v
    return out


CLIENT = env_file("client.env")
NODES = env_file("nodes.env")
S3 = env_file("s3.env")
URL = CLIENT["VIDI_URL"]
AUTH = "Basic " + base64.b64encode((CLIENT["VIDI_API_KEY"] + ":").encode()).decode()
SCHEMA = NODES["VIDI_DATABASE_SCHEMA"]
PG_URL = open(os.path.join(DIR, "pg-url")).read().strip()
CHUNK = 5 * 1024 * 1024
OUTAGE_SECS = 14


class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"{self.status} {self.body[:300]!r}"


def call(method, path, body=None, headers=None, base=None, timeout=60):
    h = {"Authorization": AUTH}
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    req = urllib.request.Request((base or URL) + path, data=body, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Answer(r.status, r.headers, r.read())
    except urllib.error.HTTPError as e:
        return Answer(e.code, e.headers, e.read())
    except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
        return Answer(0, {}, str(e).encode())


def multipart(data, boundary="vidi-cluster-faults"):
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
        "Content-Type: video/mp4\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload_chunk(vid, data, start, total, base=None):
    head, tail, ctype = multipart(data)
    rng = f"bytes {start}-{start + len(data) - 1}/{total}"
    return call("POST", f"/videos/{vid}/source", head + data + tail,
                {"Content-Type": ctype, "Content-Range": rng}, base=base, timeout=120)


def node_port(node):
    return int(env_file(f"{node}.env")["VIDI_HTTP_ADDR"].rsplit(":", 1)[1])


def pid(node):
    with open(os.path.join(DIR, f"{node}.pid")) as f:
        return int(f.read())


def alive(node):
    try:
        os.kill(pid(node), 0)
    except ProcessLookupError:
        return False
    # A zombie (killed, not yet reaped) is not alive.
    try:
        with open(f"/proc/{pid(node)}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def cluster(*args):
    subprocess.run([os.path.join(ROOT, "scripts", "cluster.sh"), *args, DIR], check=True)


def restart(node):
    cluster("start", node)
    if node.startswith("api"):
        wait_for(lambda: call("GET", "/health", base=f"http://127.0.0.1:{node_port(node)}").status == 200,
                 30, f"{node} back")


def psql(sql):
    out = subprocess.run(["psql", PG_URL, "-qtAX", "-F", "\t", "-c", f"SET search_path TO {SCHEMA}; {sql}"],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def wait_for(cond, secs, what):
    deadline = time.monotonic() + secs
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {secs} s waiting for: {what}")
        time.sleep(0.25)


def make_video(path, secs, size="1280x720", bitrate="6M"):
    # Noise compresses badly, so a few seconds make several 5 MiB chunks.
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=25:duration={secs}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={secs}",
                    "-vf", "noise=alls=40:allf=t", "-c:v", "libx264", "-preset", "ultrafast", "-b:v", bitrate,
                    "-c:a", "aac", "-shortest", path], check=True)
    with open(path, "rb") as f:
        return f.read()


def create_video(title):
    r = call("POST", "/videos", {"title": title})
    assert r.status == 201, r
    return r.json()["videoId"]


def status(vid):
    r = call("GET", f"/videos/{vid}/status")
    return r.json() if r.status == 200 else None


def source_bytes(vid):
    """The assembled source as stored in S3 (read beside Vidi: nothing in the API returns it)."""
    key = psql(f"SELECT source_key FROM videos WHERE id = '{vid}'")[0][0]
    prefix = NODES["VIDI_STORAGE_URL"].removeprefix("s3://")
    out = subprocess.run(["curl", "-sf", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user",
                          f"{S3['AWS_ACCESS_KEY_ID']}:{S3['AWS_SECRET_ACCESS_KEY']}",
                          f"{S3['AWS_ENDPOINT_URL']}/{prefix}/{key}"], check=True, capture_output=True)
    return out.stdout


def encoded(vid):
    s = status(vid)
    q = (s or {}).get("encoding", {}).get("qualities", [])
    return s if q and all(x.get("status") == "encoded" for x in q) and s["encoding"].get("playable") else None


def check_exactly_once(vid):
    s = encoded(vid)
    qualities = sorted((q.get("type", "hls"), q["quality"]) for q in s["encoding"]["qualities"])
    assert len(qualities) == len(set(qualities)), f"a quality twice in the status: {qualities}"
    events = psql(f"SELECT fields FROM events WHERE kind = 'video.encoding.quality.completed' AND subject = '{vid}'")
    done = sorted((json.loads(f[0])["encoding"], json.loads(f[0])["quality"]) for f in events)
    assert done == qualities, f"quality.completed events {done}, qualities {qualities}"
    names = [r[0] for r in psql(f"SELECT name FROM video_renditions WHERE video_id = '{vid}'")]
    assert names and len(names) == len(set(names)), f"renditions {names}"
    return [f"{t} {q}" for t, q in qualities]


# ---------------------------------------------------------------------------------------------

def test_api_kill(tmp):
    data = make_video(os.path.join(tmp, "upload.mp4"), 10, bitrate="12M")
    total = len(data)
    chunks = [(i, data[i:i + CHUNK]) for i in range(0, total, CHUNK)]
    assert len(chunks) >= 3, f"the source is {total} bytes: too few chunks"
    vid = create_video("fault: api node killed mid upload")
    r = upload_chunk(vid, chunks[0][1], 0, total)
    assert r.status == 201, r
    # Chunk 2 goes to api1 and is half sent when api1 dies.
    head, _, ctype = multipart(chunks[1][1])
    s = socket.create_connection(("127.0.0.1", node_port("api1")))
    body_len = len(head) + len(chunks[1][1]) + len(multipart(b"")[1])
    s.sendall((f"POST /videos/{vid}/source HTTP/1.1\r\nHost: x\r\nAuthorization: {AUTH}\r\n"
               f"Content-Range: bytes {chunks[1][0]}-{chunks[1][0] + len(chunks[1][1]) - 1}/{total}\r\n"
               f"Content-Type: {ctype}\r\nContent-Length: {body_len}\r\n\r\n").encode() + head
              + chunks[1][1][:len(chunks[1][1]) // 2])
    time.sleep(0.5)
    cluster("kill", "api1")
    s.close()
    # The client resumes through nginx: the rest goes to api2. Until the dead node's claim on
    # chunk 2 is stale the chunk answers 409; nginx's first try at the dead node is skipped.
    for start, part in chunks[1:]:
        r = wait_for(lambda: (lambda a: a if a.status not in (0, 409, 502, 503) else None)(
            upload_chunk(vid, part, start, total)), 60, f"chunk at {start} accepted")
        assert r.status == 201, r
    wait_for(lambda: (status(vid) or {}).get("ingest", {}).get("status") == "uploaded", 60, "assembled")
    got = source_bytes(vid)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest(), \
        f"the assembled source differs ({len(got)} bytes, sent {total})"
    restart("api1")
    return f"{len(chunks)} chunks, api1 killed mid chunk 2, sha256 identical"


def busy_worker():
    """The worker that has an ffmpeg running under it, if any."""
    for w in ("worker1", "worker2"):
        if not alive(w):
            continue
        out = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(pid(w))], capture_output=True, text=True).stdout
        if any(line.split()[1].startswith("ffmpeg") for line in out.splitlines() if len(line.split()) > 1):
            return w
        # ffmpeg under a helper process of the worker (the media jail)
        for child in out.split()[::2]:
            sub = subprocess.run(["ps", "-o", "comm=", "--ppid", child], capture_output=True, text=True).stdout
            if "ffmpeg" in sub:
                return w
    return None


def test_worker_kill(tmp):
    data = make_video(os.path.join(tmp, "encode.mp4"), 20, bitrate="3M")
    vid = create_video("fault: worker killed mid encode")
    r = upload_chunk(vid, data, 0, len(data))
    assert r.status == 201, r
    # Wait until the video's ladder is being encoded (past its head: some quality is encoding).
    wait_for(lambda: (status(vid) or {}).get("encoding", {}).get("playable"), 120, "playable (the head done)")
    victim = wait_for(busy_worker, 60, "a worker running ffmpeg")
    cluster("kill", victim)
    s = wait_for(lambda: encoded(vid), 240, "every quality encoded by the surviving worker")
    qualities = check_exactly_once(vid)
    restart(victim)
    assert s["encoding"]["playable"]
    return f"{victim} killed mid encode; {len(qualities)} qualities {qualities}, each completed once"


def test_pg(tmp):
    # Load: a few clients reading and writing through nginx all along.
    stop = threading.Event()
    outage = threading.Event()
    seen = []  # (during outage, status, headers, body)
    created = []
    lock = threading.Lock()

    def client(n):
        i = 0
        while not stop.is_set():
            i += 1
            if i % 2:
                r = call("GET", "/videos?pageSize=5", timeout=60)
            else:
                r = call("POST", "/videos", {"title": f"load {n}-{i}"}, timeout=60)
                if r.status == 201:
                    with lock:
                        created.append(r.json()["videoId"])
            with lock:
                seen.append((outage.is_set(), r.status, r.headers, r.body))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(2)
    cluster("pg", "down")
    outage.set()
    # Longer than the pool's 10 s wait for a connection: requests that began in the outage must
    # end as 503s, not hang until PostgreSQL returns.
    time.sleep(OUTAGE_SECS)
    cluster("pg", "up")
    back = time.monotonic()
    # Recovery without a restart: a read succeeds on each API node.
    for node in ("api1", "api2"):
        wait_for(lambda: call("GET", "/videos?pageSize=1", base=f"http://127.0.0.1:{node_port(node)}").status == 200,
                 30, f"{node} answers again")
    recovered = time.monotonic() - back
    outage.clear()
    time.sleep(2)
    stop.set()
    for t in threads:
        t.join()
    bad = [(st, b[:200]) for (_, st, _, b) in seen if st not in (200, 201, 503)]
    assert not bad, f"answers other than 200/201/503: {bad[:5]}"
    unavailable = [(h, b) for (_, st, h, b) in seen if st == 503]
    assert unavailable, "no request met the outage"
    for h, b in unavailable:
        assert h.get("Retry-After"), f"503 without Retry-After: {b[:200]}"
        assert h.get("Content-Type") == "application/problem+json", h.get("Content-Type")
        assert json.loads(b)["status"] == 503
    for n in ("api1", "api2", "worker1", "worker2"):
        assert alive(n), f"{n} died during the database outage"
    # Nothing acknowledged was lost.
    ids = {r[0] for r in psql("SELECT id FROM videos")}
    missing = [v for v in created if v not in ids]
    assert not missing, f"created (201) but gone: {missing}"
    return (f"{len(seen)} requests, {len(unavailable)} answered 503 + Retry-After during the {OUTAGE_SECS} s outage, "
            f"none 500; every node up; both API nodes answered {recovered:.1f} s after PostgreSQL returned")


def test_s3(tmp):
    data = make_video(os.path.join(tmp, "s3.mp4"), 12, bitrate="2M")
    # An encode in flight when S3 goes away.
    busy = create_video("fault: encoding across an S3 outage")
    r = upload_chunk(busy, data, 0, len(data))
    assert r.status == 201, r
    wait_for(lambda: busy_worker(), 60, "a worker running ffmpeg")
    cluster("s3", "down")
    try:
        refused = create_video("fault: uploaded during an S3 outage")
        r = upload_chunk(refused, data, 0, len(data))
        assert r.status == 503, f"an upload while S3 is down: {r}"
        assert r.headers.get("Retry-After") and json.loads(r.body)["status"] == 503, r
        time.sleep(5)
    finally:
        cluster("s3", "up")
    # The refused upload is sent again and goes through; the encode caught by the outage finishes.
    r = wait_for(lambda: (lambda a: a if a.status != 503 else None)(upload_chunk(refused, data, 0, len(data))),
                 30, "the upload accepted once S3 is back")
    assert r.status == 201, r
    for vid in (busy, refused):
        wait_for(lambda: encoded(vid), 300, f"{vid} encoded after the outage")
        got = source_bytes(vid)
        assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), f"{vid}: source differs"
    for n in ("api1", "api2", "worker1", "worker2"):
        assert alive(n), f"{n} died during the S3 outage"
    return "upload refused with 503 + Retry-After while S3 was down; accepted after; the encode in flight finished"


def live_window():
    """Seconds from a kill to `broadcasting` false: the staleness, plus the heartbeat of the
    node that notices (it looks once a heartbeat), plus one heartbeat of slack."""
    stale = int(NODES.get("VIDI_LIVE_STALE_SECS", 15))
    beat = int(NODES.get("VIDI_LIVE_HEARTBEAT_SECS", 2))
    return stale, beat, stale + 2 * beat


def test_live_kill(tmp):
    r = call("POST", "/live-streams", {"name": "fault: ingest node killed", "record": True})
    assert r.status == 200, r  # api.video answers 200 to this creation
    ls = r.json()
    lid, key = ls["liveStreamId"], ls["streamKey"]
    pub = subprocess.Popen(["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
                            "-f", "lavfi", "-i", "sine=frequency=440", "-c:v", "libx264", "-preset", "ultrafast",
                            "-tune", "zerolatency", "-g", "30", "-c:a", "aac", "-f", "flv",
                            f"{CLIENT['VIDI_RTMP_URL']}/{key}"], stdin=subprocess.DEVNULL)
    stale, beat, window = live_window()
    try:
        wait_for(lambda: call("GET", f"/live-streams/{lid}").json().get("broadcasting"), 30, "broadcasting")
        # Some segments in the store, for the recording.
        time.sleep(6)
        holder = "api1"  # nginx sends RTMP to api1 while it is up (scripts/cluster.sh)
        cluster("kill", holder)
        killed = time.monotonic()
    finally:
        # The publisher stops with its node: one that reconnected (to api2, nginx's backup) would
        # start another broadcast, and `broadcasting` would rightly stay true.
        pub.kill()
        pub.wait()
    wait_for(lambda: call("GET", f"/live-streams/{lid}").json().get("broadcasting") is False, window + 5,
             f"broadcasting false after the ingest node died (staleness {stale} s, heartbeat {beat} s)")
    took = time.monotonic() - killed
    assert took <= window + 1, f"broadcasting false only {took:.1f} s after the kill (window {window} s)"
    # The event a webhook subscriber gets, recorded by the node that ended the broadcast.
    ended = wait_for(lambda: psql(f"SELECT fields FROM events WHERE kind = 'live-stream.broadcast.ended' "
                                  f"AND subject = '{lid}'") or None, 10, "live-stream.broadcast.ended recorded")
    assert len(ended) == 1, f"broadcast.ended recorded {len(ended)} times"
    assert json.loads(ended[0][0]).get("liveStreamId") == lid, ended
    # The recording, made from the segments that reached the media store before the kill, found
    # as a client finds it, and encoded.
    def recording():
        r = call("GET", f"/videos?liveStreamId={lid}")
        return r.json()["data"] if r.status == 200 and r.json()["data"] else None
    found = wait_for(recording, 120, "the broadcast's recording (GET /videos?liveStreamId=)")
    assert len(found) == 1, f"{len(found)} recordings of one broadcast"
    rec = found[0]["videoId"]
    s = wait_for(lambda: encoded(rec), 300, f"the recording {rec} encoded")
    secs = s["encoding"]["metadata"]["duration"]
    assert secs and secs > 0, f"the recording {rec} is empty"
    restart(holder)
    return (f"broadcasting false {took:.1f} s after kill -9 of {holder} (window {window} s: staleness {stale} s, "
            f"heartbeat {beat} s); broadcast.ended recorded once; recording {rec} of {secs} s encoded")


TESTS = {"api-kill": test_api_kill, "worker-kill": test_worker_kill, "pg": test_pg, "s3": test_s3,
         "live-kill": test_live_kill}


def main():
    names = sys.argv[2:] or list(TESTS)
    failed = 0
    for name in names:
        t0 = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                what = TESTS[name](tmp)
                print(f"cluster fault {name}: ok ({time.monotonic() - t0:.0f} s): {what}", flush=True)
            except Exception as e:  # noqa: BLE001 - each failure is reported, the others still run
                failed += 1
                print(f"cluster fault {name}: FAILED ({time.monotonic() - t0:.0f} s): {type(e).__name__}: {e}",
                      flush=True)
                for n in ("api1", "api2", "worker1", "worker2"):
                    if not alive(n):
                        restart(n)
    print(f"cluster faults: {len(names) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
