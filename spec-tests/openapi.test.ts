// The response-schema layer itself: if it silently accepted everything, every spec test's
// schema check would be worthless, so it is tested with bodies known to be good and bad.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findOperation, specDataDir, validateResponse } from './support/openapi.js';

const present = existsSync(join(specDataDir(), 'api', 'client-server'));

describe('OpenAPI response validation', { skip: present ? false : `spec data not found at ${specDataDir()}` }, () => {
  it('accepts a whoami body that matches the spec', () => {
    validateResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: '@a:localhost', device_id: 'ABC', is_guest: false });
  });

  it('rejects a whoami body without user_id, naming the path and the ajv error', () => {
    assert.throws(
      () => validateResponse('GET', '/_matrix/client/v3/account/whoami', 200, { device_id: 'ABC' }),
      (err: Error) => err.name === 'AssertionError' && /\/_matrix\/client\/v3\/account\/whoami/.test(err.message) && /user_id/.test(err.message),
    );
  });

  it('rejects a wrong type (is_guest as a string)', () => {
    assert.throws(() => validateResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: '@a:localhost', is_guest: 'no' }), /is_guest/);
  });

  it('checks the Matrix formats (a user id needs its sigil)', () => {
    assert.throws(() => validateResponse('GET', '/_matrix/client/v3/account/whoami', 200, { user_id: 'a:localhost' }), /format/);
  });

  it('validates error bodies against the shared error schema (refs into definitions/errors)', () => {
    validateResponse('GET', '/_matrix/client/v3/account/whoami', 401, { errcode: 'M_UNKNOWN_TOKEN', error: 'x' });
    assert.throws(() => validateResponse('GET', '/_matrix/client/v3/account/whoami', 401, { error: 'x' }), /errcode/);
  });

  it('validates the UIA 401 body of /register (refs to auth_response.yaml)', () => {
    validateResponse('POST', '/_matrix/client/v3/register', 401, { flows: [{ stages: ['m.login.dummy'] }], params: {}, session: 's' });
    assert.throws(
      () => validateResponse('POST', '/_matrix/client/v3/register', 401, { flows: [{ stages: 'm.login.dummy' }], session: 's' }),
      /stages/,
    );
  });

  it('checks token errors of UIA endpoints against the standard error schema', () => {
    // DELETE /devices/{deviceId} documents its 401 as the UIA body only.
    validateResponse('DELETE', '/_matrix/client/v3/devices/X', 401, { errcode: 'M_MISSING_TOKEN', error: 'Missing access token' });
    assert.throws(() => validateResponse('DELETE', '/_matrix/client/v3/devices/X', 401, { errcode: 'M_FORBIDDEN', error: 'x' }), /flows/);
    assert.throws(() => validateResponse('DELETE', '/_matrix/client/v3/devices/X', 401, { errcode: 'M_UNKNOWN_TOKEN', error: 5 }), /error/);
  });

  it('matches path templates with parameters, strips the query, and reads r0 as v3', () => {
    assert.equal(findOperation('GET', '/_matrix/client/v3/devices/ABCDEF')?.template, '/_matrix/client/v3/devices/{deviceId}');
    assert.equal(findOperation('GET', '/_matrix/client/r0/account/whoami?access_token=x')?.template, '/_matrix/client/v3/account/whoami');
    assert.throws(() => validateResponse('GET', '/_matrix/client/r0/devices/ABC?x=1', 200, { display_name: 'no id' }), /device_id/);
    validateResponse('GET', '/_matrix/client/r0/devices/ABC?x=1', 200, { device_id: 'ABC', display_name: 'phone' });
  });

  it('resolves refs into the event schemas (client events in /messages)', () => {
    const path = '/_matrix/client/v3/rooms/!room:localhost/messages';
    assert.ok(findOperation('GET', path));
    const event = { type: 'm.room.message', content: { body: 'hi' }, event_id: '$e', sender: '@a:localhost', origin_server_ts: 1, room_id: '!room:localhost' };
    validateResponse('GET', path, 200, { start: 't1', chunk: [event] });
    const { sender: _s, ...noSender } = event;
    assert.throws(() => validateResponse('GET', path, 200, { start: 't1', chunk: [noSender] }), /sender/);
  });

  it('lets undocumented endpoints through unchecked', () => {
    assert.equal(findOperation('GET', '/_synapse/admin/v1/server_version'), undefined);
    validateResponse('GET', '/_synapse/admin/v1/server_version', 200, 42);
  });
});
