// Shapes shared by the pure event core. Everything here is plain data: the core never performs
// I/O, so events, state maps and auth chains arrive as values (or via the loader interfaces).

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

/** Signatures keyed by server name, then key id (`ed25519:abc`), value unpadded base64. */
export type Signatures = Record<string, Record<string, string>>;

/**
 * A persistent data unit as it travels between servers. Room versions 1 and 2 carry `event_id`
 * and `[id, hashes]` pairs in prev_events/auth_events; version 3 and later use bare ids and
 * derive the id from the reference hash. Version 12 create events carry no `room_id`.
 */
export interface Pdu {
  event_id?: string;
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
  hashes: { sha256: string } & Record<string, string>;
  signatures: Signatures;
  unsigned?: JsonObject;
  /** Only in room versions 1 and 2 (and kept by redaction until v11). */
  origin?: string;
  membership?: string;
  prev_state?: EventReference[];
  [key: string]: unknown;
}

/** v1/v2: `[eventId, {sha256}]`; v3+: the bare event id. */
export type EventReference = string | [string, { sha256?: string }];

/**
 * An event whose id is known (computed or stored). The core works on these: auth checks,
 * state resolution and selection never need to recompute ids.
 */
export interface RoomEvent extends Pdu {
  event_id: string;
  /** room_id, derived for v12 create events (whose PDU has none). */
  room_id: string;
}

/** (type, state_key) joined as a single map key, see stateKey(). */
export type StateKey = string;

/** Room state: (type, state_key) to the event id holding it. */
export type StateMap = Map<StateKey, string>;

export function stateKey(type: string, stateKey: string): StateKey {
  // U+0000 cannot occur in a Matrix event type, so the join is unambiguous.
  return `${type}\u0000${stateKey}`;
}

export function splitStateKey(key: StateKey): [type: string, stateKey: string] {
  const i = key.indexOf('\u0000');
  return [key.slice(0, i), key.slice(i + 1)];
}

/** Outcome of an authorization check: allowed, or rejected with a reason a person can read. */
export type AuthResult = { allowed: true } | { allowed: false; reason: string };
