// The statement that opens every sync's snapshot (the streams' positions, sent with BEGIN) is
// prepared once per connection (src/sync/store/snapshot.ts): a server with one connection runs
// syncs one after the other on it, and holds the statement once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestServer, type TestServer } from './support/server.js';
import { send, sharedRoom, sync } from './support/sync.js';

describe('sync: the snapshot positions statement', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ presence: { enabled: false }, database: { url: 'postgres://unused', max_connections: 1 } });
  });
  after(() => server.stop());

  it('is prepared once on a connection and executed by every sync after', async () => {
    const alice = await server.register();
    const roomId = await sharedRoom(alice);
    let since = (await sync(alice)).next_batch;
    for (const body of ['one', 'two', 'three']) {
      await send(alice, roomId, { msgtype: 'm.text', body });
      const res = await sync(alice, { since });
      assert.deepEqual(res.rooms.join[roomId].timeline.events.map((e: any) => e.content.body), [body]);
      since = res.next_batch;
    }
    // The pool's one connection: its prepared statements.
    const r = await server.hs.services.db.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name LIKE 'sync_first_%'");
    assert.equal(r.rows[0]!.n, 1);
  });
});
