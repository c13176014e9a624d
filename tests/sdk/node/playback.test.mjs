// Encoding, delivery and thumbnails through @api.video/nodejs-client 2.5.4
// (api-contract.md §2 VideoStatus, §6 private videos and asset URLs, §11 thumbnails).
//
// A real 4 s 640x360 H.264/AAC clip is uploaded, getStatus is polled until every quality is
// encoded, and the asset URLs of videos.get are then fetched with plain HTTP GETs, as a player
// would: the delivery side takes no API credentials.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  deleteVideos,
  expectApiError,
  makeTempDir,
  makeVideo,
  newClient,
  removeDir,
  runMarker,
} from './helpers.mjs';

const require = createRequire(import.meta.url);
// The model classes are CommonJS modules whose class is the `default` export.
const VideoStatus = require('@api.video/nodejs-client/lib/model/VideoStatus.js').default;
const Quality = require('@api.video/nodejs-client/lib/model/Quality.js').default;
const VideoStatusEncodingMetadata =
  require('@api.video/nodejs-client/lib/model/VideoStatusEncodingMetadata.js').default;

// The enums of lib/model/Quality.d.ts. The Node client does not check enum values when it
// deserialises (ObjectSerializer passes them through), so the suite does.
const QUALITY_TYPES = ['hls', 'mp4'];
const QUALITY_VALUES = ['240p', '360p', '480p', '720p', '1080p', '2160p'];

const ENCODING_TIMEOUT_MS = 120_000;
const POLL_INTERVAL_MS = 500;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function isFullyEncoded(status) {
  const qualities = status.encoding?.qualities ?? [];
  return status.encoding?.playable === true
    && qualities.length > 0
    && qualities.every((q) => q.status === 'encoded');
}

// Polls getStatus until the video is playable and every quality is encoded; returns the last
// status. A quality that failed ends the wait at once.
async function waitUntilEncoded(client, videoId) {
  const deadline = Date.now() + ENCODING_TIMEOUT_MS;
  for (;;) {
    const status = await client.videos.getStatus(videoId);
    if (isFullyEncoded(status)) return status;
    const failed = (status.encoding?.qualities ?? []).filter((q) => q.status === 'failed');
    assert.deepEqual(failed, [], `a quality failed to encode: ${JSON.stringify(status.encoding)}`);
    if (Date.now() > deadline) {
      assert.fail(`not encoded after ${ENCODING_TIMEOUT_MS / 1000} s: ${JSON.stringify(status)}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

// A plain GET, as a player would make it: no API key.
async function get(url, headers = {}) {
  const response = await fetch(url, { headers });
  const body = Buffer.from(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, body };
}

const isJpeg = (bytes) => bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff;

// The URI lines (rendition playlists or segments) of an HLS playlist.
const playlistUris = (text) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

describe('playback', () => {
  const client = newClient();
  const marker = runMarker('nodeplay');
  const created = [];
  let dir;
  let clip;
  let publicVideo;
  let publicEncoded;

  async function create(title, fields = {}) {
    const video = await client.videos.create({ title: `${marker} ${title}`, tags: [marker], ...fields });
    created.push(video.videoId);
    return video;
  }

  // The public video, uploaded once; the first caller starts the wait, the others share it.
  const encoded = () => {
    publicEncoded ??= waitUntilEncoded(client, publicVideo.videoId);
    return publicEncoded;
  };

  before(async () => {
    dir = makeTempDir('vidi-sdk-node-play-');
    clip = path.join(dir, 'clip.mp4');
    makeVideo(clip, { seconds: 4, size: '640x360', bitrate: 800 });
    publicVideo = await create('public');
    await client.videos.upload(publicVideo.videoId, clip);
  });

  after(async () => {
    await deleteVideos(client, created);
    removeDir(dir);
  });

  test('getStatus reports every quality encoded and the source metadata', async () => {
    const status = await encoded();
    assert.ok(status instanceof VideoStatus);
    assert.equal(status.ingest.status, 'uploaded');
    assert.equal(status.encoding.playable, true);

    const { qualities, metadata } = status.encoding;
    for (const quality of qualities) {
      assert.ok(quality instanceof Quality);
      assert.ok(QUALITY_TYPES.includes(quality.type), `type ${quality.type}`);
      assert.ok(QUALITY_VALUES.includes(quality.quality), `quality ${quality.quality}`);
      assert.equal(quality.status, 'encoded');
    }
    // The HLS ladder runs from 240p up to the source's 360p; one MP4 at the source quality.
    const of = (type) => qualities.filter((q) => q.type === type).map((q) => q.quality).sort();
    assert.ok(of('hls').includes('360p'), `hls qualities: ${of('hls')}`);
    assert.ok(of('hls').every((q) => ['240p', '360p'].includes(q)), `hls qualities: ${of('hls')}`);
    assert.deepEqual(of('mp4'), ['360p']);

    assert.ok(metadata instanceof VideoStatusEncodingMetadata);
    assert.equal(metadata.width, 640);
    assert.equal(metadata.height, 360);
    assert.equal(metadata.videoCodec, 'h264');
    assert.equal(metadata.audioCodec, 'aac');
    assert.ok(Math.abs(metadata.duration - 4) <= 1, `duration ${metadata.duration}`);
    assert.equal(metadata.aspectRatio, '16:9');
  });

  test('the asset URLs of videos.get serve the media without credentials', async () => {
    const status = await encoded();
    const { assets } = await client.videos.get(publicVideo.videoId);

    const master = await get(assets.hls);
    assert.equal(master.status, 200);
    assert.match(master.headers.get('content-type'), /^application\/vnd\.apple\.mpegurl/);
    const text = master.body.toString('utf8');
    assert.match(text, /^#EXTM3U/);
    assert.match(text, /RESOLUTION=640x360/);
    // One rendition per encoded HLS quality, each a playlist a player can follow.
    const renditions = playlistUris(text);
    const hlsQualities = status.encoding.qualities.filter((q) => q.type === 'hls');
    assert.equal((text.match(/#EXT-X-STREAM-INF/g) ?? []).length, hlsQualities.length, text);
    assert.equal(renditions.length, hlsQualities.length, text);
    for (const uri of renditions) {
      const rendition = await get(new URL(uri, assets.hls));
      assert.equal(rendition.status, 200, uri);
      const playlist = rendition.body.toString('utf8');
      assert.match(playlist, /#EXTINF/, uri);
      assert.match(playlist, /#EXT-X-ENDLIST/, `${uri} is complete once encoded`);
      const segment = await get(new URL(playlistUris(playlist)[0], new URL(uri, assets.hls)));
      assert.equal(segment.status, 200, `first segment of ${uri}`);
      assert.ok(segment.body.length > 0);
    }

    const mp4 = await get(assets.mp4, { Range: 'bytes=0-99' });
    assert.equal(mp4.status, 206);
    assert.equal(mp4.body.length, 100);
    assert.match(mp4.headers.get('content-range'), /^bytes 0-99\/\d+$/);
    assert.match(mp4.headers.get('content-type'), /^video\/mp4/);
    assert.equal(mp4.body.subarray(4, 8).toString('latin1'), 'ftyp');

    const thumbnail = await get(assets.thumbnail);
    assert.equal(thumbnail.status, 200);
    assert.match(thumbnail.headers.get('content-type'), /^image\/jpeg/);
    assert.ok(isJpeg(thumbnail.body), 'thumbnail is not a JPEG');

    const player = await get(assets.player);
    assert.equal(player.status, 200);
    assert.match(player.headers.get('content-type'), /^text\/html/);
  });

  test('pickThumbnail and uploadThumbnail replace the served thumbnail', async () => {
    await encoded();
    const videoId = publicVideo.videoId;
    const thumbnailUrl = (await client.videos.get(videoId)).assets.thumbnail;
    const initial = (await get(thumbnailUrl)).body;
    assert.ok(isJpeg(initial));

    // The frame chosen at encoding time is not specified; 3 s is away from the start and from
    // a quarter of the clip, the usual automatic picks.
    const picked = await client.videos.pickThumbnail(videoId, { timecode: '00:00:03.000' });
    assert.equal(picked.videoId, videoId);
    assert.equal(picked.assets.thumbnail, thumbnailUrl);
    const afterPick = await get(thumbnailUrl);
    assert.equal(afterPick.status, 200);
    assert.ok(isJpeg(afterPick.body));
    assert.ok(!afterPick.body.equals(initial), 'the thumbnail did not change after pickThumbnail');

    const jpeg = path.join(dir, 'poster.jpg');
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', 'color=c=red:size=320x180',
      '-frames:v', '1', jpeg,
    ], { stdio: ['ignore', 'inherit', 'inherit'] });
    // With a path, the client names the multipart field and file after its base name.
    const uploaded = await client.videos.uploadThumbnail(videoId, jpeg);
    assert.equal(uploaded.videoId, videoId);
    assert.equal(uploaded.title, publicVideo.title);
    const afterUpload = await get(thumbnailUrl);
    assert.equal(afterUpload.status, 200);
    assert.match(afterUpload.headers.get('content-type'), /^image\/jpeg/);
    assert.ok(isJpeg(afterUpload.body));
    assert.ok(!afterUpload.body.equals(afterPick.body), 'the thumbnail did not change after uploadThumbnail');
  });

  test('uploadThumbnail with a file that is not an image raises 400', async () => {
    const fake = path.join(dir, 'poster.gif');
    writeFileSync(fake, 'this is not an image\n');
    // The client sends it as image/gif (form-data guesses from the name) without checking it.
    const error = await expectApiError(client.videos.uploadThumbnail(publicVideo.videoId, fake), 400);
    assert.equal(
      error.problemDetails.type,
      'https://docs.api.video/reference/uploaded-file-extension-invalid',
    );
  });

  test('pickThumbnail on an unknown video raises 404', async () => {
    await expectApiError(
      client.videos.pickThumbnail('vi0000000000000000000000', { timecode: '00:00:01.000' }), 404,
    );
  });

  test('a private video is served only under its private token', async () => {
    // `_public` is the client's name for the JSON field `public`.
    const video = await create('private', { _public: false });
    await client.videos.upload(video.videoId, clip);
    await waitUntilEncoded(client, video.videoId);

    const fetched = await client.videos.get(video.videoId);
    assert.equal(fetched._public, false);
    const { assets } = fetched;
    for (const field of ['hls', 'thumbnail', 'mp4']) {
      assert.match(assets[field], /\/token\/[^/]+\//, `assets.${field}: ${assets[field]}`);
    }
    assert.match(assets.player, /[?&]token=/);

    const master = await get(assets.hls);
    assert.equal(master.status, 200);
    // The rendition playlists resolve under the same token, as a player would fetch them.
    // The token is single-use (contract §6): the first request opened a playback session, named
    // in a cookie and in `avh` on every URI the playlists hand out.
    const rendition = playlistUris(master.body.toString('utf8'))[0];
    assert.match(rendition, /\?avh=/);
    assert.equal((await get(new URL(rendition, assets.hls))).status, 200, rendition);
    const cookie = master.headers.get('set-cookie').split(';')[0];
    assert.match(cookie, /^vidi_playback=/);
    assert.equal((await get(assets.thumbnail, { Cookie: cookie })).status, 200);
    assert.equal((await get(assets.mp4, { Range: 'bytes=0-99', Cookie: cookie })).status, 206);
    assert.equal((await get(assets.player, { Cookie: cookie })).status, 200);
    // Without the session, the used token opens nothing.
    assert.equal((await get(assets.hls)).status, 403);
    assert.equal((await get(assets.thumbnail)).status, 403);

    for (const field of ['hls', 'thumbnail', 'mp4']) {
      const bare = assets[field].replace(/\/token\/[^/]+/, '');
      assert.notEqual(bare, assets[field]);
      assert.equal((await get(bare)).status, 403, `${field} without the token: ${bare}`);
    }
  });
});
