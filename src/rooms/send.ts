// Sending events: messages, state, redactions. Each goes through the room queue: build (prev
// events, auth events, depth, hashes, signature) and persist under the room's lock.
import { encodeCanonicalJson } from '../core/canonical-json.js';
import { isValidRoomAlias } from '../core/identifiers.js';
import { currentPowerLevels, userPowerLevel } from '../core/power-levels.js';
import type { JsonObject } from '../core/types.js';
import { MatrixError } from '../http/errors.js';
import { buildEvent, type EventSpec } from './builder.js';
import { loadStateLookup, type RoomDeps } from './context.js';
import { DuplicateTransaction, persistEvent } from './persist.js';
import type { RoomLock, RunOptions } from './queue.js';
import { currentStateEvent, notInRoom } from './read.js';
import * as roomsSql from './store/rooms.js';

export interface Sender {
  userId: string;
  deviceId: string;
}

/** Builds and persists one event under the lock; the caller has done its own checks. */
export async function sendUnderLock(d: RoomDeps, lock: RoomLock, spec: EventSpec, txn?: roomsSql.TxnKey): Promise<string> {
  // Every event this server builds passes the client-API checks (send-validators.ts), whichever
  // endpoint made it (sends, createRoom's initial_state, upgrades).
  for (const validate of d.sendValidators ?? []) await validate(d, lock, spec);
  const event = await buildEvent(d, lock, spec);
  try {
    await persistEvent(d, lock, event, txn ? { txn } : {});
  } catch (err) {
    if (err instanceof DuplicateTransaction) return err.eventId;
    throw err;
  }
  return event.event_id;
}

/**
 * Non-membership events need the sender joined; checked first so that a non-member learns
 * nothing more than someone asking about a room that does not exist.
 */
async function requireJoined(d: RoomDeps, lock: RoomLock, userId: string): Promise<void> {
  const member = await currentStateEvent(d, lock.tx, lock.room.currentSnapshot!, 'm.room.member', userId);
  if (member?.content['membership'] !== 'join') throw notInRoom(lock.room.roomId);
}

/**
 * Runs a client send idempotently: a txn id already used by this device on this endpoint
 * answers with the event it produced. The write itself checks (store/events.ts writeEvent),
 * under the room's lock (the scope includes the room), so two concurrent retries cannot both
 * create an event and the usual send pays no extra query. A retry that would now be refused
 * (the sender has left since, say) still answers with the original event.
 */
async function idempotent(
  d: RoomDeps,
  roomId: string,
  txn: roomsSql.TxnKey | undefined,
  fn: (lock: RoomLock) => Promise<string>,
  opts: RunOptions = {},
): Promise<string> {
  return d.queue.run(roomId, async (lock) => {
    try {
      return await fn(lock);
    } catch (err) {
      // (M_BAD_STATE comes from a failed statement: the transaction can run no query now.)
      if (txn && err instanceof MatrixError && err.errcode !== 'M_BAD_STATE') {
        const existing = await roomsSql.findTxn(lock.tx, txn);
        if (existing) return existing;
      }
      throw err;
    }
  }, opts);
}

export async function sendMessage(d: RoomDeps, sender: Sender, roomId: string, type: string, content: JsonObject, txnId?: string): Promise<string> {
  const txn = txnId !== undefined ? { userId: sender.userId, deviceId: sender.deviceId, scope: `send/${roomId}/${type}`, txnId } : undefined;
  // A message only adds an event: it may take the one-statement path (queue.ts). A redaction
  // (m.room.redaction through /send) also marks its target, so it goes the long way.
  return idempotent(
    d,
    roomId,
    txn,
    async (lock) => {
      await requireJoined(d, lock, sender.userId);
      return sendUnderLock(d, lock, { type, sender: sender.userId, content }, txn);
    },
    { oneStatement: type !== 'm.room.redaction', ...(txn ? { txn } : {}) },
  );
}

export async function sendState(d: RoomDeps, sender: Sender, roomId: string, type: string, stateKey: string, content: JsonObject): Promise<string> {
  return d.queue.run(roomId, async (lock) => {
    if (type !== 'm.room.member') await requireJoined(d, lock, sender.userId);
    // Setting state to what it already is (same sender, same content) creates no event, as
    // Synapse does: clients re-send state freely, and the room would fill with no-ops.
    const existing = await currentStateEvent(d, lock.tx, lock.room.currentSnapshot!, type, stateKey);
    if (existing && existing.sender === sender.userId && sameContent(existing.content, content)) return existing.event_id;
    return sendUnderLock(d, lock, { type, sender: sender.userId, state_key: stateKey, content });
  });
}

/**
 * m.room.canonical_alias (spec): aliases newly listed must be valid and point to this room;
 * those already in the current event are not re-checked (they may have been deleted since).
 * Aliases of other servers cannot be resolved without federation and are refused.
 */
async function checkCanonicalAlias(d: RoomDeps, lock: RoomLock, content: JsonObject, previous: JsonObject | undefined): Promise<void> {
  const listed = (c: JsonObject | undefined): string[] => {
    if (!c) return [];
    const out: string[] = [];
    if (c['alias'] !== undefined && c['alias'] !== null) out.push(c['alias'] as string);
    if (Array.isArray(c['alt_aliases'])) out.push(...(c['alt_aliases'] as string[]));
    return out;
  };
  if (content['alias'] !== undefined && content['alias'] !== null && typeof content['alias'] !== 'string') {
    throw new MatrixError('M_INVALID_PARAM', "'alias' must be a string");
  }
  if (content['alt_aliases'] !== undefined && (!Array.isArray(content['alt_aliases']) || content['alt_aliases'].some((a) => typeof a !== 'string'))) {
    throw new MatrixError('M_INVALID_PARAM', "'alt_aliases' must be a list of strings");
  }
  const known = new Set(listed(previous).filter((a) => typeof a === 'string'));
  for (const alias of listed(content)) {
    if (known.has(alias)) continue;
    if (!isValidRoomAlias(alias)) throw new MatrixError('M_INVALID_PARAM', `${alias} is not a valid room alias`);
    if ((await roomsSql.resolveAlias(lock.tx, alias)) !== lock.room.roomId) {
      throw new MatrixError('M_BAD_ALIAS', `Room alias ${alias} does not point to this room`);
    }
  }
}

function sameContent(a: JsonObject, b: JsonObject): boolean {
  try {
    return encodeCanonicalJson(a) === encodeCanonicalJson(b);
  } catch {
    return false;
  }
}

export async function redact(d: RoomDeps, sender: Sender, roomId: string, eventId: string, txnId: string, reason?: string): Promise<string> {
  const txn = { userId: sender.userId, deviceId: sender.deviceId, scope: `redact/${roomId}/${eventId}`, txnId };
  return idempotent(d, roomId, txn, async (lock) => {
    await requireJoined(d, lock, sender.userId);
    const target = (await d.events.byIds(lock.tx, [eventId])).get(eventId);
    if (!target || target.roomNid !== lock.room.roomNid) throw new MatrixError('M_NOT_FOUND', 'Event not found');
    // The client API is stricter than the federation rule ("same server"): redacting someone
    // else's event needs the redact power level.
    if (target.event.sender !== sender.userId) {
      const current = await d.state.load(lock.tx, lock.room.currentSnapshot!);
      const lookup = await loadStateLookup(d, lock.tx, current, [
        ['m.room.create', ''],
        ['m.room.power_levels', ''],
      ]);
      const level = userPowerLevel(sender.userId, lookup, lock.room.version);
      const needed = currentPowerLevels(lookup).redact;
      if (level < needed) {
        throw new MatrixError('M_FORBIDDEN', `You need power level ${needed} to redact other users' events; you have ${level}`);
      }
    }
    const content: JsonObject = reason !== undefined ? { reason } : {};
    return sendUnderLock(d, lock, { type: 'm.room.redaction', sender: sender.userId, content, redacts: eventId }, txn);
  });
}
