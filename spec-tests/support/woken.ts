// Helpers of the woken long-poll tests (sync-woken*.test.ts): a long-poll woken by something,
// then a full read from the same token, and which way the server answered the woken one.
import assert from 'node:assert/strict';
import { before } from 'node:test';
import type { TestClient } from './client.js';
import { twoProcesses } from './multiprocess.js';
import type { TestServer } from './server.js';
import type { WokenTally } from '../../src/sync/woken.js';
import { sync } from './sync.js';

/**
 * The answer without what differs between two reads of the same thing (event ages), and, with
 * `skipped`, without prev_batch: a woken answer starts reading after the events its empty answer
 * left out, a full read before them, so their timelines start at different positions.
 */
export function comparable(res: any, skipped = false): any {
  const copy = structuredClone(res);
  const strip = (events: any[] | undefined) => events?.forEach((e) => delete e.unsigned?.age);
  for (const section of ['join', 'leave'] as const) {
    for (const room of Object.values<any>(copy.rooms?.[section] ?? {})) {
      if (skipped) delete room.timeline?.prev_batch;
      strip(room.timeline?.events);
      strip(room.state?.events);
      strip(room.state_after?.events);
    }
  }
  return copy;
}

export async function until(cond: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !cond(); ) {
    assert.ok(Date.now() - started < 10_000, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * For the enclosing describe: two server processes on one database, without presence (a sender
 * going online would wake the long-polls too). Without `fromMemory`, woken long-polls are
 * answered from the database only.
 */
export function wokenServers(fromMemory: boolean): { readonly one: TestServer; readonly two: TestServer } {
  const servers = twoProcesses({ presence: { enabled: false } });
  if (!fromMemory) {
    before(() => {
      for (const s of [servers.one, servers.two]) s.hs.services.sync.sync.woken!.useMemory = false;
    });
  }
  return servers;
}

/** How `server` has answered woken long-polls so far. */
export const wokenAnswers = (server: TestServer) => ({ ...server.hs.services.sync.sync.woken!.answers });
/** How `server` has answered syncs continuing from the device's previous answer (their first read). */
export const continuedAnswers = (server: TestServer) => ({ ...server.hs.services.sync.sync.woken!.continued });
/** How many more answers each way `a` counts than `b`. */
export const minus = (a: WokenTally, b: WokenTally): WokenTally => ({ fromMemory: a.fromMemory - b.fromMemory, oneStatement: a.oneStatement - b.oneStatement, fullRead: a.fullRead - b.fullRead });

/**
 * `reader` long-polls from `since` (on `server`), `act` wakes it; returns the woken answer, a
 * full read from the same token, how many woken answers each way `server` gave meanwhile, and
 * (`continued`) how the long-poll's first read was answered when `since` was the token of the
 * reader's previous answer.
 */
export async function woken(server: TestServer, reader: TestClient, since: string, act: () => Promise<unknown>, params: Record<string, string> = {}) {
  const waitingBefore = server.hs.services.sync.notifier.waiting;
  const before = wokenAnswers(server);
  const continuedBefore = continuedAnswers(server);
  const polling = sync(reader, { ...params, since, timeout: '10000' });
  await until(() => server.hs.services.sync.notifier.waiting > waitingBefore, 'the long-poll to wait');
  await act();
  const res = await polling;
  const after = wokenAnswers(server);
  const continued = minus(continuedAnswers(server), continuedBefore);
  // The answer's token is now the device's last: this one is read in full.
  const fresh = await sync(reader, { ...params, since });
  return { res, fresh, ...minus(after, before), continued };
}
