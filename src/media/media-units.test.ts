// Unit tests of the media repository's pure parts: identifier grammar, Content-Disposition,
// thumbnail size selection, the SSRF address policy, and the HTML preview parser.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { contentDisposition, isInlineSafe, isValidMediaId, isValidServerName, newMediaId, normaliseUploadContentType } from './ids.js';
import { AddressPolicy, htmlCharset, parseHtmlPreview, safeFetch } from './preview.js';
import { outputSize, selectSize, type ThumbnailSize } from './thumbnailer.js';

describe('media ids and server names', () => {
  it('accepts the spec grammar and nothing else', () => {
    for (const ok of ['abc', 'A-b_9', 'x'.repeat(255)]) assert.ok(isValidMediaId(ok), ok);
    for (const bad of ['', '..', 'a/b', 'a.b', 'a%2Fb', 'a\u0000', 'é', 'x'.repeat(256), 'a b']) assert.ok(!isValidMediaId(bad), bad);
    for (const ok of ['localhost', 'example.org', 'example.org:8448', '1.2.3.4', '1.2.3.4:80', '[::1]', '[2001:db8::1]:8448', 'a-b.c']) {
      assert.ok(isValidServerName(ok), ok);
    }
    for (const bad of ['', 'exa mple.org', 'a/b', '..%2F', '[::1', '[nope]', 'host:', 'host:99999', 'host:12a', 'a_b.org', '[::1]x', 'é.org']) {
      assert.ok(!isValidServerName(bad), bad);
    }
  });

  it('makes 24-character alphanumeric ids, all different', () => {
    const ids = new Set(Array.from({ length: 1000 }, newMediaId));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9]{24}$/);
  });

  it('normalises upload content types', () => {
    assert.equal(normaliseUploadContentType(undefined), 'application/octet-stream');
    assert.equal(normaliseUploadContentType(''), 'application/octet-stream');
    assert.equal(normaliseUploadContentType('text/plain; charset=utf-8'), 'text/plain; charset=utf-8');
    assert.equal(normaliseUploadContentType('text/plain\r\nX-Evil: 1'), null);
    assert.equal(normaliseUploadContentType('nonsense'), null);
  });

  it('serves inline only the spec list of safe types', () => {
    assert.ok(isInlineSafe('image/png'));
    assert.ok(isInlineSafe('TEXT/PLAIN; charset=utf-8'));
    for (const t of ['text/html', 'image/svg+xml', 'application/javascript', 'application/pdf', null]) assert.ok(!isInlineSafe(t), String(t));
  });

  it('writes RFC 6266 Content-Disposition values', () => {
    assert.equal(contentDisposition('inline', null), 'inline');
    assert.equal(contentDisposition('attachment', 'a b.txt'), 'attachment; filename="a b.txt"');
    assert.equal(contentDisposition('attachment', 'naïve.txt'), "attachment; filename*=utf-8''na%C3%AFve.txt");
    assert.equal(contentDisposition('attachment', "it's (1).txt"), "attachment; filename=\"it's (1).txt\"");
    assert.equal(contentDisposition('attachment', 'q"uote.txt'), "attachment; filename*=utf-8''q%22uote.txt");
    assert.equal(contentDisposition('inline', 'a\r\nb/c'), 'inline; filename="ab_c"');
  });
});

describe('thumbnail sizes', () => {
  const sizes: ThumbnailSize[] = [
    { width: 32, height: 32, method: 'crop' },
    { width: 96, height: 96, method: 'crop' },
    { width: 320, height: 240, method: 'scale' },
    { width: 640, height: 480, method: 'scale' },
    { width: 800, height: 600, method: 'scale' },
  ];

  it('computes output sizes without upscaling', () => {
    assert.deepEqual(outputSize({ width: 1000, height: 500 }, { width: 320, height: 240, method: 'scale' }), { width: 320, height: 160 });
    assert.deepEqual(outputSize({ width: 100, height: 50 }, { width: 320, height: 240, method: 'scale' }), { width: 100, height: 50 });
    assert.deepEqual(outputSize({ width: 1000, height: 500 }, { width: 96, height: 96, method: 'crop' }), { width: 96, height: 96 });
    // Smaller than the box: the largest region of the box's aspect, at 1:1.
    assert.deepEqual(outputSize({ width: 60, height: 40 }, { width: 96, height: 96, method: 'crop' }), { width: 40, height: 40 });
  });

  it('picks the smallest size at least as large as asked', () => {
    const src = { width: 2000, height: 1000 };
    const pick = (width: number, height: number, method: 'crop' | 'scale') => selectSize(sizes, src, { width, height, method });
    assert.deepEqual(pick(32, 32, 'crop'), sizes[0]);
    assert.deepEqual(pick(33, 20, 'crop'), sizes[1]);
    // Scale: compared as displayed (fitted inside the asked box): 400x300 needs 400x200.
    assert.deepEqual(pick(400, 300, 'scale'), sizes[3]);
    assert.deepEqual(pick(320, 240, 'scale'), sizes[2]);
    // Nothing large enough: the largest of the method.
    assert.deepEqual(pick(1500, 1500, 'scale'), sizes[4]);
    assert.deepEqual(selectSize([], src, { width: 1, height: 1, method: 'crop' }), undefined);
  });
});

describe('URL preview address policy', () => {
  const policy = new AddressPolicy([]);

  it('refuses non-public addresses and allows public ones', () => {
    for (const bad of ['127.0.0.1', '10.1.2.3', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.1.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd12::1', '::ffff:10.0.0.1', '::ffff:127.0.0.1', '64:ff9b::a00:1', 'not an ip']) {
      assert.ok(!policy.allows(bad), bad);
    }
    for (const ok of ['93.184.216.34', '1.1.1.1', '172.32.0.1', '2606:4700:4700::1111', '::ffff:1.1.1.1']) assert.ok(policy.allows(ok), ok);
  });

  it('lets the allow list open ranges and the block list close more', () => {
    const p = new AddressPolicy(['127.0.0.1/32', '10.5.0.0/16'], ['1.1.1.0/24']);
    assert.ok(p.allows('127.0.0.1'));
    assert.ok(!p.allows('127.0.0.2'));
    assert.ok(p.allows('10.5.9.9'));
    assert.ok(!p.allows('10.6.0.1'));
    assert.ok(!p.allows('1.1.1.1'));
    assert.throws(() => new AddressPolicy(['not/a/range']), /not an IP range/);
    assert.throws(() => new AddressPolicy(['10.0.0.0/40']), /not an IP range/);
  });

  it('refuses a host when any of its addresses is not allowed, before connecting', async () => {
    const resolved: string[] = [];
    const resolver = async (host: string) => {
      resolved.push(host);
      return [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ];
    };
    await assert.rejects(
      safeFetch(new URL('http://mixed.example/'), { policy, maxBytes: 1000, signal: AbortSignal.timeout(2000), resolver }),
      (err: Error) => err.name === 'BlockedAddressError' && /10\.0\.0\.7/.test(err.message),
    );
    assert.deepEqual(resolved, ['mixed.example']);
  });
});

describe('HTML preview parser', () => {
  const base = new URL('https://example.org/articles/1');

  it('reads og tags in either attribute order and quoting, decoding entities', () => {
    const og = parseHtmlPreview(
      `<meta content="T &amp; U" property="og:title"><meta property=og:site_name content=Site>
       <META PROPERTY='og:description' CONTENT='&#8220;quoted&#x201D;'><meta property="og:image" content="../img/a.png">`,
      base,
    );
    assert.deepEqual(og, { 'og:title': 'T & U', 'og:site_name': 'Site', 'og:description': '“quoted”', 'og:image': 'https://example.org/img/a.png' });
  });

  it('ignores comments and scripts, falls back to title, description and twitter:image', () => {
    const og = parseHtmlPreview(
      `<!-- <meta property="og:title" content="no"> --><script>var s = '<meta property="og:title" content="no">';</script>
       <title>  The
       Title </title><meta name="description" content="Desc"><meta name="twitter:image" content="//cdn.example.org/t.jpg">`,
      base,
    );
    assert.deepEqual(og, { 'og:title': 'The Title', 'og:description': 'Desc', 'og:image': 'https://cdn.example.org/t.jpg' });
  });

  it('drops non-http image URLs and bounds long values', () => {
    const og = parseHtmlPreview(`<meta property="og:image" content="javascript:alert(1)"><meta property="og:description" content="${'d'.repeat(2000)}">`, base);
    assert.equal(og['og:image'], undefined);
    assert.equal(og['og:description']!.length, 500);
  });

  it('finds the charset in the header or a meta tag', () => {
    assert.equal(htmlCharset('text/html; charset=ISO-8859-1', Buffer.from('')), 'ISO-8859-1');
    assert.equal(htmlCharset('text/html', Buffer.from('<meta charset="windows-1252">')), 'windows-1252');
    assert.equal(htmlCharset('text/html', Buffer.from('<meta http-equiv="Content-Type" content="text/html; charset=shift_jis">')), 'shift_jis');
    assert.equal(htmlCharset('text/html', Buffer.from('<p>')), 'utf-8');
  });
});
