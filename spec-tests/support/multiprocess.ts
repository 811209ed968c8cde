// Two server processes on one database (the spec-tests of what crosses processes: NOTIFY wake-ups,
// cache invalidation, concurrent writers).
import { after, before } from 'node:test';
import { TestClient } from './client.js';
import { startTestServer, type TestServer } from './server.js';

/** The same user and token, speaking to another server process. */
export function via(server: TestServer, c: TestClient): TestClient {
  const other = new TestClient(server.baseUrl);
  other.token = c.token;
  other.userId = c.userId;
  other.deviceId = c.deviceId;
  return other;
}

/** Another device of `c`'s user (a password login), speaking to `server`. */
export async function secondDevice(server: TestServer, c: TestClient): Promise<TestClient> {
  const login = await c.post('/_matrix/client/v3/login', { type: 'm.login.password', identifier: { type: 'm.id.user', user: c.userId }, password: c.password });
  if (login.status !== 200) throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  const other = via(server, c);
  other.token = login.body.access_token;
  other.deviceId = login.body.device_id;
  return other;
}

/**
 * For the enclosing describe: two servers on one database, started before its tests (with the
 * same configuration overrides), stopped after.
 */
export function twoProcesses(overrides: Record<string, unknown> = {}): { readonly one: TestServer; readonly two: TestServer } {
  const servers = {} as { one: TestServer; two: TestServer };
  before(async () => {
    servers.one = await startTestServer(overrides);
    servers.two = await startTestServer(overrides, { databaseUrl: servers.one.databaseUrl });
  });
  after(async () => {
    await servers.two?.stop();
    await servers.one?.stop();
  });
  return servers;
}
