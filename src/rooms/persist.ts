// The one persistence path for events, local and (later) remote. Runs under the room's lock:
//  1. state before the event: the state after its prev event, or the resolution of the states
//     after each of its prev events when the DAG forks;
//  2. the auth rules, against that state (core checkEventAuth);
//  3. state after: the state before plus the event itself if it is a state event;
//  4. event, edges, stream position, state snapshot, forward extremities, current state,
//     memberships and the client's transaction id, all in the lock's transaction.
// Listeners hear about the events after the commit (RoomQueue).
import { checkEventAuth, domainOf, referenceId, type StateLookup } from '../core/auth-rules.js';
import { authEventTypesFor } from '../core/auth-events.js';
import { currentPowerLevels, userPowerLevel } from '../core/power-levels.js';
import { resolveState } from '../core/state-res/resolve.js';
import { splitStateKey, stateKey, type RoomEvent, type StateMap } from '../core/types.js';
import type { Queryable } from '../db/pool.js';
import { MatrixError } from '../http/errors.js';
import { loadStateLookup, type RoomDeps } from './context.js';
import type { StoredEvent } from './events.js';
import { STREAM_LOCK, type PersistedEvent, type RoomLock } from './queue.js';
import type { StateNids } from './state-store.js';
import * as eventsSql from './store/events.js';
import * as membershipsSql from './store/memberships.js';
import * as roomsSql from './store/rooms.js';

/**
 * The client transaction id was already used: nothing was written; `eventId` is the event the
 * first attempt produced. Caught by the sender (send.ts), never seen by the queue.
 */
export class DuplicateTransaction extends Error {
  override name = 'DuplicateTransaction';
  constructor(readonly eventId: string) {
    super(`transaction already produced ${eventId}`);
  }
}

export interface PersistOptions {
  /** The client transaction that produced the event, recorded for idempotent retries. */
  txn?: roomsSql.TxnKey;
  /**
   * What to do when the auth rules refuse the event: 'throw' (local events: the client gets
   * 403 with the reason) or 'store' (remote events: kept, flagged rejected, never in state).
   */
  onRejected?: 'throw' | 'store';
}

const isMember = (e: RoomEvent) => e.type === 'm.room.member' && typeof e.state_key === 'string';

/** The (type, state_key) pairs the auth rules may read for this event. */
export function authPairs(event: RoomEvent | { type: string; sender: string; state_key?: string; content: RoomEvent['content'] }, lock: RoomLock): Array<[string, string]> {
  return [['m.room.create', ''], ...authEventTypesFor(event, lock.room.version)];
}

export async function persistEvent(d: RoomDeps, lock: RoomLock, event: RoomEvent, opts: PersistOptions = {}): Promise<PersistedEvent> {
  const { tx, room } = lock;
  if (event.room_id !== room.roomId) throw new Error(`event for ${event.room_id} persisted under the lock of ${room.roomId}`);
  // The one-statement path commits the event with its write: nothing may be written after it.
  if (lock.oneStatement && (typeof event.state_key === 'string' || event.type === 'm.room.redaction' || lock.persisted.length > 0)) {
    throw new Error(`${event.type} cannot be persisted by the one-statement path`);
  }

  // 1. State before the event.
  const prevIds = event.prev_events.map(referenceId);
  const prevNids = await d.events.nidsOf(tx, prevIds);
  const prevs = await d.events.byNids(tx, prevNids.values());
  if (prevs.size !== new Set(prevIds).size) {
    // Fetching missing prev events is the federation intake's job, before it gets here.
    throw new Error(`event ${event.event_id} cites prev events this server does not have`);
  }
  const prevSnapshots = [...prevs.values()].map((p) => (p.rejected ? p.stateBefore : p.stateAfter));
  const stateBefore = await stateAfterAll(d, lock, prevSnapshots);
  const before: StateNids = stateBefore === null ? new Map() : await d.state.load(tx, stateBefore);

  // 2. Auth against the state before.
  const lookup = await loadStateLookup(d, tx, before, authPairs(event, lock), room.version);
  const verdict = checkEventAuth(event, lookup, room.version);
  let rejectedReason: string | null = null;
  if (!verdict.allowed) {
    if ((opts.onRejected ?? 'throw') === 'throw') throw new MatrixError('M_FORBIDDEN', verdict.reason);
    rejectedReason = verdict.reason;
  }

  // 3. The state after. A state event needs its nid before the write (the snapshot holds
  // it); other events are interned by the write itself.
  let stateKeyNid: number | null = null;
  let stateAfter = stateBefore;
  let replacesNid: number | null = null;
  if (typeof event.state_key === 'string') {
    const nid = (await eventsSql.internEventIds(tx, [event.event_id])).get(event.event_id)!;
    [stateKeyNid] = await d.state.internKeys(tx, [[event.type, event.state_key]]);
    replacesNid = before.get(stateKeyNid!) ?? null;
    if (rejectedReason === null) {
      // `fresh`: the new event's nid is in no snapshot yet, so no equal snapshot can exist.
      stateAfter = await d.state.create(tx, room.roomNid, stateBefore, new Map([[stateKeyNid!, nid]]), { fresh: true });
    }
  }

  // The announcement to other processes, sent by the write (an accepted event only).
  const announcement = rejectedReason === null ? d.announcer?.(event) : undefined;
  // Push actions of the local members, stored by the write (an accepted event only).
  const pushActions = rejectedReason === null && d.pushEvaluator ? await d.pushEvaluator(tx, event, { stateBefore, currentSnapshot: room.currentSnapshot }) : [];

  // 4. Write: one statement for the event, its edges, stream position, txn id, push actions,
  // extremities (in a batch of messages, one statement for all of them: MessageBatch).
  const depth = event.depth;
  const prevNidList = prevIds.map((id) => prevNids.get(id)!);
  if (opts.txn && typeof event.state_key === 'string') throw new Error('transaction ids are for non-state events only');
  if (lock.batch) {
    if (typeof event.state_key === 'string' || event.type === 'm.room.redaction' || rejectedReason !== null) {
      throw new Error(`${event.type} cannot be persisted in a batch of messages`);
    }
    return batchMessage(d, lock, event, { stateBefore, prevNids: prevNidList, pushActions, announcement, txn: opts.txn });
  }
  let written: Awaited<ReturnType<typeof eventsSql.writeEvent>>;
  try {
    written = await eventsSql.writeEvent(tx, {
      eventId: event.event_id,
      roomId: room.roomId,
      roomNid: room.roomNid,
      depth,
      type: event.type,
      stateKeyNid,
      sender: event.sender,
      originServerTs: event.origin_server_ts,
      rejectedReason,
      stateBefore,
      stateAfter,
      replacesNid,
      json: JSON.stringify(event),
      prevNids: prevNidList,
      txn: opts.txn ?? null,
      streamLock: STREAM_LOCK,
      roomLock: lock.advisoryKey,
      pushActions,
      headSeq: room.headSeq,
      announce: announcement ?? null,
    });
  } catch (err) {
    if ((err as { code?: string; constraint?: string }).code === '23505' && (err as { constraint?: string }).constraint === 'events_pkey') {
      throw new MatrixError('M_BAD_STATE', `event ${event.event_id} is already persisted`);
    }
    throw err;
  }
  if (written.duplicate_of !== null) throw new DuplicateTransaction(written.duplicate_of);
  room.headSeq++;
  const nid = written.event_nid;
  const stream = written.stream_ordering;
  const persisted: PersistedEvent = {
    nid,
    event,
    roomNid: room.roomNid,
    stream,
    depth,
    stateKeyNid,
    stateBefore,
    stateAfter,
    replacesNid,
    rejectedReason,
    announced: announcement !== undefined,
    ...(opts.txn ? { txn: opts.txn } : {}),
    pushActions,
  };
  d.events.written(tx, storedOf(persisted));
  if (rejectedReason !== null) {
    lock.persisted.push(persisted);
    return persisted;
  }

  const extremities = [...room.extremities.filter((x) => !prevNidList.includes(x)), nid];
  room.extremities = extremities;

  // Current state: the state after the one extremity, or the resolution over all of them.
  const previousCurrent = room.currentSnapshot;
  if (extremities.length === 1) {
    room.currentSnapshot = stateAfter;
  } else {
    const extremityEvents = await d.events.byNids(tx, extremities);
    const snapshots = extremities.map((x) => (x === nid ? stateAfter : extremityEvents.get(x)?.stateAfter ?? null));
    room.currentSnapshot = await stateAfterAll(d, lock, snapshots);
  }
  if (room.currentSnapshot !== previousCurrent) await roomsSql.setCurrentSnapshot(tx, room.roomNid, room.currentSnapshot!);

  if (room.currentSnapshot !== previousCurrent && room.currentSnapshot !== null) {
    await updateMemberships(d, lock, previousCurrent, room.currentSnapshot, stateBefore === previousCurrent ? { nid, keyNid: stateKeyNid, event } : undefined, stream);
  }

  if (event.type === 'm.room.redaction') await applyRedaction(d, lock, event, nid, lookup, persisted);

  lock.persisted.push(persisted);
  return persisted;
}

/**
 * A message of a batch (RoomLock.batch): everything persistEvent does for it, but the write,
 * which the queue makes for the whole batch before the commit (the stream position is set then).
 */
function batchMessage(
  d: RoomDeps,
  lock: RoomLock,
  event: RoomEvent,
  m: {
    stateBefore: number | null;
    prevNids: number[];
    pushActions: eventsSql.PushActionsOf[];
    announcement: { channel: string; before: string; after: string } | undefined;
    txn: roomsSql.TxnKey | undefined;
  },
): PersistedEvent {
  const { tx, room } = lock;
  // A message on the one extremity leaves the current state as it was (the queue batches
  // messages only in rooms with one extremity; each message then has the last as its prev).
  if (room.extremities.length !== 1 || m.prevNids.length !== 1 || m.prevNids[0] !== room.extremities[0] || m.stateBefore !== room.currentSnapshot) {
    throw new Error(`a batched message of ${room.roomId} does not follow the room's one extremity`);
  }
  const nid = lock.batch!.takeNid();
  // The stream position comes with the batch's write (the queue sets it in both).
  const persisted: PersistedEvent = {
    nid,
    event,
    roomNid: room.roomNid,
    stream: 0,
    depth: event.depth,
    stateKeyNid: null,
    stateBefore: m.stateBefore,
    stateAfter: m.stateBefore,
    replacesNid: null,
    rejectedReason: null,
    announced: false,
    ...(m.txn ? { txn: m.txn } : {}),
    pushActions: m.pushActions,
  };
  const stored = storedOf(persisted);
  d.events.written(tx, stored);
  lock.batch!.add(
    {
      nid,
      eventId: event.event_id,
      depth: event.depth,
      type: event.type,
      sender: event.sender,
      originServerTs: event.origin_server_ts,
      stateBefore: m.stateBefore,
      json: JSON.stringify(event),
      prevNids: m.prevNids,
      txn: m.txn ?? null,
      pushActions: m.pushActions,
      announce: m.announcement ?? null,
    },
    persisted,
    stored,
  );
  room.headSeq++;
  room.extremities = [...room.extremities.filter((x) => !m.prevNids.includes(x)), nid];
  lock.persisted.push(persisted);
  return persisted;
}

/** The event cache's record of a persisted event. */
export function storedOf(p: PersistedEvent): StoredEvent {
  return {
    nid: p.nid,
    event: p.event,
    roomNid: p.roomNid,
    stream: p.stream,
    depth: p.depth,
    stateKeyNid: p.stateKeyNid,
    rejected: p.rejectedReason,
    stateBefore: p.stateBefore,
    stateAfter: p.stateAfter,
    replacesNid: p.replacesNid,
    redactedBy: null,
  };
}

/**
 * Keeps room_memberships in step with the current state. The usual case is one member event
 * added on top of the previous current state; after a state resolution any membership may have
 * changed, so the two states are compared key by key.
 */
async function updateMemberships(
  d: RoomDeps,
  lock: RoomLock,
  previous: number | null,
  next: number,
  simple: { nid: number; keyNid: number | null; event: RoomEvent } | undefined,
  stream: number,
): Promise<void> {
  const { tx, room } = lock;
  const after = await d.state.load(tx, next);
  let changed: number[];
  if (simple) {
    const { event, nid, keyNid } = simple;
    if (!isMember(event) || keyNid === null || after.get(keyNid) !== nid) return;
    changed = [nid];
  } else {
    const before = previous === null ? new Map<number, number>() : await d.state.load(tx, previous);
    const keys: number[] = [];
    for (const [k, e] of after) if (before.get(k) !== e) keys.push(k);
    const pairs = await d.state.keyPairsOf(tx, keys);
    changed = keys.filter((k) => pairs.get(k)?.[0] === 'm.room.member').map((k) => after.get(k)!);
  }
  if (changed.length === 0) return;
  const events = simple ? new Map([[simple.nid, { event: simple.event }]]) : await d.events.byNids(tx, changed);
  for (const nid of changed) {
    const e = events.get(nid)?.event;
    if (!e || !isMember(e)) continue;
    await membershipsSql.upsertMembership(tx, {
      roomNid: room.roomNid,
      userId: e.state_key!,
      membership: String(e.content['membership']),
      eventNid: nid,
      stream,
      displayname: typeof e.content['displayname'] === 'string' ? e.content['displayname'] : null,
      avatarUrl: typeof e.content['avatar_url'] === 'string' ? e.content['avatar_url'] : null,
    });
  }
}

/** The id a redaction redacts: `content.redacts` from v11, the top-level key before. */
export function redactsOf(event: { content: RoomEvent['content']; redacts?: unknown }, lock: RoomLock): string | undefined {
  const target = lock.room.version.updatedRedactionRules ? event.content['redacts'] : event.redacts;
  return typeof target === 'string' ? target : undefined;
}

/**
 * Marks the redacted event (spec "Redactions", v3+): the redaction takes effect if its sender
 * has the redact level, or is on the same server as the redacted event's sender. The client API
 * applies a stricter check before building the event (send.ts).
 */
async function applyRedaction(d: RoomDeps, lock: RoomLock, redaction: RoomEvent, nid: number, lookup: StateLookup, persisted: PersistedEvent): Promise<void> {
  const targetId = redactsOf(redaction, lock);
  if (!targetId) return;
  const target = (await d.events.byIds(lock.tx, [targetId])).get(targetId);
  if (!target || target.roomNid !== lock.room.roomNid) return;
  const level = userPowerLevel(redaction.sender, lookup, lock.room.version);
  const allowed = level >= currentPowerLevels(lookup).redact || domainOf(redaction.sender) === domainOf(target.event.sender);
  if (allowed && (await eventsSql.markRedacted(lock.tx, target.nid, nid))) persisted.redactedNid = target.nid;
}

/**
 * The state after a set of events, given their state snapshots: the one snapshot when they
 * agree, else the state resolution of the room version over all of them, stored as a new
 * snapshot (or an equal existing one).
 */
async function stateAfterAll(d: RoomDeps, lock: RoomLock, snapshots: Array<number | null>): Promise<number | null> {
  const distinct = [...new Set(snapshots.filter((s): s is number => s !== null))];
  if (distinct.length === 0) return null;
  if (distinct.length === 1) return distinct[0]!;
  const { tx, room } = lock;
  const maps: StateMap[] = [];
  for (const s of distinct) maps.push(await toStateMap(d, tx, await d.state.load(tx, s)));
  const resolved = await resolveState(room.version, maps, {
    getEvents: async (ids) => {
      const out = new Map<string, RoomEvent>();
      for (const [id, e] of await d.events.byIds(tx, [...ids])) out.set(id, e.event);
      return out;
    },
    getRejectedIds: async (ids) => {
      const out = new Set<string>();
      for (const [id, e] of await d.events.byIds(tx, ids)) if (e.rejected) out.add(id);
      return out;
    },
  });
  // Stored as a delta on the first state: the keys that differ, removals as 0.
  const base = await d.state.load(tx, distinct[0]!);
  const pairs = [...resolved.keys()].map(splitStateKey);
  const keyNids = await d.state.internKeys(tx, pairs);
  const eventNids = await d.events.nidsOf(tx, [...resolved.values()]);
  const changes = new Map<number, number>();
  const kept = new Set<number>();
  [...resolved.values()].forEach((eventId, i) => {
    changes.set(keyNids[i]!, eventNids.get(eventId)!);
    kept.add(keyNids[i]!);
  });
  for (const k of base.keys()) if (!kept.has(k)) changes.set(k, 0);
  return d.state.create(tx, room.roomNid, distinct[0]!, changes);
}

/** A nid state map as the core's (type, state_key) -> event id map. */
export async function toStateMap(d: RoomDeps, db: Queryable, state: StateNids): Promise<StateMap> {
  const pairs = await d.state.keyPairsOf(db, state.keys());
  const events = await d.events.byNids(db, state.values());
  const out: StateMap = new Map();
  for (const [k, e] of state) {
    const pair = pairs.get(k);
    const ev = events.get(e);
    if (pair && ev) out.set(stateKey(pair[0], pair[1]), ev.event.event_id);
  }
  return out;
}
