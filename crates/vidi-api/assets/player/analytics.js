// The player's viewing-session report (docs/analytics.md): mints a session at the collector when
// the page loads, records what the viewer does (ready, play, pause, resume, seeks, end) with the
// playhead, and the quality of experience (time to first frame, stalls, fatal errors, time
// played, renditions), and sends them in batches: every few seconds while playing, and with
// navigator.sendBeacon when the page is hidden or left, so that closing the tab loses nothing.
// Loaded after player.js, beside the same configuration (#vidi-config, `collector`); a page
// without one reports nothing. A live stream's page (`config.live`, live.js) reports the same
// way: a broadcast that ends is the playback's `end`, and a next one joined on the same page is
// a `resume`.
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('vidi-config').textContent);
  const c = config.collector;
  const video = document.querySelector('#player video');
  if (!c || !video || !window.fetch) return;

  const FLUSH_MS = 5000;
  const MAX_BATCH = 200; // the collector's bound
  let session = null; // its id, once minted
  let mintedAt = 0; // performance.now() when the mint was sent: every `ts` counts from it
  let seq = 0;
  let queue = []; // [{event, stamp}], stamp in performance.now() time

  function record(type, fields) {
    queue.push({ event: Object.assign({ seq: seq++, type }, fields), stamp: performance.now() });
  }

  // The events waiting, with their times since the mint, at most one batch.
  function take() {
    const batch = queue.slice(0, MAX_BATCH);
    queue = queue.slice(batch.length);
    return batch;
  }
  function body(batch) {
    return JSON.stringify({
      events: batch.map((q) => Object.assign({ ts: Math.max(0, Math.round(q.stamp - mintedAt)) }, q.event)),
    });
  }
  function eventsUrl() {
    return `${c.sessions}/${encodeURIComponent(session)}/events`;
  }

  let sending = false;
  async function flush() {
    if (!session || sending) return;
    settle();
    if (!queue.length) return;
    sending = true;
    const batch = take();
    try {
      const r = await fetch(eventsUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: body(batch),
        keepalive: true,
      });
      // Refused for its rate or the server's trouble: sent again with the next batch. Anything
      // else is a batch the collector will never take.
      if (r.status === 429 || r.status >= 500) queue = batch.concat(queue);
    } catch (_) {
      queue = batch.concat(queue);
    } finally {
      sending = false;
    }
  }

  // The page is going away (or out of sight, which on mobile may be the last chance): what is
  // left goes with a beacon, which the browser sends even after the page is gone.
  function beacon() {
    if (!session || !navigator.sendBeacon) return;
    settle();
    while (queue.length) {
      const batch = take();
      const blob = new Blob([body(batch)], { type: 'application/json' });
      if (!navigator.sendBeacon(eventsUrl(), blob)) {
        queue = batch.concat(queue);
        return;
      }
    }
  }
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'hidden') beacon();
  });
  window.addEventListener('pagehide', beacon);

  // ---- What the viewer does -------------------------------------------------------------------

  const whole = (s) => Math.max(0, Math.floor(Number.isFinite(s) ? s : 0));
  // Where a seek starts from: the last playhead seen while not seeking, moved on by the time
  // played since (`timeupdate` comes only every quarter second or so).
  let playhead = 0;
  let playheadAt = 0; // performance.now() when it was seen
  let playing = false; // and whether it was moving then
  const seen = () => {
    playhead = video.currentTime;
    playheadAt = performance.now();
    playing = !video.paused;
  };
  const seekStart = () => playhead + (playing ? ((performance.now() - playheadAt) / 1000) * video.playbackRate : 0);
  let started = false; // a first play happened
  let pausedBefore = false; // the next play is a resume
  let over = false; // ended (or, live, the broadcast went away) and not played since
  // Frames moved since playback last (re)started: until then a seek is where playback starts
  // (`?t=`, a live edge hls.js joins at), not the viewer's, and a wait is no stall.
  let moving = false;
  for (const type of ['timeupdate', 'play', 'pause', 'seeked']) {
    video.addEventListener(type, () => { if (!video.seeking) seen(); });
  }
  video.addEventListener('loadedmetadata', () => record('ready', { at: whole(video.currentTime) }), { once: true });
  video.addEventListener('play', () => {
    over = false;
    if (!started) {
      started = true;
      requested = performance.now();
      record('play', { at: whole(video.currentTime) });
    } else if (pausedBefore) {
      record('resume', { at: whole(video.currentTime) });
    }
    pausedBefore = false;
  });
  video.addEventListener('pause', () => {
    // A video that ends pauses first: that is its end, not a pause; nor is emptying the <video>
    // when a live broadcast goes away.
    if (video.ended || over) return;
    pausedBefore = true;
    record('pause', { at: whole(video.currentTime) });
  });
  video.addEventListener('seeking', () => {
    const from = whole(seekStart());
    const to = whole(video.currentTime);
    seen();
    playing = false; // until it plays again from there
    // Before frames move, a seek is where playback starts (`?t=`, a live edge), not the
    // viewer's move.
    if (!started || !moving || from === to) return;
    record(to > from ? 'seek.forward' : 'seek.backward', { from, to });
  });
  function ended(at) {
    if (over || !started) return;
    settle();
    over = true;
    moving = false;
    pausedBefore = true;
    stalledAt = 0;
    record('end', { at: whole(at) });
    flush();
  }
  // A live stream's duration is Infinity: its end is where the picture stopped.
  video.addEventListener('ended', () => ended(Number.isFinite(video.duration) ? video.duration : video.currentTime));
  // live.js: the broadcast went away (ended, stopped sending, failed) while this page played it.
  video.addEventListener('vidi-live-idle', () => ended(playhead));

  // ---- Quality of experience ------------------------------------------------------------------

  // Time to first frame: from the first play (asked by the viewer, or autoplay) to the first
  // frame shown (requestVideoFrameCallback where the browser has it, else `playing`).
  let requested = 0;
  let firstFrame = false;
  function shown() {
    if (firstFrame || !requested) return;
    firstFrame = true;
    record('qoe.ttff', { value: Math.round(performance.now() - requested) });
  }
  if (video.requestVideoFrameCallback) {
    const wait = () => video.requestVideoFrameCallback(() => (started ? shown() : wait()));
    wait();
  }
  // A stall after the first frame: from `waiting` to playing again.
  let stalledAt = 0;
  video.addEventListener('waiting', () => {
    if (firstFrame && moving && !video.seeking) stalledAt = performance.now();
  });
  video.addEventListener('playing', () => {
    moving = true;
    if (!video.requestVideoFrameCallback) shown();
    if (stalledAt) {
      record('qoe.rebuffer', { at: whole(video.currentTime), value: Math.round(performance.now() - stalledAt) });
      stalledAt = 0;
    }
  });
  let failed = false;
  const fatal = () => {
    if (failed) return;
    failed = true;
    record('qoe.error', { at: whole(video.currentTime) });
    flush();
  };
  video.addEventListener('error', fatal);
  video.addEventListener('vidi-fatal', fatal);

  // Time played: wall-clock time while the picture moves (from `playing` to a pause, a stall, a
  // seek, the end), sent as `qoe.watch` with each batch, with the bitrate of the rendition that
  // played it (so that the server can weigh bitrates by time played). The beacon carries the
  // last share, so closing the tab mid-play loses none of it.
  let bitrate = 0; // of the rendition playing, once hls.js said (0: unknown, the browser's HLS)
  let runningSince = 0; // performance.now() when the picture last started moving; 0: not moving
  let watched = 0; // ms played not yet reported
  function settle() {
    const now = performance.now();
    if (runningSince) {
      watched += now - runningSince;
      runningSince = now;
    }
    const ms = Math.floor(watched);
    if (ms < 1) return;
    watched -= ms;
    record('qoe.watch', Object.assign({ at: whole(video.currentTime), value: ms }, bitrate ? { bitrate } : {}));
  }
  video.addEventListener('playing', () => { if (!runningSince) runningSince = performance.now(); });
  for (const type of ['pause', 'waiting', 'seeking', 'emptied', 'error', 'vidi-live-idle']) {
    video.addEventListener(type, () => {
      if (!runningSince) return;
      watched += performance.now() - runningSince;
      runningSince = 0;
    });
  }

  // Renditions (hls.js only): each level hls.js switches to, once it plays (LEVEL_SWITCHED), with
  // its height and bitrate. The first of a session is the initial choice; the server counts the
  // ones after it as switches. player.js and live.js announce each hls.js they make (`vidi-hls`).
  let [shownBitrate, shownHeight] = [0, 0]; // the last rendition reported
  // player.js may have made its hls.js (and hls.js chosen a level) before this script ran: the
  // manifest can answer before this file is fetched. So the one already there is watched too,
  // each hls.js once, and a level already playing is reported as the first choice.
  const seenHls = new WeakSet();
  function watchHls(hls, made) {
    if (!hls || !window.Hls || seenHls.has(hls)) return;
    seenHls.add(hls);
    // A live stream joined again: its time to first frame counts from this join.
    if (made && !firstFrame && requested) requested = performance.now();
    const switched = (index) => {
      const level = hls.levels && hls.levels[index];
      if (!level) return;
      const b = Math.round(level.bitrate || 0);
      const h = Math.round(level.height || 0);
      settle(); // the time played so far was at the bitrate before
      bitrate = b > 0 ? b : 0;
      // The same rendition again (a live stream joined again) is no switch.
      if (b <= 0 || h <= 0 || (b === shownBitrate && h === shownHeight)) return;
      [shownBitrate, shownHeight] = [b, h];
      record('qoe.rendition', { at: whole(video.currentTime), height: h, bitrate: b });
    };
    hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => switched(d.level));
    // hls.js's `currentLevel` is the level playing (-1 until one is); switching to it again is
    // no switch (above), so a LEVEL_SWITCHED for it that was merely late changes nothing.
    if (hls.currentLevel >= 0) switched(hls.currentLevel);
  }
  video.addEventListener('vidi-hls', (ev) => watchHls(ev.detail, true));
  watchHls(window.vidiHls, false);

  // ---- The session ----------------------------------------------------------------------------

  // Who watches, for unique viewers: a random id kept in this browser's storage (partitioned by
  // the embedding site in browsers that partition third-party storage). Where storage is
  // refused, none: the collector then counts the viewer by a daily hash of address and browser.
  function viewerId() {
    try {
      let id = localStorage.getItem('vidi.viewer');
      if (!/^[A-Za-z0-9_-]{8,64}$/.test(id || '')) {
        const bytes = crypto.getRandomValues(new Uint8Array(16));
        id = btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        localStorage.setItem('vidi.viewer', id);
      }
      return id;
    } catch (_) {
      return null;
    }
  }
  const metadata = Object.entries(config.metadata || {}).map(([key, value]) => ({ key, value }));
  // A live stream's sessions carry no metadata (the 2023 schema gives them none).
  const request = config.live ? { liveStreamId: config.videoId } : { videoId: config.videoId, metadata };
  const viewer = viewerId();
  if (viewer) request.viewerId = viewer;
  if (c.avh) request.avh = c.avh;
  if (document.referrer) request.referrer = document.referrer.slice(0, 2048);
  mintedAt = performance.now();
  fetch(c.sessions, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(request) })
    .then((r) => (r.status === 201 ? r.json() : null))
    .then((j) => {
      if (!j || !j.sessionId) return;
      session = j.sessionId;
      window.vidiAnalytics = { session }; // for the browser tests and for debugging
      flush();
      setInterval(flush, FLUSH_MS);
    })
    .catch(() => {});
})();
