// Player analytics through @api.video/nodejs-client 2.5.4 (api-contract.md rows 45–47, §12):
// the three "raw statistics" operations (listVideoSessions with its metadata filter,
// listLiveStreamSessions, listSessionEvents) over real sessions, reported by this test through
// Vidi's collector as a player would (docs/analytics.md).

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { ApiVideoError, VIDI_URL, expectApiError, newClient, runMarker } from './helpers.mjs';

async function collect(path, body) {
  const r = await fetch(`${VIDI_URL}/collect${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:67.0) Gecko/20100101 Firefox/67.0' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  assert.ok(r.status === 201 || r.status === 204, `${path}: ${r.status} ${text}`);
  return r.status === 201 ? JSON.parse(text) : null;
}

const today = () => new Date().toISOString().slice(0, 10);

describe('analytics (raw statistics)', () => {
  const client = newClient();
  const marker = runMarker('nodean');
  const videos = [];
  const lives = [];

  after(async () => {
    for (const id of videos) await client.videos.delete(id).catch(() => {});
    for (const id of lives) await client.liveStreams.delete(id).catch(() => {});
  });

  test('sessions of a video, filtered by metadata, and their events in order', async () => {
    const video = await client.videos.create({ title: `${marker} watched` });
    videos.push(video.videoId);
    const { sessionId } = await collect('/sessions', {
      videoId: video.videoId, referrer: 'https://blog.example/post', metadata: [{ key: 'plan', value: 'pro' }],
    });
    const other = await collect('/sessions', { videoId: video.videoId, metadata: [{ key: 'plan', value: 'free' }] });
    await collect(`/sessions/${sessionId}/events`, {
      events: [
        { seq: 0, type: 'ready', ts: 5, at: 0 },
        { seq: 1, type: 'play', ts: 10, at: 0 },
        { seq: 2, type: 'seek.forward', ts: 20, from: 2, to: 30 },
        { seq: 3, type: 'pause', ts: 30, at: 31.6 },
        { seq: 4, type: 'end', ts: 40, at: 60 },
      ],
    });

    const all = await client.rawStatistics.listVideoSessions({ videoId: video.videoId, period: today() });
    assert.equal(all.pagination.itemsTotal, 2);
    // Newest first.
    assert.deepEqual(all.data.map((s) => s.session.sessionId), [other.sessionId, sessionId]);
    const pro = await client.rawStatistics.listVideoSessions({ videoId: video.videoId, period: today(), metadata: { plan: 'pro' } });
    assert.equal(pro.data.length, 1);
    const s = pro.data[0];
    assert.equal(s.session.sessionId, sessionId);
    assert.deepEqual(s.session.metadata.map((m) => ({ key: m.key, value: m.value })), [{ key: 'plan', value: 'pro' }]);
    assert.equal(s.referrer.url, 'https://blog.example/post');
    assert.equal(s.referrer.medium, 'referral');
    assert.equal(s.client.name, 'Firefox');
    assert.equal(s.os.shortname, 'W10');
    assert.equal(s.location.country, 'unknown');

    const events = await client.rawStatistics.listSessionEvents({ sessionId });
    assert.deepEqual(events.data.map((e) => [e.type, e.at, e.from, e.to]), [
      ['ready', 0, undefined, undefined],
      ['play', 0, undefined, undefined],
      ['seek.forward', undefined, 2, 30],
      ['pause', 31, undefined, undefined],
      ['end', 60, undefined, undefined],
    ]);
    const page = await client.rawStatistics.listSessionEvents({ sessionId, currentPage: 2, pageSize: 2 });
    assert.deepEqual(page.data.map((e) => e.type), ['seek.forward', 'pause']);
    assert.equal(page.pagination.pagesTotal, 3);

    const err = await expectApiError(client.rawStatistics.listVideoSessions({ videoId: video.videoId, period: '2026-W54' }), 400);
    assert.ok(err instanceof ApiVideoError);
    await expectApiError(client.rawStatistics.listSessionEvents({ sessionId: 'psNoSuchSession0000000000' }), 404);
  });

  test('sessions of a live stream, with an instant as period', async () => {
    const live = await client.liveStreams.create({ name: `${marker} live` });
    lives.push(live.liveStreamId);
    const { sessionId } = await collect('/sessions', { liveStreamId: live.liveStreamId });
    const instant = `${today()}T00:00:00.000Z`;
    const r = await client.rawStatistics.listLiveStreamSessions({ liveStreamId: live.liveStreamId, period: instant });
    assert.deepEqual(r.data.map((s) => s.session.sessionId), [sessionId]);
    assert.equal(r.data[0].referrer.url, 'unknown');
    await expectApiError(client.rawStatistics.listLiveStreamSessions({ liveStreamId: 'liNoSuchStream00000000000', period: today() }), 404);
  });
});
