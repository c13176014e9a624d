// The live player page (`assets.player` of a live stream), played by Debian's Chromium driven by
// playwright-core: idle ("not live yet") before anything is published; then ffmpeg publishes a
// paced synthetic source over RTMP and the page, which keeps looking, starts by itself and plays
// within LIVE_EDGE_S of the live edge with its LIVE badge; when the publisher stops, the page
// goes back to idle. Screenshots of both states are kept in tests/browser/artifacts/. The page
// reports its viewing session as a video's does (analytics.js): play, pause, resume, the end of
// the broadcast, and the time played, which come back from the analytics API.
//
// Required environment, besides helpers.mjs's VIDI_URL and VIDI_API_KEY:
//   VIDI_RTMP_URL  the server's RTMP ingest, e.g. rtmp://127.0.0.1:1935/s (run.sh derives it
//                  from VIDI_RTMP_ADDR when that names a port)

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { api, newPage, openBrowser, requireEnv, shot, until, withLog } from './helpers.mjs';

const RTMP_URL = requireEnv('VIDI_RTMP_URL').replace(/\/+$/, '');
const LIVE_EDGE_S = 3; // the picture is at most this far behind the live edge
const PLAYING_WITHIN_MS = 20_000; // publish → playing at the edge (the page looks every 3 s)
const IDLE_WITHIN_MS = 15_000; // publisher gone → "not live yet" (the page's stall watch is 6 s)

// ffmpeg as an encoder publishes: paced (-re), 30 fps with a keyframe a second, H.264 + AAC.
function publish(streamKey) {
  const ffmpeg = spawn('ffmpeg', [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=30',
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-t', '60',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '30', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '96k',
    '-f', 'flv', `${RTMP_URL}/${streamKey}`,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  ffmpeg.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => ffmpeg.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    stderr: () => stderr,
    running: () => ffmpeg.exitCode === null && ffmpeg.signalCode === null,
    async stop() {
      if (ffmpeg.exitCode === null && ffmpeg.signalCode === null) ffmpeg.kill('SIGKILL');
      await exited;
    },
  };
}

// What the page says about itself: live.js's state, the <video>, hls.js and the badge.
const pageState = (page) => page.evaluate(() => {
  const video = document.querySelector('video');
  const badge = document.querySelector('.live-badge');
  const idle = document.querySelector('.live-idle');
  const hls = window.vidiHls;
  const visible = (el) => !!el && !el.hidden && el.getClientRects().length > 0
    && getComputedStyle(el).display !== 'none' && getComputedStyle(el).visibility !== 'hidden';
  return {
    state: window.vidiLiveState?.state,
    latency: window.vidiLiveState?.latency,
    atEdge: window.vidiLiveState?.atEdge,
    // The distance to the live edge, as hls.js computes where it would join now.
    behindEdge: hls && Number.isFinite(hls.liveSyncPosition) ? hls.liveSyncPosition - video.currentTime : null,
    currentTime: video.currentTime,
    paused: video.paused,
    idleShown: visible(idle),
    idleText: idle ? idle.textContent : null,
    badgeShown: visible(badge),
    badgeBehind: badge ? badge.classList.contains('behind') : null,
    lowLatency: hls ? hls.config.lowLatencyMode : null,
    // The live stream's thumbnail is shown (live.js found one).
    poster: document.getElementById('player').classList.contains('has-poster'),
  };
});

describe('live player page', () => {
  let live;
  let browser;
  before(async () => {
    live = await api('POST', '/live-streams', { json: { name: 'Browser test live', public: true } });
    assert.match(live.liveStreamId, /^li/, JSON.stringify(live));
    browser = await openBrowser();
  });
  after(async () => {
    await browser?.close();
    if (live) await api('DELETE', `/live-streams/${live.liveStreamId}`).catch(() => {});
  });

  test('idle, then live within 3 s of the edge with a LIVE badge, then idle again', async () => {
    const { page, log } = await newPage(browser);
    await withLog(log, async () => {
      const url = new URL(live.assets.player);
      url.searchParams.set('autoplay', 'true');
      const res = await page.goto(url.toString(), { waitUntil: 'load', timeout: 30_000 });
      assert.equal(res.status(), 200);

      // Nothing published yet: the idle panel, no playback.
      const idle = await until('the idle state', async () => {
        const s = await pageState(page);
        return { ...s, ok: s.state === 'idle' && s.idleShown };
      }, 10_000);
      assert.match(idle.idleText, /not live yet/);
      assert.equal(idle.badgeShown, false);
      assert.equal(idle.poster, false, 'no thumbnail before any broadcast: the plain panel');
      await sleep(500); // fonts and layout settled for the picture
      await shot(page, 'live-idle');

      // Publishing: the page finds the broadcast by itself and plays at the live edge.
      const publisher = publish(live.streamKey);
      try {
        const started = Date.now();
        const playing = await until('playing within 3 s of the live edge', async () => {
          assert.ok(publisher.running(), `ffmpeg stopped: ${publisher.stderr()}`);
          const s = await pageState(page);
          return {
            ...s,
            ok: s.state === 'live' && !s.paused && s.currentTime > 1 && s.latency != null && s.latency < LIVE_EDGE_S
              && s.behindEdge != null && s.behindEdge < LIVE_EDGE_S,
          };
        }, PLAYING_WITHIN_MS);
        const joinedMs = Date.now() - started;
        assert.equal(playing.lowLatency, true);
        // It keeps playing, near the edge, with the red badge.
        await sleep(2000);
        const later = await pageState(page);
        assert.ok(later.currentTime > playing.currentTime + 1, `stalled: ${JSON.stringify({ playing, later })}`);
        assert.ok(later.latency != null && later.latency < LIVE_EDGE_S, `fell behind: ${JSON.stringify(later)}`);
        assert.ok(later.badgeShown && !later.badgeBehind && later.atEdge, `badge: ${JSON.stringify(later)}`);
        assert.equal(later.idleShown, false);
        // The pointer on the picture: media-chrome shows its controls (it hides them when idle).
        await page.mouse.move(320, 200);
        await page.mouse.move(330, 210);
        await sleep(300);
        await shot(page, 'live-playing');
        console.log(`# live: playing ${joinedMs} ms after publishing; latency ${later.latency.toFixed(2)} s, `
          + `${later.behindEdge.toFixed(2)} s behind hls.js's live sync position`);

        // The viewer pauses: the badge turns grey; a click on it goes back to the edge.
        await page.evaluate(() => document.querySelector('video').pause());
        await until('the badge behind the edge', async () => {
          const s = await pageState(page);
          return { ...s, ok: s.badgeBehind === true };
        }, 5_000);
        await sleep(1500);
        await shot(page, 'live-behind');
        await page.click('.live-badge');
        await until('back at the edge after "go live"', async () => {
          const s = await pageState(page);
          return { ...s, ok: !s.paused && s.badgeBehind === false && s.latency != null && s.latency < LIVE_EDGE_S };
        }, 8_000);
      } finally {
        await publisher.stop();
      }

      // The publisher is gone: back to "not live yet" (the broadcast's reconnect grace keeps its
      // playlist, which no longer grows), over the thumbnail the broadcast took.
      const stopped = Date.now();
      await until('idle again after the publisher stopped', async () => {
        const s = await pageState(page);
        return { ...s, ok: s.state === 'idle' && s.idleShown };
      }, IDLE_WITHIN_MS);
      await until('the broadcast\'s thumbnail as the poster', async () => {
        const s = await pageState(page);
        return { ...s, ok: s.poster };
      }, 5_000);
      console.log(`# live: idle ${Date.now() - stopped} ms after the publisher stopped`);
      assert.match((await pageState(page)).idleText, /has ended/);
      await sleep(500);
      await shot(page, 'live-ended');

      // The viewing session the page reported for the live stream, as a video's page does.
      const session = await page.evaluate(() => window.vidiAnalytics && window.vidiAnalytics.session);
      assert.match(session || '', /^ps[0-9A-Za-z]{22}$/);
      const reported = (await until('the live session\'s events in the API', async () => {
        const e = (await api('GET', `/analytics/sessions/${session}/events?pageSize=100`)).data;
        return { ok: e.some((x) => x.type === 'end'), e };
      }, 10_000)).e;
      const types = reported.map((e) => e.type);
      for (const t of ['ready', 'play', 'pause', 'resume', 'end']) assert.ok(types.includes(t), JSON.stringify(reported));
      assert.equal(types.at(-1), 'end', JSON.stringify(reported));
      assert.equal(types.filter((t) => t === 'end').length, 1, JSON.stringify(reported));
      const day = new Date().toISOString().slice(0, 10);
      const sessions = (await api('GET', `/analytics/live-streams/${live.liveStreamId}?period=${day}`)).data;
      assert.ok(sessions.some((s) => s.session.sessionId === session), JSON.stringify(sessions));
      const qoe = await api('GET', `/analytics/live-streams/${live.liveStreamId}/qoe?period=${day}`);
      assert.equal(qoe.views, 1, JSON.stringify(qoe));
      assert.equal(qoe.uniqueViewers, 1, JSON.stringify(qoe));
      // It played for a few seconds at least (the test watched it for more than 3).
      assert.ok(qoe.watchTimeMs >= 3000 && qoe.watchTimeMs < 120_000, JSON.stringify(qoe));
      assert.ok(qoe.timeToFirstFrame.count === 1 && qoe.renditions.timeWeightedBitrate > 0, JSON.stringify(qoe));
      console.log(`# live analytics: ${JSON.stringify(types)}; ${qoe.watchTimeMs} ms watched`);
    });
  });
});
