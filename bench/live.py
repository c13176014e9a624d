#!/usr/bin/env python3
"""Measurement side of bench/live.sh (standard library only; see docs/performance.md, "Live").

  live.py latency    one paced encode, tee'd to Vidi (RTMP), nginx-rtmp (RTMP) and ffmpeg's own
                     HLS muxer; when each segment and each Vidi part is listed, against the wall
                     time each frame left the publisher.
  live.py publishers N copy-publishers (ffmpeg -re -c copy of one FLV file) into N live streams,
                     one blocking-reload watcher per stream: how many keep their parts on time.
  live.py viewers    V concurrent low-latency viewers on one stream, each holding a blocking
                     reload for the next part: delay from the part's first listing to each
                     viewer's response (and to the part's bytes).

Results go to stdout as `RESULT key value` lines (bench/live.sh turns them into `result` rows);
everything else goes to stderr.
"""

import argparse
import asyncio
import bisect
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request


def log(*a):
    print(f"[live.py {time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def result(key, value):
    print(f"RESULT {key} {value}", flush=True)


def client_cpu():
    """This process's CPU seconds and its waited-for children's (the viewers' workers): what the
    load generator itself took from the cores it shares with the server."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


# --------------------------------------------------------------------------------------------
# Playlists


PART_RE = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="(\d+)\.(\d+)\.m4s"')
HINT_RE = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="(\d+)\.(\d+)\.m4s"')


def parse_media_playlist(text):
    """(media sequence, [segment durations in order], {msn: [part durations]}, hint, ended)."""
    seq = 0
    durations = []
    parts = {}
    hint = None
    msn = None
    pending = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
            seq = int(line.split(":", 1)[1])
            msn = seq
        elif line.startswith("#EXT-X-PART:"):
            m = PART_RE.match(line)
            if m:
                parts.setdefault(int(m.group(2)), []).append(float(m.group(1)))
        elif line.startswith("#EXTINF:"):
            pending = float(line[8:].split(",", 1)[0])
        elif line.startswith("#EXT-X-PRELOAD-HINT:"):
            m = HINT_RE.match(line)
            if m:
                hint = (int(m.group(1)), int(m.group(2)))
        elif line and not line.startswith("#") and pending is not None:
            durations.append(pending)
            pending = None
    return seq, durations, parts, hint, "#EXT-X-ENDLIST" in text


class Timeline:
    """The segments of one output as they get listed: media start of each (the sum of the
    durations before it, from the first listed segment at media time 0) and when it was listed."""

    def __init__(self, name):
        self.name = name
        self.listed = {}  # msn -> wall time of first sight
        self.duration = {}  # msn -> seconds
        self.first = None

    def see(self, seq, durations, wall):
        if self.first is None and durations:
            self.first = seq
        for i, d in enumerate(durations):
            msn = seq + i
            if msn not in self.listed:
                self.listed[msn] = wall
                self.duration[msn] = d

    def segments(self):
        """[(media start, duration, listed)] for the contiguous run from the first segment."""
        out = []
        if self.first is None:
            return out
        t = 0.0
        msn = self.first
        while msn in self.listed:
            out.append((t, self.duration[msn], self.listed[msn]))
            t += self.duration[msn]
            msn += 1
        return out


def poll_file_playlist(path, timeline, stop, interval=0.002):
    """Reads a playlist file (written by rename) whenever it changes, every `interval` s."""
    last = None
    while not stop.is_set():
        try:
            st = os.stat(path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if key != last:
                with open(path, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                wall = time.time()
                last = key
                seq, durations, _, _, _ = parse_media_playlist(text)
                timeline.see(seq, durations, wall)
        except FileNotFoundError:
            pass
        time.sleep(interval)


def http_get(url, timeout=30):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_playlist(url, stop, limit=60):
    deadline = time.time() + limit
    while time.time() < deadline and not stop.is_set():
        try:
            status, body = http_get(url, timeout=5)
            if status == 200:
                return body.decode()
        except OSError:
            pass
        time.sleep(0.02)
    return None


def vidi_segments(url, timeline, stop, errors):
    """Legacy-player view with blocking reloads: `_HLS_msn=N` for the next whole segment returns
    the moment segment N is listed."""
    text = wait_playlist(url, stop)
    if text is None:
        errors.append("vidi playlist never appeared")
        return
    seq, durations, _, _, ended = parse_media_playlist(text)
    timeline.see(seq, durations, time.time())
    nxt = seq + len(durations)
    while not stop.is_set() and not ended:
        status, body = http_get(f"{url}?_HLS_msn={nxt}")
        wall = time.time()
        if status != 200:
            errors.append(f"segment reload {nxt}: {status}")
            time.sleep(0.05)
            continue
        seq, durations, _, _, ended = parse_media_playlist(body.decode())
        timeline.see(seq, durations, wall)
        nxt = max(nxt, seq + len(durations))


def vidi_parts(url, listed, stop, errors):
    """Low-latency view: a blocking reload for the hinted part, over and over; each part's
    first sight is recorded as listed[(msn, index)] = (wall, duration)."""
    text = wait_playlist(url, stop)
    if text is None:
        return
    _, _, parts, hint, ended = parse_media_playlist(text)
    while not stop.is_set() and not ended and hint:
        status, body = http_get(f"{url}?_HLS_msn={hint[0]}&_HLS_part={hint[1]}")
        wall = time.time()
        if status != 200:
            errors.append(f"part reload {hint}: {status}")
            time.sleep(0.05)
            continue
        _, _, parts, new_hint, ended = parse_media_playlist(body.decode())
        for msn, ds in parts.items():
            for i, d in enumerate(ds):
                listed.setdefault((msn, i), (wall, d))
        hint = new_hint or hint


class Stamps:
    """Wall time at which each video frame left the publisher: ffmpeg's tee writes every packet
    to an FLV pipe (its first output) just before the network outputs; read here as it comes."""

    def __init__(self):
        self.ts = []  # media time (s) of each video tag, increasing
        self.wall = []
        self.bytes = 0

    def read(self, stream):
        def exact(n):
            buf = b""
            while len(buf) < n:
                chunk = stream.read(n - len(buf))
                if not chunk:
                    return None
                buf += chunk
            return buf

        if exact(13) is None:  # FLV header + first PreviousTagSize
            return
        while True:
            head = exact(11)
            if head is None:
                return
            wall = time.time()
            size = int.from_bytes(head[1:4], "big")
            ts = int.from_bytes(head[4:7], "big") | (head[7] << 24)
            body = exact(size + 4)
            if body is None:
                return
            self.bytes += size + 15
            if head[0] == 9 and size > 1 and (body[0] & 0x0F) == 7 and body[1] == 1:
                # An AVC NAL unit packet (not the sequence header): one frame.
                if not self.ts or ts / 1000.0 > self.ts[-1]:
                    self.ts.append(ts / 1000.0)
                    self.wall.append(wall)

    def left(self, media):
        """When the frame at media time `media` (s) left (the nearest frame within 20 ms)."""
        i = bisect.bisect_left(self.ts, media - 0.0005)
        best = None
        for j in (i - 1, i):
            if 0 <= j < len(self.ts) and abs(self.ts[j] - media) <= 0.020:
                if best is None or abs(self.ts[j] - media) < abs(self.ts[best] - media):
                    best = j
        return None if best is None else self.wall[best]


def segment_latencies(timeline, stamps, skip):
    """{media start (rounded to 10 ms): (first-frame latency, end latency)} per listed segment.
    First frame: its first frame left → listed (includes the segment's own duration). End: the
    frame after its last left (the segment could not be cut earlier) → listed: the overhead."""
    out = {}
    for start, duration, listed in timeline.segments()[skip:]:
        if start + duration > stamps.ts[-1]:
            continue  # closed by the publisher's end, not by a keyframe
        first = stamps.left(start)
        end = stamps.left(start + duration)
        if first is None or end is None:
            continue
        out[round(start, 2)] = (listed - first, listed - end)
    return out


def summary(name, values, unit_ms=True):
    if not values:
        return
    f = 1000.0 if unit_ms else 1.0
    # round() gives an int, so a small negative difference prints as 0, not "-0".
    result(f"{name}_p50_ms", round(statistics.median(values) * f))
    result(f"{name}_p90_ms", round(pct(values, 90) * f))


def cmd_latency(a):
    stop = threading.Event()
    errors = []
    stamps = Stamps()
    outputs = ["[f=flv:flush_packets=1:onfail=abort]pipe\\:1"]
    outputs.append(f"[f=flv:flush_packets=1:onfail=abort]{a.vidi_rtmp}")
    if a.nginx_rtmp:
        outputs.append(f"[f=flv:flush_packets=1:onfail=ignore]{a.nginx_rtmp}")
    os.makedirs(a.ffmpeg_dir, exist_ok=True)
    hls = os.path.join(a.ffmpeg_dir, "index.m3u8")
    outputs.append(f"[f=hls:hls_time={a.segment}:hls_list_size=0:flush_packets=1]{hls}")
    gop = int(round(a.fps * a.gop))
    cmd = [
        "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "warning", "-re",
        "-f", "lavfi", "-i", f"testsrc2=size={a.size}:rate={a.fps}",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(a.seconds), "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-b:v", a.bitrate, "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-flags", "+global_header", "-f", "tee", "|".join(outputs),
    ]
    log("publisher:", " ".join(cmd))
    ff = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(a.ffmpeg_log, "w"))
    reader = threading.Thread(target=stamps.read, args=(ff.stdout,), daemon=True)
    reader.start()
    timelines = {"ffmpeg": Timeline("ffmpeg"), "vidi": Timeline("vidi")}
    parts = {}
    threads = [
        threading.Thread(target=poll_file_playlist, args=(hls, timelines["ffmpeg"], stop), daemon=True),
        threading.Thread(target=vidi_segments, args=(a.vidi_playlist, timelines["vidi"], stop, errors), daemon=True),
        threading.Thread(target=vidi_parts, args=(a.vidi_playlist, parts, stop, errors), daemon=True),
    ]
    if a.nginx_playlist:
        timelines["nginx"] = Timeline("nginx")
        threads.append(
            threading.Thread(target=poll_file_playlist, args=(a.nginx_playlist, timelines["nginx"], stop), daemon=True)
        )
    for t in threads:
        t.start()
    rc = ff.wait()
    # The last segment closes when the publisher stops; give the listings a moment.
    time.sleep(1.0)
    stop.set()
    reader.join(timeout=5)
    if rc != 0:
        log(f"the publisher exited with status {rc} (see {a.ffmpeg_log})")
        return 1
    if errors:
        log(f"{len(errors)} errors, first: {errors[:3]}")
    if not stamps.ts:
        log("no frame stamps read from the publisher's pipe")
        return 1
    span = stamps.ts[-1] - stamps.ts[0]
    wall_span = stamps.wall[-1] - stamps.wall[0]
    log(f"{len(stamps.ts)} frames over {span:.1f} s of media in {wall_span:.1f} s of wall time")
    result("live_pacing_ratio", f"{wall_span / span:.3f}" if span > 0 else "n/a")

    # Segments: the first is skipped (it starts before every reader is attached).
    lat = {n: segment_latencies(t, stamps, a.skip) for n, t in timelines.items()}
    for n, t in timelines.items():
        ds = [d for _, d, _ in t.segments()]
        log(f"{n}: {len(ds)} segments listed, durations {sorted(set(round(d, 3) for d in ds))}")
    common = set(lat["ffmpeg"]) & set(lat["vidi"])
    result("live_segments", len(common))
    summary("live_seg_ffmpeg", [lat["ffmpeg"][k][0] for k in common])
    summary("live_seg_vidi", [lat["vidi"][k][0] for k in common])
    diff = [lat["vidi"][k][0] - lat["ffmpeg"][k][0] for k in common]
    summary("live_seg_vidi_minus_ffmpeg", diff)
    summary("live_seg_vidi_overhead", [lat["vidi"][k][1] for k in common])
    summary("live_seg_ffmpeg_overhead", [lat["ffmpeg"][k][1] for k in common])
    if common:
        med_f = statistics.median([lat["ffmpeg"][k][0] for k in common])
        med_v = statistics.median([lat["vidi"][k][0] for k in common])
        result("live_seg_ratio", f"{med_v / med_f:.3f}")
    if "nginx" in lat:
        both = set(lat["nginx"]) & set(lat["ffmpeg"])
        result("live_segments_nginx", len(both))
        if both:
            summary("live_seg_nginx", [lat["nginx"][k][0] for k in both])
            summary("live_seg_nginx_minus_ffmpeg", [lat["nginx"][k][0] - lat["ffmpeg"][k][0] for k in both])
            med_n = statistics.median([lat["nginx"][k][0] for k in both])
            med_f = statistics.median([lat["ffmpeg"][k][0] for k in both])
            result("live_seg_nginx_ratio", f"{med_n / med_f:.3f}")

    # Parts: media start = the segment's start + the parts before it in that segment.
    starts = {}
    t = timelines["vidi"]
    msn = t.first
    media = 0.0
    while msn is not None and msn in t.duration:
        starts[msn] = media
        media += t.duration[msn]
        msn += 1
    first_part, end_part = [], []
    first_msn = (t.first or 0) + a.skip
    for (msn, i), (wall, d) in parts.items():
        if msn < first_msn or msn not in starts:
            continue
        before = sum(parts[(msn, j)][1] for j in range(i) if (msn, j) in parts)
        if any((msn, j) not in parts for j in range(i)):
            continue
        s = starts[msn] + before
        if s + d > stamps.ts[-1]:
            continue  # closed by the publisher's end
        left_first, left_end = stamps.left(s), stamps.left(s + d)
        if left_first is None or left_end is None:
            continue
        first_part.append(wall - left_first)
        end_part.append(wall - left_end)
    result("live_parts", len(first_part))
    summary("live_part_vidi", first_part)
    summary("live_part_vidi_overhead", end_part)
    with open(a.json, "w") as f:
        json.dump({"segments": {n: sorted(v.items()) for n, v in lat.items()}, "parts": sorted(first_part),
                   "errors": errors[:50]}, f)
    return 0


# --------------------------------------------------------------------------------------------
# Capacity: a minimal HTTP/1.1 keep-alive client on asyncio (the standard library has none).


class _Client(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection. The time of a response is taken when its first bytes
    reach the event loop (data_received), before any parsing: with hundreds of responses
    arriving at once, parsing them one after the other must not count as server delay."""

    def __init__(self):
        self.transport = None
        self.buf = b""
        self.waiter = None
        self.first = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        if self.first is None:
            self.first = time.time()
        self.buf += data
        self._check()

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("closed"))

    def _check(self):
        end = self.buf.find(b"\r\n\r\n")
        if end < 0 or self.waiter is None or self.waiter.done():
            return
        head = self.buf[:end].decode("latin-1").split("\r\n")
        length = 0
        for line in head[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        if len(self.buf) < end + 4 + length:
            return
        body = self.buf[end + 4 : end + 4 + length]
        self.buf = self.buf[end + 4 + length :]
        self.waiter.set_result((int(head[0].split()[1]), body, self.first))
        self.first = None


class Conn:
    def __init__(self, host, port):
        self.host, self.port = host, port
        self.p = None

    async def get(self, path, timeout=30):
        """(status, body, wall time of the first byte) of GET path (Vidi sends Content-Length)."""
        for attempt in (0, 1):
            try:
                if self.p is None or self.p.closed:
                    loop = asyncio.get_running_loop()
                    _, self.p = await loop.create_connection(_Client, self.host, self.port)
                self.p.waiter = asyncio.get_running_loop().create_future()
                self.p.transport.write(f"GET {path} HTTP/1.1\r\nHost: {self.host}\r\n\r\n".encode())
                return await asyncio.wait_for(self.p.waiter, timeout)
            except ConnectionError:
                self.close()
                if attempt:
                    raise
        raise ConnectionError("unreachable")

    def close(self):
        if self.p is not None and self.p.transport is not None:
            self.p.transport.close()
        self.p = None


def split_url(url):
    m = re.match(r"http://([^:/]+):(\d+)(/.*)", url)
    return m.group(1), int(m.group(2)), m.group(3)


async def follow_parts(url, until, on_part, fetch_part=False, on_bytes=None):
    """Holds blocking reloads for the hinted part of `url` until `until` (monotonic); calls
    on_part(msn, index, duration, wall) at each part's first sight by this follower."""
    host, port, path = split_url(url)
    base = path.rsplit("/", 1)[0]
    c = Conn(host, port)
    seen = set()
    hint = None
    errors = 0
    try:
        while time.monotonic() < until:
            q = f"?_HLS_msn={hint[0]}&_HLS_part={hint[1]}" if hint else ""
            try:
                status, body, wall = await c.get(path + q)
            except (OSError, asyncio.TimeoutError):
                errors += 1
                c.close()
                await asyncio.sleep(0.1)
                continue
            if status != 200:
                errors += 1
                await asyncio.sleep(0.05)
                continue
            _, _, parts, new_hint, ended = parse_media_playlist(body.decode())
            fresh = []
            for msn, ds in parts.items():
                for i, d in enumerate(ds):
                    if (msn, i) not in seen:
                        seen.add((msn, i))
                        if hint is not None:  # the first playlist's parts are history
                            fresh.append((msn, i, d))
            for msn, i, d in fresh:
                on_part(msn, i, d, wall)
            if fetch_part and fresh and on_bytes is not None:
                msn, i, _ = fresh[-1]
                try:
                    status, data, _ = await c.get(f"{base}/{msn}.{i}.m4s")
                except (OSError, asyncio.TimeoutError):
                    errors += 1
                    c.close()
                    continue
                # The bytes are all there now (the first byte's time would flatter a big part).
                on_bytes(msn, i, time.time(), status, len(data))
            if ended:
                break
            hint = new_hint or hint
    finally:
        c.close()
    return errors


async def publishers_main(a):
    urls = [u for u in a.playlists.split(",") if u]
    until = time.monotonic() + a.seconds
    per = [dict() for _ in urls]

    def recorder(k):
        def on_part(msn, i, d, wall):
            per[k][(msn, i)] = (d, wall)
        return on_part

    errors = await asyncio.gather(*(follow_parts(u, until, recorder(k)) for k, u in enumerate(urls)))
    held, ratios, lates, dump = 0, [], [], []
    for k, parts in enumerate(per):
        if not parts:
            ratios.append(0.0)
            continue
        # Media end of each part (the segment's parts back to back, segments back to back: the
        # publisher sends without gaps), against the wall time it was listed. A paced publisher
        # sends media time t at t0 + t; t0 is estimated by the earliest listing (the best case),
        # so "late" means later than this publisher's own best by more than the slack.
        keys = sorted(parts)
        media, ends = 0.0, []
        for key in keys:
            media += parts[key][0]
            ends.append((media, parts[key][1]))
        # Parts missed by this watcher (none expected) break the sum: count them as late.
        expected = len(keys)
        t0 = min(w - m for m, w in ends)
        late = [w - (t0 + m) for m, w in ends]
        dump.append({"parts": [list(k) + [round(parts[k][0], 3), round(x, 3)] for k, x in zip(keys, late)]})
        on_time = sum(1 for x in late if x <= a.slack)
        ratio = on_time / expected
        ratios.append(ratio)
        lates.extend(late)
        if ratio >= 0.99:
            held += 1
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dump, f)
    log(f"per publisher on-time ratios: {' '.join(f'{r:.3f}' for r in ratios)}")
    log(f"watcher errors: {sum(errors)}")
    result("live_pub_client_cpu_s", f"{client_cpu():.2f}")
    result("live_pub_streams", len(urls))
    result("live_pub_held", held)
    result("live_pub_errors", sum(errors))
    if lates:
        result("live_pub_late_p50_ms", f"{statistics.median(lates) * 1000:.0f}")
        result("live_pub_late_p99_ms", f"{pct(lates, 99) * 1000:.0f}")
        result("live_pub_min_ratio", f"{min(ratios):.3f}")
    return 0


def cmd_publishers(a):
    return asyncio.run(publishers_main(a))


async def viewers_worker_main(a):
    """One process's share of the viewers; prints its raw observations as JSON."""
    until = time.monotonic() + a.seconds
    seen, got = [], []

    def on_part(msn, i, d, wall):
        seen.append((msn, i, wall))

    def on_bytes(msn, i, wall, status, n):
        got.append((msn, i, wall, status, n))

    tasks = []
    for k in range(a.viewers):
        tasks.append(asyncio.create_task(follow_parts(a.playlist, until, on_part, a.fetch, on_bytes)))
        if k % 50 == 49:
            await asyncio.sleep(0.05)  # connection set-up spread out, before the measured window
    errors = await asyncio.gather(*tasks)
    json.dump({"seen": seen, "got": got, "errors": sum(errors)}, sys.stdout)
    return 0


def cmd_viewers_worker(a):
    return asyncio.run(viewers_worker_main(a))


def cmd_viewers(a):
    """Splits the viewers over `procs` processes (one Python process cannot take a thousand
    responses at once without its own queueing showing as server delay)."""
    shares = [a.viewers // a.procs + (1 if k < a.viewers % a.procs else 0) for k in range(a.procs)]
    procs = []
    for n in shares:
        cmd = [sys.executable, __file__, "viewers-worker", "--playlist", a.playlist, "--viewers", str(n),
               "--seconds", str(a.seconds)] + (["--fetch"] if a.fetch else [])
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE))
    start = time.time()
    data = [json.loads(p.communicate()[0] or b"{}") for p in procs]
    if any(p.returncode != 0 for p in procs):
        log("a viewers worker failed")
        return 1
    seen = [tuple(x) for d in data for x in d["seen"]]
    got = [tuple(x) for d in data for x in d["got"]]
    # A part is available when the first viewer saw it listed; each viewer's delay is from then.
    first = {}
    for m, i, w in seen:
        if (m, i) not in first or w < first[(m, i)]:
            first[(m, i)] = w
    warm = start + a.warmup
    listing = [w - first[(m, i)] for m, i, w in seen if first[(m, i)] >= warm]
    result("live_view_client_cpu_s", f"{client_cpu():.2f}")
    result("live_view_viewers", a.viewers)
    result("live_view_errors", sum(d["errors"] for d in data))
    result("live_view_parts", len({k for k, w in first.items() if w >= warm}))
    result("live_view_responses", len(listing))
    if listing:
        result("live_view_listing_p50_ms", f"{statistics.median(listing) * 1000:.1f}")
        result("live_view_listing_p99_ms", f"{pct(listing, 99) * 1000:.1f}")
    if a.fetch:
        delivery = [w - first[(m, i)] for m, i, w, s, _ in got if s == 200 and first[(m, i)] >= warm]
        result("live_view_part_fetch_failures", sum(1 for *_, s, _ in got if s != 200))
        if delivery:
            result("live_view_delivery_p50_ms", f"{statistics.median(delivery) * 1000:.1f}")
            result("live_view_delivery_p99_ms", f"{pct(delivery, 99) * 1000:.1f}")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    lat = sub.add_parser("latency")
    lat.add_argument("--vidi-rtmp", required=True)
    lat.add_argument("--vidi-playlist", required=True)
    lat.add_argument("--nginx-rtmp")
    lat.add_argument("--nginx-playlist")
    lat.add_argument("--ffmpeg-dir", required=True)
    lat.add_argument("--ffmpeg-log", required=True)
    lat.add_argument("--json", required=True)
    lat.add_argument("--seconds", type=int, default=50)
    lat.add_argument("--size", default="1280x720")
    lat.add_argument("--fps", type=int, default=30)
    lat.add_argument("--bitrate", default="3M")
    lat.add_argument("--gop", type=float, default=2.0)
    lat.add_argument("--segment", type=float, default=2.0)
    lat.add_argument("--skip", type=int, default=1)
    pub = sub.add_parser("publishers")
    pub.add_argument("--playlists", required=True, help="comma-separated media playlist URLs")
    pub.add_argument("--seconds", type=int, default=60)
    pub.add_argument("--slack", type=float, default=0.1)
    pub.add_argument("--json", help="per part: msn, index, duration, lateness (s)")
    view = sub.add_parser("viewers")
    view.add_argument("--playlist", required=True)
    view.add_argument("--viewers", type=int, default=1000)
    view.add_argument("--seconds", type=int, default=40)
    view.add_argument("--warmup", type=float, default=10)
    view.add_argument("--fetch", action="store_true", help="also GET each new part's bytes")
    view.add_argument("--procs", type=int, default=2)
    worker = sub.add_parser("viewers-worker")
    worker.add_argument("--playlist", required=True)
    worker.add_argument("--viewers", type=int, required=True)
    worker.add_argument("--seconds", type=int, required=True)
    worker.add_argument("--fetch", action="store_true")
    a = p.parse_args()
    cmds = {"latency": cmd_latency, "publishers": cmd_publishers, "viewers": cmd_viewers,
            "viewers-worker": cmd_viewers_worker}
    return cmds[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
