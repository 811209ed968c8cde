// The media store's orphan sweep (issue 6): bytes a crash left without a database row (between
// the file's rename and the transaction's commit) and temp files of interrupted uploads are
// deleted once older than the grace period; referenced bytes and live uploads never are.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';
import { download, storedBlobs, testImage, thumbnail, tmpFiles, uploadOk } from './support/media.js';

const HOUR = 60 * 60 * 1000;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Where the store keeps a blob (content/ab/cd/abcd...). */
function blobPath(storeRoot: string, hash: string): string {
  return join(storeRoot, 'content', hash.slice(0, 2), hash.slice(2, 4), hash);
}

/** Writes bytes into the store as a crash between rename and commit would leave them. */
function plantOrphan(storeRoot: string, bytes: Buffer): string {
  const path = blobPath(storeRoot, sha256(bytes));
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

function age(path: string, ms: number): void {
  const t = new Date(Date.now() - ms);
  utimesSync(path, t, t);
}

/** Every file under the store's content directory, aged past the grace period. */
function ageEverything(storeRoot: string, ms: number): void {
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name));
      else age(join(dir, e.name), ms);
    }
  };
  walk(join(storeRoot, 'content'));
}

describe('media orphan sweep', () => {
  let server: TestServer;
  let alice: TestClient;
  let storeRoot: string;
  before(async () => {
    server = await startTestServer();
    alice = await server.register();
    storeRoot = server.hs.services.config.media.store_path;
  });
  after(() => server.stop());

  it('deletes bytes no row refers to and crash-left temp files, once past the grace period', async () => {
    const kept = randomBytes(10_000);
    const keptId = await uploadOk(server, alice, kept);
    const png = await testImage(400, 300, 'png');
    const pngId = await uploadOk(server, alice, png, { contentType: 'image/png' });
    const thumb = await thumbnail(server, alice, pngId, 'width=32&height=32&method=crop');
    assert.equal(thumb.status, 200);
    const orphan = plantOrphan(storeRoot, randomBytes(5000));
    const tmp = join(storeRoot, 'tmp', 'crashed-upload');
    writeFileSync(tmp, 'half an upload');

    // Young: nothing is touched (another process may be about to commit its row).
    assert.deepEqual(await server.hs.services.media.sweepOrphans(), { blobs: 0, staged: 0 });
    assert.ok(existsSync(orphan));
    assert.ok(existsSync(tmp));

    ageEverything(storeRoot, 2 * HOUR);
    age(tmp, 2 * HOUR);
    assert.deepEqual(await server.hs.services.media.sweepOrphans(), { blobs: 1, staged: 1 });
    assert.ok(!existsSync(orphan));
    assert.ok(!existsSync(tmp));
    // Uploads and thumbnails (rows in media and media_thumbnails) keep their bytes.
    for (const b of [kept, png, thumb.bytes]) assert.ok(storedBlobs(server).includes(sha256(b)));
    assert.ok((await download(server, alice, keptId)).bytes.equals(kept));
    assert.ok((await thumbnail(server, alice, pngId, 'width=32&height=32&method=crop')).bytes.equals(thumb.bytes));
  });

  it('re-uploading bytes an orphan holds makes them referenced again', async () => {
    const bytes = randomBytes(3000);
    const path = plantOrphan(storeRoot, bytes);
    age(path, 2 * HOUR);
    const id = await uploadOk(server, alice, bytes);
    assert.equal((await server.hs.services.media.sweepOrphans({ graceMs: 0 })).blobs, 0);
    assert.ok(existsSync(path));
    assert.ok((await download(server, alice, id)).bytes.equals(bytes));
  });

  it('never touches the temp file of an upload still arriving, even with no grace period', async () => {
    const bytes = randomBytes(400_000);
    const sock = net.connect(Number(new URL(server.baseUrl).port), '127.0.0.1');
    await once(sock, 'connect');
    const answer = new Promise<string>((resolveAnswer) => {
      let text = '';
      sock.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (/\r\n\r\n[\s\S]*\}/.test(text)) resolveAnswer(text);
      });
    });
    sock.write(
      `POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`,
    );
    sock.write(bytes.subarray(0, 100_000));
    let tmp: string[] = [];
    for (let i = 0; i < 100 && tmp.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 20));
      tmp = tmpFiles(server);
    }
    assert.equal(tmp.length, 1, "the upload has its temp file");
    // Even looking a day old, it belongs to a stage() of this process that has not ended.
    age(join(storeRoot, 'tmp', tmp[0]!), 24 * HOUR);
    assert.deepEqual(await server.hs.services.media.sweepOrphans({ graceMs: 0 }), { blobs: 0, staged: 0 });
    assert.deepEqual(tmpFiles(server), tmp);
    sock.write(bytes.subarray(100_000));
    const text = await answer;
    sock.destroy();
    assert.match(text, /^HTTP\/1\.1 200 /);
    const id = /mxc:\/\/[^/]+\/([A-Za-z0-9_-]+)/.exec(text)![1]!;
    assert.ok((await download(server, alice, id)).bytes.equals(bytes));
    assert.deepEqual(tmpFiles(server), []);
  });
});

describe('media orphan sweep at startup', () => {
  it('runs when the server starts, and the server still stops promptly', async () => {
    const storeRoot = mkdtempSync(join(tmpdir(), 'prat-media-sweep-'));
    try {
      const orphan = plantOrphan(storeRoot, randomBytes(2000));
      age(orphan, 2 * HOUR);
      mkdirSync(join(storeRoot, 'tmp'));
      const tmp = join(storeRoot, 'tmp', 'crashed-upload');
      writeFileSync(tmp, 'x');
      age(tmp, 2 * HOUR);
      const young = plantOrphan(storeRoot, randomBytes(2000));
      const server = await startTestServer({ media: { store_path: storeRoot } });
      try {
        for (let i = 0; i < 250 && (existsSync(orphan) || existsSync(tmp)); i++) await new Promise((r) => setTimeout(r, 20));
        assert.ok(!existsSync(orphan), 'old orphan removed at startup');
        assert.ok(!existsSync(tmp), 'old temp file removed at startup');
        assert.ok(existsSync(young), 'young orphan kept');
      } finally {
        const t = performance.now();
        await server.stop();
        // The sweep timer is unref'd and cleared: nothing holds the stop up.
        assert.ok(performance.now() - t < 5000);
      }
    } finally {
      rmSync(storeRoot, { recursive: true, force: true });
    }
  });
});
