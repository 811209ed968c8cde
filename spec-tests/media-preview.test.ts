// URL previews against a tiny local web server. The preview server allows 127.0.0.1 explicitly
// (the only way a test can reach a page); a second server with the defaults shows that private,
// loopback and link-local addresses are refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import type { TestClient } from './support/client.js';
import { dimensions, download, rawFetch, testImage } from './support/media.js';

interface Site {
  base: string;
  hits: Map<string, number>;
  close(): Promise<void>;
}

async function startSite(image: Buffer, bigImage: Buffer): Promise<Site> {
  const hits = new Map<string, number>();
  const pending: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    const path = req.url ?? '/';
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const html = (body: string, type = 'text/html; charset=utf-8') => {
      res.writeHead(200, { 'Content-Type': type });
      res.end(body);
    };
    switch (path) {
      case '/page':
        return html(`<!doctype html><html><head>
          <meta property="og:title" content="Prat &amp; friends">
          <meta property='og:description' content='A homeserver &mdash; in TypeScript'>
          <meta property="og:image" content="/img.png">
          <meta property="og:type" content="website">
          <!-- <meta property="og:title" content="commented out"> -->
          <title>Fallback title</title></head><body>hi</body></html>`);
      case '/plain':
        // Latin-1 bytes, declared in the header: "Café" must come back as UTF-8.
        res.writeHead(200, { 'Content-Type': 'text/html; charset=iso-8859-1' });
        return res.end(Buffer.from('<html><head><title>Caf\xe9   menu</title><meta name="description" content="Open &#8220;late&#8221;"></head></html>', 'latin1'));
      case '/img.png':
        res.writeHead(200, { 'Content-Type': 'image/png' });
        return res.end(image);
      case '/photo':
        res.writeHead(200, { 'Content-Type': 'image/png' });
        return res.end(image);
      case '/big-image-page':
        return html('<html><head><meta property="og:title" content="Big"><meta property="og:image" content="/big.png"></head></html>');
      case '/big.png':
        res.writeHead(200, { 'Content-Type': 'image/png' });
        return res.end(bigImage);
      case '/long':
        // Tags first, then far more than max_page_size of body: the head is enough.
        return html(`<html><head><meta property="og:title" content="Long page"></head><body>${'x'.repeat(300_000)}</body></html>`);
      case '/redirect':
        res.writeHead(302, { Location: '/page' });
        return res.end();
      case '/redirect-private':
        res.writeHead(302, { Location: `http://[::1]:${(server.address() as AddressInfo).port}/page` });
        return res.end();
      case '/redirect-metadata':
        res.writeHead(301, { Location: 'http://169.254.169.254/latest/meta-data/' });
        return res.end();
      case '/text':
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        return res.end('plain text');
      case '/slow':
        // Never answers: the preview must give up at its timeout.
        pending.push(res);
        return;
      case '/missing':
        res.writeHead(404);
        return res.end();
      default:
        res.writeHead(500);
        return res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((r) => {
        for (const res of pending) res.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

function preview(server: TestServer, client: TestClient, url: string, version: 'client' | 'legacy' = 'client') {
  const path = version === 'client' ? '/_matrix/client/v1/media/preview_url' : '/_matrix/media/v3/preview_url';
  return rawFetch(`${server.baseUrl}${path}?url=${encodeURIComponent(url)}`, { token: client.token });
}

describe('URL previews', () => {
  let site: Site;
  let image: Buffer;
  let server: TestServer;
  let alice: TestClient;
  before(async () => {
    image = await testImage(120, 60, 'png');
    site = await startSite(image, await testImage(400, 400, 'png'));
    server = await startTestServer({
      media: { url_preview: { ip_range_allowlist: ['127.0.0.1/32'], timeout_ms: 1500, max_page_size: 64 * 1024 } },
    });
    alice = await server.register();
  });
  after(async () => {
    await server.stop();
    await site.close();
  });

  it('previews a page from its Open Graph tags and stores its image', async () => {
    const r = await preview(server, alice, `${site.base}/page`);
    assert.equal(r.status, 200, r.bytes.toString());
    assert.equal(r.json['og:title'], 'Prat & friends');
    // &mdash; is not among the decoded entities: kept as written rather than guessed.
    assert.equal(r.json['og:description'], 'A homeserver &mdash; in TypeScript');
    assert.equal(r.json['og:type'], 'website');
    assert.match(r.json['og:image'], new RegExp(`^mxc://${server.serverName}/[A-Za-z0-9_-]+$`));
    assert.equal(r.json['og:image:type'], 'image/png');
    assert.equal(r.json['og:image:width'], 120);
    assert.equal(r.json['og:image:height'], 60);
    assert.equal(r.json['matrix:image:size'], image.length);
    const stored = await download(server, alice, r.json['og:image'].split('/').pop());
    assert.equal(stored.status, 200);
    assert.ok(stored.bytes.equals(image));
  });

  it('serves the cached preview without fetching again', async () => {
    const before = site.hits.get('/page') ?? 0;
    const a = await preview(server, alice, `${site.base}/page`);
    const b = await preview(server, alice, `${site.base}/page`, 'legacy');
    assert.equal(site.hits.get('/page') ?? 0, before);
    assert.deepEqual(a.json, b.json);
    assert.ok(before >= 1);
  });

  it('falls back to <title> and the meta description, honouring the charset', async () => {
    const r = await preview(server, alice, `${site.base}/plain`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { 'og:title': 'Café menu', 'og:description': 'Open “late”' });
  });

  it('follows redirects', async () => {
    const r = await preview(server, alice, `${site.base}/redirect`);
    assert.equal(r.json['og:title'], 'Prat & friends');
  });

  it('previews an image URL as an image', async () => {
    const r = await preview(server, alice, `${site.base}/photo`);
    assert.equal(r.status, 200);
    assert.equal(r.json['og:image:width'], 120);
    const t = await rawFetch(
      `${server.baseUrl}/_matrix/client/v1/media/thumbnail/${server.serverName}/${r.json['og:image'].split('/').pop()}?width=32&height=32&method=crop`,
      { token: alice.token },
    );
    assert.deepEqual([(await dimensions(t.bytes)).width, (await dimensions(t.bytes)).height], [32, 32]);
  });

  it('cuts a page at max_page_size and still reads its head', async () => {
    const r = await preview(server, alice, `${site.base}/long`);
    assert.equal(r.status, 200);
    assert.equal(r.json['og:title'], 'Long page');
  });

  it('leaves out an image over the size limit', async () => {
    const r = await preview(server, alice, `${site.base}/big-image-page`);
    assert.equal(r.status, 200);
    assert.equal(r.json['og:title'], 'Big');
    assert.equal(r.json['og:image'], undefined);
  });

  it('answers {} for content it cannot preview', async () => {
    const r = await preview(server, alice, `${site.base}/text`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, {});
  });

  it('gives up on a slow page at the timeout (502)', async () => {
    const started = Date.now();
    const r = await preview(server, alice, `${site.base}/slow`);
    assert.equal(r.status, 502);
    assert.ok(Date.now() - started < 5000);
  });

  it('answers 502 for a page that fails', async () => {
    const r = await preview(server, alice, `${site.base}/missing`);
    assert.equal(r.status, 502);
  });

  it('refuses redirects to addresses outside the allow list', async () => {
    for (const path of ['/redirect-private', '/redirect-metadata']) {
      const r = await preview(server, alice, `${site.base}${path}`);
      assert.equal(r.status, 403, path);
      assert.equal(r.json.errcode, 'M_FORBIDDEN');
    }
  });

  it('refuses malformed and non-http URLs with 400', async () => {
    for (const url of ['not a url', 'file:///etc/passwd', 'ftp://example.org/', 'http://user:pw@example.org/', 'javascript:alert(1)']) {
      const r = await preview(server, alice, url);
      assert.equal(r.status, 400, url);
      assert.equal(r.json.errcode, 'M_INVALID_PARAM');
    }
    const missing = await rawFetch(`${server.baseUrl}/_matrix/client/v1/media/preview_url`, { token: alice.token });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.errcode, 'M_MISSING_PARAM');
  });
});

describe('URL previews with the default address policy', () => {
  let site: Site;
  let server: TestServer;
  let alice: TestClient;
  before(async () => {
    site = await startSite(await testImage(10, 10, 'png'), Buffer.alloc(0));
    server = await startTestServer();
    alice = await server.register();
  });
  after(async () => {
    await server.stop();
    await site.close();
  });

  it('refuses loopback, private, link-local and other non-public addresses without connecting', async () => {
    const port = new URL(site.base).port;
    for (const url of [
      `${site.base}/page`,
      `http://127.1.2.3:${port}/page`,
      `http://[::1]:${port}/page`,
      `http://[::ffff:127.0.0.1]:${port}/page`,
      'http://10.0.0.1/',
      'http://172.16.5.4/',
      'http://192.168.1.1/',
      'http://169.254.169.254/latest/meta-data/',
      'http://100.64.0.1/',
      'http://0.0.0.0/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://2130706433/',
    ]) {
      const r = await preview(server, alice, url);
      assert.equal(r.status, 403, `${url}: ${r.status} ${r.bytes.toString()}`);
      assert.equal(r.json.errcode, 'M_FORBIDDEN');
    }
    assert.equal(site.hits.size, 0, 'the local site was never contacted');
  });

  it('is not served when disabled', async () => {
    const off = await startTestServer({ media: { url_preview: { enabled: false } } });
    try {
      const bob = await off.register();
      const r = await preview(off, bob, 'https://example.org/');
      assert.equal(r.status, 404);
      assert.equal(r.json.errcode, 'M_UNRECOGNIZED');
    } finally {
      await off.stop();
    }
  });
});
