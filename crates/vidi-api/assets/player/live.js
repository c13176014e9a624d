// The player page for a live stream (`config.live`): player.js sets the page up (title, poster,
// theme, qualities) and hands playback to vidiLive, which
//  - waits while nothing is broadcast: the poster (the live stream's thumbnail) or a plain panel,
//    with "This live stream is not live yet" ("… has ended" once it was), trying again every few
//    seconds;
//  - joins at the live edge with hls.js's low-latency mode (parts, blocking reloads), as soon as
//    media flows;
//  - shows a LIVE badge: red at the live edge; grey, and "go live" on a click, once the viewer
//    has fallen behind (paused, stalled);
//  - goes back to waiting when the broadcast ends (ENDLIST), stops sending (a publisher gone
//    within its reconnect grace leaves a playlist that no longer grows) or fails.
// Loaded before player.js (index.html), it only defines window.vidiLive.
(function () {
  'use strict';
  const RETRY_MS = 3000; // between two looks at an idle live stream
  const STALL_MS = 6000; // the playlist has not grown for this long: the broadcast has stopped
  const BEHIND_S = 3; // further than this past hls.js's target latency: not at the live edge
  const TICK_MS = 500;

  window.vidiLive = function (ctx) {
    const { config, player, video, renditions, play, fail } = ctx;
    player.classList.add('live');
    player.setAttribute('defaultstreamtype', 'live');
    const spinner = player.querySelector('media-loading-indicator');

    // The idle panel, over the poster. `noautohide`: media-chrome must not fade it out.
    const idlePanel = document.createElement('div');
    idlePanel.className = 'live-idle';
    idlePanel.setAttribute('slot', 'centered-chrome');
    idlePanel.setAttribute('noautohide', '');
    idlePanel.setAttribute('role', 'status');
    const idleText = document.createElement('p');
    idleText.textContent = 'This live stream is not live yet';
    idlePanel.appendChild(idleText);
    player.appendChild(idlePanel);

    // The LIVE badge, first after the volume in the control bar (the time display, the timeline
    // and the speed menu make no sense on a live edge and are hidden by player.css).
    const badge = document.createElement('button');
    badge.type = 'button';
    badge.className = 'live-badge';
    badge.innerHTML = '<span class="dot" aria-hidden="true"></span>LIVE';
    badge.addEventListener('click', goLive);
    const bar = player.querySelector('media-control-bar');
    bar.insertBefore(badge, bar.querySelector('.spacer'));

    // The poster: the live stream's thumbnail, uploaded or taken by a broadcast. The server
    // gives `poster` only when one exists; the page looks again each time it goes idle (a
    // broadcast takes new ones, the last stays after it ends), at the URL beside the master
    // (contract §7: `{id}.m3u8` and `{id}/thumbnail.jpg`, under the token for a private one), and
    // shows it only once it has loaded, never as a broken image.
    const posterImage = player.querySelector('media-poster-image');
    const master = new URL(config.hls, location.href);
    master.pathname = master.pathname.replace(/\.m3u8$/, '/thumbnail.jpg');
    const thumbnail = config.poster ? new URL(config.poster, location.href) : master;
    function loadPoster() {
      // Not when hidden by the URL (`hidePoster`) or by the player SDK (sdk-bridge.js).
      if (config.hidePoster || posterImage.hidden) return;
      thumbnail.searchParams.set('at', String(Date.now())); // past the browser's cache
      const src = thumbnail.toString();
      const img = new Image();
      img.onload = () => {
        video.poster = src;
        posterImage.setAttribute('src', src);
        player.classList.add('has-poster');
      };
      img.src = src;
    }
    if (config.poster) player.classList.add('has-poster');

    // What the page is doing, for the browser tests and for debugging from the console.
    const state = { state: 'idle', latency: null, atEdge: false, joins: 0 };
    window.vidiLiveState = state;

    let hls = null;
    let lastMedia = 0; // when hls.js last saw a new part or segment
    let wanted = !!config.autoplay; // play once live: asked by the URL/theme, or by the viewer
    let timer = null;

    video.addEventListener('play', () => { wanted = true; });
    video.addEventListener('pause', () => { if (state.state === 'live') wanted = false; });

    function setState(s) {
      state.state = s;
      player.classList.toggle('live-idle-state', s === 'idle');
      player.classList.toggle('live-on', s === 'live');
      idlePanel.hidden = s !== 'idle';
      spinner.hidden = s === 'idle';
    }

    function idle() {
      // First: the pause that emptying the <video> may cause is no viewer's pause.
      setState('idle');
      // The playback this page showed is over: analytics.js reports its `end`.
      video.dispatchEvent(new CustomEvent('vidi-live-idle'));
      // It was live on this page: say that it ended (if its publisher comes back, it plays on).
      idleText.textContent = 'This live stream has ended';
      if (hls) { hls.destroy(); hls = null; window.vidiHls = null; renditions.hls = null; }
      // An emptied <video> shows its poster again (media-chrome resets `mediahasplayed`).
      video.removeAttribute('src');
      video.load();
      loadPoster();
      state.latency = null;
      state.atEdge = false;
      clearTimeout(timer);
      timer = setTimeout(look, RETRY_MS);
    }

    // Is media flowing? The master answers 404 when nothing is broadcast here; while a publisher
    // is away within its reconnect grace it still answers, but the media playlist no longer
    // grows: a blocking reload for the next segment (low-latency HLS's `_HLS_msn`) answers once
    // it exists, and 503 when it does not come.
    async function flowing() {
      const get = (url) => fetch(url, { cache: 'no-store', credentials: 'same-origin' });
      const master = await get(config.hls);
      if (master.status === 403) return 'private';
      if (master.status !== 200) return false;
      const uri = (await master.text()).split('\n').map((l) => l.trim()).find((l) => l && !l.startsWith('#'));
      if (!uri) return false;
      const media = new URL(uri, new URL(config.hls, location.href));
      const first = await get(media);
      if (first.status !== 200) return false;
      const text = await first.text();
      if (text.includes('#EXT-X-ENDLIST')) return false;
      const sequence = Number((text.match(/#EXT-X-MEDIA-SEQUENCE:(\d+)/) || [])[1] || 0);
      const segments = (text.match(/^#EXTINF:/gm) || []).length;
      media.searchParams.set('_HLS_msn', String(sequence + segments));
      const next = await get(media);
      return next.status === 200 && !(await next.text()).includes('#EXT-X-ENDLIST');
    }

    async function look() {
      const live = await flowing().catch(() => false);
      if (live === 'private') return fail('This live stream is private.');
      if (live) join();
      else timer = setTimeout(look, RETRY_MS);
    }

    function join() {
      if (!(window.Hls && Hls.isSupported())) {
        // Safari plays low-latency HLS itself; it shows the end of a broadcast as an end.
        if (!video.canPlayType('application/vnd.apple.mpegurl')) return fail('This browser cannot play this live stream.');
        video.src = config.hls;
        setState('live');
        if (wanted) play_();
        return;
      }
      state.joins++;
      setState('live');
      lastMedia = Date.now();
      hls = new Hls({
        lowLatencyMode: true,
        startPosition: -1,
        // A duration of Infinity: media-chrome (and the SDK's getDuration) see a live stream.
        liveDurationInfinity: true,
        // Catching up after a stall: a little faster until back at the target latency.
        maxLiveSyncPlaybackRate: 1.5,
        // No captions for live: as in player.js, hls.js stays away from text tracks.
        subtitleStreamController: null,
        subtitleTrackController: null,
        timelineController: null,
      });
      window.vidiHls = hls;
      renditions.hls = hls;
      // For analytics.js (the renditions played, a join's time to first frame).
      video.dispatchEvent(new CustomEvent('vidi-hls', { detail: hls }));
      hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => renditions.levelsLoaded(d.levels));
      hls.on(Hls.Events.FRAG_LOADED, () => { lastMedia = Date.now(); });
      let listed = '';
      hls.on(Hls.Events.LEVEL_UPDATED, (_, d) => {
        // A playlist that grew: media flows (a paused viewer with a full buffer loads nothing,
        // yet the playlist keeps growing).
        const now = d.details ? `${d.details.endSN}/${d.details.lastPartIndex}` : '';
        if (now !== listed) { listed = now; lastMedia = Date.now(); }
        // The broadcast has ended: play what is buffered, then wait for the next one.
        if (d.details && !d.details.live) video.addEventListener('ended', idle, { once: true });
      });
      let recoveries = 0;
      hls.on(Hls.Events.ERROR, (_, d) => {
        if (!d.fatal) return;
        // A decoding hiccup is recovered in place, a few times; then the page starts over.
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR && ++recoveries <= 3) hls.recoverMediaError();
        else idle(); // the playlist or its files are gone: the broadcast is over here
      });
      hls.loadSource(config.hls);
      hls.attachMedia(video);
      if (wanted) play_();
    }

    function play_() {
      if (config.autoplay) return play(); // muted, as browsers allow
      video.play().catch(() => {});
    }

    // To the live edge: where hls.js would join now, playing.
    function goLive() {
      if (state.state !== 'live') return;
      const edge = hls ? hls.liveSyncPosition : null;
      if (edge != null && Number.isFinite(edge)) video.currentTime = edge;
      else if (video.seekable.length) video.currentTime = video.seekable.end(video.seekable.length - 1);
      video.play().catch(() => {});
    }

    // How far behind the live edge the picture is, the badge, and the stall watch.
    setInterval(() => {
      if (state.state !== 'live') return;
      if (hls) {
        const latency = hls.latency;
        state.latency = Number.isFinite(latency) && latency > 0 ? latency : null;
        const target = Number.isFinite(hls.targetLatency) ? hls.targetLatency : 3;
        state.atEdge = !video.paused && state.latency != null && state.latency <= target + BEHIND_S;
        if (Date.now() - lastMedia > STALL_MS) return idle();
      } else {
        state.atEdge = !video.paused;
      }
      badge.classList.toggle('behind', !state.atEdge);
      badge.title = state.atEdge ? 'Live' : 'Go live';
      badge.setAttribute('aria-label', badge.title);
    }, TICK_MS);

    setState('idle');
    look();
  };
})();
