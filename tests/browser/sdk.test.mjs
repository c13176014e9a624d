// api.video's player SDK (npm `@api.video/player-sdk`, pinned in package.json) drives Vidi's
// player page from a page on another origin, through its `iframeUrl` option; then the same
// video gets a player theme (colours, a PNG logo with a link), which the page shows and which
// limits what the SDK may change (`hideTitle`, `enableControls`, `forceLoop`, `enableApi`).
//
// Environment: VIDI_URL, VIDI_API_KEY (see run.sh); CHROMIUM optional.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  VIDI_URL, api, bundle, makeClip, makePng, near, newPage, openBrowser, pixels, shot, staticServer,
  until, uploadSource, waitPlayable, withLog,
} from './helpers.mjs';

// The app's page: the SDK's UMD bundle (global `PlayerSdk`), a box for the player, and a log of
// the SDK's events.
const APP_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>app</title>
<style>html,body{margin:0;background:#222}#box{width:640px;height:360px}</style></head>
<body><div id="box"></div>
<script src="/player-sdk.js"></script>
<script>
  window.events = [];
  window.start = (options) => {
    window.sdk = new PlayerSdk('#box', options);
    for (const type of ['ready', 'play', 'pause', 'ended', 'timeupdate', 'seeking', 'volumechange',
      'firstplay', 'controlsdisabled', 'controlsenabled', 'sdkSync']) {
      window.sdk.addEventListener(type, (data) => window.events.push({ type, data }));
    }
  };
  window.count = (type) => window.events.filter((e) => e.type === type).length;
</script></body></html>`;

// A page that frames the player claiming to be the app (its hash names the app's origin) and
// then posts commands itself: the player must ignore it.
const FORGER_PAGE = `<!doctype html><html><body>
<iframe id="f" style="width:640px;height:360px" allow="autoplay"></iframe>
<script>
  window.heard = [];
  addEventListener('message', (e) => window.heard.push(e.data));
  window.frame = (src) => { document.getElementById('f').src = src; };
  window.send = (m) => document.getElementById('f').contentWindow.postMessage(m, '*');
</script></body></html>`;

const LANDING_PAGE = '<!doctype html><title>landing</title><p>the logo link</p>';

// `${type}` and `${id}` are the SDK's placeholders, not JavaScript's.
const IFRAME_URL = `${VIDI_URL}/embed/\${type}/\${id}`;

describe('@api.video/player-sdk against the player page', () => {
  let dir;
  let clip;
  let app;
  let videoId;
  const cleanup = [];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vidi-sdk-browser-'));
    clip = path.join(dir, 'clip.mp4');
    makeClip(clip);
    app = await staticServer({
      '/app.html': ['text/html', APP_PAGE],
      '/forger.html': ['text/html', FORGER_PAGE],
      '/landing.html': ['text/html', LANDING_PAGE],
      '/player-sdk.js': ['text/javascript', bundle('@api.video/player-sdk')],
    });
    const video = await api('POST', '/videos', { json: { title: 'browser test: player sdk' } });
    videoId = video.videoId;
    cleanup.push(() => api('DELETE', `/videos/${videoId}`));
    await uploadSource(videoId, clip);
    await waitPlayable(videoId);
  });

  after(async () => {
    for (const f of cleanup.reverse()) await f().catch(() => {});
    if (app) await app.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Opens the app page on its own origin and starts the SDK there with `options`.
  async function openApp(browser, options) {
    const { page, log } = await newPage(browser);
    await page.goto(`${app.origin}/app.html`, { waitUntil: 'load', timeout: 30_000 });
    await page.evaluate((o) => window.start(o), { id: videoId, iframeUrl: IFRAME_URL, ...options });
    return { page, log };
  }

  const sdk = (page, method, ...args) => page.evaluate(({ method, args }) => window.sdk[method](...args), { method, args });
  const count = (page, type) => page.evaluate((t) => window.count(t), type);
  const waitEvent = (page, type, ms = 20_000) => until(`the SDK's "${type}" event`, async () => ({
    ok: (await count(page, type)) > 0, type,
  }), ms);
  const frame = (page) => page.frames().find((f) => f.url().startsWith(`${VIDI_URL}/embed/`));

  test('an app on another origin plays, pauses, seeks, sets the volume and reads the player', { timeout: 240_000 }, async () => {
    const browser = await openBrowser();
    try {
      // No autoplay option: the SDK's default, not playing.
      const { page, log } = await openApp(browser, {});
      await withLog(log, async () => {
        await waitEvent(page, 'ready', 30_000);
        const duration = await sdk(page, 'getDuration');
        assert.ok(duration > 5.5 && duration < 6.6, `getDuration: ${duration}`);
        assert.equal(await sdk(page, 'getPaused'), true, 'not playing before play()');
        assert.equal(await sdk(page, 'isLiveStream'), false);
        const size = await sdk(page, 'getVideoSize');
        assert.ok(size.width > 0 && size.height > 0, `getVideoSize: ${JSON.stringify(size)}`);

        await sdk(page, 'play');
        await waitEvent(page, 'play');
        await until('getCurrentTime moves', async () => {
          const t = await sdk(page, 'getCurrentTime');
          return { ok: t > 0.5, t };
        });
        assert.equal(await sdk(page, 'getPlaying'), true);
        const ticks = await page.evaluate(() => window.events.filter((e) => e.type === 'timeupdate').map((e) => e.data.currentTime));
        assert.ok(ticks.length > 0 && ticks.every((t) => typeof t === 'number'), `timeupdate: ${ticks}`);
        await waitEvent(page, 'firstplay');

        await sdk(page, 'pause');
        await waitEvent(page, 'pause');
        assert.equal(await sdk(page, 'getPaused'), true);
        assert.equal(await sdk(page, 'getPlaying'), false);

        await sdk(page, 'setCurrentTime', 2);
        await waitEvent(page, 'seeking');
        await until('setCurrentTime(2)', async () => {
          const t = await sdk(page, 'getCurrentTime');
          return { ok: Math.abs(t - 2) < 0.05, t };
        });
        // seek() is relative.
        await sdk(page, 'seek', 1.5);
        await until('seek(1.5) from 2 s', async () => {
          const t = await sdk(page, 'getCurrentTime');
          return { ok: Math.abs(t - 3.5) < 0.05, t };
        });

        await sdk(page, 'setVolume', 0.5);
        await waitEvent(page, 'volumechange');
        assert.equal(await sdk(page, 'getVolume'), 0.5);
        const change = await page.evaluate(() => window.events.find((e) => e.type === 'volumechange').data);
        assert.equal(change.volume, 0.5);
        await sdk(page, 'mute');
        assert.equal(await sdk(page, 'getMuted'), true);
        await sdk(page, 'unmute');
        assert.equal(await sdk(page, 'getMuted'), false);
        // Out of range: ignored, not thrown at the page.
        await sdk(page, 'setVolume', 7);
        assert.equal(await sdk(page, 'getVolume'), 0.5);

        await sdk(page, 'setLoop', true);
        assert.equal(await sdk(page, 'getLoop'), true);
        await sdk(page, 'setLoop', false);
        assert.equal(await sdk(page, 'getLoop'), false);
        await sdk(page, 'setPlaybackRate', 1.5);
        assert.equal(await sdk(page, 'getPlaybackRate'), 1.5);
        await sdk(page, 'setPlaybackRate', 1);

        // The title and the controls, hidden and shown again.
        const player = frame(page);
        assert.ok(player, 'the player frame');
        assert.equal(await player.locator('.title').isVisible(), true);
        await sdk(page, 'hideTitle');
        await until('the title hides', async () => ({ ok: !(await player.locator('.title').isVisible()) }), 5_000);
        await sdk(page, 'hideControls');
        await until('the controls hide', async () => ({ ok: !(await player.locator('media-control-bar').isVisible()) }), 5_000);
        await waitEvent(page, 'controlsdisabled', 5_000);
        await shot(page, 'sdk-hidden-controls');
        await sdk(page, 'showTitle');
        await sdk(page, 'showControls');
        await until('the title and controls are back', async () => ({
          ok: (await player.locator('.title').isVisible()) && (await player.locator('media-control-bar').isVisible()),
        }), 5_000);
        // Some controls by name.
        await sdk(page, 'hideControls', ['fullscreen', 'volume']);
        await until('fullscreen and volume hide', async () => ({
          ok: !(await player.locator('media-fullscreen-button').isVisible())
            && !(await player.locator('media-mute-button').isVisible())
            && (await player.locator('media-play-button').isVisible()),
        }), 5_000);
        await sdk(page, 'showControls', ['fullscreen', 'volume']);

        // The MP4 for download(), as an absolute URL of Vidi.
        const mp4 = await page.evaluate(() => new Promise((resolve) => {
          window.sdk.postMessage({ message: 'getMp4Url' }, resolve);
        }));
        assert.ok(mp4 && mp4.startsWith(`${VIDI_URL}/vod/${videoId}/mp4/`), `getMp4Url: ${mp4}`);

        // Style changes: what setVideoStyleObjectFit/Transform send is applied; anything else
        // the same channel carries (another element, another property, a value outside the
        // grammar, an unknown command) is not.
        await page.evaluate(() => {
          window.sdk.setVideoStyleObjectFit('cover');
          window.sdk.setVideoStyleTransform('scale(-1, 1)');
        });
        const styleOf = () => player.evaluate(() => {
          const v = document.querySelector('video');
          return { fit: v.style.objectFit, transform: v.style.transform, body: document.body.style.background };
        });
        await until('the video style', async () => {
          const st = await styleOf();
          return { ok: st.fit === 'cover' && st.transform === 'scale(-1, 1)', ...st };
        }, 5_000);
        const hostile = await page.evaluate(() => Promise.all([
          window.sdk.postMessage({ message: 'setStyleProperty', query: 'video', property: 'transform', value: 'url(https://evil.example/)' }),
          window.sdk.postMessage({ message: 'setStyleProperty', query: 'body', property: 'background', value: 'red' }),
          window.sdk.postMessage({ message: 'setStyleProperty', query: 'video', property: 'background-image', value: 'none' }),
          window.sdk.postMessage({ message: 'setCurrentTime', currentTime: 'NaN' }),
          window.sdk.postMessage({ message: 'setPlaybackRate', rate: 1e9 }),
        ]));
        assert.deepEqual(hostile, Array(5).fill(undefined), 'acknowledged, nothing answered');
        assert.deepEqual(await styleOf(), { fit: 'cover', transform: 'scale(-1, 1)', body: '' });
        assert.equal(await sdk(page, 'getPlaybackRate'), 1);
        // An unknown command gets no answer at all.
        const unknown = await page.evaluate(() => Promise.race([
          window.sdk.postMessage({ message: 'eval', code: 'document.title = 1' }).then(() => 'answered'),
          new Promise((r) => setTimeout(() => r('silent'), 1_000)),
        ]));
        assert.equal(unknown, 'silent');
        await page.evaluate(() => {
          window.sdk.setVideoStyleObjectFit('contain');
          window.sdk.setVideoStyleTransform('none');
        });

        // To the end.
        await sdk(page, 'setCurrentTime', 4.5);
        await sdk(page, 'play');
        await waitEvent(page, 'ended', 20_000);
        await shot(page, 'sdk-ended');

        // loadConfig: the frame loads the player again with the new options, and is ready again.
        await sdk(page, 'loadConfig', { id: videoId, hideTitle: true, autoplay: false });
        await until('ready again after loadConfig', async () => ({ ok: (await count(page, 'ready')) >= 2 }), 30_000);
        const reloaded = frame(page);
        assert.equal(await reloaded.locator('.title').isVisible(), false, 'hideTitle after loadConfig');
        assert.equal(await sdk(page, 'getPaused'), true);
      });
      await page.close();
    } finally {
      await browser.close();
    }
  });

  test('URL options from the SDK: hidden title and controls, muted, loop, a start time', { timeout: 120_000 }, async () => {
    const browser = await openBrowser();
    try {
      const { page, log } = await openApp(browser, {
        autoplay: true, muted: true, hideTitle: true, hideControls: true, loop: true, hotKeys: false,
        sequence: { start: 2, end: 4 }, maximalQuality: 240,
      });
      await withLog(log, async () => {
        await waitEvent(page, 'ready', 30_000);
        await waitEvent(page, 'play');
        const player = frame(page);
        assert.equal(await player.locator('.title').isVisible(), false, 'hideTitle');
        assert.equal(await player.locator('media-control-bar').isVisible(), false, 'hideControls');
        assert.equal(await sdk(page, 'getMuted'), true, 'muted');
        assert.equal(await sdk(page, 'getLoop'), true, 'loop');
        assert.equal(await player.locator('media-controller').getAttribute('nohotkeys'), '', 'hotKeys: false');
        // maximalQuality: hls.js's ABR is capped at the 240p rendition.
        assert.equal(await player.evaluate(() => window.vidiHls.levels[window.vidiHls.autoLevelCapping]?.height), 240);
        // The sequence: from 2 s, and round again before 4 s (loop).
        const seen = [];
        const deadline = Date.now() + 8_000;
        while (Date.now() < deadline) {
          seen.push(await sdk(page, 'getCurrentTime'));
          await sleep(200);
        }
        const playing = seen.filter((t) => t > 0);
        assert.ok(playing.length > 10 && playing.every((t) => t >= 1.9 && t <= 4.3), `times: ${seen}`);
        assert.ok(playing.some((t, i) => i > 0 && t < playing[i - 1]), `went round: ${seen}`);
      });
      await page.close();
    } finally {
      await browser.close();
    }
  });

  test('a page that is not the app named in the hash is ignored', { timeout: 120_000 }, async () => {
    const browser = await openBrowser();
    try {
      const { page, log } = await newPage(browser);
      // The same static server, as `localhost`: another origin than the app's 127.0.0.1.
      await page.goto(`http://localhost:${app.port}/forger.html`, { waitUntil: 'load', timeout: 30_000 });
      const appOrigin = Buffer.from(app.origin).toString('base64');
      await page.evaluate((src) => window.frame(src),
        `${VIDI_URL}/embed/vod/${videoId}?autoplay=false#api;sdkOrigin:${appOrigin};sdkPlayerId:1`);
      await withLog(log, async () => {
        const player = await until('the player frame loads', async () => {
          const f = frame(page);
          const ready = f && await f.evaluate(() => document.querySelector('video').readyState).catch(() => 0);
          return { ok: ready >= 1 };
        }, 30_000).then(() => frame(page));
        await page.evaluate(() => {
          window.send({ message: 'play', sdkPlayerId: 1, callbackId: 'abc' });
          window.send({ message: 'setVolume', volume: 0.1, sdkPlayerId: 1 });
        });
        await sleep(2_000);
        const state = await player.evaluate(() => ({ paused: document.querySelector('video').paused, volume: document.querySelector('video').volume }));
        assert.deepEqual(state, { paused: true, volume: 1 }, 'the forged commands did nothing');
        // Nor did this page hear anything: answers and events go to the named origin only.
        assert.deepEqual(await page.evaluate(() => window.heard), []);
      });
      await page.close();
    } finally {
      await browser.close();
    }
  });

  test('a player theme: colours and a logo linking to its link; what it forces the SDK cannot undo', { timeout: 180_000 }, async () => {
    const logo = path.join(dir, 'logo.png');
    makePng(logo, { colour: 'magenta', width: 120, height: 60 });
    const link = `${app.origin}/landing.html`;
    const theme = await api('POST', '/players', {
      json: {
        name: 'browser test theme',
        text: '#ffff00',
        link: '#ffffff',
        linkHover: '#ff8800',
        trackPlayed: '#ff0000',
        trackUnplayed: 'rgba(255, 255, 255, 0.35)',
        trackBackground: 'rgb(0, 255, 255)',
        backgroundTop: 'rgba(0, 160, 0, 1)',
        backgroundBottom: '#0000ff',
        backgroundText: '#ffffff',
        enableApi: true,
        enableControls: true,
        forceAutoplay: false,
        hideTitle: false,
        forceLoop: false,
      },
    });
    cleanup.push(() => api('DELETE', `/players/${theme.playerId}`));
    const form = new FormData();
    form.append('file', new Blob([readFileSync(logo)], { type: 'image/png' }), 'logo.png');
    form.append('link', link);
    await api('POST', `/players/${theme.playerId}/logo`, { form });
    await api('PATCH', `/videos/${videoId}`, { json: { playerId: theme.playerId } });
    const { assets } = await api('GET', `/videos/${videoId}`);

    const browser = await openBrowser();
    try {
      // The page itself: colours and the logo.
      let { page, log } = await newPage(browser);
      await withLog(log, async () => {
        await page.goto(`${assets.player}?autoplay=false`, { waitUntil: 'load', timeout: 30_000 });
        await until('the logo is loaded', () => page.evaluate(() => {
          const img = document.querySelector('.logo img');
          return { ok: !!img && img.complete && img.naturalWidth === 120, src: img?.src };
        }));
        await until('the video is loaded', () => page.evaluate(() => ({ ok: document.querySelector('video').readyState >= 2 })));
        await page.evaluate(() => { document.querySelector('video').currentTime = 3; });
        await sleep(500);
        const file = await shot(page, 'theme');
        const logoBox = await page.locator('.logo img').boundingBox();
        const button = await page.locator('media-play-button').boundingBox();
        const range = await page.locator('media-time-range').boundingBox();
        const [logoPx, barPx, playedPx, topPx] = await pixels(page, file, [
          { x: logoBox.x + logoBox.width / 2, y: logoBox.y + logoBox.height / 2 },
          // The control bar's background, in a corner of the play button.
          { x: button.x + 2, y: button.y + 2 },
          // The played part of the timeline (3 s of 6).
          { x: range.x + range.width * 0.2, y: range.y + range.height / 2 },
          // The top gradient at its start, beside the title.
          { x: 320, y: 2 },
        ]);
        assert.ok(near(logoPx, [255, 0, 255]), `logo pixel ${logoPx}`);
        assert.ok(near(barPx, [0, 0, 255], 60), `control bar pixel ${barPx}`);
        assert.ok(near(playedPx, [255, 0, 0], 60), `played track pixel ${playedPx}`);
        assert.ok(topPx[1] > topPx[0] + 40 && topPx[1] > topPx[2] + 40, `top background pixel ${topPx}`);
        // The text colour, on the controls' icons and the time.
        assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector('media-time-display')).color),
          'rgb(255, 255, 0)', 'the time in the text colour');
        assert.equal(await page.locator('.logo').getAttribute('href'), link);
        const [popup] = await Promise.all([page.waitForEvent('popup'), page.locator('.logo').click()]);
        await popup.waitForLoadState('load');
        assert.equal(popup.url(), link);
        await popup.close();
      });
      await page.close();

      // The theme forces a hidden title, no controls and a loop: the SDK may not undo them.
      await api('PATCH', `/players/${theme.playerId}`, { json: { hideTitle: true, enableControls: false, forceLoop: true } });
      ({ page, log } = await openApp(browser, { autoplay: false }));
      await withLog(log, async () => {
        await waitEvent(page, 'ready', 30_000);
        await sdk(page, 'showTitle');
        await sdk(page, 'showControls');
        await sdk(page, 'setLoop', false);
        assert.equal(await sdk(page, 'getLoop'), true, 'forceLoop');
        const player = frame(page);
        assert.equal(await player.locator('.title').isVisible(), false, 'hideTitle');
        assert.equal(await player.locator('media-control-bar').isVisible(), false, 'enableControls: false');
        // setTheme: a valid colour is applied, anything else is not.
        await sdk(page, 'setTheme', { trackPlayed: '#00ff00', backgroundBottom: 'url(https://evil.example/x)' });
        await until('setTheme', async () => {
          const vars = await player.evaluate(() => {
            const s = document.getElementById('player').style;
            return [s.getPropertyValue('--media-range-bar-color'), s.getPropertyValue('--media-control-background')];
          });
          return { ok: vars[0] === '#00ff00' && vars[1] === '#0000ff', vars };
        }, 5_000);
      });
      await page.close();

      // `enableApi: false`: the page answers nothing and obeys nothing.
      await api('PATCH', `/players/${theme.playerId}`, { json: { enableApi: false } });
      ({ page, log } = await openApp(browser, { autoplay: false }));
      await withLog(log, async () => {
        await until('the player frame loads', async () => {
          const f = frame(page);
          const ready = f && await f.evaluate(() => document.querySelector('video').readyState).catch(() => 0);
          return { ok: ready >= 1 };
        }, 30_000);
        await page.evaluate(() => { window.sdk.play(); window.sdk.setVolume(0.2); });
        await sleep(2_000);
        const state = await frame(page).evaluate(() => ({ paused: document.querySelector('video').paused, volume: document.querySelector('video').volume }));
        assert.deepEqual(state, { paused: true, volume: 1 }, 'commands ignored');
        assert.deepEqual(await page.evaluate(() => window.events), [], 'no events');
      });
      await page.close();
    } finally {
      await browser.close();
    }
  });
});
