// What the room services share: built once in server.ts, passed explicitly.
import type { Database, Queryable } from '../db/pool.js';
import type { Logger } from '../logger.js';
import type { PratConfig } from '../config/schema.js';
import type { SigningKey } from '../core/signing.js';
import type { AccountService } from '../accounts/service.js';
import type { StateLookup } from '../core/auth-rules.js';
import { redactEvent } from '../core/redaction.js';
import type { RoomVersion } from '../core/room-versions.js';
import type { JsonObject, RoomEvent } from '../core/types.js';
import type { EventLoader } from './events.js';
import type { PushActionsOf } from './store/events.js';
import type { RoomLock, RoomQueue } from './queue.js';
import type { StateNids, StateStore } from './state-store.js';

export interface RoomDeps {
  db: Database;
  log: Logger;
  config: PratConfig;
  serverName: string;
  signingKey: SigningKey;
  accounts: AccountService;
  queue: RoomQueue;
  state: StateStore;
  events: EventLoader;
  /** Checks on client-sent events run under the lock before building (send-validators.ts). */
  sendValidators?: SendValidator[];
  /**
   * Push rule evaluation of a new event for the room's local members (the sync module's), run
   * under the lock before the write so its outcome is stored in the event's own transaction.
   */
  pushEvaluator?: PushEvaluator;
  /**
   * The announcement of a new event to the other server processes (the sync module's NOTIFY
   * payload around the event's stream position), sent by the event's own write statement so it
   * commits with it. Absent, or undefined for an event: listeners announce it after the commit.
   */
  announcer?: (event: RoomEvent) => Announcement | undefined;
}

/** A NOTIFY sent with the write: `pg_notify(channel, before || stream_ordering || after)`. */
export interface Announcement {
  channel: string;
  before: string;
  after: string;
}

/** What to store for each local member a new event notifies; `room` is the room's current state. */
export type PushEvaluator = (tx: Queryable, event: RoomEvent, at: { stateBefore: number | null; currentSnapshot: number | null }) => Promise<PushActionsOf[]>;

/** Refuses (throws) a client event the auth rules would allow but the client API does not. */
export type SendValidator = (d: RoomDeps, lock: RoomLock, spec: { type: string; sender: string; state_key?: string; content: JsonObject }) => Promise<void>;

/**
 * A synchronous lookup over the given (type, state_key) pairs of a state map, for the core's
 * auth functions, which read state synchronously: the events are loaded up front.
 */
export async function loadStateLookup(
  d: RoomDeps,
  db: Queryable,
  state: StateNids,
  pairs: Array<[string, string]>,
  /** Given, events known to be redacted are seen in their redacted form, as the auth rules must. */
  version?: RoomVersion,
): Promise<StateLookup> {
  const wanted = new Map<string, number>();
  for (const [type, sk] of pairs) {
    const keyNid = await d.state.keyNid(db, type, sk);
    const eventNid = keyNid === undefined ? undefined : state.get(keyNid);
    if (eventNid !== undefined) wanted.set(`${type}\u0000${sk}`, eventNid);
  }
  const loaded = await d.events.byNids(db, wanted.values());
  const byKey = new Map<string, RoomEvent>();
  for (const [k, nid] of wanted) {
    const e = loaded.get(nid);
    if (e) byKey.set(k, version && e.redactedBy !== null ? redactEvent(e.event, version) : e.event);
  }
  return (type, sk) => byKey.get(`${type}\u0000${sk}`);
}
