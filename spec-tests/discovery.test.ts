import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';

describe('discovery', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ well_known: { server: 'matrix.example.com:443' } });
  });
  after(() => server.stop());

  it('lists each supported spec version separately', async () => {
    const r = await server.anon().get('/_matrix/client/versions');
    assert.equal(r.status, 200);
    assert.ok(Array.isArray(r.body.versions));
    assert.ok(r.body.versions.includes('v1.1'));
    for (const v of r.body.versions) assert.match(v, /^(r0\.\d+\.\d+|v1\.\d+)$/);
  });

  it('serves /.well-known/matrix/client with the public base URL', async () => {
    const r = await server.anon().get('/.well-known/matrix/client');
    assert.equal(r.status, 200);
    assert.equal(r.body['m.homeserver'].base_url, 'http://localhost:8008');
  });

  it('serves /.well-known/matrix/server from config', async () => {
    const r = await server.anon().get('/.well-known/matrix/server');
    assert.deepEqual(r.body, { 'm.server': 'matrix.example.com:443' });
  });

  it('answers capabilities with the room versions and default 11', async () => {
    const alice = await server.register();
    const r = await alice.get('/_matrix/client/v3/capabilities');
    assert.equal(r.status, 200);
    const versions = r.body.capabilities['m.room_versions'];
    assert.equal(versions.default, '11');
    assert.deepEqual(Object.keys(versions.available).sort((a, b) => +a - +b), ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '11', '12']);
    assert.equal(r.body.capabilities['m.change_password'].enabled, true);
    assert.equal(r.body.capabilities['m.3pid_changes'].enabled, false);
    // Profile changes are served (account tests exercise them), so they are advertised.
    assert.equal(r.body.capabilities['m.set_displayname'].enabled, true);
    assert.equal(r.body.capabilities['m.set_avatar_url'].enabled, true);
  });

  it('serves the same capabilities under r0 and to guests', async () => {
    const guest = await server.anon().post('/_matrix/client/v3/register?kind=guest', {});
    const r = await server.anon().get('/_matrix/client/r0/capabilities', { token: guest.body.access_token });
    assert.equal(r.status, 200);
    assert.equal(r.body.capabilities['m.change_password'].enabled, true);
  });

  it('refuses capabilities without a token', async () => {
    const r = await server.anon().get('/_matrix/client/v3/capabilities');
    assert.equal(r.status, 401);
    assert.equal(r.body.errcode, 'M_MISSING_TOKEN');
  });

  it('answers auth_metadata with 404 M_UNRECOGNIZED so clients use password login', async () => {
    const r = await server.anon().get('/_matrix/client/v1/auth_metadata');
    assert.equal(r.status, 404);
    assert.equal(r.body.errcode, 'M_UNRECOGNIZED');
  });

  it('answers an unknown endpoint 404 M_UNRECOGNIZED and a wrong method 405 M_UNRECOGNIZED', async () => {
    const unknown = await server.anon().get('/_matrix/client/v3/no_such_thing');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.errcode, 'M_UNRECOGNIZED');
    const wrong = await server.anon().request('PATCH', '/_matrix/client/versions');
    assert.equal(wrong.status, 405);
    assert.equal(wrong.body.errcode, 'M_UNRECOGNIZED');
  });

  it('answers CORS preflights and puts CORS headers on every response', async () => {
    const pre = await fetch(`${server.baseUrl}/_matrix/client/v3/login`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.element.io', 'Access-Control-Request-Method': 'POST' },
    });
    assert.ok(pre.status === 200 || pre.status === 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), '*');
    assert.match(pre.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    const r = await server.anon().get('/_matrix/client/v3/no_such_thing');
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
  });

  it('serves the signed server key with valid_until_ts', async () => {
    const r = await server.anon().get('/_matrix/key/v2/server');
    assert.equal(r.status, 200);
    assert.equal(r.body.server_name, 'localhost');
    assert.ok(r.body.valid_until_ts > Date.now());
    assert.equal(Object.keys(r.body.verify_keys).length, 1);
    assert.ok(r.body.signatures.localhost);
  });

  it('serves Prometheus metrics', async () => {
    const r = await server.anon().get('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.text, /process_cpu_user_seconds_total/);
  });
});
