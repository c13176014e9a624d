// api.video's browser uploader (npm `@api.video/video-uploader`, pinned in package.json) uploads
// to Vidi from a page on another origin. It hard-codes `https://` + `apiHost`, so it talks to a
// Vidi node that terminates TLS itself (VIDI_TLS_CERT/VIDI_TLS_KEY, a self-signed certificate:
// Chromium runs with --ignore-certificate-errors). run.sh starts that node, on the same
// backends as VIDI_URL's when it can, and passes it as VIDI_TLS_URL and VIDI_TLS_API_KEY.
//
// Both of the uploader's modes, in 5 MiB chunks: a delegated upload token (the page holds nothing
// but the token: `POST /upload?token=` makes the video), and an access token from /auth/api-key
// with a video made beforehand. Then its own `onPlayable`, which polls `assets.hls`.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { bundle, makeClip, newPage, openBrowser, requireEnv, staticServer, withLog } from './helpers.mjs';

const TLS_URL = requireEnv('VIDI_TLS_URL').replace(/\/+$/, '');
const TLS_API_KEY = requireEnv('VIDI_TLS_API_KEY');
const CHUNK = 5 * 1024 * 1024;

const APP_PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>uploader</title></head>
<body><input type="file" id="file"><pre id="log"></pre>
<script src="/video-uploader.js"></script>
<script>
  // Everything the app does against Vidi's TLS node, from this page (cross-origin, CORS).
  // Delegated: an upload token made by the app's back end is all this page has.
  window.runWithToken = async ({ apiHost, uploadToken, chunkSize }) => {
    const file = document.getElementById('file').files[0];
    const uploader = new VideoUploader({
      file, uploadToken, apiHost, chunkSize,
      origin: { application: { name: 'vidi-browser-test', version: '1.0.0' } },
    });
    const progress = [];
    uploader.onProgress((e) => progress.push([e.uploadedBytes, e.totalBytes, e.currentChunk, e.chunksCount]));
    const playable = new Promise((resolve) => uploader.onPlayable((v) => resolve(v)));
    const uploaded = await uploader.upload();
    const played = await playable;
    return { videoId: uploaded.videoId, uploaded, played, progress };
  };
  window.run = async ({ apiHost, apiKey, chunkSize }) => {
    const base = 'https://' + apiHost;
    const json = async (res) => { const t = await res.text(); if (!res.ok) throw new Error(res.status + ' ' + t); return JSON.parse(t); };
    const auth = await json(await fetch(base + '/auth/api-key', {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ apiKey }),
    }));
    const bearer = { authorization: 'Bearer ' + auth.access_token };
    const video = await json(await fetch(base + '/videos', {
      method: 'POST', headers: { ...bearer, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'browser test: video-uploader over TLS' }),
    }));
    const file = document.getElementById('file').files[0];
    const uploader = new VideoUploader({
      file, videoId: video.videoId, accessToken: auth.access_token, apiHost, chunkSize,
      origin: { application: { name: 'vidi-browser-test', version: '1.0.0' } },
    });
    const progress = [];
    uploader.onProgress((e) => progress.push([e.uploadedBytes, e.totalBytes, e.currentChunk, e.chunksCount]));
    const playable = new Promise((resolve) => uploader.onPlayable((v) => resolve(v)));
    const uploaded = await uploader.upload();
    const played = await playable;
    const status = await json(await fetch(base + '/videos/' + video.videoId + '/status', { headers: bearer }));
    return { videoId: video.videoId, uploaded, played, status, progress };
  };
</script></body></html>`;

describe('@api.video/video-uploader over Vidi\'s own TLS', () => {
  let dir;
  let clip;
  let app;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vidi-uploader-browser-'));
    clip = path.join(dir, 'upload.mp4');
    // Over one chunk, so that the uploader sends `part 1/2` and `part 2/2`.
    makeClip(clip, { seconds: 6, bitrate: '9M' });
    assert.ok(statSync(clip).size > CHUNK, `the clip is ${statSync(clip).size} bytes, not over one chunk`);
    app = await staticServer({
      '/upload.html': ['text/html', APP_PAGE],
      '/video-uploader.js': ['text/javascript', bundle('@api.video/video-uploader')],
    });
  });

  after(async () => {
    if (app) await app.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  // Calls the API with the key from the test (Node's fetch would refuse the self-signed
  // certificate: through the browser's request context instead).
  const api = (browser, method, pathname, data) => browser.context.request.fetch(`${TLS_URL}${pathname}`, {
    method,
    headers: { authorization: `Basic ${Buffer.from(`${TLS_API_KEY}:`).toString('base64')}` },
    ignoreHTTPSErrors: true,
    ...(data ? { data } : {}),
  });

  const titled = async (browser, title) => {
    const r = await api(browser, 'GET', `/videos?title=${title}&pageSize=100`);
    return (await r.json()).data.filter((v) => v.title === title).map((v) => v.videoId);
  };

  test('a page on another origin uploads through an upload token, in chunks, until playable', { timeout: 300_000 }, async () => {
    const browser = await openBrowser(['--ignore-certificate-errors']);
    let videoId;
    let token;
    try {
      const made = await api(browser, 'POST', '/upload-tokens', { ttl: 600 });
      assert.equal(made.status(), 200);
      token = (await made.json()).token;
      const before = await titled(browser, 'upload');
      const { page, log } = await newPage(browser);
      await withLog(log, async () => {
        await page.goto(`${app.origin}/upload.html`, { waitUntil: 'load', timeout: 30_000 });
        await page.setInputFiles('#file', clip);
        const r = await page.evaluate((o) => window.runWithToken(o), {
          apiHost: new URL(TLS_URL).host, uploadToken: token, chunkSize: CHUNK,
        });
        videoId = r.videoId;
        assert.match(videoId, /^vi[0-9A-Za-z]{22}$/);
        assert.equal(r.uploaded.title, 'upload', 'a new video is titled after the file');
        assert.ok(r.uploaded.assets.hls.startsWith('https://'), `assets.hls: ${r.uploaded.assets.hls}`);
        assert.equal(r.played.videoId, videoId);
        const last = r.progress[r.progress.length - 1];
        assert.deepEqual(last.slice(1), [statSync(clip).size, 2, 2], `progress ${JSON.stringify(r.progress)}`);
      });
      await page.close();
      const status = await (await api(browser, 'GET', `/videos/${videoId}/status`)).json();
      assert.equal(status.ingest.status, 'uploaded');
      assert.equal(status.ingest.filesize, statSync(clip).size);
      assert.equal(status.encoding.playable, true);
      // Both chunks went into that one video: the token made nothing else.
      const after = await titled(browser, 'upload');
      assert.deepEqual(after.filter((id) => !before.includes(id)), [videoId]);
    } finally {
      if (videoId) await api(browser, 'DELETE', `/videos/${videoId}`).catch(() => {});
      if (token) await api(browser, 'DELETE', `/upload-tokens/${token}`).catch(() => {});
      await browser.close();
    }
  });

  test('a page on another origin uploads with an access token, in chunks, until playable', { timeout: 300_000 }, async () => {
    const browser = await openBrowser(['--ignore-certificate-errors']);
    let videoId;
    try {
      const { page, log } = await newPage(browser);
      await withLog(log, async () => {
        await page.goto(`${app.origin}/upload.html`, { waitUntil: 'load', timeout: 30_000 });
        await page.setInputFiles('#file', clip);
        const r = await page.evaluate((o) => window.run(o), {
          apiHost: new URL(TLS_URL).host, apiKey: TLS_API_KEY, chunkSize: CHUNK,
        });
        videoId = r.videoId;
        assert.equal(r.uploaded.videoId, r.videoId);
        assert.ok(r.uploaded.assets.hls.startsWith('https://'), `assets.hls: ${r.uploaded.assets.hls}`);
        assert.equal(r.played.videoId, r.videoId);
        assert.equal(r.status.ingest.status, 'uploaded');
        assert.equal(r.status.ingest.filesize, statSync(clip).size);
        assert.equal(r.status.encoding.playable, true);
        const last = r.progress[r.progress.length - 1];
        assert.deepEqual(last.slice(1), [statSync(clip).size, 2, 2], `progress ${JSON.stringify(r.progress)}`);
      });
      await page.close();
    } finally {
      if (videoId) await api(browser, 'DELETE', `/videos/${videoId}`).catch(() => {});
      await browser.close();
    }
  });
});
