// Downloads of big media (past the O_DIRECT threshold, so read with O_DIRECT) over HTTP: the
// bytes, ranges, HEAD and a client that hangs up midway.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from '../../spec-tests/support/server.js';
import type { TestClient } from '../../spec-tests/support/client.js';
import { download, rawFetch, uploadOk } from '../../spec-tests/support/media.js';
import { DIRECT_FROM } from './storage.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('big media downloads (O_DIRECT reads)', () => {
  let server: TestServer;
  let alice: TestClient;
  // Odd, and past the threshold by more than one read block.
  const bytes = randomBytes(DIRECT_FROM + 3 * 1024 * 1024 + 12345);
  let id: string;
  let url: string;
  before(async () => {
    server = await startTestServer({ media: { max_upload_size: 16 * 1024 * 1024 } });
    alice = await server.register();
    id = await uploadOk(server, alice, bytes, { contentType: 'video/mp4', filename: 'clip.mp4' });
    url = `${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${id}`;
  });
  after(() => server.stop());

  it('returns the file byte for byte with its headers', async () => {
    for (let i = 0; i < 2; i++) {
      const r = await download(server, alice, id);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-length'), String(bytes.length));
      assert.equal(r.headers.get('content-type'), 'video/mp4');
      assert.equal(r.headers.get('content-disposition'), 'inline; filename="clip.mp4"');
      assert.equal(r.bytes.length, bytes.length);
      assert.equal(sha256(r.bytes), sha256(bytes));
    }
  });

  it('serves ranges before, across and past the threshold', async () => {
    const n = bytes.length;
    for (const [start, end] of [[0, 99], [DIRECT_FROM - 10, DIRECT_FROM + 10], [DIRECT_FROM + 4095, n - 1], [n - 1, n - 1], [123, n - 2]] as const) {
      const r = await rawFetch(url, { token: alice.token, headers: { Range: `bytes=${start}-${end}` } });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${n}`);
      assert.equal(r.headers.get('content-length'), String(end - start + 1));
      assert.ok(r.bytes.equals(bytes.subarray(start, end + 1)), `${start}-${end}`);
    }
  });

  it('answers HEAD with the length and no body', async () => {
    const r = await rawFetch(url, { method: 'HEAD', token: alice.token });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), String(bytes.length));
    assert.equal(r.bytes.length, 0);
  });

  it('survives clients that hang up midway, and serves the next one', async () => {
    for (let i = 0; i < 3; i++) {
      await new Promise<void>((resolve, reject) => {
        const req = http.get(url, { headers: { Authorization: `Bearer ${alice.token}` } }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (err) => ((err as { code?: string }).code === 'ECONNRESET' ? resolve() : reject(err)));
      });
    }
    const r = await download(server, alice, id);
    assert.equal(sha256(r.bytes), sha256(bytes));
    // Every file of those downloads closed (the server runs in this process).
    const name = sha256(bytes);
    const blobFds = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).endsWith(name);
        } catch {
          return false;
        }
      });
    for (let i = 0; i < 50 && blobFds().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(blobFds(), []);
  });
});
