// The player page's behaviour: reads the configuration the server wrote (#vidi-config), plays
// the HLS master with hls.js (or the browser's own HLS), and feeds media-chrome's controls what
// a plain <video> does not tell them (the qualities hls.js found). Captions, chapters, the logo
// and the theme come from the configuration; a new piece of the player is one more function
// called from start() (see docs/architecture.md).
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('vidi-config').textContent);
  const player = document.getElementById('player');
  const video = player.querySelector('video');
  const message = player.querySelector('.message');

  function fail(text) {
    message.textContent = text;
    message.hidden = false;
    player.querySelector('media-loading-indicator').hidden = true;
    // The analytics report counts it as a fatal error (analytics.js).
    video.dispatchEvent(new CustomEvent('vidi-fatal'));
  }

  // ---- What the configuration sets up before playback --------------------------------------

  function title() {
    document.title = config.title || 'Video';
    const h = player.querySelector('.title');
    // Hidden, not removed: the player SDK may show it again (sdk-bridge.js).
    h.textContent = config.title;
    h.hidden = !!config.hideTitle;
  }

  function poster() {
    if (!config.poster) return;
    video.poster = config.poster;
    player.querySelector('media-poster-image').setAttribute('src', config.poster);
  }

  function logo() {
    if (!config.logo || !config.logo.src) return;
    const a = player.querySelector('.logo');
    a.querySelector('img').src = config.logo.src;
    if (config.logo.link) a.href = config.logo.link;
    a.hidden = false;
  }

  // A theme is a map of CSS variables (media-chrome's `--media-*`, the page's `--vidi-*`).
  function theme() {
    for (const [name, value] of Object.entries(config.theme || {})) {
      if (/^--(media|vidi)-[a-z0-9-]+$/.test(name)) player.style.setProperty(name, String(value));
    }
  }

  // Captions are <track> elements over the stored WebVTT files, whose cue times are the video's
  // own. Under hls.js only: a browser playing HLS itself (Safari) offers the master's SUBTITLES
  // group instead, and hls.js is kept away from text tracks (see startHls).
  function captions() {
    for (const c of config.captions || []) {
      const track = document.createElement('track');
      track.kind = 'subtitles';
      track.srclang = c.lang;
      track.label = c.label || c.lang;
      track.src = c.src;
      if (c.default) track.default = true;
      video.appendChild(track);
    }
  }

  // Chapters become a `chapters` text track, which media-chrome draws as markers on the
  // timeline (and names in the seek tooltip).
  function chapters() {
    const list = config.chapters || [];
    if (!list.length) return;
    if (window.VTTCue) {
      const track = video.addTextTrack('chapters');
      for (const c of list) track.addCue(new VTTCue(c.start, c.end, c.title));
      track.mode = 'hidden';
    }
    chapterList(list);
  }

  // The chapters, listed: a button in the control bar opens a list; choosing one seeks to it.
  // Titles are set as text, never as markup.
  function chapterList(list) {
    const clock = (s) => {
      const t = Math.floor(s);
      const h = Math.floor(t / 3600);
      const mmss = `${Math.floor((t % 3600) / 60)}`.padStart(h ? 2 : 1, '0') + ':' + `${t % 60}`.padStart(2, '0');
      return h ? `${h}:${mmss}` : mmss;
    };
    const panel = document.createElement('ol');
    panel.className = 'chapters';
    panel.setAttribute('slot', 'centered-chrome');
    panel.setAttribute('aria-label', 'Chapters');
    panel.hidden = true;
    for (const c of list) {
      const item = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      const time = document.createElement('span');
      time.className = 'time';
      time.textContent = clock(c.start);
      b.append(time, document.createTextNode(c.title));
      b.addEventListener('click', () => {
        video.currentTime = c.start;
        panel.hidden = true;
      });
      item.appendChild(b);
      panel.appendChild(item);
    }
    player.appendChild(panel);
    const toggle = document.createElement('media-chrome-button');
    toggle.className = 'chapters-button';
    toggle.setAttribute('aria-label', 'Chapters');
    toggle.innerHTML = '<svg viewBox="0 0 24 24" width="24" height="24" aria-hidden="true">'
      + '<path fill="currentColor" d="M4 6h2v2H4zm4 0h12v2H8zm-4 5h2v2H4zm4 0h12v2H8zm-4 5h2v2H4zm4 0h12v2H8z"/></svg>';
    toggle.addEventListener('click', () => { panel.hidden = !panel.hidden; });
    const bar = player.querySelector('media-control-bar');
    bar.insertBefore(toggle, bar.querySelector('media-captions-menu-button'));
  }

  // ---- Qualities -----------------------------------------------------------------------------

  // media-chrome's quality menu reads `video.videoRenditions` (a VideoRenditionList, as custom
  // media elements offer) and sets its `selectedIndex` (-1: automatic). This one is backed by
  // hls.js's levels.
  // It exists before media-chrome loads (see index.html), which reads it once, on upgrade.
  class Renditions extends EventTarget {
    constructor() {
      super();
      this.hls = null;
      this.length = 0;
      this.selected = -1;
    }
    levelsLoaded(levels) {
      for (let i = 0; i < this.length; i++) delete this[i];
      levels.forEach((l, i) => {
        this[i] = { id: String(i), width: l.width, height: l.height, bitrate: l.bitrate, codec: l.codecSet };
      });
      this.length = levels.length;
      this.dispatchEvent(new Event('addrendition'));
    }
    get selectedIndex() { return this.selected; }
    set selectedIndex(i) {
      this.selected = i;
      // currentLevel switches now (dropping what is buffered); -1 hands the choice back to ABR.
      if (this.hls) this.hls.currentLevel = i;
      this.dispatchEvent(new Event('change'));
    }
    [Symbol.iterator]() { return Array.prototype.slice.call(this, 0, this.length)[Symbol.iterator](); }
  }

  const renditions = new Renditions();
  Object.defineProperty(video, 'videoRenditions', { value: renditions, configurable: true });

  // ---- Panoramic (360°) videos --------------------------------------------------------------

  // A panoramic video's frames are equirectangular: the whole sphere around the camera, longitude
  // across and latitude down. The page draws the part of that sphere the viewer looks at, with
  // WebGL: two triangles over a canvas laid on the picture, and a fragment shader that turns each
  // pixel into a direction (the view's yaw and pitch, its field of view) and reads the frame
  // where that direction meets the sphere. The viewer turns the view by dragging (mouse, pen and
  // touch alike: pointer events) or with the arrow keys once the view has the focus. Where WebGL
  // is missing the canvas is never added, and the flat frame plays as any video.
  const PANORAMA_VERTEX = 'attribute vec2 p; varying vec2 uv; void main() { uv = p; gl_Position = vec4(p, 0.0, 1.0); }';
  const PANORAMA_FRAGMENT = `precision mediump float;
    varying vec2 uv;
    uniform sampler2D frame;
    uniform float yaw, pitch, tanHalfFov, aspect;
    const float PI = 3.14159265;
    void main() {
      // The ray through this pixel, the camera looking down -z; then pitched (about x: up is
      // positive) and turned (about y: right is positive).
      vec3 d = normalize(vec3(uv.x * tanHalfFov * aspect, uv.y * tanHalfFov, -1.0));
      float cp = cos(pitch), sp = sin(pitch);
      d = vec3(d.x, d.y * cp - d.z * sp, d.y * sp + d.z * cp);
      float cy = cos(yaw), sy = sin(yaw);
      d = vec3(d.x * cy - d.z * sy, d.y, d.x * sy + d.z * cy);
      // Longitude 0 (straight ahead) is the middle of the frame, the zenith its top row.
      float lon = atan(d.x, -d.z);
      float lat = asin(clamp(d.y, -1.0, 1.0));
      gl_FragColor = texture2D(frame, vec2(fract(lon / (2.0 * PI) + 0.5), 0.5 - lat / PI));
    }`;
  const FOV = (75 * Math.PI) / 180; // vertical, as 360° players commonly open
  const KEY_STEP = (5 * Math.PI) / 180;
  const MAX_PITCH = (85 * Math.PI) / 180;

  function panorama() {
    if (!config.panoramic) return;
    const canvas = document.createElement('canvas');
    canvas.className = 'panorama';
    const gl = canvas.getContext('webgl', { alpha: false, antialias: false });
    if (!gl) return; // the flat picture stays
    const shader = (type, text) => {
      const s = gl.createShader(type);
      gl.shaderSource(s, text);
      gl.compileShader(s);
      return s;
    };
    const program = gl.createProgram();
    gl.attachShader(program, shader(gl.VERTEX_SHADER, PANORAMA_VERTEX));
    gl.attachShader(program, shader(gl.FRAGMENT_SHADER, PANORAMA_FRAGMENT));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) return;
    gl.useProgram(program);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    const at = gl.getAttribLocation(program, 'p');
    gl.enableVertexAttribArray(at);
    gl.vertexAttribPointer(at, 2, gl.FLOAT, false, 0, 0);
    const uniform = (name) => gl.getUniformLocation(program, name);
    const [uYaw, uPitch, uTan, uAspect] = ['yaw', 'pitch', 'tanHalfFov', 'aspect'].map(uniform);
    gl.bindTexture(gl.TEXTURE_2D, gl.createTexture());
    // Frames are rarely powers of two: no mipmaps, no repeat (the shader wraps longitude itself).
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.LINEAR);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE);

    const view = { yaw: 0, pitch: 0, frames: 0 };
    let framed = false; // a frame is in the texture
    let dirty = true; // the view moved since it was drawn
    const turn = (dYaw, dPitch) => {
      view.yaw = (view.yaw + dYaw) % (2 * Math.PI);
      view.pitch = Math.max(-MAX_PITCH, Math.min(MAX_PITCH, view.pitch + dPitch));
      dirty = true;
    };

    function draw() {
      requestAnimationFrame(draw);
      const ratio = window.devicePixelRatio || 1;
      const w = Math.max(1, Math.round(canvas.clientWidth * ratio));
      const h = Math.max(1, Math.round(canvas.clientHeight * ratio));
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
        dirty = true;
      }
      // A new frame while playing (or the first one): into the texture.
      const fresh = video.readyState >= 2 && (!framed || !video.paused || video.seeking);
      if (fresh) {
        gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, video);
        if (!framed) canvas.style.visibility = 'visible';
        framed = true;
      }
      if (!framed || !(fresh || dirty)) return;
      gl.viewport(0, 0, w, h);
      gl.uniform1f(uYaw, view.yaw);
      gl.uniform1f(uPitch, view.pitch);
      gl.uniform1f(uTan, Math.tan(FOV / 2));
      gl.uniform1f(uAspect, w / h);
      gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
      view.frames++;
      dirty = false;
    }

    // Dragging moves the picture with the pointer (a drag to the right looks left); a press
    // that does not move plays or pauses, as a click on a flat picture does.
    let drag = null;
    canvas.addEventListener('pointerdown', (e) => {
      drag = { x: e.clientX, y: e.clientY, moved: 0, id: e.pointerId };
      canvas.setPointerCapture(e.pointerId);
      canvas.classList.add('dragging');
    });
    canvas.addEventListener('pointermove', (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const perPixel = FOV / Math.max(1, canvas.clientHeight);
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      drag.moved += Math.abs(dx) + Math.abs(dy);
      drag.x = e.clientX;
      drag.y = e.clientY;
      turn(-dx * perPixel, dy * perPixel);
    });
    const release = (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const click = drag.moved < 4 && e.type === 'pointerup';
      drag = null;
      canvas.classList.remove('dragging');
      if (click) {
        if (video.paused) video.play().catch(() => {});
        else video.pause();
      }
    };
    canvas.addEventListener('pointerup', release);
    canvas.addEventListener('pointercancel', release);
    // The arrow keys turn the view while it has the focus; media-chrome's own arrow keys (seek,
    // volume) are kept from seeing them then.
    const KEYS = { ArrowLeft: [-KEY_STEP, 0], ArrowRight: [KEY_STEP, 0], ArrowUp: [0, KEY_STEP], ArrowDown: [0, -KEY_STEP] };
    canvas.tabIndex = 0;
    canvas.setAttribute('role', 'application');
    canvas.setAttribute('aria-label', '360° view: drag, or use the arrow keys, to look around');
    for (const type of ['keydown', 'keyup']) {
      canvas.addEventListener(type, (e) => {
        if (!KEYS[e.key]) return;
        e.stopPropagation();
        e.preventDefault();
        if (type === 'keydown') turn(...KEYS[e.key]);
      });
    }

    canvas.style.visibility = 'hidden'; // until it has a frame: the poster shows meanwhile
    canvas.setAttribute('slot', 'media');
    video.after(canvas);
    player.classList.add('panoramic');
    // For the browser tests and for debugging from the console.
    window.vidiPanorama = view;
    requestAnimationFrame(draw);
  }

  // ---- Playback ------------------------------------------------------------------------------

  // Live: from the live edge. Otherwise from `?t=` (or 0): a video still being encoded has a
  // growing playlist, which hls.js would otherwise treat as live and join at its end.
  const startAt = config.live ? -1 : Math.max(0, Number(config.startAt) || 0);

  // A theme may hide the controls (`enableControls: false`) and force looping.
  function behaviour() {
    if (config.controls === false) player.classList.add('no-controls');
    if (config.loop) video.loop = true;
  }

  function play() {
    if (config.autoplay) {
      video.muted = true; // browsers only autoplay muted media
      video.autoplay = true;
      video.play().catch(() => {});
    }
  }

  function startHls() {
    // No subtitle or caption controllers: the master's SUBTITLES group would otherwise give a
    // second copy of each caption (hls.js reuses a <track> of the same label and adds its own
    // cues to it), timed from the MPEG-TS clock, and hls.js clears the cues of every text
    // track, the chapters' too, when it attaches.
    const hls = new Hls({
      startPosition: startAt,
      subtitleStreamController: null,
      subtitleTrackController: null,
      timelineController: null,
    });
    window.vidiHls = hls; // for the browser tests and for debugging from the console
    renditions.hls = hls;
    // For analytics.js: the renditions played (hls.js's LEVEL_SWITCHED).
    video.dispatchEvent(new CustomEvent('vidi-hls', { detail: hls }));
    hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => renditions.levelsLoaded(d.levels));
    let retries = 0;
    hls.on(Hls.Events.FRAG_LOADED, () => { retries = 0; });
    // Recover in place (never back to the start), a bounded number of times.
    hls.on(Hls.Events.ERROR, (_, d) => {
      if (!d.fatal) return;
      if (++retries > 10) { hls.destroy(); return fail('This video cannot be played right now.'); }
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else setTimeout(() => hls.startLoad(video.currentTime || -1), 1000 * retries);
    });
    hls.loadSource(config.hls);
    hls.attachMedia(video);
    captions();
    play();
  }

  function startNative() {
    video.src = config.hls;
    if (startAt > 0) video.addEventListener('loadedmetadata', () => { video.currentTime = startAt; }, { once: true });
    play();
  }

  function start() {
    if (window.Hls && Hls.isSupported()) startHls();
    else if (video.canPlayType('application/vnd.apple.mpegurl')) startNative();
    else fail('This browser cannot play this video.');
  }

  title();
  poster();
  logo();
  theme();
  behaviour();
  chapters();
  panorama();
  // A live stream waits for its broadcast and plays from its live edge: live.js.
  if (config.live && window.vidiLive) return window.vidiLive({ config, player, video, renditions, play, fail });
  // Until the first rendition exists the manifest answers 202: wait for it, and only for that.
  (async function wait(attempt) {
    const r = await fetch(config.hls).catch(() => null);
    if (r && r.status === 200) return start();
    if (r && r.status !== 202) return fail(r.status === 403 ? 'This video is private.' : 'This video is not available.');
    setTimeout(() => wait(attempt + 1), Math.min(500 * (attempt + 1), 3000));
  })(0);
})();
