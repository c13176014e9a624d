// The player page's viewing-session report (issue 22), in Chromium: the page mints a session at
// the collector, the viewer plays, seeks forward and back, pauses, resumes and plays to the end,
// and the session and its events come back from the REST API in order with the right playheads,
// its time to first frame sent with them; a page closed mid-play still delivers its last batch
// (navigator.sendBeacon on pagehide).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { api, makeClip, newPage, openBrowser, shot, until, uploadSource, waitPlayable, withLog } from './helpers.mjs';

const ENCODED_WITHIN_MS = 180_000;

async function waitEncoded(videoId) {
  const deadline = Date.now() + ENCODED_WITHIN_MS;
  for (;;) {
    const status = await api('GET', `/videos/${videoId}/status`);
    const qualities = status.encoding.qualities || [];
    if (qualities.length && qualities.every((q) => q.status === 'encoded')) return status;
    assert.ok(Date.now() < deadline, `not encoded: ${JSON.stringify(status)}`);
    await sleep(500);
  }
}

const today = () => new Date().toISOString().slice(0, 10);

async function events(session) {
  return (await api('GET', `/analytics/sessions/${session}/events?pageSize=100`)).data;
}

const video = (page) => page.evaluate(() => {
  const v = document.querySelector('video');
  return { t: v.currentTime, paused: v.paused, ended: v.ended, seeking: v.seeking, duration: v.duration };
});

// Sets the playhead and waits until playback has moved on from there.
async function seek(page, to) {
  await page.evaluate((s) => { document.querySelector('video').currentTime = s; }, to);
  await until(`playing again after a seek to ${to}`, async () => {
    const v = await video(page);
    return { ok: !v.seeking && v.t >= to + 0.3, ...v };
  });
}

describe('the player reports its viewing session, in Chromium', () => {
  let dir;
  let browser;
  let videoId;
  let player;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'vidi-analytics-'));
    const clip = path.join(dir, 'clip.mp4');
    makeClip(clip, { seconds: 10 });
    const v = await api('POST', '/videos', { json: { title: 'analytics' } });
    videoId = v.videoId;
    await uploadSource(videoId, clip);
    await waitPlayable(videoId);
    await waitEncoded(videoId);
    const url = new URL((await api('GET', `/videos/${videoId}`)).assets.player);
    url.searchParams.set('metadata[viewer]', 'browser-test');
    player = url.toString();
    browser = await openBrowser();
  });

  after(async () => {
    if (browser) await browser.close();
    if (videoId) await api('DELETE', `/videos/${videoId}`).catch(() => {});
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('play, seek forward and back, pause, resume, end: the session and its events come back', async () => {
    const { page, log } = await newPage(browser);
    const sent = []; // every batch the page sent, as the collector received it
    const minted = []; // its session requests
    page.on('request', (r) => {
      if (/\/collect\/sessions$/.test(r.url())) minted.push(JSON.parse(r.postData() || '{}'));
      if (/\/collect\/sessions\/[^/]+\/events$/.test(r.url())) sent.push(JSON.parse(r.postData() || '{}'));
    });
    await withLog(log, async () => {
      await page.goto(player);
      const session = (await until('a session minted', async () => {
        const s = await page.evaluate(() => window.vidiAnalytics && window.vidiAnalytics.session);
        return { ok: !!s, s };
      })).s;
      assert.match(session, /^ps[0-9A-Za-z]{22}$/);
      // The viewer presses play once the player is ready (its `ready` event comes first).
      await until('the player ready', async () => ({ ok: await page.evaluate(() => document.querySelector('video').readyState >= 1) }));
      await page.evaluate(() => { const v = document.querySelector('video'); v.muted = true; return v.play(); });
      await until('playing past 2 s', async () => { const v = await video(page); return { ok: v.t >= 2, ...v }; });
      await seek(page, 6);
      await seek(page, 1);
      await page.evaluate(() => document.querySelector('video').pause());
      await sleep(300);
      const pausedAt = Math.floor((await video(page)).t);
      await page.evaluate(() => document.querySelector('video').play());
      await until('playing after the pause', async () => { const v = await video(page); return { ok: !v.paused && v.t > pausedAt + 0.3, ...v }; });
      const duration = (await video(page)).duration;
      await page.evaluate((s) => { document.querySelector('video').currentTime = s; }, duration - 1.5);
      await until('the end', async () => { const v = await video(page); return { ok: v.ended, ...v }; }, 30_000);
      await shot(page, 'analytics-ended');

      const got = (await until('the events in the API', async () => {
        const e = await events(session);
        return { ok: e.some((x) => x.type === 'end'), e };
      })).e;
      const types = got.map((e) => e.type);
      assert.deepEqual(types, ['ready', 'play', 'seek.forward', 'seek.backward', 'pause', 'resume', 'seek.forward', 'end'], JSON.stringify(got));
      // Emitted in order.
      const times = got.map((e) => Date.parse(e.emittedAt));
      assert.deepEqual([...times].sort((a, b) => a - b), times);
      // The right playheads, in whole seconds.
      const [ready, play, fwd, back, pause, resume, last, end] = got;
      assert.equal(ready.at, 0);
      assert.equal(play.at, 0);
      assert.ok(fwd.from >= 2 && fwd.from < 6 && fwd.to === 6, JSON.stringify(fwd));
      assert.ok(back.from >= 6 && back.to === 1, JSON.stringify(back));
      assert.equal(pause.at, pausedAt);
      assert.equal(resume.at, pausedAt);
      assert.equal(last.to, Math.floor(duration - 1.5));
      assert.equal(end.at, Math.floor(duration));
      for (const e of got) assert.ok(!('at' in e && 'from' in e), JSON.stringify(e));

      // Time to first frame: measured, sent, and kept out of api.video's event list.
      const ttff = sent.flatMap((b) => b.events || []).find((e) => e.type === 'qoe.ttff');
      assert.ok(ttff && ttff.value >= 0 && ttff.value < 20_000, JSON.stringify(sent));
      const qoe = await api('GET', `/analytics/videos/${videoId}/qoe?period=${today()}`);
      assert.equal(qoe.views, 1, JSON.stringify(qoe));
      assert.equal(qoe.timeToFirstFrame.median, ttff.value, JSON.stringify(qoe));
      // Unique viewers: the page sent the id it keeps in this browser's storage.
      assert.match(minted[0].viewerId, /^[A-Za-z0-9_-]{22}$/, JSON.stringify(minted));
      assert.equal(await page.evaluate(() => localStorage.getItem('vidi.viewer')), minted[0].viewerId);
      assert.equal(qoe.uniqueViewers, 1, JSON.stringify(qoe));
      // Watch time: reported as the picture moved; the viewer watched well over 4 s and less
      // than the time the page was open.
      const watch = sent.flatMap((b) => b.events || []).filter((e) => e.type === 'qoe.watch');
      const reportedMs = watch.reduce((n, e) => n + e.value, 0);
      assert.equal(qoe.watchTimeMs, reportedMs, JSON.stringify({ qoe, watch }));
      assert.ok(reportedMs >= 4000 && reportedMs < 60_000, JSON.stringify(watch));
      // Renditions: hls.js's first choice (with its height and bitrate), and the time played at
      // its bitrate.
      const renditions = sent.flatMap((b) => b.events || []).filter((e) => e.type === 'qoe.rendition');
      assert.ok(renditions.length >= 1 && renditions[0].height > 0 && renditions[0].bitrate > 0, JSON.stringify(renditions));
      assert.equal(qoe.renditions.switches, renditions.length - 1, JSON.stringify(qoe));
      assert.ok(qoe.renditions.timeWeightedBitrate > 0, JSON.stringify(qoe));

      // The session itself: its metadata from the player URL, its client from the User-Agent.
      const sessions = (await api('GET', `/analytics/videos/${videoId}?period=${today()}`)).data;
      const mine = sessions.find((s) => s.session.sessionId === session);
      assert.ok(mine, JSON.stringify(sessions));
      assert.deepEqual(mine.session.metadata, [{ key: 'viewer', value: 'browser-test' }]);
      assert.equal(mine.os.name, 'Linux', JSON.stringify(mine));
      assert.equal(mine.device.type, 'desktop', JSON.stringify(mine));
      assert.ok(Date.parse(mine.session.endedAt) >= Date.parse(mine.session.loadedAt));
    });
    await page.close();
  });

  test('a page closed mid-play still delivers its last batch', async () => {
    const { page, log } = await newPage(browser);
    let session;
    await withLog(log, async () => {
      await page.goto(player);
      session = (await until('a session minted', async () => {
        const s = await page.evaluate(() => window.vidiAnalytics && window.vidiAnalytics.session);
        return { ok: !!s, s };
      })).s;
      // The viewer presses play once the player is ready (its `ready` event comes first).
      await until('the player ready', async () => ({ ok: await page.evaluate(() => document.querySelector('video').readyState >= 1) }));
      await page.evaluate(() => { const v = document.querySelector('video'); v.muted = true; return v.play(); });
      await until('playing past 1 s', async () => { const v = await video(page); return { ok: v.t >= 1, ...v }; });
      // A seek just before leaving: its event waits in the page's queue (batches go every 5 s).
      await seek(page, 7);
    });
    await page.close({ runBeforeUnload: true });
    const got = (await until('the last batch in the API', async () => {
      const e = await events(session);
      return { ok: e.some((x) => x.type === 'seek.forward' && x.to === 7), e };
    }, 10_000)).e;
    assert.deepEqual(got.map((e) => e.type).slice(0, 2), ['ready', 'play'], JSON.stringify(got));
  });
});
