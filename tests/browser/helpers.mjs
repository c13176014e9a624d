// What the browser tests of api.video's browser packages share (sdk.test.mjs, uploader.test.mjs):
// the REST API, a clip made with ffmpeg, Chromium through playwright-core, and a static server
// on another origin that serves the test pages and the npm packages' bundles.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { chromium } from 'playwright-core';

const HERE = path.dirname(new URL(import.meta.url).pathname);
// Screenshots, kept as artefacts (git-ignored) to be looked at.
export const ARTIFACTS = path.join(HERE, 'artifacts');

export function requireEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (see tests/browser/run.sh)`);
  return value;
}

export const VIDI_URL = requireEnv('VIDI_URL').replace(/\/+$/, '');
export const VIDI_API_KEY = requireEnv('VIDI_API_KEY');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PLAYABLE_WITHIN_MS = 180_000; // upload → `encoding.playable`, on a 2-core machine

// ---- REST API -------------------------------------------------------------------------------

const AUTH = `Basic ${Buffer.from(`${VIDI_API_KEY}:`).toString('base64')}`;

export async function api(method, route, { json, form } = {}) {
  const headers = { authorization: AUTH, accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const res = await fetch(`${VIDI_URL}${route}`, { method, headers, body });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route} answered ${res.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

export async function uploadSource(videoId, file) {
  const form = new FormData();
  form.append('file', new Blob([readFileSync(file)], { type: 'video/mp4' }), path.basename(file));
  return api('POST', `/videos/${videoId}/source`, { form });
}

export async function waitPlayable(videoId) {
  const deadline = Date.now() + PLAYABLE_WITHIN_MS;
  let status;
  while (Date.now() < deadline) {
    status = await api('GET', `/videos/${videoId}/status`);
    if (status?.encoding?.playable === true) return status;
    await sleep(500);
  }
  throw new Error(`video ${videoId} not playable after ${PLAYABLE_WITHIN_MS / 1000} s: ${JSON.stringify(status)}`);
}

// ---- Files ----------------------------------------------------------------------------------

// `seconds` of 640x360 H.264 + AAC from ffmpeg's synthetic sources; `bitrate` makes it bigger.
export function makeClip(file, { seconds = 6, bitrate } = {}) {
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p',
    // Constant bitrate with filler (nal-hrd=cbr): the synthetic picture compresses far below
    // any target otherwise.
    ...(bitrate ? ['-b:v', bitrate, '-minrate', bitrate, '-maxrate', bitrate, '-bufsize', bitrate, '-x264-params', 'nal-hrd=cbr'] : []),
    '-c:a', 'aac', '-b:a', '96k',
    '-movflags', '+faststart',
    file,
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
}

// A PNG of one colour (a logo).
export function makePng(file, { colour, width, height }) {
  execFileSync('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=${colour}:s=${width}x${height}`,
    '-frames:v', '1', file,
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
}

// ---- Another origin -------------------------------------------------------------------------

// A static server on 127.0.0.1 (any free port): `files` maps a path to [content type, body or
// a file to read]. The app's origin in the tests, distinct from Vidi's.
export async function staticServer(files) {
  const server = createServer((req, res) => {
    const entry = files[new URL(req.url, 'http://x').pathname];
    if (!entry) {
      res.writeHead(404).end();
      return;
    }
    const [type, body] = entry;
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(typeof body === 'function' ? body() : body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${server.address().port}`,
    port: server.address().port,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

export const bundle = (pkg) => () => readFileSync(path.join(HERE, 'node_modules', pkg, 'dist', 'index.js'));

// ---- The browser ----------------------------------------------------------------------------

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

// A fresh browser with a fresh profile; close() removes both. `extraArgs` such as
// `--ignore-certificate-errors` (Vidi's TLS node has a self-signed certificate).
export async function openBrowser(extraArgs = []) {
  const profile = mkdtempSync(path.join(tmpdir(), 'vidi-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: [...CHROMIUM_ARGS, ...extraArgs],
      viewport: { width: 640, height: 360 },
      timeout: 60_000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    throw e;
  }
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A page that keeps a log of what went wrong in it (for failure messages), and that log.
export async function newPage(browser) {
  const page = await browser.context.newPage();
  const log = [];
  page.on('pageerror', (e) => log.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') log.push(`console: ${m.text()}`); });
  page.on('requestfailed', (r) => log.push(`request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => { if (r.status() >= 400) log.push(`HTTP ${r.status()}: ${r.url()}`); });
  return { page, log };
}

// Runs `body` and, when it fails, adds the page's log to the error.
export async function withLog(log, body) {
  try {
    return await body();
  } catch (e) {
    if (log.length && e && typeof e.message === 'string') e.message += `\npage log:\n  ${log.slice(-30).join('\n  ')}`;
    throw e;
  }
}

export async function until(what, fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    last = await fn();
    if (last && last.ok) return last;
    assert.ok(Date.now() < deadline, `${what} within ${ms / 1000} s: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

export async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, timeout: 10_000 });
  return file;
}

// The RGB of each point ({x, y} in CSS pixels of a 1x screenshot) of a PNG file, read by
// drawing it on a canvas in `page` (no image decoder needed on the Node side).
export async function pixels(page, file, points) {
  const data = readFileSync(file).toString('base64');
  return page.evaluate(async ({ data, points }) => {
    const img = new Image();
    img.src = `data:image/png;base64,${data}`;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    return points.map(({ x, y }) => Array.from(ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data.slice(0, 3)));
  }, { data, points });
}

export function near(rgb, want, tolerance = 40) {
  return rgb.every((c, i) => Math.abs(c - want[i]) <= tolerance);
}
