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

/** For the enclosing describe: two servers on one database, started before its tests, stopped after. */
export function twoProcesses(): { readonly one: TestServer; readonly two: TestServer } {
  const servers = {} as { one: TestServer; two: TestServer };
  before(async () => {
    servers.one = await startTestServer();
    servers.two = await startTestServer({}, { databaseUrl: servers.one.databaseUrl });
  });
  after(async () => {
    await servers.two?.stop();
    await servers.one?.stop();
  });
  return servers;
}
