// Video source uploads through @api.video/nodejs-client 2.5.4 (api-contract.md §4).
//
// How this client uploads (§4.5), with the 5 MiB chunk size used here:
//   - a file smaller than the chunk size: one request, no Content-Range header;
//   - a larger file: sequential requests `Content-Range: part i/N`, N = ceil(size / chunk);
//   - a progressive session: `part i/*` for uploadPart(), `part i/i` for uploadLastPart().
// The multipart field name is the file's base name, not "file" (§4.1).

import assert from 'node:assert/strict';
import { openSync, readSync, closeSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  CHUNK_SIZE,
  MIN_LARGE_VIDEO_SIZE,
  deleteVideos,
  expectApiError,
  makeTempDir,
  makeVideo,
  newClient,
  removeDir,
  runMarker,
} from './helpers.mjs';

// Copies `length` bytes at `offset` of `source` into a new file and returns its path.
// A progressive session uploads whole files, so each part has to exist on disk.
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

describe('uploads', () => {
  const client = newClient();
  const marker = runMarker('nodeup');
  const created = [];
  let dir;
  let largeFile;
  let largeSize;
  let smallFile;
  let smallSize;

  async function create(title) {
    const video = await client.videos.create({ title: `${marker} ${title}`, tags: [marker] });
    created.push(video.videoId);
    return video;
  }

  before(() => {
    dir = makeTempDir('vidi-sdk-node-');
    // 20 s of 720p noise at 6 Mb/s: about 15 MiB, i.e. 3 full 5 MiB parts and a short 4th.
    largeFile = path.join(dir, 'large.mp4');
    largeSize = makeVideo(largeFile, {
      seconds: 20, size: '1280x720', bitrate: 6000, minSize: MIN_LARGE_VIDEO_SIZE,
    });
    // A space in the name: Node uses the base name as the multipart field name and filename.
    smallFile = path.join(dir, 'small clip.mp4');
    smallSize = makeVideo(smallFile, { seconds: 2, size: '320x240', bitrate: 500 });
    assert.ok(smallSize < CHUNK_SIZE, `small fixture is ${smallSize} bytes`);
  });

  after(async () => {
    await deleteVideos(client, created);
    removeDir(dir);
  });

  test('a file larger than the chunk size is sent in parts and reassembled', async () => {
    const video = await create('chunked');
    const expectedParts = Math.ceil(largeSize / CHUNK_SIZE);
    assert.ok(expectedParts >= 3, `fixture of ${largeSize} bytes gives only ${expectedParts} parts`);

    const chunksSeen = new Set();
    const uploaded = await client.videos.upload(video.videoId, largeFile, (event) => {
      chunksSeen.add(`${event.currentChunk}/${event.chunksCount}`);
    });
    // The progress listener reports the client's own split, confirming it really chunked.
    assert.ok(chunksSeen.has(`${expectedParts - 1}/${expectedParts}`), [...chunksSeen].join(' '));

    // The response to the completing part is the full video.
    assert.equal(uploaded.videoId, video.videoId);
    assert.equal(uploaded.title, `${marker} chunked`);
    assert.equal(uploaded.source?.uri, `/videos/${video.videoId}/source`);

    const status = await client.videos.getStatus(video.videoId);
    assert.equal(status.ingest.status, 'uploaded');
    assert.equal(status.ingest.filesize, largeSize);
    assert.deepEqual(status.ingest.receivedParts?.parts, range(expectedParts));
    assert.equal(status.ingest.receivedParts?.total, expectedParts);
  });

  test('a progressive session sends 5 MiB parts then the remainder', async () => {
    const video = await create('progressive');
    const session = client.videos.createUploadProgressiveSession(video.videoId);

    const fullParts = Math.floor(largeSize / CHUNK_SIZE);
    const remainder = largeSize - fullParts * CHUNK_SIZE;
    assert.ok(remainder > 0, 'the fixture must not be a multiple of the chunk size');

    for (let part = 1; part <= fullParts; part++) {
      const file = writeSlice(
        largeFile, (part - 1) * CHUNK_SIZE, CHUNK_SIZE, path.join(dir, `part-${part}.mp4`),
      );
      // `part n/*`: the server cannot know the total yet and answers with just the videoId.
      const answer = await session.uploadPart(file);
      assert.equal(answer.videoId, video.videoId);

      const status = await client.videos.getStatus(video.videoId);
      assert.equal(status.ingest.status, 'uploading', `after part ${part}`);
      assert.deepEqual(status.ingest.receivedParts?.parts, range(part), `after part ${part}`);
      // The total is null (nullable) or omitted while unknown.
      assert.ok(status.ingest.receivedParts?.total == null, `total after part ${part}`);
    }

    const last = writeSlice(
      largeFile, fullParts * CHUNK_SIZE, remainder, path.join(dir, 'part-last.mp4'),
    );
    const uploaded = await session.uploadLastPart(last);
    assert.equal(uploaded.videoId, video.videoId);
    assert.equal(uploaded.title, `${marker} progressive`);

    const status = await client.videos.getStatus(video.videoId);
    assert.equal(status.ingest.status, 'uploaded');
    assert.equal(status.ingest.filesize, largeSize);
    assert.deepEqual(status.ingest.receivedParts?.parts, range(fullParts + 1));
    assert.equal(status.ingest.receivedParts?.total, fullParts + 1);
  });

  test('a file smaller than the chunk size goes in one request', async () => {
    const video = await create('small');
    const uploaded = await client.videos.upload(video.videoId, smallFile);
    assert.equal(uploaded.videoId, video.videoId);
    assert.equal(uploaded.title, `${marker} small`);

    const status = await client.videos.getStatus(video.videoId);
    assert.equal(status.ingest.status, 'uploaded');
    assert.equal(status.ingest.filesize, smallSize);
  });

  test('a second upload to a complete source is refused with 400', async () => {
    const video = await create('twice');
    await client.videos.upload(video.videoId, smallFile);
    const error = await expectApiError(client.videos.upload(video.videoId, smallFile), 400);
    assert.equal(
      error.problemDetails.type,
      'https://docs.api.video/reference/video-source-already-uploaded',
    );
  });

  test('an upload to an unknown video raises 404', async () => {
    await expectApiError(client.videos.upload('vi0000000000000000000000', smallFile), 404);
  });
});
