// Captions and chapters through @api.video/nodejs-client 2.5.4 (api-contract.md rows 25–33,
// §2, §10). Given a path, the client names the multipart part after the file.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ApiVideoError, expectApiError, makeTempDir, newClient, removeDir, runMarker } from './helpers.mjs';

const EN = 'WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nHello from Node\n';
const FR = 'WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nBonjour\n';
const CHAPTERS = 'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nOne\n\n00:00:01.000 --> 00:00:02.000\nTwo\n';

describe('captions and chapters', () => {
  const client = newClient();
  const marker = runMarker('nodecap');
  const created = [];
  let dir;
  const file = (name, text) => {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    return p;
  };

  before(() => { dir = makeTempDir('vidi-captions-'); });
  after(async () => {
    for (const id of created) {
      try {
        await client.videos.delete(id);
      } catch (e) {
        if (!(e instanceof ApiVideoError && e.code === 404)) throw e;
      }
    }
    removeDir(dir);
  });

  async function video(title) {
    const v = await client.videos.create({ title: `${marker} ${title}` });
    created.push(v.videoId);
    return v.videoId;
  }

  test('captions: upload, get, default, list, replace, delete', async () => {
    const id = await video('captions');
    const en = await client.captions.upload(id, 'en', file('en captions.vtt', EN));
    assert.deepEqual({ ...en }, { uri: `/videos/${id}/captions/en`, src: en.src, srclang: 'en', _default: false });
    const r = await fetch(en.src);
    assert.equal(r.headers.get('content-type'), 'text/vtt; charset=utf-8');
    assert.equal(await r.text(), EN);
    await client.captions.upload(id, 'fr-CA', Buffer.from(FR));

    assert.equal((await client.captions.update(id, 'en', { _default: true }))._default, true);
    assert.equal((await client.captions.update(id, 'fr-ca', { _default: true }))._default, true);
    assert.equal((await client.captions.get(id, 'en'))._default, false);

    const page = await client.captions.list({ videoId: id });
    assert.deepEqual(page.data.map((c) => c.srclang), ['en', 'fr-ca']);
    assert.equal(page.pagination.itemsTotal, 2);

    await client.captions.upload(id, 'en', file('en2.vtt', FR));
    assert.equal(await (await fetch((await client.captions.get(id, 'en')).src)).text(), FR);

    await client.captions.delete(id, 'en');
    await expectApiError(client.captions.get(id, 'en'), 404);
  });

  test('captions: unknown language, hostile file, unknown video', async () => {
    const id = await video('caption errors');
    const e = await expectApiError(client.captions.upload(id, 'xx', file('x.vtt', EN)), 400);
    assert.equal(e.problemDetails.type, 'https://docs.api.video/reference/invalid-attribute');
    const bad = file('bad.vtt', 'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<script>alert(1)</script>\n');
    const e2 = await expectApiError(client.captions.upload(id, 'en', bad), 400);
    assert.equal(e2.problemDetails.type, 'https://docs.api.video/reference/uploaded-file-invalid-file');
    await expectApiError(client.captions.update(id, 'de', { _default: true }), 404);
    await expectApiError(client.captions.upload('vi0000000000000000000000', 'en', file('y.vtt', EN)), 404);
  });

  test('chapters: upload, get, list, delete', async () => {
    const id = await video('chapters');
    const c = await client.chapters.upload(id, 'en-GB', file('chapters.vtt', CHAPTERS));
    assert.equal(c.uri, `/videos/${id}/chapters/en-gb`);
    assert.equal(c.language, 'en-gb');
    assert.equal(await (await fetch(c.src)).text(), CHAPTERS);
    assert.equal((await client.chapters.get(id, 'en-gb')).src, c.src);
    assert.deepEqual((await client.chapters.list({ videoId: id })).data.map((x) => x.language), ['en-gb']);
    await client.chapters.delete(id, 'en-gb');
    await expectApiError(client.chapters.get(id, 'en-gb'), 404);
  });
});
