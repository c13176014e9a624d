// Delegated uploads through @api.video/nodejs-client 2.5.4 (api-contract.md row 13, §4.5, §5).
//
// What this client sends to `POST /upload?token=`, with the 5 MiB chunk size used here:
//   - uploadWithUploadToken(): one request without Content-Range for a file under one chunk,
//     else `part i/N` for every part, the field named after the file, and never a `videoId`:
//     against api.video that makes one broken video per part (issue #216); Vidi attaches parts
//     2..N to the upload the first one began;
//   - a progressive session: `part 1/*` without `videoId`, then `videoId` as a form field AFTER
//     the file with every later part, and `part n/n` for the last.
// The token client has no API key: 2.5.4 then sends an empty Authorization header.

import assert from 'node:assert/strict';
import { copyFileSync, openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import ApiVideoClient from '@api.video/nodejs-client';

import {
  CHUNK_SIZE,
  MIN_LARGE_VIDEO_SIZE,
  VIDI_URL,
  deleteVideos,
  expectApiError,
  makeTempDir,
  makeVideo,
  newClient,
  removeDir,
  runMarker,
} from './helpers.mjs';

function writeSlice(source, offset, length, target) {
  const buffer = Buffer.alloc(length);
  const fd = openSync(source, 'r');
  try {
    assert.equal(readSync(fd, buffer, 0, length, offset), length);
  } finally {
    closeSync(fd);
  }
  writeFileSync(target, buffer);
  return target;
}

const range = (n) => Array.from({ length: n }, (_, i) => i + 1);

describe('token uploads', () => {
  const client = newClient();
  const tokenClient = new ApiVideoClient({ baseUri: VIDI_URL, chunkSize: CHUNK_SIZE });
  const marker = runMarker('nodetok');
  const created = [];
  const tokens = [];
  let dir;
  let largeFile;
  let largeSize;
  let smallFile;

  async function newToken() {
    const token = await client.uploadTokens.createToken({ ttl: 3600 });
    tokens.push(token.token);
    return token.token;
  }

  async function titled(title) {
    const page = await client.videos.list({ title, pageSize: 100 });
    return page.data.map((v) => v.videoId);
  }

  before(() => {
    dir = makeTempDir('vidi-sdk-node-token-');
    // The file name becomes the title: it carries the run's marker.
    largeFile = path.join(dir, `${marker}-onecall.mp4`);
    largeSize = makeVideo(largeFile, {
      seconds: 20, size: '1280x720', bitrate: 6000, minSize: MIN_LARGE_VIDEO_SIZE,
    });
    smallFile = path.join(dir, `${marker} small.mp4`);
    makeVideo(smallFile, { seconds: 2, size: '320x240', bitrate: 500 });
  });

  after(async () => {
    await deleteVideos(client, created);
    for (const token of tokens) {
      try {
        await client.uploadTokens.deleteToken(token);
      } catch {
        // a test deleted it already
      }
    }
    removeDir(dir);
  });

  test('the one-call upload of a file over the chunk size makes one video', async () => {
    const token = await newToken();
    const expectedParts = Math.ceil(largeSize / CHUNK_SIZE);
    assert.ok(expectedParts >= 3, `fixture of ${largeSize} bytes gives only ${expectedParts} parts`);
    const chunks = new Set();
    const video = await tokenClient.videos.uploadWithUploadToken(token, largeFile, (e) => {
      chunks.add(e.currentChunk);
    });
    created.push(video.videoId);
    assert.equal(chunks.size, expectedParts);
    assert.equal(video.title, `${marker}-onecall`);

    assert.deepEqual(await titled(`${marker}-onecall`), [video.videoId]);
    const status = await client.videos.getStatus(video.videoId);
    assert.equal(status.ingest.status, 'uploaded');
    assert.equal(status.ingest.filesize, largeSize);
    assert.deepEqual(status.ingest.receivedParts?.parts, range(expectedParts));
    assert.equal(status.ingest.receivedParts?.total, expectedParts);
  });

  test('the one-call upload of a small file is one request', async () => {
    const token = await newToken();
    const video = await tokenClient.videos.uploadWithUploadToken(token, smallFile);
    created.push(video.videoId);
    assert.equal(video.title, `${marker} small`);
    assert.deepEqual(await titled(`${marker} small`), [video.videoId]);
    const status = await client.videos.getStatus(video.videoId);
    assert.equal(status.ingest.status, 'uploaded');
  });

  test('a progressive session with a token makes one video', async () => {
    const token = await newToken();
    const session = tokenClient.videos.createUploadWithUploadTokenProgressiveSession(token);
    const fullParts = Math.floor(largeSize / CHUNK_SIZE);
    const remainder = largeSize - fullParts * CHUNK_SIZE;
    assert.ok(remainder > 0);
    // Every part file has the same name: the first one titles the video.
    const partFile = path.join(dir, `${marker}-session.mp4`);
    let videoId;
    for (let part = 1; part <= fullParts; part++) {
      writeSlice(largeFile, (part - 1) * CHUNK_SIZE, CHUNK_SIZE, partFile);
      const answer = await session.uploadPart(partFile);
      videoId ??= answer.videoId;
      if (part === 1) created.push(videoId);
      assert.equal(answer.videoId, videoId);
      const status = await client.videos.getStatus(videoId);
      assert.equal(status.ingest.status, 'uploading', `after part ${part}`);
      assert.deepEqual(status.ingest.receivedParts?.parts, range(part));
    }
    writeSlice(largeFile, fullParts * CHUNK_SIZE, remainder, partFile);
    const video = await session.uploadLastPart(partFile);
    assert.equal(video.videoId, videoId);
    assert.equal(video.title, `${marker}-session`);

    assert.deepEqual(await titled(`${marker}-session`), [videoId]);
    const status = await client.videos.getStatus(videoId);
    assert.equal(status.ingest.status, 'uploaded');
    assert.equal(status.ingest.filesize, largeSize);
    assert.deepEqual(status.ingest.receivedParts?.parts, range(fullParts + 1));
  });

  test('an unknown or deleted token is refused with 401', async () => {
    const unknown = await expectApiError(
      tokenClient.videos.uploadWithUploadToken('to0000000000000000000000', smallFile), 401,
    );
    assert.equal(
      unknown.problemDetails.type,
      'https://docs.api.video/reference/authentication-invalid-upload-token',
    );
    const token = await newToken();
    await client.uploadTokens.deleteToken(token);
    await expectApiError(tokenClient.videos.uploadWithUploadToken(token, smallFile), 401);
    // Copying the fixture keeps the name unique; nothing was created by either refusal.
    const copy = path.join(dir, `${marker}-refused.mp4`);
    copyFileSync(smallFile, copy);
    await expectApiError(tokenClient.videos.uploadWithUploadToken(token, copy), 401);
    assert.deepEqual(await titled(`${marker}-refused`), []);
  });
});
