// Events as clients see them (client-server API "Room Event Format" / ClientEvent): the PDU's
// public fields, redacted if a redaction applied, with `unsigned` computed at read time.
import { redactEvent } from '../core/redaction.js';
import type { RoomVersion } from '../core/room-versions.js';
import type { JsonObject, RoomEvent } from '../core/types.js';

export interface ClientEvent {
  event_id: string;
  room_id: string;
  sender: string;
  type: string;
  state_key?: string;
  content: JsonObject;
  origin_server_ts: number;
  redacts?: string;
  unsigned: JsonObject;
}

export interface FormatExtras {
  /** The redaction that applies to this event, if any. */
  redactedBecause?: RoomEvent;
  /** The state event this one replaced (state events only). */
  replaces?: RoomEvent;
  /** The requesting device's transaction id for this event. */
  transactionId?: string;
  now?: number;
}

export function toClientEvent(event: RoomEvent, version: RoomVersion, extras: FormatExtras = {}): ClientEvent {
  const now = extras.now ?? Date.now();
  const shown = extras.redactedBecause ? redactEvent(event, version) : event;
  const unsigned: JsonObject = { age: Math.max(0, now - event.origin_server_ts) };
  if (extras.transactionId !== undefined) unsigned['transaction_id'] = extras.transactionId;
  if (extras.redactedBecause) {
    unsigned['redacted_because'] = toClientEvent(extras.redactedBecause, version, { now }) as unknown as JsonObject;
  }
  if (extras.replaces) {
    unsigned['replaces_state'] = extras.replaces.event_id;
    unsigned['prev_content'] = extras.replaces.content;
    unsigned['prev_sender'] = extras.replaces.sender;
  }
  const out: ClientEvent = {
    event_id: event.event_id,
    room_id: event.room_id,
    sender: event.sender,
    type: event.type,
    ...(typeof event.state_key === 'string' ? { state_key: event.state_key } : {}),
    content: shown.content ?? {},
    origin_server_ts: event.origin_server_ts,
    unsigned,
  };
  if (event.type === 'm.room.redaction') {
    // v11 keeps `redacts` in content; it is mirrored at the top level, as Synapse does, so
    // clients written for either layout find it.
    const redacts = version.updatedRedactionRules ? event.content['redacts'] : event.redacts;
    if (typeof redacts === 'string') out.redacts = redacts;
  }
  return out;
}
