// Access tokens are cached by every process (src/accounts/token-cache.ts). A token revoked
// through one process must stop working on the others: the database announces the revocation
// (a trigger, NOTIFY prat_auth) and each process drops the user's cached tokens. In the process
// that revoked it, at once; in the others, as soon as the announcement arrives.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TestClient } from './support/client.js';
import { twoProcesses, via } from './support/multiprocess.js';

const whoami = (c: TestClient) => c.get('/_matrix/client/v3/account/whoami');

/** The token stops working within `ms` (the other process hears of it through NOTIFY). */
async function refusedWithin(c: TestClient, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    const r = await whoami(c);
    if (r.status === 401) {
      assert.equal(r.body.errcode, 'M_UNKNOWN_TOKEN');
      return;
    }
    if (Date.now() > until) assert.fail(`still accepted after ${ms} ms`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('access tokens across two server processes', () => {
  const servers = twoProcesses();

  it('refuses a token logged out through the other process', async () => {
    const alice = await servers.one.register();
    const aliceOnTwo = via(servers.two, alice);
    assert.equal((await whoami(alice)).status, 200);
    assert.equal((await whoami(aliceOnTwo)).status, 200);
    assert.equal((await aliceOnTwo.post('/_matrix/client/v3/logout', {})).status, 200);
    // The process that logged out refuses it at once; the other within moments.
    assert.equal((await whoami(aliceOnTwo)).status, 401);
    await refusedWithin(alice, 2000);
  });

  it('refuses the tokens of a device deleted, and of a user deactivated, through the other process', async () => {
    const bob = await servers.one.register();
    const login = await servers.one.anon().post('/_matrix/client/v3/login', {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: bob.userId },
      password: bob.password,
    });
    const laptop = new TestClient(servers.one.baseUrl);
    laptop.token = login.body.access_token;
    laptop.userId = bob.userId;
    laptop.deviceId = login.body.device_id;
    assert.equal((await whoami(laptop)).status, 200);

    const auth = { type: 'm.login.password', identifier: { type: 'm.id.user', user: bob.userId }, password: bob.password };
    const bobOnTwo = via(servers.two, bob);
    const first = await bobOnTwo.delete(`/_matrix/client/v3/devices/${encodeURIComponent(laptop.deviceId)}`, {});
    assert.equal(first.status, 401);
    const deleted = await bobOnTwo.delete(`/_matrix/client/v3/devices/${encodeURIComponent(laptop.deviceId)}`, { auth: { ...auth, session: first.body.session } });
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    await refusedWithin(laptop, 2000);
    assert.equal((await whoami(bob)).status, 200, 'the other device still works');

    const start = await bobOnTwo.post('/_matrix/client/v3/account/deactivate', {});
    const done = await bobOnTwo.post('/_matrix/client/v3/account/deactivate', { auth: { ...auth, session: start.body.session } });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    await refusedWithin(bob, 2000);
  });
});
