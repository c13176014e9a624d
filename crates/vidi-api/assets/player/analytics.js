// The player's viewing-session report (docs/analytics.md): mints a session at the collector when
// the page loads, records what the viewer does (ready, play, pause, resume, seeks, end) with the
// playhead, and the quality of experience (time to first frame, stalls, fatal errors), and sends
// them in batches: every few seconds while playing, and with navigator.sendBeacon when the page
// is hidden or left, so that closing the tab loses nothing. Loaded after player.js, beside the
// same configuration (#vidi-config, `collector`); a page without one reports nothing.
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
    if (!session || sending || !queue.length) return;
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
  for (const type of ['timeupdate', 'play', 'pause', 'seeked']) {
    video.addEventListener(type, () => { if (!video.seeking) seen(); });
  }
  video.addEventListener('loadedmetadata', () => record('ready', { at: whole(video.currentTime) }), { once: true });
  video.addEventListener('play', () => {
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
    // A video that ends pauses first: that is its end, not a pause.
    if (video.ended) return;
    pausedBefore = true;
    record('pause', { at: whole(video.currentTime) });
  });
  video.addEventListener('seeking', () => {
    const from = whole(seekStart());
    const to = whole(video.currentTime);
    seen();
    playing = false; // until it plays again from there
    // Before the first play, a seek is where playback starts (`?t=`), not the viewer's move.
    if (!started || from === to) return;
    record(to > from ? 'seek.forward' : 'seek.backward', { from, to });
  });
  video.addEventListener('ended', () => {
    pausedBefore = true;
    record('end', { at: whole(video.duration || video.currentTime) });
    flush();
  });

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
    if (firstFrame && !video.seeking) stalledAt = performance.now();
  });
  video.addEventListener('playing', () => {
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

  // ---- The session ----------------------------------------------------------------------------

  const metadata = Object.entries(config.metadata || {}).map(([key, value]) => ({ key, value }));
  const request = { videoId: config.videoId, metadata };
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
