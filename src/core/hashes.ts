// Event hashes (server-server API: "Calculating the content hash for an event", "Calculating
// the reference hash for an event").
//
// Both hashes are defined over the event as it travels between servers, so every function here
// first reduces its input to that wire form (toWirePdu): a RoomEvent carries an `event_id` (and
// for a v12 create event a derived `room_id`) that the PDU of that room version does not have,
// and hashing those would give ids no other server computes.
import { createHash } from 'node:crypto';
import { decodeBase64Any, encodeBase64 } from './base64.js';
import { canonicalJsonBytes } from './canonical-json.js';
import { redactEvent, resolveRoomVersion, type RoomVersionLike } from './redaction.js';
import type { RoomVersion } from './room-versions.js';

type JsonRecord = Record<string, unknown>;

/** Is this the room's create event (type m.room.create, empty state key)? */
export function isCreateEvent(event: { type?: unknown; state_key?: unknown }): boolean {
  return event.type === 'm.room.create' && event.state_key === '';
}

function withoutKeys(obj: JsonRecord, keys: readonly string[]): JsonRecord {
  let out: JsonRecord | undefined;
  for (const key of keys) {
    if (Object.prototype.hasOwnProperty.call(obj, key)) {
      // Spread defines own data properties, so a "__proto__" member survives the copy.
      out ??= { ...obj };
      delete out[key];
    }
  }
  return out ?? obj;
}

/**
 * The PDU a room version puts on the wire for this event: without `event_id` from v3 (ids are
 * derived from the reference hash) and without `room_id` on v12 create events (the room id is
 * derived from the create event). Other fields, `unsigned` included, are left as they are.
 * Returns the input itself when nothing needs stripping.
 */
export function toWirePdu<T extends object>(event: T, version: RoomVersionLike): Omit<T, 'event_id'> {
  const v = resolveRoomVersion(version);
  return stripForWire(event as JsonRecord, v) as Omit<T, 'event_id'>;
}

function stripForWire(event: JsonRecord, v: RoomVersion): JsonRecord {
  const strip: string[] = [];
  if (v.eventIdFormat !== 'v1') strip.push('event_id');
  if (v.roomIdFromCreateEvent && isCreateEvent(event)) strip.push('room_id');
  return strip.length ? withoutKeys(event, strip) : event;
}

// `age_ts`, `outlier` and `destinations` at the top level are fields very old Synapse versions
// stored on events; Synapse leaves them out of the content hash, so to agree on hashes of old
// rooms' history we do too. Events we create never have them, so they never change our hashes.
const CONTENT_HASH_EXCLUDED = ['unsigned', 'signatures', 'hashes', 'age_ts', 'outlier', 'destinations'];

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

/**
 * SHA-256 of the canonical JSON of the complete (unredacted) event without `unsigned`,
 * `signatures` and `hashes`. With a room version, the input is first reduced to its wire form;
 * without one it must already be the wire PDU. Throws CanonicalJsonError if the event holds
 * values canonical JSON cannot carry.
 */
export function computeContentHashBytes(pdu: object, version?: RoomVersionLike): Uint8Array {
  let obj = pdu as JsonRecord;
  if (version !== undefined) obj = stripForWire(obj, resolveRoomVersion(version));
  return sha256(canonicalJsonBytes(withoutKeys(obj, CONTENT_HASH_EXCLUDED)));
}

/** The content hash as it appears in `hashes.sha256`: unpadded standard base64. */
export function computeContentHash(pdu: object, version?: RoomVersionLike): string {
  return encodeBase64(computeContentHashBytes(pdu, version));
}

/** A copy of the PDU with `hashes.sha256` set (other hash algorithms, if any, are kept). */
export function addContentHash<T extends object>(pdu: T, version?: RoomVersionLike): T & { hashes: { sha256: string } } {
  const sha = computeContentHash(pdu, version);
  const prior = (pdu as { hashes?: unknown }).hashes;
  const hashes = typeof prior === 'object' && prior !== null && !Array.isArray(prior) ? { ...prior, sha256: sha } : { sha256: sha };
  return { ...pdu, hashes };
}

/**
 * Does `hashes.sha256` match the event? False, not an exception, for a missing or malformed
 * hash and for content that cannot be canonicalised: the caller then treats the event as
 * tampered with and keeps only its redacted form.
 */
export function checkContentHash(pdu: object, version?: RoomVersionLike): boolean {
  const hashes = (pdu as { hashes?: unknown }).hashes;
  if (typeof hashes !== 'object' || hashes === null || !Object.prototype.hasOwnProperty.call(hashes, 'sha256')) {
    return false;
  }
  const claimed = (hashes as JsonRecord).sha256;
  if (typeof claimed !== 'string') return false;
  let expected: Uint8Array;
  let actual: Uint8Array;
  try {
    actual = decodeBase64Any(claimed);
    expected = computeContentHashBytes(pdu, version);
  } catch {
    return false;
  }
  return Buffer.compare(Buffer.from(actual), Buffer.from(expected)) === 0;
}

/**
 * The reference hash: SHA-256 of the canonical JSON of the redacted wire PDU without
 * `signatures`, `unsigned` and `age_ts`. Event ids from room version 3 are built from it.
 */
export function computeReferenceHash(pdu: object, version: RoomVersionLike): Uint8Array {
  const v = resolveRoomVersion(version);
  const redacted = redactEvent(stripForWire(pdu as JsonRecord, v), v) as JsonRecord;
  // Redaction already drops unsigned and top-level age_ts; signatures are what remains to remove.
  return sha256(canonicalJsonBytes(withoutKeys(redacted, ['signatures', 'unsigned', 'age_ts'])));
}
