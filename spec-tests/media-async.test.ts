// Asynchronous uploads (POST /_matrix/media/v1/create, then PUT /_matrix/media/v3/upload/...),
// the legacy unauthenticated endpoints with enable_authenticated_media off, and upload rate
// limits.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';
import { dimensions, download, rawFetch, testImage, upload, uploadOk } from './support/media.js';

function putUpload(server: TestServer, client: TestClient, mxc: string, bytes: Uint8Array, contentType = 'application/octet-stream', filename?: string) {
  const [, serverName, mediaId] = /^mxc:\/\/([^/]+)\/(.+)$/.exec(mxc)!;
  const q = filename ? `?filename=${encodeURIComponent(filename)}` : '';
  return rawFetch(`${server.baseUrl}/_matrix/media/v3/upload/${serverName}/${mediaId}${q}`, {
    method: 'PUT',
    body: bytes,
    headers: { 'Content-Type': contentType },
    token: client.token,
  });
}

async function create(server: TestServer, client: TestClient) {
  return rawFetch(`${server.baseUrl}/_matrix/media/v1/create`, { method: 'POST', token: client.token, body: '{}', headers: { 'Content-Type': 'application/json' } });
}

const idOf = (mxc: string) => mxc.split('/').pop()!;

describe('asynchronous uploads', () => {
  let server: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  before(async () => {
    server = await startTestServer({ media: { unused_expires_after_ms: 1500, max_pending_uploads: 3 } });
    alice = await server.register();
    bob = await server.register();
  });
  after(() => server.stop());

  it('creates an id, waits for its upload, serves it once complete, refuses an overwrite', async () => {
    const before = Date.now();
    const c = await create(server, alice);
    assert.equal(c.status, 200);
    assert.match(c.json.content_uri, new RegExp(`^mxc://${server.serverName}/[A-Za-z0-9_-]+$`));
    assert.ok(c.json.unused_expires_at >= before + 1500 && c.json.unused_expires_at <= Date.now() + 1500);
    const id = idOf(c.json.content_uri);

    // Pending: a short wait ends in 504 M_NOT_YET_UPLOADED.
    const started = Date.now();
    const early = await download(server, alice, id, '?timeout_ms=300');
    assert.equal(early.status, 504);
    assert.equal(early.json.errcode, 'M_NOT_YET_UPLOADED');
    assert.ok(Date.now() - started >= 290, 'waited for the timeout');
    const earlyThumb = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/thumbnail/${server.serverName}/${id}?width=32&height=32&timeout_ms=100`, {
      token: alice.token,
    });
    assert.equal(earlyThumb.status, 504);

    // A download waiting when the upload lands gets the bytes.
    const png = await testImage(120, 80, 'png');
    const waiting = download(server, bob, id, '?timeout_ms=5000');
    await new Promise((r) => setTimeout(r, 200));
    const put = await putUpload(server, alice, c.json.content_uri, png, 'image/png', 'late.png');
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, {});
    const got = await waiting;
    assert.equal(got.status, 200);
    assert.ok(got.bytes.equals(png));
    assert.equal(got.headers.get('content-disposition'), 'inline; filename="late.png"');
    const t = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/thumbnail/${server.serverName}/${id}?width=32&height=32&method=crop`, {
      token: bob.token,
    });
    assert.deepEqual([(await dimensions(t.bytes)).width, (await dimensions(t.bytes)).height], [32, 32]);

    const again = await putUpload(server, alice, c.json.content_uri, Buffer.from('replacement'));
    assert.equal(again.status, 409);
    assert.equal(again.json.errcode, 'M_CANNOT_OVERWRITE_MEDIA');
    assert.ok((await download(server, alice, id)).bytes.equals(png));
  });

  it('lets only the creator upload to a created id', async () => {
    const c = await create(server, alice);
    const r = await putUpload(server, bob, c.json.content_uri, Buffer.from('not yours'));
    assert.equal(r.status, 403);
    assert.equal(r.json.errcode, 'M_FORBIDDEN');
    assert.equal((await putUpload(server, alice, c.json.content_uri, Buffer.from('mine'))).status, 200);
  });

  it('answers 404 for ids never created, or created elsewhere', async () => {
    const r = await putUpload(server, alice, `mxc://${server.serverName}/NeverCreated`, Buffer.from('x'));
    assert.equal(r.status, 404);
    assert.equal(r.json.errcode, 'M_NOT_FOUND');
    const remote = await putUpload(server, alice, 'mxc://matrix.org/NeverCreated', Buffer.from('x'));
    assert.equal(remote.status, 404);
    // An id made by a direct upload is not a created one: it already has content.
    const direct = await uploadOk(server, alice, Buffer.from('direct'));
    const over = await putUpload(server, alice, `mxc://${server.serverName}/${direct}`, Buffer.from('y'));
    assert.equal(over.status, 409);
  });

  it('refuses an oversize body with 413 and leaves the id usable', async () => {
    const small = await startTestServer({ media: { max_upload_size: 1000 } });
    try {
      const carol = await small.register();
      const c = await create(small, carol);
      const big = await putUpload(small, carol, c.json.content_uri, randomBytes(5000));
      assert.equal(big.status, 413);
      assert.equal(big.json.errcode, 'M_TOO_LARGE');
      const ok = await putUpload(small, carol, c.json.content_uri, randomBytes(500));
      assert.equal(ok.status, 200);
      const direct = await upload(small, carol, randomBytes(1001));
      assert.equal(direct.status, 413);
    } finally {
      await small.stop();
    }
  });

  it('limits pending ids per user (429 with retry_after_ms) and expires unused ones', async () => {
    const dave = await server.register();
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const c = await create(server, dave);
      assert.equal(c.status, 200);
      ids.push(c.json.content_uri as string);
    }
    const fourth = await create(server, dave);
    assert.equal(fourth.status, 429);
    assert.equal(fourth.json.errcode, 'M_LIMIT_EXCEEDED');
    assert.ok(fourth.json.retry_after_ms > 0 && fourth.json.retry_after_ms <= 1500);
    // Other users are not affected.
    assert.equal((await create(server, bob)).status, 200);

    await new Promise((r) => setTimeout(r, 1600));
    const expired = await putUpload(server, dave, ids[0]!, Buffer.from('too late'));
    assert.equal(expired.status, 404);
    assert.equal(expired.json.errcode, 'M_NOT_FOUND');
    const gone = await download(server, dave, idOf(ids[1]!), '?timeout_ms=100');
    assert.equal(gone.status, 404);
    // Expired ids no longer count against the limit.
    assert.equal((await create(server, dave)).status, 200);
  });
});

describe('legacy media endpoints with enable_authenticated_media off', () => {
  let server: TestServer;
  let alice: TestClient;
  before(async () => {
    server = await startTestServer({
      media: { enable_authenticated_media: false },
      rate_limits: { enabled: true, media_upload: { per_second: 0.1, burst_count: 3 } },
    });
    alice = await server.register();
  });
  after(() => server.stop());

  it('serves downloads and thumbnails without a token, and the authenticated endpoints too', async () => {
    const png = await testImage(400, 300, 'png');
    const id = await uploadOk(server, alice, png, { contentType: 'image/png', filename: 'legacy.png' });
    for (const v of ['v3', 'r0']) {
      const d = await rawFetch(`${server.baseUrl}/_matrix/media/${v}/download/${server.serverName}/${id}`);
      assert.equal(d.status, 200);
      assert.ok(d.bytes.equals(png));
      assert.equal(d.headers.get('content-disposition'), 'inline; filename="legacy.png"');
      assert.match(d.headers.get('cache-control')!, /public/);
      const named = await rawFetch(`${server.baseUrl}/_matrix/media/${v}/download/${server.serverName}/${id}/renamed.png`);
      assert.equal(named.headers.get('content-disposition'), 'inline; filename="renamed.png"');
      const t = await rawFetch(`${server.baseUrl}/_matrix/media/${v}/thumbnail/${server.serverName}/${id}?width=320&height=240&method=scale`);
      assert.equal(t.status, 200);
      const dims = await dimensions(t.bytes);
      assert.deepEqual([dims.width, dims.height], [320, 240]);
    }
    assert.ok((await download(server, alice, id)).bytes.equals(png));
    // config always needed a token.
    assert.equal((await rawFetch(`${server.baseUrl}/_matrix/media/v3/config`)).status, 401);
  });

  it('rate limits uploads per user (media_upload class)', async () => {
    const bob = await server.register();
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await upload(server, bob, Buffer.from(`n${i}`))).status);
    // One upload already used by nobody else: bob has his own bucket of 3.
    assert.deepEqual(statuses.slice(0, 3), [200, 200, 200]);
    assert.ok(statuses.slice(3).every((s) => s === 429));
    const r = await upload(server, bob, Buffer.from('again'));
    assert.equal(r.json.errcode, 'M_LIMIT_EXCEEDED');
    assert.ok(r.json.retry_after_ms > 0);
  });
});
