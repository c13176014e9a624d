// Fields that change what the player page does (issue 25), in Chromium: the page autoplays only
// when asked (screenshots of both), and a panoramic video is a 360° view that a drag and the
// arrow keys turn (the picture changes, the video does not seek), drawn with WebGL (Chromium's
// software renderer here), or the flat picture where WebGL is missing.
//
// Screenshots are kept in tests/browser/artifacts/ (fields-*.png) for a person to look at.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { api, makeClip, newPage, openBrowser, pixels, shot, until, uploadSource, waitPlayable } from './helpers.mjs';

// WebGL without a GPU: SwiftShader, which Chromium no longer falls back to unasked. Playback
// waits are long: scripts/test.sh's servers encode in small pieces, on a loaded machine.
const SOFTWARE_GL = ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist'];

const state = (page) => page.evaluate(() => {
  const v = document.querySelector('video');
  const p = window.vidiPanorama;
  return {
    currentTime: v.currentTime,
    paused: v.paused,
    muted: v.muted,
    readyState: v.readyState,
    canvas: !!document.querySelector('canvas.panorama'),
    view: p ? { yaw: p.yaw, pitch: p.pitch, frames: p.frames } : null,
  };
});

// Points inside the picture, clear of the title bar and the control bar (640x360 viewport).
const GRID = [];
for (let x = 40; x <= 600; x += 40) for (let y = 90; y <= 250; y += 40) GRID.push({ x, y });

// How many points of two screenshots differ clearly.
async function differing(page, a, b) {
  const [pa, pb] = [await pixels(page, a, GRID), await pixels(page, b, GRID)];
  return pa.filter((rgb, i) => rgb.some((c, k) => Math.abs(c - pb[i][k]) > 48)).length;
}

describe('fields in the player page, in Chromium', () => {
  let dir;
  let clip;
  let sphere;
  const created = [];

  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'vidi-fields-'));
    clip = path.join(dir, 'clip.mp4');
    makeClip(clip, { seconds: 8 });
    // A stand-in for an equirectangular frame whose every part differs from its neighbours:
    // testsrc2's colours under a checkerboard of 32-pixel cells, so any turn of the view moves
    // edges under most points of the picture.
    sphere = path.join(dir, 'sphere.mp4');
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'testsrc2=size=1280x640:rate=25',
      '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-t', '8',
      '-vf', "geq=lum='lum(X,Y)*(0.3+0.7*mod(floor(X/32)+floor(Y/32),2))':cb='cb(X,Y)':cr='cr(X,Y)'",
      '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-movflags', '+faststart',
      sphere,
    ], { stdio: ['ignore', 'inherit', 'inherit'] });
  });

  after(async () => {
    for (const id of created) await api('DELETE', `/videos/${id}`).catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function playable(fields, file = clip) {
    const video = await api('POST', '/videos', { json: fields });
    created.push(video.videoId);
    await uploadSource(video.videoId, file);
    await waitPlayable(video.videoId);
    return (await api('GET', `/videos/${video.videoId}`)).assets;
  }

  test('the page autoplays only when asked', { timeout: 300_000 }, async () => {
    const assets = await playable({ title: 'browser test: autoplay' });
    const browser = await openBrowser();
    try {
      const { page, log } = await newPage(browser);
      // `assets.player` as it is: the poster, nothing playing.
      await page.goto(assets.player, { waitUntil: 'load', timeout: 30_000 });
      await until('the page is ready', async () => ({ ok: (await state(page)).readyState >= 1 }), 30_000);
      await sleep(3_000);
      const still = await state(page);
      assert.ok(still.paused && still.currentTime === 0, `played unasked: ${JSON.stringify(still)} ${log}`);
      await shot(page, 'fields-autoplay-off');
      // Asked by the URL (as the SDK's `autoplay: true` writes it): plays, muted.
      const u = new URL(assets.player);
      u.searchParams.set('autoplay', 'true');
      await page.goto(u.href, { waitUntil: 'load', timeout: 30_000 });
      const on = await until('playing when asked', async () => {
        const s = await state(page);
        return { ok: !s.paused && s.currentTime > 1, ...s };
      }, 90_000);
      assert.equal(on.muted, true, 'autoplay is muted, as browsers allow it');
      await shot(page, 'fields-autoplay-on');
    } finally {
      await browser.close();
    }
  });

  test('a panoramic video is a view that a drag and the arrow keys turn', { timeout: 300_000 }, async () => {
    const assets = await playable({ title: 'browser test: 360', panoramic: true }, sphere);
    const u = new URL(assets.player);
    u.searchParams.set('autoplay', 'true');
    const browser = await openBrowser(SOFTWARE_GL);
    try {
      const { page, log } = await newPage(browser);
      await page.goto(u.href, { waitUntil: 'load', timeout: 30_000 });
      await until('the view draws the playing video', async () => {
        const s = await state(page);
        return { ok: s.canvas && s.view && s.view.frames > 5 && s.currentTime > 1, ...s, log };
      }, 90_000);
      // Paused, so that only the view moves the picture.
      await page.evaluate(() => document.querySelector('video').pause());
      await sleep(500);
      const before = await state(page);
      const a = await shot(page, 'fields-panorama-ahead');

      // A drag to the left turns the view to the right.
      await page.mouse.move(320, 180);
      await page.mouse.down();
      for (let i = 1; i <= 10; i++) await page.mouse.move(320 - 15 * i, 180 + 2 * i);
      await page.mouse.up();
      await sleep(500);
      const dragged = await state(page);
      assert.ok(dragged.view.yaw > before.view.yaw + 0.3, `the drag turned the view: ${JSON.stringify(dragged)}`);
      assert.ok(dragged.paused, 'a drag is no click: still paused');
      const b = await shot(page, 'fields-panorama-dragged');
      const moved = await differing(page, a, b);
      assert.ok(moved > GRID.length / 3, `the picture changed at ${moved} of ${GRID.length} points`);

      // The arrow keys turn it too, and do not seek as the player's own arrow keys would.
      await page.focus('canvas.panorama');
      for (let i = 0; i < 6; i++) await page.keyboard.press('ArrowUp');
      await page.keyboard.press('ArrowLeft');
      await sleep(500);
      const keyed = await state(page);
      assert.ok(keyed.view.pitch > dragged.view.pitch + 0.4, `the keys turned the view: ${JSON.stringify(keyed)}`);
      assert.ok(Math.abs(keyed.currentTime - dragged.currentTime) < 0.01, 'the arrow keys did not seek');
      const c = await shot(page, 'fields-panorama-keys');
      assert.ok((await differing(page, b, c)) > GRID.length / 3, 'the picture changed with the keys');

      // Touch: a finger's drag is a pointer drag (pointer events), sent as Chromium gets it.
      const cdp = await page.context().newCDPSession(page);
      const touch = (type, x) => cdp.send('Input.dispatchTouchEvent', {
        type, touchPoints: type === 'touchEnd' ? [] : [{ x, y: 180 }],
      });
      await touch('touchStart', 200);
      for (let i = 1; i <= 8; i++) await touch('touchMove', 200 + 20 * i);
      await touch('touchEnd');
      await sleep(500);
      const touched = await state(page);
      assert.ok(touched.view.yaw < keyed.view.yaw - 0.3, `a touch drag turned the view: ${JSON.stringify(touched)}`);
      await shot(page, 'fields-panorama-touch');
    } finally {
      await browser.close();
    }

    // Without WebGL: no view, the flat picture plays.
    const flat = await openBrowser(['--disable-webgl', '--disable-3d-apis']);
    try {
      const { page } = await newPage(flat);
      await page.goto(u.href, { waitUntil: 'load', timeout: 30_000 });
      const s = await until('the flat picture plays', async () => {
        const st = await state(page);
        return { ok: !st.paused && st.currentTime > 1, ...st };
      }, 90_000);
      assert.equal(s.canvas, false, 'no view without WebGL');
      await shot(page, 'fields-panorama-flat');
    } finally {
      await flat.close();
    }
  });
});
