// Authentication as seen by @api.video/nodejs-client 2.5.4 (api-contract.md §1.2).
//
// 2.5.x authenticates every call with HTTP Basic (the API key as user name, empty password).
// getAccessToken() is the only place it talks to /auth/api-key, and only when asked to.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { expectApiError, newClient } from './helpers.mjs';

describe('authentication', () => {
  test('getAccessToken() exchanges the API key for a bearer token', async () => {
    const token = await newClient().getAccessToken();
    assert.equal(typeof token.accessToken, 'string');
    assert.ok(token.accessToken.length > 0, 'access_token is empty');
    assert.equal(typeof token.refreshToken, 'string');
    assert.ok(token.refreshToken.length > 0, 'refresh_token is empty');
    assert.equal(token.tokenType, 'Bearer');
    assert.equal(token.expiresIn, 3600);
  });

  test('getAccessToken() with an unknown API key fails with 400', async () => {
    // getAccessToken() does not wrap errors in ApiVideoError: axios's own error surfaces.
    await assert.rejects(newClient('not-a-valid-key').getAccessToken(), (error) => {
      assert.equal(error.response?.status, 400, `unexpected error: ${error}`);
      assert.equal(error.response.data.status, 400);
      return true;
    });
  });

  test('Basic auth with the API key works on a regular call', async () => {
    const page = await newClient().videos.list({ pageSize: 1 });
    assert.ok(Array.isArray(page.data));
  });

  test('an unknown API key is rejected with 401', async () => {
    await expectApiError(newClient('not-a-valid-key').videos.list(), 401);
  });
});
