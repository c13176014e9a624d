// Shared set-up for the Node SDK suites: they drive the official, unmodified
// @api.video/nodejs-client 2.5.4 against a running Vidi server.
//
// Required environment:
//   VIDI_URL      base URL of the server, e.g. http://127.0.0.1:8080 (no trailing slash needed)
//   VIDI_API_KEY  an API key created with `vidi api-key create`

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import ApiVideoClient from '@api.video/nodejs-client';

const require = createRequire(import.meta.url);
// The package has no ES module entry for its error class; lib/ApiVideoError.js is a
// CommonJS module whose class is the `default` export.
export const ApiVideoError = require('@api.video/nodejs-client/lib/ApiVideoError.js').default;

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} must be set (see tests/sdk/run.sh)`);
  }
  return value;
}

// The client builds request URLs as `${baseUri}/${path}`, so a trailing slash would
// produce `//videos` (api-contract.md §1.1).
export const VIDI_URL = requireEnv('VIDI_URL').replace(/\/+$/, '');
export const VIDI_API_KEY = requireEnv('VIDI_API_KEY');

// The smallest chunk size the clients accept; it keeps the test files small while still
// forcing multi-part uploads.
export const CHUNK_SIZE = 5 * 1024 * 1024;

export function newClient(apiKey = VIDI_API_KEY) {
  // 2.5.x sends `Authorization: Basic base64(apiKey:)` on every request; no token flow.
  return new ApiVideoClient({ apiKey, baseUri: VIDI_URL, chunkSize: CHUNK_SIZE });
}

// A marker unique to this run. Every video a test creates carries it in its title, tags and
// metadata, so list assertions ignore whatever else the server holds (other suites, earlier runs).
export function runMarker(prefix) {
  return `${prefix}${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

// Awaits `promise`, expects it to reject with the client's ApiVideoError carrying `status`,
// and returns the error for further checks.
export async function expectApiError(promise, status) {
  let error;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  assert.ok(error, `expected the call to fail with HTTP ${status}, but it succeeded`);
  assert.ok(
    error instanceof ApiVideoError,
    `expected an ApiVideoError, got ${error && error.stack}`,
  );
  // `code` and `problemDetails` are TypeScript-private but plain properties at runtime.
  assert.equal(error.code, status, `HTTP status; problem details: ${JSON.stringify(error.problemDetails)}`);
  assert.equal(error.problemDetails?.status, status, 'problem details "status" field');
  assert.equal(typeof error.problemDetails?.type, 'string', 'problem details "type" field');
  assert.equal(typeof error.problemDetails?.title, 'string', 'problem details "title" field');
  return error;
}

export function makeTempDir(prefix) {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function removeDir(dir) {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

export const MIN_LARGE_VIDEO_SIZE = 11 * 1024 * 1024;

// Makes a real H.264/AAC MP4 with ffmpeg's synthetic sources. Temporal noise defeats the
// encoder's compression so the file really has `bitrate` bits per second; if it still comes
// out below `minSize`, the bitrate is doubled and the file made again.
export function makeVideo(file, { seconds, size, bitrate, minSize = 0 }) {
  for (let rate = bitrate; ; rate *= 2) {
    execFileSync('ffmpeg', [
      '-hide_banner', '-loglevel', 'error', '-y',
      '-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=30`,
      '-f', 'lavfi', '-i', 'sine=frequency=440',
      '-t', String(seconds),
      '-vf', 'noise=alls=60:allf=t',
      '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', `${rate}k`, '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-shortest',
      file,
    ], { stdio: ['ignore', 'inherit', 'inherit'] });
    const fileSize = statSync(file).size;
    if (fileSize >= minSize) return fileSize;
    if (rate > 64 * bitrate) {
      throw new Error(`ffmpeg output stays below ${minSize} bytes (${fileSize} at ${rate} kb/s)`);
    }
  }
}

// Deletes the videos a suite created, ignoring the ones a test already deleted.
export async function deleteVideos(client, videoIds) {
  for (const videoId of videoIds) {
    try {
      await client.videos.delete(videoId);
    } catch (e) {
      if (!(e instanceof ApiVideoError && e.code === 404)) throw e;
    }
  }
}
