// Builds a new event of this server, under the room's lock: prev_events are the forward
// extremities, auth_events are selected from the current state by the room version's rules,
// depth is one more than the deepest prev event; the core then hashes, signs and names it.
import { selectAuthEvents } from '../core/auth-events.js';
import { checkEventSizeLimits } from '../core/auth-rules.js';
import { encodeBase64 } from '../core/base64.js';
import { CanonicalJsonError } from '../core/canonical-json.js';
import { finalizeEvent, type PartialPdu } from '../core/event-ids.js';
import { computeReferenceHash, toWirePdu } from '../core/hashes.js';
import type { RoomVersion } from '../core/room-versions.js';
import type { EventReference, JsonObject, RoomEvent } from '../core/types.js';
import { MatrixError } from '../http/errors.js';
import { loadStateLookup, type RoomDeps } from './context.js';
import { authPairs } from './persist.js';
import type { RoomLock } from './queue.js';
import type { StoredEvent } from './events.js';

/** Synapse cites at most 10 prev events, preferring the deepest. */
const MAX_PREV_EVENTS = 10;

export interface EventSpec {
  type: string;
  sender: string;
  state_key?: string;
  content: JsonObject;
  /** m.room.redaction: the event redacted (placed per the room version). */
  redacts?: string;
}

function reference(e: StoredEvent, version: RoomVersion): EventReference {
  // Room versions 1 and 2 cite events as [id, {sha256: reference hash}].
  if (version.eventIdFormat !== 'v1') return e.event.event_id;
  return [e.event.event_id, { sha256: encodeBase64(computeReferenceHash(e.event, version)) }];
}

/** Turns core failures on client-supplied content into client errors. */
export function finalizeOrRefuse(partial: PartialPdu, version: RoomVersion, d: RoomDeps): RoomEvent {
  let event: RoomEvent;
  try {
    event = finalizeEvent(partial, version, d.serverName, d.signingKey);
  } catch (err) {
    if (err instanceof CanonicalJsonError) throw new MatrixError('M_BAD_JSON', `Event content is not valid canonical JSON: ${err.message}`);
    throw err;
  }
  const size = checkEventSizeLimits(toWirePdu(event, version) as RoomEvent);
  if (!size.allowed) throw new MatrixError('M_TOO_LARGE', size.reason);
  return event;
}

/** A create event: no prev or auth events, depth 1; its room id is derived in v12. */
export function buildCreateEvent(d: RoomDeps, version: RoomVersion, roomId: string | undefined, spec: EventSpec): RoomEvent {
  const partial: PartialPdu = {
    ...(roomId !== undefined ? { room_id: roomId } : {}),
    sender: spec.sender,
    type: 'm.room.create',
    state_key: '',
    content: spec.content,
    origin_server_ts: Date.now(),
    depth: 1,
    prev_events: [],
    auth_events: [],
    ...(version.updatedRedactionRules ? {} : { origin: d.serverName }),
  };
  return finalizeOrRefuse(partial, version, d);
}

export async function buildEvent(d: RoomDeps, lock: RoomLock, spec: EventSpec): Promise<RoomEvent> {
  const { tx, room } = lock;
  const version = room.version;
  if (room.currentSnapshot === null) throw new Error(`room ${room.roomId} has no state yet`);
  const current = await d.state.load(tx, room.currentSnapshot);

  const extremities = [...(await d.events.byNids(tx, room.extremities)).values()]
    .sort((a, b) => b.depth - a.depth)
    .slice(0, MAX_PREV_EVENTS);
  const depth = Math.max(0, ...extremities.map((e) => e.depth)) + 1;

  const lookup = await loadStateLookup(d, tx, current, authPairs(spec, lock), version);
  const authIds = selectAuthEvents(spec, lookup, version);
  const authEvents = await d.events.byIds(tx, authIds);

  const content: JsonObject = { ...spec.content };
  const partial: PartialPdu = {
    room_id: room.roomId,
    sender: spec.sender,
    type: spec.type,
    ...(spec.state_key !== undefined ? { state_key: spec.state_key } : {}),
    content,
    origin_server_ts: Date.now(),
    depth,
    prev_events: extremities.map((e) => reference(e, version)),
    auth_events: authIds.map((id) => reference(authEvents.get(id)!, version)),
    ...(version.updatedRedactionRules ? {} : { origin: d.serverName }),
  };
  if (spec.redacts !== undefined) {
    // v11 moved `redacts` into content (MSC2174); before, it is a top-level key.
    if (version.updatedRedactionRules) content['redacts'] = spec.redacts;
    else partial.redacts = spec.redacts;
  }
  return finalizeOrRefuse(partial, version, d);
}
