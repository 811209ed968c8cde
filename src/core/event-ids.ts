// Event ids and room ids per room version, and the step that turns an event under construction
// into a hashed, signed RoomEvent (spec: rooms/v1 "Event IDs", v3, v4 "Event IDs", v12 "Event
// format"; server-server API "Signing events").
//
// Wire PDU versus RoomEvent: a RoomEvent always carries `event_id` and `room_id`, because the
// rest of the server needs them on every event. The PDU of a room version may have neither:
// from v3 the event id is derived (never sent), and a v12 create event has no room id (the
// room id is derived from it). toWirePdu(event, version) gives the PDU to send; every hash and
// signature function applies the same reduction itself, so passing a RoomEvent is always safe.
// eventFromWirePdu goes the other way for received PDUs.
import { createHash, randomBytes } from 'node:crypto';
import { encodeBase64, encodeBase64Url } from './base64.js';
import { addContentHash, computeReferenceHash, isCreateEvent } from './hashes.js';
import { signEventWithBytes } from './event-signing.js';
import {
  isValidHashEventIdV3,
  isValidHashEventIdV4,
  isValidHashRoomId,
  isValidServerEventId,
  isValidServerName,
  isValidServerRoomId,
} from './identifiers.js';
import { resolveRoomVersion, type RoomVersionLike } from './redaction.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';
import type { SigningKey } from './signing.js';
import type { EventReference, JsonObject, RoomEvent, Signatures } from './types.js';

// Re-exported so that code building or receiving events needs only this module.
export { isCreateEvent, toWirePdu } from './hashes.js';

/** A PDU that cannot be turned into a RoomEvent for its room version. */
export class EventFormatError extends Error {
  override name = 'EventFormatError';
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALPHANUMERIC[b % 62];
    }
  }
  return out;
}

/** A fresh room version 1/2 event id: `$` + 18 random alphanumerics (~107 bits) + `:server`. */
export function generateLegacyEventId(serverName: string): string {
  if (!isValidServerName(serverName)) throw new Error(`invalid server name: ${serverName}`);
  return `$${randomAlphanumeric(18)}:${serverName}`;
}

/** `$` + the reference hash in the room version's encoding (v3 standard, v4+ URL-safe base64). */
export function referenceHashToEventId(hash: Uint8Array, version: RoomVersionLike): string {
  const v = resolveRoomVersion(version);
  switch (v.eventIdFormat) {
    case 'v3':
      return `$${encodeBase64(hash)}`;
    case 'v4':
      return `$${encodeBase64Url(hash)}`;
    case 'v1':
      throw new Error(`room version ${v.id} event ids are not derived from hashes`);
  }
}

/**
 * The event id of a PDU. From room version 3 it is computed from the reference hash. In room
 * versions 1 and 2 it is whatever the PDU carries in `event_id`; for a PDU still without one, a
 * fresh `$random:serverName` is generated when serverName is given (store it in the PDU before
 * hashing and signing: finalizeEvent does), and otherwise this throws.
 */
export function computeEventId(pdu: object, version: RoomVersionLike, serverName?: string): string {
  const v = resolveRoomVersion(version);
  if (v.eventIdFormat === 'v1') {
    const existing = (pdu as { event_id?: unknown }).event_id;
    if (typeof existing === 'string') return existing;
    if (serverName === undefined) throw new EventFormatError(`room version ${v.id} PDU has no event_id`);
    return generateLegacyEventId(serverName);
  }
  return referenceHashToEventId(computeReferenceHash(pdu, v), v);
}

function versionForCreate(createPdu: object, version?: RoomVersionLike): RoomVersion {
  if (version !== undefined) return resolveRoomVersion(version);
  const content = (createPdu as { content?: unknown }).content;
  const id = typeof content === 'object' && content !== null ? (content as { room_version?: unknown }).room_version : undefined;
  // A create event without room_version means version 1, which has no derived room ids.
  const v = getRoomVersion(typeof id === 'string' ? id : '1');
  if (!v) throw new EventFormatError(`unknown room version in create event: ${String(id)}`);
  return v;
}

/**
 * The room id a room version 12+ create event defines: `!` + URL-safe unpadded base64 of its
 * reference hash (the create event's id with `!` for `$`). The version defaults to the one
 * named in the create event's content; throws for versions whose room ids are not derived.
 */
export function roomIdFromCreateEvent(createPdu: object, version?: RoomVersionLike): string {
  const v = versionForCreate(createPdu, version);
  if (!v.roomIdFromCreateEvent) {
    throw new EventFormatError(`room version ${v.id} does not derive room ids from the create event`);
  }
  return `!${encodeBase64Url(computeReferenceHash(createPdu, v))}`;
}

/**
 * Turns a PDU received from another server into a RoomEvent: computes (v3+) or takes (v1/v2)
 * the event id, and derives the room id of a v12 create event. Throws EventFormatError when the
 * PDU lacks what its version requires or has what it forbids (a v12 create event with a
 * room_id must be rejected, not silently repaired). Hashes and signatures are not checked here.
 */
export function eventFromWirePdu(pdu: unknown, version: RoomVersionLike): RoomEvent {
  const v = resolveRoomVersion(version);
  if (typeof pdu !== 'object' || pdu === null || Array.isArray(pdu)) throw new EventFormatError('PDU is not an object');
  const p = pdu as Record<string, unknown>;
  let eventId: string;
  if (v.eventIdFormat === 'v1') {
    if (typeof p.event_id !== 'string') throw new EventFormatError(`room version ${v.id} PDU has no event_id`);
    eventId = p.event_id;
  } else {
    eventId = referenceHashToEventId(computeReferenceHash(p, v), v);
  }
  let roomId: string;
  if (v.roomIdFromCreateEvent && isCreateEvent(p)) {
    if (Object.prototype.hasOwnProperty.call(p, 'room_id')) {
      throw new EventFormatError(`room version ${v.id} create events must not have a room_id`);
    }
    roomId = `!${eventId.slice(1)}`;
  } else {
    if (typeof p.room_id !== 'string') throw new EventFormatError('PDU has no room_id');
    roomId = p.room_id;
  }
  // From v3 any event_id the sender included is meaningless (and not covered by the hashes);
  // the computed one replaces it.
  return { ...(p as object), event_id: eventId, room_id: roomId } as RoomEvent;
}

/** An event under construction: everything but the hashes, signatures and (v3+) event id. */
export interface PartialPdu {
  /** Only for room versions 1/2, to keep a pre-allocated id; generated when absent. */
  event_id?: string;
  /** Required, except on room version 12+ create events, which must not have one. */
  room_id?: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  origin_server_ts: number;
  depth: number;
  prev_events: EventReference[];
  auth_events: EventReference[];
  redacts?: string;
  origin?: string;
  unsigned?: JsonObject;
  hashes?: unknown;
  signatures?: unknown;
  [key: string]: unknown;
}

/**
 * Completes an event this server creates: event id for v1/v2 (stored in the PDU before hashing,
 * as those versions sign it), content hash, this server's signature, then the event id for v3+
 * and the room id for a v12 create event. Any hashes or signatures on the input are discarded:
 * they could not be valid for the finished event. The result is a RoomEvent; send
 * toWirePdu(result, version) over federation.
 */
export function finalizeEvent(partial: PartialPdu, version: RoomVersionLike, serverName: string, key: SigningKey): RoomEvent {
  const v = resolveRoomVersion(version);
  const { hashes: _h, signatures: _s, event_id: givenId, ...rest } = partial;
  const pdu: Record<string, unknown> = { ...rest };
  if (v.eventIdFormat === 'v1') pdu.event_id = givenId ?? generateLegacyEventId(serverName);

  const create = v.roomIdFromCreateEvent && isCreateEvent(pdu);
  if (create && pdu.room_id !== undefined) {
    throw new EventFormatError(`room version ${v.id} create events must not have a room_id`);
  }
  if (!create && typeof pdu.room_id !== 'string') throw new EventFormatError('event has no room_id');
  if (create) delete pdu.room_id; // an explicit `room_id: undefined` must not reach the wire

  const { signed, bytes } = signEventWithBytes(addContentHash(pdu), v, serverName, key) as {
    signed: Record<string, unknown> & { signatures: Signatures };
    bytes: Buffer;
  };
  // The reference hash reads the bytes the signature covers (the redacted event without
  // signatures, unsigned and age_ts; this one has no other signature): hashed, not built again.
  const eventId =
    v.eventIdFormat === 'v1' ? (signed.event_id as string) : referenceHashToEventId(new Uint8Array(createHash('sha256').update(bytes).digest()), v);
  const roomId = create ? `!${eventId.slice(1)}` : (signed.room_id as string);
  return { ...signed, event_id: eventId, room_id: roomId } as RoomEvent;
}

/**
 * How another event cites this one in prev_events/auth_events: in room versions 1 and 2 the
 * pair `[event_id, {sha256: <reference hash, standard base64>}]`, from v3 the bare event id.
 */
export function eventReference(event: RoomEvent, version: RoomVersionLike): EventReference {
  const v = resolveRoomVersion(version);
  if (v.eventIdFormat !== 'v1') return event.event_id;
  return [event.event_id, { sha256: encodeBase64(computeReferenceHash(event, v)) }];
}

/** Is this a well-formed event id for the room version? */
export function validateEventId(id: string, version: RoomVersionLike): boolean {
  const v = resolveRoomVersion(version);
  switch (v.eventIdFormat) {
    case 'v1':
      return isValidServerEventId(id);
    case 'v3':
      return isValidHashEventIdV3(id);
    case 'v4':
      return isValidHashEventIdV4(id);
  }
}

/** Is this a well-formed room id for the room version? */
export function validateRoomId(id: string, version: RoomVersionLike): boolean {
  const v = resolveRoomVersion(version);
  return v.roomIdFromCreateEvent ? isValidHashRoomId(id) : isValidServerRoomId(id);
}
