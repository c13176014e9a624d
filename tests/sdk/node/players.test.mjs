// Player themes through @api.video/nodejs-client 2.5.4 (api-contract.md rows 34–40, §2, §8):
// create with the schema's defaults, list sorted, update, upload and delete a logo (the client
// names the multipart part after the file, and sends `link` beside it), delete, and a video
// attached to a theme that is then deleted.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ApiVideoError, expectApiError, makeTempDir, newClient, removeDir, runMarker } from './helpers.mjs';

describe('player themes', () => {
  const client = newClient();
  const marker = runMarker('nodept');
  const created = [];
  let dir;
  let logo;

  before(() => {
    dir = makeTempDir('vidi-players-');
    logo = path.join(dir, 'brand logo.png');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'color=c=blue@0.5:s=160x80',
      '-frames:v', '1', '-pix_fmt', 'rgba', logo]);
  });

  after(async () => {
    for (const id of created) {
      try {
        await client.playerThemes.delete(id);
      } catch (e) {
        if (!(e instanceof ApiVideoError && e.code === 404)) throw e;
      }
    }
    removeDir(dir);
  });

  test('create, get, update, list and delete', async () => {
    const a = await client.playerThemes.create({ name: `${marker} b`, text: '#ff0000', hideTitle: true });
    created.push(a.playerId);
    assert.match(a.playerId, /^pt[0-9A-Za-z]{22}$/);
    assert.equal(a.text, '#ff0000');
    assert.equal(a.hideTitle, true);
    assert.equal(a.trackPlayed, 'rgba(88, 131, 255, .95)');
    assert.equal(a.enableControls, true);
    assert.ok(a.createdAt instanceof Date || typeof a.createdAt === 'string');
    const b = await client.playerThemes.create({ name: `${marker} a` });
    created.push(b.playerId);

    const got = await client.playerThemes.get(a.playerId);
    assert.equal(got.name, `${marker} b`);
    const up = await client.playerThemes.update(a.playerId, { forceLoop: true, link: 'rgba(1, 2, 3, .5)' });
    assert.equal(up.forceLoop, true);
    assert.equal(up.link, 'rgba(1, 2, 3, .5)');
    assert.equal(up.text, '#ff0000');

    const page = await client.playerThemes.list({ sortBy: 'name', sortOrder: 'asc', pageSize: 100 });
    const mine = page.data.map((p) => p.name).filter((n) => n && n.startsWith(marker));
    assert.deepEqual(mine, [`${marker} a`, `${marker} b`]);

    await expectApiError(client.playerThemes.create({ text: 'red; background: url(x)' }), 400);
    await client.playerThemes.delete(b.playerId);
    await expectApiError(client.playerThemes.get(b.playerId), 404);
  });

  test('uploadLogo with a link, then deleteLogo', async () => {
    const p = await client.playerThemes.create({ name: `${marker} logo` });
    created.push(p.playerId);
    const withLogo = await client.playerThemes.uploadLogo(p.playerId, logo, 'https://example.com/');
    assert.equal(withLogo.assets.link, 'https://example.com/');
    const res = await fetch(withLogo.assets.logo);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'image/png');
    assert.deepEqual(Buffer.from(await res.arrayBuffer()), readFileSync(logo));
    await client.playerThemes.deleteLogo(p.playerId);
    const without = await client.playerThemes.get(p.playerId);
    assert.equal(without.assets?.logo, undefined);
  });

  test('a video attached to a theme loses it when the theme is deleted', async () => {
    const p = await client.playerThemes.create({ name: `${marker} attached` });
    const v = await client.videos.create({ title: `${marker} attached`, playerId: p.playerId });
    try {
      assert.equal(v.playerId, p.playerId);
      await client.playerThemes.delete(p.playerId);
      const after = await client.videos.get(v.videoId);
      assert.equal(after.playerId, undefined);
      await expectApiError(client.videos.create({ title: `${marker} x`, playerId: p.playerId }), 400);
    } finally {
      await client.videos.delete(v.videoId);
    }
  });
});
