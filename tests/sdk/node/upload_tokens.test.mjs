// Delegated upload tokens through @api.video/nodejs-client 2.5.4 (api-contract.md rows 14–17):
// generate with and without a ttl, get, list sorted by ttl (only active tokens), expiry,
// delete, and the errors the client surfaces. Uploading with a token is in token_upload.test.mjs.

import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { ApiVideoError, expectApiError, newClient } from './helpers.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

describe('upload tokens', () => {
  const client = newClient();
  const created = [];

  after(async () => {
    for (const token of created) {
      try {
        await client.uploadTokens.deleteToken(token);
      } catch (e) {
        if (!(e instanceof ApiVideoError && e.code === 404)) throw e;
      }
    }
  });

  test('generate, get, list by ttl and delete', async () => {
    const forever = await client.uploadTokens.createToken();
    created.push(forever.token);
    assert.match(forever.token, /^to[0-9A-Za-z]{22}$/);
    assert.equal(forever.ttl, 0);
    assert.equal(forever.expiresAt, undefined, 'a token without ttl never expires');
    assert.ok(forever.createdAt instanceof Date);

    const hour = await client.uploadTokens.createToken({ ttl: 3600 });
    created.push(hour.token);
    assert.equal(hour.ttl, 3600);
    assert.ok(hour.expiresAt instanceof Date);
    const lifetime = (hour.expiresAt - hour.createdAt) / 1000;
    assert.ok(Math.abs(lifetime - 3600) <= 1, `expiresAt is createdAt + ttl (${lifetime} s)`);

    const got = await client.uploadTokens.getToken(hour.token);
    assert.equal(got.token, hour.token);
    assert.equal(got.ttl, 3600);

    const page = await client.uploadTokens.list({ sortBy: 'ttl', sortOrder: 'desc', pageSize: 100 });
    const ttls = page.data.map((t) => t.ttl);
    assert.deepEqual(ttls, [...ttls].sort((a, b) => b - a), 'sorted by ttl, descending');
    const mine = page.data.map((t) => t.token).filter((t) => created.includes(t));
    assert.deepEqual(mine, [hour.token, forever.token]);
    assert.equal(page.pagination.currentPage, 1);

    await client.uploadTokens.deleteToken(hour.token);
    await expectApiError(client.uploadTokens.getToken(hour.token), 404);
    await expectApiError(client.uploadTokens.deleteToken(hour.token), 404);
  });

  test('an expired token is neither listed nor found', async () => {
    const short = await client.uploadTokens.createToken({ ttl: 1 });
    created.push(short.token);
    await sleep(2100);
    await expectApiError(client.uploadTokens.getToken(short.token), 404);
    const page = await client.uploadTokens.list({ pageSize: 100 });
    assert.ok(!page.data.some((t) => t.token === short.token), 'expired tokens are not listed');
  });

  test('bad input: a negative ttl, an unknown token, a token as an API key', async () => {
    await expectApiError(client.uploadTokens.createToken({ ttl: -1 }), 400);
    await expectApiError(client.uploadTokens.getToken('to1tcmSFHeYY5KzyhOqVKMKb'), 404);
    const token = await client.uploadTokens.createToken({ ttl: 60 });
    created.push(token.token);
    // A token delegates uploads only: it is no API key.
    await expectApiError(newClient(token.token).videos.list(), 401);
  });
});
