// The player page's side of `@api.video/player-sdk` (npm, 1.2.x): an app on another origin
// points the SDK's `iframeUrl` at this page and drives it with postMessage, as it drives
// api.video's own embed. What the SDK sends, read from its source:
//   - the iframe URL's query: autoplay, muted, hideControls, hidePoster, chromeless, loop,
//     hideTitle, showSubtitles, metadata[k]=v, token, avh, ts (the server reads those it can,
//     see delivery/player.rs; what a theme forces arrives in `config.forced`);
//   - the iframe URL's hash, `#name[:value];…`: api, sdkPlayerId:<n>, sdkOrigin:<base64 of the
//     app's origin>, hide-controls, hide-title, hide-poster, loop, chromeless, show-subtitles,
//     hotkeys:false, min-quality:<height>, max-quality:<height>, t=<start>,<end> (a sequence),
//     adTagUrl:<url> (ads: not supported, ignored);
//   - commands `{message, sdkPlayerId, callbackId, …}`, answered `{callbackId, arg,
//     sdkPlayerId}`; events go out as `{type, sdkPlayerId, …}`. The SDK sends nothing until
//     this page says `sdkSync`, and getDuration, getVideoSize and a few others until `ready`.
// Security: the page is embeddable by anyone, so it obeys its parent window, and only when the
// message comes from the origin the SDK named in the hash; it answers only that origin. Every
// field is checked against a list or a grammar before use; nothing is evaluated. A theme with
// `enableApi: false` turns the protocol off (no sdkSync, so the SDK sends nothing).
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('vidi-config').textContent);
  const forced = config.forced || {};
  const player = document.getElementById('player');
  const video = player.querySelector('video');
  const title = player.querySelector('.title');
  const posterImage = player.querySelector('media-poster-image');
  // Set below when the SDK is there and allowed; `emit` sends nothing until then.
  let sdkPlayerId = null;
  let sdkOrigin = null;
  let active = false;

  // ---- The hash ------------------------------------------------------------------------------

  const hash = new Map();
  for (const item of location.hash.replace(/^#/, '').split(';')) {
    if (!item) continue;
    const at = item.indexOf(':');
    if (at < 0) hash.set(item, '');
    else hash.set(item.slice(0, at), item.slice(at + 1));
  }
  // `t=<start>,<end>`: play only this part of the video.
  let sequence = null;
  for (const name of hash.keys()) {
    const m = /^t=(\d{1,6}(?:\.\d{1,3})?),(\d{1,6}(?:\.\d{1,3})?)$/.exec(name);
    if (m && Number(m[1]) < Number(m[2])) sequence = { start: Number(m[1]), end: Number(m[2]) };
  }

  // ---- Options, with or without the API -------------------------------------------------------

  const state = {
    controlsHidden: config.controls === false,
    chromeless: false,
    titleHidden: !!config.hideTitle,
    posterHidden: !!config.hidePoster,
    hiddenControls: new Set(),
    minQuality: null,
    maxQuality: null,
  };

  // media-chrome elements for each of the SDK's control names (those the page has).
  const CONTROLS = {
    play: ['media-play-button'],
    playbackRate: ['media-playback-rate-menu-button'],
    volume: ['media-mute-button', 'media-volume-range'],
    fullscreen: ['media-fullscreen-button'],
    subtitles: ['media-captions-menu-button'],
    pictureInPicture: ['media-pip-button'],
    progressBar: ['media-time-range'],
    seekBackward: ['media-seek-backward-button'],
    seekForward: ['media-seek-forward-button'],
    chapters: [],
    chromecast: [],
    download: [],
    more: [],
  };

  function renderControls() {
    player.classList.toggle('no-controls', !!(forced.hideControls || state.controlsHidden || state.chromeless));
    for (const [name, selectors] of Object.entries(CONTROLS)) {
      for (const s of selectors) {
        for (const el of player.querySelectorAll(s)) el.style.display = state.hiddenControls.has(name) ? 'none' : '';
      }
    }
  }

  function renderTitle() {
    if (!title) return;
    title.hidden = !!(forced.hideTitle || state.titleHidden || state.chromeless);
  }

  function renderPoster() {
    if (!config.poster) return;
    if (state.posterHidden) {
      video.removeAttribute('poster');
      posterImage.removeAttribute('src');
      posterImage.hidden = true;
    } else {
      video.poster = config.poster;
      posterImage.setAttribute('src', config.poster);
      posterImage.hidden = false;
    }
  }

  function setLoop(on) {
    video.loop = !!(forced.loop || on);
  }

  function subtitleTracks() {
    return Array.from(video.textTracks).filter((t) => t.kind === 'subtitles' || t.kind === 'captions');
  }

  function showSubtitles(on) {
    const tracks = subtitleTracks();
    if (!on) {
      for (const t of tracks) t.mode = 'disabled';
      return;
    }
    if (tracks.some((t) => t.mode === 'showing')) return;
    const track = tracks.find((t) => t.default || t.language === (config.captions || []).find((c) => c.default)?.lang)
      || tracks[0];
    if (track) track.mode = 'showing';
  }

  // Qualities are heights (`720`); hls.js caps ABR at the highest level within the maximum and
  // keeps it above the lowest level that reaches the minimum.
  function applyQualities() {
    const hls = window.vidiHls;
    if (!hls || !hls.levels || !hls.levels.length) return;
    if (state.maxQuality !== null) {
      let cap = 0;
      hls.levels.forEach((l, i) => { if (l.height <= state.maxQuality && l.bitrate >= hls.levels[cap].bitrate) cap = i; });
      hls.autoLevelCapping = cap;
    }
    if (state.minQuality !== null) {
      const floor = hls.levels.filter((l) => l.height >= state.minQuality).sort((a, b) => a.bitrate - b.bitrate)[0];
      hls.config.minAutoBitrate = floor ? floor.bitrate : 0;
    }
  }

  function quality(value) {
    const n = Number(value);
    return Number.isInteger(n) && n > 0 && n <= 4320 ? n : null;
  }

  if (hash.has('hide-controls')) state.controlsHidden = true;
  if (hash.has('chromeless')) state.chromeless = true;
  if (hash.has('hide-title')) state.titleHidden = true;
  if (hash.has('hide-poster')) state.posterHidden = true;
  if (hash.get('hotkeys') === 'false') player.setAttribute('nohotkeys', '');
  if (hash.has('min-quality')) state.minQuality = quality(hash.get('min-quality'));
  if (hash.has('max-quality')) state.maxQuality = quality(hash.get('max-quality'));
  setLoop(config.loop || hash.has('loop'));
  if (config.muted) video.muted = true;
  renderControls();
  renderTitle();
  renderPoster();
  const wantSubtitles = hash.has('show-subtitles');

  // The sequence: start at its start, stop at its end (or go round, looping).
  function keepInSequence() {
    if (!sequence) return;
    if (video.currentTime < sequence.start - 0.25) video.currentTime = sequence.start;
    else if (video.currentTime >= sequence.end) {
      if (video.loop) video.currentTime = sequence.start;
      else if (!video.paused) {
        video.pause();
        video.currentTime = sequence.end;
        emit('ended');
      }
    }
  }

  video.addEventListener('loadedmetadata', () => {
    applyQualities();
    if (wantSubtitles) showSubtitles(true);
    keepInSequence();
  });
  video.addEventListener('timeupdate', keepInSequence);

  // ---- The API -----------------------------------------------------------------------------------

  if (config.api !== false && hash.has('api') && window.parent !== window) {
    if (/^\d{1,9}$/.test(hash.get('sdkPlayerId') || '')) sdkPlayerId = Number(hash.get('sdkPlayerId'));
    try {
      const origin = atob(hash.get('sdkOrigin') || '');
      const u = new URL(origin);
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.origin === origin) sdkOrigin = origin;
    } catch (_) { /* not an origin: no API */ }
  }
  if (sdkPlayerId === null || sdkOrigin === null) return;

  function post(data) {
    window.parent.postMessage({ ...data, sdkPlayerId }, sdkOrigin);
  }
  function emit(type, data) {
    if (active) post({ ...data, type });
  }

  // The server's grammar for stored themes (vidi_core::player::valid_colour), rule for rule:
  // hex, rgb[a]()/hsl[a]() in the comma or the space form, or a CSS named colour (the same list,
  // NAMED_COLOURS, checked against the server's by a test).
  const NAMED_COLOURS = 'aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue '
    + 'blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue '
    + 'cornsilk crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey '
    + 'darkkhaki darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon '
    + 'darkseagreen darkslateblue darkslategray darkslategrey darkturquoise darkviolet '
    + 'deeppink deepskyblue dimgray dimgrey dodgerblue firebrick floralwhite forestgreen '
    + 'fuchsia gainsboro ghostwhite gold goldenrod gray green greenyellow grey honeydew '
    + 'hotpink indianred indigo ivory khaki lavender lavenderblush lawngreen lemonchiffon '
    + 'lightblue lightcoral lightcyan lightgoldenrodyellow lightgray lightgreen lightgrey '
    + 'lightpink lightsalmon lightseagreen lightskyblue lightslategray lightslategrey '
    + 'lightsteelblue lightyellow lime limegreen linen magenta maroon mediumaquamarine '
    + 'mediumblue mediumorchid mediumpurple mediumseagreen mediumslateblue mediumspringgreen '
    + 'mediumturquoise mediumvioletred midnightblue mintcream mistyrose moccasin navajowhite '
    + 'navy oldlace olive olivedrab orange orangered orchid palegoldenrod palegreen '
    + 'paleturquoise palevioletred papayawhip peachpuff peru pink plum powderblue purple '
    + 'rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown seagreen seashell '
    + 'sienna silver skyblue slateblue slategray slategrey snow springgreen steelblue tan '
    + 'teal thistle tomato transparent turquoise violet wheat white whitesmoke yellow '
    + 'yellowgreen';
  const NAMED = new Set(NAMED_COLOURS.split(' '));
  const CSS_NUMBER = /^[+-]?(\d+|\d*\.\d+)$/;
  const isNumber = (v) => CSS_NUMBER.test(v);
  const isPercent = (v) => v.endsWith('%') && isNumber(v.slice(0, -1));
  const isNumberOrPercent = (v) => isNumber(v) || isPercent(v);
  const isHue = (v) => isNumber(v) || ['deg', 'grad', 'rad', 'turn'].some((u) => v.endsWith(u) && isNumber(v.slice(0, -u.length)));
  function validColour(s) {
    if (typeof s !== 'string' || !s || s.length > 64) return false;
    if (s[0] === '#') return /^#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(s);
    const lower = s.toLowerCase();
    if (/^[a-z]+$/.test(lower)) return NAMED.has(lower);
    const m = /^(rgba?|hsla?)\((.*)\)$/.exec(lower);
    if (!m) return false;
    const hsl = m[1].startsWith('hsl');
    const inner = m[2];
    let values;
    let alpha;
    if (inner.includes(',')) {
      const parts = inner.split(',').map((p) => p.trim());
      if (inner.includes('/') || parts.length < 3 || parts.length > 4) return false;
      values = parts.slice(0, 3);
      alpha = parts[3];
    } else {
      const slash = inner.indexOf('/');
      const head = slash < 0 ? inner : inner.slice(0, slash);
      if (slash >= 0) alpha = inner.slice(slash + 1).trim();
      values = head.split(/[ \t\n\r\f]+/).filter((v) => v !== '');
    }
    if (values.length !== 3) return false;
    const first = hsl ? isHue(values[0]) : isNumberOrPercent(values[0]);
    const rest = values.slice(1).every((v) => (hsl ? isPercent(v) : isNumberOrPercent(v)));
    return first && rest && (alpha === undefined || isNumberOrPercent(alpha));
  }

  const NUMBER = '-?\\d{1,6}(?:\\.\\d{1,6})?';
  const TRANSFORM = new RegExp(`^(?:none|(?:\\s*(?:matrix|translate|translateX|translateY|scale|scaleX|scaleY|rotate|skew|skewX|skewY)\\(\\s*${NUMBER}(?:px|%|deg|rad|turn)?(?:\\s*,\\s*${NUMBER}(?:px|%|deg|rad|turn)?){0,5}\\s*\\))+\\s*)$`);
  const FITS = ['contain', 'cover', 'fill', 'none', 'scale-down'];

  // setStyleProperty: only what the SDK's setVideoStyleTransform and setVideoStyleObjectFit send,
  // on the picture (`video`) and the poster (`.vjs-poster` in api.video's page).
  function setStyle(m) {
    const target = m.query === 'video' ? video : m.query === '.vjs-poster' ? posterImage : null;
    if (!target || typeof m.value !== 'string') return;
    if (m.property === 'transform' && TRANSFORM.test(m.value)) target.style.transform = m.value;
    else if (m.property === 'object-fit' && FITS.includes(m.value)) {
      target.style.objectFit = m.value;
      if (target === video) video.style.setProperty('--media-object-fit', m.value);
    } else if (m.property === 'background-size' && target === posterImage) {
      const fit = m.value === '100% 100%' ? 'fill' : m.value;
      if (FITS.includes(fit)) posterImage.style.setProperty('--media-object-fit', fit);
    }
  }

  function setTheme(theme) {
    if (!theme || typeof theme !== 'object') return;
    const vars = config.themeVariables || {};
    for (const [field, value] of Object.entries(theme)) {
      if (!Object.prototype.hasOwnProperty.call(vars, field) || !validColour(value)) continue;
      for (const name of vars[field]) player.style.setProperty(name, value);
    }
  }

  const finite = (v) => typeof v === 'number' && Number.isFinite(v);
  const bool = (v) => v === true || v === false;
  const duration = () => (Number.isFinite(video.duration) ? video.duration : 0);
  const clampTime = (t) => Math.max(0, duration() ? Math.min(t, duration()) : t);

  function toggleFullscreen(on) {
    const p = on ? document.documentElement.requestFullscreen?.() : document.fullscreenElement && document.exitFullscreen();
    if (p && p.catch) p.catch(() => {});
  }
  function togglePip(on) {
    const p = on ? video.requestPictureInPicture?.() : document.pictureInPictureElement && document.exitPictureInPicture();
    if (p && p.catch) p.catch(() => {});
  }

  // Each command: what it does, and what it answers (getters).
  const COMMANDS = {
    play: () => { video.play().catch(() => {}); },
    pause: () => { video.pause(); },
    mute: () => { video.muted = true; },
    unmute: () => { video.muted = false; },
    seek: (m) => { if (finite(m.seek)) video.currentTime = clampTime(video.currentTime + m.seek); },
    setCurrentTime: (m) => { if (finite(m.currentTime)) video.currentTime = clampTime(m.currentTime); },
    setVolume: (m) => { if (finite(m.volume) && m.volume >= 0 && m.volume <= 1) video.volume = m.volume; },
    setLoop: (m) => { if (bool(m.loop)) setLoop(m.loop); },
    setAutoplay: (m) => { if (bool(m.autoplay)) video.autoplay = !!(forced.autoplay || m.autoplay); },
    setPlaybackRate: (m) => { if (finite(m.rate) && m.rate >= 0.25 && m.rate <= 4) video.playbackRate = m.rate; },
    hideControls: (m) => controls(m.controls, true),
    showControls: (m) => controls(m.controls, false),
    setChromeless: (m) => {
      if (!bool(m.chromeless)) return;
      state.chromeless = m.chromeless;
      renderControls();
      renderTitle();
      emit(m.chromeless ? 'controlsdisabled' : 'controlsenabled');
    },
    hideTitle: () => { state.titleHidden = true; renderTitle(); },
    showTitle: () => { state.titleHidden = false; renderTitle(); },
    hidePoster: () => { state.posterHidden = true; renderPoster(); },
    showPoster: () => { state.posterHidden = false; renderPoster(); },
    hideSubtitles: () => showSubtitles(false),
    showSubtitles: () => showSubtitles(true),
    setTheme: (m) => setTheme(m.theme),
    setStyleProperty: setStyle,
    setMinimalQuality: (m) => { state.minQuality = quality(m.quality); applyQualities(); },
    setMaximalQuality: (m) => { state.maxQuality = quality(m.quality); applyQualities(); },
    requestFullscreen: () => toggleFullscreen(true),
    exitFullscreen: () => toggleFullscreen(false),
    requestPictureInPicture: () => togglePip(true),
    exitPictureInPicture: () => togglePip(false),
    loadConfig: (m) => {
      // A new video in this frame: only another player page of this server.
      let u;
      try { u = new URL(String(m.url), location.href); } catch (_) { return; }
      if (u.origin === location.origin && /^\/embed\/(vod|live)\/[A-Za-z0-9]{1,64}$/.test(u.pathname)) {
        location.replace(u.href);
      }
    },
    destroy: () => {
      active = false;
      window.removeEventListener('message', onMessage);
      video.pause();
      if (window.vidiHls) window.vidiHls.destroy();
    },
    getPaused: () => video.paused,
    getPlaying: () => !video.paused && !video.ended && video.readyState > 2,
    getMuted: () => video.muted,
    getVolume: () => video.volume,
    getLoop: () => video.loop,
    getCurrentTime: () => video.currentTime,
    getDuration: () => duration(),
    getPlaybackRate: () => video.playbackRate,
    getVideoSize: () => ({ width: video.videoWidth, height: video.videoHeight }),
    isLiveStream: () => !!config.live,
    // Absolute: the SDK fetches it from the app's page.
    getMp4Url: () => (config.mp4 ? new URL(config.mp4, location.href).href : null),
  };

  // hide/showControls: all of them (the SDK's `hideControls()`), or the named ones.
  function controls(names, hide) {
    if (names === undefined || names === null) {
      state.controlsHidden = hide;
      renderControls();
      emit(hide ? 'controlsdisabled' : 'controlsenabled');
      return;
    }
    if (!Array.isArray(names) || names.length > 20) return;
    for (const n of names) {
      if (typeof n !== 'string' || !Object.prototype.hasOwnProperty.call(CONTROLS, n)) continue;
      if (hide) state.hiddenControls.add(n);
      else state.hiddenControls.delete(n);
    }
    renderControls();
  }

  active = true;
  function onMessage(e) {
    if (!active || e.source !== window.parent || e.origin !== sdkOrigin) return;
    const m = e.data;
    if (!m || typeof m !== 'object' || Array.isArray(m)) return;
    if (String(m.sdkPlayerId) !== String(sdkPlayerId)) return;
    if (typeof m.message !== 'string' || !Object.prototype.hasOwnProperty.call(COMMANDS, m.message)) return;
    const callbackId = typeof m.callbackId === 'string' && /^[A-Za-z0-9]{1,64}$/.test(m.callbackId) ? m.callbackId : null;
    let arg;
    try {
      arg = COMMANDS[m.message](m);
    } catch (_) {
      arg = undefined; // a command the browser refused (e.g. a volume it would not take)
    }
    // Every message the SDK sends waits on its callbackId: commands are acknowledged too.
    if (callbackId) post({ callbackId, arg });
  }
  window.addEventListener('message', onMessage);

  // ---- Events ------------------------------------------------------------------------------------

  let ready = false;
  function onReady() {
    if (ready) return;
    ready = true;
    emit('ready');
  }
  let played = false;
  video.addEventListener('loadedmetadata', onReady);
  video.addEventListener('play', () => emit('play'));
  video.addEventListener('playing', () => { if (!played) { played = true; emit('firstplay'); } });
  video.addEventListener('pause', () => { if (!video.ended) emit('pause'); });
  video.addEventListener('ended', () => emit('ended'));
  video.addEventListener('seeking', () => emit('seeking'));
  video.addEventListener('ratechange', () => emit('ratechange'));
  video.addEventListener('timeupdate', () => emit('timeupdate', { currentTime: video.currentTime }));
  video.addEventListener('volumechange', () => emit('volumechange', { volume: video.volume, muted: video.muted }));
  video.addEventListener('error', () => emit('error'));
  video.addEventListener('resize', () => {
    emit('qualitychange', { resolution: { width: video.videoWidth, height: video.videoHeight } });
  });
  document.addEventListener('fullscreenchange', () => emit('fullscreenchange', { isFullScreen: !!document.fullscreenElement }));
  document.documentElement.addEventListener('mouseenter', () => emit('mouseenter'));
  document.documentElement.addEventListener('mouseleave', () => emit('mouseleave'));
  window.addEventListener('resize', () => { emit('playerresize'); emit('resize'); });
  // media-chrome marks the controller `userinactive` while the viewer does nothing.
  new MutationObserver(() => emit(player.hasAttribute('userinactive') ? 'userinactive' : 'useractive'))
    .observe(player, { attributes: true, attributeFilter: ['userinactive'] });

  post({ type: 'sdkSync' });
  if (video.readyState >= 1) onReady();
})();
