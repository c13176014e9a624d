// Live streams through @api.video/nodejs-client 2.5.4 (api-contract.md rows 18–24, §2, §7):
// all seven operations (create, list, get, update, delete, uploadThumbnail, deleteThumbnail),
// the restreams replaced whole, a private stream's tokens, and §7's validation errors.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ApiVideoError, expectApiError, makeTempDir, newClient, removeDir, runMarker } from './helpers.mjs';

describe('live streams', () => {
  const client = newClient();
  const marker = runMarker('nodeli');
  const created = [];
  let dir;
  let poster;

  before(() => {
    dir = makeTempDir('vidi-live-');
    poster = path.join(dir, 'poster.png');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=green:s=320x180',
      '-frames:v', '1', poster]);
  });

  after(async () => {
    for (const id of created) {
      try {
        await client.liveStreams.delete(id);
      } catch (e) {
        if (!(e instanceof ApiVideoError && e.code === 404)) throw e;
      }
    }
    removeDir(dir);
  });

  test('create, get, list, update and delete', async () => {
    const restreams = [{ name: 'YouTube', serverUrl: 'rtmp://a.rtmp.youtube.com/live2', streamKey: 'yt' }];
    const a = await client.liveStreams.create({ name: `${marker} b`, record: true, restreams });
    created.push(a.liveStreamId);
    assert.match(a.liveStreamId, /^li[0-9A-Za-z]{22}$/);
    assert.match(a.streamKey, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(a.record, true);
    assert.equal(a._public, true); // the client's name for `public`
    assert.equal(a.broadcasting, false);
    assert.deepEqual(a.restreams.map((r) => ({ ...r })), restreams);
    assert.ok(a.assets.hls.endsWith(`/live/${a.liveStreamId}.m3u8`), a.assets.hls);
    assert.ok(a.assets.player.endsWith(`/embed/live/${a.liveStreamId}`), a.assets.player);
    assert.ok(a.createdAt instanceof Date || typeof a.createdAt === 'string');
    const b = await client.liveStreams.create({ name: `${marker} a` });
    created.push(b.liveStreamId);
    assert.deepEqual(b.restreams, []);

    const got = await client.liveStreams.get(a.liveStreamId);
    assert.equal(got.name, `${marker} b`);
    assert.equal(got.streamKey, a.streamKey);

    const page = await client.liveStreams.list({ name: marker, sortBy: 'name', sortOrder: 'asc', pageSize: 100 });
    assert.deepEqual(page.data.map((l) => l.name), [`${marker} a`, `${marker} b`]);
    assert.equal(page.pagination.itemsTotal, 2);
    const byKey = await client.liveStreams.list({ streamKey: a.streamKey });
    assert.deepEqual(byKey.data.map((l) => l.liveStreamId), [a.liveStreamId]);

    const replaced = [{ name: 'Twitch', serverUrl: 'rtmp://live.twitch.tv/app', streamKey: 'tw' }];
    const up = await client.liveStreams.update(a.liveStreamId, { name: `${marker} c`, restreams: replaced });
    assert.equal(up.name, `${marker} c`);
    assert.equal(up.record, true);
    assert.deepEqual(up.restreams.map((r) => ({ ...r })), replaced);

    await client.liveStreams.delete(b.liveStreamId);
    await expectApiError(client.liveStreams.get(b.liveStreamId), 404);
  });

  test('upload and delete a thumbnail', async () => {
    const l = await client.liveStreams.create({ name: `${marker} thumb` });
    created.push(l.liveStreamId);
    const up = await client.liveStreams.uploadThumbnail(l.liveStreamId, poster);
    assert.equal(up.liveStreamId, l.liveStreamId);
    const served = await fetch(up.assets.thumbnail);
    assert.equal(served.status, 200);
    assert.equal(served.headers.get('content-type'), 'image/jpeg');
    const down = await client.liveStreams.deleteThumbnail(l.liveStreamId);
    assert.equal(down.liveStreamId, l.liveStreamId);
    assert.equal((await fetch(down.assets.thumbnail)).status, 404);
  });

  test('a private live stream carries a private token', async () => {
    const l = await client.liveStreams.create({ name: `${marker} private`, _public: false });
    created.push(l.liveStreamId);
    assert.equal(l._public, false);
    assert.match(l.assets.player, /\?token=[0-9a-f-]{36}$/);
    assert.match(l.assets.thumbnail, /\/token\/[0-9a-f-]{36}\/thumbnail\.jpg$/);
  });

  test('restream validation', async () => {
    const bad = [{ name: 'x', serverUrl: 'rtmp://host.example', streamKey: 'k' }];
    const e = await expectApiError(client.liveStreams.create({ name: `${marker} bad`, restreams: bad }), 400);
    assert.equal(e.problemDetails.name, 'restreams[0][serverUrl]');
    assert.equal(e.problemDetails.detail, 'Missing app name: rtmp://[host]/[app name].');
  });
});
