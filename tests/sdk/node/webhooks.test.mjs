// Webhooks through @api.video/nodejs-client 2.5.4 (api-contract.md rows 41–44, §9):
// create, list (with the `events` filter and pagination), get and delete.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { expectApiError, newClient, runMarker } from './helpers.mjs';

// `.invalid` never resolves (RFC 2606): these webhooks can receive nothing, whatever the
// other suites' uploads emit while they exist.
const hookUrl = (marker, name) => `https://${marker}.invalid/${name}`;

describe('webhooks', () => {
  const client = newClient();
  const marker = runMarker('nodehook');
  const created = [];

  after(async () => {
    for (const id of created) {
      try {
        await client.webhooks.delete(id);
      } catch (e) {
        if (e.code !== 404) throw e;
      }
    }
  });

  test('create, get, list with the events filter, delete', async () => {
    const quality = await client.webhooks.create({
      events: ['video.encoding.quality.completed'],
      url: hookUrl(marker, 'quality'),
    });
    created.push(quality.webhookId);
    assert.match(quality.webhookId, /^webhook_[0-9A-Za-z]{22}$/);
    assert.deepEqual(quality.events, ['video.encoding.quality.completed']);
    assert.equal(quality.url, hookUrl(marker, 'quality'));
    assert.ok(quality.createdAt instanceof Date && !Number.isNaN(quality.createdAt.getTime()));
    assert.equal(quality.signatureSecret, undefined, 'the 2023 body has no secret');

    const live = await client.webhooks.create({
      events: ['live-stream.broadcast.started', 'live-stream.broadcast.ended'],
      url: hookUrl(marker, 'live'),
    });
    created.push(live.webhookId);

    const got = await client.webhooks.get(live.webhookId);
    assert.equal(got.webhookId, live.webhookId);
    assert.deepEqual(got.events, ['live-stream.broadcast.started', 'live-stream.broadcast.ended']);

    const filtered = await client.webhooks.list({ events: 'live-stream.broadcast.ended', pageSize: 100 });
    const ids = filtered.data.map((w) => w.webhookId);
    assert.ok(ids.includes(live.webhookId));
    assert.ok(!ids.includes(quality.webhookId));

    const page = await client.webhooks.list({ currentPage: 1, pageSize: 1 });
    assert.equal(page.data.length, 1);
    assert.equal(page.pagination.pageSize, 1);
    assert.ok(page.pagination.itemsTotal >= 2);
    assert.ok(page.pagination.links.some((l) => l.rel === 'next'));

    await client.webhooks.delete(quality.webhookId);
    await expectApiError(client.webhooks.get(quality.webhookId), 404);
    await expectApiError(client.webhooks.delete(quality.webhookId), 404);
  });

  test('unknown events and relative URLs are refused with 400', async () => {
    const e = await expectApiError(
      client.webhooks.create({ events: ['video.deleted'], url: hookUrl(marker, 'x') }),
      400,
    );
    assert.equal(e.problemDetails.name, 'events');
    const u = await expectApiError(
      client.webhooks.create({ events: ['video.source.recorded'], url: '/not/absolute' }),
      400,
    );
    assert.equal(u.problemDetails.name, 'url');
  });
});
