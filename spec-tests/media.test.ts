// The media repository (issue 6): uploads, authenticated downloads, headers, thumbnails,
// validation, deduplicated storage, admin quarantine and delete, legacy endpoints.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { crc32 } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';
import {
  animatedGif,
  dimensions,
  download,
  rawFetch,
  rawRequest,
  registerAdmin,
  storedBlobs,
  testImage,
  thumbnail,
  tmpFiles,
  upload,
  uploadOk,
} from './support/media.js';

const MB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('media repository', () => {
  let server: TestServer;
  let alice: TestClient;
  let bob: TestClient;
  before(async () => {
    // 21 MB: the 20 MB round trip fits, a 22 MB upload does not.
    server = await startTestServer({ media: { max_upload_size: 21 * MB } });
    alice = await server.register();
    bob = await server.register();
  });
  after(() => server.stop());

  describe('config and discovery', () => {
    it('advertises the upload limit on the authenticated and legacy config endpoints', async () => {
      const r = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/config`, { token: alice.token });
      assert.equal(r.status, 200);
      assert.deepEqual(r.json, { 'm.upload.size': 21 * MB });
      const legacy = await rawFetch(`${server.baseUrl}/_matrix/media/v3/config`, { token: alice.token });
      assert.deepEqual(legacy.json, { 'm.upload.size': 21 * MB });
    });

    it('lists v1.11 in /versions (authenticated media)', async () => {
      const r = await server.anon().get('/_matrix/client/versions');
      assert.ok(r.body.versions.includes('v1.11'));
    });
  });

  describe('round trips', () => {
    it('returns an uploaded image byte for byte, with its type and name', async () => {
      const png = await testImage(300, 200, 'png');
      const id = await uploadOk(server, alice, png, { contentType: 'image/png', filename: 'holiday photo.png' });
      const r = await download(server, alice, id);
      assert.equal(r.status, 200);
      assert.ok(r.bytes.equals(png));
      assert.equal(r.headers.get('content-type'), 'image/png');
      assert.equal(r.headers.get('content-length'), String(png.length));
      assert.equal(r.headers.get('content-disposition'), 'inline; filename="holiday photo.png"');
      // Another user downloads it too: media is not private to its uploader.
      const other = await download(server, bob, id);
      assert.ok(other.bytes.equals(png));
      // HEAD: the headers without the bytes.
      const head = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${id}`, { method: 'HEAD', token: bob.token });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), String(png.length));
      assert.equal(head.bytes.length, 0);
    });

    it('returns a 20 MB binary byte for byte', async () => {
      const blob = randomBytes(20 * MB);
      const id = await uploadOk(server, alice, blob, { contentType: 'application/octet-stream', filename: 'data.bin' });
      const r = await download(server, alice, id);
      assert.equal(r.status, 200);
      assert.equal(r.bytes.length, blob.length);
      assert.equal(sha256(r.bytes), sha256(blob));
      assert.equal(r.headers.get('content-disposition'), 'attachment; filename="data.bin"');
    });

    it('stores and returns an empty file', async () => {
      const id = await uploadOk(server, alice, new Uint8Array(0), { contentType: 'text/plain' });
      const r = await download(server, alice, id);
      assert.equal(r.status, 200);
      assert.equal(r.bytes.length, 0);
      assert.equal(r.headers.get('content-length'), '0');
      // No filename given at upload: none in the header.
      assert.equal(r.headers.get('content-disposition'), 'inline');
    });

    it('defaults a missing Content-Type to application/octet-stream', async () => {
      const r = await upload(server, alice, Buffer.from('no type'), { contentType: null });
      assert.equal(r.status, 200);
      const id = r.json.content_uri.split('/').pop();
      const d = await download(server, alice, id);
      // fetch adds text/plain for a string body but not for bytes; either way it is echoed.
      assert.ok(['application/octet-stream'].includes(d.headers.get('content-type')!));
    });

    it('refuses a malformed Content-Type (it would be echoed as a header)', async () => {
      const r = await upload(server, alice, Buffer.from('x'), { contentType: 'not a type' });
      assert.equal(r.status, 400);
      assert.equal(r.json.errcode, 'M_INVALID_PARAM');
    });

    it('uses the file name from the download path when given', async () => {
      const id = await uploadOk(server, alice, Buffer.from('hello'), { contentType: 'text/plain', filename: 'a.txt' });
      const r = await download(server, alice, id, '/other%20name.txt');
      assert.equal(r.headers.get('content-disposition'), 'inline; filename="other name.txt"');
      assert.equal(r.bytes.toString(), 'hello');
    });

    it('encodes non-ASCII and quote-bearing file names per RFC 6266 / 8187', async () => {
      const id = await uploadOk(server, alice, Buffer.from('x'), { contentType: 'text/plain', filename: 'résumé "final".txt' });
      const r = await download(server, alice, id);
      const cd = r.headers.get('content-disposition')!;
      assert.match(cd, /^inline; filename\*=utf-8''/);
      const encoded = cd.slice("inline; filename*=utf-8''".length);
      assert.doesNotMatch(encoded, /[\s"';]/);
      assert.equal(decodeURIComponent(encoded), 'résumé "final".txt');
    });

    it('strips control characters and path separators from file names', async () => {
      const id = await uploadOk(server, alice, Buffer.from('x'), { contentType: 'text/plain', filename: '../../etc/pa\r\nss\twd' });
      const r = await download(server, alice, id);
      assert.equal(r.headers.get('content-disposition'), 'inline; filename=".._.._etc_passwd"');
      // NUL cannot even be stored (PostgreSQL TEXT): refused, not a 500.
      const nul = await upload(server, alice, Buffer.from('x'), { contentType: 'text/plain', filename: 'a\u0000b' });
      assert.equal(nul.status, 400);
    });

    it('serves byte ranges for seeking (206, Content-Range), or the whole file', async () => {
      const bytes = randomBytes(1000);
      const id = await uploadOk(server, alice, bytes, { contentType: 'video/mp4' });
      const get = (range: string, extra: Record<string, string> = {}) =>
        rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${id}`, {
          token: alice.token,
          headers: { Range: range, ...extra },
        });
      const full = await download(server, alice, id);
      assert.equal(full.headers.get('accept-ranges'), 'bytes');
      const cases: [string, number, number][] = [
        ['bytes=0-9', 0, 9],
        ['bytes=990-', 990, 999],
        ['bytes=-5', 995, 999],
        ['bytes=500-5000', 500, 999],
      ];
      for (const [range, start, end] of cases) {
        const r = await get(range);
        assert.equal(r.status, 206, range);
        assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/1000`);
        assert.ok(r.bytes.equals(bytes.subarray(start, end + 1)), range);
      }
      const beyond = await get('bytes=1000-');
      assert.equal(beyond.status, 416);
      assert.equal(beyond.headers.get('content-range'), 'bytes */1000');
      // Several ranges, nonsense, or an If-Range for other content: the whole file.
      for (const [range, extra] of [['bytes=0-1,5-6', {}], ['bytes=9-3', {}], ['items=0-1', {}], ['bytes=0-9', { 'If-Range': '"other"' }]] as const) {
        const r = await get(range, extra);
        assert.equal(r.status, 200, range);
        assert.ok(r.bytes.equals(bytes));
      }
    });

    it('answers If-None-Match with 304 (media never changes)', async () => {
      const id = await uploadOk(server, alice, Buffer.from('cache me'), { contentType: 'text/plain' });
      const r = await download(server, alice, id);
      const etag = r.headers.get('etag')!;
      assert.match(etag, /^"[0-9a-f]{64}"$/);
      const again = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${id}`, {
        token: alice.token,
        headers: { 'If-None-Match': etag },
      });
      assert.equal(again.status, 304);
      assert.equal(again.bytes.length, 0);
    });
  });

  describe('response headers', () => {
    it('serves HTML as an attachment, sandboxed, never sniffed', async () => {
      const html = Buffer.from('<html><script>alert(document.cookie)</script></html>');
      const id = await uploadOk(server, alice, html, { contentType: 'text/html', filename: 'page.html' });
      const r = await download(server, alice, id);
      assert.equal(r.status, 200);
      assert.ok(r.bytes.equals(html));
      assert.equal(r.headers.get('content-type'), 'text/html');
      assert.equal(r.headers.get('content-disposition'), 'attachment; filename="page.html"');
      const csp = r.headers.get('content-security-policy')!;
      assert.match(csp, /^sandbox;/);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'none'/);
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('cross-origin-resource-policy'), 'cross-origin');
    });

    it('serves SVG (scriptable) as an attachment too', async () => {
      const id = await uploadOk(server, alice, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'), { contentType: 'image/svg+xml' });
      const r = await download(server, alice, id);
      assert.match(r.headers.get('content-disposition')!, /^attachment/);
    });

    it('marks downloads immutable and private to the authenticated caller', async () => {
      const id = await uploadOk(server, alice, Buffer.from('x'), { contentType: 'text/plain' });
      const r = await download(server, alice, id);
      const cc = r.headers.get('cache-control')!;
      assert.match(cc, /immutable/);
      assert.match(cc, /max-age=\d{6,}/);
      assert.match(cc, /private/);
    });
  });

  describe('authentication', () => {
    let id: string;
    before(async () => {
      id = await uploadOk(server, alice, Buffer.from('secret'), { contentType: 'text/plain' });
    });

    it('refuses uploads without a token (401)', async () => {
      const r = await rawFetch(`${server.baseUrl}/_matrix/media/v3/upload`, { method: 'POST', body: Buffer.from('x') });
      assert.equal(r.status, 401);
      assert.equal(r.json.errcode, 'M_MISSING_TOKEN');
      const create = await rawFetch(`${server.baseUrl}/_matrix/media/v1/create`, { method: 'POST' });
      assert.equal(create.status, 401);
    });

    it('refuses authenticated downloads, thumbnails, config and previews without a token', async () => {
      for (const path of [
        `/_matrix/client/v1/media/download/${server.serverName}/${id}`,
        `/_matrix/client/v1/media/download/${server.serverName}/${id}/f.txt`,
        `/_matrix/client/v1/media/thumbnail/${server.serverName}/${id}?width=32&height=32`,
        '/_matrix/client/v1/media/config',
        '/_matrix/client/v1/media/preview_url?url=https://example.org/',
      ]) {
        const r = await rawFetch(server.baseUrl + path);
        assert.equal(r.status, 401, path);
        assert.equal(r.json.errcode, 'M_MISSING_TOKEN', path);
      }
    });

    it('lets guests download and thumbnail, not upload', async () => {
      const g = await server.anon().post('/_matrix/client/v3/register?kind=guest', {});
      assert.equal(g.status, 200);
      const guest = g.body.access_token as string;
      const png = await testImage(100, 100, 'png');
      const imageId = await uploadOk(server, alice, png, { contentType: 'image/png' });
      const d = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${imageId}`, { token: guest });
      assert.equal(d.status, 200);
      assert.ok(d.bytes.equals(png));
      const t = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/thumbnail/${server.serverName}/${imageId}?width=32&height=32&method=crop`, { token: guest });
      assert.equal(t.status, 200);
      const up = await rawFetch(`${server.baseUrl}/_matrix/media/v3/upload`, { method: 'POST', body: Buffer.from('x'), token: guest });
      assert.equal(up.status, 403);
      assert.equal(up.json.errcode, 'M_GUEST_ACCESS_FORBIDDEN');
    });

    it('refuses an unknown token', async () => {
      const r = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/${server.serverName}/${id}`, { token: 'nope' });
      assert.equal(r.status, 401);
      assert.equal(r.json.errcode, 'M_UNKNOWN_TOKEN');
    });

    it('does not serve media uploaded with authenticated media on through the legacy endpoints', async () => {
      const r = await rawFetch(`${server.baseUrl}/_matrix/media/v3/download/${server.serverName}/${id}`);
      assert.equal(r.status, 404);
      assert.equal(r.json.errcode, 'M_NOT_FOUND');
      const t = await rawFetch(`${server.baseUrl}/_matrix/media/v3/thumbnail/${server.serverName}/${id}?width=32&height=32`);
      assert.equal(t.status, 404);
    });
  });

  describe('limits', () => {
    it('refuses an upload over max_upload_size with 413 M_TOO_LARGE and keeps nothing', async () => {
      const before = storedBlobs(server).length;
      const r = await upload(server, alice, randomBytes(22 * MB));
      assert.equal(r.status, 413);
      assert.equal(r.json.errcode, 'M_TOO_LARGE');
      assert.equal(storedBlobs(server).length, before);
      assert.deepEqual(tmpFiles(server), []);
    });

    it('refuses a streamed (chunked, no Content-Length) upload once it passes the limit', async () => {
      const chunk = randomBytes(MB);
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent >= 23) return controller.close();
          sent++;
          controller.enqueue(chunk);
        },
      });
      const res = await fetch(`${server.baseUrl}/_matrix/media/v3/upload`, {
        method: 'POST',
        body,
        duplex: 'half',
        headers: { Authorization: `Bearer ${alice.token}`, 'Content-Type': 'application/octet-stream' },
      } as RequestInit);
      const status = res.status;
      const errcode = ((await res.json()) as { errcode: string }).errcode;
      assert.equal(status, 413);
      assert.equal(errcode, 'M_TOO_LARGE');
      // The server stopped reading well before the client's 23 MB.
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(tmpFiles(server), []);
    });
    it('drops the bytes of an upload the client abandons halfway', async () => {
      const before = storedBlobs(server).length;
      const sock = net.connect(Number(new URL(server.baseUrl).port), '127.0.0.1');
      await once(sock, 'connect');
      sock.write(
        `POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice.token}\r\n` +
          'Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n',
      );
      sock.write(randomBytes(100_000));
      await new Promise((r) => setTimeout(r, 200));
      sock.destroy();
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(tmpFiles(server), []);
      assert.equal(storedBlobs(server).length, before);
      // And the server carries on.
      assert.equal((await upload(server, alice, Buffer.from('after'))).status, 200);
    });
  });

  describe('validation', () => {
    it('refuses path tricks without reading any file', async () => {
      const id = await uploadOk(server, alice, Buffer.from('x'), { contentType: 'text/plain' });
      const s = server.serverName;
      const paths = [
        `/_matrix/client/v1/media/download/${s}/..%2F..%2F..%2Fetc%2Fpasswd`,
        `/_matrix/client/v1/media/download/${s}/%2e%2e`,
        `/_matrix/client/v1/media/download/${s}/..`,
        `/_matrix/client/v1/media/download/${s}/${id}%00`,
        `/_matrix/client/v1/media/download/${s}/${id}.txt`,
        `/_matrix/client/v1/media/download/${s}/%C3%A9t%C3%A9`,
        `/_matrix/client/v1/media/download/..%2F..%2Fetc/${id}`,
        `/_matrix/client/v1/media/download/local%20host/${id}`,
        `/_matrix/client/v1/media/download/${s}%2F..%2F/${id}`,
        `/_matrix/client/v1/media/download/../../../../etc/passwd`,
        `/_matrix/client/v1/media/download/${s}/../../etc/passwd`,
        `/_matrix/client/v1/media/thumbnail/${s}/..%2F..%2Fetc%2Fpasswd?width=32&height=32`,
        `/_matrix/media/v3/download/${s}/..%2F..%2Fetc%2Fpasswd`,
        `/_matrix/media/v3/upload/${s}/..%2F..%2Ftmp%2Fx`,
        `/_matrix/client/v1/media/download/${s}/${'a'.repeat(300)}`,
        `/_matrix/client/v1/media/download/[::1/${id}`,
        `/_matrix/client/v1/media/download/${s}:99999/${id}`,
      ];
      const seen = new Set<number>();
      for (const path of paths) {
        const method = path.includes('/upload/') ? 'PUT' : 'GET';
        const r = await rawRequest(server.baseUrl, method, path, alice.token);
        assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status} ${r.body}`);
        const body = JSON.parse(r.body);
        // Paths the media routes match are refused by the id/server-name grammar (400); the
        // rest match no route at all (404 M_UNRECOGNIZED). Never a lookup of what was given.
        const expected = r.status === 400 ? 'M_INVALID_PARAM' : 'M_UNRECOGNIZED';
        assert.equal(body.errcode, expected, `${path}: ${r.body}`);
        seen.add(r.status);
        assert.doesNotMatch(r.body, /root:/);
      }
      assert.deepEqual([...seen].sort(), [400, 404]);
    });

    it('answers 404 M_NOT_FOUND for unknown media and remote server names', async () => {
      const unknown = await download(server, alice, 'DoesNotExist123');
      assert.equal(unknown.status, 404);
      assert.equal(unknown.json.errcode, 'M_NOT_FOUND');
      const remote = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/download/matrix.org/SomeMediaId`, { token: alice.token });
      assert.equal(remote.status, 404);
      assert.equal(remote.json.errcode, 'M_NOT_FOUND');
      const remoteThumb = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/thumbnail/[::1]:8448/SomeMediaId?width=1&height=1`, {
        token: alice.token,
      });
      assert.equal(remoteThumb.status, 404);
    });
  });

  describe('thumbnails', () => {
    let jpegId: string;
    let jpeg: Buffer;
    before(async () => {
      jpeg = await testImage(1000, 750, 'jpeg');
      jpegId = await uploadOk(server, alice, jpeg, { contentType: 'image/jpeg', filename: 'big.jpg' });
    });

    const cases: [string, { format: string; width: number; height: number }][] = [
      ['width=32&height=32&method=crop', { format: 'jpeg', width: 32, height: 32 }],
      // The nearest configured size at least as large: 96x96 crop.
      ['width=50&height=50&method=crop', { format: 'jpeg', width: 96, height: 96 }],
      ['width=96&height=96&method=crop', { format: 'jpeg', width: 96, height: 96 }],
      ['width=320&height=240&method=scale', { format: 'jpeg', width: 320, height: 240 }],
      ['width=100&height=100&method=scale', { format: 'jpeg', width: 320, height: 240 }],
      ['width=400&height=300&method=scale', { format: 'jpeg', width: 640, height: 480 }],
      ['width=700&height=500&method=scale', { format: 'jpeg', width: 800, height: 600 }],
      // No crop size is as large: a larger scaled image beats a too-small square.
      ['width=200&height=200&method=crop', { format: 'jpeg', width: 320, height: 240 }],
      // Method defaults to scale.
      ['width=320&height=240', { format: 'jpeg', width: 320, height: 240 }],
      // Larger than every size but smaller than the image: the largest size (never upscaled).
      ['width=900&height=700&method=scale', { format: 'jpeg', width: 800, height: 600 }],
    ];
    for (const [query, want] of cases) {
      it(`answers ${query} with ${want.width}x${want.height}`, async () => {
        const r = await thumbnail(server, alice, jpegId, query);
        assert.equal(r.status, 200, r.bytes.toString());
        assert.equal(r.headers.get('content-type'), `image/${want.format}`);
        assert.match(r.headers.get('content-disposition')!, /^inline; filename="thumbnail\.jpg"$/);
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        const d = await dimensions(r.bytes);
        assert.deepEqual({ format: d.format, width: d.width, height: d.height }, want);
      });
    }

    it('returns the original when it is no larger than asked', async () => {
      const r = await thumbnail(server, alice, jpegId, 'width=2000&height=2000&method=scale');
      assert.equal(r.status, 200);
      assert.ok(r.bytes.equals(jpeg));
    });

    it('generates a thumbnail once and serves the stored one afterwards', async () => {
      const png = await testImage(640, 640, 'png');
      const id = await uploadOk(server, alice, png, { contentType: 'image/png' });
      const results = await Promise.all(Array.from({ length: 5 }, () => thumbnail(server, alice, id, 'width=96&height=96&method=crop')));
      for (const r of results) assert.ok(r.bytes.equals(results[0]!.bytes));
      assert.equal(results[0]!.headers.get('content-type'), 'image/png');
      const again = await thumbnail(server, alice, id, 'width=90&height=90&method=crop');
      assert.ok(again.bytes.equals(results[0]!.bytes));
      const db = new pg.Client({ connectionString: server.databaseUrl });
      await db.connect();
      try {
        const rows = await db.query('SELECT width, height, method, sha256 FROM media_thumbnails WHERE media_id = $1', [id]);
        assert.equal(rows.rows.length, 1);
        assert.equal(rows.rows[0].sha256, sha256(results[0]!.bytes));
      } finally {
        await db.end();
      }
      assert.ok(storedBlobs(server).includes(sha256(results[0]!.bytes)));
    });

    it('crops and scales portrait images by their own aspect', async () => {
      const tall = await testImage(300, 900, 'png');
      const id = await uploadOk(server, alice, tall, { contentType: 'image/png' });
      const scaled = await dimensions((await thumbnail(server, alice, id, 'width=320&height=240&method=scale')).bytes);
      assert.deepEqual([scaled.width, scaled.height], [80, 240]);
      const cropped = await dimensions((await thumbnail(server, alice, id, 'width=32&height=32&method=crop')).bytes);
      assert.deepEqual([cropped.width, cropped.height], [32, 32]);
    });

    it('never upscales: a crop of a small image keeps the aspect at 1:1', async () => {
      const small = await testImage(60, 40, 'png');
      const id = await uploadOk(server, alice, small, { contentType: 'image/png' });
      // Asked 96x96 crop of a 60x40 image: the original is not larger than asked, so it is served.
      const r = await thumbnail(server, alice, id, 'width=96&height=96&method=crop');
      assert.ok(r.bytes.equals(small));
      // 32x32 crop: the image covers it, so a real 32x32.
      const c = await dimensions((await thumbnail(server, alice, id, 'width=32&height=32&method=crop')).bytes);
      assert.deepEqual([c.width, c.height], [32, 32]);
    });

    it('animates only when asked and the source is animated', async () => {
      const gif = await animatedGif(200, 100, 3);
      const id = await uploadOk(server, alice, gif, { contentType: 'image/gif' });
      const anim = await thumbnail(server, alice, id, 'width=32&height=32&method=crop&animated=true');
      assert.equal(anim.status, 200);
      assert.equal(anim.headers.get('content-type'), 'image/webp');
      const a = await dimensions(anim.bytes);
      assert.deepEqual([a.format, a.width, a.height, a.pages], ['webp', 32, 32, 3]);
      for (const q of ['width=32&height=32&method=crop&animated=false', 'width=32&height=32&method=crop']) {
        const still = await thumbnail(server, alice, id, q);
        assert.equal(still.headers.get('content-type'), 'image/png');
        const s = await dimensions(still.bytes);
        assert.deepEqual([s.width, s.height, s.pages], [32, 32, 1]);
      }
      // A source larger than asked but animated is not served as the original when animation is off.
      const big = await thumbnail(server, alice, id, 'width=400&height=400&method=scale');
      assert.equal((await dimensions(big.bytes)).pages, 1);
      // animated=true on a still image behaves as animated=false.
      const jpegAnim = await thumbnail(server, alice, jpegId, 'width=32&height=32&method=crop&animated=true');
      assert.equal(jpegAnim.headers.get('content-type'), 'image/jpeg');
    });

    it('refuses non-images and undecodable or dangerous formats with 400 M_UNKNOWN', async () => {
      const textId = await uploadOk(server, alice, Buffer.from('just text'), { contentType: 'text/plain' });
      const fakeId = await uploadOk(server, alice, randomBytes(5000), { contentType: 'image/png' });
      const svgId = await uploadOk(server, alice, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="100" height="100"/>'), {
        contentType: 'image/svg+xml',
      });
      const truncated = (await testImage(400, 300, 'png')).subarray(0, 2000);
      const truncId = await uploadOk(server, alice, truncated, { contentType: 'image/png' });
      for (const id of [textId, fakeId, svgId, fakeId, truncId]) {
        const r = await thumbnail(server, alice, id, 'width=32&height=32&method=crop');
        assert.equal(r.status, 400, `${id}: ${r.bytes.toString()}`);
        assert.equal(r.json.errcode, 'M_UNKNOWN');
      }
    });

    it('refuses decompression bombs (huge declared dimensions) with 413 M_TOO_LARGE', async () => {
      // A real 1x1 PNG whose header is rewritten to claim 60000x60000 pixels.
      const png = Buffer.from(await testImage(1, 1, 'png'));
      png.writeUInt32BE(60000, 16);
      png.writeUInt32BE(60000, 20);
      png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
      const id = await uploadOk(server, alice, png, { contentType: 'image/png' });
      const r = await thumbnail(server, alice, id, 'width=32&height=32&method=crop');
      assert.equal(r.status, 413);
      assert.equal(r.json.errcode, 'M_TOO_LARGE');
    });

    it('refuses bad parameters with 400, never 500', async () => {
      for (const [q, code] of [
        ['height=32', 'M_MISSING_PARAM'],
        ['width=32', 'M_MISSING_PARAM'],
        ['width=abc&height=32', 'M_INVALID_PARAM'],
        ['width=-1&height=32', 'M_INVALID_PARAM'],
        ['width=0&height=32', 'M_INVALID_PARAM'],
        ['width=1.5&height=32', 'M_INVALID_PARAM'],
        ['width=99999999999&height=32', 'M_INVALID_PARAM'],
        ['width=32&height=32&method=zoom', 'M_INVALID_PARAM'],
        ['width=32&height=32&animated=maybe', 'M_INVALID_PARAM'],
        ['width=32&width=64&height=32', 'M_INVALID_PARAM'],
        ['width=32&height=32&timeout_ms=soon', 'M_INVALID_PARAM'],
      ]) {
        const r = await thumbnail(server, alice, jpegId, q!);
        assert.equal(r.status, 400, `${q}: ${r.status}`);
        assert.equal(r.json.errcode, code, q);
      }
    });
  });

  describe('storage', () => {
    it('stores concurrent uploads of the same file once', async () => {
      const bytes = randomBytes(2 * MB);
      const hash = sha256(bytes);
      const ids = await Promise.all(Array.from({ length: 8 }, () => uploadOk(server, alice, bytes, { contentType: 'application/octet-stream' })));
      assert.equal(new Set(ids).size, 8);
      assert.equal(storedBlobs(server).filter((n) => n === hash).length, 1);
      assert.deepEqual(tmpFiles(server), []);
      for (const id of ids) assert.equal(sha256((await download(server, bob, id)).bytes), hash);
    });
  });

  describe('admin', () => {
    let admin: TestClient;
    before(async () => {
      admin = await registerAdmin(server, 'mediaadmin');
    });

    it('quarantines media (404 everywhere) and lifts the quarantine', async () => {
      const png = await testImage(200, 200, 'png');
      const id = await uploadOk(server, alice, png, { contentType: 'image/png' });
      const path = `/_synapse/admin/v1/media/quarantine/${server.serverName}/${id}`;
      const denied = await alice.post(path, {});
      assert.equal(denied.status, 403);
      assert.equal(denied.body.errcode, 'M_FORBIDDEN');
      assert.equal((await download(server, alice, id)).status, 200);
      const q = await admin.post(path, {});
      assert.equal(q.status, 200);
      assert.deepEqual(q.body, {});
      const d = await download(server, alice, id);
      assert.equal(d.status, 404);
      assert.equal(d.json.errcode, 'M_NOT_FOUND');
      assert.equal((await thumbnail(server, alice, id, 'width=32&height=32&method=crop')).status, 404);
      // The bytes are kept for review.
      assert.ok(storedBlobs(server).includes(sha256(png)));
      assert.equal((await admin.post(`/_synapse/admin/v1/media/unquarantine/${server.serverName}/${id}`, {})).status, 200);
      assert.ok((await download(server, alice, id)).bytes.equals(png));
      assert.equal((await admin.post(`/_synapse/admin/v1/media/quarantine/${server.serverName}/NoSuchMedia`, {})).status, 404);
    });

    it('deletes media; shared bytes stay until the last reference goes', async () => {
      const bytes = randomBytes(4096);
      const hash = sha256(bytes);
      const a = await uploadOk(server, alice, bytes);
      const b = await uploadOk(server, bob, bytes);
      const denied = await alice.delete(`/_synapse/admin/v1/media/${server.serverName}/${a}`);
      assert.equal(denied.status, 403);
      const r = await admin.delete(`/_synapse/admin/v1/media/${server.serverName}/${a}`);
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, { deleted_media: [a], total: 1 });
      assert.equal((await download(server, alice, a)).status, 404);
      assert.ok(storedBlobs(server).includes(hash));
      assert.ok((await download(server, alice, b)).bytes.equals(bytes));
      await admin.delete(`/_synapse/admin/v1/media/${server.serverName}/${b}`);
      assert.ok(!storedBlobs(server).includes(hash));
      assert.equal((await admin.delete(`/_synapse/admin/v1/media/${server.serverName}/${b}`)).status, 404);
      const remote = await admin.delete('/_synapse/admin/v1/media/matrix.org/abc');
      assert.equal(remote.status, 400);
    });

    it('deletes a media item together with its thumbnails', async () => {
      const png = await testImage(500, 500, 'png');
      const id = await uploadOk(server, alice, png, { contentType: 'image/png' });
      const t = await thumbnail(server, alice, id, 'width=32&height=32&method=crop');
      assert.ok(storedBlobs(server).includes(sha256(t.bytes)));
      await admin.delete(`/_synapse/admin/v1/media/${server.serverName}/${id}`);
      assert.ok(!storedBlobs(server).includes(sha256(t.bytes)));
      assert.ok(!storedBlobs(server).includes(sha256(png)));
    });
  });
});
