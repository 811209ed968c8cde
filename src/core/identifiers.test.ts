import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isHistoricalLocalpart,
  isValidEventId,
  isValidHashRoomId,
  isValidLocalpart,
  isValidMediaId,
  isValidMxcUri,
  isValidNamespacedId,
  isValidOpaqueId,
  isValidRoomAlias,
  isValidRoomId,
  isValidServerEventId,
  isValidServerName,
  isValidServerRoomId,
  isValidUserId,
  parseMxcUri,
  parseServerName,
  serverNameOf,
  splitIdentifier,
} from './identifiers.js';

describe('server names', () => {
  test('spec examples are valid', () => {
    for (const name of ['matrix.org', 'matrix.org:8888', '1.2.3.4', '1.2.3.4:1234', '[1234:5678::abcd]', '[1234:5678::abcd]:5678']) {
      assert.ok(isValidServerName(name), name);
    }
  });

  test('parses host and port', () => {
    assert.deepEqual(parseServerName('matrix.org'), { host: 'matrix.org' });
    assert.deepEqual(parseServerName('matrix.org:8448'), { host: 'matrix.org', port: 8448 });
    assert.deepEqual(parseServerName('[::1]:8008'), { host: '[::1]', port: 8008 });
    assert.deepEqual(parseServerName('[::ffff:1.2.3.4]'), { host: '[::ffff:1.2.3.4]' });
    assert.deepEqual(parseServerName('localhost'), { host: 'localhost' });
    assert.deepEqual(parseServerName('MATRIX.ORG'), { host: 'MATRIX.ORG' });
  });

  test('invalid names', () => {
    for (const name of [
      '',
      'matrix.org:',
      'matrix.org:123456',
      'matrix.org:65536',
      'matrix.org:-1',
      'matrix.org:80:80',
      'matrix..org',
      '.matrix.org',
      'matrix.org.',
      'matrix_org',
      'mat rix.org',
      'exämple.org',
      '[1234:5678::abcd',
      '[1234:5678::abcd]:',
      '[1234:5678::abcd]x',
      '[not:an:ipv6:zz]',
      '[:::::]',
      '1234:5678::abcd',
      'a'.repeat(256),
    ]) {
      assert.ok(!isValidServerName(name), name);
    }
  });

  test('a dotted quad out of range is still a dns-name by the grammar', () => {
    assert.ok(isValidServerName('999.1.1.1'));
  });
});

describe('user ids', () => {
  test('strict grammar', () => {
    for (const id of ['@alice:example.org', '@a.b_c=d-e/f+g:example.org:8448', '@0:[::1]']) {
      assert.ok(isValidUserId(id, { strict: true }), id);
      assert.ok(isValidUserId(id), id);
    }
    for (const local of ['a', 'a.b', '0-9', 'x=y', 'x/y', 'x+y']) assert.ok(isValidLocalpart(local), local);
    for (const local of ['', 'Alice', 'a b', 'a:b', 'a#b', 'ä', 'a*b']) assert.ok(!isValidLocalpart(local), local);
  });

  test('historical localparts are accepted unless strict', () => {
    for (const id of ['@Alice:example.org', '@:example.org', '@a b\u0001c:example.org', '@日本:example.org']) {
      assert.ok(isValidUserId(id), id);
      assert.ok(!isValidUserId(id, { strict: true }), id);
    }
    assert.ok(!isHistoricalLocalpart('a\u0000b'));
    assert.ok(!isHistoricalLocalpart('\uD800'));
  });

  test('structure and length', () => {
    assert.ok(!isValidUserId('alice:example.org'));
    assert.ok(!isValidUserId('@alice'));
    assert.ok(!isValidUserId('@alice:'));
    assert.ok(!isValidUserId('@alice:bad server'));
    assert.ok(!isValidUserId('#alice:example.org'));
    // The first colon separates localpart and server name; the rest is the server name.
    assert.ok(isValidUserId('@alice:example.org:8448'));
    const server = 'example.org';
    const long = `@${'a'.repeat(255 - 2 - server.length)}:${server}`;
    assert.equal(long.length, 255);
    assert.ok(isValidUserId(long, { strict: true }));
    assert.ok(!isValidUserId(`@a${long.slice(1)}`, { strict: true }));
    // The limit is in bytes: multi-byte characters count more than once.
    assert.ok(!isValidUserId(`@${'é'.repeat(125)}:${server}`));
  });
});

describe('room aliases, room ids, event ids', () => {
  test('aliases', () => {
    assert.ok(isValidRoomAlias('#room:example.org'));
    assert.ok(isValidRoomAlias('#Räum mit Leerzeichen:example.org'));
    assert.ok(!isValidRoomAlias('#a:b:c d'));
    assert.ok(!isValidRoomAlias('!room:example.org'));
    assert.ok(!isValidRoomAlias('#room'));
    assert.ok(!isValidRoomAlias(`#${'a'.repeat(250)}:example.org`));
  });

  test('room ids with and without server part', () => {
    assert.ok(isValidServerRoomId('!abc:example.org'));
    assert.ok(isValidRoomId('!abc:example.org'));
    assert.ok(!isValidServerRoomId('!abc'));
    const hashId = '!Nhcu5BS-UMnFX7hBVfVSoXiD7OgH6iRT-xyIuqDnpYQ';
    assert.ok(isValidHashRoomId(hashId));
    assert.ok(isValidRoomId(hashId));
    assert.ok(!isValidServerRoomId(hashId));
    assert.ok(!isValidHashRoomId('!abc:example.org'));
    assert.ok(!isValidHashRoomId(`${hashId}x`));
    assert.ok(!isValidRoomId('$abc:example.org'));
  });

  test('event ids', () => {
    assert.ok(isValidServerEventId('$abc:example.org'));
    assert.ok(!isValidServerEventId('$abc'));
    assert.ok(isValidEventId('$abc'));
    assert.ok(isValidEventId('$RrGxF28UrHLmoASHndYb9Jb/1SFww2ptmtur9INS438'));
    assert.ok(!isValidEventId('$'));
    assert.ok(!isValidEventId('abc'));
    assert.ok(!isValidEventId('$a\u0000b'));
    assert.ok(!isValidEventId(`$${'a'.repeat(255)}`));
  });

  test('splitting', () => {
    assert.deepEqual(splitIdentifier('@a:b.c:80'), { sigil: '@', localpart: 'a', serverName: 'b.c:80' });
    assert.equal(serverNameOf('!r:example.org'), 'example.org');
    assert.equal(serverNameOf('!hash'), null);
  });
});

describe('media, opaque and namespaced ids', () => {
  test('mxc uris', () => {
    assert.deepEqual(parseMxcUri('mxc://example.org/AbC_12-x'), { serverName: 'example.org', mediaId: 'AbC_12-x' });
    assert.deepEqual(parseMxcUri('mxc://[::1]:8448/m'), { serverName: '[::1]:8448', mediaId: 'm' });
    for (const bad of ['mxc://example.org/', 'mxc://example.org', 'mxc:///abc', 'http://example.org/abc', 'mxc://example.org/a/b', 'mxc://example.org/a.b', 'mxc://bad host/abc']) {
      assert.ok(!isValidMxcUri(bad), bad);
    }
    assert.ok(isValidMediaId('abcXYZ019_-'));
    assert.ok(!isValidMediaId('a+b'));
    assert.ok(!isValidMediaId(''));
  });

  test('opaque ids', () => {
    assert.ok(isValidOpaqueId('aZ09-._~'));
    assert.ok(!isValidOpaqueId(''));
    assert.ok(!isValidOpaqueId('a/b'));
    assert.ok(isValidOpaqueId('a'.repeat(255)));
    assert.ok(!isValidOpaqueId('a'.repeat(256)));
  });

  test('namespaced ids', () => {
    assert.ok(isValidNamespacedId('m.login.password'));
    assert.ok(isValidNamespacedId('com.example-x_y.z9'));
    assert.ok(!isValidNamespacedId('M.login'));
    assert.ok(!isValidNamespacedId('9abc'));
    assert.ok(!isValidNamespacedId(''));
    assert.ok(!isValidNamespacedId(`a${'b'.repeat(255)}`));
  });
});
