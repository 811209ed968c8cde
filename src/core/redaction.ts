// The redaction algorithm (spec: rooms/v1 "Redactions", and the v6, v8, v9, v11 changes; v12
// inherits v11). It is not only what a redaction does to an event: the reference hash (event
// ids from v3) and event signatures are computed over the redacted form, so any deviation here
// splits us from every other server.
//
// Pure pruning: the result holds only the protected keys. `unsigned` goes too, since the spec
// does not protect it; a server that shows the redacted event to clients adds whatever it
// wants there (e.g. `redacted_because`) itself. Kept sub-objects are shared with the input,
// not copied, so treat both as immutable.
import { getRoomVersion, type RoomVersion } from './room-versions.js';

/** A room version, or its id. */
export type RoomVersionLike = RoomVersion | string;

export function resolveRoomVersion(version: RoomVersionLike): RoomVersion {
  if (typeof version !== 'string') return version;
  const v = getRoomVersion(version);
  if (!v) throw new Error(`unknown room version: ${version}`);
  return v;
}

const TOP_LEVEL_KEYS = [
  'event_id',
  'type',
  'room_id',
  'sender',
  'state_key',
  'hashes',
  'signatures',
  'depth',
  'prev_events',
  'auth_events',
  'origin_server_ts',
] as const;

/** v1-v10 also protect these; v11 (MSC2176) dropped them. */
const LEGACY_TOP_LEVEL_KEYS = ['origin', 'membership', 'prev_state'] as const;

const POWER_LEVEL_KEYS = ['ban', 'events', 'events_default', 'kick', 'redact', 'state_default', 'users', 'users_default'];

type JsonRecord = Record<string, unknown>;

function isObject(v: unknown): v is JsonRecord {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function has(obj: JsonRecord, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function copyKeys(from: JsonRecord, to: JsonRecord, keys: readonly string[]): void {
  for (const key of keys) if (has(from, key)) to[key] = from[key];
}

/** The content that survives redaction of an event of this type in this room version. */
export function redactContent(type: unknown, content: unknown, version: RoomVersionLike): JsonRecord {
  const v = resolveRoomVersion(version);
  const out: JsonRecord = {};
  // Malformed content (not an object) has nothing to keep; the result still gets `content: {}`.
  if (!isObject(content)) return out;
  switch (type) {
    case 'm.room.member':
      copyKeys(content, out, ['membership']);
      if (v.restrictedJoinRuleFix) copyKeys(content, out, ['join_authorised_via_users_server']);
      if (v.updatedRedactionRules) {
        // Only `signed` is protected, but the object around it is kept even when `signed` is
        // missing (an empty object), as Synapse does; a non-object value is dropped.
        const tpi = content.third_party_invite;
        if (has(content, 'third_party_invite') && isObject(tpi)) {
          const kept: JsonRecord = {};
          copyKeys(tpi, kept, ['signed']);
          out.third_party_invite = kept;
        }
      }
      return out;
    case 'm.room.create':
      // v11 keeps the whole create content (MSC2176); earlier versions only `creator`.
      if (v.updatedRedactionRules) return content;
      copyKeys(content, out, ['creator']);
      return out;
    case 'm.room.join_rules':
      copyKeys(content, out, ['join_rule']);
      if (v.restrictedJoinRule) copyKeys(content, out, ['allow']);
      return out;
    case 'm.room.power_levels':
      copyKeys(content, out, POWER_LEVEL_KEYS);
      if (v.updatedRedactionRules) copyKeys(content, out, ['invite']);
      return out;
    case 'm.room.aliases':
      // Protected only while aliases events had special auth rules (v1-v5).
      if (v.specialCaseAliasesAuth) copyKeys(content, out, ['aliases']);
      return out;
    case 'm.room.history_visibility':
      copyKeys(content, out, ['history_visibility']);
      return out;
    case 'm.room.redaction':
      // v11 moved `redacts` into content (MSC2174) and protects it there (MSC2176).
      if (v.updatedRedactionRules) copyKeys(content, out, ['redacts']);
      return out;
    default:
      return out;
  }
}

/**
 * Redacts an event (or PDU) per the room version's algorithm. Returns a new object; the input
 * is not modified. Accepts whatever shape arrives from the wire, so missing or malformed fields
 * are tolerated: only own properties are considered, and `content` is always present.
 */
export function redactEvent<T extends object>(event: T, version: RoomVersionLike): T {
  const v = resolveRoomVersion(version);
  const src = event as JsonRecord;
  const out: JsonRecord = {};
  copyKeys(src, out, TOP_LEVEL_KEYS);
  if (!v.updatedRedactionRules) copyKeys(src, out, LEGACY_TOP_LEVEL_KEYS);
  out.content = redactContent(src.type, src.content, v);
  return out as T;
}
