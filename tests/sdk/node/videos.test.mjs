// Video CRUD, listing and status through @api.video/nodejs-client 2.5.4
// (api-contract.md §3 "Videos", §1.3 errors, §1.4 pagination, §1.5 query encoding).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { deleteVideos, expectApiError, newClient, runMarker } from './helpers.mjs';

// The client's models name the JSON field `public` as the property `_public`, in payloads
// and in responses alike.
//
// The client deserialises into class instances; deepStrictEqual compares prototypes too,
// so compare plain copies.
const plainMetadata = (metadata) => metadata.map(({ key, value }) => ({ key, value }));
const titles = (page) => page.data.map((video) => video.title);
const rels = (pagination) => pagination.links.map((link) => link.rel).sort();

function assertValidDate(value, field) {
  assert.ok(value instanceof Date, `${field} is not a date: ${value}`);
  assert.ok(!Number.isNaN(value.getTime()), `${field} did not parse`);
}

describe('videos', () => {
  const client = newClient();
  const marker = runMarker('nodevid');
  const created = [];

  // Creates a video and remembers it for clean-up.
  async function create(payload) {
    const video = await client.videos.create(payload);
    created.push(video.videoId);
    return video;
  }

  after(() => deleteVideos(client, created));

  test('create returns the video with every field that was sent', async () => {
    const video = await create({
      title: `${marker} create`,
      description: 'Created by the Node SDK suite',
      _public: false,
      tags: [marker, 'sdk-node'],
      metadata: [
        { key: 'run', value: marker },
        { key: 'Author', value: 'John Doe' },
      ],
    });

    assert.match(video.videoId, /^vi[0-9A-Za-z]+$/);
    assert.equal(video.title, `${marker} create`);
    assert.equal(video.description, 'Created by the Node SDK suite');
    assert.equal(video._public, false);
    assert.deepEqual(video.tags, [marker, 'sdk-node']);
    assert.deepEqual(plainMetadata(video.metadata), [
      { key: 'run', value: marker },
      { key: 'Author', value: 'John Doe' },
    ]);
    assert.equal(video.panoramic, false);
    assert.equal(video.mp4Support, true);
    assertValidDate(video.createdAt, 'createdAt');
    assert.equal(video.source?.uri, `/videos/${video.videoId}/source`);
    assert.equal(typeof video.assets?.player, 'string');
    assert.equal(typeof video.assets?.hls, 'string');
    assert.equal(video.playerId, undefined, 'playerId must be omitted when there is no player');

    const fetched = await client.videos.get(video.videoId);
    assert.equal(fetched.videoId, video.videoId);
    assert.equal(fetched.title, video.title);
    assert.equal(fetched.description, video.description);
    assert.equal(fetched._public, false);
    assert.deepEqual(fetched.tags, video.tags);
    assert.deepEqual(plainMetadata(fetched.metadata), plainMetadata(video.metadata));
    assert.equal(fetched.createdAt.getTime(), video.createdAt.getTime());
  });

  test('create with only a title applies the defaults', async () => {
    const video = await create({ title: `${marker} defaults` });
    assert.equal(video._public, true);
    assert.equal(video.panoramic, false);
    assert.equal(video.mp4Support, true);
    assert.deepEqual(video.tags, []);
    assert.deepEqual(video.metadata, []);
  });

  describe('list', () => {
    const prefix = `${marker} list`;

    before(async () => {
      // Created one after another; sorting is checked on titles, which cannot tie.
      await create({
        title: `${prefix} alpha`,
        tags: [marker, 'red'],
        metadata: [{ key: 'run', value: marker }, { key: 'kind', value: 'first' }],
      });
      await create({
        title: `${prefix} beta`,
        tags: [marker, 'red', 'blue'],
        metadata: [
          { key: 'run', value: marker },
          { key: 'kind', value: 'second' },
          { key: 'Author', value: 'Jane Doe' },
        ],
      });
      await create({
        title: `${prefix} gamma`,
        tags: [marker, 'blue'],
        metadata: [{ key: 'run', value: marker }, { key: 'kind', value: 'third' }],
      });
    });

    test('filters on a title substring', async () => {
      const page = await client.videos.list({ title: prefix, sortBy: 'title', sortOrder: 'asc' });
      assert.deepEqual(titles(page), [`${prefix} alpha`, `${prefix} beta`, `${prefix} gamma`]);
      assert.equal(page.pagination.itemsTotal, 3);
    });

    test('filters on tags: a video must have all of them', async () => {
      // Sent as tags%5B%5D=...&tags%5B%5D=... (percent-encoded brackets).
      const red = await client.videos.list({ tags: [marker, 'red'], sortBy: 'title', sortOrder: 'asc' });
      assert.deepEqual(titles(red), [`${prefix} alpha`, `${prefix} beta`]);
      const both = await client.videos.list({ tags: [marker, 'red', 'blue'] });
      assert.deepEqual(titles(both), [`${prefix} beta`]);
    });

    test('filters on metadata: every pair must match', async () => {
      const third = await client.videos.list({ metadata: { run: marker, kind: 'third' } });
      assert.deepEqual(titles(third), [`${prefix} gamma`]);
      // URLSearchParams encodes the space as "+", which the server must decode as a space.
      const jane = await client.videos.list({ metadata: { run: marker, Author: 'Jane Doe' } });
      assert.deepEqual(titles(jane), [`${prefix} beta`]);
      const none = await client.videos.list({ metadata: { run: marker, kind: 'fourth' } });
      assert.deepEqual(none.data, []);
      assert.equal(none.pagination.itemsTotal, 0);
    });

    test('sorts by title both ways', async () => {
      const asc = await client.videos.list({ title: prefix, sortBy: 'title', sortOrder: 'asc' });
      assert.deepEqual(titles(asc), [`${prefix} alpha`, `${prefix} beta`, `${prefix} gamma`]);
      const desc = await client.videos.list({ title: prefix, sortBy: 'title', sortOrder: 'desc' });
      assert.deepEqual(titles(desc), [`${prefix} gamma`, `${prefix} beta`, `${prefix} alpha`]);
    });

    test('sorts by createdAt', async () => {
      const asc = await client.videos.list({ title: prefix, sortBy: 'createdAt', sortOrder: 'asc' });
      const times = asc.data.map((video) => video.createdAt.getTime());
      assert.deepEqual(times, [...times].sort((a, b) => a - b));
      assert.equal(times.length, 3);
    });

    test('pages with pageSize/currentPage and fills the pagination fields', async () => {
      const query = { title: prefix, sortBy: 'title', sortOrder: 'asc', pageSize: 2 };

      const first = await client.videos.list({ ...query, currentPage: 1 });
      assert.deepEqual(titles(first), [`${prefix} alpha`, `${prefix} beta`]);
      assert.equal(first.pagination.itemsTotal, 3);
      assert.equal(first.pagination.pagesTotal, 2);
      assert.equal(first.pagination.pageSize, 2);
      assert.equal(first.pagination.currentPage, 1);
      assert.equal(first.pagination.currentPageItems, 2);
      assert.deepEqual(rels(first.pagination), ['first', 'last', 'next', 'self']);
      const next = first.pagination.links.find((link) => link.rel === 'next');
      assert.match(next.uri, /currentPage=2/);
      assert.match(next.uri, /pageSize=2/);

      const second = await client.videos.list({ ...query, currentPage: 2 });
      assert.deepEqual(titles(second), [`${prefix} gamma`]);
      assert.equal(second.pagination.currentPage, 2);
      assert.equal(second.pagination.currentPageItems, 1);
      assert.equal(second.pagination.itemsTotal, 3);
      assert.deepEqual(rels(second.pagination), ['first', 'last', 'previous', 'self']);

      // Past the last page: no items, but the real totals.
      const beyond = await client.videos.list({ ...query, currentPage: 3 });
      assert.deepEqual(beyond.data, []);
      assert.equal(beyond.pagination.itemsTotal, 3);
      assert.equal(beyond.pagination.pagesTotal, 2);
    });

    test('rejects a pageSize out of 1..100 with 400', async () => {
      const tooBig = await expectApiError(client.videos.list({ pageSize: 101 }), 400);
      assert.equal(tooBig.problemDetails.name, 'pageSize');
      const zero = await expectApiError(client.videos.list({ currentPage: 0 }), 400);
      assert.equal(zero.problemDetails.name, 'currentPage');
    });
  });

  test('update replaces tags and metadata and changes the other fields', async () => {
    const video = await create({
      title: `${marker} update before`,
      description: 'before',
      _public: true,
      tags: [marker, 'old1', 'old2'],
      metadata: [{ key: 'run', value: marker }, { key: 'old', value: 'yes' }],
    });

    const updated = await client.videos.update(video.videoId, {
      title: `${marker} update after`,
      description: 'after',
      _public: false,
      tags: ['new', marker],
      metadata: [{ key: 'new', value: 'value' }],
    });
    assert.equal(updated.videoId, video.videoId);
    assert.equal(updated.title, `${marker} update after`);
    assert.equal(updated.description, 'after');
    assert.equal(updated._public, false);
    assert.deepEqual(updated.tags, ['new', marker]);
    assert.deepEqual(plainMetadata(updated.metadata), [{ key: 'new', value: 'value' }]);
    assertValidDate(updated.updatedAt, 'updatedAt');
    assert.ok(updated.updatedAt.getTime() >= video.createdAt.getTime());

    const fetched = await client.videos.get(video.videoId);
    assert.equal(fetched.title, `${marker} update after`);
    assert.deepEqual(fetched.tags, ['new', marker]);
    assert.deepEqual(plainMetadata(fetched.metadata), [{ key: 'new', value: 'value' }]);

    // Fields left out of the PATCH body keep their values; empty arrays clear.
    const cleared = await client.videos.update(video.videoId, { tags: [], metadata: [] });
    assert.equal(cleared.title, `${marker} update after`);
    assert.equal(cleared.description, 'after');
    assert.equal(cleared._public, false);
    assert.deepEqual(cleared.tags, []);
    assert.deepEqual(cleared.metadata, []);
  });

  test('getStatus of a video without a source reports ingest "missing"', async () => {
    const video = await create({ title: `${marker} status` });
    const status = await client.videos.getStatus(video.videoId);
    assert.equal(status.ingest?.status, 'missing');
    assert.equal(status.encoding?.playable, false);
  });

  test('delete removes the video; later calls answer 404', async () => {
    const video = await create({ title: `${marker} delete` });
    // Resolves (to a meaningless value: the client returns the JSON-encoded empty body).
    await client.videos.delete(video.videoId);

    const error = await expectApiError(client.videos.get(video.videoId), 404);
    assert.equal(error.problemDetails.name, 'videoId');
    await expectApiError(client.videos.getStatus(video.videoId), 404);
    await expectApiError(client.videos.update(video.videoId, { title: 'x' }), 404);
    await expectApiError(client.videos.delete(video.videoId), 404);
  });

  describe('errors', () => {
    test('get of an unknown id raises 404 resource-not-found', async () => {
      const error = await expectApiError(client.videos.get('vi0000000000000000000000'), 404);
      assert.equal(error.problemDetails.type, 'https://docs.api.video/reference/resource-not-found');
      assert.equal(error.problemDetails.name, 'videoId');
    });

    test('create without a title raises 400 attribute-required', async () => {
      // The client does not check required fields itself: it sends `{}`.
      const error = await expectApiError(client.videos.create({}), 400);
      assert.equal(error.problemDetails.type, 'https://docs.api.video/reference/attribute-required');
      assert.equal(error.problemDetails.name, 'title');
    });
  });
});
