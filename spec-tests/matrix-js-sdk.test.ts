// A real client library against the server: matrix-js-sdk (what Element is built on) registers
// through the UIA dummy flow, logs in, calls whoami and logs out.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { releaseProcess } from './support/sdk.js';
import { createClient, MatrixError } from 'matrix-js-sdk';
import { logger } from 'matrix-js-sdk/lib/logger.js';
import { startTestServer, type TestServer } from './support/server.js';

describe('matrix-js-sdk', () => {
  let server: TestServer;
  before(async () => {
    logger.setLevel('silent');
    server = await startTestServer();
  });
  after(() => server.stop());

  it('sees the server as a Matrix homeserver with password login', async () => {
    const client = createClient({ baseUrl: server.baseUrl });
    const versions = await client.getVersions();
    assert.ok(versions.versions.length > 0);
    const flows = await client.loginFlows();
    assert.ok(flows.flows.some((f) => f.type === 'm.login.password'));
    assert.equal(await client.isUsernameAvailable('sdk_user'), true);
  });

  it('registers with the dummy flow, logs in, calls whoami and logs out', async () => {
    const anon = createClient({ baseUrl: server.baseUrl });
    // The first call has no auth: the server answers 401 with the session and flows.
    let session: string | undefined;
    try {
      await anon.registerRequest({ username: 'sdk_user', password: 'sdk password', initial_device_display_name: 'js-sdk' });
      assert.fail('registration without auth must need UIA');
    } catch (err) {
      assert.ok(err instanceof MatrixError, String(err));
      assert.equal(err.httpStatus, 401);
      session = err.data['session'] as string;
      const flows = err.data['flows'] as { stages: string[] }[];
      assert.deepEqual(flows, [{ stages: ['m.login.dummy'] }]);
    }
    const registered = await anon.register('sdk_user', 'sdk password', session!, { type: 'm.login.dummy', session: session! });
    assert.equal(registered.user_id, `@sdk_user:${server.serverName}`);
    assert.ok(registered.access_token);

    const login = await anon.loginRequest({
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'sdk_user' },
      password: 'sdk password',
      initial_device_display_name: 'js-sdk login',
    });
    assert.equal(login.user_id, registered.user_id);
    assert.notEqual(login.device_id, registered.device_id);

    const client = createClient({ baseUrl: server.baseUrl, accessToken: login.access_token, userId: login.user_id, deviceId: login.device_id });
    const who = await client.whoami();
    assert.equal(who.user_id, login.user_id);
    assert.equal(who.device_id, login.device_id);

    await client.logout();
    const after = createClient({ baseUrl: server.baseUrl, accessToken: login.access_token, userId: login.user_id });
    await assert.rejects(after.whoami(), (err: unknown) => err instanceof MatrixError && err.errcode === 'M_UNKNOWN_TOKEN' && err.httpStatus === 401);
    // The registration's own session is unaffected by the other device's logout.
    const first = createClient({ baseUrl: server.baseUrl, accessToken: registered.access_token!, userId: registered.user_id });
    assert.equal((await first.whoami()).user_id, registered.user_id);
  });

  it('surfaces a wrong password as M_FORBIDDEN', async () => {
    const anon = createClient({ baseUrl: server.baseUrl });
    await assert.rejects(
      anon.loginRequest({ type: 'm.login.password', identifier: { type: 'm.id.user', user: 'sdk_user' }, password: 'wrong' }),
      (err: unknown) => err instanceof MatrixError && err.errcode === 'M_FORBIDDEN' && err.httpStatus === 403,
    );
  });
});

// matrix-js-sdk leaves request timers behind that would hold this file's process for ~110 s.
after(() => releaseProcess());
